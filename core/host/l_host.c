/* SPDX-License-Identifier: MIT */
/*
 * "workproof.host": what only the host can offer a script, because it needs
 * the loop: sleep, spawn, clocks. Re-exported by lua/workproof/init.lua.
 */
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"

struct sleep_req {
	struct wp_hbase base;
	uv_timer_t timer;
	lua_State *co;
};

static void sleep_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void sleep_fired(uv_timer_t *timer)
{
	struct sleep_req *req = timer->data;
	lua_State *co = req->co;

	uv_close((uv_handle_t *)timer, sleep_closed);
	wp_host_resume(co, 0);
}

/* wp.sleep(seconds): suspend the calling host coroutine. */
static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	struct wp_host *h = wp_host_of(L);
	struct sleep_req *req;

	luaL_argcheck(L, s >= 0 && isfinite(s) && s < 1e9, 1, "seconds out of range");
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "wp.sleep: not in a host coroutine (use wp.spawn)");
	req = malloc(sizeof(*req));
	if (!req)
		return luaL_error(L, "wp.sleep: out of memory");
	req->base.magic = WP_HBASE_MAGIC;
	req->base.close_cb = sleep_closed;
	req->co = L;    /* anchored by the host while it is alive */
	/* the loop's cached time is from the start of this iteration; Lua may
	 * have run for a while since, and the sleep must not come up short */
	uv_update_time(h->loop);
	uv_timer_init(h->loop, &req->timer);
	req->timer.data = req;
	uv_timer_start(&req->timer, sleep_fired, (uint64_t)llround(s * 1000.0), 0);
	return lua_yield(L, 0);
}

/* wp.spawn(fn, ...): run fn(...) as a new host coroutine; returns it. */
static int l_spawn(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TFUNCTION);
	if (!wp_host_spawn(L, lua_gettop(L) - 1))
		return luaL_error(L, "wp.spawn: out of memory");
	return 1;
}

/* wp.now(): monotonic seconds (float), for durations. */
static int l_now(lua_State *L)
{
	lua_pushnumber(L, (double)uv_hrtime() / 1e9);
	return 1;
}

/*
 * wp.boot_ticks(): clock ticks (USER_HZ) since boot on CLOCK_BOOTTIME, the
 * clock and unit of a process's start time in /proc/<pid>/stat (field 22;
 * the kernel divides the same nanoseconds the same way). A process forked
 * between two readings that agree started in that tick.
 */
static int l_boot_ticks(lua_State *L)
{
	struct timespec ts;
	uint64_t ns;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	lua_pushnumber(L, (double)(ns / (1000000000u / (uint64_t)(hz > 0 ? hz : 100))));
	return 1;
}

/* wp.time(): wall-clock Unix seconds (float). */
static int l_time(lua_State *L)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
	return 1;
}

/*
 * wp.stop([code]): end the host from any coroutine. The loop stops after
 * this callback; the host then closes every handle and the Lua state (so
 * finalizers run: a clean exit, unlike os.exit) and exits with code
 * (default 0). The calling coroutine is never resumed.
 */
static int l_stop(lua_State *L)
{
	struct wp_host *h = wp_host_of(L);
	lua_Integer code = luaL_optinteger(L, 1, 0);

	luaL_argcheck(L, code >= 0 && code <= 255, 1, "exit code out of range (0 .. 255)");
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "wp.stop: not in a host coroutine (use wp.spawn)");
	h->exit_code = (int)code;
	h->stopped = 1;
	uv_stop(h->loop);
	return lua_yield(L, 0);
}

/* wp.in_coroutine(): may this code call yielding host functions? */
static int l_in_coroutine(lua_State *L)
{
	lua_pushboolean(L, wp_host_is_coroutine(L));
	return 1;
}

static void set_path(lua_State *L, const char *name, const char *value)
{
	if (!value || !*value)
		return;   /* absent in this layout: nil, so a misuse fails loudly */
	lua_pushstring(L, value);
	lua_setfield(L, -2, name);
}

/*
 * Where this executable's companions live (layout.c): installed, prefix,
 * lua_dir, policies_dir, libexec_dir (workproof-worker), vm_scripts_dir;
 * in a build tree also build_dir (WORKPROOF_BUILD overrides it, as ctest
 * sets it) and source_dir. docs/lua-api.md, "Host paths".
 */
static void push_layout(lua_State *L)
{
	const struct wp_layout *l = wp_layout();
	const char *env = getenv("WORKPROOF_BUILD");

	if (!l)
		return;   /* host init already refused to start without one */
	lua_pushboolean(L, l->installed);
	lua_setfield(L, -2, "installed");
	set_path(L, "prefix", l->prefix);
	set_path(L, "lua_dir", l->lua_dir);
	set_path(L, "policies_dir", l->policies_dir);
	set_path(L, "libexec_dir", l->installed || !env || !*env ? l->libexec_dir : env);
	set_path(L, "vm_scripts_dir", l->vm_scripts_dir);
	if (!l->installed) {
		set_path(L, "build_dir", env && *env ? env : l->build_dir);
		set_path(L, "source_dir", l->source_dir);
	}
}

int luaopen_workproof_host(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "sleep", l_sleep },
		{ "spawn", l_spawn },
		{ "now", l_now },
		{ "time", l_time },
		{ "boot_ticks", l_boot_ticks },
		{ "in_coroutine", l_in_coroutine },
		{ "stop", l_stop },
		{ NULL, NULL },
	};

	lua_newtable(L);
	lwp_setfuncs(L, fns);
	lwp_host_open_process(L);
	lwp_host_open_http(L);
	lwp_host_open_signal(L);
	lwp_host_open_rpc(L);
	lwp_host_open_work(L);
	lwp_host_open_fs(L);
	lwp_host_open_log(L);
	lwp_host_open_net(L);
	lwp_host_open_tls(L);
	lwp_host_open_pg(L);
	lua_pushinteger(L, (lua_Integer)getpid());
	lua_setfield(L, -2, "pid");
	{
		/* this executable, for processes that run it again (serve --processes) */
		char exe[4096];
		size_t n = sizeof(exe);

		if (uv_exepath(exe, &n) == 0) {
			lua_pushlstring(L, exe, n);
			lua_setfield(L, -2, "exepath");
		}
	}
	push_layout(L);
	lua_pushstring(L, WP_VERSION);
	lua_setfield(L, -2, "version");
	return 1;
}
