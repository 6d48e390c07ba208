/* SPDX-License-Identifier: MIT */
/*
 * Mutually authenticated TLS 1.3 for the uptime agents (docs/transport.md):
 * identity certificates for Lua, and what the server (l_http.c) and the
 * client (l_rpc.c) share: the peer check both run inside their OpenSSL
 * verify callbacks, the loading of a certificate and its key, the server's
 * SSL_CTX.
 *
 *   host.tls_identity(secret, lifetime [, test_opts])
 *     -> { cert = pem, key = pem, not_before =, not_after =, identity = hex }
 *     secret: the 32-byte Ed25519 seed or its 64 hex; a fresh P-256 TLS key
 *     every call; valid from now - 60 s to now + lifetime (lifetime > -60:
 *     a negative one makes an expired certificate, for tests).
 *     test_opts = { not_before =, not_after = (Unix seconds),
 *                   claim_key = 32 bytes or 64 hex: the extension names
 *                   this key, its signature is still by secret }
 *   host.tls_peer_key(cert_pem) -> hex identity | nil, "ETLS: <reason>: ...", "ETLS"
 *     everything the handshake checks except the pin and the clock
 *
 * The peer check runs as SSL_CTX_set_cert_verify_callback(): it replaces
 * OpenSSL's chain building entirely, so no preverify verdict ("self
 * signed", "expired") has to be second-guessed; every decision is made
 * here, in the order of docs/transport.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "host.h"
#include "lwp.h"
#include "workproof/common.h"
#include "workproof/encoding.h"
#include "workproof/tlsid.h"

#define MAX_LIFETIME (100.0 * 366 * 86400)

int wp_tls_hexkey(const char *s, size_t len, uint8_t out[32])
{
	size_t n = 0;

	if (len != 64 || wp_hex_decode(out, 32, &n, s, len, NULL) || n != 32)
		return -1;
	return 0;
}

void lwp_tls_checkkey(lua_State *L, int idx, uint8_t out[32])
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	if (wp_tls_hexkey(s, len, out))
		luaL_argerror(L, idx, "an identity key is 64 hex digits (32 bytes)");
}

void lwp_tls_pushkey(lua_State *L, const uint8_t key[32])
{
	char hex[64];

	wp_hex_encode(hex, key, 32);
	lua_pushlstring(L, hex, sizeof(hex));
}

static X509 *read_cert(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

int wp_tls_load_pair(const char *cert, size_t clen, const char *key, size_t klen,
		     X509 **xout, EVP_PKEY **kout, char *err, size_t errlen)
{
	uint8_t id[32];
	char why[160];
	enum wp_tls_reason r;
	BIO *bio;
	X509 *x = NULL;
	EVP_PKEY *k = NULL;

	if (clen > INT32_MAX || klen > INT32_MAX || !(x = read_cert(cert, clen))) {
		snprintf(err, errlen, "bad_cert: not a PEM certificate");
		goto fail;
	}
	bio = BIO_new_mem_buf(key, (int)klen);
	k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (!k) {
		snprintf(err, errlen, "bad_key: not a PEM private key");
		goto fail;
	}
	if (X509_check_private_key(x, k) != 1) {
		snprintf(err, errlen, "bad_key: the key does not belong to the certificate");
		goto fail;
	}
	/* our own certificate must be one a peer accepts, but for the clock:
	 * an expired one still loads (a peer refuses it, and tests use that) */
	r = wp_tls_check_cert(x, 1, NULL, id, why, sizeof(why));
	if (r != WP_TLS_OK) {
		snprintf(err, errlen, "%s: own certificate: %s", wp_tls_reason_name(r), why);
		goto fail;
	}
	ERR_clear_error();
	*xout = x;
	*kout = k;
	return 0;
fail:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return -1;
}

/* the X509_V_ERR code behind each refusal: OpenSSL turns it into the alert
 * the peer reads (certificate_expired, unknown_ca, bad_certificate) */
static int verify_error(enum wp_tls_reason r)
{
	switch (r) {
	case WP_TLS_STALE_CERT: return X509_V_ERR_CERT_HAS_EXPIRED;
	case WP_TLS_UNKNOWN_KEY:
	case WP_TLS_WRONG_KEY: return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
	case WP_TLS_OTHER: return X509_V_ERR_APPLICATION_VERIFICATION;
	default: return X509_V_ERR_CERT_REJECTED;
	}
}

int wp_tls_verify_peer(X509_STORE_CTX *xs, wp_tls_pin_fn pinned, void *arg,
		       uint8_t key[32], char *detail, size_t len)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(xs);
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	/* the untrusted stack is the peer's whole chain, leaf first */
	int n = chain ? sk_X509_num(chain) : leaf != NULL;
	int64_t now = (int64_t)time(NULL);
	enum wp_tls_reason r;

	r = wp_tls_check_cert(leaf, n, &now, key, detail, len);
	if (r == WP_TLS_OK)
		r = (enum wp_tls_reason)pinned(key, arg, detail, len);
	X509_STORE_CTX_set_error(xs, r == WP_TLS_OK ? X509_V_OK : verify_error(r));
	return r;
}

SSL_CTX *wp_tls_server_ctx(const char *cert, size_t clen, const char *key, size_t klen,
			   int (*verify)(X509_STORE_CTX *, void *), void *arg,
			   char *err, size_t errlen)
{
	SSL_CTX *ctx;
	X509 *x;
	EVP_PKEY *k;

	if (wp_tls_load_pair(cert, clen, key, klen, &x, &k, err, errlen))
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_use_certificate(ctx, x) || !SSL_CTX_use_PrivateKey(ctx, k) ||
	    !SSL_CTX_check_private_key(ctx)) {
		snprintf(err, errlen, "other: cannot set up the TLS context");
		SSL_CTX_free(ctx);
		ctx = NULL;
		goto out;
	}
	/* no resumption: a resumed session skips the certificate check, and
	 * with it the current pin set; every connection proves its identity */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify, arg);
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

/* secret: 32 raw bytes or 64 hex -> seed; raises otherwise */
static void check_seed(lua_State *L, int idx, uint8_t seed[32], const char *what)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	if (len == 32)
		memcpy(seed, s, 32);
	else if (wp_tls_hexkey(s, len, seed))
		luaL_argerror(L, idx, what);
}

static int64_t opt_time(lua_State *L, int t, const char *k, int64_t def)
{
	lua_Number v;

	lua_getfield(L, t, k);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return def;
	}
	v = luaL_checknumber(L, -1);
	lua_pop(L, 1);
	luaL_argcheck(L, v > 0 && v < 253402300800.0, t, "times are Unix seconds (before 10000)");
	return (int64_t)v;
}

/* host.tls_identity(secret, lifetime [, test_opts]) */
static int l_tls_identity(lua_State *L)
{
	uint8_t seed[32], claim[32];
	lua_Number lifetime = luaL_checknumber(L, 2);
	int64_t now = (int64_t)time(NULL), nb, na;
	int has_claim = 0, rc;
	struct wp_tls_identity id;

	check_seed(L, 1, seed, "secret is a 32-byte Ed25519 seed or its 64 hex digits");
	luaL_argcheck(L, lifetime > -60 && lifetime <= MAX_LIFETIME, 2,
		      "lifetime out of range (-60 .. 100 years)");
	nb = now - 60;
	na = now + (int64_t)lifetime;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		nb = opt_time(L, 3, "not_before", nb);
		na = opt_time(L, 3, "not_after", na);
		lua_getfield(L, 3, "claim_key");
		if (!lua_isnil(L, -1)) {
			size_t len;
			const char *s = luaL_checklstring(L, -1, &len);

			if (len == 32)
				memcpy(claim, s, 32);
			else if (wp_tls_hexkey(s, len, claim))
				luaL_argerror(L, 3, "claim_key is 32 bytes or 64 hex digits");
			has_claim = 1;
		}
		lua_pop(L, 1);
	}
	luaL_argcheck(L, na > nb, 2, "the certificate would end before it starts");
	rc = wp_tls_identity_make(&id, seed, nb, na, has_claim ? claim : NULL);
	sodium_memzero(seed, sizeof(seed));
	if (rc)
		return lwp_fail_err(L, rc, "tls_identity: cannot make the certificate");
	lua_createtable(L, 0, 5);
	lua_pushlstring(L, id.cert_pem, id.cert_len);
	lua_setfield(L, -2, "cert");
	lua_pushlstring(L, id.key_pem, id.key_len);
	lua_setfield(L, -2, "key");
	lua_pushnumber(L, (lua_Number)id.not_before);
	lua_setfield(L, -2, "not_before");
	lua_pushnumber(L, (lua_Number)id.not_after);
	lua_setfield(L, -2, "not_after");
	lwp_tls_pushkey(L, id.identity);
	lua_setfield(L, -2, "identity");
	wp_tls_identity_free(&id);
	return 1;
}

/* host.tls_peer_key(cert_pem) -> hex | nil, "ETLS: <reason>: ...", "ETLS" */
static int l_tls_peer_key(lua_State *L)
{
	size_t len;
	const char *pem = luaL_checklstring(L, 1, &len);
	X509 *x = len <= INT32_MAX ? read_cert(pem, len) : NULL;
	uint8_t key[32];
	char why[160];
	enum wp_tls_reason r;

	ERR_clear_error();
	if (!x)
		return lwp_fail(L, "ETLS", "bad_cert: not a PEM certificate");
	r = wp_tls_check_cert(x, 1, NULL, key, why, sizeof(why));
	X509_free(x);
	ERR_clear_error();
	if (r != WP_TLS_OK)
		return lwp_fail(L, "ETLS", "%s: %s", wp_tls_reason_name(r), why);
	lwp_tls_pushkey(L, key);
	return 1;
}

void lwp_host_open_tls(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "tls_identity", l_tls_identity },
		{ "tls_peer_key", l_tls_peer_key },
		{ NULL, NULL },
	};

	lwp_setfuncs(L, fns);
}
