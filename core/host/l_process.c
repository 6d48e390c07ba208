/* SPDX-License-Identifier: MIT */
/*
 * Child processes on the loop, for the trusted host library (the worker
 * backends in lua/workproof/worker.lua): spawn with pipes, read stdout with
 * back-pressure, capped stderr, a wall-clock deadline, kill, wait.
 *
 *   local p = host.process_spawn{ file=, args={...}, stdin="...",
 *                                 timeout=seconds, stderr_limit=bytes,
 *                                 inherit_stderr=false }
 *   p:read()  -> chunk | nil (EOF)      yields the calling host coroutine
 *   p:wait()  -> { exit_status=, term_signal=, timed_out=, stderr=, pid= }
 *   p:kill([signal=SIGKILL])            signals the whole process group
 *   p.pid, p.exited
 *
 * `zygote = true`: forked by a zygote of `file` (below), same contract.
 * With `keep_stdin = true` the child's stdin stays open (and no deadline
 * runs) until p:send(data[, timeout]) writes data, closes it and starts the
 * deadline: a worker prepared ahead of its task (lua/workproof/worker.lua).
 *
 * Lifetime (docs/conventions.md §1): the userdata points at a malloc'd
 * struct proc that owns five libuv handles; the struct is freed only when the
 * last of them has been closed. The child runs in a session of its own
 * (setsid) so a kill reaches everything it forked.
 *
 * The child is started with posix_spawn (glibc: clone with CLONE_VM |
 * CLONE_VFORK), not libuv's fork: a fork copies the host's page tables and
 * makes every page it writes afterwards fault once (copy-on-write), which
 * cost the host 1.5 ms of CPU per spawn with a small heap and 5 ms with a
 * large one (docs/operations.md, "Performance"). Its exit is watched through
 * a pidfd on the loop (Linux 5.3), and reaped with waitpid.
 *
 * With `zygote = true` (the worker backends) the child is forked by a
 * `FILE --zygote` this process keeps running instead (worker/zygote.c): the
 * same descriptors, session and signals, and still our child (CLONE_PARENT),
 * without the exec and the worker's start-up. Until a zygote is ready, and
 * whenever it fails, the child is spawned as above.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"
#include "../../worker/zygote_msg.h"

#define PROC_MT "workproof.process"
#define READ_CHUNK 65536
#define MAX_ARGS 64

extern char **environ;

struct proc {
	struct wp_hbase base;    /* close_cb: proc_handle_closed */
	uv_poll_t exit_poll;     /* the child's pidfd: readable once it exited */
	int pidfd;
	pid_t pid;
	uv_pipe_t in, out, err;
	uv_timer_t deadline;
	uv_write_t write_req;
	int open_handles;        /* freed when this reaches 0 */
	struct proc **box;       /* the Lua userdata's pointer, nulled on free */

	char *stdin_data;
	char *read_buf;          /* one read outstanding at a time */
	char *err_buf;
	size_t err_len, err_limit;

	lua_State *reader;       /* coroutine waiting in p:read() */
	lua_State *waiter;       /* coroutine waiting in p:wait() */
	int out_eof, exited, timed_out;
	int stdin_open;          /* keep_stdin: p:send() not called yet */
	int64_t exit_status;
	int term_signal;
};

static void proc_free_if_done(struct proc *p)
{
	if (p->open_handles > 0)
		return;
	if (p->box)
		*p->box = NULL;
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p->stdin_data);
	free(p->read_buf);
	free(p->err_buf);
	free(p);
}

static void proc_handle_closed(uv_handle_t *h)
{
	struct proc *p = h->data;

	p->open_handles--;
	proc_free_if_done(p);
}

static void close_once(struct proc *p, uv_handle_t *h)
{
	(void)p;
	if (!uv_is_closing(h))
		uv_close(h, proc_handle_closed);
}

static void push_status(lua_State *L, struct proc *p)
{
	lua_createtable(L, 0, 5);
	lua_pushnumber(L, (lua_Number)p->exit_status);
	lua_setfield(L, -2, "exit_status");
	lua_pushinteger(L, p->term_signal);
	lua_setfield(L, -2, "term_signal");
	lua_pushboolean(L, p->timed_out);
	lua_setfield(L, -2, "timed_out");
	lua_pushlstring(L, p->err_buf ? p->err_buf : "", p->err_len);
	lua_setfield(L, -2, "stderr");
	lua_pushinteger(L, p->pid);
	lua_setfield(L, -2, "pid");
}

/* Wake the p:wait() coroutine once the child exited and stdout hit EOF or
 * is no longer read: by then stderr is as complete as it will get. */
static void maybe_wake_waiter(struct proc *p)
{
	lua_State *co = p->waiter;

	if (!co || !p->exited)
		return;
	p->waiter = NULL;
	push_status(co, p);
	wp_host_resume(co, 1);
}

static void alloc_err(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/* The child has exited, so what it wrote to stderr is in the pipe; but the
 * pipe's readable event may come after this exit callback, and p:wait()
 * would return without the last lines. Read what is there now (the fd is
 * non-blocking: EAGAIN ends it; EOF is left to the read callback). */
static void drain_err(struct proc *p)
{
	uv_os_fd_t fd;
	uv_buf_t b;
	ssize_t n;

	if (uv_is_closing((uv_handle_t *)&p->err) || !uv_is_active((uv_handle_t *)&p->err) ||
	    uv_fileno((uv_handle_t *)&p->err, &fd) != 0)
		return;
	for (;;) {
		alloc_err((uv_handle_t *)&p->err, 0, &b);
		n = read(fd, b.base, b.len);
		if (n <= 0)
			break;
		if (b.base == p->err_buf + p->err_len)
			p->err_len += (size_t)n;
	}
}

/*
 * Orphans. A child killed with its group, or one that exits before its own
 * children (a worker and its sandbox's pid 1), leaves members that are
 * reparented to pid 1: to this process where it IS pid 1 (a container
 * without an init) or a child subreaper, and then nobody else reaps them:
 * one zombie each, for ever. So the group of every child reaped here is
 * remembered and swept at each reap that follows: waitid(P_PGID) reaps only
 * exited children of ours in that group, and ECHILD (none of ours left
 * there, the usual case: the orphans went to a real init) forgets the group.
 * Every child runs in a session (and group) of its own, so a group is never
 * a live child's. The host's loop runs on one thread.
 */
#define SWEEP_GROUPS 64
static pid_t sweep_groups[SWEEP_GROUPS];
static unsigned sweep_next;

static void sweep_orphans(pid_t group)
{
	siginfo_t si;

	sweep_groups[sweep_next++ % SWEEP_GROUPS] = group;
	for (int i = 0; i < SWEEP_GROUPS; i++) {
		while (sweep_groups[i] > 0) {
			memset(&si, 0, sizeof(si));
			if (waitid(P_PGID, (id_t)sweep_groups[i], &si, WEXITED | WNOHANG) < 0) {
				if (errno != EINTR)
					sweep_groups[i] = 0;
			} else if (si.si_pid == 0) {
				break; /* members still running: at a later reap */
			}
		}
	}
}

static void proc_exited(uv_poll_t *h, int status, int events)
{
	struct proc *p = h->data;
	int ws = 0;
	pid_t r;

	(void)status;
	(void)events;
	do
		r = waitpid(p->pid, &ws, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return; /* not yet (a spurious wake-up) */
	sweep_orphans(p->pid);
	drain_err(p);
	p->exited = 1;
	p->exit_status = r > 0 && WIFEXITED(ws) ? WEXITSTATUS(ws) : 0;
	p->term_signal = r > 0 && WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
	uv_timer_stop(&p->deadline);
	close_once(p, (uv_handle_t *)&p->deadline);
	close_once(p, (uv_handle_t *)&p->exit_poll);
	maybe_wake_waiter(p);
}

static void on_deadline(uv_timer_t *t)
{
	struct proc *p = t->data;

	if (p->exited)
		return;
	p->timed_out = 1;
	kill(-p->pid, SIGKILL);
	kill(p->pid, SIGKILL);
}

static void alloc_out(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct proc *p = h->data;

	(void)hint;
	*buf = uv_buf_init(p->read_buf, READ_CHUNK);
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct proc *p = s->data;
	lua_State *co = p->reader;

	if (n == 0)
		return;
	/* back-pressure: nothing more is read until the next p:read() */
	uv_read_stop(s);
	p->reader = NULL;
	if (n < 0) {
		p->out_eof = 1;
		close_once(p, (uv_handle_t *)s);
		if (co) {
			lua_pushnil(co);
			wp_host_resume(co, 1);
		}
		return;
	}
	if (co) {
		lua_pushlstring(co, buf->base, (size_t)n);
		wp_host_resume(co, 1);
	}
}

static void alloc_err(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char sink[4096];
	struct proc *p = h->data;

	(void)hint;
	if (p->err_len < p->err_limit)
		*buf = uv_buf_init(p->err_buf + p->err_len, (unsigned)(p->err_limit - p->err_len));
	else
		*buf = uv_buf_init(sink, sizeof(sink));  /* over the cap: drained, dropped */
}

static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct proc *p = s->data;

	if (n < 0) {
		close_once(p, (uv_handle_t *)s);
		return;
	}
	if (buf->base == p->err_buf + p->err_len)
		p->err_len += (size_t)n;
}

static void on_written(uv_write_t *req, int status)
{
	struct proc *p = req->data;

	(void)status;   /* EPIPE when the child ignores its stdin: not our error */
	close_once(p, (uv_handle_t *)&p->in);
}

/* Write p->stdin_data (n bytes) to the child's stdin, then close it. */
static void write_stdin(struct proc *p, size_t n)
{
	uv_buf_t b = uv_buf_init(p->stdin_data, (unsigned)n);

	p->write_req.data = p;
	if (!n || uv_write(&p->write_req, (uv_stream_t *)&p->in, &b, 1, on_written))
		close_once(p, (uv_handle_t *)&p->in);
}

static struct proc *check_proc(lua_State *L)
{
	struct proc **box = luaL_checkudata(L, 1, PROC_MT);

	luaL_argcheck(L, *box != NULL, 1, "process handle already released");
	return *box;
}

static int get_args(lua_State *L, char **args)
{
	int n = 0;

	lua_getfield(L, 1, "file");
	args[n++] = (char *)luaL_checkstring(L, -1);
	lua_pop(L, 1);   /* the string stays alive in the opts table */
	lua_getfield(L, 1, "args");
	if (!lua_isnil(L, -1)) {
		luaL_checktype(L, -1, LUA_TTABLE);
		for (int i = 1;; i++) {
			lua_rawgeti(L, -1, i);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				break;
			}
			if (n >= MAX_ARGS - 1)
				luaL_error(L, "process_spawn: too many args");
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "process_spawn: args[%d] is not a string", i);
			args[n++] = (char *)lua_tostring(L, -1);
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
	args[n] = NULL;
	return n;
}

/* Start args[0] (a PATH search when it has no slash) with the child ends
 * of the pipes as its fds 0, 1 and 2 (err_fd < 0: our own fd 2) and no
 * other descriptor (a library's socket opened without close-on-exec, such
 * as libcurl's, must not live on in a worker), in a session of its own,
 * every signal at its default and unblocked. 0, or an errno value. */
static int spawn(char **args, char **envp, int in_fd, int out_fd, int err_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int rc;

	sigfillset(&all);
	sigemptyset(&none);
	if ((rc = posix_spawn_file_actions_init(&fa)))
		return rc;
	if ((rc = posix_spawnattr_init(&attr))) {
		posix_spawn_file_actions_destroy(&fa);
		return rc;
	}
	if (!(rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) &&
	    !(rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) &&
	    !(rc = err_fd >= 0 ? posix_spawn_file_actions_adddup2(&fa, err_fd, 2) : 0) &&
	    !(rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) &&
	    !(rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGDEF |
							      POSIX_SPAWN_SETSIGMASK)) &&
	    !(rc = posix_spawnattr_setsigdefault(&attr, &all)) && !(rc = posix_spawnattr_setsigmask(&attr, &none)))
		rc = posix_spawnp(pid, args[0], &fa, &attr, args, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

/*
 * The zygote (worker/zygote.c). One per process, for the executable the last
 * zygote spawn named; the host's loop runs on one thread. Replaced after
 * WK_ZYGOTE_FORKS workers (when it exits by itself), when it fails, and when
 * the executable on disk changes. One that dies before it is ready is not
 * restarted for ZYGOTE_BACKOFF seconds: every worker is spawned meanwhile.
 * A fork takes it about a millisecond; ZYGOTE_REPLY_MS is what the loop
 * waits, at most, before it gives up on a zygote that hangs.
 */
#define ZYGOTE_REPLY_MS 1000
#define ZYGOTE_BACKOFF 10

static struct {
	int sock;              /* -1: none running */
	pid_t pid;
	int ready;             /* its first message (0) was read */
	unsigned forks;        /* workers it forked */
	struct stat st;        /* the executable it was started from */
	char file[PATH_MAX];
	time_t backoff_until;  /* CLOCK_MONOTONIC seconds */
} zyg = { .sock = -1 };

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* Close its socket, kill it and reap it (a process waiting in recvmsg, or
 * already leaving: its exit takes the loop well under a millisecond, once
 * per WK_ZYGOTE_FORKS workers). */
static void zygote_stop(void)
{
	if (zyg.sock < 0)
		return;
	close(zyg.sock);
	zyg.sock = -1;
	kill(zyg.pid, SIGKILL);
	while (waitpid(zyg.pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* Our environment and WK_ZYGOTE_TITLE_ENV (zygote_msg.h), or NULL. */
static char **zygote_env(void)
{
	static char room[sizeof(WK_ZYGOTE_TITLE_ENV) + WK_ZYGOTE_TITLE_ROOM + 1];
	size_t n = 0;
	char **env;

	while (environ[n])
		n++;
	env = malloc((n + 2) * sizeof(*env));
	if (!env)
		return NULL;
	memcpy(env, environ, n * sizeof(*env));
	if (!room[0]) {
		memset(room, 'x', sizeof(room) - 1);
		memcpy(room, WK_ZYGOTE_TITLE_ENV "=", sizeof(WK_ZYGOTE_TITLE_ENV));
	}
	env[n] = room;
	env[n + 1] = NULL;
	return env;
}

static void zygote_start(const char *file, const struct stat *st)
{
	char *args[] = { (char *)file, (char *)"--zygote", NULL }, **env;
	int sv[2], rc;

	if (mono_now() < zyg.backoff_until || strlen(file) >= sizeof(zyg.file) || !(env = zygote_env()))
		return;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		free(env);
		return;
	}
	rc = spawn(args, env, sv[1], sv[1], -1, &zyg.pid);
	free(env);
	close(sv[1]);
	if (rc) {
		close(sv[0]);
		return;
	}
	zyg.sock = sv[0];
	zyg.ready = 0;
	zyg.forks = 0;
	zyg.st = *st;
	strcpy(zyg.file, file);
}

/* Receive one int32 from the zygote, waiting at most ms (0: not at all).
 * 0, or an errno value (EAGAIN: nothing yet). */
static int zygote_recv(int32_t *v, int ms)
{
	struct pollfd pf = { zyg.sock, POLLIN, 0 };
	ssize_t r;
	int n;

	while ((n = poll(&pf, 1, ms)) < 0 && errno == EINTR)
		;
	if (n == 0)
		return ms ? ETIMEDOUT : EAGAIN;
	r = n < 0 ? -1 : recv(zyg.sock, v, sizeof(*v), MSG_DONTWAIT);
	return r == (ssize_t)sizeof(*v) ? 0 : EPIPE;
}

/* Ask the zygote for a child, as spawn() would start it. 0 with *pid; an
 * errno value: spawn() it instead; a negative errno value: the request went
 * out but no answer came back (the zygote died or hung), so a worker may
 * hold these pipes: spawn() it on new ones. A relative args[0] (a relative
 * WORKPROOF_BUILD or worker.path) names the zygote by its absolute path,
 * which is what identifies it. */
static int zygote_spawn(char **args, int in_fd, int out_fd, int err_fd, pid_t *pid)
{
	char msg[WK_ZYGOTE_MAX_MSG], abs[PATH_MAX];
	const char *file = args[0];
	int fds[3] = { in_fd, out_fd, err_fd }, rc;
	struct stat st;
	size_t n;
	int32_t v;

	if (file[0] != '/' && !(file = realpath(args[0], abs)))
		return errno;
	if (stat(file, &st))
		return errno;
	if (zyg.sock >= 0 && (strcmp(zyg.file, file) || st.st_dev != zyg.st.st_dev ||
			      st.st_ino != zyg.st.st_ino || st.st_mtim.tv_sec != zyg.st.st_mtim.tv_sec ||
			      st.st_mtim.tv_nsec != zyg.st.st_mtim.tv_nsec))
		zygote_stop();   /* another executable, or this one replaced */
	if (zyg.sock < 0) {
		zygote_start(file, &st);
		return EAGAIN;
	}
	if (!zyg.ready) {
		rc = zygote_recv(&v, 0);
		if (rc == EAGAIN)
			return rc;
		if (rc || v != 0) {   /* it died (or spoke) before it was ready */
			zyg.backoff_until = mono_now() + ZYGOTE_BACKOFF;
			zygote_stop();
			return EPIPE;
		}
		zyg.ready = 1;
	}
	n = wk_zygote_pack(args, msg, sizeof(msg));
	if (!n)
		return E2BIG;
	if (wk_zygote_send(zyg.sock, msg, n, fds, err_fd >= 0 ? 3 : 2) < 0) {
		rc = errno;   /* EPIPE: it is gone */
		zygote_stop();
		return rc;
	}
	rc = zygote_recv(&v, ZYGOTE_REPLY_MS);
	if (rc) {
		zygote_stop();
		return -rc;
	}
	if (v <= 0)
		return v < 0 ? -v : EPROTO;   /* it could not fork: it stays */
	*pid = v;
	/* it leaves after its last worker: retire it now, before a request
	 * could reach it while it exits */
	if (++zyg.forks >= WK_ZYGOTE_FORKS)
		zygote_stop();
	return 0;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* The child's stdin, stdout and (unless inherited) stderr pipes: read and
 * write ends in fds[0..5], -1 where none. 0, or -1 with errno. */
static int make_pipes(int fds[6], int inherit_err)
{
	for (int i = 0; i < 6; i++)
		fds[i] = -1;
	return pipe2(fds, O_CLOEXEC) || pipe2(fds + 2, O_CLOEXEC) || (!inherit_err && pipe2(fds + 4, O_CLOEXEC))
		       ? -1 : 0;
}

/* host.process_spawn(opts) -> process | nil, "ESPAWN: ..." */
static int l_spawn(lua_State *L)
{
	struct wp_host *h = wp_host_of(L);
	/* pipe ends: stdin r/w, stdout r/w, stderr r/w */
	int fds[6] = { -1, -1, -1, -1, -1, -1 };
	char *args[MAX_ARGS];
	struct proc *p, **box;
	const char *in;
	size_t in_len = 0;
	double timeout;
	int rc, inherit_err, keep_in, use_zygote;

	luaL_checktype(L, 1, LUA_TTABLE);
	get_args(L, args);
	/* a long-lived child (a serve process under --processes) logs straight
	 * to our stderr instead of into a capped buffer */
	lua_getfield(L, 1, "inherit_stderr");
	inherit_err = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "zygote");
	use_zygote = lua_toboolean(L, -1);
	lua_pop(L, 1);
	lua_getfield(L, 1, "keep_stdin");
	keep_in = lua_toboolean(L, -1);
	lua_getfield(L, 1, "stdin");
	in = luaL_optlstring(L, -1, "", &in_len);
	lua_getfield(L, 1, "timeout");
	timeout = luaL_optnumber(L, -1, 0);
	lua_getfield(L, 1, "stderr_limit");
	lua_Integer err_limit = luaL_optinteger(L, -1, 65536);
	lua_pop(L, 4);
	luaL_argcheck(L, !keep_in || in_len == 0, 1, "keep_stdin with stdin: send it with p:send()");
	luaL_argcheck(L, timeout >= 0 && timeout < 1e7, 1, "timeout out of range");
	luaL_argcheck(L, err_limit >= 0 && err_limit <= (1 << 24), 1, "stderr_limit out of range");

	p = calloc(1, sizeof(*p));
	if (!p)
		return lwp_fail(L, "ENOMEM", "process_spawn: out of memory");
	p->pidfd = -1;
	p->read_buf = malloc(READ_CHUNK);
	p->err_limit = (size_t)err_limit;
	p->err_buf = malloc(p->err_limit + 1);
	p->stdin_data = malloc(in_len + 1);
	if (!p->read_buf || !p->err_buf || !p->stdin_data) {
		proc_free_if_done(p);
		return lwp_fail(L, "ENOMEM", "process_spawn: out of memory");
	}
	memcpy(p->stdin_data, in, in_len);
	p->base.magic = WP_HBASE_MAGIC;
	p->base.close_cb = proc_handle_closed;

	if (make_pipes(fds, inherit_err)) {
		rc = errno;
		goto fail;
	}
	rc = use_zygote ? zygote_spawn(args, fds[0], fds[3], inherit_err ? -1 : fds[5], &p->pid) : EAGAIN;
	if (rc < 0) {
		/* a worker may hold these pipes: spawn one on new ones (that
		 * worker, if any, reads EOF and leaves) */
		close_fds(fds, 6);
		if (make_pipes(fds, inherit_err)) {
			rc = errno;
			goto fail;
		}
	}
	if (rc)
		rc = spawn(args, environ, fds[0], fds[3], inherit_err ? -1 : fds[5], &p->pid);
	if (rc)
		goto fail;
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
	if (p->pidfd < 0) {
		rc = errno;
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		while (waitpid(p->pid, NULL, 0) < 0 && errno == EINTR)
			;
		goto fail;
	}
	close(fds[0]);
	close(fds[3]);
	if (fds[5] >= 0)
		close(fds[5]);

	uv_pipe_init(h->loop, &p->in, 0);
	uv_pipe_init(h->loop, &p->out, 0);
	uv_pipe_init(h->loop, &p->err, 0);
	uv_timer_init(h->loop, &p->deadline);
	uv_poll_init(h->loop, &p->exit_poll, p->pidfd);
	p->open_handles = 5;
	p->in.data = p->out.data = p->err.data = p->deadline.data = p;
	p->exit_poll.data = p;
	uv_pipe_open(&p->in, fds[1]);
	uv_pipe_open(&p->out, fds[2]);
	if (!inherit_err)
		uv_pipe_open(&p->err, fds[4]);
	uv_poll_start(&p->exit_poll, UV_READABLE, proc_exited);

	if (keep_in)
		p->stdin_open = 1;
	else
		write_stdin(p, in_len);
	if (inherit_err)
		close_once(p, (uv_handle_t *)&p->err);   /* never opened: the child has our fd 2 */
	else
		uv_read_start((uv_stream_t *)&p->err, alloc_err, on_err);
	if (timeout > 0)
		uv_timer_start(&p->deadline, on_deadline, (uint64_t)(timeout * 1000.0 + 0.5), 0);

	box = lua_newuserdata(L, sizeof(*box));
	*box = p;
	p->box = box;
	luaL_getmetatable(L, PROC_MT);
	lua_setmetatable(L, -2);
	return 1;
fail:
	close_fds(fds, 6);
	proc_free_if_done(p);
	return lwp_fail(L, "ESPAWN", "%s: %s", args[0], uv_strerror(uv_translate_sys_error(rc)));
}

static int l_read(lua_State *L)
{
	struct proc *p = check_proc(L);

	if (p->out_eof) {
		lua_pushnil(L);
		return 1;
	}
	if (p->reader)
		return luaL_error(L, "p:read(): another coroutine is already reading");
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "p:read(): not in a host coroutine");
	p->reader = L;
	uv_read_start((uv_stream_t *)&p->out, alloc_out, on_out);
	return lua_yield(L, 0);
}

/* p:send(data[, timeout]) -> true | nil, "ECODE: ...": a keep_stdin child's
 * input, once; the deadline (seconds, 0: none) starts now. */
static int l_send(lua_State *L)
{
	struct proc *p = check_proc(L);
	size_t n;
	const char *data = luaL_checklstring(L, 2, &n);
	double timeout = luaL_optnumber(L, 3, 0);
	char *copy;

	luaL_argcheck(L, timeout >= 0 && timeout < 1e7, 3, "timeout out of range");
	if (!p->stdin_open)
		return luaL_error(L, "p:send(): stdin already sent or not kept open");
	if (p->exited)
		return lwp_fail(L, "EPIPE", "p:send(): the process has exited");
	copy = realloc(p->stdin_data, n + 1);
	if (!copy)
		return lwp_fail(L, "ENOMEM", "p:send(): out of memory");
	memcpy(copy, data, n);
	p->stdin_data = copy;
	p->stdin_open = 0;
	write_stdin(p, n);
	if (timeout > 0)
		uv_timer_start(&p->deadline, on_deadline, (uint64_t)(timeout * 1000.0 + 0.5), 0);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_wait(lua_State *L)
{
	struct proc *p = check_proc(L);

	if (p->exited) {
		push_status(L, p);
		return 1;
	}
	if (p->waiter)
		return luaL_error(L, "p:wait(): another coroutine is already waiting");
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "p:wait(): not in a host coroutine");
	p->waiter = L;
	return lua_yield(L, 0);
}

static int l_kill(lua_State *L)
{
	struct proc *p = check_proc(L);
	int sig = (int)luaL_optinteger(L, 2, SIGKILL);

	luaL_argcheck(L, sig > 0 && sig < 65, 2, "bad signal");
	if (!p->exited) {
		kill(-p->pid, sig);
		kill(p->pid, sig);
	}
	return 0;
}

static int l_index(lua_State *L)
{
	struct proc *p = check_proc(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "pid")) {
		lua_pushinteger(L, p->pid);
		return 1;
	}
	if (!strcmp(k, "exited")) {
		lua_pushboolean(L, p->exited);
		return 1;
	}
	luaL_getmetatable(L, PROC_MT);
	lua_getfield(L, -1, "__methods");
	lua_getfield(L, -1, k);
	return 1;
}

/* Collected with the child still running: kill it, close its pipes; the
 * struct itself goes when the close callbacks have run. */
static int l_gc(lua_State *L)
{
	struct proc **box = luaL_checkudata(L, 1, PROC_MT);
	struct proc *p = *box;

	if (!p)
		return 0;
	*box = NULL;
	p->box = NULL;
	p->reader = p->waiter = NULL;
	if (!p->exited) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
	}
	close_once(p, (uv_handle_t *)&p->out);
	close_once(p, (uv_handle_t *)&p->err);
	close_once(p, (uv_handle_t *)&p->in);
	return 0;
}

/* host.kill(pid, [signal=SIGKILL], [group=false]) -> true | nil, err:
 * for processes the host knows only by pid (orphans of a crashed host). */
static int l_kill_pid(lua_State *L)
{
	lua_Integer pid = luaL_checkinteger(L, 1);
	int sig = (int)luaL_optinteger(L, 2, SIGKILL);
	int group = lua_toboolean(L, 3);

	luaL_argcheck(L, pid > 1, 1, "refusing pid <= 1");
	luaL_argcheck(L, sig >= 0 && sig < 65, 2, "bad signal");
	if (group)
		kill(-(pid_t)pid, sig);
	if (kill((pid_t)pid, sig) && !group)
		return lwp_fail(L, "ESRCH", "kill %d: %s", (int)pid, strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

void lwp_host_open_process(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "read", l_read },
		{ "wait", l_wait },
		{ "kill", l_kill },
		{ "send", l_send },
		{ NULL, NULL },
	};

	static const luaL_Reg meta[] = { { "__index", l_index }, { "__gc", l_gc }, { NULL, NULL } };
	static const luaL_Reg fns[] = { { "process_spawn", l_spawn }, { "kill", l_kill_pid },
					{ NULL, NULL } };

	lwp_class(L, PROC_MT, meta, NULL);
	/* l_index looks the methods up here (a process's fields come first) */
	luaL_getmetatable(L, PROC_MT);
	lua_newtable(L);
	lwp_setfuncs(L, methods);
	lua_setfield(L, -2, "__methods");
	lua_pop(L, 1);
	lwp_setfuncs(L, fns);
}
