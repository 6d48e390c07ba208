/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the encoding binding is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_encoding(lua_State *L)
{
	(void)L;
}
