/* SPDX-License-Identifier: MIT */
/*
 * Internal to the EVM bindings (l_evm.c, l_abi.c, l_tx.c, l_eip712.c):
 * the arena, the conversion context and the scalar conversions they share.
 *
 * Conventions of these bindings (docs/lua-api.md, "wp.abi", "wp.tx",
 * "wp.eip712", "wp.eip191"):
 *   - integers in: Lua numbers that are exact integers (|x| <= 2^53),
 *     decimal strings ("-5" where signed), or "0x" hex strings;
 *     integers out: decimal strings;
 *   - addresses in: "0x" + 40 hex (EIP-55 checked when mixed case) or 20
 *     raw bytes; out: EIP-55 strings;
 *   - bytesN in: N raw bytes or "0x" + 2N hex; out: N raw bytes;
 *   - bytes / string: raw Lua strings (EIP-712 `bytes`: "0x" hex, as in
 *     eth_signTypedData JSON);
 *   - hashes and selectors out: raw bytes (like wp.keccak256).
 * A malformed type string, a non-table where a table is required or an
 * unknown transaction/domain field is a programming error and raises; a
 * value that does not fit its type returns nil, "ECODE: <where>: text", so
 * data that came from a request never turns into a Lua error.
 */
#ifndef WORKPROOF_L_EVM_H
#define WORKPROOF_L_EVM_H

#include <stddef.h>
#include <stdint.h>

#include "lwp.h"

#define MAX_EXACT 9007199254740992.0   /* 2^53 */
#define PATH_MAX_DEPTH 80

/*
 * Value trees and words of one call live in an arena held by a userdata on
 * the Lua stack, so __gc frees them even when a conversion raises.
 */
struct lwp_arena;

/* Push a new arena (a userdata) and return it. */
struct lwp_arena *lwp_arena_new(lua_State *L);

/* n bytes (16-aligned) owned by the arena; raises when out of memory. */
void *lwp_arena_alloc(lua_State *L, struct lwp_arena *a, size_t n);

/* Conversion context: where we are, what went wrong. */
struct lwp_conv {
	lua_State *L;
	struct lwp_arena *a;
	const char *root;                  /* "values", "message", "tx" */
	int depth;
	const char *name[PATH_MAX_DEPTH];  /* field name, or NULL: index */
	size_t index[PATH_MAX_DEPTH];
	int code;
	char msg[240];
};

/* Start a conversion at root ("values", "tx" ...); with_arena pushes one. */
void lwp_conv_init(struct lwp_conv *c, lua_State *L, const char *root, int with_arena);

static inline void push_path(struct lwp_conv *c, const char *name, size_t index)
{
	if (c->depth < PATH_MAX_DEPTH) {
		c->name[c->depth] = name;
		c->index[c->depth] = index;
	}
	c->depth++;
}

static inline void pop_path(struct lwp_conv *c)
{
	c->depth--;
}

/* Record the failure as "<root><path>: <text>" and return code. */
int lwp_cfail(struct lwp_conv *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Push nil, "ECODE: <root><path>: <text>" of the recorded failure; 2. */
int lwp_conv_result(lua_State *L, struct lwp_conv *c);

/* An integer at idx into a 256-bit word (two's complement when signed). */
int lwp_to_int_word(struct lwp_conv *c, int idx, uint8_t w[32], int is_signed);

/* An address at idx ("0x" + 40 hex, EIP-55 checked, or 20 raw bytes). */
int lwp_to_address(struct lwp_conv *c, int idx, uint8_t addr[20]);

/* N raw bytes or "0x" + 2N hex digits. */
int lwp_to_fixed_bytes(struct lwp_conv *c, int idx, uint8_t *out, size_t n);

/* A static atomic ABI value (kind, size from wp_abi_type) into its word. */
int lwp_to_word(struct lwp_conv *c, int idx, unsigned kind, unsigned size, uint8_t w[32]);

/* Length of the Lua array at idx, refusing holes and non-array keys. */
int lwp_array_len(struct lwp_conv *c, int idx, size_t *n);

#endif
