/* SPDX-License-Identifier: MIT */
/*
 * Help and usage errors of the C commands from their declarations
 * (struct wp_cli_decl), laid out as lua/workproof/cli/args.lua lays out the
 * Lua commands', so every `workproof ... --help` reads the same.
 */
#include <stdarg.h>
#include <string.h>

#include "commands.h"

/* the text column: at least 22, at most 30 characters in (as args.lua) */
static int column(const struct wp_cli_opt *list, int w)
{
	for (const struct wp_cli_opt *o = list; o && o->flag; o++) {
		int n = (int)strlen(o->flag) + (o->arg ? 1 + (int)strlen(o->arg) : 0);

		if (n > w)
			w = n;
	}
	if (w < 22)
		w = 22;
	return w > 30 ? 30 : w;
}

static void row(FILE *out, int w, const char *flag, const char *arg, const char *help)
{
	int n = fprintf(out, "  %s%s%s", flag, arg ? " " : "", arg ? arg : "") - 2;

	if (n > w)
		fprintf(out, "\n  %*s  %s\n", w, "", help);
	else
		fprintf(out, "%*s  %s\n", w - n, "", help);
}

void wp_cli_help(FILE *out, const struct wp_cli_decl *d)
{
	int w;

	fprintf(out, "usage: %s%s%s\n\n", d->name, *d->synopsis ? " " : "", d->synopsis);
	if (d->description)
		fprintf(out, "%s\n\n", d->description);
	if (d->positionals && d->positionals->flag) {
		fputs("arguments:\n", out);
		w = column(d->positionals, 0);
		for (const struct wp_cli_opt *o = d->positionals; o->flag; o++)
			row(out, w, o->flag, NULL, o->help);
		fputc('\n', out);
	}
	fputs("options:\n", out);
	w = column(d->options, 10);
	for (const struct wp_cli_opt *o = d->options; o && o->flag; o++)
		row(out, w, o->flag, o->arg, o->help);
	row(out, w, "-h, --help", NULL, "this help");
}

void wp_cli_group_help(FILE *out, const char *name, const char *description,
		       const struct wp_cli_decl *const *subs)
{
	const char *word = strrchr(name, ' ');

	for (const struct wp_cli_decl *const *s = subs; *s; s++)
		fprintf(out, "%s %s%s%s\n", s == subs ? "usage:" : "      ", (*s)->name,
			*(*s)->synopsis ? " " : "", (*s)->synopsis);
	fputc('\n', out);
	if (description)
		fprintf(out, "%s\n\n", description);
	fputs("commands:\n", out);
	for (const struct wp_cli_decl *const *s = subs; *s; s++) {
		const char *sub = strrchr((*s)->name, ' ');

		row(out, 22, sub ? sub + 1 : (*s)->name, NULL, (*s)->summary);
	}
	fprintf(out, "\n%s <command> --help (or workproof help %s <command>) describes one command\n",
		name, word ? word + 1 : name);
}

int wp_cli_is_help(const char *a)
{
	return !strcmp(a, "-h") || !strcmp(a, "--help");
}

int wp_cli_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			return 0;
		if (wp_cli_is_help(argv[i]))
			return 1;
	}
	return 0;
}

int wp_cli_usage_error(const struct wp_cli_decl *d, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", d->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(%s --help for usage)\n", d->name);
	return 2;
}
