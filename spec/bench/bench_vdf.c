/* SPDX-License-Identifier: MIT */
/*
 * bench_vdf [repeats]: the C side of spec/bench/vdf_bench.lua. Prints one
 * "name value" line per figure, each the median of `repeats` runs:
 *
 *   sq_per_s          core Montgomery chain (wp_vdf_squarings), 2048-bit
 *   mpz_sq_per_s      anchor: plain GMP mpz_mul + mpz_mod, same x, same run
 *   openssl_sq_per_s  anchor: OpenSSL BN_mod_mul_montgomery, same run
 *   mpz_ratio, openssl_ratio
 *                     core / anchor: the median of the ratios measured
 *                     within each round (the three chains alternate in
 *                     rounds of ~0.1 s each, 4 x repeats rounds)
 *   verify_ms         wp_vdf_verify of a T = 2^16 proof
 *   prove_ratio_checkpoint / prove_ratio_longdiv
 *                     proof time / chain time inside one wp_vdf_eval
 * All times are CPU time of the measuring thread (see now()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gmp.h>
#include <openssl/bn.h>

#include "workproof/vdf.h"

#include "bench_rate.h"

/*
 * Thread CPU time, not wall time: every figure here is single-threaded
 * compute, and on a shared 2-vCPU box wall time mostly measures the
 * neighbours. The Lua side adds one wall-clock row (verify through Lua).
 */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}



typedef int (*chain_fn)(const uint8_t *, uint64_t, uint8_t *);

/* squarings for about `seconds` of fn */
static uint64_t calibrate(chain_fn fn, const uint8_t *x, double seconds)
{
	uint8_t y[WP_VDF_BYTES];
	uint64_t n = 1024;
	double t0, dt;

	for (;;) {
		t0 = now();
		fn(x, n, y);
		dt = now() - t0;
		if (dt > 0.02)
			break;
		n *= 4;
	}
	return (uint64_t)((double)n * seconds / dt) + 1;
}

/*
 * The chains in alternating rounds (chain 0, 1, 2, 0, 1, 2, ...), ~0.1 s
 * each: rate[k] is chain k's median rate, ratio[k] the median over the
 * rounds of chain 0's rate / chain k's in the same round, so that a
 * machine whose speed drifts during the run (a shared host does) moves
 * both sides of a ratio alike. 0 on success.
 */
#define NCHAIN 3
static int alternating(const chain_fn fn[NCHAIN], const uint8_t *x, int rounds, double rate[NCHAIN],
		       double ratio[NCHAIN])
{
	uint8_t y[WP_VDF_BYTES];
	uint64_t n[NCHAIN];
	double r[NCHAIN][256], q[NCHAIN][256], t0;

	for (int k = 0; k < NCHAIN; k++)
		n[k] = calibrate(fn[k], x, 0.1);
	for (int i = 0; i < rounds; i++) {
		for (int k = 0; k < NCHAIN; k++) {
			t0 = now();
			if (fn[k](x, n[k], y))
				return -1;
			r[k][i] = (double)n[k] / (now() - t0);
		}
		for (int k = 0; k < NCHAIN; k++)
			q[k][i] = r[0][i] / r[k][i];
	}
	for (int k = 0; k < NCHAIN; k++) {
		rate[k] = bench_median(r[k], rounds);
		ratio[k] = bench_median(q[k], rounds);
	}
	return 0;
}

/* OpenSSL's Montgomery squaring chain, for context only */
static int openssl_chain(const uint8_t *x, uint64_t T, uint8_t *y)
{
	BN_CTX *ctx = BN_CTX_new();
	BN_MONT_CTX *mc = BN_MONT_CTX_new();
	BIGNUM *n = BN_bin2bn(wp_vdf_modulus, WP_VDF_BYTES, NULL);
	BIGNUM *a = BN_bin2bn(x, WP_VDF_BYTES, NULL);
	int rc = -1;

	if (!ctx || !mc || !n || !a || !BN_MONT_CTX_set(mc, n, ctx) ||
	    !BN_to_montgomery(a, a, mc, ctx))
		goto out;
	while (T--)
		if (!BN_mod_mul_montgomery(a, a, a, mc, ctx))
			goto out;
	if (!BN_from_montgomery(a, a, mc, ctx) || BN_bn2binpad(a, y, WP_VDF_BYTES) < 0)
		goto out;
	rc = 0;
out:
	BN_free(a);
	BN_free(n);
	BN_MONT_CTX_free(mc);
	BN_CTX_free(ctx);
	return rc;
}

struct phase_times {
	double start, eval_end, prove_end;
};

static int on_progress(void *ud, enum wp_vdf_phase ph, uint64_t done, uint64_t total)
{
	struct phase_times *t = ud;

	if (done == total) {
		if (ph == WP_VDF_PHASE_EVAL)
			t->eval_end = now();
		else
			t->prove_end = now();
	}
	return 0;
}

static double prove_ratio(enum wp_vdf_prover pv, uint64_t T, int repeats)
{
	struct wp_vdf_output out;
	struct wp_vdf_opts o;
	struct phase_times pt;
	double r[64];

	memset(&o, 0, sizeof(o));
	o.prover = pv;
	o.progress = on_progress;
	o.ud = &pt;
	o.progress_every = T;
	for (int i = 0; i < repeats; i++) {
		memset(&pt, 0, sizeof(pt));
		pt.start = now();
		if (wp_vdf_eval("bench", 5, T, &o, &out))
			return -1;
		r[i] = (pt.prove_end - pt.eval_end) / (pt.eval_end - pt.start);
	}
	return bench_median(r, repeats);
}

int main(int argc, char **argv)
{
	int repeats = argc > 1 ? atoi(argv[1]) : 5;
	uint8_t x[WP_VDF_BYTES], y_ref[WP_VDF_BYTES], y[WP_VDF_BYTES];
	struct wp_vdf_output out;
	double v[64], t0;
	const uint64_t TV = 1 << 16;
	const int nverify = 40;

	if (repeats < 1 || repeats > 63)
		repeats = 5;
	wp_vdf_h2g("bench", 5, x);

	/* the three chains must agree before their speeds mean anything */
	wp_vdf_squarings(x, 1000, y);
	wp_vdf_eval_reference(x, 1000, y_ref);
	if (memcmp(y, y_ref, sizeof(y))) {
		fputs("bench_vdf: Montgomery chain disagrees with mpz reference\n", stderr);
		return 1;
	}
	if (openssl_chain(x, 1000, y_ref) || memcmp(y, y_ref, sizeof(y))) {
		fputs("bench_vdf: OpenSSL chain disagrees\n", stderr);
		return 1;
	}

	{
		const chain_fn chains[NCHAIN] = { wp_vdf_squarings, wp_vdf_eval_reference, openssl_chain };
		double rate[NCHAIN], ratio[NCHAIN];

		if (alternating(chains, x, 4 * repeats, rate, ratio)) {
			fputs("bench_vdf: a chain failed\n", stderr);
			return 1;
		}
		printf("path %s\n", wp_vdf_path());
		printf("sq_per_s %.0f\nmpz_sq_per_s %.0f\nopenssl_sq_per_s %.0f\n", rate[0], rate[1], rate[2]);
		printf("mpz_ratio %.4f\nopenssl_ratio %.4f\n", ratio[1], ratio[2]);
		fflush(stdout);
	}

	if (wp_vdf_eval("bench", 5, TV, NULL, &out))
		return 1;
	for (int r = 0; r < repeats; r++) {
		t0 = now();
		for (int i = 0; i < nverify; i++)
			if (wp_vdf_verify("bench", 5, TV, out.y, out.proof) != 1) {
				fputs("bench_vdf: verify failed\n", stderr);
				return 1;
			}
		v[r] = (now() - t0) / nverify * 1e3;
	}
	printf("verify_ms %.4f\n", bench_median(v, repeats));
	fflush(stdout);

	printf("prove_ratio_checkpoint %.4f\n",
	       prove_ratio(WP_VDF_PROVER_CHECKPOINT, 1 << 19, repeats < 3 ? repeats : 3));
	printf("prove_ratio_longdiv %.4f\n",
	       prove_ratio(WP_VDF_PROVER_LONGDIV, 1 << 18, 1));
	return 0;
}
