/* SPDX-License-Identifier: MIT */
/**
 * \file abi.h
 * \brief Solidity contract ABI: type strings, function selectors, event
 *        topics, encoding and a strict decoder for untrusted return data.
 *
 * Types are parsed once from their textual form ("uint256", "bytes32[2]",
 * "(address,string)[]", ...) into a small tree (struct wp_abi_type) that
 * lives in one allocation. A *type list* such as "address,uint256" or
 * "(address,uint256)" is the argument tuple of a call: both spellings mean
 * the same two-member tuple, exactly as Solidity's abi.encode(a, b) encodes
 * the tuple (a, b). To pass one tuple argument, wrap it twice: "((a,b))".
 *
 * Values are trees of struct wp_abi_value:
 *   - static atomic types (uintN, intN, address, bool, bytesN) carry their
 *     32-byte ABI word (`data`, len 32), exactly as it appears on the wire;
 *     the encoder checks that the word is valid for the type;
 *   - bytes and string carry their raw bytes (data, len);
 *   - arrays and tuples carry `count` items.
 * The decoder returns such a tree whose words and byte strings point into
 * the input (no copy), in one allocation the caller frees with free().
 *
 * Decoding is strict because return data comes from an untrusted node:
 * every offset and length is checked against the enclosing block without
 * overflow, padding must be zero (uintN high bits, intN sign extension,
 * address high bytes, bool 0/1, bytesN low bytes, bytes/string tail), and
 * the work is bounded. With WP_ABI_CANONICAL (what the Lua binding uses by
 * default) the input must also be the one canonical encoding: every offset
 * points exactly where the encoder would put the tail and nothing follows
 * the last byte, so that encode(decode(x)) == x.
 *
 * Type nesting is limited to WP_ABI_MAX_DEPTH; the encoder and decoder
 * recurse along the type, so their C stack use is bounded by that depth
 * whatever the data holds. Zero-sized types (the empty tuple "()" anywhere
 * but as the whole argument list, and fixed arrays T[0]) are refused, so
 * every array element takes at least 32 bytes of input and an array length
 * can never exceed what the data holds.
 */
#ifndef WORKPROOF_ABI_H
#define WORKPROOF_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/buf.h"

/** One ABI word. */
#define WP_ABI_WORD 32
/** Deepest type nesting (arrays and tuples) the parser accepts. */
#define WP_ABI_MAX_DEPTH 32
/** Longest type string the parser accepts. */
#define WP_ABI_MAX_TYPE_LEN 4096
/** Largest k in T[k]. */
#define WP_ABI_MAX_FIXED_LEN 65536
/** Largest static (head) size of one type, in bytes (16 MiB). */
#define WP_ABI_MAX_STATIC 16777216
/** Default bound on decoded values (nodes), see wp_abi_decode(). */
#define WP_ABI_DEFAULT_MAX_ITEMS 1000000
/** Longest decimal form of a 256-bit integer, sign included (no NUL). */
#define WP_ABI_DEC_MAX 79

enum wp_abi_kind {
	WP_ABI_UINT = 1,   /**< uintN, size = N bits (8..256) */
	WP_ABI_INT,        /**< intN, size = N bits */
	WP_ABI_ADDRESS,    /**< address (uint160 on the wire) */
	WP_ABI_BOOL,       /**< bool */
	WP_ABI_FBYTES,     /**< bytesN, size = N bytes (1..32) */
	WP_ABI_BYTES,      /**< bytes */
	WP_ABI_STRING,     /**< string */
	WP_ABI_ARRAY,      /**< T[] (elem) */
	WP_ABI_FARRAY,     /**< T[k] (elem, count = k) */
	WP_ABI_TUPLE,      /**< (T1,...,Tn) (first/next, count = n) */
};

/** A parsed type. Nodes live in one block owned by the root. */
struct wp_abi_type {
	uint8_t kind;                     /**< enum wp_abi_kind */
	uint8_t dynamic;                  /**< 1 if the type is dynamic */
	uint16_t size;                    /**< bits of uintN/intN, N of bytesN */
	uint32_t count;                   /**< k of T[k], members of a tuple */
	size_t head;                      /**< bytes it takes in a head: 32 if
					       dynamic, else its static size */
	const struct wp_abi_type *elem;   /**< element of an array */
	const struct wp_abi_type *first;  /**< first member of a tuple */
	const struct wp_abi_type *next;   /**< next sibling within a tuple */
};

/** A value tree node (see the file comment). */
struct wp_abi_value {
	const uint8_t *data;              /**< word or bytes; may be NULL if len 0 */
	size_t len;                       /**< 32 for words, byte length otherwise */
	size_t count;                     /**< items of an array or tuple */
	const struct wp_abi_value *items; /**< count items */
};

/** Flags of wp_abi_decode(). */
enum wp_abi_flags {
	/** Accept only the canonical encoding (offsets exactly where the
	 *  encoder puts tails, no trailing bytes). Without it, offsets may
	 *  point anywhere inside their block (as Solidity's abi.decode allows)
	 *  and bytes may follow the data; bounds and padding are still checked. */
	WP_ABI_CANONICAL = 1u << 0,
};

/**
 * \brief Parse a type list ("uint256,bytes", "(uint256,bytes)", "" for
 *        no arguments) into a tuple type.
 *
 * Accepted spellings: uintN/intN (N = 8..256, multiple of 8), uint/int
 * (aliases of uint256/int256), address, bool, bytesN (1..32), bytes,
 * string, T[], T[k], (T1,...,Tn). No whitespace.
 * \param out     receives the root; free it with wp_abi_type_free()
 * \param errpos  on error, the offset in s of the problem (may be NULL)
 * \return WP_OK; WP_EINVAL malformed (unknown type, bad size, empty tuple
 *         inside the list, T[0]); WP_ERANGE nested deeper than
 *         WP_ABI_MAX_DEPTH, string longer than WP_ABI_MAX_TYPE_LEN, k too
 *         large or static size over WP_ABI_MAX_STATIC; WP_ENOMEM.
 */
int wp_abi_parse(struct wp_abi_type **out, const char *s, size_t len,
		 size_t *errpos);

/**
 * \brief Parse a function or event signature "name(T1,...,Tn)".
 *
 * The name is a Solidity identifier ([A-Za-z_$][A-Za-z0-9_$]*).
 * \param name_len receives the length of the name (s[0..name_len))
 * \param out      receives the argument tuple (wp_abi_type_free())
 * \return as wp_abi_parse()
 */
int wp_abi_parse_signature(struct wp_abi_type **out, size_t *name_len,
			   const char *s, size_t len, size_t *errpos);

/** Free a tree returned by wp_abi_parse*() (NULL is fine). */
void wp_abi_type_free(struct wp_abi_type *t);

/**
 * \brief Append the canonical spelling of t ("uint256" for "uint", a
 *        tuple as "(T1,...,Tn)") to b.
 * \return WP_OK or WP_ENOMEM
 */
int wp_abi_type_canonical(struct wp_buf *b, const struct wp_abi_type *t);

/**
 * \brief Canonical signature and its Keccak-256: the selector is hash[0..4),
 *        an event's topic 0 is the whole hash.
 * \param canon  if not NULL, receives the canonical signature (appended)
 * \param hash   32 bytes out
 * \return as wp_abi_parse_signature(), or WP_ENOMEM
 */
int wp_abi_signature_hash(uint8_t hash[32], struct wp_buf *canon,
			  const char *sig, size_t len, size_t *errpos);

/**
 * \brief Encoded size of v as type t, after checking that v fits t
 *        (item counts, valid words).
 * \return WP_OK and *size; WP_EINVAL (a word is invalid for its type, or
 *         a NULL data with a non-zero length); WP_ERANGE (an item count
 *         differs from a tuple's or fixed array's, or the size overflows)
 */
int wp_abi_encoded_size(size_t *size, const struct wp_abi_type *t,
			const struct wp_abi_value *v);

/**
 * \brief Append the ABI encoding of v (type t) to b.
 * \return WP_OK, WP_ENOMEM, or an error of wp_abi_encoded_size() (b is
 *         unchanged on error)
 */
int wp_abi_encode(struct wp_buf *b, const struct wp_abi_type *t,
		  const struct wp_abi_value *v);

/**
 * \brief Decode data[0..len) as type t (strict, see the file comment).
 *
 * \param out        receives the value tree: one malloc'd block the caller
 *                   frees with free(); words and byte strings point into
 *                   `data`, which must outlive the tree
 * \param flags      WP_ABI_CANONICAL or 0
 * \param max_items  bound on value nodes (0 = WP_ABI_DEFAULT_MAX_ITEMS);
 *                   without WP_ABI_CANONICAL, aliased offsets could
 *                   otherwise make a small input decode to a huge tree
 * \param errpos     on error, the offset in data of the offending word
 *                   (may be NULL)
 * \param why        on error, a static description (may be NULL)
 * \return WP_OK; WP_ETRUNC data too short for a head, a tail or a length;
 *         WP_ERANGE an offset or length out of its block (or not
 *         representable); WP_EINVAL a word with non-zero padding or an
 *         invalid bool; WP_EPROTO non-canonical layout (with
 *         WP_ABI_CANONICAL) or more than max_items values; WP_ENOMEM
 */
int wp_abi_decode(struct wp_abi_value **out, const struct wp_abi_type *t,
		  const uint8_t *data, size_t len, unsigned flags,
		  size_t max_items, size_t *errpos, const char **why);

/**
 * \brief Check that a 32-byte word is a valid value of the static atomic
 *        type t (padding zero, sign extension, bool 0/1).
 * \return WP_OK or WP_EINVAL
 */
int wp_abi_word_check(const struct wp_abi_type *t, const uint8_t word[32]);

/* ---- 256-bit integers as text ------------------------------------------- */

/**
 * \brief Parse an integer into a 32-byte big-endian two's-complement word.
 *
 * Accepted: decimal digits with an optional leading '-' (only with
 * allow_negative), or "0x"/"0X" and 1..64 hex digits (non-negative).
 * No whitespace, no '+', no empty digits.
 * \return WP_OK; WP_EINVAL malformed; WP_ERANGE out of range (above
 *         2^256 - 1, or below -2^255 / above 2^255 - 1 when negative
 *         values are allowed and the number is negative)
 */
int wp_abi_int_parse(uint8_t word[32], const char *s, size_t len,
		     int allow_negative);

/**
 * \brief Check that the 256-bit word w, read as unsigned (is_signed 0) or
 *        two's complement (1), fits an integer of `bits` bits.
 * \return WP_OK or WP_ERANGE
 */
int wp_abi_int_fits(const uint8_t word[32], unsigned bits, int is_signed);

/**
 * \brief Decimal text of a 256-bit word read as unsigned or two's
 *        complement. out receives up to WP_ABI_DEC_MAX chars and a NUL.
 * \return the length written (without the NUL)
 */
size_t wp_abi_int_format(char out[WP_ABI_DEC_MAX + 1], const uint8_t word[32],
			 int is_signed);

/**
 * \brief Minimal big-endian bytes of an unsigned word: skips leading zero
 *        bytes. \return the offset of the first significant byte (32 for 0).
 */
size_t wp_abi_word_skip_zeros(const uint8_t word[32]);

#endif
