/* SPDX-License-Identifier: MIT */
/*
 * wp.abi, wp.tx, wp.eip712, wp.eip191: EVM encodings over core/src/abi.c,
 * tx.c and eip712.c.
 *
 * Conventions of this binding (docs/lua-api.d/evm.md):
 *   - integers in: Lua numbers that are exact integers (|x| <= 2^53),
 *     decimal strings ("-5" where signed), or "0x" hex strings;
 *     integers out: decimal strings;
 *   - addresses in: "0x" + 40 hex (EIP-55 checked when mixed case) or 20
 *     raw bytes; out: EIP-55 strings;
 *   - bytesN in: N raw bytes or "0x" + 2N hex; out: N raw bytes;
 *   - bytes / string: raw Lua strings (EIP-712 `bytes`: "0x" hex, as in
 *     eth_signTypedData JSON);
 *   - hashes and selectors out: raw bytes (like wp.keccak256).
 * A malformed type string, a non-table where a table is required or an
 * unknown transaction/domain field is a programming error and raises; a
 * value that does not fit its type returns nil, "ECODE: <where>: text", so
 * data that came from a request never turns into a Lua error.
 */
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lwp.h"
#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/eip712.h"
#include "workproof/encoding.h"
#include "workproof/eth.h"
#include "workproof/hash.h"
#include "workproof/tx.h"

#define ARENA_MT "workproof.evm.arena"
#define ABITYPE_MT "workproof.evm.abitype"
#define TYPES712_MT "workproof.evm.types712"
#define MAX_EXACT 9007199254740992.0   /* 2^53 */
#define TYPE_CACHE_MAX 512
#define PATH_MAX_DEPTH 80

static char type_cache_key;

/* ---- arena: value trees and words, freed by __gc even after a raise ------ */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	alignas(16) unsigned char data[];
};

struct arena {
	struct chunk *head;
};

static int arena_gc(lua_State *L)
{
	struct arena *a = luaL_checkudata(L, 1, ARENA_MT);

	while (a->head) {
		struct chunk *c = a->head;

		a->head = c->next;
		free(c);
	}
	return 0;
}

static struct arena *arena_new(lua_State *L)
{
	struct arena *a = lua_newuserdata(L, sizeof(*a));

	a->head = NULL;
	luaL_getmetatable(L, ARENA_MT);
	lua_setmetatable(L, -2);
	return a;
}

static void *arena_alloc(lua_State *L, struct arena *a, size_t n)
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

struct conv {
	lua_State *L;
	struct arena *a;
	const char *root;                  /* "values", "message", "tx" */
	int depth;
	const char *name[PATH_MAX_DEPTH];  /* field name, or NULL: index */
	size_t index[PATH_MAX_DEPTH];
	int code;
	char msg[240];
};

static void push_path(struct conv *c, const char *name, size_t index)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->name[c->depth] = name;
		c->index[c->depth] = index;
	}
	c->depth++;
}

static void pop_path(struct conv *c)
{
	c->depth--;
}

static int cfail(struct conv *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int cfail(struct conv *c, int code, const char *fmt, ...)
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

static int conv_result(lua_State *L, struct conv *c)
{
	return lwp_fail(L, wp_strerror(c->code), "%s", c->msg);
}

/* ---- scalar conversions --------------------------------------------------- */

/* An integer at idx into a 256-bit word (two's complement when signed). */
static int to_int_word(struct conv *c, int idx, uint8_t w[32], int is_signed)
{
	lua_State *L = c->L;
	int rc;

	if (lua_type(L, idx) == LUA_TNUMBER) {
		lua_Number d = lua_tonumber(L, idx);
		uint64_t m;

		if (d != floor(d) || fabs(d) > MAX_EXACT)
			return cfail(c, WP_EINVAL, "number is not an exact integer (pass big values "
				     "as decimal or 0x strings)");
		if (d < 0 && !is_signed)
			return cfail(c, WP_ERANGE, "negative value for an unsigned integer");
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
			return cfail(c, rc, "not an integer (decimal or 0x hex string)");
		if (rc)
			return cfail(c, rc, "integer out of range");
		return WP_OK;
	}
	return cfail(c, WP_EINVAL, "expected an integer (number or string), got %s",
		     luaL_typename(L, idx));
}

static int to_address(struct conv *c, int idx, uint8_t addr[20])
{
	lua_State *L = c->L;
	size_t len;
	const char *s;
	int rc;

	if (lua_type(L, idx) != LUA_TSTRING)
		return cfail(c, WP_EINVAL, "expected an address string, got %s",
			     luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &len);
	if (len == 20) {
		memcpy(addr, s, 20);
		return WP_OK;
	}
	rc = wp_eth_parse_address(addr, s, len);
	if (rc == WP_EPROTO)
		return cfail(c, rc, "mixed-case address fails its EIP-55 checksum");
	if (rc)
		return cfail(c, WP_EINVAL, "not an address (0x + 40 hex digits or 20 bytes)");
	return WP_OK;
}

/* N raw bytes or "0x" + 2N hex digits. */
static int to_fixed_bytes(struct conv *c, int idx, uint8_t *out, size_t n)
{
	lua_State *L = c->L;
	size_t len, got;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING)
		return cfail(c, WP_EINVAL, "expected a %zu-byte string, got %s", n,
			     luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &len);
	if (len == n) {
		memcpy(out, s, n);
		return WP_OK;
	}
	if (len == 2 + 2 * n && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	    wp_hex_decode(out, n, &got, s, len, NULL) == WP_OK && got == n)
		return WP_OK;
	return cfail(c, WP_EINVAL, "expected %zu raw bytes or 0x + %zu hex digits (got %zu bytes)",
		     n, 2 * n, len);
}

/* A static atomic ABI value at idx into its 32-byte word. */
static int to_word(struct conv *c, int idx, unsigned kind, unsigned size, uint8_t w[32])
{
	lua_State *L = c->L;
	int rc;

	memset(w, 0, 32);
	switch (kind) {
	case WP_ABI_UINT:
	case WP_ABI_INT:
		rc = to_int_word(c, idx, w, kind == WP_ABI_INT);
		if (!rc && wp_abi_int_fits(w, size, kind == WP_ABI_INT))
			return cfail(c, WP_ERANGE, "value does not fit %sint%u",
				     kind == WP_ABI_INT ? "" : "u", size);
		return rc;
	case WP_ABI_ADDRESS:
		return to_address(c, idx, w + 12);
	case WP_ABI_BOOL:
		if (lua_type(L, idx) != LUA_TBOOLEAN)
			return cfail(c, WP_EINVAL, "expected a boolean, got %s", luaL_typename(L, idx));
		w[31] = (uint8_t)lua_toboolean(L, idx);
		return WP_OK;
	case WP_ABI_FBYTES:
		return to_fixed_bytes(c, idx, w, size);
	default:
		return cfail(c, WP_EINVAL, "not an atomic type");
	}
}

/* Length of the Lua array at idx, refusing holes and non-array keys. */
static int array_len(struct conv *c, int idx, size_t *n)
{
	lua_State *L = c->L;
	size_t count = 0, len;

	if (!lua_istable(L, idx))
		return cfail(c, WP_EINVAL, "expected an array (table), got %s",
			     luaL_typename(L, idx));
	len = lua_objlen(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_Number k;

		lua_pop(L, 1);
		k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
		if (k < 1 || k != floor(k) || k > (lua_Number)len) {
			lua_pop(L, 1);
			return cfail(c, WP_EINVAL, "table is not an array 1..n");
		}
		count++;
	}
	if (count != len)
		return cfail(c, WP_EINVAL, "array has holes");
	*n = len;
	return WP_OK;
}

/* ---- ABI types: parsed once, cached by their text ------------------------ */

struct abitype {
	struct wp_abi_type *t;
};

static int abitype_gc(lua_State *L)
{
	struct abitype *u = luaL_checkudata(L, 1, ABITYPE_MT);

	wp_abi_type_free(u->t);
	u->t = NULL;
	return 0;
}

/* Parse the type list or signature at arg; push its holder (which keeps
 * the type alive) and return it. Malformed text raises. */
static const struct wp_abi_type *check_types(lua_State *L, int arg, int signature,
					     size_t *name_len)
{
	size_t len, errpos = 0, nl = 0;
	const char *s = luaL_checklstring(L, arg, &len);
	struct abitype *u;
	int rc;

	lua_pushlightuserdata(L, &type_cache_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	if (!lua_istable(L, -1)) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushlightuserdata(L, &type_cache_key);
		lua_pushvalue(L, -2);
		lua_rawset(L, LUA_REGISTRYINDEX);
	}
	/* keys: "t:" + list, "s:" + signature (the two parse differently) */
	lua_pushstring(L, signature ? "s:" : "t:");
	lua_pushvalue(L, arg);
	lua_concat(L, 2);
	lua_pushvalue(L, -1);
	lua_rawget(L, -3);
	if (!lua_isnil(L, -1)) {
		u = lua_touserdata(L, -1);
		lua_replace(L, -3);   /* holder where the cache was */
		lua_pop(L, 1);
		if (signature)
			*name_len = (size_t)(strchr(s, '(') - s);
		return u->t;
	}
	lua_pop(L, 1);
	u = lua_newuserdata(L, sizeof(*u));
	u->t = NULL;
	luaL_getmetatable(L, ABITYPE_MT);
	lua_setmetatable(L, -2);
	if (signature)
		rc = wp_abi_parse_signature(&u->t, &nl, s, len, &errpos);
	else
		rc = wp_abi_parse(&u->t, s, len, &errpos);
	if (rc == WP_ENOMEM)
		luaL_error(L, "out of memory");
	if (rc) {
		lua_pushfstring(L, "%s: malformed %s at byte %d (%s)", wp_strerror(rc),
				signature ? "signature" : "type list", (int)errpos + 1,
				rc == WP_ERANGE ? "too long, too deep or too large" : "unknown or bad type");
		luaL_argerror(L, arg, lua_tostring(L, -1));
	}
	/* cache: flush when full (types are few in practice) */
	lua_rawgeti(L, -3, 0);
	if (lua_tointeger(L, -1) >= TYPE_CACHE_MAX) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushlightuserdata(L, &type_cache_key);
		lua_pushvalue(L, -2);
		lua_rawset(L, LUA_REGISTRYINDEX);
		lua_replace(L, -4);
		lua_pushinteger(L, 0);
	}
	lua_pushinteger(L, lua_tointeger(L, -1) + 1);
	lua_rawseti(L, -5, 0);
	lua_pop(L, 1);
	lua_pushvalue(L, -2);   /* key */
	lua_pushvalue(L, -2);   /* holder */
	lua_rawset(L, -5);
	lua_replace(L, -3);
	lua_pop(L, 1);
	if (signature)
		*name_len = nl;
	return u->t;
}

/* ---- ABI values: Lua -> tree ---------------------------------------------- */

static int abi_value(struct conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out);

static int abi_items(struct conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	const struct wp_abi_type *m = t->kind == WP_ABI_TUPLE ? t->first : t->elem;
	struct wp_abi_value *items = NULL;
	size_t n;
	int rc;

	if ((rc = array_len(c, idx, &n)))
		return rc;
	if ((t->kind == WP_ABI_TUPLE || t->kind == WP_ABI_FARRAY) && n != t->count)
		return cfail(c, WP_ERANGE, "expected %u values, got %zu", (unsigned)t->count, n);
	if (n > SIZE_MAX / sizeof(*items))
		return cfail(c, WP_ERANGE, "array too large");
	if (n)
		items = arena_alloc(L, c->a, n * sizeof(*items));
	luaL_checkstack(L, 4, "abi: nesting");
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, idx, (int)(i + 1));
		push_path(c, NULL, i + 1);
		rc = abi_value(c, m, lua_gettop(L), &items[i]);
		pop_path(c);
		lua_pop(L, 1);
		if (rc)
			return rc;
		if (t->kind == WP_ABI_TUPLE)
			m = m->next;
	}
	out->data = NULL;
	out->len = 0;
	out->count = n;
	out->items = items;
	return WP_OK;
}

static int abi_value(struct conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	uint8_t *w;

	switch (t->kind) {
	case WP_ABI_BYTES:
	case WP_ABI_STRING: {
		size_t len;

		if (lua_type(L, idx) != LUA_TSTRING)
			return cfail(c, WP_EINVAL, "expected a string, got %s", luaL_typename(L, idx));
		/* points into the Lua string, which the values table keeps alive */
		out->data = (const uint8_t *)lua_tolstring(L, idx, &len);
		out->len = len;
		out->count = 0;
		out->items = NULL;
		return WP_OK;
	}
	case WP_ABI_ARRAY:
	case WP_ABI_FARRAY:
	case WP_ABI_TUPLE:
		return abi_items(c, t, idx, out);
	default:
		w = arena_alloc(L, c->a, 32);
		out->data = w;
		out->len = 32;
		out->count = 0;
		out->items = NULL;
		return to_word(c, idx, t->kind, t->size, w);
	}
}

/* ---- ABI values: tree -> Lua ---------------------------------------------- */

static void push_word(lua_State *L, unsigned kind, unsigned size, const uint8_t *w)
{
	char dec[WP_ABI_DEC_MAX + 1];
	char addr[WP_ETH_ADDR_HEX_LEN + 1];
	size_t n;

	switch (kind) {
	case WP_ABI_UINT:
	case WP_ABI_INT:
		n = wp_abi_int_format(dec, w, kind == WP_ABI_INT);
		lua_pushlstring(L, dec, n);
		break;
	case WP_ABI_ADDRESS:
		wp_eth_checksum(addr, w + 12);
		lua_pushlstring(L, addr, WP_ETH_ADDR_HEX_LEN);
		break;
	case WP_ABI_BOOL:
		lua_pushboolean(L, w[31]);
		break;
	default:   /* bytesN */
		lua_pushlstring(L, (const char *)w, size);
		break;
	}
}

static void push_abi_value(lua_State *L, const struct wp_abi_type *t, const struct wp_abi_value *v)
{
	const struct wp_abi_type *m;

	switch (t->kind) {
	case WP_ABI_BYTES:
	case WP_ABI_STRING:
		lua_pushlstring(L, v->len ? (const char *)v->data : "", v->len);
		return;
	case WP_ABI_ARRAY:
	case WP_ABI_FARRAY:
	case WP_ABI_TUPLE:
		luaL_checkstack(L, 4, "abi: nesting");
		lua_createtable(L, v->count > INT32_MAX ? INT32_MAX : (int)v->count, 0);
		m = t->kind == WP_ABI_TUPLE ? t->first : t->elem;
		for (size_t i = 0; i < v->count; i++) {
			push_abi_value(L, m, &v->items[i]);
			lua_rawseti(L, -2, (int)(i + 1));
			if (t->kind == WP_ABI_TUPLE)
				m = m->next;
		}
		return;
	default:
		push_word(L, t->kind, t->size, v->data);
	}
}

/* ---- wp.abi --------------------------------------------------------------- */

static int encode_common(lua_State *L, const struct wp_abi_type *t, int vidx,
			 const uint8_t *prefix, size_t plen)
{
	struct conv c;
	struct wp_abi_value v;
	struct wp_buf b = WP_BUF_INIT;
	int rc;

	memset(&c, 0, sizeof(c));
	c.L = L;
	c.root = "values";
	c.a = arena_new(L);
	if (abi_value(&c, t, vidx, &v))
		return conv_result(L, &c);
	rc = wp_buf_append(&b, prefix, plen);
	if (!rc)
		rc = wp_abi_encode(&b, t, &v);
	if (rc) {
		wp_buf_free(&b);
		return lwp_fail_err(L, rc, "abi.encode: %s", rc == WP_ENOMEM ?
				    "out of memory" : "value does not fit its type");
	}
	lua_pushlstring(L, (const char *)b.data, b.len);
	wp_buf_free(&b);
	return 1;
}

/* abi.encode(types, values) -> bytes | nil, err */
static int l_abi_encode(lua_State *L)
{
	const struct wp_abi_type *t;

	lua_settop(L, 2);   /* the type holder goes above the arguments */
	t = check_types(L, 1, 0, NULL);

	luaL_checktype(L, 2, LUA_TTABLE);
	return encode_common(L, t, 2, NULL, 0);
}

/* abi.encode_call(signature, values) -> selector ‖ encoding | nil, err */
static int l_abi_encode_call(lua_State *L)
{
	size_t name_len, len;
	const char *sig = luaL_checklstring(L, 1, &len);
	const struct wp_abi_type *t;
	struct wp_buf canon = WP_BUF_INIT;
	uint8_t h[32];
	int rc;

	lua_settop(L, 2);
	t = check_types(L, 1, 1, &name_len);
	luaL_checktype(L, 2, LUA_TTABLE);
	rc = wp_buf_append(&canon, sig, name_len);
	if (!rc)
		rc = wp_abi_type_canonical(&canon, t);
	if (rc) {
		wp_buf_free(&canon);
		return luaL_error(L, "out of memory");
	}
	wp_keccak256(canon.data, canon.len, h);
	wp_buf_free(&canon);
	return encode_common(L, t, 2, h, 4);
}

static int decode_common(lua_State *L, const struct wp_abi_type *t, const uint8_t *data,
			 size_t len, int opts, size_t base)
{
	struct wp_abi_value *v;
	unsigned flags = WP_ABI_CANONICAL;
	lua_Integer max_items = 0;
	size_t errpos = 0;
	const char *why = NULL;
	int rc;

	if (!lua_isnoneornil(L, opts)) {
		luaL_checktype(L, opts, LUA_TTABLE);
		lua_getfield(L, opts, "lenient");
		if (lua_toboolean(L, -1))
			flags = 0;
		lua_getfield(L, opts, "max_items");
		max_items = luaL_optinteger(L, -1, 0);
		lua_pop(L, 2);
		luaL_argcheck(L, max_items >= 0, opts, "max_items must be >= 0");
	}
	rc = wp_abi_decode(&v, t, data, len, flags, (size_t)max_items, &errpos, &why);
	if (rc == WP_ENOMEM)
		return lwp_fail(L, "ENOMEM", "abi.decode: out of memory");
	if (rc)
		return lwp_fail_err(L, rc, "abi.decode: %s at byte %zu", why ? why : "malformed data",
				    errpos + base);
	/* the tree is malloc'd: build the Lua values without raising in
	 * between except on memory errors (then the tree leaks once; a
	 * userdata guard would cost every call an allocation) */
	push_abi_value(L, t, v);
	free(v);
	return 1;
}

/* abi.decode(types, data [, opts]) -> values | nil, err */
static int l_abi_decode(lua_State *L)
{
	const struct wp_abi_type *t;
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);

	lua_settop(L, 3);
	t = check_types(L, 1, 0, NULL);

	return decode_common(L, t, (const uint8_t *)data, len, 3, 0);
}

/* abi.decode_call(signature, calldata [, opts]) -> values | nil, err */
static int l_abi_decode_call(lua_State *L)
{
	size_t name_len, slen, len;
	const char *sig = luaL_checklstring(L, 1, &slen);
	const char *data = luaL_checklstring(L, 2, &len);
	const struct wp_abi_type *t;
	struct wp_buf canon = WP_BUF_INIT;
	uint8_t h[32];
	int rc;

	lua_settop(L, 3);
	t = check_types(L, 1, 1, &name_len);

	rc = wp_buf_append(&canon, sig, name_len);
	if (!rc)
		rc = wp_abi_type_canonical(&canon, t);
	if (rc) {
		wp_buf_free(&canon);
		return luaL_error(L, "out of memory");
	}
	wp_keccak256(canon.data, canon.len, h);
	wp_buf_free(&canon);
	if (len < 4)
		return lwp_fail(L, "ETRUNC", "abi.decode_call: calldata shorter than a selector");
	if (memcmp(h, data, 4) != 0)
		return lwp_fail(L, "EPROTO", "abi.decode_call: selector does not match %s", sig);
	return decode_common(L, t, (const uint8_t *)data + 4, len - 4, 3, 4);
}

static int push_sig_hash(lua_State *L, size_t outlen)
{
	size_t len, errpos = 0;
	const char *sig = luaL_checklstring(L, 1, &len);
	struct wp_buf canon = WP_BUF_INIT;
	uint8_t h[32];
	int rc = wp_abi_signature_hash(h, &canon, sig, len, &errpos);

	if (rc == WP_ENOMEM) {
		wp_buf_free(&canon);
		return luaL_error(L, "out of memory");
	}
	if (rc) {
		wp_buf_free(&canon);
		lua_pushfstring(L, "%s: malformed signature at byte %d", wp_strerror(rc),
				(int)errpos + 1);
		return luaL_argerror(L, 1, lua_tostring(L, -1));
	}
	lua_pushlstring(L, (const char *)h, outlen);
	lua_pushlstring(L, (const char *)canon.data, canon.len);
	wp_buf_free(&canon);
	return 2;
}

/* abi.selector(sig) -> 4 bytes, canonical signature */
static int l_abi_selector(lua_State *L)
{
	return push_sig_hash(L, 4);
}

/* abi.event_topic(sig) -> 32 bytes, canonical signature */
static int l_abi_event_topic(lua_State *L)
{
	return push_sig_hash(L, 32);
}

/* abi.canonical(types) -> "(T1,...,Tn)" */
static int l_abi_canonical(lua_State *L)
{
	const struct wp_abi_type *t;
	struct wp_buf b = WP_BUF_INIT;

	lua_settop(L, 1);
	t = check_types(L, 1, 0, NULL);

	if (wp_abi_type_canonical(&b, t)) {
		wp_buf_free(&b);
		return luaL_error(L, "out of memory");
	}
	lua_pushlstring(L, (const char *)b.data, b.len);
	wp_buf_free(&b);
	return 1;
}

static int uint_arg(lua_State *L, int idx, uint8_t w[32])
{
	struct conv c;

	memset(&c, 0, sizeof(c));
	c.L = L;
	c.root = "value";
	luaL_checkany(L, idx);
	if (to_int_word(&c, idx, w, 0))
		return conv_result(L, &c);
	return 0;
}

/* abi.to_decimal(x) -> decimal string | nil, err (unsigned, < 2^256) */
static int l_abi_to_decimal(lua_State *L)
{
	uint8_t w[32];
	char dec[WP_ABI_DEC_MAX + 1];
	int n = uint_arg(L, 1, w);

	if (n)
		return n;
	lua_pushlstring(L, dec, wp_abi_int_format(dec, w, 0));
	return 1;
}

/* abi.to_quantity(x) -> "0x..." minimal hex (JSON-RPC QUANTITY) | nil, err */
static int l_abi_to_quantity(lua_State *L)
{
	uint8_t w[32];
	char hex[2 + 64 + 1];
	size_t i;
	int n = uint_arg(L, 1, w);

	if (n)
		return n;
	i = wp_abi_word_skip_zeros(w);
	if (i == 32) {
		lua_pushliteral(L, "0x0");
		return 1;
	}
	hex[0] = '0';
	hex[1] = 'x';
	wp_hex_encode(hex + 2, w + i, 32 - i);
	/* a QUANTITY has no leading zero digit */
	if (hex[2] == '0') {
		lua_pushlstring(L, hex, 2);
		lua_pushlstring(L, hex + 3, 2 * (32 - i) - 1);
		lua_concat(L, 2);
	} else {
		lua_pushlstring(L, hex, 2 + 2 * (32 - i));
	}
	return 1;
}

/* ---- wp.tx ---------------------------------------------------------------- */

struct txints {
	uint8_t chain_id[32], nonce[32], gas_price[32], max_prio[32], max_fee[32];
	uint8_t gas[32], value[32];
	uint8_t to[20];
};

static const char *const tx_fields[] = {
	"type", "chainId", "nonce", "gasPrice", "maxPriorityFeePerGas", "maxFeePerGas",
	"gas", "to", "value", "data", "accessList", NULL,
};

/* Check every key of the tx table is known: a typo ("gasLimit") must not
 * silently become a zero. Raises. */
static void check_tx_keys(lua_State *L, int idx)
{
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		const char *k;
		int ok = 0;

		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, idx, "transaction has a non-string key");
		k = lua_tostring(L, -1);
		for (int i = 0; tx_fields[i]; i++)
			ok |= !strcmp(k, tx_fields[i]);
		if (!ok) {
			lua_pushfstring(L, "unknown transaction field '%s'", k);
			luaL_argerror(L, idx, lua_tostring(L, -1));
		}
	}
}

static int tx_int_field(struct conv *c, int idx, const char *name, uint8_t w[32],
			struct wp_tx_int *out)
{
	lua_State *L = c->L;
	int rc = WP_OK;

	lua_getfield(L, idx, name);
	if (lua_isnil(L, -1)) {
		memset(w, 0, 32);
	} else {
		push_path(c, name, 0);
		rc = to_int_word(c, lua_gettop(L), w, 0);
		pop_path(c);
	}
	lua_pop(L, 1);
	out->be = w;
	out->len = 32;
	return rc;
}

static int tx_access_list(struct conv *c, int idx, struct wp_tx *tx)
{
	lua_State *L = c->L;
	struct wp_tx_access *al;
	size_t n, nk;
	int rc, top;

	lua_getfield(L, idx, "accessList");
	top = lua_gettop(L);
	if (lua_isnil(L, top)) {
		lua_pop(L, 1);
		return WP_OK;
	}
	push_path(c, "accessList", 0);
	if ((rc = array_len(c, top, &n)))
		goto out;
	al = n ? arena_alloc(L, c->a, n * sizeof(*al)) : NULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t *addr, *keys;

		push_path(c, NULL, i + 1);
		lua_rawgeti(L, top, (int)(i + 1));
		if (!lua_istable(L, -1)) {
			rc = cfail(c, WP_EINVAL, "expected {address=, storageKeys=}");
			goto out_entry;
		}
		addr = arena_alloc(L, c->a, 20);
		lua_getfield(L, -1, "address");
		push_path(c, "address", 0);
		rc = to_address(c, lua_gettop(L), addr);
		pop_path(c);
		lua_pop(L, 1);
		if (rc)
			goto out_entry;
		lua_getfield(L, -1, "storageKeys");
		push_path(c, "storageKeys", 0);
		nk = 0;
		if (!lua_isnil(L, -1))
			rc = array_len(c, lua_gettop(L), &nk);
		keys = nk ? arena_alloc(L, c->a, 32 * nk) : NULL;
		for (size_t k = 0; !rc && k < nk; k++) {
			lua_rawgeti(L, -1, (int)(k + 1));
			push_path(c, NULL, k + 1);
			rc = to_fixed_bytes(c, lua_gettop(L), keys + 32 * k, 32);
			pop_path(c);
			lua_pop(L, 1);
		}
		pop_path(c);
		lua_pop(L, 1);
		al[i].address = addr;
		al[i].keys = keys;
		al[i].nkeys = nk;
out_entry:
		lua_pop(L, 1);
		pop_path(c);
		if (rc)
			goto out;
	}
	tx->access_list = al;
	tx->access_len = n;
out:
	pop_path(c);
	lua_pop(L, 1);
	return rc;
}

/*
 * The Lua transaction table at idx into tx (integers in ints, lists in the
 * arena). forced: -1 infer the type, else the required type. Returns 0 or
 * the conv error code.
 */
static int check_tx(struct conv *c, int idx, struct wp_tx *tx, struct txints *ints, int forced)
{
	lua_State *L = c->L;
	int type, has_fee, rc;

	luaL_checktype(L, idx, LUA_TTABLE);
	check_tx_keys(L, idx);
	memset(tx, 0, sizeof(*tx));
	lua_getfield(L, idx, "maxFeePerGas");
	lua_getfield(L, idx, "maxPriorityFeePerGas");
	has_fee = !lua_isnil(L, -1) || !lua_isnil(L, -2);
	lua_pop(L, 2);
	lua_getfield(L, idx, "type");
	if (lua_isnil(L, -1) && forced >= 0) {
		type = forced;
	} else if (lua_isnil(L, -1)) {
		lua_getfield(L, idx, "gasPrice");
		lua_getfield(L, idx, "accessList");
		type = has_fee ? WP_TX_EIP1559 : !lua_isnil(L, -1) && !lua_isnil(L, -2) ?
		       WP_TX_EIP2930 : !lua_isnil(L, -2) ? WP_TX_LEGACY : WP_TX_EIP1559;
		lua_pop(L, 2);
	} else if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);

		type = !strcmp(s, "legacy") ? WP_TX_LEGACY : !strcmp(s, "eip2930") ? WP_TX_EIP2930 :
		       !strcmp(s, "eip1559") ? WP_TX_EIP1559 : -1;
	} else {
		type = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tointeger(L, -1) : -1;
	}
	lua_pop(L, 1);
	if (type < 0 || type > 2)
		luaL_argerror(L, idx, "tx.type must be 0/'legacy', 1/'eip2930' or 2/'eip1559'");
	if (forced >= 0 && (type != forced || (forced == WP_TX_LEGACY && has_fee)))
		luaL_argerror(L, idx, forced == WP_TX_LEGACY ? "not a legacy transaction" :
			      "not an EIP-1559 transaction");
	if (type == WP_TX_LEGACY && has_fee)
		luaL_argerror(L, idx, "legacy transactions have gasPrice, not maxFeePerGas");
	if (type == WP_TX_EIP1559) {
		lua_getfield(L, idx, "gasPrice");
		if (!lua_isnil(L, -1))
			luaL_argerror(L, idx, "EIP-1559 transactions have maxFeePerGas, not gasPrice");
		lua_pop(L, 1);
	}
	if (type == WP_TX_LEGACY) {
		lua_getfield(L, idx, "accessList");
		if (!lua_isnil(L, -1))
			luaL_argerror(L, idx, "legacy transactions have no accessList");
		lua_pop(L, 1);
	}
	lua_getfield(L, idx, "chainId");
	tx->has_chain_id = !lua_isnil(L, -1);
	lua_pop(L, 1);
	if (type != WP_TX_LEGACY && !tx->has_chain_id)
		luaL_argerror(L, idx, "tx.chainId is required");
	tx->type = type;
	if ((rc = tx_int_field(c, idx, "chainId", ints->chain_id, &tx->chain_id)) ||
	    (rc = tx_int_field(c, idx, "nonce", ints->nonce, &tx->nonce)) ||
	    (rc = tx_int_field(c, idx, "gasPrice", ints->gas_price, &tx->gas_price)) ||
	    (rc = tx_int_field(c, idx, "maxPriorityFeePerGas", ints->max_prio,
			       &tx->max_priority_fee)) ||
	    (rc = tx_int_field(c, idx, "maxFeePerGas", ints->max_fee, &tx->max_fee)) ||
	    (rc = tx_int_field(c, idx, "gas", ints->gas, &tx->gas)) ||
	    (rc = tx_int_field(c, idx, "value", ints->value, &tx->value)))
		return rc;
	lua_getfield(L, idx, "to");
	if (!lua_isnil(L, -1)) {
		push_path(c, "to", 0);
		rc = to_address(c, lua_gettop(L), ints->to);
		pop_path(c);
		tx->to = ints->to;
	}
	lua_pop(L, 1);
	if (rc)
		return rc;
	lua_getfield(L, idx, "data");
	if (!lua_isnil(L, -1)) {
		size_t len;

		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, idx, "tx.data must be a (raw bytes) string");
		/* the string stays referenced by the tx table */
		tx->data = (const uint8_t *)lua_tolstring(L, -1, &len);
		tx->data_len = len;
	}
	lua_pop(L, 1);
	if (type != WP_TX_LEGACY)
		return tx_access_list(c, idx, tx);
	return WP_OK;
}

static int tx_error(lua_State *L, int rc, const char *what)
{
	switch (rc) {
	case WP_ERANGE:
		return lwp_fail(L, "ERANGE", "%s: an integer is too large (or a legacy chainId "
				"above 2^62)", what);
	case WP_EINVAL:
		return lwp_fail(L, "EINVAL", "%s: secret key is zero or not below the curve order",
				what);
	case WP_ECRYPTO:
		return lwp_fail(L, "ECRYPTO", "%s: signature needs recovery id 2 or 3", what);
	default:
		return lwp_fail_err(L, rc, "%s failed", what);
	}
}

/* tx.signing_hash(tx) -> hash32, payload | nil, err */
static int l_tx_signing_hash(lua_State *L)
{
	struct conv c;
	struct wp_tx tx;
	struct txints ints;
	struct wp_buf b = WP_BUF_INIT;
	uint8_t h[32];
	int rc;

	memset(&c, 0, sizeof(c));
	c.L = L;
	c.root = "tx";
	c.a = arena_new(L);
	if (check_tx(&c, 1, &tx, &ints, -1))
		return conv_result(L, &c);
	rc = wp_tx_encode_unsigned(&b, &tx);
	if (rc) {
		wp_buf_free(&b);
		return tx_error(L, rc, "tx.signing_hash");
	}
	wp_keccak256(b.data, b.len, h);
	lua_pushlstring(L, (const char *)h, 32);
	lua_pushlstring(L, (const char *)b.data, b.len);
	wp_buf_free(&b);
	return 2;
}

static int sign_common(lua_State *L, int forced, const char *what)
{
	const unsigned char *secret = lwp_checkbytes(L, 2, 32);
	struct conv c;
	struct wp_tx tx;
	struct txints ints;
	struct wp_buf b = WP_BUF_INIT;
	uint8_t h[32];
	int rc;

	memset(&c, 0, sizeof(c));
	c.L = L;
	c.root = "tx";
	c.a = arena_new(L);
	if (check_tx(&c, 1, &tx, &ints, forced))
		return conv_result(L, &c);
	rc = wp_tx_sign(&b, h, &tx, secret);
	if (rc) {
		wp_buf_free(&b);
		return tx_error(L, rc, what);
	}
	lua_pushlstring(L, (const char *)b.data, b.len);
	lua_pushlstring(L, (const char *)h, 32);
	wp_buf_free(&b);
	return 2;
}

/* tx.sign(tx, secret32) -> raw, hash32 | nil, err */
static int l_tx_sign(lua_State *L)
{
	return sign_common(L, -1, "tx.sign");
}

static int l_tx_sign_eip1559(lua_State *L)
{
	return sign_common(L, WP_TX_EIP1559, "tx.sign_eip1559");
}

static int l_tx_sign_legacy(lua_State *L)
{
	return sign_common(L, WP_TX_LEGACY, "tx.sign_legacy");
}

static void set_int(lua_State *L, const char *k, const struct wp_tx_int *x)
{
	uint8_t w[32];
	char dec[WP_ABI_DEC_MAX + 1];

	memset(w, 0, 32);
	if (x->len)
		memcpy(w + 32 - x->len, x->be, x->len);
	lua_pushlstring(L, dec, wp_abi_int_format(dec, w, 0));
	lua_setfield(L, -2, k);
}

static void set_addr(lua_State *L, const char *k, const uint8_t *a)
{
	char out[WP_ETH_ADDR_HEX_LEN + 1];

	wp_eth_checksum(out, a);
	lua_pushlstring(L, out, WP_ETH_ADDR_HEX_LEN);
	lua_setfield(L, -2, k);
}

/* tx.decode(raw) -> table | nil, err */
static int l_tx_decode(lua_State *L)
{
	size_t len, errpos = 0;
	const char *raw = luaL_checklstring(L, 1, &len);
	const char *why = NULL;
	struct wp_tx tx;
	uint8_t h[32], from[20];
	int rc = wp_tx_decode(&tx, (const uint8_t *)raw, len, &errpos, &why);

	if (rc)
		return lwp_fail_err(L, rc, "tx.decode: %s at byte %zu", why, errpos);
	rc = wp_tx_sender(from, &tx);
	if (rc) {
		wp_tx_clear(&tx);
		return lwp_fail_err(L, rc, "tx.decode: the sender does not recover (%s)",
				    rc == WP_EPROTO ? "high s" : rc == WP_ERANGE ?
				    "r or s out of range" : "invalid signature");
	}
	lua_createtable(L, 0, 18);
	lua_pushinteger(L, tx.type);
	lua_setfield(L, -2, "type");
	if (tx.type != WP_TX_LEGACY || tx.has_chain_id)
		set_int(L, "chainId", &tx.chain_id);
	set_int(L, "nonce", &tx.nonce);
	if (tx.type == WP_TX_EIP1559) {
		set_int(L, "maxPriorityFeePerGas", &tx.max_priority_fee);
		set_int(L, "maxFeePerGas", &tx.max_fee);
	} else {
		set_int(L, "gasPrice", &tx.gas_price);
	}
	set_int(L, "gas", &tx.gas);
	if (tx.to)
		set_addr(L, "to", tx.to);
	set_int(L, "value", &tx.value);
	lua_pushlstring(L, tx.data_len ? (const char *)tx.data : "", tx.data_len);
	lua_setfield(L, -2, "data");
	if (tx.type != WP_TX_LEGACY) {
		lua_createtable(L, (int)tx.access_len, 0);
		for (size_t i = 0; i < tx.access_len; i++) {
			const struct wp_tx_access *a = &tx.access_list[i];

			lua_createtable(L, 0, 2);
			set_addr(L, "address", a->address);
			lua_createtable(L, (int)a->nkeys, 0);
			for (size_t k = 0; k < a->nkeys; k++) {
				lua_pushlstring(L, (const char *)a->keys + 32 * k, 32);
				lua_rawseti(L, -2, (int)(k + 1));
			}
			lua_setfield(L, -2, "storageKeys");
			lua_rawseti(L, -2, (int)(i + 1));
		}
		lua_setfield(L, -2, "accessList");
	} else {
		set_int(L, "v", &tx.v);
	}
	lua_pushinteger(L, tx.y_parity);
	lua_setfield(L, -2, "yParity");
	set_int(L, "r", &tx.r);
	set_int(L, "s", &tx.s);
	wp_keccak256(raw, len, h);
	lua_pushlstring(L, (const char *)h, 32);
	lua_setfield(L, -2, "hash");
	set_addr(L, "from", from);
	wp_tx_clear(&tx);
	return 1;
}

/* ---- wp.eip712 ------------------------------------------------------------ */

struct types712 {
	struct wp_eip712_types *t;
};

static int types712_gc(lua_State *L)
{
	struct types712 *u = luaL_checkudata(L, 1, TYPES712_MT);

	wp_eip712_types_free(u->t);
	u->t = NULL;
	return 0;
}

static const char *const domain_fields[] = {
	"name", "version", "chainId", "verifyingContract", "salt", NULL,
};

/*
 * Domain table at idx into d (chain id word and address in w / addr / salt).
 * Unknown keys raise; bad values return the conv error code.
 */
static int check_domain(struct conv *c, int idx, struct wp_eip712_domain *d,
			uint8_t chain[32], uint8_t addr[20], uint8_t salt[32])
{
	lua_State *L = c->L;
	int rc = WP_OK;

	luaL_checktype(L, idx, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int ok = 0;

		lua_pop(L, 1);
		for (int i = 0; lua_type(L, -1) == LUA_TSTRING && domain_fields[i]; i++)
			ok |= !strcmp(lua_tostring(L, -1), domain_fields[i]);
		if (!ok) {
			lua_pushfstring(L, "unknown EIP712Domain field '%s'",
					lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
			luaL_argerror(L, idx, lua_tostring(L, -1));
		}
	}
	memset(d, 0, sizeof(*d));
	c->root = "domain";
	lua_getfield(L, idx, "name");
	lua_getfield(L, idx, "version");
	if (!lua_isnil(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			luaL_argerror(L, idx, "domain.name must be a string");
		d->name = lua_tolstring(L, -2, &d->name_len);
	}
	if (!lua_isnil(L, -1)) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_argerror(L, idx, "domain.version must be a string");
		d->version = lua_tolstring(L, -1, &d->version_len);
	}
	lua_pop(L, 2);   /* the strings stay referenced by the domain table */
	lua_getfield(L, idx, "chainId");
	if (!lua_isnil(L, -1)) {
		push_path(c, "chainId", 0);
		rc = to_int_word(c, lua_gettop(L), chain, 0);
		pop_path(c);
		d->chain_id = chain;
	}
	lua_pop(L, 1);
	if (rc)
		return rc;
	lua_getfield(L, idx, "verifyingContract");
	if (!lua_isnil(L, -1)) {
		push_path(c, "verifyingContract", 0);
		rc = to_address(c, lua_gettop(L), addr);
		pop_path(c);
		d->verifying_contract = addr;
	}
	lua_pop(L, 1);
	if (rc)
		return rc;
	lua_getfield(L, idx, "salt");
	if (!lua_isnil(L, -1)) {
		push_path(c, "salt", 0);
		rc = to_fixed_bytes(c, lua_gettop(L), salt, 32);
		pop_path(c);
		d->salt = salt;
	}
	lua_pop(L, 1);
	if (rc)
		return rc;
	if (!d->name && !d->version && !d->chain_id && !d->verifying_contract && !d->salt)
		luaL_argerror(L, idx, "the domain has none of name, version, chainId, "
			      "verifyingContract, salt");
	return WP_OK;
}

/* Domain separator from a domain table or a 32-byte separator string. */
static int domain_sep(struct conv *c, int idx, uint8_t out[32])
{
	struct wp_eip712_domain d;
	uint8_t chain[32], addr[20], salt[32];

	if (lua_type(c->L, idx) == LUA_TSTRING) {
		memcpy(out, lwp_checkbytes(c->L, idx, 32), 32);
		return WP_OK;
	}
	if (check_domain(c, idx, &d, chain, addr, salt))
		return c->code;
	wp_eip712_domain_separator(out, &d);
	return WP_OK;
}

/* eip712.domain_separator(domain) -> 32 bytes | nil, err */
static int l_712_domain_separator(lua_State *L)
{
	struct conv c;
	uint8_t h[32];

	memset(&c, 0, sizeof(c));
	c.L = L;
	luaL_checktype(L, 1, LUA_TTABLE);
	if (domain_sep(&c, 1, h))
		return conv_result(L, &c);
	lua_pushlstring(L, (const char *)h, 32);
	return 1;
}

/* Compile the types table at idx (eth_signTypedData_v4 shape); push the
 * holder. Malformed types raise. */
static const struct wp_eip712_types *check_types712(lua_State *L, int idx)
{
	struct types712 *u;
	struct wp_eip712_struct *structs;
	struct wp_eip712_field *fields;
	size_t n = 0, nf = 0, es = 0, ef = 0, si = 0, fi = 0;
	int rc, names;

	luaL_checktype(L, idx, LUA_TTABLE);
	/* count structs and fields, collect the names in a sorted array so
	 * the compiled indexes do not depend on table iteration order */
	lua_newtable(L);
	names = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_type(L, -2) != LUA_TSTRING || !lua_istable(L, -1))
			luaL_argerror(L, idx, "types: expected { StructName = { {name=, type=}, ... } }");
		nf += lua_objlen(L, -1);
		lua_pop(L, 1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, names, (int)++n);
	}
	lua_getglobal(L, "table");
	lua_getfield(L, -1, "sort");
	lua_pushvalue(L, names);
	lua_call(L, 1, 0);
	lua_pop(L, 1);
	structs = lua_newuserdata(L, (n ? n : 1) * sizeof(*structs));
	fields = lua_newuserdata(L, (nf ? nf : 1) * sizeof(*fields));
	for (si = 0; si < n; si++) {
		size_t cnt;

		lua_rawgeti(L, names, (int)(si + 1));
		structs[si].name = lua_tolstring(L, -1, &structs[si].name_len);
		lua_rawget(L, idx);
		cnt = lua_objlen(L, -1);
		structs[si].fields = fields + fi;
		structs[si].nfields = cnt;
		for (size_t f = 0; f < cnt; f++, fi++) {
			lua_rawgeti(L, -1, (int)(f + 1));
			if (!lua_istable(L, -1))
				luaL_argerror(L, idx, "types: every field is {name=, type=}");
			lua_getfield(L, -1, "name");
			lua_getfield(L, -2, "type");
			if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
				luaL_argerror(L, idx, "types: every field is {name=, type=} (strings)");
			/* the strings live in the caller's types table */
			fields[fi].name = lua_tolstring(L, -2, &fields[fi].name_len);
			fields[fi].type = lua_tolstring(L, -1, &fields[fi].type_len);
			lua_pop(L, 3);
		}
		lua_pop(L, 1);
	}
	u = lua_newuserdata(L, sizeof(*u));
	u->t = NULL;
	luaL_getmetatable(L, TYPES712_MT);
	lua_setmetatable(L, -2);
	rc = wp_eip712_types_new(&u->t, structs, n, &es, &ef);
	if (rc == WP_ENOMEM)
		luaL_error(L, "out of memory");
	if (rc) {
		if (ef == (size_t)-1)
			lua_pushfstring(L, "types: bad struct name '%s'", structs[es].name);
		else
			lua_pushfstring(L, "types: %s.%s: bad or duplicate field (name '%s', type '%s')",
					structs[es].name, structs[es].fields[ef].name,
					structs[es].fields[ef].name, structs[es].fields[ef].type);
		luaL_argerror(L, idx, lua_tostring(L, -1));
	}
	/* leave only the holder: names, structs, fields go */
	lua_replace(L, names);
	lua_settop(L, names);
	return u->t;
}

static int primary_index(lua_State *L, const struct wp_eip712_types *t, int arg)
{
	size_t len;
	const char *s = luaL_checklstring(L, arg, &len);
	int idx = wp_eip712_struct_index(t, s, len);

	if (idx < 0) {
		lua_pushfstring(L, "primary type '%s' is not in types", s);
		luaL_argerror(L, arg, lua_tostring(L, -1));
	}
	return idx;
}

static int value712(struct conv *c, const struct wp_eip712_types *t,
		    const struct wp_eip712_ftype *ft, unsigned level, int idx,
		    struct wp_abi_value *out);

/* A struct value (Lua table keyed by field names) into out. */
static int struct712(struct conv *c, const struct wp_eip712_types *t, int sidx, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	size_t n = wp_eip712_nfields(t, sidx);
	struct wp_abi_value *items;
	int rc;

	if (c->depth > WP_EIP712_MAX_DEPTH)
		return cfail(c, WP_ERANGE, "nested too deeply");
	if (!lua_istable(L, idx))
		return cfail(c, WP_EINVAL, "expected a struct (table), got %s", luaL_typename(L, idx));
	items = n ? arena_alloc(L, c->a, n * sizeof(*items)) : NULL;
	luaL_checkstack(L, 4, "eip712: nesting");
	for (size_t f = 0; f < n; f++) {
		const struct wp_eip712_ftype *ft = wp_eip712_field(t, sidx, f);

		lua_getfield(L, idx, ft->name);
		push_path(c, ft->name, 0);
		if (lua_isnil(L, -1))
			rc = cfail(c, WP_EINVAL, "missing value");
		else
			rc = value712(c, t, ft, ft->ndims, lua_gettop(L), &items[f]);
		pop_path(c);
		lua_pop(L, 1);
		if (rc)
			return rc;
	}
	out->data = NULL;
	out->len = 0;
	out->count = n;
	out->items = items;
	return WP_OK;
}

static int value712(struct conv *c, const struct wp_eip712_types *t,
		    const struct wp_eip712_ftype *ft, unsigned level, int idx,
		    struct wp_abi_value *out)
{
	lua_State *L = c->L;
	size_t len, n = 0;
	const char *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->depth > WP_EIP712_MAX_DEPTH)
		return cfail(c, WP_ERANGE, "nested too deeply");
	if (level > 0) {
		struct wp_abi_value *items;
		uint32_t dim = ft->dims[level - 1];

		if ((rc = array_len(c, idx, &n)))
			return rc;
		if (dim && n != dim)
			return cfail(c, WP_ERANGE, "expected %u elements, got %zu", (unsigned)dim, n);
		items = n ? arena_alloc(L, c->a, n * sizeof(*items)) : NULL;
		luaL_checkstack(L, 4, "eip712: nesting");
		for (size_t i = 0; i < n; i++) {
			lua_rawgeti(L, idx, (int)(i + 1));
			push_path(c, NULL, i + 1);
			rc = value712(c, t, ft, level - 1, lua_gettop(L), &items[i]);
			pop_path(c);
			lua_pop(L, 1);
			if (rc)
				return rc;
		}
		out->count = n;
		out->items = items;
		return WP_OK;
	}
	switch (ft->kind) {
	case WP_EIP712_STRUCT:
		return struct712(c, t, ft->struct_idx, idx, out);
	case WP_ABI_STRING:
		if (lua_type(L, idx) != LUA_TSTRING)
			return cfail(c, WP_EINVAL, "expected a string, got %s", luaL_typename(L, idx));
		out->data = (const uint8_t *)lua_tolstring(L, idx, &len);
		out->len = len;
		return WP_OK;
	case WP_ABI_BYTES: {
		uint8_t *buf;

		/* JSON carries bytes as 0x hex (eth_signTypedData_v4) */
		if (lua_type(L, idx) != LUA_TSTRING)
			return cfail(c, WP_EINVAL, "expected 0x hex bytes, got %s", luaL_typename(L, idx));
		s = lua_tolstring(L, idx, &len);
		if (len < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
			return cfail(c, WP_EINVAL, "bytes must be 0x hex");
		buf = arena_alloc(L, c->a, len / 2 + 1);
		if (wp_hex_decode(buf, len / 2 + 1, &n, s, len, NULL))
			return cfail(c, WP_EINVAL, "bytes must be 0x hex (even number of digits)");
		out->data = buf;
		out->len = n;
		return WP_OK;
	}
	default: {
		uint8_t *w = arena_alloc(L, c->a, 32);

		out->data = w;
		out->len = 32;
		return to_word(c, idx, ft->kind, ft->size, w);
	}
	}
}

static int hash_struct_arg(struct conv *c, const struct wp_eip712_types *t, int sidx,
			   int idx, uint8_t out[32])
{
	struct wp_abi_value v;
	int rc;

	if (struct712(c, t, sidx, idx, &v))
		return c->code;
	rc = wp_eip712_hash_struct(out, t, sidx, &v);
	if (rc)
		return cfail(c, rc, "does not match its type");
	return WP_OK;
}

/* eip712.hash_struct(types, primaryType, message) -> 32 bytes | nil, err */
static int l_712_hash_struct(lua_State *L)
{
	const struct wp_eip712_types *t;
	struct conv c;
	uint8_t h[32];
	int sidx;

	lua_settop(L, 3);
	t = check_types712(L, 1);
	sidx = primary_index(L, t, 2);

	memset(&c, 0, sizeof(c));
	c.L = L;
	c.root = "message";
	c.a = arena_new(L);
	if (hash_struct_arg(&c, t, sidx, 3, h))
		return conv_result(L, &c);
	lua_pushlstring(L, (const char *)h, 32);
	return 1;
}

/* eip712.encode_type(types, primaryType) -> string */
static int l_712_encode_type(lua_State *L)
{
	const struct wp_eip712_types *t;
	struct wp_buf b = WP_BUF_INIT;
	int sidx;

	lua_settop(L, 2);
	t = check_types712(L, 1);
	sidx = primary_index(L, t, 2);

	if (wp_eip712_encode_type(&b, t, sidx)) {
		wp_buf_free(&b);
		return luaL_error(L, "out of memory");
	}
	lua_pushlstring(L, (const char *)b.data, b.len);
	wp_buf_free(&b);
	return 1;
}

/* eip712.type_hash(types, primaryType) -> 32 bytes */
static int l_712_type_hash(lua_State *L)
{
	const struct wp_eip712_types *t;
	uint8_t h[32];

	lua_settop(L, 2);
	t = check_types712(L, 1);

	wp_eip712_type_hash(h, t, primary_index(L, t, 2));
	lua_pushlstring(L, (const char *)h, 32);
	return 1;
}

/* eip712.hash_typed_data(types, primaryType, domain, message) or
 * eip712.hash_typed_data{types=, primaryType=, domain=, message=}
 * -> digest32, domainSeparator32, structHash32 | nil, err */
static int l_712_hash_typed_data(lua_State *L)
{
	const struct wp_eip712_types *t;
	struct conv c;
	uint8_t ds[32], sh[32], digest[32];
	int sidx, didx;

	if (lua_gettop(L) == 1 && lua_istable(L, 1)) {
		lua_getfield(L, 1, "types");
		lua_getfield(L, 1, "primaryType");
		lua_getfield(L, 1, "domain");
		lua_getfield(L, 1, "message");
		lua_remove(L, 1);
	}
	lua_settop(L, 4);
	t = check_types712(L, 1);   /* pushes the holder at 5 */
	sidx = primary_index(L, t, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	memset(&c, 0, sizeof(c));
	c.L = L;
	c.a = arena_new(L);
	didx = wp_eip712_struct_index(t, "EIP712Domain", 12);
	if (didx >= 0) {
		c.root = "domain";
		if (hash_struct_arg(&c, t, didx, 3, ds))
			return conv_result(L, &c);
	} else if (domain_sep(&c, 3, ds)) {
		return conv_result(L, &c);
	}
	if (sidx == didx) {
		/* signing the domain itself: no message hash (as wallets do) */
		uint8_t buf[34] = { 0x19, 0x01 };

		memcpy(buf + 2, ds, 32);
		wp_keccak256(buf, sizeof(buf), digest);
		memset(sh, 0, 32);
	} else {
		c.root = "message";
		c.depth = 0;
		if (hash_struct_arg(&c, t, sidx, 4, sh))
			return conv_result(L, &c);
		wp_eip712_digest(digest, ds, sh);
	}
	lua_pushlstring(L, (const char *)digest, 32);
	lua_pushlstring(L, (const char *)ds, 32);
	lua_pushlstring(L, (const char *)sh, 32);
	return 3;
}

/* eip712.digest(domainSeparator32, structHash32) -> 32 bytes */
static int l_712_digest(lua_State *L)
{
	uint8_t h[32];

	wp_eip712_digest(h, lwp_checkbytes(L, 1, 32), lwp_checkbytes(L, 2, 32));
	lua_pushlstring(L, (const char *)h, 32);
	return 1;
}

/* eip712.transfer_with_authorization_hash(domain | separator32, msg)
 * -> digest32, structHash32 | nil, err */
static int l_712_twa_hash(lua_State *L)
{
	static const char *const keys[] = { "value", "validAfter", "validBefore" };
	struct wp_eip3009_auth a;
	struct conv c;
	uint8_t ds[32], from[20], to[20], ints[3][32], nonce[32], sh[32], digest[32];
	int rc;

	memset(&c, 0, sizeof(c));
	c.L = L;
	if (lua_type(L, 1) != LUA_TSTRING)
		luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (domain_sep(&c, 1, ds))
		return conv_result(L, &c);
	c.root = "message";
	lua_settop(L, 2);
	lua_getfield(L, 2, "from");         /* 3 */
	lua_getfield(L, 2, "to");           /* 4 */
	lua_getfield(L, 2, "value");        /* 5 */
	lua_getfield(L, 2, "validAfter");   /* 6 */
	lua_getfield(L, 2, "validBefore");  /* 7 */
	lua_getfield(L, 2, "nonce");        /* 8 */
	push_path(&c, "from", 0);
	rc = to_address(&c, 3, from);
	pop_path(&c);
	if (!rc) {
		push_path(&c, "to", 0);
		rc = to_address(&c, 4, to);
		pop_path(&c);
	}
	for (int i = 0; !rc && i < 3; i++) {
		push_path(&c, keys[i], 0);
		rc = to_int_word(&c, 5 + i, ints[i], 0);
		pop_path(&c);
	}
	if (!rc) {
		push_path(&c, "nonce", 0);
		rc = to_fixed_bytes(&c, 8, nonce, 32);
		pop_path(&c);
	}
	if (rc)
		return conv_result(L, &c);
	a.from = from;
	a.to = to;
	a.value = ints[0];
	a.valid_after = ints[1];
	a.valid_before = ints[2];
	a.nonce = nonce;
	wp_eip3009_transfer_hash(sh, &a);
	wp_eip712_digest(digest, ds, sh);
	lua_pushlstring(L, (const char *)digest, 32);
	lua_pushlstring(L, (const char *)sh, 32);
	return 2;
}

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

void lwp_open_evm(lua_State *L)
{
	static const luaL_Reg abi[] = {
		{ "encode", l_abi_encode },
		{ "decode", l_abi_decode },
		{ "encode_call", l_abi_encode_call },
		{ "decode_call", l_abi_decode_call },
		{ "selector", l_abi_selector },
		{ "event_topic", l_abi_event_topic },
		{ "canonical", l_abi_canonical },
		{ "to_decimal", l_abi_to_decimal },
		{ "to_quantity", l_abi_to_quantity },
		{ NULL, NULL },
	};
	static const luaL_Reg tx[] = {
		{ "signing_hash", l_tx_signing_hash },
		{ "sign", l_tx_sign },
		{ "sign_eip1559", l_tx_sign_eip1559 },
		{ "sign_legacy", l_tx_sign_legacy },
		{ "decode", l_tx_decode },
		{ NULL, NULL },
	};
	static const luaL_Reg eip712[] = {
		{ "domain_separator", l_712_domain_separator },
		{ "hash_typed_data", l_712_hash_typed_data },
		{ "hash_struct", l_712_hash_struct },
		{ "encode_type", l_712_encode_type },
		{ "type_hash", l_712_type_hash },
		{ "digest", l_712_digest },
		{ "transfer_with_authorization_hash", l_712_twa_hash },
		{ NULL, NULL },
	};
	static const luaL_Reg eip191[] = {
		{ "hash", l_191_hash },
		{ NULL, NULL },
	};

	luaL_newmetatable(L, ARENA_MT);
	lua_pushcfunction(L, arena_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newmetatable(L, ABITYPE_MT);
	lua_pushcfunction(L, abitype_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newmetatable(L, TYPES712_MT);
	lua_pushcfunction(L, types712_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lwp_subtable(L, "abi", abi);
	lwp_subtable(L, "tx", tx);
	lwp_subtable(L, "eip712", eip712);
	lwp_subtable(L, "eip191", eip191);
}
