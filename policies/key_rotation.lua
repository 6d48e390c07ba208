-- SPDX-License-Identifier: MIT
--- Heartbeat key rotation (docs/uptime.md, "Key rotation").
--
-- Each party (provider, consumer) of a lease has a chain of rotation
-- records: index 0, 1, 2 ... each linking to the previous record's hash
-- (index 0 to 64 zeros) and signed by the OUTGOING key (the lease's initial
-- key for index 0, else the previous record's newKey), or by the governance
-- key when reason = "forced" (the outgoing key is lost or compromised).
-- A forced record wins over an ordinary one at the same index: the
-- ordinary one and everything that descends from it are superseded.
--
-- Record (JSON-shaped; canonical bytes and hash: wp.uptime.rotation_bytes):
--   { leaseId = hex, party = "provider" | "consumer", index = n,
--     newKey = hex, effectiveSequence = n | effectiveTimestamp = "ns",
--     prevHash = hex, reason = "scheduled" | "manual" | "forced",
--     signature = hex }
--
-- A rotation takes effect at its sequence (or at the first beat whose
-- timestamp is >= its timestamp): beats before it stay verifiable with the
-- old key, beats from it on must carry the new key's signature, so a beat
-- signed with a retired key after its retirement is rejected by the chain
-- verifier (BAD_PROVIDER_SIG / BAD_CONSUMER_SIG).
--
-- Hooks: verify_records, active_keys (the key ranges of
-- wp.uptime.verify_chain), due (when each party's next scheduled rotation
-- falls, against the injectable clock now()).
local _M = {
  name = "key_rotation",
  version = "1",
  description = "scheduled, manual and forced rotation of heartbeat keys",
}

local type, ipairs, pairs, tonumber, floor, sort = type, ipairs, pairs, tonumber, math.floor, table.sort

local NS, DAY = 1e9, 86400
local PARTIES = { "provider", "consumer" }

_M.schema = {
  schedule_days = { type = "number", default = 30, min = 1, max = 3650,
    description = "a key should be rotated this many days after it took effect" },
  grace_days = { type = "number", default = 3, min = 0, max = 365,
    description = "how long an overdue key is still accepted" },
  enforce_schedule = { type = "boolean", default = false,
    description = "beats signed with a key older than schedule + grace lose their key (NO_*_KEY)" },
  allow_manual = { type = "boolean", default = true,
    description = "accept unscheduled rotations signed by the outgoing key" },
  governance_key = { type = "string", match = "^%x+$", min = 64, max = 64,
    description = "hex Ed25519 key allowed to force rotations" },
}

local function lower(s) return type(s) == "string" and s:lower() or s end

-- (seconds, nanoseconds) of a canonical decimal timestamp, or nil
local function split(ts)
  if type(ts) == "number" then
    if ts < 0 or ts ~= floor(ts) or ts >= 2 ^ 53 then return nil end
    return floor(ts / NS), ts % NS
  end
  if type(ts) ~= "string" or #ts > 19 or not ts:match("^%d+$") or (#ts > 1 and ts:sub(1, 1) == "0") then
    return nil
  end
  if #ts <= 9 then return 0, tonumber(ts) end
  return tonumber(ts:sub(1, -10)), tonumber(ts:sub(-9))
end

local function join(s, n)
  if s == 0 then return ("%d"):format(n) end
  return ("%d%09d"):format(s, n)
end

-- a < b for timestamps; nil when either does not parse (an unverified beat)
local function ts_less(a, b)
  local as, an = split(a)
  local bs, bn = split(b)
  if not as or not bs then return nil end
  return as < bs or (as == bs and an < bn)
end

-- beats are untrusted here (the chain verifier names malformed ones later):
-- only well-formed ones take part in resolving times
local function usable(b)
  return type(b) == "table" and type(b.sequence) == "number" and split(b.timestamp) ~= nil
end

local function effective_of(r)
  return r.effectiveSequence ~= nil and "sequence" or "timestamp"
end

-- Validate one candidate record against the chain so far; nil or reason, detail.
local function check_record(conf, ctx, r, outgoing, prev_hash, retired, prev_rec)
  if lower(r.leaseId) ~= lower(ctx.lease_id) then return "LEASE_MISMATCH", "another lease's record" end
  if lower(r.prevHash or wp.uptime.ZERO_HASH) ~= prev_hash then
    return "BROKEN_LINK", "prevHash is not the previous record's hash"
  end
  local signer
  if r.reason == "forced" then
    if not conf.governance_key then return "NO_GOVERNANCE_KEY", "forced rotation but no governance_key" end
    signer = conf.governance_key
  else
    if r.reason == "manual" and not conf.allow_manual then
      return "MANUAL_DISABLED", "manual rotations are not allowed for this lease"
    end
    signer = outgoing
  end
  local ok, err = wp.uptime.rotation_verify(r, signer)
  if ok == nil then return "BAD_RECORD", err end
  if not ok then
    return "BAD_SIGNATURE", r.reason == "forced" and "not signed by the governance key"
      or "not signed by the outgoing key"
  end
  if retired[lower(r.newKey)] then return "KEY_REUSED", "newKey was already used by this party" end
  -- same-kind effective points must increase (mixed kinds: active_keys, with beats)
  if prev_rec and effective_of(prev_rec) == effective_of(r) then
    local ordered
    if effective_of(r) == "sequence" then ordered = r.effectiveSequence > prev_rec.effectiveSequence
    else ordered = ts_less(prev_rec.effectiveTimestamp, r.effectiveTimestamp) end
    if not ordered then return "NOT_MONOTONIC", "takes effect no later than the previous rotation" end
  end
  return nil
end

--- Check the rotation records of a lease (both parties, any order).
-- ctx: { lease_id = hex, initial = { provider = hex, consumer = hex } }
-- Returns { valid, reason, index, detail, chains = { provider = {...}, consumer = {...} },
--           superseded = { positions in records } }.
function _M.verify_records(conf, records, ctx)
  if type(ctx) ~= "table" or type(ctx.lease_id) ~= "string" or type(ctx.initial) ~= "table" then
    error("ctx needs lease_id and initial = { provider =, consumer = }", 2)
  end
  local res = { valid = true, chains = { provider = {}, consumer = {} }, superseded = {} }
  local function fail(reason, pos, detail)
    res.valid, res.reason, res.index, res.detail = false, reason, pos, detail
    return res
  end
  local groups = { provider = {}, consumer = {} }
  for pos, r in ipairs(records or {}) do
    if type(r) ~= "table" then return fail("BAD_RECORD", pos, "not a table") end
    local h, err = wp.uptime.rotation_hash(r)
    if not h then return fail("BAD_RECORD", pos, err) end
    local g = groups[r.party]
    g[r.index] = g[r.index] or {}
    g[r.index][#g[r.index] + 1] = { rec = r, pos = pos, hash = h }
  end
  for _, party in ipairs(PARTIES) do
    local g, chain = groups[party], res.chains[party]
    local outgoing = lower(ctx.initial[party])
    if type(outgoing) ~= "string" or #outgoing ~= 64 then
      error("ctx.initial." .. party .. ": expected the initial key as 64 hex digits", 2)
    end
    local prev_hash, retired, dead = wp.uptime.ZERO_HASH, { [outgoing] = true }, {}
    local k = 0
    while g[k] do
      local valid, first_err = {}, nil
      for _, c in ipairs(g[k]) do
        c.done = true
        if dead[lower(c.rec.prevHash or "")] then
          dead[c.hash] = true
          res.superseded[#res.superseded + 1] = c.pos
        else
          local why, detail = check_record(conf, ctx, c.rec, outgoing, prev_hash, retired, chain[#chain])
          if why then first_err = first_err or { why, c.pos, detail }
          else valid[#valid + 1] = c end
        end
      end
      local pick
      if #valid == 1 then
        pick = valid[1]
      elseif #valid > 1 then
        local forced = {}
        for _, c in ipairs(valid) do if c.rec.reason == "forced" then forced[#forced + 1] = c end end
        if #forced ~= 1 then
          return fail("FORKED", valid[2].pos, ("two valid %s records with index %d"):format(party, k))
        end
        pick = forced[1]
        for _, c in ipairs(valid) do
          if c ~= pick then
            dead[c.hash] = true
            res.superseded[#res.superseded + 1] = c.pos
          end
        end
      elseif first_err then
        return fail(first_err[1], first_err[2], first_err[3])
      else
        break -- every candidate descends from a superseded record
      end
      chain[#chain + 1] = pick.rec
      retired[lower(pick.rec.newKey)] = true
      outgoing, prev_hash = lower(pick.rec.newKey), pick.hash
      k = k + 1
    end
    -- what is left must descend from superseded records; anything else
    -- sits after a missing index
    local rest = {}
    for idx in pairs(g) do if idx >= k then rest[#rest + 1] = idx end end
    sort(rest)
    for _, idx in ipairs(rest) do
      for _, c in ipairs(g[idx]) do
        if not c.done then
          if not dead[lower(c.rec.prevHash or "")] then
            return fail("INDEX_GAP", c.pos, ("%s record index %d but index %d is missing"):format(party, idx, k))
          end
          dead[c.hash] = true
          res.superseded[#res.superseded + 1] = c.pos
        end
      end
    end
  end
  sort(res.superseded)
  return res
end

-- Sequence at which r takes effect (timestamp records need ctx.beats).
local function effective_seq(r, beats)
  if effective_of(r) == "sequence" then return r.effectiveSequence end
  if not beats then return nil, "NEEDS_BEATS" end
  local last
  for _, b in ipairs(beats) do
    if usable(b) then
      if ts_less(b.timestamp, r.effectiveTimestamp) == false then return b.sequence end
      last = b
    end
  end
  return last and last.sequence + 1 or 0
end

-- Timestamp (string) of the beat with sequence seq, if the beats hold it.
local function time_of(beats, seq)
  if not beats or #beats == 0 then return nil end
  if not usable(beats[1]) then return nil end
  local b = beats[seq - beats[1].sequence + 1]
  return usable(b) and b.sequence == seq and b.timestamp or nil
end

-- First sequence whose beat time is >= t (nil when none).
local function first_at(beats, t)
  for _, b in ipairs(beats) do
    if usable(b) and ts_less(b.timestamp, t) == false then return b.sequence end
  end
  return nil
end

local function add_days(ts, days)
  local s, n = split(ts)
  local secs = days * DAY
  local whole = floor(secs)
  n = n + (secs - whole) * NS
  s = s + whole + floor(n / NS)
  return join(s, n % NS)
end

-- The keys of one party over time: { { key, first, since_ns } ... }
local function timeline(chain, initial, ctx)
  local beats = ctx.beats
  local b1 = beats and usable(beats[1]) and beats[1]
  local first = ctx.first_sequence or (b1 and b1.sequence) or 0
  local start = ctx.start_ns or (b1 and b1.timestamp)
  local t = { { key = initial, first = first, since_ns = start } }
  local last_rec
  for _, r in ipairs(chain) do
    local eff, err = effective_seq(r, beats)
    if not eff then return nil, err, r end
    local prev = t[#t]
    local ordered
    if last_rec and effective_of(r) == "timestamp" and effective_of(last_rec) == "timestamp" then
      -- both may lie past the last beat known: order them by time
      ordered = ts_less(last_rec.effectiveTimestamp, r.effectiveTimestamp) and eff >= prev.first
    else
      ordered = eff > prev.first or (not last_rec and eff == prev.first)
    end
    if not ordered then return nil, "NOT_MONOTONIC", r end
    last_rec = r
    local since = effective_of(r) == "timestamp" and r.effectiveTimestamp or time_of(beats, eff)
    t[#t + 1] = { key = lower(r.newKey), first = eff, since_ns = since }
  end
  return t
end

--- The key ranges wp.uptime.verify_chain needs:
-- { provider = { {first, last, key}, ... }, consumer = { ... } }, or
-- nil, reason, index, detail when the records do not hold.
-- ctx: as verify_records, plus beats (to resolve effectiveTimestamp and to
-- enforce the schedule), first_sequence, start_ns (when the initial keys
-- took effect; default the first beat's time).
function _M.active_keys(conf, records, ctx)
  local res = _M.verify_records(conf, records, ctx)
  if not res.valid then return nil, res.reason, res.index, res.detail end
  local out = {}
  for _, party in ipairs(PARTIES) do
    local t, err, rec = timeline(res.chains[party], lower(ctx.initial[party]), ctx)
    if not t then
      local pos
      for i, r in ipairs(records) do if r == rec then pos = i end end
      return nil, err, pos, err == "NEEDS_BEATS" and "effectiveTimestamp needs ctx.beats"
        or "effective point not after the previous rotation's"
    end
    local ranges = {}
    for i, k in ipairs(t) do
      local last = t[i + 1] and t[i + 1].first - 1 or nil
      if conf.enforce_schedule and ctx.beats and k.since_ns then
        local expiry = first_at(ctx.beats, add_days(k.since_ns, conf.schedule_days + conf.grace_days))
        if expiry and (last == nil or expiry - 1 < last) then last = expiry - 1 end
      end
      if last == nil or last >= k.first then
        ranges[#ranges + 1] = { first = k.first, last = last, key = k.key }
      end
    end
    out[party] = ranges
  end
  return out
end

--- When each party's current key is due for its scheduled rotation.
-- Returns { provider = { key, since_ns, due_ns, overdue, expired }, consumer = ... }
-- (due_ns nil when the key's start time is unknown). overdue: now() is past
-- due; expired: past due + grace.
function _M.due(conf, records, ctx)
  local res = _M.verify_records(conf, records, ctx)
  if not res.valid then return nil, res.reason, res.index, res.detail end
  local now_s = now()
  local out = {}
  for _, party in ipairs(PARTIES) do
    local t, err = timeline(res.chains[party], lower(ctx.initial[party]), ctx)
    if not t then return nil, err end
    local cur = t[#t]
    local info = { key = cur.key, since_ns = cur.since_ns }
    if cur.since_ns then
      info.due_ns = add_days(cur.since_ns, conf.schedule_days)
      local ds = split(info.due_ns)
      info.overdue = now_s > ds
      info.expired = now_s > ds + conf.grace_days * DAY
    end
    out[party] = info
  end
  return out
end

return _M
