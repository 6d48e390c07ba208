/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "workproof/common.h"
#include "workproof/hash.h"

/*
 * OpenSSL 3 fetches the implementation on every EVP_DigestInit_ex(EVP_sha256())
 * (~300 ns of a ~100 ns hash). Fetch once, then re-init contexts with
 * EVP_DigestInit_ex2(ctx, md, NULL), which reuses the fetched provider.
 */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;

static void die(const char *what)
{
	fprintf(stderr, "workproof: fatal: %s\n", what);
	abort();
}

static void free_thread_ctx(void *p)
{
	EVP_MD_CTX_free(p);
}

static void sha256_setup(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!sha256_md)
		die("OpenSSL provides no SHA256");
	if (pthread_key_create(&ctx_key, free_thread_ctx))
		die("pthread_key_create");
}

static const EVP_MD *md(void)
{
	pthread_once(&sha256_once, sha256_setup);
	return sha256_md;
}

/* This thread's reusable context (freed by the key destructor at thread exit). */
static EVP_MD_CTX *thread_ctx(void)
{
	EVP_MD_CTX *c;

	md();
	c = pthread_getspecific(ctx_key);
	if (!c) {
		c = EVP_MD_CTX_new();
		if (!c || pthread_setspecific(ctx_key, c))
			die("cannot allocate a SHA-256 context");
	}
	return c;
}

/* The main thread never runs key destructors: free its context at exit so
 * leak checkers see a clean process. */
__attribute__((destructor)) static void sha256_teardown(void)
{
	if (sha256_md) {
		EVP_MD_CTX_free(pthread_getspecific(ctx_key));
		pthread_setspecific(ctx_key, NULL);
		EVP_MD_free(sha256_md);
		sha256_md = NULL;
	}
}

void wp_sha256_v(const struct wp_iov *parts, size_t n, uint8_t out[WP_SHA256_LEN])
{
	EVP_MD_CTX *c = thread_ctx();
	unsigned int outlen;

	if (!EVP_DigestInit_ex2(c, sha256_md, NULL))
		die("EVP_DigestInit_ex2(SHA256)");
	for (size_t i = 0; i < n; i++)
		if (parts[i].len)
			EVP_DigestUpdate(c, parts[i].base, parts[i].len);
	EVP_DigestFinal_ex(c, out, &outlen);
}

void wp_sha256(const void *data, size_t len, uint8_t out[WP_SHA256_LEN])
{
	struct wp_iov part = { data, len };

	wp_sha256_v(&part, 1, out);
}

int wp_sha256_init(struct wp_sha256_ctx *c)
{
	EVP_MD_CTX *e = EVP_MD_CTX_new();

	c->evp = NULL;
	if (!e)
		return WP_ENOMEM;
	if (!EVP_DigestInit_ex2(e, md(), NULL)) {
		EVP_MD_CTX_free(e);
		return WP_ENOMEM;
	}
	c->evp = e;
	return WP_OK;
}

void wp_sha256_update(struct wp_sha256_ctx *c, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(c->evp, data, len);
}

void wp_sha256_final(struct wp_sha256_ctx *c, uint8_t out[WP_SHA256_LEN])
{
	unsigned int outlen;

	EVP_DigestFinal_ex(c->evp, out, &outlen);
	wp_sha256_free(c);
}

void wp_sha256_free(struct wp_sha256_ctx *c)
{
	EVP_MD_CTX_free(c->evp);
	c->evp = NULL;
}

/*
 * Keccak-256: nettle's SHA3-256 absorbs with the same rate (136 bytes) and
 * the same permutation; only the final padding differs (SHA3 appends 0x06,
 * the original Keccak submission Ethereum adopted appends 0x01). So absorb
 * with sha3_256_update and pad by hand with the public sha3_permute().
 */
void wp_keccak256_init(struct wp_keccak_ctx *c)
{
	sha3_256_init(&c->sponge);
}

void wp_keccak256_update(struct wp_keccak_ctx *c, const void *data, size_t len)
{
	sha3_256_update(&c->sponge, len, data);
}

void wp_keccak256_final(struct wp_keccak_ctx *c, uint8_t out[WP_KECCAK256_LEN])
{
	uint8_t *block = c->sponge.block;
	uint64_t *a = c->sponge.state.a;

	memset(block + c->sponge.index, 0, WP_KECCAK256_RATE - c->sponge.index);
	block[c->sponge.index] = 0x01;
	block[WP_KECCAK256_RATE - 1] |= 0x80;
	for (unsigned i = 0; i < WP_KECCAK256_RATE / 8; i++) {
		uint64_t lane = 0;

		for (unsigned b = 0; b < 8; b++)   /* lanes are little-endian */
			lane |= (uint64_t)block[8 * i + b] << (8 * b);
		a[i] ^= lane;
	}
	sha3_permute(&c->sponge.state);
	for (unsigned i = 0; i < WP_KECCAK256_LEN; i++)
		out[i] = (uint8_t)(a[i / 8] >> (8 * (i % 8)));
	memset(c, 0, sizeof(*c));
}

void wp_keccak256(const void *data, size_t len, uint8_t out[WP_KECCAK256_LEN])
{
	struct wp_keccak_ctx c;

	wp_keccak256_init(&c);
	wp_keccak256_update(&c, data, len);
	wp_keccak256_final(&c, out);
}

int wp_blake2b(uint8_t *out, size_t outlen, const void *data, size_t len,
	       const void *key, size_t keylen)
{
	if (outlen < crypto_generichash_BYTES_MIN || outlen > crypto_generichash_BYTES_MAX)
		return WP_ERANGE;
	if (keylen && (keylen < crypto_generichash_KEYBYTES_MIN ||
		       keylen > crypto_generichash_KEYBYTES_MAX))
		return WP_ERANGE;
	crypto_generichash(out, outlen, data, len, keylen ? key : NULL, keylen);
	return WP_OK;
}
