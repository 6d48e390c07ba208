/* SPDX-License-Identifier: MIT */
/*
 * CPU-heavy primitives on the libuv thread pool, so the loop keeps serving:
 *
 *   local y, proof, l = host.vdf_eval(seed, T [, on_progress])
 *
 * yields the calling host coroutine until a pool thread has evaluated the
 * VDF; on_progress(done, total) is called on the loop thread (coalesced
 * through a uv_async: the latest figure wins) and may not yield.
 * The job struct owns one handle (the async) and is freed in its close
 * callback, after the coroutine was resumed.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"
#include "workproof/common.h"
#include "workproof/vdf.h"

struct vdf_job {
	struct wp_hbase base;
	uv_work_t work;
	uv_async_t async;
	lua_State *co;
	lua_State *L;
	int progress_ref;        /* LUA_NOREF when none */
	uint8_t *seed;
	size_t seed_len;
	uint64_t T;
	struct wp_vdf_output out;
	int rc;
	_Atomic uint64_t done, total;
};

static void job_closed(uv_handle_t *h)
{
	struct vdf_job *j = h->data;

	if (j->progress_ref != LUA_NOREF)
		luaL_unref(j->L, LUA_REGISTRYINDEX, j->progress_ref);
	free(j->seed);
	free(j);
}

/* pool thread: only C, no Lua */
static int on_progress(void *ud, enum wp_vdf_phase phase, uint64_t done, uint64_t total)
{
	struct vdf_job *j = ud;

	(void)phase;
	atomic_store(&j->done, done);
	atomic_store(&j->total, total);
	uv_async_send(&j->async);
	return 0;
}

static void work(uv_work_t *w)
{
	struct vdf_job *j = w->data;
	struct wp_vdf_opts opts;

	memset(&opts, 0, sizeof(opts));
	if (j->progress_ref != LUA_NOREF) {
		opts.progress = on_progress;
		opts.ud = j;
	}
	j->rc = wp_vdf_eval(j->seed, j->seed_len, j->T, &opts, &j->out);
}

/* loop thread: report the latest progress figure */
static void progress_cb(uv_async_t *a)
{
	struct vdf_job *j = a->data;
	lua_State *L = j->L;

	if (j->progress_ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, j->progress_ref);
	lua_pushnumber(L, (lua_Number)atomic_load(&j->done));
	lua_pushnumber(L, (lua_Number)atomic_load(&j->total));
	wp_host_pcall(L, 2, 0, "vdf progress callback");
}

static void after_work(uv_work_t *w, int status)
{
	struct vdf_job *j = w->data;
	lua_State *co = j->co;
	int n;

	progress_cb(&j->async);   /* the final figure */
	if (status == UV_ECANCELED || j->rc) {
		lua_pushnil(co);
		lua_pushfstring(co, "%s: VDF evaluation failed", status ? "ECANCELED" : wp_strerror(j->rc));
		n = 2;
	} else {
		lua_pushlstring(co, (const char *)j->out.y, WP_VDF_BYTES);
		lua_pushlstring(co, (const char *)j->out.proof, WP_VDF_BYTES);
		lua_pushlstring(co, (const char *)j->out.l, WP_VDF_L_BYTES);
		n = 3;
	}
	uv_close((uv_handle_t *)&j->async, job_closed);
	wp_host_resume(co, n);
}

static int l_vdf_eval(lua_State *L)
{
	size_t len;
	const char *seed = luaL_checklstring(L, 1, &len);
	lua_Number t = luaL_checknumber(L, 2);
	struct wp_host *h = wp_host_of(L);
	struct vdf_job *j;
	int rc;

	luaL_argcheck(L, t >= 0 && t <= (lua_Number)WP_VDF_T_MAX && t == (lua_Number)(uint64_t)t, 2,
		      "T must be an integer in [0, 2^53]");
	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TFUNCTION);
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "vdf_eval: not in a host coroutine");
	j = calloc(1, sizeof(*j));
	if (!j || !(j->seed = malloc(len ? len : 1))) {
		free(j);
		return lwp_fail(L, "ENOMEM", "vdf_eval: out of memory");
	}
	memcpy(j->seed, seed, len);
	j->seed_len = len;
	j->T = (uint64_t)t;
	j->co = L;
	j->L = h->L;
	j->base.magic = WP_HBASE_MAGIC;
	j->base.close_cb = job_closed;
	j->progress_ref = LUA_NOREF;
	if (lua_isfunction(L, 3)) {
		lua_pushvalue(L, 3);
		j->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	uv_async_init(h->loop, &j->async, progress_cb);
	j->async.data = j;
	j->work.data = j;
	rc = uv_queue_work(h->loop, &j->work, work, after_work);
	if (rc) {
		uv_close((uv_handle_t *)&j->async, job_closed);
		return lwp_fail(L, "EQUEUE", "vdf_eval: %s", uv_strerror(rc));
	}
	return lua_yield(L, 0);
}

void lwp_host_open_work(lua_State *L)
{
	lua_pushcfunction(L, l_vdf_eval);
	lua_setfield(L, -2, "vdf_eval");
}
