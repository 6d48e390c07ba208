/* SPDX-License-Identifier: MIT */
/*
 * wp.uptime: heartbeats, chain verification, epochs, claims, disclosure
 * proofs, VDF blocks, rotation records and attestation digests
 * (docs/lua-api.d/uptime.md documents every function).
 *
 * Records (beats, epochs, decoded claims and proofs, rotation records,
 * attestations) are JSON-shaped tables, so a chain file line decoded by
 * cjson IS a beat: binary fields are lowercase hex strings, Unix-nanosecond
 * timestamps are decimal strings (they do not fit a double), sequences and
 * small counts are numbers. Keys are raw byte strings like everywhere in wp
 * (32-byte public, 64-byte secret) or the same as hex (64 / 128 chars).
 * Encoded claims and proofs are raw byte strings.
 *
 * Records are untrusted data: a field of the wrong type or shape in a beat
 * is an answer (false, "BAD_FORMAT", i) or nil, "EINVAL: ..." - never a
 * raise. Wrong Lua types of the arguments themselves raise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/ed25519.h"
#include "workproof/encoding.h"
#include "workproof/uptime.h"

#define HLEN WP_UPTIME_HASH_LEN
#define SLEN WP_UPTIME_SIG_LEN
/* Sequences, indices and counts cross as Lua numbers: exact below 2^53. */
#define MAX_EXACT 9007199254740992.0

/* ---- field helpers ------------------------------------------------------- */

static void push_hex(lua_State *L, const uint8_t *b, size_t n)
{
	char buf[2 * WP_HB_EXT_MAX];

	wp_hex_encode(buf, b, n);
	lua_pushlstring(L, buf, 2 * n);
}

static void set_hex(lua_State *L, const char *name, const uint8_t *b, size_t n)
{
	push_hex(L, b, n);
	lua_setfield(L, -2, name);
}

static void push_i64(lua_State *L, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	lua_pushstring(L, buf);
}

static void set_num(lua_State *L, const char *name, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, name);
}

/* Exactly n bytes from 2n hex digits (no 0x prefix: strict length). */
static int unhex_exact(const char *s, size_t len, uint8_t *out, size_t n)
{
	size_t got;

	if (len != 2 * n)
		return -1;
	if (wp_hex_decode(out, n, &got, s, len, NULL) || got != n)
		return -1;
	return 0;
}

/* t[name] as exactly n hex-encoded bytes: 0 ok, 1 absent, -1 malformed. */
static int get_hexfield(lua_State *L, int t, const char *name, uint8_t *out, size_t n)
{
	size_t len;
	const char *s;
	int rc;

	lua_getfield(L, t, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 1;
	}
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
	rc = s ? unhex_exact(s, len, out, n) : -1;
	lua_pop(L, 1);
	return rc;
}

/* A count at the top of the stack: non-negative integer below 2^53. */
static int tocount(lua_State *L, int idx, uint64_t *out)
{
	lua_Number x;

	if (lua_type(L, idx) != LUA_TNUMBER)
		return -1;
	x = lua_tonumber(L, idx);
	if (!(x >= 0 && x < MAX_EXACT) || (lua_Number)(uint64_t)x != x)
		return -1;
	*out = (uint64_t)x;
	return 0;
}

static int get_count(lua_State *L, int t, const char *name, uint64_t *out)
{
	int rc;

	lua_getfield(L, t, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 1;
	}
	rc = tocount(L, -1, out);
	lua_pop(L, 1);
	return rc;
}

/*
 * A Unix-nanosecond timestamp at idx: a canonical decimal string (digits,
 * no sign, no leading zero, at most INT64_MAX) or an exact integer number.
 * Canonical so that one timestamp has one text, the one in the payload.
 */
static int tots(lua_State *L, int idx, int64_t *out)
{
	size_t len;
	const char *s;
	uint64_t v = 0;

	if (lua_type(L, idx) == LUA_TNUMBER)
		return tocount(L, idx, (uint64_t *)out) ? -1 : 0;
	if (lua_type(L, idx) != LUA_TSTRING)
		return -1;
	s = lua_tolstring(L, idx, &len);
	if (!len || len > 19 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (uint64_t)INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int get_ts(lua_State *L, int t, const char *name, int64_t *out)
{
	int rc;

	lua_getfield(L, t, name);
	if (lua_isnil(L, -1)) {
		lua_pop(L, 1);
		return 1;
	}
	rc = tots(L, -1, out);
	lua_pop(L, 1);
	return rc;
}

/* A key argument: n raw bytes or 2n hex digits; raises otherwise. */
static const uint8_t *checkkey(lua_State *L, int idx, size_t n, uint8_t *buf)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);

	if (len == n)
		return (const uint8_t *)s;
	if (unhex_exact(s, len, buf, n))
		luaL_argerror(L, idx, lua_pushfstring(L, "expected a key of %d bytes or %d hex digits",
						      (int)n, (int)(2 * n)));
	return buf;
}

/* The same for a value already on the stack at idx (a table field). */
static int tokey(lua_State *L, int idx, uint8_t *out, size_t n)
{
	size_t len;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING)
		return -1;
	s = lua_tolstring(L, idx, &len);
	if (len == n) {
		memcpy(out, s, n);
		return 0;
	}
	return unhex_exact(s, len, out, n);
}

/* ---- beats ---------------------------------------------------------------- */

enum {
	F_LEASE = 1, F_SEQ = 2, F_TS = 4, F_PREV = 8,
	F_PSIG = 16, F_CSIG = 32, F_HASH = 64,
	F_PAYLOAD = F_LEASE | F_SEQ | F_TS | F_PREV,
	F_ALL = F_PAYLOAD | F_PSIG | F_CSIG | F_HASH,
};

/*
 * Read the beat table at t into hb (fields in `need` must be present;
 * absent optional ones are zero). The VDF block "vdf" (hex) is decoded into
 * ext (WP_HB_EXT_MAX bytes) when ext is not NULL; with ext NULL a vdf field
 * is malformed. Returns NULL or a static text naming the bad field.
 */
static const char *tobeat(lua_State *L, int t, struct wp_hb *hb, unsigned need, uint8_t *ext)
{
	static const struct {
		const char *name;
		unsigned flag;
		size_t off, len;
	} hexes[] = {
		{ "leaseId", F_LEASE, offsetof(struct wp_hb, lease_id), HLEN },
		{ "prevHash", F_PREV, offsetof(struct wp_hb, prev_hash), HLEN },
		{ "providerSig", F_PSIG, offsetof(struct wp_hb, provider_sig), SLEN },
		{ "consumerSig", F_CSIG, offsetof(struct wp_hb, consumer_sig), SLEN },
		{ "hash", F_HASH, offsetof(struct wp_hb, hash), HLEN },
	};
	static const char *const bad_hex[] = {
		"leaseId: expected 64 hex digits", "prevHash: expected 64 hex digits",
		"providerSig: expected 128 hex digits", "consumerSig: expected 128 hex digits",
		"hash: expected 64 hex digits",
	};
	uint64_t seq;
	size_t len;
	const char *s;
	int rc;

	if (!lua_istable(L, t))
		return "not a table";
	memset(hb, 0, sizeof(*hb));
	for (size_t i = 0; i < sizeof(hexes) / sizeof(hexes[0]); i++) {
		rc = get_hexfield(L, t, hexes[i].name, (uint8_t *)hb + hexes[i].off, hexes[i].len);
		if (rc < 0 || (rc > 0 && (need & hexes[i].flag)))
			return bad_hex[i];
	}
	rc = get_count(L, t, "sequence", &seq);
	if (rc < 0 || (rc > 0 && (need & F_SEQ)))
		return "sequence: expected an integer 0 .. 2^53";
	hb->sequence = seq;
	rc = get_ts(L, t, "timestamp", &hb->timestamp);
	if (rc < 0 || (rc > 0 && (need & F_TS)))
		return "timestamp: expected a decimal string of Unix nanoseconds";
	lua_getfield(L, t, "vdf");
	if (!lua_isnil(L, -1)) {
		s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!ext || !s || unhex_exact(s, len, ext, WP_HB_VDF_LEN)) {
			lua_pop(L, 1);
			return ext ? "vdf: expected 1056 hex digits" :
				     "vdf: a VDF block where VDF hardening is off";
		}
		hb->ext = ext;
		hb->ext_len = WP_HB_VDF_LEN;
	}
	lua_pop(L, 1);
	return NULL;
}

/* Write the fields of hb present in `have` into the table at the top. */
static void setbeat(lua_State *L, const struct wp_hb *hb, unsigned have)
{
	if (have & F_LEASE)
		set_hex(L, "leaseId", hb->lease_id, HLEN);
	if (have & F_SEQ)
		set_num(L, "sequence", (double)hb->sequence);
	if (have & F_TS) {
		push_i64(L, hb->timestamp);
		lua_setfield(L, -2, "timestamp");
	}
	if (have & F_PREV)
		set_hex(L, "prevHash", hb->prev_hash, HLEN);
	if (have & F_PSIG)
		set_hex(L, "providerSig", hb->provider_sig, SLEN);
	if (have & F_CSIG)
		set_hex(L, "consumerSig", hb->consumer_sig, SLEN);
	if (have & F_HASH)
		set_hex(L, "hash", hb->hash, HLEN);
	if (hb->ext_len)
		set_hex(L, "vdf", hb->ext, hb->ext_len);
}

/*
 * Load beats from a Lua array of beat tables or a packed string at idx into
 * a GC-owned array (a userdata left on the stack, with a second one for
 * VDF blocks when with_ext). Conversion stops at the first malformed beat:
 * *n is then its index and *why the reason; otherwise *why is NULL.
 * A malformed PACKED string returns NULL after pushing nil, "EINVAL: ..."
 * (packed input comes from wp.uptime.pack, not from a peer).
 */
static struct wp_hb *load_beats(lua_State *L, int idx, int with_ext, size_t *n, const char **why)
{
	struct wp_hb *beats;
	uint8_t *ext = NULL;
	size_t count = 0;

	*why = NULL;
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t len, off = 0, used;
		const uint8_t *s = (const uint8_t *)lua_tolstring(L, idx, &len);

		while (off < len) {
			struct wp_hb tmp;
			int rc = wp_hb_unpack(&tmp, s + off, len - off, &used);

			if (rc) {
				lwp_fail_err(L, rc, "packed beat %d is malformed", (int)count + 1);
				return NULL;
			}
			off += used;
			count++;
		}
		beats = lua_newuserdata(L, count ? count * sizeof(*beats) : 1);
		off = 0;
		for (size_t i = 0; i < count; i++) {
			wp_hb_unpack(&beats[i], s + off, len - off, &used);
			off += used;
			if (beats[i].sequence >= (uint64_t)MAX_EXACT ||
			    (beats[i].ext_len && !with_ext)) {
				*why = beats[i].ext_len ? "vdf: a VDF block where VDF hardening is off" :
							  "sequence: beyond 2^53";
				*n = i;
				return beats;
			}
		}
		*n = count;
		return beats;
	}
	luaL_checktype(L, idx, LUA_TTABLE);
	count = lua_objlen(L, idx);
	if (count > (size_t)0x7fffffff)
		luaL_argerror(L, idx, "array too long");
	beats = lua_newuserdata(L, count ? count * sizeof(*beats) : 1);
	if (with_ext && count)
		ext = lua_newuserdata(L, count * WP_HB_VDF_LEN);
	for (size_t i = 0; i < count; i++) {
		lua_rawgeti(L, idx, (int)i + 1);
		*why = tobeat(L, lua_gettop(L), &beats[i], F_ALL, ext ? ext + i * WP_HB_VDF_LEN : NULL);
		lua_pop(L, 1);
		if (*why) {
			*n = i;
			return beats;
		}
	}
	*n = count;
	return beats;
}

/* wp.uptime.build(lease_id, sequence, timestamp[, prev_hash]) -> beat */
static int l_build(lua_State *L)
{
	struct wp_hb hb;
	uint8_t lease[HLEN], prev[HLEN];
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint64_t seq;
	int64_t ts;

	luaL_checknumber(L, 2);
	if (lua_type(L, 3) != LUA_TSTRING)
		luaL_checknumber(L, 3);
	if (unhex_exact(s, len, lease, HLEN))
		return lwp_fail(L, "EINVAL", "leaseId: expected 64 hex digits");
	if (tocount(L, 2, &seq))
		return lwp_fail(L, "EINVAL", "sequence: expected an integer 0 .. 2^53");
	if (tots(L, 3, &ts))
		return lwp_fail(L, "EINVAL", "timestamp: expected a decimal string of Unix nanoseconds");
	if (!lua_isnoneornil(L, 4)) {
		s = luaL_checklstring(L, 4, &len);
		if (unhex_exact(s, len, prev, HLEN))
			return lwp_fail(L, "EINVAL", "prevHash: expected 64 hex digits");
	}
	wp_hb_build(&hb, lease, seq, ts, lua_isnoneornil(L, 4) ? NULL : prev);
	lua_createtable(L, 0, 8);
	setbeat(L, &hb, F_PAYLOAD);
	return 1;
}

/* wp.uptime.payload(beat) -> text */
static int l_payload(lua_State *L)
{
	struct wp_hb hb;
	char buf[WP_HB_PAYLOAD_MAX];
	size_t len;
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = tobeat(L, 1, &hb, F_PAYLOAD, NULL);
	if (why && strncmp(why, "vdf", 3))
		return lwp_fail(L, "EINVAL", "%s", why);
	wp_hb_payload(&hb, buf, &len);
	lua_pushlstring(L, buf, len);
	return 1;
}

/* wp.uptime.sign(beat, provider_secret) -> beat (providerSig set) */
static int l_sign(lua_State *L)
{
	struct wp_hb hb;
	uint8_t ext[WP_HB_EXT_MAX], kb[WP_UPTIME_SECRET_LEN];
	const uint8_t *sk;
	const char *why;
	int rc;

	luaL_checktype(L, 1, LUA_TTABLE);
	sk = checkkey(L, 2, WP_UPTIME_SECRET_LEN, kb);
	why = tobeat(L, 1, &hb, F_PAYLOAD, ext);
	if (why)
		return lwp_fail(L, "EINVAL", "%s", why);
	rc = wp_hb_sign(&hb, sk);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	lua_settop(L, 1);
	set_hex(L, "providerSig", hb.provider_sig, SLEN);
	return 1;
}

/* wp.uptime.countersign(beat, provider_pub, consumer_secret) -> beat */
static int l_countersign(lua_State *L)
{
	struct wp_hb hb;
	uint8_t ext[WP_HB_EXT_MAX], pb[HLEN], kb[WP_UPTIME_SECRET_LEN];
	const uint8_t *pk, *sk;
	const char *why;
	int rc;

	luaL_checktype(L, 1, LUA_TTABLE);
	pk = checkkey(L, 2, WP_UPTIME_KEY_LEN, pb);
	sk = checkkey(L, 3, WP_UPTIME_SECRET_LEN, kb);
	why = tobeat(L, 1, &hb, F_PAYLOAD | F_PSIG, ext);
	if (why)
		return lwp_fail(L, "EINVAL", "%s", why);
	rc = wp_hb_countersign(&hb, pk, sk);
	if (rc == WP_EPROTO)
		return lwp_fail(L, "EPROTO", "BAD_PROVIDER_SIG: the provider signature does not "
			       "verify; refusing to countersign");
	if (rc)
		return lwp_fail_err(L, rc, "countersigning failed");
	lua_settop(L, 1);
	set_hex(L, "consumerSig", hb.consumer_sig, SLEN);
	set_hex(L, "hash", hb.hash, HLEN);
	return 1;
}

/* wp.uptime.hash(beat) -> hex (computed from the fields, not read) */
static int l_hash(lua_State *L)
{
	struct wp_hb hb;
	uint8_t ext[WP_HB_EXT_MAX], h[HLEN];
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = tobeat(L, 1, &hb, F_PAYLOAD | F_PSIG | F_CSIG, ext);
	if (why)
		return lwp_fail(L, "EINVAL", "%s", why);
	wp_hb_compute_hash(&hb, h);
	push_hex(L, h, HLEN);
	return 1;
}

static uint64_t opt_vdf_t(lua_State *L, int opts);

/* wp.uptime.verify(beat, provider_pub, consumer_pub[, opts]) -> true | false, reason */
static int l_verify(lua_State *L)
{
	struct wp_hb hb;
	uint8_t ext[WP_HB_EXT_MAX], pb[HLEN], cb[HLEN];
	const uint8_t *pk, *ck;
	uint64_t t;
	int r;

	luaL_checktype(L, 1, LUA_TTABLE);
	pk = checkkey(L, 2, WP_UPTIME_KEY_LEN, pb);
	ck = checkkey(L, 3, WP_UPTIME_KEY_LEN, cb);
	if (!lua_isnoneornil(L, 4))
		luaL_checktype(L, 4, LUA_TTABLE);
	t = opt_vdf_t(L, lua_isnoneornil(L, 4) ? 0 : 4);
	r = tobeat(L, 1, &hb, F_ALL, ext) ? WP_HB_BAD_FORMAT : wp_hb_verify(&hb, pk, ck, t);
	if (r == WP_HB_OK) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, wp_hb_reason_name(r));
	return 2;
}

/* ---- key ranges ------------------------------------------------------------ */

/*
 * keys[party]: one key (raw or hex), or an array of { first =, last =,
 * key = } ranges (last absent: open). A GC-owned array is pushed.
 */
static struct wp_uptime_keyrange *get_ranges(lua_State *L, int keys, const char *party, size_t *n)
{
	struct wp_uptime_keyrange *r;
	int t;

	lua_getfield(L, keys, party);
	t = lua_gettop(L);
	if (lua_type(L, t) == LUA_TSTRING) {
		r = lua_newuserdata(L, sizeof(*r));
		if (tokey(L, t, r->key, HLEN))
			luaL_error(L, "keys.%s: expected a key of 32 bytes or 64 hex digits", party);
		r->first = 0;
		r->last = UINT64_MAX;
		*n = 1;
		lua_remove(L, t);
		return r;
	}
	if (!lua_istable(L, t))
		luaL_error(L, "keys.%s: expected a key or an array of key ranges", party);
	*n = lua_objlen(L, t);
	r = lua_newuserdata(L, *n ? *n * sizeof(*r) : 1);
	for (size_t i = 0; i < *n; i++) {
		int e;

		lua_rawgeti(L, t, (int)i + 1);
		e = lua_gettop(L);
		if (!lua_istable(L, e))
			luaL_error(L, "keys.%s[%d]: expected a table", party, (int)i + 1);
		lua_getfield(L, e, "key");
		if (tokey(L, -1, r[i].key, HLEN))
			luaL_error(L, "keys.%s[%d].key: expected a key of 32 bytes or 64 hex digits",
				   party, (int)i + 1);
		lua_pop(L, 1);
		if (get_count(L, e, "first", &r[i].first))
			luaL_error(L, "keys.%s[%d].first: expected an integer >= 0", party, (int)i + 1);
		lua_getfield(L, e, "last");
		if (lua_isnil(L, -1) || (lua_type(L, -1) == LUA_TNUMBER &&
					 lua_tonumber(L, -1) >= MAX_EXACT))
			r[i].last = UINT64_MAX;
		else if (tocount(L, -1, &r[i].last))
			luaL_error(L, "keys.%s[%d].last: expected an integer >= first", party, (int)i + 1);
		lua_pop(L, 2);
	}
	lua_remove(L, t);
	return r;
}

static uint64_t opt_vdf_t(lua_State *L, int opts)
{
	uint64_t t = 0;

	if (opts && get_count(L, opts, "vdf_t", &t) < 0)
		luaL_error(L, "opts.vdf_t: expected an integer >= 0");
	return t;
}

/* A hex option (lease_id, prev_hash ...): raw bytes into out; 1 if set. */
static int opt_hex(lua_State *L, int opts, const char *name, uint8_t *out)
{
	int rc;

	if (!opts)
		return 0;
	rc = get_hexfield(L, opts, name, out, HLEN);
	if (rc < 0)
		luaL_error(L, "opts.%s: expected 64 hex digits", name);
	return rc == 0;
}

/* wp.uptime.verify_chain(beats | packed, keys[, opts]) -> true | false, reason, i */
static int l_verify_chain(lua_State *L)
{
	struct wp_hb_chain_opts o;
	struct wp_hb_chain_result res;
	struct wp_hb *beats;
	uint8_t lease[HLEN], prev[HLEN];
	const char *why;
	size_t n;
	int opts = lua_isnoneornil(L, 3) ? 0 : 3, rc;

	luaL_checktype(L, 2, LUA_TTABLE);
	if (opts)
		luaL_checktype(L, 3, LUA_TTABLE);
	memset(&o, 0, sizeof(o));
	o.vdf_t = opt_vdf_t(L, opts);
	if (opt_hex(L, opts, "lease_id", lease))
		o.lease_id = lease;
	if (opt_hex(L, opts, "prev_hash", prev))
		o.prev_hash = prev;
	if (opts && get_count(L, opts, "first_sequence", &o.first_sequence) < 0)
		luaL_error(L, "opts.first_sequence: expected an integer >= 0");
	o.provider = get_ranges(L, 2, "provider", &o.nprovider);
	o.consumer = get_ranges(L, 2, "consumer", &o.nconsumer);
	beats = load_beats(L, 1, o.vdf_t != 0, &n, &why);
	if (!beats)
		return 2;
	rc = wp_hb_verify_chain(beats, n, &o, &res);
	if (rc)
		return lwp_fail_err(L, rc, "key ranges must be sorted by first and not overlap");
	if (res.reason == WP_HB_OK && !why) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	if (res.reason == WP_HB_OK) {
		/* every beat before the malformed one verified */
		lua_pushstring(L, wp_hb_reason_name(WP_HB_BAD_FORMAT));
		lua_pushnumber(L, (double)n + 1);
		lua_pushstring(L, why);
		return 4;
	}
	lua_pushstring(L, wp_hb_reason_name(res.reason));
	lua_pushnumber(L, (double)res.index + 1);
	return 3;
}

/* wp.uptime.pack(beats) -> packed | nil, "EINVAL: beat i: ..." */
static int l_pack(lua_State *L)
{
	struct wp_hb *beats;
	const char *why;
	size_t n;
	luaL_Buffer b;

	luaL_checktype(L, 1, LUA_TTABLE);
	beats = load_beats(L, 1, 1, &n, &why);
	if (why)
		return lwp_fail(L, "EINVAL", "beat %d: %s", (int)n + 1, why);
	luaL_buffinit(L, &b);
	for (size_t i = 0; i < n; i++) {
		uint8_t rec[WP_HB_PACKED_FIXED + WP_HB_EXT_MAX];

		luaL_addlstring(&b, (const char *)rec, wp_hb_pack(&beats[i], rec));
	}
	luaL_pushresult(&b);
	return 1;
}

/* wp.uptime.unpack(packed) -> beats | nil, err */
static int l_unpack(lua_State *L)
{
	struct wp_hb *beats;
	const char *why;
	size_t n;

	luaL_checktype(L, 1, LUA_TSTRING);
	beats = load_beats(L, 1, 1, &n, &why);
	if (!beats)
		return 2;
	if (why)
		return lwp_fail(L, "EINVAL", "packed beat %d: %s", (int)n + 1, why);
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_createtable(L, 0, 8);
		setbeat(L, &beats[i], F_ALL);
		lua_rawseti(L, -2, (int)i + 1);
	}
	return 1;
}

/* ---- epochs and claims ------------------------------------------------------ */

static void push_epoch(lua_State *L, const struct wp_uptime_epoch *e)
{
	lua_createtable(L, 0, 7);
	set_hex(L, "leaseId", e->lease_id, HLEN);
	set_num(L, "index", (double)e->index);
	set_num(L, "firstSequence", (double)e->first_sequence);
	set_num(L, "count", e->count);
	set_hex(L, "root", e->root, HLEN);
	set_hex(L, "prevEpochHash", e->prev_hash, HLEN);
	set_hex(L, "hash", e->hash, HLEN);
}

/* An epoch table at t (hash is recomputed, not read). NULL or the reason. */
static const char *toepoch(lua_State *L, int t, struct wp_uptime_epoch *e)
{
	uint64_t v;
	int rc;

	if (!lua_istable(L, t))
		return "not a table";
	memset(e, 0, sizeof(*e));
	if (get_hexfield(L, t, "leaseId", e->lease_id, HLEN))
		return "leaseId: expected 64 hex digits";
	if (get_hexfield(L, t, "root", e->root, HLEN))
		return "root: expected 64 hex digits";
	if (get_hexfield(L, t, "prevEpochHash", e->prev_hash, HLEN))
		return "prevEpochHash: expected 64 hex digits";
	if (get_count(L, t, "index", &e->index) || e->index > UINT64_MAX / WP_UPTIME_EPOCH_BEATS)
		return "index: expected an integer >= 0";
	e->first_sequence = e->index * WP_UPTIME_EPOCH_BEATS;
	rc = get_count(L, t, "firstSequence", &v);
	if (rc < 0 || (rc == 0 && v != e->first_sequence))
		return "firstSequence: must be index * 60";
	if (get_count(L, t, "count", &v) || !v || v > WP_UPTIME_EPOCH_BEATS)
		return "count: expected 1 .. 60";
	e->count = (uint32_t)v;
	wp_uptime_epoch_seal(e);
	return NULL;
}

static void push_claim(lua_State *L, const struct wp_uptime_claim *c, int with_sig)
{
	uint8_t h[HLEN];

	lua_createtable(L, 0, 13);
	set_num(L, "version", c->version);
	set_num(L, "flags", c->flags);
	set_hex(L, "leaseId", c->lease_id, HLEN);
	set_num(L, "index", c->index);
	set_num(L, "firstSequence", (double)c->first_sequence);
	set_num(L, "beatCount", c->beat_count);
	set_num(L, "epochs", (double)wp_uptime_claim_epochs(c));
	push_i64(L, c->period_start);
	lua_setfield(L, -2, "periodStart");
	push_i64(L, c->period_end);
	lua_setfield(L, -2, "periodEnd");
	set_hex(L, "root", c->root, HLEN);
	set_hex(L, "prevClaimHash", c->prev_hash, HLEN);
	wp_uptime_claim_hash(c, h);
	set_hex(L, "hash", h, HLEN);
	if (with_sig)
		set_hex(L, "signature", c->sig, SLEN);
}

/* A claim table at t (signature optional: *has_sig). NULL or the reason. */
static const char *toclaim(lua_State *L, int t, struct wp_uptime_claim *c, int *has_sig)
{
	uint64_t v;
	int rc;

	if (!lua_istable(L, t))
		return "not a table";
	memset(c, 0, sizeof(*c));
	if (get_count(L, t, "version", &v) || v != WP_UPTIME_CLAIM_VERSION)
		return "version: expected 1";
	c->version = (uint8_t)v;
	rc = get_count(L, t, "flags", &v);
	if (rc < 0 || (!rc && (v & ~(uint64_t)WP_UPTIME_CLAIM_FLAG_VDF)))
		return "flags: unknown flag bits";
	c->flags = rc ? 0 : (uint8_t)v;
	if (get_hexfield(L, t, "leaseId", c->lease_id, HLEN))
		return "leaseId: expected 64 hex digits";
	if (get_count(L, t, "index", &v) || v > UINT32_MAX)
		return "index: expected an integer 0 .. 2^32-1";
	c->index = (uint32_t)v;
	c->first_sequence = v * WP_UPTIME_CLAIM_BEATS;
	if (get_count(L, t, "beatCount", &v) || !v || v > WP_UPTIME_CLAIM_BEATS)
		return "beatCount: expected 1 .. 1440";
	c->beat_count = (uint32_t)v;
	if (get_ts(L, t, "periodStart", &c->period_start))
		return "periodStart: expected a decimal string of Unix nanoseconds";
	if (get_ts(L, t, "periodEnd", &c->period_end) || c->period_end < c->period_start)
		return "periodEnd: expected a decimal string >= periodStart";
	if (get_hexfield(L, t, "root", c->root, HLEN))
		return "root: expected 64 hex digits";
	if (get_hexfield(L, t, "prevClaimHash", c->prev_hash, HLEN))
		return "prevClaimHash: expected 64 hex digits";
	rc = get_hexfield(L, t, "signature", c->sig, SLEN);
	if (rc < 0)
		return "signature: expected 128 hex digits";
	*has_sig = rc == 0;
	return NULL;
}

/* wp.uptime.rollup(beats | packed[, opts]) -> epochs, claims | nil, err */
static int l_rollup(lua_State *L)
{
	struct wp_uptime_rollup_opts o;
	struct wp_uptime_epoch *epochs;
	struct wp_uptime_claim *claims;
	struct wp_hb *beats;
	uint8_t pe[HLEN], pc[HLEN];
	const char *why;
	size_t n, ne, nc;
	uint64_t flags = 0;
	int opts = lua_isnoneornil(L, 2) ? 0 : 2, rc;

	if (opts)
		luaL_checktype(L, 2, LUA_TTABLE);
	memset(&o, 0, sizeof(o));
	if (opt_hex(L, opts, "prev_epoch_hash", pe))
		o.prev_epoch_hash = pe;
	if (opt_hex(L, opts, "prev_claim_hash", pc))
		o.prev_claim_hash = pc;
	if (opts && (get_count(L, opts, "flags", &flags) < 0 ||
		     (flags & ~(uint64_t)WP_UPTIME_CLAIM_FLAG_VDF)))
		luaL_error(L, "opts.flags: expected 0 or 1 (VDF)");
	o.claim_flags = (uint8_t)flags;
	beats = load_beats(L, 1, 1, &n, &why);
	if (!beats)
		return 2;
	if (why)
		return lwp_fail(L, "EINVAL", "beat %d: %s", (int)n + 1, why);
	if (!n)
		return lwp_fail(L, "EINVAL", "no beats to roll up");
	epochs = lua_newuserdata(L, ((n + WP_UPTIME_EPOCH_BEATS - 1) / WP_UPTIME_EPOCH_BEATS) *
				    sizeof(*epochs));
	claims = lua_newuserdata(L, ((n + WP_UPTIME_CLAIM_BEATS - 1) / WP_UPTIME_CLAIM_BEATS) *
				    sizeof(*claims));
	rc = wp_uptime_rollup(beats, n, &o, epochs, &ne, claims, &nc);
	if (rc)
		return lwp_fail_err(L, rc, "beats must be consecutive from a multiple of 1440, "
				    "one lease");
	lua_createtable(L, (int)ne, 0);
	for (size_t i = 0; i < ne; i++) {
		push_epoch(L, &epochs[i]);
		lua_rawseti(L, -2, (int)i + 1);
	}
	lua_createtable(L, (int)nc, 0);
	for (size_t i = 0; i < nc; i++) {
		push_claim(L, &claims[i], 0);
		lua_rawseti(L, -2, (int)i + 1);
	}
	return 2;
}

/* wp.uptime.epoch_make(lease_id, index, hashes[, prev_epoch_hash]) -> epoch */
static int l_epoch_make(lua_State *L)
{
	struct wp_uptime_epoch e;
	uint8_t lease[HLEN], prev[HLEN], hashes[WP_UPTIME_EPOCH_BEATS * HLEN];
	size_t len, n;
	const char *s = luaL_checklstring(L, 1, &len);
	uint64_t index;

	luaL_checknumber(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	if (unhex_exact(s, len, lease, HLEN))
		return lwp_fail(L, "EINVAL", "leaseId: expected 64 hex digits");
	if (tocount(L, 2, &index) || index > UINT64_MAX / WP_UPTIME_EPOCH_BEATS)
		return lwp_fail(L, "ERANGE", "epoch index out of range");
	n = lua_objlen(L, 3);
	if (!n || n > WP_UPTIME_EPOCH_BEATS)
		return lwp_fail(L, "ERANGE", "an epoch holds 1 .. 60 beats, got %d", (int)n);
	for (size_t i = 0; i < n; i++) {
		lua_rawgeti(L, 3, (int)i + 1);
		s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
		if (!s || unhex_exact(s, len, hashes + i * HLEN, HLEN))
			return lwp_fail(L, "EINVAL", "hashes[%d]: expected 64 hex digits", (int)i + 1);
		lua_pop(L, 1);
	}
	if (!lua_isnoneornil(L, 4)) {
		s = luaL_checklstring(L, 4, &len);
		if (unhex_exact(s, len, prev, HLEN))
			return lwp_fail(L, "EINVAL", "prevEpochHash: expected 64 hex digits");
	}
	wp_uptime_epoch_make(&e, lease, index, hashes, (uint32_t)n,
			     lua_isnoneornil(L, 4) ? NULL : prev);
	push_epoch(L, &e);
	return 1;
}

/* wp.uptime.epoch_record(epoch) -> 132 bytes | nil, err */
static int l_epoch_record(lua_State *L)
{
	struct wp_uptime_epoch e;
	uint8_t rec[WP_UPTIME_EPOCH_RECORD_LEN];
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = toepoch(L, 1, &e);
	if (why)
		return lwp_fail(L, "EINVAL", "epoch %s", why);
	wp_uptime_epoch_record(&e, rec);
	lua_pushlstring(L, (const char *)rec, sizeof(rec));
	return 1;
}

/* wp.uptime.epoch_hash(epoch) -> hex | nil, err */
static int l_epoch_hash(lua_State *L)
{
	struct wp_uptime_epoch e;
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = toepoch(L, 1, &e);
	if (why)
		return lwp_fail(L, "EINVAL", "epoch %s", why);
	push_hex(L, e.hash, HLEN);
	return 1;
}

/* Epoch tables of the array at idx into a GC-owned array (pushed). */
static struct wp_uptime_epoch *load_epochs(lua_State *L, int idx, size_t *n, const char **why)
{
	struct wp_uptime_epoch *es;

	luaL_checktype(L, idx, LUA_TTABLE);
	*n = lua_objlen(L, idx);
	es = lua_newuserdata(L, *n ? *n * sizeof(*es) : 1);
	*why = NULL;
	for (size_t i = 0; i < *n; i++) {
		lua_rawgeti(L, idx, (int)i + 1);
		*why = toepoch(L, lua_gettop(L), &es[i]);
		lua_pop(L, 1);
		if (*why) {
			*n = i;
			break;
		}
	}
	return es;
}

/* wp.uptime.claim_make(epochs, opts) -> claim (unsigned) | nil, err */
static int l_claim_make(lua_State *L)
{
	struct wp_uptime_claim c;
	struct wp_uptime_epoch *es;
	uint8_t prev[HLEN];
	const char *why;
	size_t n;
	uint64_t index = 0, flags = 0;
	int64_t start, end;
	int rc;

	luaL_checktype(L, 2, LUA_TTABLE);
	es = load_epochs(L, 1, &n, &why);
	if (why)
		return lwp_fail(L, "EINVAL", "epoch %d: %s", (int)n + 1, why);
	if (get_count(L, 2, "index", &index) < 0 || index > UINT32_MAX)
		luaL_error(L, "opts.index: expected an integer 0 .. 2^32-1");
	if (get_count(L, 2, "flags", &flags) < 0 || (flags & ~(uint64_t)WP_UPTIME_CLAIM_FLAG_VDF))
		luaL_error(L, "opts.flags: expected 0 or 1 (VDF)");
	if (get_ts(L, 2, "period_start", &start))
		luaL_error(L, "opts.period_start: expected a decimal string of Unix nanoseconds");
	if (get_ts(L, 2, "period_end", &end))
		luaL_error(L, "opts.period_end: expected a decimal string of Unix nanoseconds");
	rc = wp_uptime_claim_make(&c, es, n, (uint32_t)index, start, end, (uint8_t)flags,
				  opt_hex(L, 2, "prev_claim_hash", prev) ? prev : NULL);
	if (rc)
		return lwp_fail_err(L, rc, "epochs must be 1 .. 24 consecutive linked epochs "
				    "from index * 24, all full but the last, period_start <= period_end");
	push_claim(L, &c, 0);
	return 1;
}

/* A claim argument: encoded bytes (strict) or a table. 0 ok, else pushed nil, err. */
static int getclaim(lua_State *L, int idx, struct wp_uptime_claim *c, int *has_sig)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		int rc = wp_uptime_claim_decode(c, (const uint8_t *)s, len);

		*has_sig = 1;
		if (rc) {
			lwp_fail_err(L, rc, rc == WP_ETRUNC ? "claim shorter than 194 bytes (%d)" :
					    rc == WP_EINVAL ? "claim longer than 194 bytes (%d)" :
							      "claim fields break the rules (%d bytes)",
				     (int)len);
			return -1;
		}
		return 0;
	}
	if (lua_type(L, idx) != LUA_TTABLE)
		luaL_argerror(L, idx, "expected an encoded claim (string) or a claim table");
	{
		const char *why = toclaim(L, idx, c, has_sig);

		if (why) {
			lwp_fail(L, "EINVAL", "claim %s", why);
			return -1;
		}
	}
	return 0;
}

/* wp.uptime.claim_encode(claim[, provider_secret]) -> 194 bytes | nil, err */
static int l_claim_encode(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t out[WP_UPTIME_CLAIM_LEN], kb[WP_UPTIME_SECRET_LEN];
	const uint8_t *sk = NULL;
	int has_sig, rc;

	luaL_checktype(L, 1, LUA_TTABLE);
	if (!lua_isnoneornil(L, 2))
		sk = checkkey(L, 2, WP_UPTIME_SECRET_LEN, kb);
	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	if (sk) {
		rc = wp_uptime_claim_sign(&c, sk);
		if (rc)
			return lwp_fail_err(L, rc, "signing failed");
	} else if (!has_sig) {
		return lwp_fail(L, "EINVAL", "claim has no signature: pass the provider secret");
	}
	wp_uptime_claim_encode(&c, out);
	lua_pushlstring(L, (const char *)out, sizeof(out));
	return 1;
}

/* wp.uptime.claim_decode(bytes) -> claim table | nil, err */
static int l_claim_decode(lua_State *L)
{
	struct wp_uptime_claim c;
	int has_sig;

	luaL_checktype(L, 1, LUA_TSTRING);
	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	push_claim(L, &c, 1);
	return 1;
}

/* wp.uptime.claim_hash(claim) -> hex | nil, err */
static int l_claim_hash(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t h[HLEN];
	int has_sig;

	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	wp_uptime_claim_hash(&c, h);
	push_hex(L, h, HLEN);
	return 1;
}

/* wp.uptime.claim_verify(claim, provider_pub) -> boolean | nil, err */
static int l_claim_verify(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t pb[HLEN];
	const uint8_t *pk = checkkey(L, 2, WP_UPTIME_KEY_LEN, pb);
	int has_sig;

	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	lua_pushboolean(L, has_sig && wp_uptime_claim_verify(&c, pk));
	return 1;
}

/* wp.uptime.claim_countersign(claim, consumer_secret) -> sig (64 bytes) | nil, err */
static int l_claim_countersign(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t kb[WP_UPTIME_SECRET_LEN], sig[SLEN];
	const uint8_t *sk = checkkey(L, 2, WP_UPTIME_SECRET_LEN, kb);
	int has_sig, rc;

	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	if (!has_sig)
		return lwp_fail(L, "EINVAL", "countersign a signed claim");
	rc = wp_uptime_claim_countersign(&c, sk, sig);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	lua_pushlstring(L, (const char *)sig, SLEN);
	return 1;
}

/* wp.uptime.claim_verify_countersign(claim, consumer_pub, sig) -> boolean | nil, err */
static int l_claim_verify_countersign(lua_State *L)
{
	struct wp_uptime_claim c;
	uint8_t pb[HLEN], sb[SLEN];
	const uint8_t *pk = checkkey(L, 2, WP_UPTIME_KEY_LEN, pb);
	size_t len;
	const char *s = luaL_checklstring(L, 3, &len);
	int has_sig;

	if (len == SLEN)
		memcpy(sb, s, SLEN);
	else if (unhex_exact(s, len, sb, SLEN))
		return lwp_fail(L, "EINVAL", "countersignature: expected 64 bytes or 128 hex digits");
	if (getclaim(L, 1, &c, &has_sig))
		return 2;
	lua_pushboolean(L, has_sig && wp_uptime_claim_verify_countersign(&c, pk, sb));
	return 1;
}

/* ---- disclosure proofs ------------------------------------------------------ */

/* wp.uptime.proof_make(beats, i, epochs, claim) -> proof bytes | nil, err */
static int l_proof_make(lua_State *L)
{
	struct wp_uptime_proof *p;
	struct wp_uptime_claim c;
	struct wp_uptime_epoch *es;
	struct wp_hb *beats;
	uint8_t out[WP_UPTIME_PROOF_MAX];
	const char *why;
	uint64_t i;
	size_t n, ne, first, start, pos, elo = 0, cnt = 0, len;
	int has_sig, rc;

	luaL_checknumber(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	if (lua_type(L, 4) != LUA_TSTRING)
		luaL_argerror(L, 4, "expected an encoded claim (string)");
	if (getclaim(L, 4, &c, &has_sig))
		return 2;
	beats = load_beats(L, 1, 1, &n, &why);
	if (!beats)
		return 2;
	if (why)
		return lwp_fail(L, "EINVAL", "beat %d: %s", (int)n + 1, why);
	if (tocount(L, 2, &i) || i < 1 || i > n)
		return lwp_fail(L, "ERANGE", "beat index out of range 1 .. %d", (int)n);
	es = load_epochs(L, 3, &ne, &why);
	if (why)
		return lwp_fail(L, "EINVAL", "epoch %d: %s", (int)ne + 1, why);
	/* the beats of the beat's epoch, located by sequence within the array */
	i--;
	pos = beats[i].sequence % WP_UPTIME_EPOCH_BEATS;
	if (pos > i)
		return lwp_fail(L, "ERANGE", "the beats do not reach back to the epoch's first beat");
	start = i - pos;
	first = (size_t)c.index * WP_UPTIME_CLAIM_EPOCHS;
	for (size_t k = 0; k < ne; k++)
		if (es[k].index == first) {
			elo = k;
			break;
		}
	if (ne - elo < wp_uptime_claim_epochs(&c))
		return lwp_fail(L, "ERANGE", "the epochs do not cover the claim");
	for (size_t k = elo; k < elo + wp_uptime_claim_epochs(&c); k++)
		if (es[k].index == beats[i].sequence / WP_UPTIME_EPOCH_BEATS)
			cnt = es[k].count;
	if (!cnt || start + cnt > n)
		return lwp_fail(L, "ERANGE", "the beat's epoch is not in the claim, or its beats "
				"are not all given");
	p = lua_newuserdata(L, sizeof(*p));
	rc = wp_uptime_proof_make(p, beats + start, cnt, pos, es + elo,
				  wp_uptime_claim_epochs(&c), &c);
	if (rc)
		return lwp_fail_err(L, rc, "beats, epochs and claim do not belong together");
	wp_uptime_proof_encode(p, out, &len);
	lua_pushlstring(L, (const char *)out, len);
	return 1;
}

static int decode_proof(lua_State *L, int idx, struct wp_uptime_proof *p)
{
	size_t len;
	const char *s = luaL_checklstring(L, idx, &len);
	int rc = wp_uptime_proof_decode(p, (const uint8_t *)s, len);

	if (rc)
		lwp_fail_err(L, rc, rc == WP_ETRUNC ? "proof truncated" : "malformed proof");
	return rc;
}

static void push_path(lua_State *L, const char *name, const uint8_t *path, size_t n)
{
	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		push_hex(L, path + i * HLEN, HLEN);
		lua_rawseti(L, -2, (int)i + 1);
	}
	lua_setfield(L, -2, name);
}

/* wp.uptime.proof_decode(bytes) -> table | nil, err */
static int l_proof_decode(lua_State *L)
{
	struct wp_uptime_proof *p = lua_newuserdata(L, sizeof(*p));
	struct wp_hb b;

	if (decode_proof(L, 1, p))
		return 2;
	b = p->beat;
	wp_hb_compute_hash(&b, b.hash);
	lua_createtable(L, 0, 6);
	set_num(L, "version", WP_UPTIME_PROOF_VERSION);
	lua_createtable(L, 0, 8);
	setbeat(L, &b, F_ALL);
	lua_setfield(L, -2, "beat");
	wp_uptime_epoch_seal(&p->epoch);
	push_epoch(L, &p->epoch);
	lua_setfield(L, -2, "epoch");
	push_path(L, "epochPath", p->epoch_path, p->epoch_path_len);
	push_path(L, "claimPath", p->claim_path, p->claim_path_len);
	push_claim(L, &p->claim, 1);
	lua_setfield(L, -2, "claim");
	return 1;
}

/* wp.uptime.proof_verify(bytes, keys[, opts]) -> true | false, reason | nil, err */
static int l_proof_verify(lua_State *L)
{
	struct wp_uptime_proof *p;
	uint8_t pk[HLEN], ck[HLEN], sk[HLEN];
	uint64_t t;
	int r;

	luaL_checktype(L, 1, LUA_TSTRING);
	luaL_checktype(L, 2, LUA_TTABLE);
	if (!lua_isnoneornil(L, 3))
		luaL_checktype(L, 3, LUA_TTABLE);
	t = opt_vdf_t(L, lua_isnoneornil(L, 3) ? 0 : 3);
	lua_getfield(L, 2, "provider");
	if (tokey(L, -1, pk, HLEN))
		luaL_error(L, "keys.provider: expected a key of 32 bytes or 64 hex digits");
	lua_getfield(L, 2, "consumer");
	if (tokey(L, -1, ck, HLEN))
		luaL_error(L, "keys.consumer: expected a key of 32 bytes or 64 hex digits");
	lua_getfield(L, 2, "claim");
	if (lua_isnil(L, -1))
		memcpy(sk, pk, HLEN);
	else if (tokey(L, -1, sk, HLEN))
		luaL_error(L, "keys.claim: expected a key of 32 bytes or 64 hex digits");
	lua_pop(L, 3);
	p = lua_newuserdata(L, sizeof(*p));
	if (decode_proof(L, 1, p))
		return 2;
	r = wp_uptime_proof_verify(p, pk, ck, sk, t);
	if (r == WP_HB_OK) {
		lua_pushboolean(L, 1);
		return 1;
	}
	lua_pushboolean(L, 0);
	lua_pushstring(L, wp_hb_reason_name(r));
	return 2;
}

/* ---- VDF blocks ------------------------------------------------------------ */

/* wp.uptime.vdf_make(prev_hash, T) -> hex V (blocks for the delay) */
static int l_vdf_make(lua_State *L)
{
	uint8_t prev[HLEN], v[WP_HB_VDF_LEN];
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint64_t t;
	int rc;

	luaL_checknumber(L, 2);
	if (unhex_exact(s, len, prev, HLEN))
		return lwp_fail(L, "EINVAL", "prevHash: expected 64 hex digits");
	if (tocount(L, 2, &t) || !t)
		return lwp_fail(L, "ERANGE", "T must be an integer >= 1");
	rc = wp_hb_vdf_make(v, prev, t);
	if (rc)
		return lwp_fail_err(L, rc, "VDF evaluation failed");
	push_hex(L, v, sizeof(v));
	return 1;
}

/* wp.uptime.vdf_decode(hex V) -> { t =, y = hex, proof = hex } | nil, err */
static int l_vdf_decode(lua_State *L)
{
	uint8_t v[WP_HB_VDF_LEN];
	const uint8_t *y, *pi;
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	uint64_t t;

	if (unhex_exact(s, len, v, sizeof(v)) || wp_hb_vdf_decode(v, sizeof(v), &t, &y, &pi))
		return lwp_fail(L, "EINVAL", "not a VDF block (1056 hex digits, tag WP-VDF01)");
	lua_createtable(L, 0, 3);
	set_num(L, "t", (double)t);
	set_hex(L, "y", y, 256);
	set_hex(L, "proof", pi, 256);
	return 1;
}

/* ---- rotation records and attestations ----------------------------------- */

static const char *torotation(lua_State *L, int t, struct wp_uptime_rotation *r)
{
	static const char *const parties[] = { "provider", "consumer", NULL };
	static const char *const reasons[] = { "scheduled", "manual", "forced", NULL };
	uint64_t v;
	int64_t ts;
	int rs, rt;
	const char *s;

	if (!lua_istable(L, t))
		return "not a table";
	memset(r, 0, sizeof(*r));
	if (get_hexfield(L, t, "leaseId", r->lease_id, HLEN))
		return "leaseId: expected 64 hex digits";
	if (get_hexfield(L, t, "newKey", r->new_key, HLEN))
		return "newKey: expected 64 hex digits";
	if (get_hexfield(L, t, "prevHash", r->prev_hash, HLEN) < 0)
		return "prevHash: expected 64 hex digits";
	if (get_count(L, t, "index", &v) || v > UINT32_MAX)
		return "index: expected an integer 0 .. 2^32-1";
	r->index = (uint32_t)v;
	lua_getfield(L, t, "party");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
	for (int i = 0; parties[i]; i++)
		if (!strcmp(s, parties[i]))
			r->party = (uint8_t)(i + 1);
	lua_getfield(L, t, "reason");
	s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
	for (int i = 0; reasons[i]; i++)
		if (!strcmp(s, reasons[i]))
			r->reason = (uint8_t)(i + 1);
	lua_pop(L, 2);
	if (!r->party)
		return "party: expected \"provider\" or \"consumer\"";
	if (!r->reason)
		return "reason: expected \"scheduled\", \"manual\" or \"forced\"";
	rs = get_count(L, t, "effectiveSequence", &v);
	rt = get_ts(L, t, "effectiveTimestamp", &ts);
	if (rs < 0 || rt < 0 || rs + rt != 1)
		return "exactly one of effectiveSequence (number) and effectiveTimestamp (ns string)";
	r->effective_kind = rs == 0 ? WP_UPTIME_EFFECTIVE_SEQUENCE : WP_UPTIME_EFFECTIVE_TIMESTAMP;
	r->effective = rs == 0 ? v : (uint64_t)ts;
	return NULL;
}

/* wp.uptime.rotation_bytes(record) -> 127 bytes | nil, err */
static int l_rotation_bytes(lua_State *L)
{
	struct wp_uptime_rotation r;
	uint8_t b[WP_UPTIME_ROTATION_LEN];
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = torotation(L, 1, &r);
	if (why)
		return lwp_fail(L, "EINVAL", "rotation record %s", why);
	wp_uptime_rotation_bytes(&r, b);
	lua_pushlstring(L, (const char *)b, sizeof(b));
	return 1;
}

/* wp.uptime.rotation_hash(record) -> hex | nil, err */
static int l_rotation_hash(lua_State *L)
{
	struct wp_uptime_rotation r;
	uint8_t h[HLEN];
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	why = torotation(L, 1, &r);
	if (why)
		return lwp_fail(L, "EINVAL", "rotation record %s", why);
	wp_uptime_rotation_hash(&r, h);
	push_hex(L, h, HLEN);
	return 1;
}

/* wp.uptime.rotation_sign(record, secret) -> record (signature set) | nil, err */
static int l_rotation_sign(lua_State *L)
{
	struct wp_uptime_rotation r;
	uint8_t kb[WP_UPTIME_SECRET_LEN], h[HLEN], sig[SLEN];
	const uint8_t *sk;
	const char *why;
	int rc;

	luaL_checktype(L, 1, LUA_TTABLE);
	sk = checkkey(L, 2, WP_UPTIME_SECRET_LEN, kb);
	why = torotation(L, 1, &r);
	if (why)
		return lwp_fail(L, "EINVAL", "rotation record %s", why);
	wp_uptime_rotation_hash(&r, h);
	rc = wp_ed25519_sign(sig, h, HLEN, sk);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	lua_settop(L, 1);
	set_hex(L, "signature", sig, SLEN);
	return 1;
}

/* wp.uptime.rotation_verify(record, signer_pub) -> boolean | nil, err */
static int l_rotation_verify(lua_State *L)
{
	struct wp_uptime_rotation r;
	uint8_t pb[HLEN], h[HLEN], sig[SLEN];
	const uint8_t *pk;
	const char *why;

	luaL_checktype(L, 1, LUA_TTABLE);
	pk = checkkey(L, 2, WP_UPTIME_KEY_LEN, pb);
	why = torotation(L, 1, &r);
	if (why)
		return lwp_fail(L, "EINVAL", "rotation record %s", why);
	if (get_hexfield(L, 1, "signature", sig, SLEN))
		return lwp_fail(L, "EINVAL", "rotation record signature: expected 128 hex digits");
	wp_uptime_rotation_hash(&r, h);
	lua_pushboolean(L, wp_ed25519_verify(sig, h, HLEN, pk));
	return 1;
}

/* wp.uptime.attestation_digest(lease_id, timestamp) -> 32 bytes | nil, err */
static int l_attestation_digest(lua_State *L)
{
	uint8_t lease[HLEN], d[HLEN];
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	int64_t ts;

	if (lua_type(L, 2) != LUA_TSTRING)
		luaL_checknumber(L, 2);
	if (unhex_exact(s, len, lease, HLEN))
		return lwp_fail(L, "EINVAL", "leaseId: expected 64 hex digits");
	if (tots(L, 2, &ts))
		return lwp_fail(L, "EINVAL", "timestamp: expected a decimal string of Unix nanoseconds");
	wp_uptime_attestation_digest(lease, (uint64_t)ts, d);
	lua_pushlstring(L, (const char *)d, HLEN);
	return 1;
}

/* wp.uptime.attest(lease_id, timestamp, secret) -> { timestamp_ns, signer, sig } */
static int l_attest(lua_State *L)
{
	uint8_t lease[HLEN], d[HLEN], sig[SLEN], kb[WP_UPTIME_SECRET_LEN];
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	const uint8_t *sk;
	int64_t ts;
	int rc;

	if (lua_type(L, 2) != LUA_TSTRING)
		luaL_checknumber(L, 2);
	sk = checkkey(L, 3, WP_UPTIME_SECRET_LEN, kb);
	if (unhex_exact(s, len, lease, HLEN))
		return lwp_fail(L, "EINVAL", "leaseId: expected 64 hex digits");
	if (tots(L, 2, &ts))
		return lwp_fail(L, "EINVAL", "timestamp: expected a decimal string of Unix nanoseconds");
	wp_uptime_attestation_digest(lease, (uint64_t)ts, d);
	rc = wp_ed25519_sign(sig, d, HLEN, sk);
	if (rc)
		return lwp_fail_err(L, rc, "signing failed");
	lua_createtable(L, 0, 3);
	push_i64(L, ts);
	lua_setfield(L, -2, "timestamp_ns");
	set_hex(L, "signer", sk + 32, HLEN);
	set_hex(L, "sig", sig, SLEN);
	return 1;
}

/* wp.uptime.attestation_verify(att, lease_id) -> boolean | nil, err */
static int l_attestation_verify(lua_State *L)
{
	uint8_t lease[HLEN], d[HLEN], sig[SLEN], pub[HLEN];
	size_t len;
	const char *s;
	int64_t ts;

	luaL_checktype(L, 1, LUA_TTABLE);
	s = luaL_checklstring(L, 2, &len);
	if (unhex_exact(s, len, lease, HLEN))
		return lwp_fail(L, "EINVAL", "leaseId: expected 64 hex digits");
	if (get_ts(L, 1, "timestamp_ns", &ts))
		return lwp_fail(L, "EINVAL", "attestation timestamp_ns: expected a decimal string");
	if (get_hexfield(L, 1, "signer", pub, HLEN))
		return lwp_fail(L, "EINVAL", "attestation signer: expected 64 hex digits");
	if (get_hexfield(L, 1, "sig", sig, SLEN))
		return lwp_fail(L, "EINVAL", "attestation sig: expected 128 hex digits");
	wp_uptime_attestation_digest(lease, (uint64_t)ts, d);
	lua_pushboolean(L, wp_ed25519_verify(sig, d, HLEN, pub));
	return 1;
}

void lwp_open_uptime(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "build", l_build },
		{ "payload", l_payload },
		{ "sign", l_sign },
		{ "countersign", l_countersign },
		{ "hash", l_hash },
		{ "verify", l_verify },
		{ "verify_chain", l_verify_chain },
		{ "pack", l_pack },
		{ "unpack", l_unpack },
		{ "rollup", l_rollup },
		{ "epoch_make", l_epoch_make },
		{ "epoch_record", l_epoch_record },
		{ "epoch_hash", l_epoch_hash },
		{ "claim_make", l_claim_make },
		{ "claim_encode", l_claim_encode },
		{ "claim_decode", l_claim_decode },
		{ "claim_hash", l_claim_hash },
		{ "claim_verify", l_claim_verify },
		{ "claim_countersign", l_claim_countersign },
		{ "claim_verify_countersign", l_claim_verify_countersign },
		{ "proof_make", l_proof_make },
		{ "proof_decode", l_proof_decode },
		{ "proof_verify", l_proof_verify },
		{ "vdf_make", l_vdf_make },
		{ "vdf_decode", l_vdf_decode },
		{ "rotation_bytes", l_rotation_bytes },
		{ "rotation_hash", l_rotation_hash },
		{ "rotation_sign", l_rotation_sign },
		{ "rotation_verify", l_rotation_verify },
		{ "attestation_digest", l_attestation_digest },
		{ "attest", l_attest },
		{ "attestation_verify", l_attestation_verify },
		{ NULL, NULL },
	};
	static const char zero[2 * HLEN + 1] =
		"0000000000000000000000000000000000000000000000000000000000000000";

	lwp_subtable(L, "uptime", fns);
	lua_getfield(L, -1, "uptime");
	set_num(L, "EPOCH_BEATS", WP_UPTIME_EPOCH_BEATS);
	set_num(L, "CLAIM_EPOCHS", WP_UPTIME_CLAIM_EPOCHS);
	set_num(L, "CLAIM_BEATS", WP_UPTIME_CLAIM_BEATS);
	set_num(L, "CLAIM_LEN", WP_UPTIME_CLAIM_LEN);
	set_num(L, "EPOCH_RECORD_LEN", WP_UPTIME_EPOCH_RECORD_LEN);
	set_num(L, "ROTATION_LEN", WP_UPTIME_ROTATION_LEN);
	set_num(L, "PACKED_LEN", WP_HB_PACKED_FIXED);
	set_num(L, "VDF_BLOCK_LEN", WP_HB_VDF_LEN);
	lua_pushlstring(L, zero, 2 * HLEN);
	lua_setfield(L, -2, "ZERO_HASH");
	lua_createtable(L, WP_HB_REASON_COUNT - 1, 0);
	for (int i = 1; i < WP_HB_REASON_COUNT; i++) {
		lua_pushstring(L, wp_hb_reason_name(i));
		lua_rawseti(L, -2, i);
	}
	lua_setfield(L, -2, "reasons");
	lua_pop(L, 1);
}
