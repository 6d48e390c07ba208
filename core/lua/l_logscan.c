/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the logscan binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_logscan(lua_State *L)
{
	(void)L;
}
