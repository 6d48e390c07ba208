/* SPDX-License-Identifier: MIT */
/**
 * \file secp256k1.h
 * \brief Recoverable ECDSA on secp256k1 (Ethereum style) over libsecp256k1.
 *
 * One libsecp256k1 context serves the whole process. It is created on first
 * use under pthread_once and randomised (side-channel blinding) with bytes
 * from getrandom(); after that it is only read, which libsecp256k1 allows
 * from any number of threads at once.
 *
 * Formats:
 *   - secret key: 32 bytes big-endian, 1 <= k < n
 *   - public key: 65 bytes uncompressed, 0x04 || X || Y
 *   - signature:  65 bytes r || s || v, r and s 32 bytes big-endian and v the
 *                 recovery id 0 or 1 (Ethereum's raw form; add 27 for the
 *                 legacy "v" of personal_sign / ecrecover)
 *
 * Signing uses RFC 6979 deterministic nonces and always yields low s
 * (s <= n/2), as Ethereum transactions (EIP-2) require.
 */
#ifndef WORKPROOF_SECP256K1_H
#define WORKPROOF_SECP256K1_H

#include <stddef.h>
#include <stdint.h>

#define WP_SECP256K1_SECRET_LEN 32
#define WP_SECP256K1_PUB_LEN 65
#define WP_SECP256K1_HASH_LEN 32
#define WP_SECP256K1_SIG_LEN 65

/** Flags of wp_secp256k1_recover(). */
enum wp_secp256k1_flags {
	/** Reject s > n/2 (EIP-2 / OpenZeppelin ECDSA / USDC's ECRecover).
	 *  Without it the rules are those of the ecrecover precompile, which
	 *  accepts either s of a malleable pair. */
	WP_SECP256K1_STRICT = 1u << 0,
};

/**
 * \brief Create the process-wide context once (thread-safe, idempotent).
 * \return WP_OK, or WP_ENOMEM when the context could not be created (every
 *         other function then returns WP_ENOMEM as well).
 */
int wp_secp256k1_init(void);

/**
 * \brief Check a secret key: WP_OK when 1 <= k < n, WP_EINVAL otherwise
 *        (zero, or not below the group order).
 */
int wp_secp256k1_seckey_check(const uint8_t secret[WP_SECP256K1_SECRET_LEN]);

/**
 * \brief Public key of a secret key.
 * \param pub out: 65-byte uncompressed key (caller's buffer)
 * \return WP_OK, WP_EINVAL for an invalid secret key, WP_ENOMEM (no context)
 */
int wp_secp256k1_pubkey(uint8_t pub[WP_SECP256K1_PUB_LEN],
			const uint8_t secret[WP_SECP256K1_SECRET_LEN]);

/**
 * \brief Recoverable signature of a 32-byte hash (RFC 6979, low s).
 * \param sig out: r || s || v with v in {0, 1} (caller's buffer)
 * \return WP_OK, WP_EINVAL for an invalid secret key, WP_ECRYPTO when the
 *         signature needs recovery id 2 or 3 (R.x >= n, probability about
 *         2^-127; Ethereum cannot express it), WP_ENOMEM (no context)
 */
int wp_secp256k1_sign(uint8_t sig[WP_SECP256K1_SIG_LEN],
		      const uint8_t hash[WP_SECP256K1_HASH_LEN],
		      const uint8_t secret[WP_SECP256K1_SECRET_LEN]);

/**
 * \brief Recover the signer's public key from a hash and a 65-byte signature.
 *
 * v may be 0/1 or Ethereum's legacy 27/28; anything else (including the
 * recovery ids 2/3 and EIP-155 chain-id forms) is rejected: normalise first.
 * \param pub   out: 65-byte uncompressed key (caller's buffer)
 * \param flags WP_SECP256K1_STRICT or 0
 * \return WP_OK;
 *         WP_EINVAL  v not in {0, 1, 27, 28};
 *         WP_ERANGE  r or s zero or not below n;
 *         WP_EPROTO  s > n/2 with WP_SECP256K1_STRICT;
 *         WP_ECRYPTO no public key recovers (r is no curve x-coordinate);
 *         WP_ENOMEM  no context
 */
int wp_secp256k1_recover(uint8_t pub[WP_SECP256K1_PUB_LEN],
			 const uint8_t hash[WP_SECP256K1_HASH_LEN],
			 const uint8_t sig[WP_SECP256K1_SIG_LEN], unsigned flags);

#endif
