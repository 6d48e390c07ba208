/* SPDX-License-Identifier: MIT */
/*
 * What the EVM bindings (l_abi.c, l_tx.c, l_eip712.c) share: the arena
 * that holds value trees and words, the conversion context that names
 * where a value went wrong, and the scalar conversions of Lua values into
 * 256-bit words, addresses and fixed byte strings (l_evm.h).
 */
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_evm.h"
#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/encoding.h"
#include "workproof/eth.h"

#define ARENA_MT "workproof.evm.arena"

/* ---- arena: value trees and words, freed by __gc even after a raise ------ */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(16) unsigned char data[];
};

struct lwp_arena {
	struct chunk *head;
};

static int arena_gc(lua_State *L)
{
	struct lwp_arena *a = luaL_checkudata(L, 1, ARENA_MT);

	while (a->head) {
		struct chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
	return 0;
}

struct lwp_arena *lwp_arena_new(lua_State *L)
{
	struct lwp_arena *a = lua_newuserdata(L, sizeof(*a));

	a->head = NULL;
	luaL_getmetatable(L, ARENA_MT);
	lua_setmetatable(L, -2);
	return a;
}

void *lwp_arena_alloc(lua_State *L, struct lwp_arena *a, size_t n)
{
	struct chunk *c = a->head;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 8192 ? n : 8192;

		if (cap > SIZE_MAX - sizeof(*c) || !(c = malloc(sizeof(*c) + cap))) {
			luaL_error(L, "out of memory");
			return NULL;   /* not reached: luaL_error does not return */
		}
		c->next = a->head;
		c->used = 0;
		c->cap = cap;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += n;
	return p;
}

/* ---- conversion context: where we are, what went wrong ------------------- */

int lwp_cfail(struct lwp_conv *c, int code, const char *fmt, ...)
{
	size_t n = (size_t)snprintf(c->msg, sizeof(c->msg), "%s", c->root);
	va_list ap;

	for (int i = 0; i < c->depth && i < PATH_MAX_DEPTH && n < sizeof(c->msg); i++) {
		if (c->name[i])
			n += (size_t)snprintf(c->msg + n, sizeof(c->msg) - n, ".%s", c->name[i]);
		else
			n += (size_t)snprintf(c->msg + n, sizeof(c->msg) - n, "[%zu]", c->index[i]);
	}
	if (n < sizeof(c->msg))
		n += (size_t)snprintf(c->msg + n, sizeof(c->msg) - n, ": ");
	if (n < sizeof(c->msg)) {
		va_start(ap, fmt);
		vsnprintf(c->msg + n, sizeof(c->msg) - n, fmt, ap);
		va_end(ap);
	}
	c->code = code;
	return code;
}

void lwp_conv_init(struct lwp_conv *c, lua_State *L, const char *root, int with_arena)
{
	memset(c, 0, sizeof(*c));
	c->L = L;
	c->root = root;
	c->a = with_arena ? lwp_arena_new(L) : NULL;
}

int lwp_conv_result(lua_State *L, struct lwp_conv *c)
{
	return lwp_fail(L, wp_strerror(c->code), "%s", c->msg);
}

/* ---- scalar conversions --------------------------------------------------- */

/* An integer at idx into a 256-bit word (two's complement when signed). */
int lwp_to_int_word(struct lwp_conv *c, int idx, uint8_t w[32], int is_signed)
{
	lua_State *L = c->L;
	int rc;

	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Number d = lua_tonumber(L, idx);
		uint64_t m;

		if (d != floor(d) || fabs(d) > MAX_EXACT)
			return lwp_cfail(c, WP_EINVAL, "number is not an exact integer (pass big values "
				     "as decimal or 0x strings)");
		if (d < 0 && !is_signed)
			return lwp_cfail(c, WP_ERANGE, "negative value for an unsigned integer");
		m = (uint64_t)fabs(d);
		memset(w, 0, 32);
		for (int i = 31; i >= 24; i--) {
			w[i] = (uint8_t)m;
			m >>= 8;
		}
		if (d < 0) {
			unsigned carry = 1;

			for (int i = 31; i >= 0; i--) {
				unsigned v = (uint8_t)~w[i] + carry;

				w[i] = (uint8_t)v;
				carry = v >> 8;
			}
		}
		return WP_OK;
	}
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);

		rc = wp_abi_int_parse(w, s, len, is_signed);
		if (rc == WP_EINVAL)
			return lwp_cfail(c, rc, "not an integer (decimal or 0x hex string)");
		if (rc)
			return lwp_cfail(c, rc, "integer out of range");
		return WP_OK;
	}
	return lwp_cfail(c, WP_EINVAL, "expected an integer (number or string), got %s",
		     luaL_typename(L, idx));
}

int lwp_to_address(struct lwp_conv *c, int idx, uint8_t addr[20])
{
	lua_State *L = c->L;
	size_t len;
	const char *s;
	int rc;

	if (lua_type(L, idx) != LUA_TSTRING)
		return lwp_cfail(c, WP_EINVAL, "expected an address string, got %s",
			     luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &len);
	if (len == 20) {
		memcpy(addr, s, 20);
		return WP_OK;
	}
	rc = wp_eth_parse_address(addr, s, len);
	if (rc == WP_EPROTO)
		return lwp_cfail(c, rc, "mixed-case address fails its EIP-55 checksum");
	if (rc)
		return lwp_cfail(c, WP_EINVAL, "not an address (0x + 40 hex digits or 20 bytes)");
	return WP_OK;
}

/* N raw bytes or "0x" + 2N hex digits. */
int lwp_to_fixed_bytes(struct lwp_conv *c, int idx, uint8_t *out, size_t n)
{
	lua_State *L = c->L;
	size_t len, got;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING)
		return lwp_cfail(c, WP_EINVAL, "expected a %zu-byte string, got %s", n,
			     luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &len);
	if (len == n) {
		memcpy(out, s, n);
		return WP_OK;
	}
	if (len == 2 + 2 * n && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	    wp_hex_decode(out, n, &got, s, len, NULL) == WP_OK && got == n)
		return WP_OK;
	return lwp_cfail(c, WP_EINVAL, "expected %zu raw bytes or 0x + %zu hex digits (got %zu bytes)",
		     n, 2 * n, len);
}

/* A static atomic ABI value at idx into its 32-byte word. */
int lwp_to_word(struct lwp_conv *c, int idx, unsigned kind, unsigned size, uint8_t w[32])
{
	lua_State *L = c->L;
	int rc;

	memset(w, 0, 32);
	switch (kind) {
	case WP_ABI_UINT:
	case WP_ABI_INT:
		rc = lwp_to_int_word(c, idx, w, kind == WP_ABI_INT);
		if (!rc && wp_abi_int_fits(w, size, kind == WP_ABI_INT))
			return lwp_cfail(c, WP_ERANGE, "value does not fit %sint%u",
				     kind == WP_ABI_INT ? "" : "u", size);
		return rc;
	case WP_ABI_ADDRESS:
		return lwp_to_address(c, idx, w + 12);
	case WP_ABI_BOOL:
		if (lua_type(L, idx) != LUA_TBOOLEAN)
			return lwp_cfail(c, WP_EINVAL, "expected a boolean, got %s", luaL_typename(L, idx));
		w[31] = (uint8_t)lua_toboolean(L, idx);
		return WP_OK;
	case WP_ABI_FBYTES:
		return lwp_to_fixed_bytes(c, idx, w, size);
	default:
		return lwp_cfail(c, WP_EINVAL, "not an atomic type");
	}
}

/* Length of the Lua array at idx, refusing holes and non-array keys. */
int lwp_array_len(struct lwp_conv *c, int idx, size_t *n)
{
	lua_State *L = c->L;
	size_t count = 0, len;

	if (!lua_istable(L, idx))
		return lwp_cfail(c, WP_EINVAL, "expected an array (table), got %s",
			     luaL_typename(L, idx));
	len = lua_objlen(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Number k;

		lua_pop(L, 1);
		k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
		if (k < 1 || k != floor(k) || k > (lua_Number)len) {
			lua_pop(L, 1);
			return lwp_cfail(c, WP_EINVAL, "table is not an array 1..n");
		}
		count++;
	}
	if (count != len)
		return lwp_cfail(c, WP_EINVAL, "array has holes");
	*n = len;
	return WP_OK;
}

void lwp_open_evm(lua_State *L)
{
	luaL_newmetatable(L, ARENA_MT);
	lua_pushcfunction(L, arena_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
}
