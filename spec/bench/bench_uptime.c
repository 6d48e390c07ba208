/* SPDX-License-Identifier: MIT */
/*
 * C side of spec/bench/uptime_bench.lua: one day of one lease (1,440
 * dual-signed beats, 2,880 Ed25519 signatures) verified by
 * wp_hb_verify_chain, beside its anchor measured in the same run: 2,880
 * raw libsodium crypto_sign_verify_detached calls over the same 32-byte
 * digests and keys. Also the epoch + claim roll-up of that day.
 *
 * usage: bench_uptime [repeats]; prints "name value" lines (medians).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "workproof/ed25519.h"
#include "workproof/hash.h"
#include "workproof/uptime.h"

#define N WP_UPTIME_CLAIM_BEATS

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	static struct wp_hb beats[N];
	static uint8_t digests[2 * N][32];
	static struct wp_uptime_epoch epochs[24];
	static struct wp_uptime_claim claims[1];
	int reps = argc > 1 ? atoi(argv[1]) : 7;
	uint8_t ppub[32], psec[64], cpub[32], csec[64], lease[32], seed[32];
	struct wp_uptime_keyrange pk, ck;
	struct wp_hb_chain_opts o;
	struct wp_hb_chain_result res;
	struct wp_uptime_rollup_opts ro;
	double tv[64], ta[64], tr[64];
	size_t ne, nc;
	volatile int sink = 0;

	if (reps < 1 || reps > 64)
		reps = 7;
	memset(seed, 1, sizeof(seed));
	wp_ed25519_keypair(ppub, psec, seed);
	memset(seed, 2, sizeof(seed));
	wp_ed25519_keypair(cpub, csec, seed);
	memset(lease, 0x11, sizeof(lease));
	for (int i = 0; i < N; i++) {
		char payload[WP_HB_PAYLOAD_MAX];
		size_t len;
		struct wp_iov iov[2];

		wp_hb_build(&beats[i], lease, (uint64_t)i, 1700000000000000000LL + (int64_t)i * 60000000000LL,
			    i ? beats[i - 1].hash : NULL);
		if (wp_hb_sign(&beats[i], psec) || wp_hb_countersign(&beats[i], ppub, csec)) {
			fputs("bench_uptime: signing failed\n", stderr);
			return 1;
		}
		/* the anchor verifies the very digests the chain verifier signs */
		wp_hb_payload(&beats[i], payload, &len);
		wp_sha256(payload, len, digests[2 * i]);
		iov[0] = (struct wp_iov){ payload, len };
		iov[1] = (struct wp_iov){ beats[i].provider_sig, 64 };
		wp_sha256_v(iov, 2, digests[2 * i + 1]);
	}
	memset(&o, 0, sizeof(o));
	pk = (struct wp_uptime_keyrange){ 0, UINT64_MAX, { 0 } };
	ck = pk;
	memcpy(pk.key, ppub, 32);
	memcpy(ck.key, cpub, 32);
	o.provider = &pk;
	o.nprovider = 1;
	o.consumer = &ck;
	o.nconsumer = 1;
	memset(&ro, 0, sizeof(ro));
	for (int r = 0; r < reps; r++) {
		double t0 = now_s();

		if (wp_hb_verify_chain(beats, N, &o, &res) || res.reason != WP_HB_OK) {
			fputs("bench_uptime: the chain does not verify\n", stderr);
			return 1;
		}
		tv[r] = now_s() - t0;
		t0 = now_s();
		for (int i = 0; i < N; i++) {
			sink += crypto_sign_verify_detached(beats[i].provider_sig, digests[2 * i], 32, ppub);
			sink += crypto_sign_verify_detached(beats[i].consumer_sig, digests[2 * i + 1], 32, cpub);
		}
		ta[r] = now_s() - t0;
		t0 = now_s();
		for (int k = 0; k < 20; k++)
			sink += wp_uptime_rollup(beats, N, &ro, epochs, &ne, claims, &nc);
		tr[r] = (now_s() - t0) / 20;
	}
	if (sink) {
		fputs("bench_uptime: a raw verification failed\n", stderr);
		return 1;
	}
	printf("verify_day_ms %.3f\n", median(tv, reps) * 1e3);
	printf("raw_verify_2880_ms %.3f\n", median(ta, reps) * 1e3);
	printf("rollup_day_us %.3f\n", median(tr, reps) * 1e6);
	printf("epochs %zu claims %zu\n", ne, nc);
	return 0;
}
