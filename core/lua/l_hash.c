/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the hash binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_hash(lua_State *L)
{
	(void)L;
}
