-- SPDX-License-Identifier: MIT
-- Controller configuration (lua/workproof/config.lua): the embedded defaults
-- run every controller policy; a config keeps the ones it does not name.
local config = require "workproof.config"
local h = require "helpers"

local POLICIES = { "circuit_breaker", "code_patterns", "rate_limit", "task_types", "worker_threshold" }

local function names(conf)
  local t = {}
  for name, pc in pairs(conf.policies) do if pc.enabled then t[#t + 1] = name end end
  table.sort(t)
  return t
end

local function load_src(src)
  local dir = h.tmpdir()
  h.write(dir .. "/c.lua", src)
  return config.load(dir .. "/c.lua")
end

describe("config", function()
  it("the embedded defaults enable all five policies", function()
    assert.same(POLICIES, names(config.load(nil)))
    assert.same(POLICIES, names(config.defaults()))
  end)

  it("the shipped example configs enable all five policies", function()
    assert.same(POLICIES, names(config.load("examples/config.lua")))
    assert.same(POLICIES, names(config.load("examples/local.lua")))
  end)

  it("naming one policy keeps the others on", function()
    local c = load_src("return { policies = { rate_limit = { config = { limit = 5 } } } }")
    assert.same(POLICIES, names(c))
    assert.equal(5, c.policies.rate_limit.config.limit)
  end)

  it("a policy is off only when the config says so", function()
    local c = load_src("return { policies = { code_patterns = { enabled = false } } }")
    assert.same({ "circuit_breaker", "rate_limit", "task_types", "worker_threshold" }, names(c))
  end)

  it("rejects unknown keys, bad types and payments without a chain, naming the file", function()
    assert.has_error(function() load_src("return { lisen = '1:2' }") end)
    local ok, err = pcall(load_src, "return { policies = { rate_limit = { enabled = 'yes' } } }")
    assert.is_false(ok)
    assert.truthy(err:find("policies.rate_limit.enabled: expected a boolean", 1, true), err)
    ok, err = pcall(load_src, "return { payments = { enabled = true } }")
    assert.is_false(ok)
    assert.truthy(err:find("payments need the chain", 1, true), err)
    ok, err = pcall(load_src, "return {")
    assert.is_false(ok)
    assert.truthy(err:find("c.lua:1:", 1, true), err)
  end)
end)
