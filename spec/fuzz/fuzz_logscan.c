/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the streaming log scanner (core/src/logscan.c).
 *
 * Input layout:
 *   byte 0   options: bits 0-1 marker, bit 2 prefix, bits 3-5 search
 *   byte 1   max_line: window + (b & 63), or the 64 KiB default if b & 0x80
 *   byte 2-3 chunking: seed and largest chunk size
 *   rest     the stream
 *
 * Invariant (abort() on violation): the event sequence and the counters
 * are identical when the stream is fed in one piece, in the seeded random
 * chunking (with empty chunks mixed in), byte by byte, and as computed by
 * a naive whole-stream reference model written independently below. The
 * copy buffer never exceeds max_line + 1 bytes.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/logscan.h"

struct rec {
	int kind;
	uint64_t line, seq, bytes;
	size_t off, len; /* payload in the arena */
	int has_payload;
};

struct log {
	struct rec *ev;
	size_t n, cap;
	unsigned char *arena;
	size_t alen, acap;
};

static void die(const char *what)
{
	fprintf(stderr, "fuzz_logscan: invariant violated: %s\n", what);
	abort();
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t c = *cap ? *cap : 16;

	if (need <= *cap)
		return p;
	while (c < need)
		c *= 2;
	p = realloc(p, c * elem);
	if (!p)
		die("out of memory");
	*cap = c;
	return p;
}

static void record(struct log *lg, int kind, uint64_t line, uint64_t seq,
		   uint64_t bytes, const char *payload, size_t len)
{
	struct rec *r;

	lg->ev = grow(lg->ev, &lg->cap, lg->n + 1, sizeof(*lg->ev));
	r = &lg->ev[lg->n++];
	r->kind = kind;
	r->line = line;
	r->seq = seq;
	r->bytes = bytes;
	r->off = lg->alen;
	r->len = len;
	r->has_payload = payload != NULL;
	if (len) {
		lg->arena = grow(lg->arena, &lg->acap, lg->alen + len, 1);
		memcpy(lg->arena + lg->alen, payload, len);
		lg->alen += len;
	}
}

static void on_event(void *ud, const struct wp_logscan_event *ev)
{
	if ((ev->kind == WP_LOGSCAN_OVERSIZED) != (ev->payload == NULL))
		die("payload presence does not match the kind");
	record(ud, ev->kind, ev->line, ev->seq, ev->bytes, ev->payload, ev->len);
}

static void log_free(struct log *lg)
{
	free(lg->ev);
	free(lg->arena);
}

static int same_log(const struct log *a, const struct log *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct rec *x = &a->ev[i], *y = &b->ev[i];

		if (x->kind != y->kind || x->line != y->line || x->seq != y->seq ||
		    x->bytes != y->bytes || x->len != y->len ||
		    x->has_payload != y->has_payload)
			return 0;
		if (x->len && memcmp(a->arena + x->off, b->arena + y->off, x->len))
			return 0;
	}
	return 1;
}

static int same_stats(const struct wp_logscan_stats *a,
		      const struct wp_logscan_stats *b)
{
	return a->bytes == b->bytes && a->lines == b->lines &&
	       a->candidates == b->candidates && a->results == b->results &&
	       a->duplicates == b->duplicates && a->oversized == b->oversized;
}

/* xorshift32 for the chunking: reproducible from the input bytes */
static uint32_t next(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* mode 0: one piece; 1: random chunks (maxc); 2: byte by byte */
static void scan(const struct wp_logscan_opts *o, const uint8_t *d, size_t n,
		 int mode, uint32_t seed, size_t maxc, struct log *lg,
		 struct wp_logscan_stats *st)
{
	struct wp_logscan *sc;
	size_t i = 0, k;

	if (wp_logscan_new(o, &sc))
		die("wp_logscan_new refused valid options");
	while (i < n) {
		if (mode == 0)
			k = n;
		else if (mode == 2)
			k = 1;
		else if (next(&seed) % 8 == 0)
			k = 0; /* empty chunks must be harmless */
		else
			k = 1 + next(&seed) % maxc;
		if (k > n - i)
			k = n - i;
		if (wp_logscan_feed(sc, d + i, k, on_event, lg))
			die("feed failed");
		i += k;
		wp_logscan_stats(sc, st);
		if (st->buffer > st->max_line + 1)
			die("buffer above max_line + 1");
	}
	if (wp_logscan_finish(sc, on_event, lg) || wp_logscan_finish(sc, on_event, lg))
		die("finish failed");
	if (wp_logscan_feed(sc, "x", 1, on_event, lg) != WP_EPROTO)
		die("feed after finish accepted");
	wp_logscan_stats(sc, st);
	wp_logscan_free(sc);
}

/* The reference: split the whole stream into lines and apply the rules. */
static void reference(const struct wp_logscan_opts *o, const uint8_t *d,
		      size_t n, struct log *lg, struct wp_logscan_stats *st)
{
	const char *s = (const char *)d, *mk = o->marker, *pre = o->prefix;
	size_t ml = strlen(mk), pl = pre ? strlen(pre) : 0, i = 0;

	memset(st, 0, sizeof(*st));
	st->bytes = n;
	while (i < n) {
		const char *nl = memchr(s + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - s) : n, len = end - i, k;
		const char *line = s + i;

		i = nl ? end + 1 : n;
		st->lines++;
		if (len && line[len - 1] == '\r')
			len--;
		if (len < pl || (pl && memcmp(line, pre, pl)))
			continue;
		for (k = 0; k <= o->search; k++)
			if (pl + k + ml <= len && !memcmp(line + pl + k, mk, ml))
				break;
		if (k > o->search)
			continue;
		st->candidates++;
		if (len > o->max_line) {
			st->oversized++;
			record(lg, WP_LOGSCAN_OVERSIZED, st->lines, st->candidates,
			       len, NULL, 0);
		} else {
			if (st->candidates == 1)
				st->results++;
			else
				st->duplicates++;
			record(lg, st->candidates == 1 ? WP_LOGSCAN_RESULT :
			       WP_LOGSCAN_DUPLICATE, st->lines, st->candidates, len,
			       line + pl + k + ml, len - pl - k - ml);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const markers[] = { WP_LOGSCAN_MARKER, "R:", "RR", "R" };
	static const size_t searches[] = { 0, 1, 2, 3, 5, 8, 16, 40 };
	struct wp_logscan_opts o;
	struct log logs[4];
	struct wp_logscan_stats st[4];
	uint32_t seed;
	size_t window, maxc;

	if (size < 4)
		return 0;
	memset(&o, 0, sizeof(o));
	memset(logs, 0, sizeof(logs));
	o.marker = markers[data[0] & 3];
	o.prefix = (data[0] & 4) ? "P>" : NULL;
	o.search = searches[(data[0] >> 3) & 7];
	window = strlen(o.marker) + (o.prefix ? 2 : 0) + o.search;
	o.max_line = (data[1] & 0x80) ? WP_LOGSCAN_MAX_LINE : window + (data[1] & 63);
	seed = (uint32_t)data[2] << 8 | data[3] | 0x10000;
	maxc = 1 + (data[2] & 31);
	data += 4;
	size -= 4;

	scan(&o, data, size, 0, seed, maxc, &logs[0], &st[0]);
	scan(&o, data, size, 1, seed, maxc, &logs[1], &st[1]);
	scan(&o, data, size, 2, seed, maxc, &logs[2], &st[2]);
	reference(&o, data, size, &logs[3], &st[3]);
	for (int i = 1; i < 4; i++) {
		if (!same_log(&logs[0], &logs[i]))
			die(i == 3 ? "events differ from the reference model"
				   : "events depend on the chunking");
		if (!same_stats(&st[0], &st[i]))
			die(i == 3 ? "counters differ from the reference model"
				   : "counters depend on the chunking");
	}
	if (st[0].results > 1)
		die("more than one RESULT");
	for (int i = 0; i < 4; i++)
		log_free(&logs[i]);
	return 0;
}
