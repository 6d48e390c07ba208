-- SPDX-License-Identifier: MIT
--- Dispute evidence (docs/uptime.md section 12): the bytes a disputer puts
-- on chain with UptimeRegistry.openDispute, how they are made from what an
-- agent keeps, and how anyone (the arbiter first) checks them with the
-- core's verifiers against what the registry holds.
--
-- Bytes: version (1) = 1, kind (1), then per kind
--   1 INVALID_BEAT      a disclosure proof (docs/uptime.md section 4) whose claim is the posted one
--   2 EQUIVOCATION      u16 length, packed beat A, u16 length, packed beat B
--   3 CHALLENGE_FAILED  canonical JSON { challenge, answer[, commitment] }: the provider's signed answer
--   4 CLAIM_MISMATCH    form (1) = 1, then another claim of the same index signed by the provider (194);
--                       form (1) = 2, m (1), prevEpochHash (32), m x 32 path hashes, packed beats
--   5 OVERCOMMITTED     canonical JSON { attestation }: the provider's signed capacity attestation
--
-- check(bytes, ctx) -> result | nil, err. ctx = { lease = hex id, epoch_beats, claim_epochs,
-- claim = the posted claim (194 bytes) the dispute names, prev_claim = claim index-1 (bytes, for
-- CLAIM_MISMATCH form 2), keys = { provider = ranges, consumer = ranges } (onchain.keys),
-- identity = the provider's identity key (hex), vdf_t }. result = { proven = bool, kind, reason,
-- detail }: proven means the evidence shows the provider at fault. Malformed bytes: nil, "E...".
local wp = require "workproof"
local cjson = require "cjson.safe"
local challenge = require "workproof.uptime.challenge"
local onchain = require "workproof.uptime.onchain"

local u, merkle = wp.uptime, wp.merkle
local type, ipairs, tostring, byte, char, format = type, ipairs, tostring, string.byte, string.char, string.format

local _M = {}
_M.KIND = onchain.KIND
_M.KIND_NAME = onchain.KIND_NAME
_M.MAX_BYTES = 65536     -- UptimeRegistry.MAX_EVIDENCE_LENGTH

local function u16(n) return char(math.floor(n / 256), n % 256) end
local function rd16(s, i) local a, b = byte(s, i, i + 1) return a * 256 + b end

local function head(kind) return char(1, _M.KIND[kind]) end

-- ---- making evidence --------------------------------------------------------------------

function _M.invalid_beat(proof) return head("INVALID_BEAT") .. proof end

-- a beat as the packed form wants it: one the consumer refused has no
-- consumer signature (zeros stand in; only the provider's is checked)
local function whole(b)
  if b.consumerSig and b.hash then return b end
  local c = {}
  for k, v in pairs(b) do c[k] = v end
  c.consumerSig = c.consumerSig or ("0"):rep(128)
  c.hash = u.hash(c)
  return c
end

--- Two beats (tables) for one sequence.
function _M.equivocation(a, b)
  a, b = whole(a), whole(b)
  local pa, ea = u.pack({ a })
  if not pa then return nil, ea end
  local pb, eb = u.pack({ b })
  if not pb then return nil, eb end
  return head("EQUIVOCATION") .. u16(#pa) .. pa .. u16(#pb) .. pb
end

function _M.challenge_failed(ch, answer, commitment)
  return head("CHALLENGE_FAILED") .. challenge.canon({ challenge = ch, answer = answer, commitment = commitment })
end

--- Another claim (194 bytes) of the same index, signed by the provider.
function _M.claim_pair(other) return head("CLAIM_MISMATCH") .. char(1) .. other end

--- The dual-signed beats of the claim's range, with (for claim index > 0)
-- the previous epoch's hash and its inclusion path in the previous claim.
function _M.claim_chain(beats, prev_epoch_hash, path)
  local packed, err = u.pack(beats)
  if not packed then return nil, err end
  path = path or {}
  local p = {}
  for i, x in ipairs(path) do p[i] = wp.unhex(x) end
  return head("CLAIM_MISMATCH") .. char(2, #p) .. wp.unhex(prev_epoch_hash or ("0"):rep(64)) .. table.concat(p)
    .. packed
end

function _M.overcommitted(att) return head("OVERCOMMITTED") .. challenge.canon({ attestation = att }) end

-- ---- reading evidence -------------------------------------------------------------------

local function unpack_one(s)
  local beats, err = u.unpack(s)
  if not beats then return nil, err end
  if #beats ~= 1 then return nil, "EPROTO: expected one packed beat, got " .. #beats end
  return beats[1]
end

--- Decode evidence bytes into { kind, ... } | nil, "E...: why".
function _M.decode(s)
  if type(s) ~= "string" or #s < 3 then return nil, "ETRUNC: evidence shorter than 3 bytes" end
  if #s > _M.MAX_BYTES then return nil, "EINVAL: evidence longer than " .. _M.MAX_BYTES .. " bytes" end
  local ver, k = byte(s, 1, 2)
  if ver ~= 1 then return nil, "EPROTO: evidence version " .. ver end
  local kind = _M.KIND_NAME[k]
  if not kind then return nil, "EPROTO: unknown evidence kind " .. k end
  local body = s:sub(3)
  local out = { kind = kind }
  if kind == "INVALID_BEAT" then
    local d, err = u.proof_decode(body)
    if not d then return nil, err end
    out.proof, out.decoded = body, d
  elseif kind == "EQUIVOCATION" then
    if #body < 2 then return nil, "ETRUNC: equivocation: no first beat" end
    local la = rd16(body, 1)
    if #body < 2 + la + 2 then return nil, "ETRUNC: equivocation: beats cut short" end
    local lb = rd16(body, 3 + la)
    if #body ~= 4 + la + lb then return nil, "EINVAL: equivocation: lengths do not add up" end
    local a, err = unpack_one(body:sub(3, 2 + la))
    if not a then return nil, err end
    local b, berr = unpack_one(body:sub(5 + la))
    if not b then return nil, berr end
    out.a, out.b = a, b
  elseif kind == "CHALLENGE_FAILED" or kind == "OVERCOMMITTED" then
    local t = cjson.decode(body)
    if type(t) ~= "table" then return nil, "EINVAL: " .. kind .. ": not a JSON object" end
    if kind == "CHALLENGE_FAILED" and (type(t.challenge) ~= "table" or type(t.answer) ~= "table") then
      return nil, "EINVAL: challenge evidence needs challenge and answer objects"
    end
    if kind == "OVERCOMMITTED" and type(t.attestation) ~= "table" then
      return nil, "EINVAL: overcommitment evidence needs an attestation object"
    end
    for key, v in pairs(t) do out[key] = v end
  else   -- CLAIM_MISMATCH
    local form = byte(body, 1)
    if form == 1 then
      if #body ~= 195 then return nil, "EINVAL: claim pair: expected one 194-byte claim" end
      local c, err = u.claim_decode(body:sub(2))
      if not c then return nil, err end
      out.form, out.other, out.other_claim = "claims", body:sub(2), c
    elseif form == 2 then
      if #body < 34 then return nil, "ETRUNC: claim chain: header cut short" end
      local m = byte(body, 2)
      local off = 35 + 32 * m
      if #body < off - 1 then return nil, "ETRUNC: claim chain: path cut short" end
      out.prev_epoch_hash = wp.hex(body:sub(3, 34))
      out.path = {}
      for i = 1, m do out.path[i] = body:sub(35 + 32 * (i - 1), 34 + 32 * i) end
      local beats, err = u.unpack(body:sub(off))
      if not beats then return nil, err end
      if #beats == 0 then return nil, "EINVAL: claim chain: no beats" end
      out.form, out.beats, out.packed = "chain", beats, body:sub(off)
    else
      return nil, "EPROTO: unknown claim mismatch form " .. tostring(form)
    end
  end
  return out
end

-- ---- checking evidence ------------------------------------------------------------------

local function result(kind, proven, reason, detail)
  return { kind = kind, proven = proven, reason = reason, detail = detail }
end

-- a signature by the provider over beat b's payload, with key (hex): the core
-- checks it as the first step of countersigning (with a throw-away consumer key)
local THROWAWAY = select(2, wp.ed25519.keypair(wp.sha256("workproof-evidence-throwaway")))
local function provider_signed(b, key)
  local copy = {}
  for k, v in pairs(b) do copy[k] = v end
  return u.countersign(copy, key, THROWAWAY) ~= nil
end

local function sizes(ctx) return { epoch_beats = ctx.epoch_beats or 60, claim_epochs = ctx.claim_epochs or 24 } end

local check = {}

function check.INVALID_BEAT(ev, ctx)
  local d, claim = ev.decoded, ev.proof:sub(-194)
  if claim ~= ctx.claim then return result(ev.kind, false, "NOT_THE_POSTED_CLAIM") end
  local sz = sizes(ctx)
  local c, e, b = d.claim, d.epoch, d.beat
  if (d.epochBeats or 60) ~= sz.epoch_beats or (d.claimEpochs or 24) ~= sz.claim_epochs then
    return result(ev.kind, false, "WRONG_SIZES")
  end
  -- the beat is in the epoch, the epoch in the claim: the provider committed to it
  local bh = u.hash(b)
  local ep = {}
  for i, x in ipairs(d.epochPath) do ep[i] = wp.unhex(x) end
  if not bh
    or not merkle.verify_inclusion(wp.unhex(bh), b.sequence - e.firstSequence, e.count, ep, wp.unhex(e.root)) then
    return result(ev.kind, false, "BAD_EPOCH_PATH")
  end
  local eh = u.epoch_hash(e)
  local cp = {}
  for i, x in ipairs(d.claimPath) do cp[i] = wp.unhex(x) end
  if not eh or not merkle.verify_inclusion(wp.unhex(eh), e.index - c.index * sz.claim_epochs, c.epochs, cp,
    wp.unhex(c.root)) then
    return result(ev.kind, false, "BAD_CLAIM_PATH")
  end
  -- ... and the beat is not one it may commit to
  if b.leaseId ~= ctx.lease then return result(ev.kind, true, "LEASE_MISMATCH", "a beat of another lease") end
  local pk = onchain.key_at(ctx.keys.provider, b.sequence)
  local ck = onchain.key_at(ctx.keys.consumer, b.sequence)
  if not pk or not ck then return result(ev.kind, true, "NO_KEY", "no key of the lease covers beat " .. b.sequence) end
  local ok, why = u.verify(b, pk, ck, { vdf_t = ctx.vdf_t })
  if not ok then return result(ev.kind, true, why, "beat " .. b.sequence) end
  local ts, lo, hi = b.timestamp, c.periodStart, c.periodEnd
  local function lt(x, y) return #x < #y or (#x == #y and x < y) end
  if lt(ts, lo) or lt(hi, ts) then return result(ev.kind, true, "OUTSIDE_PERIOD", "beat " .. b.sequence) end
  return result(ev.kind, false, "VALID_BEAT", "beat " .. b.sequence .. " is dual-signed and in the claim")
end

function check.EQUIVOCATION(ev, ctx)
  local a, b = ev.a, ev.b
  if a.leaseId ~= ctx.lease or b.leaseId ~= ctx.lease then return result(ev.kind, false, "LEASE_MISMATCH") end
  if a.sequence ~= b.sequence then return result(ev.kind, false, "DIFFERENT_SEQUENCES") end
  if u.payload(a) == u.payload(b) and (a.V or "") == (b.V or "") then
    return result(ev.kind, false, "SAME_BEAT", "one signed message, not two")
  end
  local key = onchain.key_at(ctx.keys.provider, a.sequence)
  if not key then return result(ev.kind, false, "NO_KEY", "no provider key covers sequence " .. a.sequence) end
  if not provider_signed(a, key) or not provider_signed(b, key) then
    return result(ev.kind, false, "NOT_SIGNED",
      "both beats must be signed by the provider key of sequence " .. a.sequence)
  end
  return result(ev.kind, true, "EQUIVOCATION", "two beats for sequence " .. a.sequence .. " signed by " .. key)
end

-- a provider key of the lease, never revoked (the answer names no sequence)
local function lease_key(ctx, key)
  if type(key) ~= "string" then return false end
  if key:lower() == (ctx.identity or ""):lower() then return true end
  for _, r in ipairs(ctx.keys.provider) do
    if r.key == key:lower() and not r.revokedFrom then return true end
  end
  return false
end

local WRONG_RESULT = { BAD_VDF = true, WRONG_INDICES = true, NO_RESULT = true }

function check.CHALLENGE_FAILED(ev, ctx)
  local ch, ans = ev.challenge, ev.answer
  -- a lease's challenge, or a provider-wide one (a fisherman's) answered with the identity key
  if ch.scope ~= ctx.lease and ch.scope ~= "provider" then return result(ev.kind, false, "NOT_THIS_LEASE") end
  if ch.scope == "provider" and tostring(ans.signer):lower() ~= ctx.identity then
    return result(ev.kind, false, "NOT_THE_PROVIDER", "a provider-wide answer must be signed by the identity key")
  end
  if not lease_key(ctx, ans.signer) then return result(ev.kind, false, "NOT_THE_PROVIDER", tostring(ans.signer)) end
  -- storage: the provider's signed commitment of the lease ({ leaseId, commitment, signer, signature })
  local com = ev.commitment
  if ch.kind == "storage" then
    if type(com) ~= "table" or com.leaseId ~= ctx.lease or not lease_key(ctx, com.signer)
      or not challenge.verify(challenge.STORAGE, com) then
      return result(ev.kind, false, "NO_SIGNED_COMMITMENT")
    end
    com = com.commitment
  end
  local ok, why = challenge.check(ch, ans, ans.signer, com)
  if ok then return result(ev.kind, false, "CORRECT_ANSWER", "the provider's answer checks") end
  why = tostring(why)
  if WRONG_RESULT[why] or why:find("^STORAGE") then return result(ev.kind, true, why, ch.kind .. " answer") end
  return result(ev.kind, false, why, "not the provider's answer to this challenge")
end

function check.OVERCOMMITTED(ev, ctx)
  local att = ev.attestation
  if not challenge.verify(challenge.CAPACITY, att, ctx.identity) then
    return result(ev.kind, false, "NOT_SIGNED", "not signed by the provider's identity key")
  end
  local ok, why = challenge.capacity_check(att, ctx.lease)
  if ok then return result(ev.kind, false, "WITHIN_CAPACITY") end
  return result(ev.kind, true, why)
end

-- a claim signed by a provider key of the lease that is not revoked for its range
local function claim_signed(ctx, enc, c)
  for _, r in ipairs(ctx.keys.provider) do
    local last = c.firstSequence + c.beatCount - 1
    if (not r.revokedFrom or last < r.revokedFrom) and u.claim_verify(enc, r.key) then return r.key end
  end
end

function check.CLAIM_MISMATCH(ev, ctx)
  local sz = sizes(ctx)
  local posted = assert(u.claim_decode(ctx.claim, sz))
  if ev.form == "claims" then
    local o = ev.other_claim
    if o.leaseId ~= ctx.lease or o.index ~= posted.index then return result(ev.kind, false, "NOT_THIS_CLAIM") end
    if u.claim_hash(o) == u.claim_hash(posted) then return result(ev.kind, false, "SAME_CLAIM") end
    local key = claim_signed(ctx, ev.other, o)
    if not key then return result(ev.kind, false, "NOT_SIGNED") end
    return result(ev.kind, true, "TWO_CLAIMS", "claim " .. o.index .. " signed twice by " .. key)
  end
  local beats = ev.beats
  local first = beats[1]
  if first.sequence ~= posted.firstSequence or #beats ~= posted.beatCount then
    return result(ev.kind, false, "NOT_THE_CLAIMS_RANGE",
      format("%d beats from %d; the claim has %d from %d", #beats, first.sequence, posted.beatCount,
        posted.firstSequence))
  end
  local ok, why, i = u.verify_chain(ev.packed, ctx.keys, { lease_id = ctx.lease, first_sequence = first.sequence,
    prev_hash = first.prevHash, vdf_t = ctx.vdf_t })
  if not ok then return result(ev.kind, false, "CHAIN_" .. tostring(why), "beat " .. tostring(i)) end
  local prev_epoch = ("0"):rep(64)
  if posted.index > 0 then
    local pc = ctx.prev_claim and u.claim_decode(ctx.prev_claim, sz)
    if not pc then return result(ev.kind, false, "NO_PREVIOUS_CLAIM") end
    local pe = wp.unhex(ev.prev_epoch_hash)
    if not merkle.verify_inclusion(pe, pc.epochs - 1, pc.epochs, ev.path, wp.unhex(pc.root)) then
      return result(ev.kind, false, "BAD_PREV_EPOCH_PATH")
    end
    prev_epoch = ev.prev_epoch_hash
  end
  local epochs, claims = u.rollup(beats, { epoch_beats = sz.epoch_beats, claim_epochs = sz.claim_epochs,
    prev_epoch_hash = prev_epoch, prev_claim_hash = posted.prevClaimHash, flags = posted.flags,
    first_sequence = first.sequence })
  local mine = claims and claims[1]
  if not mine then return nil, "EPROTO: the beats do not roll up: " .. tostring(epochs) end
  for _, f in ipairs({ "root", "beatCount", "periodStart", "periodEnd", "prevClaimHash" }) do
    if tostring(mine[f]) ~= tostring(posted[f]) then
      return result(ev.kind, true, "CLAIM_CONTRADICTS_CHAIN",
        format("%s: posted %s, the dual-signed chain gives %s", f, tostring(posted[f]), tostring(mine[f])))
    end
  end
  return result(ev.kind, false, "CLAIM_MATCHES_CHAIN")
end

function _M.check(bytes, ctx)
  local ev, err = _M.decode(bytes)
  if not ev then return nil, err end
  return check[ev.kind](ev, ctx)
end

return _M
