/* SPDX-License-Identifier: MIT */
/*
 * wp.tx: EIP-1559, EIP-2930 and legacy transactions - signing hash,
 * signing with the core's secp256k1, decoding - over core/src/tx.c. Value
 * conventions and the error convention: l_evm.h, docs/lua-api.md ("wp.tx").
 */
#include <string.h>

#include "l_evm.h"
#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/eth.h"
#include "workproof/hash.h"
#include "workproof/tx.h"

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

static int tx_int_field(struct lwp_conv *c, int idx, const char *name, uint8_t w[32],
			struct wp_tx_int *out)
{
	lua_State *L = c->L;
	int rc = WP_OK;

	lua_getfield(L, idx, name);
	if (lua_isnil(L, -1)) {
		memset(w, 0, 32);
	} else {
		push_path(c, name, 0);
		rc = lwp_to_int_word(c, lua_gettop(L), w, 0);
		pop_path(c);
	}
	lua_pop(L, 1);
	out->be = w;
	out->len = 32;
	return rc;
}

static int tx_access_list(struct lwp_conv *c, int idx, struct wp_tx *tx)
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
	if ((rc = lwp_array_len(c, top, &n)))
		goto out;
	al = n ? lwp_arena_alloc(L, c->a, n * sizeof(*al)) : NULL;
	for (size_t i = 0; i < n; i++) {
		uint8_t *addr, *keys;

		push_path(c, NULL, i + 1);
		lua_rawgeti(L, top, (int)(i + 1));
		if (!lua_istable(L, -1)) {
			rc = lwp_cfail(c, WP_EINVAL, "expected {address=, storageKeys=}");
			goto out_entry;
		}
		addr = lwp_arena_alloc(L, c->a, 20);
		lua_getfield(L, -1, "address");
		push_path(c, "address", 0);
		rc = lwp_to_address(c, lua_gettop(L), addr);
		pop_path(c);
		lua_pop(L, 1);
		if (rc)
			goto out_entry;
		lua_getfield(L, -1, "storageKeys");
		push_path(c, "storageKeys", 0);
		nk = 0;
		if (!lua_isnil(L, -1))
			rc = lwp_array_len(c, lua_gettop(L), &nk);
		keys = nk ? lwp_arena_alloc(L, c->a, 32 * nk) : NULL;
		for (size_t k = 0; !rc && k < nk; k++) {
			lua_rawgeti(L, -1, (int)(k + 1));
			push_path(c, NULL, k + 1);
			rc = lwp_to_fixed_bytes(c, lua_gettop(L), keys + 32 * k, 32);
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
static int check_tx(struct lwp_conv *c, int idx, struct wp_tx *tx, struct txints *ints, int forced)
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
		rc = lwp_to_address(c, lua_gettop(L), ints->to);
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

/*
 * The tx at 1 (its type forced unless forced is -1), signed with the
 * secret at 2: pushes raw, hash32; not signing, its signing payload
 * hashed: pushes hash32, payload.
 */
static int tx_common(lua_State *L, int sign, int forced, const char *what)
{
	const unsigned char *secret = sign ? lwp_checkbytes(L, 2, 32) : NULL;
	struct lwp_conv c;
	struct wp_tx tx;
	struct txints ints;
	struct wp_buf b = WP_BUF_INIT;
	uint8_t h[32];
	int rc;

	lwp_conv_init(&c, L, "tx", 1);
	if (check_tx(&c, 1, &tx, &ints, forced))
		return lwp_conv_result(L, &c);
	rc = sign ? wp_tx_sign(&b, h, &tx, secret) : wp_tx_encode_unsigned(&b, &tx);
	if (rc) {
		wp_buf_free(&b);
		return tx_error(L, rc, what);
	}
	if (!sign)
		wp_keccak256(b.data, b.len, h);
	lua_pushlstring(L, (const char *)b.data, b.len);
	lua_pushlstring(L, (const char *)h, 32);
	if (!sign)
		lua_insert(L, -2);   /* the hash first */
	wp_buf_free(&b);
	return 2;
}

/* tx.signing_hash(tx) -> hash32, payload | nil, err;
 * tx.sign[_eip1559|_legacy](tx, secret32) -> raw, hash32 | nil, err */
static int l_tx_signing_hash(lua_State *L) { return tx_common(L, 0, -1, "tx.signing_hash"); }
static int l_tx_sign(lua_State *L) { return tx_common(L, 1, -1, "tx.sign"); }
static int l_tx_sign_eip1559(lua_State *L) { return tx_common(L, 1, WP_TX_EIP1559, "tx.sign_eip1559"); }
static int l_tx_sign_legacy(lua_State *L) { return tx_common(L, 1, WP_TX_LEGACY, "tx.sign_legacy"); }

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

void lwp_open_tx(lua_State *L)
{
	static const luaL_Reg tx[] = {
		{ "signing_hash", l_tx_signing_hash },
		{ "sign", l_tx_sign },
		{ "sign_eip1559", l_tx_sign_eip1559 },
		{ "sign_legacy", l_tx_sign_legacy },
		{ "decode", l_tx_decode },
		{ NULL, NULL },
	};

	lwp_subtable(L, "tx", tx);
}
