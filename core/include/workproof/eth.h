/* SPDX-License-Identifier: MIT */
/**
 * \file eth.h
 * \brief Ethereum addresses: derivation from a public key and the EIP-55
 *        mixed-case checksum encoding.
 *
 * Everything here works on caller buffers and allocates nothing.
 */
#ifndef WORKPROOF_ETH_H
#define WORKPROOF_ETH_H

#include <stddef.h>
#include <stdint.h>

#define WP_ETH_ADDR_LEN 20
/** "0x" + 40 hex digits (without the terminating NUL) */
#define WP_ETH_ADDR_HEX_LEN 42

/**
 * \brief Address of an uncompressed secp256k1 public key: the last 20 bytes
 *        of Keccak-256 over the 64 bytes after the 0x04 prefix.
 *
 * Only the prefix is checked, not that (X, Y) lies on the curve: keys come
 * from wp_secp256k1_recover()/_pubkey(), which only produce curve points.
 * \param addr out: 20 bytes (caller's buffer)
 * \return WP_OK or WP_EINVAL when pub[0] != 0x04
 */
int wp_eth_address(uint8_t addr[WP_ETH_ADDR_LEN], const uint8_t pub[65]);

/**
 * \brief EIP-55 encoding of a 20-byte address.
 * \param out out: "0x" + 40 mixed-case hex digits + NUL (43 bytes, caller's)
 */
void wp_eth_checksum(char out[WP_ETH_ADDR_HEX_LEN + 1],
		     const uint8_t addr[WP_ETH_ADDR_LEN]);

/**
 * \brief Parse a textual address: 40 hex digits with an optional "0x".
 *
 * All-lowercase and all-uppercase digits carry no checksum and are accepted
 * as they are; mixed case must be the exact EIP-55 encoding.
 * \param addr out: 20 bytes (caller's buffer; undefined on failure)
 * \return WP_OK; WP_EINVAL for a wrong length, prefix or non-hex digit;
 *         WP_EPROTO for mixed case that fails the checksum
 */
int wp_eth_parse_address(uint8_t addr[WP_ETH_ADDR_LEN], const char *s,
			 size_t len);

#endif
