/* SPDX-License-Identifier: MIT */
/**
 * \file eip712.h
 * \brief EIP-712 typed structured data hashing, the EIP-3009
 *        TransferWithAuthorization message (x402 "exact" scheme) and the
 *        EIP-191 personal_sign hash.
 *
 * A set of struct types is compiled once (wp_eip712_types_new): field types
 * are resolved to atomic types (uintN, intN, address, bool, bytesN),
 * dynamic bytes/string, other structs, and arrays of any of these
 * ("Person[]", "uint256[2][]"); every struct's encodeType and typeHash are
 * computed then. Struct values are wp_abi_value trees (abi.h) in field
 * order:
 *   - atomic fields: the 32-byte ABI word (checked against the type);
 *   - bytes / string: the raw bytes (hashed with Keccak-256);
 *   - a struct field: a node with one item per field of that struct;
 *   - an array: a node with one item per element (T[k] must have k).
 * hashStruct(s) = keccak256(typeHash(s) ‖ encodeData(s)), arrays encoded as
 * the Keccak-256 of their elements' concatenated encodings, as the EIP
 * specifies (and eth_signTypedData_v4 implements).
 *
 * Everything here works on caller buffers except the compiled types, which
 * own a copy of every name they were given.
 */
#ifndef WORKPROOF_EIP712_H
#define WORKPROOF_EIP712_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/abi.h"
#include "workproof/buf.h"

/** Most array dimensions on one field type ("T[][2]..."). */
#define WP_EIP712_MAX_DIMS 8
/** Deepest struct/array nesting of a value tree that is hashed. */
#define WP_EIP712_MAX_DEPTH 64
/** Largest k of a fixed array T[k]. */
#define WP_EIP712_MAX_FIXED 65536

/** Kind of a field's base type: the atomic kinds of enum wp_abi_kind
 *  (WP_ABI_UINT .. WP_ABI_STRING) or a struct. */
#define WP_EIP712_STRUCT 100

/** A field as the caller describes it (like one eth_signTypedData entry). */
struct wp_eip712_field {
	const char *name;
	size_t name_len;
	const char *type;   /**< "uint256", "Person", "bytes32[]", ... */
	size_t type_len;
};

/** A struct type as the caller describes it. */
struct wp_eip712_struct {
	const char *name;
	size_t name_len;
	const struct wp_eip712_field *fields;
	size_t nfields;
};

/** A compiled field type (read-only view for bindings that build values). */
struct wp_eip712_ftype {
	const char *name;       /**< field name (NUL-terminated copy) */
	size_t name_len;
	uint8_t kind;           /**< WP_ABI_UINT..WP_ABI_STRING or WP_EIP712_STRUCT */
	uint16_t size;          /**< bits of uintN/intN, N of bytesN */
	int struct_idx;         /**< for WP_EIP712_STRUCT */
	unsigned ndims;         /**< array dimensions, 0 for a plain field */
	uint32_t dims[WP_EIP712_MAX_DIMS]; /**< in textual order; 0 = dynamic;
					        dims[ndims-1] is the outermost */
};

/** Compiled types (opaque). */
struct wp_eip712_types;

/** The EIP712Domain fields; a NULL pointer leaves that field out. */
struct wp_eip712_domain {
	const char *name;
	size_t name_len;
	const char *version;
	size_t version_len;
	const uint8_t *chain_id;            /**< 32-byte big-endian word */
	const uint8_t *verifying_contract;  /**< 20 bytes */
	const uint8_t *salt;                /**< 32 bytes */
};

/** EIP-3009 TransferWithAuthorization(address from,address to,uint256
 *  value,uint256 validAfter,uint256 validBefore,bytes32 nonce). */
struct wp_eip3009_auth {
	const uint8_t *from;          /**< 20 bytes */
	const uint8_t *to;            /**< 20 bytes */
	const uint8_t *value;         /**< 32-byte big-endian word */
	const uint8_t *valid_after;   /**< 32-byte big-endian word */
	const uint8_t *valid_before;  /**< 32-byte big-endian word */
	const uint8_t *nonce;         /**< 32 bytes */
};

/** keccak256("TransferWithAuthorization(address from,address to,uint256
 *  value,uint256 validAfter,uint256 validBefore,bytes32 nonce)") */
extern const uint8_t wp_eip3009_transfer_typehash[32];

/**
 * \brief Compile struct types.
 *
 * Struct names are identifiers ([A-Za-z_$][A-Za-z0-9_$]*) and unique; field
 * names unique within their struct; every field type is an atomic EIP-712
 * type spelled canonically ("uint256", not "uint"), bytes, string, or the
 * name of one of the structs, followed by up to WP_EIP712_MAX_DIMS array
 * suffixes "[]" / "[k]" (1 <= k <= WP_EIP712_MAX_FIXED).
 * \param out         receives the types (wp_eip712_types_free())
 * \param err_struct  on WP_EINVAL, the index of the offending struct
 * \param err_field   ... and of its field, or (size_t)-1 for the struct
 *                    itself (either pointer may be NULL)
 * \return WP_OK, WP_EINVAL or WP_ENOMEM
 */
int wp_eip712_types_new(struct wp_eip712_types **out,
			const struct wp_eip712_struct *structs, size_t n,
			size_t *err_struct, size_t *err_field);

/** Free compiled types (NULL is fine). */
void wp_eip712_types_free(struct wp_eip712_types *t);

/** Index of the struct called name[0..len), or -1. */
int wp_eip712_struct_index(const struct wp_eip712_types *t, const char *name, size_t len);

/** Number of fields of struct idx (0 for a bad index). */
size_t wp_eip712_nfields(const struct wp_eip712_types *t, int idx);

/** Field f of struct idx, or NULL for bad indexes. Owned by t. */
const struct wp_eip712_ftype *wp_eip712_field(const struct wp_eip712_types *t, int idx,
					      size_t f);

/**
 * \brief encodeType of struct idx ("Mail(Person from,...)Person(...)"),
 *        appended to b (no NUL).
 * \return WP_OK, WP_EINVAL (bad index) or WP_ENOMEM
 */
int wp_eip712_encode_type(struct wp_buf *b, const struct wp_eip712_types *t, int idx);

/** typeHash of struct idx (precomputed). \return WP_OK or WP_EINVAL */
int wp_eip712_type_hash(uint8_t out[32], const struct wp_eip712_types *t, int idx);

/**
 * \brief encodeData of a struct value (typeHash first, then one 32-byte
 *        word per field), appended to b.
 * \return WP_OK; WP_EINVAL a word invalid for its type or a bad index;
 *         WP_ERANGE a struct value without one item per field, a fixed
 *         array with the wrong element count, or nesting deeper than
 *         WP_EIP712_MAX_DEPTH; WP_ENOMEM
 */
int wp_eip712_encode_data(struct wp_buf *b, const struct wp_eip712_types *t, int idx,
			  const struct wp_abi_value *v);

/** hashStruct of a struct value. \return as wp_eip712_encode_data() */
int wp_eip712_hash_struct(uint8_t out[32], const struct wp_eip712_types *t, int idx,
			  const struct wp_abi_value *v);

/** out = keccak256(0x19 0x01 ‖ domain_separator ‖ struct_hash). */
void wp_eip712_digest(uint8_t out[32], const uint8_t domain_separator[32],
		      const uint8_t struct_hash[32]);

/**
 * \brief Domain separator: hashStruct of EIP712Domain with the fields the
 *        domain has, in the EIP's order (name, version, chainId,
 *        verifyingContract, salt).
 * \return WP_OK, or WP_EINVAL when no field is present
 */
int wp_eip712_domain_separator(uint8_t out[32], const struct wp_eip712_domain *d);

/** hashStruct of a TransferWithAuthorization message. */
void wp_eip3009_transfer_hash(uint8_t out[32], const struct wp_eip3009_auth *a);

/**
 * \brief The digest a payer signs for a TransferWithAuthorization:
 *        wp_eip712_digest(domain_separator, wp_eip3009_transfer_hash(a)).
 */
void wp_eip3009_transfer_digest(uint8_t out[32], const uint8_t domain_separator[32],
				const struct wp_eip3009_auth *a);

/**
 * \brief EIP-191 version 0x45 (personal_sign) hash:
 *        keccak256("\x19Ethereum Signed Message:\n" ‖ decimal(len) ‖ msg).
 */
void wp_eip191_hash(uint8_t out[32], const void *msg, size_t len);

#endif
