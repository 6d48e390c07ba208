/* SPDX-License-Identifier: MIT */
/*
 * Streaming verdict-line scanner (see logscan.h for the contract).
 *
 * The hot path is S_START with the whole line inside the chunk: one
 * memchr() finds the LF, and the line head (prefix + search window +
 * marker) is checked in place with memcmp()/memmem(). Nothing is copied;
 * a candidate that is complete in the chunk is reported straight from the
 * caller's memory. Only a line whose head or candidate body straddles a
 * chunk boundary is copied into sc->buf, and that copy is bounded by
 * max_line + 1 bytes: past it the line switches to S_OVER and only its
 * length is counted.
 */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/logscan.h"

enum {
	S_START, /* at the first byte of a line, nothing held */
	S_HEAD,  /* an undecided line head (< window bytes) is in buf */
	S_CAND,  /* a candidate line, its bytes so far in buf */
	S_SKIP,  /* a non-candidate line: skip to the LF */
	S_OVER,  /* an oversized candidate line: skip to the LF, then report */
};

/* What a line head says about its line. */
enum { D_NO, D_MAYBE, D_YES };

/* Smallest buffer worth allocating; the head window may need more. */
#define BUF_MIN 256

struct wp_logscan {
	const char *marker;
	const char *prefix;
	size_t marker_len, prefix_len;
	size_t search, max_line;
	size_t window;      /* prefix_len + search + marker_len */
	int state;
	int finished;
	int err;            /* sticky error (WP_ENOMEM) */
	int prev_cr;        /* S_SKIP/S_OVER: the last byte seen was a CR */
	uint64_t line_bytes; /* S_SKIP/S_OVER: length of the line so far */
	size_t poff;        /* S_CAND: payload offset in buf */
	char *buf;
	size_t len, cap;
	struct wp_logscan_stats st;
	char tokens[];      /* marker bytes, then prefix bytes */
};

/*
 * First occurrence of the marker in a short window (search + marker_len
 * bytes). memchr for the first byte and a memcmp beat memmem() here: the
 * window is small and checked once per line, so memmem's per-call setup
 * (needle analysis) dominates.
 */
static const char *find(const char *h, size_t n, const char *m, size_t ml)
{
	const char *end = h + n - ml + 1, *p = h; /* n >= ml */

	while ((p = memchr(p, m[0], (size_t)(end - p)))) {
		if (!memcmp(p, m, ml))
			return p;
		p++;
	}
	return NULL;
}

/*
 * Decide from the first n bytes of a line whether it is a candidate.
 * complete: those n bytes are the whole line (its LF was seen), so an
 * undecided head is a non-candidate. On D_YES *poff is the payload offset.
 * Never returns D_MAYBE when n >= window (the callers rely on it to make
 * progress): the whole window is then in view.
 */
static int decide(const struct wp_logscan *sc, const char *h, size_t n,
		  int complete, size_t *poff)
{
	size_t pl = sc->prefix_len, ml = sc->marker_len;
	size_t span = sc->search + ml, avail;
	const char *m;

	if (n < pl)
		return (complete || memcmp(h, sc->prefix, n)) ? D_NO : D_MAYBE;
	if (pl && memcmp(h, sc->prefix, pl))
		return D_NO;
	avail = n - pl;
	if (avail > span)
		avail = span;
	if (avail >= ml) {
		if (sc->search == 0)
			m = (h[pl] == sc->marker[0] &&
			     !memcmp(h + pl, sc->marker, ml)) ? h + pl : NULL;
		else
			m = find(h + pl, avail, sc->marker, ml);
		if (m) {
			*poff = (size_t)(m - h) + ml;
			return D_YES;
		}
	}
	if (complete || n - pl >= span)
		return D_NO;
	/* search 0: a head that already differs from the marker is decided */
	if (sc->search == 0 && memcmp(h + pl, sc->marker, avail))
		return D_NO;
	return D_MAYBE;
}

static int fail(struct wp_logscan *sc, int err)
{
	sc->err = err;
	return err;
}

/* Make room for `need` bytes in buf; need <= max_line + 1. */
static int reserve(struct wp_logscan *sc, size_t need)
{
	size_t cap = sc->cap, lim = sc->max_line + 1;
	char *nb;

	if (need <= cap)
		return WP_OK;
	while (cap < need)
		cap *= 2; /* geometric: at most log2(max_line) reallocs per life */
	if (cap > lim)
		cap = lim;
	nb = realloc(sc->buf, cap);
	if (!nb)
		return WP_ENOMEM;
	sc->buf = nb;
	sc->cap = cap;
	return WP_OK;
}

static int append(struct wp_logscan *sc, const char *p, size_t n)
{
	int rc = reserve(sc, sc->len + n);

	if (rc)
		return rc;
	memcpy(sc->buf + sc->len, p, n);
	sc->len += n;
	return WP_OK;
}

/* A candidate line of `bytes` bytes (terminator excluded) is over the limit. */
static void emit_oversized(struct wp_logscan *sc, uint64_t bytes,
			   wp_logscan_cb cb, void *ud)
{
	struct wp_logscan_event ev;

	/* state first: a callback that unwinds leaves a consistent scanner */
	sc->st.lines++;
	sc->st.oversized++;
	sc->state = S_START;
	sc->len = 0;
	ev.kind = WP_LOGSCAN_OVERSIZED;
	ev.line = sc->st.lines;
	ev.seq = sc->st.candidates;
	ev.payload = NULL;
	ev.len = 0;
	ev.bytes = bytes;
	if (cb)
		cb(ud, &ev);
}

/*
 * A complete candidate line line[0..n) (LF excluded, CR not yet stripped)
 * whose payload starts at poff. The current candidate is always the last
 * one counted, so its ordinal is st.candidates.
 */
static void emit_line(struct wp_logscan *sc, const char *line, size_t n,
		      size_t poff, wp_logscan_cb cb, void *ud)
{
	struct wp_logscan_event ev;

	/* poff <= n - 1 when a CR ends the line: the marker holds no CR */
	if (n && line[n - 1] == '\r')
		n--;
	if (n > sc->max_line) {
		emit_oversized(sc, n, cb, ud);
		return;
	}
	sc->st.lines++;
	sc->state = S_START;
	sc->len = 0;
	if (sc->st.candidates == 1) {
		sc->st.results++;
		ev.kind = WP_LOGSCAN_RESULT;
	} else {
		sc->st.duplicates++;
		ev.kind = WP_LOGSCAN_DUPLICATE;
	}
	ev.line = sc->st.lines;
	ev.seq = sc->st.candidates;
	ev.payload = line + poff;
	ev.len = n - poff;
	ev.bytes = n;
	if (cb)
		cb(ud, &ev);
}

/* Enter S_OVER for a candidate whose first `bytes` bytes were seen. */
static void go_over(struct wp_logscan *sc, uint64_t bytes, int last_cr)
{
	sc->state = S_OVER;
	sc->line_bytes = bytes;
	sc->prev_cr = last_cr;
	sc->len = 0;
}

/* The chunk ends inside a line that starts at p (n > 0 bytes, no LF). */
static int start_partial(struct wp_logscan *sc, const char *p, size_t n)
{
	size_t poff = 0;
	int d = decide(sc, p, n, 0, &poff), rc;

	if (d == D_NO) {
		sc->state = S_SKIP;
		sc->line_bytes = n;
		sc->prev_cr = p[n - 1] == '\r';
		return WP_OK;
	}
	if (d == D_YES) {
		sc->st.candidates++;
		sc->poff = poff;
		if (n > sc->max_line + 1) {
			go_over(sc, n, p[n - 1] == '\r');
			return WP_OK;
		}
	}
	rc = append(sc, p, n);
	if (rc)
		return fail(sc, rc);
	sc->state = d == D_YES ? S_CAND : S_HEAD;
	return WP_OK;
}

int wp_logscan_new(const struct wp_logscan_opts *opts, struct wp_logscan **out)
{
	static const struct wp_logscan_opts defaults;
	const char *m, *pre;
	size_t ml, pl, max, cap;
	struct wp_logscan *sc;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	m = opts->marker ? opts->marker : WP_LOGSCAN_MARKER;
	ml = (opts->marker && opts->marker_len) ? opts->marker_len : strlen(m);
	pre = opts->prefix;
	pl = pre ? (opts->prefix_len ? opts->prefix_len : strlen(pre)) : 0;
	max = opts->max_line ? opts->max_line : WP_LOGSCAN_MAX_LINE;
	if (!ml || ml > WP_LOGSCAN_MAX_TOKEN || pl > WP_LOGSCAN_MAX_TOKEN ||
	    max > WP_LOGSCAN_MAX_LINE_LIMIT || opts->search > max)
		return WP_EINVAL;
	/* sums cannot overflow: every term is bounded above */
	if (pl + opts->search + ml > max)
		return WP_EINVAL;
	/* a CR or LF in a token could never match inside a line */
	if (memchr(m, '\n', ml) || memchr(m, '\r', ml) ||
	    (pl && (memchr(pre, '\n', pl) || memchr(pre, '\r', pl))))
		return WP_EINVAL;

	sc = calloc(1, sizeof(*sc) + ml + pl);
	if (!sc)
		return WP_ENOMEM;
	memcpy(sc->tokens, m, ml);
	if (pl)
		memcpy(sc->tokens + ml, pre, pl);
	sc->marker = sc->tokens;
	sc->prefix = sc->tokens + ml;
	sc->marker_len = ml;
	sc->prefix_len = pl;
	sc->search = opts->search;
	sc->max_line = max;
	sc->window = pl + opts->search + ml;
	/* room for an undecided head from the start (window <= max_line) */
	cap = sc->window > BUF_MIN ? sc->window : BUF_MIN;
	if (cap > max + 1)
		cap = max + 1;
	sc->buf = malloc(cap);
	if (!sc->buf)
		goto fail;
	sc->cap = cap;
	sc->state = S_START;
	sc->st.max_line = max;
	*out = sc;
	return WP_OK;
fail:
	free(sc);
	return WP_ENOMEM;
}

void wp_logscan_free(struct wp_logscan *sc)
{
	if (!sc)
		return;
	free(sc->buf);
	free(sc);
}

int wp_logscan_feed(struct wp_logscan *sc, const void *data, size_t len,
		    wp_logscan_cb cb, void *ud)
{
	const char *p = data, *end, *nl;
	size_t n, take, poff = 0;
	int rc, d;

	if (sc->err)
		return sc->err;
	if (sc->finished)
		return WP_EPROTO;
	if (!len)
		return WP_OK;
	end = p + len;
	sc->st.bytes += len;
	while (p < end) {
		switch (sc->state) {
		case S_START:
			/* the hot loop: whole lines inside the chunk */
			while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
				n = (size_t)(nl - p);
				if (n >= sc->prefix_len + sc->marker_len &&
				    decide(sc, p, n, 1, &poff) == D_YES) {
					sc->st.candidates++;
					emit_line(sc, p, n, poff, cb, ud);
				} else {
					sc->st.lines++;
				}
				p = nl + 1;
				if (p == end)
					return WP_OK;
			}
			return start_partial(sc, p, (size_t)(end - p));

		case S_HEAD:
			/* read just enough to see the whole window (or the LF) */
			take = sc->window - sc->len;
			if (take > (size_t)(end - p))
				take = (size_t)(end - p);
			nl = memchr(p, '\n', take);
			if (nl)
				take = (size_t)(nl - p);
			memcpy(sc->buf + sc->len, p, take); /* cap >= window */
			sc->len += take;
			p += take;
			if (nl) {
				p++;
				if (decide(sc, sc->buf, sc->len, 1, &poff) == D_YES) {
					sc->st.candidates++;
					emit_line(sc, sc->buf, sc->len, poff, cb, ud);
				} else {
					sc->st.lines++;
					sc->state = S_START;
					sc->len = 0;
				}
				break;
			}
			d = decide(sc, sc->buf, sc->len, 0, &poff);
			if (d == D_NO) {
				sc->state = S_SKIP;
				sc->line_bytes = sc->len;
				sc->prev_cr = sc->buf[sc->len - 1] == '\r';
				sc->len = 0;
			} else if (d == D_YES) {
				sc->st.candidates++;
				sc->poff = poff;
				sc->state = S_CAND;
			}
			/* D_MAYBE only when the chunk is used up (see decide) */
			break;

		case S_CAND:
			nl = memchr(p, '\n', (size_t)(end - p));
			take = nl ? (size_t)(nl - p) : (size_t)(end - p);
			if (take > sc->max_line + 1 - sc->len) {
				/* take >= 1 here: len <= max_line + 1 */
				go_over(sc, (uint64_t)sc->len + take, p[take - 1] == '\r');
				p += take; /* S_OVER finds the LF (if any) at p */
				break;
			}
			rc = append(sc, p, take);
			if (rc)
				return fail(sc, rc);
			p += take;
			if (nl) {
				p++;
				emit_line(sc, sc->buf, sc->len, sc->poff, cb, ud);
			}
			break;

		case S_SKIP:
		case S_OVER:
			nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl) {
				sc->line_bytes += (uint64_t)(end - p);
				sc->prev_cr = end[-1] == '\r';
				return WP_OK;
			}
			sc->line_bytes += (uint64_t)(nl - p);
			if (nl > p)
				sc->prev_cr = nl[-1] == '\r';
			p = nl + 1;
			if (sc->state == S_OVER) {
				emit_oversized(sc, sc->line_bytes - (uint64_t)sc->prev_cr,
					       cb, ud);
			} else {
				sc->st.lines++;
				sc->state = S_START;
			}
			break;
		}
	}
	return WP_OK;
}

int wp_logscan_finish(struct wp_logscan *sc, wp_logscan_cb cb, void *ud)
{
	size_t poff = 0;

	if (sc->err)
		return sc->err;
	if (sc->finished)
		return WP_OK;
	sc->finished = 1;
	switch (sc->state) {
	case S_START:
		break;
	case S_HEAD:
		if (decide(sc, sc->buf, sc->len, 1, &poff) == D_YES) {
			sc->st.candidates++;
			emit_line(sc, sc->buf, sc->len, poff, cb, ud);
		} else {
			sc->st.lines++;
		}
		break;
	case S_CAND:
		emit_line(sc, sc->buf, sc->len, sc->poff, cb, ud);
		break;
	case S_SKIP:
		sc->st.lines++;
		break;
	case S_OVER:
		emit_oversized(sc, sc->line_bytes - (uint64_t)sc->prev_cr, cb, ud);
		break;
	}
	sc->state = S_START;
	sc->len = 0;
	return WP_OK;
}

void wp_logscan_stats(const struct wp_logscan *sc, struct wp_logscan_stats *out)
{
	*out = sc->st;
	out->buffer = sc->cap;
}
