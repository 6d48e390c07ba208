-- SPDX-License-Identifier: MIT
--- The request path's JSON on a 100 KB request (60 KB of code, 40 KB of
-- inputData: records as a client would send them — ids, names with some
-- non-ASCII, prices with cents, flags, nested tags — and, in a second row,
-- number-heavy random documents from spec/fixtures/json_gen.lua, whose
-- exponents, subnormals and 17-digit numbers take the slow printing path):
-- what stages/validate.lua
-- and stages/spawn.lua do with a body — json.request (one pass in C: UTF-8,
-- what JavaScript reads differently, the members, the taskHash text:
-- JSON.stringify's, core/src/json.c; inputData left as text) and the
-- text's SHA-256. Anchor: the lua-cjson decode of the same body alone, in
-- the same run.
local wp = require "workproof"
local json = require "workproof.json"
local cjson = require "cjson.safe"

return function(b)
  local G = dofile("spec/fixtures/json_gen.lua")(0x51ED)
  local function records()
    local items, size, i = {}, 0, 0
    while size < 40000 do
      i = i + 1
      local d = ('{"id":%d,"name":"item %d — café","price":%d.%02d,"inStock":%s,"tags":["a%d","b"],'
        .. '"dims":{"w":%d,"h":%d.5}}'):format(i, i, i * 7 % 1000, i % 100, i % 3 == 0 and "true" or "false",
        i % 10, i % 50, i % 20)
      items[#items + 1] = d
      size = size + #d + 1
    end
    return items
  end
  local function random_docs()
    local items, size = {}, 0
    while size < 40000 do
      -- documents the controller admits (lua-cjson refuses lone surrogates,
      -- validate refuses numbers beyond the double range)
      local d = G.document(false)
      local v = cjson.decode(d)
      if v ~= nil and json.check_js(d) and json.representable(v) then
        items[#items + 1] = d
        size = size + #d + 1
      end
    end
    return items
  end
  local code = ("print(%q)\n"):format(("x"):rep(70)):rep(700):sub(1, 60000)
  local function request(items)
    local body = ('{"taskType":"code-execution","language":"lua","code":%s,"expectedHash":"%s","inputData":[%s]}')
      :format(json.js_string(code), ("ab"):rep(32), table.concat(items, ","))
    assert(#body > 95000 and #body < 110000, #body)
    return body
  end
  local dec = cjson.new()
  dec.decode_max_depth(32)
  dec.decode_invalid_numbers(false)

  local function request_path(body)
    local t, text = json.request(body, 32)
    assert(t and t.language == "lua", text)
    return wp.sha256(text)
  end

  local rows = {}
  for _, case in ipairs { { "records", records() }, { "random documents", random_docs() } } do
    local body = request(case[2])
    request_path(body)
    local path_rate = b.rate(function(n) for _ = 1, n do request_path(body) end end)
    local decode_rate = b.rate(function(n) for _ = 1, n do dec.decode(body) end end)
    local canon_rate = b.rate(function(n) for _ = 1, n do json.task_json(body, "lua", 33) end end)
    rows[#rows + 1] = b.row { name = ("validate + taskHash, %d KB, %s"):format(math.floor(#body / 1024), case[1]),
      value = 1000 / path_rate, unit = "ms", anchor_name = "lua-cjson decode alone", anchor = 1000 / decode_rate,
      goal = 0.5, goal_kind = "max" }
    rows[#rows + 1] = b.row { name = "  of which taskHash text (C)", value = 1000 / canon_rate, unit = "ms",
      anchor_name = "lua-cjson decode alone", anchor = 1000 / decode_rate, goal_kind = "report" }
  end
  return rows
end
