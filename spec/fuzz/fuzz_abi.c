/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the ABI decoder and type parser (spec/fuzz/corpus/abi).
 *
 * Every input is decoded as each of a few fixed type lists, canonically
 * and leniently. Invariants, any violation aborts:
 *  1. canonical decode succeeds  =>  encode(decode(x)) == x exactly;
 *  2. lenient decode succeeds    =>  y = encode(decode(x)) decodes
 *     canonically and re-encodes to y (the values survive the round trip);
 *  3. canonical success implies lenient success with the same encoding;
 *  4. every failure names an offset inside the input (or its end) and one
 *     of the documented codes;
 *  5. the input read as a type list: if it parses, its canonical spelling
 *     parses to the same canonical spelling.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/abi.h"
#include "workproof/buf.h"
#include "workproof/common.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_abi: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

static const char *const sigs[] = {
	"uint256",
	"(bytes32,string,bool,uint256,bytes)[]",
	"uint256[][],string[]",
	"address,int8,bytes3[2],(uint16,bytes)",
	"(string[2],uint8)[],bool",
};

static struct wp_abi_type *types[sizeof(sigs) / sizeof(sigs[0])];

static void init_types(void)
{
	static int done;

	if (done)
		return;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		CHECK(wp_abi_parse(&types[i], sigs[i], strlen(sigs[i]), NULL) == WP_OK);
	done = 1;
}

static void check_error(int rc, size_t pos, const char *why, size_t size)
{
	CHECK(rc == WP_ETRUNC || rc == WP_ERANGE || rc == WP_EINVAL || rc == WP_EPROTO);
	CHECK(pos <= size);
	CHECK(why != NULL);
}

static void one_type(const struct wp_abi_type *t, const uint8_t *data, size_t size)
{
	struct wp_abi_value *canon = NULL, *len = NULL, *again = NULL;
	struct wp_buf b = WP_BUF_INIT, b2 = WP_BUF_INIT;
	size_t pos = 0;
	const char *why = NULL;
	int rc_c, rc_l, rc;

	/* a small item bound keeps aliasing inputs fast; it is part of the API */
	rc_c = wp_abi_decode(&canon, t, data, size, WP_ABI_CANONICAL, 20000, &pos, &why);
	if (rc_c == WP_OK) {
		CHECK(wp_abi_encode(&b, t, canon) == WP_OK);
		CHECK(b.len == size && (size == 0 || memcmp(b.data, data, size) == 0));
	} else if (rc_c != WP_ENOMEM) {
		check_error(rc_c, pos, why, size);
	}

	rc_l = wp_abi_decode(&len, t, data, size, 0, 20000, &pos, &why);
	if (rc_c == WP_OK)
		CHECK(rc_l == WP_OK);
	if (rc_l == WP_OK) {
		size_t need;

		/* aliased offsets can make the re-encoding much larger than the
		 * input; the size is computed without allocating */
		CHECK(wp_abi_encoded_size(&need, t, len) == WP_OK);
		if (need > (16u << 20))
			goto out;
		wp_buf_reset(&b);
		CHECK(wp_abi_encode(&b, t, len) == WP_OK);
		CHECK(b.len == need);
		if (rc_c == WP_OK)
			CHECK(b.len == size && memcmp(b.data, data, size) == 0);
		rc = wp_abi_decode(&again, t, b.data, b.len, WP_ABI_CANONICAL, 0, NULL, NULL);
		CHECK(rc == WP_OK || rc == WP_ENOMEM);
		if (rc == WP_OK) {
			CHECK(wp_abi_encode(&b2, t, again) == WP_OK);
			CHECK(b2.len == b.len && memcmp(b2.data, b.data, b.len) == 0);
		}
	} else if (rc_l != WP_ENOMEM) {
		check_error(rc_l, pos, why, size);
	}
out:
	free(canon);
	free(len);
	free(again);
	wp_buf_free(&b);
	wp_buf_free(&b2);
}

static void as_type_string(const uint8_t *data, size_t size)
{
	struct wp_abi_type *t = NULL, *t2 = NULL;
	struct wp_buf c1 = WP_BUF_INIT, c2 = WP_BUF_INIT;
	size_t pos = 0, name_len = 0;
	int rc;

	if (size > 512)
		return;
	rc = wp_abi_parse(&t, (const char *)data, size, &pos);
	if (rc == WP_OK) {
		CHECK(wp_abi_type_canonical(&c1, t) == WP_OK);
		CHECK(wp_abi_parse(&t2, (const char *)c1.data, c1.len, NULL) == WP_OK);
		CHECK(wp_abi_type_canonical(&c2, t2) == WP_OK);
		CHECK(c1.len == c2.len && memcmp(c1.data, c2.data, c1.len) == 0);
	} else {
		CHECK(rc == WP_EINVAL || rc == WP_ERANGE || rc == WP_ETRUNC || rc == WP_ENOMEM);
		CHECK(pos <= size);
	}
	wp_abi_type_free(t);
	wp_abi_type_free(t2);
	t = NULL;
	rc = wp_abi_parse_signature(&t, &name_len, (const char *)data, size, &pos);
	if (rc == WP_OK)
		CHECK(name_len > 0 && name_len < size && data[name_len] == '(');
	wp_abi_type_free(t);
	wp_buf_free(&c1);
	wp_buf_free(&c2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_types();
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		one_type(types[i], data, size);
	as_type_string(data, size);
	return 0;
}
