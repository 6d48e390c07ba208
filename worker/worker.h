/* SPDX-License-Identifier: MIT */
/**
 * \file worker.h
 * \brief Internal interfaces of workproof-worker (worker/README.md).
 *
 * The worker is one process that reads a task, starts ONE child that runs
 * the task's runtime behind the sandbox, captures the child's stdout
 * through a pipe (hashing it on the fly), enforces the deadline and the
 * output limit, and prints exactly one NOTARY_RESULT line.
 *
 *   main.c     arguments, the task (decoded with lua-cjson in a trusted
 *              state), the result line
 *   run.c      the child: spawn (clone with namespaces, or fork), the
 *              capture loop, the verdict
 *   sandbox.c  inside the child: uid maps, mounts, pivot_root, rlimits,
 *              capabilities, descriptors
 *   filter.c   seccomp-bpf allowlists (libseccomp) and the getrandom trap
 *   lua_rt.c   the Lua runtime (in-process, JIT off, count hook)
 *   arena.c    the Lua runtime's deterministic, capped allocator
 *   probe.c    --selftest-probe: test-only syscall probes
 *   zygote.c   --zygote: start once, fork a worker per request
 *
 * Nothing here is a library API: the structures are shared between the
 * files of one executable and live for the whole (short) process.
 */
#ifndef WORKPROOF_WORKER_H
#define WORKPROOF_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

/* Sanitizer builds (never used to run tasks): ASan reserves terabytes of
 * shadow memory and calls sigaltstack on its own, so such a build skips
 * RLIMIT_AS and lets the Lua profile have sigaltstack; it says
 * "(sanitizers)" in --version (worker/README.md, "Testing"). */
#if defined(__SANITIZE_ADDRESS__)
#define WK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WK_ASAN 1
#endif
#endif
#ifndef WK_ASAN
#define WK_ASAN 0
#endif

/* --- limits of the contract (worker/README.md) ------------------------ */

#define WK_MAX_TASK_BYTES (2u * 1024 * 1024)
#define WK_DEF_TIMEOUT_MS 30000
#define WK_MIN_TIMEOUT_MS 1
#define WK_MAX_TIMEOUT_MS 600000
#define WK_DEF_MEMORY (256ull * 1024 * 1024)
#define WK_MIN_MEMORY (1ull * 1024 * 1024)
#define WK_MAX_MEMORY (16ull * 1024 * 1024 * 1024)
#define WK_DEF_OUTPUT (1ull * 1024 * 1024)
#define WK_MIN_OUTPUT 0ull
#define WK_MAX_OUTPUT (1ull * 1024 * 1024 * 1024)
#define WK_MAX_JOBID 256
/* Default Lua instruction budget per ms of timeout: several times what the
 * interpreter can execute, so the wall clock normally wins (an endless loop
 * is a TIMEOUT) and the budget is a deterministic backstop. A task may ask
 * for a smaller budget with "instructionLimit". */
#define WK_INSN_PER_MS 4000000ull
#define WK_MIN_INSN 1000ull
#define WK_MAX_RO 16

/* Exit statuses of the worker itself. */
#define WK_EXIT_RESULT 0   /* printed a result line, whatever the verdict */
#define WK_EXIT_USAGE 2    /* unusable arguments */
#define WK_EXIT_NOSANDBOX 3 /* the sandbox cannot be set up on this host */

/* Descriptors of the runtime child (set up before it runs). */
#define WK_FD_TASK 0   /* javascript: the task JSON (a memfd); lua: closed;
			* warm (both): a pipe the worker writes the task into */
#define WK_FD_OUT 1    /* stdout pipe: hashed, counted, limited */
#define WK_FD_ERR 2    /* stderr pipe: counted, limited, head kept */
#define WK_FD_STATUS 3 /* one status line from the runtime */
#define WK_FD_SETUP 4  /* setup failures; close-on-exec, closed before the
			* task's code runs so a task cannot forge one */

enum wk_isolation { WK_ISO_SANDBOX, WK_ISO_NONE };
enum wk_lang { WK_LANG_LUA, WK_LANG_JS };

/** Command-line options. */
struct wk_opts {
	enum wk_isolation iso;
	uint32_t uid, gid;     /* outside ids of the sandbox's root */
	int uid_given;
	const char *ro[WK_MAX_RO];
	int nro;
	const char *probe;     /* --selftest-probe NAME, or NULL */
	int warm;              /* --warm: the sandbox first, then the task */
	enum wk_lang warm_lang;
	uint64_t warm_memory, warm_timeout_ms; /* the template tasks must fit */
};

/** One decoded, validated task. Strings point into the trusted state's
 *  memory (alive for the whole process). */
struct wk_task {
	const char *job_id;    /* NULL until known valid */
	size_t job_id_len;
	enum wk_lang lang;
	const char *code;
	size_t code_len;
	uint64_t timeout_ms;
	uint64_t memory;
	uint64_t output_limit;
	uint64_t insn_limit;
	lua_State *trusted;    /* holds the decoded task; input at input_idx */
	int input_idx;         /* stack index of `input` in trusted, 0: absent */
	const char *raw;       /* the task JSON as read (javascript runner) */
	size_t raw_len;
};

/* --- error classes ---------------------------------------------------- */

/* The class of a result's error: the enumerated "errorClass" field of the
 * result line, the one the spawner reads ("error" is prose for people).
 * The worker decides it from what it observed itself, never from text the
 * task can produce (a thrown message, its stderr):
 *   TIMEOUT            the worker's deadline kill, or the CPU rlimit (SIGXCPU)
 *   MEMORY_LIMIT       Lua: the capped heap refused an allocation (the
 *                      allocator's own flag); JS: node aborted (SIGABRT, V8's
 *                      heap-limit handler) with a peak RSS at its heap limit,
 *                      or the runner measured the task's memory over the limit
 *   OUTPUT_LIMIT       the worker's output-limit kill
 *   INSTRUCTION_LIMIT  Lua: the count hook's budget
 *   RUNTIME_ERROR      the task raised/threw (whatever it threw), or the
 *                      runtime exited without a status
 *   KILLED             the runtime died of another signal (seccomp: SIGSYS)
 *   BAD_TASK           the task JSON is malformed or out of range
 *   SANDBOX            setup failed on this host (not the task's fault)
 * The runtime's status line (WK_FD_STATUS) may only say OK, MEMORY_LIMIT,
 * INSTRUCTION_LIMIT, "RUNTIME_ERROR: msg" or "BAD_TASK: msg": it is written
 * by the trusted runtime code (lua_rt.c, js_runner.js) from its own
 * observations, and a task cannot reach that descriptor. */
#define WK_CLASSES(X) \
	X(TIMEOUT) X(MEMORY_LIMIT) X(OUTPUT_LIMIT) X(INSTRUCTION_LIMIT) \
	X(RUNTIME_ERROR) X(KILLED) X(BAD_TASK) X(SANDBOX)

enum wk_class {
	WK_CLASS_NONE = 0, /* no error */
#define WK_CLASS_ENUM(name) WK_CLASS_##name,
	WK_CLASSES(WK_CLASS_ENUM)
#undef WK_CLASS_ENUM
};

/** <directory of the worker executable>/runtime (the JS runner lives
 *  there); "" if the executable could not be located. Static storage. */
const char *wk_runtime_dir(void);

/** The class's name as printed ("TIMEOUT", ...); NULL for WK_CLASS_NONE
 *  and out-of-range values. Static storage. */
const char *wk_class_name(enum wk_class c);

/** What the run produced (the fields of the result line). */
struct wk_result {
	char hash[65];         /* lowercase hex, "" when no output was hashed */
	int exit_code;         /* -1: not applicable */
	uint64_t exec_ms;
	uint64_t out_bytes;
	enum wk_class cls;     /* WK_CLASS_NONE on success */
	char error[256];       /* "" on success; its text, for people */
};

/* --- run.c ------------------------------------------------------------- */

/**
 * Run the task in a child and fill res. Returns WK_EXIT_RESULT when res
 * holds a verdict to print, WK_EXIT_NOSANDBOX when the sandbox cannot be
 * set up on this host (a message went to stderr; nothing must be printed).
 */
int wk_run(const struct wk_opts *o, struct wk_task *t, struct wk_result *res);

/* --- main.c ------------------------------------------------------------- */

/** Read a task on fd 0 to EOF and decode it in t->trusted (lua-cjson at
 *  its stack index 1): 0, or -1 with res->error (BAD_TASK, SANDBOX). */
int wk_take_task(struct wk_task *t, struct wk_result *res);
/** 0 when a task fits the warm sandbox o describes, else -1 with res->error. */
int wk_fits_warm(const struct wk_opts *o, const struct wk_task *t, struct wk_result *res);
/** Write all n bytes of buf to fd (blocking, across EINTR): 0, or -1 with
 *  errno. */
int wk_write_all(int fd, const void *buf, size_t n);
/** Reap what wk_run left exiting (the sandbox's pid 1): call after the
 *  result line is printed. */
void wk_reap(void);

/* --- zygote.c ------------------------------------------------------------ */

/** Serve zygote requests on fds 0/1 (worker/README.md, "Zygote"); argc and
 *  *argv: the zygote's own (its cmdline's area is reused). Returns only in
 *  a forked worker, with its argument count and *argv set; the
 *  zygote itself ends with _exit when the controller hangs up. */
int wk_zygote(int argc, char ***argv);

/* --- sandbox.c (all run in the child; return 0 or -1 with wk_setup_err) -- */

/** Description of the last setup failure and whether it is permanent
 *  (the host cannot sandbox: exit 3) or transient (SANDBOX: result). */
struct wk_setup_err {
	char msg[200];
	int permanent;
};
extern struct wk_setup_err wk_setup_err;

/** Parent side: write setgroups/uid_map/gid_map of the child. */
int wk_write_idmaps(int pid, uint32_t uid, uint32_t gid);
/** The zygote, once: move into a new, empty net namespace (with a user
 *  namespace of identity-mapped ids to own it when unprivileged). Returns
 *  1 and sets wk_shared_netns, which its workers inherit: their sandboxes
 *  then share that namespace instead of each creating one. Returns 0 (no
 *  change: the sandboxes create their own) when the kernel refuses. */
int wk_enter_empty_netns(void);
extern int wk_shared_netns;
/** Become the namespace's root (setresuid/setresgid 0): the kernel uid
 *  is then the unprivileged outside uid. */
int wk_become_nsroot(void);
/** Build the minimal root for a runtime and pivot into it. node: the
 *  host path of the node binary (javascript). */
int wk_build_root(const struct wk_opts *o, enum wk_lang lang, const char *node);
/** Niceness of task code (the lowest priority: the host stays responsive). */
#define WK_TASK_NICE 19

/** Set every resource limit except the address-space/data one, and the
 *  task's niceness (WK_TASK_NICE). */
int wk_set_rlimits(const struct wk_task *t, int sandbox);
/** Set RLIMIT_AS (lua) or RLIMIT_DATA (node). */
int wk_set_memlimit(int resource, uint64_t bytes);
/** Move the runtime's descriptors to 0..4 (WK_FD_*) and close every other
 *  one. A negative fd leaves that slot closed. WK_FD_SETUP is close-on-exec. */
int wk_setup_fds(int task_fd, int out_fd, int err_fd, int status_fd, int setup_fd);
/** sandbox: drop every capability (bounding, ambient, effective,
 *  permitted, inheritable) and lock the securebits; both modes: set
 *  no_new_privs. */
int wk_drop_privileges(int sandbox);
/** Record a setup failure "<what>: <strerror(errno)>" and return -1. It is
 *  transient when errno says a resource ran out (EAGAIN, ENOMEM, EMFILE,
 *  ENFILE, EINTR), permanent otherwise. errno is preserved. */
int wk_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- filter.c ---------------------------------------------------------- */

enum wk_profile { WK_PROFILE_LUA, WK_PROFILE_NODE };
/** Install the runtime's seccomp allowlist (default: kill the process). */
int wk_seccomp_profile(enum wk_profile p);
/** Install a filter that answers getrandom(2) with fixed bytes through a
 *  SIGSYS trap (LuaJIT seeds its string hashing from it: determinism). */
int wk_seccomp_fixed_random(void);
/** Restore the default SIGSYS action after the seeded section. */
void wk_fixed_random_done(void);

/* --- lua_rt.c / probe.c: never return ------------------------------------ */

/** Run the Lua task in this (already sandboxed or plain) child. In sandbox
 *  mode the seccomp profile is installed once the state exists. Warm: the
 *  task arrives on fd 0 once the state exists (wk_take_task). */
__attribute__((noreturn)) void wk_lua_main(struct wk_task *t, int sandbox, int warm);
/** Run a --selftest-probe and exit (path probes take the path from the
 *  task's code). */
__attribute__((noreturn)) void wk_probe_main(const char *name, const struct wk_task *t);
/** 1 if name is a known probe. */
int wk_probe_known(const char *name);

/** Write one status line to WK_FD_STATUS (best effort). */
void wk_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** Report wk_setup_err on the setup descriptor and _exit(127). */
__attribute__((noreturn)) void wk_setup_abort(void);
/** Close the setup descriptor: from now on the task's code may run. */
void wk_setup_done(void);
/** Descriptor the child reports setup failures on (-1: none). */
extern int wk_setup_fd;

/* --- arena.c ------------------------------------------------------------- */

/** The deterministic allocator: one fixed-address mapping, boundary tags,
 *  segregated free lists. All state lives in the struct. */
struct wk_arena;
/** Map the arena (cap = live-byte limit). NULL with errno on failure. */
struct wk_arena *wk_arena_new(size_t cap);
/** lua_Alloc-compatible function; ud is the arena. */
void *wk_arena_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/** 1 if an allocation was refused (the task hit its memory limit). */
int wk_arena_failed(const struct wk_arena *a);
/** Bytes in use / high-water mark (headers included). */
size_t wk_arena_live(const struct wk_arena *a);
size_t wk_arena_peak(const struct wk_arena *a);
/** Bytes of address space the arena reserves (for RLIMIT_AS). */
size_t wk_arena_span(const struct wk_arena *a);
/** Self-check of the block structure (tests): 0 if consistent. */
int wk_arena_check(const struct wk_arena *a);

#endif
