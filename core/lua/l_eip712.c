/* SPDX-License-Identifier: MIT */
/*
 * wp.eip712: EIP-712 domain separators, struct hashes and digests, and the
 * EIP-3009 transferWithAuthorization hash, over core/src/eip712.c. Value
 * conventions and the error convention: l_evm.h, docs/lua-api.md
 * ("wp.eip712").
 */
#include <string.h>

#include "l_evm.h"
#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/eip712.h"
#include "workproof/encoding.h"
#include "workproof/eth.h"
#include "workproof/hash.h"

#define TYPES712_MT "workproof.evm.types712"

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

enum domain_kind { DOMAIN_INT, DOMAIN_ADDRESS, DOMAIN_BYTES32 };

/*
 * The optional domain field `key` of the table at idx, an integer word, an
 * address or 32 bytes, into out; *set = out when it is there. Returns the
 * conv error code.
 */
static int domain_word(struct lwp_conv *c, int idx, const char *key, enum domain_kind kind,
		       uint8_t *out, const uint8_t **set)
{
	lua_State *L = c->L;
	int rc = WP_OK;

	lua_getfield(L, idx, key);
	if (!lua_isnil(L, -1)) {
		push_path(c, key, 0);
		if (kind == DOMAIN_INT)
			rc = lwp_to_int_word(c, lua_gettop(L), out, 0);
		else if (kind == DOMAIN_ADDRESS)
			rc = lwp_to_address(c, lua_gettop(L), out);
		else
			rc = lwp_to_fixed_bytes(c, lua_gettop(L), out, 32);
		pop_path(c);
		*set = out;
	}
	lua_pop(L, 1);
	return rc;
}

/*
 * Domain table at idx into d (chain id word and address in w / addr / salt).
 * Unknown keys raise; bad values return the conv error code.
 */
static int check_domain(struct lwp_conv *c, int idx, struct wp_eip712_domain *d,
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
	rc = domain_word(c, idx, "chainId", DOMAIN_INT, chain, &d->chain_id);
	if (!rc)
		rc = domain_word(c, idx, "verifyingContract", DOMAIN_ADDRESS, addr,
				 &d->verifying_contract);
	if (!rc)
		rc = domain_word(c, idx, "salt", DOMAIN_BYTES32, salt, &d->salt);
	if (rc)
		return rc;
	if (!d->name && !d->version && !d->chain_id && !d->verifying_contract && !d->salt)
		luaL_argerror(L, idx, "the domain has none of name, version, chainId, "
			      "verifyingContract, salt");
	return WP_OK;
}

/* Domain separator from a domain table or a 32-byte separator string. */
static int domain_sep(struct lwp_conv *c, int idx, uint8_t out[32])
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
	struct lwp_conv c;
	uint8_t h[32];

	lwp_conv_init(&c, L, NULL, 0);
	luaL_checktype(L, 1, LUA_TTABLE);
	if (domain_sep(&c, 1, h))
		return lwp_conv_result(L, &c);
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

static int value712(struct lwp_conv *c, const struct wp_eip712_types *t,
		    const struct wp_eip712_ftype *ft, unsigned level, int idx,
		    struct wp_abi_value *out);

/* A struct value (Lua table keyed by field names) into out. */
static int struct712(struct lwp_conv *c, const struct wp_eip712_types *t, int sidx, int idx,
		     struct wp_abi_value *out)
{
	lua_State *L = c->L;
	size_t n = wp_eip712_nfields(t, sidx);
	struct wp_abi_value *items;
	int rc;

	if (c->depth > WP_EIP712_MAX_DEPTH)
		return lwp_cfail(c, WP_ERANGE, "nested too deeply");
	if (!lua_istable(L, idx))
		return lwp_cfail(c, WP_EINVAL, "expected a struct (table), got %s", luaL_typename(L, idx));
	items = n ? lwp_arena_alloc(L, c->a, n * sizeof(*items)) : NULL;
	luaL_checkstack(L, 4, "eip712: nesting");
	for (size_t f = 0; f < n; f++) {
		const struct wp_eip712_ftype *ft = wp_eip712_field(t, sidx, f);

		lua_getfield(L, idx, ft->name);
		push_path(c, ft->name, 0);
		if (lua_isnil(L, -1))
			rc = lwp_cfail(c, WP_EINVAL, "missing value");
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

static int value712(struct lwp_conv *c, const struct wp_eip712_types *t,
		    const struct wp_eip712_ftype *ft, unsigned level, int idx,
		    struct wp_abi_value *out)
{
	lua_State *L = c->L;
	size_t len, n = 0;
	const char *s;
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->depth > WP_EIP712_MAX_DEPTH)
		return lwp_cfail(c, WP_ERANGE, "nested too deeply");
	if (level > 0) {
		struct wp_abi_value *items;
		uint32_t dim = ft->dims[level - 1];

		if ((rc = lwp_array_len(c, idx, &n)))
			return rc;
		if (dim && n != dim)
			return lwp_cfail(c, WP_ERANGE, "expected %u elements, got %zu", (unsigned)dim, n);
		items = n ? lwp_arena_alloc(L, c->a, n * sizeof(*items)) : NULL;
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
			return lwp_cfail(c, WP_EINVAL, "expected a string, got %s", luaL_typename(L, idx));
		out->data = (const uint8_t *)lua_tolstring(L, idx, &len);
		out->len = len;
		return WP_OK;
	case WP_ABI_BYTES: {
		uint8_t *buf;

		/* JSON carries bytes as 0x hex (eth_signTypedData_v4) */
		if (lua_type(L, idx) != LUA_TSTRING)
			return lwp_cfail(c, WP_EINVAL, "expected 0x hex bytes, got %s", luaL_typename(L, idx));
		s = lua_tolstring(L, idx, &len);
		if (len < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
			return lwp_cfail(c, WP_EINVAL, "bytes must be 0x hex");
		buf = lwp_arena_alloc(L, c->a, len / 2 + 1);
		if (wp_hex_decode(buf, len / 2 + 1, &n, s, len, NULL))
			return lwp_cfail(c, WP_EINVAL, "bytes must be 0x hex (even number of digits)");
		out->data = buf;
		out->len = n;
		return WP_OK;
	}
	default: {
		uint8_t *w = lwp_arena_alloc(L, c->a, 32);

		out->data = w;
		out->len = 32;
		return lwp_to_word(c, idx, ft->kind, ft->size, w);
	}
	}
}

static int hash_struct_arg(struct lwp_conv *c, const struct wp_eip712_types *t, int sidx,
			   int idx, uint8_t out[32])
{
	struct wp_abi_value v;
	int rc;

	if (struct712(c, t, sidx, idx, &v))
		return c->code;
	rc = wp_eip712_hash_struct(out, t, sidx, &v);
	if (rc)
		return lwp_cfail(c, rc, "does not match its type");
	return WP_OK;
}

/* eip712.hash_struct(types, primaryType, message) -> 32 bytes | nil, err */
static int l_712_hash_struct(lua_State *L)
{
	const struct wp_eip712_types *t;
	struct lwp_conv c;
	uint8_t h[32];
	int sidx;

	lua_settop(L, 3);
	t = check_types712(L, 1);
	sidx = primary_index(L, t, 2);

	lwp_conv_init(&c, L, "message", 1);
	if (hash_struct_arg(&c, t, sidx, 3, h))
		return lwp_conv_result(L, &c);
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
	struct lwp_conv c;
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
	lwp_conv_init(&c, L, NULL, 1);
	didx = wp_eip712_struct_index(t, "EIP712Domain", 12);
	if (didx >= 0) {
		c.root = "domain";
		if (hash_struct_arg(&c, t, didx, 3, ds))
			return lwp_conv_result(L, &c);
	} else if (domain_sep(&c, 3, ds)) {
		return lwp_conv_result(L, &c);
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
			return lwp_conv_result(L, &c);
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
	struct lwp_conv c;
	uint8_t ds[32], from[20], to[20], ints[3][32], nonce[32], sh[32], digest[32];
	int rc;

	lwp_conv_init(&c, L, NULL, 0);
	if (lua_type(L, 1) != LUA_TSTRING)
		luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (domain_sep(&c, 1, ds))
		return lwp_conv_result(L, &c);
	c.root = "message";
	lua_settop(L, 2);
	lua_getfield(L, 2, "from");         /* 3 */
	lua_getfield(L, 2, "to");           /* 4 */
	lua_getfield(L, 2, "value");        /* 5 */
	lua_getfield(L, 2, "validAfter");   /* 6 */
	lua_getfield(L, 2, "validBefore");  /* 7 */
	lua_getfield(L, 2, "nonce");        /* 8 */
	push_path(&c, "from", 0);
	rc = lwp_to_address(&c, 3, from);
	pop_path(&c);
	if (!rc) {
		push_path(&c, "to", 0);
		rc = lwp_to_address(&c, 4, to);
		pop_path(&c);
	}
	for (int i = 0; !rc && i < 3; i++) {
		push_path(&c, keys[i], 0);
		rc = lwp_to_int_word(&c, 5 + i, ints[i], 0);
		pop_path(&c);
	}
	if (!rc) {
		push_path(&c, "nonce", 0);
		rc = lwp_to_fixed_bytes(&c, 8, nonce, 32);
		pop_path(&c);
	}
	if (rc)
		return lwp_conv_result(L, &c);
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

void lwp_open_eip712(lua_State *L)
{
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

	luaL_newmetatable(L, TYPES712_MT);
	lua_pushcfunction(L, types712_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lwp_subtable(L, "eip712", eip712);
}
