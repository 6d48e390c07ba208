/* SPDX-License-Identifier: MIT */
/*
 * bench_merkle [LOG2_LEAVES]: the C side of spec/bench/merkle_bench.lua.
 *
 * Builds RFC 6962 roots over 2^LOG2_LEAVES (default 20) leaves of 32 bytes
 * (the size of a heartbeat hash) and prints, one "name value" line each,
 * the median leaves/s over BENCH_REPEATS (default 5) repeats of:
 *
 *   root         wp_merkle_root over (pointer, length) leaf data
 *   root_hashes  wp_merkle_root_hashes over precomputed leaf hashes
 *   builder      wp_merkle_builder_append per leaf, then the root
 *   anchor       the raw SHA-256 work of one root, as one-shot wp_sha256
 *                calls: n 33-byte messages (the leaf hashes, one
 *                compression each) and n - 1 65-byte messages (the node
 *                hashes, two compressions each), expressed as leaves/s.
 *   anchor_nodes the n - 1 65-byte calls alone (what root_hashes does)
 *
 * The tree code beats the anchor: for these fixed-shape messages it pads
 * the blocks itself and calls libcrypto's compression function directly,
 * skipping EVP's per-call cost (core/src/merkle.c).
 *
 * The repeats interleave the variants so that frequency drift hits them
 * alike. Exits 1 if the variants disagree on the root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workproof/hash.h"
#include "workproof/merkle.h"

enum { V_ROOT, V_ROOT_HASHES, V_BUILDER, V_ANCHOR, V_ANCHOR_NODES, V_COUNT };

static const char *const names[V_COUNT] = {
	"root", "root_hashes", "builder", "anchor", "anchor_nodes",
};

static uint8_t *data, *hashes;
static struct wp_iov *iov;
static size_t n;
static volatile unsigned sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* One run of variant v; returns the root (the anchor returns its last
 * digest, only to keep the compiler from dropping the calls). */
static void run(int v, uint8_t out[32])
{
	struct wp_merkle_builder b;
	uint8_t buf[65];

	switch (v) {
	case V_ROOT:
		wp_merkle_root(iov, n, out);
		break;
	case V_ROOT_HASHES:
		wp_merkle_root_hashes(hashes, n, out);
		break;
	case V_BUILDER:
		wp_merkle_builder_init(&b);
		for (size_t i = 0; i < n; i++)
			wp_merkle_builder_append(&b, data + 32 * i, 32);
		wp_merkle_builder_root(&b, out);
		break;
	case V_ANCHOR:
		buf[0] = 0x00;
		for (size_t i = 0; i < n; i++) {
			memcpy(buf + 1, data + 32 * i, 32);
			wp_sha256(buf, 33, out);
		}
		__attribute__((fallthrough));   /* plus the node hashes */
	case V_ANCHOR_NODES:
		buf[0] = 0x01;
		for (size_t i = 0; i + 1 < n; i++) {
			memcpy(buf + 1, hashes + 32 * (i & ~(size_t)1), 64);
			wp_sha256(buf, 65, out);
		}
		break;
	}
	sink += out[0];
}

int main(int argc, char **argv)
{
	int log2n = argc > 1 ? atoi(argv[1]) : 20;
	int repeats = getenv("BENCH_REPEATS") ? atoi(getenv("BENCH_REPEATS")) : 5;
	double *rates[V_COUNT];
	uint8_t roots[V_COUNT][32];

	if (log2n < 1 || log2n > 26 || repeats < 1 || repeats > 1000) {
		fputs("usage: bench_merkle [LOG2_LEAVES 1..26]\n", stderr);
		return 2;
	}
	n = (size_t)1 << log2n;
	data = malloc(32 * n);
	hashes = malloc(32 * n);
	iov = malloc(sizeof(*iov) * n);
	for (int v = 0; v < V_COUNT; v++)
		rates[v] = calloc((size_t)repeats, sizeof(double));
	if (!data || !hashes || !iov) {
		fputs("bench_merkle: out of memory\n", stderr);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t le = i;

		wp_sha256(&le, sizeof(le), data + 32 * i);   /* leaf i: 32 bytes */
		wp_merkle_leaf_hash(data + 32 * i, 32, hashes + 32 * i);
		iov[i] = (struct wp_iov){ data + 32 * i, 32 };
	}
	for (int v = 0; v < V_COUNT; v++)   /* warm-up, and the roots to compare */
		run(v, roots[v]);
	if (memcmp(roots[V_ROOT], roots[V_ROOT_HASHES], 32) ||
	    memcmp(roots[V_ROOT], roots[V_BUILDER], 32)) {
		fputs("bench_merkle: the variants disagree on the root\n", stderr);
		return 1;
	}
	for (int r = 0; r < repeats; r++) {
		for (int v = 0; v < V_COUNT; v++) {
			uint8_t out[32];
			double t0 = now();

			run(v, out);
			rates[v][r] = (double)n / (now() - t0);
		}
	}
	for (int v = 0; v < V_COUNT; v++) {
		qsort(rates[v], (size_t)repeats, sizeof(double), cmp_double);
		printf("%s %.0f\n", names[v], repeats % 2 ? rates[v][repeats / 2] :
		       (rates[v][repeats / 2 - 1] + rates[v][repeats / 2]) / 2);
		free(rates[v]);
	}
	printf("leaves %zu\n", n);
	free(data);
	free(hashes);
	free(iov);
	return 0;
}
