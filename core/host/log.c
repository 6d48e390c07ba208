/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host.h"

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void wp_log(enum wp_log_level lvl, const char *fmt, ...)
{
	static int min_level = -1;
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if (min_level < 0) {
		const char *e = getenv("WORKPROOF_LOG");

		min_level = WP_LOG_INFO;
		for (int i = 0; e && i < 4; i++)
			if (!strcmp(e, level_names[i]))
				min_level = i;
	}
	if ((int)lvl < min_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ [%s] ", when, ts.tv_nsec / 1000000,
		level_names[lvl]);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
