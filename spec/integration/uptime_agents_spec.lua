-- SPDX-License-Identifier: MIT
-- The uptime agents as users run them (docs/uptime.md, "Agents"): real
-- `workproof uptime provider` and `consumer` processes over the real
-- authenticated transport on loopback, 1-second beats, 5-beat epochs,
-- 2-epoch claims. A clean run exports a chain `uptime verify` accepts;
-- kill -9 of either side and a partition leave a gap and nothing lost or
-- repeated; a provider clock 40 s off is refused; a peer with another key
-- never gets through the handshake; a replayed beat is refused; a rotation
-- in the middle of an epoch keeps the chain verifiable.
local h = require "helpers"
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"

local u = require "uptime_helpers"
local seed, pub, now_ns, new_lease, start = u.seed, u.pub, u.now_ns, u.new_lease, u.start
local get, lease_of, beats, soon, wait_beats = u.get, u.lease_of, u.beats, u.soon, u.wait_beats
local stop, stop_all, chain_lines, export_verify = u.stop, u.stop_all, u.chain_lines, u.export_verify
local no_repeats, metric, exchange = u.no_repeats, u.metric, u.exchange

describe("uptime agents #integration", function()
  it("a clean run: both sides hold the same chain, epochs and countersigned claims; export verifies", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    local p = start(l, "provider")
    local c = start(l, "consumer")
    wait_beats(c, l, 12)
    wait_beats(p, l, 12)
    local cd, pd = lease_of(c, l), lease_of(p, l)
    assert.equal(l.pk, cd.providerKey)
    assert.equal(l.ck, cd.consumerKey)
    assert.equal("up", cd.state)
    assert.is_true(cd.epochs >= 2)
    assert.is_true(#cd.claims >= 1 and #pd.claims >= 1)
    assert(soon(function()
      local x = lease_of(p, l).claims[1]
      return x and x.consumerSignature ~= cjson.null
    end, 10), "the provider never got the consumer's claim signature")
    assert.equal(lease_of(p, l).claims[1].encoded, lease_of(c, l).claims[1].encoded)
    -- the claim is 194 bytes signed by the provider
    assert.equal(194 * 2, #cd.claims[1].encoded)
    assert.is_true(wp.uptime.claim_verify(wp.unhex(cd.claims[1].encoded), l.pk))
    -- the timeline and the metrics a Prometheus server would scrape
    local st, hd, svg = h.http("GET", c.status .. "/leases/" .. l.id .. "/report.svg")
    assert.equal(200, st)
    assert.equal("image/svg+xml", hd["content-type"])
    assert.matches("^<svg ", svg)
    assert.matches("uptime %d+%.%d%d %%", svg)   -- a loaded machine may show a gap
    for _, a in ipairs({ p, c }) do
      local _, _, text = h.http("GET", a.status .. "/metrics")
      local out, pst = h.run("/usr/bin/promtool", { "check", "metrics" }, text)
      assert(pst.exit_status == 0, out .. pst.stderr)
    end
    assert.is_true(metric(c, "workproof_uptime_beats_received_total") >= 12)
    assert.is_true(metric(p, "workproof_uptime_beats_sent_total") >= 12)
    assert.equal(0, metric(c, "workproof_uptime_beats_rejected_total"))
    -- the same beats on both sides (the provider may hold one more, not yet acknowledged)
    local pc, cc = chain_lines(p, l), chain_lines(c, l)
    for i = 1, math.min(#pc, #cc) do assert.equal(cc[i], pc[i]) end
    no_repeats(cc)
    stop_all(l)
    for _, role in ipairs({ "consumer", "provider" }) do
      local rep, vst = export_verify(l, role)
      assert.equal(0, vst.exit_status, cjson.encode(rep))
      assert.is_true(rep.valid)
      assert.is_true(rep.beats >= 12)
    end
  end)

  for _, victim in ipairs({ "provider", "consumer" }) do
    it("kill -9 of the " .. victim .. " mid-run: restarted, the chain goes on with a gap, nothing repeated", function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      start(l, "provider")
      local c = start(l, "consumer")
      wait_beats(c, l, 4)
      local a = l[victim]
      host.kill(a.proc.pid, 9)
      while a.proc:read() do end
      a.proc:wait()
      wp.sleep(3.5)
      start(l, victim)
      wait_beats(l.consumer, l, 9)
      wait_beats(l.provider, l, 9)
      local cd = lease_of(l.consumer, l)
      assert.is_true(cd.gaps >= 1, "the downtime shows as a gap")
      assert.is_true(cd.missedBeats >= 2)
      no_repeats(chain_lines(l.consumer, l))
      no_repeats(chain_lines(l.provider, l))
      stop_all(l)
      for _, role in ipairs({ "consumer", "provider" }) do
        local rep, st = export_verify(l, role)
        assert.equal(0, st.exit_status, cjson.encode(rep))
        assert.is_true(#rep.gaps >= 1)
      end
    end)
  end

  it("a partition (the provider frozen 4 s) and its healing: a gap, then beats again", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    local p = start(l, "provider")
    local c = start(l, "consumer")
    wait_beats(c, l, 3)
    host.kill(p.proc.pid, 19)   -- SIGSTOP: nothing answers, connections hang
    wp.sleep(4)
    assert.is_true(soon(function() return lease_of(c, l).state ~= "up" end, 5), "the lease is late or down")
    host.kill(p.proc.pid, 18)   -- SIGCONT
    local n = beats(c, l)
    wait_beats(c, l, n + 3)
    local cd = lease_of(c, l)
    assert.equal("up", cd.state)
    assert.is_true(cd.gaps >= 1)
    assert.is_true(cd.missedBeats >= 2)
    no_repeats(chain_lines(c, l))
  end)

  for _, skew in ipairs({ { "+40s", "IN_FUTURE" }, { "-40s", "STALE" } }) do
    it("a provider clock " .. skew[1] .. " off is refused (" .. skew[2] .. "): no beat is countersigned", function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      start(l, "provider", { faketime = skew[1] })
      local c = start(l, "consumer")
      assert.is_true(soon(function() return metric(c, "workproof_uptime_beats_rejected_total", skew[2]) >= 2 end, 20))
      assert.equal(0, beats(c, l))
      local cd = lease_of(c, l)
      assert.equal(skew[2], cd.lastRefusal.reason)
      -- the provider hears why
      assert.is_true(metric(l.provider, "workproof_uptime_beats_rejected_total", "PEER_" .. skew[2]) >= 1)
    end)
  end

  it("the transport: a peer with another key is refused in the handshake; a wrong pin is refused", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    start(l, "provider")
    -- the lease's consumer key: through
    local st = exchange(l, l.cs, l.pk)
    assert.equal(200, st)
    -- another key: the provider does not pin it, the handshake fails
    local st2, err2 = exchange(l, seed(), l.pk)
    assert.is_nil(st2)
    -- the server's alert ("unknown ca"), or the reset when the close races it
    assert.is_truthy(tostring(err2):find("^ETLS: refused") or tostring(err2):find("^EHTTP"), err2)
    -- the consumer's key, but the client pins someone else as the provider
    local st3, err3 = exchange(l, l.cs, pub(seed()))
    assert.is_nil(st3)
    assert.matches("ETLS", tostring(err3))
    -- plaintext never reaches the lease
    local st4 = h.http("POST", "http://" .. l.addr .. "/v1/leases/" .. l.id .. "/exchange", "{}")
    assert.is_nil(st4)
    local p = l.provider
    assert.is_true(soon(function()
      return metric(p, "workproof_uptime_tls_refused_total", 'reason="unknown_key"') >= 1
        and metric(p, "workproof_uptime_tls_refused_total", 'reason="plaintext"') >= 1
    end, 5))
    assert.is_true(metric(p, "workproof_uptime_tls_handshakes_total") >= 1)
  end)

  it("a replayed beat is refused: the provider answers 409 REPLAY and counts it", function()
    local l = new_lease()
    finally(function() stop_all(l) end)
    local p = start(l, "provider")
    local c = start(l, "consumer")
    wait_beats(c, l, 4)
    local old = cjson.decode(chain_lines(c, l)[2])
    stop(c)
    l.consumer.stopped = true
    wp.sleep(1.5)   -- the provider may still hold the consumer's last exchange (the beat was due within 1 s)
    local st, _, body = exchange(l, l.cs, l.pk, { last = old })
    assert.equal(409, st)
    assert.equal("REPLAY", cjson.decode(body).error)
    assert.is_true(metric(p, "workproof_uptime_beats_rejected_total", "REPLAY") >= 1)
    -- a forged acknowledgement (the consumer's signature edited) is refused too
    local n = beats(p, l)
    local head = cjson.decode(chain_lines(p, l)[n])
    local forged = { leaseId = head.leaseId, sequence = head.sequence + 1, timestamp = head.timestamp,
      prevHash = head.hash, providerSig = head.providerSig, consumerSig = head.consumerSig, hash = head.hash }
    local st2, _, body2 = exchange(l, l.cs, l.pk, { last = forged })
    assert.equal(400, st2, body2)
  end)

  it("key rotation mid-epoch over the wire (manual, both parties): no gap, the export verifies with its records",
    function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      local p = start(l, "provider")
      local c = start(l, "consumer")
      wait_beats(c, l, 2)
      local st, _, body = h.http("POST", c.status .. "/leases/" .. l.id .. "/rotate", '{"reason":"manual"}')
      assert.equal(200, st, body)
      local rec = cjson.decode(body).rotation
      assert.equal("consumer", rec.party)
      assert.is_true(rec.effectiveSequence % 5 ~= 0, "mid-epoch")
      local st2, _, body2 = h.http("POST", p.status .. "/leases/" .. l.id .. "/rotate", '{"reason":"manual"}')
      assert.equal(200, st2, body2)
      wait_beats(c, l, math.max(rec.effectiveSequence, cjson.decode(body2).rotation.effectiveSequence) + 4)
      local cd = lease_of(c, l)
      assert.equal(0, cd.gaps)
      assert.are_not.equal(l.ck, cd.currentKeys.consumer)
      assert.are_not.equal(l.pk, cd.currentKeys.provider)
      assert.equal(cd.currentKeys.provider, lease_of(p, l).currentKeys.provider)
      assert.equal(2, #cd.rotations)
      stop_all(l)
      local rep, vst = export_verify(l, "consumer", true)
      assert.equal(0, vst.exit_status, cjson.encode(rep))
      -- without the records the first rotated beat fails
      local rep2, vst2 = export_verify(l, "consumer", false)
      assert.equal(1, vst2.exit_status)
      assert.matches("BAD_%a+_SIG", rep2.reason)
    end)

  it("equivocation: a second, different beat for a sequence signed by the provider's key is refused and kept",
    function()
      local l = new_lease()
      -- a dishonest provider, in this process: beat 0, then another beat 0
      local _, psk = wp.ed25519.keypair(wp.unhex(l.ps))
      local id = assert(host.tls_identity(l.ps, 3600))
      local sent = 0
      local srv = assert(host.http_listen { host = "127.0.0.1", port = 0,
        tls = { cert = id.cert, key = id.key, pins = { l.ck } },
        handler = function()
          sent = sent + 1
          local b = assert(wp.uptime.build(l.id, 0, now_ns()))
          assert(wp.uptime.sign(b, psk))
          return 200, { ["content-type"] = "application/json" },
            cjson.encode({ ack = -1, beat = b, seen = { provider = -1, consumer = -1 }, rotations = {} })
        end })
      -- busted keeps one finally per test: this one stops the consumer too
      finally(function() stop_all(l) srv:close() srv:drop() end)
      l.addr = "127.0.0.1:" .. srv.port
      local c = start(l, "consumer")
      assert.is_true(soon(function()
        return metric(c, "workproof_uptime_beats_rejected_total", "EQUIVOCATION") >= 1
      end, 15))
      assert.equal(1, beats(c, l))   -- the first beat 0 stands
      local ev = get(c, "/leases/" .. l.id .. "/evidence").evidence
      local found
      for _, e in ipairs(ev) do if e.kind == "EQUIVOCATION" then found = e end end
      assert.is_table(found, "kept as evidence")
      assert.equal(0, found.seq)
      assert.are_not.equal(found.data.theirs.timestamp, found.data.ours.timestamp)
      -- both carry the provider's signature over their own payload
      for _, b in ipairs({ found.data.theirs, found.data.ours }) do
        assert.is_true(wp.ed25519.verify(wp.unhex(l.pk), wp.sha256(assert(wp.uptime.payload(b))),
          wp.unhex(b.providerSig)))
      end
    end)

  it("a forced rotation (governance-signed record, the new seed given to the agent) takes effect without a gap",
    function()
      local l = new_lease()
      finally(function() stop_all(l) end)
      local gov = seed()
      -- both agents know the governance key (the key_rotation policy's governance_key)
      local pol = ("policies = { timestamps = { interval_s = 1, tolerance_s = 0.5, drift_s = 10 }, "
        .. "key_rotation = { governance_key = %q } },"):format(pub(gov))
      local p = start(l, "provider", { policies = pol })
      local c = start(l, "consumer", { policies = pol })
      wait_beats(c, l, 3)
      local new_seed = seed()
      local head = lease_of(p, l).lastBeat.sequence
      local rec = { leaseId = l.id, party = "provider", index = 0, newKey = pub(new_seed),
        effectiveSequence = head + 4, prevHash = wp.uptime.ZERO_HASH, reason = "forced" }
      local _, gsk = wp.ed25519.keypair(wp.unhex(gov))
      assert(wp.uptime.rotation_sign(rec, gsk))
      local st, _, body = h.http("POST", p.status .. "/leases/" .. l.id .. "/rotate",
        cjson.encode({ reason = "forced", record = rec, seed = new_seed }))
      assert.equal(200, st, body)
      wait_beats(c, l, head + 8)
      local cd = lease_of(c, l)
      assert.equal(pub(new_seed), cd.currentKeys.provider)
      assert.equal(0, cd.gaps)
      stop_all(l)
      local rep, vst = export_verify(l, "consumer", true, pub(gov))
      assert.equal(0, vst.exit_status, cjson.encode(rep))
    end)

  it("scheduled rotation: keys past key_rotation's schedule rotate at once, both parties, without a gap", function()
    -- a lease that started 2 days ago with a 1-day schedule: both keys are overdue
    local t = wp.time() - 2 * 86400
    local l = new_lease(("%d%09d"):format(math.floor(t), 0))
    finally(function() stop_all(l) end)
    local pol = "policies = { timestamps = { interval_s = 1, tolerance_s = 0.5, drift_s = 10 }, "
      .. "key_rotation = { schedule_days = 1 } },"
    start(l, "provider", { policies = pol })
    local c = start(l, "consumer", { policies = pol })
    wait_beats(c, l, 8)
    local cd = lease_of(c, l)
    assert.equal(2, #cd.rotations)
    for _, r in ipairs(cd.rotations) do
      assert.equal("scheduled", r.reason)
      assert.is_true(r.acknowledged)
    end
    assert.are_not.equal(l.pk, cd.currentKeys.provider)
    assert.are_not.equal(l.ck, cd.currentKeys.consumer)
    assert.equal(0, cd.gaps)
    stop_all(l)
    local rep, vst = export_verify(l, "consumer", true)
    assert.equal(0, vst.exit_status, cjson.encode(rep))
  end)
end)
