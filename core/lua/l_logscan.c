/* SPDX-License-Identifier: MIT */
/*
 * wp.logscan.new(opts) -> scanner; scanner:feed(chunk), scanner:finish(),
 * scanner:result(), scanner:stats().
 *
 * The C core finds candidate lines and hands over raw payload text; this
 * binding decodes it with a private lua-cjson.safe instance (so nobody
 * else's cjson settings change what a verdict means) and turns events into
 * `results` / `diags` arrays. Policy (docs/lua-api.d/logscan.md): the first
 * candidate line is THE verdict line; if its payload is malformed or not an
 * object there is no result, and every later candidate is a "duplicate"
 * diagnostic (a valid duplicate's table is kept in diag.value).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/logscan.h"

#define LOGSCAN_MT "workproof.logscan"

/* Registry key of the cached cjson.safe decode function. */
static char decoder_key;

struct lscan {
	struct wp_logscan *sc;
	uint64_t verdict_line; /* line of the first candidate, 0 before it */
	uint64_t valid, malformed, not_object;
};

/* State of one feed()/finish() call, shared with the event callback. */
struct feed_ctx {
	lua_State *L;
	struct lscan *s;
	int results, diags, decoder, env; /* stack indices */
};

static struct lscan *check_scanner(lua_State *L)
{
	struct lscan *s = luaL_checkudata(L, 1, LOGSCAN_MT);

	if (!s->sc)
		luaL_argerror(L, 1, "scanner already freed");
	return s;
}

/*
 * Push the decode function of a private cjson.safe instance, loading and
 * caching it on first use. Strict numbers: NaN, Infinity and hex are not
 * JSON and must not slip into a verdict.
 */
static void push_decoder(lua_State *L)
{
	lua_pushlightuserdata(L, &decoder_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	if (!lua_isnil(L, -1))
		return;
	lua_pop(L, 1);
	lua_getfield(L, LUA_GLOBALSINDEX, "require");
	if (!lua_isfunction(L, -1))
		luaL_error(L, "wp.logscan: no require() to load cjson.safe");
	lua_pushliteral(L, "cjson.safe");
	lua_call(L, 1, 1);
	lua_getfield(L, -1, "new");
	if (!lua_isfunction(L, -1))
		luaL_error(L, "wp.logscan: cjson.safe has no new()");
	lua_call(L, 0, 1);
	lua_getfield(L, -1, "decode_invalid_numbers");
	lua_pushboolean(L, 0);
	lua_call(L, 1, 0);
	lua_getfield(L, -1, "decode");
	lua_remove(L, -2); /* the instance */
	lua_remove(L, -2); /* the module */
	lua_pushlightuserdata(L, &decoder_key);
	lua_pushvalue(L, -2);
	lua_rawset(L, LUA_REGISTRYINDEX);
}

static void append(lua_State *L, int arr)
{
	lua_rawseti(L, arr, (int)lua_objlen(L, arr) + 1);
}

/* Push a new diag table { kind, line, bytes, message } (message on top). */
static void push_diag(lua_State *L, const char *kind,
		      const struct wp_logscan_event *ev)
{
	lua_createtable(L, 0, 5);
	lua_pushstring(L, kind);
	lua_setfield(L, -2, "kind");
	lua_pushnumber(L, (lua_Number)ev->line);
	lua_setfield(L, -2, "line");
	lua_pushnumber(L, (lua_Number)ev->bytes);
	lua_setfield(L, -2, "bytes");
}

/* JSON type name of a decoded value whose text is not an object. */
static const char *json_kind(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TTABLE:
		return "array";
	case LUA_TNUMBER:
		return "number";
	case LUA_TSTRING:
		return "string";
	case LUA_TBOOLEAN:
		return "boolean";
	default:
		return "null";
	}
}

/*
 * Decode the payload: pushes the value (or nil) and the error (or nil).
 * Returns 1 when it is a JSON object. Objects are told from arrays by the
 * text, as cjson gives a table for both.
 */
static int decode(struct feed_ctx *c, const struct wp_logscan_event *ev)
{
	lua_State *L = c->L;
	size_t i = 0;

	lua_pushvalue(L, c->decoder);
	lua_pushlstring(L, ev->payload, ev->len);
	lua_call(L, 1, 2);
	if (lua_isnil(L, -2))
		return 0;
	/* JSON whitespace before the value; bounded by the payload's length */
	while (i < ev->len && (ev->payload[i] == ' ' || ev->payload[i] == '\t' ||
				ev->payload[i] == '\r' || ev->payload[i] == '\n'))
		i++;
	return i < ev->len && ev->payload[i] == '{';
}

static void on_result(struct feed_ctx *c, const struct wp_logscan_event *ev)
{
	lua_State *L = c->L;
	const char *err;

	c->s->verdict_line = ev->line;
	if (decode(c, ev)) {
		lua_pop(L, 1);
		c->s->valid++;
		lua_pushvalue(L, -1);
		lua_rawseti(L, c->env, 1);
		append(L, c->results);
		return;
	}
	if (lua_isnil(L, -2)) {
		c->s->malformed++;
		err = lua_tostring(L, -1);
		push_diag(L, "malformed", ev);
		lua_pushfstring(L, "malformed JSON in the result line: %s",
				err ? err : "decode failed");
	} else {
		const char *kind = json_kind(L, -2);

		c->s->not_object++;
		push_diag(L, "not_object", ev);
		lua_pushfstring(L, "the result line holds a JSON %s, not an object",
				kind);
	}
	lua_setfield(L, -2, "message");
	append(L, c->diags);
	lua_pop(L, 2);
}

static void on_duplicate(struct feed_ctx *c, const struct wp_logscan_event *ev)
{
	lua_State *L = c->L;
	char msg[160];
	int ok = decode(c, ev);

	snprintf(msg, sizeof(msg),
		 "duplicate result line (the verdict line is line %" PRIu64 ")%s",
		 c->s->verdict_line,
		 ok ? "" : "; its payload is not a valid JSON object");
	push_diag(L, "duplicate", ev);
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	if (ok) {
		/* keep the information: the controller may log what it said */
		lua_pushvalue(L, -3);
		lua_setfield(L, -2, "value");
	}
	append(L, c->diags);
	lua_pop(L, 2);
}

static void on_oversized(struct feed_ctx *c, const struct wp_logscan_event *ev)
{
	lua_State *L = c->L;
	struct wp_logscan_stats st;
	char msg[200];

	if (ev->seq == 1)
		c->s->verdict_line = ev->line;
	wp_logscan_stats(c->s->sc, &st);
	snprintf(msg, sizeof(msg),
		 "%s line of %" PRIu64 " bytes exceeds max_line (%zu); skipped",
		 ev->seq == 1 ? "result" : "duplicate result", ev->bytes,
		 st.max_line);
	push_diag(L, "oversized", ev);
	lua_pushstring(L, msg);
	lua_setfield(L, -2, "message");
	append(L, c->diags);
}

static void on_event(void *ud, const struct wp_logscan_event *ev)
{
	struct feed_ctx *c = ud;

	switch (ev->kind) {
	case WP_LOGSCAN_RESULT:
		on_result(c, ev);
		break;
	case WP_LOGSCAN_DUPLICATE:
		on_duplicate(c, ev);
		break;
	case WP_LOGSCAN_OVERSIZED:
		on_oversized(c, ev);
		break;
	}
}

/* Shared body of feed and finish: returns results, diags. */
static int run(lua_State *L, struct lscan *s, const char *chunk, size_t len,
	       int finish)
{
	struct feed_ctx c;
	int rc;

	lua_settop(L, 2);
	c.L = L;
	c.s = s;
	lua_newtable(L);
	c.results = lua_gettop(L);
	lua_newtable(L);
	c.diags = lua_gettop(L);
	push_decoder(L);
	c.decoder = lua_gettop(L);
	lua_getfenv(L, 1);
	c.env = lua_gettop(L);
	if (finish)
		rc = wp_logscan_finish(s->sc, on_event, &c);
	else
		rc = wp_logscan_feed(s->sc, chunk, len, on_event, &c);
	if (rc == WP_EPROTO)
		return luaL_error(L, "scanner:feed: the scanner is finished");
	if (rc)
		return lwp_fail_err(L, rc, "logscan buffer could not grow");
	lua_settop(L, c.diags);
	return 2;
}

/* scanner:feed(chunk) -> results, diags */
static int l_feed(lua_State *L)
{
	struct lscan *s = check_scanner(L);
	const char *chunk;
	size_t len;

	luaL_checktype(L, 2, LUA_TSTRING);
	chunk = lua_tolstring(L, 2, &len);
	return run(L, s, chunk, len, 0);
}

/* scanner:finish() -> results, diags */
static int l_finish(lua_State *L)
{
	return run(L, check_scanner(L), NULL, 0, 1);
}

/* scanner:result() -> the first valid result table or nil */
static int l_result(lua_State *L)
{
	check_scanner(L);
	lua_getfenv(L, 1);
	lua_rawgeti(L, -1, 1);
	return 1;
}

static void set_count(lua_State *L, const char *name, uint64_t v)
{
	lua_pushnumber(L, (lua_Number)v);
	lua_setfield(L, -2, name);
}

/* scanner:stats() -> table of counters */
static int l_stats(lua_State *L)
{
	struct lscan *s = check_scanner(L);
	struct wp_logscan_stats st;

	wp_logscan_stats(s->sc, &st);
	lua_createtable(L, 0, 10);
	set_count(L, "bytes", st.bytes);
	set_count(L, "lines", st.lines);
	set_count(L, "candidates", st.candidates);
	set_count(L, "results", s->valid);
	set_count(L, "duplicates", st.duplicates);
	set_count(L, "oversized", st.oversized);
	set_count(L, "malformed", s->malformed);
	set_count(L, "not_object", s->not_object);
	set_count(L, "buffer", st.buffer);
	set_count(L, "max_line", st.max_line);
	return 1;
}

static int l_gc(lua_State *L)
{
	struct lscan *s = luaL_checkudata(L, 1, LOGSCAN_MT);

	wp_logscan_free(s->sc);
	s->sc = NULL;
	return 0;
}

static int l_tostring(lua_State *L)
{
	struct lscan *s = luaL_checkudata(L, 1, LOGSCAN_MT);

	lua_pushfstring(L, "wp.logscan: %p", (void *)s);
	return 1;
}

/* Raise naming the field (a bad option is a programming error). */
static int opt_error(lua_State *L, const char *field, const char *what)
{
	return luaL_error(L, "wp.logscan.new: opts.%s: %s", field, what);
}

/* opts.<field>: a string or nil; raise on any other type. */
static const char *opt_string(lua_State *L, const char *field, size_t *len)
{
	const char *s;

	lua_getfield(L, 1, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return NULL;
	}
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pushfstring(L, "string expected, got %s", luaL_typename(L, -1));
		opt_error(L, field, lua_tostring(L, -1));
	}
	/* stays referenced by opts (index 1) while new() runs */
	s = lua_tolstring(L, -1, len);
	lua_pop(L, 1);
	if (memchr(s, '\n', *len) || memchr(s, '\r', *len))
		opt_error(L, field, "must not contain CR or LF");
	if (*len > WP_LOGSCAN_MAX_TOKEN)
		opt_error(L, field, "longer than 4096 bytes");
	return s;
}

/* opts.<field>: a non-negative integer up to the max_line limit, or nil. */
static size_t opt_size(lua_State *L, const char *field, size_t dflt)
{
	lua_Number v;

	lua_getfield(L, 1, field);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return dflt;
	}
	if (lua_type(L, -1) != LUA_TNUMBER) {
		lua_pushfstring(L, "integer expected, got %s", luaL_typename(L, -1));
		opt_error(L, field, lua_tostring(L, -1));
	}
	v = lua_tonumber(L, -1);
	lua_pop(L, 1);
	if (v != (lua_Number)(int64_t)v || v < 0 ||
	    v > (lua_Number)WP_LOGSCAN_MAX_LINE_LIMIT)
		opt_error(L, field, "must be an integer in 0..268435456");
	return (size_t)v;
}

/* wp.logscan.new([opts]) -> scanner */
static int l_new(lua_State *L)
{
	static const char *const known[] = {
		"marker", "prefix", "search", "max_line", NULL,
	};
	struct wp_logscan_opts o;
	struct lscan *s;
	int rc;

	memset(&o, 0, sizeof(o));
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	/* an unknown field is almost always a typo ("serach") */
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		int i = 0;

		lua_pop(L, 1);
		if (lua_type(L, -1) == LUA_TSTRING)
			for (; known[i] && strcmp(known[i], lua_tostring(L, -1)); i++)
				;
		if (lua_type(L, -1) != LUA_TSTRING || !known[i]) {
			if (lua_type(L, -1) == LUA_TSTRING)
				return luaL_error(L, "wp.logscan.new: unknown option '%s'",
						  lua_tostring(L, -1));
			return luaL_error(L, "wp.logscan.new: unknown option key of type %s",
					  luaL_typename(L, -1));
		}
	}
	o.marker = opt_string(L, "marker", &o.marker_len);
	if (o.marker && !o.marker_len)
		opt_error(L, "marker", "must not be empty");
	o.prefix = opt_string(L, "prefix", &o.prefix_len);
	if (o.prefix && !o.prefix_len)
		o.prefix = NULL;
	o.search = opt_size(L, "search", 0);
	o.max_line = opt_size(L, "max_line", WP_LOGSCAN_MAX_LINE);
	if (!o.max_line)
		opt_error(L, "max_line", "must be at least 1");
	if (o.prefix_len + o.search +
	    (o.marker ? o.marker_len : strlen(WP_LOGSCAN_MARKER)) > o.max_line)
		opt_error(L, "search", "prefix + search + marker exceed max_line");

	push_decoder(L); /* fail here, not at the first result, without cjson */
	lua_pop(L, 1);

	s = lua_newuserdata(L, sizeof(*s));
	memset(s, 0, sizeof(*s));
	rc = wp_logscan_new(&o, &s->sc);
	if (rc == WP_EINVAL)
		return luaL_error(L, "wp.logscan.new: invalid options");
	if (rc)
		return lwp_fail_err(L, rc, "cannot allocate a scanner");
	luaL_getmetatable(L, LOGSCAN_MT);
	lua_setmetatable(L, -2);
	lua_createtable(L, 1, 0); /* [1] = the result table */
	lua_setfenv(L, -2);
	return 1;
}

void lwp_open_logscan(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "feed", l_feed },
		{ "finish", l_finish },
		{ "result", l_result },
		{ "stats", l_stats },
		{ NULL, NULL },
	};
	static const luaL_Reg fns[] = {
		{ "new", l_new },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, LOGSCAN_MT)) {
		lua_newtable(L);
		lwp_setfuncs(L, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, l_tostring);
		lua_setfield(L, -2, "__tostring");
		lua_pushliteral(L, "workproof.logscan");
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	lwp_subtable(L, "logscan", fns);
}
