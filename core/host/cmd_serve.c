/* SPDX-License-Identifier: MIT */
/* `workproof serve ...` is written in Lua: lua/workproof/cli/serve.lua */
#include "commands.h"

int wp_cmd_serve(int argc, char **argv)
{
	return wp_host_run_module("workproof.cli.serve", argc, argv);
}

/* `workproof check ...`: lua/workproof/cli/check.lua */
int wp_cmd_check(int argc, char **argv)
{
	return wp_host_run_module("workproof.cli.check", argc, argv);
}
