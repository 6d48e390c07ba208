/* SPDX-License-Identifier: MIT */
/*
 * bench_evm OP: the C anchors of spec/bench/evm_bench.lua, through the core's
 * C API (wpcore). The inputs are the x402 payment the Lua side verifies,
 * as the text a PAYMENT-SIGNATURE header carries (addresses and the nonce
 * in hex, amounts in decimal), so both sides do the same parsing work.
 * Prints the median ops/s over BENCH_REPEATS (default 5) runs of about
 * BENCH_MIN_TIME (0.3) seconds, calibrated like spec/bench/lib.lua.
 *
 * OP: x402-verify  parse + EIP-712 TransferWithAuthorization digest +
 *                  secp256k1 recover + address compare
 *     twa-hash     parse + digest only
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workproof/abi.h"
#include "workproof/common.h"
#include "workproof/eip712.h"
#include "workproof/encoding.h"
#include "workproof/eth.h"
#include "workproof/secp256k1.h"

#include "bench_rate.h"

/* viem-signed x402 payment (spec/unit/eip712_spec.lua, anvil key 0) */
static const char *const FROM = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
static const char *const TO = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
static const char *const VALUE = "10000";
static const char *const AFTER = "1740672089";
static const char *const BEFORE = "1740672154";
static const char *const NONCE = "0xf0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
static const char *const SIG = "cf6e301f847749211ef5682ae86865ad5b0b0c9d7e7f57071e17f90a5aeda1af"
			       "60605e61d52115173acd4a7ebffa40fde9bc5e40ada19c2a15321e06616f287a1b";

static uint8_t domain_sep[32], sig[65];
static volatile unsigned sink;


static void die(const char *what)
{
	fprintf(stderr, "bench_evm: %s\n", what);
	exit(1);
}

static void digest_once(uint8_t out[32], uint8_t from[20])
{
	uint8_t to[20], value[32], after[32], before[32], nonce[32];
	struct wp_eip3009_auth a;
	size_t n;

	if (wp_eth_parse_address(from, FROM, strlen(FROM)) ||
	    wp_eth_parse_address(to, TO, strlen(TO)) ||
	    wp_abi_int_parse(value, VALUE, strlen(VALUE), 0) ||
	    wp_abi_int_parse(after, AFTER, strlen(AFTER), 0) ||
	    wp_abi_int_parse(before, BEFORE, strlen(BEFORE), 0) ||
	    wp_hex_decode(nonce, sizeof(nonce), &n, NONCE, strlen(NONCE), NULL) || n != 32)
		die("cannot parse the payment");
	a.from = from;
	a.to = to;
	a.value = value;
	a.valid_after = after;
	a.valid_before = before;
	a.nonce = nonce;
	wp_eip3009_transfer_digest(out, domain_sep, &a);
}

static void twa_hash(long n)
{
	uint8_t d[32], from[20];

	for (long i = 0; i < n; i++) {
		digest_once(d, from);
		sink += d[0];
	}
}

static void x402_verify(long n)
{
	uint8_t d[32], from[20], pub[65], addr[20];

	for (long i = 0; i < n; i++) {
		digest_once(d, from);
		if (wp_secp256k1_recover(pub, d, sig, WP_SECP256K1_STRICT) ||
		    wp_eth_address(addr, pub) || memcmp(addr, from, 20) != 0)
			die("the payment does not verify");
		sink += addr[0];
	}
}



static void setup(void)
{
	static const char name[] = "USDC", version[] = "2";
	struct wp_eip712_domain d;
	uint8_t chain[32], verifying[20];
	size_t n;

	memset(&d, 0, sizeof(d));
	if (wp_abi_int_parse(chain, "84532", 5, 0) ||
	    wp_eth_parse_address(verifying, "0x036CbD53842c5426634e7929541eC2318f3dCF7e", 42) ||
	    wp_hex_decode(sig, sizeof(sig), &n, SIG, strlen(SIG), NULL) || n != 65)
		die("bad constants");
	d.name = name;
	d.name_len = 4;
	d.version = version;
	d.version_len = 1;
	d.chain_id = chain;
	d.verifying_contract = verifying;
	if (wp_eip712_domain_separator(domain_sep, &d) || wp_secp256k1_init())
		die("setup failed");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(long);
	} ops[] = {
		{ "x402-verify", x402_verify },
		{ "twa-hash", twa_hash },
	};
	const char *env;
	int repeats = 5;
	double min_time = 0.3;

	if (argc != 2) {
		fputs("usage: bench_evm x402-verify|twa-hash\n", stderr);
		return 2;
	}
	env = getenv("BENCH_REPEATS");
	if (env && atoi(env) > 0)
		repeats = atoi(env) > 64 ? 64 : atoi(env);
	env = getenv("BENCH_MIN_TIME");
	if (env && atof(env) > 0)
		min_time = atof(env);
	setup();
	x402_verify(1);   /* fails loudly if the vector does not verify */
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (strcmp(argv[1], ops[i].name) == 0) {
			printf("%.1f\n", bench_median_rate(ops[i].fn, repeats, min_time));
			return 0;
		}
	}
	fprintf(stderr, "bench_evm: unknown operation %s\n", argv[1]);
	return 2;
}
