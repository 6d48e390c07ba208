/* SPDX-License-Identifier: MIT */
/*
 * workproof.core.uptime: the thin binding of core/src/uptime.c. The public
 * wp.uptime (JSON-shaped beats, epochs, claims, rotation records; hex and
 * decimal-nanosecond strings) is lua/workproof/uptime.lua, documented in
 * docs/lua-api.md and docs/uptime.md; it is the only caller of this table.
 *
 * Everything crossing here is packed bytes or plain values:
 *   hashes, lease ids, keys     raw 32 bytes; secrets 64; signatures 64
 *   sequences, indices, counts  Lua numbers, exact integers below 2^53
 *   timestamps (Unix ns)        8 bytes big-endian (they do not fit a double)
 *   beats                       the packed form (wp_hb_pack), concatenated
 *   epochs                      132-byte records, concatenated
 *   claims                      194-byte encodings (an unsigned one has a
 *                               zero signature)
 *   key ranges                  48-byte records: first BE64 | last BE64 | key
 *   sizes                       two trailing optional numbers: the epoch
 *                               size E (1..60) and the claim size K
 *                               (1..24); nil: 60 and 24
 *
 * The Lua module checks fields and builds these; a wrong type or length
 * here is a programming error and raises. Data the core rejects (a packed
 * beat, a claim or a proof that does not decode, rules of the format)
 * returns nil, "ECODE: text"; a verification that does not hold returns
 * false and the reason name.
 */
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/uptime.h"

#define HLEN WP_UPTIME_HASH_LEN
#define SLEN WP_UPTIME_SIG_LEN
#define RANGE_LEN (16 + WP_UPTIME_KEY_LEN)
/* Sequences, indices and counts cross as Lua numbers: exact below 2^53. */
#define MAX_EXACT 9007199254740992.0

/* ---- argument helpers ---------------------------------------------------- */

static const uint8_t *optbytes(lua_State *L, int idx, size_t len)
{
	return lua_isnoneornil(L, idx) ? NULL : lwp_checkbytes(L, idx, len);
}

static uint64_t checkcount(lua_State *L, int idx)
{
	lua_Number x = luaL_checknumber(L, idx);

	if (!(x >= 0 && x < MAX_EXACT) || (lua_Number)(uint64_t)x != x)
		luaL_argerror(L, idx, "expected an integer 0 .. 2^53");
	return (uint64_t)x;
}

/*
 * Optional sizes at idx (E) and idx + 1 (K) into sz; nil: the defaults.
 * Out of range raises: the Lua module checks opts first.
 */
static void optsizes(lua_State *L, int idx, struct wp_uptime_sizes *sz)
{
	uint64_t e = lua_isnoneornil(L, idx) ? WP_UPTIME_EPOCH_BEATS : checkcount(L, idx);
	uint64_t k = lua_isnoneornil(L, idx + 1) ? WP_UPTIME_CLAIM_EPOCHS : checkcount(L, idx + 1);

	if (!e || e > WP_UPTIME_EPOCH_BEATS)
		luaL_argerror(L, idx, "epoch size: expected an integer 1 .. 60");
	if (!k || k > WP_UPTIME_CLAIM_EPOCHS)
		luaL_argerror(L, idx + 1, "claim size: expected an integer 1 .. 24");
	sz->epoch_beats = (uint32_t)e;
	sz->claim_epochs = (uint32_t)k;
}

/* A timestamp argument: 8 bytes big-endian, at most INT64_MAX. */
static int64_t checkts(lua_State *L, int idx)
{
	uint64_t v = wp_load_be64(lwp_checkbytes(L, idx, 8));

	if (v > (uint64_t)INT64_MAX)
		luaL_argerror(L, idx, "timestamp beyond INT64_MAX");
	return (int64_t)v;
}

static void push_u64(lua_State *L, uint64_t v)
{
	uint8_t b[8];

	wp_store_be64(b, v);
	lua_pushlstring(L, (const char *)b, 8);
}

static void push_bytes(lua_State *L, const uint8_t *b, size_t n)
{
	lua_pushlstring(L, (const char *)b, n);
}

/* true | false, reason name */
static int push_reason(lua_State *L, int r)
{
	if (r == WP_HB_OK) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, wp_hb_reason_name(r));
	return 2;
}

/*
 * One packed beat at idx (exactly one, strict) into hb; hb->ext points into
 * the Lua string, which stays on the stack for the call. 0, or nil, err
 * pushed and -1.
 */
static int checkbeat(lua_State *L, int idx, struct wp_hb *hb)
{
	size_t len, used = 0;
	const uint8_t *s = (const uint8_t *)luaL_checklstring(L, idx, &len);
	int rc = wp_hb_unpack(hb, s, len, &used);

	if (rc || used != len) {
		lwp_fail_err(L, rc ? rc : WP_EINVAL, "not one packed beat");
		return -1;
	}
	return 0;
}

/*
 * All packed beats of the string at idx into a GC-owned array (a userdata
 * left on the stack). NULL after pushing nil, err when one is malformed.
 */
static struct wp_hb *checkbeats(lua_State *L, int idx, size_t *n)
{
	size_t len, off = 0, used, count = 0;
	const uint8_t *s = (const uint8_t *)luaL_checklstring(L, idx, &len);
	struct wp_hb tmp, *beats;

	while (off < len) {
		int rc = wp_hb_unpack(&tmp, s + off, len - off, &used);

		if (rc) {
			lwp_fail_err(L, rc, "packed beat %d is malformed", (int)count + 1);
			return NULL;
		}
		off += used;
		count++;
	}
	beats = lua_newuserdata(L, count ? count * sizeof(*beats) : 1);
	for (size_t i = 0, o = 0; i < count; i++, o += used)
		wp_hb_unpack(&beats[i], s + o, len - o, &used);
	*n = count;
	return beats;
}

/* Concatenated epoch records at idx into a GC-owned array (pushed). */
static struct wp_uptime_epoch *checkepochs(lua_State *L, int idx, size_t *n)
{
	size_t len;
	const uint8_t *s = (const uint8_t *)luaL_checklstring(L, idx, &len);
	struct wp_uptime_epoch *es;

	if (len % WP_UPTIME_EPOCH_RECORD_LEN)
		luaL_argerror(L, idx, "expected whole 132-byte epoch records");
	*n = len / WP_UPTIME_EPOCH_RECORD_LEN;
	es = lua_newuserdata(L, *n ? *n * sizeof(*es) : 1);
	for (size_t i = 0; i < *n; i++)
		if (wp_uptime_epoch_parse(&es[i], s + i * WP_UPTIME_EPOCH_RECORD_LEN,
					  WP_UPTIME_EPOCH_RECORD_LEN))
			luaL_argerror(L, idx, "not an epoch record");
	return es;
}

/* A claim encoding at idx: 0, or nil, err pushed and -1. */
static int checkclaim(lua_State *L, int idx, struct wp_uptime_claim *c)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);
	int rc = wp_uptime_claim_decode(c, (const uint8_t *)s, len);

	if (!rc)
		return 0;
	lwp_fail_err(L, rc, rc == WP_ETRUNC ? "claim shorter than 194 bytes (%d)" :
			    rc == WP_EINVAL ? "claim longer than 194 bytes (%d)" :
					      "claim fields break the rules (%d bytes)", (int)len);
	return -1;
}

static int checkproof(lua_State *L, int idx, struct wp_uptime_proof *p)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);
	int rc = wp_uptime_proof_decode(p, (const uint8_t *)s, len);

	if (rc)
		lwp_fail_err(L, rc, rc == WP_ETRUNC ? "proof truncated" : "malformed proof");
	return rc;
}

/* ---- beats --------------------------------------------------------------- */

/* beat_pack(lease, seq, ts8, prev, psig|nil, csig|nil, hash|nil, ext|nil) -> packed */
static int l_beat_pack(lua_State *L)
{
	uint8_t out[WP_HB_PACKED_FIXED + WP_HB_EXT_MAX];
	const uint8_t *p;
	struct wp_hb hb;
	size_t len = 0;

	memset(&hb, 0, sizeof(hb));
	memcpy(hb.lease_id, lwp_checkbytes(L, 1, HLEN), HLEN);
	hb.sequence = checkcount(L, 2);
	hb.timestamp = checkts(L, 3);
	memcpy(hb.prev_hash, lwp_checkbytes(L, 4, HLEN), HLEN);
	if ((p = optbytes(L, 5, SLEN)))
		memcpy(hb.provider_sig, p, SLEN);
	if ((p = optbytes(L, 6, SLEN)))
		memcpy(hb.consumer_sig, p, SLEN);
	if ((p = optbytes(L, 7, HLEN)))
		memcpy(hb.hash, p, HLEN);
	if (!lua_isnoneornil(L, 8)) {
		hb.ext = (const uint8_t *)luaL_checklstring(L, 8, &len);
		if (len > WP_HB_EXT_MAX)
			luaL_argerror(L, 8, "extension longer than 1024 bytes");
		hb.ext_len = len;
	}
	push_bytes(L, out, wp_hb_pack(&hb, out));
	return 1;
}

/* beat_unpack(packed[, off]) -> lease, seq, ts8, prev, psig, csig, hash, ext|nil, next_off */
static int l_beat_unpack(lua_State *L)
{
	size_t len, used;
	const uint8_t *s = (const uint8_t *)luaL_checklstring(L, 1, &len);
	lua_Integer off = luaL_optinteger(L, 2, 0);
	struct wp_hb hb;
	int rc;

	if (off < 0 || (size_t)off > len)
		luaL_argerror(L, 2, "offset outside the string");
	rc = wp_hb_unpack(&hb, s + off, len - (size_t)off, &used);
	if (rc)
		return lwp_fail_err(L, rc, "packed beat at offset %d is malformed", (int)off);
	if (hb.sequence >= (uint64_t)MAX_EXACT)
		return lwp_fail(L, "ERANGE", "packed beat at offset %d: sequence beyond 2^53", (int)off);
	push_bytes(L, hb.lease_id, HLEN);
	lua_pushnumber(L, (lua_Number)hb.sequence);
	push_u64(L, (uint64_t)hb.timestamp);
	push_bytes(L, hb.prev_hash, HLEN);
	push_bytes(L, hb.provider_sig, SLEN);
	push_bytes(L, hb.consumer_sig, SLEN);
	push_bytes(L, hb.hash, HLEN);
	if (hb.ext_len)
		push_bytes(L, hb.ext, hb.ext_len);
	else
		lua_pushnil(L);
	lua_pushinteger(L, off + (lua_Integer)used);
	return 9;
}

/* payload(packed) -> text */
static int l_payload(lua_State *L)
{
	char buf[WP_HB_PAYLOAD_MAX];
	struct wp_hb hb;
	size_t len;

	if (checkbeat(L, 1, &hb))
		return LWP_FAIL_N;
	wp_hb_payload(&hb, buf, &len);
	lua_pushlstring(L, buf, len);
	return 1;
}

/* sign(packed, secret) -> providerSig */
static int l_sign(lua_State *L)
{
	const uint8_t *sk = lwp_checkbytes(L, 2, WP_UPTIME_SECRET_LEN);
	struct wp_hb hb;
	int rc;

	if (checkbeat(L, 1, &hb))
		return LWP_FAIL_N;
	rc = wp_hb_sign(&hb, sk);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	push_bytes(L, hb.provider_sig, SLEN);
	return 1;
}

/* countersign(packed, provider_pub, consumer_secret) -> consumerSig, hash */
static int l_countersign(lua_State *L)
{
	const uint8_t *pk = lwp_checkbytes(L, 2, WP_UPTIME_KEY_LEN);
	const uint8_t *sk = lwp_checkbytes(L, 3, WP_UPTIME_SECRET_LEN);
	struct wp_hb hb;
	int rc;

	if (checkbeat(L, 1, &hb))
		return LWP_FAIL_N;
	rc = wp_hb_countersign(&hb, pk, sk);
	if (rc == WP_EPROTO)
		return lwp_fail(L, "EPROTO", "BAD_PROVIDER_SIG: the provider signature does not "
			       "verify; refusing to countersign");
	if (rc)
		return lwp_fail_err(L, rc, "countersigning failed");
	push_bytes(L, hb.consumer_sig, SLEN);
	push_bytes(L, hb.hash, HLEN);
	return 2;
}

/* hash(packed) -> hash computed from the fields (the stored one is not read) */
static int l_hash(lua_State *L)
{
	uint8_t h[HLEN];
	struct wp_hb hb;

	if (checkbeat(L, 1, &hb))
		return LWP_FAIL_N;
	wp_hb_compute_hash(&hb, h);
	push_bytes(L, h, HLEN);
	return 1;
}

/* verify(packed, provider_pub, consumer_pub, vdf_t) -> true | false, reason */
static int l_verify(lua_State *L)
{
	const uint8_t *pk = lwp_checkbytes(L, 2, WP_UPTIME_KEY_LEN);
	const uint8_t *ck = lwp_checkbytes(L, 3, WP_UPTIME_KEY_LEN);
	uint64_t t = checkcount(L, 4);
	struct wp_hb hb;

	if (checkbeat(L, 1, &hb))
		return LWP_FAIL_N;
	return push_reason(L, wp_hb_verify(&hb, pk, ck, t));
}

/* 48-byte range records at idx into a GC-owned array (pushed). */
static struct wp_uptime_keyrange *checkranges(lua_State *L, int idx, size_t *n)
{
	size_t len;
	const uint8_t *s = (const uint8_t *)luaL_checklstring(L, idx, &len);
	struct wp_uptime_keyrange *r;

	if (len % RANGE_LEN)
		luaL_argerror(L, idx, "expected whole 48-byte key range records");
	*n = len / RANGE_LEN;
	r = lua_newuserdata(L, *n ? *n * sizeof(*r) : 1);
	for (size_t i = 0; i < *n; i++, s += RANGE_LEN) {
		r[i].first = wp_load_be64(s);
		r[i].last = wp_load_be64(s + 8);
		memcpy(r[i].key, s + 16, WP_UPTIME_KEY_LEN);
	}
	return r;
}

/*
 * verify_chain(packed, provider_ranges, consumer_ranges, vdf_t, first_sequence
 *              [, lease_id[, prev_hash]]) -> true | false, reason, index | nil, err
 */
static int l_verify_chain(lua_State *L)
{
	struct wp_hb_chain_opts o;
	struct wp_hb_chain_result res;
	struct wp_hb *beats;
	size_t n;
	int rc;

	memset(&o, 0, sizeof(o));
	o.provider = checkranges(L, 2, &o.nprovider);
	o.consumer = checkranges(L, 3, &o.nconsumer);
	o.vdf_t = checkcount(L, 4);
	o.first_sequence = checkcount(L, 5);
	o.lease_id = optbytes(L, 6, HLEN);
	o.prev_hash = optbytes(L, 7, HLEN);
	beats = checkbeats(L, 1, &n);
	if (!beats)
		return LWP_FAIL_N;
	rc = wp_hb_verify_chain(beats, n, &o, &res);
	if (rc)
		return lwp_fail_err(L, rc, "key ranges must be sorted by first and not overlap");
	if (push_reason(L, res.reason) == 1)
		return 1;
	lua_pushnumber(L, (lua_Number)res.index + 1);
	return 3;
}

/* count(packed) -> number of beats | nil, err */
static int l_count(lua_State *L)
{
	size_t n;

	if (!checkbeats(L, 1, &n))
		return LWP_FAIL_N;
	lua_pushnumber(L, (lua_Number)n);
	return 1;
}

/* ---- epochs and claims ---------------------------------------------------- */

static void push_record(lua_State *L, const struct wp_uptime_epoch *e)
{
	uint8_t rec[WP_UPTIME_EPOCH_RECORD_LEN];

	wp_uptime_epoch_record(e, rec);
	push_bytes(L, rec, sizeof(rec));
}

static void push_claim(lua_State *L, const struct wp_uptime_claim *c)
{
	uint8_t out[WP_UPTIME_CLAIM_LEN];

	wp_uptime_claim_encode(c, out);
	push_bytes(L, out, sizeof(out));
}

/* rollup(packed, prev_epoch|nil, prev_claim|nil, flags[, E, K]) -> epoch records, claims */
static int l_rollup(lua_State *L)
{
	struct wp_uptime_rollup_opts o;
	struct wp_uptime_sizes sz;
	struct wp_uptime_epoch *epochs;
	struct wp_uptime_claim *claims;
	struct wp_hb *beats;
	size_t n, ne, nc, span;
	luaL_Buffer b;
	int rc;

	memset(&o, 0, sizeof(o));
	o.prev_epoch_hash = optbytes(L, 2, HLEN);
	o.prev_claim_hash = optbytes(L, 3, HLEN);
	o.claim_flags = (uint8_t)checkcount(L, 4);
	optsizes(L, 5, &sz);
	o.sizes = &sz;
	span = (size_t)sz.epoch_beats * sz.claim_epochs;
	beats = checkbeats(L, 1, &n);
	if (!beats)
		return LWP_FAIL_N;
	if (!n)
		return lwp_fail(L, "EINVAL", "no beats to roll up");
	epochs = lua_newuserdata(L, ((n + sz.epoch_beats - 1) / sz.epoch_beats) * sizeof(*epochs));
	claims = lua_newuserdata(L, ((n + span - 1) / span) * sizeof(*claims));
	rc = wp_uptime_rollup(beats, n, &o, epochs, &ne, claims, &nc);
	if (rc)
		return lwp_fail_err(L, rc, "beats must be consecutive from a multiple of %d "
				    "(%d-epoch claims of %d-beat epochs), one lease", (int)span,
				    (int)sz.claim_epochs, (int)sz.epoch_beats);
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < ne; i++) {
		push_record(L, &epochs[i]);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < nc; i++) {
		push_claim(L, &claims[i]);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 2;
}

/* epoch_make(lease, index, hashes (n * 32 bytes), prev|nil[, E]) -> record | nil, err */
static int l_epoch_make(lua_State *L)
{
	const uint8_t *lease = lwp_checkbytes(L, 1, HLEN);
	uint64_t index = checkcount(L, 2);
	size_t len;
	const char *hs = luaL_checklstring(L, 3, &len);
	const uint8_t *prev = optbytes(L, 4, HLEN);
	struct wp_uptime_sizes sz;
	struct wp_uptime_epoch e;

	optsizes(L, 5, &sz);
	if (len % HLEN)
		luaL_argerror(L, 3, "expected whole 32-byte hashes");
	if (wp_uptime_epoch_make(&e, lease, index, (const uint8_t *)hs, (uint32_t)(len / HLEN), prev,
				 &sz))
		return lwp_fail(L, "ERANGE", "an epoch of %d-beat epochs holds 1 .. %d beats, got %d",
				(int)sz.epoch_beats, (int)sz.epoch_beats, (int)(len / HLEN));
	push_record(L, &e);
	return 1;
}

/*
 * epoch_pack(lease, index, count, root, prev[, first_sequence]) -> record | nil, err
 * (first_sequence nil: index * 60; the record must parse)
 */
static int l_epoch_pack(lua_State *L)
{
	uint8_t rec[WP_UPTIME_EPOCH_RECORD_LEN];
	struct wp_uptime_epoch e;
	uint64_t count;

	memcpy(e.lease_id, lwp_checkbytes(L, 1, HLEN), HLEN);
	e.index = checkcount(L, 2);
	count = checkcount(L, 3);
	memcpy(e.root, lwp_checkbytes(L, 4, HLEN), HLEN);
	memcpy(e.prev_hash, lwp_checkbytes(L, 5, HLEN), HLEN);
	if (!count || count > WP_UPTIME_EPOCH_BEATS)
		return lwp_fail(L, "ERANGE", "count: expected 1 .. 60");
	e.count = (uint32_t)count;
	if (lua_isnoneornil(L, 6)) {
		if (e.index > UINT64_MAX / WP_UPTIME_EPOCH_BEATS)
			return lwp_fail(L, "ERANGE", "index * 60 overflows");
		e.first_sequence = e.index * WP_UPTIME_EPOCH_BEATS;
	} else {
		e.first_sequence = checkcount(L, 6);
	}
	wp_uptime_epoch_record(&e, rec);
	if (wp_uptime_epoch_parse(&e, rec, sizeof(rec)))
		return lwp_fail(L, "EPROTO", "firstSequence must be index * E for an epoch size E "
				"in count .. 60");
	push_bytes(L, rec, sizeof(rec));
	return 1;
}

/* epoch_unpack(record) -> lease, index, first_sequence, count, root, prev, hash | nil, err */
static int l_epoch_unpack(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	struct wp_uptime_epoch e;
	int rc = wp_uptime_epoch_parse(&e, (const uint8_t *)s, len);

	if (rc)
		return lwp_fail_err(L, rc, "not an epoch record");
	push_bytes(L, e.lease_id, HLEN);
	lua_pushnumber(L, (lua_Number)e.index);
	lua_pushnumber(L, (lua_Number)e.first_sequence);
	lua_pushnumber(L, e.count);
	push_bytes(L, e.root, HLEN);
	push_bytes(L, e.prev_hash, HLEN);
	push_bytes(L, e.hash, HLEN);
	return 7;
}

/*
 * claim_make(epoch records, index, start8, end8, flags, prev|nil[, E, K])
 * -> claim (unsigned) | nil, err
 */
static int l_claim_make(lua_State *L)
{
	struct wp_uptime_claim c;
	struct wp_uptime_sizes sz;
	struct wp_uptime_epoch *es;
	uint64_t index = checkcount(L, 2), flags;
	int64_t start = checkts(L, 3), end = checkts(L, 4);
	const uint8_t *prev;
	size_t n;
	int rc;

	flags = checkcount(L, 5);
	prev = optbytes(L, 6, HLEN);
	optsizes(L, 7, &sz);
	if (index > UINT32_MAX || flags > 0xff)
		luaL_argerror(L, index > UINT32_MAX ? 2 : 5, "out of range");
	es = checkepochs(L, 1, &n);
	rc = wp_uptime_claim_make(&c, es, n, (uint32_t)index, start, end, (uint8_t)flags, prev, &sz);
	if (rc)
		return lwp_fail_err(L, rc, "epochs must be 1 .. %d consecutive linked %d-beat epochs "
				    "from index * %d, all full but the last, period_start <= period_end",
				    (int)sz.claim_epochs, (int)sz.epoch_beats, (int)sz.claim_epochs);
	push_claim(L, &c);
	return 1;
}

/*
 * claim_pack(flags, lease, index, beat_count, start8, end8, root, prev[, sig
 * [, first_sequence]]) -> claim | nil, err (the strict decoder's rules apply;
 * no sig: zero; no first_sequence: index * 1440)
 */
static int l_claim_pack(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t out[WP_UPTIME_CLAIM_LEN];
	uint64_t flags = checkcount(L, 1), index, count;
	const uint8_t *sig;

	memset(&c, 0, sizeof(c));
	memcpy(c.lease_id, lwp_checkbytes(L, 2, HLEN), HLEN);
	index = checkcount(L, 3);
	count = checkcount(L, 4);
	c.period_start = checkts(L, 5);
	c.period_end = checkts(L, 6);
	memcpy(c.root, lwp_checkbytes(L, 7, HLEN), HLEN);
	memcpy(c.prev_hash, lwp_checkbytes(L, 8, HLEN), HLEN);
	if ((sig = optbytes(L, 9, SLEN)))
		memcpy(c.sig, sig, SLEN);
	c.first_sequence = lua_isnoneornil(L, 10) ? index * WP_UPTIME_CLAIM_BEATS : checkcount(L, 10);
	if (flags > 0xff || index > UINT32_MAX || count > UINT32_MAX)
		return lwp_fail(L, "ERANGE", "flags, index or beatCount out of range");
	c.version = WP_UPTIME_CLAIM_VERSION;
	c.flags = (uint8_t)flags;
	c.index = (uint32_t)index;
	c.beat_count = (uint32_t)count;
	wp_uptime_claim_encode(&c, out);
	if (wp_uptime_claim_decode(&c, out, sizeof(out)))
		return lwp_fail(L, "EPROTO", "claim fields break the rules");
	push_bytes(L, out, sizeof(out));
	return 1;
}

/* "EPROTO: the claim is not ..." for a claim c that is not of sizes sz */
static int fail_claim_size(lua_State *L, const struct wp_uptime_claim *c,
			   const struct wp_uptime_sizes *sz)
{
	return lwp_fail(L, "EPROTO", "the claim is not one of %d-epoch claims of %d-beat epochs "
			"(index %d, firstSequence %.0f, beatCount %d; expected firstSequence "
			"index * %d, beatCount 1 .. %d)", (int)sz->claim_epochs, (int)sz->epoch_beats,
			(int)c->index, (double)c->first_sequence, (int)c->beat_count,
			(int)(sz->claim_epochs * sz->epoch_beats),
			(int)(sz->claim_epochs * sz->epoch_beats));
}

/*
 * claim_unpack(claim[, E, K]) -> version, flags, lease, index, first_sequence,
 * beat_count, start8, end8, root, prev, sig, hash, epochs | nil, err
 * (no sizes: any sizes' claim decodes and epochs counts 60-beat epochs;
 * sizes: the claim must be of exactly those sizes)
 */
static int l_claim_unpack(lua_State *L)
{
	struct wp_uptime_claim c;
	struct wp_uptime_sizes sz;
	int strict = !lua_isnoneornil(L, 2) || !lua_isnoneornil(L, 3);
	uint8_t h[HLEN];

	optsizes(L, 2, &sz);
	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	if (strict && wp_uptime_claim_check_size(&c, &sz))
		return fail_claim_size(L, &c, &sz);
	lua_pushnumber(L, c.version);
	lua_pushnumber(L, c.flags);
	push_bytes(L, c.lease_id, HLEN);
	lua_pushnumber(L, c.index);
	lua_pushnumber(L, (lua_Number)c.first_sequence);
	lua_pushnumber(L, c.beat_count);
	push_u64(L, (uint64_t)c.period_start);
	push_u64(L, (uint64_t)c.period_end);
	push_bytes(L, c.root, HLEN);
	push_bytes(L, c.prev_hash, HLEN);
	push_bytes(L, c.sig, SLEN);
	wp_uptime_claim_hash(&c, h);
	push_bytes(L, h, HLEN);
	lua_pushnumber(L, (lua_Number)wp_uptime_claim_epochs(&c, &sz));
	return 13;
}

/* claim_hash(claim) -> hash | nil, err */
static int l_claim_hash(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t h[HLEN];

	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	wp_uptime_claim_hash(&c, h);
	push_bytes(L, h, HLEN);
	return 1;
}

/* claim_sign(claim, provider_secret) -> signed claim | nil, err */
static int l_claim_sign(lua_State *L)
{
	const uint8_t *sk = lwp_checkbytes(L, 2, WP_UPTIME_SECRET_LEN);
	struct wp_uptime_claim c;
	int rc;

	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	rc = wp_uptime_claim_sign(&c, sk);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	push_claim(L, &c);
	return 1;
}

/* claim_verify(claim, provider_pub) -> boolean | nil, err */
static int l_claim_verify(lua_State *L)
{
	const uint8_t *pk = lwp_checkbytes(L, 2, WP_UPTIME_KEY_LEN);
	struct wp_uptime_claim c;

	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	lua_pushboolean(L, wp_uptime_claim_verify(&c, pk));
	return 1;
}

/* claim_countersign(claim, consumer_secret) -> sig | nil, err */
static int l_claim_countersign(lua_State *L)
{
	const uint8_t *sk = lwp_checkbytes(L, 2, WP_UPTIME_SECRET_LEN);
	struct wp_uptime_claim c;
	uint8_t sig[SLEN];
	int rc;

	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	rc = wp_uptime_claim_countersign(&c, sk, sig);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	push_bytes(L, sig, SLEN);
	return 1;
}

/* claim_verify_countersign(claim, consumer_pub, sig) -> boolean | nil, err */
static int l_claim_verify_countersign(lua_State *L)
{
	const uint8_t *pk = lwp_checkbytes(L, 2, WP_UPTIME_KEY_LEN);
	const uint8_t *sig = lwp_checkbytes(L, 3, SLEN);
	struct wp_uptime_claim c;

	if (checkclaim(L, 1, &c))
		return LWP_FAIL_N;
	lua_pushboolean(L, wp_uptime_claim_verify_countersign(&c, pk, sig));
	return 1;
}

/* ---- disclosure proofs ------------------------------------------------------ */

/* proof_make(packed beats, i, epoch records, claim[, E, K]) -> proof | nil, err */
static int l_proof_make(lua_State *L)
{
	uint8_t out[WP_UPTIME_PROOF_MAX];
	struct wp_uptime_proof *p;
	struct wp_uptime_claim c;
	struct wp_uptime_sizes sz;
	struct wp_uptime_epoch *es;
	struct wp_hb *beats;
	uint64_t i = checkcount(L, 2);
	size_t n, ne, start, pos, elo = 0, cnt = 0, len, nce;
	int rc;

	optsizes(L, 5, &sz);
	es = checkepochs(L, 3, &ne);
	if (checkclaim(L, 4, &c))
		return LWP_FAIL_N;
	if (wp_uptime_claim_check_size(&c, &sz))
		return fail_claim_size(L, &c, &sz);
	beats = checkbeats(L, 1, &n);
	if (!beats)
		return LWP_FAIL_N;
	if (i < 1 || i > n)
		return lwp_fail(L, "ERANGE", "beat index out of range 1 .. %d", (int)n);
	/* the beats of the beat's epoch, located by sequence within the array */
	i--;
	pos = beats[i].sequence % sz.epoch_beats;
	if (pos > i)
		return lwp_fail(L, "ERANGE", "the beats do not reach back to the epoch's first beat");
	start = i - pos;
	nce = wp_uptime_claim_epochs(&c, &sz);
	for (size_t k = 0; k < ne; k++)
		if (es[k].index == (uint64_t)c.index * sz.claim_epochs) {
			elo = k;
			break;
		}
	if (ne - elo < nce)
		return lwp_fail(L, "ERANGE", "the epochs do not cover the claim");
	for (size_t k = elo; k < elo + nce; k++) {
		if (wp_uptime_epoch_check_size(&es[k], &sz))
			return lwp_fail(L, "EPROTO", "epoch %d (index %.0f, firstSequence %.0f, count %d) "
					"is not a %d-beat epoch", (int)(k + 1), (double)es[k].index,
					(double)es[k].first_sequence, (int)es[k].count,
					(int)sz.epoch_beats);
		if (es[k].index == beats[i].sequence / sz.epoch_beats)
			cnt = es[k].count;
	}
	if (!cnt || start + cnt > n)
		return lwp_fail(L, "ERANGE", "the beat's epoch is not in the claim, or its beats "
				"are not all given");
	p = lua_newuserdata(L, sizeof(*p));
	rc = wp_uptime_proof_make(p, beats + start, cnt, pos, es + elo, nce, &c, &sz);
	if (rc)
		return lwp_fail_err(L, rc, "beats, epochs and claim do not belong together");
	wp_uptime_proof_encode(p, out, &len);
	push_bytes(L, out, len);
	return 1;
}

/*
 * proof_unpack(proof) -> packed beat (hash computed), epoch record, epoch
 * path, claim path, claim, E, K (the proof's sizes)
 */
static int l_proof_unpack(lua_State *L)
{
	struct wp_uptime_proof *p = lua_newuserdata(L, sizeof(*p));
	uint8_t out[WP_HB_PACKED_FIXED + WP_HB_EXT_MAX];

	if (checkproof(L, 1, p))
		return LWP_FAIL_N;
	wp_hb_compute_hash(&p->beat, p->beat.hash);
	push_bytes(L, out, wp_hb_pack(&p->beat, out));
	push_record(L, &p->epoch);
	push_bytes(L, p->epoch_path, p->epoch_path_len * HLEN);
	push_bytes(L, p->claim_path, p->claim_path_len * HLEN);
	push_claim(L, &p->claim);
	lua_pushnumber(L, p->sizes.epoch_beats);
	lua_pushnumber(L, p->sizes.claim_epochs);
	return 7;
}

/*
 * proof_verify(proof, provider_pub, consumer_pub, claim_pub, vdf_t[, E, K])
 * -> true | false, reason | nil, err (a proof made for other sizes than
 * E, K is nil, "EPROTO: ...")
 */
static int l_proof_verify(lua_State *L)
{
	const uint8_t *pk = lwp_checkbytes(L, 2, WP_UPTIME_KEY_LEN);
	const uint8_t *ck = lwp_checkbytes(L, 3, WP_UPTIME_KEY_LEN);
	const uint8_t *sk = lwp_checkbytes(L, 4, WP_UPTIME_KEY_LEN);
	uint64_t t = checkcount(L, 5);
	struct wp_uptime_sizes sz;
	struct wp_uptime_proof *p;

	optsizes(L, 6, &sz);
	p = lua_newuserdata(L, sizeof(*p));
	if (checkproof(L, 1, p))
		return LWP_FAIL_N;
	if (p->sizes.epoch_beats != sz.epoch_beats || p->sizes.claim_epochs != sz.claim_epochs)
		return lwp_fail(L, "EPROTO", "the proof is for %d-epoch claims of %d-beat epochs, "
				"expected %d-epoch claims of %d-beat epochs (the lease's sizes)",
				(int)p->sizes.claim_epochs, (int)p->sizes.epoch_beats,
				(int)sz.claim_epochs, (int)sz.epoch_beats);
	return push_reason(L, wp_uptime_proof_verify(p, pk, ck, sk, t, &sz));
}

/* ---- VDF blocks ------------------------------------------------------------ */

/* vdf_make(prev_hash, T) -> V | nil, err (blocks for the delay) */
static int l_vdf_make(lua_State *L)
{
	const uint8_t *prev = lwp_checkbytes(L, 1, HLEN);
	uint64_t t = checkcount(L, 2);
	uint8_t v[WP_HB_VDF_LEN];
	int rc;

	if (!t)
		return lwp_fail(L, "ERANGE", "T must be an integer >= 1");
	rc = wp_hb_vdf_make(v, prev, t);
	if (rc)
		return lwp_fail_err(L, rc, "VDF evaluation failed");
	push_bytes(L, v, sizeof(v));
	return 1;
}

/* vdf_unpack(V) -> t, y, proof | nil, err */
static int l_vdf_unpack(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const uint8_t *y, *pi;
	uint64_t t;

	if (wp_hb_vdf_decode((const uint8_t *)s, len, &t, &y, &pi))
		return lwp_fail(L, "EINVAL", "not a VDF block (528 bytes, tag WP-VDF01)");
	lua_pushnumber(L, (lua_Number)t);
	push_bytes(L, y, 256);
	push_bytes(L, pi, 256);
	return 3;
}

/* ---- rotation records and attestations ----------------------------------- */

/*
 * rotation_pack(lease, party, index, new_key, effective_kind, effective8,
 *               prev, reason) -> canonical bytes, record hash
 * (party, kind and reason are the WP_UPTIME_* codes, checked by the caller)
 */
static int l_rotation_pack(lua_State *L)
{
	struct wp_uptime_rotation r;
	uint8_t b[WP_UPTIME_ROTATION_LEN], h[HLEN];
	uint64_t party, index, kind, reason;

	memcpy(r.lease_id, lwp_checkbytes(L, 1, HLEN), HLEN);
	party = checkcount(L, 2);
	index = checkcount(L, 3);
	memcpy(r.new_key, lwp_checkbytes(L, 4, WP_UPTIME_KEY_LEN), WP_UPTIME_KEY_LEN);
	kind = checkcount(L, 5);
	r.effective = wp_load_be64(lwp_checkbytes(L, 6, 8));
	memcpy(r.prev_hash, lwp_checkbytes(L, 7, HLEN), HLEN);
	reason = checkcount(L, 8);
	if (party > 0xff || index > UINT32_MAX || kind > 0xff || reason > 0xff)
		luaL_error(L, "rotation_pack: party, index, kind or reason out of range");
	r.party = (uint8_t)party;
	r.index = (uint32_t)index;
	r.effective_kind = (uint8_t)kind;
	r.reason = (uint8_t)reason;
	wp_uptime_rotation_bytes(&r, b);
	wp_uptime_rotation_hash(&r, h);
	push_bytes(L, b, sizeof(b));
	push_bytes(L, h, HLEN);
	return 2;
}

/* attestation_digest(lease, ts8) -> 32 bytes */
static int l_attestation_digest(lua_State *L)
{
	const uint8_t *lease = lwp_checkbytes(L, 1, HLEN);
	uint8_t d[HLEN];

	wp_uptime_attestation_digest(lease, (uint64_t)checkts(L, 2), d);
	push_bytes(L, d, HLEN);
	return 1;
}

static void set_num(lua_State *L, const char *name, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, name);
}

void lwp_open_uptime(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "beat_pack", l_beat_pack },
		{ "beat_unpack", l_beat_unpack },
		{ "payload", l_payload },
		{ "sign", l_sign },
		{ "countersign", l_countersign },
		{ "hash", l_hash },
		{ "verify", l_verify },
		{ "verify_chain", l_verify_chain },
		{ "count", l_count },
		{ "rollup", l_rollup },
		{ "epoch_make", l_epoch_make },
		{ "epoch_pack", l_epoch_pack },
		{ "epoch_unpack", l_epoch_unpack },
		{ "claim_make", l_claim_make },
		{ "claim_pack", l_claim_pack },
		{ "claim_unpack", l_claim_unpack },
		{ "claim_hash", l_claim_hash },
		{ "claim_sign", l_claim_sign },
		{ "claim_verify", l_claim_verify },
		{ "claim_countersign", l_claim_countersign },
		{ "claim_verify_countersign", l_claim_verify_countersign },
		{ "proof_make", l_proof_make },
		{ "proof_unpack", l_proof_unpack },
		{ "proof_verify", l_proof_verify },
		{ "vdf_make", l_vdf_make },
		{ "vdf_unpack", l_vdf_unpack },
		{ "rotation_pack", l_rotation_pack },
		{ "attestation_digest", l_attestation_digest },
		{ NULL, NULL },
	};

	lwp_subtable(L, "uptime", fns);
	lua_getfield(L, -1, "uptime");
	set_num(L, "EPOCH_BEATS", WP_UPTIME_EPOCH_BEATS);
	set_num(L, "CLAIM_EPOCHS", WP_UPTIME_CLAIM_EPOCHS);
	set_num(L, "CLAIM_BEATS", WP_UPTIME_CLAIM_BEATS);
	set_num(L, "CLAIM_LEN", WP_UPTIME_CLAIM_LEN);
	set_num(L, "CLAIM_VERSION", WP_UPTIME_CLAIM_VERSION);
	set_num(L, "CLAIM_FLAG_VDF", WP_UPTIME_CLAIM_FLAG_VDF);
	set_num(L, "EPOCH_RECORD_LEN", WP_UPTIME_EPOCH_RECORD_LEN);
	set_num(L, "ROTATION_LEN", WP_UPTIME_ROTATION_LEN);
	set_num(L, "PACKED_LEN", WP_HB_PACKED_FIXED);
	set_num(L, "VDF_BLOCK_LEN", WP_HB_VDF_LEN);
	set_num(L, "PROVIDER", WP_UPTIME_PARTY_PROVIDER);
	set_num(L, "CONSUMER", WP_UPTIME_PARTY_CONSUMER);
	set_num(L, "EFFECTIVE_SEQUENCE", WP_UPTIME_EFFECTIVE_SEQUENCE);
	set_num(L, "EFFECTIVE_TIMESTAMP", WP_UPTIME_EFFECTIVE_TIMESTAMP);
	set_num(L, "ROTATE_SCHEDULED", WP_UPTIME_ROTATE_SCHEDULED);
	set_num(L, "ROTATE_MANUAL", WP_UPTIME_ROTATE_MANUAL);
	set_num(L, "ROTATE_FORCED", WP_UPTIME_ROTATE_FORCED);
	lua_createtable(L, WP_HB_REASON_COUNT - 1, 0);
	for (int i = 1; i < WP_HB_REASON_COUNT; i++) {
		lua_pushstring(L, wp_hb_reason_name(i));
		lua_rawseti(L, -2, i);
	}
	lua_setfield(L, -2, "reasons");
	lua_pop(L, 1);
}
