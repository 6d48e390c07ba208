/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "workproof/common.h"
#include "workproof/eth.h"
#include "workproof/hash.h"

static const char hexdigits[] = "0123456789abcdef";

int wp_eth_address(uint8_t addr[WP_ETH_ADDR_LEN], const uint8_t pub[65])
{
	uint8_t h[WP_KECCAK256_LEN];

	if (pub[0] != 0x04)
		return WP_EINVAL;
	wp_keccak256(pub + 1, 64, h);
	memcpy(addr, h + WP_KECCAK256_LEN - WP_ETH_ADDR_LEN, WP_ETH_ADDR_LEN);
	return WP_OK;
}

/* out[0..40) = EIP-55 digits of addr (no prefix, no NUL) */
static void checksum_digits(char out[40], const uint8_t addr[WP_ETH_ADDR_LEN])
{
	uint8_t h[WP_KECCAK256_LEN];

	/* the checksum hashes the lowercase ASCII hex, not the raw bytes */
	for (int i = 0; i < WP_ETH_ADDR_LEN; i++) {
		out[2 * i] = hexdigits[addr[i] >> 4];
		out[2 * i + 1] = hexdigits[addr[i] & 15];
	}
	wp_keccak256(out, 40, h);
	for (int i = 0; i < 40; i++) {
		unsigned nib = (i & 1) ? (h[i / 2] & 15) : (h[i / 2] >> 4);

		if (out[i] >= 'a' && nib >= 8)
			out[i] -= 'a' - 'A';
	}
}

void wp_eth_checksum(char out[WP_ETH_ADDR_HEX_LEN + 1],
		     const uint8_t addr[WP_ETH_ADDR_LEN])
{
	out[0] = '0';
	out[1] = 'x';
	checksum_digits(out + 2, addr);
	out[WP_ETH_ADDR_HEX_LEN] = '\0';
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int wp_eth_parse_address(uint8_t addr[WP_ETH_ADDR_LEN], const char *s,
			 size_t len)
{
	int lower = 0, upper = 0;
	char want[40];

	if (len == 42 && s[0] == '0' && s[1] == 'x') {
		s += 2;
		len -= 2;
	}
	if (len != 40)
		return WP_EINVAL;
	for (int i = 0; i < 40; i += 2) {
		int hi = hexval(s[i]), lo = hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return WP_EINVAL;
		addr[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	for (int i = 0; i < 40; i++) {
		lower |= s[i] >= 'a';
		upper |= s[i] >= 'A' && s[i] <= 'F';
	}
	if (!(lower && upper))
		return WP_OK;	/* single case: no checksum to check */
	checksum_digits(want, addr);
	return memcmp(want, s, 40) ? WP_EPROTO : WP_OK;
}
