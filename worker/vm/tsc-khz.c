/* SPDX-License-Identifier: MIT */
/*
 * tsc-khz: print the host's TSC frequency in kHz on one line.
 *
 * Why: under QEMU's TCG accelerator the guest's RDTSC returns the host's TSC,
 * but the microvm machine has no HPET, no ACPI PM timer and no port 0x61, so
 * the guest kernel cannot calibrate the TSC (it marks it unstable and can
 * hang in early boot). The launcher passes this figure as the guest kernel
 * parameter tsc_early_khz= instead (worker/vm/README.md, "Clock").
 *
 * Method: count TSC ticks against CLOCK_MONOTONIC_RAW over several 20 ms
 * windows, each end bracketed by two clock reads so that a preemption
 * between the reads shows up as a wide bracket and the sample is retried;
 * print the median. Built by worker/vm/build-initramfs.sh into the image
 * directory; not part of the CMake build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define SAMPLES 7
#define WINDOW_NS 20000000LL
#define MAX_BRACKET_NS 20000LL

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One bracketed reading: TSC value and the midpoint of the two clock reads. */
static int read_pair(uint64_t *tsc, int64_t *ns)
{
	int64_t a = now_ns();
	uint64_t t = __rdtsc();
	int64_t b = now_ns();

	if (b - a > MAX_BRACKET_NS)
		return -1;
	*tsc = t;
	*ns = a + (b - a) / 2;
	return 0;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return (a > b) - (a < b);
}

int main(void)
{
	double khz[SAMPLES];
	int n = 0, tries = 0;

	while (n < SAMPLES && tries++ < 10 * SAMPLES) {
		uint64_t t0, t1;
		int64_t n0, n1;
		struct timespec nap = { 0, WINDOW_NS };

		if (read_pair(&t0, &n0))
			continue;
		nanosleep(&nap, NULL);
		if (read_pair(&t1, &n1) || n1 <= n0 || t1 <= t0)
			continue;
		khz[n++] = (double)(t1 - t0) * 1e6 / (double)(n1 - n0);
	}
	if (n < 3) {
		fprintf(stderr, "tsc-khz: no stable measurement\n");
		return 1;
	}
	qsort(khz, (size_t)n, sizeof(khz[0]), cmp_double);
	printf("%.0f\n", khz[n / 2]);
	return 0;
}
