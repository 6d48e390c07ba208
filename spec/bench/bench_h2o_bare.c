/* SPDX-License-Identifier: MIT */
/*
 * The anchor for the controller's /health benchmark: a bare h2o server on
 * libuv with a C handler answering {"status":"ok"}, nothing else. Usage:
 * bench_h2o_bare PORT (runs until killed).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define H2O_USE_LIBUV 1
#include <h2o.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
	static const char body[] = "{\"status\":\"ok\"}";

	(void)self;
	req->res.status = 200;
	req->res.reason = "OK";
	h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
		       H2O_STRLIT("application/json"));
	req->res.content_length = sizeof(body) - 1;
	h2o_send_inline(req, body, sizeof(body) - 1);
	return 0;
}

static void on_accept(uv_stream_t *listener, int status)
{
	uv_tcp_t *conn;

	if (status != 0 || !(conn = malloc(sizeof(*conn))))
		return;
	uv_tcp_init(listener->loop, conn);
	if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
		uv_close((uv_handle_t *)conn, (uv_close_cb)free);
		return;
	}
	uv_tcp_nodelay(conn, 1);
	h2o_accept(&accept_ctx, h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free));
}

int main(int argc, char **argv)
{
	uv_loop_t loop;
	uv_tcp_t listener;
	struct sockaddr_in addr;
	h2o_pathconf_t *pathconf;
	h2o_handler_t *handler;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_h2o_bare PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	h2o_config_init(&config);
	pathconf = h2o_config_register_path(
		h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535), "/", 0);
	handler = h2o_create_handler(pathconf, sizeof(*handler));
	handler->on_req = on_req;
	uv_loop_init(&loop);
	h2o_context_init(&ctx, &loop, &config);
	accept_ctx.ctx = &ctx;
	accept_ctx.hosts = config.hosts;
	uv_tcp_init(&loop, &listener);
	uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
	if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) ||
	    uv_listen((uv_stream_t *)&listener, 1024, on_accept)) {
		fprintf(stderr, "bench_h2o_bare: cannot listen on %s\n", argv[1]);
		return 1;
	}
	printf("listening on 127.0.0.1:%s\n", argv[1]);
	fflush(stdout);
	return uv_run(&loop, UV_RUN_DEFAULT);
}
