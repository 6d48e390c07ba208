/* SPDX-License-Identifier: MIT */
/*
 * seccomp-bpf filters of the runtime child (libseccomp). worker/README.md
 * lists every allowed system call with the reason it is there.
 *
 * Two allowlists, default action KILL_PROCESS (the task dies with SIGSYS,
 * reported as "KILLED: SIGSYS"); a few calls that libraries probe answer
 * an errno instead so that they take their fallback path:
 *
 *   lua   the interpreter runs in this very process after the filter is
 *         loaded; it only writes its output and exits (memory syscalls are
 *         there for libc; nothing may become executable).
 *   node  everything node needs from execve to exit: loader, V8 (threads,
 *         memory, pkeys), libuv's loop. No process creation (clone only
 *         with CLONE_THREAD), no sockets, no io_uring, no ptrace, mount,
 *         namespaces, keys, bpf, perf, module or reboot calls.
 *
 * A third filter answers getrandom(2) with fixed bytes through a SIGSYS
 * trap while the Lua state is created: LuaJIT seeds its string hashing from
 * getrandom, and a random seed makes pairs() order differ between runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <ucontext.h>
#include <unistd.h>

#include <seccomp.h>

#include "worker.h"

struct rule {
	int nr;
	int argc;               /* 0: unconditional */
	struct scmp_arg_cmp arg;
};

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | \
		  CLONE_NEWNET | CLONE_NEWCGROUP)
#define ALLOW(name) { SCMP_SYS(name), 0, { 0, 0, 0, 0 } }
#define ALLOW_IF(name, cmp) { SCMP_SYS(name), 1, cmp }

/* The Lua runtime after the filter: write the output, exit. */
static const struct rule lua_rules[] = {
	ALLOW_IF(write, SCMP_A0(SCMP_CMP_EQ, WK_FD_OUT)),
	ALLOW_IF(write, SCMP_A0(SCMP_CMP_EQ, WK_FD_ERR)),
	ALLOW_IF(write, SCMP_A0(SCMP_CMP_EQ, WK_FD_STATUS)),
	ALLOW(exit_group),
	ALLOW(exit),
	ALLOW(rt_sigreturn),
	ALLOW(close),           /* the setup descriptor, just before the task */
	/* libc memory management (the Lua heap itself is preallocated) */
	ALLOW(brk),
	ALLOW(munmap),
	ALLOW(mremap),
	ALLOW(madvise),
	ALLOW_IF(mmap, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
	ALLOW_IF(mprotect, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
#if WK_ASAN
	/* sanitizer builds only (never run tasks with one): what ASan's
	 * runtime calls on its own, around errors and at exit */
	ALLOW(sigaltstack),
#endif
};

/* node from execve to exit: the union of what strace -f saw node do in the
 * sandbox over the hostile corpus, plus a few calls that are rare but
 * legitimate under load (sched_yield, clock_nanosleep, mremap from libc's
 * realloc, pkey_mprotect, thread exit). worker/README.md has the table. */
static const struct rule node_rules[] = {
	/* exec and the dynamic loader */
	ALLOW(execve),
	ALLOW(arch_prctl),
	ALLOW(set_tid_address),
	ALLOW(set_robust_list),
	ALLOW(rseq),
	ALLOW(access),
	ALLOW(openat),          /* read-only filesystem: only the runtime is there */
	ALLOW(read),
	ALLOW(pread64),
	ALLOW(write),
	ALLOW(close),
	ALLOW(fstat),
	ALLOW(newfstatat),
	ALLOW(statx),
	ALLOW(readlink),
	ALLOW(getcwd),
	ALLOW(fcntl),
	ALLOW_IF(ioctl, SCMP_A1(SCMP_CMP_EQ, FIONBIO)),
	ALLOW_IF(ioctl, SCMP_A1(SCMP_CMP_EQ, FIOCLEX)),
	ALLOW_IF(ioctl, SCMP_A1(SCMP_CMP_EQ, TCGETS)),
	/* memory: V8 heap, code space, protection keys */
	ALLOW(mmap),
	ALLOW(munmap),
	ALLOW(mprotect),
	ALLOW(mremap),
	ALLOW(madvise),
	ALLOW(brk),
	ALLOW(pkey_alloc),
	ALLOW(pkey_free),
	ALLOW(pkey_mprotect),
	/* threads only (V8 platform workers, the vm timeout watchdog): no new
	 * process, no namespace flag */
	ALLOW_IF(clone, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD | NS_FLAGS, CLONE_THREAD)),
	ALLOW(futex),
	ALLOW(sched_getaffinity),
	ALLOW(sched_yield),
	ALLOW(gettid),
	ALLOW(getpid),
	ALLOW(exit),
	ALLOW(exit_group),
	/* abort() on V8's fatal errors (heap OOM): a signal to itself only,
	 * node being pid 2 of its pid namespace (after the sandbox's init) */
	ALLOW_IF(tgkill, SCMP_A0(SCMP_CMP_EQ, 2)),
	/* signals (node's own handlers) */
	ALLOW(rt_sigaction),
	ALLOW(rt_sigprocmask),
	ALLOW(rt_sigreturn),
	ALLOW(sigaltstack),
	/* libuv's loop */
	ALLOW(epoll_create1),
	ALLOW(epoll_ctl),
	ALLOW(epoll_pwait),
	ALLOW(eventfd2),
	ALLOW(pipe2),
	/* identity and environment probes */
	ALLOW(getuid),
	ALLOW(geteuid),
	ALLOW(getgid),
	ALLOW(getegid),
	ALLOW(capget),
	ALLOW(uname),
	ALLOW(sysinfo),
	ALLOW_IF(prlimit64, SCMP_A0(SCMP_CMP_EQ, 0)), /* own limits only */
	ALLOW(getrandom),       /* V8/OpenSSL seeds; Math.random has --random-seed */
	ALLOW(clock_gettime),   /* CPU-time clocks are not in the vDSO */
	ALLOW(clock_nanosleep),
	ALLOW_IF(prctl, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME)),
	ALLOW_IF(prctl, SCMP_A0(SCMP_CMP_EQ, PR_GET_NAME)),
};

/* Calls some library probes and must see fail softly. */
struct soft {
	int nr;
	int err;
};

static const struct soft node_soft[] = {
	{ SCMP_SYS(clone3), ENOSYS },       /* glibc falls back to clone(2) */
	{ SCMP_SYS(io_uring_setup), ENOSYS }, /* libuv falls back to threads */
	{ SCMP_SYS(socket), EACCES },
	{ SCMP_SYS(socketpair), EACCES },
};

static int load(const struct rule *r, size_t n, const struct soft *s, size_t ns)
{
	scmp_filter_ctx ctx;
	size_t i = 0;
	int rc;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (!ctx) {
		errno = ENOMEM;
		return wk_fail("seccomp_init");
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (rc)
		goto fail;
	for (i = 0; i < n; i++) {
		if (r[i].argc)
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r[i].nr, 1, r[i].arg);
		else
			rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, r[i].nr, 0);
		if (rc)
			goto fail;
	}
	for (i = 0; i < ns; i++) {
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)s[i].err), s[i].nr, 0);
		if (rc)
			goto fail;
	}
	rc = seccomp_load(ctx);
	if (rc)
		goto fail;
	seccomp_release(ctx);
	return 0;
fail:
	seccomp_release(ctx);
	errno = -rc;
	return wk_fail("seccomp filter (rule %zu)", i);
}

int wk_seccomp_profile(enum wk_profile p)
{
	if (p == WK_PROFILE_LUA)
		return load(lua_rules, sizeof(lua_rules) / sizeof(lua_rules[0]), NULL, 0);
	return load(node_rules, sizeof(node_rules) / sizeof(node_rules[0]),
		    node_soft, sizeof(node_soft) / sizeof(node_soft[0]));
}

/* --- fixed getrandom --------------------------------------------------- */

static const unsigned char fixed_seed[32] = "WorkProof: LuaJIT seed, fixed.";

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	unsigned char *buf;
	size_t len, i;

	(void)sig;
	if (si->si_code != 1 /* SYS_SECCOMP */ || si->si_syscall != SYS_getrandom)
		_exit(125);
#if defined(__x86_64__)
	buf = (unsigned char *)uc->uc_mcontext.gregs[REG_RDI];
	len = (size_t)uc->uc_mcontext.gregs[REG_RSI];
#elif defined(__aarch64__)
	buf = (unsigned char *)uc->uc_mcontext.regs[0];
	len = (size_t)uc->uc_mcontext.regs[1];
#else
#error "fixed getrandom: add the syscall argument registers of this architecture"
#endif
	for (i = 0; i < len; i++)
		buf[i] = fixed_seed[i % sizeof(fixed_seed)] ^ (unsigned char)(i / sizeof(fixed_seed));
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = (greg_t)len;
#else
	uc->uc_mcontext.regs[0] = len;
#endif
}

int wk_seccomp_fixed_random(void)
{
	struct sigaction sa;
	scmp_filter_ctx ctx;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL))
		return wk_fail("sigaction SIGSYS");
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		errno = ENOMEM;
		return wk_fail("seccomp_init");
	}
	rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, SCMP_SYS(getrandom), 0);
	if (!rc)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc) {
		errno = -rc;
		return wk_fail("seccomp getrandom trap");
	}
	return 0;
}

void wk_fixed_random_done(void)
{
	signal(SIGSYS, SIG_DFL);
}
