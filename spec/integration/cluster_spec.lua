-- SPDX-License-Identifier: MIT
-- Many hosts, one state: three real controllers, each with a state dir of
-- its own (as on three machines), sharing one real PostgreSQL server that
-- the spec starts itself (initdb in a temporary directory, a free loopback
-- port). Jobs are answerable from every host and outlive theirs (kill -9:
-- taken over by exactly one other host); a host that stops beating on
-- another machine is taken over after its lease; SIGTERM of one host
-- leaves the others serving; the rate limit holds across hosts; payments
-- are consumed once across hosts, even when presented at the same instant.
local wp = require "workproof"
local h = require "helpers"
local host = require "workproof.host"
local store = require "workproof.store"
local cjson = require "cjson.safe"

local pg

-- a Lua task that keeps its worker busy for a few seconds, then answers
local SLOW = "local x = 0 for i = 1, 3e8 do x = x + i % 7 end print('done')"
local FOUR = { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
  expectedHash = h.sha("4") }

local function job(srv, id)
  local _, _, b = h.http("GET", srv.url .. "/verify/" .. id)
  return cjson.decode(b or "")
end

local function wait_job(srv, id, seconds)
  local j
  assert.is_true(h.eventually(function()
    j = job(srv, id)
    return j and j.status == "completed"
  end, seconds), "job " .. id .. " still running")
  return j
end

-- an async job that keeps its worker busy a few seconds on srv: its 202 answer
local function slow_job(srv)
  local st, r = h.verify(srv, { taskType = "code-execution", language = "lua", code = SLOW,
    expectedHash = h.sha("done") }, { Prefer = "respond-async" })
  assert.equal(202, st, cjson.encode(r))
  return r
end

-- kill the workers a killed controller (pid) left behind in its state dir
local function kill_workers(dir, pid)
  for _, w in ipairs((h.workers_of(dir, pid))) do host.kill(w, 9, true) end
end

-- run fns at once (each in its own coroutine); returns their results in order
local function together(fns)
  local out, done = {}, 0
  for i, fn in ipairs(fns) do
    host.spawn(function()
      out[i] = { fn() }
      done = done + 1
    end)
  end
  assert.is_true(h.eventually(function() return done == #fns end, 120))
  return out
end

setup(function() pg = h.start_postgres() end)
teardown(function() if pg then pg.stop() end end)

describe("three controllers on one PostgreSQL #integration", function()
  local url, hosts
  local CONFIG
  setup(function()
    url = pg.db()
    CONFIG = h.config(("store = %q, store_lease = 3,"):format(url),
      { rate_limit = "{ config = { limit = 20, window = 3600, warn_ratio = 0.9 } }" })   -- no refill during the test
    hosts = {}
    for i = 1, 3 do hosts[i] = h.start_controller(CONFIG, { dir = h.policy_dir() }) end
  end)
  teardown(function()
    for _, s in ipairs(hosts) do if s.proc and not s.stopped then h.stop(s) end end
  end)

  it("migrates the database once and registers every host", function()
    local db = assert(store.open(url))
    assert.same({ { version = 1 }, { version = 2 }, { version = 3 } },
      db:exec("SELECT version FROM schema_migrations ORDER BY version"))
    local pids = {}
    for _, r in ipairs(db:exec("SELECT pid FROM hosts ORDER BY pid")) do pids[#pids + 1] = r.pid end
    db:close()
    local want = { hosts[1].proc.pid, hosts[2].proc.pid, hosts[3].proc.pid }
    table.sort(want)
    assert.same(want, pids)
  end)

  it("answers an async job on every host, running and then done", function()
    local st, r = h.verify(hosts[1], FOUR, { Prefer = "respond-async" })
    assert.equal(202, st, cjson.encode(r))
    local j = wait_job(hosts[2], r.jobId, 30)
    assert.equal("VALID", j.result, cjson.encode(j))
    assert.same(j, job(hosts[3], r.jobId))
    assert.same(j, job(hosts[1], r.jobId))
  end)

  it("holds the rate limit across hosts: 30 requests from one client at once, 20 pass", function()
    local fns = {}
    for i = 1, 30 do
      local srv = hosts[(i - 1) % 3 + 1]
      fns[i] = function() return h.verify(srv, FOUR, nil, { from = "127.0.0.9" }) end
    end
    local ok, limited, other = 0, 0, {}
    for _, res in ipairs(together(fns)) do
      if res[1] == 200 then ok = ok + 1
      elseif res[1] == 429 then limited = limited + 1
      else other[#other + 1] = tostring(res[1]) .. " " .. cjson.encode(res[2]) end
    end
    assert.same({}, other)
    assert.equal(20, ok, ("%d passed, %d limited"):format(ok, limited))
    assert.equal(10, limited)
  end)

  it("takes over the job of a host killed with -9 on exactly one other host: ERROR, refundable", function()
    local victim = hosts[1]
    local vpid = victim.proc.pid
    local r = slow_job(victim)
    assert.equal("running", job(hosts[2], r.jobId).status)
    host.kill(victim.proc.pid, 9)
    victim.proc:wait()
    victim.stopped = true
    kill_workers(victim.dir, vpid)
    local j = wait_job(hosts[2], r.jobId, 20)
    assert.equal("ERROR", j.result, cjson.encode(j))
    assert.is_true(j.refundEligible)
    assert.matches("^EINTERRUPTED", j.error)
    assert.same(j, job(hosts[3], r.jobId))
    -- the dead host is forgotten
    assert.is_true(h.eventually(function()
      local db = assert(store.open(url))
      local n = db:row("SELECT count(*) AS n FROM hosts WHERE pid = ?", vpid).n
      db:close()
      return n == 0
    end, 10))
    hosts[1] = h.start_controller(CONFIG, { dir = h.policy_dir() })
    -- exactly one host logged the takeover
    local taken = 0
    for i = 2, 3 do
      local s = h.stop(hosts[i])
      local _, n = s.stderr:gsub("taken over", "")
      taken = taken + n
      hosts[i] = h.start_controller(CONFIG, { dir = h.policy_dir() })
    end
    assert.equal(1, taken)
  end)

  it("takes over a host on another machine only once its heartbeat is older than the lease", function()
    local db = assert(store.open(url))
    local id, t = ("f"):rep(32), host.time()
    assert.equal(1, db:exec("INSERT INTO hosts(id, pid, start, boot, started, seen, machine) "
      .. "VALUES (?, 1, '1', 'another-boot-id', ?, ?, 'elsewhere')", id, t, t))
    assert.equal(1, db:exec("INSERT INTO jobs(id, status, created, updated, task_hash, owner) "
      .. "VALUES ('abcd01', 'running', ?, ?, 'ff', ?)", t, t, id))
    -- beating for twice the lease: it stays running
    local until_, last_beat = host.now() + 6, nil
    while host.now() < until_ do
      db:exec("UPDATE hosts SET seen = ? WHERE id = ?", host.time(), id)
      last_beat = host.now()
      host.sleep(0.5)
      assert.equal("running", job(hosts[2], "abcd01").status)
    end
    local j = wait_job(hosts[3], "abcd01", 10)
    -- not before the lease (3 s) ran out since the last beat
    local after = host.now() - last_beat
    assert.is_true(after >= 2.9, ("taken over %.2f s after the last beat"):format(after))
    assert.equal("ERROR", j.result)
    assert.is_true(j.refundEligible)
    assert.is_nil(db:row("SELECT id FROM hosts WHERE id = ?", id))
    db:close()
  end)

  it("SIGTERM of one host leaves the others serving; its interrupted job is answered everywhere", function()
    local leaving = hosts[2]
    local pid = leaving.proc.pid
    local r = slow_job(leaving)
    local s = h.stop(leaving)
    leaving.stopped = true
    assert.equal(0, s.exit_status, s.stderr)
    -- a drain waits for requests in flight, not for async jobs: the worker
    -- is stopped and the job answered ERROR (refundable), on every host
    local j = wait_job(hosts[1], r.jobId, 10)
    assert.equal("ERROR", j.result, cjson.encode(j))
    assert.is_true(j.refundEligible)
    assert.same(j, job(hosts[3], r.jobId))
    for _, i in ipairs({ 1, 3 }) do
      local vst, v = h.verify(hosts[i], FOUR)
      assert.equal(200, vst, cjson.encode(v))
      assert.equal("VALID", v.result)
    end
    local db = assert(store.open(url))
    assert.is_nil(db:row("SELECT id FROM hosts WHERE pid = ?", pid))
    db:close()
  end)
end)

describe("payments across three controllers on one PostgreSQL #integration", function()
  local SIGNER_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"   -- anvil #0
  local PAYER_KEY = wp.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d") -- anvil #1
  local PAYER = wp.eth.address(wp.secp256k1.pubkey(PAYER_KEY))
  local OTHER_KEY = wp.unhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a") -- anvil #2
  local LEGACY_PAYER = wp.eth.address(wp.secp256k1.pubkey(OTHER_KEY))
  local anvil, hosts, url = nil, {}, nil

  local function rpc() return wp.rpc.new(anvil.url) end

  setup(function()
    anvil = h.start_anvil()
    h.write(anvil.dir .. "/signer.key", SIGNER_KEY .. "\n")
    os.execute("chmod 600 " .. h.q(anvil.dir .. "/signer.key"))
    url = pg.db()
    local cfg = ([[return {
  state_dir = "@DIR@/var", policies_dir = "@DIR@/policies", store = %q,
  policies = { task_types = {}, code_patterns = {}, worker_threshold = {}, rate_limit = {}, circuit_breaker = {} },
  chain = { enabled = true, rpc = %q, deployment = "%s/dep.json", key_file = "%s/signer.key", wait_receipt = 15 },
  payments = { enabled = true },
}]]):format(url, anvil.url, anvil.dir, anvil.dir)
    for i = 1, 3 do hosts[i] = h.start_controller(cfg, { dir = h.policy_dir() }) end
  end)
  teardown(function()
    for _, s in ipairs(hosts) do h.stop(s) end
    if anvil then anvil.proc:kill(15) anvil.proc:wait() end
  end)

  -- the same payment presented to the three hosts at the same instant
  local function race(headers)
    local fns = {}
    for i = 1, 3 do
      fns[i] = function() return h.verify(hosts[i], FOUR, headers) end
    end
    local ok, refused = 0, {}
    for _, res in ipairs(together(fns)) do
      if res[1] == 200 then
        ok = ok + 1
        assert.equal("VALID", res[2].result)
      else
        assert.equal(402, res[1], cjson.encode(res[2]))
        refused[#refused + 1] = res[2].details.payment
      end
    end
    return ok, refused
  end

  it("a legacy tx hash: exactly one host wins, the others refuse it as used", function()
    local r = rpc()
    local nonce = assert(r:call("eth_getTransactionCount", { LEGACY_PAYER, "pending" }))
    local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = tonumber(nonce), maxPriorityFeePerGas = 1e9,
      maxFeePerGas = 3e10, gas = 21000, to = anvil.dep.deployer, value = "1000000000000000", data = "" }, OTHER_KEY))
    local tx = assert(r:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) }))
    assert(r:call("anvil_mine", { 2 }))
    local ok, refused = race({ ["X-402-Payment"] = tx })
    assert.equal(1, ok)
    assert.equal(2, #refused)
    for _, why in ipairs(refused) do assert.matches("already used", why) end
    -- and later, on any host
    for i = 1, 3 do assert.equal(402, (h.verify(hosts[i], FOUR, { ["X-402-Payment"] = tx }))) end
  end)

  it("an x402 authorization: exactly one host wins and it is settled once", function()
    local now = os.time()
    local dep = anvil.dep
    local auth = { from = PAYER, to = dep.deployer, value = "10000", validAfter = tostring(now - 60),
      validBefore = tostring(now + 600), nonce = "0x" .. wp.hex(wp.sha256("cluster " .. tostring(wp.now()))) }
    local digest = assert(wp.eip712.transfer_with_authorization_hash({ name = "USD Coin", version = "2",
      chainId = 31337, verifyingContract = dep.token.address }, auth))
    local sig = wp.secp256k1.sign(PAYER_KEY, digest)
    sig = sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
    local header = wp.base64.encode(cjson.encode({ x402Version = 2, accepted = { scheme = "exact",
      network = "eip155:31337", amount = "10000", asset = dep.token.address, payTo = dep.deployer,
      maxTimeoutSeconds = 300, extra = { name = "USD Coin", version = "2" } },
      payload = { signature = "0x" .. wp.hex(sig), authorization = auth } }))
    local ok, refused = race({ ["PAYMENT-SIGNATURE"] = header })
    assert.equal(1, ok)
    assert.equal(2, #refused)
    for _, why in ipairs(refused) do assert.matches("already used", why) end
    -- one settlement in the shared outbox, mined
    local db = assert(store.open(url))
    local rows = db:exec("SELECT status FROM outbox WHERE kind = 'settle'")
    db:close()
    assert.same({ { status = "mined" } }, rows)
  end)
end)

describe("the circuit breaker on one PostgreSQL #integration", function()
  it("opens for every host when one host's verifications fail (the state is shared)", function()
    local url = pg.db()
    local breaker = { circuit_breaker = "{ config = { failure_threshold = 2, open_seconds = 60 } }" }
    local good = h.start_controller(h.config(("store = %q, watch = false,"):format(url), breaker),
      { dir = h.policy_dir() })
    local bad = h.start_controller(h.config(([[store = %q, watch = false,
  worker = { path = "/nonexistent/workproof-worker" },]]):format(url), breaker), { dir = h.policy_dir() })
    finally(function() h.stop(good) h.stop(bad) end)
    local st, r = h.verify(good, FOUR)
    assert.equal(200, st)
    assert.equal("VALID", r.result)
    -- two infrastructure failures on the broken host: the shared breaker opens
    for _ = 1, 2 do
      st, r = h.verify(bad, FOUR)
      assert.equal(200, st)
      assert.equal("ERROR", r.result)
      assert.matches("^ESPAWN", r.error)
    end
    -- ... and the healthy host, which failed nothing, refuses too
    st, r = h.verify(good, FOUR)
    assert.equal(503, st, cjson.encode(r))
    assert.equal("EBREAKER", r.code)
    local db = assert(store.open(url))
    local row = db:row("SELECT entry FROM shared_state WHERE name = 'circuit_breaker'")
    db:close()
    assert.matches('"open"', row.entry)
  end)
end)
