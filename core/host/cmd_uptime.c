/* SPDX-License-Identifier: MIT */
/* `workproof uptime ...` is written in Lua: lua/workproof/cli/uptime.lua */
#include "commands.h"

int wp_cmd_uptime(int argc, char **argv)
{
	return wp_host_run_module("workproof.cli.uptime", argc, argv);
}
