-- SPDX-License-Identifier: MIT
-- The controller under wrk (Debian's), against anchors measured in the same
-- run: /health vs a bare h2o handler; the 400 and 429 rejection paths;
-- end-to-end VALID verifications of a trivial Lua task; reloads under load;
-- RSS across 200 reloads.
local wp = require "workproof"
local h = require "helpers"

local DURATION = os.getenv("BENCH_WRK_SECONDS") or "3"

local function wrk(url, opts)
  opts = opts or {}
  local args = { "-t1", "-c" .. (opts.connections or 50), "-d" .. (opts.duration or DURATION), "--latency", url }
  if opts.body then
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(opts.body)
    f:close()
    table.insert(args, 1, "spec/bench/wrk/post.lua")
    table.insert(args, 1, "-s")
    args = { "-c", "WRK_BODY=" .. path .. " exec wrk " .. table.concat(args, " ") }
    local out = h.run("/bin/sh", args)
    os.remove(path)
    return out
  end
  return (h.run("/usr/bin/wrk", args))
end

local function rps(out) return tonumber(out:match("Requests/sec:%s*([%d%.]+)")) or 0 end

local function p99_ms(out)
  local v, unit = out:match("%s99%%%s+([%d%.]+)(%a+)")
  v = tonumber(v)
  if not v then return 1 / 0 end
  if unit == "us" then return v / 1000 elseif unit == "s" then return v * 1000 end
  return v
end

local function non2xx(out)
  return (tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0)
    + (tonumber(out:match("Socket errors: connect (%d+)")) or 0)
    + (tonumber(out:match("read (%d+), write")) or 0)
    + (tonumber(out:match("timeout (%d+)")) or 0)
end

local function median_of(n, fn)
  local xs = {}
  for i = 1, n do xs[i] = fn() end
  return require("bench.lib").median(xs)
end

local CONFIG = [[
return {
  state_dir = "@DIR@/var",
  policies = {
    task_types = {}, code_patterns = {}, worker_threshold = {},
    rate_limit = { config = { limit = %d } },
    circuit_breaker = {},
  },
}
]]

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return 0 end
  local kb = tonumber(f:read("*a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb or 0
end

return function(b)
  local rows = {}
  local reps = math.min(b.repeats, 3)

  -- /health vs bare h2o, alternating so both see the same machine load


  local srv = h.start_controller(CONFIG:format(1e9))
  local host = require "workproof.host"
  local bp = assert(host.process_spawn { file = b.program("bench_h2o_bare"), args = { "18599" }, timeout = 3600 })
  bp:read()
  local ours, anchor = {}, {}
  for i = 1, reps do
    ours[i] = rps(wrk(srv.url .. "/health"))
    anchor[i] = rps(wrk("http://127.0.0.1:18599/health"))
  end
  bp:kill(15)
  bp:wait()
  rows[#rows + 1] = b.row { name = "controller GET /health", value = b.median(ours), unit = "req/s",
    anchor_name = "bare h2o handler", anchor = b.median(anchor), goal = 0.6 }

  -- the 400 rejection path
  local invalid = '{"taskType":"code-execution","code":"x","expectedHash":"zz"}'
  rows[#rows + 1] = b.row { name = "POST /verify -> 400 (schema)", unit = "req/s",
    value = median_of(reps, function() return rps(wrk(srv.url .. "/verify", { body = invalid })) end),
    goal = 30000, goal_kind = "min" }

  -- end-to-end VALID verifications (a trivial Lua task in the sandbox)
  local valid = ('{"taskType":"code-execution","language":"lua","code":"print(2 + 2)","expectedHash":"%s"}')
    :format(wp.hex(wp.sha256("4")))
  local e2e = wrk(srv.url .. "/verify", { body = valid, connections = 4, duration = 5 })
  rows[#rows + 1] = b.row { name = "VALID verifications (Lua, sandbox)", unit = "req/s", value = rps(e2e),
    goal = 150, goal_kind = "min" }
  rows[#rows + 1] = b.row { name = "VALID verification p99 latency", unit = "ms", value = p99_ms(e2e),
    goal = 50, goal_kind = "max" }
  rows[#rows + 1] = b.row { name = "VALID run: non-2xx responses", unit = "", value = non2xx(e2e),
    goal = 0, goal_kind = "max" }

  -- a reload every second under load: zero failed requests
  local stop = false
  local reloads = 0
  host.spawn(function()
    while not stop do
      host.sleep(1)
      if not stop then
        h.http("POST", srv.url .. "/admin/reload")
        reloads = reloads + 1
      end
    end
  end)
  local under = wrk(srv.url .. "/health", { duration = 5 })
  stop = true
  rows[#rows + 1] = b.row { name = ("failed requests across %d reloads"):format(reloads), unit = "",
    value = non2xx(under), goal = 0, goal_kind = "max" }

  -- RSS flat across 200 reloads
  local pid = srv.proc.pid
  for _ = 1, 20 do h.http("POST", srv.url .. "/admin/reload") end
  collectgarbage()
  local before = rss_kb(pid)
  for _ = 1, 200 do h.http("POST", srv.url .. "/admin/reload") end
  local after = rss_kb(pid)
  rows[#rows + 1] = b.row { name = "RSS after 200 reloads / before", unit = "", value = after / before,
    goal = 1.10, goal_kind = "max" }
  h.stop(srv)

  -- the 429 path: a limit of 1 request per window (the limiter sees only
  -- well-formed requests: the flow validates first)
  local limited = h.start_controller(CONFIG:format(1))
  rows[#rows + 1] = b.row { name = "POST /verify -> 429 (rate limited)", unit = "req/s",
    value = median_of(reps, function() return rps(wrk(limited.url .. "/verify", { body = valid })) end),
    goal = 30000, goal_kind = "min" }
  h.stop(limited)
  return rows
end
