/* SPDX-License-Identifier: MIT */
/**
 * \file hash.h
 * \brief SHA-256 (OpenSSL EVP, prefetched digest: SHA-NI where the CPU has
 *        it), Keccak-256 (Ethereum padding 0x01 over nettle's Keccak-f[1600])
 *        and BLAKE2b (libsodium).
 *
 * One-shot functions never fail: the digest is fetched once per process and
 * each thread keeps one reusable EVP context, so there is no allocation per
 * call. A failure of OpenSSL to provide SHA-256 at all is a broken
 * installation and aborts with a message (it cannot be handled usefully).
 */
#ifndef WORKPROOF_HASH_H
#define WORKPROOF_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <nettle/sha3.h>

#define WP_SHA256_LEN 32
#define WP_KECCAK256_LEN 32
#define WP_KECCAK256_RATE 136

/** A contiguous piece of a message hashed without copying. */
struct wp_iov {
	const void *base;
	size_t len;
};

/** out = SHA-256(data[0..len)). out may alias data. */
void wp_sha256(const void *data, size_t len, uint8_t out[WP_SHA256_LEN]);

/** out = SHA-256 of the concatenation of n parts (no copy is made). */
void wp_sha256_v(const struct wp_iov *parts, size_t n, uint8_t out[WP_SHA256_LEN]);

/**
 * Incremental SHA-256. The context owns an OpenSSL EVP context:
 * wp_sha256_init() allocates it (0 or WP_ENOMEM), wp_sha256_final() writes
 * the digest and frees it; wp_sha256_free() frees an unfinished one.
 */
struct wp_sha256_ctx {
	void *evp;
};
int wp_sha256_init(struct wp_sha256_ctx *c);
void wp_sha256_update(struct wp_sha256_ctx *c, const void *data, size_t len);
void wp_sha256_final(struct wp_sha256_ctx *c, uint8_t out[WP_SHA256_LEN]);
void wp_sha256_free(struct wp_sha256_ctx *c);

/** Incremental Keccak-256 (the pre-standard padding Ethereum uses). Plain
 *  value type: no allocation, copyable, nothing to free. */
struct wp_keccak_ctx {
	struct sha3_256_ctx sponge;
};
void wp_keccak256_init(struct wp_keccak_ctx *c);
void wp_keccak256_update(struct wp_keccak_ctx *c, const void *data, size_t len);
void wp_keccak256_final(struct wp_keccak_ctx *c, uint8_t out[WP_KECCAK256_LEN]);

/** out = Keccak-256(data[0..len)). */
void wp_keccak256(const void *data, size_t len, uint8_t out[WP_KECCAK256_LEN]);

/**
 * out[0..outlen) = BLAKE2b(data, key). outlen 16..64, keylen 0 or 16..64.
 * \return WP_OK or WP_ERANGE for a length out of range.
 */
int wp_blake2b(uint8_t *out, size_t outlen, const void *data, size_t len,
	       const void *key, size_t keylen);

#endif
