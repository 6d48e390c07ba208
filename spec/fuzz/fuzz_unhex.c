/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the hex and base64 codecs (spec/fuzz/corpus/unhex).
 *
 * Invariants, any violation aborts:
 *  - unhex(x) succeeds  =>  hex(unhex(x)) is x lowercased without its
 *    0x/0X prefix; unhex(x) fails  =>  errpos names a non-hex character
 *    after the prefix, or the digit count is odd and errpos == len;
 *  - unhex(hex(d)) == d for the input taken as bytes;
 *  - base64 (std and url): decode(x) succeeds  =>  encode(decode(x)) is x
 *    (url: x without its padding); encode(d) decodes back to d; a failed
 *    decode names an offset within the text.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/encoding.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_unhex: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

static int is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static void check_unhex(const uint8_t *data, size_t size, uint8_t *tmp, char *txt)
{
	const char *in = (const char *)data;
	size_t n = 0, pos = SIZE_MAX, skip;
	int rc;

	skip = size >= 2 && data[0] == '0' && (data[1] == 'x' || data[1] == 'X') ? 2 : 0;
	rc = wp_hex_decode(tmp, size / 2, &n, in, size, &pos);
	if (rc == WP_OK) {
		CHECK((size - skip) % 2 == 0 && n == (size - skip) / 2);
		wp_hex_encode(txt, tmp, n);
		for (size_t i = 0; i < 2 * n; i++)
			CHECK((uint8_t)txt[i] == lower(data[skip + i]));
		return;
	}
	CHECK(rc == WP_EINVAL);
	CHECK(pos >= skip && pos <= size);
	if (pos < size) {
		CHECK(!is_hex(data[pos]));
		for (size_t i = skip; i < pos; i++)
			CHECK(is_hex(data[i]));
	} else {
		CHECK((size - skip) % 2 == 1);
		for (size_t i = skip; i < size; i++)
			CHECK(is_hex(data[i]));
	}
	/* a too-small output buffer is ENOSPC, never an overflow */
	if ((size - skip) / 2 > 0)
		CHECK(wp_hex_decode(tmp, (size - skip) / 2 - 1, &n, in, size, &pos) == WP_ENOSPC);
}

static void check_hex_roundtrip(const uint8_t *data, size_t size, uint8_t *tmp, char *txt)
{
	size_t n = 0;

	wp_hex_encode(txt, data, size);
	CHECK(wp_hex_decode(tmp, size, &n, txt, 2 * size, NULL) == WP_OK);
	CHECK(n == size && memcmp(tmp, data, size) == 0);
}

static void check_base64(const uint8_t *data, size_t size, int variant,
			 uint8_t *tmp, char *txt, size_t txtcap)
{
	const char *in = (const char *)data;
	size_t n = 0, m = 0, pos = SIZE_MAX, unpadded = size;
	int rc;

	/* text -> bytes -> text */
	rc = wp_base64_decode(tmp, wp_base64_decoded_maxlen(size), &n, in, size,
			      variant, &pos);
	if (rc == WP_OK) {
		CHECK(wp_base64_encode(txt, txtcap, &m, tmp, n, variant) == WP_OK);
		CHECK(txt[m] == '\0');
		if (variant == WP_B64_URL)
			while (unpadded && data[unpadded - 1] == '=')
				unpadded--;
		CHECK(m == unpadded && memcmp(txt, data, m) == 0);
	} else {
		CHECK(rc == WP_EINVAL && pos <= size);
	}

	/* bytes -> text -> bytes */
	CHECK(wp_base64_encode(txt, txtcap, &m, data, size, variant) == WP_OK);
	CHECK(m == wp_base64_encoded_len(size, variant) && strlen(txt) == m);
	CHECK(wp_base64_decode(tmp, wp_base64_decoded_maxlen(m), &n, txt, m,
			       variant, NULL) == WP_OK);
	CHECK(n == size && memcmp(tmp, data, size) == 0);
	if (variant == WP_B64_URL && m % 4) {
		/* the padded form is accepted too */
		size_t p = m;

		while (p % 4)
			txt[p++] = '=';
		CHECK(wp_base64_decode(tmp, wp_base64_decoded_maxlen(p), &n, txt, p,
				       variant, NULL) == WP_OK);
		CHECK(n == size && memcmp(tmp, data, size) == 0);
	}
	/* an output buffer one byte short is refused, not overrun */
	CHECK(wp_base64_encode(txt, m, NULL, data, size, variant) == WP_ENOSPC);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* 2*size covers hex text; base64 text of size bytes is < 2*size + 8 */
	size_t txtcap = 2 * size + 8;
	uint8_t *tmp = malloc(size + 8);
	char *txt = malloc(txtcap);

	CHECK(tmp && txt);
	check_unhex(data, size, tmp, txt);
	check_hex_roundtrip(data, size, tmp, txt);
	check_base64(data, size, WP_B64_STD, tmp, txt, txtcap);
	check_base64(data, size, WP_B64_URL, tmp, txt, txtcap);
	free(tmp);
	free(txt);
	return 0;
}
