/* SPDX-License-Identifier: MIT */
/*
 * workproof.core.json: the thin binding of core/src/json.c, used by
 * lua/workproof/json.lua (wp.json), which documents the behaviour.
 *
 *   json.utf8_valid(s) -> boolean
 *   json.canonical(s, max_depth) -> text | nil, "message at byte N"
 *   json.task(body, language|nil, max_depth) -> text | nil, "message at byte N"
 *   json.check_js(s) -> true | nil, "reason at byte N"
 *   json.request(body, max_depth) -> fields, spans, task text | nil, "message at byte N"
 *     fields: key -> value for the scalar members (null: lightuserdata NULL,
 *     lua-cjson's null); spans: key -> { first, last, type, canonical
 *     length } for the members that are arrays or objects, and for
 *     "inputData" whatever it is
 *
 * Malformed input is data, not a programming error: nil and the message
 * (json.lua's convention, not "ECODE: text").
 */
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/json.h"

#define ERRSZ 200

static unsigned depth_arg(lua_State *L, int idx)
{
	lua_Integer d = luaL_checkinteger(L, idx);

	luaL_argcheck(L, d >= 1 && d <= 4096, idx, "nesting limit must be 1..4096");
	return (unsigned)d;
}

/* The output buffer of the last call, kept for the next (up to OUT_KEEP
 * bytes): a fresh body-sized one comes from mmap and faults in page by
 * page. The host's Lua runs on one thread. */
#define OUT_KEEP ((size_t)4 << 20)
static struct wp_buf out_kept;

static struct wp_buf out_buf(void)
{
	return wp_buf_take(&out_kept);
}

static void out_done(struct wp_buf *b)
{
	wp_buf_keep(&out_kept, b, OUT_KEEP);
}

/* nil and the message (out of memory raises) */
static int failed(lua_State *L, int rc, const char *err)
{
	if (rc == WP_ENOMEM)
		return luaL_error(L, "json: out of memory");
	lua_pushnil(L);
	lua_pushstring(L, err);
	return 2;
}

/* push the buffer's text, or nil and the message; gives the buffer back */
static int result(lua_State *L, int rc, struct wp_buf *out, const char *err)
{
	if (rc == WP_OK) {
		lua_pushlstring(L, out->data ? (const char *)out->data : "", out->len);
		out_done(out);
		return 1;
	}
	out_done(out);
	return failed(L, rc, err);
}

static int l_utf8_valid(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);

	lua_pushboolean(L, wp_utf8_valid(s, n));
	return 1;
}

static int l_canonical(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	unsigned depth = depth_arg(L, 2);
	struct wp_buf out = out_buf();
	char err[ERRSZ];

	return result(L, wp_json_canonical(s, n, depth, &out, err, sizeof(err)), &out, err);
}

static int l_task(lua_State *L)
{
	size_t n, ln = 0;
	const char *s = luaL_checklstring(L, 1, &n);
	const char *lang = luaL_optlstring(L, 2, NULL, &ln);
	unsigned depth = depth_arg(L, 3);
	struct wp_buf out = out_buf();
	char err[ERRSZ];

	return result(L, wp_json_task(s, n, lang, ln, depth, &out, err, sizeof(err)), &out, err);
}

static int l_check_js(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	char err[ERRSZ];
	int rc = wp_json_check_js(s, n, err, sizeof(err));

	if (rc == WP_OK) {
		lua_pushboolean(L, 1);
		return 1;
	}
	return failed(L, rc, err);
}

static const char *const TYPE_NAMES[] = { "null", "boolean", "boolean", "number", "string", "array", "object" };

/* one member into fields (stack 3) or spans (stack 4); a repeated key
 * replaces what came before it in either */
static int request_member(void *arg, const char *key, size_t key_len, const struct wp_json_value *v)
{
	lua_State *L = arg;
	int span = v->type == WP_JSON_ARRAY || v->type == WP_JSON_OBJECT ||
		   (key_len == 9 && !memcmp(key, "inputData", 9));

	lua_pushlstring(L, key, key_len);
	lua_pushvalue(L, -1);
	lua_pushnil(L);
	lua_rawset(L, span ? 3 : 4);
	if (span) {
		lua_createtable(L, 4, 0);
		lua_pushinteger(L, (lua_Integer)v->start + 1);
		lua_rawseti(L, -2, 1);
		lua_pushinteger(L, (lua_Integer)v->end);
		lua_rawseti(L, -2, 2);
		lua_pushstring(L, TYPE_NAMES[v->type]);
		lua_rawseti(L, -2, 3);
		lua_pushinteger(L, (lua_Integer)(v->type == WP_JSON_STRING ? v->str_len : v->canon_len));
		lua_rawseti(L, -2, 4);
		lua_rawset(L, 4);
		if (v->type > WP_JSON_STRING)
			return 0;
		lua_pushlstring(L, key, key_len);
	}
	switch (v->type) {
	case WP_JSON_NULL:
		lua_pushlightuserdata(L, NULL);
		break;
	case WP_JSON_FALSE:
	case WP_JSON_TRUE:
		lua_pushboolean(L, v->type == WP_JSON_TRUE);
		break;
	case WP_JSON_NUMBER:
		lua_pushnumber(L, v->num);
		break;
	default:
		lua_pushlstring(L, v->str, v->str_len);
	}
	lua_rawset(L, 3);
	return 0;
}

static int l_request(lua_State *L)
{
	size_t n;
	const char *s = luaL_checklstring(L, 1, &n);
	unsigned depth = depth_arg(L, 2);
	struct wp_buf out = out_buf();
	char err[ERRSZ];
	int rc;

	lua_settop(L, 2);
	lua_newtable(L); /* 3: fields */
	lua_newtable(L); /* 4: spans */
	rc = wp_json_request(s, n, depth, request_member, L, &out, err, sizeof(err));
	return result(L, rc, &out, err) + (rc == WP_OK ? 2 : 0); /* fields, spans, text */
}

static const luaL_Reg funcs[] = {
	{ "utf8_valid", l_utf8_valid },
	{ "canonical", l_canonical },
	{ "task", l_task },
	{ "check_js", l_check_js },
	{ "request", l_request },
	{ NULL, NULL },
};

void lwp_open_json(lua_State *L)
{
	lwp_subtable(L, "json", funcs);
}
