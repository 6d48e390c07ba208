-- SPDX-License-Identifier: MIT
-- Challenges with real agents over the real transport (docs/uptime.md,
-- "Challenges"): an honest provider passes every kind; a throttled one is
-- caught by the compute challenge against its own baseline, one behind a
-- relay by the latency challenge; a provider whose capacity attestation
-- shares out more than it has is flagged; forged and replayed answers are
-- refused; the consumer uploads the data storage challenges ask for, and a
-- provider without it, or committed to other data, fails or is refused.
local h = require "helpers"
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local chal = require "workproof.uptime.challenge"
local ledger = require "workproof.uptime.ledger"

local u = require "uptime_helpers"
local seed, pub, new_lease, start, get, soon, stop_all, metric =
  u.seed, u.pub, u.new_lease, u.start, u.get, u.soon, u.stop_all, u.metric

-- challenge every second, a small VDF, a baseline of 3 passes
local function policies(extra, compute_t)
  return "policies = { timestamps = { interval_s = 1, tolerance_s = 0.5, drift_s = 10 }, "
    .. "challenges = { compute_every_s = 1, compute_t = " .. (compute_t or 20000)
    .. ", latency_every_s = 1, latency_bound_ms = 150, "
    .. "storage_every_s = 1, baseline_window = 3, slow_factor = 2" .. (extra or "") .. " } },"
end

local function challenges(c, l)
  return get(c, "/leases/" .. l.id .. "/challenges")
end

local function count(list, kind, pred)
  local n = 0
  for _, r in ipairs(list) do if r.kind == kind and pred(r) then n = n + 1 end end
  return n
end

describe("uptime challenges #integration", function()
  it("an honest provider passes latency and compute challenges; the list and the score say so", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    start(l, "provider", { policies = policies() })
    local c = start(l, "consumer", { policies = policies() })
    assert.is_true(soon(function()
      local t = challenges(c, l).challenges
      return count(t, "compute", function(r) return r.passed end) >= 3
        and count(t, "latency", function(r) return r.passed end) >= 3
    end, 30))
    local t = challenges(c, l)
    for _, r in ipairs(t.challenges) do
      assert.is_true(r.passed, cjson.encode(r))
      assert.is_number(r.latencyMs)
      assert.is_true(r.deadline > r.issuedAt)
    end
    assert.equal("ok", t.scoreState)
    assert.is_true(t.score > 0.9)
    assert.is_true(metric(l.provider, "workproof_uptime_challenges_answered_total") >= 6)
    assert.is_true(metric(c, "workproof_uptime_challenges_total", 'outcome="passed"') >= 6)
  end)

  it("a throttled provider (stopped 3/4 of the time) is caught by the compute challenge: degraded", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    -- a compute of ~40 ms never fits in one 10 ms run of the throttled
    -- provider below, so each answer waits out at least one stop (with
    -- 20,000 squarings, ~14 ms, a fast moment could slip through, and a
    -- slow start could leave the baseline itself high)
    local p = start(l, "provider", { policies = policies(nil, 60000) })
    local c = start(l, "consumer", { policies = policies(nil, 60000) })
    assert.is_true(soon(function()
      return count(challenges(c, l).challenges, "compute", function(r) return r.passed end) >= 3
    end, 30))
    -- a deliberately slowed runtime: SIGSTOP 30 ms, SIGCONT 10 ms
    local throttling = true
    host.spawn(function()
      while throttling do
        host.kill(p.proc.pid, 19)
        host.sleep(0.03)
        host.kill(p.proc.pid, 18)
        host.sleep(0.01)
      end
    end)
    local ok = soon(function()
      return count(challenges(c, l).challenges, "compute", function(r) return r.degraded or not r.passed end) >= 1
    end, 30)
    throttling = false
    host.sleep(0.1)
    host.kill(p.proc.pid, 18)
    assert.is_true(ok, "the compute challenge did not notice")
  end)

  it("a provider behind a relay adding 120 ms each way fails the latency bound", function()
    local l = new_lease()
    finally(function()
      stop_all(l)
      if l.relay then host.kill(l.relay.pid, 15) end
    end)
    start(l, "provider", { policies = policies() })
    local relay, out = h.spawn_until({ file = "/usr/bin/node",
      args = { "spec/fixtures/tcp_relay.js", "0", l.addr, "120" }, timeout = 300 }, "relay on %d+", "relay")
    l.relay = relay
    l.via = "127.0.0.1:" .. out:match("relay on (%d+)")
    local c = start(l, "consumer", { policies = policies() })
    assert.is_true(soon(function()
      return count(challenges(c, l).challenges, "latency", function(r) return r.degraded end) >= 2
    end, 30))
    local t = challenges(c, l).challenges
    for _, r in ipairs(t) do
      if r.kind == "latency" then assert.is_true(r.latencyMs > 150, cjson.encode(r)) end
    end
  end)

  it("an overcommitted provider (shares above its signed capacity) is flagged", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    local extra = "  capacity = { vcpus = 1, memory_mb = 1024 },"
    start(l, "provider", { policies = policies(), extra = extra, share = "{ vcpus = 2, memory_mb = 512 }" })
    local c = start(l, "consumer", { policies = policies() })
    assert.is_true(soon(function()
      local cap = challenges(c, l).capacity
      return type(cap) == "table" and cap.ok == false
    end, 20))
    assert.matches("OVERCOMMITTED: vcpus", challenges(c, l).capacity.detail)
    assert.is_true(metric(c, "workproof_uptime_beats_rejected_total", "OVERCOMMITTED") >= 1)
    local ev = get(c, "/leases/" .. l.id .. "/evidence").evidence
    local found
    for _, e in ipairs(ev) do if e.kind == "OVERCOMMITTED" then found = e end end
    assert.is_table(found)
    -- the attestation in the evidence is the provider's signature, checkable by anyone
    assert.is_true(chal.verify(chal.CAPACITY, found.data.attestation, l.pk))
  end)

  it("forged, replayed and late answers are refused", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    start(l, "provider", { policies = policies() })
    -- one real answer, from the provider, over the transport (as the lease's consumer)
    local id = assert(host.tls_identity(l.cs, 3600))
    local tls = { cert = id.cert, key = id.key, pin = l.pk }
    local ch = { kind = "compute", nonce = chal.nonce(), params = { t = 20000 }, scope = l.id }
    local r = chal.run { url = "https://" .. l.addr .. "/v1/leases/" .. l.id .. "/challenge", ch = ch, tls = tls,
      key = l.pk, deadline_s = 10 }
    assert.is_true(r.ok, tostring(r.why))
    -- replayed: the same answer to a fresh challenge
    local ch2 = { kind = "compute", nonce = chal.nonce(), params = { t = 20000 }, scope = l.id }
    assert.same({ false, "NOT_THIS_CHALLENGE" }, { chal.check(ch2, r.answer, l.pk) })
    -- another lease's answer
    assert.same({ false, "NOT_THIS_CHALLENGE" },
      { chal.check({ kind = ch.kind, nonce = ch.nonce, params = ch.params, scope = ("0"):rep(64) }, r.answer, l.pk) })
    -- forged: the result edited, or signed by another key
    local forged = cjson.decode(cjson.encode(r.answer))
    forged.result.y = ("0"):rep(#forged.result.y)
    assert.same({ false, "BAD_SIGNATURE" }, { chal.check(ch, forged, l.pk) })
    local _, other = wp.ed25519.keypair(wp.unhex(seed()))
    local resigned = chal.sign(chal.ANSWER, cjson.decode(cjson.encode(r.answer)), other, pub(seed()))
    assert.same({ false, "WRONG_SIGNER" }, { chal.check(ch, resigned, l.pk) })
    -- a wrong VDF signed by the right key is still wrong
    local _, psk = wp.ed25519.keypair(wp.unhex(l.ps))
    local bad = cjson.decode(cjson.encode(r.answer))
    bad.result.y = bad.result.proof
    chal.sign(chal.ANSWER, bad, psk, l.pk)
    assert.same({ false, "BAD_VDF" }, { chal.check(ch, bad, l.pk) })
    -- late: the policy turns an answer past its deadline into a miss
    local policy = require "workproof.policy"
    local p = policy.load_file("policies/challenges.lua")
    local conf = assert(policy.configure(p, {}))
    local j = p.judge(conf, { kind = "compute", ok = true, ms = 11000, deadline_s = 10 }, {})
    assert.is_false(j.passed)
    assert.matches("late", j.detail)
    -- a peer that is not the lease's consumer cannot challenge the lease
    local id3 = assert(host.tls_identity(seed(), 3600))
    local st = host.http_request { url = "https://" .. l.addr .. "/v1/leases/" .. l.id .. "/challenge",
      method = "POST", body = cjson.encode(ch2), tls = { cert = id3.cert, key = id3.key, pin = l.pk } }
    assert.is_nil(st)   -- not pinned: refused in the handshake
  end)

  -- a fisherman's config sampling one provider once; compute_t is ~90 ms of work on the IFMA chain
  -- (docs/vdf.md), long beside the transport's few ms, so two at once on one CPU take ~twice as long
  local function fisherman_conf(l, extra)
    local f = { dir = l.dir, seed = seed() }
    f.key = pub(f.seed)
    f.path = l.dir .. "/fisherman.lua"
    h.write(f.path, ("return { identity = { seed = %q }, reports_dir = %q, samples = 1, every_s = 1, "
      .. "compute_t = 250000, targets = { { provider_key = %q, address = %q%s } } }"):format(f.seed,
      l.dir .. "/reports", l.pk, l.addr, extra or ""))
    return f
  end

  local function run_fisherman(f)
    local out, st = h.run(h.build .. "/workproof", { "uptime", "fisherman", f.path })
    assert(st.exit_status == 0, out .. st.stderr)
    local file = out:match("report (%S+)")
    assert(file, out)
    return file, cjson.decode(h.read(file))
  end

  local function evidence_verify(file)
    local out, st = h.run(h.build .. "/workproof", { "uptime", "evidence", "verify", file, "--json" })
    return st.exit_status, cjson.decode(out) or out
  end

  it("the fisherman: a provider it has no lease with, challenged; the signed report verifies, a tampered one not",
    function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      start(l, "provider", { policies = policies(), extra = '  challengers = "any", capacity = { vcpus = 2 },',
        share = "{ vcpus = 1 }" })
      local f = fisherman_conf(l)
      local file, rep = run_fisherman(f)
      assert.equal(f.key, rep.signer)
      assert.equal(l.pk, rep.provider)
      assert.is_true(#rep.challenges >= 2)
      for _, c in ipairs(rep.challenges) do assert.is_true(c.passed, cjson.encode(c)) end
      assert.equal(2, rep.parallel.n)
      assert.is_true(rep.capacity.ok)
      local code, res = evidence_verify(file)
      assert.equal(0, code, cjson.encode(res))
      assert.is_true(res.valid)
      assert.equal(#rep.challenges, res.summary.answers_checked)
      -- tampered: a failed challenge made to look passed (the fisherman's signature breaks)
      local t = cjson.decode(h.read(file))
      t.challenges[1].ms = 1
      h.write(file .. ".t1", cjson.encode(t))
      local c1, r1 = evidence_verify(file .. ".t1")
      assert.equal(1, c1)
      assert.matches("signature", r1.reason)
      -- re-signed by the fisherman but with an answer the provider never gave
      local t2 = cjson.decode(h.read(file))
      t2.challenges[2].answer.result.y = t2.challenges[2].answer.result.proof
      local _, fsk = wp.ed25519.keypair(wp.unhex(f.seed))
      chal.sign(chal.REPORT, t2, fsk, f.key)
      h.write(file .. ".t2", cjson.encode(t2))
      local c2, r2 = evidence_verify(file .. ".t2")
      assert.equal(1, c2)
      assert.matches("answer does not hold", r2.reason)
      -- unreadable
      assert.equal(2, (evidence_verify(l.dir .. "/nothing.json")))
    end)

  it("overcommitment: a provider attesting 2 vCPUs but running on one degrades when challenged twice at once",
    function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      start(l, "provider", { cpus = "0", policies = policies(),
        extra = '  challengers = "any", capacity = { vcpus = 2 },', share = "{ vcpus = 2 }" })
      local f = fisherman_conf(l)
      local _, rep = run_fisherman(f)
      assert.equal(2, rep.parallel.n)
      assert.is_true(rep.parallel.flagged, cjson.encode(rep.parallel))
      assert.is_true(rep.parallel.ratio > 1.5)
    end)

  -- storage: the consumer's data (its keyed stream) on the provider's disk
  local function storage_results(c, l, pred)
    return count(challenges(c, l).challenges, "storage", pred)
  end

  it("storage: the consumer uploads its data, the chunks pass; zeroed or deleted, the storage challenge fails",
    function()
      local storage = require "workproof.uptime.storage"
      local l = new_lease()
      finally(function() stop_all(l) end)
      start(l, "provider", { policies = policies(), extra = "  storage = { size_mb = 1 }," })
      local c = start(l, "consumer", { policies = policies() })
      assert.is_true(soon(function() return storage_results(c, l, function(r) return r.passed end) >= 2 end, 30))
      -- the provider holds the consumer's stream (under a key only the consumer has), committed to its root
      local file = l.dir .. "/provider/storage/" .. l.id .. ".dat"
      local key = storage.key(l.cs, l.id)
      local expect = assert(storage.root(key, 1048576))
      assert.same(expect, storage.commit(file))
      local st = ledger.open(l.dir .. "/consumer")
      local signed = st:statement(l.id, "storage")
      st:close()
      assert.equal(expect.root, signed.commitment.root)
      assert.is_true(chal.verify(chal.STORAGE, signed, l.pk))   -- the provider's signature, checkable by anyone
      -- zeroed in place (a thin-provisioned file of the right size)
      local before = storage_results(c, l, function(r) return not r.passed end)
      assert(os.execute("dd if=/dev/zero of=" .. h.q(file) .. " bs=1024 count=1024 conv=notrunc status=none"))
      assert.is_true(soon(function() return storage_results(c, l, function(r) return not r.passed end) > before end,
        20))
      -- deleted
      os.remove(file)
      local n = storage_results(c, l, function(r) return not r.passed end)
      assert.is_true(soon(function() return storage_results(c, l, function(r) return not r.passed end) > n end, 20))
      local last
      for _, r in ipairs(challenges(c, l).challenges) do if r.kind == "storage" then last = r end end
      assert.is_false(last.passed)
    end)

  it("storage: a provider whose recomputed root differs from the consumer's refuses the commit; the upload "
    .. "starts over and then holds", function()
      local storage = require "workproof.uptime.storage"
      local l = new_lease()
      finally(function() stop_all(l) end)
      -- the provider's copy was altered before the commit: a whole upload's worth of other bytes
      local dir = l.dir .. "/provider/storage"
      assert(os.execute("mkdir -p " .. h.q(dir)))
      local file = dir .. "/" .. l.id .. ".dat"
      h.write(file .. ".part", ("\1"):rep(1048576))
      start(l, "provider", { policies = policies(), extra = "  storage = { size_mb = 1 }," })
      local c = start(l, "consumer", { policies = policies() })
      assert.is_true(soon(function() return storage_results(c, l, function(r) return r.passed end) >= 1 end, 30))
      assert.same(assert(storage.root(storage.key(l.cs, l.id), 1048576)), storage.commit(file))
      assert.equal(0, metric(c, "workproof_uptime_beats_rejected_total", "BAD_COMMITMENT"))
    end)

  it("storage: a provider that signed a commitment to another root is refused, never challenged", function()
    local storage = require "workproof.uptime.storage"
    local l = new_lease()
    finally(function() stop_all(l) end)
    -- a provider that committed to data of its own making (another key), signed
    local dir = l.dir .. "/provider/storage"
    assert(os.execute("mkdir -p " .. h.q(dir)))
    local other = assert(storage.provision(dir .. "/" .. l.id .. ".dat", 1048576,
      { key = storage.key(l.ps, l.id) }))
    local _, psk = wp.ed25519.keypair(wp.unhex(l.ps))
    local st = assert(ledger.open(l.dir .. "/provider"))
    st:set_statement(l.id, "storage", chal.sign(chal.STORAGE, { leaseId = l.id, commitment = other }, psk, l.pk))
    st:close()
    start(l, "provider", { policies = policies(), extra = "  storage = { size_mb = 1 }," })
    local c = start(l, "consumer", { policies = policies() })
    assert.is_true(soon(function()
      return metric(c, "workproof_uptime_beats_rejected_total", "BAD_COMMITMENT") >= 1
    end, 20))
    assert.is_true(soon(function() return storage_results(c, l, function() return true end) == 0
      and count(challenges(c, l).challenges, "compute", function(r) return r.passed end) >= 2 end, 20))
    local ev = get(c, "/leases/" .. l.id .. "/evidence").evidence
    local found
    for _, e in ipairs(ev) do if e.kind == "BAD_COMMITMENT" then found = e end end
    assert.is_table(found)
    assert.equal(other.root, found.data.commitment.commitment.root)
  end)
end)
