/* SPDX-License-Identifier: MIT */
/*
 * wp.vdf: the Wesolowski VDF (docs/vdf.md, docs/lua-api.md "wp.vdf").
 *
 * eval is synchronous and blocks the calling thread for the whole chain;
 * the host runs long evaluations on its thread pool through the C API.
 */
#include <math.h>
#include <string.h>

#include "lwp.h"
#include "workproof/vdf.h"

/* T: a Lua number holding an integer in [0, 2^53]; raise otherwise */
static uint64_t check_T(lua_State *L, int idx)
{
	lua_Number v = luaL_checknumber(L, idx);

	if (!(v >= 0 && v <= (lua_Number)WP_VDF_T_MAX) || floor(v) != v)
		luaL_argerror(L, idx, "iterations must be an integer in [0, 2^53]");
	return (uint64_t)v;
}

static int l_modulus(lua_State *L)
{
	lua_pushlstring(L, (const char *)wp_vdf_modulus, WP_VDF_BYTES);
	return 1;
}

/* wp.vdf.path() -> "ifma" | "adx" | "portable" */
static int l_path(lua_State *L)
{
	lua_pushstring(L, wp_vdf_path());
	return 1;
}

_Static_assert(WP_VDF_BYTES <= LWP_DIGEST_MAX, "an h2g element must fit lwp_push_digest");

/* wp.vdf.h2g(seed) -> x */
static int l_h2g(lua_State *L) { return lwp_push_digest(L, wp_vdf_h2g, WP_VDF_BYTES); }

/* wp.vdf.h2p(x, y, T) -> l */
static int l_h2p(lua_State *L)
{
	const uint8_t *x = lwp_checkbytes(L, 1, WP_VDF_BYTES);
	const uint8_t *y = lwp_checkbytes(L, 2, WP_VDF_BYTES);
	uint64_t T = check_T(L, 3);
	uint8_t l[WP_VDF_L_BYTES];

	wp_vdf_h2p(x, y, T, l);
	lua_pushlstring(L, (const char *)l, sizeof(l));
	return 1;
}

/* wp.vdf.eval(seed, T [, {prover = "checkpoint"|"longdiv", memory = bytes}])
 *   -> y, proof, l */
static int l_eval(lua_State *L)
{
	size_t len;
	const char *seed = luaL_checklstring(L, 1, &len);
	uint64_t T = check_T(L, 2);
	struct wp_vdf_opts o;
	struct wp_vdf_output out;
	int rc;

	memset(&o, 0, sizeof(o));
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		lua_getfield(L, 3, "prover");
		if (!lua_isnil(L, -1)) {
			const char *pv = luaL_checkstring(L, -1);

			if (!strcmp(pv, "longdiv"))
				o.prover = WP_VDF_PROVER_LONGDIV;
			else if (strcmp(pv, "checkpoint"))
				luaL_argerror(L, 3, "prover must be \"checkpoint\" or \"longdiv\"");
		}
		lua_getfield(L, 3, "memory");
		if (!lua_isnil(L, -1)) {
			lua_Number mem = luaL_checknumber(L, -1);

			luaL_argcheck(L, mem >= 4096 && mem <= 1e15, 3,
				      "memory must be a byte count >= 4096");
			o.mem_limit = (size_t)mem;
		}
		lua_pop(L, 2);
	}
	rc = wp_vdf_eval(seed, len, T, &o, &out);
	if (rc)
		return lwp_fail_err(L, rc, "vdf evaluation failed");
	lua_pushlstring(L, (const char *)out.y, WP_VDF_BYTES);
	lua_pushlstring(L, (const char *)out.proof, WP_VDF_BYTES);
	lua_pushlstring(L, (const char *)out.l, WP_VDF_L_BYTES);
	return 3;
}

/* wp.vdf.verify(seed, T, y, proof) -> boolean; y and proof are untrusted */
static int l_verify(lua_State *L)
{
	size_t len, ylen, plen;
	const char *seed = luaL_checklstring(L, 1, &len);
	uint64_t T = check_T(L, 2);
	const char *y = luaL_checklstring(L, 3, &ylen);
	const char *proof = luaL_checklstring(L, 4, &plen);

	if (ylen != WP_VDF_BYTES || plen != WP_VDF_BYTES) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushboolean(L, wp_vdf_verify(seed, len, T, (const uint8_t *)y,
					 (const uint8_t *)proof) == 1);
	return 1;
}

/* test-only: raw chains on an arbitrary x < N */
static int chain(lua_State *L, int (*fn)(const uint8_t *, uint64_t, uint8_t *))
{
	const uint8_t *x = lwp_checkbytes(L, 1, WP_VDF_BYTES);
	uint64_t T = check_T(L, 2);
	uint8_t y[WP_VDF_BYTES];
	int rc = fn(x, T, y);

	if (rc)
		return lwp_fail_err(L, rc, "x must be below the modulus");
	lua_pushlstring(L, (const char *)y, sizeof(y));
	return 1;
}

static int l_squarings(lua_State *L)
{
	return chain(L, wp_vdf_squarings);
}

static int l_eval_reference(lua_State *L)
{
	return chain(L, wp_vdf_eval_reference);
}

void lwp_open_vdf(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "modulus", l_modulus },
		{ "path", l_path },
		{ "h2g", l_h2g },
		{ "h2p", l_h2p },
		{ "eval", l_eval },
		{ "verify", l_verify },
		{ "_squarings", l_squarings },
		{ "_eval_reference", l_eval_reference },
		{ NULL, NULL },
	};

	lwp_subtable(L, "vdf", fns);
	lua_getfield(L, -1, "vdf");
	lua_pushnumber(L, (lua_Number)WP_VDF_T_MAX);
	lua_setfield(L, -2, "T_MAX");
	lua_pop(L, 1);
}
