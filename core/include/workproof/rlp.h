/* SPDX-License-Identifier: MIT */
/**
 * \file rlp.h
 * \brief Ethereum RLP (Recursive Length Prefix): an encoder and a strict,
 *        canonical, non-recursive decoder.
 *
 * Encoding comes in two styles: appenders into a growable wp_buf (lists by
 * wp_rlp_list_begin/end, which back-patch the header), and length/write
 * pairs for a buffer the caller sized.
 *
 * Decoding is a pull reader that walks the input without recursion and
 * without allocation: hostile nesting can neither overflow the C stack nor
 * exhaust memory, and it stops at WP_RLP_MAX_DEPTH. It accepts only the
 * canonical encoding, as geth does: the single byte < 0x80 wrapped as a
 * 1-byte string, the long form for a length < 56, leading zero bytes in a
 * long length, an item that overruns its list or the input, a list whose
 * payload its items do not consume exactly, and bytes after the top-level
 * item are all errors with a code and the offset of the offending header.
 */
#ifndef WORKPROOF_RLP_H
#define WORKPROOF_RLP_H

#include <stddef.h>
#include <stdint.h>

#include "workproof/buf.h"

/** Deepest list nesting the decoder accepts (the top-level list is 1). */
#define WP_RLP_MAX_DEPTH 1024
/** Longest possible item header: a prefix byte and 8 length bytes. */
#define WP_RLP_MAX_HEADER 9

/* ---- encoding ------------------------------------------------------------ */

/**
 * Minimal big-endian bytes of v: 0 gives no bytes, 1..255 one byte, ...
 * \return the number of bytes written to out (0..8).
 */
size_t wp_rlp_uint_bytes(uint64_t v, uint8_t out[8]);

/** Encoded size of the byte string s[0..n) (header included). */
size_t wp_rlp_string_len(const void *s, size_t n);

/** Size of the header of a list whose items take payload_len bytes. */
size_t wp_rlp_list_header_len(size_t payload_len);

/**
 * Write the encoding of s[0..n) to out, which must hold
 * wp_rlp_string_len(s, n) bytes and must not overlap s.
 * \return bytes written.
 */
size_t wp_rlp_write_string(uint8_t *out, const void *s, size_t n);

/**
 * Write the header of a list with payload_len payload bytes to out, which
 * must hold wp_rlp_list_header_len(payload_len) bytes; the caller writes
 * the encoded items after it.
 * \return bytes written.
 */
size_t wp_rlp_write_list_header(uint8_t *out, size_t payload_len);

/** Append the encoding of s[0..n). \return WP_OK or WP_ENOMEM. */
int wp_rlp_put_string(struct wp_buf *b, const void *s, size_t n);

/** Append v as a string of its minimal big-endian bytes (0 is 0x80). */
int wp_rlp_put_uint(struct wp_buf *b, uint64_t v);

/**
 * Open a list: remember in *mark where its payload starts. Append its
 * items, then close it with wp_rlp_list_end(b, mark). Lists nest.
 * \return WP_OK (cannot fail; kept int for symmetry).
 */
int wp_rlp_list_begin(struct wp_buf *b, size_t *mark);

/**
 * Close the list opened at mark: inserts its header in front of the
 * payload (moving the payload by the header size).
 * \return WP_OK, WP_ENOMEM, or WP_EINVAL if mark is past the end.
 */
int wp_rlp_list_end(struct wp_buf *b, size_t mark);

/* ---- decoding ------------------------------------------------------------ */

/** What wp_rlp_read() found. Errors are the negative wp_err codes. */
enum wp_rlp_event {
	WP_RLP_STRING = 1,  /**< a byte string: item.payload, item.len */
	WP_RLP_LIST = 2,    /**< a list opened: its items follow, then END */
	WP_RLP_END = 3,     /**< the innermost open list is complete */
	WP_RLP_DONE = 4,    /**< the top-level item is complete, input used up */
};

/** One decoded item header. payload points into the reader's input. */
struct wp_rlp_item {
	const uint8_t *payload; /**< string bytes or the list's payload */
	size_t len;             /**< payload length */
	size_t offset;          /**< offset of the item's header in the input */
	size_t header;          /**< header length (0 for a single byte < 0x80) */
};

/**
 * Reader state. Plain value, no allocation; about 8 KiB because it keeps
 * the end offset of every open list. The input must outlive the reader.
 */
struct wp_rlp_reader {
	const uint8_t *in;
	size_t len;
	size_t pos;
	unsigned depth;         /**< lists currently open */
	int state;              /**< 0 reading, 1 top done, or a latched error */
	size_t err_offset;      /**< where the first error was found */
	const char *err_reason; /**< static text describing it, or NULL */
	size_t end[WP_RLP_MAX_DEPTH];
};

/** Start reading in[0..len), which must hold exactly one RLP item. */
void wp_rlp_reader_init(struct wp_rlp_reader *r, const void *in, size_t len);

/**
 * Next event of a depth-first walk of the item. Every valid input yields
 * a well-nested sequence of STRING, LIST ... END events and then DONE.
 * \param it  filled for STRING and LIST (may be NULL)
 * \return an enum wp_rlp_event, or a negative error that is latched (every
 *         later call returns it again):
 *         WP_ETRUNC  the input ends before an item does (empty input too)
 *         WP_EINVAL  non-canonical encoding, an item overrunning its list,
 *                    or bytes after the top-level item
 *         WP_ERANGE  nesting deeper than WP_RLP_MAX_DEPTH
 *         r->err_offset and r->err_reason say where and what.
 */
int wp_rlp_read(struct wp_rlp_reader *r, struct wp_rlp_item *it);

/**
 * Check that in[0..len) is exactly one canonical RLP item.
 * \param err_offset, err_reason  set on error (either may be NULL)
 * \return WP_OK or an error of wp_rlp_read().
 */
int wp_rlp_validate(const void *in, size_t len, size_t *err_offset,
		    const char **err_reason);

#endif
