-- SPDX-License-Identifier: MIT
local policy = require "workproof.policy"

local FIX = "spec/fixtures/policies/"

describe("policy.load_file", function()
  it("loads a good policy and its hooks see only the allowlisted env", function()
    local t = 1000
    local p = policy.load_file(FIX .. "good.lua", { clock = function() return t end })
    assert.equal("good", p.name)
    local conf = assert(policy.configure(p, { limit = 2 }))
    assert.same({ limit = 2, mode = "block" }, conf)
    assert.same({ true, 1 }, { p.check(conf, 2) })
    assert.same({ false, 2 }, { p.check(conf, 3) })
    assert.equal(1005, p.now_plus(conf, 5))
    t = 2000
    assert.equal(2001, p.now_plus(conf, 1))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", p.hashes(conf, "abc"))
  end)

  -- { what, the fixture, the error it raises }
  for _, c in ipairs {
    { "raises file:line on a syntax error", "syntax_error.lua", "syntax_error%.lua:3:" },
    { "raises file:line when the chunk reads an undefined global", "bad_global.lua",
      "bad_global%.lua:2: undefined global 'undefined_thing'" },
    { "raises for a missing file", "nope.lua", "cannot open policy" },
  } do
    it(c[1], function()
      local ok, err = pcall(policy.load_file, FIX .. c[2])
      assert.is_false(ok)
      assert.matches(c[3], err)
    end)
  end
end)

describe("policy sandbox", function()
  local function try(src)
    return pcall(policy.load_string, src, "=t")
  end

  for _, name in ipairs({ "require", "ffi", "io", "debug", "package", "load", "loadstring",
    "dofile", "loadfile", "getfenv", "setfenv", "collectgarbage", "rawset", "rawget", "newproxy", "jit" }) do
    it("offers no " .. name, function()
      local ok, err = try("local x = " .. name .. "\nreturn { name = 'x' }")
      assert.is_false(ok)
      assert.matches("undefined global '" .. name .. "'", err)
    end)
  end

  it("offers os.time (the injected clock) but not os.execute or os.exit", function()
    local p = policy.load_string("return { name = 'c', f = function() return os.time(), os.execute, os.exit end }",
      "=t", { clock = function() return 42 end })
    assert.same({ 42 }, { p.f() })
  end)

  it("forbids global assignment", function()
    local ok, err = try("x = 1\nreturn { name = 'x' }")
    assert.is_false(ok)
    assert.matches("assignment to global 'x'", err)
  end)

  it("hides the string metatable and string.dump", function()
    local p = policy.load_string([[
      return { name = "s", f = function() return getmetatable(""), string.dump, ("ab"):upper() end }
    ]], "=t")
    assert.same({ nil, nil, "AB" }, { p.f() })
  end)

  it("cannot change the host's string library", function()
    local p = policy.load_string([[
      return { name = "s", f = function() string.upper = function() return "pwned" end end }
    ]], "=t")
    p.f()
    assert.equal("AB", ("ab"):upper())
    assert.equal("AB", string.upper("ab"))
  end)

  it("rejects bytecode", function()
    local bc = string.dump(function() return { name = "b" } end)
    local ok, err = try(bc)
    assert.is_false(ok)
    assert.matches("wrong mode", err)
  end)

  it("each load gets its own env", function()
    local a = policy.load_string("local n = 0 return { name = 'a', inc = function() n = n + 1 return n end }", "=a")
    local b = policy.load_string("local n = 0 return { name = 'b', inc = function() n = n + 1 return n end }", "=b")
    a.inc(); a.inc()
    assert.equal(1, b.inc())
  end)
end)

describe("policy shape and configure", function()
  it("rejects malformed policies with a reason", function()
    local cases = {
      { "return 5", "policy must return a table" },
      { "return { }", "policy.name must be" },
      { "return { name = 'bad name' }", "policy.name must be" },
      { "return { name = 'x', limit = 5 }", "policy.limit: hooks must be functions" },
      { "return { name = 'x', schema = { a = { type = 'nope' } } }", "bad schema: a: unknown type 'nope'" },
      { "return { name = 'x', self_check = 1 }", "self_check must be a function" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(policy.load_string, c[1], "=case")
      assert.is_false(ok, c[1])
      assert.matches(c[2], err, 1, true)
    end
  end)

  it("configure returns schema errors exactly and runs self_check", function()
    local p = policy.load_file(FIX .. "good.lua")
    local conf, errs = policy.configure(p, { limit = 0, mode = "x", extra = 1 })
    assert.is_nil(conf)
    assert.same({ limit = "must be >= 1", mode = "expected one of: warn, block", extra = "unknown field" }, errs)
    local q = policy.load_string("return { name = 'q', self_check = function() error('canary died') end }", "=q")
    conf, errs = policy.configure(q, {})
    assert.is_nil(conf)
    assert.matches("canary died", errs["@self_check"])
  end)
end)

describe("policy.call", function()
  it("returns hook results, the fallback on error, `absent` for a missing hook", function()
    local p = policy.load_file(FIX .. "good.lua")
    local conf = assert(policy.configure(p, {}))
    local logged
    local function on_error(e) logged = e end
    assert.same({ true, 1 }, { policy.call(p, "check", "deny", on_error, "none", conf, 1) })
    assert.equal("deny", policy.call(p, "boom", "deny", on_error, "none", conf))
    assert.matches("good%.boom: .*hook exploded", logged)
    assert.equal("none", policy.call(p, "missing", "deny", on_error, "none", conf))
  end)
end)

describe("policy wp allowlist", function()
  -- uptime's record formats live in Lua over the bytes-only binding (init.lua)
  local core = setmetatable({ uptime = require "workproof.uptime" }, { __index = require "workproof.core" })

  it("offers exactly the allowlisted core functions, each one present in the core", function()
    local p = policy.load_string("return { name = 'w', get = function() return wp end }", "=w")
    local w = p.get()
    for mod, names in pairs(policy.ALLOW) do
      if names == true then
        assert.is_function(w[mod], mod)
        assert.equal(core[mod], w[mod])
      else
        for _, fn in ipairs(names) do
          assert.is_not_nil(core[mod][fn], mod .. "." .. fn .. " (renamed in the core?)")
          assert.equal(core[mod][fn], w[mod][fn], mod .. "." .. fn)
        end
      end
    end
    for mod, v in pairs(w) do
      assert.is_not_nil(policy.ALLOW[mod], "wp." .. mod .. " is not allowlisted")
      if type(v) == "table" and policy.ALLOW[mod] ~= true then
        local allowed = {}
        for _, fn in ipairs(policy.ALLOW[mod]) do allowed[fn] = true end
        for k, x in pairs(v) do
          if type(x) == "function" then assert.is_true(allowed[k] == true, "wp." .. mod .. "." .. k) end
        end
      end
    end
  end)

  it("leaves out signing, VDF evaluation, test hooks and stateful objects", function()
    local p = policy.load_string("return { name = 'w', get = function() return wp end }", "=w")
    local w = p.get()
    assert.is_function(w.vdf.verify)
    assert.is_function(w.ed25519.verify)
    assert.is_string(w.uptime.ZERO_HASH)
    for _, path in ipairs { "vdf.eval", "vdf._squarings", "vdf._eval_reference", "ed25519.sign", "ed25519.keypair",
      "secp256k1.sign", "tx.sign", "uptime.sign", "uptime.vdf_make", "logscan" } do
      local v = w
      for key in path:gmatch("[^.]+") do v = v[key] end
      assert.is_nil(v, path)
    end
  end)

  it("a policy that overwrites wp.x.y changes only its own copy", function()
    local a = policy.load_string("wp.uptime.rotation_verify = function() return true end return { name = 'a' }", "=a")
    assert.equal("a", a.name)
    local b = policy.load_string("return { name = 'b', get = function() return wp.uptime.rotation_verify end }", "=b")
    assert.equal(core.uptime.rotation_verify, b.get())
  end)
end)

describe("policy budget #host", function()
  local host = require "workproof.host"

  -- a budget stop, and what on_budget saw
  local function loader(budget)
    local seen = {}
    local opts = { budget = budget, on_budget = function(hook, msg) seen[#seen + 1] = { hook, msg } end }
    return opts, seen
  end

  it("a main chunk that loops is stopped at load_ms: file:line, on_budget('load')", function()
    local opts, seen = loader({ load_ms = 50 })
    local t0 = host.now()
    local ok, err = pcall(policy.load_file, FIX .. "loop_main.lua", opts)
    local dt = host.now() - t0
    assert.is_false(ok)
    assert.matches("^spec/fixtures/policies/loop_main%.lua:3: budget exceeded: ran longer than 50 ms "
      .. "%(policy_budget%.load_ms%)$", err)
    assert.is_true(dt >= 0.05 and dt < 1, "stopped after " .. dt .. " s")
    assert.same({ { "load", err } }, seen)
    assert.is_nil(debug.gethook())
  end)

  it("self_check and schema customs that loop are stopped at load_ms", function()
    local opts, seen = loader({ load_ms = 30 })
    local p = policy.load_string([[
      return { name = "s", self_check = function() local i = 0 while true do i = i + 1 end end }
    ]], "=s", opts)
    local conf, errs = policy.configure(p, {})
    assert.is_nil(conf)
    assert.matches("^s:1: budget exceeded: ran longer than 30 ms", errs["@self_check"])
    assert.equal("self_check", seen[1][1])
    local q = policy.load_string([[
      return { name = "q", schema = { a = { type = "string", custom = function() while true do end end } } }
    ]], "=q", opts)
    conf, errs = policy.configure(q, { a = "x" })
    assert.is_nil(conf)
    assert.matches("budget exceeded", errs["@schema"])
    assert.equal("schema", seen[2][1])
  end)

  it("a hook that loops returns its fallback at hook_ms, logs, calls on_budget; the next call is fresh", function()
    local opts, seen = loader({ hook_ms = 40 })
    local p = policy.load_string([[
      return { name = "h", f = function(conf, x)
        if x == "loop" then while true do end end
        return x .. "!"
      end }
    ]], "=h", opts)
    local logged
    local t0 = host.now()
    local r = policy.call(p, "f", "fallback", function(e) logged = e end, "absent", {}, "loop")
    local dt = host.now() - t0
    assert.equal("fallback", r)
    assert.is_true(dt >= 0.04 and dt < 1, "stopped after " .. dt .. " s")
    assert.matches("^h%.f: h:2: budget exceeded: ran longer than 40 ms %(policy_budget%.hook_ms%)$", logged)
    assert.same({ { "f", logged:sub(6) } }, seen)
    assert.equal("ok!", policy.call(p, "f", "fallback", nil, "absent", {}, "ok"))
    assert.is_nil(debug.gethook())
  end)

  it("the budget is per call, not cumulative", function()
    local p = policy.load_string([[
      return { name = "slow",
        f = function(conf, until_t) local n = 0 while now() < until_t do n = n + 1 end return n end }
    ]], "=slow", { budget = { hook_ms = 200 }, clock = host.now })
    for _ = 1, 4 do
      local n = policy.call(p, "f", -1, error, nil, {}, host.now() + 0.05)
      assert.is_true(n > 0)
    end
  end)

  it("a loop that was hot (JIT-able) is still stopped: policy code stays out of the JIT", function()
    local p = policy.load_string([[
      return { name = "j", sum = function(conf, n) local s = 0 for i = 1, n do s = s + i % 7 end return s end }
    ]], "=j", { budget = { hook_ms = 30 } })
    for _ = 1, 200 do assert.is_number(policy.call(p, "sum", nil, error, nil, {}, 1000)) end
    local t0 = host.now()
    assert.equal("stopped", policy.call(p, "sum", "stopped", nil, nil, {}, 1e12))
    assert.is_true(host.now() - t0 < 1)
  end)

  it("a policy cannot catch its way out with pcall or xpcall; loops in callbacks from C are stopped", function()
    local p = policy.load_string([[
      local function spin() while true do end end
      return { name = "c",
        p = function() while true do pcall(spin) end end,
        x = function() while true do xpcall(spin, function() while true do end end) end end,
        h = function() return xpcall(error, function() while true do end end, "x") end,
        ok = function() return xpcall(error, function(e) return "handled " .. e end, "x", 0) end,
        g = function() return ("abc"):gsub(".", function() while true do end end) end,
        s = function() local t = { 3, 2, 1 } table.sort(t, function() while true do end end) end,
      }
    ]], "=c", { budget = { hook_ms = 30 } })
    for _, hook in ipairs({ "p", "x", "h", "g", "s" }) do
      local t0 = host.now()
      assert.equal("fb", policy.call(p, hook, "fb", nil, nil, {}))
      assert.is_true(host.now() - t0 < 1, hook)
    end
    assert.same({ false, "handled x" }, { policy.call(p, "ok", "fb", error, nil, {}) })
  end)

  it("a hook that allocates without bound is stopped at mem_mb and its garbage freed", function()
    collectgarbage()
    local before = collectgarbage("count")
    local logged
    local p = policy.load_string([[
      return { name = "m", f = function() local t = {} while true do t[#t + 1] = { 1, 2, 3, 4 } end end }
    ]], "=m", { budget = { hook_ms = 20000, mem_mb = 32 } })
    assert.equal("fb", policy.call(p, "f", "fb", function(e) logged = e end, nil, {}))
    assert.matches("budget exceeded: grew the Lua heap by more than 32 MB %(policy_budget%.mem_mb%)", logged)
    collectgarbage()
    assert.is_true(collectgarbage("count") - before < 8 * 1024)
  end)

  it("restores a hook that was in place before", function()
    local calls = 0
    local function mine() calls = calls + 1 end
    debug.sethook(mine, "", 100000)
    local p = policy.load_string("return { name = 'r', f = function() while true do end end }", "=r",
      { budget = { hook_ms = 10 } })
    assert.equal("fb", policy.call(p, "f", "fb", nil, nil, {}))
    local h, mask, count = debug.gethook()
    debug.sethook()
    assert.equal(mine, h)
    assert.equal("", mask)
    assert.equal(100000, count)
  end)

  it("a hook reached from inside another policy's hook runs under the outer budget", function()
    local inner = policy.load_string("return { name = 'inner', f = function() while true do end end }", "=inner",
      { budget = { hook_ms = 100000 } })
    local outer = policy.load_string("return { name = 'outer', f = function() return call_inner() end }", "=outer", {
      budget = { hook_ms = 30 },
      globals = { call_inner = function() return policy.call(inner, "f", "inner fallback", nil, nil, {}) end },
    })
    local t0 = host.now()
    assert.equal("outer fallback", policy.call(outer, "f", "outer fallback", nil, nil, {}))
    assert.is_true(host.now() - t0 < 1)
    assert.is_nil(debug.gethook())
  end)

  it("the shipped policies load, configure and self-check well within the default budget", function()
    local stops = {}
    for _, name in ipairs({ "task_types", "code_patterns", "rate_limit", "circuit_breaker", "worker_threshold",
      "timestamps", "key_rotation" }) do
      local t0 = host.now()
      local p = policy.load_file("policies/" .. name .. ".lua", {
        on_budget = function(hook, msg) stops[#stops + 1] = name .. "." .. hook .. ": " .. msg end })
      assert(policy.configure(p, {}))
      local ms = (host.now() - t0) * 1000
      assert.is_true(ms < policy.DEFAULT_BUDGET.load_ms / 10, name .. " took " .. ms .. " ms")
    end
    assert.same({}, stops)
  end)
end)

describe("policy budget and the shipped controller hooks #host", function()
  local host = require "workproof.host"

  it("the hooks on the request path stay far inside the default hook budget, 100 KB of code included", function()
    local stops, errors = {}, {}
    local function load(name, conf)
      local p = policy.load_file("policies/" .. name .. ".lua", { clock = host.time,
        on_budget = function(hook, msg) stops[#stops + 1] = name .. "." .. hook .. ": " .. msg end })
      return p, assert(policy.configure(p, conf or {}))
    end
    local function on_error(e) errors[#errors + 1] = e end
    local worst = 0
    local function call(p, hook, ...)
      local t0 = host.now()
      local r = { policy.call(p, hook, "FALLBACK", on_error, "ABSENT", ...) }
      worst = math.max(worst, host.now() - t0)
      assert.are_not.equal("FALLBACK", r[1], hook)
      assert.are_not.equal("ABSENT", r[1], hook)
      return unpack(r)
    end
    local tt, ttc = load("task_types")
    local cp, cpc = load("code_patterns")
    local rl, rlc = load("rate_limit", { trusted_proxies = { "10.0.0.0/8" } })
    local cb, cbc = load("circuit_breaker")
    local wt, wtc = load("worker_threshold")
    local body = { taskType = "data-transformation", code = "print(1)", language = "lua", inputData = { 1, 2 } }
    local def = call(tt, "resolve", ttc, body.taskType, body)
    assert.same({ 1, 2 }, call(tt, "worker_input", ttc, def, body))
    -- the largest code the controller accepts by default (limits.max_code)
    local code = ("const a = [1, 2, 3].map((x) => x * 2); console.log(a.join(','));\n"):rep(1600):sub(1, 102400)
    for _ = 1, 3 do
      local t0 = host.now()
      assert.is_nil((policy.call(cp, "check", "FALLBACK", on_error, nil, cpc, "javascript", code)))
      worst = math.max(worst, host.now() - t0)
    end
    local st, bst, wst = {}, {}, {}
    for i = 1, 200 do
      local key = call(rl, "client_key", rlc, "10.0.0.1", { ["x-forwarded-for"] = "2001:db8::" .. i .. ", 10.1.1.1" })
      call(rl, "check", rlc, st, key, 1000 + i)
      call(cb, "allow", cbc, bst, 1000 + i)
      call(wt, "admit", wtc, wst, key)
      call(wt, "release", wtc, wst, key)
      call(cb, "record", cbc, bst, 1000 + i, { verdict = "VALID", infra = false })
    end
    assert.same({}, stops)
    assert.same({}, errors)
    -- a tenth of the budget; a sanitizer build (make test-asan sets
    -- ASAN_OPTIONS) runs everything several times slower and a collector
    -- pause on a shared machine lands on one call: half the budget there
    local bound = policy.DEFAULT_BUDGET.hook_ms / (os.getenv("ASAN_OPTIONS") and 2 or 10)
    assert.is_true(worst * 1000 < bound, "slowest hook call: " .. worst * 1000 .. " ms")
  end)
end)
