/* SPDX-License-Identifier: MIT */
#include "workproof/common.h"

const char *wp_strerror(int code)
{
	switch (code) {
	case WP_OK:      return "OK";
	case WP_EINVAL:  return "EINVAL";
	case WP_ENOMEM:  return "ENOMEM";
	case WP_ERANGE:  return "ERANGE";
	case WP_ECRYPTO: return "ECRYPTO";
	case WP_ETRUNC:  return "ETRUNC";
	case WP_ENOSPC:  return "ENOSPC";
	case WP_EPROTO:  return "EPROTO";
	default:         return "EUNKNOWN";
	}
}

int wp_memeq_ct(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d;
}
