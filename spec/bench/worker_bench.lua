-- SPDX-License-Identifier: MIT
--- workproof-worker: spawn-to-result latency and sustained task rate on the
-- sandbox backend, measured by spec/bench/bench_worker.c (posix_spawn with
-- pipes, N tasks per spawner thread, p50/p99 of spawn -> NOTARY_RESULT
-- line). The anchor is the same harness spawning /bin/true in the same run.

local LUA_TASK = '{"jobId":"bench","language":"lua","code":"print(1)"}'
local JS_TASK = '{"jobId":"bench","language":"javascript","code":"console.log(1)"}'

return function(b)
  local prog = b.program("bench_worker")
  local worker = b.build .. "/workproof-worker"

  -- median over b.repeats runs of each figure of one configuration
  local function measure(program, n, threads, task, args)
    local p50s, p99s, rates = {}, {}, {}
    for i = 1, b.repeats do
      local out = b.exec(("%s %s %d %d '%s' %s"):format(prog, program, n, threads, task, args or ""))
      local p50, p99, rate, failures = out:match("^(%S+) (%S+) (%S+) (%d+)")
      if not p50 then error("bench_worker: unexpected output: " .. out) end
      if tonumber(failures) ~= 0 then
        error(("bench_worker: %s of %d runs of %s failed"):format(failures, n * threads, program))
      end
      p50s[i], p99s[i], rates[i] = tonumber(p50), tonumber(p99), tonumber(rate)
    end
    return { p50 = b.median(p50s), p99 = b.median(p99s), rate = b.median(rates) }
  end

  local anchor1 = measure("/bin/true", 300, 1, LUA_TASK)
  local anchor2 = measure("/bin/true", 300, 2, LUA_TASK)
  local lua1 = measure(worker, 300, 1, LUA_TASK, "--isolation sandbox")
  local lua2 = measure(worker, 300, 2, LUA_TASK, "--isolation sandbox")
  local plain = measure(worker, 300, 1, LUA_TASK, "--isolation none 2>/dev/null")
  local js1 = measure(worker, 40, 1, JS_TASK, "--isolation sandbox")

  return {
    b.row { name = "worker Lua spawn->result p50 (sandbox)", value = lua1.p50, unit = "ms",
      anchor_name = "/bin/true spawn->exit p50", anchor = anchor1.p50, goal = 5, goal_kind = "max" },
    b.row { name = "worker Lua spawn->result p99 (sandbox)", value = lua1.p99, unit = "ms",
      anchor_name = "/bin/true spawn->exit p99", anchor = anchor1.p99, goal = 20, goal_kind = "max" },
    b.row { name = "worker Lua p50, 2 spawners (sandbox)", value = lua2.p50, unit = "ms",
      anchor_name = "/bin/true p50, 2 spawners", anchor = anchor2.p50, goal = 5, goal_kind = "max" },
    b.row { name = "worker Lua p99, 2 spawners (sandbox)", value = lua2.p99, unit = "ms",
      anchor_name = "/bin/true p99, 2 spawners", anchor = anchor2.p99, goal = 20, goal_kind = "max" },
    b.row { name = "worker Lua tasks/s, 2 spawners (sandbox)", value = lua2.rate, unit = "/s",
      anchor_name = "/bin/true spawns/s, 2 spawners", anchor = anchor2.rate, goal = 200, goal_kind = "min" },
    b.row { name = "worker Lua p50 (--isolation none)", value = plain.p50, unit = "ms",
      anchor_name = "/bin/true spawn->exit p50", anchor = anchor1.p50, goal_kind = "report" },
    b.row { name = "worker JavaScript spawn->result p50 (sandbox)", value = js1.p50, unit = "ms",
      anchor_name = "/bin/true spawn->exit p50", anchor = anchor1.p50, goal_kind = "report" },
    b.row { name = "worker JavaScript spawn->result p99 (sandbox)", value = js1.p99, unit = "ms",
      anchor_name = "/bin/true spawn->exit p99", anchor = anchor1.p99, goal_kind = "report" },
    b.row { name = "worker JavaScript tasks/s, 1 spawner (sandbox)", value = js1.rate, unit = "/s",
      anchor_name = "/bin/true spawns/s", anchor = anchor1.rate, goal_kind = "report" },
  }
end
