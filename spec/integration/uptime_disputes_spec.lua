-- SPDX-License-Identifier: MIT
-- The UptimeRegistry, the arbiter and the agents on a real anvil (npm),
-- with the contracts deployed by contracts/scripts: an honest lease posts
-- its claims and is never slashed; each kind of evidence wins its dispute
-- (the arbiter checks it with the core's verifiers and rules through its
-- outbox); a false dispute is dismissed and its bond lost; a forced
-- rotation stops the old key from its sequence on; the consumer agent
-- disputes a posted claim that is not the one it countersigned by itself;
-- the arbiter killed between signing and sending a ruling sends it once.
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"
local uh = require "uptime_helpers"
local oc = require "workproof.uptime.onchain"
local ev = require "workproof.uptime.evidence"
local chal = require "workproof.uptime.challenge"

local u = wp.uptime
local A = uh.ACCOUNTS
local GOV, PROVIDER, CONSUMER, FISHER, OWNER2, CONSUMER2, ARBITER = 0, 1, 2, 3, 4, 5, 9
local SZ = { epoch_beats = 5, claim_epochs = 2 }
local COLLATERAL = 1000000000   -- 1,000 tokens
local BOND = 10000000

local anvil, dep, reg, token, dir, rpc
local arbiter

local function start_arbiter(env)
  local path = dir .. "/arbiter.lua"
  h.write(path, ([[return { chain = { rpc = %q, deployment = %q, key_file = %q, poll_s = 0.2 },
  state_dir = %q, watch = false }]]):format(anvil.url, anvil.dir .. "/dep.json", uh.key_file(dir, ARBITER),
    dir .. "/arbiter"))
  local args = { "uptime", "arbiter", path }
  local file = h.build .. "/workproof"
  if env then
    table.insert(args, 1, file)
    table.insert(args, 1, env)
    file = "/usr/bin/env"
  end
  local p = h.spawn_until({ file = file, args = args, timeout = 600 }, "watching 0x%x+", "arbiter")
  return { proc = p, path = path }
end

local function resolved(id, seconds)
  local e
  uh.soon(function()
    local evs = oc.events(rpc, reg, "DisputeResolved", { ("%064x"):format(id) })
    e = evs and evs[1]
    return e ~= nil
  end, seconds or 30)
  return e
end

local function open_dispute(from, lease, claim_index, kind, bytes)
  local rc, st = uh.send(anvil.url, from, oc.open_dispute(reg, lease, claim_index, kind, bytes))
  assert.equal("0x1", st, "openDispute reverted")
  local topic = oc.events(rpc, reg, "DisputeOpened", { from = tonumber(rc.blockNumber), to = tonumber(rc.blockNumber) })
  return topic[#topic].id
end

-- A lease driven by this spec (no agents): keys, a chain of 20 dual-signed
-- beats (two claims of 10), registered by OWNER2 with collateral, both
-- claims posted. opts.bad_consumer_at: that beat's consumer signature is
-- garbage (the provider put a beat the consumer never signed in its claim);
-- opts.root: claim 1 posted with this root instead of the chain's.
local function crafted(opts)
  opts = opts or {}
  local l = uh.new_lease()
  local _, psk = wp.ed25519.keypair(wp.unhex(l.ps))
  local _, csk = wp.ed25519.keypair(wp.unhex(l.cs))
  l.psk = psk
  local beats, prev = {}, nil
  for i = 0, 19 do
    local ts = ("%d"):format(tonumber(l.start:sub(1, 10)) + i) .. l.start:sub(11)
    local b = assert(u.build(l.id, i, ts, prev))
    assert(u.sign(b, psk))
    assert(u.countersign(b, l.pk, csk))
    if opts.bad_consumer_at == i then
      b.consumerSig = ("ab"):rep(64)
      b.hash = u.hash(b)
    end
    beats[#beats + 1] = b
    prev = b.hash
  end
  l.beats = beats
  l.epochs, l.claims = u.rollup(beats, SZ)
  local c1 = l.claims[2]
  if opts.root then
    c1 = {}
    for k, v in pairs(l.claims[2]) do c1[k] = v end
    c1.root = opts.root
  end
  l.enc = { assert(u.claim_encode(l.claims[1], psk)), assert(u.claim_encode(c1, psk)) }
  if not opts.unregistered then
    local p = oc.provider(rpc, reg, l.pk)
    assert.is_false(p.registered)
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.approve(token, reg, COLLATERAL))))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.register_provider(reg, l.pk, COLLATERAL))))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.register_lease(reg, { provider = l.pk,
      provider_key = l.pk, consumer_key = l.ck, start_ns = l.start, nonce = l.nonce, consumer = A[CONSUMER2].address,
      epoch_beats = 5, claim_epochs = 2 }))))
    for i = 1, 2 do
      assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.post_claim(reg, l.enc[i], l.pk))))
    end
  end
  return l
end

local function collateral(l) return tonumber(oc.provider(rpc, reg, l.pk).collateral) end

-- dispute claim 1 of l with bytes from FISHER; the ruling once mined, and
-- the balances it moved
local function judged(l, kind, bytes)
  local before = { fisher = uh.balance(anvil.url, token, A[FISHER].address),
    consumer = uh.balance(anvil.url, token, A[CONSUMER2].address),
    owner = uh.balance(anvil.url, token, A[OWNER2].address),
    collateral = collateral(l) }
  local id = open_dispute(FISHER, l.id, 1, kind, bytes)
  local e = resolved(id)
  assert.is_table(e, "the arbiter ruled on dispute " .. id)
  return e, before, id
end

describe("uptime disputes on the UptimeRegistry (anvil)", function()
  setup(function()
    dir = h.tmpdir()
    anvil = h.start_anvil(dir .. "/chain")
    dep = anvil.dep
    reg, token = dep.uptime.registry, dep.token.address
    rpc = wp.rpc.new(anvil.url)
    assert.equal("0x1", select(2, uh.send(anvil.url, FISHER, oc.approve(token, reg, COLLATERAL))))
    arbiter = start_arbiter()
  end)
  teardown(function()
    if arbiter then host.kill(arbiter.proc.pid, 15) arbiter.proc:wait() end
    if anvil then host.kill(anvil.proc.pid, 15) anvil.proc:wait() end
  end)

  it("the deployment names the registry, its arbiter and governance", function()
    local p = assert(oc.params(rpc, reg))
    assert.equal(A[ARBITER].address, p.arbiter)
    assert.equal(A[GOV].address, p.governance)
    assert.equal(token, p.token)
    assert.equal(BOND, tonumber(p.disputeBond))
    assert.equal(dep.contracts.UptimeRegistry.address, reg)
  end)

  it("an honest lease: the provider registers, posts every claim, linked; the consumer finds each its own; "
    .. "nothing is disputed or slashed", function()
    local l = uh.new_lease()
    finally(function() uh.stop_all(l) end)
    local chain = ("chain = { rpc = %q, deployment = %q, key_file = %%q, poll_s = 0.3, collateral = %d },")
      :format(anvil.url, anvil.dir .. "/dep.json", COLLATERAL)
    uh.start(l, "provider", { extra = chain:format(uh.key_file(l.dir, PROVIDER)),
      lease_extra = ("consumer_address = %q"):format(A[CONSUMER].address) })
    local c = uh.start(l, "consumer", { extra = chain:format(uh.key_file(l.dir, CONSUMER)) })
    assert.is_true(uh.soon(function()
      local le = oc.lease(rpc, reg, l.id)
      return le and le.nextClaim >= 2
    end, 60), "two claims posted")
    local le = oc.lease(rpc, reg, l.id)
    assert.equal(A[CONSUMER].address, le.consumer)
    assert.equal(5, le.epochBeats)
    local posted = assert(oc.claims(rpc, reg, l.id))
    -- linked, each the one the consumer countersigned
    assert.is_true(uh.soon(function()
      local cl = uh.get(c, "/leases/" .. l.id).claims
      return cl[2] and cl[2].onChain == "ok"
    end, 20), "the consumer checked the posted claims")
    local mine = uh.get(c, "/leases/" .. l.id).claims
    for i = 0, 1 do
      assert.equal(mine[i + 1].hash, posted[i].claimHash)
      assert.equal(mine[i + 1].encoded, wp.hex(posted[i].claim))
      assert.equal("ok", mine[i + 1].onChain)
    end
    assert.equal(posted[0].claimHash, u.claim_decode(posted[1].claim).prevClaimHash)
    local p = oc.provider(rpc, reg, l.pk)
    assert.equal(A[PROVIDER].address, p.owner)
    assert.equal(COLLATERAL, tonumber(p.collateral))
    assert.equal(0, p.openDisputes)
    for _, e in ipairs(oc.events(rpc, reg, "DisputeOpened", {})) do assert.are_not.equal(l.id, e.leaseId) end
    local m = uh.metric(c, "workproof_uptime_disputes_opened_total")
    assert.equal(0, m)
  end)

  it("INVALID_BEAT: a disclosure proof of a beat the consumer never signed wins; the consumer is refunded", function()
    local l = crafted({ bad_consumer_at = 13 })
    local es = { l.epochs[3], l.epochs[4] }
    local proof = assert(u.proof_make(l.beats, 14, es, l.enc[2], SZ))
    local e, before = judged(l, "INVALID_BEAT", ev.invalid_beat(proof))
    assert.equal(2, e.state)   -- upheld
    local slash = math.floor(before.collateral * 1000 / 10000)   -- policies/disputes.lua: 10 %
    local refund = math.floor(slash * 0.8)
    assert.equal(slash, tonumber(e.slashed))
    assert.equal(refund, tonumber(e.refunded))
    assert.equal(before.collateral - slash, collateral(l))
    assert.equal(before.consumer + refund, uh.balance(anvil.url, token, A[CONSUMER2].address))
    assert.equal(before.fisher + slash - refund, uh.balance(anvil.url, token, A[FISHER].address),
      "the disputer: its bond back and the rest of the slash")
    -- the report the ruling names is the arbiter's, on disk
    local rep = h.read(dir .. "/arbiter/reports/dispute-" .. e.id .. ".json"):gsub("\n$", "")
    assert.equal(e.reportHash, wp.hex(wp.sha256(rep)))
    assert.matches('"reason":"BAD_CONSUMER_SIG"', rep, 1, true)
  end)

  it("EQUIVOCATION, CHALLENGE_FAILED, CLAIM_MISMATCH (both forms), OVERCOMMITTED each win their dispute", function()
    local l = crafted({ root = ("77"):rep(32) })
    -- two beats for sequence 12 under the provider's key
    local other = assert(u.build(l.id, 12, l.beats[13].timestamp:sub(1, -4) .. "555", l.beats[12].hash))
    assert(u.sign(other, l.psk))
    -- a compute challenge answered with a wrong VDF, signed by the provider
    local ch = { kind = "compute", nonce = chal.nonce(), params = { t = 1000 }, scope = l.id }
    local ans = assert(chal.answer(ch))
    ans.result.y = ("00"):rep(#ans.result.y / 2)
    chal.sign(chal.ANSWER, ans, l.psk, l.pk)
    -- a capacity attestation listing more than the machine has
    local att = chal.sign(chal.CAPACITY, { capacity = { vcpus = 2 }, leases = { { id = l.id, share = { vcpus = 2 } },
      { id = ("11"):rep(32), share = { vcpus = 1 } } }, at = os.time() }, l.psk, l.pk)
    -- the dual-signed beats of claim 1, whose posted root is not theirs
    local seg = {}
    for i = 11, 20 do seg[#seg + 1] = l.beats[i] end
    local path = assert(wp.merkle.inclusion_proof({ wp.unhex(l.epochs[1].hash), wp.unhex(l.epochs[2].hash) }, 1))
    local hp = {}
    for i, x in ipairs(path) do hp[i] = wp.hex(x) end
    -- a second claim 1, signed by the provider (the one it showed the consumer)
    local honest1 = assert(u.claim_encode(l.claims[2], l.psk))
    for _, case in ipairs({
      { "EQUIVOCATION", ev.equivocation(l.beats[13], other), 5000, "EQUIVOCATION" },
      { "CHALLENGE_FAILED", ev.challenge_failed(ch, ans), 500, "BAD_VDF" },
      { "CLAIM_MISMATCH", ev.claim_chain(seg, l.epochs[2].hash, hp), 5000, "CLAIM_CONTRADICTS_CHAIN" },
      { "CLAIM_MISMATCH", ev.claim_pair(honest1), 5000, "TWO_CLAIMS" },
      { "OVERCOMMITTED", ev.overcommitted(att), 2000, "OVERCOMMITTED" },
    }) do
      local e, before = judged(l, case[1], case[2])
      assert.equal(2, e.state, case[1] .. " upheld")
      local slash = math.floor(before.collateral * case[3] / 10000)
      assert.equal(slash, tonumber(e.slashed), case[1])
      assert.equal(before.collateral - slash, collateral(l))
      local rep = h.read(dir .. "/arbiter/reports/dispute-" .. e.id .. ".json")
      assert.matches('"reason":"' .. case[4], rep, 1, true)
    end
  end)

  it("a false dispute is dismissed and its bond goes to the provider's owner; malformed evidence too", function()
    local l = crafted()
    local es = { l.epochs[3], l.epochs[4] }
    for _, bytes in ipairs({
      ev.invalid_beat(assert(u.proof_make(l.beats, 14, es, l.enc[2], SZ))),   -- a valid, dual-signed beat
      ev.equivocation(l.beats[13], l.beats[13]),                             -- one beat twice
      "\1\2garbage",                                                          -- not even evidence
    }) do
      local kind = bytes:byte(2) == 1 and "INVALID_BEAT" or "EQUIVOCATION"
      local e, before = judged(l, kind, bytes)
      assert.equal(3, e.state, "dismissed")
      assert.equal(0, tonumber(e.slashed))
      assert.equal(before.collateral, collateral(l))
      assert.equal(before.fisher - BOND, uh.balance(anvil.url, token, A[FISHER].address), "the bond is lost")
      assert.equal(before.owner + BOND, uh.balance(anvil.url, token, A[OWNER2].address), "... to the provider")
    end
  end)

  it("a forced rotation stops the old key from its sequence on, on chain and for the arbiter", function()
    local l = crafted({ unregistered = true })
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.approve(token, reg, COLLATERAL))))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.register_provider(reg, l.pk, COLLATERAL))))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.register_lease(reg, { provider = l.pk,
      provider_key = l.pk, consumer_key = l.ck, start_ns = l.start, nonce = l.nonce, consumer = A[CONSUMER2].address,
      epoch_beats = 5, claim_epochs = 2 }))))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.post_claim(reg, l.enc[1], l.pk))))
    -- the provider's key is compromised: governance replaces it from beat 12
    local new = uh.seed()
    local newpk, newsk = wp.ed25519.keypair(wp.unhex(new))
    local rec = { leaseId = l.id, party = "provider", index = 0, newKey = wp.hex(newpk), effectiveSequence = 12,
      prevHash = u.ZERO_HASH, reason = "forced" }
    local _, st = uh.send(anvil.url, OWNER2, oc.force_rotation(reg, { lease = l.id, party = "provider", index = 0,
      new_key = rec.newKey, effective_sequence = 12, record_hash = u.rotation_hash(rec) }))
    assert.equal("0x0", st, "only governance forces a rotation")
    assert.equal("0x1", select(2, uh.send(anvil.url, GOV, oc.force_rotation(reg, { lease = l.id, party = "provider",
      index = 0, new_key = rec.newKey, effective_sequence = 12, record_hash = u.rotation_hash(rec) }))))
    local keys = assert(oc.keys(rpc, reg, l.id))
    assert.same({ first = 0, last = 11, key = l.pk, revokedFrom = 12 }, keys.provider[1])
    assert.same({ first = 12, key = rec.newKey }, keys.provider[2])
    -- claim 1 (beats 10..19) under the old key: refused on chain
    local _, st2 = uh.send(anvil.url, OWNER2, oc.post_claim(reg, l.enc[2], l.pk))
    assert.equal("0x0", st2, "a claim declaring the revoked key for its range is refused")
    -- ... under the new key: accepted
    local c1 = assert(u.claim_encode(l.claims[2], newsk))
    assert.equal("0x1", select(2, uh.send(anvil.url, OWNER2, oc.post_claim(reg, c1, rec.newKey))))
    -- beats the old key signs from 12 on are not the provider's any more: no equivocation ...
    local a = assert(u.build(l.id, 15, l.beats[16].timestamp, l.beats[15].hash))
    local b = assert(u.build(l.id, 15, l.beats[16].timestamp:sub(1, -4) .. "777", l.beats[15].hash))
    assert(u.sign(a, l.psk))
    assert(u.sign(b, l.psk))
    local e = judged(l, "EQUIVOCATION", ev.equivocation(a, b))
    assert.equal(3, e.state, "dismissed: the revoked key is not the provider's at beat 15")
    -- ... while before 12 it still is
    local a2 = assert(u.build(l.id, 8, l.beats[9].timestamp:sub(1, -4) .. "777", l.beats[8].hash))
    assert(u.sign(a2, l.psk))
    local e2 = judged(l, "EQUIVOCATION", ev.equivocation(l.beats[9], a2))
    assert.equal(2, e2.state)
  end)

  it("a fisherman disputes what its sample proves: a wrong signed answer, an attestation over capacity", function()
    local l = crafted()
    local cjson = require "cjson"
    -- a dishonest provider, in this process: wrong VDFs, more leases than vCPUs
    local id = assert(host.tls_identity(l.ps, 3600))
    local srv = assert(host.http_listen { host = "127.0.0.1", port = 0,
      tls = { cert = id.cert, key = id.key, pins = "any" },
      handler = function(req)
        local js = { ["content-type"] = "application/json" }
        if req.path == "/v1/capacity" then
          return 200, js, cjson.encode(chal.sign(chal.CAPACITY, { capacity = { vcpus = 1 }, at = os.time(),
            leases = { { id = l.id, share = { vcpus = 1 } }, { id = ("44"):rep(32), share = { vcpus = 1 } } } },
            l.psk, l.pk))
        end
        local ch = cjson.decode(req.body)
        local ans = assert(chal.answer(ch))
        if ch.kind == "compute" then ans.result.y = ("00"):rep(#ans.result.y / 2) end
        return 200, js, cjson.encode(chal.sign(chal.ANSWER, ans, l.psk, l.pk))
      end })
    local fdir = h.tmpdir()
    h.write(fdir .. "/fisherman.lua", ([[return { identity = { seed = %q }, reports_dir = "reports", samples = 1,
  every_s = 1, compute_t = 1000,
  chain = { rpc = %q, deployment = %q, key_file = %q, poll_s = 0.2 },
  targets = { { provider_key = %q, address = "127.0.0.1:%d", parallel = 1 } } }]]):format(uh.seed(), anvil.url,
      anvil.dir .. "/dep.json", uh.key_file(fdir, FISHER), l.pk, srv.port))
    local out, st = h.run(h.build .. "/workproof", { "uptime", "fisherman", fdir .. "/fisherman.lua" })
    srv:close()
    srv:drop()
    assert.equal(0, st.exit_status, out .. st.stderr)
    assert.matches("dispute CHALLENGE_FAILED " .. l.id, out, 1, true)
    assert.matches("dispute OVERCOMMITTED " .. l.id, out, 1, true)
    local opened = {}
    assert.is_true(uh.soon(function()
      opened = {}
      for _, e in ipairs(oc.events(rpc, reg, "DisputeOpened", {}) or {}) do
        if e.leaseId == l.id then opened[#opened + 1] = e end
      end
      return #opened == 2
    end, 20))
    for _, e in ipairs(opened) do
      assert.equal(A[FISHER].address, e.disputer)
      assert.equal(2, resolved(e.id).state, oc.KIND_NAME[e.kind] .. " upheld")
    end
  end)

  it("the consumer agent disputes a posted claim that is not the one it countersigned, by itself, and is refunded",
    function()
      local l = uh.new_lease()
      finally(function() uh.stop_all(l) end)
      -- the provider's agent runs without the chain; its owner posts a claim 0 of its own making
      uh.start(l, "provider")
      local c = uh.start(l, "consumer", {
        extra = ("chain = { rpc = %q, deployment = %q, key_file = %q, poll_s = 0.3 },")
        :format(anvil.url, anvil.dir .. "/dep.json", uh.key_file(l.dir, CONSUMER)) })
      assert.is_true(uh.soon(function() return uh.get(c, "/leases/" .. l.id).claims[1] ~= nil end, 40))
      local honest = wp.unhex(uh.get(c, "/leases/" .. l.id).claims[1].encoded)
      local forged = assert(u.claim_decode(honest))
      forged.beatCount = 9   -- one beat fewer: a different claim, signed all the same
      forged.periodEnd = u.claim_decode(honest).periodStart
      local _, psk = wp.ed25519.keypair(wp.unhex(l.ps))
      local fenc = assert(u.claim_encode(forged, psk))
      local before = uh.balance(anvil.url, token, A[CONSUMER].address)
      for _, tx in ipairs({ oc.approve(token, reg, COLLATERAL), oc.register_provider(reg, l.pk, COLLATERAL),
        oc.register_lease(reg, { provider = l.pk, provider_key = l.pk, consumer_key = l.ck, start_ns = l.start,
          nonce = l.nonce, consumer = A[CONSUMER].address, epoch_beats = 5, claim_epochs = 2 }),
        oc.post_claim(reg, fenc, l.pk) }) do
        assert.equal("0x1", select(2, uh.send(anvil.url, PROVIDER, tx)))
      end
      local opened
      assert.is_true(uh.soon(function()
        for _, e in ipairs(oc.events(rpc, reg, "DisputeOpened", {}) or {}) do
          if e.leaseId == l.id then opened = e end
        end
        return opened ~= nil
      end, 30), "the consumer disputed")
      assert.equal(oc.KIND.CLAIM_MISMATCH, opened.kind)
      assert.equal(A[CONSUMER].address, opened.disputer)
      local e = resolved(opened.id)
      assert.equal(2, e.state)
      local slash = COLLATERAL * 5000 / 10000
      assert.equal(slash, tonumber(e.slashed))
      -- refund + reward + bond back, minus the bond it staked
      assert.equal(before + slash, uh.balance(anvil.url, token, A[CONSUMER].address))
      assert.equal("mismatch", uh.get(c, "/leases/" .. l.id).claims[1].onChain)
      local ds = uh.get(c, "/leases/" .. l.id .. "/evidence").disputes
      assert.equal(1, #ds)
      assert.same({ "claim:0", "mined" }, { ds[1].ref, ds[1].status })
      assert.equal(1, uh.metric(c, "workproof_uptime_disputes_opened_total"))
    end)

  it("the arbiter killed after signing a ruling, before sending it, sends it once on restart; "
    .. "`uptime dispute check` agrees with it", function()
    host.kill(arbiter.proc.pid, 15)
    arbiter.proc:wait()
    arbiter = nil
    local l = crafted({ bad_consumer_at = 17 })
    local proof = assert(u.proof_make(l.beats, 18, { l.epochs[3], l.epochs[4] }, l.enc[2], SZ))
    local id = open_dispute(FISHER, l.id, 1, "INVALID_BEAT", ev.invalid_beat(proof))
    local a = start_arbiter("WORKPROOF_TEST_OUTBOX_HOOK=recorded")
    local out = ""
    while not out:find("WP_TEST_HOOK recorded") do
      local chunk = a.proc:read()
      assert.is_string(chunk, "the arbiter stopped at the hook")
      out = out .. chunk
    end
    host.kill(a.proc.pid, 9)
    a.proc:wait()
    assert.is_nil(resolved(id, 1), "nothing was sent")
    arbiter = start_arbiter()
    local e = resolved(id)
    assert.is_table(e)
    assert.equal(2, e.state)
    host.sleep(1)   -- a second send would have landed by now
    assert.equal(1, #oc.events(rpc, reg, "DisputeResolved", { ("%064x"):format(id) }))
    local stdout, st = h.run(h.build .. "/workproof", { "uptime", "dispute", "check", arbiter.path, tostring(id) })
    assert.equal(0, st.exit_status, stdout .. st.stderr)
    assert.matches("PROVES the fault %(BAD_CONSUMER_SIG%)", stdout)
    assert.matches("as this check rules", stdout)
    local js = h.run(h.build .. "/workproof", { "uptime", "dispute", "check", arbiter.path, tostring(id), "--json" })
    local r = require("cjson").decode(js)
    assert.is_true(r.agrees)
    assert.equal(e.reportHash, r.reportHash)
  end)
end)
