/* SPDX-License-Identifier: MIT */
/*
 * Shared by the C benchmark programs: a monotonic clock, the median of a
 * set of figures, and the median rate of an operation that runs n times
 * per call (calibrated so one measurement takes about min_time seconds).
 */
#ifndef WORKPROOF_BENCH_RATE_H
#define WORKPROOF_BENCH_RATE_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/** Median of v[0..n) (sorts v in place). */
static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/** Median over `repeats` (<= 64) runs of fn(n), in operations per second. */
static inline double bench_median_rate(void (*fn)(long), int repeats, double min_time)
{
	double rates[64], t0, dt;
	long n = 1;

	if (repeats > 64)
		repeats = 64;
	for (;;) {
		t0 = bench_now();
		fn(n);
		dt = bench_now() - t0;
		if (dt >= min_time / 4)
			break;
		n *= 4;
	}
	n = (long)((double)n * min_time / (dt > 1e-9 ? dt : 1e-9));
	if (n < 1)
		n = 1;
	for (int i = 0; i < repeats; i++) {
		t0 = bench_now();
		fn(n);
		rates[i] = (double)n / (bench_now() - t0);
	}
	return bench_median(rates, repeats);
}

#endif
