/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the zygote's request format (worker/zygote_msg.c;
 * corpus spec/fuzz/corpus/zygote).
 *
 * Invariants, any violation aborts:
 *  - unpack(x) succeeds  =>  1 <= argc <= WK_ZYGOTE_MAX_ARGS, argv[argc] is
 *    NULL, argv[0] is not empty, and pack(argv) gives x back byte for byte;
 *  - unpack(x) fails  =>  x is empty, too long, does not end in NUL, starts
 *    with NUL, or holds more than WK_ZYGOTE_MAX_ARGS strings;
 *  - pack never writes past the room it is given.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../worker/zygote_msg.h"

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "fuzz_zygote: invariant failed: %s (line %d)\n", #cond, __LINE__); \
		abort(); \
	} \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *msg = malloc(size + 1), *argv[WK_ZYGOTE_MAX_ARGS + 1], *back;
	size_t nuls = 0, n, room;
	int argc;

	if (!msg)
		return 0;
	memcpy(msg, data, size);
	for (size_t i = 0; i < size; i++)
		nuls += msg[i] == '\0';
	argc = wk_zygote_unpack(msg, size, argv, WK_ZYGOTE_MAX_ARGS);
	if (argc < 0) {
		CHECK(size == 0 || size > WK_ZYGOTE_MAX_MSG || msg[size - 1] != '\0' || msg[0] == '\0' ||
		      nuls > WK_ZYGOTE_MAX_ARGS);
		free(msg);
		return 0;
	}
	CHECK(argc >= 1 && argc <= WK_ZYGOTE_MAX_ARGS && (size_t)argc == nuls);
	CHECK(argv[argc] == NULL && argv[0][0] != '\0');
	back = malloc(size + 1);
	CHECK(back != NULL);
	CHECK(wk_zygote_pack(argv, back, size) == size && !memcmp(back, data, size));
	/* one byte short: refused, nothing written past the room */
	room = size - 1;
	back[room] = 'Z';
	n = wk_zygote_pack(argv, back, room);
	CHECK(n == 0 && back[room] == 'Z');
	free(back);
	free(msg);
	return 0;
}
