/* SPDX-License-Identifier: MIT */
#include <string.h>

#include <sodium.h>

#include "workproof/common.h"
#include "workproof/encoding.h"

/* Two output characters per input byte, one table load per byte. */
static const char hex_pairs[513] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

/* Digit value, or 0xff for a non-hex character: OR-ing the values of a
 * whole input and testing the high nibble once finds any bad character
 * without a branch per digit. */
static const uint8_t hex_val[256] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 10, 11, 12, 13, 14, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 10, 11, 12, 13, 14, 15, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

void wp_hex_encode(char *out, const void *in, size_t len)
{
	const uint8_t *p = in;

	for (size_t i = 0; i < len; i++)
		memcpy(out + 2 * i, hex_pairs + 2 * p[i], 2);
}

int wp_hex_decode(uint8_t *out, size_t outcap, size_t *outlen,
		  const char *in, size_t len, size_t *errpos)
{
	const uint8_t *p = (const uint8_t *)in;
	size_t skip = 0, n;
	uint8_t bad = 0;

	if (len >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		skip = 2;
	p += skip;
	n = (len - skip) / 2;
	if (n > outcap)
		return WP_ENOSPC;
	for (size_t i = 0; i < n; i++) {
		uint8_t hi = hex_val[p[2 * i]], lo = hex_val[p[2 * i + 1]];

		bad |= hi | lo;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (bad & 0xf0 || (len - skip) % 2) {
		/* Slow path, only on failure: name the first bad character,
		 * or the odd length if every character is a digit. */
		size_t i;

		for (i = skip; i < len; i++)
			if (hex_val[(uint8_t)in[i]] == 0xff)
				break;
		if (errpos)
			*errpos = i;
		return WP_EINVAL;
	}
	if (outlen)
		*outlen = n;
	return WP_OK;
}

static int sodium_variant(int variant, int padded)
{
	if (variant == WP_B64_STD)
		return sodium_base64_VARIANT_ORIGINAL;
	return padded ? sodium_base64_VARIANT_URLSAFE : sodium_base64_VARIANT_URLSAFE_NO_PADDING;
}

size_t wp_base64_encoded_len(size_t len, int variant)
{
	size_t full = len / 3, rest = len % 3;

	if (full > (SIZE_MAX - 8) / 4)
		return 0;
	if (variant == WP_B64_URL)
		return full * 4 + (rest ? rest + 1 : 0);
	return full * 4 + (rest ? 4 : 0);
}

int wp_base64_encode(char *out, size_t outcap, size_t *outlen,
		     const void *in, size_t len, int variant)
{
	size_t need;

	if (variant != WP_B64_STD && variant != WP_B64_URL)
		return WP_EINVAL;
	need = wp_base64_encoded_len(len, variant);
	/* sodium_bin2base64() aborts the process on a short buffer: check. */
	if ((len && !need) || outcap < need + 1)
		return WP_ENOSPC;
	sodium_bin2base64(out, outcap, in, len, sodium_variant(variant, 0));
	if (outlen)
		*outlen = need;
	return WP_OK;
}

/* Our own alphabet check runs before libsodium's decoder: libsodium 1.0.18
 * reads the text as (signed) char and its constant-time comparisons assume
 * values 0..255, so every byte >= 0x80 decodes as '/' (63) instead of being
 * refused (e.g. "Zm9\xff" decodes to "fo\x7f"). */
static size_t first_non_alphabet(const char *in, size_t len, int variant)
{
	const char c62 = variant == WP_B64_URL ? '-' : '+';
	const char c63 = variant == WP_B64_URL ? '_' : '/';

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '=' || c == c62 || c == c63)
			continue;
		return i;
	}
	return len;
}

int wp_base64_decode(uint8_t *out, size_t outcap, size_t *outlen,
		     const char *in, size_t len, int variant, size_t *errpos)
{
	const char *end = in;
	size_t got = 0;
	int padded = 1, rc;

	if (variant != WP_B64_STD && variant != WP_B64_URL)
		return WP_EINVAL;
	if (outcap < wp_base64_decoded_maxlen(len))
		return WP_ENOSPC;
	got = first_non_alphabet(in, len, variant);
	if (got != len) {
		if (errpos)
			*errpos = got;
		return WP_EINVAL;
	}
	got = 0;
	/* url-safe text comes both ways: padding, when present anywhere, must
	 * be exact (libsodium's padded variant checks that); when absent the
	 * unpadded variant still refuses a dangling 6-bit group. */
	if (variant == WP_B64_URL)
		padded = len > 0 && memchr(in, '=', len) != NULL;
	/* No `ignore` set: whitespace is an invalid character. Passing b64_end
	 * keeps libsodium from failing on trailing text so that we can say
	 * where decoding stopped; the end check is ours. Unused trailing bits
	 * must be zero in libsodium, so each byte string has one encoding. */
	rc = sodium_base642bin(out, outcap, in, len, NULL, &got, &end,
			       sodium_variant(variant, padded));
	if (rc || end != in + len) {
		if (errpos)
			*errpos = (size_t)(end - in);
		return WP_EINVAL;
	}
	if (outlen)
		*outlen = got;
	return WP_OK;
}
