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
 * Mutual TLS 1.3 with a pinned peer (the uptime agents, docs/transport.md):
 *   tls = { cert = pem, key = pem, pin = hex, server_name = "sni" }
 *   on an https:// url: this side presents cert (an identity certificate,
 *   host.tls_identity) and accepts only a server whose certificate is a
 *   valid identity certificate of exactly the key `pin`; no CA, no host
 *   name check. A refusal: nil, "ETLS: <reason>: ...", "ETLS", reason one
 *   of bad_cert, bad_extension, bad_signature, stale_cert, wrong_key (the
 *   server's, checked here), refused (the server sent an alert: it did not
 *   accept this client), handshake (any other TLS failure), other; or,
 *   before connecting, "ETLS: bad_key|bad_cert|...: own certificate ..."
 *   when this side's own certificate and key do not load or do not match.
 *   Connections are kept alive and reused per (host, port, pin, cert,
 *   server_name), never across them: see tls_blob() and on_prereq().
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
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "host.h"
#include "lwp.h"
#include "workproof/buf.h"
#include "workproof/encoding.h"
#include "workproof/tlsid.h"

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

/*
 * One TLS request's pin and outcome. Two owners, counted: the request, and
 * the SSL_CTX curl makes for each new connection (its ex_data, released by
 * OpenSSL when that context is freed), so a verify callback never sees it
 * freed whatever the order of teardown.
 */
struct tls_client {
	int refs;
	uint8_t pin[32];
	char *server_name;    /* SNI, or NULL (then curl's: the URL's name) */
	X509 *cert;           /* the certificate this request presents */
	int reason;           /* enum wp_tls_reason: the verdict on the server */
	char detail[192];
};

struct rpc_req {
	struct rpc_req *next, *prev;
	CURL *easy;
	struct tls_client *tls;
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

/* ---- TLS ------------------------------------------------------------------------ */

static int ctx_index = -1, ssl_index = -1;

static void tls_unref(struct tls_client *t)
{
	if (t && --t->refs == 0) {
		X509_free(t->cert);
		free(t->server_name);
		free(t);
	}
}

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	tls_unref(ptr);
}

static void ssl_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	free(ptr);
}

/* ex_data slots: on curl's SSL_CTX our tls_client, on its SSL the identity
 * key our verify callback accepted (the reuse check reads it) */
static int tls_indexes(void)
{
	if (ctx_index < 0)
		ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
	if (ssl_index < 0)
		ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_data_free);
	return ctx_index >= 0 && ssl_index >= 0 ? 0 : -1;
}

static int client_pinned(const uint8_t key[32], void *arg, char *detail, size_t len)
{
	struct tls_client *t = arg;
	char got[65], want[65];

	if (!memcmp(key, t->pin, 32))
		return WP_TLS_OK;
	wp_hex_encode(got, key, 32);
	wp_hex_encode(want, t->pin, 32);
	got[64] = want[64] = '\0';
	snprintf(detail, len, "the server is %s, not the pinned %s", got, want);
	return WP_TLS_WRONG_KEY;
}

/* SSL_CTX_set_cert_verify_callback: every decision is wp_tls_verify_peer's */
static int client_verify(X509_STORE_CTX *xs, void *arg)
{
	struct tls_client *t = arg;
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	uint8_t key[32], *rec;

	t->reason = wp_tls_verify_peer(xs, client_pinned, t, key, t->detail, sizeof(t->detail));
	if (t->reason != WP_TLS_OK)
		return 0;
	rec = malloc(32);
	if (!rec || !ssl || !SSL_set_ex_data(ssl, ssl_index, rec)) {
		free(rec);
		t->reason = WP_TLS_OTHER;
		snprintf(t->detail, sizeof(t->detail), "out of memory");
		X509_STORE_CTX_set_error(xs, X509_V_ERR_OUT_OF_MEM);
		return 0;
	}
	memcpy(rec, key, 32);
	return 1;
}

/* the SNI asked for: curl sets its own (the URL's name) after our context
 * callback, so ours goes in as the handshake starts, before the
 * ClientHello is written */
static void client_info(const SSL *ssl, int where, int ret)
{
	struct tls_client *t;

	(void)ret;
	if (!(where & SSL_CB_HANDSHAKE_START))
		return;
	t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
	if (t && t->server_name)
		SSL_set_tlsext_host_name((SSL *)ssl, t->server_name);
}

/* CURLOPT_SSL_CTX_FUNCTION: curl made a context for a new connection (and
 * has set its own verify mode on it: ours replaces it). TLS 1.3 only, no
 * session resumption (a resumed session skips the certificate, and with it
 * the pin), the peer check ours alone. */
static CURLcode on_ssl_ctx(CURL *easy, void *sslctx, void *parm)
{
	SSL_CTX *ctx = sslctx;
	struct tls_client *t = parm;

	(void)easy;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ex_data(ctx, ctx_index, t))
		return CURLE_SSL_CONNECT_ERROR;
	t->refs++;
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_sess_set_new_cb(ctx, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, client_verify, t);
	if (t->server_name)
		SSL_CTX_set_info_callback(ctx, client_info);
	return CURLE_OK;
}

/*
 * CURLOPT_PREREQFUNCTION: runs on every connection a request is about to
 * use, new or reused, before the request is sent. curl reuses a connection
 * when host, port and its SSL configuration match, and the context
 * callback's data is not part of that (url.c ConnectionExists,
 * Curl_ssl_config_matches in 7.88): the pin and server_name are, through
 * tls_blob(). This is the check that does not depend on it: the
 * connection must carry the key our verify callback accepted, equal to
 * this request's pin, and present this request's certificate.
 */
static int on_prereq(void *clientp, char *ip, char *local_ip, int port, int local_port)
{
	struct rpc_req *r = clientp;
	struct tls_client *t = r->tls;
	struct curl_tlssessioninfo *info = NULL;
	SSL *ssl = NULL;
	const uint8_t *rec;
	X509 *mine;

	(void)ip, (void)local_ip, (void)port, (void)local_port;
	if (curl_easy_getinfo(r->easy, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
	    info->backend == CURLSSLBACKEND_OPENSSL)
		ssl = info->internals;
	if (!ssl || SSL_version(ssl) != TLS1_3_VERSION) {
		t->reason = WP_TLS_PROTOCOL;
		snprintf(t->detail, sizeof(t->detail), "the connection is not TLS 1.3");
		return CURL_PREREQFUNC_ABORT;
	}
	rec = SSL_get_ex_data(ssl, ssl_index);
	if (!rec || memcmp(rec, t->pin, 32)) {
		t->reason = WP_TLS_WRONG_KEY;
		snprintf(t->detail, sizeof(t->detail),
			 "a connection not verified for this pin was offered for reuse");
		return CURL_PREREQFUNC_ABORT;
	}
	mine = SSL_get_certificate(ssl);
	if (!mine || X509_cmp(mine, t->cert)) {
		t->reason = WP_TLS_OTHER;
		snprintf(t->detail, sizeof(t->detail),
			 "a connection presenting another certificate was offered for reuse");
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

/*
 * The client certificate as curl's CURLOPT_SSLCERT_BLOB, preceded by the
 * pin and the server name as PEM explanatory text (RFC 7468 §2: text
 * before the encapsulation boundary is ignored; OpenSSL's PEM reader skips
 * to "-----BEGIN"). The blob is part of the SSL configuration curl
 * compares before reusing a connection, so requests for different pins,
 * certificates or server names never share one. Malloc'd, *len set.
 */
static char *tls_blob(const struct tls_client *t, const char *pem, size_t plen, size_t *len)
{
	char head[400], hex[65];
	int n;
	char *b;

	wp_hex_encode(hex, t->pin, 32);
	hex[64] = '\0';
	n = snprintf(head, sizeof(head), "workproof-pin: %s\nworkproof-server-name: %s\n", hex,
		     t->server_name ? t->server_name : "-");
	if (n < 0 || (size_t)n >= sizeof(head) || !(b = malloc((size_t)n + plen)))
		return NULL;
	memcpy(b, head, (size_t)n);
	memcpy(b + n, pem, plen);
	*len = (size_t)n + plen;
	return b;
}

/* set the TLS options of r (its tls already filled); 0 or a curl error */
static CURLcode tls_setopts(struct rpc_req *r, const char *cert, size_t clen, const char *key,
			    size_t klen)
{
	struct curl_blob cb, kb = { (void *)key, klen, CURL_BLOB_COPY };
	size_t blen = 0;
	char *blob = tls_blob(r->tls, cert, clen, &blen);
	CURLcode rc;

	if (!blob)
		return CURLE_OUT_OF_MEMORY;
	cb.data = blob;
	cb.len = blen;
	cb.flags = CURL_BLOB_COPY;
	rc = curl_easy_setopt(r->easy, CURLOPT_SSLCERT_BLOB, &cb);
	free(blob);
	if (!rc)
		rc = curl_easy_setopt(r->easy, CURLOPT_SSLKEY_BLOB, &kb);
	if (!rc)
		rc = curl_easy_setopt(r->easy, CURLOPT_SSLVERSION,
				      (long)(CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3));
	if (rc)
		return rc;
	/* only our callback decides: no CA, no host name */
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 0L);
	curl_easy_setopt(r->easy, CURLOPT_SSL_SESSIONID_CACHE, 0L);
	curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r->easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);
	curl_easy_setopt(r->easy, CURLOPT_SSL_CTX_DATA, r->tls);
	curl_easy_setopt(r->easy, CURLOPT_PREREQFUNCTION, on_prereq);
	curl_easy_setopt(r->easy, CURLOPT_PREREQDATA, r);
	return CURLE_OK;
}

/* the reason a TLS request failed, or NULL: not a TLS failure (EHTTP) */
static const char *tls_failure(const struct rpc_req *r, CURLcode res)
{
	if (r->tls->reason != WP_TLS_OK)
		return wp_tls_reason_name((enum wp_tls_reason)r->tls->reason);
	/* an alert from the server: it refused this client (unknown_ca: not
	 * pinned; certificate_expired; bad_certificate; certificate_required) */
	if (strstr(r->errbuf, " alert "))
		return "refused";
	switch (res) {
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
		return "handshake";
	default:
		return NULL;
	}
}

static void req_free(struct rpc_req *r)
{
	tls_unref(r->tls);
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
		} else if (r->tls && tls_failure(r, res)) {
			const char *why = tls_failure(r, res);

			lua_pushnil(co);
			if (r->tls->reason != WP_TLS_OK)
				lua_pushfstring(co, "ETLS: %s: %s", why, r->tls->detail);
			else if (!strcmp(why, "refused"))
				lua_pushfstring(co, "ETLS: refused: the server did not accept this client (%s)",
						r->errbuf);
			else
				lua_pushfstring(co, "ETLS: %s: %s (%s)", why, curl_easy_strerror(res),
						r->errbuf);
			lua_pushliteral(co, "ETLS");
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
 *                    connect_timeout=, max_response=, tls= }
 * -> status, headers, body | nil, "EHTTP: ..." | nil, "ETLS: ...", "ETLS"
 * (yields the coroutine)
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
	const char *tls_cert = NULL, *tls_key = NULL, *sni = NULL;
	size_t tls_clen = 0, tls_klen = 0;
	uint8_t pin[32];
	X509 *own = NULL;

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

	/* tls (7): checked here, loaded below; its strings stay anchored */
	lua_getfield(L, 1, "tls");
	if (!lua_isnil(L, 7)) {
		size_t len;
		const char *hex;

		luaL_argcheck(L, lua_istable(L, 7), 1, "tls must be a table");
		luaL_argcheck(L, !strncasecmp(url, "https://", 8), 1, "tls needs an https:// url");
		lua_getfield(L, 7, "cert");
		lua_getfield(L, 7, "key");
		lua_getfield(L, 7, "pin");
		lua_getfield(L, 7, "server_name");
		luaL_argcheck(L, lua_type(L, 8) == LUA_TSTRING && lua_type(L, 9) == LUA_TSTRING, 1,
			      "tls.cert and tls.key are PEM strings");
		tls_cert = lua_tolstring(L, 8, &tls_clen);
		tls_key = lua_tolstring(L, 9, &tls_klen);
		hex = lua_type(L, 10) == LUA_TSTRING ? lua_tolstring(L, 10, &len) : NULL;
		luaL_argcheck(L, hex && !wp_tls_hexkey(hex, len, pin), 1,
			      "tls.pin is the server's identity key, 64 hex digits");
		if (!lua_isnil(L, 11)) {
			sni = lua_type(L, 11) == LUA_TSTRING ? lua_tolstring(L, 11, &len) : NULL;
			luaL_argcheck(L, sni && len > 0 && len < 254 && strlen(sni) == len &&
				      !strpbrk(sni, " \r\n\t/"), 1, "tls.server_name is a host name");
		}
		if (tls_indexes())
			return lwp_fail(L, "ENOMEM", "http_request: cannot set up TLS");
		{
			EVP_PKEY *k = NULL;
			char err[224];

			if (wp_tls_load_pair(tls_cert, tls_clen, tls_key, tls_klen, &own, &k,
					     err, sizeof(err)))
				return lwp_fail(L, "ETLS", "%s", err);
			EVP_PKEY_free(k);   /* checked; curl loads its own from the PEM */
		}
	}

	m = get_multi(L);
	if (!m) {
		X509_free(own);
		return lwp_fail(L, "ENOMEM", "http_request: cannot initialise libcurl");
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->easy = curl_easy_init())) {
		free(r);
		X509_free(own);
		return lwp_fail(L, "ENOMEM", "http_request: out of memory");
	}
	if (own) {
		r->tls = calloc(1, sizeof(*r->tls));
		if (!r->tls || (sni && !(r->tls->server_name = strdup(sni)))) {
			free(r->tls);
			r->tls = NULL;
			X509_free(own);
			req_free(r);
			return lwp_fail(L, "ENOMEM", "http_request: out of memory");
		}
		r->tls->refs = 1;
		r->tls->cert = own;
		memcpy(r->tls->pin, pin, 32);
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
	if (r->tls && tls_setopts(r, tls_cert, tls_clen, tls_key, tls_klen) != CURLE_OK) {
		req_free(r);
		return lwp_fail(L, "ENOMEM", "http_request: cannot set the TLS options");
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
