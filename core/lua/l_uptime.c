/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the uptime binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_uptime(lua_State *L)
{
	(void)L;
}
