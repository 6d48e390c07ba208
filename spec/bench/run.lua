-- SPDX-License-Identifier: MIT
--- make bench: runs every spec/bench/*_bench.lua (or those named in arg) and
-- prints each figure beside its anchor. Exit 0 always unless a bench errors:
-- goals are reported (PASS / MISS), not enforced, since machines differ. It
-- exits as soon as the table is printed.
package.path = "spec/?.lua;" .. package.path
local b = require "bench.lib"

local names = {}
for i = 1, #arg do names[#names + 1] = arg[i] end
if #names == 0 then
  local p = io.popen("ls spec/bench/*_bench.lua 2>/dev/null")
  for f in p:lines() do names[#names + 1] = f:match("([%w_]+)_bench%.lua$") end
  p:close()
end

local function fmt(v, unit)
  if v == nil then return "-" end
  local s
  if v >= 1e9 then s = ("%.2f G"):format(v / 1e9)
  elseif v >= 1e6 then s = ("%.2f M"):format(v / 1e6)
  elseif v >= 1e3 then s = ("%.2f k"):format(v / 1e3)
  else s = ("%.3g "):format(v) end
  return s .. (unit or "")
end

local failed = 0
io.write(("%-46s %14s   %-28s %14s %8s  %s\n"):format(
  "benchmark (median of " .. b.repeats .. ")", "value", "anchor", "anchor value", "ratio", "goal"))
for _, name in ipairs(names) do
  local ok, rows = pcall(function() return require("bench." .. name .. "_bench")(b) end)
  if not ok then
    failed = failed + 1
    io.write(("%-46s ERROR %s\n"):format(name, tostring(rows)))
  else
    for _, r in ipairs(rows) do
      local goal
      if r.goal_kind == "ratio" then goal = (">= %.2f"):format(r.goal)
      elseif r.goal_kind == "ratio_max" then goal = ("<= %.2f"):format(r.goal)
      elseif r.goal_kind == "min" then goal = ">= " .. fmt(r.goal, r.unit)
      elseif r.goal_kind == "max" then goal = "<= " .. fmt(r.goal, r.unit)
      else goal = "(reported)" end
      if r.pass ~= nil then goal = goal .. (r.pass and "  PASS" or "  MISS") end
      if r.note then goal = goal .. "  " .. r.note end
      io.write(("%-46s %14s   %-28s %14s %8s  %s\n"):format(r.name, fmt(r.value, r.unit),
        r.anchor_name or "-", fmt(r.anchor, r.anchor_unit or r.unit),
        r.ratio and ("%.3f"):format(r.ratio) or "-", goal))
    end
  end
  io.flush()
end
-- The table is complete: stop here rather than when the loop goes idle. A
-- full `make bench` once sat idle after its last row, kept alive by
-- something a group left behind (not reproduced since); say what is known.
local host = require "workproof.host"
local active = host.http_active()
if active > 0 then io.write(("(bench: %d HTTP transfer(s) still in flight at the end)\n"):format(active)) end
io.flush()
require("workproof").stop(failed > 0 and 1 or 0)
