/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the ed25519 binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_ed25519(lua_State *L)
{
	(void)L;
}
