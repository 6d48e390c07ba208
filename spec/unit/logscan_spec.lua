-- SPDX-License-Identifier: MIT
-- wp.logscan: the streaming NOTARY_RESULT scanner (core/src/logscan.c +
-- core/lua/l_logscan.c). The stream is hostile: lines are split anywhere,
-- flooded, forged and malformed.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"

local M = "NOTARY_RESULT: "

-- Deterministic text for any value (sorted keys), to compare runs.
local function canon(v)
  if type(v) == "table" then
    local keys, out = {}, {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do out[#out + 1] = tostring(k) .. "=" .. canon(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  elseif type(v) == "string" then
    return ("%q"):format(v)
  end
  return tostring(v)
end

-- Feed the chunks, then finish; everything the scanner said, in order.
local function run(opts, chunks)
  local s = wp.logscan.new(opts)
  local out = { results = {}, diags = {} }
  local function take(r, d)
    for _, x in ipairs(r) do out.results[#out.results + 1] = x end
    for _, x in ipairs(d) do out.diags[#out.diags + 1] = x end
  end
  for _, c in ipairs(chunks) do take(s:feed(c)) end
  take(s:finish())
  out.result = s:result()
  out.stats = s:stats()
  out.scanner = s
  return out
end

local function one(opts, s) return run(opts, { s }) end

-- The comparable part of a run (the buffer size depends on the chunking).
local function view(o)
  local st = {}
  for k, v in pairs(o.stats) do if k ~= "buffer" then st[k] = v end end
  return canon({ results = o.results, diags = o.diags, result = o.result, stats = st })
end

local function bytes_of(s)
  local t = {}
  for i = 1, #s do t[i] = s:sub(i, i) end
  return t
end

local function kinds(diags)
  local t = {}
  for i, d in ipairs(diags) do t[i] = d.kind .. "@" .. d.line end
  return table.concat(t, " ")
end

describe("wp.logscan", function()
  describe("basic scanning", function()
    it("finds the result line and decodes it", function()
      local o = one(nil, "boot\n" .. M .. '{"jobId":"j1","exitCode":0,"error":null}\nbye\n')
      assert.equal(1, #o.results)
      assert.equal("j1", o.results[1].jobId)
      assert.equal(0, o.results[1].exitCode)
      assert.equal(cjson.null, o.results[1].error)
      assert.equal(o.results[1], o.result)
      assert.same({}, o.diags)
      assert.equal(3, o.stats.lines)
      assert.equal(1, o.stats.results)
      assert.equal(1, o.stats.candidates)
    end)

    it("returns the result from the feed call that completes the line", function()
      local s = wp.logscan.new()
      local r, d = s:feed(M .. '{"a"')
      assert.same({}, r); assert.same({}, d)
      assert.is_nil(s:result())
      r, d = s:feed(':1}\nmore')
      assert.equal(1, #r); assert.equal(1, r[1].a); assert.same({}, d)
      r, d = s:finish()
      assert.same({}, r); assert.same({}, d)
      assert.equal(1, s:result().a)
    end)

    it("a stream without any result gives no result", function()
      local o = one(nil, "a\nb\n\n\nNOTARY_RESULT:{}\nNOTARY_RESULT {}\n")
      assert.is_nil(o.result)
      assert.same({}, o.results)
      assert.same({}, o.diags)
      assert.equal(6, o.stats.lines)
      assert.equal(0, o.stats.candidates)
    end)

    it("ignores a marker in the middle of a non-candidate line", function()
      local o = one(nil, "task says: " .. M .. '{"forged":true}\n' .. ' ' .. M .. '{"x":1}\n')
      assert.is_nil(o.result)
      assert.same({}, o.diags)
      assert.equal(0, o.stats.candidates)
    end)

    it("accepts a custom marker", function()
      local o = one({ marker = "@@V " }, '@@V {"ok":true}\n' .. M .. '{"ok":false}\n')
      assert.is_true(o.result.ok)
      assert.same({}, o.diags)
    end)

    it("a line that starts like the marker and diverges across chunks is skipped", function()
      local o = run(nil, { "NOTARY_RES", "ULT? " .. M .. "{}\n", M .. '{"v":2}\n' })
      assert.equal(2, o.result.v)
      assert.same({}, o.diags)
    end)
  end)

  describe("line endings", function()
    it("strips one CR of a CRLF ending", function()
      local o = one(nil, "x\r\n" .. M .. '{"a":1}\r\n')
      assert.equal(1, o.result.a)
      assert.equal(2, o.stats.lines)
    end)

    it("treats CRLF split across chunks like one piece", function()
      local s = M .. '{"a":1}\r\n' .. M .. '{"a":2}\r\n'
      for cut = 1, #s - 1 do
        local o = run(nil, { s:sub(1, cut), s:sub(cut + 1) })
        assert.equal(view(one(nil, s)), view(o))
      end
    end)

    it("keeps a lone CR as part of the line (it does not end a line)", function()
      local o = one(nil, "junk\r" .. M .. '{"a":1}\n')
      assert.is_nil(o.result)
      assert.equal(1, o.stats.lines)
    end)

    it("strips only one CR: a second one reaches the JSON decoder", function()
      -- JSON allows CR as whitespace, so the payload still decodes
      local o = one(nil, M .. '{"a":1}\r\r\n')
      assert.equal(1, o.result.a)
    end)

    it("flushes a last line without newline at finish", function()
      local s = wp.logscan.new()
      local r, d = s:feed("a\n" .. M .. '{"eof":true}')
      assert.same({}, r); assert.same({}, d)
      r, d = s:finish()
      assert.equal(1, #r); assert.is_true(r[1].eof); assert.same({}, d)
      assert.equal(2, s:stats().lines)
      -- idempotent, and no more data afterwards
      r, d = s:finish()
      assert.same({}, r); assert.same({}, d)
      assert.has_error(function() s:feed("x") end)
    end)

    it("flushes an undecided line head at finish", function()
      local o = run(nil, { "NOTARY" })
      assert.equal(1, o.stats.lines)
      assert.equal(0, o.stats.candidates)
      o = run({ marker = "R:" }, { "R:{}" })
      assert.same({}, o.result)
    end)

    it("strips a CR right before EOF too", function()
      local o = run({ max_line = #M + 7 }, { M .. '{"a":1}\r' })
      assert.equal(1, o.result.a)
      assert.equal(1, o.stats.lines)
    end)
  end)

  describe("chunking independence", function()
    -- A stream with every kind of line, scanned under several option sets.
    local function stream()
      local r, parts = h.rng(7), { M .. '{"first":1}\n' }
      for i = 1, 120 do
        local k = r(12)
        if k == 1 then parts[#parts + 1] = M .. '{"n":' .. i .. '}\n'
        elseif k == 2 then parts[#parts + 1] = "P> 12:00:0" .. r(9) .. " " .. M .. '{"p":' .. i .. '}\r\n'
        elseif k == 3 then parts[#parts + 1] = M .. ("z"):rep(r(400)) .. "\n"
        elseif k == 4 then parts[#parts + 1] = M .. "[1,2]\n"
        elseif k == 5 then parts[#parts + 1] = "\0\255\254 " .. M .. "{}\n"
        elseif k == 6 then parts[#parts + 1] = "\r\n"
        elseif k == 7 then parts[#parts + 1] = "NOTARY_RESUL" .. ("y"):rep(r(30)) .. "\n"
        else parts[#parts + 1] = ("log line %d %s\n"):format(i, ("w"):rep(r(150))) end
      end
      parts[#parts + 1] = M .. '{"tail":1}' -- no newline at EOF
      return table.concat(parts)
    end
    local s = stream()
    local optsets = {
      {},
      { max_line = 120 },
      { prefix = "P> ", search = 12 },
      { prefix = "P> ", search = 8 },
      { search = 30, max_line = 200 },
    }

    for n, opts in ipairs(optsets) do
      it("gives identical results in one piece, byte by byte and random chunks #" .. n, function()
        local ref = view(one(opts, s))
        assert.equal(ref, view(run(opts, bytes_of(s))))
        for seed = 1, 40 do
          local chunks = h.random_chunks(s, seed, ({ 3, 17, 64, 300, 5000 })[seed % 5 + 1])
          -- empty chunks anywhere change nothing
          if seed % 3 == 0 then table.insert(chunks, (seed % #chunks) + 1, "") end
          assert.equal(ref, view(run(opts, chunks)), "seed " .. seed)
        end
      end)
    end

    it("the stream under test exercises results, duplicates and diagnostics", function()
      local o = one({ max_line = 120 }, s)
      local seen = {}
      for _, d in ipairs(o.diags) do seen[d.kind] = true end
      assert.is_table(o.result)
      assert.is_true(seen.duplicate)
      assert.is_true(seen.oversized)
      assert.is_true(o.stats.candidates > 10)
    end)

    it("empty chunks return empty arrays and change nothing", function()
      local sc = wp.logscan.new()
      local r, d = sc:feed("")
      assert.same({}, r); assert.same({}, d)
      sc:feed(M)
      sc:feed("")
      r = sc:feed('{"a":1}\n')
      assert.equal(1, r[1].a)
      assert.equal(#M + 8, sc:stats().bytes)
    end)
  end)

  describe("prefix and search", function()
    it("requires the literal prefix at the start of the line", function()
      local o = one({ prefix = "[worker] " },
        M .. '{"a":1}\n' .. "x[worker] " .. M .. '{"a":2}\n' .. "[worker] " .. M .. '{"a":3}\n')
      assert.equal(3, o.result.a)
      assert.equal(1, o.stats.candidates)
    end)

    it("search = 0 needs the marker right after the prefix", function()
      local o = one({ prefix = "[w] " }, "[w]  " .. M .. '{"a":1}\n')
      assert.is_nil(o.result)
    end)

    it("finds the marker after a variable timestamp within the window", function()
      local line = "2024-05-01T12:00:00.123Z app[abc] iad [info]" .. M .. '{"jobId":"x"}\n'
      local o = one({ search = 64 }, "2024-05-01T12:00:00.001Z app[abc] iad [info]booting\n" .. line)
      assert.equal("x", o.result.jobId)
      assert.equal(2, o.stats.lines)
    end)

    it("marker at offset N is in, at N + 1 is out", function()
      local N = 10
      local at = ("t"):rep(N) .. M .. '{"in":1}\n'
      local beyond = ("t"):rep(N + 1) .. M .. '{"in":0}\n'
      assert.equal(1, one({ search = N }, at).result["in"])
      assert.is_nil(one({ search = N }, beyond).result)
      assert.equal(0, one({ search = N }, beyond).stats.candidates)
      -- with a prefix, the window counts from the end of the prefix
      assert.equal(1, one({ prefix = "P:", search = N }, "P:" .. at).result["in"])
      assert.is_nil(one({ prefix = "P:", search = N }, "P:" .. beyond).result)
      -- same answers when every byte is its own chunk
      assert.equal(1, run({ search = N }, bytes_of(at)).result["in"])
      assert.is_nil(run({ search = N }, bytes_of(beyond)).result)
    end)

    it("the first marker in the window wins", function()
      local o = one({ search = 40 }, "ts " .. M .. M .. '{"a":1}\n')
      -- payload is 'NOTARY_RESULT: {"a":1}': not JSON
      assert.is_nil(o.result)
      assert.equal("malformed", o.diags[1].kind)
    end)

    it("an empty prefix means no prefix", function()
      assert.equal(1, one({ prefix = "" }, M .. '{"a":1}\n').result.a)
    end)
  end)

  describe("line length limit", function()
    local max = 100
    -- a candidate line of exactly n bytes (terminator excluded)
    local function line_of(n, tag)
      local head = M .. '{"t":"' .. tag .. '","p":"'
      return head .. ("x"):rep(n - #head - 2) .. '"}'
    end

    it("accepts a line one byte under and at the max; skips one over", function()
      for _, crlf in ipairs({ "\n", "\r\n" }) do
        local s = line_of(max - 1, "under") .. crlf .. line_of(max, "at") .. crlf
          .. line_of(max + 1, "over") .. crlf
        for _, chunks in ipairs({ { s }, bytes_of(s), h.random_chunks(s, 5, 30) }) do
          local o = run({ max_line = max }, chunks)
          assert.equal("under", o.result.t)
          assert.equal("duplicate@2 oversized@3", kinds(o.diags))
          assert.equal(max, o.diags[1].bytes)
          assert.equal(max + 1, o.diags[2].bytes)
          assert.equal("at", o.diags[1].value.t)
          assert.is_true(o.stats.buffer <= max + 1)
        end
      end
    end)

    it("an oversized first candidate takes the verdict slot", function()
      local o = one({ max_line = max }, line_of(max + 1, "big") .. "\n" .. line_of(50, "ok") .. "\n")
      assert.is_nil(o.result)
      assert.equal("oversized@1 duplicate@2", kinds(o.diags))
      assert.matches("exceeds max_line", o.diags[1].message)
    end)

    it("skips a huge candidate split over many chunks, reports it once, recovers", function()
      local big = M .. ("A"):rep(1000000)
      local s = "start\n" .. big .. "\r\n" .. M .. '{"after":true}\n'
      local o = run({}, h.random_chunks(s, 11, 3000))
      -- reported once; the next line is scanned normally (and, since the
      -- oversized line was the verdict line, it is a duplicate)
      assert.equal("oversized@2 duplicate@3", kinds(o.diags))
      assert.equal(#big, o.diags[1].bytes)
      assert.is_true(o.diags[2].value.after)
      assert.is_nil(o.result)
      assert.equal(3, o.stats.lines)
      assert.equal(1, o.stats.oversized)
      assert.is_true(o.stats.buffer <= 65537)
    end)

    it("an oversized line that is complete inside one chunk is not copied", function()
      local o = one({}, M .. ("A"):rep(200000) .. "\n")
      assert.equal("oversized", o.diags[1].kind)
      assert.equal(256, o.stats.buffer)
    end)

    it("a later result after an oversized duplicate is still a duplicate", function()
      local o = one({ max_line = max }, line_of(40, "a") .. "\n" .. line_of(200, "b") .. "\n"
        .. line_of(40, "c") .. "\n")
      assert.equal("a", o.result.t)
      assert.equal("oversized@2 duplicate@3", kinds(o.diags))
      assert.matches("duplicate result line of 200 bytes", o.diags[1].message)
    end)
  end)

  describe("verdict slot", function()
    it("reports a second result line as duplicate; the first stays the result", function()
      local o = one(nil, M .. '{"n":1}\n' .. M .. '{"n":2}\n' .. M .. '{"n":3}\n')
      assert.equal(1, o.result.n)
      assert.equal(1, #o.results)
      assert.equal("duplicate@2 duplicate@3", kinds(o.diags))
      assert.equal(2, o.diags[1].value.n)
      assert.matches("verdict line is line 1", o.diags[1].message)
      assert.equal(2, o.stats.duplicates)
      assert.equal(1, o.stats.results)
    end)

    it("a malformed first candidate leaves no result; a later valid one is a duplicate", function()
      local o = one(nil, M .. '{"n":1,\n' .. M .. '{"n":2}\n')
      assert.is_nil(o.result)
      assert.same({}, o.results)
      assert.equal("malformed@1 duplicate@2", kinds(o.diags))
      assert.equal(2, o.diags[2].value.n) -- the information is kept
      assert.equal(1, o.stats.malformed)
      assert.equal(0, o.stats.results)
    end)

    it("a malformed duplicate is reported without a value", function()
      local o = one(nil, M .. '{"n":1}\n' .. M .. '{oops\n')
      assert.equal(1, o.result.n)
      assert.equal("duplicate@2", kinds(o.diags))
      assert.is_nil(o.diags[1].value)
      assert.matches("not a valid JSON object", o.diags[1].message)
    end)
  end)

  describe("payload validation", function()
    it("reports malformed JSON", function()
      for _, bad in ipairs({ "", "{", '{"a":}', '{"a":1} trailing', "{'a':1}",
                             '{"a":NaN}', '{"a":0x10}', '{"a":Infinity}' }) do
        local o = one(nil, M .. bad .. "\n")
        assert.is_nil(o.result, bad)
        assert.equal("malformed", o.diags[1].kind, bad)
        assert.equal(1, o.diags[1].line)
        assert.equal(#M + #bad, o.diags[1].bytes)
        assert.matches("^malformed JSON", o.diags[1].message)
      end
    end)

    it("reports JSON that is not an object", function()
      local cases = { ["[1,2]"] = "array", ["[]"] = "array", ['"s"'] = "string", ["42"] = "number",
                      ["true"] = "boolean", ["null"] = "null", [" [ ] "] = "array" }
      for payload, what in pairs(cases) do
        local o = one(nil, M .. payload .. "\n")
        assert.is_nil(o.result, payload)
        assert.equal("not_object", o.diags[1].kind, payload)
        assert.matches("JSON " .. what .. ", not an object", o.diags[1].message)
      end
      assert.same({}, one(nil, M .. " \t{}\n").result)
    end)

    it("survives NUL bytes and invalid UTF-8 in lines", function()
      local s = "\0\0\0\n\255\254\253 garbage \0 " .. M .. "{}\n" .. M .. '{"a":"\0"}\n'
        .. M .. '{"b":"\255\192"}\n'
      local o = one(nil, s)
      assert.equal(view(o), view(run(nil, bytes_of(s))))
      -- a NUL inside the JSON text is malformed; invalid UTF-8 inside a
      -- JSON string is passed through as bytes (cjson does not validate it)
      assert.equal("malformed@3 duplicate@4", kinds(o.diags))
      assert.equal("\255\192", o.diags[2].value.b)
      assert.equal(4, o.stats.lines)
    end)

    it("accepts NUL bytes inside a custom marker and prefix", function()
      local o = one({ prefix = "\0p", marker = "\0m" }, "\0p\0m{\"a\":1}\n")
      assert.equal(1, o.result.a)
    end)
  end)

  describe("bounded memory", function()
    it("a 50 MB never-ending candidate line keeps the buffer at max_line #slow", function()
      local chunk = ("x"):rep(65536)
      local sc = wp.logscan.new()
      collectgarbage()
      local kb0 = collectgarbage("count")
      local r, d = sc:feed(M .. chunk:sub(#M + 1))
      assert.same({}, r); assert.same({}, d)
      for _ = 2, 800 do
        r, d = sc:feed(chunk)
        assert.equal(0, #r + #d)
      end
      local st = sc:stats()
      assert.equal(800 * 65536, st.bytes)
      assert.is_true(st.buffer <= st.max_line + 1, "buffer " .. st.buffer)
      assert.equal(1, st.candidates)
      collectgarbage()
      assert.is_true(collectgarbage("count") - kb0 < 1024, "Lua heap grew")
      r, d = sc:finish()
      assert.equal("oversized@1", kinds(d))
      assert.equal(800 * 65536, d[1].bytes)
      assert.equal(0, #r)
    end)

    it("a 50 MB non-candidate line is never buffered", function()
      local chunk = ("y"):rep(65536)
      local sc = wp.logscan.new()
      local b0 = sc:stats().buffer
      for _ = 1, 800 do sc:feed(chunk) end
      sc:feed("\n" .. M .. '{"ok":1}\n')
      assert.equal(b0, sc:stats().buffer)
      assert.equal(1, sc:result().ok)
      assert.equal(2, sc:stats().lines)
    end)

    it("grows the buffer geometrically only for straddling candidates", function()
      local sc = wp.logscan.new({ max_line = 5000 })
      assert.equal(256, sc:stats().buffer)
      sc:feed(M .. ("a"):rep(300))
      assert.equal(512, sc:stats().buffer)
      sc:feed(("a"):rep(4000))
      assert.equal(5001, sc:stats().buffer) -- capped at max_line + 1
    end)
  end)

  describe("options", function()
    local function err_of(opts)
      local ok, e = pcall(wp.logscan.new, opts)
      assert.is_false(ok)
      return e
    end

    it("raises with the field name on a wrong type", function()
      assert.matches("opts.marker: string expected, got number", err_of({ marker = 1 }))
      assert.matches("opts.prefix: string expected, got table", err_of({ prefix = {} }))
      assert.matches("opts.search: integer expected, got string", err_of({ search = "3" }))
      assert.matches("opts.max_line: integer expected, got boolean", err_of({ max_line = true }))
      assert.matches("table expected", err_of("x"))
    end)

    it("raises on bad values", function()
      assert.matches("opts.marker: must not be empty", err_of({ marker = "" }))
      assert.matches("opts.marker: must not contain CR or LF", err_of({ marker = "a\n" }))
      assert.matches("opts.prefix: must not contain CR or LF", err_of({ prefix = "a\r" }))
      assert.matches("opts.search: must be an integer", err_of({ search = -1 }))
      assert.matches("opts.search: must be an integer", err_of({ search = 1.5 }))
      assert.matches("opts.max_line: must be an integer", err_of({ max_line = 2 ^ 40 }))
      assert.matches("opts.max_line: must be at least 1", err_of({ max_line = 0 }))
      assert.matches("exceed max_line", err_of({ max_line = 10 }))
      assert.matches("exceed max_line", err_of({ max_line = 20, search = 6 }))
      assert.matches("opts.marker: longer than 4096", err_of({ marker = ("m"):rep(4097) }))
    end)

    it("raises on an unknown option (typos)", function()
      assert.matches("unknown option 'serach'", err_of({ serach = 3 }))
      assert.matches("unknown option key of type number", err_of({ 1 }))
    end)

    it("accepts the tightest window", function()
      local sc = wp.logscan.new({ max_line = #M + 5, search = 5 })
      local _, d = sc:feed("12345" .. M .. "\n")
      assert.equal("malformed@1", kinds(d))
      _, d = sc:feed("123456" .. M .. "\n")
      assert.same({}, d)
    end)

    it("feed needs a string chunk", function()
      local sc = wp.logscan.new()
      assert.has_error(function() sc:feed(12) end)
      assert.has_error(function() sc:feed() end)
      assert.has_error(function() sc.feed({}, "x") end)
    end)

    it("has a string form and a protected metatable", function()
      local sc = wp.logscan.new()
      assert.matches("^wp.logscan: ", tostring(sc))
      assert.equal("workproof.logscan", getmetatable(sc))
    end)
  end)

  describe("verdict (the one rule wp.worker.run acts on)", function()
    it("is nil, nil before a candidate, the result after a clean one", function()
      local sc = wp.logscan.new()
      sc:feed("boot\n" .. M .. '{"jobId"')
      assert.same({}, { sc:verdict() })
      sc:feed(':"j"}\n')
      local r, bad = sc:verdict()
      assert.equal("j", r.jobId)
      assert.is_nil(bad)
    end)

    it("names the first diagnostic: duplicate, malformed, not_object, oversized", function()
      local function verdict(opts, s)
        local sc = wp.logscan.new(opts)
        sc:feed(s)
        sc:finish()
        return { sc:verdict() }
      end
      assert.same({ nil, "duplicate at line 2" }, verdict(nil, M .. '{"n":1}\n' .. M .. '{"n":2}\n'))
      assert.same({ nil, "malformed at line 1" }, verdict(nil, M .. '{"n":\n' .. M .. '{"n":2}\n'))
      assert.same({ nil, "not_object at line 3" }, verdict(nil, "a\nb\n" .. M .. "[1]\n"))
      assert.same({ nil, "oversized at line 1" }, verdict({ max_line = 40 }, M .. ("x"):rep(40) .. "\n"))
      assert.same({}, verdict(nil, "no verdict here\n"))
    end)

    it("the core binding only reports candidates and their raw payload bytes", function()
      local raw = require("workproof.core").logscan.new(nil, nil, 0, 40)
      local ev = raw:feed(M .. '{"a":1}\nx\n' .. M .. "not json\n" .. M .. ("z"):rep(40) .. "\n")
      assert.same({ 1, 1, #M + 7, '{"a":1}', 2, 3, #M + 8, "not json", 3, 4, #M + 40, false }, ev)
      assert.same({}, raw:finish())
    end)
  end)

  it("counts lines, bytes and candidates", function()
    local s = "a\r\n\n" .. M .. '{"x":1}\n' .. M .. "[]\n" .. "tail"
    local st = one({ max_line = 100 }, s).stats
    assert.same({ bytes = #s, lines = 5, candidates = 2, results = 1, duplicates = 1, oversized = 0,
                  malformed = 0, not_object = 0, buffer = 101, max_line = 100 }, st)
  end)
end)
