/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the secp256k1 binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_secp256k1(lua_State *L)
{
	(void)L;
}
