/* SPDX-License-Identifier: MIT */
/*
 * workproof-worker [--isolation sandbox|none] [--uid N] [--ro PATH]...
 *
 * Reads ONE task as JSON on stdin, runs it behind the sandbox, and writes
 * exactly one line on stdout:
 *
 *   NOTARY_RESULT: {"jobId":…,"actualHash":…,"exitCode":…,
 *                   "executionTimeMs":…,"outputBytes":…,"error":…,
 *                   "errorClass":…}
 *
 * Exit status: 0 when that line was printed (whatever the verdict), 2 for
 * unusable arguments, 3 when the sandbox cannot be set up on this host.
 * Diagnostics go to stderr only. The contract is in worker/README.md.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "worker.h"

#define DEFAULT_UID 65534u

#if defined(__x86_64__)
#define MULTIARCH "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define MULTIARCH "aarch64-linux-gnu"
#else
#define MULTIARCH "unknown"
#endif
#define CJSON_CPATH "/usr/local/lib/lua/5.1/?.so;/usr/lib/" MULTIARCH "/lua/5.1/?.so;/usr/lib/lua/5.1/?.so"

static void usage(FILE *f)
{
	fprintf(f, "usage: workproof-worker [--isolation sandbox|none] [--uid N] [--ro PATH]...\n"
		   "                        [--warm lua|javascript --memory-bytes N --timeout-ms N]\n"
		   "       (reads one task as JSON on stdin, prints one NOTARY_RESULT line;\n"
		   "        --warm prepares the sandbox first, then reads the task)\n"
		   "       workproof-worker --zygote\n"
		   "       (started by the host: forks workers on request, worker/README.md)\n"
		   "test only: --selftest-probe NAME (see worker/README.md)\n");
}



static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("workproof-worker: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	return WK_EXIT_USAGE;
}

/* An unsigned decimal option value in lo..hi. */
static int opt_uint(const char *name, const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long u;

	errno = 0;
	u = strtoull(v, &end, 10);
	if (errno || !*v || *end || *v == '-' || u < lo || u > hi)
		return bad_usage("%s must be an integer in %llu..%llu, not '%s'", name, (unsigned long long)lo,
				 (unsigned long long)hi, v);
	*out = u;
	return 0;
}

/* The task languages by enum wk_lang, as tasks and --warm name them. */
static const char *const LANG_NAMES[] = { [WK_LANG_LUA] = "lua", [WK_LANG_JS] = "javascript" };

/* The language named by s (n bytes), or -1. */
static int lang_of(const char *s, size_t n)
{
	for (size_t i = 0; s && i < sizeof(LANG_NAMES) / sizeof(LANG_NAMES[0]); i++)
		if (strlen(LANG_NAMES[i]) == n && !memcmp(s, LANG_NAMES[i], n))
			return (int)i;
	return -1;
}

/* 0: parsed; otherwise the exit status (WK_EXIT_USAGE, or -1 for an
 * informational option that already printed and means exit 0). */
static int parse_args(int argc, char **argv, struct wk_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL, *eq = strchr(a, '=');
		char name[32];
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return -1;
		}
		if (!strcmp(a, "--version")) {
			printf("workproof-worker %s%s\n", WP_VERSION, WK_ASAN ? " (sanitizers)" : "");
			return -1;
		}
		if (nl >= sizeof(name) || strncmp(a, "--", 2))
			return bad_usage("unknown argument '%s'", a);
		memcpy(name, a, nl);
		name[nl] = '\0';
		if (eq)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			return bad_usage("%s needs a value", name);

		if (!strcmp(name, "--isolation")) {
			if (!strcmp(v, "sandbox"))
				o->iso = WK_ISO_SANDBOX;
			else if (!strcmp(v, "none"))
				o->iso = WK_ISO_NONE;
			else
				return bad_usage("--isolation must be sandbox or none, not '%s'", v);
		} else if (!strcmp(name, "--uid")) {
			uint64_t u;

			/* an unprivileged uid: not 0, not (uid_t)-1 */
			if (opt_uint(name, v, 1, 4294967294u, &u))
				return WK_EXIT_USAGE;
			o->uid = o->gid = (uint32_t)u;
			o->uid_given = 1;
		} else if (!strcmp(name, "--ro")) {
			if (v[0] != '/' || strstr(v, "/../") || strlen(v) > 1024)
				return bad_usage("--ro needs an absolute path, not '%s'", v);
			if (o->nro >= WK_MAX_RO)
				return bad_usage("at most %d --ro paths", WK_MAX_RO);
			o->ro[o->nro++] = v;
		} else if (!strcmp(name, "--warm")) {
			int lang = lang_of(v, strlen(v));

			if (lang < 0)
				return bad_usage("--warm must be lua or javascript, not '%s'", v);
			o->warm_lang = (enum wk_lang)lang;
			o->warm = 1;
		} else if (!strcmp(name, "--memory-bytes")) {
			if (opt_uint(name, v, WK_MIN_MEMORY, WK_MAX_MEMORY, &o->warm_memory))
				return WK_EXIT_USAGE;
		} else if (!strcmp(name, "--timeout-ms")) {
			if (opt_uint(name, v, WK_MIN_TIMEOUT_MS, WK_MAX_TIMEOUT_MS, &o->warm_timeout_ms))
				return WK_EXIT_USAGE;
		} else if (!strcmp(name, "--selftest-probe")) {
			if (!wk_probe_known(v))
				return bad_usage("unknown probe '%s'", v);
			o->probe = v;
		} else {
			return bad_usage("unknown option '%s'", name);
		}
	}
	if (o->probe && o->iso != WK_ISO_SANDBOX)
		return bad_usage("--selftest-probe needs --isolation sandbox");
	if (o->probe && o->warm)
		return bad_usage("--selftest-probe and --warm exclude each other");
	if (!o->warm && (o->warm_memory || o->warm_timeout_ms))
		return bad_usage("--memory-bytes and --timeout-ms go with --warm");
	if (o->warm && !o->warm_memory)
		o->warm_memory = WK_DEF_MEMORY;
	if (o->warm && !o->warm_timeout_ms)
		o->warm_timeout_ms = WK_DEF_TIMEOUT_MS;
	return 0;
}

/* --- the task ------------------------------------------------------------------ */

static void bad_task(struct wk_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad_task(struct wk_result *r, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->error, sizeof(r->error), "BAD_TASK: ");

	r->cls = WK_CLASS_BAD_TASK;

	va_start(ap, fmt);
	vsnprintf(r->error + n, sizeof(r->error) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Read stdin to EOF. NULL with *too_big set past WK_MAX_TASK_BYTES, NULL
 * with errno on a read or allocation failure. */
static char *read_task(size_t *len, int *too_big)
{
	size_t cap = 64 * 1024, n = 0;
	char *buf = malloc(cap), *nb;

	*too_big = 0;
	if (!buf)
		return NULL;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			cap *= 2;
			if (cap > WK_MAX_TASK_BYTES + 1)
				cap = WK_MAX_TASK_BYTES + 1;
			nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
		}
		r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > WK_MAX_TASK_BYTES) {
			*too_big = 1;
			goto fail;
		}
	}
	*len = n;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* Valid UTF-8 without control characters (the id is echoed in JSON). */
static int clean_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i], need, cp, k;

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= need)
			return 0; /* truncated sequence */
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static int get_uint(lua_State *L, int task, const char *key, uint64_t def, uint64_t lo, uint64_t hi,
		    uint64_t *out, struct wk_result *r)
{
	double d;

	lua_getfield(L, task, key);
	if (lua_isnil(L, -1)) {
		*out = def;
		return 0;
	}
	if (lua_type(L, -1) != LUA_TNUMBER) {
		bad_task(r, "%s must be an integer", key);
		return -1;
	}
	d = lua_tonumber(L, -1);
	if (!(d >= (double)lo && d <= (double)hi) || d != (double)(uint64_t)d) {
		bad_task(r, "%s must be an integer in %llu..%llu", key, (unsigned long long)lo,
			 (unsigned long long)hi);
		return -1;
	}
	*out = (uint64_t)d;
	return 0;
}

/* The trusted state: a plain LuaJIT state with lua-cjson at stack index 1.
 * Made before the task arrives (a warm worker makes it before the sandbox,
 * whose runtime inherits it). 0, or -1 with r->error. */
static int open_trusted(struct wk_task *t, struct wk_result *r)
{
	lua_State *L = luaL_newstate();

	t->trusted = L;
	if (!L) {
		r->cls = WK_CLASS_SANDBOX;
		snprintf(r->error, sizeof(r->error), "SANDBOX: cannot create a Lua state");
		return -1;
	}
	/* base and package (for require): nothing else runs in this state,
	 * and each library more (io, os, jit, ffi, ...) is work and memory at
	 * every task's start */
	lua_pushcfunction(L, luaopen_base);
	lua_call(L, 0, 0);
	lua_pushcfunction(L, luaopen_package);
	lua_call(L, 0, 0);
	/* lua-cjson from the system directories only: not the current
	 * directory, not LUA_PATH/LUA_CPATH of whoever started us */
	lua_getglobal(L, "package");
	lua_pushliteral(L, "");
	lua_setfield(L, -2, "path");
	lua_pushliteral(L, CJSON_CPATH);
	lua_setfield(L, -2, "cpath");
	lua_pop(L, 1);
	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson");
	if (lua_pcall(L, 1, 1, 0)) {
		r->cls = WK_CLASS_SANDBOX;
		snprintf(r->error, sizeof(r->error), "SANDBOX: lua-cjson unavailable: %.150s",
			 lua_tostring(L, -1));
		return -1;
	}
	/* strict numbers: no NaN, Infinity or hex */
	lua_getfield(L, 1, "decode_invalid_numbers");
	lua_pushboolean(L, 0);
	if (lua_pcall(L, 1, 0, 0))
		lua_pop(L, 1);
	return 0;
}

/* Decode and validate t->raw with lua-cjson in the trusted state (the
 * values stay on its stack for the whole run). 0, or -1 with r->error. */
static int decode_task(struct wk_task *t, struct wk_result *r)
{
	lua_State *L = t->trusted;
	const char *s;
	size_t n;
	const int cj = 1;
	int task, lang;

	lua_getfield(L, cj, "decode");
	lua_pushlstring(L, t->raw, t->raw_len);
	if (lua_pcall(L, 1, 1, 0)) {
		bad_task(r, "task is not valid JSON: %.150s", lua_tostring(L, -1));
		return -1;
	}
	if (!lua_istable(L, -1) || lua_objlen(L, -1) > 0) { /* arrays decode as tables */
		bad_task(r, "task must be a JSON object");
		return -1;
	}
	task = lua_gettop(L);

	lua_getfield(L, task, "jobId");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
	if (!s || n == 0 || n > WK_MAX_JOBID || !clean_utf8((const unsigned char *)s, n)) {
		bad_task(r, "jobId must be a string of 1..%d bytes of printable UTF-8", WK_MAX_JOBID);
		return -1;
	}
	t->job_id = s;
	t->job_id_len = n;

	lua_getfield(L, task, "language");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
	lang = lang_of(s, n);
	if (lang < 0) {
		bad_task(r, "language must be \"lua\" or \"javascript\"");
		return -1;
	}
	t->lang = (enum wk_lang)lang;

	lua_getfield(L, task, "code");
	if (lua_type(L, -1) != LUA_TSTRING) {
		bad_task(r, "code must be a string");
		return -1;
	}
	t->code = lua_tolstring(L, -1, &t->code_len);

	if (get_uint(L, task, "timeoutMs", WK_DEF_TIMEOUT_MS, WK_MIN_TIMEOUT_MS, WK_MAX_TIMEOUT_MS,
		     &t->timeout_ms, r) ||
	    get_uint(L, task, "memoryBytes", WK_DEF_MEMORY, WK_MIN_MEMORY, WK_MAX_MEMORY, &t->memory, r) ||
	    get_uint(L, task, "outputLimitBytes", WK_DEF_OUTPUT, WK_MIN_OUTPUT, WK_MAX_OUTPUT,
		     &t->output_limit, r) ||
	    get_uint(L, task, "instructionLimit", t->timeout_ms * WK_INSN_PER_MS, WK_MIN_INSN,
		     (uint64_t)1 << 53, &t->insn_limit, r))
		return -1;

	/* inputJson: the input as JSON text (the client's own, exact: strtod
	 * reads every number as JavaScript does; the JS runtime parses the same
	 * text); it replaces `input` */
	lua_getfield(L, task, "inputJson");
	if (lua_type(L, -1) == LUA_TSTRING) {
		lua_getfield(L, cj, "decode");
		lua_pushvalue(L, -2);
		if (lua_pcall(L, 1, 1, 0)) {
			bad_task(r, "inputJson is not valid JSON: %.150s", lua_tostring(L, -1));
			return -1;
		}
		t->input_idx = lua_gettop(L);
		return 0;
	}
	if (!lua_isnil(L, -1)) {
		bad_task(r, "inputJson must be a string of JSON text");
		return -1;
	}
	lua_getfield(L, task, "input");
	t->input_idx = lua_isnil(L, -1) ? 0 : lua_gettop(L);
	return 0;
}

/* Read the task on stdin (fd 0) to EOF and decode it: 0, or -1 with
 * r->error. The worker's own stdin; in a warm sandbox, also the runtime's
 * task pipe (the same fd). */
int wk_take_task(struct wk_task *t, struct wk_result *r)
{
	int too_big;

	t->raw = read_task(&t->raw_len, &too_big);
	if (!t->raw) {
		if (too_big) {
			bad_task(r, "task larger than %u bytes", WK_MAX_TASK_BYTES);
		} else {
			r->cls = WK_CLASS_SANDBOX;
			snprintf(r->error, sizeof(r->error), "SANDBOX: cannot read the task: %s", strerror(errno));
		}
		return -1;
	}
	return decode_task(t, r);
}

/* A warm sandbox was made for one language, heap and longest timeout:
 * the task must fit it (the spawner only hands it tasks that do). */
int wk_fits_warm(const struct wk_opts *o, const struct wk_task *t, struct wk_result *r)
{
	if (t->lang == o->warm_lang && t->memory == o->warm_memory && t->timeout_ms <= o->warm_timeout_ms)
		return 0;
	r->cls = WK_CLASS_SANDBOX;
	snprintf(r->error, sizeof(r->error),
		 "SANDBOX: the task (%s, memoryBytes %llu, timeoutMs %llu) does not fit this warm sandbox "
		 "(%s, %llu, at most %llu)", LANG_NAMES[t->lang],
		 (unsigned long long)t->memory, (unsigned long long)t->timeout_ms,
		 LANG_NAMES[o->warm_lang], (unsigned long long)o->warm_memory,
		 (unsigned long long)o->warm_timeout_ms);
	return -1;
}

/* --- the result line ------------------------------------------------------------- */

static size_t json_string(char *out, size_t cap, const char *s, size_t n)
{
	size_t i, j = 0;

	if (cap < 3)
		return 0;
	out[j++] = '"';
	for (i = 0; i < n && j + 8 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			out[j++] = '\\';
			out[j++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			j += (size_t)snprintf(out + j, cap - j, "\\u%04x", c);
		} else {
			out[j++] = (char)c;
		}
	}
	out[j++] = '"';
	return j;
}

const char *wk_class_name(enum wk_class c)
{
	static const char *const names[] = {
		NULL,
#define WK_CLASS_NAME(name) #name,
		WK_CLASSES(WK_CLASS_NAME)
#undef WK_CLASS_NAME
	};

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : NULL;
}

static void print_result(const struct wk_task *t, const struct wk_result *r)
{
	const char *cls;
	char line[4096];
	size_t n = 0;

	n += (size_t)snprintf(line + n, sizeof(line) - n, "NOTARY_RESULT: {\"jobId\":");
	if (t->job_id)
		n += json_string(line + n, sizeof(line) - n, t->job_id, t->job_id_len);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, "null");
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"actualHash\":");
	if (r->hash[0])
		n += (size_t)snprintf(line + n, sizeof(line) - n, "\"%s\"", r->hash);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, "null");
	n += (size_t)snprintf(line + n, sizeof(line) - n,
			      ",\"exitCode\":%d,\"executionTimeMs\":%llu,\"outputBytes\":%llu,\"error\":",
			      r->exit_code, (unsigned long long)r->exec_ms, (unsigned long long)r->out_bytes);
	if (r->error[0])
		n += json_string(line + n, sizeof(line) - n, r->error, strlen(r->error));
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, "null");
	/* an error always has a class; one the worker forgot to set is its
	 * own failure, never the task's */
	cls = r->error[0] ? wk_class_name(r->cls) : NULL;
	if (r->error[0] && !cls)
		cls = wk_class_name(WK_CLASS_SANDBOX);
	if (cls)
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"errorClass\":\"%s\"}\n", cls);
	else
		n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"errorClass\":null}\n");
	if (wk_write_all(STDOUT_FILENO, line, n))
		fprintf(stderr, "workproof-worker: cannot write the result: %s\n", strerror(errno));
}

/* fds 0-2 must exist, or a pipe could land on them and be mistaken for
 * stdout. */
static void ensure_std_fds(void)
{
	int fd;

	for (fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);

			if (n >= 0 && n != fd)
				close(n);
		}
	}
}

/* The kernel's autogroups share the CPU between sessions, not processes:
 * the host starts each worker in a session of its own, so without this a
 * hundred busy workers get a hundred shares to the host's one, whatever the
 * tasks' niceness (WK_TASK_NICE), and the controller stalls. Lower this
 * session's share (raising niceness needs no privilege). Where autogroups
 * are off there is no file and nothing to do. Only a session leader does
 * it: a worker run from a shell or a harness shares their session, and
 * would lower the priority of everything the user runs there. */
static void lower_autogroup(void)
{
	int fd;

	if (getsid(0) != getpid())
		return;
	fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "19", 2) != 2)
		fprintf(stderr, "workproof-worker: autogroup nice: %s\n", strerror(errno));
	close(fd);
}

/*
 * <directory of this executable>/runtime: the language runtimes' trusted
 * files (js_runner.js). Found from /proc/self/exe, never compiled in, so an
 * installed worker (<prefix>/libexec/workproof/) works without the source
 * tree; in a build tree cmake links <build>/runtime to worker/runtime.
 * Left empty if the executable cannot be located: a JavaScript task then
 * fails with SANDBOX (cannot start the runtime), a Lua task is unaffected.
 */
static char runtime_dir[PATH_MAX];

const char *wk_runtime_dir(void)
{
	return runtime_dir;
}

static void find_runtime_dir(void)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	int m;

	if (n <= 0 || (size_t)n >= sizeof(exe) - 1)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	m = snprintf(runtime_dir, sizeof(runtime_dir), "%s/runtime", exe);
	if (m < 0 || (size_t)m >= sizeof(runtime_dir)) {
		runtime_dir[0] = '\0';
		return;
	}
	/* without its links (a build tree's runtime is one): node's permission
	 * model allows the runner's own path only, and resolving a link on the
	 * way is a read it refuses (--isolation none runs node on this path) */
	if (realpath(runtime_dir, exe) && strlen(exe) < sizeof(runtime_dir))
		strcpy(runtime_dir, exe);
}

int main(int argc, char **argv)
{
	struct wk_opts o;
	struct wk_task t;
	struct wk_result r;
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&t, 0, sizeof(t));
	memset(&r, 0, sizeof(r));
	r.exit_code = -1;
	ensure_std_fds();
	find_runtime_dir();
	if (argc == 2 && !strcmp(argv[1], "--zygote")) {
		/* what every worker would do before its task, done once;
		 * wk_zygote returns in each worker it forks */
		if (open_trusted(&t, &r)) {
			fprintf(stderr, "workproof-worker: zygote: %s\n", r.error);
			return WK_EXIT_NOSANDBOX;
		}
		argc = wk_zygote(argc, &argv);
	}
	signal(SIGPIPE, SIG_IGN);
	lower_autogroup();

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (!o.uid_given) {
		/* root maps the sandbox to nobody; anyone else can only map
		 * their own ids */
		o.uid = geteuid() == 0 ? DEFAULT_UID : geteuid();
		o.gid = geteuid() == 0 ? DEFAULT_UID : getegid();
	}
	if (geteuid() == 0 && setgroups(0, NULL) && errno != EPERM)
		fprintf(stderr, "workproof-worker: setgroups: %s\n", strerror(errno));
	if (o.iso == WK_ISO_NONE)
		fprintf(stderr, "workproof-worker: WARNING: --isolation none: the task runs without "
				"namespaces or seccomp (development only)\n");

	rc = WK_EXIT_RESULT;
	if (t.trusted || open_trusted(&t, &r) == 0) {
		if (o.warm) {
			/* the sandbox is made for this template; wk_run reads
			 * the task once it is ready (wk_take_task) */
			t.lang = o.warm_lang;
			t.memory = o.warm_memory;
			t.timeout_ms = o.warm_timeout_ms;
			t.output_limit = WK_DEF_OUTPUT;
			t.insn_limit = t.timeout_ms * WK_INSN_PER_MS;
			rc = wk_run(&o, &t, &r);
		} else if (wk_take_task(&t, &r) == 0) {
			rc = wk_run(&o, &t, &r);
		}
		if (rc == WK_EXIT_NOSANDBOX)
			goto out;
	}
	print_result(&t, &r);
	wk_reap();
out:
	/* the process ends here: closing the trusted state would only unload
	 * lua-cjson and free memory one by one (a measurable share of a small
	 * task's CPU); sanitizer builds close it, for the leak check */
	if (t.trusted && WK_ASAN)
		lua_close(t.trusted);
	if (WK_ASAN)
		free((char *)t.raw);
	return rc;
}
