-- SPDX-License-Identifier: MIT
-- policies/timestamps.lua over simulated time (an injected clock).
local policy = require "workproof.policy"
local wp = require "workproof"

local LEASE = ("11"):rep(32)
local T0 = 1700000000 -- the first beat, Unix seconds

local function ts(sec, ns) return ("%d%09d"):format(sec, ns or 0) end

-- beats at T0 + offsets[i] seconds (offsets may carry fractions)
local function beats_at(offsets)
  local out = {}
  for i, off in ipairs(offsets) do
    local whole = math.floor(off)
    out[i] = { leaseId = LEASE, sequence = i - 1, timestamp = ts(T0 + whole, math.floor((off - whole) * 1e9 + 0.5)) }
  end
  return out
end

local function regular(n, step)
  local offs = {}
  for i = 1, n do offs[i] = (i - 1) * (step or 60) end
  return offs
end

describe("timestamps policy", function()
  local now = T0 + 86400
  local p = policy.load_file("policies/timestamps.lua", { clock = function() return now end })
  local conf = assert(policy.configure(p, {}))

  before_each(function() now = T0 + 86400 end)

  it("has defaults: 60 s interval, 30 s tolerance, 10 s drift", function()
    assert.same({ interval_s = 60, tolerance_s = 30, drift_s = 10, timekeepers = {}, threshold = 1,
      require_attestations = false }, conf)
  end)

  it("reports schema errors exactly", function()
    local c, errs = policy.configure(p, { interval_s = 0, tolerance_s = -1, drift_s = 1000, threshold = 0,
      timekeepers = { "xyz", ("g"):rep(64) }, require_attestations = "yes", extra = 1 })
    assert.is_nil(c)
    assert.same({
      interval_s = "must be >= 1", tolerance_s = "must be >= 0", drift_s = "must be <= 300",
      threshold = "must be >= 1", timekeepers = { "length must be >= 64", "invalid value: " .. ("g"):rep(64) },
      require_attestations = "expected a boolean", extra = "unknown field",
    }, errs)
    c, errs = policy.configure(p, { interval_s = 60, tolerance_s = 60 })
    assert.is_nil(c)
    assert.matches("tolerance_s must be below interval_s", errs["@self_check"])
    c, errs = policy.configure(p, { timekeepers = { ("a"):rep(64) }, threshold = 2 })
    assert.is_nil(c)
    assert.matches("threshold exceeds", errs["@self_check"])
    c, errs = policy.configure(p, { require_attestations = true })
    assert.is_nil(c)
    assert.matches("require_attestations needs timekeepers", errs["@self_check"])
  end)

  it("accepts a regular chain with jitter and reports 100 % uptime", function()
    local offs = regular(120)
    for i = 2, #offs do offs[i] = offs[i] + ((i * 7) % 5) - 2 + 0.123456789 end
    local r = p.check_chain(conf, beats_at(offs))
    assert.is_true(r.valid)
    assert.same({}, r.gaps)
    assert.equal(1, r.uptime)
    assert.equal(120, r.beats)
  end)

  it("opens a recorded gap for a late beat and keeps the chain valid", function()
    local offs = regular(10)
    for i = 6, 10 do offs[i] = offs[i] + 600 end          -- 10 minutes of silence after beat 5
    offs[10] = offs[10] + 120                              -- and 2 more before beat 10
    local beats = beats_at(offs)
    local r = p.check_chain(conf, beats)
    assert.is_true(r.valid)
    assert.same({
      { from_ns = beats[5].timestamp, to_ns = beats[6].timestamp, missed = 10, index = 6 },
      { from_ns = beats[9].timestamp, to_ns = beats[10].timestamp, missed = 2, index = 10 },
    }, r.gaps)
    assert.equal((600 + 120) * 1e9, r.downtime_ns)
    assert.equal((9 * 60 + 720) * 1e9, r.span_ns)
    assert.near(1 - 720 / (9 * 60 + 720 + 60), r.uptime, 1e-12)
  end)

  it("puts the tolerance boundary at the nanosecond", function()
    local r = p.check_chain(conf, beats_at({ 0, 90 }))
    assert.same({}, r.gaps)
    r = p.check_chain(conf, beats_at({ 0, 90.000000001 }))
    assert.equal(1, #r.gaps)
    assert.is_true(p.check_chain(conf, beats_at({ 0, 30 })).valid)
    r = p.check_chain(conf, beats_at({ 0, 29.999999999 }))
    assert.same({ false, "TOO_EARLY", 2 }, { r.valid, r.reason, r.index })
  end)

  it("rejects early beats: batch fabrication", function()
    local r = p.check_chain(conf, beats_at({ 0, 60, 120, 121, 122, 123 }))
    assert.same({ false, "TOO_EARLY", 4 }, { r.valid, r.reason, r.index })
    assert.matches("1%.000 s after the previous beat", r.detail)
    r = p.check_chain(conf, beats_at({ 0, 60, 80 }))
    assert.same({ false, "TOO_EARLY", 3 }, { r.valid, r.reason, r.index })
  end)

  it("rejects backwards and repeated timestamps", function()
    local r = p.check_chain(conf, beats_at({ 0, 60, 50 }))
    assert.same({ false, "NOT_INCREASING", 3 }, { r.valid, r.reason, r.index })
    r = p.check_chain(conf, beats_at({ 0, 60, 60 }))
    assert.same({ false, "NOT_INCREASING", 3 }, { r.valid, r.reason, r.index })
  end)

  it("rejects beats in the future beyond the drift, over simulated time", function()
    local beats = beats_at(regular(5))                     -- the last at T0 + 240
    now = T0 + 229.5
    local r = p.check_chain(conf, beats)
    assert.same({ false, "IN_FUTURE", 5 }, { r.valid, r.reason, r.index })
    assert.matches("10%.500 s ahead", r.detail)
    now = T0 + 230                                         -- exactly the drift: accepted
    assert.is_true(p.check_chain(conf, beats).valid)
    now = T0 + 300
    assert.is_true(p.check_chain(conf, beats).valid)
    local tight = assert(policy.configure(p, { drift_s = 5 }))
    now = T0 + 234
    r = p.check_chain(tight, beats)
    assert.same({ false, "IN_FUTURE", 5 }, { r.valid, r.reason, r.index })
    now = T0 + 235
    assert.is_true(p.check_chain(tight, beats).valid)
  end)

  it("honours the configured interval", function()
    local c30 = assert(policy.configure(p, { interval_s = 30, tolerance_s = 10 }))
    assert.is_true(p.check_chain(c30, beats_at(regular(10, 30))).valid)
    local r = p.check_chain(c30, beats_at({ 0, 30, 60, 100.5 }))
    assert.equal(1, #r.gaps)
    r = p.check_chain(conf, beats_at(regular(10, 20)))
    assert.same({ false, "TOO_EARLY", 2 }, { r.valid, r.reason, r.index })
  end)

  it("rejects malformed timestamps and beats before the lease start", function()
    for _, bad in ipairs({ "1.5e18", "-1", "01700000000000000000", "", 1.5, {}, "12345678901234567890" }) do
      local beats = beats_at({ 0, 60 })
      beats[2].timestamp = bad
      local r = p.check_chain(conf, beats)
      assert.same({ false, "BAD_TIMESTAMP", 2 }, { r.valid, r.reason, r.index }, tostring(bad))
    end
    local r = p.check_chain(conf, beats_at({ 0, 60 }), { start_ns = ts(T0 + 11) })
    assert.same({ false, "BEFORE_START", 1 }, { r.valid, r.reason, r.index })
    assert.is_true(p.check_chain(conf, beats_at({ 0, 60 }), { start_ns = ts(T0 + 10) }).valid)
  end)

  describe("with timekeeper attestations", function()
    local tk = {}
    for i = 1, 4 do
      local pub, sec = wp.ed25519.keypair(string.char(i):rep(32))
      tk[i] = { pub = wp.hex(pub), sec = sec }
    end
    local aconf = assert(policy.configure(p, { timekeepers = { tk[1].pub, tk[2].pub, tk[3].pub:upper() },
      threshold = 2 }))
    local function att(i, off)
      local whole = math.floor(off)
      return assert(wp.uptime.attest(LEASE, ts(T0 + whole, math.floor((off - whole) * 1e9)), tk[i].sec))
    end

    it("accepts a beat within drift of the lower median of valid attestations", function()
      local beats = beats_at({ 0, 60 })
      beats[2].attestations = { att(1, 52), att(2, 63), att(3, 80) } -- lower median 63
      assert.is_true(p.check_chain(aconf, beats).valid)
      beats[2].attestations = { att(1, 40), att(2, 45), att(3, 62) } -- lower median 45: 15 s off
      local r = p.check_chain(aconf, beats)
      assert.same({ false, "ATTESTATION_DRIFT", 2 }, { r.valid, r.reason, r.index })
    end)

    it("counts only trusted, valid, distinct timekeepers", function()
      local beats = beats_at({ 0, 60 })
      beats[2].attestations = { att(1, 60), att(4, 60) }        -- tk 4 is not trusted
      local r = p.check_chain(aconf, beats)
      assert.same({ false, "ATTESTATION_QUORUM", 2 }, { r.valid, r.reason, r.index })
      beats[2].attestations = { att(1, 60), att(1, 61) }        -- one timekeeper twice
      assert.equal("ATTESTATION_QUORUM", p.check_chain(aconf, beats).reason)
      local forged = att(2, 60)
      forged.timestamp_ns = ts(T0 + 61)                          -- signature no longer matches
      beats[2].attestations = { att(1, 60), forged }
      assert.equal("ATTESTATION_QUORUM", p.check_chain(aconf, beats).reason)
      local other = assert(wp.uptime.attest(("22"):rep(32), ts(T0 + 60), tk[2].sec)) -- another lease
      beats[2].attestations = { att(1, 60), other }
      assert.equal("ATTESTATION_QUORUM", p.check_chain(aconf, beats).reason)
      beats[2].attestations = { att(1, 60), att(3, 59) }        -- upper-case configured key matches
      assert.is_true(p.check_chain(aconf, beats).valid)
    end)

    it("takes attestations from ctx by sequence and can require them", function()
      local beats = beats_at({ 0, 60 })
      local r = p.check_chain(aconf, beats, { attestations = { [1] = { att(1, 30), att(2, 31) } } })
      assert.same({ false, "ATTESTATION_DRIFT", 2 }, { r.valid, r.reason, r.index })
      local req = assert(policy.configure(p, { timekeepers = { tk[1].pub, tk[2].pub }, threshold = 2,
        require_attestations = true }))
      r = p.check_chain(req, beats, { attestations = { [1] = { att(1, 60), att(2, 60) } } })
      assert.same({ false, "NO_ATTESTATION", 1 }, { r.valid, r.reason, r.index })
      r = p.check_chain(req, beats, { attestations = {
        [0] = { att(1, 0), att(2, 1) }, [1] = { att(1, 60), att(2, 60) },
      } })
      assert.is_true(r.valid)
    end)
  end)
end)
