/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client: libcurl's multi-socket API driven by the host's libuv
 * loop, one request per calling host coroutine (the JSON-RPC client in
 * lua/workproof/rpc.lua is built on it).
 *
 *   local status, headers, body = host.http_request{
 *       method = "POST", url = "http://127.0.0.1:8545", body = "...",
 *       headers = { ["content-type"] = "application/json" },
 *       timeout = 30, connect_timeout = 10, max_response = 16777216 }
 *   -- or nil, "EHTTP: <curl error>" (refused, timeout, too large, ...)
 *
 * One CURLM per host, created on first use: CURLMOPT_SOCKETFUNCTION maps
 * each socket curl wants watched to a uv_poll handle, CURLMOPT_TIMERFUNCTION
 * to one uv_timer; finished transfers are collected with
 * curl_multi_info_read() after every socket action and their coroutines
 * resumed with the result.
 *
 * Lifetimes (docs/conventions.md §1): every handle owner starts with struct
 * wp_hbase and is freed only in its uv_close callback, or later:
 *   - struct rpc_sock (one uv_poll) has two owners, curl (until it says
 *     CURL_POLL_REMOVE) and libuv (until the poll's close callback); it is
 *     freed when both let go, whichever is last;
 *   - struct rpc_multi owns the timer; its close callback (run when the
 *     host closes every handle at exit) removes and frees the transfers
 *     still running, cleans up the CURLM and detaches the sockets that
 *     remain, so nothing is left to free after the loop is gone.
 * Requests are not handles: a struct rpc_req lives from http_request until
 * its transfer completes (or until the teardown above).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <lauxlib.h>

#include "host.h"
#include "lwp.h"
#include "workproof/buf.h"

#define MULTI_MT "workproof.rpc_multi"
#define DEFAULT_MAX_RESPONSE (16u << 20)
#define MAX_HEADER_BYTES (256u << 10)
#define MAX_HEADERS 128

static char multi_key;

struct rpc_req;
struct rpc_sock;

struct rpc_multi {
	struct wp_hbase base;      /* close_cb: multi_closed */
	uv_timer_t timer;
	uv_loop_t *loop;
	CURLM *multi;
	struct rpc_multi **box;    /* the registry userdata's pointer, or NULL */
	int closing;
	struct rpc_req *reqs;      /* transfers in flight */
	struct rpc_sock *socks;    /* sockets not yet freed */
};

struct rpc_sock {
	struct wp_hbase base;      /* close_cb: sock_closed */
	uv_poll_t poll;
	curl_socket_t fd;
	struct rpc_multi *m;       /* NULL once detached by the teardown */
	struct rpc_sock *next, *prev;
	int curl_owned;            /* curl may still pass it as socketp */
	int poll_closing, poll_closed;
};

struct rpc_req {
	struct rpc_req *next, *prev;
	CURL *easy;
	lua_State *co;
	struct curl_slist *headers;
	struct wp_buf resp, hdrs;
	size_t max_response;
	int too_big, headers_too_big;
	char errbuf[CURL_ERROR_SIZE];
};

/* ---- sockets ---------------------------------------------------------------- */

static void sock_free(struct rpc_sock *s)
{
	if (s->m) {
		if (s->prev)
			s->prev->next = s->next;
		else
			s->m->socks = s->next;
		if (s->next)
			s->next->prev = s->prev;
	}
	free(s);
}

static void sock_closed(uv_handle_t *h)
{
	struct rpc_sock *s = h->data;

	s->poll_closed = 1;
	if (!s->curl_owned)
		sock_free(s);
}

static void sock_close(struct rpc_sock *s)
{
	if (!s->poll_closing) {
		s->poll_closing = 1;
		uv_close((uv_handle_t *)&s->poll, sock_closed);
	}
}

static void check_info(struct rpc_multi *m);

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct rpc_sock *s = p->data;
	struct rpc_multi *m = s->m;
	int flags = 0, running;

	if (!m || m->closing)
		return;
	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* s may be released inside (CURL_POLL_REMOVE): not touched after */
	curl_multi_socket_action(m->multi, s->fd, flags, &running);
	check_info(m);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks, or stop. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct rpc_multi *m = userp;
	struct rpc_sock *s = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s) {
			curl_multi_assign(m->multi, fd, NULL);
			s->curl_owned = 0;
			/* the poll is stopped now, before curl closes the fd */
			if (s->poll_closed)
				sock_free(s);
			else
				sock_close(s);
		}
		return 0;
	}
	if (m->closing)
		return 0;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->base.magic = WP_HBASE_MAGIC;
		s->base.close_cb = sock_closed;
		s->fd = fd;
		s->m = m;
		if (uv_poll_init_socket(m->loop, &s->poll, fd)) {
			free(s);
			return -1;
		}
		s->poll.data = s;
		s->curl_owned = 1;
		s->next = m->socks;
		if (m->socks)
			m->socks->prev = s;
		m->socks = s;
		curl_multi_assign(m->multi, fd, s);
	}
	if (s->poll_closing)
		return 0;   /* cannot happen: REMOVE unassigns before closing */
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	if (uv_poll_start(&s->poll, events, on_poll))
		return -1;
	return 0;
}

/* ---- timer ------------------------------------------------------------------ */

static void on_timeout(uv_timer_t *t)
{
	struct rpc_multi *m = t->data;
	int running;

	if (m->closing)
		return;
	curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_info(m);
}

/* CURLMOPT_TIMERFUNCTION: one timer; -1 stops it, 0 means "soon" (a zero
 * libuv timer fires on the next loop iteration, outside this callback). */
static int on_timer(CURLM *multi, long ms, void *userp)
{
	struct rpc_multi *m = userp;

	(void)multi;
	if (m->closing)
		return 0;
	if (ms < 0)
		uv_timer_stop(&m->timer);
	else
		uv_timer_start(&m->timer, on_timeout, (uint64_t)ms, 0);
	return 0;
}

/* ---- requests ----------------------------------------------------------------- */

static void req_free(struct rpc_req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	wp_buf_free(&r->resp);
	wp_buf_free(&r->hdrs);
	free(r);
}

static void req_unlink(struct rpc_multi *m, struct rpc_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		m->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->next = r->prev = NULL;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct rpc_req *r = ud;

	n *= size;
	if (n > r->max_response - r->resp.len) {
		r->too_big = 1;
		return 0;   /* CURLE_WRITE_ERROR ends the transfer */
	}
	if (wp_buf_append(&r->resp, p, n))
		return 0;
	return n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct rpc_req *r = ud;

	n *= size;
	/* a new status line (after 100 Continue or a 1xx): forget the old */
	if (n >= 5 && !memcmp(p, "HTTP/", 5))
		wp_buf_reset(&r->hdrs);
	if (n > MAX_HEADER_BYTES - r->hdrs.len) {
		r->headers_too_big = 1;
		return 0;
	}
	if (wp_buf_append(&r->hdrs, p, n))
		return 0;
	return n;
}

/* headers table: lowercase names, repeated headers joined with ", " */
static void push_headers(lua_State *L, const struct wp_buf *b)
{
	const char *p = (const char *)b->data, *end = p + b->len;
	int count = 0;

	lua_createtable(L, 0, 8);
	if (!b->len)
		return;
	while (p < end && count < MAX_HEADERS) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *colon, *v, *ve;
		char name[128];
		size_t nl;

		if (!eol)
			eol = end;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (colon && colon > p && (size_t)(colon - p) < sizeof(name) &&
		    !(eol - p >= 5 && !memcmp(p, "HTTP/", 5))) {
			nl = (size_t)(colon - p);
			for (size_t i = 0; i < nl; i++)
				name[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
			v = colon + 1;
			ve = eol;
			while (v < ve && (*v == ' ' || *v == '\t'))
				v++;
			while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			lua_pushlstring(L, name, nl);
			lua_pushvalue(L, -1);
			lua_rawget(L, -3);
			if (lua_isnil(L, -1)) {
				lua_pop(L, 1);
				lua_pushlstring(L, v, (size_t)(ve - v));
			} else {
				lua_pushliteral(L, ", ");
				lua_pushlstring(L, v, (size_t)(ve - v));
				lua_concat(L, 3);
			}
			lua_rawset(L, -3);
			count++;
		}
		p = eol + 1;
	}
}

/* Collect finished transfers and resume their coroutines. */
static void check_info(struct rpc_multi *m)
{
	CURLMsg *msg;
	int left;

	while (!m->closing && (msg = curl_multi_info_read(m->multi, &left))) {
		struct rpc_req *r;
		char *priv = NULL;
		lua_State *co;
		CURLcode res;
		int nret;

		if (msg->msg != CURLMSG_DONE)
			continue;
		res = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		r = (struct rpc_req *)priv;
		curl_multi_remove_handle(m->multi, msg->easy_handle);   /* msg is invalid now */
		req_unlink(m, r);
		if (!m->reqs)
			uv_unref((uv_handle_t *)&m->timer);
		co = r->co;
		if (res == CURLE_OK) {
			long status = 0;

			curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
			lua_pushinteger(co, status);
			push_headers(co, &r->hdrs);
			lua_pushlstring(co, r->resp.len ? (const char *)r->resp.data : "", r->resp.len);
			nret = 3;
		} else {
			lua_pushnil(co);
			if (r->too_big || res == CURLE_FILESIZE_EXCEEDED)
				lua_pushfstring(co, "EHTTP: response larger than %d bytes",
						(int)r->max_response);
			else if (r->headers_too_big)
				lua_pushfstring(co, "EHTTP: response headers larger than %d bytes",
						(int)MAX_HEADER_BYTES);
			else if (r->errbuf[0])
				lua_pushfstring(co, "EHTTP: %s (%s)", curl_easy_strerror(res), r->errbuf);
			else
				lua_pushfstring(co, "EHTTP: %s", curl_easy_strerror(res));
			nret = 2;
		}
		req_free(r);
		wp_host_resume(co, nret);
	}
}

/* ---- the multi handle ------------------------------------------------------------ */

/* The timer's close callback: the host is closing every handle (exit). */
static void multi_closed(uv_handle_t *h)
{
	struct rpc_multi *m = h->data;

	m->closing = 1;
	while (m->reqs) {
		struct rpc_req *r = m->reqs;

		m->reqs = r->next;
		if (m->reqs)
			m->reqs->prev = NULL;
		curl_multi_remove_handle(m->multi, r->easy);
		/* the coroutine waiting for it never resumes: the host is exiting */
		req_free(r);
	}
	curl_multi_cleanup(m->multi);
	m->multi = NULL;
	while (m->socks) {
		struct rpc_sock *s = m->socks;

		m->socks = s->next;
		s->m = NULL;
		s->next = s->prev = NULL;
		s->curl_owned = 0;
		if (s->poll_closed)
			free(s);
		else
			sock_close(s);   /* freed in sock_closed */
	}
	if (m->box)
		*m->box = NULL;
	free(m);
}

static int box_gc(lua_State *L)
{
	struct rpc_multi **box = luaL_checkudata(L, 1, MULTI_MT);
	struct rpc_multi *m = *box;

	/* normally the host already closed the timer (and m is gone); if not,
	 * start the teardown now */
	if (m) {
		m->box = NULL;
		*box = NULL;
		if (!uv_is_closing((uv_handle_t *)&m->timer))
			uv_close((uv_handle_t *)&m->timer, multi_closed);
	}
	return 0;
}

static struct rpc_multi *get_multi(lua_State *L)
{
	static int curl_ready;
	struct wp_host *h = wp_host_of(L);
	struct rpc_multi *m, **box;

	lua_pushlightuserdata(L, &multi_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	box = lua_touserdata(L, -1);
	lua_pop(L, 1);
	m = box ? *box : NULL;
	if (m)
		return m;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			return NULL;
		curl_ready = 1;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->multi = curl_multi_init();
	if (!m->multi) {
		free(m);
		return NULL;
	}
	m->base.magic = WP_HBASE_MAGIC;
	m->base.close_cb = multi_closed;
	m->loop = h->loop;
	uv_timer_init(h->loop, &m->timer);
	m->timer.data = m;
	/* the timer must not keep the loop alive on its own */
	uv_unref((uv_handle_t *)&m->timer);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);

	lua_pushlightuserdata(L, &multi_key);
	box = lua_newuserdata(L, sizeof(*box));
	*box = m;
	m->box = box;
	luaL_getmetatable(L, MULTI_MT);
	lua_setmetatable(L, -2);
	lua_rawset(L, LUA_REGISTRYINDEX);
	return m;
}

/* ---- host.http_request ------------------------------------------------------------ */

static double opt_number(lua_State *L, const char *k, double def)
{
	double v;

	lua_getfield(L, 1, k);
	v = luaL_optnumber(L, -1, def);
	lua_pop(L, 1);
	return v;
}

/* Check one header and append "Name: value" to the array at `lines`.
 * Raises on a bad header: nothing is allocated yet when this runs. */
static void add_header(lua_State *L, int lines, const char *name, size_t nl,
		       const char *value, size_t vl)
{
	if (nl == 0)
		luaL_argerror(L, 1, "empty header name");
	for (size_t i = 0; i < nl; i++)
		if (name[i] == ':' || name[i] == '\r' || name[i] == '\n' || name[i] == ' ' ||
		    name[i] == '\0')
			luaL_argerror(L, 1, "header names contain no ':', spaces or line breaks");
	for (size_t i = 0; i < vl; i++)
		if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
			luaL_argerror(L, 1, "header values contain no line breaks");
	lua_pushlstring(L, name, nl);
	lua_pushlstring(L, vl ? ": " : ";", vl ? 2 : 1);   /* "X;" sends an empty X: */
	lua_pushlstring(L, value, vl);
	lua_concat(L, 3);
	lua_rawseti(L, lines, (int)lua_objlen(L, lines) + 1);
}

/*
 * host.http_request{ method=, url=, headers=, body=, timeout=,
 *                    connect_timeout=, max_response= }
 * -> status, headers, body | nil, "EHTTP: ..."   (yields the coroutine)
 */
static int l_http_request(lua_State *L)
{
	struct rpc_multi *m;
	struct rpc_req *r;
	const char *url, *method, *body = NULL;
	size_t body_len = 0;
	double timeout, ctimeout, max_response;
	int expect_set = 0, nlines;
	CURLMcode mc;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	lua_getfield(L, 1, "url");            /* 2 */
	url = luaL_checkstring(L, -1);
	lua_getfield(L, 1, "body");           /* 3 */
	if (!lua_isnil(L, 3))
		body = luaL_checklstring(L, 3, &body_len);
	lua_getfield(L, 1, "method");         /* 4 */
	method = luaL_optstring(L, 4, body ? "POST" : "GET");
	timeout = opt_number(L, "timeout", 30);
	ctimeout = opt_number(L, "connect_timeout", timeout);
	max_response = opt_number(L, "max_response", DEFAULT_MAX_RESPONSE);
	luaL_argcheck(L, timeout > 0 && timeout < 1e6, 1, "timeout out of range");
	luaL_argcheck(L, ctimeout > 0 && ctimeout < 1e6, 1, "connect_timeout out of range");
	luaL_argcheck(L, max_response >= 0 && max_response <= (1u << 30), 1,
		      "max_response out of range (0 .. 1 GiB)");
	for (const char *c = method; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || *c == '-'))
			luaL_argerror(L, 1, "method must be an uppercase token");
	if (!wp_host_is_coroutine(L))
		return luaL_error(L, "http_request: not in a host coroutine (use wp.spawn)");

	/* headers: { name = value } or { "Name: value", ... }, checked into
	 * lines (6) before anything is allocated */
	lua_getfield(L, 1, "headers");        /* 5 */
	lua_newtable(L);                      /* 6 */
	if (!lua_isnil(L, 5)) {
		luaL_checktype(L, 5, LUA_TTABLE);
		lua_pushnil(L);
		while (lua_next(L, 5)) {
			size_t nl, vl;
			const char *n, *v;

			if (lua_type(L, -2) == LUA_TSTRING) {
				n = lua_tolstring(L, -2, &nl);
				v = luaL_checklstring(L, -1, &vl);
			} else {
				const char *line = luaL_checklstring(L, -1, &vl);
				const char *colon = memchr(line, ':', vl);

				if (!colon)
					return luaL_argerror(L, 1, "header lines are \"Name: value\"");
				n = line;
				nl = (size_t)(colon - line);
				v = colon + 1;
				while (v < line + vl && *v == ' ')
					v++;
				vl -= (size_t)(v - line);
			}
			if (nl == 6 && !strncasecmp(n, "expect", 6))
				expect_set = 1;
			add_header(L, 6, n, nl, v, vl);
			lua_pop(L, 1);
		}
	}
	nlines = (int)lua_objlen(L, 6);

	m = get_multi(L);
	if (!m)
		return lwp_fail(L, "ENOMEM", "http_request: cannot initialise libcurl");
	r = calloc(1, sizeof(*r));
	if (!r || !(r->easy = curl_easy_init())) {
		free(r);
		return lwp_fail(L, "ENOMEM", "http_request: out of memory");
	}
	r->max_response = (size_t)max_response;
	for (int i = 1; i <= nlines; i++) {
		struct curl_slist *n;

		lua_rawgeti(L, 6, i);
		n = curl_slist_append(r->headers, lua_tostring(L, -1));   /* copies */
		lua_pop(L, 1);
		if (!n) {
			req_free(r);
			return lwp_fail(L, "ENOMEM", "http_request: out of memory");
		}
		r->headers = n;
	}
	/* curl waits up to a second for "100 Continue" on larger bodies:
	 * JSON-RPC servers never send it */
	if (!expect_set) {
		struct curl_slist *n = curl_slist_append(r->headers, "Expect:");

		if (!n) {
			req_free(r);
			return lwp_fail(L, "ENOMEM", "http_request: out of memory");
		}
		r->headers = n;
	}

	curl_easy_setopt(r->easy, CURLOPT_URL, url);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000.0 + 0.5));
	curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000.0 + 0.5));
	curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "workproof/" WP_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "GET") != 0 || body) {
		if (strcmp(method, "POST") != 0)
			curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
		/* copied: the Lua string may be collected while we wait */
		curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body ? body : "");
	}

	mc = curl_multi_add_handle(m->multi, r->easy);
	if (mc != CURLM_OK) {
		req_free(r);
		return lwp_fail(L, "EHTTP", "%s", curl_multi_strerror(mc));
	}
	r->next = m->reqs;
	if (m->reqs)
		m->reqs->prev = r;
	m->reqs = r;
	/* while transfers run, curl's timer keeps the loop alive (it may be
	 * all that is pending, e.g. while a name resolves) */
	uv_ref((uv_handle_t *)&m->timer);
	r->co = L;   /* anchored by the host while it waits */
	return lua_yield(L, 0);
}

/* host.http_active() -> transfers in flight (diagnostics, specs) */
static int l_http_active(lua_State *L)
{
	struct rpc_multi **box;
	int n = 0;

	lua_pushlightuserdata(L, &multi_key);
	lua_rawget(L, LUA_REGISTRYINDEX);
	box = lua_touserdata(L, -1);
	lua_pop(L, 1);
	if (box && *box)
		for (struct rpc_req *r = (*box)->reqs; r; r = r->next)
			n++;
	lua_pushinteger(L, n);
	return 1;
}

void lwp_host_open_rpc(lua_State *L)
{
	static const luaL_Reg meta[] = { { "__gc", box_gc }, { NULL, NULL } };
	static const luaL_Reg fns[] = { { "http_request", l_http_request },
					{ "http_active", l_http_active }, { NULL, NULL } };

	lwp_class(L, MULTI_MT, meta, NULL);
	lwp_setfuncs(L, fns);
}
