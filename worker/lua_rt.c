/* SPDX-License-Identifier: MIT */
/*
 * The Lua runtime: runs the task in this (sandboxed) child process, in a
 * fresh LuaJIT state that shares nothing with the trusted state which
 * decoded the task.
 *
 *  - memory: lua_newstate() with the arena allocator (arena.c), capped at
 *    memoryBytes and deterministic. The first refused allocation ends the
 *    task: MEMORY_LIMIT (a pcall never gets to catch "not enough memory").
 *  - time: the JIT is off, so a count hook sees every bytecode; past the
 *    budget the hook ends the task: INSTRUCTION_LIMIT. Ending it there,
 *    rather than raising an error on every later hook call, is what makes
 *    the limit stick: LuaJIT re-enters a failing xpcall message handler
 *    from C without executing an instruction, so a raising hook can spin
 *    forever (spec/fixtures/hostile/lua_loop_xpcall_handler.lua). The
 *    worker's wall-clock kill covers C functions that run long
 *    (string.rep, pattern matching).
 *  - environment: an allowlist built by a trusted chunk inside the task
 *    state (SETUP below); the shared string metatable indexes the safe
 *    string table and is hidden with __metatable.
 *  - output: print and io.write go through a buffer to fd 1 (the pipe the
 *    worker hashes). Code is loaded in text mode only: no bytecode.
 *  - determinism: fixed heap addresses (arena), a fixed PRNG seed for the
 *    state (getrandom trap, filter.c), no clock, no math.random.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <luajit.h>

#include "worker.h"

#define HOOK_STEP 1000
#define OUTBUF (64 * 1024)
/* Address space beyond the arena: the worker's code, libraries, libc heap.
 * Far above what they use; RLIMIT_AS is only a backstop to the arena cap. */
#define AS_HEADROOM (1ull << 30)
#define MAX_DEPTH 1000

static struct {
	struct wk_arena *arena;
	uint64_t budget, used;
	int out_broken;
	size_t olen;
	char obuf[OUTBUF];
} rt;

/* The environment the task sees. Runs inside the task state before any
 * task code, with the state's own (already reduced) globals: only base,
 * string, table, math and bit were ever opened in it. */
static const char SETUP[] =
	"local print, io, input, null = ...\n"
	"local pairs = pairs\n"
	"local function copy(t)\n"
	"  local r = {}\n"
	"  for k, v in pairs(t) do r[k] = v end\n"
	"  return r\n"
	"end\n"
	"local string = copy(string)\n"
	"string.dump = nil\n"
	"local math = copy(math)\n"
	"math.random, math.randomseed = nil, nil\n"
	"local env = {\n"
	"  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,\n"
	"  pcall = pcall, xpcall = xpcall, select = select, tonumber = tonumber,\n"
	"  tostring = tostring, type = type, unpack = unpack, rawequal = rawequal,\n"
	"  rawget = rawget, rawset = rawset, setmetatable = setmetatable,\n"
	"  getmetatable = getmetatable, _VERSION = _VERSION,\n"
	"  string = string, table = copy(table), math = math,\n"
	"  coroutine = copy(coroutine), bit = copy(bit),\n"
	"  print = print, io = io, input = input, null = null,\n"
	"}\n"
	"env._G = env\n"
	"local mt = getmetatable('')\n"
	"mt.__index = string\n"
	"mt.__metatable = false\n"
	"return env\n";

/* --- output ------------------------------------------------------------- */

static void write_all(const char *p, size_t n)
{
	while (n > 0 && !rt.out_broken) {
		ssize_t w = write(WK_FD_OUT, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			rt.out_broken = 1; /* the worker stopped reading: it is killing us */
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void out_flush(void)
{
	write_all(rt.obuf, rt.olen);
	rt.olen = 0;
}

static void out_put(const char *p, size_t n)
{
	if (rt.olen + n > OUTBUF) {
		out_flush();
		if (n > OUTBUF / 2) {
			write_all(p, n);
			return;
		}
	}
	memcpy(rt.obuf + rt.olen, p, n);
	rt.olen += n;
}

/* print(...): like Lua's, through the original tostring (upvalue 1). */
static int l_print(lua_State *L)
{
	int n = lua_gettop(L), i;

	for (i = 1; i <= n; i++) {
		const char *s;
		size_t len;

		lua_pushvalue(L, lua_upvalueindex(1));
		lua_pushvalue(L, i);
		lua_call(L, 1, 1);
		s = lua_tolstring(L, -1, &len);
		if (!s)
			return luaL_error(L, "'tostring' must return a string to 'print'");
		if (i > 1)
			out_put("\t", 1);
		out_put(s, len);
		lua_pop(L, 1);
	}
	out_put("\n", 1);
	return 0;
}

/* io.write(...) and io.stdout:write(...): strings and numbers only.
 * Upvalues: the io.stdout table (returned, for chaining), method flag. */
static int l_write(lua_State *L)
{
	int n = lua_gettop(L), i = 1;

	if (lua_toboolean(L, lua_upvalueindex(2))) {
		if (!lua_rawequal(L, 1, lua_upvalueindex(1)))
			return luaL_argerror(L, 1, "io.stdout expected (use io.stdout:write)");
		i = 2;
	}
	for (; i <= n; i++) {
		size_t len;
		const char *s = luaL_checklstring(L, i, &len);

		out_put(s, len);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	return 1;
}

/* --- limits ---------------------------------------------------------------- */

/* The task is over: what it printed so far is flushed (the hash stays a
 * function of the task), the verdict goes to the worker. */
__attribute__((noreturn)) static void limit_exit(const char *verdict)
{
	out_flush();
	wk_status("%s", verdict);
	_exit(1);
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	(void)L;
	(void)ar;
	rt.used += HOOK_STEP;
	if (rt.used > rt.budget)
		limit_exit("INSTRUCTION_LIMIT");
}

static void *task_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	void *p = wk_arena_alloc(ud, ptr, osize, nsize);

	if (!p && nsize)
		limit_exit("MEMORY_LIMIT");
	return p;
}

/* --- the task's input: copied from the trusted state ---------------------- */

struct key {
	const char *s;
	size_t n;
};

static int keycmp(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);

	return c ? c : (x->n > y->n) - (x->n < y->n);
}

static void copy_value(lua_State *from, int idx, lua_State *to, int depth);

/* JSON objects are copied in sorted key order and arrays in index order:
 * the task state's table layout (and so pairs() order) must not depend on
 * the trusted state's randomly seeded hashing. */
static void copy_table(lua_State *from, int idx, lua_State *to, int depth)
{
	size_t nkeys = 0, nnum = 0, i;
	struct key *keys;
	int tidx;

	lua_pushnil(from);
	while (lua_next(from, idx)) {
		if (lua_type(from, -2) == LUA_TSTRING)
			nkeys++;
		else
			nnum++;
		lua_pop(from, 1);
	}
	if (nnum) { /* an array (lua-cjson never mixes the two) */
		size_t len = lua_objlen(from, idx);

		lua_createtable(to, (int)len, 0);
		tidx = lua_gettop(to);
		for (i = 1; i <= len; i++) {
			lua_rawgeti(from, idx, (int)i);
			copy_value(from, lua_gettop(from), to, depth + 1);
			lua_pop(from, 1);
			lua_rawseti(to, tidx, (int)i);
		}
		return;
	}
	/* the key array lives in the trusted state: freed with it, and not
	 * leaked if the task state raises (memory) in the middle */
	keys = lua_newuserdata(from, (nkeys ? nkeys : 1) * sizeof(*keys));
	i = 0;
	lua_pushnil(from);
	while (lua_next(from, idx)) {
		keys[i].s = lua_tolstring(from, -2, &keys[i].n);
		i++;
		lua_pop(from, 1);
	}
	qsort(keys, nkeys, sizeof(*keys), keycmp);
	lua_createtable(to, 0, (int)nkeys);
	tidx = lua_gettop(to);
	for (i = 0; i < nkeys; i++) {
		lua_pushlstring(to, keys[i].s, keys[i].n);
		lua_pushlstring(from, keys[i].s, keys[i].n);
		lua_rawget(from, idx);
		copy_value(from, lua_gettop(from), to, depth + 1);
		lua_pop(from, 1);
		lua_rawset(to, tidx);
	}
	lua_pop(from, 1); /* keys */
}

static void copy_value(lua_State *from, int idx, lua_State *to, int depth)
{
	const char *s;
	size_t n;

	if (depth > MAX_DEPTH || !lua_checkstack(from, 8))
		luaL_error(to, "input nested too deeply");
	luaL_checkstack(to, 8, "input nested too deeply");
	switch (lua_type(from, idx)) {
	case LUA_TBOOLEAN:
		lua_pushboolean(to, lua_toboolean(from, idx));
		break;
	case LUA_TNUMBER:
		lua_pushnumber(to, lua_tonumber(from, idx));
		break;
	case LUA_TSTRING:
		s = lua_tolstring(from, idx, &n);
		lua_pushlstring(to, s, n);
		break;
	case LUA_TTABLE:
		copy_table(from, idx, to, depth);
		break;
	case LUA_TLIGHTUSERDATA: /* cjson.null */
		lua_pushlightuserdata(to, NULL);
		break;
	default:
		lua_pushnil(to);
		break;
	}
}

/* --- state setup and run ----------------------------------------------------- */

static int setup_cb(lua_State *L)
{
	static const struct {
		const char *name;
		lua_CFunction open;
	} libs[] = {
		{ "", luaopen_base }, /* also opens coroutine */
		{ LUA_STRLIBNAME, luaopen_string },
		{ LUA_TABLIBNAME, luaopen_table },
		{ LUA_MATHLIBNAME, luaopen_math },
		{ LUA_BITLIBNAME, luaopen_bit },
	};
	int io, out;
	size_t i;

	for (i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		lua_pushcfunction(L, libs[i].open);
		lua_pushstring(L, libs[i].name);
		lua_call(L, 1, 0);
	}
	if (luaL_loadbuffer(L, SETUP, sizeof(SETUP) - 1, "=setup"))
		return lua_error(L);
	lua_getglobal(L, "tostring");
	lua_pushcclosure(L, l_print, 1);
	lua_createtable(L, 0, 2);
	io = lua_gettop(L);
	lua_createtable(L, 0, 1);
	out = lua_gettop(L);
	lua_pushvalue(L, out);
	lua_pushboolean(L, 1);
	lua_pushcclosure(L, l_write, 2);
	lua_setfield(L, out, "write");
	lua_pushvalue(L, out);
	lua_pushboolean(L, 0);
	lua_pushcclosure(L, l_write, 2);
	lua_setfield(L, io, "write");
	lua_setfield(L, io, "stdout");
	lua_pushnil(L); /* the input: set by input_cb once the task is known */
	lua_pushlightuserdata(L, NULL);
	lua_call(L, 4, 1);
	lua_setfield(L, LUA_REGISTRYINDEX, "workproof.env");
	return 0;
}

/* env.input = the task's input, copied from the trusted state. After the
 * environment is built in both modes, so that a warm runtime (built before
 * its task arrived) allocates exactly as a cold one: same addresses. */
static int input_cb(lua_State *L)
{
	const struct wk_task *t = lua_touserdata(L, 1);

	lua_getfield(L, LUA_REGISTRYINDEX, "workproof.env");
	if (t->input_idx)
		copy_value(t->trusted, t->input_idx, L, 0);
	else
		lua_pushnil(L);
	lua_setfield(L, -2, "input");
	return 0;
}

/* Raise and catch one error before the filter is loaded: the first Lua
 * error initialises libgcc's unwinder (pthread_once, i.e. futex), which
 * the Lua profile does not allow. */
static int raise_cb(lua_State *L)
{
	return luaL_error(L, "warm-up");
}

static int run_cb(lua_State *L)
{
	const struct wk_task *t = lua_touserdata(L, 1);

	lua_settop(L, 0);
	if (luaL_loadbufferx(L, t->code, t->code_len, "=task", "t"))
		return lua_error(L); /* syntax error, or a binary chunk */
	lua_getfield(L, LUA_REGISTRYINDEX, "workproof.env");
	lua_setfenv(L, -2);
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_STEP);
	lua_call(L, 0, 0);
	lua_sethook(L, NULL, 0, 0);
	return 0;
}

__attribute__((noreturn)) static void finish(lua_State *L, int rc)
{
	char msg[256];

	lua_sethook(L, NULL, 0, 0);
	out_flush();
	if (rc == LUA_ERRMEM) {
		/* LuaJIT refused a size itself (a buffer over 2 GiB) */
		wk_status("MEMORY_LIMIT");
		_exit(1);
	}
	if (rc) {
		size_t i, n = 0;
		const char *s = NULL;

		if (lua_type(L, -1) == LUA_TSTRING)
			s = lua_tolstring(L, -1, &n);
		if (s) {
			for (i = 0; i < n && i < sizeof(msg) - 1; i++)
				msg[i] = (s[i] == '\n' || s[i] == '\r' || !s[i]) ? ' ' : s[i];
			msg[i] = '\0';
		} else if (lua_type(L, -1) == LUA_TNUMBER) {
			snprintf(msg, sizeof(msg), "%.14g", lua_tonumber(L, -1));
		} else {
			snprintf(msg, sizeof(msg), "(error object is a %s value)", luaL_typename(L, -1));
		}
		wk_status("RUNTIME_ERROR: %s", msg);
		_exit(1);
	}
	/* the output is complete: say so with every pipe closed, so the worker
	 * need not wait for this process's teardown (run.c, "done") */
	close(WK_FD_OUT);
	close(WK_FD_ERR);
	wk_status("OK");
	close(WK_FD_STATUS);
	_exit(0);
}

static int on_panic(lua_State *L)
{
	(void)L;
	limit_exit("RUNTIME_ERROR: Lua panic");
}

/* A warm sandbox's runtime: the state is ready, now the task (the same
 * bytes the worker checked) arrives on fd 0 and is decoded in the trusted
 * state this process inherited, as the worker decodes it. */
static void take_warm_task(struct wk_task *t)
{
	struct wk_result r;
	uint64_t memory = t->memory;

	memset(&r, 0, sizeof(r));
	if (wk_take_task(t, &r) == 0 && t->memory == memory && t->lang == WK_LANG_LUA)
		return;
	if (r.cls == WK_CLASS_BAD_TASK) {
		wk_status("%s", r.error);
		_exit(1);
	}
	snprintf(wk_setup_err.msg, sizeof(wk_setup_err.msg), "warm runtime: %.150s",
		 r.error[0] ? r.error : "the task does not fit");
	wk_setup_err.permanent = 0;
	wk_setup_abort();
}

void wk_lua_main(struct wk_task *t, int sandbox, int warm)
{
	lua_State *L;
	int rc;

	rt.arena = wk_arena_new((size_t)t->memory);
	if (!rt.arena) {
		wk_fail("map the Lua heap (%llu bytes)", (unsigned long long)t->memory);
		wk_setup_abort();
	}
	if (!WK_ASAN && wk_set_memlimit(RLIMIT_AS, wk_arena_span(rt.arena) + AS_HEADROOM))
		wk_setup_abort();
	if (wk_seccomp_fixed_random())
		wk_setup_abort();
	L = lua_newstate(task_alloc, rt.arena);
	wk_fixed_random_done();
	if (!L) {
		snprintf(wk_setup_err.msg, sizeof(wk_setup_err.msg), "lua_newstate failed");
		wk_setup_err.permanent = 0;
		wk_setup_abort();
	}
	lua_atpanic(L, on_panic);
	luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
	rc = lua_cpcall(L, setup_cb, NULL);
	lua_cpcall(L, raise_cb, NULL);
	/* a warm runtime is ready: now its task */
	if (!rc && warm)
		take_warm_task(t);
	if (!rc)
		rc = lua_cpcall(L, input_cb, (void *)t);
	if (rc) {
		snprintf(wk_setup_err.msg, sizeof(wk_setup_err.msg), "Lua runtime setup: %s",
			 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
		wk_setup_err.permanent = 0;
		wk_setup_abort();
	}
	lua_settop(L, 0);
	if (sandbox && wk_seccomp_profile(WK_PROFILE_LUA))
		wk_setup_abort();
	wk_setup_done();
	rt.budget = t->insn_limit;
	rc = lua_cpcall(L, run_cb, (void *)t);
	finish(L, rc);
}
