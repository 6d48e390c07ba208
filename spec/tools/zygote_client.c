/* SPDX-License-Identifier: MIT */
/*
 * zygote_client WORKER: malformed requests against a live
 * `WORKER --zygote` (worker/zygote.c), for spec/integration/zygote_spec.lua.
 *
 * Each malformed request must be answered -EINVAL, leave the zygote running
 * and holding no more descriptors than before; then a well-formed one must
 * be answered with the pid of a worker that is OUR child (CLONE_PARENT) and
 * prints a NOTARY_RESULT line for the task it was given. One line per
 * check ("ok NAME" or "FAIL NAME: why"); exit status 0 when all passed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../worker/zygote_msg.h"

extern char **environ;

static int sock, failures;
static pid_t zpid;

static void check(int ok, const char *name, const char *why)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("FAIL %s: %s\n", name, why);
		failures++;
	}
}

/* the zygote's open descriptors */
static int zygote_fds(void)
{
	char path[64];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)zpid);
	if (!(d = opendir(path)))
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Send msg (n bytes) with nfd copies of fd; the int32 answer, or INT32_MIN
 * when none came. */
static int32_t request(const void *msg, size_t n, int fd, int nfd)
{
	int fds[4] = { fd, fd, fd, fd };
	int32_t v;

	if (wk_zygote_send(sock, msg, n, fds, nfd) < 0 || recv(sock, &v, sizeof(v), 0) != (ssize_t)sizeof(v))
		return INT32_MIN;
	return v;
}

static void refused(const char *name, const void *msg, size_t n, int nfd, int before)
{
	int fd = open("/dev/null", O_RDWR);
	int32_t v = request(msg, n, fd, nfd);

	close(fd);
	check(v == -EINVAL, name, v == INT32_MIN ? "no answer" : "not -EINVAL");
	printf("  ");
	check(kill(zpid, 0) == 0 && zygote_fds() == before, "the zygote serves on, holding nothing more",
	      "zygote gone or holding descriptors");
}

int main(int argc, char **argv)
{
	static char big[20000], many[200];
	char *zargs[3], line[4096];
	const char *task = "{\"jobId\":\"zc\",\"language\":\"lua\",\"code\":\"print(2 + 2)\"}";
	posix_spawn_file_actions_t fa;
	int sv[2], in[2], out[2], before, st = 0;
	int32_t v = -1;
	ssize_t got;
	char msg[1024];
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: zygote_client WORKER\n");
		return 2;
	}
	zargs[0] = argv[1];
	zargs[1] = (char *)"--zygote";
	zargs[2] = NULL;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return 2;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
	posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
	v = posix_spawn(&zpid, argv[1], &fa, NULL, zargs, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (v)
		return 2;
	close(sv[1]);
	sock = sv[0];
	check(recv(sock, &v, sizeof(v), 0) == (ssize_t)sizeof(v) && v == 0, "ready", "no ready message");
	before = zygote_fds();

	n = (size_t)snprintf(msg, sizeof(msg), "%s%c--isolation%csandbox%c", argv[1], 0, 0, 0);
	refused("no descriptors", msg, n, 0, before);
	refused("one descriptor", msg, n, 1, before);
	refused("four descriptors", msg, n, 4, before);
	refused("not NUL-terminated", msg, n - 1, 2, before);
	refused("empty argv[0]", "\0--isolation\0", 13, 2, before);
	for (size_t i = 0; i < 65; i++)
		memcpy(many + 2 * i, "a", 2);
	refused("65 arguments", many, 130, 2, before);
	memset(big, 'a', sizeof(big) - 1);
	refused("longer than a request may be", big, sizeof(big), 2, before);

	/* then a real one: a worker that is our child, with a result */
	if (pipe(in) || pipe(out))
		return 2;
	{
		int fds[2] = { in[0], out[1] };

		v = wk_zygote_send(sock, msg, n, fds, 2) < 0 || recv(sock, &v, sizeof(v), 0) != (ssize_t)sizeof(v) ? -1 : v;
	}
	close(in[0]);
	close(out[1]);
	check(v > 0, "a well-formed request", "no pid");
	if (v > 0) {
		if (write(in[1], task, strlen(task)) < 0)
			check(0, "task written", strerror(errno));
		close(in[1]);
		got = read(out[0], line, sizeof(line) - 1);
		line[got > 0 ? got : 0] = '\0';
		check(strstr(line, "NOTARY_RESULT: {\"jobId\":\"zc\",\"actualHash\":\"4b227777") != NULL, "its result",
		      line);
		check(waitpid(v, &st, 0) == v && WIFEXITED(st) && WEXITSTATUS(st) == 0, "our child, exit 0",
		      "not our child, or failed");
	}
	close(sock);   /* EOF: the zygote leaves */
	check(waitpid(zpid, &st, 0) == zpid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "zygote ends at EOF",
	      "did not exit 0");
	return failures ? 1 : 0;
}
