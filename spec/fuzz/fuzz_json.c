/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the request path's JSON (core/src/json.c,
 * spec/fuzz/corpus/json).
 *
 * Invariants, any violation aborts:
 *  - canonical(x) succeeds  =>  its text is UTF-8 and canonical again
 *    unchanged (JSON.stringify(JSON.parse(t)) == t for its own output);
 *  - request(x) succeeds (the strict reading)  =>  canonical(x) and
 *    check_js(x) succeed, its taskHash text equals wp_json_task's with the
 *    body's language, and is canonical unchanged; each member's text
 *    s[start..end) prints canon_len bytes; a number member prints as its
 *    double's "%.17g" spelling does (the short-token path against strtod's);
 *  - a failure is WP_EINVAL with a message naming a byte.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workproof/common.h"
#include "workproof/json.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_json: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

struct seen {
	const char *s;
	struct wp_buf lang;
	int has_lang;
};

static void canon(const char *s, size_t n, struct wp_buf *out)
{
	char err[128];

	out->len = 0;
	CHECK(wp_json_canonical(s, n, 4096, out, err, sizeof(err)) == WP_OK);
}

static int member(void *arg, const char *key, size_t key_len, const struct wp_json_value *v)
{
	struct seen *m = arg;
	struct wp_buf a = WP_BUF_INIT, b = WP_BUF_INIT;

	CHECK(v->start < v->end);
	canon(m->s + v->start, v->end - v->start, &a);
	CHECK(a.len == v->canon_len);
	if (v->type == WP_JSON_NUMBER && isfinite(v->num)) {
		char t[40];

		canon(t, (size_t)snprintf(t, sizeof(t), "%.17g", v->num), &b);
		CHECK(a.len == b.len && !memcmp(a.data, b.data, a.len));
	}
	if (key_len == 8 && !memcmp(key, "language", 8)) {
		m->has_lang = v->type == WP_JSON_STRING;
		m->lang.len = 0;
		CHECK(wp_buf_append(&m->lang, v->str ? v->str : "", v->str_len) == WP_OK);
	}
	wp_buf_free(&a);
	wp_buf_free(&b);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct wp_buf c = WP_BUF_INIT, c2 = WP_BUF_INIT, task = WP_BUF_INIT, task2 = WP_BUF_INIT;
	struct seen m = { .s = s, .lang = WP_BUF_INIT };
	char err[128];
	int rc;

	rc = wp_json_canonical(s, size, 64, &c, err, sizeof(err));
	if (rc == WP_OK) {
		CHECK(wp_utf8_valid((const char *)c.data, c.len));
		canon((const char *)c.data, c.len, &c2);
		CHECK(c2.len == c.len && !memcmp(c2.data, c.data, c.len));
	} else {
		CHECK(rc == WP_EINVAL && strstr(err, " at byte "));
	}
	rc = wp_json_request(s, size, 64, member, &m, &task, err, sizeof(err));
	if (rc == WP_OK) {
		CHECK(wp_json_check_js(s, size, err, sizeof(err)) == WP_OK);
		canon(s, size, &c2);
		/* a language member that is no string: the request text has
		 * none, as wp_json_task without one */
		CHECK(wp_json_task(s, size, m.has_lang ? (m.lang.len ? (const char *)m.lang.data : "") : NULL, m.lang.len, 65, &task2, err,
				   sizeof(err)) == WP_OK);
		CHECK(task.len == task2.len && !memcmp(task.data, task2.data, task.len));
		canon((const char *)task.data, task.len, &c2);
		CHECK(c2.len == task.len && !memcmp(c2.data, task.data, task.len));
	} else {
		CHECK(rc == WP_EINVAL && strstr(err, " at byte "));
	}
	wp_buf_free(&c);
	wp_buf_free(&c2);
	wp_buf_free(&task);
	wp_buf_free(&task2);
	wp_buf_free(&m.lang);
	return 0;
}
