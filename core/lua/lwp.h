/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the Lua C-API bindings of the core (module
 * "workproof.core"). The bindings are thin: argument checks, one call into
 * core/src, results pushed. The error convention (docs/conventions.md §2) lives here so
 * every area spells it the same way:
 *   - wrong argument type or length       -> raise (luaL_argerror)
 *   - operational failure / bad input data -> return nil, "ECODE: text"
 *   - a verification that does not match   -> return false
 */
#ifndef WORKPROOF_LWP_H
#define WORKPROOF_LWP_H

#include <lua.h>
#include <lauxlib.h>
#include <stddef.h>
#include <stdint.h>

/* How many values lwp_fail pushes: nil, "CODE: message", "CODE". */
#define LWP_FAIL_N 3

/* Push nil, "CODE: message" and "CODE"; return LWP_FAIL_N (for
 * `return lwp_fail(...)`). */
int lwp_fail(lua_State *L, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Same, with the code taken from a negative wp_err value. */
int lwp_fail_err(lua_State *L, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Check that argument idx is a string of exactly `len` bytes; raise otherwise. */
const unsigned char *lwp_checkbytes(lua_State *L, int idx, size_t len);

/*
 * Push the n-byte (n <= LWP_DIGEST_MAX) result of fn over the string
 * argument 1 (a hash: wp.sha256, wp.keccak256, wp.vdf.h2g); returns 1.
 */
#define LWP_DIGEST_MAX 256
int lwp_push_digest(lua_State *L, void (*fn)(const void *, size_t, uint8_t *), size_t n);

/* Set the functions of l into the table at the top of the stack. */
void lwp_setfuncs(lua_State *L, const luaL_Reg *l);

/* Create t[name] = {functions of l} in the table at the top of the stack. */
void lwp_subtable(lua_State *L, const char *name, const luaL_Reg *l);

/*
 * Register the metatable `name` once: the functions of meta (may be NULL)
 * as its fields (__gc, __tostring, ...), those of methods (may be NULL) as
 * its __index table, and __name. Leaves the stack as it found it.
 */
void lwp_class(lua_State *L, const char *name, const luaL_Reg *meta, const luaL_Reg *methods);

/*
 * Area openers, each called by luaopen_workproof_core with the module table
 * at the top of the stack; each adds its functions or sub-tables and leaves
 * the stack as it found it.
 */
void lwp_open_hash(lua_State *L);
void lwp_open_encoding(lua_State *L);
void lwp_open_rlp(lua_State *L);
void lwp_open_ed25519(lua_State *L);
void lwp_open_secp256k1(lua_State *L);
void lwp_open_merkle(lua_State *L);
void lwp_open_logscan(lua_State *L);
void lwp_open_vdf(lua_State *L);
void lwp_open_uptime(lua_State *L);
void lwp_open_evm(lua_State *L);    /* what the EVM areas share (l_evm.h) */
void lwp_open_abi(lua_State *L);
void lwp_open_tx(lua_State *L);
void lwp_open_eip712(lua_State *L);
void lwp_open_eip191(lua_State *L);
void lwp_open_json(lua_State *L);

int luaopen_workproof_core(lua_State *L);

#endif
