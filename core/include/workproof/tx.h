/* SPDX-License-Identifier: MIT */
/**
 * \file tx.h
 * \brief Ethereum transactions: legacy (pre-EIP-155 and EIP-155), EIP-2930
 *        (type 1) and EIP-1559 (type 2): signing hash, signed encoding,
 *        transaction hash, strict decoding and sender recovery.
 *
 * Integers are big-endian byte strings of up to 32 bytes (struct wp_tx_int);
 * leading zero bytes are allowed on input and stripped, because RLP wants
 * the minimal form. Encodings:
 *   legacy    rlp([nonce, gasPrice, gas, to, value, data, v, r, s]); signed
 *             over rlp([6 fields]) or, with a chain id (EIP-155),
 *             rlp([6 fields, chainId, 0, 0]); v = 27 + y or
 *             chainId * 2 + 35 + y
 *   type 1    0x01 ‖ rlp([chainId, nonce, gasPrice, gas, to, value, data,
 *             accessList, yParity, r, s])
 *   type 2    0x02 ‖ rlp([chainId, nonce, maxPriorityFeePerGas,
 *             maxFeePerGas, gas, to, value, data, accessList, yParity, r, s])
 * The signing hash is keccak256 of the encoding without the signature
 * fields; the transaction hash is keccak256 of the signed encoding.
 * Signatures use RFC 6979 nonces and low s (wp_secp256k1_sign).
 */
#ifndef WORKPROOF_TX_H
#define WORKPROOF_TX_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/buf.h"

enum wp_tx_type {
	WP_TX_LEGACY = 0,
	WP_TX_EIP2930 = 1,
	WP_TX_EIP1559 = 2,
};

/** Largest chain id a legacy EIP-155 transaction may carry here: v =
 *  chainId * 2 + 36 must fit 64 bits. */
#define WP_TX_LEGACY_MAX_CHAIN_ID 0x3fffffffffffffefULL

/** An unsigned integer, big-endian, up to 32 bytes (be may be NULL if len 0). */
struct wp_tx_int {
	const uint8_t *be;
	size_t len;
};

/** One access list entry: an address and its storage keys. */
struct wp_tx_access {
	const uint8_t *address;    /**< 20 bytes */
	const uint8_t *keys;       /**< nkeys * 32 bytes, contiguous */
	size_t nkeys;
};

/**
 * A transaction. Which fields matter depends on `type`: gas_price for
 * legacy and type 1, the two fee caps for type 2, the access list for
 * types 1 and 2. For legacy, has_chain_id selects EIP-155.
 */
struct wp_tx {
	int type;                        /**< enum wp_tx_type */
	int has_chain_id;                /**< legacy only: EIP-155 signing */
	struct wp_tx_int chain_id;
	struct wp_tx_int nonce;
	struct wp_tx_int gas_price;
	struct wp_tx_int max_priority_fee;
	struct wp_tx_int max_fee;
	struct wp_tx_int gas;
	const uint8_t *to;               /**< 20 bytes, or NULL: contract creation */
	struct wp_tx_int value;
	const uint8_t *data;             /**< may be NULL if data_len is 0 */
	size_t data_len;
	const struct wp_tx_access *access_list;
	size_t access_len;
	/* signature: set by wp_tx_decode(), ignored by the encoders */
	unsigned y_parity;               /**< 0 or 1 */
	struct wp_tx_int r, s;
	struct wp_tx_int v;              /**< legacy: the v as it was on the wire */
	/* owned by a decoded transaction (wp_tx_clear frees it) */
	struct wp_tx_access *owned_access;
	uint8_t chain_id_buf[8];         /**< a legacy chain id derived from v */
};

/**
 * \brief Append the payload that is signed (type byte included for typed
 *        transactions) to b.
 * \return WP_OK; WP_ERANGE an integer longer than 32 bytes, or a legacy
 *         chain id above WP_TX_LEGACY_MAX_CHAIN_ID; WP_EINVAL unknown type
 *         or NULL data with a length; WP_ENOMEM (b unchanged on error)
 */
int wp_tx_encode_unsigned(struct wp_buf *b, const struct wp_tx *tx);

/** keccak256 of wp_tx_encode_unsigned(). \return as that function */
int wp_tx_signing_hash(uint8_t hash[32], const struct wp_tx *tx);

/**
 * \brief Sign tx with a secret key: append the signed encoding to raw and
 *        write the transaction hash.
 * \param hash  32 bytes out (may be NULL)
 * \return WP_OK; errors of wp_tx_encode_unsigned(); WP_EINVAL invalid
 *         secret key; WP_ECRYPTO unrepresentable signature (probability
 *         ~2^-127); WP_ENOMEM
 */
int wp_tx_sign(struct wp_buf *raw, uint8_t hash[32], const struct wp_tx *tx,
	       const uint8_t secret[32]);

/**
 * \brief Append the signed encoding of tx with the signature (y_parity,
 *        r, s) given in the struct; for legacy, v is computed from
 *        y_parity and the chain id.
 * \return as wp_tx_encode_unsigned()
 */
int wp_tx_encode_signed(struct wp_buf *raw, const struct wp_tx *tx);

/**
 * \brief Strictly decode a signed transaction (legacy, type 1 or type 2).
 *
 * The fields point into raw, which must outlive tx; a non-empty access
 * list is allocated (free it with wp_tx_clear()). Rejected: non-canonical
 * RLP, a wrong field count, integers with leading zeros or longer than 32
 * bytes (nonce and gas longer than 8), a `to` that is neither empty nor
 * 20 bytes, malformed access list entries, yParity not 0/1, r or s zero
 * or empty, a legacy v that is neither 27/28 nor >= 37, an unknown type.
 * \param errpos  on error, an offset into raw (may be NULL)
 * \param why     on error, a static description (may be NULL)
 * \return WP_OK, WP_EINVAL, WP_ETRUNC, WP_ERANGE, WP_ENOMEM
 */
int wp_tx_decode(struct wp_tx *tx, const uint8_t *raw, size_t len,
		 size_t *errpos, const char **why);

/** Free what wp_tx_decode() allocated; tx must not be used afterwards. */
void wp_tx_clear(struct wp_tx *tx);

/**
 * \brief Recover the sender of a decoded (signed) transaction.
 *
 * High-s signatures are refused (EIP-2), as every Ethereum node does.
 * \param addr  20 bytes out
 * \return WP_OK; errors of wp_tx_signing_hash(); WP_ERANGE r or s longer
 *         than 32 bytes, zero or not below n; WP_EPROTO high s;
 *         WP_ECRYPTO nothing recovers
 */
int wp_tx_sender(uint8_t addr[20], const struct wp_tx *tx);

#endif
