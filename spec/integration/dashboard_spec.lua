-- SPDX-License-Identifier: MIT
-- The operator's dashboard (docs/dashboard.md) against real controllers
-- (`workproof serve CONFIG`, as an operator starts it): in Debian's
-- Chromium through puppeteer-core (spec/fixtures/dashboard_browser.cjs:
-- verifications, a rate-limited burst and a rejected reload each shown
-- within 2 s, an uptime agent's lease with its timeline, keyboard
-- navigation, 1280x800 and phone width, no console errors; screenshots
-- under build/screenshots/), and the event stream over plain HTTP: it
-- outlives the header timeout, a drain ends it, the chain's outbox (anvil)
-- is in it, and the embedded defaults (no config) serve it.
local h = require "helpers"
local cjson = require "cjson.safe"
local host = require "workproof.host"
local dashboard = require "workproof.notary.dashboard"
local u = require "uptime_helpers"

local CWD = (function()
  local p = assert(io.popen("pwd"))
  local d = p:read("*l")
  p:close()
  return d
end)()

describe("the dashboard in Chromium #integration", function()
  it("shows VALID, INVALID, a rate-limited burst and a rejected reload within 2 s each, without console errors",
    function()
    -- an uptime lease between two real agents; the controller reads the consumer's status API
    local l = u.new_lease()
    local srv
    finally(function()
      if srv then h.stop(srv) end
      u.stop_all(l)
    end)
    u.start(l, "provider")
    local consumer = u.start(l, "consumer")
    u.wait_beats(consumer, l, 2)
    srv = h.start_controller(h.config(('  watch = false,\n  dashboard = { uptime = "%s" },'):format(consumer.status), {
      rate_limit = "{ config = { limit = 4, window = 60 } }" }), { dir = h.policy_dir() })
    local out_dir = (h.build:sub(1, 1) == "/" and h.build or (CWD .. "/" .. h.build)) .. "/screenshots"
    local out, status = h.run("/usr/bin/env", { "node", "spec/fixtures/dashboard_browser.cjs", "--url", srv.url,
      "--policy", srv.dir .. "/policies/code_patterns.lua", "--out", out_dir, "--lease", l.id })
    local res = cjson.decode(out:match("[^\n]*\n?$") or "")
    assert.is_table(res, "the browser run printed no result: " .. out .. tostring(status.stderr))
    local failed = {}
    for _, c in ipairs(res.checks) do
      if not c.ok then failed[#failed + 1] = c.name .. ": " .. tostring(c.detail) end
    end
    assert.same({}, failed)
    assert.is_true(#res.checks >= 17, out)
    for _, c in ipairs(res.checks) do
      if c.ms then assert.is_true(c.ms <= 2000, c.name) end
    end
    assert.same({}, res.consoleErrors)
    assert.equal(3, #res.screenshots)
    for _, f in ipairs(res.screenshots) do
      local png = h.read(f)
      assert.equal("\137PNG", png:sub(1, 4))
      assert.is_true(#png > 10000, f)
    end
  end)
end)

local follow, read_all = h.follow, h.read_all

local function states(text)
  local out = {}
  for data in text:gmatch("event: state\ndata: ([^\n]*)\n\n") do out[#out + 1] = cjson.decode(data) end
  return out
end

describe("the dashboard's event stream #integration", function()
  it("outlives the header timeout: a state a second, each a full snapshot", function()
    local srv = h.start_controller(h.config("  watch = false,\n  limits = { header_timeout = 1, body_timeout = 1 },"),
      { dir = h.policy_dir() })
    finally(function() h.stop(srv) end)
    h.verify(srv, { taskType = "code-execution", language = "lua", code = "print(1)", expectedHash = h.sha("1") })
    local text, st = read_all(follow(srv.url .. "/dashboard/events", 3.5))
    assert.equal(28, st.exit_status)   -- curl: the time ran out, the stream did not end
    local s = states(text)
    assert.is_true(#s >= 3, text)
    local last = s[#s]
    assert.equal(1, last.total.n)
    assert.equal(1, last.total.VALID)
    assert.equal("VALID", last.recent[1].class)
    assert.matches("^%x+$", last.recent[1].jobId)
    assert.equal("closed", last.breaker.state)
    assert.equal(5, #last.generation.files)
    assert.is_true(last.reload.ok)
    assert.equal(cjson.null, last.outbox)
    assert.equal(cjson.null, last.uptime)
  end)

  it("a drain ends the open streams and the controller exits 0", function()
    local srv = h.start_controller(h.config("  watch = false,"), { dir = h.policy_dir() })
    local ps = { follow(srv.url .. "/dashboard/events", 30), follow(srv.url .. "/dashboard/events", 30) }
    assert.is_true(h.eventually(function()
      local m = h.metrics(srv)
      return m:find("wp_http_connections_open 3", 1, true) ~= nil   -- the two streams and this scrape
    end, 10))
    local t0 = host.now()
    local status = h.stop(srv)
    assert.equal(0, status.exit_status, status.stderr)
    for _, p in ipairs(ps) do
      local text, st = read_all(p)
      assert.equal(0, st.exit_status, text)   -- the stream ended cleanly, before curl's 30 s
      assert.is_true(#states(text) >= 1)
    end
    assert.is_true(host.now() - t0 < 10)
  end)
end)

describe("the dashboard with the chain on #integration", function()
  it("shows the registry and the outbox: the attestation queued, sent, mined with its tx hash", function()
    local a = h.start_anvil()
    local srv
    finally(function()
      if srv then h.stop(srv) end
      a.proc:kill(15)
      a.proc:wait()
    end)
    -- anvil's account #0 signs
    h.write(a.dir .. "/signer.key", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")
    os.execute("chmod 600 " .. h.q(a.dir .. "/signer.key"))
    srv = h.start_controller(h.config(([[
  watch = false,
  chain = { enabled = true, rpc = "%s", deployment = "%s/dep.json", key_file = "%s/signer.key", wait_receipt = 15 },]])
      :format(a.url, a.dir, a.dir)), { dir = h.policy_dir() })
    local st, r = h.verify(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = h.sha("4") })
    assert.equal(200, st)
    assert.equal("mined", r.attestation)
    local s = states(read_all(follow(srv.url .. "/dashboard/events", 1.5)))
    local ob = assert.is_table(s[#s].outbox)
    assert.equal(a.dep.contracts.ValidationRegistry.address:lower(), ob.registry:lower())
    assert.equal(31337, ob.chainId)
    assert.equal(1, ob.states.mined)
    assert.equal(0, ob.states.pending)
    assert.equal("mined", ob.recent[1].status)
    assert.equal(r.registryTxHash, ob.recent[1].txHash)
    assert.equal(cjson.null, s[#s].payments)   -- payments off
  end)
end)

describe("the dashboard with payments on #integration", function()
  it("counts payments settled (x402) and refunded (a legacy payment whose host failed)", function()
    local a = h.start_anvil()
    local good, broken
    finally(function()
      if good then h.stop(good) end
      if broken then h.stop(broken) end
      a.proc:kill(15)
      a.proc:wait()
    end)
    -- two controllers on the chain, each its own signer: anvil #0, and #5 with no worker binary
    local function conf(key, n, extra)
      local f = ("%s/signer-%d.key"):format(a.dir, n)
      h.write(f, key .. "\n")
      os.execute("chmod 600 " .. h.q(f))
      return h.config(([[
  watch = false, %s
  chain = { enabled = true, rpc = "%s", deployment = "%s/dep.json", key_file = "%s", wait_receipt = 15 },
  payments = { enabled = true },]]):format(extra or "", a.url, a.dir, f))
    end
    good = h.start_controller(conf("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", 0),
      { dir = h.policy_dir() })
    broken = h.start_controller(conf("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba", 5,
      'worker = { path = "/nonexistent/workproof-worker" },'), { dir = h.policy_dir() })
    local task = { taskType = "code-execution", language = "lua", code = "print(2 + 2)", expectedHash = h.sha("4") }
    -- x402 on the healthy host: VALID, settled
    local st, r = h.verify(good, task, { ["PAYMENT-SIGNATURE"] = (h.x402_payment(a.dep)) })
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
    -- a legacy payment (anvil #6 pays the broken host's signer) that meets a host failure: refunded
    local rpc = require("workproof").rpc.new(a.url)
    local wp = require "workproof"
    local _, _, ib = h.http("GET", broken.url .. "/info")
    local th = cjson.decode(ib).payment.txhash
    local payer = h.unhex("92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e")
    local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = 0, maxPriorityFeePerGas = 1e9, maxFeePerGas = 3e10,
      gas = 21000, to = th.payTo, value = th.amountWei, data = "" }, payer))
    local tx = assert(rpc:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) }))
    assert(rpc:call("anvil_mine", { th.confirmations }))
    st, r = h.verify(broken, task, { ["X-402-Payment"] = tx })
    assert.equal(200, st, cjson.encode(r))
    assert.equal("ERROR", r.result)
    assert.is_true(r.refundEligible)
    local function payments_of(srv)
      local s = states(read_all(follow(srv.url .. "/dashboard/events", 1.5)))
      return s[#s].payments
    end
    assert.equal(1, payments_of(good).settled)
    assert.is_true(h.eventually(function() return (payments_of(broken).refunded or 0) == 1 end, 20))
  end)
end)

describe("the dashboard on the embedded defaults (`workproof serve`, no config) #integration", function()
  it("serves the page and its stream to loopback clients", function()
    local dir = h.tmpdir()
    local exe = h.build:sub(1, 1) == "/" and h.build or (CWD .. "/" .. h.build)
    local p, buf = h.spawn_until({ file = "/bin/sh", args = { "-c", ("cd %s && exec %s/workproof serve --listen "
      .. "127.0.0.1:0"):format(h.q(dir), h.q(exe)) }, timeout = 120 }, "listening on", "controller")
    local srv = { url = "http://127.0.0.1:" .. buf:match("listening on [^\n]*:(%d+)"), proc = p }
    finally(function() h.stop(srv) end)
    local st, hd, page = h.http("GET", srv.url .. "/dashboard")
    assert.equal(200, st)
    assert.matches("^text/html", hd["content-type"])
    assert.equal(h.read("dashboard/index.html"), page)
    local text = read_all(follow(srv.url .. "/dashboard/events", 1.5))
    local s = states(text)
    assert.is_true(#s >= 1, text)
    assert.equal(5, #s[1].generation.files)   -- the shipped policies
    assert.equal("start", s[1].reload.reason)
  end)
end)

describe("the dashboard's latency histogram", function()
  it("buckets by x1.25 from 1 ms; percentiles are bucket upper bounds", function()
    assert.equal(1, dashboard.bucket(0))
    assert.equal(1, dashboard.bucket(0.001))
    assert.equal(2, dashboard.bucket(0.0011))
    assert.equal(48, dashboard.bucket(1e6))
    for _, s in ipairs({ 0.0012, 0.01, 0.25, 3 }) do
      local b = dashboard.bucket(s)
      assert.is_true(s <= dashboard.bucket_upper(b) * (1 + 1e-9) and s > dashboard.bucket_upper(b - 1), tostring(s))
    end
    local hist = {}
    for b = 1, 48 do hist[b] = 0 end
    hist[dashboard.bucket(0.002)] = 90
    hist[dashboard.bucket(0.5)] = 10
    local p = dashboard.percentiles(hist, 100, { 0.5, 0.9, 0.99 })
    assert.is_true(p[1] >= 2 and p[1] < 2.5)
    assert.is_true(p[2] >= 2 and p[2] < 2.5)
    assert.is_true(p[3] >= 500 and p[3] < 625)
    assert.is_nil(dashboard.percentiles(hist, 0, { 0.5 }))
  end)
end)
