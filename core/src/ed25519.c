/* SPDX-License-Identifier: MIT */
#include <pthread.h>

#include <sodium.h>

#include "workproof/common.h"
#include "workproof/ed25519.h"

/*
 * sodium_init() is itself safe to call from several threads, but it takes a
 * global lock every time; pthread_once makes the steady-state check a single
 * load and keeps its result so a failure is reported on every call instead
 * of being retried half-way.
 */
static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_state = WP_ECRYPTO;

static void sodium_setup(void)
{
	/* 0: initialised now, 1: someone else (another area) did it first */
	sodium_state = sodium_init() >= 0 ? WP_OK : WP_ECRYPTO;
}

int wp_ed25519_init(void)
{
	if (pthread_once(&sodium_once, sodium_setup))
		return WP_ECRYPTO;
	return sodium_state;
}

int wp_ed25519_keypair(uint8_t pub[WP_ED25519_PUB_LEN],
		       uint8_t secret[WP_ED25519_SECRET_LEN],
		       const uint8_t *seed)
{
	int rc = wp_ed25519_init();

	if (rc)
		return rc;
	if (seed)
		rc = crypto_sign_seed_keypair(pub, secret, seed);
	else
		rc = crypto_sign_keypair(pub, secret);
	return rc ? WP_ECRYPTO : WP_OK;
}

int wp_ed25519_sign(uint8_t sig[WP_ED25519_SIG_LEN], const void *msg,
		    size_t len, const uint8_t secret[WP_ED25519_SECRET_LEN])
{
	int rc = wp_ed25519_init();

	if (rc)
		return rc;
	if (crypto_sign_detached(sig, NULL, msg, len, secret))
		return WP_ECRYPTO;
	return WP_OK;
}

int wp_ed25519_verify(const uint8_t sig[WP_ED25519_SIG_LEN], const void *msg,
		      size_t len, const uint8_t pub[WP_ED25519_PUB_LEN])
{
	if (wp_ed25519_init())
		return 0;
	return crypto_sign_verify_detached(sig, msg, len, pub) == 0;
}
