/* SPDX-License-Identifier: MIT */
/* Subcommands of the workproof executable, one file each (cmd_*.c). Each
 * gets argc/argv after its own name and returns the process exit code. */
#ifndef WORKPROOF_COMMANDS_H
#define WORKPROOF_COMMANDS_H

#include <stdio.h>

/* One declaration per command: it prints the command's help, and its parser
 * accepts exactly the options it lists (the Lua commands use the same shape,
 * lua/workproof/cli/args.lua, and print help in the same layout). */
struct wp_cli_opt {
	const char *flag;       /* "--json", or a positional's name "SEED_HEX" */
	const char *arg;        /* "FILE", or NULL for a flag / positional */
	const char *help;
};

struct wp_cli_decl {
	const char *name;       /* as typed: "workproof vdf eval" */
	const char *summary;    /* one line, for the listing above it */
	const char *synopsis;   /* what follows the name: "SEED_HEX ITERATIONS [options]" */
	const char *description;                /* may be NULL */
	const struct wp_cli_opt *positionals;   /* { NULL } terminated, or NULL */
	const struct wp_cli_opt *options;       /* { NULL } terminated, or NULL */
};

/** Print d's help (usage line, description, arguments, options) to out. */
void wp_cli_help(FILE *out, const struct wp_cli_decl *d);

/**
 * Print the help of a command with subcommands: usage, description and
 * the subcommands' names (the last word of each name) and summaries.
 * subs is NULL terminated.
 */
void wp_cli_group_help(FILE *out, const char *name, const char *description,
		       const struct wp_cli_decl *const *subs);

/** 1 if a is -h or --help. */
int wp_cli_is_help(const char *a);

/** 1 if an argument before any "--" in argv[0..argc) asks for help. */
int wp_cli_wants_help(int argc, char **argv);

/**
 * Print "NAME: message" and where the help is to stderr; returns 2, the
 * usage-error exit code.
 */
int wp_cli_usage_error(const struct wp_cli_decl *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

struct wp_command {
	const char *name;
	const struct wp_cli_decl *decl; /* C commands: their declaration */
	const char *synopsis;   /* Lua commands: what follows the name */
	const char *summary;    /* Lua commands: one line */
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
int wp_cmd_check(int argc, char **argv);
extern const struct wp_cli_decl wp_vdf_decl;

#endif
