/* SPDX-License-Identifier: MIT */
/*
 * JSON as JavaScript reads and prints it (include/workproof/json.h): the
 * canonical text (JSON.stringify(JSON.parse(text))) in one pass over the
 * text, no tree. An object's members are printed in source order as they
 * are read; only an object with an array-index key or a repeated key is
 * then reordered in place (its members' spans recorded on a stack).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ryu/ryu.h"
#include "workproof/common.h"
#include "workproof/json.h"

/* Past this the nesting limit is not the caller's to raise: the parser
 * recurses once per level. */
#define MAX_DEPTH_CAP 4096

struct member {
	size_t key_off, key_len; /* the decoded key, in p->keys */
	size_t start, end;       /* "key":value in p->out */
};

struct parser {
	const unsigned char *s;
	size_t n, pos;
	unsigned max_depth;
	struct wp_buf *out;
	struct wp_buf keys; /* decoded keys of the open objects */
	struct member *mem; /* members of the open objects */
	size_t nmem, capmem;
	int strict; /* a request: lone surrogates and numbers beyond the double range fail */
	int rc;     /* WP_OK until the first failure */
	char *err;
	size_t errsz;
};

static int fail(struct parser *p, size_t at, const char *msg)
{
	if (p->rc == WP_OK) {
		p->rc = WP_EINVAL;
		if (p->errsz)
			snprintf(p->err, p->errsz, "%s at byte %zu", msg, at + 1);
	}
	return p->rc;
}

static int nomem(struct parser *p)
{
	if (p->rc == WP_OK) {
		p->rc = WP_ENOMEM;
		if (p->errsz)
			snprintf(p->err, p->errsz, "out of memory");
	}
	return p->rc;
}

/* Append to b; the room reserved up front makes the copy the usual path. */
static inline int put(struct parser *p, struct wp_buf *b, const void *d, size_t n)
{
	if (n && b->cap - b->len >= n) {
		memcpy(b->data + b->len, d, n);
		b->len += n;
		return WP_OK;
	}
	return wp_buf_append(b, d, n) ? nomem(p) : WP_OK;
}

#define PUTS(p, b, lit) put(p, b, lit, sizeof(lit) - 1)

/* Offset of the first byte that is not valid UTF-8, or n. */
static size_t utf8_bad(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c, len, k;
		uint32_t cp, min;
		uint64_t w;

		/* eight ASCII bytes at a time */
		while (n - i >= 8 && (memcpy(&w, s + i, 8), !(w & 0x8080808080808080ull)))
			i += 8;
		if (i >= n)
			break;
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			min = 0x80;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			min = 0x800;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			min = 0x10000;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (n - i < len)
			return i;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += len;
	}
	return n;
}

int wp_utf8_valid(const char *s, size_t n)
{
	return utf8_bad((const unsigned char *)s, n) == n;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->n) {
		unsigned char c = p->s[p->pos];

		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		p->pos++;
	}
}

/* --- strings ---------------------------------------------------------------- */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* The 4 hex digits at s[i..i+4) as a code unit, or -1. */
static long hex4(const struct parser *p, size_t i)
{
	long v = 0;
	size_t k;

	if (i > p->n || p->n - i < 4)
		return -1;
	for (k = 0; k < 4; k++) {
		int h = hexval(p->s[i + k]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t utf8_enc(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xc0 | (cp >> 6));
		o[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (cp >> 12));
		o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (cp >> 18));
	o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/* How JSON.stringify prints a character it escapes (c < 0x20, '"', '\\'). */
static size_t escape_of(char *o, unsigned c)
{
	static const char shorts[] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't' };

	o[0] = '\\';
	if (c == '"' || c == '\\') {
		o[1] = (char)c;
		return 2;
	}
	if (c < sizeof(shorts) && shorts[c]) {
		o[1] = shorts[c];
		return 2;
	}
	snprintf(o + 1, 6, "u%04x", c);
	return 6;
}

/* The first byte at or after j that a string cannot hold as is ('"', '\\'
 * or a control character), or n. Eight bytes at a time: per criterion the
 * lowest flagged byte is exact (a borrow only runs upward from it). */
static size_t plain_run(const unsigned char *s, size_t j, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

	for (; n - j >= 8; j += 8) {
		uint64_t w, q, b, hit;

		memcpy(&w, s + j, 8);
		q = w ^ (ones * '"');
		b = w ^ (ones * '\\');
		hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w)) & highs;
		if (hit)
			return j + (size_t)(__builtin_ctzll(hit) >> 3);
	}
	while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\')
		j++;
	return j;
}

/* p->s[p->pos] is a quote: print the string as JSON.stringify does; with
 * key, also append its decoded bytes there (a lone surrogate as 0xff and
 * four hex digits: never UTF-8, so never equal to a real character). */
static int string(struct parser *p, struct wp_buf *key)
{
	const unsigned char *s = p->s;
	size_t start = p->pos, j = p->pos + 1, run = j;

	if (PUTS(p, p->out, "\""))
		return p->rc;
	for (;;) {
		unsigned char c;

		j = plain_run(s, j, p->n); /* the plain bytes: most of a string */
		if (j >= p->n)
			return fail(p, start, "unterminated string");
		c = s[j];
		if (c == '"' || c == '\\') {
			if (put(p, p->out, s + run, j - run) || (key && put(p, key, s + run, j - run)))
				return p->rc;
		}
		if (c == '"') {
			p->pos = j + 1;
			return PUTS(p, p->out, "\"");
		}
		if (c < 0x20)
			return fail(p, j, "control character in string");
		if (j + 1 >= p->n)
			return fail(p, start, "unterminated string");
		c = s[j + 1];
		if (c == 'u') {
			long cp = hex4(p, j + 2), lo;
			unsigned char u[8];
			char e[8];

			if (cp < 0)
				return fail(p, j, "bad \\u escape");
			j += 6;
			if (cp >= 0xd800 && cp <= 0xdbff && j + 1 < p->n && s[j] == '\\' && s[j + 1] == 'u' &&
			    (lo = hex4(p, j + 2)) >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j += 6;
			}
			if (cp < 0x20 || cp == '"' || cp == '\\') {
				if (put(p, p->out, e, escape_of(e, (unsigned)cp)))
					return p->rc;
				u[0] = (unsigned char)cp;
				if (key && put(p, key, u, 1))
					return p->rc;
			} else if (cp >= 0xd800 && cp <= 0xdfff && p->strict) {
				return fail(p, j - 6, "lone surrogate in string");
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				static const char hx[] = "0123456789abcdef";
				char q[6] = { '\\', 'u', hx[(cp >> 12) & 15], hx[(cp >> 8) & 15], hx[(cp >> 4) & 15],
					      hx[cp & 15] };

				if (put(p, p->out, q, 6))
					return p->rc;
				q[1] = '\xff'; /* the key: 0xff and the four digits */
				if (key && put(p, key, q + 1, 5))
					return p->rc;
			} else {
				size_t k = utf8_enc(u, (uint32_t)cp);

				if (put(p, p->out, u, k) || (key && put(p, key, u, k)))
					return p->rc;
			}
		} else if (c == '/' || c == '"' || c == '\\' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
			   c == 't') {
			static const unsigned char dec[] = { ['/'] = '/', ['"'] = '"', ['\\'] = '\\', ['b'] = '\b',
							     ['f'] = '\f', ['n'] = '\n', ['r'] = '\r', ['t'] = '\t' };
			unsigned char d = dec[c];

			if (c == '/' ? put(p, p->out, "/", 1) : put(p, p->out, s + j, 2))
				return p->rc;
			if (key && put(p, key, &d, 1))
				return p->rc;
			j += 2;
		} else {
			return fail(p, j, "bad escape");
		}
		run = j;
	}
}

/* --- numbers ---------------------------------------------------------------- */

/* Does JavaScript print this token as written? Integers of <= 15 digits
 * (not 0, -0), decimals of <= 15 significant digits without an exponent,
 * a trailing zero, or more than five zeros after "0." (json.lua,
 * plain_number, says why each is safe). */
static int plain_number(const unsigned char *t, size_t len)
{
	size_t neg = t[0] == '-', i, dot = 0, zeros = 0;

	if (len - neg > 17)
		return 0;
	for (i = neg; i < len; i++) {
		if (t[i] == '.')
			dot = i;
		else if (t[i] < '0' || t[i] > '9')
			return 0; /* an exponent */
	}
	if (!dot)
		return len - neg <= 15 && t[neg] != '0';
	if (t[len - 1] == '0')
		return 0;
	if (t[neg] != '0')
		return len - neg <= 16;
	if (dot != neg + 1)
		return 0;
	for (i = dot + 1; i < len && t[i] == '0'; i++)
		zeros++;
	return zeros <= 5 && len - i <= 15;
}

/* Number::toString's text of the positive value 0.d * 10^n (d: k digits,
 * no leading or trailing zero) */
static size_t digits_text(const char *d, int k, int n, char *o)
{
	size_t len = 0;

	if (k <= n && n <= 21) {
		memcpy(o + len, d, (size_t)k);
		len += (size_t)k;
		memset(o + len, '0', (size_t)(n - k));
		len += (size_t)(n - k);
	} else if (0 < n && n <= 21) {
		memcpy(o + len, d, (size_t)n);
		len += (size_t)n;
		o[len++] = '.';
		memcpy(o + len, d + n, (size_t)(k - n));
		len += (size_t)(k - n);
	} else if (-6 < n && n <= 0) {
		o[len++] = '0';
		o[len++] = '.';
		memset(o + len, '0', (size_t)-n);
		len += (size_t)-n;
		memcpy(o + len, d, (size_t)k);
		len += (size_t)k;
	} else {
		o[len++] = d[0];
		if (k > 1) {
			o[len++] = '.';
			memcpy(o + len, d + 1, (size_t)(k - 1));
			len += (size_t)(k - 1);
		}
		int x = n > 0 ? n - 1 : 1 - n; /* at most 3 digits */

		o[len++] = 'e';
		o[len++] = n > 0 ? '+' : '-';
		if (x >= 100)
			o[len++] = (char)('0' + x / 100);
		if (x >= 10)
			o[len++] = (char)('0' + x / 10 % 10);
		o[len++] = (char)('0' + x % 10);
	}
	return len;
}

/* Number::toString(x) for a finite x (ECMA-262 6.1.6.1.20): the shortest
 * digits that read back as x, the closest to x of those (ties to even):
 * Ryu's (core/vendor/ryu), printed as "d.dddE[-]n" and laid out here. */
static size_t js_number(double x, char *o)
{
	char r[32];
	char d[20];
	int k = 0, e, i = 0;
	size_t len = 0;

	if (x == 0)
		return (size_t)sprintf(o, "0");
	r[d2s_buffered_n(x, r)] = '\0';
	if (r[0] == '-') {
		o[len++] = '-';
		i++;
	}
	for (; r[i] != 'E'; i++)
		if (r[i] != '.')
			d[k++] = r[i];
	e = atoi(r + i + 1);
	while (k > 1 && d[k - 1] == '0')
		k--;
	return len + digits_text(d, k, e + 1, o + len);
}

/* A token of at most 15 significant digits whose value is a normal double
 * prints as those digits (any such decimal survives the round trip, so no
 * shorter one reads back as the same double): Number::toString's text
 * without strtod. Returns its length, or 0 for the slow path. */
static size_t short_token(const unsigned char *t, size_t len, char *o)
{
	char d[16];
	int k = 0, n = 0, seen = 0, frac = 0, z = 0;
	long e = 0;
	size_t i = t[0] == '-', out = 0;

	for (; i < len && t[i] != 'e' && t[i] != 'E'; i++) {
		if (t[i] == '.') {
			frac = 1;
			continue;
		}
		if (t[i] == '0' && !seen) { /* a leading zero: after the point, one place down */
			n -= frac;
			continue;
		}
		seen = 1;
		n += !frac;
		if (t[i] == '0') { /* zeros count only when a digit follows */
			z++;
			continue;
		}
		if (k + z >= 15)
			return 0;
		memset(d + k, '0', (size_t)z);
		k += z;
		z = 0;
		d[k++] = (char)t[i];
	}
	if (!k)
		return (size_t)sprintf(o, "0"); /* 0, -0, 0.000e5 */
	if (i < len) {
		int sign = t[++i] == '-' ? -1 : 1;

		i += t[i] == '-' || t[i] == '+';
		for (; i < len; i++)
			if ((e = e * 10 + (t[i] - '0')) > 1000)
				return 0;
		n += sign * (int)e;
	}
	if (n < -300 || n > 300)
		return 0;
	if (t[0] == '-')
		o[out++] = '-';
	return out + digits_text(d, k, n, o + out);
}

/* strtod of the token s[a..b), which is not NUL-terminated in place. */
static double token_value(const unsigned char *s, size_t a, size_t b, int *oom)
{
	char small[128], *t = small;
	double x;

	*oom = 0;
	if (b - a >= sizeof(small) && !(t = malloc(b - a + 1))) {
		*oom = 1;
		return 0;
	}
	memcpy(t, s + a, b - a);
	t[b - a] = '\0';
	x = strtod(t, NULL);
	if (t != small)
		free(t);
	return x;
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* The end of the JSON number token at a (-?(0|[1-9]d*)(.d+)?([eE][-+]?d+)?),
 * or 0 when it is not one. */
static size_t number_end(const unsigned char *s, size_t n, size_t a)
{
	size_t j = a;

	if (j < n && s[j] == '-')
		j++;
	if (j >= n || !is_digit(s[j]))
		return 0;
	if (s[j] == '0' && j + 1 < n && is_digit(s[j + 1]))
		return 0;
	while (j < n && is_digit(s[j]))
		j++;
	if (j < n && s[j] == '.') {
		if (++j >= n || !is_digit(s[j]))
			return 0;
		while (j < n && is_digit(s[j]))
			j++;
	}
	if (j < n && (s[j] == 'e' || s[j] == 'E')) {
		j++;
		if (j < n && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j >= n || !is_digit(s[j]))
			return 0;
		while (j < n && is_digit(s[j]))
			j++;
	}
	return j;
}

static int number(struct parser *p)
{
	size_t a = p->pos, b = number_end(p->s, p->n, a), k;
	double x;
	char o[40];
	int oom;

	if (!b)
		return fail(p, a, "bad number");
	p->pos = b;
	if (plain_number(p->s + a, b - a))
		return put(p, p->out, p->s + a, b - a);
	if ((k = short_token(p->s + a, b - a, o)))
		return put(p, p->out, o, k);
	x = token_value(p->s, a, b, &oom);
	if (oom)
		return nomem(p);
	if (isinf(x) && p->strict)
		return fail(p, a, x < 0 ? "number out of range (JavaScript reads -Infinity)"
					 : "number out of range (JavaScript reads Infinity)");
	if (isinf(x))
		return PUTS(p, p->out, "null");
	return put(p, p->out, o, js_number(x, o));
}

/* --- objects and arrays ------------------------------------------------------ */

static int is_index(const unsigned char *k, size_t n)
{
	size_t i;
	uint64_t v = 0;

	if (n == 0 || n > 10)
		return 0;
	if (n == 1 && k[0] == '0')
		return 1;
	if (k[0] < '1' || k[0] > '9')
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit(k[i]))
			return 0;
		v = v * 10 + (uint64_t)(k[i] - '0');
	}
	return v < 4294967295ull;
}

static uint64_t index_value(const unsigned char *k, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v * 10 + (uint64_t)(k[i] - '0');
	return v;
}

/* a member's decoded key (keys.data is still NULL when every key so far
 * was empty) */
static const unsigned char *key_of(const struct parser *p, const struct member *m)
{
	return m->key_len ? p->keys.data + m->key_off : (const unsigned char *)"";
}

static int same_key(const struct parser *p, const struct member *a, const struct member *b)
{
	return a->key_len == b->key_len && !memcmp(key_of(p, a), key_of(p, b), a->key_len);
}

struct order_ctx {
	const struct parser *p;
	const struct member *m;
};

/* by key bytes, then by position: equal keys end up adjacent, first first */
static int by_key(const void *a, const void *b, void *arg)
{
	const struct order_ctx *c = arg;
	const struct member *x = &c->m[*(const size_t *)a], *y = &c->m[*(const size_t *)b];
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int r = memcmp(key_of(c->p, x), key_of(c->p, y), n);

	if (r)
		return r;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

/* JavaScript's order: index keys by value, then the rest by position */
static int by_js(const void *a, const void *b, void *arg)
{
	const struct order_ctx *c = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const struct member *x = &c->m[i], *y = &c->m[j];
	const unsigned char *kx = key_of(c->p, x), *ky = key_of(c->p, y);
	int ix = is_index(kx, x->key_len), iy = is_index(ky, y->key_len);

	if (ix != iy)
		return ix ? -1 : 1;
	if (ix) {
		uint64_t vx = index_value(kx, x->key_len), vy = index_value(ky, y->key_len);

		if (vx != vy)
			return vx < vy ? -1 : 1;
	}
	return i < j ? -1 : 1;
}

/* The members m[0..k) of the object that starts at out offset `at` were
 * printed in source order: print them again in JavaScript's order, each
 * key once, at its first position with its last value. */
static int reorder(struct parser *p, const struct member *m, size_t k, size_t at)
{
	size_t *idx = malloc(2 * k * sizeof(*idx)), *val, i, g, nk = 0;
	struct order_ctx c = { p, m };
	struct wp_buf tmp = WP_BUF_INIT;

	if (!idx)
		return nomem(p);
	val = idx + k;
	for (i = 0; i < k; i++)
		idx[i] = i;
	qsort_r(idx, k, sizeof(*idx), by_key, &c);
	/* each run of equal keys: its first member keeps the place, its last
	 * one gives the value (val[] by first position) */
	for (i = 0; i < k; i = g) {
		for (g = i + 1; g < k && same_key(p, &m[idx[i]], &m[idx[g]]); g++)
			;
		val[idx[i]] = idx[g - 1];
		idx[nk++] = idx[i];
	}
	qsort_r(idx, nk, sizeof(*idx), by_js, &c);
	if (PUTS(p, &tmp, "{"))
		goto out;
	for (i = 0; i < nk; i++) {
		const struct member *v = &m[val[idx[i]]];

		if ((i && PUTS(p, &tmp, ",")) || put(p, &tmp, p->out->data + v->start, v->end - v->start))
			goto out;
	}
	if (PUTS(p, &tmp, "}"))
		goto out;
	p->out->len = at;
	put(p, p->out, tmp.data, tmp.len);
out:
	wp_buf_free(&tmp);
	free(idx);
	return p->rc;
}

static int value(struct parser *p, unsigned depth);

/* p->s[p->pos] is '"': one key, decoded onto p->keys, printed (with its
 * colon) to p->out; pushes its member record. */
static int key(struct parser *p)
{
	struct member *m;

	if (p->nmem == p->capmem) {
		size_t cap = p->capmem ? 2 * p->capmem : 64;
		struct member *nm = realloc(p->mem, cap * sizeof(*nm));

		if (!nm)
			return nomem(p);
		p->mem = nm;
		p->capmem = cap;
	}
	m = &p->mem[p->nmem];
	m->start = p->out->len;
	m->key_off = p->keys.len;
	if (string(p, &p->keys) || PUTS(p, p->out, ":"))
		return p->rc;
	m->key_len = p->keys.len - m->key_off;
	p->nmem++;
	skip_ws(p);
	if (p->pos >= p->n || p->s[p->pos] != ':')
		return fail(p, p->pos, "expected ':'");
	p->pos++;
	return WP_OK;
}

/* After a member or an element: past a ',' (0) or the closing bracket
 * (1); -1 with the failure set otherwise. */
static int separator(struct parser *p, unsigned char close)
{
	const char *msg = close == '}' ? "expected ',' or '}'" : "expected ',' or ']'";
	unsigned char d;

	skip_ws(p);
	if (p->pos >= p->n) {
		fail(p, p->pos, msg);
		return -1;
	}
	d = p->s[p->pos++];
	if (d == close)
		return 1;
	if (d == ',')
		return 0;
	fail(p, p->pos - 1, msg);
	return -1;
}

/* Past an opening bracket (copied): 1 when the container is empty (its
 * closing bracket consumed and copied too), 0 when an element follows, -1
 * on failure. */
static int opening(struct parser *p, char open, char close)
{
	p->pos++;
	if (put(p, p->out, &open, 1))
		return -1;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == close) {
		p->pos++;
		return put(p, p->out, &close, 1) ? -1 : 1;
	}
	return 0;
}

static int object(struct parser *p, unsigned depth)
{
	size_t at = p->out->len, base = p->nmem, keybase = p->keys.len, k, i, j;
	int odd = 0;

	if (opening(p, '{', '}'))
		return p->rc;
	for (;;) {
		int r;

		skip_ws(p);
		if (p->pos >= p->n || p->s[p->pos] != '"')
			return fail(p, p->pos, "expected a key");
		if (p->nmem > base && PUTS(p, p->out, ","))
			return p->rc;
		if (key(p) || value(p, depth + 1))
			return p->rc;
		p->mem[p->nmem - 1].end = p->out->len;
		r = separator(p, '}');
		if (r < 0)
			return p->rc;
		if (r)
			break;
	}
	k = p->nmem - base;
	for (i = base; i < p->nmem && !odd; i++)
		odd = is_index(key_of(p, &p->mem[i]), p->mem[i].key_len);
	/* a repeated key: pairwise for small objects, else the sort finds it */
	if (!odd && k > 16)
		odd = 1;
	for (i = base; i < p->nmem && !odd; i++)
		for (j = i + 1; j < p->nmem && !odd; j++)
			odd = same_key(p, &p->mem[i], &p->mem[j]);
	if (odd)
		reorder(p, p->mem + base, k, at);
	else
		PUTS(p, p->out, "}");
	p->nmem = base;
	p->keys.len = keybase;
	return p->rc;
}

static int array(struct parser *p, unsigned depth)
{
	if (opening(p, '[', ']'))
		return p->rc;
	for (;;) {
		int r;

		if (value(p, depth + 1))
			return p->rc;
		r = separator(p, ']');
		if (r < 0)
			return p->rc;
		if (r)
			return PUTS(p, p->out, "]");
		if (PUTS(p, p->out, ","))
			return p->rc;
	}
}

static int literal(struct parser *p, const char *word, size_t len)
{
	if (p->n - p->pos < len || memcmp(p->s + p->pos, word, len))
		return fail(p, p->pos, "unexpected character");
	p->pos += len;
	return put(p, p->out, word, len);
}

static int value(struct parser *p, unsigned depth)
{
	unsigned char c;

	if (depth > p->max_depth)
		return fail(p, p->pos, "nesting too deep");
	skip_ws(p);
	if (p->pos >= p->n)
		return fail(p, p->pos, "unexpected end");
	c = p->s[p->pos];
	switch (c) {
	case '"':
		return string(p, NULL);
	case '{':
		return object(p, depth);
	case '[':
		return array(p, depth);
	case 't':
		return literal(p, "true", 4);
	case 'f':
		return literal(p, "false", 5);
	case 'n':
		return literal(p, "null", 4);
	default:
		if (c == '-' || is_digit(c))
			return number(p);
		return fail(p, p->pos, "unexpected character");
	}
}

static void init(struct parser *p, const char *s, size_t n, unsigned max_depth, struct wp_buf *out, char *err,
		 size_t errsz)
{
	memset(p, 0, sizeof(*p));
	p->s = (const unsigned char *)s;
	p->n = n;
	p->max_depth = max_depth > MAX_DEPTH_CAP ? MAX_DEPTH_CAP : max_depth;
	p->out = out;
	p->err = err;
	p->errsz = errsz;
	if (errsz)
		err[0] = '\0';
}

static int done(struct parser *p)
{
	wp_buf_free(&p->keys);
	free(p->mem);
	return p->rc;
}

static int check_utf8(struct parser *p)
{
	size_t bad = utf8_bad(p->s, p->n);

	return bad < p->n ? fail(p, bad, "invalid UTF-8") : WP_OK;
}

int wp_json_canonical(const char *s, size_t n, unsigned max_depth, struct wp_buf *out, char *err, size_t errsz)
{
	struct parser p;
	size_t len0 = out->len;

	init(&p, s, n, max_depth, out, err, errsz);
	/* the text is rarely longer printed: one allocation, not a dozen */
	if (wp_buf_reserve(out, n + 64))
		return nomem(&p);
	if (!check_utf8(&p) && !value(&p, 1)) {
		skip_ws(&p);
		if (p.pos < p.n)
			fail(&p, p.pos, "trailing data");
	}
	if (p.rc)
		out->len = len0;
	return done(&p);
}

/* --- a request's top-level members and its taskHash text ---------------------- */

/* The taskHash's members in JSON.stringify's order; "language" last, added
 * only when it is not "javascript". */
static const char *const TASK_KEYS[] = { "taskType", "code", "expectedHash", "inputData", "language" };
#define NTASK (sizeof(TASK_KEYS) / sizeof(TASK_KEYS[0]))
#define LANGUAGE (NTASK - 1)

struct task {
	struct wp_buf vals; /* the canonical text of the members kept */
	size_t span[NTASK][2];
	int have[NTASK];
	struct wp_buf strs; /* a request: a string member's decoded bytes */
	wp_json_member_fn fn;
	void *arg;
};

static enum wp_json_type type_of(unsigned char c)
{
	switch (c) {
	case '"':
		return WP_JSON_STRING;
	case '{':
		return WP_JSON_OBJECT;
	case '[':
		return WP_JSON_ARRAY;
	case 't':
		return WP_JSON_TRUE;
	case 'f':
		return WP_JSON_FALSE;
	case 'n':
		return WP_JSON_NULL;
	default:
		return WP_JSON_NUMBER;
	}
}

/* One member: its value as a JSON text of its own (depth: the value's),
 * canonicalised onto t->vals, kept when the taskHash names its key (the
 * last of a repeated key wins); with t->fn, also handed to it. */
static int task_member(struct parser *p, struct task *t, unsigned depth)
{
	size_t ko = p->keys.len, vs = t->vals.len, i;
	struct wp_json_value v = { 0 };
	int which = -1, oom;

	if (key(p))
		return p->rc;
	for (i = 0; i < NTASK; i++)
		if (p->keys.len - ko == strlen(TASK_KEYS[i]) && !memcmp(p->keys.data + ko, TASK_KEYS[i], p->keys.len - ko))
			which = (int)i;
	t->vals.len = vs; /* the key's text is not needed */
	p->nmem = 0;
	skip_ws(p);
	v.start = p->pos;
	v.type = p->pos < p->n ? type_of(p->s[p->pos]) : WP_JSON_NULL;
	t->strs.len = 0;
	if (t->fn && v.type == WP_JSON_STRING ? string(p, &t->strs) : value(p, depth))
		return p->rc;
	v.end = p->pos;
	v.canon_len = t->vals.len - vs;
	if (t->fn) {
		v.str = (const char *)t->strs.data;
		v.str_len = t->strs.len;
		if (v.type == WP_JSON_NUMBER) {
			v.num = token_value(p->s, v.start, v.end, &oom);
			if (oom)
				return nomem(p);
		}
		if (t->fn(t->arg, (const char *)p->keys.data + ko, p->keys.len - ko, &v))
			return nomem(p);
	}
	p->keys.len = ko;
	if (which >= 0) {
		t->have[which] = 1;
		t->span[which][0] = vs;
		t->span[which][1] = t->vals.len;
	} else {
		t->vals.len = vs;
	}
	return WP_OK;
}

/* The body's top-level object, member by member (task_member). */
static int task_object(struct parser *p, struct task *t, unsigned depth)
{
	if (check_utf8(p))
		return p->rc;
	skip_ws(p);
	if (p->pos >= p->n || p->s[p->pos] != '{')
		return fail(p, p->pos, "expected a JSON object");
	p->pos++;
	skip_ws(p);
	if (p->pos < p->n && p->s[p->pos] == '}') {
		p->pos++;
	} else {
		for (;;) {
			int r;

			skip_ws(p);
			if (p->pos >= p->n || p->s[p->pos] != '"')
				return fail(p, p->pos, "expected a key");
			if (task_member(p, t, depth))
				return p->rc;
			r = separator(p, '}');
			if (r < 0)
				return p->rc;
			if (r)
				break;
		}
	}
	skip_ws(p);
	if (p->pos < p->n)
		return fail(p, p->pos, "trailing data");
	return WP_OK;
}

/* {"taskType":..,"code":..,"expectedHash":..,"inputData":..[,"language":..]}
 * from the members kept; language: its JSON text (NULL: none) */
static int task_text(struct parser *p, const struct task *t, const char *lang, size_t lang_len, struct wp_buf *out)
{
	int first = 1;
	size_t i;

	if (PUTS(p, out, "{"))
		return p->rc;
	for (i = 0; i < NTASK; i++) {
		const char *v = i == LANGUAGE ? lang : (const char *)t->vals.data + t->span[i][0];
		size_t vn = i == LANGUAGE ? lang_len : t->span[i][1] - t->span[i][0];

		if (i == LANGUAGE ? !lang : !t->have[i])
			continue;
		if ((!first && PUTS(p, out, ",")) || PUTS(p, out, "\"") || put(p, out, TASK_KEYS[i], strlen(TASK_KEYS[i])) ||
		    PUTS(p, out, "\":") || put(p, out, v, vn))
			return p->rc;
		first = 0;
	}
	return PUTS(p, out, "}");
}

/* A request goes through body-sized buffers; fresh ones that large come
 * from mmap and fault in page by page, which cost more than the parsing.
 * So each thread keeps the last ones (up to SCRATCH_KEEP bytes each). */
#define SCRATCH_KEEP ((size_t)4 << 20)
static _Thread_local struct wp_buf scratch_vals, scratch_strs;

static void task_init(struct task *t)
{
	t->vals = wp_buf_take(&scratch_vals);
	t->strs = wp_buf_take(&scratch_strs);
}

static int task_done(struct parser *p, struct task *t, struct wp_buf *out, size_t len0)
{
	if (p->rc)
		out->len = len0;
	wp_buf_keep(&scratch_vals, &t->vals, SCRATCH_KEEP);
	wp_buf_keep(&scratch_strs, &t->strs, SCRATCH_KEEP);
	return done(p);
}

int wp_json_task(const char *s, size_t n, const char *language, size_t language_len, unsigned max_depth,
		 struct wp_buf *out, char *err, size_t errsz)
{
	struct task t = { .fn = NULL };
	struct wp_buf lang = WP_BUF_INIT;
	size_t len0 = out->len, i;
	struct parser p;

	task_init(&t);
	init(&p, s, n, max_depth, &t.vals, err, errsz);
	if (wp_buf_reserve(&t.vals, n + 64) || wp_buf_reserve(out, n + 128))
		nomem(&p);
	else if (!task_object(&p, &t, 1) && language && !(language_len == 10 && !memcmp(language, "javascript", 10))) {
		PUTS(&p, &lang, "\"");
		for (i = 0; i < language_len && !p.rc; i++) {
			unsigned char c = (unsigned char)language[i];
			char e[8];

			if (c < 0x20 || c == '"' || c == '\\')
				put(&p, &lang, e, escape_of(e, c));
			else
				put(&p, &lang, &c, 1);
		}
		PUTS(&p, &lang, "\"");
	}
	if (!p.rc)
		task_text(&p, &t, lang.len ? (const char *)lang.data : NULL, lang.len, out);
	wp_buf_free(&lang);
	return task_done(&p, &t, out, len0);
}

int wp_json_request(const char *s, size_t n, unsigned max_depth, wp_json_member_fn fn, void *arg, struct wp_buf *out,
		    char *err, size_t errsz)
{
	struct task t = { .fn = fn, .arg = arg };
	size_t len0 = out->len;
	struct parser p;

	task_init(&t);
	init(&p, s, n, max_depth, &t.vals, err, errsz);
	p.strict = 1;
	if (wp_buf_reserve(&t.vals, n + 64) || wp_buf_reserve(&t.strs, n) || wp_buf_reserve(out, n + 128))
		nomem(&p);
	else if (!task_object(&p, &t, 2)) {
		const char *lang = (const char *)t.vals.data + t.span[LANGUAGE][0];
		size_t lang_len = t.span[LANGUAGE][1] - t.span[LANGUAGE][0];

		/* a string other than "javascript" (what else is refused later) */
		if (!t.have[LANGUAGE] || lang[0] != '"' || (lang_len == 12 && !memcmp(lang, "\"javascript\"", 12)))
			lang = NULL;
		task_text(&p, &t, lang, lang_len, out);
	}
	return task_done(&p, &t, out, len0);
}

/* --- what JSON.parse reads differently ------------------------------------------ */

static int check_fail(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int check_fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (errsz) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return WP_EINVAL;
}

int wp_json_check_js(const char *str, size_t n, char *err, size_t errsz)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t j = 0;

	if (errsz)
		err[0] = '\0';
	while (j < n) {
		unsigned char c = s[j];

		if (c == '"') {
			j++;
			for (;;) {
				unsigned char d;

				if (j >= n)
					return check_fail(err, errsz, "unterminated string at byte %zu", j + 1);
				d = s[j];
				if (d == '"')
					break;
				if (d < 0x20)
					return check_fail(err, errsz, "control character in a string at byte %zu",
							  j + 1);
				j += d == '\\' ? 2 : 1;
			}
			j++;
		} else if (c == '-' || is_digit(c)) {
			size_t a = j;
			int check;
			unsigned char first;

			if (c == '-')
				j++;
			first = j < n ? s[j] : 0;
			if (!is_digit(first))
				return check_fail(err, errsz, "bad number at byte %zu", a + 1);
			j++;
			while (j < n && is_digit(s[j]))
				j++;
			if (first == '0' && j - a > (size_t)(c == '-' ? 2 : 1))
				return check_fail(err, errsz, "number with a leading zero at byte %zu", a + 1);
			check = j - a > 300;
			if (j < n && s[j] == '.') {
				j++;
				if (j >= n || !is_digit(s[j]))
					return check_fail(err, errsz, "bad number at byte %zu", a + 1);
				while (j < n && is_digit(s[j]))
					j++;
			}
			if (j < n && (s[j] == 'e' || s[j] == 'E')) {
				j++;
				if (j < n && (s[j] == '+' || s[j] == '-'))
					j++;
				if (j >= n || !is_digit(s[j]))
					return check_fail(err, errsz, "bad number at byte %zu", a + 1);
				while (j < n && is_digit(s[j]))
					j++;
				check = 1;
			}
			if (check) {
				int oom;
				double x = token_value(s, a, j, &oom);

				if (oom)
					return WP_ENOMEM;
				if (isinf(x))
					return check_fail(err, errsz,
							  "number out of range at byte %zu (%.*s%s reads as %sInfinity)",
							  a + 1, (int)(j - a > 24 ? 24 : j - a), (const char *)s + a,
							  j - a > 24 ? "..." : "", x < 0 ? "-" : "");
			}
		} else {
			j++;
		}
	}
	return WP_OK;
}
