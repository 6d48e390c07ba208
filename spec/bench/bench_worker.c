/* SPDX-License-Identifier: MIT */
/*
 * Spawn-to-result latency of workproof-worker (spec/bench/worker_bench.lua).
 *
 *   bench_worker PROGRAM N THREADS TASK_JSON [ARG...]
 *
 * THREADS spawners each posix_spawn PROGRAM (with ARGs) N times, write
 * TASK_JSON on its stdin, read its stdout until the first newline (the
 * NOTARY_RESULT line) or EOF, then reap it. Latency is spawn -> line (or
 * EOF for a program that prints nothing, e.g. /bin/true, the anchor).
 * Prints one line: "p50_ms p99_ms tasks_per_s failures cpu_ms user_ms sys_ms",
 * where cpu_ms is the CPU time (user + system) the runs and all their
 * descendants used, per run (getrusage(RUSAGE_CHILDREN) around the whole
 * set), the figure to set beside bwrap's. The harness is a child
 * subreaper and reaps every orphan before the second getrusage: bwrap's
 * outer process exits without waiting for the sandbox's pid 1, whose CPU
 * (and its runtime's) would otherwise never be counted.
 * With BENCH_WARM_MS=M in the environment (a worker started with --warm),
 * each run waits M ms after the spawn, while the worker prepares its
 * sandbox, and the latency is measured from the task's hand-over instead:
 * the spawn -> result time of a warm pool's worker.
 * With BENCH_ZYGOTE=1 (a PROGRAM that is workproof-worker) one
 * `PROGRAM --zygote` is started first and every run is forked by it instead
 * of spawned (worker/zygote.c; a new one after each WK_ZYGOTE_FORKS), as the
 * host does with worker.zygote on; its own CPU is counted (it is reaped
 * before the second getrusage).
 * A run counts as a failure when the program exits non-zero or, for a
 * worker (a PROGRAM named *workproof-worker), when the line is not a
 * NOTARY_RESULT with "error":null.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../worker/zygote_msg.h"

extern char **environ;

struct job {
	int n;
	double *lat;
	int failures;
};

static const char *program;
static char **args;
static const char *task;
static int is_worker;
static long warm_ms;   /* BENCH_WARM_MS: 0 = measure from the spawn */

/* BENCH_ZYGOTE: the zygote, shared by the spawners one request at a time */
static int use_zygote, zsock = -1, zforks;
static pid_t zpid;
static pthread_mutex_t zlock = PTHREAD_MUTEX_INITIALIZER;

static void zygote_stop(void)
{
	if (zsock < 0)
		return;
	close(zsock);
	zsock = -1;
	while (waitpid(zpid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Start the zygote and wait for its "ready": 0 or -1. */
static int zygote_start(void)
{
	char *zargs[] = { (char *)program, (char *)"--zygote", NULL };
	posix_spawn_file_actions_t fa;
	int sv[2];
	int32_t ready = -1;
	int rc;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
	rc = posix_spawn(&zpid, program, &fa, NULL, zargs, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	zsock = sv[0];
	zforks = 0;
	if (rc || recv(zsock, &ready, sizeof(ready), 0) != (ssize_t)sizeof(ready) || ready != 0) {
		zygote_stop();
		return -1;
	}
	return 0;
}

/* One worker forked by the zygote with in/out as its fds 0 and 1. */
static int zygote_spawn(pid_t *pid, int in, int out)
{
	char msg[WK_ZYGOTE_MAX_MSG];
	int fds[2] = { in, out };
	size_t n = wk_zygote_pack(args, msg, sizeof(msg));
	int32_t v = -1;

	pthread_mutex_lock(&zlock);
	if (zsock < 0 || zforks >= WK_ZYGOTE_FORKS) {
		zygote_stop();
		zygote_start();
	}
	if (zsock >= 0 && wk_zygote_send(zsock, msg, n, fds, 2) > 0 &&
	    recv(zsock, &v, sizeof(v), 0) == (ssize_t)sizeof(v) && v > 0)
		zforks++;
	pthread_mutex_unlock(&zlock);
	*pid = v;
	return v > 0 ? 0 : -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one(double *lat)
{
	posix_spawn_file_actions_t fa;
	int in[2], out[2], st, ok = 0;
	char buf[4096];
	size_t got = 0, len = strlen(task);
	double t0;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	t0 = now();
	if (use_zygote ? zygote_spawn(&pid, in[0], out[1]) : posix_spawn(&pid, program, &fa, NULL, args, environ)) {
		posix_spawn_file_actions_destroy(&fa);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (warm_ms > 0) {
		struct timespec ts = { warm_ms / 1000, (warm_ms % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) && errno == EINTR)
			;
		t0 = now();
	}
	/* a program that ignores its input (the anchor) may be gone already */
	if (write(in[1], task, len) < 0 && errno != EPIPE)
		ok = -1;
	close(in[1]);
	for (;;) {
		ssize_t r = read(out[0], buf + got, sizeof(buf) - 1 - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (memchr(buf, '\n', got) || got == sizeof(buf) - 1)
			break;
	}
	*lat = now() - t0;
	buf[got] = '\0';
	close(out[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		ok = -1;
	if (is_worker && (strncmp(buf, "NOTARY_RESULT: ", 15) || !strstr(buf, "\"error\":null,")))
		ok = -1;
	return ok;
}

static void *spawner(void *arg)
{
	struct job *j = arg;
	int i;

	for (i = 0; i < j->n; i++)
		if (one(&j->lat[i]))
			j->failures++;
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct job jobs[16];
	pthread_t th[16];
	struct rusage ru0, ru1;
	double *all, t0, wall, user, sys;
	int n, nth, i, k = 0, failures = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_worker PROGRAM N THREADS TASK_JSON [ARG...]\n");
		return 2;
	}
	program = argv[1];
	n = atoi(argv[2]);
	nth = atoi(argv[3]);
	task = argv[4];
	is_worker = strstr(program, "workproof-worker") != NULL;
	warm_ms = getenv("BENCH_WARM_MS") ? atol(getenv("BENCH_WARM_MS")) : 0;
	use_zygote = is_worker && getenv("BENCH_ZYGOTE") && !strcmp(getenv("BENCH_ZYGOTE"), "1");
	if (n < 1 || nth < 1 || nth > 16)
		return 2;
	args = calloc((size_t)argc, sizeof(char *));
	all = calloc((size_t)n * (size_t)nth, sizeof(double));
	if (!args || !all)
		goto fail;
	args[0] = argv[1];
	for (i = 5; i < argc; i++)
		args[i - 4] = argv[i];
	signal(SIGPIPE, SIG_IGN);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		goto fail;
	getrusage(RUSAGE_CHILDREN, &ru0);
	t0 = now();
	for (i = 0; i < nth; i++) {
		jobs[i].n = n;
		jobs[i].failures = 0;
		jobs[i].lat = all + (size_t)i * (size_t)n;
		if (pthread_create(&th[i], NULL, spawner, &jobs[i])) {
			while (i-- > 0)
				pthread_join(th[i], NULL);
			goto fail;
		}
	}
	for (i = 0; i < nth; i++) {
		pthread_join(th[i], NULL);
		failures += jobs[i].failures;
	}
	wall = now() - t0;
	zygote_stop();
	/* orphans reparented to us (bwrap's sandbox init): reap them all */
	while (wait(NULL) > 0 || errno == EINTR)
		;
	getrusage(RUSAGE_CHILDREN, &ru1);
	k = n * nth;
	user = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1e3 +
	       (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e3;
	sys = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1e3 +
	      (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e3;
	qsort(all, (size_t)k, sizeof(double), cmp);
	printf("%.3f %.3f %.1f %d %.3f %.3f %.3f\n", all[k / 2] * 1e3, all[(size_t)((k - 1) * 0.99)] * 1e3,
	       k / wall, failures, (user + sys) / k, user / k, sys / k);
	free(all);
	free(args);
	return 0;
fail:
	fprintf(stderr, "bench_worker: out of resources\n");
	free(all);
	free(args);
	return 1;
}
