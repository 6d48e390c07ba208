-- SPDX-License-Identifier: MIT
-- Connection and descriptor budgets of the HTTP server (issue 9: 236
-- half-sent idle connections under a 256-descriptor limit turned the next
-- spawns into ESPAWN and opened the breaker). Clients are real sockets held
-- by a node process (spec/fixtures/conn_hold.js); loopback source addresses
-- 127.0.0.x stand for different clients.
local wp = require "workproof"
local host = require "workproof.host"
local config = require "workproof.config"
local h = require "helpers"
local cjson = require "cjson.safe"

local sha = h.sha

-- Run the fixture; returns its first report and its final one.
local function hold(port, groups, opts)
  opts = opts or {}
  local arg = cjson.encode { port = port, groups = groups, report_after_ms = opts.report_after_ms or 1500,
    hold_ms = opts.hold_ms or 10000 }
  local p = assert(host.process_spawn { file = "/usr/bin/env", args = { "node", "spec/fixtures/conn_hold.js", arg },
    timeout = 130, stderr_limit = 65536 })
  local buf, reports = "", {}
  local proc = { pid = p.pid }
  -- read the first report now; the final one when the caller asks
  local function next_report()
    while true do
      local line, rest = buf:match("^([^\n]*)\n(.*)$")
      if line then
        buf = rest
        return assert(cjson.decode(line), line)
      end
      local c = p:read()
      if not c then error("conn_hold.js ended early: " .. buf .. p:wait().stderr, 2) end
      buf = buf .. c
    end
  end
  reports[1] = next_report()
  function proc.finish(kill)
    if kill then host.kill(p.pid, 15) end
    local r = next_report()
    p:wait()
    return r
  end
  return reports[1], proc
end

local function between(lo, hi, xs)
  for _, x in ipairs(xs) do
    assert(x >= lo and x <= hi, ("%s not in [%s, %s] (%s)"):format(x, lo, hi, table.concat(xs, ",")))
  end
end

local function metric(text, pattern)
  return tonumber(text:match(pattern:gsub("[{}%[%]%.%-\"]", "%%%0") .. " (%d+)"))
end

describe("host.http_listen connection budgets", function()
  local srv
  teardown(function() if srv then srv:close() end end)

  it("checks its options", function()
    local function listen(o)
      o.port, o.reuseport, o.handler = 0, false, function() return 200, {}, "" end
      return host.http_listen(o)
    end
    assert.has_error(function() listen { header_timeout = 5, body_timeout = 1 } end)
    assert.has_error(function() listen { header_timeout = 0 } end)
    assert.has_error(function() listen { max_connections_per_client = -1 } end)
    assert.has_error(function() listen { fd_reserve = -1 } end)
    local s = assert(listen { header_timeout = 1, body_timeout = 1, max_connections_per_client = 0, fd_reserve = 0 })
    local st = s:stats()
    assert.equal(0, st.connections)
    assert.equal(0, st.accepted)
    assert.is_true(st.fds_open > 3 and st.fds_open < st.fd_limit)
    s:close()
  end)

  it("a slowloris is closed after header_timeout, a slow body after body_timeout, an idle "
    .. "keep-alive connection after header_timeout; a client over its cap gets 503", function()
    srv = assert(host.http_listen { port = 0, reuseport = false, header_timeout = 1, body_timeout = 2.5,
      max_connections_per_client = 3, fd_reserve = 16,
      handler = function() return 200, {}, "ok" end })
    local first, proc = hold(srv.port, {
      -- half a request line, then nothing; the 4th and 5th are over the cap
      { name = "loris", count = 5, send = "POST /verify HTT" },
      -- a complete head, then the body a byte at a time
      { name = "body", ["local"] = "127.0.0.2", count = 2,
        send = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
        trickle = { data = "x", every_ms = 200 } },
      -- answered, then kept alive and idle
      { name = "idle", ["local"] = "127.0.0.3", count = 1, send = "GET / HTTP/1.1\r\nHost: x\r\n\r\n" },
    }, { report_after_ms = 500 })
    assert.equal(8, first.opened)
    assert.equal(2, first.groups.loris.closed, cjson.encode(first))   -- refused at once
    assert.equal(3, first.groups.loris.open)
    assert.equal(2, first.groups.body.open)
    assert.equal(1, first.groups.idle.got["HTTP/1.1 200 OK"])
    local st = srv:stats()
    assert.equal(6, st.connections)
    assert.equal(3, st.clients)
    assert.equal(2, st.rejected_per_client)
    assert.equal(0, st.rejected_fd_reserve)

    local final = proc.finish()   -- ends by itself: the server closes them all
    assert.equal(0, final.open, cjson.encode(final))
    table.sort(final.groups.loris.close_ms)
    between(0, 300, { final.groups.loris.close_ms[1], final.groups.loris.close_ms[2] })
    between(900, 2400, { unpack(final.groups.loris.close_ms, 3) })
    between(2400, 4500, final.groups.body.close_ms)
    between(900, 2400, final.groups.idle.close_ms)
    st = srv:stats()
    assert.equal(0, st.connections)
    assert.equal(0, st.clients)
    assert.equal(4, st.timeout_header)   -- 3 slowloris, 1 idle
    assert.equal(2, st.timeout_body)
    srv:close()
    srv = nil
  end)

  it("a request whose handler runs past both timeouts is answered, not cut off", function()
    srv = assert(host.http_listen { port = 0, reuseport = false, header_timeout = 0.5, body_timeout = 1,
      handler = function() wp.sleep(1.8) return 200, {}, "late" end })
    local st, _, body = h.http("GET", ("http://127.0.0.1:%d/"):format(srv.port))
    assert.equal(200, st)
    assert.equal("late", body)
    local s = srv:stats()
    assert.equal(0, s.timeout_header + s.timeout_body)
    srv:close()
    srv = nil
  end)
end)

describe("controller config: connection budgets", function()
  local function load(src)
    local path = os.tmpname()
    h.write(path, src)
    local ok, res = pcall(config.load, path)
    os.remove(path)
    return ok, res
  end

  it("are on by default", function()
    local l = config.defaults().limits
    assert.equal(64, l.max_connections_per_client)
    assert.equal(64, l.fd_reserve)
    assert.equal(10, l.header_timeout)
    assert.equal(30, l.body_timeout)
  end)

  it("rejects bad values", function()
    local ok, err = load("return { limits = { header_timeout = 20, body_timeout = 10 } }")
    assert.is_false(ok)
    assert.matches("header_timeout > limits.body_timeout", err)
    ok, err = load("return { limits = { max_connections_per_client = -1 } }")
    assert.is_false(ok)
    assert.matches("max_connections_per_client", err)
    ok, err = load("return { limits = { header_timeout = 0 } }")
    assert.is_false(ok)
    assert.matches("header_timeout", err)
    ok, err = load("return { limits = { fd_reserve = 'lots' } }")
    assert.is_false(ok)
    assert.matches("fd_reserve", err)
  end)
end)

describe("controller under a 256-descriptor limit #integration", function()
  local srv
  local CONFIG = [[
return {
  state_dir = "@DIR@/var",
  limits = { timeout_min = 1, header_timeout = 60, body_timeout = 60,
             max_connections_per_client = 64, fd_reserve = 64 },
  policies = { rate_limit = { config = { limit = 1000 } } },
}
]]
  setup(function() srv = h.start_controller(CONFIG, { nofile = 256 }) end)
  teardown(function() if srv then h.stop(srv) end end)

  it("refuses a client's connections over max_connections_per_client", function()
    local first, proc = hold(srv.port, { { name = "one", ["local"] = "127.0.0.9", count = 80 } },
      { report_after_ms = 1500, hold_ms = 60000 })
    assert.equal(80, first.opened)
    assert.equal(64, first.open, cjson.encode(first))
    assert.equal(16, first.closed)
    local text = h.metrics(srv)
    assert.equal(16, metric(text, 'wp_http_connections_rejected_total{reason="per_client"}'))
    assert.equal(0, metric(text, 'wp_http_connections_rejected_total{reason="fd_reserve"}'))
    assert.equal(65, metric(text, "wp_http_connections_open"))   -- and this request's own
    assert.equal(256, metric(text, "process_max_fds"))
    proc.finish(true)
  end)

  it("236 half-sent idle connections cannot starve spawns: verifications stay VALID, the breaker closed", function()
    local task = cjson.encode { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = sha("4") }
    local verify = ("POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
      .. "Content-Length: %d\r\nConnection: close\r\n\r\n%s"):format(#task, task)
    local groups = {
      -- connected before the flood, sending their requests while it is held
      { name = "verify", count = 3, send = verify, send_at_ms = 2500, keep = true },
      { name = "metrics", count = 1, send = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        send_at_ms = 7000, keep = true },
    }
    for i = 2, 5 do   -- 4 clients x 59: under the per-client cap, over the descriptors
      groups[#groups + 1] = { name = "flood", ["local"] = "127.0.0." .. i, count = 59, delay_ms = 300,
        send = "POST /verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le" }
    end
    local first, proc = hold(srv.port, groups, { report_after_ms = 10000, hold_ms = 60000 })
    local flood = first.groups.flood
    assert.equal(236, flood.opened, cjson.encode(first))
    assert.equal(236, flood.open + flood.closed)
    assert.is_true(flood.closed > 0, "the reserve refused some")
    assert.is_true(flood.open > 100, "and held the rest: " .. flood.open)

    for _, resp in ipairs(first.groups.verify.data) do
      local body = resp:match("\r\n\r\n(.*)$")
      assert.matches("^HTTP/1.1 200", resp)
      local r = cjson.decode(body)
      assert.equal("VALID", r and r.result, resp)
    end
    local text = first.groups.metrics.data[1]
    assert.matches("^HTTP/1.1 200", text)
    assert.equal(1, metric(text, 'wp_breaker_state{state="closed"}'))
    assert.equal(0, metric(text, "wp_workers_spawn_failed_total"))
    -- all three on warm sandboxes (4 Lua kept ready), whose pipes count too
    assert.equal(3, metric(text, "wp_workers_warm_used_total"))
    assert.equal(3, metric(text, "wp_workers_finished_total"))
    assert.equal(flood.closed, metric(text, 'wp_http_connections_rejected_total{reason="fd_reserve"}'))
    local open_fds, max_fds = metric(text, "process_open_fds"), metric(text, "process_max_fds")
    -- connections stop at the limit less the reserve; the reserve is the
    -- workers' (one spawn, 8 descriptors, may hold some as the page renders)
    assert.is_true(open_fds <= max_fds - 64 + 8, ("%d of %d descriptors open"):format(open_fds, max_fds))
    proc.finish(true)

    -- the flood gone, a new client is served again
    local st, body
    for _ = 1, 50 do   -- the server sees the closes within a loop turn or two
      st, _, body = h.http("POST", srv.url .. "/verify", task, { ["content-type"] = "application/json" })
      if st == 200 then break end
      wp.sleep(0.1)
    end
    assert.equal(200, st, body)
    assert.equal("VALID", cjson.decode(body).result)
  end)
end)
