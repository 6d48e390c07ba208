/* SPDX-License-Identifier: MIT */
/* wp.rlp.encode, wp.rlp.decode */
#include <math.h>
#include <stdint.h>

#include "lwp.h"
#include "workproof/buf.h"
#include "workproof/common.h"
#include "workproof/rlp.h"

#define BUF_MT "workproof.rlp.buf"
/* Largest integer a Lua number holds exactly (2^53). */
#define MAX_EXACT 9007199254740992.0

/* The encoder's buffer lives in a userdata with __gc, so an argument error
 * raised half-way through a nested table cannot leak it. */
static int buf_gc(lua_State *L)
{
	wp_buf_free(luaL_checkudata(L, 1, BUF_MT));
	return 0;
}

static int encode_value(lua_State *L, struct wp_buf *b, int idx, int depth);

/* The table at idx must be a proper sequence 1..n: count its keys and
 * refuse anything else, so that no element is silently dropped. */
static size_t check_array(lua_State *L, int idx)
{
	size_t count = 0;
	lua_Number max = 0;

	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Number k;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_argerror(L, 1, "table has a non-array key (RLP lists are arrays 1..n)");
		k = lua_tonumber(L, -1);
		if (k < 1 || k != floor(k) || k > MAX_EXACT)
			luaL_argerror(L, 1, "table has a non-array key (RLP lists are arrays 1..n)");
		if (k > max)
			max = k;
		count++;
	}
	if ((lua_Number)count != max)
		luaL_argerror(L, 1, "table has holes (RLP lists are arrays 1..n)");
	return count;
}

static int encode_table(lua_State *L, struct wp_buf *b, int idx, int depth)
{
	size_t n, mark;
	int rc;

	/* A cyclic table would recurse forever: the decoder's depth limit is
	 * also the encoder's, so whatever we emit can be decoded back. */
	if (depth >= WP_RLP_MAX_DEPTH)
		luaL_argerror(L, 1, "lists nested deeper than 1024 (cyclic table?)");
	luaL_checkstack(L, 4, "rlp.encode: nesting");
	n = check_array(L, idx);
	wp_rlp_list_begin(b, &mark);
	for (size_t i = 1; i <= n; i++) {
		lua_rawgeti(L, idx, (int)i);
		rc = encode_value(L, b, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
		if (rc)
			return rc;
	}
	return wp_rlp_list_end(b, mark);
}

static int encode_value(lua_State *L, struct wp_buf *b, int idx, int depth)
{
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);

		return wp_rlp_put_string(b, s, len);
	}
	case LUA_TNUMBER: {
		lua_Number d = lua_tonumber(L, idx);

		if (d != floor(d))
			luaL_argerror(L, 1, "RLP integers must be whole numbers");
		if (d < 0)
			luaL_argerror(L, 1, "RLP integers must not be negative");
		if (d > MAX_EXACT)
			luaL_argerror(L, 1, "integer above 2^53 (pass big values as byte strings)");
		return wp_rlp_put_uint(b, (uint64_t)d);
	}
	case LUA_TTABLE:
		return encode_table(L, b, idx, depth);
	default:
		lua_pushfstring(L, "cannot RLP-encode a %s (strings, integers and arrays only)",
				luaL_typename(L, idx));
		return luaL_argerror(L, 1, lua_tostring(L, -1));
	}
}

/* wp.rlp.encode(v) -> string */
static int l_encode(lua_State *L)
{
	struct wp_buf *b;
	int rc;

	luaL_checkany(L, 1);
	lua_settop(L, 1);
	b = lua_newuserdata(L, sizeof(*b));
	*b = (struct wp_buf)WP_BUF_INIT;
	luaL_getmetatable(L, BUF_MT);
	lua_setmetatable(L, -2);
	rc = encode_value(L, b, 1, 0);
	if (rc) {
		wp_buf_free(b);
		return lwp_fail_err(L, rc, "rlp.encode: out of memory");
	}
	lua_pushlstring(L, (const char *)b->data, b->len);
	wp_buf_free(b);
	return 1;
}

/* wp.rlp.decode(s) -> value | nil, "ECODE: reason at offset N" */
static int l_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	/* ~12 KiB of C stack, no heap: the reader keeps the end of every open
	 * list and we keep the next array index of each open table. */
	struct wp_rlp_reader r;
	int next[WP_RLP_MAX_DEPTH];
	struct wp_rlp_item it;
	int base, ev;

	lua_settop(L, 1);
	base = lua_gettop(L);
	wp_rlp_reader_init(&r, s, len);
	while ((ev = wp_rlp_read(&r, &it)) != WP_RLP_DONE) {
		switch (ev) {
		case WP_RLP_STRING:
			lua_pushlstring(L, (const char *)it.payload, it.len);
			break;
		case WP_RLP_LIST:
			/* one stack slot per open list, plus the item being added */
			if (!lua_checkstack(L, 3)) {
				lua_settop(L, base);
				return lwp_fail(L, "ENOMEM", "rlp.decode: Lua stack exhausted");
			}
			lua_createtable(L, 0, 0);
			next[r.depth - 1] = 0;
			continue;
		case WP_RLP_END:
			break;
		default:
			lua_settop(L, base);
			return lwp_fail_err(L, ev, "%s at offset %zu",
					    r.err_reason ? r.err_reason : "malformed RLP",
					    r.err_offset);
		}
		/* A string or a finished list is on top: add it to its parent,
		 * or keep it as the result at the top level. */
		if (r.depth)
			lua_rawseti(L, -2, ++next[r.depth - 1]);
	}
	return 1;
}

void lwp_open_rlp(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "encode", l_encode },
		{ "decode", l_decode },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, BUF_MT)) {
		lua_pushcfunction(L, buf_gc);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	lwp_subtable(L, "rlp", fns);
}
