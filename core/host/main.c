/* SPDX-License-Identifier: MIT */
/*
 * workproof: the host executable. Subcommands are a table; each answers
 * --help from its own declaration (struct wp_cli_decl here and in cmd_vdf.c,
 * lua/workproof/cli/args.lua for the Lua ones), `workproof help CMD [SUB]`
 * asks the command for it.
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
	rc = h->errors && !h->stopped ? 1 : h->exit_code;
	wp_host_close(h);
	return rc;
}

static const struct wp_cli_opt run_pos[] = {
	{ "SCRIPT.lua", NULL, "the script; `arg` is set as the stand-alone interpreter sets it" },
	{ "ARGS...", NULL, "passed to the script as `...` (--help here is the script's)" },
	{ NULL, NULL, NULL },
};

static const struct wp_cli_decl run_decl = {
	"workproof run", "run a Lua script in the host's event loop", "SCRIPT.lua [ARGS...]",
	"Runs SCRIPT.lua as the main coroutine of the host: wp.sleep, wp.spawn, HTTP,\n"
	"timers work as under `serve`. An integer the script returns is the exit code;\n"
	"an error in any coroutine makes it 1; a script that cannot be loaded, 2.",
	run_pos, NULL,
};

static const struct wp_cli_decl version_decl = {
	"workproof version", "print the version", "",
	"Prints the version of workproof, LuaJIT and libuv (also: workproof --version).",
	NULL, NULL,
};

int wp_cmd_run(int argc, char **argv)
{
	struct wp_host h;

	if (argc < 1)
		return wp_cli_usage_error(&run_decl, "missing SCRIPT.lua");
	/* only before the script: after it, --help is the script's argument */
	if (wp_cli_is_help(argv[0])) {
		wp_cli_help(stdout, &run_decl);
		return 0;
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
	if (argc > 0 && wp_cli_wants_help(argc, argv)) {
		wp_cli_help(stdout, &version_decl);
		return 0;
	}
	if (argc > 0)
		return wp_cli_usage_error(&version_decl, "unexpected argument '%s'", argv[0]);
	printf("workproof %s (%s, libuv %s)\n", WP_VERSION, LUAJIT_VERSION,
	       uv_version_string());
	return 0;
}

/* the Lua commands declare themselves in lua/workproof/cli/<name>.lua; this
 * is their line in the listing below */
static const struct wp_command commands[] = {
	{ "serve", NULL, "[CONFIG.lua] [options]", "the notary controller (HTTP API)",
	  wp_cmd_serve },
	{ "check", NULL, "[CONFIG.lua] [options]", "validate a config, its policies and flow, then exit",
	  wp_cmd_check },
	{ "run", &run_decl, NULL, NULL, wp_cmd_run },
	{ "vdf", &wp_vdf_decl, NULL, NULL, wp_cmd_vdf },
	{ "uptime", NULL, "verify|simulate|...",
	  "proof of uptime: heartbeat chains, epochs, claims", wp_cmd_uptime },
	{ "version", &version_decl, NULL, NULL, cmd_version },
	{ NULL, NULL, NULL, NULL, NULL },
};

static void usage(FILE *out)
{
	fputs("usage: workproof <command> [args]\n\ncommands:\n", out);
	for (const struct wp_command *c = commands; c->name; c++) {
		const char *syn = c->decl ? c->decl->synopsis : c->synopsis;
		const char *sum = c->decl ? c->decl->summary : c->summary;
		int n = fprintf(out, "  %s%s%s", c->name, *syn ? " " : "", syn) - 2;

		if (n > 34)
			fprintf(out, "\n  %34s  %s\n", "", sum);
		else
			fprintf(out, "%*s  %s\n", 34 - n, "", sum);
	}
	fputs("  help [COMMAND [SUBCOMMAND]]         this text, or one command's help\n"
	      "\n"
	      "`workproof help COMMAND` and `workproof COMMAND --help` describe one command.\n"
	      "\n"
	      "environment:\n"
	      "  WORKPROOF_LUA_DIR  where the trusted Lua library lives (default: <src>/lua in a\n"
	      "                     build tree, <prefix>/share/lua/5.1 installed)\n"
	      "  WORKPROOF_VM_DIR   the micro-VM image directory (qemu backend)\n"
	      "  WORKPROOF_LOG      debug | info | warn | error (default: info)\n", out);
}

static const struct wp_command *find(const char *name)
{
	for (const struct wp_command *c = commands; c->name; c++)
		if (!strcmp(name, c->name))
			return c;
	return NULL;
}

/* `workproof help CMD [SUB]`: the command answers `[SUB] --help` itself */
static int help(int argc, char **argv)
{
	const struct wp_command *c;
	char *args[3];
	int n = 0;

	if (argc < 1) {
		usage(stdout);
		return 0;
	}
	c = find(argv[0]);
	if (!c) {
		fprintf(stderr, "workproof help: unknown command '%s'\n\n", argv[0]);
		usage(stderr);
		return 2;
	}
	if (argc > 1 && strcmp(c->name, "run") && strcmp(c->name, "version"))
		args[n++] = argv[1];
	args[n++] = (char *)"--help";
	args[n] = NULL;
	return c->run(n, args);
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "help"))
		return help(argc - 2, argv + 2);
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version"))
		cmd = "version";
	if (find(cmd))
		return find(cmd)->run(argc - 2, argv + 2);
	fprintf(stderr, "workproof: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return 2;
}
