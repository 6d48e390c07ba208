-- SPDX-License-Identifier: MIT
-- The task sees the client's input exactly, and the taskHash binds the
-- language. Real sandboxed workers and a real controller:
--   * wp.worker.run: inputJson reaches both runtimes digit for digit (-0,
--     key order, index keys, duplicates), an `input` value is sent without
--     loss, malformed inputJson is the worker's BAD_TASK;
--   * the controller, differentially: seeded random inputData batches go to
--     a JavaScript task printing JSON.stringify(input) — its output must be
--     what `node` prints for JSON.parse of the same text (VALID against that
--     hash) — and to a Lua task printing its input with %.17g numbers, which
--     must be what a lossless decode of the text prints;
--   * language is a fifth hashed key when it is not "javascript".
local wp = require "workproof"
local json = require "workproof.json"
local cjson = require "cjson.safe"
local h = require "helpers"
local gen = dofile("spec/fixtures/json_gen.lua")

local concat = table.concat

local sha = h.sha

local JS_CODE = [[
const minusZero = (k, v) => (Object.is(v, -0) ? "minus zero" : v);
console.log(JSON.stringify(input));
console.log(JSON.stringify(input, minusZero));
]]

-- the Lua task: its input printed with every digit (%.17g reads back exactly)
local LUA_CODE = [[
local function ser(v)
  local t = type(v)
  if v == null then return "null" end
  if t == "number" then return string.format("%.17g", v) end
  if t == "string" then return string.format("%q", v) end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    local parts = {}
    if #v > 0 then
      for i = 1, #v do parts[i] = ser(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do parts[i] = string.format("%q", k) .. ":" .. ser(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  return "?" .. t
end
print(ser(input))
]]

-- what LUA_CODE prints for a correct lossless decode of `text`: the same
-- chunk, run here on json.decode_ordered's tree (tonumber: correctly rounded)
local NULL = setmetatable({}, { __name = "null" })
local function plain(v)
  if v == json.null then return NULL end
  if type(v) ~= "table" then return v end
  local t = {}
  if v[json.ARRAY] then
    for i = 1, v[json.ARRAY] do t[i] = plain(v[i]) end
  else
    for _, k in ipairs(v[json.ORDER]) do t[k] = plain(v[k]) end
  end
  return t
end
local function lua_expected(text)
  local out = {}
  local chunk = assert(loadstring(LUA_CODE, "=task"))
  setfenv(chunk, { input = plain(assert(json.decode_ordered(text))), null = NULL, string = string, table = table,
    type = type, pairs = pairs, ipairs = ipairs, tostring = tostring,
    print = function(s) out[#out + 1] = s end })
  chunk()
  return concat(out, "\n")
end

-- node's output of JS_CODE for each text (one node process for all)
local function node_expected(texts)
  local dir = h.tmpdir()
  h.write(dir .. "/in.json", cjson.encode(texts))
  h.write(dir .. "/run.js", [[
const fs = require('fs');
const minusZero = (k, v) => (Object.is(v, -0) ? "minus zero" : v);
const out = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')).map((text) => {
  const input = JSON.parse(text);
  return JSON.stringify(input) + '\n' + JSON.stringify(input, minusZero);
});
fs.writeFileSync(process.argv[3], JSON.stringify(out));
]])
  assert(os.execute(("node %s %s %s"):format(h.q(dir .. "/run.js"), h.q(dir .. "/in.json"),
    h.q(dir .. "/out.json"))) == 0, "node failed")
  local out = cjson.decode(h.slurp(dir .. "/out.json"))
  os.execute("rm -rf " .. h.q(dir))
  return out
end

local function wtask(lang, code, extra)
  local t = { jobId = "exact-" .. lang .. "-" .. tostring(math.random(1e9)), language = lang, code = code,
    timeoutMs = 10000 }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local EDGE = '{"b":1.0000000000000002,"a":12345678901234567,"2":"two","1":"one","z":-0,"a":[-0,0.1,1e21,5e-324,'
  .. '1.7976931348623157e308,1e-7,"\\u00e9\\ud83d\\ude00"],"n":null}'

describe("wp.worker.run: the task's input is exact", function()
  it("JavaScript sees inputJson as JSON.parse of the text (every digit, -0, key order)", function()
    local want = node_expected({ EDGE })[1]
    assert.equal('{"1":"one","2":"two","b":1.0000000000000002,"a":[0,0.1,1e+21,5e-324,1.7976931348623157e+308,'
      .. '1e-7,"é😀"],"z":0,"n":null}', want:match("^[^\n]*"))
    local r, err = wp.worker.run(wtask("javascript", JS_CODE, { inputJson = EDGE }))
    assert.is_table(r, err)
    assert.equal(sha(want), r.actualHash, tostring(r.error))
  end)

  it("Lua sees inputJson decoded without loss", function()
    local r, err = wp.worker.run(wtask("lua", LUA_CODE, { inputJson = EDGE }))
    assert.is_table(r, err)
    local want = lua_expected(EDGE)
    assert.matches('"b":1.0000000000000002', want, 1, true)
    assert.matches('"z":-0', want, 1, true)
    assert.equal(sha(want), r.actualHash, tostring(r.error))
  end)

  it("an `input` value is sent without loss (not lua-cjson's 14 digits)", function()
    local input = { 1.0000000000000002, 12345678901234567, { b = 0.1, a = 2 ^ -1074 } }
    local r, err = wp.worker.run(wtask("javascript", "console.log(JSON.stringify(input))", { input = input }))
    assert.is_table(r, err)
    assert.equal(sha('[1.0000000000000002,12345678901234568,{"a":5e-324,"b":0.1}]'), r.actualHash)
  end)

  it("refuses an input no JSON can carry, and malformed inputJson is BAD_TASK", function()
    local r, err = wp.worker.run(wtask("lua", "print(1)", { input = { 1, math.huge } }))
    assert.is_nil(r)
    assert.matches("^EINVAL: input%[1%]: number out of range", err)
    assert.has_error(function() wp.worker.run(wtask("lua", "print(1)", { inputJson = 5 })) end)
    for _, lang in ipairs({ "lua", "javascript" }) do
      r, err = wp.worker.run(wtask(lang, "print(1)", { inputJson = "{bad" }))
      assert.is_table(r, err)
      assert.matches("^BAD_TASK: inputJson is not valid JSON", r.error)
    end
  end)
end)

local CONFIG = h.config("limits = { timeout_min = 1 },", { rate_limit = "{ config = { limit = 100000 } }" })

describe("controller #integration: input and taskHash exactness", function()
  local srv = h.controller_for(CONFIG)

  local function post(body) return h.verify(srv, body) end

  local function request(lang, code, input_text, expected)
    return '{"taskType":"data-transformation","language":"' .. lang .. '","code":' .. cjson.encode(code)
      .. ',"expectedHash":"' .. expected .. '","inputData":' .. input_text .. '}'
  end

  it("random inputData: the JS task prints what node prints, the Lua task what a lossless decode gives", function()
    local G = gen(0x5EED1234)
    local batches, cur, size, ndocs = {}, {}, 0, 0
    while ndocs < 1500 do
      local d = G.document(false)
      -- the controller refuses what JSON.parse cannot read like lua-cjson
      if cjson.decode(d) ~= nil and json.check_js(d) then
        cur[#cur + 1] = d
        ndocs = ndocs + 1
        size = size + #d
        if size > 12000 then
          batches[#batches + 1] = "[" .. concat(cur, ",") .. "]"
          cur, size = {}, 0
        end
      end
    end
    if #cur > 0 then batches[#batches + 1] = "[" .. concat(cur, ",") .. "]" end
    batches[#batches + 1] = EDGE
    local want = node_expected(batches)
    for i, text in ipairs(batches) do
      local st, r = post(request("javascript", JS_CODE, text, sha(want[i])))
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result, "JavaScript, batch " .. i .. ": " .. text .. "\nnode: " .. want[i])
      st, r = post(request("lua", LUA_CODE, text, sha(lua_expected(text))))
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result, "Lua, batch " .. i .. ": " .. text)
    end
  end)

  it("language is hashed when it is not javascript; an explicit javascript changes nothing", function()
    local code = "print(1)"   -- valid Lua, and JavaScript with a print() missing: it only has to hash
    local base = '{"taskType":"code-execution","code":"' .. code .. '","expectedHash":"' .. sha("1") .. '"'
    local _, as_lua = post(base .. ',"language":"lua"}')
    local _, as_js = post(base .. ',"language":"javascript"}')
    local _, as_default = post(base .. "}")
    local js = '{"taskType":"code-execution","code":"print(1)","expectedHash":"' .. sha("1") .. '"}'
    assert.equal(sha(js), as_default.taskHash)
    assert.equal(as_default.taskHash, as_js.taskHash)
    assert.equal(sha(js:sub(1, -2) .. ',"language":"lua"}'), as_lua.taskHash)
    assert.are_not.equal(as_js.taskHash, as_lua.taskHash)
  end)

  it("inputData is hashed as node prints it (duplicates, index keys, -0, exponents)", function()
    local code = 'print(string.format("%.17g", input[1]))'
    local body = '{"code":' .. cjson.encode(code) .. ',"inputData":[1.0000000000000002, {"b":1}],'
      .. '"taskType":"data-transformation","language":"lua","expectedHash":"' .. sha("1.0000000000000002") .. '",'
      .. '"inputData":[1.0000000000000002,{"b":1,"a":2,"1":3,"b":4}, -0, 1E2]}'
    local st, r = post(body)
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
    assert.equal(sha('{"taskType":"data-transformation","code":' .. cjson.encode(code):gsub("\\/", "/")
      .. ',"expectedHash":"' .. sha("1.0000000000000002") .. '","inputData":[1.0000000000000002,{"1":3,"b":4,"a":2},'
      .. '0,100],"language":"lua"}'), r.taskHash)
  end)
end)
