-- SPDX-License-Identifier: MIT
--- Benchmark helpers shared by spec/bench/*_bench.lua (driven by run.lua).
--
-- A bench module returns `function(b) return { b.row{...}, ... } end`.
-- Every figure is a median over repeats; every row names its anchor, which
-- is measured in the same run, and the goal for value/anchor (or for the
-- value itself when the anchor is a fixed goal).
local wp = require "workproof"

local _M = {}

_M.build = os.getenv("WORKPROOF_BUILD") or "build"
_M.repeats = tonumber(os.getenv("BENCH_REPEATS") or "5")

function _M.median(xs)
  local t = {}
  for i = 1, #xs do t[i] = xs[i] end
  table.sort(t)
  local n = #t
  if n == 0 then return 0 / 0 end
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

--- Median rate of fn(n) (n operations per call), in operations per second.
-- Calibrates n so that one repeat takes about min_time seconds.
function _M.rate(fn, opts)
  opts = opts or {}
  local min_time = opts.min_time or 0.3
  local n = opts.n or 1
  while true do
    local t0 = wp.now()
    fn(n)
    local dt = wp.now() - t0
    if dt >= min_time / 4 or opts.n then
      n = math.max(1, math.floor(n * min_time / math.max(dt, 1e-9)))
      break
    end
    n = n * 4
  end
  if opts.n then n = opts.n end
  local rates = {}
  for i = 1, opts.repeats or _M.repeats do
    local t0 = wp.now()
    fn(n)
    rates[i] = n / (wp.now() - t0)
  end
  return _M.median(rates), rates
end

--- Run a shell command and return its stdout (raises on failure).
function _M.exec(cmd)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  if not ok then error(("command failed (%s): %s"):format(tostring(code), cmd), 2) end
  return out
end

--- Path of a C bench program built from spec/bench/<name>.c
function _M.program(name)
  return _M.build .. "/" .. name
end

--- A result row. Fields: name, value, unit, anchor_name, anchor, goal,
-- goal_kind ("ratio": value/anchor >= goal, the default; "ratio_max":
-- value/anchor <= goal (a cost); "min": value >= goal; "max": value <= goal;
-- "report": no goal); note: a text printed after the goal.
function _M.row(t)
  t.goal_kind = t.goal_kind or (t.anchor and "ratio" or (t.goal and "min" or "report"))
  -- (a caller may give the ratio itself: a median of paired rounds)
  if t.ratio == nil and t.anchor and t.anchor ~= 0 then t.ratio = t.value / t.anchor end
  if t.goal_kind == "ratio" then t.pass = t.ratio and t.ratio >= t.goal
  elseif t.goal_kind == "ratio_max" then t.pass = t.ratio and t.ratio <= t.goal
  elseif t.goal_kind == "min" then t.pass = t.value >= t.goal
  elseif t.goal_kind == "max" then t.pass = t.value <= t.goal
  end
  return t
end

--- wrk (Debian's) against url for BENCH_WRK_SECONDS (3) seconds; returns
-- its output. opts: connections (50), duration, body (POSTed as JSON:
-- spec/bench/wrk/post.lua), script (another script for the body, e.g.
-- spec/bench/wrk/verdicts.lua, which reads every reply).
function _M.wrk(url, opts)
  opts = opts or {}
  local h = require "helpers"
  local args = { "-t1", "-c" .. (opts.connections or 50), "-d" .. (opts.duration or os.getenv("BENCH_WRK_SECONDS")
    or "3"), "--latency", url }
  if opts.body then
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(opts.body)
    f:close()
    table.insert(args, 1, opts.script or "spec/bench/wrk/post.lua")
    table.insert(args, 1, "-s")
    args = { "-c", "WRK_BODY=" .. path .. " exec wrk " .. table.concat(args, " ") }
    local out = h.run("/bin/sh", args)
    os.remove(path)
    return out
  end
  return (h.run("/usr/bin/wrk", args))
end

--- Requests per second of a wrk output.
function _M.wrk_rps(out) return tonumber(out:match("Requests/sec:%s*([%d%.]+)")) or 0 end

--- A latency percentile (50, 75, 90 or 99: what wrk --latency prints) of a
-- wrk output, in ms.
function _M.wrk_pct_ms(out, pct)
  local v, unit = out:match("%s" .. pct .. "%%%s+([%d%.]+)(%a+)")
  v = tonumber(v)
  if not v then return 1 / 0 end
  if unit == "us" then return v / 1000 elseif unit == "s" then return v * 1000 end
  return v
end

--- The p99 latency of a wrk --latency output, in ms.
function _M.wrk_p99_ms(out) return _M.wrk_pct_ms(out, 99) end

--- Failed requests of a wrk output: non-2xx replies and socket errors.
function _M.wrk_errors(out)
  return (tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0)
    + (tonumber(out:match("Socket errors: connect (%d+)")) or 0)
    + (tonumber(out:match("read (%d+), write")) or 0)
    + (tonumber(out:match("timeout (%d+)")) or 0)
end

return _M
