/* SPDX-License-Identifier: MIT */
/*
 * The sandbox's setup steps, run by the runtime child between clone() and
 * the runtime (worker/README.md, "Sandbox layers", gives the order and the
 * reasons). Every step checks its system call and records a message with
 * wk_fail(); the child reports it on the status pipe and the worker either
 * exits 3 (the host cannot sandbox) or prints a SANDBOX: result (a
 * resource ran out). Nothing here falls back to weaker isolation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "worker.h"

#ifndef SECBIT_NOROOT
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NOROOT_LOCKED (1 << 1)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_NO_SETUID_FIXUP_LOCKED (1 << 3)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#endif
#ifndef SECBIT_NO_CAP_AMBIENT_RAISE
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#error "add the Debian multiarch triplet of this architecture"
#endif

/* Where the new root is assembled. /tmp always exists; sources under it
 * are opened (O_PATH) before the tmpfs hides them. */
#define NEWROOT "/tmp"
#define ROOT_TMPFS_OPTS "size=64k,nr_inodes=256,mode=0755"
#define TMP_TMPFS_OPTS "size=8m,nr_inodes=1024,mode=1777"
#define SANDBOX_TMP_BYTES (8u << 20)

struct wk_setup_err wk_setup_err;

int wk_fail(const char *fmt, ...)
{
	int e = errno;
	char what[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(wk_setup_err.msg, sizeof(wk_setup_err.msg), "%s: %s", what, strerror(e));
	wk_setup_err.permanent = !(e == EAGAIN || e == ENOMEM || e == EMFILE ||
				   e == ENFILE || e == EINTR);
	errno = e;
	return -1;
}

static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return wk_fail("open %s", path);
	n = write(fd, text, len);
	if (n != (ssize_t)len) {
		if (n >= 0)
			errno = EIO;
		wk_fail("write %s", path);
		close(fd);
		return -1;
	}
	if (close(fd))
		return wk_fail("close %s", path);
	return 0;
}

/* setgroups "deny", then "IN OUT 1" into uid_map and gid_map of /proc/WHO */
static int write_idmaps(const char *who, uint32_t in_uid, uint32_t uid, uint32_t in_gid, uint32_t gid)
{
	char path[64], map[64];

	/* setgroups must be denied before an unprivileged gid_map write, and
	 * it keeps the task from ever dropping into a group we did not map. */
	snprintf(path, sizeof(path), "/proc/%s/setgroups", who);
	if (write_file(path, "deny"))
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/uid_map", who);
	snprintf(map, sizeof(map), "%u %u 1\n", in_uid, uid);
	if (write_file(path, map))
		return -1;
	snprintf(path, sizeof(path), "/proc/%s/gid_map", who);
	snprintf(map, sizeof(map), "%u %u 1\n", in_gid, gid);
	return write_file(path, map);
}

int wk_write_idmaps(int pid, uint32_t uid, uint32_t gid)
{
	char who[16];

	snprintf(who, sizeof(who), "%d", pid);
	return write_idmaps(who, 0, uid, 0, gid);
}

int wk_shared_netns;

int wk_enter_empty_netns(void)
{
	uint32_t uid = (uint32_t)geteuid(), gid = (uint32_t)getegid();

	if (unshare(CLONE_NEWNET) == 0)
		return wk_shared_netns = 1;
	if (errno != EPERM || unshare(CLONE_NEWUSER | CLONE_NEWNET))
		return 0;
	/* Unprivileged: the net namespace needs a user namespace to own it.
	 * Ours maps our own ids to themselves, which a process may always
	 * write for itself, so the workers keep their uid and map it again
	 * into their sandboxes; the namespace's capabilities give them
	 * nothing outside it. */
	if (write_idmaps("self", uid, uid, gid, gid)) {
		/* an unmapped uid: no sandbox could map one now */
		fprintf(stderr, "workproof-worker: zygote: %s\n", wk_setup_err.msg);
		_exit(1);
	}
	return wk_shared_netns = 1;
}

int wk_become_nsroot(void)
{
	/* Until now the child still carries the worker's kernel uid (maybe
	 * the host's root, unmapped here). Switching to the namespace's uid 0
	 * makes the kernel uid the unprivileged outside one, which is what
	 * file access and RLIMIT_NPROC are checked against. */
	if (setresgid(0, 0, 0))
		return wk_fail("setresgid 0");
	if (setresuid(0, 0, 0))
		return wk_fail("setresuid 0");
	return 0;
}

/* --- the new root ------------------------------------------------------ */

struct bind {
	const char *src;
	const char *dst;
	int optional;
	int fd;
	int isdir;
};

/* mkdir -p of the parents of path (absolute, under NEWROOT). */
static int make_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);

	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return wk_fail("path %s", path);
	}
	memcpy(buf, path, n + 1);
	for (i = strlen(NEWROOT) + 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return wk_fail("mkdir %s", buf);
		buf[i] = '/';
	}
	return 0;
}

/* Flags a remount must keep: in a user namespace the kernel refuses to
 * clear the flags the original mount had (they are locked). */
static unsigned long locked_flags(const char *path)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (statvfs(path, &sv))
		return 0;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

static int bind_ro(const struct bind *b)
{
	char dst[PATH_MAX], src[64];
	int fd;

	if (snprintf(dst, sizeof(dst), NEWROOT "%s", b->dst) >= (int)sizeof(dst)) {
		errno = ENAMETOOLONG;
		return wk_fail("bind %s", b->dst);
	}
	if (make_parents(dst))
		return -1;
	if (b->isdir) {
		if (mkdir(dst, 0755) && errno != EEXIST)
			return wk_fail("mkdir %s", dst);
	} else {
		fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
		if (fd < 0)
			return wk_fail("create %s", dst);
		close(fd);
	}
	/* bind through the O_PATH descriptor opened before NEWROOT hid it */
	snprintf(src, sizeof(src), "/proc/self/fd/%d", b->fd);
	/* not MS_REC: a submount (maybe writable) of a bound tree stays out */
	if (mount(src, dst, NULL, MS_BIND, NULL))
		return wk_fail("bind %s", b->src);
	if (mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV |
		  locked_flags(dst), NULL))
		return wk_fail("read-only %s", b->dst);
	return 0;
}

/* /lib, /lib64 as on the host: a symlink is copied, a directory bound. */
static int mirror_toplevel(const char *name, struct bind *b)
{
	char target[PATH_MAX], dst[PATH_MAX];
	ssize_t n = readlink(name, target, sizeof(target) - 1);

	if (n < 0) {
		if (errno == EINVAL && b->fd >= 0)
			return bind_ro(b); /* a real directory */
		return 0;          /* absent: nothing to mirror */
	}
	target[n] = '\0';
	snprintf(dst, sizeof(dst), NEWROOT "%s", name);
	if (symlink(target, dst))
		return wk_fail("symlink %s", name);
	return 0;
}

int wk_build_root(const struct wk_opts *o, enum wk_lang lang, const char *node)
{
	struct bind b[WK_MAX_RO + 8];
	struct bind lib = { "/lib", "/lib", 1, -1, 1 }, lib64 = { "/lib64", "/lib64", 1, -1, 1 };
	int n = 0, i, rc = -1;
	struct stat st;

	if (lang == WK_LANG_JS) {
		/* node and the libraries it links (system ones live in the
		 * multiarch directory on Debian), the loader cache, the runner */
		b[n++] = (struct bind){ node, "/usr/bin/node", 0, -1, 0 };
		b[n++] = (struct bind){ "/usr/lib/" MULTIARCH, "/usr/lib/" MULTIARCH, 0, -1, 1 };
		b[n++] = (struct bind){ "/usr/lib64", "/usr/lib64", 1, -1, 1 };
		b[n++] = (struct bind){ "/etc/ld.so.cache", "/etc/ld.so.cache", 1, -1, 0 };
		b[n++] = (struct bind){ wk_runtime_dir(), "/workproof/runtime", 0, -1, 1 };
	}
	for (i = 0; i < o->nro; i++)
		b[n++] = (struct bind){ o->ro[i], o->ro[i], 0, -1, 0 };

	/* Mount events must not propagate back to the host. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return wk_fail("make / private");

	for (i = 0; i < n; i++) {
		b[i].fd = open(b[i].src, O_PATH | O_CLOEXEC);
		if (b[i].fd < 0) {
			if (b[i].optional && errno == ENOENT)
				continue;
			wk_fail("open %s", b[i].src);
			goto out;
		}
		if (fstat(b[i].fd, &st)) {
			wk_fail("stat %s", b[i].src);
			goto out;
		}
		b[i].isdir = S_ISDIR(st.st_mode);
	}
	if (lang == WK_LANG_JS) {
		lib.fd = open("/lib", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
		lib64.fd = open("/lib64", O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
	}

	if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, ROOT_TMPFS_OPTS)) {
		wk_fail("mount root tmpfs");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (b[i].fd >= 0 && bind_ro(&b[i]))
			goto out;
	if (lang == WK_LANG_JS && (mirror_toplevel("/lib", &lib) || mirror_toplevel("/lib64", &lib64)))
		goto out;
	if (mkdir(NEWROOT "/tmp", 01777)) {
		wk_fail("mkdir /tmp");
		goto out;
	}
	if (mount("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, TMP_TMPFS_OPTS)) {
		wk_fail("mount /tmp");
		goto out;
	}
	/* Swap roots and throw the host's tree away. pivot_root(".", ".")
	 * stacks the old root on the new one; the detach removes it. */
	if (chdir(NEWROOT)) {
		wk_fail("chdir new root");
		goto out;
	}
	if (syscall(SYS_pivot_root, ".", ".")) {
		wk_fail("pivot_root");
		goto out;
	}
	if (umount2(".", MNT_DETACH)) {
		wk_fail("detach old root");
		goto out;
	}
	if (chdir("/")) {
		wk_fail("chdir /");
		goto out;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL)) {
		wk_fail("read-only root");
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < n; i++)
		if (b[i].fd >= 0)
			close(b[i].fd);
	if (lib.fd >= 0)
		close(lib.fd);
	if (lib64.fd >= 0)
		close(lib64.fd);
	return rc;
}

/* --- limits, descriptors, privileges ------------------------------------ */

static int limit(int res, const char *name, uint64_t soft, uint64_t hard)
{
	struct rlimit rl = { (rlim_t)soft, (rlim_t)hard };

	if (setrlimit(res, &rl))
		return wk_fail("setrlimit %s", name);
	return 0;
}

int wk_set_rlimits(const struct wk_task *t, int sandbox)
{
	uint64_t cpu = (t->timeout_ms + 999) / 1000 + 1;
	int js = t->lang == WK_LANG_JS;

	/* Task code yields the CPU to everyone else: a hundred tasks that loop
	 * until their deadline must not starve the controller (its health,
	 * payments, answers) nor the supervisors that enforce the deadlines.
	 * Raising one's own niceness needs no privilege. */
	if (setpriority(PRIO_PROCESS, 0, WK_TASK_NICE))
		return wk_fail("setpriority");
	/* CPU: a backstop to the wall-clock deadline the worker enforces. */
	if (limit(RLIMIT_CPU, "CPU", cpu, cpu + 1) ||
	    limit(RLIMIT_CORE, "CORE", 0, 0) ||
	    limit(RLIMIT_FSIZE, "FSIZE", SANDBOX_TMP_BYTES, SANDBOX_TMP_BYTES) ||
	    limit(RLIMIT_NOFILE, "NOFILE", js ? 64 : 16, js ? 64 : 16) ||
	    limit(RLIMIT_STACK, "STACK", 8u << 20, 8u << 20) ||
	    limit(RLIMIT_MEMLOCK, "MEMLOCK", 0, 0) ||
	    limit(RLIMIT_MSGQUEUE, "MSGQUEUE", 0, 0))
		return -1;
	/* NPROC counts per kernel uid. The Lua runtime is alone, sandbox or
	 * not, and never creates a process. In the sandbox the uid is the mapped
	 * one inside a fresh user namespace, so the count is this sandbox's own
	 * processes and threads (JavaScript: init, node and its threads);
	 * without namespaces it would be the developer's whole session: no
	 * limit for node there. */
	if (!js)
		return limit(RLIMIT_NPROC, "NPROC", 1, 1);
	return sandbox ? limit(RLIMIT_NPROC, "NPROC", 65, 65) : 0;
}

int wk_set_memlimit(int resource, uint64_t bytes)
{
	return limit(resource, resource == RLIMIT_AS ? "AS" : "DATA", bytes, bytes);
}

int wk_setup_fds(int task_fd, int out_fd, int err_fd, int status_fd, int setup_fd)
{
	int src[5] = { task_fd, out_fd, err_fd, status_fd, setup_fd };
	int tmp[5] = { -1, -1, -1, -1, -1 };
	int i;

	/* Park the sources above the targets first so that no dup2 clobbers
	 * a source that still has to move. */
	for (i = 0; i < 5; i++) {
		if (src[i] < 0)
			continue;
		tmp[i] = fcntl(src[i], F_DUPFD, 16);
		if (tmp[i] < 0)
			return wk_fail("dup fd %d", src[i]);
	}
	for (i = 0; i < 5; i++) {
		if (tmp[i] < 0) {
			close(i);
		} else if (dup2(tmp[i], i) != i) {
			return wk_fail("dup2 fd %d", i);
		}
	}
	if (setup_fd >= 0) {
		wk_setup_fd = WK_FD_SETUP;
		if (fcntl(WK_FD_SETUP, F_SETFD, FD_CLOEXEC))
			return wk_fail("cloexec setup fd");
	}
	if (close_range(5, ~0u, 0))
		return wk_fail("close_range");
	return 0;
}

int wk_drop_privileges(int sandbox)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	int cap;

	if (sandbox) {
		/* Bounding set first: an exec as (namespace) root would refill
		 * the permitted set from it. */
		for (cap = 0; cap < 64; cap++) {
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
				if (errno == EINVAL)
					break; /* past the kernel's last capability */
				return wk_fail("drop capability %d", cap);
			}
		}
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
			return wk_fail("clear ambient capabilities");
		if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED |
			  SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
			  SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
			  SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0))
			return wk_fail("securebits");
		memset(data, 0, sizeof(data));
		if (syscall(SYS_capset, &hdr, data))
			return wk_fail("capset");
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return wk_fail("no_new_privs");
	return 0;
}
