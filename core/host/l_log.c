/* SPDX-License-Identifier: MIT */
/*
 * host.log and its settings: the level and format of every log line
 * (log.c), and the request id a host coroutine's lines carry.
 *
 *   host.log(level, message [, fields])   fields: { key = string|number|boolean }
 *   host.log_configure{ level =, format = } -> level, format (the effective ones)
 *   host.log_enabled(level)                -> boolean
 *   host.log_request(id | nil)             the calling coroutine's lines carry requestId = id
 *   host.request_id()                      -> 32 lowercase hex (16 random bytes)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"

#define MAX_FIELDS 32

static const char *const levels[] = { "debug", "info", "warn", "error", NULL };
static const char *const formats[] = { "text", "json", NULL };

/* registry key of the table thread -> request id (weak keys: a finished
 * coroutine takes its entry with it) */
static char rid_key;

/* decimal digits of v into out (at least 21 bytes); returns the length */
static size_t utoa(unsigned long long v, char *out)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}

static int field_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wp_log_field *)a)->key, ((const struct wp_log_field *)b)->key);
}

static int valid_key(const char *k)
{
	if (!*k || !strcmp(k, "time") || !strcmp(k, "level") || !strcmp(k, "msg"))
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_'))
			return 0;
	return 1;
}

/* host.log(level, message [, fields]): fields are written in key order
 * after the message; the calling coroutine's request id is added as
 * requestId unless the fields name one. */
int lwp_host_log(lua_State *L)
{
	int lvl = luaL_checkoption(L, 1, "info", levels);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	struct wp_log_field f[MAX_FIELDS + 1];
	char nums[MAX_FIELDS][32];
	int nf = 0, has_rid = 0;

	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			/* keys and string values stay anchored by the table */
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

			luaL_argcheck(L, k && valid_key(k), 3,
				      "field names are [A-Za-z0-9_]+ other than time, level, msg");
			luaL_argcheck(L, nf < MAX_FIELDS, 3, "too many fields");
			f[nf].key = k;
			f[nf].raw = 1;
			switch (lua_type(L, -1)) {
			case LUA_TSTRING:
				f[nf].val = lua_tolstring(L, -1, &f[nf].len);
				f[nf].raw = 0;
				break;
			case LUA_TNUMBER: {
				lua_Number n = lua_tonumber(L, -1);
				int w;

				/* integers (statuses, sizes) without printf: this runs
				 * for every access line */
				if (n >= 0 && n < 1e15 && n == (lua_Number)(long long)n)
					w = (int)utoa((unsigned long long)n, nums[nf]);
				else
					w = isfinite(n) ? snprintf(nums[nf], sizeof(nums[nf]), "%.14g", n) : -1;

				if (w < 0 || (size_t)w >= sizeof(nums[nf]))
					w = snprintf(nums[nf], sizeof(nums[nf]), "null");
				f[nf].val = nums[nf];
				f[nf].len = (size_t)w;
				break;
			}
			case LUA_TBOOLEAN:
				f[nf].val = lua_toboolean(L, -1) ? "true" : "false";
				f[nf].len = strlen(f[nf].val);
				break;
			default:
				return luaL_argerror(L, 3, "field values are strings, numbers or booleans");
			}
			if (!strcmp(k, "requestId"))
				has_rid = 1;
			nf++;
			lua_pop(L, 1);
		}
	}
	/* fields are checked whatever the level: a wrong call must not wait
	 * for debug output to be turned on to show */
	if (!wp_log_enabled((enum wp_log_level)lvl))
		return 0;
	if (!has_rid) {
		lua_pushlightuserdata(L, &rid_key);
		lua_rawget(L, LUA_REGISTRYINDEX);
		if (lua_istable(L, -1)) {
			lua_pushthread(L);
			lua_rawget(L, -2);   /* left on the stack: anchors the string */
			if (lua_type(L, -1) == LUA_TSTRING) {
				f[nf].key = "requestId";
				f[nf].val = lua_tolstring(L, -1, &f[nf].len);
				f[nf].raw = 0;
				nf++;
			}
		}
	}
	if (nf > 1)
		qsort(f, (size_t)nf, sizeof(f[0]), field_cmp);
	wp_log_fields((enum wp_log_level)lvl, msg, len, f, nf);
	return 0;
}

/* host.log_configure{ level =, format = } -> level, format */
static int l_log_configure(lua_State *L)
{
	int level = -1, format = -1;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "level");
	if (!lua_isnil(L, -1))
		level = luaL_checkoption(L, -1, NULL, levels);
	lua_getfield(L, 1, "format");
	if (!lua_isnil(L, -1))
		format = luaL_checkoption(L, -1, NULL, formats);
	lua_pop(L, 2);
	wp_log_configure(level, format);
	lua_pushstring(L, wp_log_level_name());
	lua_pushstring(L, wp_log_format_name());
	return 2;
}

/* host.log_enabled(level) -> boolean */
static int l_log_enabled(lua_State *L)
{
	lua_pushboolean(L, wp_log_enabled((enum wp_log_level)luaL_checkoption(L, 1, NULL, levels)));
	return 1;
}

/* host.log_request(id | nil): the calling coroutine's lines carry it */
static int l_log_request(lua_State *L)
{
	if (!lua_isnil(L, 1))
		luaL_checktype(L, 1, LUA_TSTRING);
	lua_settop(L, 1);
	lua_pushlightuserdata(L, &rid_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_pushthread(L);
	lua_pushvalue(L, 1);
	lua_rawset(L, -3);
	return 0;
}

/* host.request_id() -> 32 lowercase hex | nil, "ERANDOM: ...", "ERANDOM".
 * Random bytes come from a pool refilled by getrandom(2): one system
 * call per 256 ids, not one per request. */
static int l_request_id(lua_State *L)
{
	static const char hex[] = "0123456789abcdef";
	static unsigned char pool[4096];
	static size_t pos = sizeof(pool);
	char out[32];

	if (pos + 16 > sizeof(pool)) {
		size_t got = 0;

		while (got < sizeof(pool)) {
			ssize_t n = getrandom(pool + got, sizeof(pool) - got, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return lwp_fail(L, "ERANDOM", "getrandom: %s", strerror(errno));
			got += (size_t)n;
		}
		pos = 0;
	}
	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[pool[pos + i] >> 4];
		out[2 * i + 1] = hex[pool[pos + i] & 15];
	}
	/* each id's bytes are used once */
	memset(pool + pos, 0, 16);
	pos += 16;
	lua_pushlstring(L, out, sizeof(out));
	return 1;
}

void lwp_host_open_log(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "log", lwp_host_log },
		{ "log_configure", l_log_configure },
		{ "log_enabled", l_log_enabled },
		{ "log_request", l_log_request },
		{ "request_id", l_request_id },
		{ NULL, NULL },
	};

	lua_pushlightuserdata(L, &rid_key);
	lua_newtable(L);
	lua_createtable(L, 0, 1);
	lua_pushliteral(L, "k");
	lua_setfield(L, -2, "__mode");
	lua_setmetatable(L, -2);
	lua_rawset(L, LUA_REGISTRYINDEX);
	lwp_setfuncs(L, fns);
}
