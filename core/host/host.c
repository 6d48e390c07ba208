/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "host.h"
#include "lwp.h"

/* Registry keys: addresses of these statics are unique light userdata. */
static char host_key;     /* -> struct wp_host * */
static char threads_key;  /* -> { [thread] = true } host coroutines alive */

struct wp_host *wp_host_of(lua_State *L)
{
	struct wp_host *h;

	lua_pushlightuserdata(L, &host_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	h = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return h;
}

static int traceback(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);

	if (!msg)
		msg = luaL_typename(L, 1);
	luaL_traceback(L, L, msg, 1);
	return 1;
}

int wp_host_pcall(lua_State *L, int nargs, int nres, const char *where)
{
	int base = lua_gettop(L) - nargs;   /* the function's slot */
	int st;

	lua_pushcfunction(L, traceback);
	lua_insert(L, base);
	st = lua_pcall(L, nargs, nres, base);
	lua_remove(L, base);
	if (st) {
		wp_log(WP_LOG_ERROR, "%s: %s", where, lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	return st;
}

static void anchor(lua_State *L, lua_State *co, int on)
{
	lua_pushlightuserdata(L, &threads_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	lua_pushthread(co);
	lua_xmove(co, L, 1);
	if (on)
		lua_pushboolean(L, 1);
	else
		lua_pushnil(L);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

int wp_host_is_coroutine(lua_State *co)
{
	int yes;

	lua_pushlightuserdata(co, &threads_key);
	lua_rawget(co, LUA_REGISTRYINDEX);
	lua_pushthread(co);
	lua_rawget(co, -2);
	yes = lua_toboolean(co, -1);
	lua_pop(co, 2);
	return yes;
}

lua_State *wp_host_coroutine(lua_State *L, int nargs)
{
	int fn = lua_gettop(L) - nargs;
	lua_State *co = lua_newthread(L);

	/* stack: fn args... co -> move co below fn, then fn+args into co */
	lua_insert(L, fn);
	lua_xmove(L, co, nargs + 1);
	anchor(L, co, 1);
	return co;   /* left on L's stack at index fn */
}

lua_State *wp_host_spawn(lua_State *L, int nargs)
{
	lua_State *co = wp_host_coroutine(L, nargs);

	wp_host_resume(co, nargs);
	return co;
}

int wp_host_resume(lua_State *co, int nargs)
{
	struct wp_host *h = wp_host_of(co);
	lua_State *L = h->L;
	int st = lua_resume(co, nargs);

	if (st == LUA_YIELD)
		return st;
	if (st != 0) {
		const char *msg = lua_tostring(co, -1);

		/* error() with no value is how Lua 5.1 scripts (busted among
		 * them) ask for a failing exit: count it, no traceback */
		if (lua_isnil(co, -1)) {
			wp_log(WP_LOG_DEBUG, "coroutine raised a nil error");
		} else {
			luaL_traceback(L, co, msg ? msg : luaL_typename(co, -1), 0);
			wp_log(WP_LOG_ERROR, "coroutine failed: %s", lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		h->errors++;
	} else if (co == h->main_co && lua_gettop(co) >= 1 &&
		   lua_type(co, 1) == LUA_TNUMBER) {
		h->exit_code = (int)lua_tointeger(co, 1);
	}
	if (co == h->main_co)
		h->main_co = NULL;
	lua_settop(co, 0);
	anchor(L, co, 0);
	return st;
}

static int set_lua_path(lua_State *L)
{
	static const luaL_Reg linked[] = {
		{ "workproof.core", luaopen_workproof_core },
		{ "workproof.host", luaopen_workproof_host },
		{ NULL, NULL },
	};
	const char *dir = getenv("WORKPROOF_LUA_DIR");
	const struct wp_layout *l;

	if (!dir || !*dir) {
		/* where this executable runs from decides (layout.c) */
		l = wp_layout();
		if (!l)
			return -1;
		dir = l->lua_dir;
	}
	/* trusted host library first, then whatever LUA_PATH/defaults give */
	lua_getglobal(L, "package");
	lua_getfield(L, -1, "path");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
	lua_setfield(L, -3, "path");
	lua_pop(L, 1);

	/* the core and the host modules are linked in: preload them */
	lua_getfield(L, -1, "preload");
	lwp_setfuncs(L, linked);
	lua_pop(L, 2);
	return 0;
}

#ifdef WP_LUA_SYSALLOC
/* Sanitizer builds (WP_SANITIZE) give the Lua heap to malloc: LuaJIT's own
 * allocator hides Lua objects from AddressSanitizer, and C code writing to
 * a collected userdata corrupted that heap silently (a crash at lua_close,
 * once in a while) instead of being reported where it wrote. */
static void *sys_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	(void)ud;
	(void)osize;
	if (nsize == 0) {
		free(ptr);
		return NULL;
	}
	return realloc(ptr, nsize);
}

/* what luaL_newstate's panic function says */
static int sys_panic(lua_State *L)
{
	const char *s = lua_tostring(L, -1);

	fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", s ? s : "?");
	return 0;
}
#endif

int wp_host_init(struct wp_host *h)
{
	memset(h, 0, sizeof(*h));
	/* a peer (a child that ignores its stdin, an HTTP client that went
	 * away) closing a pipe or socket must be an EPIPE, not a dead host */
	signal(SIGPIPE, SIG_IGN);
	h->loop = malloc(sizeof(*h->loop));
	if (!h->loop)
		return -ENOMEM;
	if (uv_loop_init(h->loop))
		goto fail;
#ifdef WP_LUA_SYSALLOC
	h->L = lua_newstate(sys_alloc, NULL);
	if (h->L)
		lua_atpanic(h->L, sys_panic);
#else
	h->L = luaL_newstate();
#endif
	if (!h->L)
		goto fail_loop;
	luaL_openlibs(h->L);
	lua_pushlightuserdata(h->L, &host_key);
	lua_pushlightuserdata(h->L, h);
	lua_rawset(h->L, LUA_REGISTRYINDEX);
	lua_pushlightuserdata(h->L, &threads_key);
	lua_newtable(h->L);
	lua_rawset(h->L, LUA_REGISTRYINDEX);
	if (set_lua_path(h->L))
		goto fail_state;
	if (wp_log_attach(h->loop))
		wp_log(WP_LOG_WARN, "log lines are written unbuffered: out of memory");
	return 0;
fail_state:
	lua_close(h->L);
	h->L = NULL;
fail_loop:
	uv_loop_close(h->loop);
fail:
	free(h->loop);
	h->loop = NULL;
	return -ENOMEM;
}

static void close_walk(uv_handle_t *handle, void *arg)
{
	struct wp_hbase *base = handle->data;

	(void)arg;
	if (uv_is_closing(handle))
		return;
	/* ours carry the magic; a library's handle (an h2o connection) is
	 * closed without a callback: the process is exiting anyway */
	if (base && base->magic == WP_HBASE_MAGIC)
		uv_close(handle, base->close_cb);
	else
		uv_close(handle, NULL);
}

void wp_host_close(struct wp_host *h)
{
	if (!h->loop)
		return;
	/*
	 * Handles still open belong to coroutines that never finished; their
	 * close callbacks (struct wp_hbase in handle->data) free
	 * them. Run the loop until those callbacks ran, then drop Lua.
	 */
	wp_host_http_shutdown();
	uv_walk(h->loop, close_walk, NULL);
	uv_run(h->loop, UV_RUN_DEFAULT);
	wp_host_http_free();
	lua_close(h->L);
	uv_loop_close(h->loop);
	free(h->loop);
	h->loop = NULL;
}
