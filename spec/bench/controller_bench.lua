-- SPDX-License-Identifier: MIT
-- The controller under wrk (Debian's), against anchors measured in the same
-- run: /health vs a bare h2o handler; the 400 and 429 rejection paths;
-- reloads under load; RSS across 200 reloads. End-to-end verifications:
-- spec/bench/e2e_bench.lua.
local wp = require "workproof"
local h = require "helpers"
local b_lib = require "bench.lib"

local wrk, rps, non2xx = b_lib.wrk, b_lib.wrk_rps, b_lib.wrk_errors

local function median_of(n, fn)
  local xs = {}
  for i = 1, n do xs[i] = fn() end
  return b_lib.median(xs)
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
  -- rounds of BENCH_HEALTH_SECONDS (10): long enough for a stable p99
  local ours, anchor, ours99, anchor99 = {}, {}, {}, {}
  local secs = os.getenv("BENCH_HEALTH_SECONDS") or "10"
  for i = 1, reps do
    local o = wrk(srv.url .. "/health", { duration = secs })
    local a = wrk("http://127.0.0.1:18599/health", { duration = secs })
    ours[i], ours99[i] = rps(o), b_lib.wrk_p99_ms(o)
    anchor[i], anchor99[i] = rps(a), b_lib.wrk_p99_ms(a)
  end
  bp:kill(15)
  bp:wait()
  rows[#rows + 1] = b.row { name = "controller GET /health", value = b.median(ours), unit = "req/s",
    anchor_name = "bare h2o handler", anchor = b.median(anchor), goal = 0.6 }
  rows[#rows + 1] = b.row { name = "controller GET /health p99", value = b.median(ours99), unit = "ms",
    anchor_name = "bare h2o handler p99", anchor = b.median(anchor99), goal_kind = "report" }

  -- the 400 rejection path
  local invalid = '{"taskType":"code-execution","code":"x","expectedHash":"zz"}'
  rows[#rows + 1] = b.row { name = "POST /verify -> 400 (schema)", unit = "req/s",
    value = median_of(reps, function() return rps(wrk(srv.url .. "/verify", { body = invalid })) end),
    goal = 30000, goal_kind = "min" }

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
  local valid = ('{"taskType":"code-execution","language":"lua","code":"print(2 + 2)","expectedHash":"%s"}')
    :format(wp.hex(wp.sha256("4")))
  local limited = h.start_controller(CONFIG:format(1))
  rows[#rows + 1] = b.row { name = "POST /verify -> 429 (rate limited)", unit = "req/s",
    value = median_of(reps, function() return rps(wrk(limited.url .. "/verify", { body = valid })) end),
    goal = 30000, goal_kind = "min" }
  h.stop(limited)
  return rows
end
