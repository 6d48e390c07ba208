/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "workproof/common.h"
#include "workproof/secp256k1.h"

/* The group order n and n/2 (floor), big-endian: range and low-s checks are
 * done on the encoded bytes so that each failure gets its own error code
 * (libsecp256k1 folds them all into "0"). */
static const uint8_t order_n[32] = {
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
	0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
};
static const uint8_t half_n[32] = {
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d,
	0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
};

/*
 * One context for the process. libsecp256k1 functions take it const and are
 * safe to call concurrently; only creation and randomisation mutate it, and
 * both happen inside pthread_once before the pointer is published. It is
 * never destroyed: threads of the libuv pool may still sign while the
 * process exits, and the pointer keeps it reachable for leak checkers.
 */
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static secp256k1_context *ctx;

static int fill_random(uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void ctx_setup(void)
{
	secp256k1_context *c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	uint8_t seed[32];

	if (!c)
		return;
	/*
	 * Blinding is defence in depth against timing/power side channels,
	 * not a correctness requirement: without randomness (no getrandom in
	 * an odd sandbox) the context still signs correctly, so keep it.
	 */
	if (fill_random(seed, sizeof(seed)) == 0 &&
	    !secp256k1_context_randomize(c, seed)) {
		/* left unblinded, still correct (see above) */
	}
	memset(seed, 0, sizeof(seed));
	__atomic_store_n(&ctx, c, __ATOMIC_RELEASE);
}

static const secp256k1_context *get_ctx(void)
{
	if (pthread_once(&ctx_once, ctx_setup))
		return NULL;
	return __atomic_load_n(&ctx, __ATOMIC_ACQUIRE);
}

int wp_secp256k1_init(void)
{
	return get_ctx() ? WP_OK : WP_ENOMEM;
}

static int is_zero32(const uint8_t *x)
{
	uint8_t d = 0;

	for (int i = 0; i < 32; i++)
		d |= x[i];
	return d == 0;
}

int wp_secp256k1_seckey_check(const uint8_t secret[WP_SECP256K1_SECRET_LEN])
{
	const secp256k1_context *c = get_ctx();

	if (!c)
		return WP_ENOMEM;
	return secp256k1_ec_seckey_verify(c, secret) ? WP_OK : WP_EINVAL;
}

static void serialize_pub(const secp256k1_context *c,
			  uint8_t out[WP_SECP256K1_PUB_LEN],
			  const secp256k1_pubkey *pk)
{
	size_t outlen = WP_SECP256K1_PUB_LEN;

	/* cannot fail with a 65-byte buffer and a valid key object */
	(void)secp256k1_ec_pubkey_serialize(c, out, &outlen, pk,
					    SECP256K1_EC_UNCOMPRESSED);
}

int wp_secp256k1_pubkey(uint8_t pub[WP_SECP256K1_PUB_LEN],
			const uint8_t secret[WP_SECP256K1_SECRET_LEN])
{
	const secp256k1_context *c = get_ctx();
	secp256k1_pubkey pk;

	if (!c)
		return WP_ENOMEM;
	if (!secp256k1_ec_pubkey_create(c, &pk, secret))
		return WP_EINVAL;
	serialize_pub(c, pub, &pk);
	return WP_OK;
}

int wp_secp256k1_sign(uint8_t sig[WP_SECP256K1_SIG_LEN],
		      const uint8_t hash[WP_SECP256K1_HASH_LEN],
		      const uint8_t secret[WP_SECP256K1_SECRET_LEN])
{
	const secp256k1_context *c = get_ctx();
	secp256k1_ecdsa_recoverable_signature rs;
	int recid = 0;

	if (!c)
		return WP_ENOMEM;
	/* NULL nonce function = RFC 6979; fails only for an invalid key */
	if (!secp256k1_ecdsa_sign_recoverable(c, &rs, hash, secret, NULL, NULL))
		return WP_EINVAL;
	(void)secp256k1_ecdsa_recoverable_signature_serialize_compact(c, sig,
								      &recid, &rs);
	if (recid < 0 || recid > 1)
		return WP_ECRYPTO;
	sig[64] = (uint8_t)recid;
	return WP_OK;
}

int wp_secp256k1_recover(uint8_t pub[WP_SECP256K1_PUB_LEN],
			 const uint8_t hash[WP_SECP256K1_HASH_LEN],
			 const uint8_t sig[WP_SECP256K1_SIG_LEN], unsigned flags)
{
	const secp256k1_context *c = get_ctx();
	secp256k1_ecdsa_recoverable_signature rs;
	secp256k1_pubkey pk;
	const uint8_t *r = sig, *s = sig + 32;
	int v = sig[64];

	if (!c)
		return WP_ENOMEM;
	if (v >= 27)
		v -= 27;
	if (v != 0 && v != 1)
		return WP_EINVAL;
	/* public data: no need for constant-time comparisons */
	if (is_zero32(r) || is_zero32(s) || memcmp(r, order_n, 32) >= 0 ||
	    memcmp(s, order_n, 32) >= 0)
		return WP_ERANGE;
	if ((flags & WP_SECP256K1_STRICT) && memcmp(s, half_n, 32) > 0)
		return WP_EPROTO;
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(c, &rs, sig, v))
		return WP_ERANGE;
	if (!secp256k1_ecdsa_recover(c, &pk, &rs, hash))
		return WP_ECRYPTO;
	serialize_pub(c, pub, &pk);
	return WP_OK;
}
