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

  it("raises file:line on a syntax error", function()
    local ok, err = pcall(policy.load_file, FIX .. "syntax_error.lua")
    assert.is_false(ok)
    assert.matches("syntax_error%.lua:3:", err)
  end)

  it("raises file:line when the chunk reads an undefined global", function()
    local ok, err = pcall(policy.load_file, FIX .. "bad_global.lua")
    assert.is_false(ok)
    assert.matches("bad_global%.lua:2: undefined global 'undefined_thing'", err)
  end)

  it("raises for a missing file", function()
    local ok, err = pcall(policy.load_file, FIX .. "nope.lua")
    assert.is_false(ok)
    assert.matches("cannot open policy", err)
  end)
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
