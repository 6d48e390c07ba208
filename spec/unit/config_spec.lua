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
    ok, err = pcall(load_src, "return { worker = { pool = { lua = -1, javascript = 'x', ruby = 1 } } }")
    assert.is_false(ok)
    for _, want in ipairs({ "worker.pool.lua: must be >= 0", "worker.pool.javascript: expected an integer",
      "worker.pool.ruby" }) do
      assert.truthy(err:find(want, 1, true), err)
    end
  end)

  it("keeps warm workers by default: 4 Lua, 2 JavaScript", function()
    assert.same({ lua = 4, javascript = 2 }, config.defaults().worker.pool)
  end)
end)

describe("examples/config.lua", function()
  local schema = require "workproof.schema"
  local src = h.read("examples/config.lua")

  -- every dotted path of the schema: records are walked, a map (policies)
  -- or an array (flow) is one setting
  local function paths(fields, prefix, out)
    for name, def in pairs(fields) do
      local p = prefix .. name
      out[#out + 1] = p
      if def.type == "record" and def.fields then paths(def.fields, p .. ".", out) end
    end
    return out
  end

  it("names every setting of the schema (set or commented out)", function()
    local missing = {}
    for _, p in ipairs(paths(config.schema, "", {})) do
      -- each name of the path appears as a key, in order, after the one before
      local at = 1
      for name in p:gmatch("[^.]+") do
        local s = src:find("%f[%w_]" .. name .. "%s*=", at)
        if not s then missing[#missing + 1] = p break end
        at = s + #name
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)

  it("loads, validates and equals the embedded defaults for what it sets", function()
    local conf = config.load("examples/config.lua")
    local defaults = config.defaults()
    -- the settings written out have their default values
    local env = { os = { getenv = function() return nil end } }
    local raw = assert(load(src, "=examples/config.lua", "t", env))()
    local function same_as_default(t, d, p)
      for k, v in pairs(t) do
        if type(v) == "table" and type(d[k]) == "table" and not schema.is_array(v) and k ~= "policies" then
          same_as_default(v, d[k], p .. k .. ".")
        elseif k ~= "policies" then
          assert.same(d[k], v, "examples/config.lua: " .. p .. k .. " is not its default")
        end
      end
    end
    same_as_default(raw, defaults, "")
    assert.equal(defaults.listen, conf.listen)
  end)

  it("the walk finds a missing key (the check can fail)", function()
    local fields = { a = { type = "record", fields = { bb = { type = "string" } } } }
    assert.same({ "a", "a.bb" }, (function() local t = paths(fields, "", {}) table.sort(t) return t end)())
    assert.is_nil(("return { a = { } }"):find("%f[%w_]bb%s*="))
  end)
end)
