/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the strict RLP decoder (spec/fuzz/corpus/rlp).
 *
 * Invariants, any violation aborts:
 *  1. canonical: an accepted input re-encodes through the wp_buf encoder to
 *     exactly the input, and every item's header as written by the
 *     caller-sized writers is exactly the header that was read;
 *  2. the walk is well formed: events nest, payloads lie inside the input,
 *     depth never exceeds WP_RLP_MAX_DEPTH; an error is latched, agrees
 *     with wp_rlp_validate() and points inside (or at the end of) the input;
 *  3. a top-level string that reads as a minimal integer re-encodes through
 *     wp_rlp_put_uint() to the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/buf.h"
#include "workproof/common.h"
#include "workproof/rlp.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_rlp: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

/* The item's header as the caller-sized writers produce it must be the
 * bytes the reader parsed (a string's whole encoding for short ones). */
static void check_writers(const uint8_t *data, size_t size, int ev,
			  const struct wp_rlp_item *it)
{
	uint8_t hdr[WP_RLP_MAX_HEADER + 1];
	size_t n;

	CHECK(it->offset < size && it->header <= size - it->offset);
	if (ev == WP_RLP_LIST) {
		n = wp_rlp_write_list_header(hdr, it->len);
		CHECK(n == it->header && n == wp_rlp_list_header_len(it->len));
		CHECK(memcmp(hdr, data + it->offset, n) == 0);
		return;
	}
	CHECK(wp_rlp_string_len(it->payload, it->len) == it->header + it->len);
	if (it->len <= 1) {
		/* small enough to write whole into hdr */
		n = wp_rlp_write_string(hdr, it->payload, it->len);
		CHECK(n == it->header + it->len);
		CHECK(memcmp(hdr, data + it->offset, n) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t marks[WP_RLP_MAX_DEPTH];
	static struct wp_rlp_reader r;
	struct wp_buf b = WP_BUF_INIT;
	struct wp_rlp_item it;
	size_t off = 0, big;
	const char *why = NULL;
	int ev, rc, top = 0;

	/* any bytes, wrapped as one string, decode back to themselves */
	CHECK(wp_rlp_put_string(&b, data, size) == WP_OK);
	big = b.len;
	CHECK(big == wp_rlp_string_len(data, size));
	wp_rlp_reader_init(&r, b.data, b.len);
	CHECK(wp_rlp_read(&r, &it) == WP_RLP_STRING);
	CHECK(it.len == size && (size == 0 || memcmp(it.payload, data, size) == 0));
	CHECK(wp_rlp_read(&r, NULL) == WP_RLP_DONE);
	wp_buf_reset(&b);

	rc = wp_rlp_validate(data, size, &off, &why);

	/* Walk once, re-encoding into a wp_buf as we go. */
	wp_rlp_reader_init(&r, data, size);
	for (;;) {
		unsigned before = r.depth;

		ev = wp_rlp_read(&r, &it);
		if (ev < 0 || ev == WP_RLP_DONE)
			break;
		CHECK(r.depth <= WP_RLP_MAX_DEPTH);
		switch (ev) {
		case WP_RLP_STRING:
			CHECK(it.payload >= data && it.len <= size &&
			      (size_t)(it.payload - data) <= size - it.len);
			CHECK(it.payload == data + it.offset + it.header);
			check_writers(data, size, ev, &it);
			CHECK(wp_rlp_put_string(&b, it.payload, it.len) == WP_OK);
			break;
		case WP_RLP_LIST:
			CHECK(r.depth == before + 1 && top < WP_RLP_MAX_DEPTH);
			CHECK((size_t)(it.payload - data) <= size - it.len);
			CHECK(it.payload == data + it.offset + it.header);
			check_writers(data, size, ev, &it);
			wp_rlp_list_begin(&b, &marks[top++]);
			break;
		case WP_RLP_END:
			CHECK(top > 0 && r.depth == before - 1);
			CHECK(wp_rlp_list_end(&b, marks[--top]) == WP_OK);
			break;
		default:
			CHECK(0);
		}
	}

	if (ev < 0) {
		CHECK(rc == ev);
		CHECK(wp_rlp_read(&r, NULL) == ev);   /* latched */
		CHECK(r.err_offset == off && r.err_reason == why && why != NULL);
		CHECK(off <= size);
		CHECK(ev == WP_EINVAL || ev == WP_ETRUNC || ev == WP_ERANGE);
		wp_buf_free(&b);
		return 0;
	}

	CHECK(rc == WP_OK && top == 0 && size > 0);
	CHECK(b.len == size && memcmp(b.data, data, size) == 0);
	CHECK(wp_rlp_read(&r, NULL) == WP_RLP_DONE);

	/* 3. integers: a string of up to 8 bytes with no leading zero */
	wp_rlp_reader_init(&r, data, size);
	if (wp_rlp_read(&r, &it) == WP_RLP_STRING && it.len <= 8 &&
	    (it.len == 0 || it.payload[0] != 0)) {
		uint64_t v = 0;
		uint8_t be[8];

		for (size_t i = 0; i < it.len; i++)
			v = v << 8 | it.payload[i];
		CHECK(wp_rlp_uint_bytes(v, be) == it.len);
		wp_buf_reset(&b);
		CHECK(wp_rlp_put_uint(&b, v) == WP_OK);
		CHECK(b.len == size && memcmp(b.data, data, size) == 0);
	}

	wp_buf_free(&b);
	return 0;
}
