-- SPDX-License-Identifier: MIT
--- File-system calls of the host (core/host/l_fs.c), instead of shell-outs:
-- mkdir, rmdir, scandir, rename, unlink, stat; in a host coroutine they run
-- on the thread pool and yield. Errors: nil, "ECODE: op path: text", "ECODE".
local host = require "workproof.host"

local _M = {
  mkdir = host.mkdir, rmdir = host.rmdir, scandir = host.scandir,
  rename = host.rename, unlink = host.unlink, stat = host.stat,
}

--- mkdir -p: create path and its missing parents (mode for the new ones,
-- default 0755). True when path is (now) a directory.
function _M.mkdir_p(path, mode)
  local cur = path:sub(1, 1) == "/" and "" or "."
  for part in path:gmatch("[^/]+") do
    cur = cur .. "/" .. part
    local ok, err, code = host.mkdir(cur, mode)
    if not ok and code ~= "EEXIST" then return nil, err, code end
  end
  local st, err, code = host.stat(path)
  if not st then return nil, err, code end
  if st.type ~= "directory" then return nil, "ENOTDIR: mkdir " .. path .. ": not a directory", "ENOTDIR" end
  return true
end

--- A whole file's bytes, or nil and the error (small files: config,
-- policies, deployments; read synchronously).
function _M.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

--- The directory part of a path ("." for a bare name).
function _M.dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

return _M
