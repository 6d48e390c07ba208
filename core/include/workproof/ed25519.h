/* SPDX-License-Identifier: MIT */
/**
 * \file ed25519.h
 * \brief Ed25519 signatures (RFC 8032, pure Ed25519) over libsodium.
 *
 * Key formats are libsodium's: a 32-byte public key, and a 64-byte secret
 * key that is the 32-byte seed followed by the public key. Signatures are
 * detached, 64 bytes (R || S).
 *
 * libsodium must be initialised once per process before it picks its
 * implementations and random source; every function here does that itself
 * through pthread_once, so callers never need to.
 */
#ifndef WORKPROOF_ED25519_H
#define WORKPROOF_ED25519_H

#include <stddef.h>
#include <stdint.h>

#define WP_ED25519_SEED_LEN 32
#define WP_ED25519_PUB_LEN 32
#define WP_ED25519_SECRET_LEN 64
#define WP_ED25519_SIG_LEN 64

/**
 * \brief Initialise libsodium once for the process (thread-safe, idempotent).
 * \return WP_OK, or WP_ECRYPTO when libsodium cannot initialise (every other
 *         function then fails closed).
 */
int wp_ed25519_init(void);

/**
 * \brief Make a key pair.
 * \param pub    out: 32-byte public key (caller's buffer)
 * \param secret out: 64-byte secret key seed||pub (caller's buffer; the
 *               caller should wipe it when done)
 * \param seed   32-byte seed for a deterministic key, or NULL for a key
 *               from the operating system's random source
 * \return WP_OK or WP_ECRYPTO
 */
int wp_ed25519_keypair(uint8_t pub[WP_ED25519_PUB_LEN],
		       uint8_t secret[WP_ED25519_SECRET_LEN],
		       const uint8_t *seed);

/**
 * \brief Sign msg[0..len) with a 64-byte secret key (detached signature).
 *
 * The second half of the secret key is used as the public key inside the
 * signature hash, as libsodium does; a secret key whose halves do not belong
 * together gives signatures that do not verify (keep secret keys whole).
 * \param sig out: 64-byte signature (caller's buffer)
 * \return WP_OK or WP_ECRYPTO
 */
int wp_ed25519_sign(uint8_t sig[WP_ED25519_SIG_LEN], const void *msg,
		    size_t len, const uint8_t secret[WP_ED25519_SECRET_LEN]);

/**
 * \brief Verify a detached signature (libsodium rules: canonical S, no
 *        small-order R or public key).
 * \return 1 when sig is a valid signature of msg by pub, 0 otherwise
 *         (including when libsodium failed to initialise: fail closed).
 *         Nothing is allocated; all buffers stay the caller's.
 */
int wp_ed25519_verify(const uint8_t sig[WP_ED25519_SIG_LEN], const void *msg,
		      size_t len, const uint8_t pub[WP_ED25519_PUB_LEN]);

#endif
