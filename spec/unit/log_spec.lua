-- SPDX-License-Identifier: MIT
-- The logger: the request-id and access-line helpers (lua/workproof/log.lua)
-- and the host's line formats (core/host/log.c, l_log.c), text and JSON.
-- JSON lines are checked by Python's json module reading the raw bytes: a
-- strict parser (invalid UTF-8 and unescaped control characters fail it),
-- a reference implementation that runs here.
local h = require "helpers"
local cjson = require "cjson"

local PYTHON = "/usr/bin/python3"

-- Run a Lua script under `workproof run` with environment `env` (a list of
-- NAME=value); returns its stderr.
-- (stderr goes to a file: the spawn helper keeps only 64 KiB of it)
local function run_script(src, env)
  local path, errpath = os.tmpname(), os.tmpname()
  h.write(path, src)
  local args = { "-c", 'f=$1; shift; exec /usr/bin/env "$@" 2>"$f"', "sh", errpath }
  for _, e in ipairs(env or {}) do args[#args + 1] = e end
  args[#args + 1] = h.build .. "/workproof"
  args[#args + 1] = "run"
  args[#args + 1] = path
  local out, st = h.run("/bin/sh", args)
  local err = h.read(errpath)
  os.remove(path)
  os.remove(errpath)
  assert(st.exit_status == 0, "script failed: " .. out .. err)
  return err, out
end

-- Every line of `text` parsed by Python; returns the list of objects (via
-- Python's own re-encoding as ASCII JSON, decoded here) or fails.
local PY = [[
import json, sys
for raw in sys.stdin.buffer.read().split(b"\n"):
    if raw:
        print(json.dumps(json.loads(raw), ensure_ascii=True, allow_nan=False))
]]
local function python_parse(text)
  local out, st = h.run(PYTHON, { "-c", PY }, text)
  assert(st.exit_status == 0, "python rejected a line: " .. st.stderr .. "\n" .. text)
  local objs = {}
  for line in out:gmatch("[^\n]+") do objs[#objs + 1] = cjson.decode(line) end
  return objs
end

local TIME = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"

describe("log helpers #host", function()
  local wlog = require "workproof.log"

  it("accepts a client request id of 1 to 128 printable characters, no space", function()
    assert.is_true(wlog.valid_request_id("a"))
    assert.is_true(wlog.valid_request_id(("x"):rep(128)))
    assert.is_true(wlog.valid_request_id("req-1_2.3:4/5+6=7~!"))
    for _, bad in ipairs({ "", ("x"):rep(129), "a b", "a\tb", "a\0b", "caf\195\169", "a\127", "\n" }) do
      assert.is_false(wlog.valid_request_id(bad), ("%q"):format(bad))
    end
    assert.is_false(wlog.valid_request_id(nil))
    assert.is_false(wlog.valid_request_id(42))
  end)

  it("keeps an acceptable id and replaces the rest with 16 random bytes in hex", function()
    assert.equal("abc", wlog.request_id("abc"))
    local seen = {}
    for _, bad in ipairs({ "a b", ("y"):rep(129), "", nil }) do
      local id = wlog.request_id(bad)
      assert.matches("^%x+$", id)
      assert.equal(32, #id)
      assert.equal(id:lower(), id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
    -- across a refill of the random pool (256 ids per getrandom call)
    for _ = 1, 600 do
      local id = wlog.request_id()
      assert.is_nil(seen[id])
      seen[id] = true
    end
  end)

  it("builds access fields from the request and the response document", function()
    local req = { peer = "127.0.0.1", method = "POST", path = "/verify", request_id = "r1", headers = {} }
    local f = wlog.access_fields(req, { status = 200, body = { jobId = "j1", result = "VALID" } }, 321, 0.0123456)
    assert.same({ client = "127.0.0.1", method = "POST", path = "/verify", status = 200, bytes = 321,
      ms = 12.346, requestId = "r1", jobId = "j1", verdict = "VALID" }, f)
    local r = wlog.access_fields({ method = "GET", path = "/x", request_id = "r2" },
      { status = 404, body = { error = "no such route", code = "ENOTFOUND", details = {} } }, 10, 0)
    assert.equal("-", r.client)
    assert.equal("ENOTFOUND", r.code)
    assert.is_nil(r.jobId)
    -- a raw body, or fields of the wrong type, add nothing
    local s = wlog.access_fields(req, { status = 200, raw = "x", body = { jobId = 5, result = {} } }, 1, 0)
    assert.is_nil(s.jobId)
    assert.is_nil(s.verdict)
    -- a stored document sent raw: the route names its job and verdict
    local t = wlog.access_fields(req, { status = 200, raw = "{}", job_id = "j9", verdict = "INVALID" }, 2, 0)
    assert.same({ "j9", "INVALID" }, { t.jobId, t.verdict })
  end)
end)

describe("log line formats #host", function()
  it("text keeps the format (time [level] message) and appends key=value fields in key order", function()
    local err = run_script([[
      local host = require "workproof.host"
      host.log("info", "plain message")
      host.log("warn", "with fields", { b = 2, a = "one word", c = true, q = 'say "hi"', e = "", z = 1.5 })
    ]])
    local l1, l2 = err:match("^([^\n]*)\n([^\n]*)\n$")
    assert.matches("^" .. TIME .. " %[info%] plain message$", l1)
    assert.matches("^" .. TIME .. ' %[warn%] with fields a="one word" b=2 c=true e="" q="say \\"hi\\"" z=1.5$', l2)
  end)

  it("json: one object per line, fields typed, every byte sequence escaped to parse", function()
    local err = run_script([[
      local host = require "workproof.host"
      host.log_configure{ format = "json" }
      host.log("info", 'q"b\\s\n\r\t\1\31\127 caf\195\169 \240\159\152\128', { n = 3, f = 0.25, yes = false,
        s = "x", inf = math.huge, nan = 0/0 })
      -- invalid UTF-8: a lone continuation byte, a truncated sequence, an
      -- overlong encoding, a surrogate, past U+10FFFF
      host.log("error", "\128|\226\130|\192\175|\237\160\128|\244\144\128\128|ok")
    ]])
    local objs = python_parse(err)
    assert.equal(2, #objs)
    local a, b = objs[1], objs[2]
    assert.matches("^" .. TIME .. "$", a.time)
    assert.equal("info", a.level)
    assert.equal('q"b\\s\n\r\t\1\31\127 caf\195\169 \240\159\152\128', a.msg)
    assert.equal(3, a.n)
    assert.equal(0.25, a.f)
    assert.is_false(a.yes)
    assert.equal("x", a.s)
    assert.equal(cjson.null, a.inf)
    assert.equal(cjson.null, a.nan)
    assert.equal("error", b.level)
    local R = "\239\191\189"   -- U+FFFD
    assert.equal(R .. "|" .. R .. R .. "|" .. R .. R .. "|" .. R .. R .. R .. "|" .. R .. R .. R .. R .. "|ok", b.msg)
    -- the keys come in a stable order: time, level, msg, then fields sorted
    assert.matches('^{"time":"[^"]+","level":"info","msg":".-","f":0.25,"inf":null,"n":3,"nan":null,"s":"x",'
      .. '"yes":false}\n', err)
  end)

  it("json on random messages: each line parses and gives the message back", function()
    local rng = h.rng(7)
    local msgs = {}
    for i = 1, 200 do
      -- ASCII with every control character, quotes and backslashes
      local cs = {}
      for j = 1, 1 + i % 40 do cs[j] = string.char(rng(128) - 1) end
      msgs[i] = table.concat(cs)
    end
    local lines = {}
    for i, m in ipairs(msgs) do lines[i] = ("%q"):format(m) end
    local err = run_script(([[
      local host = require "workproof.host"
      host.log_configure{ format = "json" }
      for _, m in ipairs({ %s }) do host.log("info", m, { requestId = m }) end
    ]]):format(table.concat(lines, ",\n")))
    local objs = python_parse(err)
    assert.equal(#msgs, #objs)
    for i, o in ipairs(objs) do
      assert.equal(msgs[i], o.msg)
      assert.equal(msgs[i], o.requestId)
    end
  end)

  it("long lines (past the line buffer and the 64 KiB batch) stay whole and in order", function()
    local err = run_script([[
      local host = require "workproof.host"
      host.log_configure{ format = "json" }
      for i = 1, 40 do host.log("info", ("%d:"):format(i) .. ("\"x"):rep(i * 1000), { n = i }) end
      host.log("error", "last")
    ]])
    local objs = python_parse(err)
    assert.equal(41, #objs)
    for i = 1, 40 do
      assert.equal(i, objs[i].n)
      assert.equal(("%d:"):format(i) .. ('"x'):rep(i * 1000), objs[i].msg)
    end
    assert.equal("last", objs[41].msg)
  end)

  it("a coroutine's request id is on its lines; one given in the fields wins", function()
    local err = run_script([[
      local host = require "workproof.host"
      host.log_configure{ format = "json" }
      local done = 0
      for i = 1, 2 do
        host.spawn(function()
          host.log_request("rid-" .. i)
          host.sleep(0.01 * i)
          host.log("info", "in " .. i)
          done = done + 1
        end)
      end
      while done < 2 do host.sleep(0.01) end
      host.log("info", "outside")
      host.log_request("main")
      host.log("info", "own", { requestId = "given" })
    ]])
    local objs = python_parse(err)
    assert.same({ "in 1", "rid-1" }, { objs[1].msg, objs[1].requestId })
    assert.same({ "in 2", "rid-2" }, { objs[2].msg, objs[2].requestId })
    assert.same({ "outside" }, { objs[3].msg, objs[3].requestId })
    assert.same({ "own", "given" }, { objs[4].msg, objs[4].requestId })
  end)

  it("levels: configured, and the environment wins over the configuration", function()
    local src = [[
      local host = require "workproof.host"
      io.stdout:write(table.concat({ host.log_configure{ level = "warn", format = "json" } }, " "), "\n")
      host.log("info", "i")
      host.log("warn", "w")
      io.stdout:write(tostring(host.log_enabled("info")), "\n")
    ]]
    local err, out = run_script(src)
    assert.equal("warn json\nfalse\n", out)
    local objs = python_parse(err)
    assert.equal(1, #objs)
    assert.equal("w", objs[1].msg)
    err, out = run_script(src, { "WORKPROOF_LOG=debug", "WORKPROOF_LOG_FORMAT=text" })
    assert.equal("debug text\ntrue\n", out)
    assert.matches("%[info%] i\n.*%[warn%] w\n", err)
    -- an invalid environment value is ignored
    err, out = run_script(src, { "WORKPROOF_LOG=loud" })
    assert.equal("warn json\nfalse\n", out)
    assert.equal(1, #python_parse(err))
  end)

  it("wrong calls raise, whatever the level", function()
    local err, out = run_script([[
      local host = require "workproof.host"
      host.log_configure{ level = "error" }
      for _, f in ipairs({ { time = 1 }, { ["a b"] = 1 }, { [1] = "x" }, { x = {} }, "nope" }) do
        io.stdout:write(tostring(pcall(host.log, "info", "m", f)), "\n")
      end
      io.stdout:write(tostring(pcall(host.log, "loud", "m")), "\n")
      io.stdout:write(tostring(pcall(host.log_configure, { format = "xml" })), "\n")
      local many = {}
      for i = 1, 33 do many["k" .. i] = i end
      io.stdout:write(tostring(pcall(host.log, "info", "m", many)), "\n")
    ]])
    assert.equal(("false\n"):rep(8), out)
    assert.equal("", err)
  end)
end)
