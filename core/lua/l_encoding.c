/* SPDX-License-Identifier: MIT */
/* wp.hex, wp.unhex, wp.base64.encode, wp.base64.decode */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lwp.h"
#include "workproof/common.h"
#include "workproof/encoding.h"

/* Outputs up to this size are built on the C stack; larger ones in a
 * GC-owned userdata, so nothing leaks if pushing the result raises. */
#define SCRATCH 1024

static void *scratch(lua_State *L, size_t n, void *stackbuf)
{
	return n <= SCRATCH ? stackbuf : lua_newuserdata(L, n);
}

/* "0x67" style, or "'g'" when printable: for error messages about untrusted
 * text, which must not echo control bytes. */
static const char *show_char(char *tmp, size_t tmpsz, unsigned char c)
{
	if (c >= 0x21 && c < 0x7f)
		snprintf(tmp, tmpsz, "'%c'", c);
	else
		snprintf(tmp, tmpsz, "0x%02x", c);
	return tmp;
}

static int l_hex(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	char stackbuf[SCRATCH];
	char *out;

	if (len > SIZE_MAX / 2)
		return luaL_argerror(L, 1, "string too long");
	out = scratch(L, 2 * len, stackbuf);
	wp_hex_encode(out, s, len);
	lua_pushlstring(L, out, 2 * len);
	return 1;
}

static int l_unhex(lua_State *L)
{
	size_t len, n, pos = 0;
	const char *s = luaL_checklstring(L, 1, &len);
	uint8_t stackbuf[SCRATCH];
	uint8_t *out = scratch(L, len / 2, stackbuf);
	char c[8];

	if (wp_hex_decode(out, len / 2, &n, s, len, &pos) != WP_OK) {
		if (pos < len)
			return lwp_fail(L, "EINVAL", "non-hex character %s at offset %zu",
					show_char(c, sizeof(c), (unsigned char)s[pos]), pos);
		return lwp_fail(L, "EINVAL", "odd number of hex digits (%zu)",
				len - (len >= 2 && s[0] == '0' && (s[1] | 0x20) == 'x' ? 2 : 0));
	}
	lua_pushlstring(L, (const char *)out, n);
	return 1;
}

/* The optional variant argument: nil or "std", or "url"; anything else is
 * a programming error and raises. */
static int check_variant(lua_State *L, int idx)
{
	const char *v = luaL_optstring(L, idx, "std");

	if (!strcmp(v, "std"))
		return WP_B64_STD;
	if (!strcmp(v, "url"))
		return WP_B64_URL;
	return luaL_argerror(L, idx, "base64 variant must be \"std\" or \"url\"");
}

static int l_b64_encode(lua_State *L)
{
	size_t len, need, n;
	const char *s = luaL_checklstring(L, 1, &len);
	int variant = check_variant(L, 2);
	char stackbuf[SCRATCH];
	char *out;

	need = wp_base64_encoded_len(len, variant);
	if (len && !need)
		return luaL_argerror(L, 1, "string too long");
	out = scratch(L, need + 1, stackbuf);
	if (wp_base64_encode(out, need + 1, &n, s, len, variant) != WP_OK)
		return luaL_error(L, "base64 encode: internal size error");
	lua_pushlstring(L, out, n);
	return 1;
}

static int l_b64_decode(lua_State *L)
{
	size_t len, n = 0, pos = 0, cap;
	const char *s = luaL_checklstring(L, 1, &len);
	int variant = check_variant(L, 2);
	uint8_t stackbuf[SCRATCH];
	uint8_t *out;
	char c[8];

	cap = wp_base64_decoded_maxlen(len);
	out = scratch(L, cap, stackbuf);
	if (wp_base64_decode(out, cap, &n, s, len, variant, &pos) != WP_OK) {
		if (pos < len)
			return lwp_fail(L, "EINVAL", "malformed %s base64 at offset %zu (%s)",
					variant == WP_B64_URL ? "url-safe" : "standard", pos,
					show_char(c, sizeof(c), (unsigned char)s[pos]));
		return lwp_fail(L, "EINVAL", "malformed %s base64: %s",
				variant == WP_B64_URL ? "url-safe" : "standard",
				variant == WP_B64_URL ?
				"ends inside a group or has non-zero unused bits" :
				"missing padding, ends inside a group or has non-zero unused bits");
	}
	lua_pushlstring(L, (const char *)out, n);
	return 1;
}

void lwp_open_encoding(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "hex", l_hex },
		{ "unhex", l_unhex },
		{ NULL, NULL },
	};
	static const luaL_Reg b64[] = {
		{ "encode", l_b64_encode },
		{ "decode", l_b64_decode },
		{ NULL, NULL },
	};

	lwp_setfuncs(L, fns);
	lwp_subtable(L, "base64", b64);
}
