-- SPDX-License-Identifier: MIT
-- The workproof host: coroutines, wp.sleep, wp.spawn, error containment, the
-- `workproof run` command line.
local wp = require "workproof"

local BUILD = os.getenv("WORKPROOF_BUILD") or "build"
local EXE = BUILD .. "/workproof"

-- Run the host on a script text (behind a command `prefix`, if given);
-- returns exit code, stdout, stderr.
local function run_script(text, args, prefix)
  local dir = os.tmpname()
  os.remove(dir)
  local script, out, err = dir .. ".lua", dir .. ".out", dir .. ".err"
  local f = assert(io.open(script, "w"))
  f:write(text)
  f:close()
  local cmd = ("%s %s run %s %s >%s 2>%s"):format(prefix or "", EXE, script, args or "", out, err)
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256 end -- Lua 5.1 semantics
  local function slurp(p)
    local h = assert(io.open(p, "rb"))
    local s = h:read("*a")
    h:close()
    os.remove(p)
    return s
  end
  local o, e = slurp(out), slurp(err)
  os.remove(script)
  return code, o, e
end

describe("host", function()
  it("runs specs inside a host coroutine", function()
    assert.is_true(wp.hosted)
    assert.is_true(wp.in_coroutine())
  end)

  it("wp.sleep suspends this coroutine for about that long", function()
    local t0 = wp.now()
    wp.sleep(0.05)
    local dt = wp.now() - t0
    assert.is_true(dt >= 0.049, "slept only " .. dt)
    assert.is_true(dt < 1, "slept far too long: " .. dt)
  end)

  it("a spawned child gets fds 0, 1 and 2 only, not what a library left open without close-on-exec", function()
    -- io.open's FILE is not close-on-exec (as libcurl's sockets are not)
    local f = assert(io.open("/dev/null"))
    local out, st = require("helpers").run("/bin/ls", { "-l", "/proc/self/fd" })
    f:close()
    assert.equal(0, st.exit_status)
    local fds = {}
    for fd, target in out:gmatch("(%d+) %-> ([^\n]*)") do
      -- (ls's own handle on the directory it lists aside)
      if not target:find("^/proc/") then fds[#fds + 1] = fd .. (target:find("^pipe:") and "=pipe" or "=" .. target) end
    end
    assert.same({ "0=pipe", "1=pipe", "2=pipe" }, fds)
  end)

  it("wp.sleep(0) yields and comes back", function()
    local order = {}
    wp.spawn(function() order[#order + 1] = "spawned" end)
    wp.sleep(0)
    order[#order + 1] = "back"
    assert.same({ "spawned", "back" }, order)
  end)

  it("wp.spawn runs coroutines concurrently on the loop", function()
    local done, t0 = {}, wp.now()
    for i = 1, 20 do
      wp.spawn(function(k)
        wp.sleep(0.05)
        done[#done + 1] = k
      end, i)
    end
    wp.sleep(0.2)
    assert.equal(20, #done)
    assert.is_true(wp.now() - t0 < 1, "sleeps ran one after another")
  end)

  it("orders timers by deadline", function()
    local order = {}
    for _, d in ipairs({ 0.06, 0.02, 0.04 }) do
      wp.spawn(function()
        wp.sleep(d)
        order[#order + 1] = d
      end)
    end
    wp.sleep(0.1)
    assert.same({ 0.02, 0.04, 0.06 }, order)
  end)

  it("yields through pcall and xpcall", function()
    local ok, v = pcall(function() wp.sleep(0.001) return 7 end)
    assert.same({ true, 7 }, { ok, v })
    ok, v = xpcall(function() wp.sleep(0.001) error("boom") end, function(m) return "handled " .. m end)
    assert.is_false(ok)
    assert.matches("handled .*boom", v)
  end)

  it("rejects bad arguments to wp.sleep", function()
    assert.has_error(function() wp.sleep(-1) end)
    assert.has_error(function() wp.sleep("x") end)
    assert.has_error(function() wp.sleep(0 / 0) end)
    assert.has_error(function() wp.spawn(42) end)
  end)

  it("refuses wp.sleep outside a host coroutine", function()
    local co = coroutine.create(function() return pcall(wp.sleep, 0.01) end)
    local _, ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("not in a host coroutine", err)
  end)

  it("wp.time is wall-clock Unix seconds", function()
    assert.is_true(math.abs(wp.time() - os.time()) < 2)
  end)

  it("wp.boot_ticks counts /proc/uptime's clock in USER_HZ ticks and brackets a spawn's start time", function()
    local host, owner = require "workproof.host", require "workproof.owner"
    local f = assert(io.open("/proc/uptime"))
    local before_up, up = host.boot_ticks(), tonumber(f:read("*l"):match("^(%S+)"))
    f:close()
    assert.is_true(math.abs(before_up - up * 100) <= 2, before_up .. " vs " .. up)
    -- the kernel's own start time (field 22) of children spawned between two readings
    local agreed = 0
    for _ = 1, 40 do
      local before = host.boot_ticks()
      local p = assert(host.process_spawn { file = "/bin/sleep", args = { "5" } })
      local after = host.boot_ticks()
      local st = tonumber((owner.starttime(p.pid)))
      p:kill()
      p:wait()
      assert.is_true(before <= st and st <= after, ("%d <= %d <= %d"):format(before, st, after))
      if before == after then agreed = agreed + 1 end
    end
    assert.is_true(agreed > 0)
  end)
end)

describe("workproof run", function()
  it("sets arg, passes arguments and uses an integer return as exit code", function()
    local code, out = run_script([[
      print(arg[0]:match("%.lua$") ~= nil, arg[1], arg[2], ...)
      return 7
    ]], "a b")
    assert.equal(7, code)
    assert.equal("true\ta\tb\ta\tb\n", out)
  end)

  it("waits for spawned work before exiting", function()
    local code, out = run_script([[
      local wp = require "workproof"
      wp.spawn(function() wp.sleep(0.05) print("late") end)
      print("main done")
    ]])
    assert.equal(0, code)
    assert.equal("main done\nlate\n", out)
  end)

  it("an error in the script exits 1 with a traceback, not a crash", function()
    local code, _, err = run_script([[
      local function inner() error("kaboom") end
      inner()
    ]])
    assert.equal(1, code)
    assert.matches("kaboom", err)
    assert.matches("stack traceback", err)
    assert.matches("inner", err)
  end)

  it("an error in a spawned coroutine after a sleep is contained and counted", function()
    local code, out, err = run_script([[
      local wp = require "workproof"
      wp.spawn(function() wp.sleep(0.01) error("late failure") end)
      wp.spawn(function() wp.sleep(0.02) print("others still run") end)
    ]])
    assert.equal(1, code)
    assert.equal("others still run\n", out)
    assert.matches("late failure", err)
  end)

  it("reports a syntax error with file and line, exit 2", function()
    local code, _, err = run_script("local x = = 1\n")
    assert.equal(2, code)
    assert.matches("%.lua:1:", err)
  end)

  -- serve drops its TERM and INT handles (they stay until the exit). Once
  -- collected, the host's close at exit wrote to the freed object: LuaJIT's
  -- heap corrupted, a crash in lua_close now and then (in a sanitizer build,
  -- whose Lua heap is on malloc, an ASan report every time)
  it("a dropped signal or watch handle keeps working after it is collected; a clean exit", function()
    local code, out, err = run_script([[
      local wp = require "workproof"
      local host = require "workproof.host"
      local got = 0
      local tmp = os.tmpname()
      host.on_signal("USR1", function() got = got + 1 end)
      host.watch(tmp, function() end)
      os.remove(tmp)
      collectgarbage()
      collectgarbage()
      host.kill(host.pid, 10)   -- SIGUSR1
      local t0 = wp.now()
      while got == 0 and wp.now() - t0 < 10 do wp.sleep(0.01) end
      print("signals", got)
    ]])
    assert.equal("", err)
    assert.equal("signals\t1\n", out)
    assert.equal(0, code)
  end)

  it("as pid 1 (a container without an init) it reaps the orphans its children leave", function()
    -- sh exits first; its background child, in sh's group, is reparented to
    -- pid 1 = the host, and dies a zombie that only the host can reap: the
    -- next reap sweeps sh's group (core/host/l_process.c, "Orphans")
    local code, out, err = run_script([[
      local wp = require "workproof"
      local host = require "workproof.host"
      local function zombies()
        local n, f = 0, io.popen("ps -e -o stat=,ppid=")
        for line in f:lines() do
          if line:match("^Z") and line:match("(%d+)%s*$") == "1" then n = n + 1 end
        end
        f:close()
        return n
      end
      local p = host.process_spawn { file = "/bin/sh", args = { "-c", "sleep 0.2 & exit 0" } }
      p:wait()
      wp.sleep(0.5)
      local before = zombies()
      host.process_spawn({ file = "/bin/true", args = {} }):wait()
      print(before, zombies())
    ]], "", "unshare --user --map-root-user --fork --pid --mount-proc")
    if code ~= 0 and err:match("unshare:") then
      return pending("no pid namespace here: " .. err)
    end
    assert.equal(0, code, err)
    assert.equal("1\t0\n", out)
  end)

  it("reports a missing script, exit 2", function()
    local ok, _, code = os.execute(EXE .. " run /nonexistent/x.lua 2>/dev/null")
    if type(ok) == "number" then code = ok / 256 end
    assert.equal(2, code)
  end)

  it("prints usage and version", function()
    local p = io.popen(EXE .. " --help")
    local help = p:read("*a")
    p:close()
    assert.matches("run SCRIPT%.lua", help)
    p = io.popen(EXE .. " version")
    assert.matches("^workproof %d+%.%d+%.%d+", p:read("*a"))
    p:close()
    local ok, _, code = os.execute(EXE .. " frobnicate 2>/dev/null")
    if type(ok) == "number" then code = ok / 256 end
    assert.equal(2, code)
  end)
end)

describe("thread pool", function()
  it("wp.vdf.eval_async runs on the pool while the loop keeps going, same answer as eval", function()
    local ticks, stop = 0, false
    wp.spawn(function()
      while not stop do
        wp.sleep(0.001)
        ticks = ticks + 1
      end
    end)
    local seen = 0
    local y, proof, l = wp.vdf.eval_async("seed", 200000, function(done, total)
      assert.is_true(done <= total)
      seen = seen + 1
    end)
    stop = true
    local y2, proof2, l2 = wp.vdf.eval("seed", 200000)
    assert.equal(wp.hex(y2), wp.hex(y))
    assert.equal(wp.hex(proof2), wp.hex(proof))
    assert.equal(wp.hex(l2), wp.hex(l))
    assert.is_true(wp.vdf.verify("seed", 200000, y, proof))
    assert.is_true(ticks > 5, "the loop stalled: " .. ticks .. " ticks")
    assert.is_true(seen >= 1)
  end)

  it("several evaluations in parallel", function()
    local results = {}
    for i = 1, 3 do
      wp.spawn(function() results[i] = { wp.vdf.eval_async("s" .. i, 20000) } end)
    end
    while not (results[1] and results[2] and results[3]) do wp.sleep(0.01) end
    for i = 1, 3 do assert.is_true(wp.vdf.verify("s" .. i, 20000, results[i][1], results[i][2])) end
  end)

  it("raises on bad arguments", function()
    assert.has_error(function() wp.vdf.eval_async("s", -1) end)
    assert.has_error(function() wp.vdf.eval_async("s", 1.5) end)
    assert.has_error(function() wp.vdf.eval_async({}, 1) end)
  end)
end)
