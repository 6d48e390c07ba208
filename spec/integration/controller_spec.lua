-- SPDX-License-Identifier: MIT
-- The real controller (`workproof serve`) on a loopback port, driven over
-- HTTP: verdicts, error codes, async mode, reloads under traffic, SIGTERM
-- with requests in flight, restart with jobs in flight.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson.safe"

local sha, post, new_dir = h.sha, h.verify, h.policy_dir

local function config(policies) return h.config("limits = { timeout_min = 1 },", policies) end
local BASE_CONFIG = config()

describe("controller #integration", function()
  local srv = h.controller_for(BASE_CONFIG)

  it("GET /health", function()
    local st, hd, body = h.http("GET", srv.url .. "/health")
    assert.equal(200, st)
    assert.equal("application/json", hd["content-type"])
    assert.same({ status = "ok" }, cjson.decode(body))
  end)

  it("VALID: a Lua task whose output hashes as expected", function()
    local st, r = post(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = sha("4") })
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
    assert.equal("completed", r.status)
    assert.equal(sha("4"), r.actualHash)
    assert.equal(sha("4"), r.expectedHash)
    assert.is_false(r.refundEligible)
    assert.matches("^%x+$", r.jobId)
    assert.matches("^%x+$", r.taskHash)
    assert.is_number(r.totalTimeMs)
  end)

  it("VALID: JavaScript is the default language (seed parity: 2 + 2 -> \"4\")", function()
    local st, r = post(srv, { taskType = "code-execution", code = "console.log(2 + 2)",
      expectedHash = "0x" .. sha("4"):upper() })
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
  end)

  it("taskHash is SHA-256 of JSON.stringify({taskType, code, expectedHash, inputData, language})", function()
    local body = '{"inputData":{"z":1,"a":"x/y"},"code":"print(1)","taskType":"data-transformation",'
      .. '"language":"lua","expectedHash":"' .. sha("1") .. '"}'
    local st, r = post(srv, body)
    assert.equal(200, st, cjson.encode(r))
    -- language is the fifth key when it is not the default javascript
    local js = '{"taskType":"data-transformation","code":"print(1)","expectedHash":"' .. sha("1")
      .. '","inputData":{"z":1,"a":"x/y"},"language":"lua"}'
    assert.equal(sha(js), r.taskHash)
  end)

  -- { what, the request's fields over a Lua code-execution task (false: left out), fields of the reply }
  for _, c in ipairs {
    { "INVALID: the output does not hash as expected", { code = "print(5)" },
      { result = "INVALID", actualHash = sha("5") } },
    { "expectedOutput in inputData stands in for expectedHash", { taskType = "data-transformation",
      code = "print(input.expectedOutput)", inputData = { expectedOutput = "hello\n" }, expectedHash = false },
      { result = "VALID" } },
    { "ERROR: the task fails (not refundable: the client's code)", { code = "error('boom')" },
      { result = "ERROR", refundEligible = false } },
    { "TIMEOUT: the task runs past timeoutSeconds", { code = "while true do end", timeoutSeconds = 1 },
      { result = "TIMEOUT" } },
  } do
    it(c[1], function()
      local body = { taskType = "code-execution", language = "lua", expectedHash = sha("4") }
      for k, v in pairs(c[2]) do body[k] = v or nil end
      local st, r = post(srv, body)
      assert.equal(200, st, cjson.encode(r))
      for k, v in pairs(c[3]) do assert.equal(v, r[k], k) end
    end)
  end

  describe("errors are JSON {error, code, details}", function()
    local cases = {
      { "malformed JSON", "{bad", 400, "body" },
      { "non-object JSON", "[1,2]", 400, "body" },
      { "wrong types", '{"taskType":5,"code":[],"expectedHash":1}', 400, "taskType" },
      { "unknown taskType", '{"taskType":"mine-bitcoin","code":"x","expectedHash":"' .. sha("1") .. '"}', 400,
        "taskType" },
      { "timeout out of range", '{"taskType":"code-execution","code":"x","expectedHash":"' .. sha("1")
        .. '","timeoutSeconds":600}', 400, "timeoutSeconds" },
      { "expectedHash over 128 chars", '{"taskType":"code-execution","code":"x","expectedHash":"'
        .. ("a"):rep(129) .. '"}', 400, "expectedHash" },
      { "invalid UTF-8", '{"taskType":"code-execution","code":"\255","expectedHash":"' .. sha("1") .. '"}', 400,
        "body" },
      { "nesting too deep", '{"taskType":"code-execution","code":"x","inputData":' .. ("["):rep(200)
        .. ("]"):rep(200) .. '}', 400, "body" },
      { "blocked code pattern", '{"taskType":"code-execution","code":"require(\\"fs\\")","expectedHash":"'
        .. sha("1") .. '"}', 400, "code" },
      { "a number JavaScript cannot hold", '{"taskType":"code-execution","code":"x","expectedHash":"' .. sha("1")
        .. '","inputData":{"a":[1,-1e400]}}', 400, "inputData" },
      { "a number spelling JSON.parse refuses", '{"taskType":"code-execution","code":"x","expectedHash":"'
        .. sha("1") .. '","inputData":{"a":01}}', 400, "body" },
      { "a raw control character in a string", '{"taskType":"code-execution","code":"x\1","expectedHash":"'
        .. sha("1") .. '"}', 400, "body" },
      { "code over 100 KB", '{"taskType":"code-execution","code":"' .. ("x"):rep(102401)
        .. '","expectedHash":"' .. sha("1") .. '"}', 413, "code" },
      { "body over 1 MB", '{"taskType":"code-execution","code":"x","inputData":"' .. ("x"):rep(1048577)
        .. '","expectedHash":"' .. sha("1") .. '"}', 413, "body" },
    }
    for _, c in ipairs(cases) do
      it(c[1] .. " -> " .. c[3], function()
        local st, r = post(srv, c[2])
        assert.equal(c[3], st, cjson.encode(r))
        assert.is_string(r.error)
        assert.is_string(r.code)
        assert.is_string(r.details[c[4]], cjson.encode(r))
      end)
    end

    it("404 and 405", function()
      local st, _, body = h.http("GET", srv.url .. "/nope")
      assert.equal(404, st)
      assert.equal("ENOTFOUND", cjson.decode(body).code)
      local st2, hd = h.http("DELETE", srv.url .. "/verify")
      assert.equal(405, st2)
      assert.equal("POST", hd.allow)
      assert.equal(404, (h.http("GET", srv.url .. "/verify/" .. ("0"):rep(32))))
    end)
  end)

  it("async mode: 202 then GET /verify/{id}", function()
    local st, r = post(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = sha("4") }, { Prefer = "respond-async" })
    assert.equal(202, st)
    assert.equal("running", r.status)
    local id = r.jobId
    local final
    for _ = 1, 100 do
      local _, _, body = h.http("GET", srv.url .. "/verify/" .. id)
      final = cjson.decode(body)
      if final.status == "completed" then break end
      wp.sleep(0.05)
    end
    assert.equal("completed", final.status)
    assert.equal("VALID", final.result)
    assert.equal(id, final.jobId)
  end)

  it("GET /info and /metrics", function()
    local st, _, body = h.http("GET", srv.url .. "/info")
    assert.equal(200, st)
    local info = cjson.decode(body)
    assert.equal(wp.version, info.version)
    assert.equal("sandbox", info.features.backend)
    local text, hd = h.metrics(srv)
    assert.matches("^text/plain", hd["content-type"])
    for _, want in ipairs { 'wp_http_requests_total{route="/verify",status="200"} %d+',
      'wp_verdicts_total{result="VALID"} %d+', 'wp_breaker_state{state="closed"} 1', "wp_workers_active 0",
      'wp_reloads_total{result="accepted"} 1' } do
      assert.matches(want, text)
    end
  end)
end)

describe("controller protections #integration", function()
  it("429 with Retry-After past the rate limit", function()
    local srv = h.start_controller(config { rate_limit = "{ config = { limit = 3 } }" }, { dir = new_dir() })
    -- the flow validates first: only well-formed requests reach the limiter
    local body = { taskType = "code-execution", language = "lua", code = "print(1)", expectedHash = sha("1") }
    local codes = {}
    for i = 1, 3 do codes[i] = (post(srv, body)) end
    local st, r, hd = post(srv, body)
    h.stop(srv)
    assert.same({ 200, 200, 200 }, codes)
    assert.equal(429, st)
    assert.equal("ERATELIMIT", r.code)
    assert.matches("^%d+$", hd["retry-after"])
  end)

  it("503 when the breaker opens after failures", function()
    local srv = h.start_controller(config {
      circuit_breaker = '{ config = { failure_threshold = 2, count_as_failure = { "ERROR" } } }' }, { dir = new_dir() })
    local bad = { taskType = "code-execution", language = "lua", code = "error('x')", expectedHash = sha("1") }
    post(srv, bad)
    post(srv, bad)
    local st, r, hd = post(srv, bad)
    h.stop(srv)
    assert.equal(503, st)
    assert.equal("EBREAKER", r.code)
    assert.truthy(hd["retry-after"])
  end)

  it("503 when the worker threshold is reached", function()
    local srv = h.start_controller(config {
      worker_threshold = "{ config = { max_active = 1 } }" }, { dir = new_dir() })
    local slow = { taskType = "code-execution", language = "lua",
      code = "local x = 0 for i = 1, 5e8 do x = x + i end print(x)", expectedHash = sha("1") }
    local first
    wp.spawn(function() first = post(srv, slow) end)
    wp.sleep(0.3)
    local st, r = post(srv, slow)
    while not first do wp.sleep(0.05) end
    h.stop(srv)
    assert.equal(200, first)
    assert.equal(503, st)
    assert.equal("ECAPACITY", r.code)
  end)

  it("admin reload answers loopback only", function()
    -- every test client is on loopback: check the rule through the route
    local srv = h.start_controller(BASE_CONFIG, { dir = new_dir() })
    local st, _, body = h.http("POST", srv.url .. "/admin/reload")
    h.stop(srv)
    assert.equal(200, st)
    assert.is_true(cjson.decode(body).accepted)
  end)
end)

describe("hot reload #integration", function()
  it("a bad policy is rejected with file:line; the old generation keeps serving", function()
    local dir = new_dir()
    local srv = h.start_controller(BASE_CONFIG, { dir = dir })
    local f = assert(io.open(dir .. "/policies/code_patterns.lua", "a"))
    f:write("\nthis is not lua\n")
    f:close()
    local st, _, body = h.http("POST", srv.url .. "/admin/reload")
    assert.equal(400, st)
    local r = cjson.decode(body)
    assert.is_false(r.accepted)
    assert.matches("code_patterns%.lua:%d+:", r.error)
    local st2, r2 = post(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = sha("4") })
    assert.equal(200, st2)
    assert.equal("VALID", r2.result)
    local _, _, text = h.http("GET", srv.url .. "/metrics")
    assert.matches('wp_reloads_total{result="rejected"} [1-9]', text)
    local status = h.stop(srv)
    assert.matches("rejected", status.stderr)
  end)

  it("reloads on SIGHUP and on a file change, with zero failed requests under traffic", function()
    local dir = new_dir()
    local srv = h.start_controller(BASE_CONFIG, { dir = dir })
    local failures, done, total, why = 0, false, 0, {}
    for _ = 1, 3 do
      wp.spawn(function()
        while not done do
          local st = h.http("GET", srv.url .. "/health")
          local st2, r = post(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
            expectedHash = sha("4") })
          total = total + 2
          if st ~= 200 or st2 ~= 200 or r.result ~= "VALID" then
            failures = failures + 1
            why[#why + 1] = ("health %s, verify %s %s"):format(tostring(st), tostring(st2), cjson.encode(r))
          end
        end
      end)
    end
    for i = 1, 6 do
      if i % 2 == 0 then
        -- SIGHUP to the controller alone, as an operator's `kill -HUP pid`
        -- does: a signal to its whole group could also reach a worker it is
        -- forking right now (before the child's setsid)
        require("workproof.host").kill(srv.proc.pid, 1)
      else
        local f = assert(io.open(dir .. "/policies/rate_limit.lua", "a"))
        f:write("\n-- touched " .. i .. "\n")
        f:close()
      end
      wp.sleep(0.3)
    end
    done = true
    wp.sleep(0.5)
    local _, _, text = h.http("GET", srv.url .. "/metrics")
    h.stop(srv)
    assert.equal(0, failures, table.concat(why, "\n"))
    assert.is_true(total > 10)
    local accepted = tonumber(text:match('wp_reloads_total{result="accepted"} (%d+)'))
    assert.is_true(accepted >= 5, "reloads accepted: " .. tostring(accepted))
  end)
end)

describe("lifecycle #integration", function()
  it("SIGTERM lets in-flight requests finish, then exits 0", function()
    local srv = h.start_controller(BASE_CONFIG, { dir = new_dir() })
    local st, r
    wp.spawn(function()
      st, r = post(srv, { taskType = "code-execution", language = "lua",
        code = "local x = 0 for i = 1, 5e8 do x = x + i end print('done')", expectedHash = sha("done") })
    end)
    wp.sleep(0.3)
    local status = h.stop(srv)   -- SIGTERM while the request runs
    while not st do wp.sleep(0.05) end
    assert.equal(200, st)
    assert.equal("VALID", r.result)
    assert.equal(0, status.exit_status)
    assert.matches("draining 1 request", status.stderr)
  end)

  it("as pid 1 (a container without an init) it leaves no zombie behind", function()
    if not h.is_root() then return pending("a pid namespace of its own needs root") end
    -- no warm pool: its refills would reap (and sweep) after the last task
    local srv = h.start_controller(h.config("limits = { timeout_min = 1 }, worker = { pool = { lua = 0 } },"),
      { dir = new_dir(), prefix = { "unshare", "--fork", "--pid", "--mount-proc" } })
    local pid = assert(h.child_of(srv.proc.pid))
    for i = 1, 8 do
      local st, r = post(srv, { taskType = "code-execution", language = "lua", code = "print(" .. i .. ")",
        expectedHash = sha(tostring(i)) })
      assert.equal("VALID", r.result, st)
    end
    local _, r = post(srv, { taskType = "code-execution", language = "lua", code = "while true do end",
      timeoutMs = 300, expectedHash = sha("x") })
    assert.equal("TIMEOUT", r.result)
    wp.sleep(1)   -- the sandboxes' teardown
    local zombies = h.zombie_children(pid)
    require("workproof.host").kill(pid, 15)
    while srv.proc:read() do end
    srv.proc:wait()
    assert.same({}, zombies)
  end)

  it("after a crash, a job that was running is ERROR and refundable; verdicts persist", function()
    local dir = new_dir()
    local srv = h.start_controller(BASE_CONFIG, { dir = dir })
    local _, done = post(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = sha("4") })
    local st, r = post(srv, { taskType = "code-execution", language = "lua", code = "while true do end",
      expectedHash = sha("4"), timeoutSeconds = 30 }, { Prefer = "respond-async" })
    assert.equal(202, st)
    wp.sleep(0.3)
    h.stop(srv, 9)           -- SIGKILL: no graceful anything
    local srv2 = h.start_controller(BASE_CONFIG, { dir = dir })
    local _, _, b1 = h.http("GET", srv2.url .. "/verify/" .. done.jobId)
    local _, _, b2 = h.http("GET", srv2.url .. "/verify/" .. r.jobId)
    local status = h.stop(srv2)
    assert.equal("VALID", cjson.decode(b1).result)
    local j = cjson.decode(b2)
    assert.equal("completed", j.status)
    assert.equal("ERROR", j.result)
    assert.is_true(j.refundEligible)
    assert.matches("orphaned worker", status.stderr)
  end)
end)
