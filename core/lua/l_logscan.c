/* SPDX-License-Identifier: MIT */
/*
 * workproof.core.logscan: the thin binding of core/src/logscan.c.
 *
 *   new(marker|nil, prefix|nil, search, max_line) -> raw scanner
 *   raw:feed(chunk) / raw:finish() -> events
 *   raw:stats() -> bytes, lines, candidates, duplicates, oversized, buffer, max_line
 *
 * `events` is a flat array, four plain values per candidate line in stream
 * order: seq (1 = the first candidate), line, bytes, payload (the raw bytes
 * after the marker; false for a line longer than max_line). What a
 * candidate means - the first one is the verdict, its payload must be a
 * JSON object, anything else makes the run an ERROR - is decided in one
 * place, lua/workproof/logscan.lua (wp.logscan, docs/lua-api.md); nothing
 * here decodes JSON or calls back into Lua.
 */
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/logscan.h"

#define LOGSCAN_MT "workproof.core.logscan"

struct lscan {
	struct wp_logscan *sc;
};

/* State of one feed()/finish() call, shared with the event callback. */
struct feed_ctx {
	lua_State *L;
	int n; /* values in the events array at the top of the stack */
};

static struct lscan *check_scanner(lua_State *L)
{
	struct lscan *s = luaL_checkudata(L, 1, LOGSCAN_MT);

	if (!s->sc)
		luaL_argerror(L, 1, "scanner already freed");
	return s;
}

static void on_event(void *ud, const struct wp_logscan_event *ev)
{
	struct feed_ctx *c = ud;
	lua_State *L = c->L;

	lua_pushnumber(L, (lua_Number)ev->seq);
	lua_rawseti(L, -2, ++c->n);
	lua_pushnumber(L, (lua_Number)ev->line);
	lua_rawseti(L, -2, ++c->n);
	lua_pushnumber(L, (lua_Number)ev->bytes);
	lua_rawseti(L, -2, ++c->n);
	if (ev->kind == WP_LOGSCAN_OVERSIZED)
		lua_pushboolean(L, 0);
	else
		lua_pushlstring(L, ev->payload, ev->len);
	lua_rawseti(L, -2, ++c->n);
}

/* Shared body of feed and finish: returns the events array. */
static int run(lua_State *L, struct lscan *s, const char *chunk, size_t len, int finish)
{
	struct feed_ctx c = { L, 0 };
	int rc;

	lua_newtable(L);
	if (finish)
		rc = wp_logscan_finish(s->sc, on_event, &c);
	else
		rc = wp_logscan_feed(s->sc, chunk, len, on_event, &c);
	if (rc == WP_EPROTO)
		return luaL_error(L, "scanner:feed: the scanner is finished");
	if (rc)
		return lwp_fail_err(L, rc, "logscan buffer could not grow");
	return 1;
}

/* raw:feed(chunk) -> events */
static int l_feed(lua_State *L)
{
	struct lscan *s = check_scanner(L);
	size_t len;
	const char *chunk;

	luaL_checktype(L, 2, LUA_TSTRING);
	chunk = lua_tolstring(L, 2, &len);
	return run(L, s, chunk, len, 0);
}

/* raw:finish() -> events */
static int l_finish(lua_State *L)
{
	return run(L, check_scanner(L), NULL, 0, 1);
}

/* raw:stats() -> bytes, lines, candidates, duplicates, oversized, buffer, max_line */
static int l_stats(lua_State *L)
{
	struct lscan *s = check_scanner(L);
	struct wp_logscan_stats st;

	wp_logscan_stats(s->sc, &st);
	lua_pushnumber(L, (lua_Number)st.bytes);
	lua_pushnumber(L, (lua_Number)st.lines);
	lua_pushnumber(L, (lua_Number)st.candidates);
	lua_pushnumber(L, (lua_Number)st.duplicates);
	lua_pushnumber(L, (lua_Number)st.oversized);
	lua_pushnumber(L, (lua_Number)st.buffer);
	lua_pushnumber(L, (lua_Number)st.max_line);
	return 7;
}

static int l_gc(lua_State *L)
{
	struct lscan *s = luaL_checkudata(L, 1, LOGSCAN_MT);

	wp_logscan_free(s->sc);
	s->sc = NULL;
	return 0;
}

/*
 * new(marker|nil, prefix|nil, search, max_line) -> raw scanner. The Lua
 * module checks the options and names the bad one; what still reaches the
 * core's own check here is a programming error and raises.
 */
static int l_new(lua_State *L)
{
	struct wp_logscan_opts o;
	struct lscan *s;
	lua_Number v;
	int rc;

	memset(&o, 0, sizeof(o));
	if (!lua_isnoneornil(L, 1))
		o.marker = luaL_checklstring(L, 1, &o.marker_len);
	if (!lua_isnoneornil(L, 2))
		o.prefix = luaL_checklstring(L, 2, &o.prefix_len);
	v = luaL_checknumber(L, 3);
	if (!(v >= 0 && v <= WP_LOGSCAN_MAX_LINE_LIMIT))
		luaL_argerror(L, 3, "search out of range");
	o.search = (size_t)v;
	v = luaL_checknumber(L, 4);
	if (!(v >= 1 && v <= WP_LOGSCAN_MAX_LINE_LIMIT))
		luaL_argerror(L, 4, "max_line out of range");
	o.max_line = (size_t)v;
	if (o.marker && !o.marker_len)
		luaL_argerror(L, 1, "empty marker");
	s = lua_newuserdata(L, sizeof(*s));
	s->sc = NULL;
	luaL_getmetatable(L, LOGSCAN_MT);
	lua_setmetatable(L, -2);
	rc = wp_logscan_new(&o, &s->sc);
	if (rc == WP_EINVAL)
		return luaL_error(L, "logscan.new: invalid options");
	if (rc)
		return lwp_fail_err(L, rc, "cannot allocate a scanner");
	return 1;
}

void lwp_open_logscan(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "feed", l_feed },
		{ "finish", l_finish },
		{ "stats", l_stats },
		{ NULL, NULL },
	};
	static const luaL_Reg fns[] = {
		{ "new", l_new },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = { { "__gc", l_gc }, { NULL, NULL } };

	lwp_class(L, LOGSCAN_MT, meta, methods);
	lwp_subtable(L, "logscan", fns);
	lua_getfield(L, -1, "logscan");
	lua_pushliteral(L, WP_LOGSCAN_MARKER);
	lua_setfield(L, -2, "MARKER");
	lua_pushnumber(L, WP_LOGSCAN_MAX_LINE);
	lua_setfield(L, -2, "MAX_LINE");
	lua_pushnumber(L, WP_LOGSCAN_MAX_LINE_LIMIT);
	lua_setfield(L, -2, "MAX_LINE_LIMIT");
	lua_pushnumber(L, WP_LOGSCAN_MAX_TOKEN);
	lua_setfield(L, -2, "MAX_TOKEN");
	lua_pop(L, 1);
}
