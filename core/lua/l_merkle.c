/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the merkle binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_merkle(lua_State *L)
{
	(void)L;
}
