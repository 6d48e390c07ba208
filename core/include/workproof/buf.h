/* SPDX-License-Identifier: MIT */
/**
 * \file buf.h
 * \brief A tiny growable byte buffer (used by the RLP encoder; reusable).
 *
 * The buffer owns `data` (malloc'd). A zeroed struct (WP_BUF_INIT) is an
 * empty buffer that has allocated nothing. Growth is geometric so appending
 * byte by byte costs amortised O(1) and allocates O(log n) times.
 */
#ifndef WORKPROOF_BUF_H
#define WORKPROOF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct wp_buf {
	uint8_t *data;  /**< owned; NULL until the first reservation */
	size_t len;     /**< bytes in use */
	size_t cap;     /**< bytes allocated */
};

#define WP_BUF_INIT { NULL, 0, 0 }

/**
 * Make room for `extra` more bytes after len (does not change len).
 * \return WP_OK, or WP_ENOMEM (allocation failed or size overflow); on
 *         failure the buffer is unchanged.
 */
int wp_buf_reserve(struct wp_buf *b, size_t extra);

/**
 * Append n bytes copied from p (p may be NULL when n is 0).
 * \return WP_OK or WP_ENOMEM (buffer unchanged).
 */
int wp_buf_append(struct wp_buf *b, const void *p, size_t n);

/** Append one byte. \return WP_OK or WP_ENOMEM. */
int wp_buf_push(struct wp_buf *b, uint8_t byte);

/** Forget the contents but keep the allocation for reuse. */
static inline void wp_buf_reset(struct wp_buf *b)
{
	b->len = 0;
}

/** Free the allocation; the buffer is empty (WP_BUF_INIT) afterwards. */
void wp_buf_free(struct wp_buf *b);

/**
 * A kept allocation, for a caller that needs a large buffer on every call:
 * a fresh one that large comes from mmap and faults in page by page.
 * wp_buf_take() hands out what `slot` holds, empty (and leaves the slot
 * empty); wp_buf_keep() puts `b` back into an empty slot when its capacity is
 * at most `max`, and frees it otherwise.
 */
static inline struct wp_buf wp_buf_take(struct wp_buf *slot)
{
	struct wp_buf b = *slot;

	*slot = (struct wp_buf)WP_BUF_INIT;
	b.len = 0;
	return b;
}

static inline void wp_buf_keep(struct wp_buf *slot, struct wp_buf *b, size_t max)
{
	if (b->cap <= max && !slot->data)
		*slot = *b;
	else
		wp_buf_free(b);
}

#endif
