-- SPDX-License-Identifier: MIT
--- logscan throughput over a 100 MB synthetic log in 64 KiB chunks.
-- C API figures come from spec/bench/bench_logscan.c (default mode, and
-- search = 64 for timestamped lines); the anchor is a plain memchr pass
-- counting newlines over the same buffer, measured in the same run. The
-- Lua API figure feeds the same log (written out by the C program) from
-- Lua, 64 KiB strings at a time, decoding the results.
local wp = require "workproof"

local MB = tonumber(os.getenv("LOGSCAN_BENCH_MB") or "100")
local CHUNK = 65536

local function parse(out)
  local t = {}
  for k, v in out:gmatch("(%S+) (%S+)") do t[k] = tonumber(v) end
  return t
end

return function(b)
  local prog = b.program("bench_logscan")
  local c = parse(b.exec(("%s --mb %d --repeats %d"):format(prog, MB, b.repeats)))

  -- the same log through the Lua API
  local path = os.tmpname()
  b.exec(("%s --mb %d --write %s"):format(prog, MB, path))
  local f = assert(io.open(path, "rb"))
  local log = f:read("*a")
  f:close()
  os.remove(path)
  local chunks = {}
  for i = 1, #log, CHUNK do chunks[#chunks + 1] = log:sub(i, i + CHUNK - 1) end
  log = nil -- luacheck: ignore 311 (let the GC take the whole copy)
  collectgarbage()

  local rates = {}
  for r = 1, b.repeats do
    local sc = wp.logscan.new()
    local t0 = wp.now()
    for i = 1, #chunks do sc:feed(chunks[i]) end
    sc:finish()
    rates[r] = MB * 1048576 / (wp.now() - t0) / 1e9
    local st = sc:stats()
    if st.candidates ~= c.results or st.lines ~= c.lines or not sc:result() then
      error(("logscan bench: Lua scan disagrees with C: %d candidates, %d lines"):format(
        st.candidates, st.lines))
    end
  end
  local lua_gbps = b.median(rates)

  return {
    b.row { name = "logscan C, 64 KiB chunks (GB/s)", value = c.scan_gbps, unit = "GB/s",
            anchor_name = "memchr newline pass", anchor = c.memchr_gbps,
            goal = 1, goal_kind = "min" },
    b.row { name = "logscan C, search = 64 (GB/s)", value = c.search_gbps, unit = "GB/s",
            anchor_name = "memchr newline pass", anchor = c.memchr_gbps,
            goal = 1, goal_kind = "min" },
    b.row { name = "logscan Lua API, 64 KiB chunks (GB/s)", value = lua_gbps, unit = "GB/s",
            anchor_name = "logscan C, 64 KiB chunks", anchor = c.scan_gbps,
            goal = 1, goal_kind = "min" },
  }
end
