-- SPDX-License-Identifier: MIT
-- wp.uptime: XE-compatible heartbeats, chain verification and its tamper
-- cases, epochs, claims (194-byte encoding), disclosure proofs, VDF blocks,
-- rotation records and attestation digests (docs/uptime.md).
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"

local u = wp.uptime
local hex, unhex, sha256 = wp.hex, h.unhex, wp.sha256

-- RFC 8032 section 7.1 test keys 1 and 2 (their public keys are asserted)
local PSEED = unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
local CSEED = unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
local PPUB, PSEC = wp.ed25519.keypair(PSEED)
local CPUB, CSEC = wp.ed25519.keypair(CSEED)
local LEASE = ("11"):rep(32)
local ZERO = ("0"):rep(64)

local function ts_of(sec, ns) return ("%d%09d"):format(sec, ns or 0) end

-- a signed chain of n beats, one every `step` seconds (keys per beat via keyfn)
local function chain(n, opts)
  opts = opts or {}
  local beats, prev = {}, opts.prev
  local first = opts.first or 0
  for i = 0, n - 1 do
    local seq = first + i
    local b = assert(u.build(opts.lease or LEASE, seq, ts_of(1700000000 + seq * (opts.step or 60), 123456789), prev))
    local psec, ppub, csec = PSEC, PPUB, CSEC
    if opts.keys then psec, ppub, csec = opts.keys(seq) end
    if opts.vdf_t then b.vdf = assert(u.vdf_make(b.prevHash, opts.vdf_t)) end
    assert(u.sign(b, psec))
    assert(u.countersign(b, ppub, csec))
    beats[#beats + 1] = b
    prev = b.hash
  end
  return beats
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = type(v) == "table" and copy(v) or v end
  return c
end

-- change the last hex digit of a field
local function flip(s)
  local last = s:sub(-1)
  return s:sub(1, -2) .. (last == "0" and "1" or "0")
end

local KEYS = { provider = PPUB, consumer = CPUB }

describe("uptime heartbeat (XE format)", function()
  it("uses the RFC 8032 test keys", function()
    assert.equal("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", hex(PPUB))
    assert.equal("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", hex(CPUB))
  end)

  it("renders the payload leaseId:sequence:timestamp:prevHash, genesis 64 zeros", function()
    local b = assert(u.build(LEASE, 0, "1700000000000000000"))
    assert.equal(LEASE .. ":0:1700000000000000000:" .. ZERO, u.payload(b))
    b = assert(u.build(("AB"):rep(32), 12345, 7, ("cd"):rep(32)))
    assert.equal(("ab"):rep(32) .. ":12345:7:" .. ("cd"):rep(32), u.payload(b))
    assert.same({ leaseId = ("ab"):rep(32), sequence = 12345, timestamp = "7", prevHash = ("cd"):rep(32) }, b)
  end)

  it("signs exactly SHA-256(payload), SHA-256(payload||psig), hash = SHA-256(payload||psig||csig)", function()
    local b = chain(2)[2]
    local payload = u.payload(b)
    local psig, csig = unhex(b.providerSig), unhex(b.consumerSig)
    assert.is_true(wp.ed25519.verify(PPUB, sha256(payload), psig))
    assert.is_true(wp.ed25519.verify(CPUB, sha256(payload .. psig), csig))
    assert.equal(hex(sha256(payload .. psig .. csig)), b.hash)
    assert.equal(b.hash, u.hash(b))
    -- and not some other reading of "+"
    assert.is_false(wp.ed25519.verify(CPUB, sha256(payload .. b.providerSig), csig))
  end)

  it("matches the fixture chain (RFC 8032 keys, fixed times)", function()
    local lines = {}
    for line in h.read("spec/fixtures/uptime/chain-3.jsonl"):gmatch("[^\n]+") do
      lines[#lines + 1] = cjson.decode(line)
    end
    assert.equal(3, #lines)
    assert.equal("684f6c20e72ce58322b3cbbdd2f43f0a0a737af36bb038d322c6c7c9b5c2ee40", lines[1].hash)
    assert.is_true(u.verify_chain(lines, KEYS))
    -- rebuilding from the same keys and fields gives the same bytes (Ed25519 is deterministic)
    local b = assert(u.build(LEASE, 0, "1700000000000000000"))
    u.sign(b, PSEC)
    u.countersign(b, PPUB, CSEC)
    assert.same(lines[1], b)
  end)

  it("keeps sign and countersign separate; the consumer refuses a bad provider signature", function()
    local b = assert(u.build(LEASE, 0, "5"))
    assert.equal(b, u.sign(b, PSEC))
    assert.is_nil(b.consumerSig)
    local forged = copy(b)
    forged.providerSig = flip(forged.providerSig)
    local ok, err = u.countersign(forged, PPUB, CSEC)
    assert.is_nil(ok)
    assert.matches("^EPROTO: BAD_PROVIDER_SIG", err)
    assert.is_nil(forged.consumerSig)
    assert.is_nil(forged.hash)
    -- the right key, but another provider's
    ok, err = u.countersign(copy(b), CPUB, CSEC)
    assert.is_nil(ok)
    assert.matches("BAD_PROVIDER_SIG", err)
    assert.equal(b, u.countersign(b, PPUB, CSEC))
    assert.is_true(u.verify(b, PPUB, CSEC:sub(33)))
  end)

  it("verifies one beat and names what is wrong", function()
    local b = chain(1)[1]
    assert.is_true(u.verify(b, PPUB, CPUB))
    assert.is_true(u.verify(b, hex(PPUB), hex(CPUB)))
    local cases = {
      { "timestamp", "1700000000123456780", "BAD_PROVIDER_SIG" },
      { "sequence", 1, "BAD_PROVIDER_SIG" },
      { "leaseId", ("22"):rep(32), "BAD_PROVIDER_SIG" },
      { "prevHash", flip(ZERO), "BAD_PROVIDER_SIG" },
      { "providerSig", flip(b.providerSig), "BAD_PROVIDER_SIG" },
      { "consumerSig", flip(b.consumerSig), "BAD_CONSUMER_SIG" },
      { "hash", flip(b.hash), "BAD_HASH" },
      { "hash", "xyz", "BAD_FORMAT" },
      { "timestamp", "01700000000123456789", "BAD_FORMAT" },
      { "timestamp", -1, "BAD_FORMAT" },
      { "timestamp", "9223372036854775808", "BAD_FORMAT" },
      { "sequence", 1.5, "BAD_FORMAT" },
      { "sequence", "0", "BAD_FORMAT" },
      { "vdf", ("00"):rep(528), "BAD_FORMAT" },
      { "vdf", "00", "BAD_FORMAT" },
    }
    for _, c in ipairs(cases) do
      local t = copy(b)
      t[c[1]] = c[2]
      assert.same({ false, c[3] }, { u.verify(t, PPUB, CPUB) }, c[1] .. "=" .. tostring(c[2]))
    end
    assert.same({ false, "BAD_PROVIDER_SIG" }, { u.verify(b, CPUB, CPUB) })
    assert.same({ false, "BAD_CONSUMER_SIG" }, { u.verify(b, PPUB, PPUB) })
  end)

  it("accepts exact integer timestamps and returns nil, err for bad build input", function()
    assert.equal("1000", assert(u.build(LEASE, 0, 1000)).timestamp)
    local ok, err = u.build("abc", 0, "1")
    assert.is_nil(ok)
    assert.matches("^EINVAL: leaseId", err)
    assert.matches("^EINVAL: sequence", select(2, u.build(LEASE, -1, "1")))
    assert.matches("^EINVAL: timestamp", select(2, u.build(LEASE, 0, "1.5")))
    assert.matches("^EINVAL: prevHash", select(2, u.build(LEASE, 0, "1", "00")))
  end)

  it("raises for wrong argument types and key lengths", function()
    local b = assert(u.build(LEASE, 0, "1"))
    assert.has_error(function() u.build({}, 0, "1") end)
    assert.has_error(function() u.build(LEASE, {}, "1") end)
    assert.has_error(function() u.sign("beat", PSEC) end)
    assert.has_error(function() u.sign(b, PSEC:sub(2)) end)
    assert.has_error(function() u.sign(b, ("zz"):rep(64)) end)
    assert.has_error(function() u.verify(b, PPUB) end)
    assert.has_error(function() u.verify_chain(5, KEYS) end)
    assert.has_error(function() u.verify_chain({}, {}) end)
    assert.has_error(function() u.verify_chain({}, { provider = PPUB, consumer = "short" }) end)
    assert.has_error(function() u.verify_chain({}, KEYS, { vdf_t = -1 }) end)
    assert.has_error(function() u.verify_chain({}, KEYS, { lease_id = "nothex" }) end)
  end)
end)

describe("uptime verify_chain", function()
  local beats = chain(40)

  it("accepts a valid chain, an empty one, and the packed form", function()
    assert.is_true(u.verify_chain(beats, KEYS))
    assert.is_true(u.verify_chain({}, KEYS))
    local packed = assert(u.pack(beats))
    assert.equal(40 * u.PACKED_LEN, #packed)
    assert.is_true(u.verify_chain(packed, KEYS))
    assert.same(beats, assert(u.unpack(packed)))
  end)

  local function tampered(fn)
    local t = {}
    for i, b in ipairs(beats) do t[i] = copy(b) end
    fn(t)
    return { u.verify_chain(t, KEYS) }
  end

  it("rejects edited beats with the reason and the index", function()
    assert.same({ false, "BAD_PROVIDER_SIG", 11 }, tampered(function(t) t[11].timestamp = "1700000600000000001" end))
    assert.same({ false, "BAD_CONSUMER_SIG", 12 },
      tampered(function(t) t[12].consumerSig = flip(t[12].consumerSig) end))
    assert.same({ false, "BAD_HASH", 13 }, tampered(function(t) t[13].hash = flip(t[13].hash) end))
    assert.same({ false, "BROKEN_LINK", 14 }, tampered(function(t) t[14].prevHash = flip(t[14].prevHash) end))
    assert.same({ false, "LEASE_MISMATCH", 15 }, tampered(function(t) t[15].leaseId = ("22"):rep(32) end))
  end)

  it("rejects inserted, dropped and reordered beats", function()
    -- a duplicate of a genuine beat inserted
    assert.same({ false, "BAD_SEQUENCE", 11 }, tampered(function(t) table.insert(t, 11, copy(t[10])) end))
    -- a fresh beat for the same slot, signed by both (an equivocation) inserted
    assert.same({ false, "BAD_SEQUENCE", 11 }, tampered(function(t)
      local b = assert(u.build(LEASE, 9, ts_of(1700000545), t[9].hash))
      u.sign(b, PSEC)
      u.countersign(b, PPUB, CSEC)
      table.insert(t, 11, b)
    end))
    assert.same({ false, "BAD_SEQUENCE", 20 }, tampered(function(t) table.remove(t, 20) end))
    -- dropped and renumbered without re-signing: the link gives it away
    assert.same({ false, "BROKEN_LINK", 20 }, tampered(function(t)
      table.remove(t, 20)
      for i = 20, #t do t[i].sequence = t[i].sequence - 1 end
    end))
    assert.same({ false, "BAD_SEQUENCE", 5 }, tampered(function(t) t[5], t[6] = t[6], t[5] end))
    assert.same({ false, "BAD_SEQUENCE", 1 }, tampered(function(t) table.remove(t, 1) end))
  end)

  it("rejects a forged genesis and a beat the consumer never countersigned", function()
    assert.same({ false, "BROKEN_LINK", 1 }, { u.verify_chain(chain(3, { prev = ("ab"):rep(32) }), KEYS) })
    -- the provider alone extends the chain: a consumer signature by another key
    local other_pub, other_sec = wp.ed25519.keypair(("\7"):rep(32))
    assert.same({ false, "BAD_CONSUMER_SIG", 31 }, { u.verify_chain(chain(40, { keys = function(seq)
      if seq >= 30 then return PSEC, PPUB, other_sec end
      return PSEC, PPUB, CSEC
    end }), KEYS) })
    assert.is_true(other_pub ~= CPUB)
  end)

  it("rejects a wrong key", function()
    assert.same({ false, "BAD_PROVIDER_SIG", 1 }, { u.verify_chain(beats, { provider = CPUB, consumer = CPUB }) })
    assert.same({ false, "BAD_CONSUMER_SIG", 1 }, { u.verify_chain(beats, { provider = PPUB, consumer = PPUB }) })
  end)

  it("reports a malformed beat as BAD_FORMAT after earlier failures", function()
    local t = {}
    for i, b in ipairs(beats) do t[i] = copy(b) end
    t[30].providerSig = "nothex"
    assert.same({ false, "BAD_FORMAT", 30, "providerSig: expected 128 hex digits" }, { u.verify_chain(t, KEYS) })
    t[10].hash = flip(t[10].hash)
    assert.same({ false, "BAD_HASH", 10 }, { u.verify_chain(t, KEYS) })
    t = { beats[1], "not a beat" }
    assert.same({ false, "BAD_FORMAT", 2, "not a table" }, { u.verify_chain(t, KEYS) })
    local b = copy(beats[1])
    b.timestamp = nil
    assert.same({ false, "BAD_FORMAT", 1, "timestamp: expected a decimal string of Unix nanoseconds" },
      { u.verify_chain({ b }, KEYS) })
  end)

  it("verifies a suffix from an anchor", function()
    local suffix = { unpack(beats, 21) }
    assert.same({ false, "BAD_SEQUENCE", 1 }, { u.verify_chain(suffix, KEYS) })
    assert.is_true(u.verify_chain(suffix, KEYS, { first_sequence = 20, prev_hash = beats[20].hash }))
    assert.same({ false, "BROKEN_LINK", 1 },
      { u.verify_chain(suffix, KEYS, { first_sequence = 20, prev_hash = beats[19].hash }) })
    assert.same({ false, "LEASE_MISMATCH", 1 }, { u.verify_chain(beats, KEYS, { lease_id = ("22"):rep(32) }) })
  end)

  it("uses key ranges: per range, per beat, holes and overlaps", function()
    local k2pub, k2sec = wp.ed25519.keypair(("\3"):rep(32))
    local b2 = chain(10, { keys = function(seq)
      if seq >= 5 then return k2sec, k2pub, CSEC end
      return PSEC, PPUB, CSEC
    end })
    local ranges = { { first = 0, last = 4, key = PPUB }, { first = 5, key = hex(k2pub) } }
    assert.is_true(u.verify_chain(b2, { provider = ranges, consumer = CPUB }))
    -- the retired key after its retirement
    assert.same({ false, "BAD_PROVIDER_SIG", 6 }, { u.verify_chain(b2, KEYS) })
    local per_beat = {}
    for s = 0, 9 do per_beat[s + 1] = { first = s, last = s, key = s >= 5 and k2pub or PPUB } end
    assert.is_true(u.verify_chain(b2, { provider = per_beat, consumer = CPUB }))
    assert.same({ false, "NO_PROVIDER_KEY", 6 },
      { u.verify_chain(b2, { provider = { { first = 0, last = 4, key = PPUB } }, consumer = CPUB }) })
    assert.same({ false, "NO_CONSUMER_KEY", 1 },
      { u.verify_chain(b2, { provider = ranges, consumer = { { first = 3, key = CPUB } } }) })
    local ok, err = u.verify_chain(b2, { provider = { { first = 0, last = 5, key = PPUB }, { first = 5, key = k2pub } },
      consumer = CPUB })
    assert.is_nil(ok)
    assert.matches("^EINVAL: key ranges", err)
  end)
end)

describe("uptime epochs and claims", function()
  local beats = chain(150)
  local epochs, claims = assert(u.rollup(beats))

  it("rolls 150 beats into 60 + 60 + 30 (a partial last epoch) and one claim", function()
    assert.equal(3, #epochs)
    assert.same({ 60, 60, 30 }, { epochs[1].count, epochs[2].count, epochs[3].count })
    assert.same({ 0, 60, 120 }, { epochs[1].firstSequence, epochs[2].firstSequence, epochs[3].firstSequence })
    assert.equal(1, #claims)
    assert.equal(150, claims[1].beatCount)
    assert.equal(3, claims[1].epochs)
  end)

  it("epoch root is the RFC 6962 tree over the raw heartbeat hashes", function()
    for i, e in ipairs(epochs) do
      local leaves = {}
      for j = 1, e.count do leaves[j] = unhex(beats[(i - 1) * 60 + j].hash) end
      assert.equal(hex(wp.merkle.root(leaves)), e.root)
    end
  end)

  it("epoch hash = SHA-256 of the 132-byte record, chained from 32 zero bytes", function()
    local e = epochs[2]
    local rec = assert(u.epoch_record(e))
    assert.equal(132, #rec)
    assert.equal("WP-UPTIME-EPOCH1", rec:sub(1, 16))
    assert.equal(unhex(LEASE), rec:sub(17, 48))
    assert.equal("\0\0\0\0\0\0\0\1", rec:sub(49, 56))
    assert.equal("\0\0\0\0\0\0\0\60", rec:sub(57, 64))
    assert.equal("\0\0\0\60", rec:sub(65, 68))
    assert.equal(unhex(e.root), rec:sub(69, 100))
    assert.equal(unhex(epochs[1].hash), rec:sub(101, 132))
    assert.equal(hex(sha256(rec)), e.hash)
    assert.equal(e.hash, u.epoch_hash(e))
    assert.equal(ZERO, epochs[1].prevEpochHash)
    assert.equal(epochs[2].hash, epochs[3].prevEpochHash)
    local bad = copy(e)
    bad.count = 61
    assert.matches("^EINVAL: epoch count", select(2, u.epoch_record(bad)))
  end)

  it("epoch_make equals the roll-up's epoch", function()
    local hs = {}
    for j = 61, 120 do hs[#hs + 1] = beats[j].hash end
    assert.same(epochs[2], u.epoch_make(LEASE, 1, hs, epochs[1].hash))
    assert.matches("^ERANGE", select(2, u.epoch_make(LEASE, 0, {})))
  end)

  it("claim root is the tree over the chained epoch HASHES; claims chain by prevClaimHash", function()
    local leaves = {}
    for i, e in ipairs(epochs) do leaves[i] = unhex(e.hash) end
    assert.equal(hex(wp.merkle.root(leaves)), claims[1].root)
    local b2 = chain(1440 + 100)
    local e2, c2 = assert(u.rollup(b2))
    assert.equal(26, #e2)
    assert.equal(2, #c2)
    assert.same({ 1440, 100 }, { c2[1].beatCount, c2[2].beatCount })
    assert.equal(ZERO, c2[1].prevClaimHash)
    assert.equal(c2[1].hash, c2[2].prevClaimHash)
    assert.equal(1440, c2[2].firstSequence)
    assert.equal(b2[1441].timestamp, c2[2].periodStart)
    assert.equal(b2[1540].timestamp, c2[2].periodEnd)
    -- claim_make from the epochs of the second day
    local made = assert(u.claim_make({ e2[25], e2[26] }, { index = 1, period_start = c2[2].periodStart,
      period_end = c2[2].periodEnd, prev_claim_hash = c2[1].hash }))
    assert.same(c2[2], made)
    assert.matches("^EPROTO", select(2, u.claim_make({ e2[25], e2[26] }, { index = 0, period_start = "1",
      period_end = "2" })))
    assert.matches("^EPROTO", select(2, u.claim_make({ e2[26], e2[25] }, { index = 1, period_start = "1",
      period_end = "2" })))
    assert.matches("^ERANGE", select(2, u.claim_make({}, { index = 1, period_start = "1", period_end = "2" })))
  end)

  it("rejects roll-ups that do not start on a claim boundary", function()
    local ok, err = u.rollup({ unpack(beats, 2) })
    assert.is_nil(ok)
    assert.matches("^EINVAL", err)
    assert.matches("^EINVAL", select(2, u.rollup({})))
  end)

  it("encodes a claim in exactly 194 bytes (<= 200) with the provider's signature", function()
    local c = claims[1]
    local enc = assert(u.claim_encode(c, PSEC))
    assert.equal(194, #enc)
    assert.is_true(#enc <= 200)
    assert.equal("\1\0", enc:sub(1, 2))
    assert.equal(unhex(LEASE), enc:sub(3, 34))
    assert.equal("\0\0\0\0", enc:sub(35, 38))
    assert.equal(("\0"):rep(8), enc:sub(39, 46))
    assert.equal("\0\0\0\150", enc:sub(47, 50))
    assert.equal(unhex(c.root), enc:sub(67, 98))
    assert.equal(unhex(c.prevClaimHash), enc:sub(99, 130))
    assert.equal(hex(sha256("WP-UPTIME-CLAIM1" .. enc:sub(1, 130))), c.hash)
    assert.is_true(wp.ed25519.verify(PPUB, unhex(c.hash), enc:sub(131)))
    assert.is_true(u.claim_verify(enc, PPUB))
    assert.is_false(u.claim_verify(enc, CPUB))
    local dec = assert(u.claim_decode(enc))
    assert.equal(hex(enc:sub(131)), dec.signature)
    dec.signature = nil
    assert.same(c, dec)
    assert.equal(c.hash, u.claim_hash(enc))
    -- every flipped byte breaks the signature (or the strict decoder)
    for i = 1, #enc, 7 do
      local t = enc:sub(1, i - 1) .. string.char((enc:byte(i) + 1) % 256) .. enc:sub(i + 1)
      assert.is_not_true(u.claim_verify(t, PPUB), "byte " .. i)
    end
  end)

  it("decodes claims strictly", function()
    local enc = assert(u.claim_encode(claims[1], PSEC))
    local function set(i, byte) return enc:sub(1, i - 1) .. byte .. enc:sub(i + 1) end
    local cases = {
      { enc:sub(1, 193), "^ETRUNC" },
      { enc .. "\0", "^EINVAL" },
      { "", "^ETRUNC" },
      { set(1, "\2"), "^EPROTO" },
      { set(2, "\2"), "^EPROTO" },
      { enc:sub(1, 46) .. "\0\0\0\0" .. enc:sub(51), "^EPROTO" },
      { enc:sub(1, 46) .. "\0\0\5\161" .. enc:sub(51), "^EPROTO" },
      { set(46, "\1"), "^EPROTO" },
      { enc:sub(1, 50) .. enc:sub(59, 66) .. enc:sub(51, 58) .. enc:sub(67), "^EPROTO" },
    }
    for i, c in ipairs(cases) do
      local ok, err = u.claim_decode(c[1])
      assert.is_nil(ok, i)
      assert.matches(c[2], err, 1, false)
      assert.is_nil(u.claim_verify(c[1], PPUB))
    end
  end)

  it("takes an optional consumer countersignature", function()
    local enc = assert(u.claim_encode(claims[1], PSEC))
    local sig = assert(u.claim_countersign(enc, CSEC))
    assert.equal(64, #sig)
    assert.is_true(u.claim_verify_countersign(enc, CPUB, sig))
    assert.is_true(u.claim_verify_countersign(enc, CPUB, hex(sig)))
    assert.is_false(u.claim_verify_countersign(enc, PPUB, sig))
    local other = assert(u.claim_encode(claims[1], CSEC))
    assert.is_false(u.claim_verify_countersign(other, CPUB, sig))
  end)

  it("measures the compression of 24 h of beats against the seed's figures", function()
    local day = chain(1440)
    local lines = {}
    for i, b in ipairs(day) do
      lines[i] = ('{"leaseId":"%s","sequence":%d,"timestamp":"%s","prevHash":"%s","providerSig":"%s",'
        .. '"consumerSig":"%s","hash":"%s"}\n'):format(b.leaseId, b.sequence, b.timestamp, b.prevHash,
        b.providerSig, b.consumerSig, b.hash)
    end
    local jsonl = table.concat(lines)
    local packed = assert(u.pack(day))
    local _, cl = assert(u.rollup(day))
    local enc = assert(u.claim_encode(cl[1], PSEC))
    assert.equal(194, #enc)
    local ratio = #jsonl / #enc
    print(("\n    24 h: %d beats, JSON lines %d B (%.1f KiB, %.0f B/beat), packed %d B (%.1f KiB, %d B/beat), "
      .. "claim %d B: %.0fx (JSONL), %.0fx (packed); seed: 718.9 KB -> ~200 B, 3,681x"):format(
      #day, #jsonl, #jsonl / 1024, #jsonl / 1440, #packed, #packed / 1024, #packed / 1440, #enc, ratio,
      #packed / #enc))
    assert.is_true(ratio >= 3681)
    assert.equal(1440 * 242, #packed)
  end)
end)

describe("uptime disclosure proofs", function()
  local beats = chain(1440 + 90)
  local epochs, claims = assert(u.rollup(beats))
  local enc1 = assert(u.claim_encode(claims[1], PSEC))
  local enc2 = assert(u.claim_encode(claims[2], PSEC))

  it("proves beats up to the signed claim (full and partial epochs, both claims)", function()
    for _, seq in ipairs({ 0, 37, 59, 60, 1000, 1439 }) do
      local p = assert(u.proof_make(beats, seq + 1, epochs, enc1))
      assert.is_true(u.proof_verify(p, KEYS), "beat " .. seq)
      assert.is_true(#p <= 2 + 208 + 76 + 1 + 6 * 32 + 1 + 5 * 32 + 194)
    end
    for _, seq in ipairs({ 1440, 1499, 1500, 1529 }) do
      local p = assert(u.proof_make(beats, seq + 1, epochs, enc2))
      assert.is_true(u.proof_verify(p, KEYS), "beat " .. seq)
    end
  end)

  it("decodes to the beat, epoch, paths and claim", function()
    local p = assert(u.proof_make(beats, 38, epochs, enc1))
    assert.equal(834, #p)
    local d = assert(u.proof_decode(p))
    assert.same(beats[38], d.beat)
    assert.same(epochs[1], d.epoch)
    assert.equal(6, #d.epochPath)
    assert.equal(5, #d.claimPath)
    assert.equal(claims[1].root, d.claim.root)
    -- the proof's epoch path checks out with the generic Merkle verifier too
    local paths = {}
    for i, x in ipairs(d.epochPath) do paths[i] = unhex(x) end
    assert.is_true(wp.merkle.verify_inclusion(unhex(beats[38].hash), 37, 60, paths, unhex(epochs[1].root)))
  end)

  it("rejects tampered proofs with the reason", function()
    local p = assert(u.proof_make(beats, 38, epochs, enc1))
    local function at(off, why)
      local t = p:sub(1, off - 1) .. string.char((p:byte(off) + 1) % 256) .. p:sub(off + 1)
      assert.same({ false, why }, { u.proof_verify(t, KEYS) }, "offset " .. off)
    end
    -- layout: version 1, flags 2, beat 3..210, epoch index 211..218, count
    -- 219..222, root 223..254, prevEpochHash 255..286, k 287, epoch path
    -- 288..479, m 480, claim path 481..640, claim 641..834
    at(35, "BAD_SEQUENCE")        -- the beat's sequence, now outside its epoch
    at(42, "BAD_PROVIDER_SIG")    -- sequence 37 -> 38: still in the epoch, not what was signed
    at(50, "BAD_PROVIDER_SIG")    -- timestamp
    at(83, "BAD_PROVIDER_SIG")    -- providerSig
    at(147, "BAD_CONSUMER_SIG")   -- consumerSig
    at(218, "BAD_SEQUENCE")       -- epoch index 1: the beat is not in it
    at(223, "BAD_EPOCH_PATH")     -- epoch root
    at(255, "BAD_CLAIM_PATH")     -- prevEpochHash: another epoch hash
    at(288, "BAD_EPOCH_PATH")     -- first epoch path hash
    at(481, "BAD_CLAIM_PATH")     -- first claim path hash
    at(641 + 66, "BAD_CLAIM_PATH") -- claim root
    at(834, "BAD_CLAIM_SIG")      -- claim signature
    assert.same({ false, "BAD_PROVIDER_SIG" }, { u.proof_verify(p, { provider = CPUB, consumer = CPUB }) })
    assert.same({ false, "BAD_CLAIM_SIG" }, { u.proof_verify(p, { provider = PPUB, consumer = CPUB, claim = CPUB }) })
  end)

  it("rejects a beat moved to another epoch or claim", function()
    -- the proof of beat 37 presented with the second claim
    local p = assert(u.proof_make(beats, 38, epochs, enc1))
    local swapped = p:sub(1, #p - 194) .. enc2
    assert.same({ false, "BAD_EPOCH" }, { u.proof_verify(swapped, KEYS) })
    assert.is_nil(u.proof_make(beats, 38, epochs, enc2))
  end)

  it("decodes strictly", function()
    local p = assert(u.proof_make(beats, 38, epochs, enc1))
    for _, bad in ipairs({ p:sub(1, -2), p .. "\0", "", "\2" .. p:sub(2), p:sub(1, 1) .. "\2" .. p:sub(3),
      p:sub(1, 286) .. "\7" .. p:sub(288), p:sub(1, 218) .. "\0\0\0\61" .. p:sub(223) }) do
      local ok, err = u.proof_verify(bad, KEYS)
      assert.is_nil(ok)
      assert.matches("^E[A-Z]+: ", err)
      assert.is_nil(u.proof_decode(bad))
    end
  end)
end)

describe("uptime key rotation across an epoch boundary", function()
  local p2pub, p2sec = wp.ed25519.keypair(("\4"):rep(32))
  local c2pub, c2sec = wp.ed25519.keypair(("\5"):rep(32))
  -- provider rotates at 55 (inside epoch 0), consumer at 65 (inside epoch 1)
  local beats = chain(130, { keys = function(seq)
    return seq >= 55 and p2sec or PSEC, seq >= 55 and p2pub or PPUB, seq >= 65 and c2sec or CSEC
  end })
  local keys = {
    provider = { { first = 0, last = 54, key = PPUB }, { first = 55, key = p2pub } },
    consumer = { { first = 0, last = 64, key = CPUB }, { first = 65, key = c2pub } },
  }

  it("verifies with the key active at each beat", function()
    assert.is_true(u.verify_chain(beats, keys))
    assert.same({ false, "BAD_PROVIDER_SIG", 56 }, { u.verify_chain(beats, KEYS) })
    assert.same({ false, "BAD_CONSUMER_SIG", 66 }, { u.verify_chain(beats, { provider = keys.provider,
      consumer = CPUB }) })
  end)

  it("rolls up and proves beats on both sides of the rotation", function()
    local epochs, claims = assert(u.rollup(beats))
    local enc = assert(u.claim_encode(claims[1], PSEC))
    local p = assert(u.proof_make(beats, 51, epochs, enc))
    assert.is_true(u.proof_verify(p, { provider = PPUB, consumer = CPUB }))
    p = assert(u.proof_make(beats, 71, epochs, enc))
    assert.is_true(u.proof_verify(p, { provider = p2pub, consumer = c2pub, claim = PPUB }))
    assert.same({ false, "BAD_PROVIDER_SIG" }, { u.proof_verify(p, KEYS) })
  end)
end)

describe("uptime VDF hardening", function()
  local T = 64
  local beats = chain(3, { vdf_t = T })

  it("binds the VDF block into both signatures and the hash; XE payload unchanged", function()
    local b = beats[2]
    local v = unhex(b.vdf)
    assert.equal(528, #v)
    assert.equal("WP-VDF01", v:sub(1, 8))
    local payload = u.payload(b)
    assert.equal(LEASE .. ":1:" .. b.timestamp .. ":" .. b.prevHash, payload)
    local psig, csig = unhex(b.providerSig), unhex(b.consumerSig)
    assert.is_true(wp.ed25519.verify(PPUB, sha256(payload .. v), psig))
    assert.is_true(wp.ed25519.verify(CPUB, sha256(payload .. v .. psig), csig))
    assert.equal(hex(sha256(payload .. v .. psig .. csig)), b.hash)
    local d = assert(u.vdf_decode(b.vdf))
    assert.equal(T, d.t)
    assert.is_true(wp.vdf.verify(unhex(b.prevHash), T, unhex(d.y), unhex(d.proof)))
    assert.is_true(u.verify(b, PPUB, CPUB, { vdf_t = T }))
    assert.same({ false, "BAD_FORMAT" }, { u.verify(b, PPUB, CPUB) })
    assert.same({ false, "BAD_VDF" }, { u.verify(b, PPUB, CPUB, { vdf_t = T - 1 }) })
  end)

  it("verifies hardened chains and rejects missing, wrong-delay or wrong-seed VDFs", function()
    assert.is_true(u.verify_chain(beats, KEYS, { vdf_t = T }))
    assert.same({ false, "BAD_FORMAT", 1, "vdf: a VDF block where VDF hardening is off" },
      { u.verify_chain(beats, KEYS) })
    assert.same({ false, "BAD_VDF", 1 }, { u.verify_chain(beats, KEYS, { vdf_t = T + 1 }) })
    assert.same({ false, "BAD_VDF", 1 }, { u.verify_chain(chain(2), KEYS, { vdf_t = T }) })
    -- both parties sign a VDF computed over the wrong seed (precomputed, not sequential)
    local forged = chain(2, { vdf_t = T })
    local b = assert(u.build(LEASE, 2, ts_of(1700000120), forged[2].hash))
    b.vdf = assert(u.vdf_make(ZERO, T))
    u.sign(b, PSEC)
    u.countersign(b, PPUB, CSEC)
    forged[3] = b
    assert.same({ false, "BAD_VDF", 3 }, { u.verify_chain(forged, KEYS, { vdf_t = T }) })
    -- packed form carries the block
    assert.is_true(u.verify_chain(assert(u.pack(beats)), KEYS, { vdf_t = T }))
  end)

  it("proves a hardened beat and flags the claim", function()
    local epochs, claims = assert(u.rollup(beats, { flags = 1 }))
    assert.equal(1, claims[1].flags)
    local enc = assert(u.claim_encode(claims[1], PSEC))
    local p = assert(u.proof_make(beats, 2, epochs, enc))
    assert.is_true(u.proof_verify(p, KEYS, { vdf_t = T }))
    assert.same({ false, "BAD_FORMAT" }, { u.proof_verify(p, KEYS) })
    assert.same({ false, "BAD_VDF" }, { u.proof_verify(p, KEYS, { vdf_t = T * 2 }) })
  end)
end)

describe("uptime rotation records and attestations", function()
  local rec = {
    leaseId = LEASE, party = "consumer", index = 2, newKey = hex(PPUB), effectiveSequence = 258,
    prevHash = ("ab"):rep(32), reason = "forced",
  }

  it("lays out the 127 canonical bytes", function()
    local b = assert(u.rotation_bytes(rec))
    assert.equal(127, #b)
    assert.equal("WP-UPTIME-ROTATE" .. unhex(LEASE) .. "\2" .. "\0\0\0\2" .. PPUB .. "\1"
      .. "\0\0\0\0\0\0\1\2" .. unhex(("ab"):rep(32)) .. "\3", b)
    assert.equal(hex(sha256(b)), u.rotation_hash(rec))
    local r2 = copy(rec)
    r2.effectiveSequence, r2.effectiveTimestamp = nil, "4328719365"
    assert.equal("\2\0\0\0\1\2\3\4\5", assert(u.rotation_bytes(r2)):sub(86, 94))
  end)

  it("signs and verifies with the signer's key", function()
    local r = copy(rec)
    assert.equal(r, u.rotation_sign(r, CSEC))
    assert.is_true(u.rotation_verify(r, CPUB))
    assert.is_false(u.rotation_verify(r, PPUB))
    r.index = 3
    assert.is_false(u.rotation_verify(r, CPUB))
  end)

  it("refuses malformed records with nil, err", function()
    for field, v in pairs({ party = "both", reason = "whim", newKey = "00", index = -1, leaseId = 5 }) do
      local r = copy(rec)
      r[field] = v
      local ok, err = u.rotation_bytes(r)
      assert.is_nil(ok, field)
      assert.matches("^EINVAL: rotation record " .. field, err)
    end
    local r = copy(rec)
    r.effectiveTimestamp = "5"
    assert.matches("exactly one of", select(2, u.rotation_hash(r)))
    r = copy(rec)
    r.signature = "zz"
    assert.matches("^EINVAL: rotation record signature", select(2, u.rotation_verify(r, CPUB)))
  end)

  it("attestation digest is XE's SHA-256(leaseId || BE64(timestamp_ns))", function()
    assert.equal(sha256(unhex(LEASE) .. "\0\0\0\1\2\3\4\5"), u.attestation_digest(LEASE, "4328719365"))
    assert.equal(sha256(unhex(LEASE) .. "\0\0\0\1\2\3\4\5"), u.attestation_digest(LEASE, 4328719365))
    local a = assert(u.attest(LEASE, "1700000000000000000", PSEC))
    assert.equal("1700000000000000000", a.timestamp_ns)
    assert.equal(hex(PPUB), a.signer)
    assert.equal(128, #a.sig)
    assert.is_true(u.attestation_verify(a, LEASE))
    assert.is_false(u.attestation_verify(a, ("22"):rep(32)))
    a.timestamp_ns = "1700000000000000001"
    assert.is_false(u.attestation_verify(a, LEASE))
    a.sig = "00"
    assert.matches("^EINVAL", select(2, u.attestation_verify(a, LEASE)))
  end)

  it("exposes constants and reason names", function()
    assert.equal(60, u.EPOCH_BEATS)
    assert.equal(24, u.CLAIM_EPOCHS)
    assert.equal(194, u.CLAIM_LEN)
    assert.equal(ZERO, u.ZERO_HASH)
    assert.same({ "BAD_FORMAT", "LEASE_MISMATCH", "BAD_SEQUENCE", "BROKEN_LINK", "NO_PROVIDER_KEY",
      "NO_CONSUMER_KEY", "BAD_PROVIDER_SIG", "BAD_CONSUMER_SIG", "BAD_HASH", "BAD_VDF", "BAD_EPOCH_PATH",
      "BAD_CLAIM_PATH", "BAD_EPOCH", "BAD_CLAIM_SIG" }, u.reasons)
  end)
end)

describe("uptime binding (workproof.core.uptime: bytes and plain values only)", function()
  local C = require("workproof.core").uptime
  local L32, Z32 = ("\17"):rep(32), ("\0"):rep(32)

  it("is not the public wp.uptime, which keeps the JSON shapes in Lua", function()
    assert.is_not.equal(C, u)
    assert.is_nil(u.beat_pack)
    assert.is_function(C.beat_pack)
  end)

  it("round-trips timestamps through 8 bytes around 2^53 and at INT64_MAX", function()
    local function packed(ts)
      local b = assert(u.build(LEASE, 0, ts))
      u.sign(b, PSEC)
      return assert(u.pack({ assert(u.countersign(b, PPUB, CSEC)) }))
    end
    for _, ts in ipairs({ "0", "1", "9007199254740991", "9007199254740992", "9007199254740993",
      "1700000000123456789", "4294967296", "4294967295", "18446744073", "9223372036854775807" }) do
      assert.equal(ts, assert(u.unpack(packed(ts)))[1].timestamp)
    end
    assert.equal("\127\255\255\255\255\255\255\255", select(3, C.beat_unpack(packed("9223372036854775807"))))
    assert.equal("\0\0\0\1\0\0\0\0", select(3, C.beat_unpack(packed(4294967296))))
  end)

  it("raises for wrong lengths and types, answers nil, err for malformed bytes", function()
    assert.has_error(function() C.beat_pack(L32:sub(2), 0, Z32:sub(1, 8), Z32) end)
    assert.has_error(function() C.beat_pack(L32, 1.5, Z32:sub(1, 8), Z32) end)
    assert.has_error(function() C.beat_pack(L32, 0, "\128" .. Z32:sub(1, 7), Z32) end)
    assert.has_error(function() C.verify_chain("", "short", "", 0, 0) end)
    local packed = C.beat_pack(L32, 0, Z32:sub(1, 8), Z32)
    assert.equal(C.PACKED_LEN, #packed)
    assert.matches("^ETRUNC", select(2, C.beat_unpack(packed:sub(1, -2))))
    assert.matches("^EINVAL", select(2, C.payload(packed .. "\0")))
    assert.matches("^ETRUNC", select(2, C.count(packed .. packed:sub(1, 10))))
    assert.equal(2, C.count(packed .. packed))
  end)

  it("parses epoch records strictly", function()
    local rec = assert(C.epoch_pack(L32, 1, 60, Z32, Z32))
    assert.same({ L32, 1, 60, 60, Z32, Z32, sha256(rec) }, { C.epoch_unpack(rec) })
    local function set(i, b) return rec:sub(1, i - 1) .. b .. rec:sub(i + #b) end
    for _, c in ipairs({
      { rec:sub(1, -2), "^ETRUNC" }, { rec .. "\0", "^EINVAL" }, { "", "^ETRUNC" },
      { set(1, "X"), "^EINVAL" },                         -- tag
      { set(65, "\0\0\0\0"), "^EPROTO" },                 -- count 0
      { set(65, "\0\0\0\61"), "^EPROTO" },                -- count 61
      { set(57, "\0\0\0\0\0\0\0\59"), "^EPROTO" },        -- firstSequence != index * 60
      { set(49, "\255\255\255\255\255\255\255\255"), "^EPROTO" }, -- index * 60 overflows
    }) do
      assert.is_nil((C.epoch_unpack(c[1])))
      assert.matches(c[2], select(2, C.epoch_unpack(c[1])))
    end
    assert.matches("^ERANGE", select(2, C.epoch_pack(L32, 0, 0, Z32, Z32)))
    assert.has_error(function() C.claim_make(rec:sub(2), 0, Z32:sub(1, 8), Z32:sub(1, 8), 0) end)
  end)
end)
