/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the vdf binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_vdf(lua_State *L)
{
	(void)L;
}
