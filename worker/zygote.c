/* SPDX-License-Identifier: MIT */
/*
 * workproof-worker --zygote: a worker started once, that forks the workers.
 *
 * An exec'd worker spends ~4.7 ms of CPU before it reads its task (exec, the
 * dynamic loader, libc, the trusted Lua state with lua-cjson): a third of a
 * trivial task's CPU (worker/README.md, "Performance"). The zygote does that
 * work once and forks a worker per request, before any task exists: it never
 * reads a task, so no task's data is in what the workers inherit.
 *
 * Protocol (fd 0 and 1: one end of a SOCK_SEQPACKET socketpair; the
 * controller holds the other, core/host/l_process.c):
 *   zygote -> controller  int32 0                        ready (once, first)
 *   controller -> zygote  "argv0\0arg1\0...\0"           one request
 *                         + SCM_RIGHTS: stdin, stdout[, stderr]
 *   zygote -> controller  int32 pid of the worker, or -errno
 * EOF on the socket (the controller closed it or died) ends the zygote.
 *
 * The worker is cloned with CLONE_PARENT: it is the controller's child, not
 * the zygote's, so the controller waits for it, watches its pidfd and kills
 * its session exactly as for a worker it spawned itself. In the worker the
 * received descriptors become 0, 1 (and 2), every other one is closed, it
 * starts a session of its own, every signal is unblocked and at its default:
 * what the controller's posix_spawn gives an exec'd worker. Then it parses
 * its argv and runs as any worker does.
 *
 * Every worker of one zygote shares its address-space layout (ASLR is per
 * exec), so a zygote serves WK_ZYGOTE_FORKS requests and exits; the
 * controller starts a new one (and a new one when the executable on disk
 * changed). A malformed request is answered -EINVAL and closes what it
 * carried.
 *
 * Before it is ready the zygote moves into a new net namespace of its own
 * (wk_enter_empty_netns), empty: only a loopback, down. Its workers'
 * sandboxes stay in it instead of each creating one: creating and tearing
 * down a net namespace is ~1 ms of kernel CPU, a tenth of a trivial task
 * (docs/sandbox.md, layer 4). Nothing is lost: no task can make a socket
 * (seccomp), and a task's root owns none of this namespace. It also maps
 * all its code for its workers to inherit (map_code_for_forks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"
#include "zygote_msg.h"

#define ZYGOTE_FD 0

static char msg[WK_ZYGOTE_MAX_MSG + 1];
static char *zargv[WK_ZYGOTE_MAX_ARGS + 1];

/*
 * A forked worker's /proc/PID/cmdline (what ps and pgrep -f show) would be
 * the zygote's "workproof-worker --zygote": each worker writes its own
 * arguments over the zygote's argv and environment strings (one contiguous
 * area, setproctitle's method; the kernel reads on past the argv area when
 * its last byte is not NUL). The controller adds WK_ZYGOTE_TITLE_ENV to the
 * zygote's environment to make the area large enough; the environment
 * itself moves to the heap, without that variable.
 */
static char *title;
static size_t title_len, argv_len;   /* the whole area; its argv part */

static void title_init(int argc, char **argv)
{
	extern char **environ;
	char *end = argv[argc - 1] + strlen(argv[argc - 1]) + 1, **env;
	size_t n = 0, k = 0, pre = strlen(WK_ZYGOTE_TITLE_ENV) + 1;

	for (int i = 1; i < argc; i++)
		if (argv[i] != argv[i - 1] + strlen(argv[i - 1]) + 1)
			return;   /* not one area: leave the title alone */
	argv_len = (size_t)(end - argv[0]);
	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return;
	for (size_t i = 0; i < n; i++) {
		if (environ[i] == end)
			end += strlen(end) + 1;
		if (!strncmp(environ[i], WK_ZYGOTE_TITLE_ENV "=", pre))
			continue;
		if (!(env[k] = strdup(environ[i]))) {
			while (k)
				free(env[--k]);
			free(env);
			return;
		}
		k++;
	}
	environ = env;
	title = argv[0];
	title_len = (size_t)(end - title);
}

/* The worker's arguments as its cmdline: NUL-separated when they fit in the
 * argv part, else joined by spaces over the whole area (cut to fit). */
static void title_set(int argc, char **argv)
{
	size_t n = 0, len;
	int sep = '\0';

	if (!title)
		return;
	for (int i = 0; i < argc; i++)
		n += strlen(argv[i]) + 1;
	if (n > argv_len)
		sep = ' ';
	memset(title, 0, title_len);
	n = 0;
	for (int i = 0; i < argc && n + 1 < title_len; i++) {
		len = strlen(argv[i]);
		if (len > title_len - 1 - n)
			len = title_len - 1 - n;
		memcpy(title + n, argv[i], len);
		n += len;
		if (i + 1 < argc && n + 1 < title_len)
			title[n++] = (char)sep;
	}
}

static void reply(int32_t v)
{
	ssize_t n;

	do
		n = send(ZYGOTE_FD, &v, sizeof(v), MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(v))
		_exit(0); /* the controller is gone */
}

static void close_all(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Have every worker start with the zygote's code mapped. fork() copies no
 * page-table entry of a file mapping that has no private (anonymous) page,
 * so each worker and its sandbox would fault in the program's and the
 * libraries' code and read-only data page by page again (~55 faults a
 * task; a fault is ~10 us on a paravirtualised guest). Giving each such
 * mapping one private page (made writable for a moment, one byte rewritten
 * with itself) makes fork() copy its entries; MADV_POPULATE_READ maps all
 * of it here first. Best effort: a mapping the kernel refuses to change is
 * left as it was. The one page copied per mapping is the memory cost.
 */
static void map_code_for_forks(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perms[5], path[256], byte;
		volatile char *page;
		int prot;

		/* read-only private mappings of a file (not [vdso] and the like) */
		if (sscanf(line, "%lx-%lx %4s %*x %*s %*u %255s", &lo, &hi, perms, path) != 4 ||
		    path[0] != '/' || perms[1] != '-' || perms[3] != 'p')
			continue;
		prot = PROT_READ | (perms[2] == 'x' ? PROT_EXEC : 0);
		if (perms[0] != 'r' || mprotect((void *)lo, hi - lo, prot | PROT_WRITE))
			continue;
		page = (volatile char *)lo;
		byte = page[0];
		page[0] = byte;   /* the same byte, in a private copy of the page */
		if (mprotect((void *)lo, hi - lo, prot))
			_exit(1);   /* cannot happen: it was so a moment ago */
#ifdef MADV_POPULATE_READ
		madvise((void *)lo, hi - lo, MADV_POPULATE_READ);   /* Linux 5.14 */
#endif
	}
	fclose(f);
}

/* In the new worker: the received fds as 0, 1 (, 2), nothing else open, a
 * session of its own, signals unblocked and at their defaults. */
static void become_worker(const int *fds, int nfd)
{
	sigset_t none;

	for (int i = 0; i < nfd; i++)
		if (dup2(fds[i], i) < 0)
			_exit(127);
	if (close_range(3, ~0u, 0) && errno != ENOSYS)
		_exit(127);
	if (setsid() < 0)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
}

int wk_zygote(int argc, char ***argv)
{
	unsigned forks = 0;
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(ZYGOTE_FD, SOL_SOCKET, SO_TYPE, &type, &len) || type != SOCK_SEQPACKET) {
		fprintf(stderr, "workproof-worker: --zygote needs a SOCK_SEQPACKET socket as fds 0 and 1 "
				"(the host starts it: worker/README.md, \"Zygote\")\n");
		exit(WK_EXIT_USAGE);
	}
	title_init(argc, *argv);
	wk_enter_empty_netns();
	map_code_for_forks();
	reply(0);
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(4 * sizeof(int))];
		} ctl;
		struct iovec iov = { msg, sizeof(msg) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		int fds[4], nfd = 0, nargs;
		ssize_t n = recvmsg(ZYGOTE_FD, &mh, MSG_CMSG_CLOEXEC);
		long pid;
		int err;

		/* EOF, or ECONNRESET: the host closed the socket before it read
		 * what we sent (the "ready" of a zygote it gave up on) */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			_exit(0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "workproof-worker: zygote: recvmsg: %s\n", strerror(errno));
			_exit(1);
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (nfd < 4)
					fds[nfd++] = fd;
				else
					close(fd);
			}
		}
		nargs = wk_zygote_unpack(msg, (size_t)n, zargv, WK_ZYGOTE_MAX_ARGS);
		if (nargs < 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || nfd < 2 || nfd > 3) {
			close_all(fds, nfd);
			reply(-EINVAL);
			continue;
		}
		/* the worker's exit signal is ours (SIGCHLD), sent to our parent */
		pid = syscall(SYS_clone, CLONE_PARENT, 0, NULL, NULL, 0);
		err = errno;
		if (pid == 0) {
			become_worker(fds, nfd);
			title_set(nargs, zargv);
			*argv = zargv;
			return nargs;
		}
		close_all(fds, nfd);
		reply(pid > 0 ? (int32_t)pid : -err);
		if (pid > 0 && ++forks >= WK_ZYGOTE_FORKS)
			_exit(0);
	}
}
