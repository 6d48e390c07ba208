/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the rlp binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_rlp(lua_State *L)
{
	(void)L;
}
