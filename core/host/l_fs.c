/* SPDX-License-Identifier: MIT */
/*
 * File-system calls for trusted Lua, instead of shelling out to mkdir, ls
 * or stat: mkdir, rmdir, scandir, rename, unlink, stat. Called from a host
 * coroutine they run on libuv's thread pool and yield until done (a slow
 * disk cannot stall the loop); called from plain Lua (start-up, scripts)
 * they run synchronously. Errors are nil, "ECODE: op path: text", "ECODE"
 * with the libuv/errno name as the code (ENOENT, EEXIST, EACCES, ...).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"

enum fs_op { FS_MKDIR, FS_RMDIR, FS_SCANDIR, FS_RENAME, FS_UNLINK, FS_STAT };

static const char *const OP_NAME[] = { "mkdir", "rmdir", "scandir", "rename", "unlink", "stat" };

struct fs_req {
	uv_fs_t req;
	lua_State *co;
	enum fs_op op;
};

static const char *type_of(uint64_t mode)
{
	if (S_ISREG(mode))
		return "file";
	if (S_ISDIR(mode))
		return "directory";
	if (S_ISLNK(mode))
		return "link";
	return "other";
}

/* Push the outcome of a finished request onto L; returns the count. */
static int push_result(lua_State *L, uv_fs_t *req, enum fs_op op)
{
	if (req->result < 0) {
		int rc = (int)req->result;

		lua_pushnil(L);
		lua_pushfstring(L, "%s: %s %s: %s", uv_err_name(rc), OP_NAME[op],
				req->path ? req->path : "?", uv_strerror(rc));
		lua_pushstring(L, uv_err_name(rc));
		return 3;
	}
	switch (op) {
	case FS_SCANDIR: {
		uv_dirent_t ent;
		int i = 0;

		lua_newtable(L);
		while (uv_fs_scandir_next(req, &ent) != UV_EOF) {
			lua_pushstring(L, ent.name);
			lua_rawseti(L, -2, ++i);
		}
		return 1;
	}
	case FS_STAT: {
		const uv_stat_t *st = &req->statbuf;

		lua_createtable(L, 0, 4);
		lua_pushinteger(L, (lua_Integer)(st->st_mode & 07777));
		lua_setfield(L, -2, "mode");
		lua_pushnumber(L, (lua_Number)st->st_size);
		lua_setfield(L, -2, "size");
		lua_pushstring(L, type_of(st->st_mode));
		lua_setfield(L, -2, "type");
		lua_pushnumber(L, (lua_Number)st->st_mtim.tv_sec + (lua_Number)st->st_mtim.tv_nsec / 1e9);
		lua_setfield(L, -2, "mtime");
		return 1;
	}
	default:
		lua_pushboolean(L, 1);
		return 1;
	}
}

static void fs_done(uv_fs_t *req)
{
	struct fs_req *r = req->data;
	lua_State *co = r->co;
	int n = push_result(co, req, r->op);

	uv_fs_req_cleanup(req);
	free(r);
	wp_host_resume(co, n);
}

/* Start op on req; cb NULL runs it synchronously. Returns libuv's rc. */
static int start(lua_State *L, uv_loop_t *loop, uv_fs_t *req, enum fs_op op, uv_fs_cb cb)
{
	const char *path = luaL_checkstring(L, 1);

	switch (op) {
	case FS_MKDIR:
		return uv_fs_mkdir(loop, req, path, (int)luaL_optinteger(L, 2, 0755), cb);
	case FS_RMDIR:
		return uv_fs_rmdir(loop, req, path, cb);
	case FS_SCANDIR:
		return uv_fs_scandir(loop, req, path, 0, cb);
	case FS_RENAME:
		return uv_fs_rename(loop, req, path, luaL_checkstring(L, 2), cb);
	case FS_UNLINK:
		return uv_fs_unlink(loop, req, path, cb);
	case FS_STAT:
		return uv_fs_stat(loop, req, path, cb);
	}
	return UV_EINVAL;
}

static int fs_call(lua_State *L, enum fs_op op)
{
	struct wp_host *h = wp_host_of(L);

	luaL_checkstring(L, 1);
	if (op == FS_RENAME)    /* every argument checked before a request exists */
		luaL_checkstring(L, 2);
	if (op == FS_MKDIR) {
		lua_Integer mode = luaL_optinteger(L, 2, 0755);

		luaL_argcheck(L, mode >= 0 && mode <= 07777, 2, "mode out of range");
	}
	if (wp_host_is_coroutine(L)) {
		struct fs_req *r = calloc(1, sizeof(*r));
		int rc;

		if (!r)
			return lwp_fail(L, "ENOMEM", "%s: out of memory", OP_NAME[op]);
		r->co = L;    /* anchored by the host while it is alive */
		r->op = op;
		r->req.data = r;
		rc = start(L, h->loop, &r->req, op, fs_done);
		if (rc < 0) {    /* refused before it was queued: no callback comes */
			r->req.result = rc;
			int n = push_result(L, &r->req, op);

			uv_fs_req_cleanup(&r->req);
			free(r);
			return n;
		}
		return lua_yield(L, 0);
	} else {
		uv_fs_t req;
		int n;

		start(L, h->loop, &req, op, NULL);
		n = push_result(L, &req, op);
		uv_fs_req_cleanup(&req);
		return n;
	}
}

/* host.mkdir(path [, mode = 0755]) -> true | nil, err, code */
static int l_mkdir(lua_State *L) { return fs_call(L, FS_MKDIR); }
/* host.rmdir(path) -> true | nil, err, code */
static int l_rmdir(lua_State *L) { return fs_call(L, FS_RMDIR); }
/* host.scandir(path) -> { name, ... } (unsorted, no . and ..) | nil, err, code */
static int l_scandir(lua_State *L) { return fs_call(L, FS_SCANDIR); }
/* host.rename(from, to) -> true | nil, err, code */
static int l_rename(lua_State *L) { return fs_call(L, FS_RENAME); }
/* host.unlink(path) -> true | nil, err, code */
static int l_unlink(lua_State *L) { return fs_call(L, FS_UNLINK); }
/* host.stat(path) -> { mode, size, type, mtime } | nil, err, code */
static int l_stat(lua_State *L) { return fs_call(L, FS_STAT); }

void lwp_host_open_fs(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "mkdir", l_mkdir },
		{ "rmdir", l_rmdir },
		{ "scandir", l_scandir },
		{ "rename", l_rename },
		{ "unlink", l_unlink },
		{ "stat", l_stat },
		{ NULL, NULL },
	};

	lwp_setfuncs(L, fns);
}
