/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: `workproof uptime` is being written (replace this whole file). */
#include <stdio.h>

#include "commands.h"

int wp_cmd_uptime(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("workproof uptime: not built yet\n", stderr);
	return 2;
}
