-- SPDX-License-Identifier: MIT
-- policies/key_rotation.lua: record chains, forced rotations, key ranges for
-- the C chain verifier, the schedule over simulated time.
local policy = require "workproof.policy"
local wp = require "workproof"

local u = wp.uptime
local LEASE = ("11"):rep(32)
local T0 = 1700000000
local DAY = 86400

local function ts(sec) return ("%d000000000"):format(sec) end

local function key(n)
  local pub, sec = wp.ed25519.keypair(string.char(n):rep(32))
  return { pub = pub, sec = sec, hex = wp.hex(pub) }
end
local P0, C0, P1, P2, C1, GOV, EVIL = key(1), key(2), key(3), key(4), key(5), key(6), key(7)

-- a signed rotation record (fields overridable)
local function record(signer, t)
  local r = {
    leaseId = LEASE, party = t.party or "provider", index = t.index or 0, newKey = t.new.hex,
    effectiveSequence = t.seq, effectiveTimestamp = t.at, prevHash = t.prev or u.ZERO_HASH,
    reason = t.reason or "scheduled",
  }
  return assert(u.rotation_sign(r, signer.sec))
end

-- beats signed with keyfn(seq) -> provider, consumer; `step` seconds apart
local function chain(n, keyfn, step)
  local beats, prev = {}, nil
  for seq = 0, n - 1 do
    local pk, ck = keyfn(seq)
    local b = assert(u.build(LEASE, seq, ts(T0 + seq * (step or 60)), prev))
    u.sign(b, pk.sec)
    assert(u.countersign(b, pk.pub, ck.sec))
    beats[#beats + 1] = b
    prev = b.hash
  end
  return beats
end

local CTX = { lease_id = LEASE, initial = { provider = P0.hex, consumer = C0.hex } }
local function ctx(extra)
  local c = { lease_id = CTX.lease_id, initial = CTX.initial }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

describe("key_rotation policy", function()
  local now = T0
  local p = policy.load_file("policies/key_rotation.lua", { clock = function() return now end })
  local conf = assert(policy.configure(p, {}))
  local gconf = assert(policy.configure(p, { governance_key = GOV.hex }))

  it("has defaults: rotate every 30 days, 3 days grace, manual allowed, no governance key", function()
    assert.same({ schedule_days = 30, grace_days = 3, enforce_schedule = false, allow_manual = true }, conf)
  end)

  it("reports schema errors exactly", function()
    local c, errs = policy.configure(p, { schedule_days = 0, grace_days = -1, governance_key = "xyz",
      enforce_schedule = "yes", allow_manual = 1, bogus = true })
    assert.is_nil(c)
    assert.same({ schedule_days = "must be >= 1", grace_days = "must be >= 0",
      governance_key = "length must be >= 64", enforce_schedule = "expected a boolean",
      allow_manual = "expected a boolean", bogus = "unknown field" }, errs)
    c, errs = policy.configure(p, { governance_key = ("z"):rep(64) })
    assert.is_nil(c)
    assert.same({ governance_key = "invalid value: " .. ("z"):rep(64) }, errs)
  end)

  it("gives one open range per party without records", function()
    assert.same({ provider = { { first = 0, key = P0.hex } }, consumer = { { first = 0, key = C0.hex } } },
      p.active_keys(conf, {}, CTX))
  end)

  it("turns a scheduled rotation into ranges the chain verifier accepts", function()
    local r0 = record(P0, { new = P1, seq = 100 })
    local keys = assert(p.active_keys(conf, { r0 }, CTX))
    assert.same({ { first = 0, last = 99, key = P0.hex }, { first = 100, key = P1.hex } }, keys.provider)
    local beats = chain(130, function(seq) return seq >= 100 and P1 or P0, C0 end)
    assert.is_true(u.verify_chain(beats, keys))
    -- old beats stay verifiable; the retired key after its retirement does not
    local stale = chain(130, function() return P0, C0 end)
    assert.same({ false, "BAD_PROVIDER_SIG", 101 }, { u.verify_chain(stale, keys) })
    -- a second rotation, signed by the key it retires
    local r1 = record(P1, { new = P2, index = 1, seq = 120, prev = u.rotation_hash(r0), reason = "manual" })
    keys = assert(p.active_keys(conf, { r1, r0 }, CTX))
    assert.same({ { first = 0, last = 99, key = P0.hex }, { first = 100, last = 119, key = P1.hex },
      { first = 120, key = P2.hex } }, keys.provider)
  end)

  it("rotates across epoch boundaries for both parties", function()
    local recs = { record(P0, { new = P1, seq = 59 }), record(C0, { party = "consumer", new = C1, seq = 60 }) }
    local keys = assert(p.active_keys(conf, recs, CTX))
    local beats = chain(125, function(seq) return seq >= 59 and P1 or P0, seq >= 60 and C1 or C0 end)
    assert.is_true(u.verify_chain(beats, keys))
    local epochs, claims = assert(u.rollup(beats))
    assert.equal(3, #epochs)
    local enc = assert(u.claim_encode(claims[1], P0.sec))
    assert.is_true(u.proof_verify(assert(u.proof_make(beats, 59, epochs, enc)), { provider = P0.pub,
      consumer = C0.pub }))
    assert.is_true(u.proof_verify(assert(u.proof_make(beats, 61, epochs, enc)), { provider = P1.pub,
      consumer = C1.pub, claim = P0.pub }))
  end)

  it("rejects records that break the chain, naming the record", function()
    local r0 = record(P0, { new = P1, seq = 10 })
    local function bad(recs, reason, index, c)
      local keys, why, idx = p.active_keys(c or conf, recs, CTX)
      assert.is_nil(keys)
      assert.same({ reason, index }, { why, idx })
      local res = p.verify_records(c or conf, recs, CTX)
      assert.same({ false, reason, index }, { res.valid, res.reason, res.index })
    end
    bad({ record(EVIL, { new = P1, seq = 10 }) }, "BAD_SIGNATURE", 1)
    bad({ r0, record(P1, { new = P2, index = 1, seq = 20 }) }, "BROKEN_LINK", 2)
    bad({ r0, record(P1, { new = P2, index = 2, seq = 20, prev = u.rotation_hash(r0) }) }, "INDEX_GAP", 2)
    bad({ r0, record(P1, { new = P0, index = 1, seq = 20, prev = u.rotation_hash(r0) }) }, "KEY_REUSED", 2)
    local other = record(P0, { new = P1, seq = 10 })
    other.leaseId = ("22"):rep(32)
    u.rotation_sign(other, P0.sec)
    bad({ other }, "LEASE_MISMATCH", 1)
    bad({ record(P0, { new = P1, seq = 10, reason = "manual" }) }, "MANUAL_DISABLED", 1,
      assert(policy.configure(p, { allow_manual = false })))
    bad({ record(GOV, { new = P1, seq = 10, reason = "forced" }) }, "NO_GOVERNANCE_KEY", 1)
    bad({ record(P0, { new = P1, seq = 10, reason = "forced" }) }, "BAD_SIGNATURE", 1, gconf)
    bad({ r0, record(P0, { new = P2, seq = 20 }) }, "FORKED", 2)
    bad({ { leaseId = LEASE } }, "BAD_RECORD", 1)
    bad({ r0, record(P1, { new = P2, index = 1, seq = 5, prev = u.rotation_hash(r0) }) }, "NOT_MONOTONIC", 2)
  end)

  it("lets governance force a rotation over a compromised key", function()
    -- the attacker holds P0: rotates the provider to EVIL, and again from EVIL
    local evil0 = record(P0, { new = EVIL, seq = 50, reason = "manual" })
    local evil1 = record(EVIL, { new = P2, index = 1, seq = 60, prev = u.rotation_hash(evil0), reason = "manual" })
    local forced = record(GOV, { new = P1, seq = 40, reason = "forced" })
    local res = p.verify_records(gconf, { evil0, evil1, forced }, CTX)
    assert.is_true(res.valid)
    assert.same({ 1, 2 }, res.superseded)
    local keys = assert(p.active_keys(gconf, { evil0, evil1, forced }, CTX))
    assert.same({ { first = 0, last = 39, key = P0.hex }, { first = 40, key = P1.hex } }, keys.provider)
    -- beats the attacker signs after the forced rotation are rejected
    local beats = chain(70, function(seq) return seq >= 50 and EVIL or (seq >= 40 and P1 or P0), C0 end)
    assert.same({ false, "BAD_PROVIDER_SIG", 51 }, { u.verify_chain(beats, keys) })
    -- without a governance key, the attacker's chain is all there is
    keys = assert(p.active_keys(conf, { evil0, evil1 }, CTX))
    assert.equal(EVIL.hex, keys.provider[2].key)
  end)

  it("resolves effective timestamps through the beats", function()
    local beats = chain(20, function(seq) return seq >= 7 and P1 or P0, C0 end)
    local r0 = record(P0, { new = P1, at = ts(T0 + 6 * 60 + 1) })       -- first beat at or after: 7
    local keys, why = p.active_keys(conf, { r0 }, CTX)
    assert.is_nil(keys)
    assert.equal("NEEDS_BEATS", why)
    keys = assert(p.active_keys(conf, { r0 }, ctx({ beats = beats })))
    assert.same({ { first = 0, last = 6, key = P0.hex }, { first = 7, key = P1.hex } }, keys.provider)
    assert.is_true(u.verify_chain(beats, keys))
    -- a rotation timed after the last beat changes nothing yet
    local r1 = record(P1, { new = P2, index = 1, at = ts(T0 + DAY), prev = u.rotation_hash(r0) })
    local K9 = key(9)
    local r2 = record(P2, { new = K9, index = 2, at = ts(T0 + 2 * DAY), prev = u.rotation_hash(r1) })
    keys = assert(p.active_keys(conf, { r0, r1, r2 }, ctx({ beats = beats })))
    assert.is_true(u.verify_chain(beats, keys))
    assert.same({ { first = 0, last = 6, key = P0.hex }, { first = 7, last = 19, key = P1.hex },
      { first = 20, key = K9.hex } }, keys.provider)
    -- untrusted beats: malformed ones are skipped here, the chain verifier names them
    local messy = {}
    for i, b in ipairs(beats) do messy[i] = b end
    messy[1] = { sequence = "0", timestamp = 5 }
    messy[8] = { sequence = 7, timestamp = "not a time" }
    keys = assert(p.active_keys(conf, { r0 }, ctx({ beats = messy })))
    assert.same({ { first = 0, last = 7, key = P0.hex }, { first = 8, key = P1.hex } }, keys.provider)
    assert.same({ false, "BAD_FORMAT", 1, "leaseId: expected 64 hex digits" }, { u.verify_chain(messy, keys) })
    -- out of order in time
    local r1b = record(P1, { new = P2, index = 1, at = ts(T0 + 2 * DAY), prev = u.rotation_hash(r0) })
    local r2b = record(P2, { new = K9, index = 2, at = ts(T0 + DAY), prev = u.rotation_hash(r1b) })
    assert.equal("NOT_MONOTONIC", select(2, p.active_keys(conf, { r0, r1b, r2b }, ctx({ beats = beats }))))
  end)

  describe("schedule over simulated time", function()
    -- daily beats for 40 days, all signed with the initial keys
    local beats = chain(41, function() return P0, C0 end, DAY)

    it("tells when a rotation is due, overdue and expired", function()
      now = T0 + 10 * DAY
      local due = assert(p.due(conf, {}, ctx({ beats = beats })))
      assert.same({ key = P0.hex, since_ns = ts(T0), due_ns = ts(T0 + 30 * DAY), overdue = false,
        expired = false }, due.provider)
      now = T0 + 31 * DAY
      due = assert(p.due(conf, {}, ctx({ beats = beats })))
      assert.same({ true, false }, { due.provider.overdue, due.provider.expired })
      now = T0 + 34 * DAY
      due = assert(p.due(conf, {}, ctx({ beats = beats })))
      assert.same({ true, true }, { due.consumer.overdue, due.consumer.expired })
      -- rotated on day 30: the next one is due on day 60
      local r0 = record(P0, { new = P1, at = ts(T0 + 30 * DAY) })
      due = assert(p.due(conf, { r0 }, ctx({ beats = beats })))
      assert.same({ P1.hex, ts(T0 + 60 * DAY), false }, { due.provider.key, due.provider.due_ns, due.provider.overdue })
    end)

    it("enforces the schedule: an expired key signs nothing", function()
      local strict = assert(policy.configure(p, { enforce_schedule = true }))
      local keys = assert(p.active_keys(strict, {}, ctx({ beats = beats })))
      -- 30 + 3 days after day 0: beats from day 33 on have no key
      assert.same({ { first = 0, last = 32, key = P0.hex } }, keys.provider)
      assert.same({ false, "NO_PROVIDER_KEY", 34 }, { u.verify_chain(beats, keys) })
      -- the lenient default accepts the same chain
      assert.is_true(u.verify_chain(beats, assert(p.active_keys(conf, {}, ctx({ beats = beats })))))
      -- rotating on schedule keeps the chain valid
      local rotated = chain(41, function(seq) return seq >= 30 and P1 or P0, seq >= 31 and C1 or C0 end, DAY)
      local recs = { record(P0, { new = P1, seq = 30 }), record(C0, { party = "consumer", new = C1, seq = 31 }) }
      keys = assert(p.active_keys(strict, recs, ctx({ beats = rotated })))
      assert.is_true(u.verify_chain(rotated, keys))
    end)
  end)
end)
