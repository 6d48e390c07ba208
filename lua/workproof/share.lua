-- SPDX-License-Identifier: MIT
--- Where a data file of the product is: in the source tree, next to the
-- trusted library dir <repo>/lua; installed, under the prefix
-- (<prefix>/share/lua/5.1 or <prefix>/share/workproof/lua hold the
-- library, the host knows its prefix: docs/operations.md, "Installing").
-- Needs no host (plain luajit loads workproof.openapi too).
--
--   share.locate(source_rel, installed_rel) -> the first path that exists,
--     else the source tree's
local ipairs, pcall, type = ipairs, pcall, type

local _M = {}

local src = debug.getinfo(1, "S").source:sub(2)
local lua_dir = src:match("^(.*)/workproof/share%.lua$") or "."

function _M.locate(source_rel, installed_rel)
  local candidates = { lua_dir .. "/../" .. source_rel }
  local ok, host = pcall(require, "workproof.host")
  if ok and type(host) == "table" and host.prefix then
    candidates[#candidates + 1] = host.prefix .. "/" .. installed_rel
  end
  local prefix = lua_dir:match("^(.*)/share/lua/5%.1$") or lua_dir:match("^(.*)/share/workproof/lua$")
  if prefix then candidates[#candidates + 1] = prefix .. "/" .. installed_rel end
  for _, c in ipairs(candidates) do
    local f = io.open(c, "rb")
    if f then f:close() return c end
  end
  return candidates[1]
end

return _M
