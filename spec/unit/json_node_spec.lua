-- SPDX-License-Identifier: MIT
-- json.lua against node itself: >= 10,000 seeded random documents (nested
-- objects and arrays, unicode, escapes, array-index keys, duplicate keys,
-- floats, big integers, exponents, subnormals, powers of two) go to ONE node
-- process in one file; node prints JSON.stringify(JSON.parse(line)) for each
-- document and the taskHash of each request body; json.canonical,
-- decode_ordered + stringify and json.task_json must print the same.
local json = require "workproof.json"
local cjson = require "cjson.safe"
local wp = require "workproof"
local helpers = require "helpers"

local format, concat = string.format, table.concat

local NODE = [[
const fs = require('fs'), crypto = require('crypto');
const out = [];
for (const line of fs.readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line) continue;
  const text = line.slice(2);
  if (line[0] === 'D') {
    out.push(JSON.stringify(JSON.parse(text)));
  } else if (line[0] === 'M') {
    try { out.push('OK ' + JSON.stringify(JSON.parse(text))); } catch (e) { out.push('REFUSED'); }
  } else {
    const t = JSON.parse(text);
    const lang = t.language ?? 'javascript';
    const s = JSON.stringify({ taskType: t.taskType, code: t.code, expectedHash: t.expectedHash,
      inputData: t.inputData, ...(lang !== 'javascript' ? { language: lang } : {}) });
    out.push(crypto.createHash('sha256').update(s).digest('hex'));
  }
}
fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
]]

-- lines: { "D <json>" | "T <request body>" } -> node's answer per line
local function node_answers(lines)
  local dir = helpers.tmpdir()
  helpers.write(dir .. "/in.txt", concat(lines, "\n") .. "\n")
  helpers.write(dir .. "/run.js", NODE)
  local rc = os.execute(("node %s %s %s"):format(helpers.q(dir .. "/run.js"), helpers.q(dir .. "/in.txt"),
    helpers.q(dir .. "/out.txt")))
  assert(rc == 0, "node failed")
  local out = {}
  for l in assert(io.open(dir .. "/out.txt")):lines() do out[#out + 1] = l end
  os.execute("rm -rf " .. helpers.q(dir))
  assert.equal(#lines, #out)
  return out
end

local gen = dofile("spec/fixtures/json_gen.lua")

---------------------------------------------------------------------------

local function sha(s) return wp.hex(wp.sha256(s)) end

-- a document with one ASCII byte deleted or one JSON-ish byte inserted
-- before an ASCII byte (so the text stays UTF-8, as node reads it)
local function mutate(d, rnd)
  local INS = '{}[]:,"\\ 0123456789eE.+-tfnul\t\n'
  for _ = 1, 20 do
    local i = rnd(#d)
    if d:byte(i) < 128 then
      if rnd(2) == 1 then return d:sub(1, i - 1) .. d:sub(i + 1) end
      local k = rnd(#INS)
      return d:sub(1, i - 1) .. INS:sub(k, k) .. d:sub(i)
    end
  end
  return d .. "]"
end

describe("json.lua against node (seeded random differential) #node", function()
  after_each(function() jit.on() end)   -- also when an assertion left it off

  it("prints JSON.stringify(JSON.parse(text)) for 10,000 documents and hashes 3,000 requests as node", function()
    local G = gen(0x2545F491)
    local lines, docs, reqs = {}, {}, {}
    for i = 1, 10000 do
      docs[i] = G.document(true)
      lines[#lines + 1] = "D " .. docs[i]
    end
    -- numbers go in documents of 100, one "D" line each
    local batch = {}
    local function add(number, last)
      batch[#batch + 1] = number
      if #batch == 100 or last then
        docs[#docs + 1] = "[" .. concat(batch, ",") .. "]"
        lines[#lines + 1] = "D " .. docs[#docs]
        batch = {}
      end
    end
    -- every power of two, spelled with 17 digits (the asymmetric-gap cases)
    for e = -1074, 1023 do add(format("%.17g", math.ldexp(1, e)), e == 1023) end
    -- 20,000 number tokens of at most 15 significant digits (C prints them
    -- without strtod): leading and trailing zeros, points, exponents up to
    -- the ends of the double range, -0
    local seed = 987654321
    local function rnd(n)
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local function zeros(n) return ("0"):rep(rnd(n) - 1) end
    local function sig()
      local t = {}
      for i = 1, rnd(15) do t[i] = tostring(rnd(10) - 1) end
      return concat(t)
    end
    for i = 1, 20000 do
      local m = rnd(4)
      local mant = m == 1 and ("0." .. zeros(8) .. sig()) or m == 2 and (tostring(rnd(9)) .. sig() .. zeros(6))
        or m == 3 and (tostring(rnd(9)) .. "." .. sig() .. zeros(4))
        or (tostring(rnd(9)) .. sig():sub(2) .. "." .. sig())
      local tok = (rnd(3) == 1 and "-" or "") .. mant
      if rnd(2) == 1 then
        tok = tok .. ({ "e", "E" })[rnd(2)] .. ({ "", "+", "-" })[rnd(3)] .. tostring(rnd(330) - 1)
      end
      add(tok, i == 20000)
    end
    for i = 1, 3000 do
      reqs[i] = G.request()
      lines[#lines + 1] = "T " .. reqs[i]
    end
    local want = node_answers(lines)

    -- thousands of differently shaped small documents make the JIT record
    -- and flush traces without end (an mprotect each): interpreted, this
    -- loop is faster; the compiled paths run in the controller specs
    jit.off()
    local bad = {}
    local function mismatch(what, input, got, exp)
      if #bad < 5 then bad[#bad + 1] = ("%s\n  input: %s\n  node:  %s\n  lua:   %s"):format(what, input,
        tostring(exp), tostring(got)) end
    end
    for i, d in ipairs(docs) do
      local c, err = json.canonical(d)
      if c ~= want[i] then mismatch("canonical", d, c or err, want[i]) end
      local tree = json.decode_ordered(d)
      local s = tree ~= nil and json.stringify(tree)
      if s ~= want[i] then mismatch("decode_ordered + stringify", d, s, want[i]) end
    end
    local accepted = 0
    for i, body in ipairs(reqs) do
      local t = assert(cjson.decode(body), body)
      local lang = t.language == nil and "javascript" or t.language
      local s, err = json.task_json(body, lang)
      local got = s and sha(s) or err
      if got ~= want[#docs + i] then mismatch("taskHash", body, (s or err), want[#docs + i]) end
      -- the controller's one pass: the same text, the same members as
      -- lua-cjson; what it refuses is what JavaScript reads differently
      local r, text = json.request(body, 64)
      if r then
        accepted = accepted + 1
        if sha(text) ~= want[#docs + i] then mismatch("json.request taskHash", body, text, want[#docs + i]) end
        for _, k in ipairs { "taskType", "code", "expectedHash", "language", "timeoutSeconds", "requestHash" } do
          if r[k] ~= t[k] then mismatch("json.request ." .. k, body, r[k], t[k]) end
        end
        if (r.inputData == nil) ~= (t.inputData == nil) then
          mismatch("json.request .inputData", body, r.inputData, t.inputData)
        end
      elseif json.check_js(body) then
        mismatch("json.request refused", body, text, "accepted by cjson and check_js")
      end
    end
    assert.is_true(accepted > 2500, accepted .. " requests accepted")
    jit.on()
    assert(#bad == 0, "differences from node:\n" .. concat(bad, "\n"))
  end)

  it("accepts and refuses what JSON.parse does: 5,000 mutated documents", function()
    local G = gen(0x1F2E3D4C)
    local seed = 12345
    local function rnd(n)   -- a small LCG: the mutations repeat run to run
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n + 1
    end
    local docs, lines = {}, {}
    for i = 1, 5000 do
      docs[i] = mutate(G.document(true), rnd)
      lines[i] = "M " .. docs[i]
    end
    local want = node_answers(lines)
    local bad, refused = {}, 0
    for i, d in ipairs(docs) do
      local c = json.canonical(d, 4096)
      local got = c and ("OK " .. c) or "REFUSED"
      if got == "REFUSED" then refused = refused + 1 end
      if got ~= want[i] and #bad < 5 then
        bad[#bad + 1] = ("input: %s\n  node: %s\n  C:    %s"):format(d, want[i], got)
      end
    end
    assert(#bad == 0, "differences from node:\n" .. concat(bad, "\n"))
    -- both kinds are there in numbers
    assert.is_true(refused > 1000 and refused < 4500, refused .. " refused")
  end)

  it("covers what it claims: index keys, duplicates, lone surrogates, exponents, -0, big integers", function()
    local G = gen(0x2545F491)
    local all = {}
    for i = 1, 10000 do all[i] = G.document(true) end
    all = concat(all, "\n")
    for _, p in ipairs({ '"4294967295"', '"007"', "\\ud800", "\\ud83d\\ude00", "e%-3%d%d", "e%+?3%d%d", "%-0[,%]}]",
      "%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d", "中文", "\\u001f" }) do
      assert.truthy(all:find(p), p)
    end
    assert.is_true(G.stats.index_keys > 1000, tostring(G.stats.index_keys))
    assert.is_true(G.stats.duplicate_keys > 1000, tostring(G.stats.duplicate_keys))
  end)
end)
