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

#include "host.h"

static const char usage[] =
	"usage: workproof <command> [args]\n"
	"\n"
	"commands:\n"
	"  run SCRIPT.lua [ARGS...]  run a Lua script in the host's event loop, with\n"
	"                            the workproof library loadable (require \"workproof\")\n"
	"                            and `arg` set; exits when the script's work is done\n"
	"  version                   print the version\n"
	"  help, --help, -h          this text\n"
	"\n"
	"environment:\n"
	"  WORKPROOF_LUA_DIR  where the trusted Lua library lives (default: built-in)\n"
	"  WORKPROOF_LOG      debug | info | warn | error (default: info)\n";

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

static int cmd_run(int argc, char **argv)
{
	struct wp_host h;
	int rc;

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
	/* an integer returned by the main chunk becomes the exit code */
	h.main_co = wp_host_coroutine(h.L, argc - 1);
	wp_host_resume(h.main_co, argc - 1);
	lua_pop(h.L, 1);
	uv_run(h.loop, UV_RUN_DEFAULT);
	rc = h.errors ? 1 : h.exit_code;
	wp_host_close(&h);
	return rc;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";

	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("workproof %s (%s, libuv %s)\n", WP_VERSION, LUAJIT_VERSION,
		       uv_version_string());
		return 0;
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		fputs(usage, stdout);
		return argc > 1 ? 0 : 2;
	}
	fprintf(stderr, "workproof: unknown command '%s'\n\n%s", cmd, usage);
	return 2;
}
