/* SPDX-License-Identifier: MIT */
/*
 * The host's logger: one line per call on stderr, in the text format
 * ("<time> [level] message key=value ...") or as JSON lines ({"time",
 * "level", "msg", fields...}); docs/operations.md, Logging.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const format_names[] = { "text", "json" };

/*
 * The settings. The environment (WORKPROOF_LOG, WORKPROOF_LOG_FORMAT) is read
 * once and wins over what the config asks for (wp_log_configure): an
 * operator can turn on debug output for one run without editing the config.
 */
static int min_level = -1;       /* -1: not resolved yet */
static int format = WP_LOG_TEXT;
static int env_level = -1, env_format = -1;

static int lookup(const char *name, const char *const *names, int n)
{
	for (int i = 0; name && i < n; i++)
		if (!strcmp(name, names[i]))
			return i;
	return -1;
}

int wp_log_parse_level(const char *name)
{
	return lookup(name, level_names, 4);
}

int wp_log_parse_format(const char *name)
{
	return lookup(name, format_names, 2);
}

static void resolve(void)
{
	if (min_level >= 0)
		return;
	env_level = wp_log_parse_level(getenv("WORKPROOF_LOG"));
	env_format = wp_log_parse_format(getenv("WORKPROOF_LOG_FORMAT"));
	min_level = env_level >= 0 ? env_level : WP_LOG_INFO;
	format = env_format >= 0 ? env_format : WP_LOG_TEXT;
}

void wp_log_configure(int level, int fmt)
{
	resolve();
	if (level >= 0 && level < 4 && env_level < 0)
		min_level = level;
	if (fmt >= 0 && fmt < 2 && env_format < 0)
		format = fmt;
}

const char *wp_log_level_name(void)
{
	resolve();
	return level_names[min_level];
}

const char *wp_log_format_name(void)
{
	resolve();
	return format_names[format];
}

int wp_log_enabled(enum wp_log_level lvl)
{
	resolve();
	return (int)lvl >= min_level;
}

/*
 * A line is built whole in memory and written with one call: stderr is
 * unbuffered, and a line in pieces could interleave with a child's output
 * (or cost a write(2) per piece on the request path).
 */
struct lbuf {
	char *p;
	size_t len, cap;
	int oom;
	char stack[1024];
};

static void lb_init(struct lbuf *b)
{
	b->p = b->stack;
	b->len = 0;
	b->cap = sizeof(b->stack);
	b->oom = 0;
}

static int lb_reserve(struct lbuf *b, size_t n)
{
	size_t cap = b->cap;
	char *np;

	if (b->oom)
		return -1;
	if (b->len + n <= b->cap)
		return 0;
	while (cap < b->len + n)
		cap *= 2;
	np = b->p == b->stack ? malloc(cap) : realloc(b->p, cap);
	if (!np) {
		b->oom = 1;
		return -1;
	}
	if (b->p == b->stack)
		memcpy(np, b->stack, b->len);
	b->p = np;
	b->cap = cap;
	return 0;
}

static void lb_put(struct lbuf *b, const char *s, size_t n)
{
	if (lb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void lb_puts(struct lbuf *b, const char *s)
{
	lb_put(b, s, strlen(s));
}

static void lb_free(struct lbuf *b)
{
	if (b->p != b->stack)
		free(b->p);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string: control characters escaped, invalid UTF-8 bytes as
 * U+FFFD, so that every line parses whatever a message carries. */
static void lb_json_str(struct lbuf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	lb_put(b, "\"", 1);
	while (i < n) {
		unsigned char c = u[i];

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x7f) {
			run = i;
			while (run < n && u[run] >= 0x20 && u[run] != '"' && u[run] != '\\' && u[run] < 0x7f)
				run++;
			lb_put(b, s + i, run - i);
			i = run;
			continue;
		}
		if (c >= 0x80) {
			size_t l = utf8_len(u + i, n - i);

			if (l) {
				lb_put(b, s + i, l);
				i += l;
			} else {
				lb_puts(b, "\\ufffd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': lb_puts(b, "\\\""); break;
		case '\\': lb_puts(b, "\\\\"); break;
		case '\n': lb_puts(b, "\\n"); break;
		case '\r': lb_puts(b, "\\r"); break;
		case '\t': lb_puts(b, "\\t"); break;
		default: {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

			lb_put(b, e, sizeof(e));
		}
		}
		i++;
	}
	lb_put(b, "\"", 1);
}

/* A text-format value: bare when it is one plain word, quoted (with the
 * quote, the backslash and control characters escaped) otherwise, so that
 * `key=value` pairs split unambiguously. */
static void lb_text_val(struct lbuf *b, const char *s, size_t n)
{
	int plain = n > 0;

	for (size_t i = 0; plain && i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '\\' || c == '=')
			plain = 0;
	}
	if (plain) {
		lb_put(b, s, n);
		return;
	}
	lb_json_str(b, s, n);
}

/*
 * Lines logged on the loop's thread are gathered and written once per loop
 * iteration (a prepare handle, just before the loop waits for I/O), or
 * when 64 KiB are waiting: at tens of thousands of requests a second, a
 * write(2) per access line costs more than the line. An error line is
 * written at once (with what waits before it), and what waits is written
 * at exit. Other threads, and a host without a loop yet, write directly.
 */
#define PENDING_MAX 65536
static char pending[PENDING_MAX];
static size_t pending_len;
static int buffering;
static pthread_t loop_thread;

struct log_flusher {
	struct wp_hbase base;
	uv_prepare_t prepare;
};

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* stderr may be a non-blocking pipe (shared with a parent
			 * that made it so): wait for room rather than cut a line,
			 * but not for ever on a reader that stopped reading */
			struct pollfd pfd = { .fd = STDERR_FILENO, .events = POLLOUT };

			if (poll(&pfd, 1, 5000) > 0)
				continue;
			return;
		}
		if (w <= 0)
			return;   /* stderr closed or broken: nothing to tell it */
		p += w;
		n -= (size_t)w;
	}
}

void wp_log_flush(void)
{
	if (pending_len && pthread_equal(pthread_self(), loop_thread)) {
		write_all(pending, pending_len);
		pending_len = 0;
	}
}

static void emit(const char *p, size_t n, int now)
{
	if (!buffering || !pthread_equal(pthread_self(), loop_thread)) {
		write_all(p, n);
		return;
	}
	if (pending_len + n > sizeof(pending))
		wp_log_flush();
	if (now || n > sizeof(pending)) {
		wp_log_flush();
		write_all(p, n);
		return;
	}
	memcpy(pending + pending_len, p, n);
	pending_len += n;
}

static void flusher_fired(uv_prepare_t *prep)
{
	(void)prep;
	wp_log_flush();
}

static void flusher_closed(uv_handle_t *h)
{
	wp_log_flush();
	buffering = 0;
	free(h->data);
}

int wp_log_attach(uv_loop_t *loop)
{
	static int registered;
	struct log_flusher *f = malloc(sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->base.magic = WP_HBASE_MAGIC;
	f->base.close_cb = flusher_closed;
	uv_prepare_init(loop, &f->prepare);
	f->prepare.data = f;
	uv_prepare_start(&f->prepare, flusher_fired);
	uv_unref((uv_handle_t *)&f->prepare);   /* logging keeps nothing alive */
	if (!registered && !atexit(wp_log_flush))
		registered = 1;
	loop_thread = pthread_self();
	buffering = 1;
	return 0;
}

void wp_log_fields(enum wp_log_level lvl, const char *msg, size_t len,
		   const struct wp_log_field *f, int nf)
{
	/* the date and time to the second, formatted once a second (per
	 * thread): gmtime_r and strftime cost more than the rest of a line */
	static __thread time_t cached_sec = -1;
	static __thread char cached[40];
	struct timespec ts;
	struct tm tm;
	char when[48];
	struct lbuf b;
	long msec;

	if (!wp_log_enabled(lvl))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		if (!strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm))
			cached[0] = '\0';
		cached_sec = ts.tv_sec;
	}
	msec = (ts.tv_nsec / 1000000) % 1000;
	snprintf(when, sizeof(when), "%.30s.%03dZ", cached, (int)msec);
	lb_init(&b);
	if (format == WP_LOG_JSON) {
		lb_puts(&b, "{\"time\":\"");
		lb_puts(&b, when);
		lb_puts(&b, "\",\"level\":\"");
		lb_puts(&b, level_names[lvl]);
		lb_puts(&b, "\",\"msg\":");
		lb_json_str(&b, msg, len);
		for (int i = 0; i < nf; i++) {
			lb_put(&b, ",", 1);
			lb_json_str(&b, f[i].key, strlen(f[i].key));
			lb_put(&b, ":", 1);
			if (f[i].raw)
				lb_put(&b, f[i].val, f[i].len);
			else
				lb_json_str(&b, f[i].val, f[i].len);
		}
		lb_puts(&b, "}\n");
	} else {
		lb_puts(&b, when);
		lb_puts(&b, " [");
		lb_puts(&b, level_names[lvl]);
		lb_puts(&b, "] ");
		lb_put(&b, msg, len);
		for (int i = 0; i < nf; i++) {
			lb_put(&b, " ", 1);
			lb_puts(&b, f[i].key);
			lb_put(&b, "=", 1);
			if (f[i].raw)
				lb_put(&b, f[i].val, f[i].len);
			else
				lb_text_val(&b, f[i].val, f[i].len);
		}
		lb_put(&b, "\n", 1);
	}
	if (b.oom) {
		/* no memory for the whole line: say so rather than write half */
		wp_log_flush();
		fprintf(stderr, "%s [%s] (log line of %zu bytes dropped: out of memory)\n",
			when, level_names[lvl], len);
	} else {
		emit(b.p, b.len, lvl >= WP_LOG_ERROR);
	}
	lb_free(&b);
}

void wp_log(enum wp_log_level lvl, const char *fmt, ...)
{
	char small[512], *msg = small;
	va_list ap;
	int n;

	if (!wp_log_enabled(lvl))
		return;
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(small)) {
		msg = malloc((size_t)n + 1);
		if (!msg) {
			wp_log_fields(lvl, small, sizeof(small) - 1, NULL, 0);
			return;
		}
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	wp_log_fields(lvl, msg, (size_t)n, NULL, 0);
	if (msg != small)
		free(msg);
}
