/* SPDX-License-Identifier: MIT */
/*
 * workproof: the host executable. Subcommands are a table so that later
 * ones (serve, uptime, vdf) slot in beside run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <luajit.h>

#include "commands.h"
#include "host.h"

/* arg = { [0] = script, ... } as the stand-alone interpreter sets it */
static void set_arg(lua_State *L, int argc, char **argv)
{
	lua_createtable(L, argc, 2);
	lua_pushstring(L, "workproof");
	lua_rawseti(L, -2, -1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i);
	}
	lua_setglobal(L, "arg");
}

/* Run the function on top of h's stack with nargs arguments below... above
 * it as the main host coroutine, then the loop until it is idle. An integer
 * the function returns is the exit code; any coroutine error makes it 1. */
static int run_main(struct wp_host *h, int nargs)
{
	int rc;

	h->main_co = wp_host_coroutine(h->L, nargs);
	wp_host_resume(h->main_co, nargs);
	lua_pop(h->L, 1);
	uv_run(h->loop, UV_RUN_DEFAULT);
	rc = h->errors ? 1 : h->exit_code;
	wp_host_close(h);
	return rc;
}

int wp_cmd_run(int argc, char **argv)
{
	struct wp_host h;

	if (argc < 1) {
		fputs("workproof run: missing SCRIPT.lua\n", stderr);
		return 2;
	}
	if (wp_host_init(&h)) {
		fputs("workproof: cannot initialise the host\n", stderr);
		return 1;
	}
	set_arg(h.L, argc, argv);
	if (luaL_loadfile(h.L, argv[0])) {
		fprintf(stderr, "workproof: %s\n", lua_tostring(h.L, -1));
		wp_host_close(&h);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		lua_pushstring(h.L, argv[i]);
	return run_main(&h, argc - 1);
}

int wp_host_run_module(const char *module, int argc, char **argv)
{
	struct wp_host h;

	if (wp_host_init(&h)) {
		fputs("workproof: cannot initialise the host\n", stderr);
		return 1;
	}
	set_arg(h.L, argc, argv);
	if (luaL_loadstring(h.L, "local m = ... return require(m).main(select(2, ...))")) {
		wp_host_close(&h);
		return 1;
	}
	lua_pushstring(h.L, module);
	for (int i = 0; i < argc; i++)
		lua_pushstring(h.L, argv[i]);
	return run_main(&h, argc + 1);
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("workproof %s (%s, libuv %s)\n", WP_VERSION, LUAJIT_VERSION,
	       uv_version_string());
	return 0;
}

static const struct wp_command commands[] = {
	{ "serve", "serve [CONFIG.lua] [--listen HOST:PORT]  the notary controller (HTTP API)",
	  wp_cmd_serve },
	{ "run", "run SCRIPT.lua [ARGS...]   run a Lua script in the host's event loop",
	  wp_cmd_run },
	{ "vdf", "vdf eval|verify ...        Wesolowski VDF over RSA-2048 (workproof vdf --help)",
	  wp_cmd_vdf },
	{ "uptime", "uptime verify|simulate|claim|report ...  heartbeat chains (workproof uptime --help)",
	  wp_cmd_uptime },
	{ "version", "version                    print the version", cmd_version },
	{ NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fputs("usage: workproof <command> [args]\n\ncommands:\n", out);
	for (const struct wp_command *c = commands; c->name; c++)
		fprintf(out, "  %s\n", c->synopsis);
	fputs("  help, --help, -h           this text\n"
	      "\n"
	      "environment:\n"
	      "  WORKPROOF_LUA_DIR  where the trusted Lua library lives (default: built-in)\n"
	      "  WORKPROOF_LOG      debug | info | warn | error (default: info)\n", out);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version"))
		cmd = "version";
	for (const struct wp_command *c = commands; c->name; c++)
		if (!strcmp(cmd, c->name))
			return c->run(argc - 2, argv + 2);
	fprintf(stderr, "workproof: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
