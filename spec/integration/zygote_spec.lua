-- SPDX-License-Identifier: MIT
-- The worker zygote (worker/zygote.c, core/host/l_process.c): with
-- worker.zygote on (the default) the host asks one `workproof-worker
-- --zygote` to fork each worker instead of exec'ing it. Checked against the
-- real sandbox: the same results as exec'd workers, workers that are the
-- host's own children in sessions of their own with their own command lines,
-- and the zygote's lifecycle (killed, executable replaced, host gone).
local wp = require "workproof"
local worker = wp.worker
local host = require "workproof.host"
local h = require "helpers"

local BUILT = h.build .. "/workproof-worker"

local function task(code, extra)
  local t = { jobId = "z-" .. tostring(math.random(1e9)), language = "lua", code = code, timeoutMs = 5000 }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function sh(script) return (h.run("/bin/sh", { "-c", script })) end

-- the pids of this host's children whose command line matches the
-- extended regular expression re (pgrep -f)
local function children(re)
  local pids = {}
  for pid in sh(("pgrep -P %d -f %s || true"):format(host.pid, h.q(re))):gmatch("%d+") do
    pids[#pids + 1] = tonumber(pid)
  end
  return pids
end

-- a process's arguments joined by spaces; a forked worker's are written over
-- the zygote's longer ones, so the kernel shows that area's NUL padding too
local function cmdline(pid)
  return ((h.slurp("/proc/" .. pid .. "/cmdline") or ""):gsub("%z+$", ""):gsub("%z", " "))
end

local function zygotes() return children("^[^ ]*workproof-worker --zygote$") end

-- a zygote waiting for requests: blocked in recvmsg (47 on x86-64, 212 on
-- arm64) after its start-up (slow in a sanitizer build)
local RECVMSG = jit.arch == "arm64" and "212" or "47"
local function serving(pid)
  local f = io.open("/proc/" .. pid .. "/syscall")
  local s = f and f:read("*l")
  if f then f:close() end
  return s ~= nil and s:match("^%d+") == RECVMSG
end

-- run tasks until a zygote is there and serving (workers are exec'd while
-- it prepares), and those workers have exited: its pid
local function ready_zygote()
  local pid
  assert(h.eventually(function()
    assert(worker.run(task("print(1)")))
    pid = zygotes()[1]
    return pid ~= nil and serving(pid)
  end, 20))
  assert(h.eventually(function() return #children("^[^ ]*workproof-worker --isolation") == 0 end),
    sh(("ps -o pid,stat,etimes,args --ppid %d"):format(host.pid)))
  return pid
end

-- where the worker executable is mapped (/proc/PID/maps): ASLR places it
-- anew at each exec, a fork keeps its parent's place
local function base(pid)
  local f = io.open("/proc/" .. pid .. "/maps")
  if not f then return nil end
  local found
  for line in f:lines() do
    found = line:find("/workproof%-worker$") and line:match("^(%x+)")
    if found then break end
  end
  f:close()
  return found
end

-- run a busy task while watching for its worker: where that worker's
-- executable is mapped (base) and its command line, once seen
local function watched_run()
  local looked, cmd
  wp.spawn(function()
    h.eventually(function()
      local pid = children("^[^ ]*workproof-worker --isolation sandbox$")[1]
      looked, cmd = pid and base(pid), pid and cmdline(pid)
      return looked ~= nil
    end)
  end)
  assert(worker.run(task("local x = 0 for i = 1, 3e8 do x = x + i end print(x)", { timeoutMs = 20000 })))
  return looked, cmd
end

local function stat_fields(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local s = f:read("*a")
  f:close()
  local t = {}
  for v in s:match("%) (.*)$"):gmatch("%S+") do t[#t + 1] = v end
  return { ppid = tonumber(t[2]), pgrp = tonumber(t[3]), sid = tonumber(t[4]) }
end

describe("worker zygote", function()
  before_each(function()
    worker.configure { backend = "sandbox", worker = BUILT, zygote = true, pool = { lua = 0, javascript = 0 } }
  end)
  after_each(function()
    worker.configure { worker = BUILT, zygote = true }
  end)

  it("forks the workers: the host's children, own sessions and command lines, the zygote's layout", function()
    local z = ready_zygote()
    local looked = {}
    local done = false
    wp.spawn(function()
      while not done do
        for _, pid in ipairs(children("^[^ ]*workproof-worker --isolation sandbox$")) do
          if not looked[pid] then
            local ok, st = pcall(stat_fields, pid)
            local b = base(pid)
            local cmd = cmdline(pid)
            if ok and b then looked[pid] = { st = st, base = b, cmd = cmd } end
          end
        end
        wp.sleep(0.005)
      end
    end)
    for _ = 1, 6 do
      assert.equal(z, zygotes()[1], "one zygote serves them all")
      assert(worker.run(task("local x = 0 for i = 1, 5e7 do x = x + i end print(x)", { timeoutMs = 20000 })))
    end
    done = true
    local n = 0
    for pid, l in pairs(looked) do
      n = n + 1
      assert.equal(host.pid, l.st.ppid, "parent of " .. pid)
      assert.equal(pid, l.st.sid, "a session of its own")
      assert.equal(pid, l.st.pgrp)
      assert.equal(base(z), l.base, "forked by the zygote, not exec'd")
      assert.equal(BUILT .. " --isolation sandbox", l.cmd)
    end
    assert.is_true(n >= 3, "saw " .. n .. " workers")
  end)

  for _, backend in ipairs { "sandbox", "none" } do
    it("gives the same results as exec'd workers (" .. backend .. " backend)", function()
      worker.configure { backend = backend }
      local cases = {
        task("print(2 + 2)"),
        task("io.write('no newline')"),
        task("error('boom')"),
        task("while true do end", { timeoutMs = 300 }),
        task("for i = 1, 100 do print(string.rep('x', 100)) end", { outputLimitBytes = 1000 }),
        task("local t = {} for i = 1, 1e8 do t[i] = i end", { memoryBytes = 16777216 }),
        task("print(input.a + input.b)", { input = { a = 2, b = 3 } }),
        task("console.log(JSON.stringify({ a: [1, 2] }))", { language = "javascript" }),
        task("process.exit(3)", { language = "javascript" }),
      }
      ready_zygote()
      local function outcome(t)
        local r, err = worker.run(t)
        assert.is_table(r, tostring(err))
        return { hash = r.actualHash, exit = r.exitCode, error = r.error and tostring(r.error):match("^[%u_]+"),
          class = r.errorClass }
      end
      for _, t in ipairs(cases) do
        worker.configure { zygote = true }
        local a = outcome(t)
        worker.configure { zygote = false }
        local b = outcome(t)
        assert.same(b, a, t.code)
      end
    end)
  end

  -- a process's namespace of a kind, as its /proc link names it (nil: gone)
  local function ns(pid, kind)
    return sh("readlink /proc/" .. pid .. "/ns/" .. kind .. " 2>/dev/null"):match("[^\n]+")
  end
  -- the sandbox of a worker: its child that is pid 1 of a pid namespace (a
  -- sanitizer build's exiting worker also has LeakSanitizer's tracer)
  local function sandbox_of(pid)
    for box in sh("pgrep -P " .. pid .. " || true"):gmatch("%d+") do
      local status = h.slurp("/proc/" .. box .. "/status") or ""
      if status:match("\nNSpid:%s+%d+%s+1\n") then return box end
    end
  end
  -- the net namespace of the sandbox of each running worker of `parent`
  -- (its children whose command line is a worker's), once there are `want`
  local function sandbox_nets(parent, want)
    local nets
    assert(h.eventually(function()
      nets = {}
      for pid in sh(("pgrep -P %d -f '^[^ ]*workproof-worker --isolation sandbox$' || true"):format(parent))
          :gmatch("%d+") do
        local box = sandbox_of(pid)
        nets[#nets + 1] = box and ns(box, "net")
      end
      return #nets == want
    end, 20), "running sandboxes: " .. #nets)
    return nets
  end
  local BUSY = "local x = 0 for i = 1, 6e8 do x = x + i end print(x)"
  -- n busy tasks at once, each on its own coroutine; counts them done
  local done = 0
  local function busy(n)
    for _ = 1, n do
      wp.spawn(function()
        assert(worker.run(task(BUSY, { timeoutMs = 30000 })))
        done = done + 1
      end)
    end
  end

  it("puts its workers' sandboxes in its own empty net namespace, not one each nor the host's", function()
    local z = ready_zygote()
    local zn = ns(z, "net")
    assert.not_equal(ns(host.pid, "net"), zn)
    -- empty: a loopback, down, and nothing else
    local links = sh(("nsenter --net=/proc/%d/ns/net ip -o link"):format(z))
    assert.equal(1, select(2, links:gsub("\n", "")), links)
    assert.matches("^1: lo: <LOOPBACK>", links)
    done = 0
    busy(2)
    assert.same({ zn, zn }, sandbox_nets(host.pid, 2))
    assert(h.eventually(function() return done == 2 end, 60))
    -- exec'd workers still make one each
    worker.configure { zygote = false }
    busy(2)
    local nets = sandbox_nets(host.pid, 2)
    assert.not_equal(nets[1], nets[2])
    for _, n in ipairs(nets) do
      assert.is_string(n)
      assert.not_equal(zn, n)
      assert.not_equal(ns(host.pid, "net"), n)
    end
    assert(h.eventually(function() return done == 4 end, 60))
  end)

  it("unprivileged, owns its net namespace through a user namespace of its own ids, and works", function()
    if sh("id -u") ~= "0\n" then return pending("setpriv to another user needs root") end
    local dir = h.tmpdir()
    sh("chmod 755 " .. h.q(dir))
    h.write(dir .. "/run.lua", ([[
      local wp = require "workproof"
      wp.worker.configure { backend = "sandbox", worker = %q, zygote = true, pool = { lua = 0, javascript = 0 } }
      for _ = 1, 20 do assert(wp.worker.run { jobId = "u", language = "lua", code = "print(1)" }) end
      local r = assert(wp.worker.run { jobId = "u", language = "lua", code = %q, timeoutMs = 30000 })
      print(r.actualHash, r.exitCode)
    ]]):format(BUILT, BUSY))
    local p = assert(host.process_spawn { file = "/usr/bin/setpriv", timeout = 120, args = {
      "--reuid=65534", "--regid=65534", "--clear-groups", h.build .. "/workproof", "run", dir .. "/run.lua" } })
    local z
    assert(h.eventually(function()
      z = tonumber(sh(("pgrep -P %d -f 'workproof-worker --zygote$' || true"):format(p.pid)):match("%d+"))
      return z ~= nil and serving(z)   -- past its set-up
    end, 20))
    local zn = ns(z, "net")
    assert.same({ zn }, sandbox_nets(p.pid, 1))
    assert.not_equal(ns(host.pid, "net"), zn)
    assert.not_equal(ns(host.pid, "user"), ns(z, "user"))
    assert.equal("65534 65534 1", (h.read("/proc/" .. z .. "/uid_map"):match("^%s*(.-)%s*$"):gsub("%s+", " ")))
    local out, st = h.read_all(p)
    assert.equal(0, st.exit_status, st.stderr)
    assert.matches("^%x+\t0\n$", out)
    sh("rm -rf " .. h.q(dir))
  end)

  it("serves with all its code mapped, so a fork copies those entries instead of faulting them in", function()
    h.assert_code_mapped(ready_zygote())
  end)

  it("refuses malformed requests and serves on (spec/tools/zygote_client.c)", function()
    local out, st = h.run(h.build .. "/zygote_client", { BUILT })
    assert.equal(0, st.exit_status, out)
    assert.is_nil(out:find("FAIL"), out)
    for _, case in ipairs { "no descriptors", "one descriptor", "four descriptors", "not NUL%-terminated",
      "empty argv%[0%]", "65 arguments", "longer than a request may be" } do
      assert.truthy(out:find("ok " .. case .. "\n  ok the zygote serves on, holding nothing more"), case)
    end
    assert.truthy(out:find("ok its result\nok our child, exit 0\nok zygote ends at EOF"), out)
  end)

  it("refuses to start as a zygote without its socket", function()
    local p = assert(host.process_spawn { file = BUILT, args = { "--zygote" }, timeout = 10 })
    local out, st = h.read_all(p)
    assert.equal("", out)
    assert.equal(2, st.exit_status)
    assert.truthy(st.stderr:find("--zygote needs a SOCK_SEQPACKET socket as fds 0 and 1", 1, true), st.stderr)
  end)

  it("replaces a killed zygote, and no task fails meanwhile", function()
    local z = ready_zygote()
    assert(host.kill(z, 9))
    for i = 1, 8 do
      local r = assert(worker.run(task(("print(%d)"):format(i))))
      assert.equal(wp.hex(wp.sha256(tostring(i))), r.actualHash)
    end
    local z2 = ready_zygote()
    assert.not_equal(z, z2)
    assert.is_false(h.alive(z))
    local zombies
    assert.is_true(h.eventually(function()
      zombies = h.zombie_children(host.pid)
      return #zombies == 0
    end, 3), table.concat(zombies or {}, "\n"))
  end)

  it("gives up on a hung zygote after 1 s: the task is exec'd, the zygote killed and replaced", function()
    local z = ready_zygote()
    assert(host.kill(z, 19))   -- SIGSTOP: it takes the request and never answers
    local t0 = wp.now()
    local r = assert(worker.run(task("print(7)")))
    local waited = wp.now() - t0
    assert.equal(wp.hex(wp.sha256("7")), r.actualHash)
    assert.is_true(waited >= 0.9, "waited " .. waited)   -- ZYGOTE_REPLY_MS, then spawned
    assert.is_false(h.alive(z))   -- killed and reaped
    assert.not_equal(z, ready_zygote())
  end)

  it("starts a new zygote when the worker executable is replaced on disk", function()
    local dir = h.tmpdir()
    local path = dir .. "/workproof-worker"
    sh(("cp %s %s"):format(h.q(BUILT), h.q(path)))
    worker.configure { worker = path }
    local z = ready_zygote()
    assert.equal(path .. " --zygote", cmdline(z))
    -- an upgrade: a new file renamed over the old one
    sh(("cp %s %s.new && mv %s.new %s"):format(h.q(BUILT), h.q(path), h.q(path), h.q(path)))
    assert(worker.run(task("print(1)")))
    assert.is_true(h.eventually(function() return not h.alive(z) end, 5), "the old zygote stopped")
    local z2 = ready_zygote()
    assert.not_equal(z, z2)
    sh("rm -rf " .. h.q(dir))
  end)

  it("execs the workers while a zygote cannot start, without retrying it at every task", function()
    local dir = h.tmpdir()
    local path = dir .. "/workproof-worker"
    -- a worker whose --zygote fails at once (as one that cannot load lua-cjson does)
    h.write(path, ("#!/bin/sh\nif [ \"$1\" = --zygote ]; then echo z >> %s/starts; exit 3; fi\nexec %s \"$@\"\n")
      :format(dir, BUILT))
    sh("chmod +x " .. h.q(path))
    worker.configure { worker = path }
    for i = 1, 6 do
      local r = assert(worker.run(task(("print(%d)"):format(i))))
      assert.equal(wp.hex(wp.sha256(tostring(i))), r.actualHash)
      wp.sleep(0.05)
    end
    assert.equal("z\n", h.read(dir .. "/starts"), "one attempt, then a pause")
    assert.same({}, zygotes())
    sh("rm -rf " .. h.q(dir))
  end)

  it("uses no zygote when worker.zygote is off", function()
    worker.configure { zygote = false }
    for _ = 1, 3 do assert(worker.run(task("print(1)"))) end
    -- a zygote an earlier test left is not asked for workers: they are exec'd
    local z = zygotes()[1]
    local looked = watched_run()
    assert.is_string(looked)
    if z then assert.not_equal(base(z), looked) end
  end)

  -- a relative WORKPROOF_BUILD gives a relative worker path
  it("forks the workers a relative worker path names, under the absolute path that names its zygote", function()
    local rel = sh("realpath --relative-to=. " .. h.q(BUILT)):gsub("\n$", "")
    assert.is_nil(rel:find("^/"), rel)
    worker.configure { worker = rel }
    local z = ready_zygote()
    assert.equal(sh("realpath " .. h.q(BUILT)):gsub("\n$", "") .. " --zygote", cmdline(z))
    local looked, cmd = watched_run()
    assert.equal(base(z), looked, "forked by the zygote, not exec'd")
    assert.equal(rel .. " --isolation sandbox", cmd)
  end)

  it("ends when the host that started it is gone", function()
    local dir = h.tmpdir()
    h.write(dir .. "/run.lua", [[
      local wp = require "workproof"
      for _ = 1, 50 do wp.worker.run { jobId = "a", language = "lua", code = "print(1)" } end
      print("ran") io.stdout:flush()
      wp.sleep(60)
    ]])
    local p = assert(host.process_spawn { file = h.build .. "/workproof", args = { "run", dir .. "/run.lua" },
      timeout = 120 })
    local out = ""
    while not out:find("ran") do out = out .. assert(p:read()) end
    local z = tonumber(sh(("pgrep -P %d -f 'workproof-worker --zygote$'"):format(p.pid)):match("%d+"))
    assert.is_number(z, "a zygote under the host")
    p:kill(9)
    p:wait()
    assert.is_true(h.eventually(function() return not h.alive(z) end, 5), "the zygote ended with its host")
    sh("rm -rf " .. h.q(dir))
  end)
end)
