/* SPDX-License-Identifier: MIT */
/*
 * wp.merkle: RFC 6962 tree hash, inclusion and consistency proofs and their
 * verifiers, and an incremental builder (a plain userdata, no loop).
 *
 * Leaves are Lua arrays of raw data strings; proofs are Lua arrays of
 * 32-byte strings; indices and sizes are 0-based counts (RFC numbering).
 * Verifiers take untrusted proofs: a proof of the wrong shape (wrong
 * element length, too many or too few elements, impossible index or size)
 * is an answer, false; only wrong Lua TYPES raise.
 */
#include <math.h>
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/merkle.h"

#define HLEN WP_MERKLE_HASH_LEN
#define BUILDER_MT "workproof.merkle.builder"

/* Sizes and indices arrive as Lua numbers (doubles): exact up to 2^53. */
#define MAX_EXACT 9007199254740992.0

/* The string at t[i] of the table at idx; raises naming the element. */
static const char *elem(lua_State *L, int idx, size_t i, const char *what, size_t *len)
{
	const char *s;

	lua_rawgeti(L, idx, (int)i);
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, len) : NULL;
	if (!s) {
		lua_pushfstring(L, "%s[%d] is %s, expected a string", what, (int)i,
				luaL_typename(L, -1));
		luaL_argerror(L, idx, lua_tostring(L, -1));
	}
	return s;
}

/* #t of a table argument that Lua can index with int (raises otherwise). */
static size_t checkarray(lua_State *L, int idx)
{
	size_t n;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = lua_objlen(L, idx);
	if (n > (size_t)0x7fffffff)
		luaL_argerror(L, idx, "array too long");
	return n;
}

/*
 * A count argument (index or size): must be a number (raises otherwise).
 * Returns 0 and sets *out for a non-negative integer below 2^53, 1 for any
 * other number (negative, fractional, huge, NaN), which the caller turns
 * into ERANGE or false.
 */
static int getcount(lua_State *L, int idx, uint64_t *out)
{
	lua_Number x = luaL_checknumber(L, idx);

	if (!(x >= 0 && x < MAX_EXACT) || floor(x) != x)
		return 1;
	*out = (uint64_t)x;
	return 0;
}

/* Hash every leaf of the array at idx into a GC-owned buffer (a userdata
 * pushed on the stack), so a raise halfway leaks nothing. */
static uint8_t *leaf_hashes(lua_State *L, int idx, size_t n)
{
	uint8_t *hs = lua_newuserdata(L, n ? n * HLEN : 1);

	for (size_t i = 1; i <= n; i++) {
		size_t len;
		const char *s = elem(L, idx, i, "leaves", &len);

		wp_merkle_leaf_hash(s, len, hs + (i - 1) * HLEN);
		lua_pop(L, 1);
	}
	return hs;
}

static void push_proof(lua_State *L, const uint8_t *proof, size_t count)
{
	lua_createtable(L, (int)count, 0);
	for (size_t i = 0; i < count; i++) {
		lua_pushlstring(L, (const char *)proof + i * HLEN, HLEN);
		lua_rawseti(L, -2, (int)i + 1);
	}
}

/*
 * Copy an untrusted proof array into buf (WP_MERKLE_MAX_PROOF hashes).
 * Non-string elements raise (a programming error); a proof too long for
 * any tree or with an element of the wrong length returns 0 (malformed).
 */
static int get_proof(lua_State *L, int idx, uint8_t *buf, size_t *count)
{
	size_t n = checkarray(L, idx);

	if (n > WP_MERKLE_MAX_PROOF)
		return 0;
	for (size_t i = 1; i <= n; i++) {
		size_t len;
		const char *s = elem(L, idx, i, "proof", &len);

		if (len != HLEN) {
			lua_pop(L, 1);
			return 0;
		}
		memcpy(buf + (i - 1) * HLEN, s, HLEN);
		lua_pop(L, 1);
	}
	*count = n;
	return 1;
}

/* A root argument: must be a string; wrong length -> NULL (malformed). */
static const uint8_t *get_root(lua_State *L, int idx)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	return len == HLEN ? (const uint8_t *)s : NULL;
}

/* wp.merkle.leaf_hash(data) -> 32 bytes */
static int l_leaf_hash(lua_State *L) { return lwp_push_digest(L, wp_merkle_leaf_hash, HLEN); }

/* wp.merkle.node_hash(left32, right32) -> 32 bytes */
static int l_node_hash(lua_State *L)
{
	const uint8_t *l = lwp_checkbytes(L, 1, HLEN);
	const uint8_t *r = lwp_checkbytes(L, 2, HLEN);
	uint8_t out[HLEN];

	wp_merkle_node_hash(l, r, out);
	lua_pushlstring(L, (const char *)out, HLEN);
	return 1;
}

/* The root of the array at 1, of leaves or (hashes) of 32-byte leaf hashes;
 * no buffer: they stream into a builder. */
static int push_root(lua_State *L, int hashes)
{
	size_t n = checkarray(L, 1);
	struct wp_merkle_builder b;
	uint8_t out[HLEN];

	wp_merkle_builder_init(&b);
	for (size_t i = 1; i <= n; i++) {
		size_t len;
		const char *s = elem(L, 1, i, hashes ? "hashes" : "leaves", &len);

		if (!hashes) {
			wp_merkle_builder_append(&b, s, len);
		} else if (len == HLEN) {
			wp_merkle_builder_append_hash(&b, (const uint8_t *)s);
		} else {
			lua_pushfstring(L, "hashes[%d] is %d bytes, expected 32", (int)i, (int)len);
			luaL_argerror(L, 1, lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
	wp_merkle_builder_root(&b, out);
	lua_pushlstring(L, (const char *)out, HLEN);
	return 1;
}

/* wp.merkle.root(leaves) -> 32 bytes */
static int l_root(lua_State *L) { return push_root(L, 0); }

/* wp.merkle.root_from_hashes(hashes) -> 32 bytes */
static int l_root_from_hashes(lua_State *L) { return push_root(L, 1); }

/* The inclusion proof of leaf k, or (consistency) the consistency proof
 * from old size k, over the leaves at 1 (k: argument 2). */
static int push_proof_of(lua_State *L, int consistency)
{
	size_t n = checkarray(L, 1), count = 0;
	uint8_t proof[WP_MERKLE_MAX_PROOF * HLEN];
	uint64_t k;
	const uint8_t *hs;
	int rc;

	if (getcount(L, 2, &k) || k > n || (!consistency && k == n))
		return consistency ? lwp_fail(L, "ERANGE", "old size %s out of range 0..%d",
					      lua_tostring(L, 2), (int)n) :
			lwp_fail(L, "ERANGE", "leaf index %s out of range for %d leaves",
				 lua_tostring(L, 2), (int)n);
	hs = leaf_hashes(L, 1, n);
	rc = (consistency ? wp_merkle_consistency_proof : wp_merkle_inclusion_proof)(
		hs, n, (size_t)k, proof, WP_MERKLE_MAX_PROOF, &count);
	if (rc)
		return lwp_fail_err(L, rc, "%s proof failed", consistency ? "consistency" : "inclusion");
	push_proof(L, proof, count);
	return 1;
}

/* wp.merkle.inclusion_proof(leaves, i) -> proof | nil, "ERANGE: ..." */
static int l_inclusion_proof(lua_State *L) { return push_proof_of(L, 0); }

/* wp.merkle.consistency_proof(leaves, m) -> proof | nil, "ERANGE: ..." */
static int l_consistency_proof(lua_State *L) { return push_proof_of(L, 1); }

/* wp.merkle.verify_inclusion(leaf, i, n, proof, root) -> boolean */
static int l_verify_inclusion(lua_State *L)
{
	size_t len, count = 0;
	const char *leaf = luaL_checklstring(L, 1, &len);
	uint64_t i = 0, n = 0;
	int bad = getcount(L, 2, &i) | getcount(L, 3, &n);
	const uint8_t *root = get_root(L, 5);
	uint8_t proof[WP_MERKLE_MAX_PROOF * HLEN], lh[HLEN];

	/* Check every argument's type before answering, so a wrong type
	 * raises even when another argument already makes the answer false. */
	bad |= !get_proof(L, 4, proof, &count);
	if (bad || !root) {
		lua_pushboolean(L, 0);
		return 1;
	}
	wp_merkle_leaf_hash(leaf, len, lh);
	lua_pushboolean(L, wp_merkle_verify_inclusion(lh, i, n, proof, count, root) ==
			WP_MERKLE_MATCH);
	return 1;
}

/* wp.merkle.verify_consistency(m, n, root_m, root_n, proof) -> boolean */
static int l_verify_consistency(lua_State *L)
{
	uint64_t m = 0, n = 0;
	int bad = getcount(L, 1, &m) | getcount(L, 2, &n);
	const uint8_t *rm = get_root(L, 3), *rn = get_root(L, 4);
	uint8_t proof[WP_MERKLE_MAX_PROOF * HLEN];
	size_t count = 0;

	bad |= !get_proof(L, 5, proof, &count);
	if (bad || !rm || !rn) {
		lua_pushboolean(L, 0);
		return 1;
	}
	lua_pushboolean(L, wp_merkle_verify_consistency(m, n, rm, rn, proof, count) ==
			WP_MERKLE_MATCH);
	return 1;
}

/* ---- builder userdata --------------------------------------------------- */

static struct wp_merkle_builder *checkbuilder(lua_State *L)
{
	return luaL_checkudata(L, 1, BUILDER_MT);
}

/* wp.merkle.builder() -> builder */
static int l_builder(lua_State *L)
{
	struct wp_merkle_builder *b = lua_newuserdata(L, sizeof(*b));

	wp_merkle_builder_init(b);
	luaL_getmetatable(L, BUILDER_MT);
	lua_setmetatable(L, -2);
	return 1;
}

/* Append argument 2 to the builder, as a leaf or (hash) a 32-byte leaf hash;
 * pushes the new size. */
static int builder_append(lua_State *L, int hash)
{
	struct wp_merkle_builder *b = checkbuilder(L);
	size_t len = HLEN;
	const char *s = hash ? (const char *)lwp_checkbytes(L, 2, HLEN) : luaL_checklstring(L, 2, &len);
	int rc = hash ? wp_merkle_builder_append_hash(b, (const uint8_t *)s) :
			wp_merkle_builder_append(b, s, len);

	if (rc)
		return lwp_fail_err(L, rc, "tree is full");
	lua_pushnumber(L, (lua_Number)b->size);
	return 1;
}

/* b:append(data) -> new size */
static int l_b_append(lua_State *L) { return builder_append(L, 0); }

/* b:append_hash(h32) -> new size */
static int l_b_append_hash(lua_State *L) { return builder_append(L, 1); }

/* b:root() -> 32 bytes */
static int l_b_root(lua_State *L)
{
	uint8_t out[HLEN];

	wp_merkle_builder_root(checkbuilder(L), out);
	lua_pushlstring(L, (const char *)out, HLEN);
	return 1;
}

/* b:size() -> number of leaves */
static int l_b_size(lua_State *L)
{
	lua_pushnumber(L, (lua_Number)checkbuilder(L)->size);
	return 1;
}

static int l_b_tostring(lua_State *L)
{
	struct wp_merkle_builder *b = checkbuilder(L);

	lua_pushfstring(L, "%s (%f leaves): %p", BUILDER_MT, (lua_Number)b->size, (void *)b);
	return 1;
}

void lwp_open_merkle(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "leaf_hash", l_leaf_hash },
		{ "node_hash", l_node_hash },
		{ "root", l_root },
		{ "root_from_hashes", l_root_from_hashes },
		{ "inclusion_proof", l_inclusion_proof },
		{ "verify_inclusion", l_verify_inclusion },
		{ "consistency_proof", l_consistency_proof },
		{ "verify_consistency", l_verify_consistency },
		{ "builder", l_builder },
		{ NULL, NULL },
	};
	static const luaL_Reg methods[] = {
		{ "append", l_b_append },
		{ "append_hash", l_b_append_hash },
		{ "root", l_b_root },
		{ "size", l_b_size },
		{ NULL, NULL },
	};
	static const luaL_Reg meta[] = { { "__tostring", l_b_tostring }, { NULL, NULL } };

	lwp_class(L, BUILDER_MT, meta, methods);
	lwp_subtable(L, "merkle", fns);
}
