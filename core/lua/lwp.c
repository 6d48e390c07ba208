/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "lwp.h"
#include "workproof/common.h"

__attribute__((format(printf, 3, 0)))
static int vfail(lua_State *L, const char *code, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	lua_pushnil(L);
	lua_pushfstring(L, "%s: %s", code, msg);
	lua_pushstring(L, code);   /* luv's convention: the bare code third */
	return 3;
}

int lwp_fail(lua_State *L, const char *code, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vfail(L, code, fmt, ap);
	va_end(ap);
	return n;
}

int lwp_fail_err(lua_State *L, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vfail(L, wp_strerror(err), fmt, ap);
	va_end(ap);
	return n;
}

const unsigned char *lwp_checkbytes(lua_State *L, int idx, size_t len)
{
	size_t got;
	const char *s = luaL_checklstring(L, idx, &got);

	if (got != len) {
		lua_pushfstring(L, "expected %d bytes, got %d", (int)len, (int)got);
		luaL_argerror(L, idx, lua_tostring(L, -1));
	}
	return (const unsigned char *)s;
}

int lwp_push_digest(lua_State *L, void (*fn)(const void *, size_t, uint8_t *), size_t n)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint8_t out[LWP_DIGEST_MAX];

	fn(s, len, out);
	lua_pushlstring(L, (const char *)out, n);
	return 1;
}

void lwp_setfuncs(lua_State *L, const luaL_Reg *l)
{
	for (; l->name; l++) {
		lua_pushcfunction(L, l->func);
		lua_setfield(L, -2, l->name);
	}
}

void lwp_subtable(lua_State *L, const char *name, const luaL_Reg *l)
{
	lua_getfield(L, -1, name);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, name);
	}
	lwp_setfuncs(L, l);
	lua_pop(L, 1);
}

void lwp_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods)
{
	if (luaL_newmetatable(L, name)) {
		if (meta)
			lwp_setfuncs(L, meta);
		if (methods) {
			lua_newtable(L);
			lwp_setfuncs(L, methods);
			lua_setfield(L, -2, "__index");
		}
		lua_pushstring(L, name);
		lua_setfield(L, -2, "__name");
	}
	lua_pop(L, 1);
}

int luaopen_workproof_core(lua_State *L)
{
	lua_newtable(L);
	lwp_open_hash(L);
	lwp_open_encoding(L);
	lwp_open_rlp(L);
	lwp_open_ed25519(L);
	lwp_open_secp256k1(L);
	lwp_open_merkle(L);
	lwp_open_logscan(L);
	lwp_open_vdf(L);
	lwp_open_uptime(L);
	lwp_open_evm(L);
	lwp_open_abi(L);
	lwp_open_tx(L);
	lwp_open_eip712(L);
	lwp_open_eip191(L);
	lwp_open_json(L);
	return 1;
}
