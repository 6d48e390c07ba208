/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "workproof/common.h"
#include "workproof/rlp.h"

#define RLP_STRING_BASE 0x80
#define RLP_LIST_BASE 0xc0
/* Payloads up to this length have their length in the prefix byte. */
#define RLP_SHORT_MAX 55

/* ---- encoding ------------------------------------------------------------ */

size_t wp_rlp_uint_bytes(uint64_t v, uint8_t out[8])
{
	size_t n = 0;

	for (uint64_t t = v; t; t >>= 8)
		n++;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return n;
}

static size_t header_len(size_t payload_len)
{
	uint8_t tmp[8];

	if (payload_len <= RLP_SHORT_MAX)
		return 1;
	return 1 + wp_rlp_uint_bytes(payload_len, tmp);
}

static size_t write_header(uint8_t *out, uint8_t base, size_t payload_len)
{
	uint8_t be[8];
	size_t k;

	if (payload_len <= RLP_SHORT_MAX) {
		out[0] = (uint8_t)(base + payload_len);
		return 1;
	}
	k = wp_rlp_uint_bytes(payload_len, be);
	out[0] = (uint8_t)(base + RLP_SHORT_MAX + k);
	memcpy(out + 1, be, k);
	return 1 + k;
}

/* A single byte below 0x80 is its own encoding, with no header. */
static int is_bare_byte(const void *s, size_t n)
{
	return n == 1 && ((const uint8_t *)s)[0] < RLP_STRING_BASE;
}

size_t wp_rlp_string_len(const void *s, size_t n)
{
	return is_bare_byte(s, n) ? 1 : header_len(n) + n;
}

size_t wp_rlp_list_header_len(size_t payload_len)
{
	return header_len(payload_len);
}

size_t wp_rlp_write_string(uint8_t *out, const void *s, size_t n)
{
	size_t h;

	if (is_bare_byte(s, n)) {
		out[0] = ((const uint8_t *)s)[0];
		return 1;
	}
	h = write_header(out, RLP_STRING_BASE, n);
	if (n)
		memcpy(out + h, s, n);
	return h + n;
}

size_t wp_rlp_write_list_header(uint8_t *out, size_t payload_len)
{
	return write_header(out, RLP_LIST_BASE, payload_len);
}

int wp_rlp_put_string(struct wp_buf *b, const void *s, size_t n)
{
	size_t need;
	int rc;

	if (n > SIZE_MAX - WP_RLP_MAX_HEADER)
		return WP_ENOMEM;
	need = wp_rlp_string_len(s, n);
	rc = wp_buf_reserve(b, need);
	if (rc)
		return rc;
	b->len += wp_rlp_write_string(b->data + b->len, s, n);
	return WP_OK;
}

int wp_rlp_put_uint(struct wp_buf *b, uint64_t v)
{
	uint8_t be[8];
	size_t n = wp_rlp_uint_bytes(v, be);

	return wp_rlp_put_string(b, be, n);
}

int wp_rlp_list_begin(struct wp_buf *b, size_t *mark)
{
	*mark = b->len;
	return WP_OK;
}

int wp_rlp_list_end(struct wp_buf *b, size_t mark)
{
	size_t payload, h;
	int rc;

	if (mark > b->len)
		return WP_EINVAL;
	payload = b->len - mark;
	h = header_len(payload);
	rc = wp_buf_reserve(b, h);
	if (rc)
		return rc;
	/* The payload length is only known now: shift it up to make room for
	 * the header. Costs one move per list; no extra allocation. */
	if (payload)
		memmove(b->data + mark + h, b->data + mark, payload);
	write_header(b->data + mark, RLP_LIST_BASE, payload);
	b->len += h;
	return WP_OK;
}

/* ---- decoding ------------------------------------------------------------ */

enum { READING = 0, TOP_DONE = 1 };

void wp_rlp_reader_init(struct wp_rlp_reader *r, const void *in, size_t len)
{
	r->in = in;
	r->len = len;
	r->pos = 0;
	r->depth = 0;
	r->state = READING;
	r->err_offset = 0;
	r->err_reason = NULL;
}

static int fail(struct wp_rlp_reader *r, int code, size_t offset, const char *why)
{
	r->state = code;
	r->err_offset = offset;
	r->err_reason = why;
	return code;
}

/*
 * An item (or its length bytes) claims to end at `end` but must end by
 * `limit`: past the input it is truncated; within the input it overruns
 * the enclosing list (whose own length then disagrees with its items).
 */
static int overrun(struct wp_rlp_reader *r, size_t off, size_t limit, int in_length)
{
	if (limit == r->len)
		return fail(r, WP_ETRUNC, off, in_length ?
			    "input ends inside a length prefix" :
			    "input ends before the item does");
	return fail(r, WP_EINVAL, off, in_length ?
		    "length prefix runs past the end of its list" :
		    "item runs past the end of its list");
}

int wp_rlp_read(struct wp_rlp_reader *r, struct wp_rlp_item *it)
{
	const uint8_t *in = r->in;
	size_t off = r->pos, limit, hdr, n;
	int kind;
	uint8_t b;

	if (r->state < 0)
		return r->state;
	if (r->depth) {
		limit = r->end[r->depth - 1];
		if (off == limit) {
			if (--r->depth == 0)
				r->state = TOP_DONE;
			return WP_RLP_END;
		}
	} else {
		if (r->state == TOP_DONE) {
			if (off != r->len)
				return fail(r, WP_EINVAL, off,
					    "bytes after the top-level item");
			return WP_RLP_DONE;
		}
		limit = r->len;
		if (off >= limit)
			return fail(r, WP_ETRUNC, off, "empty input");
	}

	b = in[off];
	if (b < RLP_STRING_BASE) {
		kind = WP_RLP_STRING;
		hdr = 0;
		n = 1;
	} else {
		unsigned base = b < RLP_LIST_BASE ? RLP_STRING_BASE : RLP_LIST_BASE;
		unsigned small = b - base;

		kind = base == RLP_LIST_BASE ? WP_RLP_LIST : WP_RLP_STRING;
		if (small <= RLP_SHORT_MAX) {
			hdr = 1;
			n = small;
		} else {
			unsigned ll = small - RLP_SHORT_MAX; /* 1..8 */
			uint64_t v = 0;

			if (ll > limit - off - 1)
				return overrun(r, off, limit, 1);
			if (in[off + 1] == 0)
				return fail(r, WP_EINVAL, off,
					    "leading zero byte in a long length");
			for (unsigned i = 0; i < ll; i++)
				v = v << 8 | in[off + 1 + i];
			if (v <= RLP_SHORT_MAX)
				return fail(r, WP_EINVAL, off,
					    "long length form used for a length below 56");
#if SIZE_MAX < UINT64_MAX
			if (v > SIZE_MAX)
				return overrun(r, off, limit, 0);
#endif
			hdr = 1 + ll;
			n = (size_t)v;
		}
		if (n > limit - off - hdr)
			return overrun(r, off, limit, 0);
		if (kind == WP_RLP_STRING && n == 1 && in[off + 1] < RLP_STRING_BASE)
			return fail(r, WP_EINVAL, off,
				    "single byte below 0x80 wrapped as a string");
	}

	if (kind == WP_RLP_LIST) {
		if (r->depth >= WP_RLP_MAX_DEPTH)
			return fail(r, WP_ERANGE, off, "lists nested too deeply");
		r->end[r->depth++] = off + hdr + n;
		r->pos = off + hdr;
	} else {
		r->pos = off + hdr + n;
		if (!r->depth)
			r->state = TOP_DONE;
	}
	if (it) {
		it->payload = in + off + hdr;
		it->len = n;
		it->offset = off;
		it->header = hdr;
	}
	return kind;
}

int wp_rlp_validate(const void *in, size_t len, size_t *err_offset,
		    const char **err_reason)
{
	struct wp_rlp_reader r;
	int ev;

	wp_rlp_reader_init(&r, in, len);
	do
		ev = wp_rlp_read(&r, NULL);
	while (ev > 0 && ev != WP_RLP_DONE);
	if (ev < 0) {
		if (err_offset)
			*err_offset = r.err_offset;
		if (err_reason)
			*err_reason = r.err_reason;
		return ev;
	}
	return WP_OK;
}
