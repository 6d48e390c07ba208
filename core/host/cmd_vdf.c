/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: `workproof vdf` is being written (replace this whole file). */
#include <stdio.h>

#include "commands.h"

int wp_cmd_vdf(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("workproof vdf: not built yet\n", stderr);
	return 2;
}
