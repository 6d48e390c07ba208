-- SPDX-License-Identifier: MIT
-- policies/task_types.lua: the registry of task types.
local policy = require "workproof.policy"
local cjson = require "cjson"

local FILE = "policies/task_types.lua"

local p

local function conf_of(c)
  return assert(policy.configure(p, c or {}))
end

before_each(function()
  p = policy.load_file(FILE)
end)

describe("task_types policy: schema", function()
  it("registers code-execution and data-transformation by default", function()
    assert.equal("task_types", p.name)
    assert.same({ types = {
      ["code-execution"] = {
        description = "run the code; its stdout hash is compared with expectedHash",
        input = "none", languages = { "javascript", "lua" }, require_input = false, max_input_bytes = 65536,
      },
      ["data-transformation"] = {
        description = "run the code on inputData (the worker's input); compare its stdout hash",
        input = "inputData", languages = { "javascript", "lua" }, require_input = true, max_input_bytes = 65536,
      },
    } }, conf_of())
    assert.same({ "code-execution", "data-transformation" }, p.names(conf_of()))
  end)

  it("fills the defaults of a type added through config", function()
    local conf = conf_of({ types = { ["hash-check"] = {} } })
    assert.same({ ["hash-check"] = {
      description = "", input = "inputData", languages = { "javascript", "lua" }, require_input = false,
      max_input_bytes = 65536,
    } }, conf.types)
  end)

  it("reports every bad setting exactly", function()
    local conf, errs = policy.configure(p, { types = {
      ["bad name"] = {},
      x = { input = "file", languages = {}, max_input_bytes = -1, require_input = "yes", extra = 1 },
      y = { languages = { "lua", "c++" }, description = 5 },
      z = "not a record",
    }, registry = {} })
    assert.is_nil(conf)
    assert.same({
      types = {
        ["bad name"] = "key: invalid value: bad name",
        x = {
          input = "expected one of: none, inputData",
          languages = "length must be >= 1",
          max_input_bytes = "must be >= 0",
          require_input = "expected a boolean",
          extra = "unknown field",
        },
        y = { languages = { [2] = "invalid value: c++" }, description = "expected a string" },
        z = "expected a record (table)",
      },
      registry = "unknown field",
    }, errs)
  end)

  it("refuses an empty registry", function()
    local _, errs = policy.configure(p, { types = {} })
    assert.same({ types = "at least one task type is required" }, errs)
  end)
end)

describe("task_types policy: resolve", function()
  local conf
  before_each(function() conf = conf_of() end)

  it("returns a copy of the definition with its name", function()
    local def = p.resolve(conf, "code-execution", { code = "x" })
    assert.same({
      name = "code-execution", description = "run the code; its stdout hash is compared with expectedHash",
      input = "none", languages = { "javascript", "lua" }, require_input = false, max_input_bytes = 65536,
    }, def)
    def.input = "changed"
    assert.equal("none", conf.types["code-execution"].input)
    local dt = p.resolve(conf, "data-transformation", { inputData = { a = 1 }, language = "lua" })
    assert.equal("data-transformation", dt.name)
    assert.equal("inputData", dt.input)
  end)

  it("names the known types when the type is unknown", function()
    local def, errs = p.resolve(conf, "x", {})
    assert.is_nil(def)
    assert.same({ taskType = "unknown task type 'x' (known: code-execution, data-transformation)" }, errs)
    def, errs = p.resolve(conf, nil, {})
    assert.is_nil(def)
    assert.same({ taskType = "unknown task type 'nil' (known: code-execution, data-transformation)" }, errs)
  end)

  it("requires inputData where the type says so; JSON null is absent", function()
    local def, errs = p.resolve(conf, "data-transformation", { code = "x" })
    assert.is_nil(def)
    assert.same({ inputData = "required for data-transformation" }, errs)
    def, errs = p.resolve(conf, "data-transformation", { inputData = cjson.null })
    assert.is_nil(def)
    assert.same({ inputData = "required for data-transformation" }, errs)
    assert.is_table(p.resolve(conf, "data-transformation", { inputData = 0 }))
    assert.is_table(p.resolve(conf, "data-transformation", { inputData = false }))
    assert.is_table(p.resolve(conf, "data-transformation", { inputData = "" }))
  end)

  it("limits the size of inputData by its JSON encoding", function()
    local c = conf_of({ types = { t = { max_input_bytes = 10 } } })
    assert.is_table(p.resolve(c, "t", { inputData = "0123456789" }))
    assert.is_table(p.resolve(c, "t", { inputData = { a = "12" } })) -- {"a":"12"}: 10 bytes
    local _, errs = p.resolve(c, "t", { inputData = "01234567890" })
    assert.same({ inputData = "larger than 10 bytes (max_input_bytes of t)" }, errs)
    _, errs = p.resolve(c, "t", { inputData = { a = "123" } }) -- 11 bytes
    assert.same({ inputData = "larger than 10 bytes (max_input_bytes of t)" }, errs)
    assert.is_table(p.resolve(c, "t", { inputData = { 1, 2, 3 } })) -- [1,2,3]: 7 bytes
    assert.is_table(p.resolve(c, "t", { inputData = 12345678.5 }))
  end)

  it("takes the host's description of inputData instead of reading body.inputData", function()
    local c = conf_of({ types = { t = { max_input_bytes = 10, require_input = true } } })
    -- a body whose inputData raises when read: the description must do
    local body = setmetatable({ code = "x" }, { __index = function(_, k)
      if k == "inputData" then error("inputData read") end
    end })
    assert.is_table(p.resolve(c, "t", body, { type = "object", bytes = 10 }))
    local _, errs = p.resolve(c, "t", body, { type = "array", bytes = 11 })
    assert.same({ inputData = "larger than 10 bytes (max_input_bytes of t)" }, errs)
    _, errs = p.resolve(c, "t", body, { type = "null", bytes = 4 })
    assert.same({ inputData = "required for t" }, errs)
  end)

  it("checks the language against the type's languages", function()
    local c = conf_of({ types = { js = { languages = { "javascript" } } } })
    assert.is_table(p.resolve(c, "js", {}))
    assert.is_table(p.resolve(c, "js", { language = "javascript" }))
    assert.is_table(p.resolve(c, "js", { language = cjson.null }))
    local _, errs = p.resolve(c, "js", { language = "lua" })
    assert.same({ language = "'lua' is not accepted by task type 'js' (accepted: javascript)" }, errs)
    -- a non-string language is the controller's to report
    assert.is_table(p.resolve(c, "js", { language = 5 }))
  end)

  it("reports every problem of a request at once", function()
    local c = conf_of({ types = { js = { languages = { "javascript" }, require_input = true } } })
    local _, errs = p.resolve(c, "js", { language = "lua" })
    assert.same({
      language = "'lua' is not accepted by task type 'js' (accepted: javascript)",
      inputData = "required for js",
    }, errs)
  end)

  it("tolerates a body that is not a table", function()
    assert.is_table(p.resolve(conf, "code-execution", nil))
    local _, errs = p.resolve(conf, "data-transformation", "junk")
    assert.same({ inputData = "required for data-transformation" }, errs)
  end)
end)

describe("task_types policy: worker_input", function()
  local conf
  before_each(function() conf = conf_of() end)

  it("passes inputData to the worker only for input = inputData", function()
    local body = { inputData = { numbers = { 1, 2, 3 } } }
    local dt = p.resolve(conf, "data-transformation", body)
    assert.equal(body.inputData, p.worker_input(conf, dt, body))
    local ce = p.resolve(conf, "code-execution", body)
    assert.is_nil(p.worker_input(conf, ce, body))
    assert.equal("text", p.worker_input(conf, dt, { inputData = "text" }))
    assert.equal(false, p.worker_input(conf, dt, { inputData = false }))
  end)

  it("answers with the host's description (inputData as sent) when it has one", function()
    local dt = p.resolve(conf, "data-transformation", { inputData = 1 })
    local ce = p.resolve(conf, "code-execution", {})
    local body = setmetatable({}, { __index = function() error("inputData read") end })
    local input = { type = "object", bytes = 7 }
    assert.equal(input, p.worker_input(conf, dt, body, input))
    assert.is_nil(p.worker_input(conf, ce, body, input))
    assert.is_nil(p.worker_input(conf, dt, body, { type = "null", bytes = 4 }))
  end)

  it("gives nil for JSON null, a missing def or a missing body", function()
    local dt = p.resolve(conf, "data-transformation", { inputData = 1 })
    assert.is_nil(p.worker_input(conf, dt, { inputData = cjson.null }))
    assert.is_nil(p.worker_input(conf, dt, {}))
    assert.is_nil(p.worker_input(conf, nil, { inputData = 1 }))
    assert.is_nil(p.worker_input(conf, dt, nil))
  end)

  it("serves a type added through config", function()
    local c = conf_of({ types = {
      ["code-execution"] = { input = "none" },
      ["json-query"] = { description = "jq-like", input = "inputData", require_input = true,
        languages = { "javascript" }, max_input_bytes = 1024 },
    } })
    local body = { inputData = { q = ".a" }, language = "javascript" }
    local def = assert(p.resolve(c, "json-query", body))
    assert.same({ q = ".a" }, p.worker_input(c, def, body))
    local _, errs = p.resolve(c, "data-transformation", body)
    assert.same({ taskType = "unknown task type 'data-transformation' (known: code-execution, json-query)" }, errs)
  end)
end)
