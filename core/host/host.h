/* SPDX-License-Identifier: MIT */
/*
 * The workproof host: one libuv loop, one LuaJIT state, coroutines.
 *
 * Every C->Lua entry (the script's main chunk, a timer firing, later a child
 * exiting or an HTTP request arriving) goes through wp_host_pcall() or
 * wp_host_resume(): no Lua error ever unwinds through a libuv frame
 * (docs/conventions.md §3). Loop-bound objects are malloc'd handles freed only
 * in their uv_close callback (convention 1).
 */
#ifndef WORKPROOF_HOST_H
#define WORKPROOF_HOST_H

#include <lua.h>
#include <uv.h>

struct wp_host {
	uv_loop_t *loop;
	lua_State *L;          /* the main state; coroutines are its threads */
	int errors;            /* coroutines that ended in an error */
	int exit_code;         /* set by the main chunk's return value or wp.stop */
	int stopped;           /* wp.stop ran: exit_code stands, errors or not */
	lua_State *main_co;    /* the main chunk's coroutine (NULL once done) */
};

/*
 * Every handle the host opens points handle->data at an object that begins
 * with this, so that at exit the host can close what is still open and free
 * each object the way its owner does.
 */
#define WP_HBASE_MAGIC 0x77706862u   /* "wphb" */
struct wp_hbase {
	uint32_t magic;          /* WP_HBASE_MAGIC: handles libraries (h2o) own lack it */
	uv_close_cb close_cb;
};

enum wp_log_level { WP_LOG_DEBUG, WP_LOG_INFO, WP_LOG_WARN, WP_LOG_ERROR };

enum wp_log_format { WP_LOG_TEXT, WP_LOG_JSON };

/** One extra field of a log line. val is len bytes, not owned; raw: a JSON
 *  literal (number, true, false, null) written as is, else a string. */
struct wp_log_field {
	const char *key;
	const char *val;
	size_t len;
	int raw;
};

/** Log a printf-formatted message (no fields) if lvl is enabled. */
void wp_log(enum wp_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/** Log msg (len bytes, not owned) with nf fields, as one line written with
 *  one call, in the configured format. */
void wp_log_fields(enum wp_log_level lvl, const char *msg, size_t len,
		   const struct wp_log_field *f, int nf);

/** Set the minimum level and the format (a negative value keeps the
 *  current one). WORKPROOF_LOG and WORKPROOF_LOG_FORMAT, when set to a
 *  valid value, win over both. */
void wp_log_configure(int level, int format);

/** A level / format name -> its enum value, -1 if unknown. */
int wp_log_parse_level(const char *name);
int wp_log_parse_format(const char *name);

/** The effective settings (static strings). */
const char *wp_log_level_name(void);
const char *wp_log_format_name(void);

/** Would a line at lvl be written? */
int wp_log_enabled(enum wp_log_level lvl);

/** Gather the lines logged on this (the loop's) thread and write them once
 *  per iteration of loop (an unreferenced prepare handle, closed with the
 *  host's handles), at the latest at exit; error lines go at once.
 *  Returns 0 or -ENOMEM (then every line is written at once). */
int wp_log_attach(uv_loop_t *loop);

/** Write what waits (the loop's thread only; elsewhere a no-op). */
void wp_log_flush(void);

/*
 * Where the companions of this executable live, found from /proc/self/exe
 * (core/host/layout.c). Empty strings for what a layout does not have
 * (prefix in a build tree; build_dir and source_dir when installed).
 */
struct wp_layout {
	int installed;                 /* 1: <prefix>/bin/workproof; 0: a build tree */
	char exe_dir[4096];
	char prefix[4096];
	char build_dir[4096];
	char source_dir[4096];
	char lua_dir[4096];            /* the trusted library: <lua_dir>/workproof/ */
	char policies_dir[4096];
	char libexec_dir[4096];        /* workproof-worker */
	char vm_scripts_dir[4096];     /* build-initramfs.sh, kvm-probe.sh, ... */
};

/** The layout, computed on first use; NULL (and logged) if the executable
 *  cannot be located. Static storage: never free it. */
const struct wp_layout *wp_layout(void);

/** Create the host: a loop and a Lua state with the workproof modules
 *  preloaded. Returns 0 or a negative errno-style value. */
int wp_host_init(struct wp_host *h);

/** Close every handle, run the loop until their close callbacks ran, close
 *  the Lua state. */
void wp_host_close(struct wp_host *h);

/** The host that owns state L (any thread of it). */
struct wp_host *wp_host_of(lua_State *L);

/**
 * Protected call of the function below nargs arguments on L's stack, with a
 * traceback. On error logs "where: traceback", leaves nothing on the stack
 * and returns the lua status; on success leaves nres results.
 */
int wp_host_pcall(lua_State *L, int nargs, int nres, const char *where);

/**
 * Make a host coroutine of fn and its nargs arguments (pushed in lua_call
 * order: fn, args...; both are moved into the thread). The coroutine is
 * anchored until it finishes. Returns the thread, which is also left on L's
 * stack in fn's place. Start it with wp_host_resume(co, nargs).
 */
lua_State *wp_host_coroutine(lua_State *L, int nargs);

/** wp_host_coroutine() and its first resume. */
lua_State *wp_host_spawn(lua_State *L, int nargs);

/**
 * Resume host coroutine co with nargs values on its stack. Handles every
 * outcome: yield (it waits on something that will resume it), return
 * (unanchored), error (traceback logged, unanchored, counted).
 * Returns the lua_resume status.
 */
int wp_host_resume(lua_State *co, int nargs);

/** True if co is a coroutine run by the host (wp.sleep may yield it). */
int wp_host_is_coroutine(lua_State *co);

/** Adds the HTTP/JSON-RPC client (libcurl multi on the loop) to the table on top. */
void lwp_host_open_rpc(lua_State *L);

/** Adds the thread-pool jobs (vdf_eval) to the table on top. */
void lwp_host_open_work(lua_State *L);

/** Adds on_signal and watch to the table on top. */
void lwp_host_open_signal(lua_State *L);

/** Stop every HTTP server and dispose of h2o's state (host teardown, before
 *  the remaining handles are closed); wp_host_http_free() after the loop ran. */
void wp_host_http_shutdown(void);
void wp_host_http_free(void);

/** Adds http_listen and the server metatable to the table on top. */
void lwp_host_open_http(lua_State *L);

/** Resolve host (an IPv4 or IPv6 literal, else a name: getaddrinfo, the
 *  first IPv4 or IPv6 answer) with port into ss. 0 or a negative UV_E*. */
int wp_host_resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *ss);

/** Adds resolve and tcp_reserve (a port held for a process group) to the table on top. */
void lwp_host_open_net(lua_State *L);

/*
 * Mutually authenticated TLS 1.3 (l_tls.c, docs/transport.md); the reasons
 * are enum wp_tls_reason of workproof/tlsid.h, passed here as int.
 */
struct ssl_ctx_st;        /* OpenSSL's SSL_CTX, X509_STORE_CTX, X509, EVP_PKEY */
struct x509_store_ctx_st;
struct x509_st;
struct evp_pkey_st;

/** Adds pg_connect (PostgreSQL through libpq on the loop) to the table on top. */
void lwp_host_open_pg(lua_State *L);

/** Adds tls_identity and tls_peer_key to the table on top. */
void lwp_host_open_tls(lua_State *L);

/** 64 hex digits -> 32 bytes; 0 or -1. */
int wp_tls_hexkey(const char *s, size_t len, uint8_t out[32]);
/** The identity key at idx (64 hex) into out; raises when malformed. */
void lwp_tls_checkkey(lua_State *L, int idx, uint8_t out[32]);
/** Push a key as 64 lowercase hex. */
void lwp_tls_pushkey(lua_State *L, const uint8_t key[32]);

/** The pin half of a peer check: WP_TLS_OK or WP_TLS_UNKNOWN_KEY /
 *  WP_TLS_WRONG_KEY, with a short text in detail. */
typedef int (*wp_tls_pin_fn)(const uint8_t key[32], void *arg, char *detail, size_t len);

/** The one peer check of both sides, for inside a cert verify callback:
 *  wp_tls_check_cert() on the chain the peer sent, at the current time,
 *  then pinned(). Sets the store's error (the alert the peer gets) and
 *  returns the reason; key is the identity when WP_TLS_OK. */
int wp_tls_verify_peer(struct x509_store_ctx_st *xs, wp_tls_pin_fn pinned, void *arg,
		       uint8_t key[32], char *detail, size_t len);

/** Parse a PEM certificate and its PEM private key, check that they
 *  belong together and that the certificate is a valid identity
 *  certificate (the clock aside). 0 with *x, *k owned by the caller, or -1
 *  with "<reason>: text" in err. */
int wp_tls_load_pair(const char *cert, size_t clen, const char *key, size_t klen,
		     struct x509_st **x, struct evp_pkey_st **k, char *err, size_t errlen);

/** A TLS-1.3-only server context presenting cert/key, requiring a client
 *  certificate checked by verify(store, arg), without resumption. NULL
 *  with "<reason>: text" in err. The caller owns the context. */
struct ssl_ctx_st *wp_tls_server_ctx(const char *cert, size_t clen, const char *key, size_t klen,
				     int (*verify)(struct x509_store_ctx_st *, void *), void *arg,
				     char *err, size_t errlen);

/** Adds process_spawn and the process metatable to the table on top. */
void lwp_host_open_process(lua_State *L);

/** Adds mkdir, rmdir, scandir, rename, unlink and stat to the table on top. */
void lwp_host_open_fs(lua_State *L);

/** host.log and its settings (l_log.c); lwp_host_log is the C function
 *  behind host.log, also handed to the HTTP trampoline. */
void lwp_host_open_log(lua_State *L);
int lwp_host_log(lua_State *L);

/** Opener of the "workproof.host" module (sleep, spawn, now, time). */
int luaopen_workproof_host(lua_State *L);

#endif
