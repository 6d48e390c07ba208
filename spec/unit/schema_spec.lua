-- SPDX-License-Identifier: MIT
local schema = require "workproof.schema"
local h = require "helpers"

describe("schema.validate", function()
  local fields = {
    limit = { type = "integer", default = 100, min = 1, max = 1000 },
    mode = { type = "string", one_of = { "warn", "block" }, default = "block" },
    name = { type = "string", required = true, match = "^[a-z]+$", max = 8 },
    window = { type = "record", fields = { seconds = { type = "number", min = 1, default = 60 } } },
    cidrs = { type = "array", elements = { type = "string" }, default = {} },
    weights = { type = "map", keys = { type = "string" }, values = { type = "number" } },
    even = { type = "integer", custom = function(v) return v % 2 == 0, "must be even" end },
  }

  it("fills defaults, including nested records", function()
    local conf = assert(schema.validate(fields, { name = "abc" }))
    assert.same({ limit = 100, mode = "block", name = "abc", window = { seconds = 60 }, cidrs = {} }, conf)
  end)

  it("does not share default tables between configs", function()
    local a = assert(schema.validate(fields, { name = "a" }))
    local b = assert(schema.validate(fields, { name = "b" }))
    a.cidrs[1] = "x"
    assert.same({}, b.cidrs)
  end)

  it("reports every error at once, keyed by field, nested for records and arrays", function()
    local errs = h.refused_config(schema.validate, fields, {
      limit = 1.5, mode = "drop", bogus = true,
      window = { seconds = 0, extra = 1 },
      cidrs = { "ok", 7 },
      weights = { a = "heavy" },
      even = 3,
    })
    assert.same({
      limit = "expected an integer",
      mode = "expected one of: warn, block",
      bogus = "unknown field",
      name = "required field missing",
      window = { seconds = "must be >= 1", extra = "unknown field" },
      cidrs = { [2] = "expected a string" },
      weights = { a = "expected a number" },
      even = "must be even",
    }, errs)
  end)

  it("suggests the closest known field for an unknown one (edit distance <= 2)", function()
    local _, errs = schema.validate(fields, { name = "a", limt = 5, mdoe = "warn", windw = { secnds = 2 },
      weihgts = {}, completely_else = 1, [7] = true, cidr = {} })
    assert.same({
      limt = "unknown field (did you mean 'limit'?)",          -- one deletion
      mdoe = "unknown field (did you mean 'mode'?)",           -- a swap is two edits
      windw = "unknown field (did you mean 'window'?)",
      weihgts = "unknown field (did you mean 'weights'?)",
      completely_else = "unknown field",                       -- nothing close: no guess
      [7] = "unknown field",                                   -- not a name at all
      cidr = "unknown field (did you mean 'cidrs'?)",
    }, errs)
    -- nested records suggest from their own fields
    _, errs = schema.validate(fields, { name = "a", window = { secnds = 2 } })
    assert.same({ window = { secnds = "unknown field (did you mean 'seconds'?)" } }, errs)
    assert.equal("listen", schema.closest("lisen", { "listen", "log_level", "store" }))
    assert.is_nil(schema.closest("lsn", { "listen" }))                  -- three edits away
    assert.equal("ab", schema.closest("ac", { "ad", "ab" }))           -- ties: alphabetical
    assert.equal("x", schema.closest("", { "x", "yyy" }))
    assert.is_nil(schema.closest("abc", {}))
    assert.is_nil(schema.closest(nil, { "a" }))
  end)

  it("checks ranges and patterns", function()
    local _, errs = schema.validate(fields, { name = "ABC", limit = 5000 })
    assert.same({ name = "invalid value: ABC", limit = "must be <= 1000" }, errs)
    _, errs = schema.validate(fields, { name = "abcdefghij" })
    assert.same({ name = "length must be <= 8" }, errs)
  end)

  it("rejects non-tables and sparse arrays", function()
    local _, errs = schema.validate(fields, 42)
    assert.same({ ["@"] = "expected a table" }, errs)
    _, errs = schema.validate(fields, { name = "a", cidrs = { [1] = "a", [3] = "c" } })
    assert.same({ cidrs = "expected an array" }, errs)
    _, errs = schema.validate(fields, { name = "a", limit = 0 / 0 })
    assert.same({ limit = "expected an integer" }, errs)
  end)

  it("formats nested errors as sorted lines", function()
    local _, errs = schema.validate(fields, { window = { seconds = 0 }, mode = 1 })
    assert.same({
      "mode: expected a string",
      "name: required field missing",
      "window.seconds: must be >= 1",
    }, schema.format_errors(errs))
  end)
end)

describe("schema.check_schema", function()
  it("accepts a good schema and rejects bad ones with the field named", function()
    assert.is_true(schema.check_schema({ a = { type = "string" } }))
    local ok, errs = schema.check_schema({ a = { type = "strnig" }, b = "x",
      c = { type = "integer", default = "ten" }, d = { type = "record", fields = { e = { type = 1 } } } })
    assert.is_nil(ok)
    assert.same({
      a = "unknown type 'strnig'",
      b = "field definition must be a table",
      c = "default does not validate: expected an integer",
      ["d.e"] = "unknown type '1'",
    }, errs)
  end)
end)
