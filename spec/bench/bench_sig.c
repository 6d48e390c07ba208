/* SPDX-License-Identifier: MIT */
/*
 * bench_sig OP: the C anchors of spec/bench/sig_bench.lua. Calls libsodium
 * and libsecp256k1 directly (not through wpcore), so the Lua figures are
 * compared with the raw libraries. Prints the median ops/s over
 * BENCH_REPEATS (default 5) runs of about BENCH_MIN_TIME (0.3) seconds,
 * calibrated the way spec/bench/lib.lua's b.rate calibrates.
 *
 * OP: ed25519-verify | ed25519-sign | secp256k1-signrecover | secp256k1-recover
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <sodium.h>

#include "bench_rate.h"

#define MSG_LEN 64

static unsigned char ed_pk[32], ed_sk[64], ed_sig[64], msg[MSG_LEN];
static unsigned char k1_sk[32], k1_hash[32], k1_sig[64];
static int k1_recid;
static secp256k1_context *ctx;
static volatile unsigned sink;


static void ed25519_verify(long n)
{
	for (long i = 0; i < n; i++)
		sink += crypto_sign_verify_detached(ed_sig, msg, MSG_LEN, ed_pk) == 0;
}

static void ed25519_sign(long n)
{
	unsigned char sig[64];

	for (long i = 0; i < n; i++) {
		crypto_sign_detached(sig, NULL, msg, MSG_LEN, ed_sk);
		sink += sig[0];
	}
}

/* parse + recover + serialize: what wp.secp256k1.recover does per call */
static void k1_recover_one(const unsigned char sig64[64], int recid)
{
	secp256k1_ecdsa_recoverable_signature rs;
	secp256k1_pubkey pk;
	unsigned char pub[65];
	size_t publen = sizeof(pub);

	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &rs, sig64, recid) ||
	    !secp256k1_ecdsa_recover(ctx, &pk, &rs, k1_hash)) {
		fputs("bench_sig: recovery failed\n", stderr);
		exit(1);
	}
	secp256k1_ec_pubkey_serialize(ctx, pub, &publen, &pk, SECP256K1_EC_UNCOMPRESSED);
	sink += pub[1];
}

static void secp256k1_signrecover(long n)
{
	secp256k1_ecdsa_recoverable_signature rs;
	unsigned char sig[64];
	int recid;

	for (long i = 0; i < n; i++) {
		if (!secp256k1_ecdsa_sign_recoverable(ctx, &rs, k1_hash, k1_sk, NULL, NULL)) {
			fputs("bench_sig: signing failed\n", stderr);
			exit(1);
		}
		secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig, &recid, &rs);
		k1_recover_one(sig, recid);
	}
}

static void secp256k1_recover_only(long n)
{
	for (long i = 0; i < n; i++)
		k1_recover_one(k1_sig, k1_recid);
}



static void setup(void)
{
	secp256k1_ecdsa_recoverable_signature rs;
	unsigned char seed[32];

	if (sodium_init() < 0) {
		fputs("bench_sig: sodium_init failed\n", stderr);
		exit(1);
	}
	for (int i = 0; i < MSG_LEN; i++)
		msg[i] = (unsigned char)(i * 7 + 1);
	memset(seed, 0x42, sizeof(seed));
	crypto_sign_seed_keypair(ed_pk, ed_sk, seed);
	crypto_sign_detached(ed_sig, NULL, msg, MSG_LEN, ed_sk);

	ctx = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	randombytes_buf(seed, sizeof(seed));
	if (!ctx || !secp256k1_context_randomize(ctx, seed)) {
		fputs("bench_sig: no secp256k1 context\n", stderr);
		exit(1);
	}
	crypto_hash_sha256(k1_sk, (const unsigned char *)"bench key", 9);
	crypto_hash_sha256(k1_hash, msg, MSG_LEN);
	if (!secp256k1_ecdsa_sign_recoverable(ctx, &rs, k1_hash, k1_sk, NULL, NULL)) {
		fputs("bench_sig: signing failed\n", stderr);
		exit(1);
	}
	secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, k1_sig, &k1_recid, &rs);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(long);
	} ops[] = {
		{ "ed25519-verify", ed25519_verify },
		{ "ed25519-sign", ed25519_sign },
		{ "secp256k1-signrecover", secp256k1_signrecover },
		{ "secp256k1-recover", secp256k1_recover_only },
	};
	const char *env;
	int repeats = 5;
	double min_time = 0.3;

	if (argc != 2) {
		fputs("usage: bench_sig ed25519-verify|ed25519-sign|"
		      "secp256k1-signrecover|secp256k1-recover\n", stderr);
		return 2;
	}
	env = getenv("BENCH_REPEATS");
	if (env && atoi(env) > 0)
		repeats = atoi(env) > 64 ? 64 : atoi(env);
	env = getenv("BENCH_MIN_TIME");
	if (env && atof(env) > 0)
		min_time = atof(env);
	setup();
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(argv[1], ops[i].name) == 0) {
			printf("%.1f\n", bench_median_rate(ops[i].fn, repeats, min_time));
			secp256k1_context_destroy(ctx);
			return 0;
		}
	}
	fprintf(stderr, "bench_sig: unknown operation %s\n", argv[1]);
	secp256k1_context_destroy(ctx);
	return 2;
}
