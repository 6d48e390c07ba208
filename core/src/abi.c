/* SPDX-License-Identifier: MIT */
/*
 * Solidity ABI: type parser, encoder, strict two-pass decoder, 256-bit
 * integer text conversions. See abi.h for the contracts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/hash.h"

/* ---- type parser --------------------------------------------------------- */

struct parser {
	const char *s;
	size_t len, pos;
	struct wp_abi_type *nodes;
	size_t used, cap;
	int err;
	size_t errpos;
};

static struct wp_abi_type *new_node(struct parser *p)
{
	struct wp_abi_type *t;

	if (p->used >= p->cap) {
		/* cannot happen: cap is an upper bound of the nodes a string of
		 * this length can describe; fail cleanly rather than overrun */
		p->err = WP_ERANGE;
		p->errpos = p->pos;
		return NULL;
	}
	t = &p->nodes[p->used++];
	memset(t, 0, sizeof(*t));
	return t;
}

static int fail(struct parser *p, int err, size_t pos)
{
	if (!p->err) {
		p->err = err;
		p->errpos = pos;
	}
	return err;
}

/* A decimal number without leading zeros, 1..limit. */
static int parse_number(struct parser *p, unsigned long limit, unsigned long *out)
{
	size_t start = p->pos;
	unsigned long v = 0;

	if (p->pos >= p->len || p->s[p->pos] < '1' || p->s[p->pos] > '9')
		return fail(p, WP_EINVAL, p->pos);
	while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		v = v * 10 + (unsigned long)(p->s[p->pos] - '0');
		if (v > limit)
			return fail(p, WP_ERANGE, start);
		p->pos++;
	}
	*out = v;
	return WP_OK;
}

static int is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '$';
}

static int parse_atomic(struct parser *p, struct wp_abi_type *t)
{
	size_t start = p->pos, n;
	const char *w = p->s + p->pos;
	unsigned long v;

	while (p->pos < p->len && p->s[p->pos] >= 'a' && p->s[p->pos] <= 'z')
		p->pos++;
	n = p->pos - start;
	t->head = WP_ABI_WORD;
	if (n == 4 && !memcmp(w, "uint", 4)) {
		t->kind = WP_ABI_UINT;
	} else if (n == 3 && !memcmp(w, "int", 3)) {
		t->kind = WP_ABI_INT;
	} else if (n == 7 && !memcmp(w, "address", 7)) {
		t->kind = WP_ABI_ADDRESS;
		return WP_OK;
	} else if (n == 4 && !memcmp(w, "bool", 4)) {
		t->kind = WP_ABI_BOOL;
		return WP_OK;
	} else if (n == 6 && !memcmp(w, "string", 6)) {
		t->kind = WP_ABI_STRING;
		t->dynamic = 1;
		return WP_OK;
	} else if (n == 5 && !memcmp(w, "bytes", 5)) {
		if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
			if (parse_number(p, 32, &v))
				return fail(p, WP_EINVAL, start);
			t->kind = WP_ABI_FBYTES;
			t->size = (uint16_t)v;
		} else {
			t->kind = WP_ABI_BYTES;
			t->dynamic = 1;
		}
		return WP_OK;
	} else {
		return fail(p, WP_EINVAL, start);
	}
	/* uintN / intN; bare uint / int mean 256 */
	t->size = 256;
	if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
		if (parse_number(p, 256, &v) || v % 8)
			return fail(p, WP_EINVAL, start);
		t->size = (uint16_t)v;
	}
	if (p->pos < p->len && is_ident(p->s[p->pos]))
		return fail(p, WP_EINVAL, start);
	return WP_OK;
}

static int add_size(size_t a, size_t b, size_t *out)
{
	if (a > SIZE_MAX - b)
		return WP_ERANGE;
	*out = a + b;
	return WP_OK;
}

static struct wp_abi_type *parse_list(struct parser *p, unsigned depth, char close,
				      unsigned *out_depth);

/* type := ( '(' list ')' | atomic ) ( '[' [k] ']' )* */
static struct wp_abi_type *parse_type(struct parser *p, unsigned depth, unsigned *out_depth)
{
	struct wp_abi_type *t, *a;
	size_t start = p->pos;
	unsigned d = 1;

	if (depth > WP_ABI_MAX_DEPTH) {
		fail(p, WP_ERANGE, p->pos);
		return NULL;
	}
	if (p->pos < p->len && p->s[p->pos] == '(') {
		p->pos++;
		t = parse_list(p, depth + 1, ')', &d);
		if (!t)
			return NULL;
		if (t->count == 0) {
			/* zero-sized: would let an array length exceed the data */
			fail(p, WP_EINVAL, start);
			return NULL;
		}
	} else {
		t = new_node(p);
		if (!t || parse_atomic(p, t))
			return NULL;
	}
	while (p->pos < p->len && p->s[p->pos] == '[') {
		size_t bpos = p->pos;
		unsigned long k = 0;

		p->pos++;
		if (++d > WP_ABI_MAX_DEPTH) {
			fail(p, WP_ERANGE, bpos);
			return NULL;
		}
		a = new_node(p);
		if (!a)
			return NULL;
		a->elem = t;
		if (p->pos < p->len && p->s[p->pos] == ']') {
			a->kind = WP_ABI_ARRAY;
			a->dynamic = 1;
			a->head = WP_ABI_WORD;
		} else {
			if (parse_number(p, WP_ABI_MAX_FIXED_LEN, &k))
				return NULL;   /* "0" lands here too: T[0] is zero-sized */
			if (p->pos >= p->len || p->s[p->pos] != ']') {
				fail(p, WP_EINVAL, p->pos);
				return NULL;
			}
			a->kind = WP_ABI_FARRAY;
			a->count = (uint32_t)k;
			a->dynamic = t->dynamic;
			if (t->dynamic) {
				a->head = WP_ABI_WORD;
			} else {
				if (t->head > WP_ABI_MAX_STATIC / k) {
					fail(p, WP_ERANGE, bpos);
					return NULL;
				}
				a->head = t->head * k;
			}
		}
		p->pos++;   /* ']' */
		t = a;
	}
	if (depth + d - 1 > WP_ABI_MAX_DEPTH) {
		fail(p, WP_ERANGE, start);
		return NULL;
	}
	*out_depth = d;
	return t;
}

/* list := [ type (',' type)* ], up to `close` (or the end for close == 0).
 * Returns a tuple node. */
static struct wp_abi_type *parse_list(struct parser *p, unsigned depth, char close,
				      unsigned *out_depth)
{
	struct wp_abi_type *tup = new_node(p), *m, *last = NULL;
	size_t head = 0;
	unsigned maxd = 0, d;

	if (!tup)
		return NULL;
	tup->kind = WP_ABI_TUPLE;
	if (p->pos < p->len && p->s[p->pos] == close && close) {
		p->pos++;
		*out_depth = 1;
		return tup;
	}
	if (!close && p->pos == p->len) {
		*out_depth = 1;
		return tup;
	}
	for (;;) {
		m = parse_type(p, depth, &d);
		if (!m)
			return NULL;
		if (d > maxd)
			maxd = d;
		if (last)
			last->next = m;
		else
			tup->first = m;
		last = m;
		tup->count++;
		tup->dynamic |= m->dynamic;
		if (add_size(head, m->head, &head) || head > WP_ABI_MAX_STATIC) {
			fail(p, WP_ERANGE, p->pos);
			return NULL;
		}
		if (p->pos < p->len && p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (close) {
			if (p->pos < p->len && p->s[p->pos] == close) {
				p->pos++;
				break;
			}
			fail(p, p->pos < p->len ? WP_EINVAL : WP_ETRUNC, p->pos);
			return NULL;
		}
		if (p->pos != p->len) {
			fail(p, WP_EINVAL, p->pos);
			return NULL;
		}
		break;
	}
	tup->head = tup->dynamic ? WP_ABI_WORD : head;
	*out_depth = maxd + 1;
	return tup;
}

static int parse_common(struct wp_abi_type **out, const char *s, size_t len,
			size_t start, int need_parens, size_t *errpos)
{
	struct parser p;
	struct wp_abi_type *root;
	unsigned d;

	*out = NULL;
	if (len > WP_ABI_MAX_TYPE_LEN) {
		if (errpos)
			*errpos = WP_ABI_MAX_TYPE_LEN;
		return WP_ERANGE;
	}
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.len = len;
	p.pos = start;
	/* every node but the implicit top tuple takes >= 2 characters */
	p.cap = len / 2 + 3;
	p.nodes = calloc(p.cap, sizeof(*p.nodes));
	if (!p.nodes)
		return WP_ENOMEM;
	if (len - start == 2 && s[start] == '(' && s[start + 1] == ')') {
		/* "()": the empty argument list (the only place an empty tuple
		 * is allowed) */
		root = new_node(&p);
		root->kind = WP_ABI_TUPLE;
		*out = root;
		return WP_OK;
	}
	root = parse_list(&p, 1, 0, &d);
	if (root && need_parens && !(root->count == 1 && root->first->kind == WP_ABI_TUPLE)) {
		/* "f(a),(b)" parses as a list of two tuples: not a signature */
		p.err = WP_EINVAL;
		p.errpos = start;
		root = NULL;
	}
	if (!root) {
		if (errpos)
			*errpos = p.errpos;
		free(p.nodes);
		return p.err ? p.err : WP_EINVAL;
	}
	/* "(a,b)" spells the argument tuple itself, not a list holding one
	 * tuple: unwrap when the whole text is one parenthesised tuple (a
	 * single member of kind TUPLE spans the whole text: suffixes would
	 * have made it an array). */
	if (root->count == 1 && root->first->kind == WP_ABI_TUPLE) {
		*root = *root->first;
		root->next = NULL;
	}
	*out = root;   /* == p.nodes: the block is freed through the root */
	return WP_OK;
}

int wp_abi_parse(struct wp_abi_type **out, const char *s, size_t len, size_t *errpos)
{
	return parse_common(out, s, len, 0, 0, errpos);
}

int wp_abi_parse_signature(struct wp_abi_type **out, size_t *name_len,
			   const char *s, size_t len, size_t *errpos)
{
	size_t i = 0;

	*out = NULL;
	if (len == 0 || (s[0] >= '0' && s[0] <= '9') || !is_ident(s[0])) {
		if (errpos)
			*errpos = 0;
		return WP_EINVAL;
	}
	while (i < len && is_ident(s[i]))
		i++;
	if (i == len || s[i] != '(' || s[len - 1] != ')') {
		if (errpos)
			*errpos = i;
		return WP_EINVAL;
	}
	*name_len = i;
	/* the parenthesised list "(...)" after the name is the argument tuple */
	return parse_common(out, s, len, i, 1, errpos);
}

void wp_abi_type_free(struct wp_abi_type *t)
{
	free(t);
}

static int canon(struct wp_buf *b, const struct wp_abi_type *t)
{
	char num[16];
	int n, rc;

	switch (t->kind) {
	case WP_ABI_UINT:
	case WP_ABI_INT:
		n = snprintf(num, sizeof(num), "%s%u", t->kind == WP_ABI_UINT ? "uint" : "int",
			     (unsigned)t->size);
		return wp_buf_append(b, num, (size_t)n);
	case WP_ABI_ADDRESS:
		return wp_buf_append(b, "address", 7);
	case WP_ABI_BOOL:
		return wp_buf_append(b, "bool", 4);
	case WP_ABI_FBYTES:
		n = snprintf(num, sizeof(num), "bytes%u", (unsigned)t->size);
		return wp_buf_append(b, num, (size_t)n);
	case WP_ABI_BYTES:
		return wp_buf_append(b, "bytes", 5);
	case WP_ABI_STRING:
		return wp_buf_append(b, "string", 6);
	case WP_ABI_ARRAY:
		if ((rc = canon(b, t->elem)))
			return rc;
		return wp_buf_append(b, "[]", 2);
	case WP_ABI_FARRAY:
		if ((rc = canon(b, t->elem)))
			return rc;
		n = snprintf(num, sizeof(num), "[%u]", (unsigned)t->count);
		return wp_buf_append(b, num, (size_t)n);
	case WP_ABI_TUPLE:
		if ((rc = wp_buf_push(b, '(')))
			return rc;
		for (const struct wp_abi_type *m = t->first; m; m = m->next) {
			if (m != t->first && (rc = wp_buf_push(b, ',')))
				return rc;
			if ((rc = canon(b, m)))
				return rc;
		}
		return wp_buf_push(b, ')');
	default:
		return WP_EINVAL;
	}
}

int wp_abi_type_canonical(struct wp_buf *b, const struct wp_abi_type *t)
{
	size_t mark = b->len;
	int rc = canon(b, t);

	if (rc)
		b->len = mark;
	return rc;
}

int wp_abi_signature_hash(uint8_t hash[32], struct wp_buf *canon_out,
			  const char *sig, size_t len, size_t *errpos)
{
	struct wp_abi_type *t;
	struct wp_buf tmp = WP_BUF_INIT, *b = canon_out ? canon_out : &tmp;
	size_t name_len, mark = b->len;
	int rc = wp_abi_parse_signature(&t, &name_len, sig, len, errpos);

	if (rc)
		return rc;
	rc = wp_buf_append(b, sig, name_len);
	if (!rc)
		rc = wp_abi_type_canonical(b, t);
	if (!rc)
		wp_keccak256(b->data + mark, b->len - mark, hash);
	else
		b->len = mark;
	wp_abi_type_free(t);
	wp_buf_free(&tmp);
	return rc;
}

/* ---- words --------------------------------------------------------------- */

static int all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i] ^ v;
	return acc == 0;
}

int wp_abi_int_fits(const uint8_t w[32], unsigned bits, int is_signed)
{
	size_t pad = 32 - bits / 8;

	if (bits == 0 || bits > 256 || bits % 8)
		return WP_ERANGE;
	if (!is_signed)
		return all_bytes(w, pad, 0) ? WP_OK : WP_ERANGE;
	if (pad == 0)
		return WP_OK;
	return all_bytes(w, pad, (w[pad] & 0x80) ? 0xff : 0) ? WP_OK : WP_ERANGE;
}

int wp_abi_word_check(const struct wp_abi_type *t, const uint8_t w[32])
{
	switch (t->kind) {
	case WP_ABI_UINT:
		return wp_abi_int_fits(w, t->size, 0) ? WP_EINVAL : WP_OK;
	case WP_ABI_INT:
		return wp_abi_int_fits(w, t->size, 1) ? WP_EINVAL : WP_OK;
	case WP_ABI_ADDRESS:
		return all_bytes(w, 12, 0) ? WP_OK : WP_EINVAL;
	case WP_ABI_BOOL:
		return all_bytes(w, 31, 0) && w[31] <= 1 ? WP_OK : WP_EINVAL;
	case WP_ABI_FBYTES:
		return all_bytes(w + t->size, 32 - t->size, 0) ? WP_OK : WP_EINVAL;
	default:
		return WP_EINVAL;
	}
}

static int is_word_kind(const struct wp_abi_type *t)
{
	return t->kind >= WP_ABI_UINT && t->kind <= WP_ABI_FBYTES;
}

/* A length or offset word: representable and returned in *v. */
static int word_size(const uint8_t w[32], size_t *v)
{
	uint64_t x = 0;

	if (!all_bytes(w, 24, 0))
		return WP_ERANGE;
	for (int i = 24; i < 32; i++)
		x = x << 8 | w[i];
	if (x > SIZE_MAX / 2)
		return WP_ERANGE;
	*v = (size_t)x;
	return WP_OK;
}

static void put_size(uint8_t w[32], size_t v)
{
	memset(w, 0, 24);
	for (int i = 31; i >= 24; i--) {
		w[i] = (uint8_t)v;
		v >>= 8;
	}
}

static size_t pad32(size_t n)
{
	return (n + 31) & ~(size_t)31;
}

/* ---- encoder ------------------------------------------------------------- */

static int value_size(const struct wp_abi_type *t, const struct wp_abi_value *v, size_t *size);

/* Size of a sequence of n items of types given by next_type(). */
static int seq_size(const struct wp_abi_type *elem, const struct wp_abi_type *first,
		    const struct wp_abi_value *items, size_t n, size_t *size)
{
	const struct wp_abi_type *t = elem ? elem : first;
	size_t total = 0, s;
	int rc;

	if (n && !items)
		return WP_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (!t)
			return WP_ERANGE;
		if ((rc = value_size(t, &items[i], &s)))
			return rc;
		if (t->dynamic && add_size(s, WP_ABI_WORD, &s))
			return WP_ERANGE;
		if (add_size(total, s, &total))
			return WP_ERANGE;
		if (!elem)
			t = t->next;
	}
	*size = total;
	return WP_OK;
}

static int value_size(const struct wp_abi_type *t, const struct wp_abi_value *v, size_t *size)
{
	size_t s;
	int rc;

	if (is_word_kind(t)) {
		if (v->len != WP_ABI_WORD || !v->data || wp_abi_word_check(t, v->data))
			return WP_EINVAL;
		*size = WP_ABI_WORD;
		return WP_OK;
	}
	switch (t->kind) {
	case WP_ABI_BYTES:
	case WP_ABI_STRING:
		if (v->len && !v->data)
			return WP_EINVAL;
		if (v->len > SIZE_MAX / 2)
			return WP_ERANGE;
		*size = WP_ABI_WORD + pad32(v->len);
		return WP_OK;
	case WP_ABI_ARRAY:
		if ((rc = seq_size(t->elem, NULL, v->items, v->count, &s)))
			return rc;
		return add_size(s, WP_ABI_WORD, size);
	case WP_ABI_FARRAY:
		if (v->count != t->count)
			return WP_ERANGE;
		return seq_size(t->elem, NULL, v->items, v->count, size);
	case WP_ABI_TUPLE:
		if (v->count != t->count)
			return WP_ERANGE;
		return seq_size(NULL, t->first, v->items, v->count, size);
	default:
		return WP_EINVAL;
	}
}

int wp_abi_encoded_size(size_t *size, const struct wp_abi_type *t,
			const struct wp_abi_value *v)
{
	return value_size(t, v, size);
}

static size_t write_value(uint8_t *out, const struct wp_abi_type *t, const struct wp_abi_value *v);

static size_t write_seq(uint8_t *out, const struct wp_abi_type *elem,
			const struct wp_abi_type *first, const struct wp_abi_value *items,
			size_t n)
{
	const struct wp_abi_type *t = elem ? elem : first;
	size_t head = 0, tail;

	for (size_t i = 0; i < n; i++) {
		head += t->head;
		if (!elem)
			t = t->next;
	}
	tail = head;
	head = 0;
	t = elem ? elem : first;
	for (size_t i = 0; i < n; i++) {
		if (t->dynamic) {
			put_size(out + head, tail);
			tail += write_value(out + tail, t, &items[i]);
		} else {
			write_value(out + head, t, &items[i]);
		}
		head += t->head;
		if (!elem)
			t = t->next;
	}
	return tail;
}

static size_t write_value(uint8_t *out, const struct wp_abi_type *t, const struct wp_abi_value *v)
{
	size_t n;

	if (is_word_kind(t)) {
		memcpy(out, v->data, WP_ABI_WORD);
		return WP_ABI_WORD;
	}
	switch (t->kind) {
	case WP_ABI_BYTES:
	case WP_ABI_STRING:
		put_size(out, v->len);
		n = pad32(v->len);
		if (v->len)
			memcpy(out + WP_ABI_WORD, v->data, v->len);
		memset(out + WP_ABI_WORD + v->len, 0, n - v->len);
		return WP_ABI_WORD + n;
	case WP_ABI_ARRAY:
		put_size(out, v->count);
		return WP_ABI_WORD + write_seq(out + WP_ABI_WORD, t->elem, NULL, v->items, v->count);
	case WP_ABI_FARRAY:
		return write_seq(out, t->elem, NULL, v->items, v->count);
	default:   /* WP_ABI_TUPLE, checked by value_size */
		return write_seq(out, NULL, t->first, v->items, v->count);
	}
}

int wp_abi_encode(struct wp_buf *b, const struct wp_abi_type *t, const struct wp_abi_value *v)
{
	size_t size;
	int rc = value_size(t, v, &size);

	if (rc)
		return rc;
	if ((rc = wp_buf_reserve(b, size)))
		return rc;
	if (write_value(b->data + b->len, t, v) != size)
		return WP_EPROTO;   /* internal inconsistency; never expected */
	b->len += size;
	return WP_OK;
}

/* ---- decoder ------------------------------------------------------------- */

struct dec {
	const uint8_t *data;
	size_t len;
	unsigned flags;
	size_t items, max_items;
	struct wp_abi_value *pool;   /* NULL in the counting pass */
	size_t used;
	size_t errpos;
	const char *why;
};

static int dfail(struct dec *d, int err, size_t pos, const char *why)
{
	d->errpos = pos;
	d->why = why;
	return err;
}

static struct wp_abi_value *dalloc(struct dec *d, size_t n)
{
	struct wp_abi_value *v;

	if (!d->pool)
		return NULL;
	v = d->pool + d->used;
	d->used += n;
	return v;
}

static int dec_value(struct dec *d, const struct wp_abi_type *t, size_t pos,
		     struct wp_abi_value *out, size_t *endpos);

/* n items at base (their heads first), element type elem or members from
 * first. *endpos receives the end of the last tail (canonical layout). */
static int dec_seq(struct dec *d, const struct wp_abi_type *elem,
		   const struct wp_abi_type *first, size_t n, size_t base,
		   struct wp_abi_value *items, size_t *endpos)
{
	const struct wp_abi_type *t = elem ? elem : first;
	size_t head = 0, tail, hp, off, end;
	int rc;

	if (n > d->max_items - d->items)
		return dfail(d, WP_EPROTO, base, "more values than allowed");
	d->items += n;
	/* head size: bounded (n <= data/32 for arrays, by the parser's static
	 * limits otherwise), but keep the arithmetic checked */
	for (size_t i = 0; i < n; i++) {
		if (!t)   /* a hand-built tuple whose count exceeds its members */
			return dfail(d, WP_EINVAL, base, "inconsistent type");
		if (add_size(head, t->head, &head))
			return dfail(d, WP_ERANGE, base, "head size overflows");
		if (!elem)
			t = t->next;
	}
	if (head > d->len - base)
		return dfail(d, WP_ETRUNC, base, "data ends inside a head");
	tail = base + head;
	hp = base;
	t = elem ? elem : first;
	for (size_t i = 0; i < n; i++) {
		struct wp_abi_value *it = items ? &items[i] : NULL;

		if (t->dynamic) {
			if (word_size(d->data + hp, &off))
				return dfail(d, WP_ERANGE, hp, "offset out of range");
			if (off > d->len - base)
				return dfail(d, WP_ERANGE, hp, "offset points past the data");
			if ((d->flags & WP_ABI_CANONICAL) && base + off != tail)
				return dfail(d, WP_EPROTO, hp, "offset is not canonical");
			if ((rc = dec_value(d, t, base + off, it, &end)))
				return rc;
			if (end > tail)
				tail = end;
		} else if ((rc = dec_value(d, t, hp, it, &end))) {
			return rc;
		}
		hp += t->head;
		if (!elem)
			t = t->next;
	}
	*endpos = tail;
	return WP_OK;
}

static int dec_value(struct dec *d, const struct wp_abi_type *t, size_t pos,
		     struct wp_abi_value *out, size_t *endpos)
{
	struct wp_abi_value *items = NULL;
	size_t n, room;

	if (is_word_kind(t)) {
		if (WP_ABI_WORD > d->len - pos)
			return dfail(d, WP_ETRUNC, pos, "data ends inside a word");
		if (wp_abi_word_check(t, d->data + pos))
			return dfail(d, WP_EINVAL, pos, t->kind == WP_ABI_BOOL ?
				     "bool is neither 0 nor 1" : "non-zero padding in a word");
		if (out) {
			out->data = d->data + pos;
			out->len = WP_ABI_WORD;
			out->count = 0;
			out->items = NULL;
		}
		*endpos = pos + WP_ABI_WORD;
		return WP_OK;
	}
	if (t->kind != WP_ABI_FARRAY && t->kind != WP_ABI_TUPLE) {
		/* bytes, string, T[]: a length word first */
		if (WP_ABI_WORD > d->len - pos)
			return dfail(d, WP_ETRUNC, pos, "data ends before a length");
		if (word_size(d->data + pos, &n))
			return dfail(d, WP_ERANGE, pos, "length out of range");
		room = d->len - pos - WP_ABI_WORD;
		if (t->kind == WP_ABI_ARRAY) {
			/* every element takes >= 32 head bytes (no zero-sized types) */
			if (n > room / t->elem->head)
				return dfail(d, WP_ETRUNC, pos, "array longer than the data");
			if (out && n)
				items = dalloc(d, n);
			if (out) {
				out->data = NULL;
				out->len = 0;
				out->count = n;
				out->items = items;
			}
			return dec_seq(d, t->elem, NULL, n, pos + WP_ABI_WORD, items, endpos);
		}
		if (n > room || pad32(n) > room)
			return dfail(d, WP_ETRUNC, pos, "byte string longer than the data");
		if (!all_bytes(d->data + pos + WP_ABI_WORD + n, pad32(n) - n, 0))
			return dfail(d, WP_EINVAL, pos + WP_ABI_WORD + n,
				     "non-zero padding after a byte string");
		if (out) {
			out->data = d->data + pos + WP_ABI_WORD;
			out->len = n;
			out->count = 0;
			out->items = NULL;
		}
		*endpos = pos + WP_ABI_WORD + pad32(n);
		return WP_OK;
	}
	n = t->count;
	if (out && n)
		items = dalloc(d, n);
	if (out) {
		out->data = NULL;
		out->len = 0;
		out->count = n;
		out->items = items;
	}
	if (t->kind == WP_ABI_FARRAY)
		return dec_seq(d, t->elem, NULL, n, pos, items, endpos);
	return dec_seq(d, NULL, t->first, n, pos, items, endpos);
}

static int dec_run(struct dec *d, const struct wp_abi_type *t, struct wp_abi_value *root)
{
	size_t end;
	int rc;

	d->items = 1;
	d->used = 0;
	if (root)
		d->used = 1;
	rc = dec_value(d, t, 0, root, &end);
	if (rc)
		return rc;
	if ((d->flags & WP_ABI_CANONICAL) && end != d->len)
		return dfail(d, WP_EPROTO, end, "bytes after the encoded data");
	return WP_OK;
}

int wp_abi_decode(struct wp_abi_value **out, const struct wp_abi_type *t,
		  const uint8_t *data, size_t len, unsigned flags,
		  size_t max_items, size_t *errpos, const char **why)
{
	struct dec d;
	struct wp_abi_value *pool;
	int rc;

	*out = NULL;
	memset(&d, 0, sizeof(d));
	d.data = data ? data : (const uint8_t *)"";
	d.len = data ? len : 0;
	d.flags = flags;
	d.max_items = max_items ? max_items : WP_ABI_DEFAULT_MAX_ITEMS;
	/* pass 1: validate and count; pass 2: fill one exact allocation */
	rc = dec_run(&d, t, NULL);
	if (rc)
		goto fail;
	pool = calloc(d.items, sizeof(*pool));
	if (!pool)
		return WP_ENOMEM;
	d.pool = pool;
	rc = dec_run(&d, t, pool);
	if (rc || d.used != d.items) {
		free(pool);
		if (!rc)
			rc = WP_EPROTO;
		goto fail;
	}
	*out = pool;
	return WP_OK;
fail:
	if (errpos)
		*errpos = d.errpos;
	if (why)
		*why = d.why;
	return rc;
}

/* ---- 256-bit integers as text -------------------------------------------- */

static void negate(uint8_t w[32])
{
	unsigned carry = 1;

	for (int i = 31; i >= 0; i--) {
		unsigned v = (uint8_t)~w[i] + carry;

		w[i] = (uint8_t)v;
		carry = v >> 8;
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int wp_abi_int_parse(uint8_t w[32], const char *s, size_t len, int allow_negative)
{
	int neg = 0;

	memset(w, 0, 32);
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		size_t n = len - 2;

		if (n == 0 || n > 64)
			return n ? WP_ERANGE : WP_EINVAL;
		for (size_t i = 0; i < n; i++) {
			int v = hexval(s[len - 1 - i]);

			if (v < 0)
				return WP_EINVAL;
			w[31 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
		}
	} else {
		if (len && s[0] == '-') {
			if (!allow_negative)
				return WP_ERANGE;
			neg = 1;
			s++;
			len--;
		}
		if (len == 0 || len > WP_ABI_DEC_MAX)
			return len ? WP_ERANGE : WP_EINVAL;
		for (size_t i = 0; i < len; i++) {
			unsigned carry;

			if (s[i] < '0' || s[i] > '9')
				return WP_EINVAL;
			carry = (unsigned)(s[i] - '0');
			for (int j = 31; j >= 0; j--) {
				unsigned v = w[j] * 10u + carry;

				w[j] = (uint8_t)v;
				carry = v >> 8;
			}
			if (carry)
				return WP_ERANGE;
		}
	}
	if (allow_negative) {
		if (neg) {
			/* magnitude up to 2^255 */
			if (w[0] > 0x80 || (w[0] == 0x80 && !all_bytes(w + 1, 31, 0)))
				return WP_ERANGE;
			negate(w);
		} else if (w[0] & 0x80) {
			return WP_ERANGE;
		}
	}
	return WP_OK;
}

size_t wp_abi_int_format(char out[WP_ABI_DEC_MAX + 1], const uint8_t word[32], int is_signed)
{
	uint32_t limb[8];
	uint8_t w[32];
	char tmp[WP_ABI_DEC_MAX + 1];
	size_t n = 0, o = 0;
	int neg = is_signed && (word[0] & 0x80);

	memcpy(w, word, 32);
	if (neg)
		negate(w);   /* -2^255 negates to itself: read unsigned below */
	for (size_t i = 0; i < 8; i++)
		limb[i] = (uint32_t)w[4 * i] << 24 | (uint32_t)w[4 * i + 1] << 16 |
			  (uint32_t)w[4 * i + 2] << 8 | w[4 * i + 3];
	/* repeated division by 10^9, least significant chunk first */
	for (;;) {
		uint64_t rem = 0;
		int zero = 1;

		for (int i = 0; i < 8; i++) {
			uint64_t cur = rem << 32 | limb[i];

			limb[i] = (uint32_t)(cur / 1000000000u);
			rem = cur % 1000000000u;
			zero &= limb[i] == 0;
		}
		for (int k = 0; k < 9; k++) {
			tmp[n++] = (char)('0' + rem % 10);
			rem /= 10;
			if (zero && rem == 0)
				break;
		}
		if (zero)
			break;
	}
	if (neg)
		out[o++] = '-';
	while (n)
		out[o++] = tmp[--n];
	out[o] = '\0';
	return o;
}

size_t wp_abi_word_skip_zeros(const uint8_t word[32])
{
	size_t i = 0;

	while (i < 32 && word[i] == 0)
		i++;
	return i;
}
