/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server: h2o (libuv flavour) on the host's loop; every request
 * runs its Lua handler in a fresh host coroutine, so a handler may wait (a
 * worker, an RPC call) while other requests go on.
 *
 *   local srv = host.http_listen{ host = "127.0.0.1", port = 8402,
 *                                 reuseport = false, max_body = 2097152,
 *                                 handler = function(req) ... end }
 *   handler(req) -> status, headers_table, body_string
 *   handler(req) -> status, headers_table, function(stream): a streamed
 *   response (Server-Sent Events): the head goes out at once, the function
 *   is then called with the stream, which stays open until closed:
 *     stream:send(data) -> true, or false once the client is gone, the
 *       stream closed, or more than 1 MiB is waiting for a slow reader
 *       (the stream is then ended)
 *     stream:close()     ends the response once what is queued is sent
 *     stream.open        false once closed or the client is gone
 *   srv:shutdown() closes every stream (a drain ends them), srv.streams
 *   counts the open ones; a stream holds its connection like a running
 *   handler (no header timeout) and is not counted in srv.active.
 *   host: an IPv4 or IPv6 literal or a name (resolved once, the first
 *   answer); reuseport (default false): SO_REUSEPORT, several processes on
 *   one port (serve --processes); without it a busy port is an ELISTEN
 *   req = { method, path, query, headers = {lowercase name = value},
 *           body, authority (the Host), peer, peer_addr, version }
 *   peer: the client's address, or on a TLS server its verified identity
 *   key (64 lowercase hex, also as peer_key); peer_addr: the address, always
 *   srv.port, srv.active (requests in flight), srv:close() (stop accepting),
 *   srv:shutdown() (also close idle keep-alive connections),
 *   srv:drop() (end every open connection), srv.connections,
 *   srv:stats() -> { connections, accepted, rejected_per_client,
 *                    rejected_fd_reserve, timeout_header, timeout_body,
 *                    clients, fds_open, fd_limit
 *                    [TLS: tls_handshakes, tls_refused_<reason>] }
 *
 * Mutually authenticated TLS 1.3 (the uptime agents, docs/transport.md):
 *   tls = { cert = pem, key = pem, pins = { hex, ... } | "any" }
 *   srv.tls (boolean)
 *   srv:set_tls{ cert =, key = }   the certificate for new connections
 *   srv:pin(hex [, on = true])     add or remove a pinned client key
 * Every client must present an identity certificate (l_tls.c) whose key
 * is pinned (or any valid one with pins = "any"); the request's peer is
 * that key. Refusals are counted per reason: plaintext, protocol (not TLS
 * 1.3), no_cert, bad_cert, bad_extension, bad_signature, stale_cert,
 * unknown_key, other (the handshake failed or was abandoned). Pins and
 * certificates apply to handshakes from then on; a connection keeps the
 * identity it proved (Lua authorises each request by req.peer).
 *
 * Connection budgets (so idle sockets cannot starve the rest of the
 * process of descriptors; every option has a default and 0 turns the
 * caps off):
 *   max_connections_per_client = 64   open connections per peer IPv4
 *                                     address or IPv6 /64
 *   fd_reserve = 64        descriptors kept free for everything else
 *                          (a worker spawn needs 8 at once, 3 while it
 *                          runs): a connection accepted with fewer free
 *                          is closed at once
 *   header_timeout = 10    seconds to receive a request head, from the
 *                          accept or the end of the previous request
 *                          (so also the keep-alive idle limit)
 *   body_timeout = 30      seconds to receive the whole request, head and
 *                          body, counted from the same point
 * A connection over a cap gets a bare 503 and is closed before h2o sees
 * it. A timed-out one is shut down (shutdown(2)); h2o then reads EOF and
 * tears it down the ordinary way. A request whose handler is running is
 * never timed out here.
 *
 * A request whose client went away before the handler answered is
 * forgotten: h2o disposes of the request's memory pool, a shared cell in
 * that pool tells us (pending->req = NULL) and the answer is dropped.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define H2O_USE_LIBUV 1
#include <h2o.h>
#include <h2o/http1.h>

#include "host.h"
#include "lwp.h"
#include "workproof/encoding.h"
#include "workproof/tlsid.h"

#define SERVER_MT "workproof.http_server"
#define STREAM_MT "workproof.http_stream"
#define STREAM_MAX_QUEUED (1024 * 1024)

#define CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* open connections of one client: a peer IPv4 address or IPv6 /64 */
struct client {
	uint8_t key[16];       /* IPv4 as ::ffff:a.b.c.d, IPv6 as its /64 */
	unsigned count;
	struct client *next;   /* hash chain */
};

struct server;

/*
 * One accepted connection, alive from the accept to h2o's close of its
 * socket. tcp is the first member: h2o's close callback hands back &tcp.
 * The timer enforces header_timeout / body_timeout; its data points at
 * base so the host's teardown walk closes it like any host handle.
 */
struct conn {
	uv_tcp_t tcp;
	struct wp_hbase base;
	uv_timer_t timer;
	struct server *srv;
	h2o_socket_t *sock;    /* NULL once h2o disposed of the socket */
	struct client *client;
	uint64_t clock;        /* loop ms at which the current request began */
	int busy;              /* requests whose handler has not answered */
	int open;              /* handles not yet closed (tcp, timer) */
	int killed;
	struct conn *prev, *next;
	/* TLS servers: what the handshake proved */
	struct timeval connected_at;
	int tls_reason;        /* enum wp_tls_reason of the verify callback */
	int peer_ok;           /* peer_key verified (and pinned then) */
	uint8_t peer_key[32];
	SSL *ssl;              /* during the handshake (see server_info) */
	uint8_t last[64], alert[64];
	size_t last_len, alert_len;
};

struct server {
	struct wp_hbase base;
	uv_tcp_t listener;
	h2o_globalconf_t config;
	h2o_context_t ctx;
	h2o_accept_ctx_t accept_ctx;
	lua_State *L;
	int handler_ref;       /* registry: the Lua handler */
	int trampoline_ref;    /* registry: function(handler, req, token) */
	int listening;
	long active;           /* requests whose handler has not answered */
	long served;
	int port;
	int started;           /* context and config initialised */
	/* connection budgets (see the top of this file) */
	unsigned max_per_client;
	int fd_reserve;
	uint64_t header_ms, body_ms;
	struct conn *conns;    /* every open connection */
	long nconns;
	struct client **buckets;
	size_t nbuckets, nclients;
	double accepted, rejected_per_client, rejected_fd_reserve;
	double timeout_header, timeout_body;
	/* static answers served in C without entering Lua (health checks must
	 * stay cheap and answer even while Lua is busy): srv:static() */
	struct static_route {
		char path[64];
		int status;
		char type[48];
		char *body;
		size_t len;
		double hits;
	} statics[4];
	int nstatics;
	/* TLS (NULL: plain HTTP): the context for new connections, the pins */
	SSL_CTX *tls_ctx;
	int tls_any;           /* pins = "any": every valid identity */
	uint8_t (*pins)[32];
	size_t npins, pins_cap;
	double tls_handshakes, tls_refused[WP_TLS_NREASONS];
	struct stream *streams;   /* streamed responses whose request is alive */
	long nstreams;
	struct server *next;   /* every server of the process, for teardown */
};

/*
 * A streamed response. Two owners: the Lua object and the request (until
 * h2o disposes of it); the last to let go frees it. h2o sends one batch at
 * a time (`inflight`, valid until proceed); what Lua sends meanwhile waits
 * in `queued`.
 */
struct stream {
	h2o_req_t *req;        /* NULL once h2o disposed of the request */
	struct stream **cell;  /* in req->pool; its dispose callback nulls req */
	struct stream_gen *gen;
	struct server *srv;
	struct conn *conn;
	int refs;
	int sending, closing, final_sent;
	char *inflight, *queued;
	size_t queued_len, queued_cap;
	struct stream *prev, *next;
};

struct stream_gen {
	h2o_generator_t super;
	struct stream *s;
};

static struct server *servers;

/* descriptor accounting, process-wide: connections of every server plus
 * the other descriptors as last counted in /proc/self/fd */
static long all_conns;
static long fd_other = -1;
static long fd_limit;
static uint64_t fd_sampled_at;

struct pending {
	h2o_req_t *req;        /* NULL once h2o disposed of the request */
	struct pending **cell; /* in req->pool; its dispose callback nulls req */
	struct server *srv;
	struct conn *conn;     /* NULL once the request let go of it */
};

static const char *reason(int status);

static void on_req_disposed(void *p)
{
	struct pending **cell = p;

	if (*cell) {
		(*cell)->req = NULL;
		if ((*cell)->conn)   /* the connection may go before the answer */
			(*cell)->conn->busy--;
		(*cell)->conn = NULL;
	}
}

static void push_iov(lua_State *L, h2o_iovec_t v)
{
	lua_pushlstring(L, v.base ? v.base : "", v.len);
}

static void push_request(lua_State *L, h2o_req_t *req, struct server *srv, struct conn *c)
{
	struct sockaddr_storage ss;
	char host[NI_MAXHOST];
	socklen_t sl;
	size_t qa = req->query_at;

	lua_createtable(L, 0, 8);
	push_iov(L, req->method);
	lua_setfield(L, -2, "method");
	if (qa != SIZE_MAX) {
		lua_pushlstring(L, req->path.base, qa);
		lua_setfield(L, -2, "path");
		lua_pushlstring(L, req->path.base + qa + 1, req->path.len - qa - 1);
		lua_setfield(L, -2, "query");
	} else {
		push_iov(L, req->path);
		lua_setfield(L, -2, "path");
	}
	lua_createtable(L, 0, (int)req->headers.size);
	for (size_t i = 0; i < req->headers.size; i++) {
		h2o_header_t *h = req->headers.entries + i;

		push_iov(L, *h->name);
		lua_pushvalue(L, -1);
		lua_rawget(L, -3);
		if (lua_isnil(L, -1)) {
			lua_pop(L, 1);
			push_iov(L, h->value);
		} else {   /* repeated header: join as one value */
			lua_pushliteral(L, ", ");
			push_iov(L, h->value);
			lua_concat(L, 3);
		}
		lua_rawset(L, -3);
	}
	lua_setfield(L, -2, "headers");
	push_iov(L, req->entity);
	lua_setfield(L, -2, "body");
	push_iov(L, req->authority);
	lua_setfield(L, -2, "authority");
	lua_pushstring(L, req->version >= 0x200 ? "HTTP/2" :
			  req->version == 0x100 ? "HTTP/1.0" : "HTTP/1.1");
	lua_setfield(L, -2, "version");
	sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
	if (sl && h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, host) != SIZE_MAX) {
		lua_pushstring(L, host);
		lua_setfield(L, -2, "peer_addr");
		if (!srv->tls_ctx) {
			lua_pushstring(L, host);
			lua_setfield(L, -2, "peer");
		}
	}
	/* on a TLS server peer is the proven identity, never an address: a
	 * request without one (cannot happen: the handshake refused it) has
	 * no peer, which no lease authorises */
	if (srv->tls_ctx && c && c->peer_ok) {
		lwp_tls_pushkey(L, c->peer_key);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, "peer");
		lua_setfield(L, -2, "peer_key");   /* the same, by an unambiguous name */
	}
}

static int try_static(struct server *srv, h2o_req_t *req)
{
	for (int i = 0; i < srv->nstatics; i++) {
		struct static_route *s = &srv->statics[i];

		if (req->path_normalized.len != strlen(s->path) ||
		    memcmp(req->path_normalized.base, s->path, req->path_normalized.len) ||
		    !(h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
		      h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"))))
			continue;
		s->hits++;
		req->res.status = s->status;
		req->res.reason = reason(s->status);
		h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
			       s->type, strlen(s->type));
		req->res.content_length = s->len;
		h2o_send_inline(req, s->body, s->len);
		return 1;
	}
	return 0;
}

/* the connection record of a request (NULL for a socket we did not accept) */
static struct conn *conn_of(h2o_req_t *req)
{
	h2o_socket_t *sock;
	struct conn *c;

	if (!req->conn->callbacks->get_socket)
		return NULL;
	sock = req->conn->callbacks->get_socket(req->conn);
	c = sock ? sock->on_close.data : NULL;
	return c && c->sock == sock ? c : NULL;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	struct server *srv = *(struct server **)(self + 1);
	lua_State *L = srv->L;
	struct pending *p;
	struct conn *c = conn_of(req);

	if (c)   /* the request is in: the next one's clock starts now */
		c->clock = uv_now(srv->ctx.loop);
	if (srv->nstatics && try_static(srv, req))
		return 0;
	p = malloc(sizeof(*p));

	if (!p) {
		h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
		return 0;
	}
	p->req = req;
	p->srv = srv;
	p->conn = c;
	if (p->conn)
		p->conn->busy++;
	p->cell = h2o_mem_alloc_shared(&req->pool, sizeof(*p->cell), on_req_disposed);
	*p->cell = p;
	srv->active++;

	lua_rawgeti(L, LUA_REGISTRYINDEX, srv->trampoline_ref);
	lua_rawgeti(L, LUA_REGISTRYINDEX, srv->handler_ref);
	push_request(L, req, srv, c);
	lua_pushlightuserdata(L, p);
	wp_host_spawn(L, 3);   /* the trampoline always answers through respond */
	lua_pop(L, 1);
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

/* --- streamed responses ------------------------------------------------ */

static void stream_release(struct stream *s)
{
	if (--s->refs)
		return;
	free(s->inflight);
	free(s->queued);
	free(s);
}

/* the request's side lets go: h2o disposed of it (the response ended, or
 * the client went away) or the host is tearing down */
static void stream_detach(struct stream *s)
{
	if (!s->req)
		return;
	*s->cell = NULL;
	s->gen->s = NULL;
	s->req = NULL;
	if (s->conn) {
		s->conn->busy--;
		s->conn->clock = uv_now(s->srv->ctx.loop);
	}
	s->conn = NULL;
	if (s->prev)
		s->prev->next = s->next;
	else
		s->srv->streams = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->srv->nstreams--;
	stream_release(s);
}

static void on_stream_disposed(void *p)
{
	struct stream **cell = p;

	if (*cell)
		stream_detach(*cell);
}

/* hand h2o the next batch (or the end) when it is not busy with one;
 * nothing of s is touched after h2o_send, which may dispose of it */
static void stream_flush(struct stream *s)
{
	h2o_iovec_t buf;
	h2o_req_t *req = s->req;

	if (!req || s->sending || s->final_sent)
		return;
	if (!s->queued_len && !s->closing)
		return;
	free(s->inflight);
	s->inflight = s->queued;
	buf = h2o_iovec_init(s->queued, s->queued_len);
	s->queued = NULL;
	s->queued_len = s->queued_cap = 0;
	s->sending = 1;
	if (s->closing)
		s->final_sent = 1;
	h2o_send(req, &buf, buf.len ? 1 : 0, s->closing ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
	struct stream *s = ((struct stream_gen *)g)->s;

	(void)req;
	if (!s)
		return;
	s->sending = 0;
	stream_flush(s);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
	struct stream *s = ((struct stream_gen *)g)->s;

	(void)req;
	if (s)
		stream_detach(s);
}

/* the response head goes out now; returns the stream object */
static int stream_start(lua_State *L, struct server *srv, struct conn *conn, h2o_req_t *req)
{
	struct stream *s, **box = lua_newuserdata(L, sizeof(*box));   /* raises only without memory */

	*box = NULL;
	s = calloc(1, sizeof(*s));
	if (!s) {
		if (conn)
			conn->busy--;
		h2o_send_error_503(req, "Service Unavailable", "out of memory", 0);
		return 0;
	}
	s->req = req;
	s->srv = srv;
	s->conn = conn;
	s->refs = 2;   /* the Lua object, the request */
	s->gen = h2o_mem_alloc_pool(&req->pool, sizeof(*s->gen));
	s->gen->super.proceed = stream_proceed;
	s->gen->super.stop = stream_stop;
	s->gen->s = s;
	s->cell = h2o_mem_alloc_shared(&req->pool, sizeof(*s->cell), on_stream_disposed);
	*s->cell = s;
	s->next = srv->streams;
	if (s->next)
		s->next->prev = s;
	srv->streams = s;
	srv->nstreams++;
	*box = s;
	luaL_getmetatable(L, STREAM_MT);
	lua_setmetatable(L, -2);
	h2o_start_response(req, &s->gen->super);
	/* an empty first batch: the head leaves now, not with the first event */
	s->sending = 1;
	h2o_send(req, NULL, 0, H2O_SEND_STATE_IN_PROGRESS);
	return 1;
}

static struct stream *check_stream(lua_State *L)
{
	return *(struct stream **)luaL_checkudata(L, 1, STREAM_MT);
}

static void stream_close(struct stream *s)
{
	if (!s->closing) {
		s->closing = 1;
		stream_flush(s);
	}
}

static int l_stream_send(lua_State *L)
{
	struct stream *s = check_stream(L);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);

	if (!s->req || s->closing) {
		lua_pushboolean(L, 0);
		return 1;
	}
	if (!len) {
		lua_pushboolean(L, 1);
		return 1;
	}
	if (s->queued_len + len > STREAM_MAX_QUEUED) {
		/* a reader this slow is dropped: its connection is ended under
		 * h2o (as a timed-out one), which then disposes of the request */
		uv_os_fd_t fd;

		s->closing = 1;
		free(s->queued);
		s->queued = NULL;
		s->queued_len = s->queued_cap = 0;
		if (s->conn && !uv_is_closing((uv_handle_t *)&s->conn->tcp) &&
		    uv_fileno((uv_handle_t *)&s->conn->tcp, &fd) == 0)
			shutdown(fd, SHUT_RDWR);
		lua_pushboolean(L, 0);
		return 1;
	}
	if (s->queued_len + len > s->queued_cap) {
		size_t cap = s->queued_cap ? s->queued_cap : 4096;
		char *q;

		while (cap < s->queued_len + len)
			cap *= 2;
		q = realloc(s->queued, cap);
		if (!q)
			return luaL_error(L, "out of memory");
		s->queued = q;
		s->queued_cap = cap;
	}
	memcpy(s->queued + s->queued_len, data, len);
	s->queued_len += len;
	stream_flush(s);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_stream_close(lua_State *L)
{
	stream_close(check_stream(L));
	return 0;
}

static int l_stream_gc(lua_State *L)
{
	struct stream **box = luaL_checkudata(L, 1, STREAM_MT);

	if (*box) {
		stream_close(*box);   /* nobody can send to it any more */
		stream_release(*box);
		*box = NULL;
	}
	return 0;
}

static int l_stream_index(lua_State *L)
{
	struct stream *s = check_stream(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "open"))
		lua_pushboolean(L, s->req && !s->closing);
	else if (!strcmp(k, "send"))
		lua_pushcfunction(L, l_stream_send);
	else if (!strcmp(k, "close"))
		lua_pushcfunction(L, l_stream_close);
	else
		lua_pushnil(L);
	return 1;
}

/* respond(token, status, headers, body): called once per request by the
 * trampoline; a request whose client is gone is dropped silently. */
static int l_respond(lua_State *L)
{
	struct pending *p = lua_touserdata(L, 1);
	int status = (int)luaL_checkinteger(L, 2);
	size_t blen = 0;
	const char *body = lua_isfunction(L, 4) ? "" : luaL_optlstring(L, 4, "", &blen);
	h2o_req_t *req;

	int streamed = lua_isfunction(L, 4);
	struct server *srv;
	struct conn *conn;

	luaL_argcheck(L, p != NULL, 1, "bad token");
	req = p->req;
	srv = p->srv;
	conn = p->conn;
	srv->active--;
	srv->served++;
	if (req)
		*p->cell = NULL;   /* h2o may dispose during send: detach first */
	/* a stream keeps its connection busy (see stream_start) */
	if (conn && !(streamed && req)) {
		conn->busy--;
		conn->clock = uv_now(srv->ctx.loop);
	}
	free(p);
	if (!req)
		return 0;
	if (status < 100 || status > 599)
		status = 500;
	req->res.status = status;
	req->res.reason = reason(status);
	if (lua_istable(L, 3)) {
		lua_pushnil(L);
		while (lua_next(L, 3)) {
			size_t nl, vl;
			const char *n, *v;

			if (lua_type(L, -2) == LUA_TSTRING && (v = lua_tolstring(L, -1, &vl))) {
				h2o_iovec_t name, value;

				n = lua_tolstring(L, -2, &nl);
				name = h2o_strdup(&req->pool, n, nl);
				value = h2o_strdup(&req->pool, v, vl);
				h2o_strtolower(name.base, name.len);
				h2o_add_header_by_str(&req->pool, &req->res.headers, name.base, name.len,
						      1, NULL, value.base, value.len);
			}
			lua_pop(L, 1);
		}
	}
	if (streamed)
		return stream_start(L, srv, conn, req);
	req->res.content_length = blen;
	h2o_send_inline(req, body, blen);
	return 0;
}

/* srv:static(path, status, body [, content_type]) sets a C-served answer
 * for GET/HEAD path; srv:static(path) removes it; srv:static_hits(path). */
static int l_static(lua_State *L);
static int l_static_hits(lua_State *L);

/* --- connection budgets --------------------------------------------- */

static void client_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		/* a v4-mapped peer is that IPv4 address; any other IPv6 peer
		 * counts by its /64 (one host usually owns the whole /64) */
		memcpy(key, a, IN6_IS_ADDR_V4MAPPED(a) ? 16 : 8);
	}
}

static size_t key_hash(const uint8_t key[16], size_t nbuckets)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ key[i]) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32)) & (nbuckets - 1);
}

static struct client *client_find(struct server *srv, const uint8_t key[16])
{
	if (!srv->nbuckets)
		return NULL;
	for (struct client *c = srv->buckets[key_hash(key, srv->nbuckets)]; c; c = c->next)
		if (!memcmp(c->key, key, 16))
			return c;
	return NULL;
}

/* double the table when it gets crowded; a failed grow keeps the old one */
static void clients_grow(struct server *srv)
{
	size_t n = srv->nbuckets ? srv->nbuckets * 2 : 64;
	struct client **b = calloc(n, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < srv->nbuckets; i++) {
		struct client *c = srv->buckets[i], *next;

		for (; c; c = next) {
			size_t k = key_hash(c->key, n);

			next = c->next;
			c->next = b[k];
			b[k] = c;
		}
	}
	free(srv->buckets);
	srv->buckets = b;
	srv->nbuckets = n;
}

static struct client *client_get(struct server *srv, const uint8_t key[16])
{
	struct client *c = client_find(srv, key);
	size_t k;

	if (c)
		return c;
	if (srv->nclients >= srv->nbuckets)
		clients_grow(srv);
	if (!srv->nbuckets)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	memcpy(c->key, key, 16);
	k = key_hash(key, srv->nbuckets);
	c->next = srv->buckets[k];
	srv->buckets[k] = c;
	srv->nclients++;
	return c;
}

static void client_put(struct server *srv, struct client *c)
{
	struct client **pp;

	if (--c->count)
		return;
	for (pp = &srv->buckets[key_hash(c->key, srv->nbuckets)]; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			srv->nclients--;
			free(c);
			return;
		}
}

static void clients_free(struct server *srv)
{
	for (size_t i = 0; i < srv->nbuckets; i++)
		while (srv->buckets[i]) {
			struct client *next = srv->buckets[i]->next;

			free(srv->buckets[i]);
			srv->buckets[i] = next;
		}
	free(srv->buckets);
	srv->buckets = NULL;
	srv->nbuckets = srv->nclients = 0;
}

/* descriptors open now, or -1 (errno says why: EMFILE when none is left
 * even to open the directory) */
static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;   /* the directory's own descriptor */
}

static void sample_fds(void)
{
	struct rlimit rl;
	long n;

	fd_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
		   rl.rlim_cur < (rlim_t)LONG_MAX ? (long)rl.rlim_cur : LONG_MAX;
	n = count_fds();
	if (n >= 0)
		fd_other = n - all_conns;
	else if (errno == EMFILE || errno == ENFILE)
		fd_other = fd_limit;   /* not even one left */
	else
		fd_other = -1;         /* no /proc: the reserve cannot be kept */
}

/*
 * Whether one more connection (its descriptor already open, not yet
 * counted in all_conns) would eat into the reserve. The other descriptors
 * are counted at most every 100 ms, and on every accept near the edge,
 * where being exact matters; in between, connections are counted exactly
 * and the reserve absorbs the rest.
 */
static int fd_budget_exhausted(struct server *srv)
{
	uint64_t now = uv_now(srv->ctx.loop);
	long open;

	if (srv->fd_reserve <= 0)
		return 0;
	if (fd_other < 0 || now - fd_sampled_at >= 100 ||
	    fd_other + all_conns + 1 + 2L * srv->fd_reserve >= fd_limit) {
		sample_fds();
		fd_sampled_at = now;
		if (fd_other >= 0)
			fd_other--;   /* the new connection is in the count */
	}
	if (fd_other < 0)
		return 0;
	open = fd_other + all_conns + 1;
	return open > fd_limit - srv->fd_reserve;
}

static void conn_free_part(struct conn *c)
{
	if (--c->open == 0)
		free(c);
}

static void conn_timer_closed(uv_handle_t *h)
{
	conn_free_part(CONTAINER_OF(h->data, struct conn, base));
}

/* the tcp handle is closed: by h2o (its socket's close callback) or by
 * the host's teardown */
static void conn_tcp_closed(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;
	struct server *srv = c->srv;

	c->sock = NULL;
	if (c->client)
		client_put(srv, c->client);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	all_conns--;
	if (!uv_is_closing((uv_handle_t *)&c->timer))
		uv_close((uv_handle_t *)&c->timer, conn_timer_closed);
	conn_free_part(c);
}

/* h2o disposed of the socket (its input buffer is gone); the handle
 * closes right after */
static void conn_sock_disposed(void *data)
{
	struct conn *c = data;

	c->sock = NULL;
}

static int head_complete(const h2o_buffer_t *in)
{
	if (!in || !in->bytes || !in->size)
		return 0;
	/* picohttpparser ends a head at an empty line, CRLF or bare LF */
	return memmem(in->bytes, in->size, "\r\n\r\n", 4) || memmem(in->bytes, in->size, "\n\n", 2);
}

static void on_conn_timer(uv_timer_t *t)
{
	struct conn *c = CONTAINER_OF(t->data, struct conn, base);
	struct server *srv = c->srv;
	uint64_t now = uv_now(t->loop), limit, spent;
	int body;
	uv_os_fd_t fd;

	if (!c->sock || c->killed || uv_is_closing((uv_handle_t *)&c->tcp))
		return;
	if (c->busy > 0) {   /* a handler is working: look again later */
		uv_timer_start(t, on_conn_timer, srv->header_ms, 0);
		return;
	}
	/* h2o keeps a request's bytes in the socket's input buffer until its
	 * answer is sent: a complete head there means the body is coming */
	body = head_complete(c->sock->input);
	limit = body ? srv->body_ms : srv->header_ms;
	spent = now - c->clock;
	if (spent < limit) {
		uv_timer_start(t, on_conn_timer, limit - spent, 0);
		return;
	}
	c->killed = 1;
	if (body)
		srv->timeout_body++;
	else
		srv->timeout_header++;
	/* h2o owns the socket: end it under h2o, which then reads EOF (or
	 * fails a write) and closes the connection the ordinary way */
	if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
		shutdown(fd, SHUT_RDWR);
}

static void reject_closed(uv_handle_t *h)
{
	free(CONTAINER_OF((uv_tcp_t *)h, struct conn, tcp));
}

/* over a budget: a bare 503 (best effort, the socket is fresh) and close */
static void reject(struct conn *c)
{
	static const char res[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				  "Connection: close\r\nRetry-After: 1\r\n\r\n";
	uv_buf_t b = uv_buf_init((char *)res, sizeof(res) - 1);

	uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	uv_close((uv_handle_t *)&c->tcp, reject_closed);
}

/* --- TLS (docs/transport.md) ------------------------------------------ */

/*
 * The connection an OpenSSL callback is about. h2o 2.2.5 makes the SSL
 * itself (lib/common/socket.c: create_ossl() = SSL_new() + setup_bio(),
 * from proceed_handshake()) and gives us no hook between SSL_new() and the
 * first SSL_accept(), so SSL ex_data cannot be attached in time; but its
 * BIO's data is the h2o_socket_t (setup_bio: BIO_set_data(bio, sock)), and
 * our record holds that socket. The BIO data is only compared with the
 * sockets of this server's records, never dereferenced: were a later h2o
 * to put something else there, nothing would match and the handshake
 * would be refused (fail closed), not misattributed. One pointer walk over
 * the open connections per handshake. (A per-connection SSL_CTX would
 * carry the record as its callback argument, at the price of loading the
 * certificate and key for every connection.)
 */
static struct conn *conn_of_ssl(struct server *srv, SSL *ssl)
{
	BIO *bio = ssl ? SSL_get_rbio(ssl) : NULL;
	const void *sock = bio ? BIO_get_data(bio) : NULL;

	if (!sock)
		return NULL;
	for (struct conn *c = srv->conns; c; c = c->next)
		if ((const void *)c->sock == sock)
			return c;
	return NULL;
}

static int server_pinned(const uint8_t key[32], void *arg, char *detail, size_t len)
{
	struct server *srv = arg;
	char hex[65];

	if (srv->tls_any)
		return WP_TLS_OK;
	for (size_t i = 0; i < srv->npins; i++)
		if (!memcmp(srv->pins[i], key, 32))
			return WP_TLS_OK;
	wp_hex_encode(hex, key, 32);
	hex[64] = '\0';
	snprintf(detail, len, "identity %s is not pinned", hex);
	return WP_TLS_UNKNOWN_KEY;
}

/* SSL_CTX_set_cert_verify_callback: every decision is wp_tls_verify_peer's */
static int server_verify(X509_STORE_CTX *xs, void *arg)
{
	struct server *srv = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = conn_of_ssl(srv, ssl);
	uint8_t key[32];
	char why[192] = "";
	int r;

	if (!c) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	r = wp_tls_verify_peer(xs, server_pinned, srv, key, why, sizeof(why));
	c->tls_reason = r;
	if (r != WP_TLS_OK) {
		wp_log(WP_LOG_DEBUG, "http: TLS client refused (%s): %s",
		       wp_tls_reason_name((enum wp_tls_reason)r), why);
		return 0;
	}
	memcpy(c->peer_key, key, 32);
	c->peer_ok = 1;
	return 1;
}

/*
 * The alert a refusal owes the peer (RFC 8446 §6.2). OpenSSL writes it
 * into h2o's BIO, but h2o 2.2.5 drops its pending output when a handshake
 * fails (proceed_handshake -> Complete, no flush), so the peer would see a
 * bare close. So during the handshake a BIO callback keeps a copy of the
 * last record written (an alert is a record of its own, written once,
 * after which OpenSSL reports SSL_CB_WRITE_ALERT), and on_tls_done() sends
 * it on the raw socket before closing. Removed when the handshake succeeds.
 */
static long on_wbio(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
		    int ret, size_t *processed)
{
	struct conn *c = (struct conn *)BIO_get_callback_arg(b);

	(void)len, (void)argi, (void)argl;
	if (c && oper == (BIO_CB_WRITE | BIO_CB_RETURN) && ret > 0 && processed) {
		c->last_len = *processed <= sizeof(c->last) ? *processed : 0;
		memcpy(c->last, argp, c->last_len);
	}
	return ret;
}

static void server_info(const SSL *cssl, int where, int ret)
{
	SSL *ssl = (SSL *)cssl;   /* the callback's type; the BIO calls need it */
	struct server *srv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
	BIO *w = SSL_get_wbio(ssl);
	struct conn *c;

	if (!srv || !w)
		return;
	if (where & SSL_CB_HANDSHAKE_START) {
		c = conn_of_ssl(srv, ssl);
		if (c && !c->ssl) {
			c->ssl = ssl;
			BIO_set_callback_arg(w, (char *)c);
			BIO_set_callback_ex(w, on_wbio);
		}
	} else if ((where & SSL_CB_WRITE_ALERT) && (ret >> 8) == SSL3_AL_FATAL) {
		c = (struct conn *)BIO_get_callback_arg(w);
		if (c && c->ssl == ssl && c->last_len) {
			memcpy(c->alert, c->last, c->last_len);
			c->alert_len = c->last_len;
		}
	}
}

/* a new server context: the server's callbacks on it */
static SSL_CTX *tls_ctx_new(struct server *srv, const char *cert, size_t clen, const char *key,
			    size_t klen, char *err, size_t errlen)
{
	SSL_CTX *ctx = wp_tls_server_ctx(cert, clen, key, klen, server_verify, srv, err, errlen);

	if (ctx) {
		SSL_CTX_set_app_data(ctx, srv);
		SSL_CTX_set_info_callback(ctx, server_info);
	}
	return ctx;
}

/* why a handshake failed when the verify callback did not refuse: the
 * errors OpenSSL queued (h2o clears the queue before each SSL_accept) */
static int handshake_failure(void)
{
	unsigned long e;
	int r = WP_TLS_OTHER;

	while ((e = ERR_get_error()))
		if (ERR_GET_LIB(e) == ERR_LIB_SSL)
			switch (ERR_GET_REASON(e)) {
			case SSL_R_UNSUPPORTED_PROTOCOL:
				r = WP_TLS_PROTOCOL;
				break;
			case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
				r = WP_TLS_NO_CERT;
				break;
			case SSL_R_HTTP_REQUEST:
			case SSL_R_HTTPS_PROXY_REQUEST:
				r = WP_TLS_PLAINTEXT;
				break;
			default:
				break;
			}
	return r;
}

static void tls_refused(struct server *srv, int r)
{
	if (r <= WP_TLS_OK || r >= WP_TLS_NREASONS)
		r = WP_TLS_OTHER;
	srv->tls_refused[r]++;
}

static void on_tls_done(h2o_socket_t *sock, const char *err)
{
	struct conn *c = sock->on_close.data;
	struct server *srv = c->srv;

	if (err || !c->peer_ok) {
		int r = c->tls_reason != WP_TLS_OK ? c->tls_reason : handshake_failure();

		ERR_clear_error();
		if (r != c->tls_reason)   /* the verify callback logged its own */
			wp_log(WP_LOG_DEBUG, "http: TLS handshake failed (%s): %s",
			       wp_tls_reason_name((enum wp_tls_reason)r), err ? err : "no identity");
		tls_refused(srv, r);
		if (c->alert_len) {
			uv_buf_t b = uv_buf_init((char *)c->alert, (unsigned)c->alert_len);

			uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		}
		h2o_socket_close(sock);
		return;
	}
	if (c->ssl) {
		BIO *w = SSL_get_wbio(c->ssl);

		if (w)
			BIO_set_callback_ex(w, NULL);
		c->ssl = NULL;
	}
	srv->tls_handshakes++;
	/* what h2o_accept() does after its own handshake (lib/core/util.c,
	 * on_ssl_handshake_complete), HTTP/1.1 only: no ALPN is offered */
	h2o_http1_accept(&srv->accept_ctx, sock, c->connected_at);
}

/*
 * The first bytes of a TLS connection: a TLS record begins with 0x16 (a
 * handshake record); anything else is a plaintext client, refused and
 * counted as such before OpenSSL sees it. Then the handshake, on the
 * context current now (srv:set_tls changes it for later connections;
 * SSL_new holds its own reference, so the old one may go).
 */
static void on_tls_hello(h2o_socket_t *sock, const char *err)
{
	struct conn *c = sock->on_close.data;
	struct server *srv = c->srv;

	if (err) {   /* gone (or timed out) before saying anything */
		h2o_socket_close(sock);
		return;
	}
	if (!sock->input->size)
		return;
	h2o_socket_read_stop(sock);
	if ((uint8_t)sock->input->bytes[0] != 0x16) {
		wp_log(WP_LOG_DEBUG, "http: TLS client refused (plaintext)");
		tls_refused(srv, WP_TLS_PLAINTEXT);
		h2o_socket_close(sock);
		return;
	}
	ERR_clear_error();
	/* h2o moves the bytes read so far into the handshake's input */
	h2o_socket_ssl_handshake(sock, srv->tls_ctx, NULL, on_tls_done);
}

static void on_accept(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	uint8_t key[16];
	struct client *cl;
	struct conn *c;
	h2o_socket_t *sock;

	if (status != 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(listener->loop, &c->tcp);
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		uv_close((uv_handle_t *)&c->tcp, reject_closed);
		return;
	}
	memset(&ss, 0, sizeof(ss));
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
		ss.ss_family = AF_UNSPEC;
	client_key((struct sockaddr *)&ss, key);
	cl = client_find(srv, key);
	if (srv->max_per_client && cl && cl->count >= srv->max_per_client) {
		srv->rejected_per_client++;
		reject(c);
		return;
	}
	if (fd_budget_exhausted(srv)) {
		srv->rejected_fd_reserve++;
		reject(c);
		return;
	}
	cl = client_get(srv, key);
	if (!cl) {   /* out of memory: refuse rather than go uncounted */
		uv_close((uv_handle_t *)&c->tcp, reject_closed);
		return;
	}
	cl->count++;
	c->client = cl;
	c->srv = srv;
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	all_conns++;
	srv->accepted++;
	c->base.magic = WP_HBASE_MAGIC;
	c->base.close_cb = conn_timer_closed;
	uv_timer_init(listener->loop, &c->timer);
	c->timer.data = &c->base;
	c->open = 2;
	c->clock = uv_now(listener->loop);
	uv_timer_start(&c->timer, on_conn_timer, srv->header_ms, 0);
	uv_tcp_nodelay(&c->tcp, 1);
	sock = h2o_uv_socket_create((uv_stream_t *)&c->tcp, conn_tcp_closed);
	c->sock = sock;
	/* on_close is the application's hook on a server socket (h2o's own
	 * server counts connections with it); data finds the record again */
	sock->on_close.cb = conn_sock_disposed;
	sock->on_close.data = c;
	if (srv->tls_ctx) {
		/* the handshake is ours rather than h2o_accept()'s, to see its
		 * outcome (the counters); the header timeout covers it */
		c->connected_at = *h2o_get_timestamp(&srv->ctx, NULL, NULL);
		h2o_socket_read_start(sock, on_tls_hello);
		return;
	}
	h2o_accept(&srv->accept_ctx, sock);
}

static void listener_closed(uv_handle_t *h)
{
	(void)h;   /* the server struct lives until the host exits (h2o ctx) */
}

static struct server *check_server(lua_State *L)
{
	struct server **box = luaL_checkudata(L, 1, SERVER_MT);

	return *box;
}

static int l_close(lua_State *L)
{
	struct server *srv = check_server(L);

	if (srv->listening) {
		srv->listening = 0;
		uv_close((uv_handle_t *)&srv->listener, listener_closed);
	}
	return 0;
}

static int l_shutdown(lua_State *L)
{
	struct server *srv = check_server(L);

	l_close(L);
	h2o_context_request_shutdown(&srv->ctx);
	for (struct stream *st = srv->streams, *next; st; st = next) {
		next = st->next;   /* a close may end the stream now */
		stream_close(st);
	}
	return 0;
}

/* srv:drop(): end every open connection now (at the end of a drain: idle
 * keep-alive peers would otherwise hold h2o's connections, and its
 * context, to the exit). shutdown(2) under h2o, which then reads EOF and
 * closes each the ordinary way; srv.connections reaches 0 soon after. */
static int l_drop(lua_State *L)
{
	struct server *srv = check_server(L);
	uv_os_fd_t fd;

	for (struct conn *c = srv->conns; c; c = c->next)
		if (c->sock && !uv_is_closing((uv_handle_t *)&c->tcp) &&
		    uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
			shutdown(fd, SHUT_RDWR);
	return 0;
}

static void set_num(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static int l_stats(lua_State *L)
{
	struct server *srv = check_server(L);

	sample_fds();
	fd_sampled_at = uv_now(srv->ctx.loop);
	lua_createtable(L, 0, 10);
	set_num(L, "connections", (double)srv->nconns);
	set_num(L, "clients", (double)srv->nclients);
	set_num(L, "accepted", srv->accepted);
	set_num(L, "rejected_per_client", srv->rejected_per_client);
	set_num(L, "rejected_fd_reserve", srv->rejected_fd_reserve);
	set_num(L, "timeout_header", srv->timeout_header);
	set_num(L, "timeout_body", srv->timeout_body);
	if (fd_other >= 0)
		set_num(L, "fds_open", (double)(fd_other + all_conns));
	if (fd_limit != LONG_MAX)
		set_num(L, "fd_limit", (double)fd_limit);
	if (srv->tls_ctx) {
		set_num(L, "tls_handshakes", srv->tls_handshakes);
		for (int r = WP_TLS_OK + 1; r < WP_TLS_NREASONS; r++) {
			char k[48];

			if (r == WP_TLS_WRONG_KEY)   /* a client's refusal only */
				continue;
			snprintf(k, sizeof(k), "tls_refused_%s", wp_tls_reason_name((enum wp_tls_reason)r));
			set_num(L, k, srv->tls_refused[r]);
		}
	}
	return 1;
}

/* the pin set: a plain array, searched on each handshake */
static int pins_set(struct server *srv, const uint8_t key[32], int on)
{
	for (size_t i = 0; i < srv->npins; i++)
		if (!memcmp(srv->pins[i], key, 32)) {
			if (!on)
				memmove(srv->pins[i], srv->pins[i + 1], (srv->npins - i - 1) * 32);
			srv->npins -= !on;
			return 0;
		}
	if (!on)
		return 0;
	if (srv->npins == srv->pins_cap) {
		size_t cap = srv->pins_cap ? srv->pins_cap * 2 : 16;
		uint8_t (*p)[32] = realloc(srv->pins, cap * 32);

		if (!p)
			return -1;
		srv->pins = p;
		srv->pins_cap = cap;
	}
	memcpy(srv->pins[srv->npins++], key, 32);
	return 0;
}

static struct server *check_tls_server(lua_State *L, const char *what)
{
	struct server *srv = check_server(L);

	if (!srv->tls_ctx)
		luaL_error(L, "%s: this server was started without tls", what);
	return srv;
}

/* a string field of the table at t: raises if absent */
static const char *check_field(lua_State *L, int t, const char *k, size_t *len)
{
	const char *v;

	lua_getfield(L, t, k);
	if (lua_type(L, -1) != LUA_TSTRING) {
		lua_pushfstring(L, "tls.%s must be a PEM string", k);
		luaL_argerror(L, t, lua_tostring(L, -1));
	}
	v = lua_tolstring(L, -1, len);
	lua_pop(L, 1);   /* still anchored by the table */
	return v;
}

/* srv:set_tls{ cert =, key = } -> true | nil, "ETLS: <reason>: ...", "ETLS" */
static int l_set_tls(lua_State *L)
{
	struct server *srv = check_tls_server(L, "set_tls");
	size_t clen, klen;
	const char *cert, *key;
	char err[224];
	SSL_CTX *ctx;

	luaL_checktype(L, 2, LUA_TTABLE);
	cert = check_field(L, 2, "cert", &clen);
	key = check_field(L, 2, "key", &klen);
	ctx = tls_ctx_new(srv, cert, clen, key, klen, err, sizeof(err));
	if (!ctx)
		return lwp_fail(L, "ETLS", "%s", err);
	/* connections in a handshake hold their own reference to the old one */
	SSL_CTX_free(srv->tls_ctx);
	srv->tls_ctx = ctx;
	lua_pushboolean(L, 1);
	return 1;
}

/* srv:pin(hex [, on = true]) -> true: from the next handshake on */
static int l_pin(lua_State *L)
{
	struct server *srv = check_tls_server(L, "pin");
	uint8_t key[32];

	lwp_tls_checkkey(L, 2, key);
	if (pins_set(srv, key, lua_isnoneornil(L, 3) || lua_toboolean(L, 3)))
		return lwp_fail(L, "ENOMEM", "pin: out of memory");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_index(lua_State *L)
{
	struct server *srv = check_server(L);
	const char *k = luaL_checkstring(L, 2);

	if (!strcmp(k, "port"))
		lua_pushinteger(L, srv->port);
	else if (!strcmp(k, "active"))
		lua_pushinteger(L, srv->active);
	else if (!strcmp(k, "served"))
		lua_pushnumber(L, (lua_Number)srv->served);
	else if (!strcmp(k, "listening"))
		lua_pushboolean(L, srv->listening);
	else if (!strcmp(k, "close"))
		lua_pushcfunction(L, l_close);
	else if (!strcmp(k, "shutdown"))
		lua_pushcfunction(L, l_shutdown);
	else if (!strcmp(k, "drop"))
		lua_pushcfunction(L, l_drop);
	else if (!strcmp(k, "connections"))
		lua_pushinteger(L, (lua_Integer)srv->nconns);
	else if (!strcmp(k, "streams"))
		lua_pushinteger(L, (lua_Integer)srv->nstreams);
	else if (!strcmp(k, "static"))
		lua_pushcfunction(L, l_static);
	else if (!strcmp(k, "static_hits"))
		lua_pushcfunction(L, l_static_hits);
	else if (!strcmp(k, "stats"))
		lua_pushcfunction(L, l_stats);
	else if (!strcmp(k, "tls"))
		lua_pushboolean(L, srv->tls_ctx != NULL);
	else if (!strcmp(k, "set_tls"))
		lua_pushcfunction(L, l_set_tls);
	else if (!strcmp(k, "pin"))
		lua_pushcfunction(L, l_pin);
	else
		lua_pushnil(L);
	return 1;
}

static int bind_listener(struct server *srv, uv_loop_t *loop, const char *host,
			 int port, int reuseport)
{
	struct sockaddr_storage ss;
	int family, rc, one = 1, len = sizeof(ss);
	uv_os_fd_t fd;

	/* an address literal, else a name resolved once, at start-up */
	rc = wp_host_resolve(loop, host, port, &ss);
	if (rc)
		return rc;
	family = ss.ss_family;
	rc = uv_tcp_init_ex(loop, &srv->listener, family);
	if (rc)
		return rc;
	srv->listener.data = srv;
	/* several host processes share one port only when asked (serve
	 * --processes, docs/operations.md): without it a busy port fails */
	if (reuseport && uv_fileno((uv_handle_t *)&srv->listener, &fd) == 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	rc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
	if (!rc)
		rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_accept);
	if (!rc)
		rc = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
	if (rc) {
		uv_close((uv_handle_t *)&srv->listener, listener_closed);
		return rc;
	}
	srv->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					    : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static const char trampoline_src[] =
	"local respond, log, traceback = ...\n"
	"local unpack = unpack\n"
	"return function(handler, req, token)\n"
	"  local r = { xpcall(handler, traceback, req) }\n"
	"  if not r[1] then\n"
	"    log('error', 'http handler failed: ' .. tostring(r[2]))\n"
	"    return respond(token, 500, { ['content-type'] = 'application/json' },\n"
	"      '{\"error\":\"internal error\",\"code\":\"EINTERNAL\",\"details\":{}}')\n"
	"  end\n"
	"  local stream = respond(token, unpack(r, 2, 4))\n"
	"  if stream then\n"
	"    local ok, err = xpcall(r[4], traceback, stream)\n"
	"    if not ok then\n"
	"      log('error', 'http stream handler failed: ' .. tostring(err))\n"
	"      stream:close()\n"
	"    end\n"
	"  end\n"
	"end\n";

/*
 * h2o_context_init() opens handles of its own (timers, the multithread
 * queue's async). They must not keep the loop alive once the listener is
 * closed, or a script that served and closed could never end: unref the
 * handles that appeared during the init. Connections, made later, stay
 * referenced while a client is connected.
 */
#define MAX_SEEN 256
struct seen {
	uv_handle_t *h[MAX_SEEN];
	int n, unref;
};

static void walk_seen(uv_handle_t *h, void *arg)
{
	struct seen *s = arg;

	if (!s->unref) {
		if (s->n < MAX_SEEN)
			s->h[s->n++] = h;
		return;
	}
	for (int i = 0; i < s->n; i++)
		if (s->h[i] == h)
			return;
	uv_unref(h);
}

static void context_init_unref(struct server *srv, uv_loop_t *loop)
{
	struct seen *s = calloc(1, sizeof(*s));

	if (s)
		uv_walk(loop, walk_seen, s);
	h2o_context_init(&srv->ctx, loop, &srv->config);
	if (s && s->n < MAX_SEEN) {
		s->unref = 1;
		uv_walk(loop, walk_seen, s);
	}
	free(s);
}

/* host.http_listen(opts) -> server | nil, "ELISTEN: ..." */
static int l_listen(lua_State *L)
{
	struct wp_host *h = wp_host_of(L);
	struct server *srv, **box;
	h2o_hostconf_t *hostconf;
	h2o_pathconf_t *pathconf;
	h2o_handler_t *handler;
	const char *host;
	lua_Integer port, max_body, per_client, fd_reserve;
	lua_Number header_timeout, body_timeout;
	int reuseport, rc, tls_any = 0;
	const char *tls_cert = NULL, *tls_key = NULL;
	size_t tls_clen = 0, tls_klen = 0, npins = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	/* tls (2): checked before anything is allocated; it stays on the
	 * stack, and with it the strings used below */
	lua_getfield(L, 1, "tls");
	if (!lua_isnil(L, 2)) {
		luaL_argcheck(L, lua_istable(L, 2), 1, "tls must be a table");
		tls_cert = check_field(L, 2, "cert", &tls_clen);
		tls_key = check_field(L, 2, "key", &tls_klen);
		lua_getfield(L, 2, "pins");
		if (lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "any")) {
			tls_any = 1;
		} else {
			luaL_argcheck(L, lua_istable(L, -1), 1,
				      "tls.pins must be a list of identity keys or \"any\"");
			npins = lua_objlen(L, -1);
			for (size_t i = 1; i <= npins; i++) {
				uint8_t k[32];
				size_t len;
				const char *hex;

				lua_rawgeti(L, -1, (int)i);
				hex = lua_tolstring(L, -1, &len);
				luaL_argcheck(L, lua_type(L, -1) == LUA_TSTRING &&
					      !wp_tls_hexkey(hex, len, k), 1,
					      "tls.pins: an identity key is 64 hex digits");
				lua_pop(L, 1);
			}
		}
		lua_pop(L, 1);
	}
	lua_getfield(L, 1, "host");
	host = luaL_optstring(L, -1, "127.0.0.1");
	lua_getfield(L, 1, "port");
	port = luaL_optinteger(L, -1, 8402);
	lua_getfield(L, 1, "max_body");
	max_body = luaL_optinteger(L, -1, 2 * 1024 * 1024);
	lua_getfield(L, 1, "reuseport");
	reuseport = lua_toboolean(L, -1);
	lua_getfield(L, 1, "max_connections_per_client");
	per_client = luaL_optinteger(L, -1, 64);
	lua_getfield(L, 1, "fd_reserve");
	fd_reserve = luaL_optinteger(L, -1, 64);
	lua_getfield(L, 1, "header_timeout");
	header_timeout = luaL_optnumber(L, -1, 10);
	lua_getfield(L, 1, "body_timeout");
	body_timeout = luaL_optnumber(L, -1, header_timeout > 30 ? header_timeout : 30);
	lua_pop(L, 4);
	lua_getfield(L, 1, "handler");
	luaL_argcheck(L, lua_isfunction(L, -1), 1, "handler must be a function");
	luaL_argcheck(L, port >= 0 && port <= 65535, 1, "port out of range");
	luaL_argcheck(L, max_body >= 0, 1, "max_body out of range");
	luaL_argcheck(L, per_client >= 0 && per_client <= INT_MAX, 1,
		      "max_connections_per_client out of range");
	luaL_argcheck(L, fd_reserve >= 0 && fd_reserve <= 1048576, 1, "fd_reserve out of range");
	luaL_argcheck(L, header_timeout >= 0.01 && header_timeout <= 86400, 1,
		      "header_timeout out of range");
	luaL_argcheck(L, body_timeout >= header_timeout && body_timeout <= 86400, 1,
		      "body_timeout out of range (at least header_timeout)");

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return lwp_fail(L, "ENOMEM", "http_listen: out of memory");
	srv->next = servers;   /* owned by the list from now on, freed at exit */
	servers = srv;
	srv->base.magic = WP_HBASE_MAGIC;
	srv->base.close_cb = listener_closed;
	srv->L = h->L;
	srv->max_per_client = (unsigned)per_client;
	srv->fd_reserve = (int)fd_reserve;
	srv->header_ms = (uint64_t)(header_timeout * 1000 + 0.5);
	srv->body_ms = (uint64_t)(body_timeout * 1000 + 0.5);
	if (tls_cert) {
		char err[224];

		srv->tls_any = tls_any;
		lua_getfield(L, 2, "pins");
		for (size_t i = 1; !tls_any && i <= npins; i++) {
			uint8_t k[32];
			size_t len;
			const char *hex;

			lua_rawgeti(L, -1, (int)i);
			hex = lua_tolstring(L, -1, &len);
			rc = wp_tls_hexkey(hex, len, k) ? 0 : pins_set(srv, k, 1);
			lua_pop(L, 1);
			if (rc) {
				lua_pop(L, 1);
				return lwp_fail(L, "ENOMEM", "http_listen: out of memory");
			}
		}
		lua_pop(L, 1);
		srv->tls_ctx = tls_ctx_new(srv, tls_cert, tls_clen, tls_key, tls_klen, err, sizeof(err));
		if (!srv->tls_ctx)
			return lwp_fail(L, "ETLS", "%s", err);
	}
	sample_fds();
	if (fd_reserve && fd_limit != LONG_MAX && fd_reserve >= fd_limit / 2)
		wp_log(WP_LOG_WARN, "http_listen: fd_reserve %ld leaves few of the %ld descriptors "
		       "(RLIMIT_NOFILE) for connections", (long)fd_reserve, fd_limit);
	rc = bind_listener(srv, h->loop, host, (int)port, reuseport);
	if (rc) {
		/* the listener's close callback has not run yet: keep srv (tiny,
		 * once per failed listen) rather than free it under libuv */
		return lwp_fail(L, "ELISTEN", "%s:%d: %s", host, (int)port, uv_strerror(rc));
	}
	srv->listening = 1;
	srv->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);   /* pops handler */

	if (luaL_loadstring(L, trampoline_src))
		return lua_error(L);
	lua_pushcfunction(L, l_respond);
	lua_pushcfunction(L, lwp_host_log);
	lua_getglobal(L, "debug");
	lua_getfield(L, -1, "traceback");
	lua_remove(L, -2);
	lua_call(L, 3, 1);
	srv->trampoline_ref = luaL_ref(L, LUA_REGISTRYINDEX);

	h2o_config_init(&srv->config);
	srv->config.max_request_entity_size = (size_t)max_body;
	/* the connection timer enforces both timeouts; h2o's own (a deadline
	 * for the whole request, and HTTP/2's idle limit) stay as a backstop
	 * just behind it */
	srv->config.http1.req_timeout = srv->body_ms + 1000;
	srv->config.http2.idle_timeout = srv->body_ms + 1000;
	srv->config.server_name = h2o_iovec_init(H2O_STRLIT("workproof"));
	hostconf = h2o_config_register_host(&srv->config,
					    h2o_iovec_init(H2O_STRLIT("default")), 65535);
	pathconf = h2o_config_register_path(hostconf, "/", 0);
	handler = h2o_create_handler(pathconf, sizeof(*handler) + sizeof(srv));
	handler->on_req = on_req;
	*(struct server **)(handler + 1) = srv;
	context_init_unref(srv, h->loop);
	srv->started = 1;
	srv->accept_ctx.ctx = &srv->ctx;
	srv->accept_ctx.hosts = srv->config.hosts;

	box = lua_newuserdata(L, sizeof(*box));
	*box = srv;
	luaL_getmetatable(L, SERVER_MT);
	lua_setmetatable(L, -2);
	return 1;
}

static struct static_route *find_static(struct server *srv, const char *path)
{
	for (int i = 0; i < srv->nstatics; i++)
		if (!strcmp(srv->statics[i].path, path))
			return &srv->statics[i];
	return NULL;
}

static int l_static(lua_State *L)
{
	struct server *srv = check_server(L);
	size_t plen, blen = 0;
	const char *path = luaL_checklstring(L, 2, &plen);
	struct static_route *s = find_static(srv, path);
	const char *body, *type;
	char *copy;

	luaL_argcheck(L, plen > 0 && plen < sizeof(s->path) && path[0] == '/', 2, "bad path");
	if (lua_isnoneornil(L, 3)) {   /* remove */
		if (s) {
			free(s->body);
			*s = srv->statics[--srv->nstatics];
		}
		return 0;
	}
	body = luaL_checklstring(L, 4, &blen);
	type = luaL_optstring(L, 5, "application/json");
	luaL_argcheck(L, strlen(type) < sizeof(s->type), 5, "content type too long");
	if (!s) {
		luaL_argcheck(L, srv->nstatics < (int)(sizeof(srv->statics) / sizeof(srv->statics[0])), 2,
			      "too many static routes");
		s = &srv->statics[srv->nstatics++];
		memset(s, 0, sizeof(*s));
		memcpy(s->path, path, plen + 1);
	}
	copy = malloc(blen ? blen : 1);
	if (!copy)
		return luaL_error(L, "out of memory");
	memcpy(copy, body, blen);
	free(s->body);
	s->body = copy;
	s->len = blen;
	s->status = (int)luaL_checkinteger(L, 3);
	strcpy(s->type, type);
	return 0;
}

static int l_static_hits(lua_State *L)
{
	struct server *srv = check_server(L);
	struct static_route *s = find_static(srv, luaL_checkstring(L, 2));

	lua_pushnumber(L, s ? s->hits : 0);
	return 1;
}

/*
 * Host teardown, before the loop's remaining handles are closed: stop every
 * server and let h2o close its own handles (timers, the queue) the proper
 * way. Connections still open are closed by the host like any foreign
 * handle. The structs themselves go in wp_host_http_free(), after the loop
 * ran the close callbacks.
 */
void wp_host_http_shutdown(void)
{
	for (struct server *srv = servers; srv; srv = srv->next) {
		if (srv->listening) {
			srv->listening = 0;
			uv_close((uv_handle_t *)&srv->listener, listener_closed);
		}
		/* streams: their requests stay with h2o to the exit; the Lua
		 * objects (collected at lua_close, after the servers went) keep
		 * the records alone */
		while (srv->streams) {
			srv->streams->conn = NULL;   /* closed below */
			stream_detach(srv->streams);
		}
		/* connections still open: close their handles with our callbacks
		 * so the records go (h2o's side of them stays to the exit) */
		for (struct conn *c = srv->conns; c; c = c->next) {
			c->sock = NULL;
			if (!uv_is_closing((uv_handle_t *)&c->tcp))
				uv_close((uv_handle_t *)&c->tcp, conn_tcp_closed);
		}
		/* srv:shutdown() armed HTTP/2's one-second graceful-shutdown
		 * timer on the context; with the connections gone it has
		 * nothing left to do */
		if (srv->started && !srv->nconns &&
		    h2o_timeout_is_linked(&srv->ctx.http2._graceful_shutdown_timeout))
			h2o_timeout_unlink(&srv->ctx.http2._graceful_shutdown_timeout);
		/* h2o refuses to dispose of a context whose timeouts still
		 * hold entries (a connection not yet torn down): then leave it
		 * to the process exit rather than abort */
		if (srv->started && h2o_linklist_is_empty(&srv->ctx.zero_timeout._entries) &&
		    h2o_linklist_is_empty(&srv->ctx.one_sec_timeout._entries) &&
		    h2o_linklist_is_empty(&srv->ctx.hundred_ms_timeout._entries)) {
			h2o_context_dispose(&srv->ctx);
			h2o_config_dispose(&srv->config);
			srv->started = 0;
		}
	}
}

void wp_host_http_free(void)
{
	while (servers) {
		struct server *next = servers->next;

		for (int i = 0; i < servers->nstatics; i++)
			free(servers->statics[i].body);
		clients_free(servers);
		/* connections h2o still holds keep their own references */
		SSL_CTX_free(servers->tls_ctx);
		servers->tls_ctx = NULL;
		free(servers->pins);
		servers->pins = NULL;
		servers->npins = servers->pins_cap = 0;
		if (!servers->started)   /* a context still in use stays allocated */
			free(servers);
		servers = next;
	}
}

void lwp_host_open_http(lua_State *L)
{
	static const luaL_Reg meta[] = { { "__index", l_index }, { NULL, NULL } };
	static const luaL_Reg fns[] = { { "http_listen", l_listen }, { NULL, NULL } };

	static const luaL_Reg stream_meta[] = { { "__index", l_stream_index }, { "__gc", l_stream_gc },
						{ NULL, NULL } };

	lwp_class(L, SERVER_MT, meta, NULL);
	lwp_class(L, STREAM_MT, stream_meta, NULL);
	lwp_setfuncs(L, fns);
}
