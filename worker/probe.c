/* SPDX-License-Identifier: MIT */
/*
 * --selftest-probe NAME (TEST ONLY): instead of a runtime, the sandboxed
 * child makes one forbidden system call under the seccomp profile of the
 * task's language and prints the outcome ("OK", an errno name such as
 * "EPERM", or a value) on its stdout, which the worker hashes as usual. If
 * the filter kills it, the verdict is "KILLED: SIGSYS". The specs compare
 * the hash with SHA-256 of the expected word. read-path and write-path
 * take the path to try from the task's "code". This proves the sandbox
 * itself, not just the runtimes' missing APIs. Probes run only with
 * --isolation sandbox.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker.h"

static char out[128];
static const char *path; /* path probes: the task's code */

static const char *result(long rc)
{
	const char *name;

	if (rc >= 0)
		return "OK";
	name = strerrorname_np(errno);
	return name ? name : "E?";
}

static const char *p_socket_inet(void)
{
	return result(socket(AF_INET, SOCK_STREAM, 0));
}

static const char *p_socket_inet6(void)
{
	return result(socket(AF_INET6, SOCK_STREAM, 0));
}

static const char *p_socket_unix(void)
{
	return result(socket(AF_UNIX, SOCK_STREAM, 0));
}

static const char *p_tcp_connect(void)
{
	struct sockaddr_in sa;
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0)
		return result(s);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(22);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return result(connect(s, (struct sockaddr *)&sa, sizeof(sa)));
}

static const char *p_ptrace(void)
{
	return result(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static const char *p_kill_all(void)
{
	/* pid 1 of its namespace: kill(-1) reaches nobody else there, and
	 * nothing outside it */
	return result(kill(-1, SIGKILL));
}

static const char *p_mount(void)
{
	return result(mount("none", "/tmp", "tmpfs", 0, NULL));
}

static const char *p_unshare(void)
{
	return result(unshare(CLONE_NEWUSER));
}

static const char *p_setns(void)
{
	return result(setns(0, 0));
}

static const char *p_keyctl(void)
{
	return result(syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 0));
}

static const char *p_bpf(void)
{
	return result(syscall(SYS_bpf, 5 /* PROG_LOAD */, NULL, 0));
}

static const char *p_perf(void)
{
	return result(syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0));
}

static const char *p_reboot(void)
{
	/* wrong magic: harmless even if it were allowed */
	return result(syscall(SYS_reboot, 0, 0, 0, NULL));
}

static const char *p_kexec(void)
{
	return result(syscall(SYS_kexec_load, 0, 0, NULL, 0));
}

static const char *p_init_module(void)
{
	return result(syscall(SYS_init_module, NULL, 0, ""));
}

static const char *p_open_shadow(void)
{
	return result(open("/etc/shadow", O_RDONLY));
}

static const char *p_open_proc(void)
{
	return result(open("/proc/self/status", O_RDONLY));
}

static const char *p_write_root(void)
{
	return result(open("/workproof-escape", O_WRONLY | O_CREAT, 0600));
}

static const char *p_write_tmp(void)
{
	return result(open("/tmp/probe", O_WRONLY | O_CREAT, 0600));
}

static const char *p_fork(void)
{
	long pid = syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, 0);

	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid((pid_t)pid, NULL, 0);
	return result(pid);
}

static const char *p_exec_sh(void)
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)"exit 0", NULL };

	return result(execve("/bin/sh", argv, NULL));
}

static const char *p_chroot(void)
{
	return result(chroot("/tmp"));
}

static const char *p_setuid(void)
{
	return result(setuid(1000));
}

static const char *p_mknod(void)
{
	return result(mknod("/tmp/null", S_IFCHR | 0666, makedev(1, 3)));
}

static const char *p_io_uring(void)
{
	char params[120];

	memset(params, 0, sizeof(params));
	return result(syscall(SYS_io_uring_setup, 1, params));
}

static const char *p_read_path(void)
{
	char c;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return result(fd);
	return result(read(fd, &c, 1));
}

static const char *p_write_path(void)
{
	return result(open(path, O_WRONLY | O_CREAT, 0600));
}

static const char *p_caps(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &hdr, d))
		return result(-1);
	snprintf(out, sizeof(out), "%x%x/%x%x/%x%x", d[1].effective, d[0].effective,
		 d[1].permitted, d[0].permitted, d[1].inheritable, d[0].inheritable);
	return out;
}

static const char *p_uid(void)
{
	snprintf(out, sizeof(out), "%ld", syscall(SYS_getuid));
	return out;
}

static const char *p_hostname(void)
{
	struct utsname u;

	if (uname(&u))
		return result(-1);
	snprintf(out, sizeof(out), "%s", u.nodename);
	return out;
}

static const struct {
	const char *name;
	const char *(*fn)(void);
} probes[] = {
	{ "socket-inet", p_socket_inet },   { "socket-inet6", p_socket_inet6 },
	{ "socket-unix", p_socket_unix },   { "tcp-connect", p_tcp_connect },
	{ "ptrace", p_ptrace },             { "kill-all", p_kill_all },
	{ "mount", p_mount },               { "unshare", p_unshare },
	{ "setns", p_setns },               { "keyctl", p_keyctl },
	{ "bpf", p_bpf },                   { "perf", p_perf },
	{ "reboot", p_reboot },             { "kexec", p_kexec },
	{ "init-module", p_init_module },   { "open-shadow", p_open_shadow },
	{ "open-proc", p_open_proc },       { "write-root", p_write_root },
	{ "write-tmp", p_write_tmp },       { "fork", p_fork },
	{ "exec-sh", p_exec_sh },           { "chroot", p_chroot },
	{ "setuid", p_setuid },             { "mknod", p_mknod },
	{ "io-uring", p_io_uring },         { "caps", p_caps },
	{ "uid", p_uid },                   { "hostname", p_hostname },
	{ "read-path", p_read_path },       { "write-path", p_write_path },
};

int wk_probe_known(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		if (!strcmp(probes[i].name, name))
			return 1;
	return 0;
}

void wk_probe_main(const char *name, const struct wk_task *t)
{
	const char *r = "unknown probe";
	size_t i;
	ssize_t n;

	path = t->code;
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		if (!strcmp(probes[i].name, name)) {
			r = probes[i].fn();
			break;
		}
	}
	n = write(WK_FD_OUT, r, strlen(r));
	wk_status(n < 0 ? "RUNTIME_ERROR: probe output" : "OK");
	_exit(0);
}
