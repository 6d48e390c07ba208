/* SPDX-License-Identifier: MIT */
/*
 * workproof vdf eval SEED_HEX ITERATIONS [--json] [--progress|--no-progress]
 * workproof vdf verify SEED_HEX ITERATIONS Y_HEX PROOF_HEX
 * (each declared once below: the declaration prints the help)
 *
 * Exit codes: 0 done / valid, 1 invalid proof or failed evaluation,
 * 2 unusable input (bad hex, wrong length, iterations out of range, usage).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "workproof/encoding.h"
#include "workproof/vdf.h"

static const struct wp_cli_opt eval_pos[] = {
	{ "SEED_HEX", NULL, "any even number of hex digits, may start with 0x (\"\" is allowed)" },
	{ "ITERATIONS", NULL, "T: a decimal integer in [0, 2^53]" },
	{ NULL, NULL, NULL },
};

static const struct wp_cli_opt eval_opts[] = {
	{ "--json", NULL, "print {modulus, x, y, proof, l, iterations, seconds} as JSON" },
	{ "--progress", NULL, "draw a progress bar on stderr (default: when stderr is a terminal)" },
	{ "--no-progress", NULL, "no progress bar, even on a terminal" },
	{ NULL, NULL, NULL },
};

static const struct wp_cli_decl eval_decl = {
	"workproof vdf eval", "evaluate y = x^(2^T) mod N and its proof",
	"SEED_HEX ITERATIONS [options]",
	"Evaluates the Wesolowski VDF over the RSA-2048 challenge modulus (docs/vdf.md):\n"
	"x = H2G(seed), y = x^(2^ITERATIONS) mod N, proof = Wesolowski's pi. Prints y and\n"
	"the proof as two lines of lowercase hex (512 digits each). Ctrl-C cancels (exit\n"
	"130). Exit 1 if the evaluation fails, 2 on unusable input.",
	eval_pos, eval_opts,
};

static const struct wp_cli_opt verify_pos[] = {
	{ "SEED_HEX", NULL, "any even number of hex digits, may start with 0x" },
	{ "ITERATIONS", NULL, "T: a decimal integer in [0, 2^53]" },
	{ "Y_HEX", NULL, "y: exactly 512 hex digits, may start with 0x" },
	{ "PROOF_HEX", NULL, "the proof: exactly 512 hex digits, may start with 0x" },
	{ NULL, NULL, NULL },
};

static const struct wp_cli_decl verify_decl = {
	"workproof vdf verify", "check a proof: prints valid or invalid",
	"SEED_HEX ITERATIONS Y_HEX PROOF_HEX",
	"Verifies a Wesolowski proof (docs/vdf.md). Exit 0 if it is valid, 1 if it is\n"
	"not, 2 if the input is unusable (bad hex, Y/PROOF not 256 bytes, bad ITERATIONS).",
	verify_pos, NULL,
};

static const struct wp_cli_decl *const vdf_subs[] = { &eval_decl, &verify_decl, NULL };

static const char vdf_description[] =
	"Wesolowski VDF over the RSA-2048 challenge modulus (docs/vdf.md).\n"
	"Exit codes: 0 done / valid, 1 invalid proof or failed evaluation,\n"
	"2 unusable input (bad hex, wrong length, iterations out of range, usage).";

const struct wp_cli_decl wp_vdf_decl = {
	"workproof vdf", "Wesolowski VDF over RSA-2048: eval, verify", "eval|verify",
	vdf_description, NULL, NULL,
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Decode hex (optional 0x) into a malloc'd buffer; NULL + message on error. */
static uint8_t *unhex(const char *what, const char *s, size_t *len)
{
	size_t n = strlen(s), errpos = 0;
	uint8_t *out = malloc(n / 2 + 1);
	int rc;

	if (!out) {
		fprintf(stderr, "workproof vdf: out of memory\n");
		return NULL;
	}
	rc = wp_hex_decode(out, n / 2 + 1, len, s, n, &errpos);
	if (rc == WP_OK)
		return out;
	if (errpos >= n)
		fprintf(stderr, "workproof vdf: %s: odd number of hex digits\n", what);
	else
		fprintf(stderr, "workproof vdf: %s: not a hex digit at position %zu\n",
			what, errpos);
	free(out);
	return NULL;
}

static void put_hex(FILE *f, const uint8_t *b, size_t n)
{
	char buf[2 * WP_VDF_BYTES];

	while (n) {
		size_t k = n < WP_VDF_BYTES ? n : WP_VDF_BYTES;

		wp_hex_encode(buf, b, k);
		fwrite(buf, 1, 2 * k, f);
		b += k;
		n -= k;
	}
}

/* ITERATIONS: decimal digits only, <= 2^53 */
static int parse_T(const char *s, uint64_t *T)
{
	uint64_t v = 0;

	if (!*s)
		goto bad;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			goto bad;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > WP_VDF_T_MAX)
			goto bad;
	}
	*T = v;
	return 0;
bad:
	fprintf(stderr, "workproof vdf: ITERATIONS must be a decimal integer in "
		"[0, 2^53], got '%s'\n", s);
	return -1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct bar {
	int show;
	int width;	/* characters of the line drawn last */
	double t0, last;
	uint64_t T;
};

/*
 * Redraw the bar's line: a carriage return, the new text, then spaces over
 * whatever the previous, longer line left (the prove line is shorter than
 * the eval line; an ETA shrinks). Spaces rather than ESC[K so a log file
 * or a dumb terminal sees a clean line too.
 */
static void draw(struct bar *b, const char *text)
{
	int n = (int)strlen(text);

	fprintf(stderr, "\r%s%*s", text, b->width > n ? b->width - n : 0, "");
	b->width = n;
}

static int progress(void *ud, enum wp_vdf_phase phase, uint64_t done, uint64_t total)
{
	struct bar *b = ud;
	double t = now();
	char line[160];

	if (interrupted)
		return 1;
	if (!b->show || (t - b->last < 0.1 && done < total))
		return 0;
	b->last = t;
	if (phase == WP_VDF_PHASE_EVAL) {
		double frac = total ? (double)done / (double)total : 1;
		double rate = (double)done / (t - b->t0 + 1e-9);
		int w = (int)(frac * 30);

		snprintf(line, sizeof(line), "  eval  [%.*s%*s] %5.1f%%  %.2f M sq/s  ETA %.0fs",
			 w, "##############################", 30 - w, "", frac * 100,
			 rate / 1e6, rate > 0 ? (double)(total - done) / rate : 0.0);
	} else {
		snprintf(line, sizeof(line), "  prove %" PRIu64 "/%" PRIu64 " steps", done, total);
	}
	draw(b, line);
	return 0;
}

static int cmd_eval(int argc, char **argv)
{
	int json = 0, show = isatty(STDERR_FILENO), rc;
	struct wp_vdf_opts o;
	struct wp_vdf_output out;
	struct bar bar;
	uint8_t *seed;
	size_t seed_len;
	uint64_t T;
	double t0, dt;
	const char *pos[2];
	int npos = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--progress"))
			show = 1;
		else if (!strcmp(argv[i], "--no-progress"))
			show = 0;
		else if (argv[i][0] == '-' && argv[i][1] && !(argv[i][1] >= '0' && argv[i][1] <= '9'))
			return wp_cli_usage_error(&eval_decl, "unknown option %s", argv[i]);
		else if (npos < 2)
			pos[npos++] = argv[i];
		else
			return wp_cli_usage_error(&eval_decl, "unexpected argument '%s'", argv[i]);
	}
	if (npos != 2)
		return wp_cli_usage_error(&eval_decl, "missing %s", eval_pos[npos].flag);
	if (parse_T(pos[1], &T))
		return 2;
	seed = unhex("SEED_HEX", pos[0], &seed_len);
	if (!seed)
		return 2;

	memset(&o, 0, sizeof(o));
	bar.show = show;
	bar.width = 0;
	bar.T = T;
	bar.t0 = bar.last = now();
	o.progress = progress;
	o.ud = &bar;
	o.progress_every = 1 << 14;
	signal(SIGINT, on_sigint);
	t0 = now();
	rc = wp_vdf_eval(seed, seed_len, T, &o, &out);
	dt = now() - t0;
	signal(SIGINT, SIG_DFL);
	free(seed);
	if (show)
		fputc('\n', stderr);
	if (rc == WP_VDF_ECANCELED && interrupted) {
		fputs("workproof vdf eval: interrupted\n", stderr);
		return 130;
	}
	if (rc) {
		fprintf(stderr, "workproof vdf eval: %s\n", wp_strerror(rc));
		return 1;
	}
	if (json) {
		fputs("{\"modulus\":\"", stdout);
		put_hex(stdout, wp_vdf_modulus, WP_VDF_BYTES);
		fputs("\",\"x\":\"", stdout);
		put_hex(stdout, out.x, WP_VDF_BYTES);
		fputs("\",\"y\":\"", stdout);
		put_hex(stdout, out.y, WP_VDF_BYTES);
		fputs("\",\"proof\":\"", stdout);
		put_hex(stdout, out.proof, WP_VDF_BYTES);
		fputs("\",\"l\":\"", stdout);
		put_hex(stdout, out.l, WP_VDF_L_BYTES);
		printf("\",\"iterations\":%" PRIu64 ",\"seconds\":%.6f}\n", T, dt);
	} else {
		put_hex(stdout, out.y, WP_VDF_BYTES);
		fputc('\n', stdout);
		put_hex(stdout, out.proof, WP_VDF_BYTES);
		fputc('\n', stdout);
	}
	return fflush(stdout) ? 1 : 0;
}

static int cmd_verify(int argc, char **argv)
{
	uint8_t *seed = NULL, *y = NULL, *proof = NULL;
	size_t seed_len, ylen, plen;
	uint64_t T;
	int rc = 2;

	for (int i = 0; i < argc; i++)
		if (argv[i][0] == '-' && argv[i][1] && !(argv[i][1] >= '0' && argv[i][1] <= '9'))
			return wp_cli_usage_error(&verify_decl, "unknown option %s", argv[i]);
	if (argc < 4)
		return wp_cli_usage_error(&verify_decl, "missing %s", verify_pos[argc].flag);
	if (argc > 4)
		return wp_cli_usage_error(&verify_decl, "unexpected argument '%s'", argv[4]);
	if (parse_T(argv[1], &T))
		return 2;
	seed = unhex("SEED_HEX", argv[0], &seed_len);
	if (!seed)
		goto out;
	y = unhex("Y_HEX", argv[2], &ylen);
	if (!y)
		goto out;
	proof = unhex("PROOF_HEX", argv[3], &plen);
	if (!proof)
		goto out;
	if (ylen != WP_VDF_BYTES || plen != WP_VDF_BYTES) {
		fprintf(stderr, "workproof vdf verify: %s must be 256 bytes (512 hex "
			"digits), got %zu\n", ylen != WP_VDF_BYTES ? "Y_HEX" : "PROOF_HEX",
			ylen != WP_VDF_BYTES ? ylen : plen);
		goto out;
	}
	if (wp_vdf_verify(seed, seed_len, T, y, proof) == 1) {
		puts("valid");
		rc = 0;
	} else {
		puts("invalid");
		rc = 1;
	}
out:
	free(seed);
	free(y);
	free(proof);
	return rc;
}

int wp_cmd_vdf(int argc, char **argv)
{
	if (argc < 1) {
		wp_cli_group_help(stderr, wp_vdf_decl.name, vdf_description, vdf_subs);
		return 2;
	}
	if (!strcmp(argv[0], "help") && argc > 1) {
		/* `vdf help eval` = `vdf eval --help` */
		argv++;
		argc = 1;
		for (const struct wp_cli_decl *const *s = vdf_subs; *s; s++)
			if (!strcmp(strrchr((*s)->name, ' ') + 1, argv[0])) {
				wp_cli_help(stdout, *s);
				return 0;
			}
	} else if (wp_cli_is_help(argv[0]) || !strcmp(argv[0], "help")) {
		wp_cli_group_help(stdout, wp_vdf_decl.name, vdf_description, vdf_subs);
		return 0;
	}
	if (!strcmp(argv[0], "eval")) {
		if (wp_cli_wants_help(argc - 1, argv + 1)) {
			wp_cli_help(stdout, &eval_decl);
			return 0;
		}
		return cmd_eval(argc - 1, argv + 1);
	}
	if (!strcmp(argv[0], "verify")) {
		if (wp_cli_wants_help(argc - 1, argv + 1)) {
			wp_cli_help(stdout, &verify_decl);
			return 0;
		}
		return cmd_verify(argc - 1, argv + 1);
	}
	return wp_cli_usage_error(&wp_vdf_decl, "unknown command '%s'", argv[0]);
}
