-- SPDX-License-Identifier: MIT
--- Heartbeat timestamp rules (docs/uptime.md, "Timestamp policy").
--
-- The chain verifier (wp.uptime.verify_chain) proves who signed what and in
-- which order; this policy decides whether the TIMES make sense:
--
--   * strictly increasing;
--   * each beat within tolerance_s of prev + interval_s. Earlier than
--     prev + interval - tolerance is rejected (TOO_EARLY: beats produced
--     faster than the cadence are batch fabrication); later than
--     prev + interval + tolerance opens a recorded gap (downtime) while the
--     chain stays valid;
--   * no beat in the future beyond drift_s of the verifier's clock (now());
--   * when a beat carries timekeeper attestations ({timestamp_ns, signer,
--     sig}, signer among conf.timekeepers, XE's message SHA-256(leaseId ||
--     BE64(timestamp_ns))), at least `threshold` must verify and the beat's
--     time must be within drift_s of their lower median.
--
-- Timestamps are decimal strings of Unix nanoseconds: they do not fit a
-- double, so they are split into (seconds, nanoseconds) and differences
-- are computed exactly (exact while below 2^53 ns, about 104 days).
local _M = {
  name = "timestamps",
  version = "1",
  description = "heartbeat timestamps: monotonic, on cadence, not in the future, anchored",
}

local type, tonumber, ipairs, floor, sort = type, tonumber, ipairs, math.floor, table.sort

local NS = 1e9

_M.schema = {
  interval_s = { type = "number", default = 60, min = 1, max = 86400,
    description = "expected time between beats" },
  tolerance_s = { type = "number", default = 30, min = 0, max = 86400,
    description = "allowed deviation from prev + interval; later opens a gap, earlier is rejected" },
  drift_s = { type = "number", default = 10, min = 0, max = 300,
    description = "clock drift allowed against the verifier's clock and timekeeper attestations" },
  timekeepers = { type = "array", default = {},
    elements = { type = "string", match = "^%x+$", min = 64, max = 64 },
    description = "hex Ed25519 keys of trusted timekeepers" },
  threshold = { type = "integer", default = 1, min = 1, max = 20,
    description = "valid attestations needed when a beat carries any" },
  require_attestations = { type = "boolean", default = false,
    description = "reject beats without attestations" },
}

function _M.self_check(conf)
  if conf.tolerance_s >= conf.interval_s then
    error("tolerance_s must be below interval_s (else an early beat cannot be told apart)")
  end
  if #conf.timekeepers > 0 and conf.threshold > #conf.timekeepers then
    error("threshold exceeds the number of timekeepers")
  end
  if conf.require_attestations and #conf.timekeepers == 0 then
    error("require_attestations needs timekeepers")
  end
end

--- Split a timestamp (canonical decimal string, or an exact integer
-- number) into seconds and nanoseconds; nil when malformed.
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
_M.split = split

-- a - b in nanoseconds (exact while |a - b| < 2^53)
local function diff(as, an, bs, bn)
  return (as - bs) * NS + (an - bn)
end

-- Lower median of the valid attestations' times, or nil, reason.
local function anchor(conf, atts, lease_id)
  local trusted, used, valid = {}, {}, {}
  for _, k in ipairs(conf.timekeepers) do trusted[k:lower()] = true end
  for _, a in ipairs(atts) do
    local signer = type(a) == "table" and type(a.signer) == "string" and a.signer:lower()
    if signer and trusted[signer] and not used[signer] then
      local ok = wp.uptime.attestation_verify(a, lease_id)
      local s, n = split(a.timestamp_ns)
      if ok and s then
        used[signer] = true
        valid[#valid + 1] = { s, n }
      end
    end
  end
  if #valid < conf.threshold then return nil end
  sort(valid, function(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end)
  local m = valid[floor((#valid - 1) / 2) + 1]
  return m[1], m[2]
end

--- Check the timestamps of a chain of beats (beat tables, any order of
-- verification: run wp.uptime.verify_chain for the signatures).
-- ctx: { lease_id = hex (default: the beats'), attestations = { [sequence] = {att...} }
--        (or beat.attestations), start_ns = decimal (lease start, optional) }
-- Returns { valid, reason, index, detail, gaps = {{from_ns, to_ns, missed}},
--           beats, downtime_ns, span_ns, uptime }.
function _M.check_chain(conf, beats, ctx)
  ctx = ctx or {}
  local res = { valid = true, beats = #beats, gaps = {}, downtime_ns = 0, span_ns = 0, uptime = 1 }
  local function fail(reason, i, detail)
    res.valid, res.reason, res.index, res.detail = false, reason, i, detail
    return res
  end
  local interval, tol, drift = conf.interval_s * NS, conf.tolerance_s * NS, conf.drift_s * NS
  local now_s = now()
  local now_whole = floor(now_s)
  local now_ns = (now_s - now_whole) * NS
  local ss, sn
  if ctx.start_ns ~= nil then
    ss, sn = split(ctx.start_ns)
    if not ss then error("ctx.start_ns: expected a decimal string of Unix nanoseconds", 2) end
  end
  local ps, pn, prev_ts, first_s, first_n
  for i, b in ipairs(beats) do
    local ts = type(b) == "table" and b.timestamp
    local s, n = split(ts)
    if not s then return fail("BAD_TIMESTAMP", i, "not a decimal string of Unix nanoseconds") end
    if diff(s, n, now_whole, now_ns) > drift then
      return fail("IN_FUTURE", i, ("%.3f s ahead of the verifier's clock"):format(diff(s, n, now_whole, now_ns) / NS))
    end
    if i == 1 then
      first_s, first_n = s, n
      if ss and diff(ss, sn, s, n) > drift then
        return fail("BEFORE_START", i, "before the lease started")
      end
    else
      local d = diff(s, n, ps, pn)
      if d <= 0 then return fail("NOT_INCREASING", i, ("%.3f s after the previous beat"):format(d / NS)) end
      if d < interval - tol then
        return fail("TOO_EARLY", i, ("%.3f s after the previous beat, cadence %g s +- %g s"):format(
          d / NS, conf.interval_s, conf.tolerance_s))
      end
      if d > interval + tol then
        local missed = floor(d / interval + 0.5) - 1
        if missed < 1 then missed = 1 end
        res.gaps[#res.gaps + 1] = { from_ns = prev_ts, to_ns = ts, missed = missed, index = i }
        res.downtime_ns = res.downtime_ns + (d - interval)
      end
    end
    local atts = b.attestations or (ctx.attestations and ctx.attestations[b.sequence])
    if atts ~= nil and (type(atts) ~= "table" or #atts > 0) then
      if type(atts) ~= "table" then return fail("BAD_ATTESTATION", i, "attestations must be an array") end
      local lease = ctx.lease_id or b.leaseId
      local as, an = anchor(conf, atts, lease)
      if not as then
        return fail("ATTESTATION_QUORUM", i, ("fewer than %d valid attestations from trusted timekeepers"):format(
          conf.threshold))
      end
      local d = diff(s, n, as, an)
      if d > drift or -d > drift then
        return fail("ATTESTATION_DRIFT", i, ("%.3f s from the timekeepers' time"):format(d / NS))
      end
    elseif conf.require_attestations then
      return fail("NO_ATTESTATION", i, "this lease requires timekeeper attestations on every beat")
    end
    ps, pn, prev_ts = s, n, ts
  end
  if first_s then
    res.span_ns = diff(ps, pn, first_s, first_n)
    local period = res.span_ns + interval
    res.uptime = 1 - res.downtime_ns / period
  end
  return res
end

--- The live check a consumer makes before it countersigns (its own clock,
-- now()): the beat is not ahead of it by more than drift_s (IN_FUTURE),
-- not behind it by more than drift_s plus the exchange's round trip
-- (STALE: a slow clock, or an old beat sent again), and on cadence after
-- the previous beat (NOT_INCREASING, TOO_EARLY; later than the cadence is
-- a gap, which the chain records). ctx: { rtt_s, start_ns }.
-- Returns true | false, reason, detail.
function _M.check_live(conf, beat, prev, ctx)
  ctx = ctx or {}
  local s, n = split(type(beat) == "table" and beat.timestamp)
  if not s then return false, "BAD_TIMESTAMP", "not a decimal string of Unix nanoseconds" end
  local now_s = now()
  local now_whole = floor(now_s)
  local ahead = diff(s, n, now_whole, (now_s - now_whole) * NS) / NS
  if ahead > conf.drift_s then
    return false, "IN_FUTURE", ("%.3f s ahead of this consumer's clock (drift_s %g)"):format(ahead, conf.drift_s)
  end
  if -ahead > conf.drift_s + (ctx.rtt_s or 0) then
    return false, "STALE", ("%.3f s behind this consumer's clock (drift_s %g)"):format(-ahead, conf.drift_s)
  end
  if prev then
    local ps, pn = split(prev.timestamp)
    local d = diff(s, n, ps, pn)
    if d <= 0 then return false, "NOT_INCREASING", ("%.3f s after the previous beat"):format(d / NS) end
    if d < (conf.interval_s - conf.tolerance_s) * NS then
      return false, "TOO_EARLY", ("%.3f s after the previous beat, cadence %g s +- %g s"):format(d / NS,
        conf.interval_s, conf.tolerance_s)
    end
  elseif ctx.start_ns then
    local ss, sn = split(ctx.start_ns)
    if ss and diff(ss, sn, s, n) > conf.drift_s * NS then return false, "BEFORE_START", "before the lease started" end
  end
  return true
end

return _M
