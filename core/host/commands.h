/* SPDX-License-Identifier: MIT */
/* Subcommands of the workproof executable, one file each (cmd_*.c). Each
 * gets argc/argv after its own name and returns the process exit code. */
#ifndef WORKPROOF_COMMANDS_H
#define WORKPROOF_COMMANDS_H

struct wp_command {
	const char *name;
	const char *synopsis;   /* one line for `workproof --help` */
	int (*run)(int argc, char **argv);
};

int wp_cmd_run(int argc, char **argv);
int wp_cmd_vdf(int argc, char **argv);
int wp_cmd_uptime(int argc, char **argv);

#endif
