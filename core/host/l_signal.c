/* SPDX-License-Identifier: MIT */
/*
 * Signals and file watches on the loop, each delivered to a Lua callback run
 * in a fresh host coroutine (so it may wait):
 *
 *   local h = host.on_signal("HUP", function(signame) ... end)
 *   local w = host.watch(path, function(path, events) ... end)
 *   h:stop(); w:stop()
 *
 * A watch on a directory reports changes to the names in it. A watch on
 * anything else (a file, or a name that does not exist yet) watches the
 * directory it is in and reports only that name: an inotify watch on the
 * file itself follows the inode, and an editor's or `sed -i`'s save (write
 * a new file, rename it over the old) would leave it on the old, deleted
 * inode, deaf to every later edit. The directory's watch sees the rename,
 * a delete and a re-create alike, for as long as the directory lives.
 *
 * Handles are malloc'd and freed only in their uv_close callback; the
 * callback's registry ref is dropped there too. A handle object that is
 * dropped leaves its signal or watch running until the host exits (serve's
 * TERM and INT handlers are never stopped): the object's __gc only detaches
 * it, so that the close callback at exit does not write to its freed memory.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"

#define WATCH_MT "workproof.watch"

struct watch {
	struct wp_hbase base;
	union {
		uv_signal_t sig;
		uv_fs_event_t fs;
		uv_handle_t handle;
	} u;
	int is_signal;
	int fn_ref;
	lua_State *L;
	struct watch **box;
	char *name;   /* watching the parent directory: report only this name */
};

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "TERM", SIGTERM }, { "QUIT", SIGQUIT },
	{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { NULL, 0 },
};

static void watch_closed(uv_handle_t *h)
{
	struct watch *w = h->data;

	luaL_unref(w->L, LUA_REGISTRYINDEX, w->fn_ref);
	if (w->box)
		*w->box = NULL;
	free(w->name);
	free(w);
}

static void call_back(struct watch *w, const char *a, int b)
{
	lua_State *L = w->L;

	lua_rawgeti(L, LUA_REGISTRYINDEX, w->fn_ref);
	lua_pushstring(L, a);
	lua_pushinteger(L, b);
	wp_host_spawn(L, 2);
	lua_pop(L, 1);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct watch *w = h->data;

	for (int i = 0; signals[i].name; i++)
		if (signals[i].sig == signum)
			call_back(w, signals[i].name, signum);
}

static void on_fs(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct watch *w = h->data;

	if (status < 0)
		return;
	if (w->name && (!filename || strcmp(filename, w->name)))
		return;   /* another name in the directory */
	call_back(w, filename ? filename : "", events);
}

static struct watch *new_watch(lua_State *L, int fn_idx)
{
	struct watch *w = calloc(1, sizeof(*w));
	struct watch **box;

	if (!w)
		luaL_error(L, "out of memory");
	w->base.magic = WP_HBASE_MAGIC;
	w->base.close_cb = watch_closed;
	w->L = wp_host_of(L)->L;
	lua_pushvalue(L, fn_idx);
	w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	box = lua_newuserdata(L, sizeof(*box));
	*box = w;
	w->box = box;
	luaL_getmetatable(L, WATCH_MT);
	lua_setmetatable(L, -2);
	return w;
}

/* host.on_signal(name, fn) -> handle */
static int l_on_signal(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	struct watch *w;
	int sig = 0;

	for (int i = 0; signals[i].name; i++)
		if (!strcmp(signals[i].name, name))
			sig = signals[i].sig;
	luaL_argcheck(L, sig != 0, 1, "unknown signal (HUP INT TERM QUIT USR1 USR2)");
	luaL_checktype(L, 2, LUA_TFUNCTION);
	w = new_watch(L, 2);
	w->is_signal = 1;
	uv_signal_init(wp_host_of(L)->loop, &w->u.sig);
	w->u.sig.data = w;
	uv_signal_start(&w->u.sig, on_signal, sig);
	/* a signal handler alone must not keep a script's loop alive */
	uv_unref(&w->u.handle);
	return 1;
}

/* What to watch for path: itself when it is a directory (*dir = NULL),
 * else its parent directory (*dir, malloc'd) with w->name its last part. */
static int watch_target(struct watch *w, const char *path, char **dir)
{
	struct stat st;
	const char *slash;
	size_t n;

	*dir = NULL;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	slash = strrchr(path, '/');
	if (slash && !slash[1])
		return UV_ENOTDIR;   /* "x/" that is not a directory */
	w->name = strdup(slash ? slash + 1 : path);
	n = slash ? (size_t)(slash - path) : 1;
	*dir = malloc(n + 1);
	if (!w->name || !*dir)
		return UV_ENOMEM;
	if (!slash)
		memcpy(*dir, ".", 2);
	else if (n == 0)
		memcpy(*dir, "/", 2);
	else {
		memcpy(*dir, path, n);
		(*dir)[n] = '\0';
	}
	return 0;
}

/* host.watch(path, fn) -> handle | nil, "EWATCH: ..." */
static int l_watch(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct watch *w;
	char *dir = NULL;
	int rc;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	w = new_watch(L, 2);
	uv_fs_event_init(wp_host_of(L)->loop, &w->u.fs);
	w->u.fs.data = w;
	rc = watch_target(w, path, &dir);
	if (!rc)
		rc = uv_fs_event_start(&w->u.fs, on_fs, dir ? dir : path, 0);
	free(dir);
	if (rc) {
		uv_close(&w->u.handle, watch_closed);
		return lwp_fail(L, "EWATCH", "%s: %s", path, uv_strerror(rc));
	}
	uv_unref(&w->u.handle);
	return 1;
}

static int l_stop(lua_State *L)
{
	struct watch **box = luaL_checkudata(L, 1, WATCH_MT);
	struct watch *w = *box;

	if (w && !uv_is_closing(&w->u.handle))
		uv_close(&w->u.handle, watch_closed);
	return 0;
}

/* The object is collected, the watch goes on: forget each other. */
static int l_gc(lua_State *L)
{
	struct watch **box = luaL_checkudata(L, 1, WATCH_MT);

	if (*box) {
		(*box)->box = NULL;
		*box = NULL;
	}
	return 0;
}

void lwp_host_open_signal(lua_State *L)
{
	static const luaL_Reg meta[] = { { "__gc", l_gc }, { NULL, NULL } };
	static const luaL_Reg methods[] = { { "stop", l_stop }, { NULL, NULL } };
	static const luaL_Reg fns[] = { { "on_signal", l_on_signal }, { "watch", l_watch },
					{ NULL, NULL } };

	lwp_class(L, WATCH_MT, meta, methods);
	lwp_setfuncs(L, fns);
}
