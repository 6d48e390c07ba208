-- SPDX-License-Identifier: MIT
-- wp.uptime with epoch and claim sizes as parameters (docs/uptime.md
-- sections 2-5): E beats per epoch (opts.epoch_beats, 1 .. 60, default 60)
-- and K epochs per claim (opts.claim_epochs, 1 .. 24, default 24). For each
-- (E, K): a signed chain rolled up in one go and as an agent does (one
-- epoch_make per E beats, one claim_make per K epochs), the epoch and claim
-- fields and links, disclosure proofs, tampering, and sizes that do not
-- match; then the rules the decoders follow when they are not told the sizes.
local wp = require "workproof"
local h = require "helpers"

local u = wp.uptime
local C = require("workproof.core").uptime
local hex, unhex, sha256 = wp.hex, h.unhex, wp.sha256

-- RFC 8032 section 7.1 test keys 1 and 2 (as in uptime_spec)
local PPUB, PSEC = wp.ed25519.keypair(unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
local CPUB, CSEC = wp.ed25519.keypair(unhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
local KEYS = { provider = PPUB, consumer = CPUB }
local LEASE = ("11"):rep(32)
local ZERO = ("0"):rep(64)

-- a signed chain of n beats from sequence 0, one a minute
local function chain(n)
  local beats, prev = {}, nil
  for seq = 0, n - 1 do
    local b = assert(u.build(LEASE, seq, ("%d123456789"):format(1700000000 + seq * 60), prev))
    assert(u.sign(b, PSEC))
    assert(u.countersign(b, PPUB, CSEC))
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

-- byte `off` (1-based) of s plus one
local function bump(s, off)
  return s:sub(1, off - 1) .. string.char((s:byte(off) + 1) % 256) .. s:sub(off + 1)
end

local function root_of(hexes)
  local leaves = {}
  for i, x in ipairs(hexes) do leaves[i] = unhex(x) end
  return hex(wp.merkle.root(leaves))
end

-- sizes that differ from (E, K) in E, and in K
local function other_e(E, K) return { epoch_beats = E == 60 and 5 or 60, claim_epochs = K } end
local function other_k(E, K) return { epoch_beats = E, claim_epochs = K == 1 and 2 or 1 } end

-- { E, K, beats }: two or more claims, the last partial where it can be
-- (with a partial last epoch where E > 1)
local CASES = {
  { 5, 2, 37 },      -- claims 10 10 10 7 (epochs 5 5 | 5 5 | 5 5 | 5 2): the demo's sizes
  { 1, 1, 4 },       -- every beat an epoch, every epoch a claim
  { 60, 24, 1530 },  -- the defaults: one day and 90 beats
  { 7, 3, 52 },      -- claims 21 21 10 (epochs 7 7 7 | 7 7 7 | 7 3)
  { 60, 1, 145 },    -- claims 60 60 25
}

for _, case in ipairs(CASES) do
  local E, K, N = case[1], case[2], case[3]
  local S = { epoch_beats = E, claim_epochs = K }
  local default = E == 60 and K == 24
  local span = E * K

  describe(("uptime sizes E=%d K=%d (%d beats)"):format(E, K, N), function()
    local beats = chain(N)
    local epochs, claims = assert(u.rollup(beats, S))
    local encs = {}
    for c = 1, #claims do encs[c] = assert(u.claim_encode(claims[c], PSEC)) end

    it("rolls up into epochs of E beats: index, firstSequence, count, root, prevEpochHash", function()
      assert.equal(math.ceil(N / E), #epochs)
      for i, e in ipairs(epochs) do
        local first = (i - 1) * E
        assert.equal(i - 1, e.index)
        assert.equal(first, e.firstSequence)
        assert.equal(math.min(E, N - first), e.count)
        local hs = {}
        for j = 1, e.count do hs[j] = beats[first + j].hash end
        assert.equal(root_of(hs), e.root)
        assert.equal(i == 1 and ZERO or epochs[i - 1].hash, e.prevEpochHash)
        local rec = assert(u.epoch_record(e, S))
        assert.equal(hex(sha256(rec)), e.hash)
        assert.equal(e.hash, u.epoch_hash(e))
        -- the record carries firstSequence = index * E explicitly
        assert.equal(("\0"):rep(4) .. string.char(0, 0, math.floor(first / 256), first % 256), rec:sub(57, 64))
      end
    end)

    it("rolls up into claims of K epochs: index, firstSequence, beatCount, period, root, prevClaimHash", function()
      assert.equal(math.ceil(N / span), #claims)
      for c, cl in ipairs(claims) do
        local first = (c - 1) * span
        local count = math.min(span, N - first)
        assert.equal(c - 1, cl.index)
        assert.equal(first, cl.firstSequence)
        assert.equal(count, cl.beatCount)
        assert.equal(math.ceil(count / E), cl.epochs)
        assert.equal(beats[first + 1].timestamp, cl.periodStart)
        assert.equal(beats[first + count].timestamp, cl.periodEnd)
        local hs = {}
        for k = 1, cl.epochs do hs[k] = epochs[(c - 1) * K + k].hash end
        assert.equal(root_of(hs), cl.root)
        assert.equal(c == 1 and ZERO or claims[c - 1].hash, cl.prevClaimHash)
        assert.equal(194, #encs[c])
        assert.is_true(u.claim_verify(encs[c], PPUB))
      end
    end)

    it("decodes its claims with the sizes, and without them (any sizes' claim decodes)", function()
      for c, cl in ipairs(claims) do
        local dec = assert(u.claim_decode(encs[c], S))
        assert.equal(hex(encs[c]:sub(131)), dec.signature)
        dec.signature = nil
        assert.same(cl, dec)
        local any = assert(u.claim_decode(encs[c]))
        for _, f in ipairs({ "index", "firstSequence", "beatCount", "root", "prevClaimHash", "hash" }) do
          assert.equal(cl[f], any[f], f)
        end
        -- a table round-trips to the same bytes, firstSequence included
        assert.equal(encs[c], assert(u.claim_encode(dec, PSEC)))
        assert.equal(cl.hash, u.claim_hash(any))
      end
    end)

    it("is what an agent gets from epoch_make every E beats and claim_make every K epochs", function()
      local es, cs, prev_claim = {}, {}, nil
      for i = 0, math.ceil(N / E) - 1 do
        local hs = {}
        for j = i * E + 1, math.min(N, (i + 1) * E) do hs[#hs + 1] = beats[j].hash end
        local e = assert(u.epoch_make(LEASE, i, hs, es[i] and es[i].hash or nil, { epoch_beats = E }))
        es[i + 1] = e
      end
      assert.same(epochs, es)
      -- at genesis opts may stand where prev_epoch_hash would
      local hs1 = {}
      for j = 1, epochs[1].count do hs1[j] = beats[j].hash end
      assert.same(epochs[1], u.epoch_make(LEASE, 0, hs1, { epoch_beats = E }))
      for c = 0, #claims - 1 do
        local part = {}
        for k = c * K + 1, math.min(#es, (c + 1) * K) do part[#part + 1] = es[k] end
        local first = c * span + 1
        local last = first + claims[c + 1].beatCount - 1
        local made = assert(u.claim_make(part, { index = c, period_start = beats[first].timestamp,
          period_end = beats[last].timestamp, prev_claim_hash = prev_claim, epoch_beats = E, claim_epochs = K }))
        cs[c + 1] = made
        prev_claim = made.hash
      end
      assert.same(claims, cs)
    end)

    it("proves beats up to the signed claims; the proof carries the sizes unless they are the defaults", function()
      local seqs = { 0, N - 1, math.floor(N / 2), E - 1, math.min(N - 1, span), math.min(N - 1, span + E) }
      for _, seq in ipairs(seqs) do
        local c = math.floor(seq / span) + 1
        local p = assert(u.proof_make(beats, seq + 1, epochs, encs[c], S))
        assert.is_true(u.proof_verify(p, KEYS, S), "beat " .. seq)
        local d = assert(u.proof_decode(p))
        assert.same(beats[seq + 1], d.beat)
        assert.same(epochs[math.floor(seq / E) + 1], d.epoch)
        assert.equal(claims[c].root, d.claim.root)
        assert.equal(not default and E or nil, d.epochBeats)
        assert.equal(not default and K or nil, d.claimEpochs)
        assert.equal(2 + 208 + (default and 0 or 2) + 76 + 1 + 32 * #d.epochPath + 1 + 32 * #d.claimPath + 194, #p)
        assert.equal(default and 0 or 2, p:byte(2))
        if not default then assert.equal(string.char(E, K), p:sub(211, 212)) end
      end
    end)

    it("rejects tampered proofs", function()
      local seq = math.min(N - 1, span + 1)
      local c = math.floor(seq / span) + 1
      local p = assert(u.proof_make(beats, seq + 1, epochs, encs[c], S))
      local sz = default and 0 or 2
      local function check(off, why)
        assert.same({ false, why }, { u.proof_verify(bump(p, off), KEYS, S) }, "offset " .. off)
      end
      check(83, "BAD_PROVIDER_SIG")                 -- providerSig
      check(147, "BAD_CONSUMER_SIG")                -- consumerSig
      check(2 + 208 + sz + 12 + 1, "BAD_EPOCH_PATH") -- epoch root
      check(2 + 208 + sz + 44 + 1, "BAD_CLAIM_PATH") -- prevEpochHash: another epoch hash
      check(#p - 194 + 67, "BAD_CLAIM_PATH")        -- claim root
      check(#p, "BAD_CLAIM_SIG")                    -- claim signature
      -- a path hash, where there is one
      local d = assert(u.proof_decode(p))
      if #d.epochPath > 0 then check(2 + 208 + sz + 76 + 2, "BAD_EPOCH_PATH") end
      if #d.claimPath > 0 then check(#p - 194 - 32 * #d.claimPath + 1, "BAD_CLAIM_PATH") end
      -- the sizes are bound: another E or K in the proof is refused
      if not default then
        for _, off in ipairs({ 211, 212 }) do
          local t = bump(p, off)
          assert.is_not_true(u.proof_verify(t, KEYS, S))
          if t:byte(211) <= 60 and t:byte(212) <= 24 then
            local ok, err = u.proof_verify(t, KEYS, { epoch_beats = t:byte(211), claim_epochs = t:byte(212) })
            assert.is_not_true(ok)
            if ok == nil then assert.matches("^E[A-Z]+: ", err) end
          end
        end
      end
    end)

    it("refuses mismatched sizes with a clear error", function()
      local p = assert(u.proof_make(beats, 1, epochs, encs[1], S))
      for _, wrong in ipairs({ other_e(E, K), other_k(E, K) }) do
        local ok, err = u.proof_verify(p, KEYS, wrong)
        assert.is_nil(ok)
        assert.matches(("^EPROTO: the proof is for %d%%-epoch claims of %d%%-beat epochs, expected"):format(K, E), err)
      end
      if not default then
        -- the defaults are sizes too
        local ok, err = u.proof_verify(p, KEYS)
        assert.is_nil(ok)
        assert.matches("expected 24%-epoch claims of 60%-beat epochs", err)
      end
      -- the second claim under other sizes: claim_decode, claim_make, proof_make
      local es2 = {}
      for k = K + 1, math.min(#epochs, 2 * K) do es2[#es2 + 1] = epochs[k] end
      for _, wrong in ipairs({ other_e(E, K), other_k(E, K) }) do
        local ok, err = u.claim_decode(encs[2], wrong)
        assert.is_nil(ok)
        assert.matches("^EPROTO: the claim is not one of %d+%-epoch claims of %d+%-beat epochs", err)
        local o = copy(wrong)
        o.index, o.period_start, o.period_end = 1, claims[2].periodStart, claims[2].periodEnd
        o.prev_claim_hash = claims[1].hash
        ok, err = u.claim_make(es2, o)
        assert.is_nil(ok)
        assert.matches("^E[A-Z]+: .*epoch", err)
        ok, err = u.proof_make(beats, span + 1, epochs, encs[2], wrong)
        assert.is_nil(ok)
        assert.matches("^E[A-Z]+: ", err)
      end
      -- an epoch of E + 1 beats, where E < 60
      if E < 60 then
        local hs = {}
        for j = 1, E + 1 do hs[j] = beats[j].hash end
        local ok, err = u.epoch_make(LEASE, 0, hs, nil, S)
        assert.is_nil(ok)
        assert.matches(("^ERANGE: an epoch of %d%%-beat epochs holds 1 .. %d beats, got %d"):format(E, E, E + 1), err)
        local e = copy(epochs[2])
        assert.matches("^EPROTO: epoch 1 %(index 1%) has firstSequence " .. E .. ", not index %* 60",
          select(2, u.epoch_record(e, { epoch_beats = 60 })))
      end
      -- a roll-up must start on a claim boundary of these sizes
      if span > 1 then
        local ok, err = u.rollup({ unpack(beats, 2) }, S)
        assert.is_nil(ok)
        assert.matches(("^EINVAL: beats must be consecutive from a multiple of %d"):format(span), err)
      end
    end)
  end)
end

describe("uptime sizes: defaults", function()
  local beats = chain(130)

  it("explicit 60 / 24 is byte for byte the default roll-up, claim and proof", function()
    local e1, c1 = assert(u.rollup(beats))
    local e2, c2 = assert(u.rollup(beats, { epoch_beats = 60, claim_epochs = 24 }))
    assert.same(e1, e2)
    assert.same(c1, c2)
    local enc = assert(u.claim_encode(c1[1], PSEC))
    local p1 = assert(u.proof_make(beats, 70, e1, enc))
    local p2 = assert(u.proof_make(beats, 70, e2, enc, { epoch_beats = 60, claim_epochs = 24 }))
    assert.equal(p1, p2)
    assert.equal(0, p1:byte(2))
    assert.is_true(u.proof_verify(p1, KEYS, { epoch_beats = 60, claim_epochs = 24 }))
    assert.is_nil(u.proof_decode(p1).epochBeats)
    -- sizes written out although they are the defaults: not the one encoding
    local padded = p1:sub(1, 1) .. "\2" .. p1:sub(3, 210) .. "\60\24" .. p1:sub(211)
    assert.matches("^EINVAL", select(2, u.proof_verify(padded, KEYS)))
    assert.is_nil(u.proof_decode(padded))
  end)

  it("refuses malformed sizes everywhere with a clear error", function()
    local e, c = assert(u.rollup(beats))
    local enc = assert(u.claim_encode(c[1], PSEC))
    local p = assert(u.proof_make(beats, 1, e, enc))
    local hs = { beats[1].hash }
    local calls = {
      rollup = function(o) return u.rollup(beats, o) end,
      epoch_make = function(o) return u.epoch_make(LEASE, 0, hs, nil, o) end,
      claim_make = function(o)
        o.period_start, o.period_end = "1", "2"
        return u.claim_make({ e[1] }, o)
      end,
      claim_decode = function(o) return u.claim_decode(enc, o) end,
      proof_make = function(o) return u.proof_make(beats, 1, e, enc, o) end,
      proof_verify = function(o) return u.proof_verify(p, KEYS, o) end,
      epoch_record = function(o) return u.epoch_record(e[1], o) end,
    }
    for name, call in pairs(calls) do
      for _, v in ipairs({ 0, 61, 2.5, -1, "5", true }) do
        local ok, err = pcall(call, { epoch_beats = v })
        assert.is_false(ok, name .. " epoch_beats=" .. tostring(v))
        assert.matches(name .. ": opts.epoch_beats: expected an integer 1 .. 60", err, 1, true)
      end
      if name ~= "epoch_record" then
        for _, v in ipairs({ 0, 25, 1.5, -3, "2" }) do
          local ok, err = pcall(call, { claim_epochs = v })
          assert.is_false(ok, name .. " claim_epochs=" .. tostring(v))
          assert.matches(name .. ": opts.claim_epochs: expected an integer 1 .. 24", err, 1, true)
        end
      end
    end
  end)
end)

describe("uptime sizes: what the decoders accept without them", function()
  local L32, Z32 = ("\17"):rep(32), ("\0"):rep(32)

  it("an epoch record is valid for some E in count .. 60: firstSequence = index * E", function()
    -- (index, firstSequence, count, ok)
    for _, c in ipairs({
      { 0, 0, 1, true }, { 0, 0, 60, true }, { 3, 15, 5, true }, { 3, 15, 1, true }, { 7, 7, 1, true },
      { 2, 120, 60, true }, { 3, 15, 6, false }, { 3, 16, 5, false }, { 1, 61, 1, false }, { 0, 1, 1, false },
      { 2, 0, 1, false }, { 5, 5 * 61, 1, false },
    }) do
      local rec, err = C.epoch_pack(L32, c[1], c[3], Z32, Z32, c[2])
      if c[4] then
        assert.truthy(rec, table.concat(c, " ", 1, 3))
        assert.same({ L32, c[1], c[2], c[3], Z32, Z32, sha256(rec) }, { C.epoch_unpack(rec) })
      else
        assert.is_nil(rec, table.concat(c, " ", 1, 3))
        assert.matches("^EPROTO: firstSequence must be index %* E", err)
      end
    end
    -- an epoch table says so in its own words
    local t = { leaseId = LEASE, index = 3, firstSequence = 16, count = 5, root = ZERO, prevEpochHash = ZERO }
    assert.matches("^EINVAL: epoch firstSequence: expected index %* E", select(2, u.epoch_record(t)))
    t.firstSequence = 15
    assert.truthy(u.epoch_record(t))
    assert.truthy(u.epoch_record(t, { epoch_beats = 5 }))
    assert.matches("^EPROTO", select(2, u.epoch_record(t, { epoch_beats = 6 })))
  end)

  it("a claim is valid for some E, K: firstSequence = index * K * E, beatCount <= K * E", function()
    local base = { version = 1, flags = 0, leaseId = LEASE, periodStart = "1", periodEnd = "2", root = ZERO,
      prevClaimHash = ZERO }
    -- (index, firstSequence, beatCount, ok)
    for _, c in ipairs({
      { 0, 0, 1, true }, { 0, 0, 1440, true }, { 1, 10, 10, true }, { 2, 20, 7, true }, { 3, 3, 1, true },
      { 2, 124, 62, true },     -- 62 = 31 * 2
      { 1, 1440, 1440, true }, { 1, 61, 61, false },     -- 61: no E <= 60, K <= 24 multiply to it
      { 2, 2 * 1441, 1, false }, { 1, 10, 11, false }, { 2, 21, 1, false }, { 0, 5, 1, false },
      { 0, 0, 1441, false },
    }) do
      local t = copy(base)
      t.index, t.firstSequence, t.beatCount = c[1], c[2], c[3]
      local enc, err = u.claim_encode(t, PSEC)
      if c[4] then
        assert.truthy(enc, table.concat(c, " ", 1, 3))
        local d = assert(u.claim_decode(enc))
        assert.same({ c[1], c[2], c[3] }, { d.index, d.firstSequence, d.beatCount })
      else
        assert.is_nil(enc, table.concat(c, " ", 1, 3))
        assert.matches("^E[A-Z]+: ", err)
      end
    end
    -- with the sizes, exactly those
    local t = copy(base)
    t.index, t.firstSequence, t.beatCount = 1, 10, 7
    local enc = assert(u.claim_encode(t, PSEC))
    assert.equal(2, assert(u.claim_decode(enc, { epoch_beats = 5, claim_epochs = 2 })).epochs)
    assert.equal(1, assert(u.claim_decode(enc, { epoch_beats = 10, claim_epochs = 1 })).epochs)
    assert.matches("^EPROTO", select(2, u.claim_decode(enc, { epoch_beats = 5, claim_epochs = 1 })))
    assert.matches("^EPROTO", select(2, u.claim_decode(enc, {})))
  end)
end)
