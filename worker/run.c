/* SPDX-License-Identifier: MIT */
/*
 * One run: start the runtime child, capture what it writes, enforce the
 * deadline and the output limit, and turn what happened into a verdict.
 *
 * The child's stdout is a pipe read here, so nothing the task prints can
 * reach the worker's own stdout (where the NOTARY_RESULT line goes). It is
 * hashed on the fly: `all` is SHA-256 over every byte, `committed` a copy
 * of `all` taken after the last byte that is not CR or LF. The final hash
 * is `committed`, i.e. the output without its trailing CR/LF run, in O(1)
 * memory however long that run is. (nettle, not the core's OpenSSL
 * SHA-256: its context is a plain struct to copy, and loading and
 * initialising libcrypto cost more than a whole small task.)
 *
 * Sandbox mode: clone() with new user, pid, net, mount, ipc, uts and cgroup
 * namespaces; the child is pid 1 of its pid namespace, so one SIGKILL to it
 * ends every process the task could have made. The worker writes the
 * child's uid/gid maps, then releases it through a sync pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nettle/sha2.h>

#include "worker.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif

/* The node binary's path inside the sandbox and the runner's. */
#define SANDBOX_NODE "/usr/bin/node"
#define SANDBOX_RUNNER "/workproof/runtime/js_runner.js"
/* the runner outside a sandbox: <wk_runtime_dir()>/HOST_RUNNER_NAME */
#define HOST_RUNNER_NAME "js_runner.js"
/* Headroom of RLIMIT_DATA over the V8 old generation: young generation,
 * code space, node's own C++ heap, thread stacks (node needs < 64 MiB of
 * it for a small task: README, "Limits"). ArrayBuffers count here too. */
#define NODE_DATA_HEADROOM (256ull << 20)
/* After the child exits, how long its pipes may take to reach EOF. */
#define DRAIN_NS 200000000ull
#define ERRHEAD 4096
#define STATUS_MAX 1024

int wk_setup_fd = -1;
static int status_fd = -1;

enum killed { NOT_KILLED, KILLED_TIMEOUT, KILLED_OUTPUT };

struct capture {
	struct sha256_ctx all, committed;
	uint64_t out_bytes, err_bytes;
	char errhead[ERRHEAD];
	size_t errlen;
	char status[STATUS_MAX];
	size_t stlen;
	char setup[STATUS_MAX];
	size_t setuplen;
};

void wk_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (status_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(status_fd, buf, (size_t)n) < 0)
		return; /* nobody to tell */
}

void wk_setup_abort(void)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "S %d %s\n", wk_setup_err.permanent, wk_setup_err.msg);

	if (wk_setup_fd >= 0 && n > 0 && write(wk_setup_fd, buf, (size_t)n) < 0)
		_exit(127);
	_exit(127);
}

void wk_setup_done(void)
{
	if (wk_setup_fd >= 0)
		close(wk_setup_fd);
	wk_setup_fd = -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void seterr(struct wk_result *r, enum wk_class cls, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void seterr(struct wk_result *r, enum wk_class cls, const char *fmt, ...)
{
	va_list ap;

	r->cls = cls;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

/* The node binary on the host, or NULL. */
static const char *find_node(void)
{
	static const char *const paths[] = { "/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs" };
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* --- the child ------------------------------------------------------------ */

static void reset_signals(void)
{
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
}

/* The V8 old-space limit node is started with (--max-old-space-size), MiB. */
static uint64_t node_heap_mb(const struct wk_task *t)
{
	uint64_t mb = t->memory >> 20;

	return mb < 16 ? 16 : mb;
}

__attribute__((noreturn)) static void exec_node(const struct wk_task *t, const char *node,
						const char *runner, int sandbox)
{
	char heap[48], permit[PATH_MAX + 32], limit[32];
	char *argv[14], *envp[] = { (char *)"TZ=UTC", NULL };
	int n = 0;

	snprintf(heap, sizeof(heap), "--max-old-space-size=%llu", (unsigned long long)node_heap_mb(t));
	/* the runner's argument: the task's memory limit, against which it
	 * measures the memory in use when the task throws */
	snprintf(limit, sizeof(limit), "%llu", (unsigned long long)t->memory);
	snprintf(permit, sizeof(permit), "--allow-fs-read=%s", runner);
	argv[n++] = (char *)"node";
	argv[n++] = heap;
	argv[n++] = (char *)"--disallow-code-generation-from-strings";
	argv[n++] = (char *)"--random-seed=1";
	argv[n++] = (char *)"--no-expose-wasm";
	argv[n++] = (char *)"--no-warnings";
	/* without it node 20 ignores importModuleDynamically and rejects
	 * import() with an error of the runner's realm (a realm leak) */
	argv[n++] = (char *)"--experimental-vm-modules";
	argv[n++] = (char *)"--experimental-permission";
	argv[n++] = permit;
	argv[n++] = (char *)runner;
	argv[n++] = limit;
	argv[n] = NULL;

	/* The filter first: building it allocates, which the data limit
	 * could refuse (in sanitizer builds it does). setrlimit is
	 * prlimit64(0, ...), which the profile allows. */
	if (sandbox && wk_seccomp_profile(WK_PROFILE_NODE))
		wk_setup_abort();
	/* V8 reserves far more address space than it uses: limit the data
	 * segment (private writable memory), not the address space. */
	if (wk_set_memlimit(RLIMIT_DATA, t->memory + NODE_DATA_HEADROOM))
		wk_setup_abort();
	execve(node, argv, envp);
	wk_fail("execve %s", node);
	wk_setup_abort();
}

/* JavaScript: pid 1 of the sandbox, waits for the runtime (pid 2) and
 * reports its wait status and peak resident set on the setup pipe ("W
 * <status> <maxrss KiB>"), then exits, which ends the namespace. Node must
 * not be pid 1: the kernel drops signals with the default action sent to a
 * namespace's init, so its abort() (V8's heap limit) would not end it. Init
 * holds nothing the task could use. The Lua runtime needs no such process
 * (it raises no signal of its own; see child_sandbox). */
__attribute__((noreturn)) static void sandbox_init(pid_t rt)
{
	char line[64];
	int st = 0, fd, n;
	struct rusage ru;
	pid_t p;

	for (fd = 0; fd < 4; fd++)
		close(fd);
	for (;;) {
		memset(&ru, 0, sizeof(ru));
		p = wait4(-1, &st, 0, &ru);
		if (p == rt)
			break;
		if (p < 0 && errno != EINTR)
			_exit(1);
	}
	n = snprintf(line, sizeof(line), "W %d %ld\n", st, ru.ru_maxrss);
	if (write(wk_setup_fd, line, (size_t)n) != n)
		_exit(1);
	_exit(0);
}

__attribute__((noreturn)) static void child_sandbox(const struct wk_opts *o, struct wk_task *t,
						    const char *node, const int fds[5], const int sync[2])
{
	struct pollfd pf = { sync[0], POLLIN, 0 };
	pid_t rt;
	char c;

	wk_setup_fd = fds[4];
	status_fd = fds[3];
	/* Our copy of the write end would hide the worker's hang-up. */
	close(sync[1]);
	/* Wait for the uid/gid maps. EOF: the worker failed or died. */
	if (read(sync[0], &c, 1) != 1)
		_exit(127);
	reset_signals();
	if (wk_become_nsroot())
		wk_setup_abort();
	/* After the uid change: the kernel clears the parent-death signal
	 * when credentials change. Then make sure the worker did not die
	 * before it was set: it holds the sync pipe open until it is done. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL)) {
		wk_fail("PR_SET_PDEATHSIG");
		wk_setup_abort();
	}
	if (poll(&pf, 1, 0) != 0)
		_exit(127); /* hung up (or data that should not be there) */
	close(sync[0]);
	if (wk_build_root(o, t->lang, node))
		wk_setup_abort();
	if (sethostname("workproof", 9)) {
		wk_fail("sethostname");
		wk_setup_abort();
	}
	if (wk_setup_fds(fds[0], fds[1], fds[2], fds[3], fds[4]))
		wk_setup_abort();
	status_fd = WK_FD_STATUS;
	if (wk_set_rlimits(t, 1) || wk_drop_privileges(1))
		wk_setup_abort();
	/*
	 * The Lua runtime is this process, pid 1 of the sandbox: one process
	 * fewer per task. What pid 1 changes for it: signals with the default
	 * action from inside the namespace are dropped (there is nothing else
	 * inside), and so is SIGXCPU at the soft CPU limit (the worker's wall
	 * clock ends the task first; the hard limit's SIGKILL is delivered);
	 * faults (SIGSEGV, SIGBUS) and seccomp's kill still end it, and its exit
	 * ends the namespace. The worker reads its wait status itself.
	 */
	if (t->lang == WK_LANG_JS) {
		rt = fork();
		if (rt < 0) {
			wk_fail("fork the runtime");
			wk_setup_abort();
		}
		if (rt > 0)
			sandbox_init(rt);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL)) {
			wk_fail("PR_SET_PDEATHSIG");
			wk_setup_abort();
		}
	}
	if (o->probe) {
		if (wk_seccomp_profile(t->lang == WK_LANG_JS ? WK_PROFILE_NODE : WK_PROFILE_LUA))
			wk_setup_abort();
		wk_setup_done();
		wk_probe_main(o->probe, t);
	}
	if (t->lang == WK_LANG_LUA)
		wk_lua_main(t, 1, o->warm);
	exec_node(t, SANDBOX_NODE, SANDBOX_RUNNER, 1);
}

__attribute__((noreturn)) static void child_plain(struct wk_task *t, int warm, const char *node,
						  const int fds[5], pid_t worker)
{
	char runner[PATH_MAX];
	int n;

	wk_setup_fd = fds[4];
	status_fd = fds[3];
	if (prctl(PR_SET_PDEATHSIG, SIGKILL)) {
		wk_fail("PR_SET_PDEATHSIG");
		wk_setup_abort();
	}
	if (getppid() != worker)
		_exit(127); /* the worker died before the signal was armed */
	if (setpgid(0, 0)) { /* one group: the deadline kill takes it whole */
		wk_fail("setpgid");
		wk_setup_abort();
	}
	reset_signals();
	if (wk_setup_fds(fds[0], fds[1], fds[2], fds[3], fds[4]))
		wk_setup_abort();
	status_fd = WK_FD_STATUS;
	if (wk_set_rlimits(t, 0) || wk_drop_privileges(0))
		wk_setup_abort();
	if (t->lang == WK_LANG_LUA)
		wk_lua_main(t, 0, warm);
	n = snprintf(runner, sizeof(runner), "%s/" HOST_RUNNER_NAME, wk_runtime_dir());
	if (n < 0 || (size_t)n >= sizeof(runner)) {
		wk_fail("the runtime directory's path is too long");
		wk_setup_abort();
	}
	exec_node(t, node, runner, 0);
}

/* --- capture ------------------------------------------------------------- */

static void hash_feed(struct capture *c, const unsigned char *p, size_t n)
{
	size_t k = n;

	while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == '\n'))
		k--;
	if (k > 0) {
		/* p[k-1] is not CR/LF: the pending run (if any) and this
		 * chunk up to k are final; snapshot the state there */
		sha256_update(&c->all, k, p);
		c->committed = c->all;
	}
	if (n > k)
		sha256_update(&c->all, n - k, p + k);
}

static void append(char *dst, size_t *len, size_t cap, const unsigned char *p, size_t n)
{
	if (*len + 1 >= cap)
		return;
	if (n > cap - 1 - *len)
		n = cap - 1 - *len;
	memcpy(dst + *len, p, n);
	*len += n;
	dst[*len] = '\0';
}

static void kill_child(pid_t pid, int sandbox)
{
	/* sandbox: pid is init of its pid namespace, its death ends them all;
	 * plain: the child leads a process group */
	if (!sandbox)
		kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

struct loop {
	pid_t pid;
	int pidfd;
	int sandbox;
	int fd[4]; /* out, err, status, setup read ends; -1 when closed */
	uint64_t deadline, limit, err_limit;
	/* results */
	int reaped, wstatus;
	int init;     /* sandbox with an init (JavaScript) that reports the runtime's status */
	int reported; /* that init sent it */
	int done;     /* the runtime said OK and closed its pipes: exiting 0 */
	enum killed killed;
	uint64_t end;
	long maxrss_kb; /* plain: the runtime's peak resident set */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void on_data(struct loop *l, struct capture *c, int which, const unsigned char *buf, size_t n)
{
	uint64_t room;

	switch (which) {
	case 0: /* stdout: hash what fits under the limit, kill past it */
		room = c->out_bytes < l->limit ? l->limit - c->out_bytes : 0;
		hash_feed(c, buf, n < room ? n : (size_t)room);
		c->out_bytes += n;
		if (c->out_bytes > l->limit) {
			if (l->killed == NOT_KILLED) {
				l->killed = KILLED_OUTPUT;
				kill_child(l->pid, l->sandbox);
			}
			close_fd(&l->fd[0]);
		}
		break;
	case 1: /* stderr: keep the head for diagnostics, bound the rest */
		append(c->errhead, &c->errlen, sizeof(c->errhead), buf, n);
		c->err_bytes += n;
		if (c->err_bytes > l->err_limit) {
			if (l->killed == NOT_KILLED) {
				l->killed = KILLED_OUTPUT;
				kill_child(l->pid, l->sandbox);
			}
			close_fd(&l->fd[1]);
		}
		break;
	case 2:
		append(c->status, &c->stlen, sizeof(c->status), buf, n);
		break;
	default:
		append(c->setup, &c->setuplen, sizeof(c->setup), buf, n);
		if ((c->setup[0] == 'W' || strstr(c->setup, "\nW ")) && c->setup[c->setuplen - 1] == '\n')
			l->reported = 1;
		break;
	}
}

static void capture_loop(struct loop *l, struct capture *c)
{
	static unsigned char buf[1 << 16];
	uint64_t drain_until = 0;

	for (;;) {
		struct pollfd pf[5];
		int map[5], np = 0, i, timeout, r;
		uint64_t t = now_ns();

		if (!l->reaped) {
			pf[np].fd = l->pidfd;
			pf[np].events = POLLIN;
			map[np++] = -1;
		}
		for (i = 0; i < 4; i++) {
			if (l->fd[i] < 0)
				continue;
			pf[np].fd = l->fd[i];
			pf[np].events = POLLIN;
			map[np++] = i;
		}
		if (np == 0)
			break;
		/* The runtime's trusted code closes stdout and stderr, writes OK
		 * and closes the status pipe just before it exits 0 (nothing of
		 * the task runs after that): the verdict is final without
		 * waiting for the process's teardown. */
		if (l->fd[0] < 0 && l->fd[1] < 0 && l->fd[2] < 0 && l->killed == NOT_KILLED && !l->reaped &&
		    c->stlen == 3 && !memcmp(c->status, "OK\n", 3)) {
			l->done = 1;
			break;
		}
		/* Sandbox with an init: once the runtime's pipes are closed and
		 * init has reported (or we killed it), the verdict is final.
		 * Init's own exit tears the namespaces down (an RCU grace period
		 * or two): it is reaped after the result line is out (wk_reap). */
		if (l->init && l->fd[0] < 0 && l->fd[1] < 0 && l->fd[2] < 0 &&
		    (l->reported || l->killed != NOT_KILLED))
			break;
		if (l->reaped) {
			if (t >= drain_until)
				break;
			timeout = (int)((drain_until - t + 999999) / 1000000);
		} else if (l->killed == NOT_KILLED) {
			if (t >= l->deadline) {
				l->killed = KILLED_TIMEOUT;
				kill_child(l->pid, l->sandbox);
				continue;
			}
			timeout = (int)((l->deadline - t + 999999) / 1000000);
		} else {
			timeout = 1000; /* killed: waiting for the exit */
		}
		r = poll(pf, (nfds_t)np, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			kill_child(l->pid, l->sandbox);
			break;
		}
		for (i = 0; i < np; i++) {
			ssize_t n;

			if (!pf[i].revents)
				continue;
			if (map[i] < 0) {
				struct rusage ru;

				memset(&ru, 0, sizeof(ru));
				if (wait4(l->pid, &l->wstatus, WNOHANG, &ru) == l->pid) {
					l->maxrss_kb = ru.ru_maxrss;
					l->reaped = 1;
					l->end = now_ns();
					drain_until = l->end + DRAIN_NS;
					if (!l->sandbox)
						kill(-l->pid, SIGKILL); /* stragglers */
				}
				continue;
			}
			if (l->fd[map[i]] < 0)
				continue;
			n = read(l->fd[map[i]], buf, sizeof(buf));
			if (n > 0)
				on_data(l, c, map[i], buf, (size_t)n);
			else if (n == 0 || (errno != EINTR && errno != EAGAIN))
				close_fd(&l->fd[map[i]]);
		}
	}
	if (!l->reaped) {
		l->end = now_ns();
		if (l->done) {
			/* what its wait status will say; reaped after the line (wk_reap) */
			l->wstatus = 0;
		} else if (!l->init || !(l->reported || l->killed != NOT_KILLED)) {
			kill_child(l->pid, l->sandbox);
			while (waitpid(l->pid, &l->wstatus, 0) < 0 && errno == EINTR)
				;
			l->reaped = 1;
		} else if (l->killed != NOT_KILLED) {
			l->wstatus = SIGKILL; /* what the wait status will say */
		}
	}
}

/* The sandbox's pid 1 still exiting when the verdict was made, or a runtime
 * that said OK and closed its pipes (run "done"). */
static pid_t pending = -1;

void wk_reap(void)
{
	struct timespec ts = { 0, 1000000 };
	int i, st;

	if (pending <= 0)
		return;
	/* it is exiting; give it two seconds, then make sure */
	for (i = 0; i < 2000; i++) {
		pid_t p = waitpid(pending, &st, WNOHANG);

		if (p == pending || (p < 0 && errno != EINTR))
			goto done;
		nanosleep(&ts, NULL);
	}
	kill(pending, SIGKILL);
	while (waitpid(pending, &st, 0) < 0 && errno == EINTR)
		;
done:
	/* --isolation none: the child led a process group; anything it left */
	kill(-pending, SIGKILL);
	pending = -1;
}

/* --- verdict --------------------------------------------------------------- */

/* Copy text into a JSON-safe, single-line, ASCII message. */
static void clean_copy(char *dst, size_t cap, const char *src, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < n && j + 1 < cap; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (ch == '\n')
			break;
		dst[j++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	dst[j] = '\0';
}

static const char *signame(int sig, char *buf, size_t n)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, n, "SIG%s", abbrev);
	else
		snprintf(buf, n, "SIG%d", sig);
	return buf;
}

static int status_is(const char *line, size_t n, const char *word)
{
	size_t w = strlen(word);

	return n == w && memcmp(line, word, w) == 0;
}

/* ws: the runtime's wait status (JavaScript's sandbox: from its init); maxrss_kb: the
 * runtime's peak resident set (its rusage), 0 when unknown. The class comes
 * from what the worker observed: its own kills, the wait status and peak
 * memory, the status line of the trusted runtime code. The task's words
 * (its thrown messages, its stderr) only ever fill RUNTIME_ERROR's text. */
static void verdict(const struct loop *l, int ws, long maxrss_kb, const struct capture *c,
		    const struct wk_task *t, struct wk_result *r)
{
	const char *st = c->status;
	size_t stn = strcspn(st, "\n");
	char tmp[64], msg[200];

	r->exec_ms = 0;
	r->out_bytes = c->out_bytes;
	if (WIFEXITED(ws))
		r->exit_code = WEXITSTATUS(ws);
	else if (WIFSIGNALED(ws))
		r->exit_code = 128 + WTERMSIG(ws);

	/* The worker's own kill decides, even if the task managed to exit
	 * before the signal landed: the same verdict, the same exit code. */
	if (l->killed != NOT_KILLED)
		r->exit_code = 128 + SIGKILL;
	if (l->killed == KILLED_TIMEOUT) {
		seterr(r, WK_CLASS_TIMEOUT, "TIMEOUT");
	} else if (l->killed == KILLED_OUTPUT) {
		seterr(r, WK_CLASS_OUTPUT_LIMIT, "OUTPUT_LIMIT");
	} else if (WIFSIGNALED(ws)) {
		int sig = WTERMSIG(ws);

		if (sig == SIGXCPU)
			seterr(r, WK_CLASS_TIMEOUT, "TIMEOUT"); /* the CPU-time backstop */
		else if (t->lang == WK_LANG_JS && sig == SIGABRT &&
			 (uint64_t)maxrss_kb >= node_heap_mb(t) << 10)
			/* V8's heap-limit handler aborts node; JS code cannot
			 * raise a signal, and the peak memory says the heap
			 * really reached its limit */
			seterr(r, WK_CLASS_MEMORY_LIMIT, "MEMORY_LIMIT");
		else
			seterr(r, WK_CLASS_KILLED, "KILLED: %s", signame(sig, tmp, sizeof(tmp)));
	} else if (status_is(st, stn, "OK") && r->exit_code == 0) {
		r->cls = WK_CLASS_NONE;
		r->error[0] = '\0';
	} else if (status_is(st, stn, "MEMORY_LIMIT")) {
		seterr(r, WK_CLASS_MEMORY_LIMIT, "MEMORY_LIMIT");
	} else if (status_is(st, stn, "INSTRUCTION_LIMIT")) {
		seterr(r, WK_CLASS_INSTRUCTION_LIMIT, "INSTRUCTION_LIMIT");
	} else if (!strncmp(st, "RUNTIME_ERROR: ", 15)) {
		r->cls = WK_CLASS_RUNTIME_ERROR;
		clean_copy(r->error, sizeof(r->error), st, stn);
	} else if (!strncmp(st, "BAD_TASK: ", 10)) {
		r->cls = WK_CLASS_BAD_TASK;
		clean_copy(r->error, sizeof(r->error), st, stn);
		r->exit_code = -1;
	} else {
		/* exited without saying why: the head of its stderr helps */
		clean_copy(msg, 120, c->errhead, c->errlen);
		seterr(r, WK_CLASS_RUNTIME_ERROR, "RUNTIME_ERROR: runtime exited with status %d%s%s",
		       r->exit_code, msg[0] ? ": " : "", msg);
	}
}

/* --- the run ----------------------------------------------------------------- */

int wk_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int task_memfd(const struct wk_task *t)
{
	int fd = memfd_create("workproof-task", MFD_CLOEXEC);

	if (fd < 0)
		return -1;
	if (wk_write_all(fd, t->raw, t->raw_len) || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int nosandbox(const char *what, int err)
{
	fprintf(stderr, "workproof-worker: sandbox unavailable: %s: %s\n", what, strerror(err));
	return WK_EXIT_NOSANDBOX;
}

/* A warm sandbox is ready (or getting ready): read the task, check it fits,
 * hand it to the runtime through its task pipe. 0, or -1 with res->error
 * (the caller kills the sandbox). A runtime that died in its setup makes the
 * write fail with EPIPE: that is for the capture loop to report. */
static int hand_over(const struct wk_opts *o, struct wk_task *t, struct wk_result *res, int *task_w)
{
	if (wk_take_task(t, res) || wk_fits_warm(o, t, res))
		return -1;
	if (wk_write_all(*task_w, t->raw, t->raw_len) && errno != EPIPE) {
		seterr(res, WK_CLASS_SANDBOX, "SANDBOX: hand the task over: %s", strerror(errno));
		return -1;
	}
	close_fd(task_w);
	return 0;
}

int wk_run(const struct wk_opts *o, struct wk_task *t, struct wk_result *res)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, st[2] = { -1, -1 }, su[2] = { -1, -1 }, tp[2] = { -1, -1 };
	int sync[2] = { -1, -1 }, task_fd = -1, pidfd = -1, fds[5], i, ws, rc = WK_EXIT_RESULT;
	long maxrss_kb;
	const char *line;
	int sandbox = o->iso == WK_ISO_SANDBOX;
	const char *node = NULL;
	struct capture cap;
	struct loop l;
	uint64_t t0;
	unsigned char md[SHA256_DIGEST_SIZE];
	pid_t pid;

	memset(&cap, 0, sizeof(cap));
	memset(&l, 0, sizeof(l));
	res->exit_code = -1;
	if (t->lang == WK_LANG_JS && !(node = find_node())) {
		seterr(res, WK_CLASS_SANDBOX, "SANDBOX: javascript runtime not available (node not found)");
		return WK_EXIT_RESULT;
	}
	sha256_init(&cap.all);
	cap.committed = cap.all;
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(st, O_CLOEXEC) ||
	    pipe2(su, O_CLOEXEC) || (sandbox && pipe2(sync, O_CLOEXEC))) {
		seterr(res, WK_CLASS_SANDBOX, "SANDBOX: pipe: %s", strerror(errno));
		goto out;
	}
	if (o->warm) {
		if (pipe2(tp, O_CLOEXEC)) {
			seterr(res, WK_CLASS_SANDBOX, "SANDBOX: pipe: %s", strerror(errno));
			goto out;
		}
		task_fd = tp[0];
		tp[0] = -1;
	} else if (t->lang == WK_LANG_JS && !o->probe && (task_fd = task_memfd(t)) < 0) {
		seterr(res, WK_CLASS_SANDBOX, "SANDBOX: task memfd: %s", strerror(errno));
		goto out;
	}
	fds[0] = task_fd;
	fds[1] = out[1];
	fds[2] = err[1];
	fds[3] = st[1];
	fds[4] = su[1];
	fflush(NULL); /* no stdio buffer may be written twice */

	if (sandbox) {
		/* a zygote's workers share its empty net namespace (zygote.c) */
		unsigned long net = wk_shared_netns ? 0 : CLONE_NEWNET;

		pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWPID | net | CLONE_NEWNS |
				     CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PIDFD | SIGCHLD,
				     NULL, &pidfd, NULL, 0);
		if (pid == 0)
			child_sandbox(o, t, node, fds, sync);
	} else {
		pid_t self = getpid();

		pid = fork();
		if (pid == 0)
			child_plain(t, o->warm, node, fds, self);
		if (pid > 0) {
			setpgid(pid, pid); /* also here: no race with our kill */
			pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
			if (pidfd < 0) {
				int e = errno;

				kill(pid, SIGKILL);
				waitpid(pid, NULL, 0);
				seterr(res, WK_CLASS_SANDBOX, "SANDBOX: pidfd_open: %s", strerror(e));
				goto out;
			}
		}
	}
	if (pid < 0) {
		int e = errno;

		if (sandbox && e != EAGAIN && e != ENOMEM) {
			rc = nosandbox("cannot create namespaces (clone)", e);
			goto out;
		}
		seterr(res, WK_CLASS_SANDBOX, "SANDBOX: cannot start the runtime: %s", strerror(e));
		goto out;
	}
	t0 = now_ns();
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&st[1]);
	close_fd(&su[1]);
	close_fd(&task_fd);
	if (sandbox) {
		close_fd(&sync[0]);
		if (wk_write_idmaps(pid, o->uid, o->gid)) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			if (wk_setup_err.permanent) {
				fprintf(stderr, "workproof-worker: sandbox unavailable: %s\n", wk_setup_err.msg);
				rc = WK_EXIT_NOSANDBOX;
				goto out;
			}
			seterr(res, WK_CLASS_SANDBOX, "SANDBOX: %s", wk_setup_err.msg);
			goto out;
		}
		/* sync[1] stays open until the run is over: the child sees
		 * the worker's death as a hang-up */
		if (write(sync[1], "g", 1) != 1) {
			seterr(res, WK_CLASS_SANDBOX, "SANDBOX: release child: %s", strerror(errno));
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			goto out;
		}
	}

	if (o->warm) {
		if (hand_over(o, t, res, &tp[1])) {
			kill_child(pid, sandbox);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			goto out;
		}
		t0 = now_ns(); /* the deadline and executionTimeMs: from the hand-over */
	}
	l.pid = pid;
	l.pidfd = pidfd;
	l.sandbox = sandbox;
	l.init = sandbox && t->lang == WK_LANG_JS;
	l.fd[0] = out[0];
	l.fd[1] = err[0];
	l.fd[2] = st[0];
	l.fd[3] = su[0];
	out[0] = err[0] = st[0] = su[0] = -1;
	l.deadline = t0 + t->timeout_ms * 1000000ull;
	l.limit = t->output_limit;
	l.err_limit = t->output_limit > (64u << 10) ? t->output_limit : (64u << 10);
	capture_loop(&l, &cap);
	if (!l.reaped)
		pending = pid;
	for (i = 0; i < 4; i++)
		close_fd(&l.fd[i]);

	/* setup pipe: "S <permanent> <message>" if the child never reached
	 * the task, "W <status>" from the sandbox's init */
	ws = l.wstatus;
	maxrss_kb = l.init ? 0 : l.maxrss_kb;
	for (line = cap.setup; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
		size_t len = strcspn(line, "\n");
		char msg[200];

		if (line[0] == 'W' && len > 2 && l.init) {
			char *end;

			ws = (int)strtol(line + 2, &end, 10);
			maxrss_kb = *end == ' ' ? strtol(end + 1, NULL, 10) : 0;
		} else if (line[0] == 'S' && len > 4) {
			clean_copy(msg, sizeof(msg), line + 4, len - 4);
			if (sandbox && line[2] == '1') {
				fprintf(stderr, "workproof-worker: sandbox unavailable: %s\n", msg);
				rc = WK_EXIT_NOSANDBOX;
				goto out;
			}
			seterr(res, WK_CLASS_SANDBOX, "SANDBOX: %s", msg);
			res->exit_code = -1;
			goto out;
		}
	}
	verdict(&l, ws, maxrss_kb, &cap, t, res);
	res->exec_ms = (l.end - t0) / 1000000ull;
	sha256_digest(&cap.committed, sizeof(md), md);
	for (i = 0; i < 32; i++)
		snprintf(res->hash + 2 * i, 3, "%02x", md[i]);
out:
	close_fd(&pidfd);
	for (i = 0; i < 2; i++) {
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&st[i]);
		close_fd(&su[i]);
		close_fd(&sync[i]);
		close_fd(&tp[i]);
	}
	close_fd(&task_fd);
	return rc;
}
