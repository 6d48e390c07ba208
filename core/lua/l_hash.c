/* SPDX-License-Identifier: MIT */
/* wp.sha256, wp.keccak256, wp.blake2b */
#include "lwp.h"
#include "workproof/common.h"
#include "workproof/hash.h"

static int l_sha256(lua_State *L) { return lwp_push_digest(L, wp_sha256, WP_SHA256_LEN); }

static int l_keccak256(lua_State *L) { return lwp_push_digest(L, wp_keccak256, WP_KECCAK256_LEN); }

/* wp.blake2b(s [, outlen=32 [, key]]) */
static int l_blake2b(lua_State *L)
{
	size_t len, keylen = 0;
	const char *s = luaL_checklstring(L, 1, &len);
	lua_Integer outlen = luaL_optinteger(L, 2, 32);
	const char *key = luaL_optlstring(L, 3, NULL, &keylen);
	uint8_t out[64];

	luaL_argcheck(L, outlen >= 16 && outlen <= 64, 2, "output length must be 16..64");
	luaL_argcheck(L, !key || (keylen >= 16 && keylen <= 64), 3, "key length must be 16..64");
	wp_blake2b(out, (size_t)outlen, s, len, key, keylen);
	lua_pushlstring(L, (const char *)out, (size_t)outlen);
	return 1;
}

void lwp_open_hash(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "sha256", l_sha256 },
		{ "keccak256", l_keccak256 },
		{ "blake2b", l_blake2b },
		{ NULL, NULL },
	};

	lwp_setfuncs(L, fns);
}
