-- SPDX-License-Identifier: MIT
--- wp.uptime: heartbeats, chain verification, epochs, claims, disclosure
-- proofs, VDF blocks, rotation records and attestation digests
-- (docs/lua-api.md, "wp.uptime"; formats in docs/uptime.md).
--
-- This module owns the JSON shapes; the C binding (workproof.core.uptime,
-- core/lua/l_uptime.c) owns the byte layouts and takes and returns only
-- packed bytes and plain values. Shared by the CLI (workproof.cli.uptime),
-- the controller, policies and the uptime agents.
--
-- Records (beats, epochs, decoded claims and proofs, rotation records,
-- attestations) are JSON-shaped tables, so a chain file line decoded by
-- cjson IS a beat: binary fields are lowercase hex strings, Unix-nanosecond
-- timestamps are canonical decimal strings (they do not fit a double; an
-- exact integer number is accepted on input), sequences and small counts
-- are numbers. Keys are raw byte strings like everywhere in wp (32-byte
-- public, 64-byte secret) or the same as hex (64 / 128 characters).
-- Encoded claims and proofs are raw byte strings.
--
-- Records are untrusted data: a field of the wrong type or shape is an
-- answer (false, "BAD_FORMAT", i) or nil, "EINVAL: ..." - never a raise.
-- Wrong Lua types of the arguments themselves raise.
--
-- Sizes: a lease rolls its beats into epochs of E beats (opts.epoch_beats,
-- 1 .. 60, default 60) and claims of K epochs (opts.claim_epochs, 1 .. 24,
-- default 24). They are lease parameters like the keys: neither an epoch
-- record nor a claim names them, so every function that needs them takes
-- them in opts (a malformed size raises, like any malformed option).
local core = require "workproof.core"
local ffi = require "ffi"
local bit = require "bit"

local C = core.uptime
local hex, unhex, sign, verify = core.hex, core.unhex, core.ed25519.sign, core.ed25519.verify
local byte, char, sub, find, format, rep = string.byte, string.char, string.sub, string.find, string.format,
  string.rep
local concat = table.concat
local type, error, select, tostring, tonumber, floor = type, error, select, tostring, tonumber, math.floor
local band, rshift = bit.band, bit.rshift

local _M = {}

local HLEN, SLEN, KLEN, SKLEN = 32, 64, 32, 64
local VDF_LEN = C.VDF_BLOCK_LEN
local ZERO32, ZERO8 = rep("\0", 32), rep("\0", 8)
local MAX_EXACT = 2 ^ 53
local U64_MAX = rep("\255", 8)

for _, k in ipairs({ "EPOCH_BEATS", "CLAIM_EPOCHS", "CLAIM_BEATS", "CLAIM_LEN", "EPOCH_RECORD_LEN", "ROTATION_LEN",
  "PACKED_LEN", "VDF_BLOCK_LEN" }) do
  _M[k] = C[k]
end
_M.ZERO_HASH = rep("0", 64)
_M.reasons = {}
for i, r in ipairs(C.reasons) do _M.reasons[i] = r end

-- ---- plain value conversions ------------------------------------------------

-- exactly n bytes from 2n hex digits (no 0x prefix: strict length), or nil
local function unhex_n(s, n)
  if type(s) ~= "string" or #s ~= 2 * n or find(s, "[^%x]") then return nil end
  return unhex(s)
end

-- a key: n raw bytes or 2n hex digits, or nil
local function key_of(v, n)
  if type(v) ~= "string" then return nil end
  if #v == n then return v end
  return unhex_n(v, n)
end

local function argerr(i, fname, msg)
  error(format("bad argument #%d to '%s' (%s)", i, fname, msg), 3)
end

local function checktype(v, t, i, fname)
  if type(v) ~= t then argerr(i, fname, t .. " expected, got " .. type(v)) end
end

-- a key argument (raises)
local function checkkey(v, n, i, fname)
  checktype(v, "string", i, fname)
  local k = key_of(v, n)
  if not k then argerr(i, fname, format("expected a key of %d bytes or %d hex digits", n, 2 * n)) end
  return k
end

local function is_count(v)
  return type(v) == "number" and v >= 0 and v < MAX_EXACT and v % 1 == 0
end

local function word(x)
  return char(rshift(x, 24), band(rshift(x, 16), 255), band(rshift(x, 8), 255), band(x, 255))
end

-- 8 bytes big-endian of an exact integer 0 .. 2^53
local function be64(v)
  local hi = floor(v / 4294967296)
  return word(hi) .. word(v - hi * 4294967296)
end

--[[ A timestamp: a canonical decimal string (digits, no sign, no leading
zero, at most INT64_MAX) or an exact integer number -> 8 bytes big-endian,
or nil. Canonical so that one timestamp has one text, the one in the payload.
Above 2^53 the string is split so that every step stays an exact double:
v = q * 1e9 + r, q = qh * 2^16 + ql. ]]
local function ts8(v)
  if type(v) == "number" then return is_count(v) and be64(v) or nil end
  if type(v) ~= "string" then return nil end
  local n = #v
  if n == 0 or n > 19 or find(v, "%D") or (n > 1 and byte(v) == 48) then return nil end
  if n <= 15 then return be64(tonumber(v)) end
  local q, r = tonumber(sub(v, 1, n - 9)), tonumber(sub(v, n - 8))
  local qh = floor(q / 65536)
  local x = qh * 1e9                          -- < 2^48
  local y = (q - qh * 65536) * 1e9 + r        -- < 2^47
  local xh = floor(x / 65536)
  local z = (x - xh * 65536) * 65536 + y      -- < 2^48
  local zh = floor(z / 4294967296)
  local hi = xh + zh
  if hi >= 2147483648 then return nil end
  return word(hi) .. word(z - zh * 4294967296)
end

local u64 = ffi.typeof("uint64_t")

-- 8 bytes big-endian -> canonical decimal string
local function ts_dec(s)
  local a, b, c, d, e, f, g, h = byte(s, 1, 8)
  local hi, lo = ((a * 256 + b) * 256 + c) * 256 + d, ((e * 256 + f) * 256 + g) * 256 + h
  if hi < 2097152 then return format("%d", hi * 4294967296 + lo) end
  return (sub(tostring(u64(hi) * 4294967296 + lo), 1, -4))   -- drop "ULL"
end

-- a timestamp argument (string or number, else raise) -> 8 bytes | nil
local function checkts(v, i, fname)
  if type(v) ~= "string" and type(v) ~= "number" then argerr(i, fname, "string or number expected") end
  return ts8(v)
end

local function fail(code, fmt, ...)
  return nil, code .. ": " .. format(fmt, ...)
end

-- t[name] as n hex-encoded bytes: bytes, or nil when absent, or false
local function hexfield(t, name, n)
  local v = t[name]
  if v == nil then return nil end
  return unhex_n(v, n) or false
end

-- ---- beats --------------------------------------------------------------------

local F_LEASE, F_SEQ, F_TS, F_PREV, F_PSIG, F_CSIG, F_HASH = 1, 2, 4, 8, 16, 32, 64
local F_PAYLOAD = F_LEASE + F_SEQ + F_TS + F_PREV
local F_ALL = F_PAYLOAD + F_PSIG + F_CSIG + F_HASH
local VDF_OFF = "vdf: a VDF block where VDF hardening is off"

-- a hex field of a beat: bytes, or nil when absent and not needed, or false
local function beatfield(t, name, n, need, flag)
  local v = t[name]
  if v == nil then return band(need, flag) == 0 and nil end
  if type(v) ~= "string" or #v ~= 2 * n or find(v, "[^%x]") then return false end
  return unhex(v)
end

--[[ The beat table t packed (the fields in `need` must be present; absent
optional ones are zero). vdf: "allow" decodes a "vdf" field into the
extension, "ignore" skips it (the payload does not carry it), anything else
makes one malformed. Returns packed, or nil and the reason. ]]
local function tobeat(t, need, vdf)
  if type(t) ~= "table" then return nil, "not a table" end
  local lease = beatfield(t, "leaseId", HLEN, need, F_LEASE)
  if lease == false then return nil, "leaseId: expected 64 hex digits" end
  local prev = beatfield(t, "prevHash", HLEN, need, F_PREV)
  if prev == false then return nil, "prevHash: expected 64 hex digits" end
  local psig = beatfield(t, "providerSig", SLEN, need, F_PSIG)
  if psig == false then return nil, "providerSig: expected 128 hex digits" end
  local csig = beatfield(t, "consumerSig", SLEN, need, F_CSIG)
  if csig == false then return nil, "consumerSig: expected 128 hex digits" end
  local h = beatfield(t, "hash", HLEN, need, F_HASH)
  if h == false then return nil, "hash: expected 64 hex digits" end
  local seq, ts = t.sequence, t.timestamp
  if seq == nil and band(need, F_SEQ) ~= 0 or seq ~= nil and not is_count(seq) then
    return nil, "sequence: expected an integer 0 .. 2^53"
  end
  local ts_b = ts ~= nil and ts8(ts) or nil
  if not ts_b and (ts ~= nil or band(need, F_TS) ~= 0) then
    return nil, "timestamp: expected a decimal string of Unix nanoseconds"
  end
  local ext
  if t.vdf ~= nil and vdf ~= "ignore" then
    if vdf ~= "allow" then return nil, VDF_OFF end
    ext = unhex_n(t.vdf, VDF_LEN)
    if not ext then return nil, "vdf: expected 1056 hex digits" end
  end
  return C.beat_pack(lease or ZERO32, seq or 0, ts_b or ZERO8, prev or ZERO32, psig, csig, h, ext)
end

-- a beat table from its packed fields
local function beat_table(lease, seq, ts, prev, psig, csig, h, ext)
  local t = { leaseId = hex(lease), sequence = seq, timestamp = ts_dec(ts), prevHash = hex(prev),
    providerSig = hex(psig), consumerSig = hex(csig), hash = hex(h) }
  if ext then t.vdf = hex(ext) end
  return t
end

--[[ A beats argument (an array of beat tables, or a packed string as it
is) -> packed, n, why: conversion stops at the first malformed beat, n is
the number converted and why the reason. ]]
local function tobeats(beats, vdf, fname)
  if type(beats) == "string" then return beats end
  checktype(beats, "table", 1, fname)
  local parts, n = {}, #beats
  for i = 1, n do
    local p, why = tobeat(beats[i], F_ALL, vdf)
    if not p then return concat(parts), i - 1, why end
    parts[i] = p
  end
  return concat(parts), n
end

local function checkbeat(t, fname)
  checktype(t, "table", 1, fname)
end

local function opts_arg(opts, i, fname)
  if opts ~= nil then checktype(opts, "table", i, fname) end
  return opts
end

local function opt_count(opts, name, fname)
  local v = opts and opts[name]
  if v == nil then return 0 end
  if not is_count(v) then error(format("%s: opts.%s: expected an integer >= 0", fname, name), 3) end
  return v
end

--[[ opts.epoch_beats, opts.claim_epochs -> E, K (defaults 60, 24; raise
when one is not an integer in range, at the API function's caller, or
`level` above opt_sizes). ]]
local function opt_sizes(opts, fname, level)
  local E, K = opts and opts.epoch_beats, opts and opts.claim_epochs
  level = level or 3
  if E == nil then
    E = C.EPOCH_BEATS
  elseif not is_count(E) or E < 1 or E > C.EPOCH_BEATS then
    error(format("%s: opts.epoch_beats: expected an integer 1 .. %d (beats per epoch), got %s", fname,
      C.EPOCH_BEATS, tostring(E)), level)
  end
  if K == nil then
    K = C.CLAIM_EPOCHS
  elseif not is_count(K) or K < 1 or K > C.CLAIM_EPOCHS then
    error(format("%s: opts.claim_epochs: expected an integer 1 .. %d (epochs per claim), got %s", fname,
      C.CLAIM_EPOCHS, tostring(K)), level)
  end
  return E, K
end

local function opt_hash(opts, name, fname)
  local v = opts and opts[name]
  if v == nil then return nil end
  return unhex_n(v, HLEN) or error(format("%s: opts.%s: expected 64 hex digits", fname, name), 3)
end

--- build(lease_id, sequence, timestamp[, prev_hash]) -> beat | nil, err
function _M.build(lease_id, sequence, timestamp, prev_hash)
  checktype(lease_id, "string", 1, "build")
  checktype(sequence, "number", 2, "build")
  local ts = checkts(timestamp, 3, "build")
  local lease = unhex_n(lease_id, HLEN)
  if not lease then return fail("EINVAL", "leaseId: expected 64 hex digits") end
  if not is_count(sequence) then return fail("EINVAL", "sequence: expected an integer 0 .. 2^53") end
  if not ts then return fail("EINVAL", "timestamp: expected a decimal string of Unix nanoseconds") end
  local prev = ZERO32
  if prev_hash ~= nil then
    checktype(prev_hash, "string", 4, "build")
    prev = unhex_n(prev_hash, HLEN)
    if not prev then return fail("EINVAL", "prevHash: expected 64 hex digits") end
  end
  return { leaseId = hex(lease), sequence = sequence,
    timestamp = type(timestamp) == "string" and timestamp or format("%d", timestamp), prevHash = hex(prev) }
end

--- payload(beat) -> text | nil, err
function _M.payload(beat)
  checkbeat(beat, "payload")
  local p, why = tobeat(beat, F_PAYLOAD, "ignore")
  if not p then return fail("EINVAL", "%s", why) end
  return C.payload(p)
end

--- sign(beat, provider_secret) -> beat (providerSig set) | nil, err
function _M.sign(beat, secret)
  checkbeat(beat, "sign")
  local sk = checkkey(secret, SKLEN, 2, "sign")
  local p, why = tobeat(beat, F_PAYLOAD, "allow")
  if not p then return fail("EINVAL", "%s", why) end
  local sig, err = C.sign(p, sk)
  if not sig then return nil, err end
  beat.providerSig = hex(sig)
  return beat
end

--- countersign(beat, provider_pub, consumer_secret) -> beat | nil, err
function _M.countersign(beat, provider_pub, secret)
  checkbeat(beat, "countersign")
  local pk = checkkey(provider_pub, KLEN, 2, "countersign")
  local sk = checkkey(secret, SKLEN, 3, "countersign")
  local p, why = tobeat(beat, F_PAYLOAD + F_PSIG, "allow")
  if not p then return fail("EINVAL", "%s", why) end
  local sig, h = C.countersign(p, pk, sk)
  if not sig then return nil, h end
  beat.consumerSig, beat.hash = hex(sig), hex(h)
  return beat
end

--- hash(beat) -> hex (computed from the fields, not read) | nil, err
function _M.hash(beat)
  checkbeat(beat, "hash")
  local p, why = tobeat(beat, F_PAYLOAD + F_PSIG + F_CSIG, "allow")
  if not p then return fail("EINVAL", "%s", why) end
  return hex(C.hash(p))
end

--- verify(beat, provider_pub, consumer_pub[, opts]) -> true | false, reason
function _M.verify(beat, provider_pub, consumer_pub, opts)
  checkbeat(beat, "verify")
  local pk = checkkey(provider_pub, KLEN, 2, "verify")
  local ck = checkkey(consumer_pub, KLEN, 3, "verify")
  local t = opt_count(opts_arg(opts, 4, "verify"), "vdf_t", "verify")
  local p = tobeat(beat, F_ALL, "allow")
  if not p then return false, "BAD_FORMAT" end
  return C.verify(p, pk, ck, t)
end

--[[ keys[party]: one key (raw or hex), or an array of { first =, last =,
key = } ranges (last absent: open) -> 48-byte range records. ]]
local function ranges(keys, party)
  local v = keys[party]
  if type(v) == "string" then
    local k = key_of(v, KLEN)
    if not k then error(format("keys.%s: expected a key of 32 bytes or 64 hex digits", party), 3) end
    return rep("\0", 8) .. U64_MAX .. k
  end
  if type(v) ~= "table" then error(format("keys.%s: expected a key or an array of key ranges", party), 3) end
  local out = {}
  for i = 1, #v do
    local r = v[i]
    if type(r) ~= "table" then error(format("keys.%s[%d]: expected a table", party, i), 3) end
    local k = key_of(r.key, KLEN)
    if not k then error(format("keys.%s[%d].key: expected a key of 32 bytes or 64 hex digits", party, i), 3) end
    local first = r.first or 0
    if not is_count(first) then error(format("keys.%s[%d].first: expected an integer >= 0", party, i), 3) end
    local last = r.last
    if last == nil or type(last) == "number" and last >= MAX_EXACT then
      last = U64_MAX
    elseif is_count(last) then
      last = be64(last)
    else
      error(format("keys.%s[%d].last: expected an integer >= first", party, i), 3)
    end
    out[i] = be64(first) .. last .. k
  end
  return concat(out)
end

--- verify_chain(beats | packed, keys[, opts]) -> true | false, reason, i[, why] | nil, err
function _M.verify_chain(beats, keys, opts)
  checktype(keys, "table", 2, "verify_chain")
  opts = opts_arg(opts, 3, "verify_chain")
  local t = opt_count(opts, "vdf_t", "verify_chain")
  local lease, prev = opt_hash(opts, "lease_id", "verify_chain"), opt_hash(opts, "prev_hash", "verify_chain")
  local first = opt_count(opts, "first_sequence", "verify_chain")
  local pr, cr = ranges(keys, "provider"), ranges(keys, "consumer")
  local packed, n, why = tobeats(beats, t ~= 0 and "allow" or "off", "verify_chain")
  local ok, reason, i = C.verify_chain(packed, pr, cr, t, first, lease, prev)
  if ok and why then
    -- every beat before the malformed one verified
    return false, "BAD_FORMAT", n + 1, why
  end
  if ok then return true end
  return ok, reason, i
end

--- pack(beats) -> packed | nil, "EINVAL: beat i: ..."
function _M.pack(beats)
  checktype(beats, "table", 1, "pack")
  local packed, n, why = tobeats(beats, "allow", "pack")
  if why then return fail("EINVAL", "beat %d: %s", n + 1, why) end
  return packed
end

-- packed beats -> array of beat tables | nil, err
local function unpack_beats(s)
  local out, off, len = {}, 0, #s
  while off < len do
    local lease, seq, ts, prev, psig, csig, h, ext, nxt = C.beat_unpack(s, off)
    if not lease then   -- seq is the error: keep its code, name the beat
      return fail(seq:match("^%u+") or "EINVAL", "packed beat %d is malformed", #out + 1)
    end
    out[#out + 1] = beat_table(lease, seq, ts, prev, psig, csig, h, ext)
    off = nxt
  end
  return out
end

--- unpack(packed) -> beats | nil, err
function _M.unpack(packed)
  checktype(packed, "string", 1, "unpack")
  return unpack_beats(packed)
end

-- ---- epochs and claims --------------------------------------------------------

local function epoch_table(rec)
  local lease, index, first, count, root, prev, h = C.epoch_unpack(rec)
  return { leaseId = hex(lease), index = index, firstSequence = first, count = count, root = hex(root),
    prevEpochHash = hex(prev), hash = hex(h) }
end

--[[ An epoch table -> its 132-byte record (hash is recomputed, not read),
or nil, why. firstSequence, when absent, is index * E (E: 60 unless given);
present, it must be index * E' for some epoch size E' in count .. 60 (the
record does not say which: check_epochs pins it). ]]
local function toepoch(t, E)
  if type(t) ~= "table" then return nil, "not a table" end
  local lease = hexfield(t, "leaseId", HLEN)
  if not lease then return nil, "leaseId: expected 64 hex digits" end
  local root = hexfield(t, "root", HLEN)
  if not root then return nil, "root: expected 64 hex digits" end
  local prev = hexfield(t, "prevEpochHash", HLEN)
  if not prev then return nil, "prevEpochHash: expected 64 hex digits" end
  if not is_count(t.index) then return nil, "index: expected an integer >= 0" end
  local n = t.count
  if not is_count(n) or n < 1 or n > C.EPOCH_BEATS then return nil, "count: expected 1 .. 60" end
  local fs = t.firstSequence
  if fs == nil then
    fs = t.index * (E or C.EPOCH_BEATS)
    if fs >= MAX_EXACT then return nil, "index: out of range" end
  elseif not is_count(fs) then
    return nil, "firstSequence: expected an integer >= 0"
  end
  local rec = C.epoch_pack(lease, t.index, n, root, prev, fs)
  if not rec then return nil, "firstSequence: expected index * E for an epoch size E in count .. 60" end
  return rec
end

-- an array of epoch tables -> concatenated records, n, why (see tobeats)
local function toepochs(es, i, fname, E)
  checktype(es, "table", i, fname)
  local parts = {}
  for k = 1, #es do
    local rec, why = toepoch(es[k], E)
    if not rec then return concat(parts), k - 1, why end
    parts[k] = rec
  end
  return concat(parts), #es
end

--[[ Epoch tables (already through toepochs) against the epoch size E:
nil, or nil, err naming the first that is not an epoch of E beats. ]]
local function check_epochs(es, E)
  for k = 1, #es do
    local e = es[k]
    local fs = e.firstSequence or e.index * E
    if fs ~= e.index * E then
      return fail("EPROTO", "epoch %d (index %d) has firstSequence %d, not index * %d: it is not an epoch of "
        .. "%d beats (opts.epoch_beats)", k, e.index, fs, E, E)
    end
    if e.count > E then
      return fail("ERANGE", "epoch %d holds %d beats, more than an epoch of %d (opts.epoch_beats)", k, e.count, E)
    end
  end
end

--[[ 194 bytes -> claim table | nil, err. E, K: the claim's sizes, which it
must then be of, and epochs counts E-beat epochs; nil: any sizes' claim,
epochs counted in 60-beat epochs. ]]
local function claim_table(enc, with_sig, E, K)
  local version, flags, lease, index, first, count, ps, pe, root, prev, sig, h, epochs = C.claim_unpack(enc, E, K)
  if not version then return nil, flags end
  local t = { version = version, flags = flags, leaseId = hex(lease), index = index, firstSequence = first,
    beatCount = count, epochs = epochs, periodStart = ts_dec(ps), periodEnd = ts_dec(pe), root = hex(root),
    prevClaimHash = hex(prev), hash = hex(h) }
  if with_sig then t.signature = hex(sig) end
  return t
end

-- a claim table -> 194 bytes (zero signature when it has none), has_sig | nil, why
local function toclaim(t)
  if t.version ~= C.CLAIM_VERSION then return nil, "version: expected 1" end
  local flags = t.flags or 0
  if not is_count(flags) or band(flags, bit.bnot(C.CLAIM_FLAG_VDF)) ~= 0 or flags > 255 then
    return nil, "flags: unknown flag bits"
  end
  local lease = hexfield(t, "leaseId", HLEN)
  if not lease then return nil, "leaseId: expected 64 hex digits" end
  if not is_count(t.index) or t.index > 4294967295 then return nil, "index: expected an integer 0 .. 2^32-1" end
  local fs = t.firstSequence
  if fs ~= nil and not is_count(fs) then return nil, "firstSequence: expected an integer >= 0" end
  local n = t.beatCount
  if not is_count(n) or n < 1 or n > C.CLAIM_BEATS then return nil, "beatCount: expected 1 .. 1440" end
  local ps = ts8(t.periodStart)
  if not ps then return nil, "periodStart: expected a decimal string of Unix nanoseconds" end
  local pe = ts8(t.periodEnd)
  if not pe or pe < ps then return nil, "periodEnd: expected a decimal string >= periodStart" end
  local root = hexfield(t, "root", HLEN)
  if not root then return nil, "root: expected 64 hex digits" end
  local prev = hexfield(t, "prevClaimHash", HLEN)
  if not prev then return nil, "prevClaimHash: expected 64 hex digits" end
  local sig = hexfield(t, "signature", SLEN)
  if sig == false then return nil, "signature: expected 128 hex digits" end
  local enc, err = C.claim_pack(flags, lease, t.index, n, ps, pe, root, prev, sig, fs)
  if not enc then return nil, err end
  return enc, sig ~= nil
end

-- a claim argument: encoded bytes (checked by the core) or a table
-- -> bytes, has_sig | nil, err
local function getclaim(c, i, fname)
  if type(c) == "string" then return c, true end
  if type(c) ~= "table" then argerr(i, fname, "expected an encoded claim (string) or a claim table") end
  local enc, has_sig = toclaim(c)
  if not enc then return fail("EINVAL", "claim %s", has_sig) end
  return enc, has_sig
end

--- rollup(beats | packed[, opts]) -> epochs, claims | nil, err
-- opts: prev_epoch_hash, prev_claim_hash, flags, epoch_beats, claim_epochs
function _M.rollup(beats, opts)
  opts = opts_arg(opts, 2, "rollup")
  local pe, pc = opt_hash(opts, "prev_epoch_hash", "rollup"), opt_hash(opts, "prev_claim_hash", "rollup")
  local flags = opts and opts.flags or 0
  if not is_count(flags) or flags > 1 then error("rollup: opts.flags: expected 0 or 1 (VDF)", 2) end
  local E, K = opt_sizes(opts, "rollup")
  local packed, n, why = tobeats(beats, "allow", "rollup")
  if why then return fail("EINVAL", "beat %d: %s", n + 1, why) end
  local recs, encs = C.rollup(packed, pe, pc, flags, E, K)
  if not recs then return nil, encs end
  local epochs, claims = {}, {}
  local rl, cl = C.EPOCH_RECORD_LEN, C.CLAIM_LEN
  for k = 1, #recs / rl do epochs[k] = epoch_table(sub(recs, (k - 1) * rl + 1, k * rl)) end
  for k = 1, #encs / cl do claims[k] = claim_table(sub(encs, (k - 1) * cl + 1, k * cl), false, E, K) end
  return epochs, claims
end

--- epoch_make(lease_id, index, hashes[, prev_epoch_hash][, opts]) -> epoch | nil, err
-- opts.epoch_beats: the epoch size E (default 60); opts may stand in for
-- prev_epoch_hash at genesis.
function _M.epoch_make(lease_id, index, hashes, prev_epoch_hash, opts)
  checktype(lease_id, "string", 1, "epoch_make")
  checktype(index, "number", 2, "epoch_make")
  checktype(hashes, "table", 3, "epoch_make")
  if type(prev_epoch_hash) == "table" and opts == nil then prev_epoch_hash, opts = nil, prev_epoch_hash end
  opts = opts_arg(opts, 5, "epoch_make")
  local E = opt_sizes(opts, "epoch_make")
  local lease = unhex_n(lease_id, HLEN)
  if not lease then return fail("EINVAL", "leaseId: expected 64 hex digits") end
  if not is_count(index) or index * E >= MAX_EXACT then return fail("ERANGE", "epoch index out of range") end
  local n = #hashes
  if n == 0 or n > E then
    return fail("ERANGE", "an epoch of %d-beat epochs holds 1 .. %d beats, got %d", E, E, n)
  end
  local hs = {}
  for i = 1, n do
    hs[i] = unhex_n(hashes[i], HLEN)
    if not hs[i] then return fail("EINVAL", "hashes[%d]: expected 64 hex digits", i) end
  end
  local prev
  if prev_epoch_hash ~= nil then
    checktype(prev_epoch_hash, "string", 4, "epoch_make")
    prev = unhex_n(prev_epoch_hash, HLEN)
    if not prev then return fail("EINVAL", "prevEpochHash: expected 64 hex digits") end
  end
  local rec, err = C.epoch_make(lease, index, concat(hs), prev, E)
  if not rec then return nil, err end
  return epoch_table(rec)
end

-- an epoch table and opts -> record | nil, err (E given: of that size)
local function epoch_rec(e, opts, fname)
  checktype(e, "table", 1, fname)
  opts = opts_arg(opts, 2, fname)
  local E = opts and opts.epoch_beats ~= nil and opt_sizes(opts, fname, 4) or nil
  local rec, why = toepoch(e, E)
  if not rec then return fail("EINVAL", "epoch %s", why) end
  if E then
    local ok, err = check_epochs({ e }, E)
    if ok == nil and err then return nil, err end
  end
  return rec
end

--- epoch_record(epoch[, opts]) -> 132 bytes | nil, err
-- opts.epoch_beats: the epoch must be one of that size (else any size's).
function _M.epoch_record(e, opts)
  return epoch_rec(e, opts, "epoch_record")
end

--- epoch_hash(epoch[, opts]) -> hex | nil, err
function _M.epoch_hash(e, opts)
  local rec, err = epoch_rec(e, opts, "epoch_hash")
  if not rec then return nil, err end
  return hex((select(7, C.epoch_unpack(rec))))
end

--- claim_make(epochs, opts) -> claim (unsigned) | nil, err
-- opts: index, period_start, period_end, flags, prev_claim_hash,
-- epoch_beats, claim_epochs
function _M.claim_make(epochs, opts)
  checktype(opts, "table", 2, "claim_make")
  local E, K = opt_sizes(opts, "claim_make")
  local recs, n, why = toepochs(epochs, 1, "claim_make", E)
  if why then return fail("EINVAL", "epoch %d: %s", n + 1, why) end
  local index = opts.index or 0
  if not is_count(index) or index > 4294967295 then
    error("claim_make: opts.index: expected an integer 0 .. 2^32-1", 2)
  end
  local flags = opts.flags or 0
  if not is_count(flags) or flags > 1 then error("claim_make: opts.flags: expected 0 or 1 (VDF)", 2) end
  local ps, pe = ts8(opts.period_start), ts8(opts.period_end)
  if not ps then error("claim_make: opts.period_start: expected a decimal string of Unix nanoseconds", 2) end
  if not pe then error("claim_make: opts.period_end: expected a decimal string of Unix nanoseconds", 2) end
  local prev = opt_hash(opts, "prev_claim_hash", "claim_make")
  if n > K then
    return fail("ERANGE", "a claim of %d-epoch claims holds 1 .. %d epochs, got %d (opts.claim_epochs)", K, K, n)
  end
  local ok, serr = check_epochs(epochs, E)
  if ok == nil and serr then return nil, serr end
  local enc, err = C.claim_make(recs, index, ps, pe, flags, prev, E, K)
  if not enc then return nil, err end
  return claim_table(enc, false, E, K)
end

--- claim_encode(claim[, provider_secret]) -> 194 bytes | nil, err
function _M.claim_encode(claim, secret)
  checktype(claim, "table", 1, "claim_encode")
  local sk = secret ~= nil and checkkey(secret, SKLEN, 2, "claim_encode") or nil
  local enc, has_sig = getclaim(claim, 1, "claim_encode")
  if not enc then return nil, has_sig end
  if sk then return C.claim_sign(enc, sk) end
  if not has_sig then return fail("EINVAL", "claim has no signature: pass the provider secret") end
  return enc
end

--[[- claim_decode(bytes[, opts]) -> claim table | nil, err
Without opts a claim of any sizes decodes (the 194 bytes do not name E and
K) and `epochs` counts 60-beat epochs; with opts the claim must be one of
opts.claim_epochs epochs of opts.epoch_beats beats (defaults 24 and 60 for
the keys left out), else nil, "EPROTO: ...", and `epochs` counts E-beat
epochs. ]]
function _M.claim_decode(enc, opts)
  checktype(enc, "string", 1, "claim_decode")
  opts = opts_arg(opts, 2, "claim_decode")
  if opts then return claim_table(enc, true, opt_sizes(opts, "claim_decode")) end
  return claim_table(enc, true)
end

--- claim_hash(claim) -> hex | nil, err
function _M.claim_hash(claim)
  local enc, err = getclaim(claim, 1, "claim_hash")
  if not enc then return nil, err end
  local h, herr = C.claim_hash(enc)
  if not h then return nil, herr end
  return hex(h)
end

--- claim_verify(claim, provider_pub) -> boolean | nil, err
function _M.claim_verify(claim, provider_pub)
  local pk = checkkey(provider_pub, KLEN, 2, "claim_verify")
  local enc, has_sig = getclaim(claim, 1, "claim_verify")
  if not enc then return nil, has_sig end
  if not has_sig then return false end
  return C.claim_verify(enc, pk)
end

--- claim_countersign(claim, consumer_secret) -> sig (64 bytes) | nil, err
function _M.claim_countersign(claim, secret)
  local sk = checkkey(secret, SKLEN, 2, "claim_countersign")
  local enc, has_sig = getclaim(claim, 1, "claim_countersign")
  if not enc then return nil, has_sig end
  if not has_sig then return fail("EINVAL", "countersign a signed claim") end
  return C.claim_countersign(enc, sk)
end

--- claim_verify_countersign(claim, consumer_pub, sig) -> boolean | nil, err
function _M.claim_verify_countersign(claim, consumer_pub, sig)
  local pk = checkkey(consumer_pub, KLEN, 2, "claim_verify_countersign")
  checktype(sig, "string", 3, "claim_verify_countersign")
  local s = key_of(sig, SLEN)
  if not s then return fail("EINVAL", "countersignature: expected 64 bytes or 128 hex digits") end
  local enc, has_sig = getclaim(claim, 1, "claim_verify_countersign")
  if not enc then return nil, has_sig end
  if not has_sig then return false end
  return C.claim_verify_countersign(enc, pk, s)
end

-- ---- disclosure proofs --------------------------------------------------------

--- proof_make(beats, i, epochs, claim[, opts]) -> proof bytes | nil, err
-- opts.epoch_beats, opts.claim_epochs: the sizes the claim was made with
-- (defaults 60, 24); a proof for other sizes than the defaults carries them.
function _M.proof_make(beats, i, epochs, claim, opts)
  checktype(i, "number", 2, "proof_make")
  checktype(epochs, "table", 3, "proof_make")
  if type(claim) ~= "string" then argerr(4, "proof_make", "expected an encoded claim (string)") end
  local E, K = opt_sizes(opts_arg(opts, 5, "proof_make"), "proof_make")
  local ok, err = C.claim_hash(claim)
  if not ok then return nil, err end
  local packed, n, why = tobeats(beats, "allow", "proof_make")
  if why then return fail("EINVAL", "beat %d: %s", n + 1, why) end
  local recs, ne, ewhy = toepochs(epochs, 3, "proof_make", E)
  if ewhy then return fail("EINVAL", "epoch %d: %s", ne + 1, ewhy) end
  return C.proof_make(packed, is_count(i) and i or 0, recs, claim, E, K)
end

local function path_table(s)
  local t = {}
  for k = 1, #s / HLEN do t[k] = hex(sub(s, (k - 1) * HLEN + 1, k * HLEN)) end
  return t
end

--- proof_decode(bytes) -> table | nil, err
-- epochBeats, claimEpochs: the sizes, present when the proof carries them
-- (not 60 and 24).
function _M.proof_decode(proof)
  checktype(proof, "string", 1, "proof_decode")
  local beat, rec, epath, cpath, claim, E, K = C.proof_unpack(proof)
  if not beat then return nil, rec end
  local t = { version = 1, beat = beat_table(C.beat_unpack(beat)), epoch = epoch_table(rec),
    epochPath = path_table(epath), claimPath = path_table(cpath), claim = claim_table(claim, true, E, K) }
  if E ~= C.EPOCH_BEATS or K ~= C.CLAIM_EPOCHS then t.epochBeats, t.claimEpochs = E, K end
  return t
end

--- proof_verify(bytes, keys[, opts]) -> true | false, reason | nil, err
-- opts: vdf_t, epoch_beats, claim_epochs (the lease's sizes, defaults 60,
-- 24; a proof made for other sizes is nil, "EPROTO: ...")
function _M.proof_verify(proof, keys, opts)
  checktype(proof, "string", 1, "proof_verify")
  checktype(keys, "table", 2, "proof_verify")
  opts = opts_arg(opts, 3, "proof_verify")
  local t = opt_count(opts, "vdf_t", "proof_verify")
  local E, K = opt_sizes(opts, "proof_verify")
  local k = {}
  for _, party in ipairs({ "provider", "consumer", "claim" }) do
    local v = keys[party]
    if party == "claim" and v == nil then
      k[3] = k[1]
    else
      k[#k + 1] = key_of(v, KLEN) or
        error(format("keys.%s: expected a key of 32 bytes or 64 hex digits", party), 2)
    end
  end
  return C.proof_verify(proof, k[1], k[2], k[3], t, E, K)
end

-- ---- VDF blocks -----------------------------------------------------------------

--- vdf_make(prev_hash, T) -> hex V (blocks for the delay) | nil, err
function _M.vdf_make(prev_hash, t)
  checktype(prev_hash, "string", 1, "vdf_make")
  checktype(t, "number", 2, "vdf_make")
  local prev = unhex_n(prev_hash, HLEN)
  if not prev then return fail("EINVAL", "prevHash: expected 64 hex digits") end
  if not is_count(t) or t < 1 then return fail("ERANGE", "T must be an integer >= 1") end
  local v, err = C.vdf_make(prev, t)
  if not v then return nil, err end
  return hex(v)
end

--- vdf_decode(hex V) -> { t =, y = hex, proof = hex } | nil, err
function _M.vdf_decode(v)
  checktype(v, "string", 1, "vdf_decode")
  local t, y, proof = C.vdf_unpack(unhex_n(v, VDF_LEN) or "")
  if not t then return fail("EINVAL", "not a VDF block (1056 hex digits, tag WP-VDF01)") end
  return { t = t, y = hex(y), proof = hex(proof) }
end

-- ---- rotation records and attestations ---------------------------------------

local PARTIES = { provider = C.PROVIDER, consumer = C.CONSUMER }
local REASONS = { scheduled = C.ROTATE_SCHEDULED, manual = C.ROTATE_MANUAL, forced = C.ROTATE_FORCED }

-- a rotation record table -> canonical bytes, record hash | nil, why
local function torotation(r)
  if type(r) ~= "table" then return nil, "not a table" end
  local lease = hexfield(r, "leaseId", HLEN)
  if not lease then return nil, "leaseId: expected 64 hex digits" end
  local key = hexfield(r, "newKey", KLEN)
  if not key then return nil, "newKey: expected 64 hex digits" end
  local prev = hexfield(r, "prevHash", HLEN)
  if prev == false then return nil, "prevHash: expected 64 hex digits" end
  if not is_count(r.index) or r.index > 4294967295 then return nil, "index: expected an integer 0 .. 2^32-1" end
  local party, reason = PARTIES[r.party], REASONS[r.reason]
  if not party then return nil, 'party: expected "provider" or "consumer"' end
  if not reason then return nil, 'reason: expected "scheduled", "manual" or "forced"' end
  local es, et = r.effectiveSequence, r.effectiveTimestamp
  local kind, eff
  if es ~= nil and et == nil and is_count(es) then
    kind, eff = C.EFFECTIVE_SEQUENCE, be64(es)
  elseif et ~= nil and es == nil then
    kind, eff = C.EFFECTIVE_TIMESTAMP, ts8(et)
  end
  if not eff then return nil, "exactly one of effectiveSequence (number) and effectiveTimestamp (ns string)" end
  return C.rotation_pack(lease, party, r.index, key, kind, eff, prev or ZERO32, reason)
end

local function rotation(r, fname)
  checktype(r, "table", 1, fname)
  local b, h = torotation(r)
  if not b then return fail("EINVAL", "rotation record %s", h) end
  return b, h
end

--- rotation_bytes(record) -> 127 bytes | nil, err
function _M.rotation_bytes(r)
  local b, h = rotation(r, "rotation_bytes")
  if not b then return nil, h end
  return b
end

--- rotation_hash(record) -> hex | nil, err
function _M.rotation_hash(r)
  local b, h = rotation(r, "rotation_hash")
  if not b then return nil, h end
  return hex(h)
end

--- rotation_sign(record, secret) -> record (signature set) | nil, err
function _M.rotation_sign(r, secret)
  checktype(r, "table", 1, "rotation_sign")
  local sk = checkkey(secret, SKLEN, 2, "rotation_sign")
  local b, h = rotation(r, "rotation_sign")
  if not b then return nil, h end
  local sig, err = sign(sk, h)
  if not sig then return nil, err end
  r.signature = hex(sig)
  return r
end

--- rotation_verify(record, signer_pub) -> boolean | nil, err
function _M.rotation_verify(r, signer_pub)
  checktype(r, "table", 1, "rotation_verify")
  local pk = checkkey(signer_pub, KLEN, 2, "rotation_verify")
  local b, h = rotation(r, "rotation_verify")
  if not b then return nil, h end
  local sig = hexfield(r, "signature", SLEN)
  if not sig then return fail("EINVAL", "rotation record signature: expected 128 hex digits") end
  return verify(pk, h, sig)
end

local function lease_ts(lease_id, timestamp, fname)
  checktype(lease_id, "string", 1, fname)
  local ts = checkts(timestamp, 2, fname)
  local lease = unhex_n(lease_id, HLEN)
  if not lease then return fail("EINVAL", "leaseId: expected 64 hex digits") end
  if not ts then return fail("EINVAL", "timestamp: expected a decimal string of Unix nanoseconds") end
  return lease, ts
end

--- attestation_digest(lease_id, timestamp) -> 32 bytes | nil, err
function _M.attestation_digest(lease_id, timestamp)
  local lease, ts = lease_ts(lease_id, timestamp, "attestation_digest")
  if not lease then return nil, ts end
  return C.attestation_digest(lease, ts)
end

--- attest(lease_id, timestamp, secret) -> { timestamp_ns, signer, sig } | nil, err
function _M.attest(lease_id, timestamp, secret)
  local sk = checkkey(secret, SKLEN, 3, "attest")
  local lease, ts = lease_ts(lease_id, timestamp, "attest")
  if not lease then return nil, ts end
  local sig, err = sign(sk, C.attestation_digest(lease, ts))
  if not sig then return nil, err end
  return { timestamp_ns = ts_dec(ts), signer = hex(sub(sk, 33)), sig = hex(sig) }
end

--- attestation_verify(att, lease_id) -> boolean | nil, err
function _M.attestation_verify(att, lease_id)
  checktype(att, "table", 1, "attestation_verify")
  checktype(lease_id, "string", 2, "attestation_verify")
  local lease = unhex_n(lease_id, HLEN)
  if not lease then return fail("EINVAL", "leaseId: expected 64 hex digits") end
  local ts = ts8(att.timestamp_ns)
  if not ts then return fail("EINVAL", "attestation timestamp_ns: expected a decimal string") end
  local pub = hexfield(att, "signer", KLEN)
  if not pub then return fail("EINVAL", "attestation signer: expected 64 hex digits") end
  local sig = hexfield(att, "sig", SLEN)
  if not sig then return fail("EINVAL", "attestation sig: expected 128 hex digits") end
  return verify(pub, C.attestation_digest(lease, ts), sig)
end

return _M
