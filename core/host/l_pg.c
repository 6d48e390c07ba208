/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL client connections through libpq, driven by the host's libuv
 * loop: a connection is non-blocking (PQconnectStart / PQconnectPoll, then
 * PQsetnonblocking) and every operation yields only the calling host
 * coroutine while a uv_poll on PQsocket() waits for the server. Called
 * outside a host coroutine the same steps run with poll(2) instead (a
 * process's start or end). The pool, the statement cache and the SQL
 * dialect live in lua/workproof/store/postgres.lua.
 *
 *   local c, err = host.pg_connect("postgresql://u@127.0.0.1:5432/db")
 *   c:exec("CREATE TABLE ...; CREATE INDEX ...")   -- simple query, no params
 *   local types = c:prepare("s1", "SELECT v FROM t WHERE k = $1")  -- { oid, ... }
 *   local rows = c:run("s1", types, "a")  -- { {v = "1"} } | changed rows
 *   c:close()
 *
 * Results: a query's rows as an array of tables (column name -> value;
 * integers, floats and numerics as numbers, booleans as 1 / 0, bytea as raw
 * bytes, NULL absent, anything else text); a command's changed-row count.
 * Failures: nil, "ESTORE: <server message>", SQLSTATE ("08000" class when
 * the connection is gone: c:ok() is then false).
 *
 * Parameters: nil is NULL, numbers and booleans (1 / 0) go as text, strings
 * as text except where the server inferred bytea (types[i] == 17): those
 * go in binary format, so any bytes round-trip.
 *
 * Lifetimes (docs/conventions.md §1): the userdata owns the PGconn; the
 * socket's uv_poll lives in a struct pg_watch, freed in its close callback.
 * Each side detaches the other: __gc stops and closes the watch before
 * PQfinish closes the socket; the host's teardown may close the watch
 * first. One operation at a time per connection (the pool's job); the
 * waiting coroutine keeps the userdata alive on its stack.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <libpq-fe.h>

#include "host.h"
#include "lwp.h"

#define PG_MT "workproof.pg_conn"
#define BYTEA_OID 17
#define MAX_PARAMS 256

enum pg_op { OP_NONE, OP_CONNECT, OP_QUERY, OP_DESCRIBE };

struct pg_conn;

struct pg_watch {
	struct wp_hbase base;    /* close_cb: watch_closed */
	uv_poll_t poll;
	int fd;
	struct pg_conn *c;       /* NULL once the connection let go */
};

struct pg_conn {
	PGconn *pg;
	struct pg_watch *watch;
	uv_loop_t *loop;
	lua_State *co;           /* the coroutine waiting, or NULL */
	enum pg_op op;
	int flushed;
	int failed;              /* the connect failed */
	PGresult *res;           /* the result kept: the first error, else the last */
	int self_ref;            /* registry ref to the userdata while connecting */
};

static struct pg_conn *check_conn(lua_State *L)
{
	struct pg_conn *c = luaL_checkudata(L, 1, PG_MT);

	if (!c->pg)
		luaL_error(L, "pg: connection closed");
	return c;
}

static void watch_closed(uv_handle_t *h)
{
	struct pg_watch *w = h->data;

	if (w->c)
		w->c->watch = NULL;
	free(w);
}

static void drop_watch(struct pg_conn *c)
{
	struct pg_watch *w = c->watch;

	if (!w)
		return;
	c->watch = NULL;
	w->c = NULL;
	if (!uv_is_closing((uv_handle_t *)&w->poll)) {
		uv_poll_stop(&w->poll);
		uv_close((uv_handle_t *)&w->poll, watch_closed);
	}
}

/* ---- the steps: 0 when the operation is over, else the events to wait for -- */

static void keep(struct pg_conn *c, PGresult *r)
{
	if (c->res && PQresultStatus(c->res) == PGRES_FATAL_ERROR) {
		PQclear(r);
		return;
	}
	PQclear(c->res);
	c->res = r;
}

static int step(struct pg_conn *c, int readable)
{
	if (c->op == OP_CONNECT) {
		switch (PQconnectPoll(c->pg)) {
		case PGRES_POLLING_READING:
			return UV_READABLE;
		case PGRES_POLLING_WRITING:
			return UV_WRITABLE;
		case PGRES_POLLING_OK:
			if (PQsetnonblocking(c->pg, 1) != 0)
				c->failed = 1;
			return 0;
		default:
			c->failed = 1;
			return 0;
		}
	}
	if (readable && !PQconsumeInput(c->pg))
		return 0;    /* the connection broke: PQstatus says so */
	if (!c->flushed) {
		int f = PQflush(c->pg);

		if (f < 0)
			return 0;
		if (f == 1)
			return UV_READABLE | UV_WRITABLE;
		c->flushed = 1;
	}
	while (!PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);

		if (!r)
			return 0;
		keep(c, r);
	}
	return UV_READABLE;
}

/* ---- results ---------------------------------------------------------------- */

static void push_value(lua_State *L, const PGresult *r, int row, int col)
{
	const char *v = PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);

	switch (PQftype(r, col)) {
	case 20: case 21: case 23: case 26: case 700: case 701: case 1700:   /* int8/2/4, oid, float4/8, numeric */
		lua_pushnumber(L, strtod(v, NULL));
		break;
	case 16:    /* bool */
		lua_pushinteger(L, v[0] == 't');
		break;
	case BYTEA_OID: {
		size_t n;
		unsigned char *b = PQunescapeBytea((const unsigned char *)v, &n);

		if (b) {
			lua_pushlstring(L, (const char *)b, n);
			PQfreemem(b);
		} else {
			lua_pushnil(L);
		}
		break;
	}
	default:
		lua_pushlstring(L, v, (size_t)len);
	}
}

/* Push the outcome of the finished operation on L; returns the count. */
static int push_outcome(lua_State *L, struct pg_conn *c)
{
	PGresult *r = c->res;
	enum pg_op op = c->op;
	int n;

	c->res = NULL;
	c->op = OP_NONE;
	if (op == OP_CONNECT) {
		if (c->failed || PQstatus(c->pg) != CONNECTION_OK) {
			n = lwp_fail(L, "ESTORE", "cannot connect to PostgreSQL: %s",
				     PQerrorMessage(c->pg));
			lua_pop(L, 1);
			lua_pushliteral(L, "08001");
			return n;
		}
		return 0;    /* the caller pushes the connection */
	}
	if (!r || PQresultStatus(r) == PGRES_FATAL_ERROR || PQresultStatus(r) == PGRES_BAD_RESPONSE ||
	    PQresultStatus(r) == PGRES_NONFATAL_ERROR) {
		const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
		const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;

		lua_pushnil(L);
		lua_pushfstring(L, "ESTORE: %s", msg ? msg : PQerrorMessage(c->pg));
		lua_pushstring(L, state ? state : "08000");
		PQclear(r);
		return 3;
	}
	if (op == OP_DESCRIBE) {
		int np = PQnparams(r);

		lua_createtable(L, np, 0);
		for (int i = 0; i < np; i++) {
			lua_pushnumber(L, (lua_Number)PQparamtype(r, i));
			lua_rawseti(L, -2, i + 1);
		}
	} else if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		int rows = PQntuples(r), cols = PQnfields(r);

		lua_createtable(L, rows, 0);
		for (int i = 0; i < rows; i++) {
			lua_createtable(L, 0, cols);
			for (int j = 0; j < cols; j++) {
				if (PQgetisnull(r, i, j))
					continue;
				push_value(L, r, i, j);
				lua_setfield(L, -2, PQfname(r, j));
			}
			lua_rawseti(L, -2, i + 1);
		}
	} else {
		const char *t = PQcmdTuples(r);

		lua_pushnumber(L, t[0] ? strtod(t, NULL) : 0);
	}
	PQclear(r);
	return 1;
}

/* ---- waiting ----------------------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events);

/* Watch the connection's socket for want; 0, or -1 when it cannot. */
static int arm(struct pg_conn *c, int want)
{
	int fd = PQsocket(c->pg);

	if (c->watch && c->watch->fd != fd)    /* another address tried: a new socket */
		drop_watch(c);
	if (!c->watch) {
		struct pg_watch *w = calloc(1, sizeof(*w));

		if (!w)
			return -1;
		w->base.magic = WP_HBASE_MAGIC;
		w->base.close_cb = watch_closed;
		w->fd = fd;
		w->c = c;
		w->poll.data = w;
		if (uv_poll_init_socket(c->loop, &w->poll, fd) < 0) {
			free(w);
			return -1;
		}
		c->watch = w;
	}
	return uv_poll_start(&c->watch->poll, want, on_poll) < 0 ? -1 : 0;
}

/* Run the operation to its end here (outside a coroutine, or when the
 * socket cannot be watched). */
static void wait_sync(struct pg_conn *c, int want)
{
	while (want) {
		struct pollfd pfd = { .fd = PQsocket(c->pg), .events = 0 };

		if (want & UV_READABLE)
			pfd.events |= POLLIN;
		if (want & UV_WRITABLE)
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return;
		want = step(c, (pfd.revents & (POLLIN | POLLERR | POLLHUP)) != 0);
	}
}

/* The outcome on L, the connection itself for a connect. */
static int outcome(lua_State *L, struct pg_conn *c)
{
	int ref = c->self_ref;
	int n = push_outcome(L, c);

	if (n == 0) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
		n = 1;
	}
	if (ref != LUA_NOREF) {
		c->self_ref = LUA_NOREF;
		luaL_unref(L, LUA_REGISTRYINDEX, ref);
	}
	return n;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct pg_watch *w = p->data;
	struct pg_conn *c = w->c;
	lua_State *co;
	int want;

	if (!c || !c->co)
		return;
	want = step(c, status < 0 || (events & UV_READABLE));
	if (want && arm(c, want) == 0)
		return;
	if (want)
		wait_sync(c, want);
	if (c->watch)
		uv_poll_stop(&c->watch->poll);
	co = c->co;
	c->co = NULL;
	wp_host_resume(co, outcome(co, c));
}

/* Wait (yield, or poll(2) outside a host coroutine) until the operation
 * started on c is over, then push its outcome. */
static int finish(lua_State *L, struct pg_conn *c)
{
	int want = step(c, 0);

	if (want && wp_host_is_coroutine(L) && arm(c, want) == 0) {
		c->co = L;
		return lua_yield(L, 0);
	}
	wait_sync(c, want);
	return outcome(L, c);
}

static int busy(lua_State *L, struct pg_conn *c)
{
	if (c->op != OP_NONE)
		return luaL_error(L, "pg: connection busy (one operation at a time)");
	if (PQstatus(c->pg) != CONNECTION_OK) {
		lua_pushnil(L);
		lua_pushfstring(L, "ESTORE: connection lost: %s", PQerrorMessage(c->pg));
		lua_pushliteral(L, "08000");
		return 3;
	}
	return 0;
}

static int sent(lua_State *L, struct pg_conn *c, int ok, enum pg_op op)
{
	if (!ok) {
		lua_pushnil(L);
		lua_pushfstring(L, "ESTORE: %s", PQerrorMessage(c->pg));
		lua_pushliteral(L, "08000");
		return 3;
	}
	c->op = op;
	c->flushed = 0;
	return finish(L, c);
}

/* ---- the Lua face -------------------------------------------------------------- */

/* the server's NOTICEs ("relation ... already exists, skipping") are not
 * errors: libpq would print them on stderr */
static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* host.pg_connect(conninfo) -> conn | nil, err, sqlstate */
static int l_pg_connect(lua_State *L)
{
	const char *info = luaL_checkstring(L, 1);
	struct pg_conn *c = lua_newuserdata(L, sizeof(*c));

	memset(c, 0, sizeof(*c));
	c->self_ref = LUA_NOREF;
	luaL_getmetatable(L, PG_MT);
	lua_setmetatable(L, -2);
	c->loop = wp_host_of(L)->loop;
	c->pg = PQconnectStart(info);
	if (!c->pg)
		return lwp_fail(L, "ESTORE", "cannot connect to PostgreSQL: out of memory");
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		int n = lwp_fail(L, "ESTORE", "cannot connect to PostgreSQL: %s", PQerrorMessage(c->pg));

		PQfinish(c->pg);
		c->pg = NULL;
		return n;
	}
	PQsetNoticeProcessor(c->pg, quiet, NULL);
	c->op = OP_CONNECT;
	c->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);    /* pops it: anchored until the outcome */
	/* PQconnectStart leaves it as if PQconnectPoll said WRITING: step()
	 * would poll at once, which libpq allows */
	return finish(L, c);
}

/* c:exec(sql) -> rows | count | nil, err, sqlstate (a simple query: several
 * statements allowed, no parameters) */
static int l_exec(lua_State *L)
{
	struct pg_conn *c = check_conn(L);
	const char *sql = luaL_checkstring(L, 2);
	int n = busy(L, c);

	if (n)
		return n;
	lua_settop(L, 1);
	return sent(L, c, PQsendQuery(c->pg, sql), OP_QUERY);
}

/* c:prepare(name, sql) -> 0 | nil, err, sqlstate */
static int l_prepare(lua_State *L)
{
	struct pg_conn *c = check_conn(L);
	const char *name = luaL_checkstring(L, 2);
	const char *sql = luaL_checkstring(L, 3);
	int n = busy(L, c);

	if (n)
		return n;
	lua_settop(L, 3);
	return sent(L, c, PQsendPrepare(c->pg, name, sql, 0, NULL), OP_QUERY);
}

/* c:describe(name) -> { param type oid, ... } | nil, err, sqlstate */
static int l_describe(lua_State *L)
{
	struct pg_conn *c = check_conn(L);
	const char *name = luaL_checkstring(L, 2);
	int n = busy(L, c);

	if (n)
		return n;
	lua_settop(L, 2);
	return sent(L, c, PQsendDescribePrepared(c->pg, name), OP_DESCRIBE);
}

/* c:run(name, types, ...) -> rows | count | nil, err, sqlstate */
static int l_run(lua_State *L)
{
	struct pg_conn *c = check_conn(L);
	const char *name = luaL_checkstring(L, 2);
	int np = lua_gettop(L) - 3, n, ok;
	const char *vals[MAX_PARAMS];
	int lens[MAX_PARAMS], fmts[MAX_PARAMS];
	char nums[MAX_PARAMS][32];

	luaL_checktype(L, 3, LUA_TTABLE);
	luaL_argcheck(L, np <= MAX_PARAMS, 4, "too many parameters");
	n = busy(L, c);
	if (n)
		return n;
	for (int i = 0; i < np; i++) {
		int idx = i + 4;
		size_t len = 0;

		fmts[i] = 0;
		lens[i] = 0;
		switch (lua_type(L, idx)) {
		case LUA_TNIL:
			vals[i] = NULL;
			break;
		case LUA_TBOOLEAN:
			vals[i] = lua_toboolean(L, idx) ? "1" : "0";
			break;
		case LUA_TNUMBER: {
			lua_Number v = lua_tonumber(L, idx);

			if (v == (lua_Number)(long long)v && v > -9.007199254740992e15 && v < 9.007199254740992e15)
				snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)v);
			else
				snprintf(nums[i], sizeof(nums[i]), "%.17g", v);
			vals[i] = nums[i];
			break;
		}
		case LUA_TSTRING:
			vals[i] = lua_tolstring(L, idx, &len);
			lua_rawgeti(L, 3, i + 1);
			if (lua_tonumber(L, -1) == BYTEA_OID) {
				fmts[i] = 1;
				lens[i] = (int)len;
			}
			lua_pop(L, 1);
			break;
		default:
			return luaL_argerror(L, idx, "pg: cannot bind this type");
		}
	}
	/* the values stay on the stack (anchored) until PQsendQueryPrepared
	 * copied them into its output buffer */
	ok = PQsendQueryPrepared(c->pg, name, np, vals, lens, fmts, 0);
	lua_settop(L, 1);
	return sent(L, c, ok, OP_QUERY);
}

/* c:ok() -> is the connection usable? */
static int l_ok(lua_State *L)
{
	struct pg_conn *c = luaL_checkudata(L, 1, PG_MT);

	lua_pushboolean(L, c->pg && PQstatus(c->pg) == CONNECTION_OK);
	return 1;
}

static int l_close(lua_State *L)
{
	struct pg_conn *c = luaL_checkudata(L, 1, PG_MT);

	drop_watch(c);
	PQclear(c->res);
	c->res = NULL;
	if (c->pg) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	return 0;
}

void lwp_host_open_pg(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "exec", l_exec },
		{ "prepare", l_prepare },
		{ "describe", l_describe },
		{ "run", l_run },
		{ "ok", l_ok },
		{ "close", l_close },
		{ NULL, NULL },
	};

	if (luaL_newmetatable(L, PG_MT)) {
		lua_newtable(L);
		luaL_register(L, NULL, methods);
		lua_setfield(L, -2, "__index");
		lua_pushcfunction(L, l_close);
		lua_setfield(L, -2, "__gc");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, l_pg_connect);
	lua_setfield(L, -2, "pg_connect");
}
