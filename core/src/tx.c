/* SPDX-License-Identifier: MIT */
/*
 * Ethereum transactions: legacy / EIP-155, EIP-2930, EIP-1559 encoding,
 * signing, strict decoding and sender recovery. See tx.h.
 */
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/eth.h"
#include "workproof/hash.h"
#include "workproof/rlp.h"
#include "workproof/secp256k1.h"
#include "workproof/tx.h"

/* ---- encoding ------------------------------------------------------------ */

static int put_int(struct wp_buf *b, const struct wp_tx_int *x)
{
	size_t i = 0;

	if (x->len && !x->be)
		return WP_EINVAL;
	while (i < x->len && x->be[i] == 0)
		i++;
	if (x->len - i > 32)
		return WP_ERANGE;
	return wp_rlp_put_string(b, x->len ? x->be + i : NULL, x->len - i);
}

/* A big-endian integer of at most 8 significant bytes as uint64. */
static int int_u64(const struct wp_tx_int *x, uint64_t *v)
{
	uint64_t acc = 0;
	size_t i = 0;

	if (x->len && !x->be)
		return WP_EINVAL;
	while (i < x->len && x->be[i] == 0)
		i++;
	if (x->len - i > 8)
		return WP_ERANGE;
	for (; i < x->len; i++)
		acc = acc << 8 | x->be[i];
	*v = acc;
	return WP_OK;
}

static int put_access_list(struct wp_buf *b, const struct wp_tx *tx)
{
	size_t outer, entry, keys;
	int rc;

	if (tx->access_len && !tx->access_list)
		return WP_EINVAL;
	wp_rlp_list_begin(b, &outer);
	for (size_t i = 0; i < tx->access_len; i++) {
		const struct wp_tx_access *a = &tx->access_list[i];

		if (!a->address || (a->nkeys && !a->keys))
			return WP_EINVAL;
		wp_rlp_list_begin(b, &entry);
		if ((rc = wp_rlp_put_string(b, a->address, 20)))
			return rc;
		wp_rlp_list_begin(b, &keys);
		for (size_t k = 0; k < a->nkeys; k++)
			if ((rc = wp_rlp_put_string(b, a->keys + 32 * k, 32)))
				return rc;
		if ((rc = wp_rlp_list_end(b, keys)) || (rc = wp_rlp_list_end(b, entry)))
			return rc;
	}
	return wp_rlp_list_end(b, outer);
}

/* with_sig: 0 = signing payload, 1 = signed encoding */
static int encode(struct wp_buf *b, const struct wp_tx *tx, int with_sig)
{
	size_t mark = b->len, list;
	uint64_t chain = 0;
	int rc = WP_OK;

	if (tx->data_len && !tx->data)
		return WP_EINVAL;
	switch (tx->type) {
	case WP_TX_LEGACY:
		if (tx->has_chain_id) {
			if ((rc = int_u64(&tx->chain_id, &chain)))
				return rc;
			if (chain > WP_TX_LEGACY_MAX_CHAIN_ID)
				return WP_ERANGE;
		}
		break;
	case WP_TX_EIP2930:
	case WP_TX_EIP1559:
		rc = wp_buf_push(b, (uint8_t)tx->type);
		break;
	default:
		return WP_EINVAL;
	}
	if (rc)
		return rc;
	wp_rlp_list_begin(b, &list);
	if (tx->type != WP_TX_LEGACY)
		rc = put_int(b, &tx->chain_id);
	rc = rc ? rc : put_int(b, &tx->nonce);
	if (tx->type == WP_TX_EIP1559) {
		rc = rc ? rc : put_int(b, &tx->max_priority_fee);
		rc = rc ? rc : put_int(b, &tx->max_fee);
	} else {
		rc = rc ? rc : put_int(b, &tx->gas_price);
	}
	rc = rc ? rc : put_int(b, &tx->gas);
	rc = rc ? rc : wp_rlp_put_string(b, tx->to, tx->to ? 20 : 0);
	rc = rc ? rc : put_int(b, &tx->value);
	rc = rc ? rc : wp_rlp_put_string(b, tx->data, tx->data_len);
	if (tx->type != WP_TX_LEGACY)
		rc = rc ? rc : put_access_list(b, tx);
	if (with_sig) {
		if (tx->y_parity > 1)
			rc = rc ? rc : WP_EINVAL;
		if (tx->type == WP_TX_LEGACY)
			rc = rc ? rc : wp_rlp_put_uint(b, tx->has_chain_id ?
						      chain * 2 + 35 + tx->y_parity :
						      27 + tx->y_parity);
		else
			rc = rc ? rc : wp_rlp_put_uint(b, tx->y_parity);
		rc = rc ? rc : put_int(b, &tx->r);
		rc = rc ? rc : put_int(b, &tx->s);
	} else if (tx->type == WP_TX_LEGACY && tx->has_chain_id) {
		/* EIP-155: chainId, 0, 0 in place of v, r, s */
		rc = rc ? rc : wp_rlp_put_uint(b, chain);
		rc = rc ? rc : wp_rlp_put_uint(b, 0);
		rc = rc ? rc : wp_rlp_put_uint(b, 0);
	}
	rc = rc ? rc : wp_rlp_list_end(b, list);
	if (rc)
		b->len = mark;
	return rc;
}

int wp_tx_encode_unsigned(struct wp_buf *b, const struct wp_tx *tx)
{
	return encode(b, tx, 0);
}

int wp_tx_encode_signed(struct wp_buf *raw, const struct wp_tx *tx)
{
	return encode(raw, tx, 1);
}

int wp_tx_signing_hash(uint8_t hash[32], const struct wp_tx *tx)
{
	struct wp_buf b = WP_BUF_INIT;
	int rc = encode(&b, tx, 0);

	if (!rc)
		wp_keccak256(b.data, b.len, hash);
	wp_buf_free(&b);
	return rc;
}

int wp_tx_sign(struct wp_buf *raw, uint8_t hash[32], const struct wp_tx *tx,
	       const uint8_t secret[32])
{
	uint8_t h[32], sig[65];
	struct wp_tx signed_tx;
	size_t mark = raw->len;
	int rc = wp_tx_signing_hash(h, tx);

	if (rc)
		return rc;
	if ((rc = wp_secp256k1_sign(sig, h, secret)))
		return rc;
	signed_tx = *tx;
	signed_tx.y_parity = sig[64];
	signed_tx.r = (struct wp_tx_int){ sig, 32 };
	signed_tx.s = (struct wp_tx_int){ sig + 32, 32 };
	if ((rc = encode(raw, &signed_tx, 1)))
		return rc;
	if (hash)
		wp_keccak256(raw->data + mark, raw->len - mark, hash);
	return WP_OK;
}

/* ---- decoding ------------------------------------------------------------ */

enum field {
	F_INT,      /* integer, up to 32 bytes */
	F_INT8,     /* integer, up to 8 bytes (nonce, gas) */
	F_TO,       /* empty or 20 bytes */
	F_DATA,     /* any string */
	F_ACCESS,   /* access list */
	F_YPAR,     /* 0 or 1 */
	F_V,        /* legacy v */
	F_SIG,      /* r or s: non-zero integer */
};

struct slot {
	enum field kind;
	size_t off;   /* offsetof the target in struct wp_tx (ints, data) */
};

#define INT_SLOT(kind, field) { kind, offsetof(struct wp_tx, field) }

static const struct slot legacy_slots[] = {
	INT_SLOT(F_INT8, nonce), INT_SLOT(F_INT, gas_price), INT_SLOT(F_INT8, gas),
	{ F_TO, 0 }, INT_SLOT(F_INT, value), { F_DATA, 0 },
	INT_SLOT(F_V, v), INT_SLOT(F_SIG, r), INT_SLOT(F_SIG, s),
};
static const struct slot eip2930_slots[] = {
	INT_SLOT(F_INT, chain_id), INT_SLOT(F_INT8, nonce), INT_SLOT(F_INT, gas_price),
	INT_SLOT(F_INT8, gas), { F_TO, 0 }, INT_SLOT(F_INT, value), { F_DATA, 0 },
	{ F_ACCESS, 0 }, { F_YPAR, 0 }, INT_SLOT(F_SIG, r), INT_SLOT(F_SIG, s),
};
static const struct slot eip1559_slots[] = {
	INT_SLOT(F_INT, chain_id), INT_SLOT(F_INT8, nonce),
	INT_SLOT(F_INT, max_priority_fee), INT_SLOT(F_INT, max_fee),
	INT_SLOT(F_INT8, gas), { F_TO, 0 }, INT_SLOT(F_INT, value), { F_DATA, 0 },
	{ F_ACCESS, 0 }, { F_YPAR, 0 }, INT_SLOT(F_SIG, r), INT_SLOT(F_SIG, s),
};

struct derr {
	size_t pos;
	const char *why;
};

static int derror(struct derr *e, int rc, size_t pos, const char *why)
{
	e->pos = pos;
	e->why = why;
	return rc;
}

static int read_fail(struct derr *e, const struct wp_rlp_reader *r, int ev, size_t base)
{
	return derror(e, ev, base + r->err_offset, r->err_reason);
}

/*
 * Walk an access list whose LIST event was just read from r, checking its
 * shape; count entries and keys, and fill `out` (keys copied to `keys`)
 * when it is not NULL.
 */
static int access_list(struct wp_rlp_reader *r, struct derr *e, size_t base,
		       struct wp_tx_access *out, uint8_t *keys,
		       size_t *nentries, size_t *nkeys)
{
	struct wp_rlp_item it;
	size_t ne = 0, nk = 0;
	int ev;

	for (;;) {
		ev = wp_rlp_read(r, &it);
		if (ev < 0)
			return read_fail(e, r, ev, base);
		if (ev == WP_RLP_END)
			break;
		if (ev != WP_RLP_LIST)
			return derror(e, WP_EINVAL, base + it.offset,
				      "access list entry is not a list");
		ev = wp_rlp_read(r, &it);
		if (ev < 0)
			return read_fail(e, r, ev, base);
		if (ev != WP_RLP_STRING || it.len != 20)
			return derror(e, WP_EINVAL, base + (ev == WP_RLP_END ? r->pos : it.offset),
				      "access list address is not 20 bytes");
		if (out) {
			out[ne].address = it.payload;
			out[ne].keys = keys + 32 * nk;
			out[ne].nkeys = 0;
		}
		ev = wp_rlp_read(r, &it);
		if (ev < 0)
			return read_fail(e, r, ev, base);
		if (ev != WP_RLP_LIST)
			return derror(e, WP_EINVAL, base + (ev == WP_RLP_END ? r->pos : it.offset),
				      "access list storage keys are not a list");
		for (;;) {
			ev = wp_rlp_read(r, &it);
			if (ev < 0)
				return read_fail(e, r, ev, base);
			if (ev == WP_RLP_END)
				break;
			if (ev != WP_RLP_STRING || it.len != 32)
				return derror(e, WP_EINVAL, base + it.offset,
					      "storage key is not 32 bytes");
			if (out) {
				memcpy(keys + 32 * nk, it.payload, 32);
				out[ne].nkeys++;
			}
			nk++;
		}
		ev = wp_rlp_read(r, &it);
		if (ev < 0)
			return read_fail(e, r, ev, base);
		if (ev != WP_RLP_END)
			return derror(e, WP_EINVAL, base + it.offset,
				      "access list entry has more than 2 items");
		ne++;
	}
	*nentries = ne;
	*nkeys = nk;
	return WP_OK;
}

static int check_int(struct derr *e, const struct wp_rlp_item *it, size_t base, size_t max)
{
	if (it->len > max)
		return derror(e, WP_ERANGE, base + it->offset, "integer too large");
	if (it->len && it->payload[0] == 0)
		return derror(e, WP_EINVAL, base + it->offset, "integer with a leading zero");
	return WP_OK;
}

static int decode_fields(struct wp_tx *tx, const uint8_t *in, size_t len, size_t base,
			 const struct slot *slots, size_t nslots, struct derr *e)
{
	struct wp_rlp_reader *r = malloc(sizeof(*r));
	struct wp_rlp_item it;
	const uint8_t *al = NULL;
	size_t al_len = 0, ne = 0, nk = 0;
	int ev, rc = WP_OK;

	if (!r)
		return WP_ENOMEM;
	wp_rlp_reader_init(r, in, len);
	ev = wp_rlp_read(r, &it);
	if (ev < 0) {
		rc = read_fail(e, r, ev, base);
		goto out;
	}
	if (ev != WP_RLP_LIST) {
		rc = derror(e, WP_EINVAL, base, "transaction is not an RLP list");
		goto out;
	}
	for (size_t i = 0; i < nslots; i++) {
		const struct slot *s = &slots[i];
		struct wp_tx_int *target = (struct wp_tx_int *)((char *)tx + s->off);

		ev = wp_rlp_read(r, &it);
		if (ev < 0) {
			rc = read_fail(e, r, ev, base);
			goto out;
		}
		if (ev == WP_RLP_END) {
			rc = derror(e, WP_EINVAL, base + r->pos, "too few transaction fields");
			goto out;
		}
		if (s->kind == F_ACCESS) {
			if (ev != WP_RLP_LIST) {
				rc = derror(e, WP_EINVAL, base + it.offset, "access list is not a list");
				goto out;
			}
			al = in + it.offset;
			al_len = it.header + it.len;
			if ((rc = access_list(r, e, base, NULL, NULL, &ne, &nk)))
				goto out;
			continue;
		}
		if (ev != WP_RLP_STRING) {
			rc = derror(e, WP_EINVAL, base + it.offset, "transaction field is a list");
			goto out;
		}
		switch (s->kind) {
		case F_INT:
		case F_INT8:
		case F_SIG:
			rc = check_int(e, &it, base, s->kind == F_INT8 ? 8 : 32);
			if (!rc && s->kind == F_SIG && it.len == 0)
				rc = derror(e, WP_EINVAL, base + it.offset, "signature value is zero");
			if (rc)
				goto out;
			target->be = it.payload;
			target->len = it.len;
			break;
		case F_TO:
			if (it.len != 0 && it.len != 20) {
				rc = derror(e, WP_EINVAL, base + it.offset,
					    "recipient is neither empty nor 20 bytes");
				goto out;
			}
			tx->to = it.len ? it.payload : NULL;
			break;
		case F_DATA:
			tx->data = it.payload;
			tx->data_len = it.len;
			break;
		case F_YPAR:
			if (it.len > 1 || (it.len == 1 && it.payload[0] != 1)) {
				rc = derror(e, WP_EINVAL, base + it.offset, "yParity is neither 0 nor 1");
				goto out;
			}
			tx->y_parity = it.len;
			break;
		case F_V: {
			uint64_t v = 0;

			if ((rc = check_int(e, &it, base, 8)))
				goto out;
			for (size_t k = 0; k < it.len; k++)
				v = v << 8 | it.payload[k];
			tx->v.be = it.payload;
			tx->v.len = it.len;
			if (v == 27 || v == 28) {
				tx->has_chain_id = 0;
				tx->y_parity = (unsigned)(v - 27);
			} else if (v >= 37) {
				uint64_t c = (v - 35) / 2;
				size_t n = 0;

				tx->has_chain_id = 1;
				tx->y_parity = (unsigned)((v - 35) & 1);
				for (int k = 7; k >= 0; k--) {
					tx->chain_id_buf[k] = (uint8_t)c;
					c >>= 8;
				}
				while (n < 8 && tx->chain_id_buf[n] == 0)
					n++;
				tx->chain_id.be = tx->chain_id_buf + n;
				tx->chain_id.len = 8 - n;
			} else {
				rc = derror(e, WP_EINVAL, base + it.offset,
					    "legacy v is neither 27/28 nor EIP-155");
				goto out;
			}
			break;
		}
		default:
			break;
		}
	}
	ev = wp_rlp_read(r, &it);
	if (ev == WP_RLP_END)
		ev = wp_rlp_read(r, &it);
	else if (ev > 0) {
		rc = derror(e, WP_EINVAL, base + it.offset, "too many transaction fields");
		goto out;
	}
	if (ev < 0) {
		rc = read_fail(e, r, ev, base);
		goto out;
	}
	if (ev != WP_RLP_DONE) {
		rc = derror(e, WP_EINVAL, base + r->pos, "bytes after the transaction");
		goto out;
	}
	if (ne) {
		/* second walk over the access list alone, filling one block */
		size_t n1, n2;
		uint8_t *keys;

		tx->owned_access = malloc(ne * sizeof(struct wp_tx_access) + nk * 32);
		if (!tx->owned_access) {
			rc = WP_ENOMEM;
			goto out;
		}
		keys = (uint8_t *)(tx->owned_access + ne);
		wp_rlp_reader_init(r, al, al_len);
		ev = wp_rlp_read(r, &it);
		rc = access_list(r, e, base + (size_t)(al - in), tx->owned_access, keys, &n1, &n2);
		if (!rc && (n1 != ne || n2 != nk))
			rc = derror(e, WP_EINVAL, base, "access list changed between walks");
		if (rc)
			goto out;
		tx->access_list = tx->owned_access;
		tx->access_len = ne;
	}
out:
	free(r);
	return rc;
}

int wp_tx_decode(struct wp_tx *tx, const uint8_t *raw, size_t len,
		 size_t *errpos, const char **why)
{
	struct derr e = { 0, NULL };
	int rc;

	memset(tx, 0, sizeof(*tx));
	if (len == 0) {
		rc = derror(&e, WP_ETRUNC, 0, "empty transaction");
	} else if (raw[0] >= 0xc0) {
		tx->type = WP_TX_LEGACY;
		rc = decode_fields(tx, raw, len, 0, legacy_slots,
				   sizeof(legacy_slots) / sizeof(legacy_slots[0]), &e);
	} else if (raw[0] == WP_TX_EIP2930) {
		tx->type = WP_TX_EIP2930;
		rc = decode_fields(tx, raw + 1, len - 1, 1, eip2930_slots,
				   sizeof(eip2930_slots) / sizeof(eip2930_slots[0]), &e);
	} else if (raw[0] == WP_TX_EIP1559) {
		tx->type = WP_TX_EIP1559;
		rc = decode_fields(tx, raw + 1, len - 1, 1, eip1559_slots,
				   sizeof(eip1559_slots) / sizeof(eip1559_slots[0]), &e);
	} else {
		rc = derror(&e, WP_EINVAL, 0, "unsupported transaction type");
	}
	if (rc) {
		wp_tx_clear(tx);
		memset(tx, 0, sizeof(*tx));
		if (errpos)
			*errpos = e.pos;
		if (why)
			*why = e.why ? e.why : "malformed transaction";
	}
	return rc;
}

void wp_tx_clear(struct wp_tx *tx)
{
	free(tx->owned_access);
	tx->owned_access = NULL;
	tx->access_list = NULL;
	tx->access_len = 0;
}

int wp_tx_sender(uint8_t addr[20], const struct wp_tx *tx)
{
	uint8_t h[32], sig[65], pub[65];
	int rc;

	if (tx->r.len > 32 || tx->s.len > 32 || tx->y_parity > 1)
		return WP_ERANGE;
	if ((rc = wp_tx_signing_hash(h, tx)))
		return rc;
	memset(sig, 0, 64);
	if (tx->r.len)
		memcpy(sig + 32 - tx->r.len, tx->r.be, tx->r.len);
	if (tx->s.len)
		memcpy(sig + 64 - tx->s.len, tx->s.be, tx->s.len);
	sig[64] = (uint8_t)tx->y_parity;
	rc = wp_secp256k1_recover(pub, h, sig, WP_SECP256K1_STRICT);
	if (rc)
		return rc;
	return wp_eth_address(addr, pub);
}
