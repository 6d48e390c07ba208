-- SPDX-License-Identifier: MIT
--- Who owns a record in a state dir several host processes share.
--
-- Each host process is one instance: a random id plus the process that
-- holds it (pid, start time, boot id). Jobs in the store and live-worker
-- records carry their instance's id; a host cleans up after an instance
-- only when that instance is DEAD: its pid is gone, or the pid now names
-- another process (a different start time: field 22 of /proc/<pid>/stat),
-- or the machine has rebooted since (a different boot id).
--
--   local me = owner.self()            -- { id, pid, start, boot }
--   owner.alive(me.pid, me.start, me.boot) --> true
local host = require "workproof.host"

local io_open, tostring, tonumber = io.open, tostring, tonumber

local _M = {}

local function read_line(path)
  local f = io_open(path, "r")
  if not f then return nil end
  local s = f:read("*l")
  f:close()
  return s
end

--- Field 22 of /proc/<pid>/stat (start time in clock ticks since boot) as
-- a string, or nil when there is no such process. A pid plus its start
-- time names one process for good (pids are reused).
-- The second value is the process state (field 3: "Z" for a zombie).
function _M.starttime(pid)
  local s = read_line("/proc/" .. tostring(pid) .. "/stat")
  if not s then return nil end
  local rest = s:match("^%d+ %b() (.*)$")   -- comm may contain spaces
  if not rest then return nil end
  local i, state = 2, nil
  for field in rest:gmatch("%S+") do
    i = i + 1
    if i == 3 then state = field end
    if i == 22 then return field, state end
  end
  return nil
end

local boot_id
--- This machine's boot id ("" when the kernel does not say).
function _M.boot_id()
  boot_id = boot_id or read_line("/proc/sys/kernel/random/boot_id") or ""
  return boot_id
end

local me
--- This process's instance: { id = 32 hex, pid, start, boot }.
function _M.self()
  if not me then
    local f = assert(io_open("/dev/urandom", "rb"))
    local raw = f:read(16)
    f:close()
    local id = raw:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
    me = { id = id, pid = host.pid, start = _M.starttime(host.pid) or "?", boot = _M.boot_id() }
  end
  return me
end

--- Is the process (pid, start time, boot id) still running? A record
-- without a pid or start time names nobody alive; a zombie (killed, not
-- yet reaped by its parent) is dead.
function _M.alive(pid, start, boot)
  pid = tonumber(pid)
  if not pid or not start or start == "?" then return false end
  if boot and boot ~= "" and boot ~= _M.boot_id() then return false end
  local st, state = _M.starttime(pid)
  return st == tostring(start) and state ~= "Z" and state ~= "X"
end

local machine
--- This machine's host name (shown beside the instances in the store).
function _M.machine()
  machine = machine or read_line("/proc/sys/kernel/hostname") or "?"
  return machine
end

--- The text of an owner file: "pid start boot id".
function _M.format(o)
  return ("%d %s %s %s\n"):format(o.pid, o.start, o.boot ~= "" and o.boot or "-", o.id)
end

--- Parse an owner file's text; nil when malformed.
function _M.parse(s)
  local pid, start, boot, id = tostring(s or ""):match("^(%d+) (%S+) (%S+) (%x+)\n?$")
  if not pid then return nil end
  return { pid = tonumber(pid), start = start, boot = boot ~= "-" and boot or "", id = id }
end

return _M
