-- SPDX-License-Identifier: MIT
--- The workproof Lua library: the documented facade (docs/lua-api.md).
--
-- Everything here comes from the C core ("workproof.core", pure synchronous
-- primitives) or from the host ("workproof.host", loop-bound functions that
-- exist only inside the `workproof` executable). Under plain luajit the
-- loop-bound names raise a clear error instead of being absent.

local core = require "workproof.core"

local pairs, type, error, pcall, require = pairs, type, error, pcall, require

local _M = {}

for k, v in pairs(core) do
  if type(v) == "table" then
    local t = {}
    for kk, vv in pairs(v) do t[kk] = vv end
    _M[k] = t
  else
    _M[k] = v
  end
end

-- areas whose record formats (JSON shapes, hex, decimal strings) live in
-- Lua over a bytes-only binding: the Lua module replaces the raw table
_M.uptime = require "workproof.uptime"
_M.logscan = require "workproof.logscan"
-- the JSON binding's face is require "workproof.json" (not in the facade)
_M.json = nil

local has_host, host = pcall(require, "workproof.host")

local function needs_host(name)
  return function()
    error("wp." .. name .. ": needs the workproof host (run under `workproof run`)", 2)
  end
end

for _, name in pairs({ "sleep", "spawn", "now", "time", "in_coroutine", "stop" }) do
  _M[name] = has_host and host[name] or needs_host(name)
end

-- loop-bound libraries of the trusted tier, only where the loop exists
if has_host then
  _M.worker = require "workproof.worker"
  _M.rpc = require "workproof.rpc"
  -- long VDF evaluations run on the libuv thread pool
  _M.vdf = _M.vdf or {}
  _M.vdf.eval_async = host.vdf_eval
end

_M.version = has_host and host.version or "0.1.0"
_M.hosted = has_host

return _M
