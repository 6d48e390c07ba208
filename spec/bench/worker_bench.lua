-- SPDX-License-Identifier: MIT
--- workproof-worker: spawn-to-result latency and sustained task rate on the
-- sandbox backend, measured by spec/bench/bench_worker.c (posix_spawn with
-- pipes, N tasks per spawner thread, p50/p99 of spawn -> NOTARY_RESULT
-- line). The anchors are the same harness spawning /bin/true and
-- `bwrap --unshare-all --die-with-parent --ro-bind / / luajit -e 'print(1)'`
-- in the same run, rounds alternating. CPU per task counts every
-- descendant (the harness is a subreaper: bubblewrap's sandbox init is an
-- orphan that getrusage alone would never see). Beside the exec'd worker:
-- the same worker forked by a zygote (BENCH_ZYGOTE=1), as the host runs it.

local LUA_TASK = '{"jobId":"bench","language":"lua","code":"print(1)"}'
local JS_TASK = '{"jobId":"bench","language":"javascript","code":"console.log(1)"}'

return function(b)
  local prog = b.program("bench_worker")
  local worker = b.build .. "/workproof-worker"

  -- Medians over b.repeats rounds of each configuration, the configurations
  -- alternating within every round (a busy neighbour then weighs on all of
  -- them alike). Each config: { program, n, threads, task, args }.
  local function measure(configs)
    local got = {}
    for k = 1, #configs do got[k] = { p50 = {}, p99 = {}, rate = {}, cpu = {}, user = {}, sys = {} } end
    for i = 1, b.repeats do
      for k, c in ipairs(configs) do
        local env = (c.warm_ms and ("BENCH_WARM_MS=" .. c.warm_ms .. " ") or "")
          .. (c.zygote and "BENCH_ZYGOTE=1 " or "")
        local out = b.exec(("%s%s %s %d %d '%s' %s"):format(env, prog, c[1], c[2], c[3], c[4], c[5] or ""))
        local p50, p99, rate, failures, cpu, user, sys =
          out:match("^(%S+) (%S+) (%S+) (%d+) (%S+) (%S+) (%S+)")
        if not p50 then error("bench_worker: unexpected output: " .. out) end
        if tonumber(failures) ~= 0 then
          error(("bench_worker: %s of %d runs of %s failed"):format(failures, c[2] * c[3], c[1]))
        end
        local g = got[k]
        g.p50[i], g.p99[i], g.rate[i] = tonumber(p50), tonumber(p99), tonumber(rate)
        g.cpu[i], g.user[i], g.sys[i] = tonumber(cpu), tonumber(user), tonumber(sys)
      end
    end
    local res = {}
    for k, g in ipairs(got) do
      res[k] = {}
      for name, xs in pairs(g) do res[k][name] = b.median(xs) end
    end
    return unpack(res)
  end

  local BWRAP = "--unshare-all --die-with-parent --ro-bind / / luajit -e 'print(1)'"
  local bwrap = b.exec("command -v bwrap 2>/dev/null || true"):match("%S+")
  local luajit = b.exec("command -v luajit"):match("%S+")
  if not bwrap then error("bubblewrap is not installed (make deps installs it)") end

  -- zlua: forked by a zygote (worker/zygote.c), as the host starts them
  local anchor1, anchor2, lua1, lua2, zlua1, zlua2, plain, bw, lj = measure {
    { "/bin/true", 300, 1, LUA_TASK },
    { "/bin/true", 300, 2, LUA_TASK },
    { worker, 300, 1, LUA_TASK, "--isolation sandbox" },
    { worker, 300, 2, LUA_TASK, "--isolation sandbox" },
    { worker, 300, 1, LUA_TASK, "--isolation sandbox", zygote = true },
    { worker, 300, 2, LUA_TASK, "--isolation sandbox", zygote = true },
    { worker, 300, 1, LUA_TASK, "--isolation none 2>/dev/null" },
    { bwrap, 300, 1, LUA_TASK, BWRAP },
    { luajit, 300, 1, LUA_TASK, "-e 'print(1)'" },
  }
  local js1 = measure { { worker, 40, 1, JS_TASK, "--isolation sandbox" } }
  -- a warm pool's worker: started ahead (--warm), timed from the task's
  -- hand-over once its sandbox had time to get ready
  local warm_lua, warm_js = measure {
    { worker, 100, 1, LUA_TASK, "--isolation sandbox --warm lua", warm_ms = 40 },
    { worker, 40, 1, JS_TASK, "--isolation sandbox --warm javascript", warm_ms = 400 },
  }

  return {
    b.row { name = "worker Lua CPU/task (sandbox)", value = lua1.cpu, unit = "ms",
      anchor_name = "bwrap --unshare-all luajit", anchor = bw.cpu, goal = 1.0, goal_kind = "ratio_max" },
    b.row { name = "  of which user (sandbox)", value = lua1.user, unit = "ms",
      anchor_name = "bwrap luajit, user", anchor = bw.user, goal_kind = "report" },
    b.row { name = "  of which system (sandbox)", value = lua1.sys, unit = "ms",
      anchor_name = "bwrap luajit, system", anchor = bw.sys, goal_kind = "report" },
    b.row { name = "worker Lua CPU/task (--isolation none)", value = plain.cpu, unit = "ms",
      anchor_name = "luajit -e 'print(1)'", anchor = lj.cpu, goal_kind = "report" },
    b.row { name = "worker Lua spawn->result p50 vs bwrap", value = lua1.p50, unit = "ms",
      anchor_name = "bwrap luajit spawn->exit p50", anchor = bw.p50, goal_kind = "report" },
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
    b.row { name = "worker Lua CPU/task, forked by the zygote", value = zlua1.cpu, unit = "ms",
      anchor_name = "exec'd (above)", anchor = lua1.cpu, goal_kind = "report" },
    b.row { name = "  the same, against bwrap", value = zlua1.cpu, unit = "ms",
      anchor_name = "bwrap --unshare-all luajit", anchor = bw.cpu, goal = 1.0, goal_kind = "ratio_max" },
    b.row { name = "worker Lua p50, forked by the zygote", value = zlua1.p50, unit = "ms",
      anchor_name = "exec'd (above)", anchor = lua1.p50, goal_kind = "report" },
    b.row { name = "worker Lua tasks/s, 2 spawners, zygote", value = zlua2.rate, unit = "/s",
      anchor_name = "exec'd, 2 spawners", anchor = lua2.rate, goal_kind = "report" },
    b.row { name = "worker Lua p50 (--isolation none)", value = plain.p50, unit = "ms",
      anchor_name = "/bin/true spawn->exit p50", anchor = anchor1.p50, goal_kind = "report" },
    b.row { name = "worker JavaScript spawn->result p50 (sandbox)", value = js1.p50, unit = "ms",
      anchor_name = "/bin/true spawn->exit p50", anchor = anchor1.p50, goal_kind = "report" },
    b.row { name = "worker JavaScript spawn->result p99 (sandbox)", value = js1.p99, unit = "ms",
      anchor_name = "/bin/true spawn->exit p99", anchor = anchor1.p99, goal_kind = "report" },
    b.row { name = "worker JavaScript tasks/s, 1 spawner (sandbox)", value = js1.rate, unit = "/s",
      anchor_name = "/bin/true spawns/s", anchor = anchor1.rate, goal_kind = "report" },
    b.row { name = "warm worker Lua task->result p50 (sandbox)", value = warm_lua.p50, unit = "ms",
      anchor_name = "cold spawn->result p50", anchor = lua1.p50, goal = 2, goal_kind = "max" },
    b.row { name = "warm worker Lua task->result p99 (sandbox)", value = warm_lua.p99, unit = "ms",
      anchor_name = "cold spawn->result p99", anchor = lua1.p99, goal_kind = "report" },
    b.row { name = "warm worker JavaScript task->result p50", value = warm_js.p50, unit = "ms",
      anchor_name = "cold spawn->result p50", anchor = js1.p50, goal = 15, goal_kind = "max" },
    b.row { name = "warm worker JavaScript task->result p99", value = warm_js.p99, unit = "ms",
      anchor_name = "cold spawn->result p99", anchor = js1.p99, goal_kind = "report" },
    b.row { name = "warm worker Lua CPU/task (sandbox)", value = warm_lua.cpu, unit = "ms",
      anchor_name = "cold worker CPU/task", anchor = lua1.cpu, goal_kind = "report" },
  }
end
