-- SPDX-License-Identifier: MIT
--- End to end: `workproof serve` with the five policies on (spec/helpers
-- config: rate limit and breaker out of the way), POST /verify of a
-- trivial Lua and JavaScript task at concurrency 8 for BENCH_E2E_SECONDS
-- (5) under wrk, every reply read (spec/bench/wrk/verdicts.lua): only a 200
-- whose body says "result":"VALID" counts. Beside it, in alternating
-- rounds, the anchor: the same task through workproof-worker alone
-- (spec/bench/bench_worker.c, 2 spawners: the ceiling of a 2-core host).
-- The controller's own CPU per verification comes from /proc/<pid>/stat
-- (utime + stime; its reaped workers' in cutime + cstime, plus its live
-- worker zygote's own). A second
-- controller without warm workers (worker.pool 0) runs the same rounds: the
-- pool's effect at saturation (c=8), and on the latency of requests sent one
-- at a time at a fixed rate (10/s: the pool refills between them).
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"

local SECONDS = os.getenv("BENCH_E2E_SECONDS") or "5"
local TICK_MS = 1000 / 100   -- USER_HZ

local function body(language, code, out)
  return ('{"taskType":"code-execution","language":"%s","code":"%s","expectedHash":"%s"}'):format(language, code,
    wp.hex(wp.sha256(out)))
end

local LUA = body("lua", "print(2 + 2)", "4")
local JS = body("javascript", "console.log(2 + 2)", "4")
local LUA_TASK = '{"jobId":"bench","language":"lua","code":"print(2 + 2)"}'
local JS_TASK = '{"jobId":"bench","language":"javascript","code":"console.log(2 + 2)"}'

-- { own = ms, children = ms } of CPU a process has used so far
local function cpu(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local s = f:read("*a")
  f:close()
  local rest, t = s:match("%) (.*)$"), {}
  for v in rest:gmatch("%S+") do t[#t + 1] = tonumber(v) or v end
  return { own = (t[12] + t[13]) * TICK_MS, children = (t[14] + t[15]) * TICK_MS }
end

-- CPU (ms) of pid's live zygotes: its workers' forks are theirs, and a
-- zygote's CPU reaches the controller's children's only once it is reaped
-- (one a round retired is counted there, one it started here)
local function zygote_cpu(pid)
  local p, sum = io.popen("pgrep -P " .. pid .. " -f -- '--zygote$'"), 0
  for z in p:lines() do
    local ok, c = pcall(cpu, z)
    if ok then sum = sum + c.own end
  end
  p:close()
  return sum
end

-- wrk leaves up to 8 requests in flight when its time is up: their tasks
-- still run (a JavaScript one for ~0.5 s at c=8). Let them end before the
-- next round, or the next anchor, measures beside them.
local function settle(s)
  for _ = 1, 400 do
    local _, _, text = h.http("GET", s.url .. "/metrics")
    if tonumber((text or ""):match("\nwp_workers_active (%d+)")) == 0 then return end
    host.sleep(0.05)
  end
  error("e2e: workers still running 20 s after the round")
end

return function(b)
  -- the five policies on; one client (this bench) may send far more than
  -- the specs' 1000 a minute: ~200/s over rounds of 5 s
  local policies = { rate_limit = "{ config = { limit = 1000000 } }" }
  local srv = h.start_controller(h.config(nil, policies), { dir = h.policy_dir() })
  local cold = h.start_controller(h.config("worker = { pool = { lua = 0, javascript = 0 } },", policies),
    { dir = h.policy_dir() })

  local function e2e(req, s, connections)
    local pid = (s or srv).proc.pid
    local c0, z0 = cpu(pid), zygote_cpu(pid)
    local out = b.wrk((s or srv).url .. "/verify", { body = req, script = "spec/bench/wrk/verdicts.lua",
      connections = connections or 8, duration = SECONDS })
    local c1, z1 = cpu(pid), zygote_cpu(pid)
    settle(s or srv)
    local v, o, secs = out:match("VERDICTS (%d+) (%d+) ([%d%.]+)")
    if not v then error("wrk: no verdict counts:\n" .. out) end
    v, o = tonumber(v), tonumber(o)
    local n = math.max(v + o, 1)
    return { rate = v / tonumber(secs), other = o, p99 = b.wrk_p99_ms(out), p50 = b.wrk_pct_ms(out, 50),
      own = (c1.own - c0.own) / n, children = (c1.children + z1 - c0.children - z0) / n }
  end

  -- n requests, one every 1/rate s (each answered before the next is due
  -- unless it takes longer): { p50 =, p99 = } of their latency, ms
  local function paced(s, req, rate, n)
    local lat = {}
    local t0 = host.now()
    for i = 1, n do
      local wait = t0 + (i - 1) / rate - host.now()
      if wait > 0 then host.sleep(wait) end
      local a = host.now()
      local st, err, resp = host.http_request { method = "POST", url = s.url .. "/verify", body = req, timeout = 30,
        headers = { ["content-type"] = "application/json" } }
      if st ~= 200 or not tostring(resp):find('"result":"VALID"', 1, true) then
        error("paced request: " .. tostring(st or err))
      end
      lat[#lat + 1] = (host.now() - a) * 1000
    end
    table.sort(lat)
    return { p50 = lat[math.ceil(n * 0.5)], p99 = lat[math.ceil(n * 0.99)] }
  end

  -- forked by a zygote, as the controller starts its workers
  local function worker_alone(task, n)
    local out = b.exec(("BENCH_ZYGOTE=1 %s %s/workproof-worker %d 2 '%s' --isolation sandbox"):format(
      b.program("bench_worker"), b.build, n, task))
    local rate, cpu_ms = out:match("^%S+ %S+ (%S+) %d+ (%S+)")
    return { rate = tonumber(rate), cpu = tonumber(cpu_ms) }
  end

  local got = { lua = {}, js = {}, wl = {}, wj = {}, lua_cold = {}, lua1 = {}, lua1_cold = {}, js1 = {}, js1_cold = {} }
  local function add(t, r) for k, v in pairs(r) do t[k] = t[k] or {}; t[k][#t[k] + 1] = v end end
  local reps = math.min(b.repeats, 3)
  for _ = 1, reps do
    add(got.lua, e2e(LUA))
    add(got.lua_cold, e2e(LUA, cold))
    add(got.wl, worker_alone(LUA_TASK, 200))
    add(got.js, e2e(JS))
    add(got.wj, worker_alone(JS_TASK, 20))
    add(got.lua1, paced(srv, LUA, 10, 50))
    add(got.lua1_cold, paced(cold, LUA, 10, 50))
    add(got.js1, paced(srv, JS, 4, 20))
    add(got.js1_cold, paced(cold, JS, 4, 20))
  end
  h.stop(srv)
  h.stop(cold)
  local m = {}
  for k, t in pairs(got) do
    m[k] = {}
    for f, xs in pairs(t) do m[k][f] = b.median(xs) end
  end

  -- one language at c=8: its rate against the worker alone, p99, replies
  -- not VALID, the controller's own CPU
  local function saturated(language, run, alone, rate_goal, p99_goal)
    return {
      b.row { name = ("VALID %s verifications/s, c=8"):format(language), value = run.rate, unit = "/s",
        anchor_name = "worker alone, 2 spawners", anchor = alone.rate, goal = rate_goal, goal_kind = "min" },
      b.row { name = "  p99 latency, c=8", value = run.p99, unit = "ms", goal = p99_goal,
        goal_kind = p99_goal and "max" or "report", anchor_name = "p50", anchor = run.p50 },
      b.row { name = "  replies not VALID", value = run.other, unit = "", goal = 0, goal_kind = "max" },
      b.row { name = "  controller's own CPU/verification", value = run.own, unit = "ms",
        anchor_name = "worker CPU/task (alone)", anchor = alone.cpu, goal = 1, goal_kind = "max" },
    }
  end
  -- requests one at a time, with the pool against without it
  local function warm_row(name, warm, without)
    return b.row { name = name, value = warm, unit = "ms", anchor_name = "without warm workers", anchor = without,
      goal_kind = "report" }
  end
  local r, j = saturated("Lua", m.lua, m.wl, 150, 50), saturated("JavaScript", m.js, m.wj, 40)

  return {
    r[1], r[2], r[3], r[4],
    b.row { name = "  its workers' CPU/verification", value = m.lua.children, unit = "ms",
      anchor_name = "worker CPU/task (alone)", anchor = m.wl.cpu, goal_kind = "report" },
    b.row { name = "  the same without warm workers", value = m.lua_cold.rate, unit = "/s",
      anchor_name = "with warm workers", anchor = m.lua.rate, goal_kind = "report" },
    b.row { name = "  its own CPU/verification, no warm workers", value = m.lua_cold.own, unit = "ms",
      anchor_name = "with warm workers", anchor = m.lua.own, goal_kind = "report" },
    warm_row("VALID Lua p50 latency, 10/s (warm)", m.lua1.p50, m.lua1_cold.p50),
    warm_row("VALID Lua p99 latency, 10/s (warm)", m.lua1.p99, m.lua1_cold.p99),
    warm_row("VALID JavaScript p50 latency, 4/s (warm)", m.js1.p50, m.js1_cold.p50),
    j[1], j[2], j[3], j[4],
  }
end
