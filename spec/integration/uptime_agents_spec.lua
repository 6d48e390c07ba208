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
local ledger = require "workproof.uptime.ledger"

local function seed() return wp.hex(wp.sha256(tostring(math.random()) .. wp.time())) end
local function pub(s) return wp.hex((wp.ed25519.keypair(wp.unhex(s)))) end

local function now_ns()
  local t = wp.time()
  return ("%d%09d"):format(math.floor(t), math.floor((t % 1) * 1e9))
end

-- A lease between two fresh identities, and a directory for it.
local function new_lease(start)
  local ps, cs = seed(), seed()
  local l = { dir = h.tmpdir(), ps = ps, cs = cs, pk = pub(ps), ck = pub(cs), start = start or now_ns(),
    nonce = wp.hex(wp.sha256(ps .. cs)):sub(1, 32) }
  l.id = ledger.lease_id(l.pk, l.ck, l.start, l.nonce)
  return l
end

local function conf_src(l, role, opts)
  local lines = {
    "return {",
    ("  identity = { seed = %q },"):format(role == "provider" and l.ps or l.cs),
    ("  state_dir = %q,"):format(l.dir .. "/" .. role),
    '  status_listen = "127.0.0.1:0",',
    role == "provider" and ("  listen = %q,"):format(l.addr or "127.0.0.1:0") or "",
    "  epoch_beats = 5, claim_epochs = 2, watch = false,",
    "  " .. (opts.policies or "policies = { timestamps = { interval_s = 1, tolerance_s = 0.5, drift_s = 10 } },"),
    ("  leases = { { provider_key = %q, consumer_key = %q, start = %q, nonce = %q%s } },"):format(
      l.pk, l.ck, l.start, l.nonce, role == "consumer" and (", provider = %q"):format(l.addr) or ""),
    "}",
  }
  local path = l.dir .. "/" .. role .. ".lua"
  h.write(path, table.concat(lines, "\n"))
  return path
end

-- Start an agent; its status URL (and the provider's transport address).
local function start(l, role, opts)
  opts = opts or {}
  local path = conf_src(l, role, opts)
  local file, args = h.build .. "/workproof", { "uptime", role, path }
  if opts.faketime then
    -- libfaketime (Debian's faketime) shifts the agent's wall clock only;
    -- preloaded through env, which execs: the pid stays the agent's
    local lib = "/usr/lib/" .. (io.popen("gcc -print-multiarch"):read("*l") or "x86_64-linux-gnu")
      .. "/faketime/libfaketime.so.1"
    for i, a in ipairs({ "LD_PRELOAD=" .. lib, "FAKETIME=" .. opts.faketime, "FAKETIME_DONT_FAKE_MONOTONIC=1",
      file }) do
      table.insert(args, i, a)
    end
    file = "/usr/bin/env"
  end
  local p, buf = h.spawn_until({ file = file, args = args, timeout = 600, stderr_limit = 4 * 1048576 },
    "status API on [^\n]*\n", role)
  local a = { proc = p, role = role, status = "http://" .. buf:match("status API on http://(%S+)") }
  if role == "provider" then
    l.addr = buf:match("listening on (%S+)")   -- a restart keeps the port
    a.addr = l.addr
  end
  l[role] = a
  return a
end

local function get(a, path)
  local st, _, body = h.http("GET", a.status .. path)
  assert(st == 200, ("GET %s: %s %s"):format(path, tostring(st), tostring(body)))
  return cjson.decode(body) or body
end

local function lease_of(a, l) return get(a, "/leases/" .. l.id) end

local function beats(a, l) return lease_of(a, l).beats end

-- poll (every 0.25 s: each poll is a curl process) until pred() or seconds
local function soon(pred, seconds)
  local deadline = wp.now() + (seconds or 30)
  while not pred() do
    if wp.now() > deadline then return false end
    wp.sleep(0.25)
  end
  return true
end

local function wait_beats(a, l, n, seconds)
  assert(soon(function() return beats(a, l) >= n end, seconds or 30),
    ("%s: fewer than %d beats (%d)"):format(a.role, n, beats(a, l)))
end

local function stop(a, sig)
  host.kill(a.proc.pid, sig or 15)
  while a.proc:read() do end
  return a.proc:wait()
end

local function stop_all(l)
  for _, role in ipairs({ "consumer", "provider" }) do
    if l[role] and not l[role].stopped then l[role].stopped = true stop(l[role]) end
  end
end

local function chain_lines(a, l)
  local st, _, body = h.http("GET", a.status .. "/leases/" .. l.id .. "/chain")
  assert.equal(200, st)
  local out = {}
  for line in body:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- `workproof uptime export` then `workproof uptime verify` on the result
local function export_verify(l, role, with_rotations, governance_key)
  local out, rot = l.dir .. "/" .. role .. "-chain.jsonl", l.dir .. "/" .. role .. "-rot.jsonl"
  local args = { "uptime", "export", l.dir .. "/" .. role .. ".lua", "--out", out }
  if with_rotations then args[#args + 1] = "--rotations-out"; args[#args + 1] = rot end
  local text, st = h.run(h.build .. "/workproof", args)
  assert(st.exit_status == 0, text .. st.stderr)
  local vargs = { "uptime", "verify", out, "--provider-key", l.pk, "--consumer-key", l.ck, "--interval", "1",
    "--tolerance", "0.5", "--json" }
  if with_rotations then vargs[#vargs + 1] = "--rotations"; vargs[#vargs + 1] = rot end
  if governance_key then vargs[#vargs + 1] = "--governance-key"; vargs[#vargs + 1] = governance_key end
  local vout, vst = h.run(h.build .. "/workproof", vargs)
  return cjson.decode(vout) or vout, vst, out
end

local function no_repeats(lines)
  local seen = {}
  for i, line in ipairs(lines) do
    local b = cjson.decode(line)
    assert.equal(i - 1, b.sequence)
    assert.is_nil(seen[b.sequence])
    seen[b.sequence] = true
  end
end

local function metric(a, name, label)
  local st, _, body = h.http("GET", a.status .. "/metrics")
  assert.equal(200, st)
  local pat = name:gsub("_", "%%_") .. "{[^}]*" .. (label and label:gsub("[%-%%]", "%%%0") or "") .. "[^}]*} (%d+)"
  local n = 0
  for v in body:gmatch(pat) do n = n + tonumber(v) end
  return n
end

-- an exchange made from this process with an identity and a pin of our choice
local function exchange(l, identity_seed, pin, body)
  local id = assert(host.tls_identity(identity_seed, 3600))
  return host.http_request { url = "https://" .. l.addr .. "/v1/leases/" .. l.id .. "/exchange", method = "POST",
    body = cjson.encode(body or { last = cjson.null }), timeout = 10,
    tls = { cert = id.cert, key = id.key, pin = pin } }
end

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
    assert.matches("uptime 100%.00 %%", svg)
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
