-- SPDX-License-Identifier: MIT
-- The controller's logs (docs/operations.md, Logging) from a real
-- `workproof serve`: log_format json makes every stderr line a JSON object;
-- an access line per request and a verdict line per verdict carry the
-- request id the response echoes in X-Request-Id (the client's when
-- acceptable, else a fresh one); log_level is honoured at start and on
-- reload; access_log = false turns the access lines off; the text format
-- stays "<time> [level] message key=value ...".
local h = require "helpers"
local cjson = require "cjson.safe"
local wp = require "workproof"

local TIME = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"

local function task(out)
  return { taskType = "code-execution", language = "lua", code = ("print(%q)"):format(out),
    expectedHash = wp.hex(wp.sha256(out)) }
end

-- A controller on a fresh copy of the policies; a spec that fails before
-- stop_lines stops it (finally) rather than leave it serving.
local function start(fields)
  local srv = h.start_controller(h.config(fields), { dir = h.policy_dir() })
  finally(function() if not srv.stopped then h.stop(srv) end end)
  return srv
end

-- Stop the controller; its stderr as a list of lines.
local function stop_lines(srv)
  srv.stopped = true
  local st = h.stop(srv)
  local lines = {}
  for l in st.stderr:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return lines
end

-- Every line decoded (fails on one that is not a JSON object with time,
-- level and msg).
local function decode_all(lines)
  local objs = {}
  for i, l in ipairs(lines) do
    local o = cjson.decode(l)
    assert(type(o) == "table", "line " .. i .. " is not JSON: " .. l)
    assert(type(o.time) == "string" and o.time:find("^" .. TIME .. "$"), "time: " .. l)
    assert(({ debug = true, info = true, warn = true, error = true })[o.level], "level: " .. l)
    assert(type(o.msg) == "string", "msg: " .. l)
    objs[i] = o
  end
  return objs
end

local function find(objs, pred)
  local out = {}
  for _, o in ipairs(objs) do if pred(o) then out[#out + 1] = o end end
  return out
end

describe("logging, json format #integration", function()
  local srv, objs
  local rid_valid, rid_gen, rid_long, rid_space, body_valid, body_bad, body_async, hd_async, hd_bad

  setup(function()
    srv = h.start_controller(h.config('log_format = "json",'), { dir = h.policy_dir() })
    -- stopped here, or by the teardown when the setup failed half-way
    local st, hd
    st, body_valid, hd = h.verify(srv, task("a"), { ["X-Request-Id"] = "client-req-42" })
    assert.equal(200, st)
    rid_valid = hd["x-request-id"]
    st, body_bad, hd_bad = h.verify(srv, '{"taskType":"code-execution","code":"x","expectedHash":"zz"}')
    assert.equal(400, st)
    rid_gen = hd_bad["x-request-id"]
    st, hd = h.http("GET", srv.url .. "/info", nil, { ["X-Request-Id"] = ("x"):rep(129) })
    assert.equal(200, st)
    rid_long = hd["x-request-id"]
    st, hd = h.http("GET", srv.url .. "/info", nil, { ["X-Request-Id"] = "two words" })
    assert.equal(200, st)
    rid_space = hd["x-request-id"]
    st, body_async, hd_async = h.verify(srv, task("b"), { Prefer = "respond-async", ["X-Request-Id"] = "async-1" })
    assert.equal(202, st)
    assert(h.eventually(function()
      local s, _, b = h.http("GET", srv.url .. "/verify/" .. body_async.jobId)
      return s == 200 and cjson.decode(b).status == "completed"
    end, 30), "the async job did not complete")
    objs = decode_all(stop_lines(srv))
  end)

  teardown(function() if srv and not srv.stopped then h.stop(srv) end end)

  it("every stderr line is a JSON object with time, level and msg", function()
    assert.is_true(#objs >= 8)
    assert.equal(1, #find(objs, function(o) return o.msg:find("^workproof .* serving on") ~= nil end))
  end)

  it("echoes a client's acceptable X-Request-Id and logs it on the access and verdict lines", function()
    assert.equal("client-req-42", rid_valid)
    local acc = find(objs, function(o) return o.msg == "access" and o.requestId == "client-req-42" end)
    assert.equal(1, #acc)
    local a = acc[1]
    assert.same({ "POST", "/verify", 200, "127.0.0.1", body_valid.jobId, "VALID" },
      { a.method, a.path, a.status, a.client, a.jobId, a.verdict })
    assert.is_number(a.bytes)
    assert.is_true(a.bytes > 100)
    assert.is_number(a.ms)
    local v = find(objs, function(o) return o.msg == "verdict" and o.requestId == "client-req-42" end)
    assert.equal(1, #v)
    assert.same({ body_valid.jobId, body_valid.taskHash, "VALID", "VALID" }, { v[1].jobId, v[1].taskHash,
      v[1].verdict, v[1].code })
    assert.is_number(v[1].ms)
  end)

  it("generates an id when the client sends none or an unacceptable one", function()
    for i = 1, 3 do
      local id = ({ rid_gen, rid_long, rid_space })[i]
      assert.is_string(id)
      assert.matches("^%x+$", id)
      assert.equal(32, #id)
    end
    assert.are_not.equal(rid_gen, rid_long)
    assert.are_not.equal(rid_long, rid_space)
    for _, id in ipairs({ rid_long, rid_space }) do
      local acc = find(objs, function(o) return o.msg == "access" and o.requestId == id end)
      assert.equal(1, #acc)
      assert.same({ "GET", "/info", 200 }, { acc[1].method, acc[1].path, acc[1].status })
    end
    -- neither unacceptable id reached the logs
    assert.equal(0, #find(objs, function(o) return o.requestId == "two words" or o.requestId == ("x"):rep(129) end))
  end)

  it("a refusal's access line carries its status and code, without a job", function()
    local acc = find(objs, function(o) return o.msg == "access" and o.requestId == rid_gen end)
    assert.equal(1, #acc)
    assert.same({ 400, body_bad.code }, { acc[1].status, acc[1].code })
    assert.is_nil(acc[1].jobId)
    assert.equal(0, #find(objs, function(o) return o.msg == "verdict" and o.requestId == rid_gen end))
  end)

  it("an async verification's verdict line, logged after the 202, carries the request's id", function()
    assert.equal("async-1", hd_async["x-request-id"])
    local acc = find(objs, function(o) return o.msg == "access" and o.requestId == "async-1" end)
    assert.equal(1, #acc)
    assert.same({ 202, body_async.jobId }, { acc[1].status, acc[1].jobId })
    local v = find(objs, function(o) return o.msg == "verdict" and o.requestId == "async-1" end)
    assert.equal(1, #v)
    assert.same({ body_async.jobId, "VALID" }, { v[1].jobId, v[1].verdict })
    -- the polls have access lines of their own, with the job and its verdict once done
    local polls = find(objs, function(o) return o.msg == "access" and o.path == "/verify/" .. body_async.jobId end)
    assert.is_true(#polls >= 1)
    assert.equal("VALID", polls[#polls].verdict)
  end)
end)

describe("logging, levels and settings #integration", function()
  it("log_level = warn suppresses info lines; a reload to info brings them back", function()
    local srv = start('log_format = "json", log_level = "warn",')
    assert.equal(200, (h.verify(srv, task("c"), { ["X-Request-Id"] = "before-reload" })))
    -- the config file now asks for info: applied by the reload
    local src = h.read(srv.config):gsub('log_level = "warn"', 'log_level = "info"')
    h.write(srv.config, src)
    assert.equal(200, (h.http("POST", srv.url .. "/admin/reload")))
    assert.equal(200, (h.verify(srv, task("d"), { ["X-Request-Id"] = "after-reload" })))
    local objs = decode_all(stop_lines(srv))
    assert.equal(0, #find(objs, function(o) return o.requestId == "before-reload" end))
    assert.equal(2, #find(objs, function(o) return o.requestId == "after-reload" end))   -- verdict, access
    -- nothing below warn was written before the reload (the start-up lines included)
    local first_info
    for i, o in ipairs(objs) do if o.level == "info" then first_info = first_info or i end end
    assert.is_not_nil(first_info)
    assert.matches("^generation 2 ", objs[first_info].msg)
  end)

  it("access_log = false: verdict lines stay, access lines go", function()
    local srv = start('log_format = "json", access_log = false,')
    assert.equal(200, (h.verify(srv, task("e"), { ["X-Request-Id"] = "no-access" })))
    local objs = decode_all(stop_lines(srv))
    assert.equal(0, #find(objs, function(o) return o.msg == "access" end))
    assert.equal(1, #find(objs, function(o) return o.msg == "verdict" and o.requestId == "no-access" end))
  end)

  it("text format: today's line shape, the access line's fields as key=value", function()
    local srv = start(nil)
    local st, body = h.verify(srv, task("f"), { ["X-Request-Id"] = "text-1" })
    assert.equal(200, st)
    local lines = stop_lines(srv)
    for _, l in ipairs(lines) do
      assert.matches("^" .. TIME .. " %[%a+%] ", l)
      assert.is_nil(cjson.decode(l))
    end
    local access, verdict
    for _, l in ipairs(lines) do
      if l:find("%] access ") and l:find("requestId=text%-1") then access = l end
      if l:find("%] verdict ") and l:find("requestId=text%-1") then verdict = l end
    end
    assert.is_not_nil(access)
    assert.matches(" client=127%.0%.0%.1 ", access)
    assert.matches(" jobId=" .. body.jobId .. " ", access)
    assert.matches(" method=POST ", access)
    assert.matches(" path=/verify ", access)
    assert.matches(" status=200 ", access)
    assert.matches(" verdict=VALID$", access)
    assert.matches(" bytes=%d+ ", access)
    assert.matches(" ms=[%d%.]+ ", access)
    assert.is_not_nil(verdict)
    assert.matches(" taskHash=" .. body.taskHash .. " ", verdict)
  end)
end)
