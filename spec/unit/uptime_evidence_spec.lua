-- SPDX-License-Identifier: MIT
-- Dispute evidence (workproof.uptime.evidence): each kind made from what an
-- agent keeps, checked against a posted claim and the lease's keys; what
-- proves a fault and what does not; malformed bytes refused with a reason,
-- never an exception.
-- (#host: the evidence module checks answers with the host's challenge code)
local wp = require "workproof"
local h = require "helpers"
local ev, chal

local u = wp.uptime
local SZ = { epoch_beats = 5, claim_epochs = 2 }

local function keypair(tag)
  local pub, sk = wp.ed25519.keypair(wp.sha256(tag))
  return wp.hex(pub), sk
end
local P, PSK = keypair("provider")
local C, CSK = keypair("consumer")
local LEASE = wp.hex(wp.sha256("lease"))
local KEYS = { provider = { { first = 0, key = P } }, consumer = { { first = 0, key = C } } }

-- 20 dual-signed beats (two claims of two 5-beat epochs); `bad`: that
-- beat's consumer signature is garbage
local function chain(bad)
  local beats, prev = {}, nil
  for i = 0, 19 do
    local b = assert(u.build(LEASE, i, ("17000000%02d000000000"):format(i), prev))
    assert(u.sign(b, PSK))
    assert(u.countersign(b, P, CSK))
    if bad == i then b.consumerSig = ("ab"):rep(64) b.hash = u.hash(b) end
    beats[#beats + 1] = b
    prev = b.hash
  end
  local epochs, claims = u.rollup(beats, SZ)
  return { beats = beats, epochs = epochs, claims = claims,
    enc = { assert(u.claim_encode(claims[1], PSK)), assert(u.claim_encode(claims[2], PSK)) } }
end

local function ctx(c, claim)
  return { lease = LEASE, epoch_beats = 5, claim_epochs = 2, claim = claim or c.enc[2], prev_claim = c.enc[1],
    keys = KEYS, identity = P }
end

local function check(bytes, cx)
  local r, err = ev.check(bytes, cx)
  assert.is_table(r, err)
  return r
end

describe("uptime dispute evidence #host", function()
  ev, chal = require "workproof.uptime.evidence", require "workproof.uptime.challenge"
  local good, bad = chain(), chain(13)

  it("INVALID_BEAT: a proof of a beat in the posted claim that the consumer never signed", function()
    local e = ev.invalid_beat(assert(u.proof_make(bad.beats, 14, { bad.epochs[3], bad.epochs[4] }, bad.enc[2], SZ)))
    local r = check(e, ctx(bad))
    assert.is_true(r.proven)
    assert.equal("BAD_CONSUMER_SIG", r.reason)
    -- a dual-signed beat proves nothing; a proof against another claim neither
    local ok = ev.invalid_beat(assert(u.proof_make(bad.beats, 12, { bad.epochs[3], bad.epochs[4] }, bad.enc[2], SZ)))
    assert.same({ false, "VALID_BEAT" }, { check(ok, ctx(bad)).proven, check(ok, ctx(bad)).reason })
    assert.equal("NOT_THE_POSTED_CLAIM", check(e, ctx(bad, good.enc[2])).reason)
    -- under other sizes
    assert.equal("WRONG_SIZES", check(e, { lease = LEASE, claim = bad.enc[2], keys = KEYS }).reason)
  end)

  it("EQUIVOCATION: two beats, one sequence, one key; not one beat twice, nor another key's", function()
    local b = good.beats
    local other = assert(u.build(LEASE, 7, "1700000007500000000", b[7].hash))
    assert(u.sign(other, PSK))   -- never countersigned: the packed form carries zeros there
    local r = check(ev.equivocation(b[8], other), ctx(good))
    assert.is_true(r.proven)
    assert.equal("SAME_BEAT", check(ev.equivocation(b[8], b[8]), ctx(good)).reason)
    assert.equal("DIFFERENT_SEQUENCES", check(ev.equivocation(b[8], b[9]), ctx(good)).reason)
    local _, xsk = keypair("someone else")
    local forged = assert(u.build(LEASE, 7, "1700000007500000000", b[7].hash))
    assert(u.sign(forged, xsk))
    assert.equal("NOT_SIGNED", check(ev.equivocation(b[8], forged), ctx(good)).reason)
    -- a key revoked from 5 on is not the provider's at 7
    local cx = ctx(good)
    cx.keys = { provider = { { first = 0, last = 4, key = P, revokedFrom = 5 }, { first = 5, key = C } },
      consumer = KEYS.consumer }
    assert.is_false(check(ev.equivocation(b[8], other), cx).proven)
  end)

  it("CHALLENGE_FAILED: the provider's own signed wrong answer; a right or a forged one proves nothing", function()
    local ch = { kind = "compute", nonce = chal.nonce(), params = { t = 1000 }, scope = LEASE }
    local right = assert(chal.answer(ch))
    local wrong = {}
    for k, v in pairs(right) do wrong[k] = v end
    wrong.result = { y = ("00"):rep(#right.result.y / 2), proof = right.result.proof }
    chal.sign(chal.ANSWER, right, PSK, P)
    chal.sign(chal.ANSWER, wrong, PSK, P)
    local r = check(ev.challenge_failed(ch, wrong), ctx(good))
    assert.is_true(r.proven)
    assert.equal("BAD_VDF", r.reason)
    assert.equal("CORRECT_ANSWER", check(ev.challenge_failed(ch, right), ctx(good)).reason)
    local other = {}
    for k, v in pairs(ch) do other[k] = v end
    other.nonce = chal.nonce()
    assert.is_false(check(ev.challenge_failed(other, wrong), ctx(good)).proven, "an answer to another challenge")
    local _, xsk = keypair("x")
    local xwrong = chal.sign(chal.ANSWER, wrong, xsk, keypair("x"))
    assert.equal("NOT_THE_PROVIDER", check(ev.challenge_failed(ch, xwrong), ctx(good)).reason)
    ch.scope = ("22"):rep(32)
    assert.equal("NOT_THIS_LEASE", check(ev.challenge_failed(ch, wrong), ctx(good)).reason)
  end)

  it("CLAIM_MISMATCH: a second signed claim, or the dual-signed chain against the posted claim", function()
    local c1 = {}
    for k, v in pairs(good.claims[2]) do c1[k] = v end
    c1.root = ("77"):rep(32)
    local posted = assert(u.claim_encode(c1, PSK))
    local r = check(ev.claim_pair(good.enc[2]), ctx(good, posted))
    assert.same({ true, "TWO_CLAIMS" }, { r.proven, r.reason })
    assert.equal("SAME_CLAIM", check(ev.claim_pair(good.enc[2]), ctx(good)).reason)
    local seg = {}
    for i = 11, 20 do seg[#seg + 1] = good.beats[i] end
    local path = assert(wp.merkle.inclusion_proof({ wp.unhex(good.epochs[1].hash), wp.unhex(good.epochs[2].hash) }, 1))
    local hp = {}
    for i, x in ipairs(path) do hp[i] = wp.hex(x) end
    local e = ev.claim_chain(seg, good.epochs[2].hash, hp)
    local rr = check(e, ctx(good, posted))
    assert.same({ true, "CLAIM_CONTRADICTS_CHAIN" }, { rr.proven, rr.reason })
    assert.matches("^root", rr.detail)
    assert.equal("CLAIM_MATCHES_CHAIN", check(e, ctx(good)).reason)
    -- a wrong previous epoch cannot make an honest claim look false
    local e2 = ev.claim_chain(seg, ("55"):rep(32), hp)
    assert.equal("BAD_PREV_EPOCH_PATH", check(e2, ctx(good)).reason)
    -- beats with a hole are not the claim's range
    local holed = {}
    for i = 11, 19 do holed[#holed + 1] = good.beats[i] end
    local short = ev.claim_chain(holed, good.epochs[2].hash, hp)
    assert.equal("NOT_THE_CLAIMS_RANGE", check(short, ctx(good, posted)).reason)
  end)

  it("OVERCOMMITTED: the provider's signed attestation over capacity, or not listing the lease", function()
    local function att(leases)
      return chal.sign(chal.CAPACITY, { capacity = { vcpus = 2, memory_mb = 4096 }, leases = leases, at = 1 }, PSK, P)
    end
    local over = att({ { id = LEASE, share = { vcpus = 2 } }, { id = ("33"):rep(32), share = { vcpus = 1 } } })
    local r = check(ev.overcommitted(over), ctx(good))
    assert.is_true(r.proven)
    assert.matches("^OVERCOMMITTED: vcpus", r.reason)
    assert.equal("LEASE_NOT_LISTED", check(ev.overcommitted(att({ { id = ("33"):rep(32), share = { vcpus = 1 } } })),
      ctx(good)).reason)
    assert.equal("WITHIN_CAPACITY", check(ev.overcommitted(att({ { id = LEASE, share = { vcpus = 2 } } })),
      ctx(good)).reason)
    over.capacity.vcpus = 64   -- edited after signing
    assert.equal("NOT_SIGNED", check(ev.overcommitted(over), ctx(good)).reason)
  end)

  it("malformed bytes: nil and a reason naming what is wrong, never an exception", function()
    local proof = assert(u.proof_make(good.beats, 14, { good.epochs[3], good.epochs[4] }, good.enc[2], SZ))
    local pair = ev.equivocation(good.beats[8], good.beats[9])
    for _, case in ipairs({
      { "", "^ETRUNC" }, { "\1", "^ETRUNC" }, { "\2\1xx", "^EPROTO: evidence version" },
      { "\1\9xx", "^EPROTO: unknown evidence kind" }, { "\1\0xx", "^EPROTO: unknown evidence kind" },
      { ev.invalid_beat(proof:sub(1, 100)), "^E" },
      { pair:sub(1, 200), "^ETRUNC" }, { pair .. "x", "^EINVAL" }, { "\1\2\0\5abc", "^ETRUNC" },
      { "\1\3not json", "^EINVAL" }, { "\1\3[1,2]", "^EINVAL" }, { '\1\3{"challenge":1}', "^EINVAL" },
      { "\1\5{}", "^EINVAL" }, { "\1\4\1" .. ("x"):rep(100), "^EINVAL" }, { "\1\4\9", "^EPROTO" },
      { "\1\4\2\0" .. ("x"):rep(32), "^EINVAL: claim chain: no beats" }, { "\1\4\2\5xx", "^ETRUNC" },
      { "\1\1" .. ("x"):rep(70000), "^EINVAL: evidence longer" },
    }) do
      local r, err = ev.check(case[1], ctx(good))
      assert.is_nil(r, case[2])
      assert.matches(case[2], err)
    end
    -- thousands of random byte strings and mutations of real evidence: a
    -- result or nil and a reason, nothing raised
    local rng = h.rng(42)
    local seeds = { proof, pair, ev.claim_pair(good.enc[1]), ev.overcommitted({ capacity = {}, leases = {} }) }
    for i = 1, 3000 do
      local s = seeds[i % #seeds + 1]
      local bytes = {}
      for j = 1, #s do bytes[j] = s:sub(j, j) end
      for _ = 1, rng(4) do
        local at = rng(#bytes)
        bytes[at] = string.char(rng(256) - 1)
      end
      local cut = table.concat(bytes):sub(1, rng(#s + 8))
      local ok, r, err = pcall(ev.check, i % 7 == 0 and cut:sub(1, 2) .. ("\0"):rep(rng(40)) or cut, ctx(good))
      assert.is_true(ok, tostring(r))
      assert.is_true(type(r) == "table" or type(err) == "string")
    end
  end)
end)
