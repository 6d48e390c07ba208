-- SPDX-License-Identifier: MIT
-- JSON as JavaScript prints it: expected strings were produced by node's
-- JSON.stringify (node -e 'console.log(JSON.stringify(JSON.parse(s)))').
local json = require "workproof.json"

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
