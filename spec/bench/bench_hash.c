/* SPDX-License-Identifier: MIT */
/*
 * C side of spec/bench/hash_bench.lua: throughput of the core hash API.
 * Usage: bench_hash [repeats] [seconds_per_repeat]
 * Prints one "name median" line per figure (medians over the repeats):
 *   sha256_16k_Bps      SHA-256 of 16 KiB buffers, bytes/s
 *   sha256_32_hps       SHA-256 of 32-byte inputs, hashes/s
 *   keccak256_64_hps    Keccak-256 of 64-byte inputs, hashes/s
 *   keccak256_16k_Bps   Keccak-256 of 16 KiB buffers, bytes/s
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workproof/hash.h"

#include "bench_rate.h"

#define MAX_REPEATS 64

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}



typedef void (*hash_fn)(const void *, size_t, uint8_t *);

static void sha256_fn(const void *p, size_t n, uint8_t *out)
{
	wp_sha256(p, n, out);
}

static void keccak_fn(const void *p, size_t n, uint8_t *out)
{
	wp_keccak256(p, n, out);
}

/* Median over `repeats` of (hashes per second) for inputs of `len` bytes.
 * Each digest feeds the next input's first bytes so that nothing can be
 * hoisted out of the loop. */
static double rate(hash_fn fn, uint8_t *buf, size_t len, int repeats, double secs)
{
	double rates[MAX_REPEATS];
	uint8_t out[32];
	size_t iters = 1;

	/* calibrate: about `secs` per repeat */
	for (;;) {
		double t0 = now(), dt;

		for (size_t i = 0; i < iters; i++) {
			fn(buf, len, out);
			buf[i % len] ^= out[0];
		}
		dt = now() - t0;
		if (dt >= secs / 4) {
			iters = (size_t)((double)iters * secs / dt) + 1;
			break;
		}
		iters *= 4;
	}
	for (int r = 0; r < repeats; r++) {
		double t0 = now();

		for (size_t i = 0; i < iters; i++) {
			fn(buf, len, out);
			buf[i % len] ^= out[0];
		}
		rates[r] = (double)iters / (now() - t0);
	}
	return bench_median(rates, repeats);
}

int main(int argc, char **argv)
{
	int repeats = argc > 1 ? atoi(argv[1]) : 5;
	double secs = argc > 2 ? atof(argv[2]) : 0.3;
	static uint8_t buf[16384];

	if (repeats < 1 || repeats > MAX_REPEATS || !(secs > 0)) {
		fprintf(stderr, "usage: bench_hash [repeats 1..%d] [seconds per repeat]\n", MAX_REPEATS);
		return 2;
	}
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	printf("sha256_16k_Bps %.0f\n", rate(sha256_fn, buf, 16384, repeats, secs) * 16384);
	printf("sha256_32_hps %.0f\n", rate(sha256_fn, buf, 32, repeats, secs));
	printf("keccak256_64_hps %.0f\n", rate(keccak_fn, buf, 64, repeats, secs));
	printf("keccak256_16k_Bps %.0f\n", rate(keccak_fn, buf, 16384, repeats, secs) * 16384);
	return 0;
}
