/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the evm binding (ABI, transactions, EIP-712) is being written (replace this whole file). */
#include "lwp.h"

void lwp_open_evm(lua_State *L)
{
	(void)L;
}
