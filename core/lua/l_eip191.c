/* SPDX-License-Identifier: MIT */
/*
 * wp.eip191: the EIP-191 personal_sign message hash (docs/lua-api.md,
 * "wp.eip191").
 */
#include <stdint.h>

#include "lwp.h"
#include "workproof/eip712.h"

/* eip191.hash(message) -> 32 bytes */
static int l_191_hash(lua_State *L)
{
	size_t len;
	const char *m = luaL_checklstring(L, 1, &len);
	uint8_t h[32];

	wp_eip191_hash(h, m, len);
	lua_pushlstring(L, (const char *)h, 32);
	return 1;
}

void lwp_open_eip191(lua_State *L)
{
	static const luaL_Reg eip191[] = {
		{ "hash", l_191_hash },
		{ NULL, NULL },
	};

	lwp_subtable(L, "eip191", eip191);
}
