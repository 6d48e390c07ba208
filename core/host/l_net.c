/* SPDX-License-Identifier: MIT */
/*
 * Listen addresses: resolving a host name, and holding a port for a group
 * of processes that share it (`workproof serve --processes N`).
 *
 *   host.resolve(name, port) -> { address = "127.0.0.1", family = 4|6, port = n }
 *                             | nil, "ERESOLVE: ...", "ERESOLVE"
 *   local r = host.tcp_reserve(name, port) -> reservation | nil, "ELISTEN: ...", "ELISTEN"
 *   r.port, r.address, r.family, r:close()
 *
 * A reservation is a TCP socket bound (never listening) with SO_REUSEPORT:
 * the kernel hands connections only to listening sockets, so it takes none,
 * but while it is open the port stays the group's: a process that binds
 * without SO_REUSEPORT (a second `workproof serve`) fails with EADDRINUSE,
 * the children (which bind with SO_REUSEPORT) may come and go, and port 0
 * gets one number the children all use. It is not a loop handle (no
 * callback ever runs on it): the userdata owns the descriptor, closed by
 * r:close() or the collector. The descriptor is close-on-exec.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <lauxlib.h>

#include "host.h"
#include "lwp.h"

#define RESERVE_MT "workproof.reservation"

int wp_host_resolve(uv_loop_t *loop, const char *host, int port, struct sockaddr_storage *ss)
{
	struct addrinfo hints, *ai = NULL;
	uv_getaddrinfo_t req;
	int rc;

	memset(ss, 0, sizeof(*ss));
	/* literals first: no resolver round trip, and "::1" never goes to DNS */
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	if (!*host)
		return UV_EINVAL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	/* start-up only, so a synchronous lookup (no callback) is fine */
	rc = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints);
	if (rc)
		return rc;
	ai = req.addrinfo;
	rc = UV_EAI_NONAME;
	for (struct addrinfo *a = ai; a; a = a->ai_next) {
		if (a->ai_family == AF_INET && a->ai_addrlen <= sizeof(*ss)) {
			memcpy(ss, a->ai_addr, a->ai_addrlen);
			((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
			rc = 0;
			break;
		}
		if (a->ai_family == AF_INET6 && a->ai_addrlen <= sizeof(*ss)) {
			memcpy(ss, a->ai_addr, a->ai_addrlen);
			((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
			rc = 0;
			break;
		}
	}
	uv_freeaddrinfo(ai);
	return rc;
}

/* Push { address, family, port } of ss. */
static void push_addr(lua_State *L, const struct sockaddr_storage *ss)
{
	char buf[64] = "";
	int port;

	if (ss->ss_family == AF_INET6) {
		uv_ip6_name((const struct sockaddr_in6 *)ss, buf, sizeof(buf));
		port = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	} else {
		uv_ip4_name((const struct sockaddr_in *)ss, buf, sizeof(buf));
		port = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	}
	lua_createtable(L, 0, 3);
	lua_pushstring(L, buf);
	lua_setfield(L, -2, "address");
	lua_pushinteger(L, ss->ss_family == AF_INET6 ? 6 : 4);
	lua_setfield(L, -2, "family");
	lua_pushinteger(L, port);
	lua_setfield(L, -2, "port");
}

static int check_port(lua_State *L, int idx)
{
	lua_Integer port = luaL_checkinteger(L, idx);

	luaL_argcheck(L, port >= 0 && port <= 65535, idx, "port out of range");
	return (int)port;
}

/* host.resolve(name, port) -> { address, family, port } | nil, "ERESOLVE: ..." */
static int l_resolve(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int port = check_port(L, 2), rc;
	struct sockaddr_storage ss;

	rc = wp_host_resolve(wp_host_of(L)->loop, name, port, &ss);
	if (rc)
		return lwp_fail(L, "ERESOLVE", "%s: %s", name, uv_strerror(rc));
	push_addr(L, &ss);
	return 1;
}

struct reservation {
	int fd;
	struct sockaddr_storage ss;
};

/* host.tcp_reserve(name, port) -> reservation | nil, "ELISTEN: ..." */
static int l_tcp_reserve(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	int port = check_port(L, 2), rc, fd, one = 1;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct reservation *r;

	rc = wp_host_resolve(wp_host_of(L)->loop, name, port, &ss);
	if (rc)
		return lwp_fail(L, "ELISTEN", "%s:%d: %s", name, port, uv_strerror(rc));
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lwp_fail(L, "ELISTEN", "%s:%d: %s", name, port, strerror(errno));
	/* SO_REUSEPORT only: with SO_REUSEADDR too (which libuv sets on every
	 * bind) a socket without SO_REUSEPORT could bind beside this one
	 * while no child listens */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)))
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		goto fail;
	r = lua_newuserdata(L, sizeof(*r));
	r->fd = fd;
	r->ss = ss;
	luaL_getmetatable(L, RESERVE_MT);
	lua_setmetatable(L, -2);
	return 1;
fail:
	rc = errno;
	close(fd);
	return lwp_fail(L, "ELISTEN", "%s:%d: %s", name, port, strerror(rc));
}

static int l_reserve_close(lua_State *L)
{
	struct reservation *r = luaL_checkudata(L, 1, RESERVE_MT);

	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	return 0;
}

static int l_reserve_index(lua_State *L)
{
	struct reservation *r = luaL_checkudata(L, 1, RESERVE_MT);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "close")) {
		lua_pushcfunction(L, l_reserve_close);
		return 1;
	}
	if (!strcmp(k, "address") || !strcmp(k, "port") || !strcmp(k, "family")) {
		push_addr(L, &r->ss);
		lua_getfield(L, -1, k);
		return 1;
	}
	lua_pushnil(L);
	return 1;
}

void lwp_host_open_net(lua_State *L)
{
	static const luaL_Reg meta[] = { { "__index", l_reserve_index }, { "__gc", l_reserve_close },
					 { NULL, NULL } };
	static const luaL_Reg fns[] = { { "resolve", l_resolve }, { "tcp_reserve", l_tcp_reserve },
					{ NULL, NULL } };

	lwp_class(L, RESERVE_MT, meta, NULL);
	lwp_setfuncs(L, fns);
}
