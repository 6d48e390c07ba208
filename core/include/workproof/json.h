/* SPDX-License-Identifier: MIT */
/**
 * \file json.h
 * \brief JSON text as JavaScript reads and prints it: the request path's hot
 *        part (UTF-8 check, what JSON.parse reads differently, the
 *        taskHash text) in one pass each, without building a tree.
 *
 * wp_json_canonical prints exactly JSON.stringify(JSON.parse(text)):
 *   - objects: array-index keys (canonical decimal integers below
 *     2^32 - 1) first in ascending numeric order, then the other keys in
 *     insertion order; a repeated key keeps its FIRST position and its
 *     LAST value;
 *   - numbers as Number.prototype.toString (shortest round-trip digits,
 *     nearest, ties to even; 1e+21 / 1e-7 forms; -0 as 0; beyond the
 *     double range as null);
 *   - strings: only " \ \b \f \n \r \t and the other control characters
 *     (\u00XX, lowercase) escaped, "/" and non-ASCII as is, lone
 *     surrogates as \udXXX (ES2019 well-formed JSON.stringify);
 *   - no whitespace.
 * The text must be valid UTF-8 (checked). lua/workproof/json.lua is its Lua
 * face; spec/unit/json_node_spec.lua compares it with node.
 */
#ifndef WORKPROOF_JSON_H
#define WORKPROOF_JSON_H

#include <stddef.h>

#include "workproof/buf.h"

/** Is s[0..n) valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)? */
int wp_utf8_valid(const char *s, size_t n);

/**
 * JSON.stringify(JSON.parse(s)) appended to out. max_depth: the nesting
 * limit (the top value is depth 1).
 * \return WP_OK; WP_EINVAL with "message at byte N" in err (malformed,
 *         invalid UTF-8, too deep); WP_ENOMEM.
 */
int wp_json_canonical(const char *s, size_t n, unsigned max_depth, struct wp_buf *out, char *err, size_t errsz);

/**
 * The taskHash text of a request body (an object): what
 *   const t = JSON.parse(body); JSON.stringify({taskType: t.taskType,
 *     code: t.code, expectedHash: t.expectedHash, inputData: t.inputData,
 *     ...(language !== "javascript" ? {language} : {})})
 * prints, appended to out (absent members are left out). language: the
 * request's language after defaulting (NULL: none added).
 * \return as wp_json_canonical ("expected a JSON object" when it is not).
 */
int wp_json_task(const char *s, size_t n, const char *language, size_t language_len, unsigned max_depth,
		 struct wp_buf *out, char *err, size_t errsz);

/** The kind of a JSON value (wp_json_request's members). */
enum wp_json_type { WP_JSON_NULL, WP_JSON_FALSE, WP_JSON_TRUE, WP_JSON_NUMBER, WP_JSON_STRING, WP_JSON_ARRAY, WP_JSON_OBJECT };

/** A request's top-level member as wp_json_request read it. */
struct wp_json_value {
	enum wp_json_type type;
	size_t start, end;  /**< its text: s[start..end) */
	size_t canon_len;   /**< bytes of its JSON.stringify text */
	const char *str;    /**< a string's decoded bytes (valid during the call) */
	size_t str_len;
	double num;         /**< a number's value */
};

/** Called once per top-level member, in order (a repeated key each time);
 *  non-zero: out of memory. */
typedef int (*wp_json_member_fn)(void *arg, const char *key, size_t key_len, const struct wp_json_value *v);

/**
 * A request body in one pass: checks that it is UTF-8 and one JSON object
 * that JavaScript's JSON.parse reads as we do (within max_depth: the object
 * is depth 1, its members' values 2; no lone surrogate; no number beyond
 * the double range),
 * hands each top-level member to fn, and appends the taskHash text (as
 * wp_json_task, with the body's own "language" when it is a string other
 * than "javascript") to out.
 * \return as wp_json_canonical.
 */
int wp_json_request(const char *s, size_t n, unsigned max_depth, wp_json_member_fn fn, void *arg, struct wp_buf *out,
		    char *err, size_t errsz);
/**
 * For a text a lenient parser (lua-cjson) accepted: does JavaScript's
 * JSON.parse read it the same? Finds raw control characters inside strings,
 * number spellings JSON forbids (01, -01, 1., 1.e5) and numbers beyond the
 * double range (+/-Infinity in JavaScript).
 * \return WP_OK, or WP_EINVAL with the reason "... at byte N" in err.
 */
int wp_json_check_js(const char *s, size_t n, char *err, size_t errsz);

#endif
