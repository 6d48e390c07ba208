/* SPDX-License-Identifier: MIT */
/*
 * Proof of uptime: heartbeats, chain verification, epochs, claims,
 * disclosure proofs (docs/uptime.md has every byte layout).
 *
 * The chain verifier's budget is the two Ed25519 verifications per beat
 * (libsodium, ~47 us each here): everything else per beat is three SHA-256
 * of ~300 bytes over stack buffers, a payload rendered without printf, and
 * memcmp's, so one day of one lease costs about 2,880 verifications and
 * nothing more. Nothing in this file allocates (wp_hb_vdf_make's VDF
 * evaluation allocates inside workproof/vdf.c and frees before returning).
 */
#include <string.h>

#include "workproof/common.h"
#include "workproof/ed25519.h"
#include "workproof/hash.h"
#include "workproof/merkle.h"
#include "workproof/uptime.h"
#include "workproof/vdf.h"

#define HLEN WP_UPTIME_HASH_LEN
#define SLEN WP_UPTIME_SIG_LEN

static const uint8_t zero_hash[HLEN];

static const char *const reason_names[WP_HB_REASON_COUNT] = {
	[WP_HB_OK] = "OK",
	[WP_HB_BAD_FORMAT] = "BAD_FORMAT",
	[WP_HB_LEASE_MISMATCH] = "LEASE_MISMATCH",
	[WP_HB_BAD_SEQUENCE] = "BAD_SEQUENCE",
	[WP_HB_BROKEN_LINK] = "BROKEN_LINK",
	[WP_HB_NO_PROVIDER_KEY] = "NO_PROVIDER_KEY",
	[WP_HB_NO_CONSUMER_KEY] = "NO_CONSUMER_KEY",
	[WP_HB_BAD_PROVIDER_SIG] = "BAD_PROVIDER_SIG",
	[WP_HB_BAD_CONSUMER_SIG] = "BAD_CONSUMER_SIG",
	[WP_HB_BAD_HASH] = "BAD_HASH",
	[WP_HB_BAD_VDF] = "BAD_VDF",
	[WP_HB_BAD_EPOCH_PATH] = "BAD_EPOCH_PATH",
	[WP_HB_BAD_CLAIM_PATH] = "BAD_CLAIM_PATH",
	[WP_HB_BAD_EPOCH] = "BAD_EPOCH",
	[WP_HB_BAD_CLAIM_SIG] = "BAD_CLAIM_SIG",
};

const char *wp_hb_reason_name(int reason)
{
	if (reason < 0 || reason >= WP_HB_REASON_COUNT)
		return "UNKNOWN";
	return reason_names[reason];
}

/* ---- small encoders ----------------------------------------------------- */

static void be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Lowercase hex of 32 bytes; the payload's only hex. */
static char *hex32(char *out, const uint8_t *b)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < HLEN; i++) {
		*out++ = digits[b[i] >> 4];
		*out++ = digits[b[i] & 15];
	}
	return out;
}

/* Decimal without leading zeros (0 is "0"). */
static char *dec(char *out, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*out++ = tmp[--n];
	return out;
}

/* ---- VDF block ----------------------------------------------------------- */

static const char vdf_tag[8] = { 'W', 'P', '-', 'V', 'D', 'F', '0', '1' };

/*
 * VDF hardening: V = "WP-VDF01" | T BE64 | y 256 | pi 256, over seed =
 * prevHash (32 raw bytes). T must be the policy's T exactly: a smaller T
 * would be a cheaper delay, a larger one is not what the lease agreed.
 */
static int vdf_check(const struct wp_hb *hb, uint64_t t)
{
	uint64_t bt;

	if (wp_hb_vdf_decode(hb->ext, hb->ext_len, &bt, NULL, NULL) || bt != t)
		return WP_HB_BAD_VDF;
	if (wp_vdf_verify(hb->prev_hash, HLEN, t, hb->ext + 16, hb->ext + 16 + WP_VDF_BYTES) != 1)
		return WP_HB_BAD_VDF;
	return WP_HB_OK;
}

void wp_hb_vdf_encode(uint8_t out[WP_HB_VDF_LEN], uint64_t t, const uint8_t y[WP_VDF_BYTES],
		      const uint8_t proof[WP_VDF_BYTES])
{
	memcpy(out, vdf_tag, 8);
	wp_store_be64(out + 8, t);
	memcpy(out + 16, y, WP_VDF_BYTES);
	memcpy(out + 16 + WP_VDF_BYTES, proof, WP_VDF_BYTES);
}

int wp_hb_vdf_decode(const uint8_t *v, size_t len, uint64_t *t, const uint8_t **y,
		     const uint8_t **proof)
{
	if (len != WP_HB_VDF_LEN || !v || memcmp(v, vdf_tag, 8))
		return WP_EINVAL;
	*t = wp_load_be64(v + 8);
	if (y)
		*y = v + 16;
	if (proof)
		*proof = v + 16 + WP_VDF_BYTES;
	return WP_OK;
}

int wp_hb_vdf_make(uint8_t out[WP_HB_VDF_LEN], const uint8_t prev_hash[WP_UPTIME_HASH_LEN],
		   uint64_t t)
{
	struct wp_vdf_output o;
	int rc;

	if (!t)
		return WP_ERANGE;
	rc = wp_vdf_eval(prev_hash, HLEN, t, NULL, &o);
	if (rc)
		return rc;
	wp_hb_vdf_encode(out, t, o.y, o.proof);
	return WP_OK;
}

/* ---- heartbeats ---------------------------------------------------------- */

int wp_hb_build(struct wp_hb *hb, const uint8_t lease_id[HLEN], uint64_t sequence,
		int64_t timestamp, const uint8_t *prev_hash)
{
	if (timestamp < 0)
		return WP_EINVAL;
	memset(hb, 0, sizeof(*hb));
	memcpy(hb->lease_id, lease_id, HLEN);
	hb->sequence = sequence;
	hb->timestamp = timestamp;
	memcpy(hb->prev_hash, prev_hash ? prev_hash : zero_hash, HLEN);
	return WP_OK;
}

int wp_hb_payload(const struct wp_hb *hb, char *out, size_t *len)
{
	char *p = out;

	if (hb->timestamp < 0)
		return WP_EINVAL;
	p = hex32(p, hb->lease_id);
	*p++ = ':';
	p = dec(p, hb->sequence);
	*p++ = ':';
	p = dec(p, (uint64_t)hb->timestamp);
	*p++ = ':';
	p = hex32(p, hb->prev_hash);
	*len = (size_t)(p - out);
	return WP_OK;
}

/*
 * The three digests of a beat share the prefix M = payload || V: render M's
 * payload once and hash iovecs (no copy of V or the signatures).
 */
struct hb_msg {
	char payload[WP_HB_PAYLOAD_MAX];
	struct wp_iov iov[4];
};

static int hb_msg_init(struct hb_msg *m, const struct wp_hb *hb)
{
	size_t len;

	if (hb->ext_len > WP_HB_EXT_MAX || (hb->ext_len && !hb->ext))
		return WP_EINVAL;
	if (wp_hb_payload(hb, m->payload, &len))
		return WP_EINVAL;
	m->iov[0] = (struct wp_iov){ m->payload, len };
	m->iov[1] = (struct wp_iov){ hb->ext, hb->ext_len };
	m->iov[2] = (struct wp_iov){ hb->provider_sig, SLEN };
	m->iov[3] = (struct wp_iov){ hb->consumer_sig, SLEN };
	return WP_OK;
}

/* parts = 2: SHA-256(M); 3: SHA-256(M || psig); 4: SHA-256(M || psig || csig) */
static void hb_digest(const struct hb_msg *m, size_t parts, uint8_t out[HLEN])
{
	wp_sha256_v(m->iov, parts, out);
}

int wp_hb_sign(struct wp_hb *hb, const uint8_t secret[WP_UPTIME_SECRET_LEN])
{
	struct hb_msg m;
	uint8_t d[HLEN];
	int rc = hb_msg_init(&m, hb);

	if (rc)
		return rc;
	hb_digest(&m, 2, d);
	return wp_ed25519_sign(hb->provider_sig, d, HLEN, secret);
}

int wp_hb_countersign(struct wp_hb *hb, const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
		      const uint8_t consumer_secret[WP_UPTIME_SECRET_LEN])
{
	struct hb_msg m;
	uint8_t d[HLEN], sig[SLEN];
	int rc = hb_msg_init(&m, hb);

	if (rc)
		return rc;
	/* The consumer vouches for what the provider signed: never countersign
	 * a beat the provider's key did not sign (XE step 3). */
	hb_digest(&m, 2, d);
	if (!wp_ed25519_verify(hb->provider_sig, d, HLEN, provider_pub))
		return WP_EPROTO;
	hb_digest(&m, 3, d);
	rc = wp_ed25519_sign(sig, d, HLEN, consumer_secret);
	if (rc)
		return rc;
	memcpy(hb->consumer_sig, sig, SLEN);
	hb_digest(&m, 4, hb->hash);
	return WP_OK;
}

int wp_hb_compute_hash(const struct wp_hb *hb, uint8_t out[HLEN])
{
	struct hb_msg m;
	int rc = hb_msg_init(&m, hb);

	if (rc)
		return rc;
	hb_digest(&m, 4, out);
	return WP_OK;
}

/* Signatures, then the stored hash: the checks every beat gets. */
static int hb_check(const struct wp_hb *hb, const uint8_t *ppub, const uint8_t *cpub)
{
	struct hb_msg m;
	uint8_t d[HLEN];

	if (hb_msg_init(&m, hb))
		return WP_HB_BAD_FORMAT;
	hb_digest(&m, 2, d);
	if (!wp_ed25519_verify(hb->provider_sig, d, HLEN, ppub))
		return WP_HB_BAD_PROVIDER_SIG;
	hb_digest(&m, 3, d);
	if (!wp_ed25519_verify(hb->consumer_sig, d, HLEN, cpub))
		return WP_HB_BAD_CONSUMER_SIG;
	hb_digest(&m, 4, d);
	if (memcmp(d, hb->hash, HLEN))
		return WP_HB_BAD_HASH;
	return WP_HB_OK;
}

int wp_hb_verify(const struct wp_hb *hb, const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
		 const uint8_t consumer_pub[WP_UPTIME_KEY_LEN], uint64_t vdf_t)
{
	int r;

	if (hb->timestamp < 0 || hb->ext_len > WP_HB_EXT_MAX || (!vdf_t && hb->ext_len))
		return WP_HB_BAD_FORMAT;
	r = hb_check(hb, provider_pub, consumer_pub);
	if (r == WP_HB_OK && vdf_t)
		r = vdf_check(hb, vdf_t);
	return r;
}

/* ---- chain verification -------------------------------------------------- */

static int ranges_ok(const struct wp_uptime_keyrange *r, size_t n)
{
	if (n && !r)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (r[i].first > r[i].last)
			return 0;
		if (i && r[i].first <= r[i - 1].last)
			return 0;
	}
	return 1;
}

/* The key whose range holds seq, or NULL (binary search: ranges sorted). */
static const uint8_t *key_for(const struct wp_uptime_keyrange *r, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r[mid].first <= seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || seq > r[lo - 1].last)
		return NULL;
	return r[lo - 1].key;
}

int wp_hb_verify_chain(const struct wp_hb *beats, size_t n, const struct wp_hb_chain_opts *o,
		       struct wp_hb_chain_result *res)
{
	const uint8_t *lease, *prev;
	uint64_t seq;

	res->reason = WP_HB_OK;
	res->index = 0;
	if (!ranges_ok(o->provider, o->nprovider) || !ranges_ok(o->consumer, o->nconsumer))
		return WP_EINVAL;
	if (!n)
		return WP_OK;
	if (n && !beats)
		return WP_EINVAL;
	lease = o->lease_id ? o->lease_id : beats[0].lease_id;
	prev = o->prev_hash ? o->prev_hash : zero_hash;
	seq = o->first_sequence;
	for (size_t i = 0; i < n; i++) {
		const struct wp_hb *hb = &beats[i];
		const uint8_t *pk, *ck;
		int r;

		res->index = i;
		if (hb->timestamp < 0 || hb->ext_len > WP_HB_EXT_MAX ||
		    (!o->vdf_t && hb->ext_len)) {
			res->reason = WP_HB_BAD_FORMAT;
			return WP_OK;
		}
		if (memcmp(hb->lease_id, lease, HLEN)) {
			res->reason = WP_HB_LEASE_MISMATCH;
			return WP_OK;
		}
		/* i > 0 and seq wrapped: the previous beat had UINT64_MAX */
		if (hb->sequence != seq || (i && seq == 0)) {
			res->reason = WP_HB_BAD_SEQUENCE;
			return WP_OK;
		}
		if (memcmp(hb->prev_hash, prev, HLEN)) {
			res->reason = WP_HB_BROKEN_LINK;
			return WP_OK;
		}
		pk = key_for(o->provider, o->nprovider, seq);
		if (!pk) {
			res->reason = WP_HB_NO_PROVIDER_KEY;
			return WP_OK;
		}
		ck = key_for(o->consumer, o->nconsumer, seq);
		if (!ck) {
			res->reason = WP_HB_NO_CONSUMER_KEY;
			return WP_OK;
		}
		r = hb_check(hb, pk, ck);
		if (r == WP_HB_OK && o->vdf_t)
			r = vdf_check(hb, o->vdf_t);
		if (r != WP_HB_OK) {
			res->reason = r;
			return WP_OK;
		}
		prev = hb->hash;
		seq++;
	}
	return WP_OK;
}

/* ---- packing ------------------------------------------------------------- */

size_t wp_hb_pack(const struct wp_hb *hb, uint8_t *out)
{
	uint8_t *p = out;

	memcpy(p, hb->lease_id, HLEN);
	wp_store_be64(p + 32, hb->sequence);
	wp_store_be64(p + 40, (uint64_t)hb->timestamp);
	memcpy(p + 48, hb->prev_hash, HLEN);
	memcpy(p + 80, hb->provider_sig, SLEN);
	memcpy(p + 144, hb->consumer_sig, SLEN);
	memcpy(p + 208, hb->hash, HLEN);
	be16(p + 240, (uint16_t)hb->ext_len);
	if (hb->ext_len)
		memcpy(p + WP_HB_PACKED_FIXED, hb->ext, hb->ext_len);
	return WP_HB_PACKED_FIXED + hb->ext_len;
}

int wp_hb_unpack(struct wp_hb *hb, const uint8_t *buf, size_t len, size_t *used)
{
	size_t ext;

	if (len < WP_HB_PACKED_FIXED)
		return WP_ETRUNC;
	ext = rd16(buf + 240);
	if (ext > WP_HB_EXT_MAX)
		return WP_EINVAL;
	if (len - WP_HB_PACKED_FIXED < ext)
		return WP_ETRUNC;
	memcpy(hb->lease_id, buf, HLEN);
	hb->sequence = wp_load_be64(buf + 32);
	hb->timestamp = (int64_t)wp_load_be64(buf + 40);
	if (hb->timestamp < 0)
		return WP_EINVAL;
	memcpy(hb->prev_hash, buf + 48, HLEN);
	memcpy(hb->provider_sig, buf + 80, SLEN);
	memcpy(hb->consumer_sig, buf + 144, SLEN);
	memcpy(hb->hash, buf + 208, HLEN);
	hb->ext = ext ? buf + WP_HB_PACKED_FIXED : NULL;
	hb->ext_len = ext;
	*used = WP_HB_PACKED_FIXED + ext;
	return WP_OK;
}

/* ---- sizes --------------------------------------------------------------- */

/* E and K of sz (NULL: the defaults); WP_ERANGE when one is out of range. */
static int sizes_get(const struct wp_uptime_sizes *sz, uint32_t *e, uint32_t *k)
{
	*e = sz ? sz->epoch_beats : WP_UPTIME_EPOCH_BEATS;
	*k = sz ? sz->claim_epochs : WP_UPTIME_CLAIM_EPOCHS;
	if (!*e || *e > WP_UPTIME_EPOCH_BEATS || !*k || *k > WP_UPTIME_CLAIM_EPOCHS)
		return WP_ERANGE;
	return WP_OK;
}

int wp_uptime_sizes_check(const struct wp_uptime_sizes *sz)
{
	uint32_t e, k;

	return sizes_get(sz, &e, &k);
}

/* Epoch index of size e holding count beats: index * e + count - 1 fits. */
static int epoch_span_ok(uint64_t index, uint32_t e, uint32_t count)
{
	return count && count <= e && index <= UINT64_MAX / e && count - 1 <= UINT64_MAX - index * e;
}

/* ---- epochs -------------------------------------------------------------- */

static const char epoch_tag[16] = { 'W', 'P', '-', 'U', 'P', 'T', 'I', 'M',
				    'E', '-', 'E', 'P', 'O', 'C', 'H', '1' };
static const char claim_tag[16] = { 'W', 'P', '-', 'U', 'P', 'T', 'I', 'M',
				    'E', '-', 'C', 'L', 'A', 'I', 'M', '1' };
static const char rotate_tag[16] = { 'W', 'P', '-', 'U', 'P', 'T', 'I', 'M',
				     'E', '-', 'R', 'O', 'T', 'A', 'T', 'E' };

/* Root over n items of 32-byte data (heartbeat or epoch hashes): the RFC
 * 6962 leaf hash of each, then the tree (n <= 60 here: stack buffer). */
static void root_over(const uint8_t *items, size_t stride, size_t n, uint8_t out[HLEN])
{
	uint8_t leaves[WP_UPTIME_EPOCH_BEATS * HLEN];

	for (size_t i = 0; i < n; i++)
		wp_merkle_leaf_hash(items + i * stride, HLEN, leaves + i * HLEN);
	wp_merkle_root_hashes(leaves, n, out);
}

void wp_uptime_epoch_record(const struct wp_uptime_epoch *e, uint8_t out[WP_UPTIME_EPOCH_RECORD_LEN])
{
	memcpy(out, epoch_tag, 16);
	memcpy(out + 16, e->lease_id, HLEN);
	wp_store_be64(out + 48, e->index);
	wp_store_be64(out + 56, e->first_sequence);
	be32(out + 64, e->count);
	memcpy(out + 68, e->root, HLEN);
	memcpy(out + 100, e->prev_hash, HLEN);
}

void wp_uptime_epoch_seal(struct wp_uptime_epoch *e)
{
	uint8_t rec[WP_UPTIME_EPOCH_RECORD_LEN];

	wp_uptime_epoch_record(e, rec);
	wp_sha256(rec, sizeof(rec), e->hash);
}

int wp_uptime_epoch_parse(struct wp_uptime_epoch *e, const uint8_t *rec, size_t len)
{
	if (len < WP_UPTIME_EPOCH_RECORD_LEN)
		return WP_ETRUNC;
	if (len > WP_UPTIME_EPOCH_RECORD_LEN || memcmp(rec, epoch_tag, 16))
		return WP_EINVAL;
	memcpy(e->lease_id, rec + 16, HLEN);
	e->index = wp_load_be64(rec + 48);
	e->first_sequence = wp_load_be64(rec + 56);
	e->count = rd32(rec + 64);
	memcpy(e->root, rec + 68, HLEN);
	memcpy(e->prev_hash, rec + 100, HLEN);
	/* valid for some size E in count..60: firstSequence = index * E */
	if (!e->count || e->count > WP_UPTIME_EPOCH_BEATS)
		return WP_EPROTO;
	if (!e->index) {
		if (e->first_sequence)
			return WP_EPROTO;
	} else if (e->first_sequence % e->index || e->first_sequence / e->index < e->count ||
		   e->first_sequence / e->index > WP_UPTIME_EPOCH_BEATS ||
		   e->count - 1 > UINT64_MAX - e->first_sequence) {
		return WP_EPROTO;
	}
	wp_uptime_epoch_seal(e);
	return WP_OK;
}

int wp_uptime_epoch_check_size(const struct wp_uptime_epoch *e, const struct wp_uptime_sizes *sz)
{
	uint32_t E, K;

	if (sizes_get(sz, &E, &K))
		return WP_ERANGE;
	if (!epoch_span_ok(e->index, E, e->count) || e->first_sequence != e->index * E)
		return WP_EPROTO;
	return WP_OK;
}

int wp_uptime_epoch_make(struct wp_uptime_epoch *e, const uint8_t lease_id[HLEN], uint64_t index,
			 const uint8_t *beat_hashes, uint32_t count, const uint8_t *prev,
			 const struct wp_uptime_sizes *sz)
{
	uint32_t E, K;

	if (sizes_get(sz, &E, &K) || !epoch_span_ok(index, E, count))
		return WP_ERANGE;
	memcpy(e->lease_id, lease_id, HLEN);
	e->index = index;
	e->first_sequence = index * E;
	e->count = count;
	root_over(beat_hashes, HLEN, count, e->root);
	memcpy(e->prev_hash, prev ? prev : zero_hash, HLEN);
	wp_uptime_epoch_seal(e);
	return WP_OK;
}

/* ---- claims -------------------------------------------------------------- */

static void claim_body(const struct wp_uptime_claim *c, uint8_t out[WP_UPTIME_CLAIM_BODY_LEN])
{
	out[0] = c->version;
	out[1] = c->flags;
	memcpy(out + 2, c->lease_id, HLEN);
	be32(out + 34, c->index);
	wp_store_be64(out + 38, c->first_sequence);
	be32(out + 46, c->beat_count);
	wp_store_be64(out + 50, (uint64_t)c->period_start);
	wp_store_be64(out + 58, (uint64_t)c->period_end);
	memcpy(out + 66, c->root, HLEN);
	memcpy(out + 98, c->prev_hash, HLEN);
}

size_t wp_uptime_claim_epochs(const struct wp_uptime_claim *c, const struct wp_uptime_sizes *sz)
{
	uint32_t E, K, n;

	if (sizes_get(sz, &E, &K))
		return 0;
	n = c->beat_count / E + (c->beat_count % E != 0);
	return n > K ? K : n;
}

int wp_uptime_claim_check_size(const struct wp_uptime_claim *c, const struct wp_uptime_sizes *sz)
{
	uint32_t E, K;

	if (sizes_get(sz, &E, &K))
		return WP_ERANGE;
	if (!c->beat_count || c->beat_count > K * E ||
	    c->first_sequence != (uint64_t)c->index * K * E)
		return WP_EPROTO;
	return WP_OK;
}

/* A claim span P (beats from one claim's first sequence to the next's) is
 * K * E for some E in 1..60 and K in 1..24. */
static int claim_span_ok(uint64_t p)
{
	for (uint64_t k = 1; k <= WP_UPTIME_CLAIM_EPOCHS; k++)
		if (p % k == 0 && p / k >= 1 && p / k <= WP_UPTIME_EPOCH_BEATS)
			return 1;
	return 0;
}

void wp_uptime_claim_hash(const struct wp_uptime_claim *c, uint8_t out[HLEN])
{
	uint8_t body[WP_UPTIME_CLAIM_BODY_LEN];
	struct wp_iov iov[2] = { { claim_tag, 16 }, { body, sizeof(body) } };

	claim_body(c, body);
	wp_sha256_v(iov, 2, out);
}

int wp_uptime_claim_make(struct wp_uptime_claim *c, const struct wp_uptime_epoch *epochs, size_t n,
			 uint32_t index, int64_t period_start, int64_t period_end, uint8_t flags,
			 const uint8_t *prev, const struct wp_uptime_sizes *sz)
{
	uint8_t items[WP_UPTIME_CLAIM_EPOCHS * HLEN];
	uint64_t first_epoch;
	uint32_t beats = 0, E, K;

	if (sizes_get(sz, &E, &K) || !n || n > K)
		return WP_ERANGE;
	if (period_start < 0 || period_end < period_start)
		return WP_EPROTO;
	first_epoch = (uint64_t)index * K;
	for (size_t i = 0; i < n; i++) {
		const struct wp_uptime_epoch *e = &epochs[i];

		/* the index is checked first: it bounds index * E below */
		if (memcmp(e->lease_id, epochs[0].lease_id, HLEN) || e->index != first_epoch + i ||
		    e->first_sequence != e->index * E)
			return WP_EPROTO;
		if (i && memcmp(e->prev_hash, epochs[i - 1].hash, HLEN))
			return WP_EPROTO;
		if (!e->count || e->count > E || (i + 1 < n && e->count != E))
			return WP_ERANGE;
		memcpy(items + i * HLEN, e->hash, HLEN);
		beats += e->count;
	}
	memset(c, 0, sizeof(*c));
	c->version = WP_UPTIME_CLAIM_VERSION;
	c->flags = flags;
	memcpy(c->lease_id, epochs[0].lease_id, HLEN);
	c->index = index;
	c->first_sequence = (uint64_t)index * K * E;
	c->beat_count = beats;
	c->period_start = period_start;
	c->period_end = period_end;
	root_over(items, HLEN, n, c->root);
	memcpy(c->prev_hash, prev ? prev : zero_hash, HLEN);
	return WP_OK;
}

int wp_uptime_claim_sign(struct wp_uptime_claim *c, const uint8_t secret[WP_UPTIME_SECRET_LEN])
{
	uint8_t h[HLEN];

	wp_uptime_claim_hash(c, h);
	return wp_ed25519_sign(c->sig, h, HLEN, secret);
}

int wp_uptime_claim_verify(const struct wp_uptime_claim *c, const uint8_t pub[WP_UPTIME_KEY_LEN])
{
	uint8_t h[HLEN];

	wp_uptime_claim_hash(c, h);
	return wp_ed25519_verify(c->sig, h, HLEN, pub);
}

void wp_uptime_claim_encode(const struct wp_uptime_claim *c, uint8_t out[WP_UPTIME_CLAIM_LEN])
{
	claim_body(c, out);
	memcpy(out + WP_UPTIME_CLAIM_BODY_LEN, c->sig, SLEN);
}

int wp_uptime_claim_decode(struct wp_uptime_claim *c, const uint8_t *buf, size_t len)
{
	if (len < WP_UPTIME_CLAIM_LEN)
		return WP_ETRUNC;
	if (len > WP_UPTIME_CLAIM_LEN)
		return WP_EINVAL;
	memset(c, 0, sizeof(*c));
	c->version = buf[0];
	c->flags = buf[1];
	memcpy(c->lease_id, buf + 2, HLEN);
	c->index = rd32(buf + 34);
	c->first_sequence = wp_load_be64(buf + 38);
	c->beat_count = rd32(buf + 46);
	c->period_start = (int64_t)wp_load_be64(buf + 50);
	c->period_end = (int64_t)wp_load_be64(buf + 58);
	memcpy(c->root, buf + 66, HLEN);
	memcpy(c->prev_hash, buf + 98, HLEN);
	memcpy(c->sig, buf + WP_UPTIME_CLAIM_BODY_LEN, SLEN);
	if (c->version != WP_UPTIME_CLAIM_VERSION || (c->flags & ~WP_UPTIME_CLAIM_FLAG_VDF) ||
	    !c->beat_count || c->beat_count > WP_UPTIME_CLAIM_BEATS ||
	    c->period_start < 0 || c->period_end < c->period_start)
		return WP_EPROTO;
	/* valid for some sizes: firstSequence = index * K * E, beatCount <= K * E */
	if (!c->index)
		return c->first_sequence ? WP_EPROTO : WP_OK;
	if (c->first_sequence % c->index || c->first_sequence / c->index < c->beat_count ||
	    !claim_span_ok(c->first_sequence / c->index))
		return WP_EPROTO;
	return WP_OK;
}

static void countersign_digest(const struct wp_uptime_claim *c, uint8_t out[HLEN])
{
	uint8_t h[HLEN];
	struct wp_iov iov[2] = { { h, HLEN }, { c->sig, SLEN } };

	wp_uptime_claim_hash(c, h);
	wp_sha256_v(iov, 2, out);
}

int wp_uptime_claim_countersign(const struct wp_uptime_claim *c,
				const uint8_t secret[WP_UPTIME_SECRET_LEN], uint8_t sig[SLEN])
{
	uint8_t d[HLEN];

	countersign_digest(c, d);
	return wp_ed25519_sign(sig, d, HLEN, secret);
}

int wp_uptime_claim_verify_countersign(const struct wp_uptime_claim *c,
				       const uint8_t pub[WP_UPTIME_KEY_LEN], const uint8_t sig[SLEN])
{
	uint8_t d[HLEN];

	countersign_digest(c, d);
	return wp_ed25519_verify(sig, d, HLEN, pub);
}

/* ---- roll-up ------------------------------------------------------------- */

int wp_uptime_rollup(const struct wp_hb *beats, size_t n, const struct wp_uptime_rollup_opts *o,
		     struct wp_uptime_epoch *epochs, size_t *nepochs,
		     struct wp_uptime_claim *claims, size_t *nclaims)
{
	const uint8_t *eprev = o->prev_epoch_hash, *cprev = o->prev_claim_hash;
	uint8_t hashes[WP_UPTIME_EPOCH_BEATS * HLEN], ch[HLEN];
	uint64_t first;
	uint32_t E, K, span;
	size_t ne = 0, nc = 0;

	*nepochs = *nclaims = 0;
	if (sizes_get(o->sizes, &E, &K))
		return WP_ERANGE;
	span = K * E;
	if (!n || beats[0].sequence % span)
		return WP_EINVAL;
	first = beats[0].sequence;
	if (first / span + (n - 1) / span > UINT32_MAX)
		return WP_ERANGE;
	for (size_t i = 0; i < n; i += E) {
		size_t cnt = n - i < E ? n - i : E;

		for (size_t j = 0; j < cnt; j++) {
			if (beats[i + j].sequence != first + i + j ||
			    memcmp(beats[i + j].lease_id, beats[0].lease_id, HLEN))
				return WP_EINVAL;
			memcpy(hashes + j * HLEN, beats[i + j].hash, HLEN);
		}
		if (wp_uptime_epoch_make(&epochs[ne], beats[0].lease_id, (first + i) / E, hashes,
					 (uint32_t)cnt, eprev, o->sizes))
			return WP_ERANGE;
		eprev = epochs[ne].hash;
		ne++;
	}
	for (size_t e = 0; e < ne; e += K) {
		size_t cnt = ne - e < K ? ne - e : K;
		size_t b0 = e * E;
		size_t b1 = b0 + (cnt - 1) * E + epochs[e + cnt - 1].count - 1;
		int rc = wp_uptime_claim_make(&claims[nc], &epochs[e], cnt,
					      (uint32_t)(epochs[e].index / K),
					      beats[b0].timestamp, beats[b1].timestamp,
					      o->claim_flags, cprev, o->sizes);

		if (rc)
			return rc;
		wp_uptime_claim_hash(&claims[nc], ch);
		cprev = ch;
		/* ch is reused: the next claim copies it in claim_make first */
		nc++;
	}
	*nepochs = ne;
	*nclaims = nc;
	return WP_OK;
}

/* ---- disclosure proofs --------------------------------------------------- */

int wp_uptime_proof_make(struct wp_uptime_proof *p, const struct wp_hb *epoch_beats, size_t nbeats,
			 size_t pos, const struct wp_uptime_epoch *epochs, size_t nepochs,
			 const struct wp_uptime_claim *claim, const struct wp_uptime_sizes *sz)
{
	uint8_t leaves[WP_UPTIME_EPOCH_BEATS * HLEN];
	const struct wp_uptime_epoch *e = NULL;
	size_t ne, epos;
	uint32_t E, K;
	int rc;

	if (sizes_get(sz, &E, &K))
		return WP_ERANGE;
	if (wp_uptime_claim_check_size(claim, sz))
		return WP_EPROTO;
	ne = wp_uptime_claim_epochs(claim, sz);
	if (pos >= nbeats || nbeats > E || nepochs != ne)
		return WP_ERANGE;
	if (epoch_beats[pos].ext_len > WP_HB_EXT_MAX)
		return WP_EINVAL;
	for (size_t i = 0; i < nepochs; i++)
		if (epoch_beats[0].sequence == epochs[i].first_sequence)
			e = &epochs[i];
	if (!e || e->count != nbeats || memcmp(e->lease_id, claim->lease_id, HLEN) ||
	    wp_uptime_epoch_check_size(e, sz))
		return WP_EPROTO;
	epos = (size_t)(e - epochs);
	if (epochs[0].index != (uint64_t)claim->index * K)
		return WP_EPROTO;
	memset(p, 0, sizeof(*p));
	p->sizes.epoch_beats = E;
	p->sizes.claim_epochs = K;
	p->beat = epoch_beats[pos];
	if (p->beat.ext_len) {
		memcpy(p->ext_buf, p->beat.ext, p->beat.ext_len);
		p->beat.ext = p->ext_buf;
	}
	p->epoch = *e;
	for (size_t i = 0; i < nbeats; i++)
		wp_merkle_leaf_hash(epoch_beats[i].hash, HLEN, leaves + i * HLEN);
	rc = wp_merkle_inclusion_proof(leaves, nbeats, pos, p->epoch_path, 6, &p->epoch_path_len);
	if (rc)
		return rc;
	for (size_t i = 0; i < nepochs; i++)
		wp_merkle_leaf_hash(epochs[i].hash, HLEN, leaves + i * HLEN);
	rc = wp_merkle_inclusion_proof(leaves, nepochs, epos, p->claim_path, 5, &p->claim_path_len);
	if (rc)
		return rc;
	p->claim = *claim;
	return WP_OK;
}

void wp_uptime_proof_encode(const struct wp_uptime_proof *p, uint8_t *out, size_t *len)
{
	uint8_t *q = out;
	const struct wp_hb *b = &p->beat;

	int sized = p->sizes.epoch_beats != WP_UPTIME_EPOCH_BEATS ||
		    p->sizes.claim_epochs != WP_UPTIME_CLAIM_EPOCHS;

	*q++ = WP_UPTIME_PROOF_VERSION;
	*q++ = (uint8_t)((b->ext_len ? WP_UPTIME_PROOF_FLAG_EXT : 0) |
			 (sized ? WP_UPTIME_PROOF_FLAG_SIZES : 0));
	memcpy(q, b->lease_id, HLEN);
	wp_store_be64(q + 32, b->sequence);
	wp_store_be64(q + 40, (uint64_t)b->timestamp);
	memcpy(q + 48, b->prev_hash, HLEN);
	memcpy(q + 80, b->provider_sig, SLEN);
	memcpy(q + 144, b->consumer_sig, SLEN);
	q += 208;
	if (b->ext_len) {
		be16(q, (uint16_t)b->ext_len);
		memcpy(q + 2, b->ext, b->ext_len);
		q += 2 + b->ext_len;
	}
	if (sized) {
		*q++ = (uint8_t)p->sizes.epoch_beats;
		*q++ = (uint8_t)p->sizes.claim_epochs;
	}
	wp_store_be64(q, p->epoch.index);
	be32(q + 8, p->epoch.count);
	memcpy(q + 12, p->epoch.root, HLEN);
	memcpy(q + 44, p->epoch.prev_hash, HLEN);
	q += 76;
	*q++ = (uint8_t)p->epoch_path_len;
	memcpy(q, p->epoch_path, p->epoch_path_len * HLEN);
	q += p->epoch_path_len * HLEN;
	*q++ = (uint8_t)p->claim_path_len;
	memcpy(q, p->claim_path, p->claim_path_len * HLEN);
	q += p->claim_path_len * HLEN;
	wp_uptime_claim_encode(&p->claim, q);
	q += WP_UPTIME_CLAIM_LEN;
	*len = (size_t)(q - out);
}

int wp_uptime_proof_decode(struct wp_uptime_proof *p, const uint8_t *buf, size_t len)
{
	const uint8_t *q = buf, *end = buf + len;
	uint8_t flags;
	size_t k;
	int rc;

	memset(p, 0, sizeof(*p));
	p->sizes.epoch_beats = WP_UPTIME_EPOCH_BEATS;
	p->sizes.claim_epochs = WP_UPTIME_CLAIM_EPOCHS;
#define NEED(n) do { if ((size_t)(end - q) < (size_t)(n)) return WP_ETRUNC; } while (0)
	NEED(2 + 208);
	if (q[0] != WP_UPTIME_PROOF_VERSION ||
	    (q[1] & ~(WP_UPTIME_PROOF_FLAG_EXT | WP_UPTIME_PROOF_FLAG_SIZES)))
		return WP_EINVAL;
	flags = q[1];
	q += 2;
	memcpy(p->beat.lease_id, q, HLEN);
	p->beat.sequence = wp_load_be64(q + 32);
	p->beat.timestamp = (int64_t)wp_load_be64(q + 40);
	memcpy(p->beat.prev_hash, q + 48, HLEN);
	memcpy(p->beat.provider_sig, q + 80, SLEN);
	memcpy(p->beat.consumer_sig, q + 144, SLEN);
	q += 208;
	if (p->beat.timestamp < 0)
		return WP_EINVAL;
	if (flags & WP_UPTIME_PROOF_FLAG_EXT) {
		NEED(2);
		k = rd16(q);
		q += 2;
		if (!k || k > WP_HB_EXT_MAX)
			return WP_EINVAL;
		NEED(k);
		memcpy(p->ext_buf, q, k);
		p->beat.ext = p->ext_buf;
		p->beat.ext_len = k;
		q += k;
	}
	if (flags & WP_UPTIME_PROOF_FLAG_SIZES) {
		/* present exactly when not the defaults: one encoding per proof */
		NEED(2);
		p->sizes.epoch_beats = q[0];
		p->sizes.claim_epochs = q[1];
		q += 2;
		if (wp_uptime_sizes_check(&p->sizes) ||
		    (q[-2] == WP_UPTIME_EPOCH_BEATS && q[-1] == WP_UPTIME_CLAIM_EPOCHS))
			return WP_EINVAL;
	}
	NEED(76 + 1);
	p->epoch.index = wp_load_be64(q);
	p->epoch.count = rd32(q + 8);
	memcpy(p->epoch.root, q + 12, HLEN);
	memcpy(p->epoch.prev_hash, q + 44, HLEN);
	memcpy(p->epoch.lease_id, p->beat.lease_id, HLEN);
	q += 76;
	if (!epoch_span_ok(p->epoch.index, p->sizes.epoch_beats, p->epoch.count))
		return WP_EINVAL;
	p->epoch.first_sequence = p->epoch.index * p->sizes.epoch_beats;
	k = *q++;
	if (k > 6)
		return WP_EINVAL;
	NEED(k * HLEN + 1);
	memcpy(p->epoch_path, q, k * HLEN);
	p->epoch_path_len = k;
	q += k * HLEN;
	k = *q++;
	if (k > 5)
		return WP_EINVAL;
	NEED(k * HLEN);
	memcpy(p->claim_path, q, k * HLEN);
	p->claim_path_len = k;
	q += k * HLEN;
#undef NEED
	rc = wp_uptime_claim_decode(&p->claim, q, (size_t)(end - q));
	if (!rc && wp_uptime_claim_check_size(&p->claim, &p->sizes))
		rc = WP_EPROTO;
	return rc;
}

int wp_uptime_proof_verify(const struct wp_uptime_proof *p,
			   const uint8_t provider_pub[WP_UPTIME_KEY_LEN],
			   const uint8_t consumer_pub[WP_UPTIME_KEY_LEN],
			   const uint8_t claim_pub[WP_UPTIME_KEY_LEN], uint64_t vdf_t,
			   const struct wp_uptime_sizes *expect)
{
	const struct wp_uptime_claim *c = &p->claim;
	struct wp_uptime_epoch e = p->epoch;
	struct wp_hb b = p->beat;
	uint8_t leaf[HLEN];
	uint64_t first_epoch, epos;
	uint32_t E, K, xe, xk;
	size_t ne;
	int r;

	if (b.ext_len > WP_HB_EXT_MAX || (!vdf_t && b.ext_len) || sizes_get(&p->sizes, &E, &K) ||
	    sizes_get(expect, &xe, &xk))
		return WP_HB_BAD_FORMAT;
	/* a proof for other sizes is not evidence under this lease's */
	if (E != xe || K != xk)
		return WP_HB_BAD_EPOCH;
	if (memcmp(b.lease_id, c->lease_id, HLEN) || memcmp(e.lease_id, c->lease_id, HLEN))
		return WP_HB_LEASE_MISMATCH;
	/* decode checked these; a proof struct may be built by hand */
	if (wp_uptime_claim_check_size(c, &p->sizes) || wp_uptime_epoch_check_size(&e, &p->sizes))
		return WP_HB_BAD_EPOCH;
	first_epoch = (uint64_t)c->index * K;
	ne = wp_uptime_claim_epochs(c, &p->sizes);
	/* The beat must sit inside the epoch, the epoch inside the claim. */
	if (b.sequence < e.first_sequence || b.sequence - e.first_sequence >= e.count)
		return WP_HB_BAD_SEQUENCE;
	if (e.index < first_epoch || e.index - first_epoch >= ne)
		return WP_HB_BAD_EPOCH;
	epos = e.index - first_epoch;
	/* every epoch of a claim is full but its last, which holds the rest */
	if (e.count != (epos + 1 < ne ? E : c->beat_count - (uint32_t)(ne - 1) * E))
		return WP_HB_BAD_EPOCH;
	r = wp_hb_compute_hash(&b, b.hash);
	if (r)
		return WP_HB_BAD_FORMAT;
	r = hb_check(&b, provider_pub, consumer_pub);
	if (r == WP_HB_OK && vdf_t)
		r = vdf_check(&b, vdf_t);
	if (r)
		return r;
	/* The proof carries the epoch root; a wrong one cannot survive: it
	 * changes the epoch hash, which must then be in the signed claim. */
	wp_merkle_leaf_hash(b.hash, HLEN, leaf);
	r = wp_merkle_verify_inclusion(leaf, b.sequence - e.first_sequence, e.count, p->epoch_path,
				       p->epoch_path_len, e.root);
	if (r != WP_MERKLE_MATCH)
		return WP_HB_BAD_EPOCH_PATH;
	wp_uptime_epoch_seal(&e);
	wp_merkle_leaf_hash(e.hash, HLEN, leaf);
	r = wp_merkle_verify_inclusion(leaf, epos, ne, p->claim_path, p->claim_path_len, c->root);
	if (r != WP_MERKLE_MATCH)
		return WP_HB_BAD_CLAIM_PATH;
	if (!wp_uptime_claim_verify(c, claim_pub))
		return WP_HB_BAD_CLAIM_SIG;
	return WP_HB_OK;
}

/* ---- rotation records, attestations -------------------------------------- */

void wp_uptime_rotation_bytes(const struct wp_uptime_rotation *r, uint8_t out[WP_UPTIME_ROTATION_LEN])
{
	memcpy(out, rotate_tag, 16);
	memcpy(out + 16, r->lease_id, HLEN);
	out[48] = r->party;
	be32(out + 49, r->index);
	memcpy(out + 53, r->new_key, HLEN);
	out[85] = r->effective_kind;
	wp_store_be64(out + 86, r->effective);
	memcpy(out + 94, r->prev_hash, HLEN);
	out[126] = r->reason;
}

void wp_uptime_rotation_hash(const struct wp_uptime_rotation *r, uint8_t out[HLEN])
{
	uint8_t b[WP_UPTIME_ROTATION_LEN];

	wp_uptime_rotation_bytes(r, b);
	wp_sha256(b, sizeof(b), out);
}

void wp_uptime_attestation_digest(const uint8_t lease_id[HLEN], uint64_t timestamp, uint8_t out[HLEN])
{
	uint8_t b[HLEN + 8];

	memcpy(b, lease_id, HLEN);
	wp_store_be64(b + HLEN, timestamp);
	wp_sha256(b, sizeof(b), out);
}
