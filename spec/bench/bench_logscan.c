/* SPDX-License-Identifier: MIT */
/*
 * Throughput of the log scanner (core/src/logscan.c) over a synthetic log.
 *
 *   bench_logscan [--mb N] [--repeats R] [--chunk BYTES]   -> key value lines
 *   bench_logscan --mb N --write FILE                     -> writes the log
 *
 * The log: realistic lines of varying length (most with an ISO timestamp
 * and an app tag, some short, some empty, a few of several KB), and per MB
 * one plain `NOTARY_RESULT: {...}` line and one with a timestamp in front
 * (found only in search mode). Scanned in 64 KiB chunks with the C API.
 * The anchor, measured in the same run over the same buffer: a plain
 * memchr() pass counting newlines, the floor any line scanner pays.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workproof/common.h"
#include "workproof/logscan.h"

#include "bench_rate.h"

static uint32_t rng_state = 2463534242u;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static const char words[] =
	"the quick brown fox jumps over lazy dog request served cache miss "
	"upstream connect retry backoff worker spawned sandbox ready heartbeat "
	"epoch claim merkle root signed verified payload bytes elapsed ";

static size_t put_text(char *p, size_t n)
{
	size_t off = rnd(sizeof(words) - 1 - n);

	memcpy(p, words + off, n);
	return n;
}

static size_t put_timestamp(char *p, unsigned i)
{
	return (size_t)sprintf(p, "2024-05-01T12:%02u:%02u.%03uZ app[%08x] iad [%s] ",
			       i / 3600 % 60, i / 60 % 60, i % 1000,
			       (unsigned)rnd(0x7fffffff),
			       rnd(4) ? "info" : "warn");
}

static size_t put_result(char *p, unsigned i)
{
	size_t n = (size_t)sprintf(p, "NOTARY_RESULT: {\"jobId\":\"job-%u\",\"actualHash\":\"", i);

	for (int k = 0; k < 64; k++)
		p[n++] = "0123456789abcdef"[rnd(16)];
	n += (size_t)sprintf(p + n, "\",\"exitCode\":0,\"executionTimeMs\":%u,"
			     "\"outputBytes\":%u,\"error\":null}\n", rnd(5000), rnd(100000));
	return n;
}

/* Build `size` bytes of log; returns the number of plain result lines. */
static unsigned build_log(char *buf, size_t size)
{
	size_t pos = 0, next_result = 0;
	unsigned i = 0, results = 0;
	char line[8192];

	while (pos < size) {
		size_t n = 0;
		uint32_t k = rnd(100);

		if (pos >= next_result) {
			n = put_result(line, results++);
			if (pos + n > size)
				break;
			memcpy(buf + pos, line, n);
			pos += n;
			/* the timestamped one: a candidate in search mode only */
			/* "[info]NOTARY_RESULT: ..." as log shippers write it */
			n = put_timestamp(line, i) - 1;
			n += put_result(line + n, results + 1000000);
			next_result += 1 << 20;
		} else if (k < 60) {
			n = put_timestamp(line, i);
			n += put_text(line + n, 10 + rnd(120));
			line[n++] = '\n';
		} else if (k < 85) {
			n = (size_t)sprintf(line, "tick %u ", i);
			n += put_text(line + n, rnd(40));
			line[n++] = '\n';
		} else if (k < 95) {
			line[n++] = '\n';
		} else if (k < 99) {
			n = put_text(line, 100 + rnd(60));
			line[n++] = '\r';
			line[n++] = '\n';
		} else {
			size_t len = 500 + rnd(3000);

			while (n < len)
				n += put_text(line + n, 150);
			line[n++] = '\n';
		}
		if (pos + n > size)
			n = size - pos;
		memcpy(buf + pos, line, n);
		pos += n;
		i++;
	}
	/* pad to the exact size with empty lines; a log ends with a newline */
	memset(buf + pos, '\n', size - pos);
	buf[size - 1] = '\n';
	return results;
}

struct counts {
	uint64_t events, payload;
};

static void on_event(void *ud, const struct wp_logscan_event *ev)
{
	struct counts *c = ud;

	c->events++;
	c->payload += ev->len;
}



/* One scan of the whole buffer in chunks; returns seconds. */
static double scan_once(const struct wp_logscan_opts *o, const char *buf,
			size_t size, size_t chunk, struct counts *c,
			struct wp_logscan_stats *st)
{
	struct wp_logscan *sc;
	double t0;

	if (wp_logscan_new(o, &sc)) {
		fprintf(stderr, "bench_logscan: wp_logscan_new failed\n");
		exit(1);
	}
	memset(c, 0, sizeof(*c));
	t0 = now();
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		if (wp_logscan_feed(sc, buf + off, n, on_event, c)) {
			fprintf(stderr, "bench_logscan: feed failed\n");
			exit(1);
		}
	}
	wp_logscan_finish(sc, on_event, c);
	t0 = now() - t0;
	wp_logscan_stats(sc, st);
	wp_logscan_free(sc);
	return t0;
}

static double memchr_once(const char *buf, size_t size, uint64_t *lines)
{
	const char *p = buf, *end = buf + size, *nl;
	uint64_t n = 0;
	double t0 = now();

	while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
		n++;
		p = nl + 1;
	}
	*lines = n;
	return now() - t0;
}

int main(int argc, char **argv)
{
	size_t mb = 100, chunk = 64 * 1024, size;
	const char *out = NULL;
	int repeats = 5;
	struct wp_logscan_opts def = { 0 }, srch = { 0 };
	struct wp_logscan_stats st;
	struct counts c;
	double t_def[64], t_srch[64], t_mem[64];
	uint64_t lines = 0, st_lines = 0, cand_def = 0, cand_srch = 0;
	unsigned results;
	char *buf;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--mb"))
			mb = (size_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--repeats"))
			repeats = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--chunk"))
			chunk = (size_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--write"))
			out = argv[i + 1];
	}
	if (repeats < 1 || repeats > 64 || !mb || !chunk) {
		fprintf(stderr, "usage: bench_logscan [--mb N] [--repeats 1..64] [--chunk B] [--write FILE]\n");
		return 2;
	}
	size = mb << 20;
	buf = malloc(size);
	if (!buf)
		return perror("malloc"), 1;
	results = build_log(buf, size);
	if (out) {
		FILE *f = fopen(out, "wb");

		if (!f || fwrite(buf, 1, size, f) != size || fclose(f))
			return perror(out), 1;
		printf("results %u\n", results);
		free(buf);
		return 0;
	}

	srch.search = 64;
	for (int r = 0; r < repeats; r++) {
		t_mem[r] = memchr_once(buf, size, &lines);
		t_def[r] = scan_once(&def, buf, size, chunk, &c, &st);
		cand_def = st.candidates;
		st_lines = st.lines;
		t_srch[r] = scan_once(&srch, buf, size, chunk, &c, &st);
		cand_srch = st.candidates;
	}
	/* the scan must have found what was planted, or the figure means nothing */
	if (cand_def != results || cand_srch < 2 * (uint64_t)results - 1 ||
	    st_lines != lines) {
		fprintf(stderr, "bench_logscan: wrong counts: %llu/%llu candidates for %u "
			"results, %llu/%llu lines\n", (unsigned long long)cand_def,
			(unsigned long long)cand_srch, results,
			(unsigned long long)st_lines, (unsigned long long)lines);
		return 1;
	}
	printf("bytes %zu\n", size);
	printf("lines %llu\n", (unsigned long long)lines);
	printf("results %u\n", results);
	printf("scan_gbps %.4f\n", (double)size / bench_median(t_def, repeats) / 1e9);
	printf("search_gbps %.4f\n", (double)size / bench_median(t_srch, repeats) / 1e9);
	printf("memchr_gbps %.4f\n", (double)size / bench_median(t_mem, repeats) / 1e9);
	free(buf);
	return 0;
}
