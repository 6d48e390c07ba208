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

/**
 * Run the trusted Lua module's main(arg1, ...) as the main host coroutine
 * (for commands written in Lua, e.g. "workproof.cli.uptime"); its integer
 * return value is the exit code. `arg` is set to argv as well.
 */
int wp_host_run_module(const char *module, int argc, char **argv);
int wp_cmd_vdf(int argc, char **argv);
int wp_cmd_uptime(int argc, char **argv);
int wp_cmd_serve(int argc, char **argv);

#endif
