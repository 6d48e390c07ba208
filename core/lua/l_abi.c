/* SPDX-License-Identifier: MIT */
/*
 * wp.abi: strict ABI encoding and decoding over core/src/abi.c; type
 * strings are parsed once and cached by their text. Value conventions and
 * the error convention: l_evm.h, docs/lua-api.md ("wp.abi").
 */
#include <stdlib.h>
#include <string.h>

#include "l_evm.h"
#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/encoding.h"
#include "workproof/eth.h"
#include "workproof/hash.h"

#define ABITYPE_MT "workproof.evm.abitype"
#define TYPE_CACHE_MAX 512

static char type_cache_key;

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

static int abi_value(struct lwp_conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out);

static int abi_items(struct lwp_conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	const struct wp_abi_type *m = t->kind == WP_ABI_TUPLE ? t->first : t->elem;
	struct wp_abi_value *items = NULL;
	size_t n;
	int rc;

	if ((rc = lwp_array_len(c, idx, &n)))
		return rc;
	if ((t->kind == WP_ABI_TUPLE || t->kind == WP_ABI_FARRAY) && n != t->count)
		return lwp_cfail(c, WP_ERANGE, "expected %u values, got %zu", (unsigned)t->count, n);
	if (n > SIZE_MAX / sizeof(*items))
		return lwp_cfail(c, WP_ERANGE, "array too large");
	if (n)
		items = lwp_arena_alloc(L, c->a, n * sizeof(*items));
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

static int abi_value(struct lwp_conv *c, const struct wp_abi_type *t, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	uint8_t *w;

	switch (t->kind) {
	case WP_ABI_BYTES:
	case WP_ABI_STRING: {
		size_t len;

		if (lua_type(L, idx) != LUA_TSTRING)
			return lwp_cfail(c, WP_EINVAL, "expected a string, got %s", luaL_typename(L, idx));
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
		w = lwp_arena_alloc(L, c->a, 32);
		out->data = w;
		out->len = 32;
		out->count = 0;
		out->items = NULL;
		return lwp_to_word(c, idx, t->kind, t->size, w);
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
	struct lwp_conv c;
	struct wp_abi_value v;
	struct wp_buf b = WP_BUF_INIT;
	int rc;

	lwp_conv_init(&c, L, "values", 1);
	if (abi_value(&c, t, vidx, &v))
		return lwp_conv_result(L, &c);
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

/* keccak256 of the function name (name_len bytes of sig) and canonical types */
static void call_hash(lua_State *L, const char *sig, size_t name_len,
		      const struct wp_abi_type *t, uint8_t h[32])
{
	struct wp_buf canon = WP_BUF_INIT;
	int rc = wp_buf_append(&canon, sig, name_len);

	if (!rc)
		rc = wp_abi_type_canonical(&canon, t);
	if (rc) {
		wp_buf_free(&canon);
		luaL_error(L, "out of memory");
		return;
	}
	wp_keccak256(canon.data, canon.len, h);
	wp_buf_free(&canon);
}

/* abi.encode_call(signature, values) -> selector ‖ encoding | nil, err */
static int l_abi_encode_call(lua_State *L)
{
	size_t name_len, len;
	const char *sig = luaL_checklstring(L, 1, &len);
	const struct wp_abi_type *t;
	uint8_t h[32];

	lua_settop(L, 2);
	t = check_types(L, 1, 1, &name_len);
	luaL_checktype(L, 2, LUA_TTABLE);
	call_hash(L, sig, name_len, t, h);
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
	uint8_t h[32];

	lua_settop(L, 3);
	t = check_types(L, 1, 1, &name_len);
	call_hash(L, sig, name_len, t, h);
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
	struct lwp_conv c;

	lwp_conv_init(&c, L, "value", 0);
	luaL_checkany(L, idx);
	if (lwp_to_int_word(&c, idx, w, 0))
		return lwp_conv_result(L, &c);
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

void lwp_open_abi(lua_State *L)
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

	luaL_newmetatable(L, ABITYPE_MT);
	lua_pushcfunction(L, abitype_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lwp_subtable(L, "abi", abi);
}
