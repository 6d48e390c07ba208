/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "workproof/buf.h"
#include "workproof/common.h"

int wp_buf_reserve(struct wp_buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len)
		return WP_ENOMEM;
	need = b->len + extra;
	if (need <= b->cap)
		return WP_OK;
	/* Double (at least 64 bytes) so that repeated small appends stay
	 * amortised O(1); fall back to the exact size near SIZE_MAX. */
	cap = b->cap < 64 ? 64 : b->cap;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		return WP_ENOMEM;
	b->data = p;
	b->cap = cap;
	return WP_OK;
}

int wp_buf_append(struct wp_buf *b, const void *p, size_t n)
{
	int rc;

	if (!n)
		return WP_OK;
	rc = wp_buf_reserve(b, n);
	if (rc)
		return rc;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return WP_OK;
}

int wp_buf_push(struct wp_buf *b, uint8_t byte)
{
	if (b->len == b->cap) {
		int rc = wp_buf_reserve(b, 1);

		if (rc)
			return rc;
	}
	b->data[b->len++] = byte;
	return WP_OK;
}

void wp_buf_free(struct wp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
