-- SPDX-License-Identifier: MIT
-- JSON as JavaScript prints it: expected strings were produced by node's
-- JSON.stringify (node -e 'console.log(JSON.stringify(JSON.parse(s)))').
local json = require "workproof.json"
local cjson = require "cjson.safe"

local function roundtrip(s) return json.stringify(assert(json.decode_ordered(s))) end

describe("json.decode_ordered + stringify (JSON.stringify parity)", function()
  local cases = {
    { '{ "b": 1, "a": [1, 2, {"z": null, "y": true}] }', '{"b":1,"a":[1,2,{"z":null,"y":true}]}' },
    { '"a/b"', '"a/b"' },
    { '"\\u00e9t\\u00e9 \\/ \\ud83d\\ude00"', '"été / 😀"' },
    { '"tab\\tnl\\ncr\\rff\\fbs\\bq\\"bs\\\\"', '"tab\\tnl\\ncr\\rff\\fbs\\bq\\"bs\\\\"' },
    { '"\\u0001\\u001f\\u007f"', '"\\u0001\\u001f\127"' },
    { '"\\ud800x"', '"\\ud800x"' },
    { '{"a":1,"b":2,"a":3}', '{"a":3,"b":2}' },
    { "[1.0, -0, 1e21, 1e20, 123456789012345680000, 0.1, 1e-7, 1.5e-6, 5e-324, 1.7976931348623157e308]",
      "[1,0,1e+21,100000000000000000000,123456789012345680000,0.1,1e-7,0.0000015,5e-324,1.7976931348623157e+308]" },
    { "[2.5E+3, 12.34e-2, -0.000001, 1.5, 0.000123, 123e-20, 4.35, 1e300]",
      "[2500,0.1234,-0.000001,1.5,0.000123,1.23e-18,4.35,1e+300]" },
    { "[]", "[]" }, { "{}", "{}" }, { " 7 ", "7" },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() assert.equal(c[2], roundtrip(c[1])) end)
  end
end)

describe("json.decode_ordered rejects malformed input", function()
  local bad = {
    "", "{", "[1,]", "{\"a\":}", "{'a':1}", "[01]", "[1.]", "[.5]", "[1e]", "[+1]", "nul", "[1] x",
    '"unterminated', '"bad \\x escape"', '"\\u12"', '"raw\ncontrol"', "{\"a\" 1}", "[1 2]", "{1:2}",
  }
  for _, s in ipairs(bad) do
    it(("%q"):format(s), function()
      local v, err = json.decode_ordered(s)
      assert.is_nil(v)
      assert.matches("at byte %d+", err)
    end)
  end

  it("limits nesting depth", function()
    local deep = ("["):rep(100) .. ("]"):rep(100)
    local v, err = json.decode_ordered(deep, 64)
    assert.is_nil(v)
    assert.matches("nesting too deep", err)
    assert.truthy(json.decode_ordered(deep, 200))
  end)

  it("raises on a non-string (a caller bug)", function()
    assert.has_error(function() json.decode_ordered(42) end)
  end)
end)

describe("json.object and the taskHash shape", function()
  it("omits nil members like JSON.stringify omits undefined", function()
    assert.equal('{"taskType":"code-execution","code":"console.log(2 + 2)","inputData":{"x":[1]}}',
      json.stringify(json.object("taskType", "code-execution", "code", "console.log(2 + 2)",
        "expectedHash", nil, "inputData", assert(json.decode_ordered('{"x":[1]}')))))
  end)
end)

describe("json.utf8_valid", function()
  it("accepts valid and rejects invalid UTF-8", function()
    assert.is_true(json.utf8_valid("plain ascii"))
    assert.is_true(json.utf8_valid("été 😀 中文"))
    for _, s in ipairs({ "\128", "\192\128", "\224\128\128", "\237\160\128", "\244\144\128\128", "\255", "é\195" }) do
      assert.is_false(json.utf8_valid(s), ("%q"):format(s))
    end
  end)
end)

describe("JavaScript's key order and number forms", function()
  it("prints array-index keys first, ascending, then the rest in insertion order", function()
    assert.equal('{"0":1,"2":1,"10":1,"4294967294":1,"b":1,"4294967295":1,"01":1,"-1":1,"a":1}',
      json.canonical('{"b":1,"4294967295":1,"10":1,"01":1,"2":1,"-1":1,"4294967294":1,"0":1,"a":1}'))
    local tree = assert(json.decode_ordered('{"b":1,"1":2,"a":3,"0":4}'))
    assert.same({ "0", "1", "b", "a" }, tree[json.ORDER])
    assert.equal('{"0":4,"1":2,"b":1,"a":3}', json.stringify(tree))
  end)

  it("keeps a repeated key at its first position with its last value", function()
    assert.equal('{"a":3,"b":2,"c":{"x":[1]}}', json.canonical('{"a":1,"b":2,"a":3,"c":{"x":0},"c":{"x":[1]}}'))
  end)

  it("prints numbers as Number.prototype.toString (ties to even, powers of two, subnormals)", function()
    local cases = {
      { 2 ^ -25, "2.9802322387695312e-8" },   -- a tie at 17 digits: the even one
      { 2 ^ -1074, "5e-324" }, { 2 ^ 1023, "8.98846567431158e+307" }, { 2 ^ 70, "1.1805916207174113e+21" },
      { 12345678901234567, "12345678901234568" }, { 1.0000000000000002, "1.0000000000000002" },
      { -0.0, "0" }, { 1e21, "1e+21" }, { 1e-7, "1e-7" }, { 0.000001, "0.000001" }, { 123e-20, "1.23e-18" },
      { 0 / 0, "null" }, { math.huge, "null" }, { -math.huge, "null" }, { 2 ^ 53, "9007199254740992" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], json.js_number(c[1]), c[2]) end
  end)

  it("keeps number spellings JavaScript prints as written, and rewrites the others", function()
    assert.equal("[1.5,-0.25,0.000001,1e-7,100,0,1,10,1.23,12345678901234568,123456789012345]",
      json.canonical("[1.5,-0.25,0.000001,0.0000001,1E2,-0,1.0,10.00,1.230,12345678901234567,123456789012345]"))
  end)

  it("rewrites only the escapes JSON.stringify does not print", function()
    assert.equal('"/é😀\\n\\u0001\\"\\\\\\ud800"', json.canonical('"\\/\\u00E9\\ud83d\\ude00\\n\\u0001\\"\\\\\\uD800"'))
    assert.equal('"\\b\\t\\u001f"', json.canonical('"\\u0008\\u0009\\u001F"'))
  end)

  it("stringify of plain Lua values: arrays, sorted objects, cjson.null, exact numbers", function()
    assert.equal('[1.0000000000000002,{"2":true,"a":null,"b":"x"},[]]',
      json.stringify({ 1.0000000000000002, { b = "x", a = cjson.null, ["2"] = true }, json.decode_ordered("[]") }))
    assert.has_error(function() json.stringify({ 1, 2, x = 3 }) end)
    assert.has_error(function() json.stringify(print) end)
  end)
end)

describe("json.canonical and json.task_json (core/src/json.c) refuse malformed input", function()
  local bad = {
    "", " ", "{", "[1,]", "{\"a\":}", "{'a':1}", "[01]", "[-01]", "[1.]", "[.5]", "[1e]", "[1e+]", "[+1]", "[-]",
    "nul", "tru", "[1] x", "[1]]", "{}}", '"unterminated', '"bad \\x escape"', '"\\u12"', '"\\u12g4"',
    '"raw\ncontrol"', '"tab\tin string"', "{\"a\" 1}", "[1 2]", "{1:2}", '{"a":1,}', '{"a":1 "b":2}', "[1,,2]",
    '"\\', "\0", "[NaN]", "[Infinity]", "[0x10]", "\239\187\191{}", '"\255"', '"\192\128"',
    '"\237\160\128"', '"\244\144\128\128"', '"\226\130"', "[1-2]", '"\\u12G4"',
  }
  for _, s in ipairs(bad) do
    it(("%q"):format(s), function()
      local v, err = json.canonical(s)
      assert.is_nil(v)
      assert.matches("at byte %d+$", err)
      local t, terr = json.task_json('{"code":' .. s .. "}", "lua")
      assert.is_nil(t)
      assert.matches("at byte %d+$", terr)
      local r, rerr = json.request('{"code":' .. s .. "}", 32)
      assert.is_nil(r)
      assert.matches("at byte %d+$", rerr)
    end)
  end

  it("names the failure and where it is", function()
    assert.same({ nil, "invalid UTF-8 at byte 3" }, { json.canonical('"a\255"') })
    assert.same({ nil, "control character in string at byte 3" }, { json.canonical('"a\nb"') })
    assert.same({ nil, "nesting too deep at byte 3" }, { json.canonical("[[[1]]]", 2) })
    assert.same({ nil, "trailing data at byte 5" }, { json.canonical("[1] 2") })
    assert.same({ nil, "expected a JSON object at byte 1" }, { json.task_json("[1]", "lua") })
    assert.equal("[[1]]", json.canonical("[[1]]", 3))
  end)

  it("limits nesting per member value in task_json, as canonical of each value", function()
    local deep = ("["):rep(10) .. ("]"):rep(10)
    assert.is_nil(json.task_json('{"inputData":' .. deep .. "}", "lua", 9))
    assert.equal('{"inputData":' .. deep .. "}", json.task_json('{"inputData":' .. deep .. "}", "javascript", 10))
  end)

  it("raises on a caller's bug: a non-string, a nesting limit out of range", function()
    assert.has_error(function() json.canonical(42) end)
    assert.has_error(function() json.canonical("1", 0) end)
    assert.has_error(function() json.task_json({}, "lua") end)
  end)
end)

describe("json.members / json.task_json", function()
  it("finds the last occurrence of each top-level member, keys unescaped", function()
    local s = '{"a":[1,{"a":"}"}],"b":"x\\"y","\\u0061":  {"z":1} ,"c":-1.5e3}'
    local m = assert(json.members(s))
    assert.equal('{"z":1}', s:sub(m.a[1], m.a[2]))
    assert.equal('"x\\"y"', s:sub(m.b[1], m.b[2]))
    assert.equal("-1.5e3", s:sub(m.c[1], m.c[2]))
    assert.equal("-1.5e3", s:sub(json.member(s, "c")))
    assert.is_nil(json.member(s, "nope"))
  end)

  it("prints what node prints for the hashed object (undefined left out, null kept, language fifth)", function()
    local body = '{"language":"lua","inputData":{"b":1,"0":2},"code":"x","taskType":"t","expectedHash":null}'
    assert.equal('{"taskType":"t","code":"x","expectedHash":null,"inputData":{"0":2,"b":1},"language":"lua"}',
      json.task_json(body, "lua"))
    assert.equal('{"taskType":"t","code":"x"}', json.task_json('{"code":"x","taskType":"t"}', "javascript"))
  end)
end)

describe("json.request (the controller's one pass over a body)", function()
  local body = '{"taskType":"t","code":"x\\u00e9\\n","n":1.5e3,"b":false,"z":null,"o":{"k":[1]},'
    .. '"language":"lua","inputData":{"b":1,"1":[0.10,1e2],"expectedOutput":"hi"}}'

  it("gives the members as lua-cjson does, the taskHash text and inputData's description", function()
    local t, text, input = json.request(body, 32)
    assert.equal("t", t.taskType)
    assert.equal("x\195\169\n", t.code)
    assert.equal(1500, t.n)
    assert.is_false(t.b)
    assert.equal(cjson.null, t.z)
    assert.same({ k = { 1 } }, t.o)
    assert.equal('{"taskType":"t","code":"xé\\n","inputData":{"1":[0.1,100],"b":1,"expectedOutput":"hi"},'
      .. '"language":"lua"}', text)
    assert.same({ first = body:find('{"b"', 1, true), last = #body - 1, type = "object",
      bytes = #'{"1":[0.1,100],"b":1,"expectedOutput":"hi"}' }, input)
  end)

  it("decodes an object or array inputData only when something reads it", function()
    local t = json.request(body, 32)
    assert.is_nil(rawget(t, "inputData"))
    assert.equal("hi", t.inputData.expectedOutput)
    assert.equal(100, t.inputData["1"][2])
    assert.is_table(rawget(t, "inputData"))
  end)

  it("describes scalar and null inputData, and its absence", function()
    local t, _, input = json.request('{"inputData":"caf\\u00e9"}', 32)
    assert.equal("café", t.inputData)
    assert.same({ "string", #"café" }, { input.type, input.bytes })
    t, _, input = json.request('{"inputData":null}', 32)
    assert.equal(cjson.null, t.inputData)
    assert.equal("null", input.type)
    t, _, input = json.request('{"code":"x"}', 32)
    assert.is_nil(t.inputData)
    assert.is_nil(input)
  end)

  it("the last of a repeated key wins, whatever its kind", function()
    local t, text = json.request('{"code":[1],"code":"x","inputData":{"a":1},"inputData":5}', 32)
    assert.equal("x", t.code)
    assert.equal(5, t.inputData)
    assert.equal('{"code":"x","inputData":5}', text)
    t = json.request('{"code":"x","code":[1]}', 32)
    assert.same({ 1 }, t.code)
  end)

  it("adds the body's language unless it is javascript or no string", function()
    assert.equal('{"code":"x"}', select(2, json.request('{"code":"x","language":"javascript"}', 32)))
    assert.equal('{"code":"x"}', select(2, json.request('{"code":"x","language":7}', 32)))
    assert.equal('{"code":"x","language":"lua"}', select(2, json.request('{"language":"lua","code":"x"}', 32)))
  end)

  it("refuses what JavaScript reads differently, and what is no object or too deep", function()
    for _, c in ipairs {
      { '{"code":"\\ud800"}', "^lone surrogate in string at byte 10$" },
      { '{"inputData":[1e400]}', "^number out of range %(JavaScript reads Infinity%) at byte 15$" },
      { '{"inputData":[-1e400]}', "^number out of range %(JavaScript reads %-Infinity%) at byte 15$" },
      { '{"code":"a\nb"}', "^control character in string at byte 11$" },
      { '{"n":01}', "^bad number at byte 6$" },
      { "[1]", "^expected a JSON object at byte 1$" },
      { '"x"', "^expected a JSON object at byte 1$" },
      { '{"a":[[1]]}', "^nesting too deep at byte 8$" },
      { '{"a":1} x', "^trailing data at byte 9$" },
      { '{"a":"\255"}', "^invalid UTF%-8 at byte 7$" },
    } do
      local t, err = json.request(c[1], 3)
      assert.is_nil(t, c[1])
      assert.matches(c[2], err)
    end
    assert.truthy(json.request('{"a":[1]}', 3))
  end)

  it("raises on a caller's bug: a non-string, a nesting limit out of range", function()
    assert.has_error(function() json.request({}, 32) end)
    assert.has_error(function() json.request("{}", 0) end)
  end)
end)

describe("json.check_js and json.representable", function()
  it("accepts what JSON.parse reads as lua-cjson does", function()
    assert.is_true(json.check_js('{"a":[0,-0,1.5e-3,1e308,1e-400,"1e400","\\u0001"],"b":-12}'))
  end)

  it("refuses what JSON.parse refuses or reads as Infinity", function()
    local bad = {
      { '{"a":1e400}', "number out of range at byte 6" }, { '[-1E+999]', "out of range" },
      { "[" .. ("9"):rep(400) .. "]", "out of range" }, { '{"a":01}', "leading zero" }, { "[-00]", "leading zero" },
      { "[1.]", "bad number" }, { "[1.e5]", "bad number" }, { "[1e+]", "bad number" }, { "[-]", "bad number" },
      { '["a\tb"]', "control character" }, { '"abc', "unterminated" },
    }
    for _, c in ipairs(bad) do
      local ok, why = json.check_js(c[1])
      assert.is_nil(ok, c[1])
      assert.matches(c[2], why, 1, true)
    end
  end)

  it("finds numbers out of range in decoded values, with their path", function()
    assert.is_true(json.representable(cjson.decode('{"a":[1,{"b":1e308}]}'), "inputData"))
    local ok, why = json.representable(cjson.decode('{"a":[1,{"b":1e400}]}'), "inputData")
    assert.is_nil(ok)
    assert.equal("inputData.a[1].b: number out of range (JavaScript reads it as Infinity and prints null)", why)
    assert.is_nil((json.representable(json.decode_ordered("[-1e999]"))))
  end)
end)

-- (json.canonical's malformed texts: the list at the top of this file)
describe("malformed input to the text paths", function()
  it("canonical limits nesting depth", function()
    local deep = ("["):rep(100) .. ("]"):rep(100)
    assert.matches("nesting too deep", select(2, json.canonical(deep, 64)))
    assert.equal(deep, json.canonical(deep, 200))
  end)

  it("members refuses non-objects and broken member lists", function()
    for _, s in ipairs({ "[1]", "", '{"a" 1}', '{"a":1 "b":2}', '{"a":[1}', '{"a":"x', '{1:2}', '{"a":}' }) do
      local v, err = json.members(s)
      assert.is_nil(v, s)
      assert.matches("at byte %d+", err)
    end
    assert.is_nil((json.task_json('{"taskType":"t","code":"x","inputData":[1,]}', "javascript")))
  end)

  it("raises on a non-string (a caller bug)", function()
    for _, f in ipairs({ json.canonical, json.members, json.check_js }) do
      assert.has_error(function() f(42) end)
    end
  end)
end)
