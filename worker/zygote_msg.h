/* SPDX-License-Identifier: MIT */
/**
 * \file zygote_msg.h
 * \brief The zygote's request: an argument vector as NUL-terminated strings
 * (worker/zygote.c, core/host/l_process.c; worker/README.md "Zygote").
 *
 * Self-contained (no Lua): the host (core/host/l_process.c), the bench
 * (spec/bench/bench_worker.c), the spec tool (spec/tools/zygote_client.c)
 * and the fuzz target (spec/fuzz/fuzz_zygote.c) build zygote_msg.c too.
 */
#ifndef WORKPROOF_ZYGOTE_MSG_H
#define WORKPROOF_ZYGOTE_MSG_H

#include <stddef.h>
#include <sys/types.h>

/* A request's payload: at most this many bytes and arguments (argv[0]
 * included). The controller's process_spawn takes at most 64 arguments. */
#define WK_ZYGOTE_MAX_MSG 16384
#define WK_ZYGOTE_MAX_ARGS 64
/* Workers one zygote forks before it exits (a fresh one gets a fresh
 * address-space layout); the controller counts them too, and stops sending. */
#define WK_ZYGOTE_FORKS 1024
/* Set in the zygote's environment by the controller to a run of this many
 * bytes: room for its workers' command lines (worker/zygote.c). */
#define WK_ZYGOTE_TITLE_ENV "WORKPROOF_ZYGOTE_TITLE"
#define WK_ZYGOTE_TITLE_ROOM 512

/**
 * Join argv (NULL-terminated) into msg (cap bytes) as the unpacking below
 * reads it: the byte count, or 0 when it does not fit in cap, in
 * WK_ZYGOTE_MAX_MSG or in WK_ZYGOTE_MAX_ARGS, or argv[0] is missing or empty.
 */
size_t wk_zygote_pack(char *const *argv, char *msg, size_t cap);

/**
 * Split msg (n bytes: "argv0\0arg1\0...\0") into argv (room for max + 1
 * pointers, NULL-terminated; the strings point into msg). The count of
 * arguments (1..max), or -1: empty, longer than WK_ZYGOTE_MAX_MSG, not
 * ending in NUL, an empty argv[0], or more than max strings.
 */
int wk_zygote_unpack(const char *msg, size_t n, char **argv, int max);

/**
 * Send one request on sock: msg (n bytes) with nfd descriptors (0..4,
 * SCM_RIGHTS), MSG_NOSIGNAL, retried across EINTR. sendmsg's result: n, or
 * -1 with errno.
 */
ssize_t wk_zygote_send(int sock, const void *msg, size_t n, const int *fds, int nfd);

#endif
