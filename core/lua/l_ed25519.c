/* SPDX-License-Identifier: MIT */
/* wp.ed25519.keypair, wp.ed25519.sign, wp.ed25519.verify */
#include <sodium.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/ed25519.h"

/* keypair([seed32]) -> pub32, secret64 */
static int l_keypair(lua_State *L)
{
	const unsigned char *seed = NULL;
	uint8_t pub[WP_ED25519_PUB_LEN], secret[WP_ED25519_SECRET_LEN];
	int rc;

	if (!lua_isnoneornil(L, 1))
		seed = lwp_checkbytes(L, 1, WP_ED25519_SEED_LEN);
	rc = wp_ed25519_keypair(pub, secret, seed);
	if (rc)
		return lwp_fail_err(L, rc, "cannot make an Ed25519 key pair");
	lua_pushlstring(L, (const char *)pub, sizeof(pub));
	lua_pushlstring(L, (const char *)secret, sizeof(secret));
	/* the Lua string is now the only copy the caller asked for */
	sodium_memzero(secret, sizeof(secret));
	return 2;
}

/* sign(secret64, msg) -> sig64 */
static int l_sign(lua_State *L)
{
	const unsigned char *secret = lwp_checkbytes(L, 1, WP_ED25519_SECRET_LEN);
	size_t len;
	const char *msg = luaL_checklstring(L, 2, &len);
	uint8_t sig[WP_ED25519_SIG_LEN];
	int rc;

	rc = wp_ed25519_sign(sig, msg, len, secret);
	if (rc)
		return lwp_fail_err(L, rc, "Ed25519 signing failed");
	lua_pushlstring(L, (const char *)sig, sizeof(sig));
	return 1;
}

/*
 * verify(pub32, msg, sig64) -> boolean. The key and the signature usually
 * come from the other side of a connection: a wrong length is an answer
 * ("not valid"), not a programming error, so only a non-string raises.
 */
static int l_verify(lua_State *L)
{
	size_t publen, len, siglen;
	const char *pub = luaL_checklstring(L, 1, &publen);
	const char *msg = luaL_checklstring(L, 2, &len);
	const char *sig = luaL_checklstring(L, 3, &siglen);

	lua_pushboolean(L, publen == WP_ED25519_PUB_LEN &&
			   siglen == WP_ED25519_SIG_LEN &&
			   wp_ed25519_verify((const uint8_t *)sig, msg, len,
					     (const uint8_t *)pub));
	return 1;
}

void lwp_open_ed25519(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "keypair", l_keypair },
		{ "sign", l_sign },
		{ "verify", l_verify },
		{ NULL, NULL },
	};

	lwp_subtable(L, "ed25519", fns);
}
