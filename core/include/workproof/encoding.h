/* SPDX-License-Identifier: MIT */
/**
 * \file encoding.h
 * \brief Hex (lowercase out, either case in, optional 0x) and base64
 *        (RFC 4648 standard and url-safe alphabets, strict decoding).
 *
 * Nothing here allocates: callers size the output with the *_len helpers.
 * Decoders are strict because their input is untrusted: a string either
 * has exactly one meaning or is refused with WP_EINVAL and the byte offset
 * (0-based, into the input as given, prefix included) of the first problem.
 */
#ifndef WORKPROOF_ENCODING_H
#define WORKPROOF_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/** Base64 alphabets. */
enum wp_b64_variant {
	WP_B64_STD = 0,  /**< RFC 4648 §4, "+/", always padded with '=' */
	WP_B64_URL = 1,  /**< RFC 4648 §5, "-_", encoded without padding;
			      decoding accepts it with or without padding */
};

/**
 * Write the lowercase hex of in[0..len) to out[0..2*len). No NUL is
 * written; out must hold 2*len bytes and must not overlap in.
 */
void wp_hex_encode(char *out, const void *in, size_t len);

/**
 * Decode hex text in[0..len): an optional "0x"/"0X" prefix, then an even
 * number of digits of either case.
 * \param out     receives the bytes; needs (len - prefix) / 2 bytes
 *                (len / 2 is always enough). May alias `in` exactly
 *                (out == in): each byte is written after its digits are read.
 * \param outcap  size of out
 * \param outlen  receives the number of bytes written (may be NULL)
 * \param errpos  on WP_EINVAL receives the 0-based offset in `in` of the
 *                first non-hex character, or `len` when the digit count is
 *                odd (may be NULL)
 * \return WP_OK, WP_EINVAL (malformed, out contents unspecified) or
 *         WP_ENOSPC (outcap too small).
 */
int wp_hex_decode(uint8_t *out, size_t outcap, size_t *outlen,
		  const char *in, size_t len, size_t *errpos);

/**
 * Characters needed to encode `len` bytes (no NUL counted): 4*ceil(len/3)
 * for WP_B64_STD, ceil(4*len/3) for WP_B64_URL (unpadded). Returns 0 (not a
 * valid length for a non-empty input) if the result would overflow.
 */
size_t wp_base64_encoded_len(size_t len, int variant);

/** An upper bound of the bytes any base64 text of `len` chars decodes to. */
static inline size_t wp_base64_decoded_maxlen(size_t len)
{
	return len / 4 * 3 + 2;
}

/**
 * Base64-encode in[0..len) into out, NUL-terminated.
 * \param outcap must be at least wp_base64_encoded_len(len, variant) + 1
 * \param outlen receives the length without the NUL (may be NULL)
 * \return WP_OK, WP_ENOSPC (outcap too small), WP_EINVAL (bad variant).
 */
int wp_base64_encode(char *out, size_t outcap, size_t *outlen,
		     const void *in, size_t len, int variant);

/**
 * Strictly decode base64 text in[0..len). Rejected with WP_EINVAL: a
 * character outside the variant's alphabet (whitespace included), missing
 * or wrong padding (WP_B64_STD requires it; WP_B64_URL accepts none or the
 * exact padding), a dangling 6-bit group, non-zero unused trailing bits
 * (so every byte string has exactly one accepted encoding per padding
 * choice), anything after the padding.
 * \param out     receives the bytes; wp_base64_decoded_maxlen(len) suffices
 * \param outlen  receives the number of bytes written (may be NULL)
 * \param errpos  on WP_EINVAL the 0-based offset in `in` where decoding
 *                stopped (len when the text ended early) (may be NULL)
 * \return WP_OK, WP_EINVAL, or WP_ENOSPC (outcap too small).
 */
int wp_base64_decode(uint8_t *out, size_t outcap, size_t *outlen,
		     const char *in, size_t len, int variant, size_t *errpos);

#endif
