/* SPDX-License-Identifier: MIT */
/*
 * wp.secp256k1.{pubkey, sign, recover} and wp.eth.{address, checksum,
 * is_address}. Both sub-tables are registered here: Ethereum addresses are
 * the only consumer of secp256k1 keys, so there is no separate eth opener.
 */
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/eth.h"
#include "workproof/secp256k1.h"

/* pubkey(secret32) -> pub65 | nil, err */
static int l_pubkey(lua_State *L)
{
	const unsigned char *secret = lwp_checkbytes(L, 1, WP_SECP256K1_SECRET_LEN);
	uint8_t pub[WP_SECP256K1_PUB_LEN];
	int rc = wp_secp256k1_pubkey(pub, secret);

	if (rc == WP_EINVAL)
		return lwp_fail(L, "EINVAL", "secret key is zero or not below the curve order");
	if (rc)
		return lwp_fail_err(L, rc, "secp256k1 is unavailable");
	lua_pushlstring(L, (const char *)pub, sizeof(pub));
	return 1;
}

/* sign(secret32, hash32) -> sig65 (r||s||v, v in {0,1}) | nil, err */
static int l_sign(lua_State *L)
{
	const unsigned char *secret = lwp_checkbytes(L, 1, WP_SECP256K1_SECRET_LEN);
	const unsigned char *hash = lwp_checkbytes(L, 2, WP_SECP256K1_HASH_LEN);
	uint8_t sig[WP_SECP256K1_SIG_LEN];
	int rc = wp_secp256k1_sign(sig, hash, secret);

	switch (rc) {
	case WP_OK:
		lua_pushlstring(L, (const char *)sig, sizeof(sig));
		return 1;
	case WP_EINVAL:
		return lwp_fail(L, "EINVAL", "secret key is zero or not below the curve order");
	case WP_ECRYPTO:
		return lwp_fail(L, "ECRYPTO", "signature needs recovery id 2 or 3");
	default:
		return lwp_fail_err(L, rc, "secp256k1 is unavailable");
	}
}

/*
 * recover(hash32, sig65 [, strict=true]) -> pub65 | nil, err. The hash is
 * computed by the caller (wrong length raises); the signature is untrusted
 * input (wrong length or bad values return nil, err).
 */
static int l_recover(lua_State *L)
{
	const unsigned char *hash = lwp_checkbytes(L, 1, WP_SECP256K1_HASH_LEN);
	size_t siglen;
	const char *sig = luaL_checklstring(L, 2, &siglen);
	unsigned flags = WP_SECP256K1_STRICT;
	uint8_t pub[WP_SECP256K1_PUB_LEN];
	int rc;

	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TBOOLEAN);
		if (!lua_toboolean(L, 3))
			flags = 0;
	}
	if (siglen != WP_SECP256K1_SIG_LEN)
		return lwp_fail(L, "EINVAL", "signature must be 65 bytes (r||s||v), got %zu",
				siglen);
	rc = wp_secp256k1_recover(pub, hash, (const uint8_t *)sig, flags);
	switch (rc) {
	case WP_OK:
		lua_pushlstring(L, (const char *)pub, sizeof(pub));
		return 1;
	case WP_EINVAL:
		return lwp_fail(L, "EINVAL", "recovery id v must be 0, 1, 27 or 28 (got %u)",
				(unsigned)(unsigned char)sig[64]);
	case WP_ERANGE:
		return lwp_fail(L, "ERANGE", "r or s is zero or not below the curve order");
	case WP_EPROTO:
		return lwp_fail(L, "EPROTO", "s is above n/2 (malleable high-s signature)");
	case WP_ECRYPTO:
		return lwp_fail(L, "ECRYPTO", "no public key recovers from this signature");
	default:
		return lwp_fail_err(L, rc, "secp256k1 is unavailable");
	}
}

/* eth.address(pub65) -> "0x" EIP-55 | nil, err */
static int l_eth_address(lua_State *L)
{
	const unsigned char *pub = lwp_checkbytes(L, 1, WP_SECP256K1_PUB_LEN);
	uint8_t addr[WP_ETH_ADDR_LEN];
	char out[WP_ETH_ADDR_HEX_LEN + 1];

	if (wp_eth_address(addr, pub))
		return lwp_fail(L, "EINVAL", "public key must be uncompressed (0x04 prefix)");
	wp_eth_checksum(out, addr);
	lua_pushlstring(L, out, WP_ETH_ADDR_HEX_LEN);
	return 1;
}

static int parse_fail(lua_State *L, int rc)
{
	if (rc == WP_EPROTO)
		return lwp_fail(L, "EPROTO", "mixed-case address fails its EIP-55 checksum");
	return lwp_fail(L, "EINVAL", "not an address (20 raw bytes or [0x]+40 hex digits)");
}

/* eth.checksum(addr) -> "0x" EIP-55 | nil, err; addr is 20 raw bytes or text */
static int l_eth_checksum(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint8_t addr[WP_ETH_ADDR_LEN];
	char out[WP_ETH_ADDR_HEX_LEN + 1];
	int rc;

	if (len == WP_ETH_ADDR_LEN) {
		memcpy(addr, s, WP_ETH_ADDR_LEN);
	} else {
		rc = wp_eth_parse_address(addr, s, len);
		if (rc)
			return parse_fail(L, rc);
	}
	wp_eth_checksum(out, addr);
	lua_pushlstring(L, out, WP_ETH_ADDR_HEX_LEN);
	return 1;
}

/* eth.is_address(s) -> boolean */
static int l_eth_is_address(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint8_t addr[WP_ETH_ADDR_LEN];

	lua_pushboolean(L, wp_eth_parse_address(addr, s, len) == WP_OK);
	return 1;
}

void lwp_open_secp256k1(lua_State *L)
{
	static const luaL_Reg secp[] = {
		{ "pubkey", l_pubkey },
		{ "sign", l_sign },
		{ "recover", l_recover },
		{ NULL, NULL },
	};
	static const luaL_Reg eth[] = {
		{ "address", l_eth_address },
		{ "checksum", l_eth_checksum },
		{ "is_address", l_eth_is_address },
		{ NULL, NULL },
	};

	lwp_subtable(L, "secp256k1", secp);
	lwp_subtable(L, "eth", eth);
}
