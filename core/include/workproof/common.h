/* SPDX-License-Identifier: MIT */
/**
 * \file common.h
 * \brief Error codes and small helpers shared by every core area.
 *
 * Every fallible core function returns an int: WP_OK (0) on success or a
 * negative wp_err code. wp_strerror() gives the code's stable name, which
 * the Lua bindings put in front of their messages ("EINVAL: ...").
 */
#ifndef WORKPROOF_COMMON_H
#define WORKPROOF_COMMON_H

#include <stddef.h>
#include <stdint.h>

enum wp_err {
	WP_OK = 0,
	WP_EINVAL = -1,   /**< malformed input (bad hex, non-canonical RLP, ...) */
	WP_ENOMEM = -2,   /**< allocation failed */
	WP_ERANGE = -3,   /**< a length or index out of range */
	WP_ECRYPTO = -4,  /**< the crypto library refused (bad key, failed sign) */
	WP_ETRUNC = -5,   /**< input ended early */
	WP_ENOSPC = -6,   /**< caller's output buffer too small */
	WP_EPROTO = -7,   /**< a protocol rule was broken */
};

/**
 * \brief Stable name of an error code ("EINVAL", "ENOMEM", ...).
 * \return a static string; never NULL ("EUNKNOWN" for unknown codes).
 */
const char *wp_strerror(int code);

/** Compare two buffers in time independent of their contents. 0 if equal. */
int wp_memeq_ct(const void *a, const void *b, size_t n);

/** The big-endian 64-bit integer at p. */
static inline uint64_t wp_load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/** Store v at p as 8 bytes, big-endian. */
static inline void wp_store_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

#endif
