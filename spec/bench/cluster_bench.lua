-- SPDX-License-Identifier: MIT
-- Many hosts, one state: end-to-end VALID verifications (a trivial Lua task
-- in the sandbox, wrk with 4 connections) on a controller with 1, 2 and 3
-- serve processes sharing one PostgreSQL store (a server of its own, on
-- loopback, started here) beside one process on SQLite, the anchor;
-- alternating rounds, medians. With PostgreSQL the rate limit and the
-- breaker are shared (in the store), so this is the whole per-request cost.
-- Goal: PostgreSQL adds <= 1 ms to the p50 of a verification — measured
-- with one connection (one verification at a time: at 4 the machine is
-- saturated and the p50 is queueing, i.e. throughput, reported apart).
local wp = require "workproof"
local h = require "helpers"

local DURATION = os.getenv("BENCH_WRK_SECONDS") or "4"

local CONFIG = [[
return {
  state_dir = "@DIR@/var", %s processes = %d, reuseport = true,
  policies = { task_types = {}, code_patterns = {}, worker_threshold = {},
    rate_limit = { config = { limit = 1e9 } }, circuit_breaker = {} },
}
]]

local BODY = ('{"taskType":"code-execution","language":"lua","code":"print(2 + 2)","expectedHash":"%s"}')
  :format(wp.hex(wp.sha256("4")))

local function wrk(url, conns)
  local path = os.tmpname()
  h.write(path, BODY)
  local out = h.run("/bin/sh", { "-c", ("WRK_BODY=%s exec wrk -s spec/bench/wrk/post.lua -t1 -c%d -d%s --latency %s")
    :format(path, conns or 4, DURATION, url .. "/verify") })
  os.remove(path)
  local function ms(pct)
    local v, unit = out:match("%s" .. pct .. "%%%s+([%d%.]+)(%a+)")
    v = tonumber(v) or (1 / 0)
    if unit == "us" then return v / 1000 elseif unit == "s" then return v * 1000 end
    return v
  end
  local bad = tonumber(out:match("Non%-2xx or 3xx responses:%s*(%d+)")) or 0
  return { rps = tonumber(out:match("Requests/sec:%s*([%d%.]+)")) or 0, p50 = ms(50), bad = bad }
end

return function(b)
  local reps = math.min(b.repeats, 3)
  local pg = h.start_postgres()
  local url = pg.db()
  local servers = { sqlite = h.start_controller(CONFIG:format("", 1)) }
  for n = 1, 3 do
    servers["pg" .. n] = h.start_controller(CONFIG:format(("store = %q,"):format(url), n))
  end
  local order = { "sqlite", "pg1", "pg2", "pg3" }
  local res = { sqlite = {}, pg1 = {}, pg2 = {}, pg3 = {} }
  local lat = { sqlite = {}, pg1 = {} }   -- one connection
  local bad = 0
  for _ = 1, reps do
    for _, k in ipairs(order) do
      local r = wrk(servers[k].url)
      res[k][#res[k] + 1] = r
      bad = bad + r.bad
    end
    for _, k in ipairs({ "sqlite", "pg1" }) do
      local r = wrk(servers[k].url, 1)
      lat[k][#lat[k] + 1] = r
      bad = bad + r.bad
    end
  end
  for _, k in ipairs(order) do h.stop(servers[k]) end

  -- the per-request cost of the shared rate limit: one decision on a key
  -- (SELECT, then the compare-and-swap UPDATE) against the same on SQLite
  local host = require "workproof.host"
  local store = require "workproof.store"
  local shared = require "workproof.notary.shared"
  local sqlite_path = os.tmpname()
  local dbs = { pg = assert(store.open(url)), sqlite = assert(store.open(sqlite_path)) }
  local per = { pg = {}, sqlite = {} }
  for _, k in ipairs({ "pg", "sqlite" }) do assert(dbs[k]:migrate(require "workproof.store.schema")) end
  local N = 2000
  for _ = 1, reps do
    for _, k in ipairs({ "sqlite", "pg" }) do
      shared.setup(dbs[k])
      local t0 = host.now()
      for i = 1, N do
        shared.with("bench", "k" .. (i % 50), function(e) e.n = (e.n or 0) + 1 end)
      end
      per[k][#per[k] + 1] = (host.now() - t0) / N * 1e6
    end
  end
  shared.setup(nil)
  dbs.pg:close()
  dbs.sqlite:close()
  os.remove(sqlite_path); os.remove(sqlite_path .. "-wal"); os.remove(sqlite_path .. "-shm")
  pg.stop()
  local function med(k, f, set)
    local xs = {}
    for i, r in ipairs((set or res)[k]) do xs[i] = r[f] end
    return b.median(xs)
  end
  local rows = {}
  local sq_rps, sq_p50 = med("sqlite", "rps"), med("sqlite", "p50", lat)
  for n = 1, 3 do
    rows[#rows + 1] = b.row { name = ("VALID/s, PostgreSQL, %d process%s"):format(n, n > 1 and "es" or ""),
      unit = "req/s", value = med("pg" .. n, "rps"), anchor_name = "SQLite, 1 process", anchor = sq_rps,
      goal_kind = "report" }
  end
  local p50 = med("pg1", "p50", lat)
  rows[#rows + 1] = b.row { name = "VALID p50, one at a time, PostgreSQL", unit = "ms", value = p50,
    anchor_name = "SQLite, 1 process", anchor = sq_p50, goal_kind = "report" }
  rows[#rows + 1] = b.row { name = "p50 added by PostgreSQL", unit = "ms", value = p50 - sq_p50,
    goal = 1, goal_kind = "max" }
  rows[#rows + 1] = b.row { name = "shared rate-limit decision, PostgreSQL", unit = "us", value = b.median(per.pg),
    anchor_name = "the same on SQLite", anchor = b.median(per.sqlite), goal_kind = "report" }
  rows[#rows + 1] = b.row { name = "cluster runs: non-2xx responses", unit = "", value = bad, goal = 0,
    goal_kind = "max" }
  return rows
end
