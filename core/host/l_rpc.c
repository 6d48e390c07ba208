/* SPDX-License-Identifier: MIT */
/* PLACEHOLDER: the JSON-RPC / HTTP client on libcurl multi is being written (replace this whole file). */
#include "host.h"

void lwp_host_open_rpc(lua_State *L)
{
	(void)L;
}
