-- SPDX-License-Identifier: MIT
--- This process's resource figures for the standard Prometheus process_*
-- metrics (the names every client library exports, so stock dashboards
-- work): CPU time from getrusage(2) (every thread: the loop and the libuv
-- pool), resident memory and start time from /proc/self/stat (proc(5)),
-- the boot time from /proc/stat.
--
--   procstat.sample() -> { cpu_seconds =, resident_bytes =, virtual_bytes =,
--                          start_time = } or nil, "EPROC: text", "EPROC"
--   procstat.parse_stat(text), procstat.parse_btime(text): the parsers, for specs
local ffi = require "ffi"

local tonumber, io_open = tonumber, io.open

local _M = {}

ffi.cdef [[
struct wp_procstat_timeval { long tv_sec; long tv_usec; };
struct wp_procstat_rusage {
  struct wp_procstat_timeval ru_utime, ru_stime;
  long ru_rest[14];
};
int getrusage(int who, struct wp_procstat_rusage *usage);
long sysconf(int name);
]]

local RUSAGE_SELF = 0
local SC_CLK_TCK, SC_PAGESIZE = 2, 30   -- glibc's <bits/confname.h> (Linux, every arch)
local ticks = tonumber(ffi.C.sysconf(SC_CLK_TCK))
local page = tonumber(ffi.C.sysconf(SC_PAGESIZE))
local ru = ffi.new("struct wp_procstat_rusage")

local function fail(text) return nil, "EPROC: " .. text, "EPROC" end

--- The fields of a /proc/<pid>/stat line: utime, stime, starttime (clock
-- ticks), vsize (bytes), rss (pages). The command name (field 2) is in
-- parentheses and may hold spaces and parentheses itself: the fields
-- start after the LAST ')'.
function _M.parse_stat(text)
  if type(text) ~= "string" then error("parse_stat: string expected", 2) end
  local rest = text:match("^%d+ %(.*%) (.*)$")
  if not rest then return fail("/proc/self/stat: no 'pid (comm)' prefix") end
  local f = {}
  for w in rest:gmatch("%S+") do f[#f + 1] = w end
  -- f[1] is field 3 (state): field N is f[N - 2]
  if #f < 22 then return fail("/proc/self/stat: " .. (#f + 2) .. " fields, expected at least 24") end
  local out = {}
  for name, n in pairs({ utime = 14, stime = 15, starttime = 22, vsize = 23, rss = 24 }) do
    local v = f[n - 2]
    if not v:match("^%d+$") then return fail(("/proc/self/stat: field %d (%s) is not a count"):format(n, name)) end
    out[name] = tonumber(v)
  end
  return out
end

--- The boot time (Unix seconds) from /proc/stat's "btime" line.
function _M.parse_btime(text)
  if type(text) ~= "string" then error("parse_btime: string expected", 2) end
  local b = text:match("\nbtime (%d+)\n") or text:match("^btime (%d+)\n")
  if not b then return fail("/proc/stat: no btime line") end
  return tonumber(b)
end

local function slurp(path)
  local f, err = io_open(path, "rb")
  if not f then return fail(tostring(err)) end
  local s = f:read("*a")
  f:close()
  return s
end

local btime   -- constant for the life of the system

--- The current figures (see the module comment).
function _M.sample()
  if ffi.C.getrusage(RUSAGE_SELF, ru) ~= 0 then return fail("getrusage failed") end
  local cpu = tonumber(ru.ru_utime.tv_sec) + tonumber(ru.ru_utime.tv_usec) / 1e6
    + tonumber(ru.ru_stime.tv_sec) + tonumber(ru.ru_stime.tv_usec) / 1e6
  local text, err, code = slurp("/proc/self/stat")
  if not text then return nil, err, code end
  local st
  st, err, code = _M.parse_stat(text)
  if not st then return nil, err, code end
  if not btime then
    text, err, code = slurp("/proc/stat")
    if not text then return nil, err, code end
    btime, err, code = _M.parse_btime(text)
    if not btime then return nil, err, code end
  end
  return { cpu_seconds = cpu, resident_bytes = st.rss * page, virtual_bytes = st.vsize,
    start_time = btime + st.starttime / ticks }
end

return _M
