-- SPDX-License-Identifier: MIT
--- Challenges and signed statements on the uptime transport (docs/uptime.md,
-- "Challenges"): the provider's answers, its storage commitment and its
-- capacity attestation are signed by its key; a fisherman's evidence report
-- by the fisherman's. Everything signed is a domain-separated message over
-- canonical JSON (keys sorted, no spaces), hashed with SHA-256, signed with
-- Ed25519.
local wp = require "workproof"
local cjson = require "cjson.safe"
local host = require "workproof.host"

local type, pairs, ipairs, tostring, sort, concat, format = type, pairs, ipairs, tostring, table.sort,
  table.concat, string.format

local _M = {}

--- Canonical JSON: object keys sorted, arrays in order, no spaces; numbers
-- as cjson writes integers (only integers and strings are signed here).
local function canon(v)
  local t = type(v)
  if t == "table" then
    if v == cjson.null then return "null" end
    local n = #v
    if n > 0 or next(v) == nil then
      local parts = {}
      for i = 1, n do parts[i] = canon(v[i]) end
      if n == 0 then return "{}" end
      return "[" .. concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    sort(keys)
    local parts = {}
    for i, k in ipairs(keys) do parts[i] = cjson.encode(k) .. ":" .. canon(v[k]) end
    return "{" .. concat(parts, ",") .. "}"
  end
  return cjson.encode(v)
end
_M.canon = canon

local function digest(domain, body)
  return wp.sha256(domain .. "\n" .. canon(body))
end

--- Sign `body` (a table without `signature`) for `domain` with a 64-byte
-- secret; returns the body with signer (hex key) and signature (hex) set.
function _M.sign(domain, body, secret, pub_hex)
  body.signature = nil
  body.signer = pub_hex
  body.signature = wp.hex(wp.ed25519.sign(secret, digest(domain, body)))
  return body
end

--- Verify a signed body: its signature by body.signer (or by `expect`
-- when given, which must equal the signer). true | false, reason.
function _M.verify(domain, body, expect)
  if type(body) ~= "table" or type(body.signature) ~= "string" or type(body.signer) ~= "string" then
    return false, "UNSIGNED"
  end
  if expect and body.signer:lower() ~= expect:lower() then return false, "WRONG_SIGNER" end
  local sig, pk = wp.unhex(body.signature), wp.unhex(body.signer)
  if not sig or #sig ~= 64 or not pk or #pk ~= 32 then return false, "BAD_SIGNATURE" end
  local copy = {}
  for k, v in pairs(body) do if k ~= "signature" then copy[k] = v end end
  if not wp.ed25519.verify(pk, digest(domain, copy), sig) then return false, "BAD_SIGNATURE" end
  return true
end

_M.ANSWER = "workproof-challenge-answer-v1"
_M.STORAGE = "workproof-storage-commitment-v1"
_M.CAPACITY = "workproof-capacity-v1"
_M.REPORT = "workproof-evidence-report-v1"

local function fresh_nonce()
  local f = assert(io.open("/dev/urandom", "rb"))
  local s = f:read(32)
  f:close()
  return wp.hex(s)
end
_M.nonce = fresh_nonce

--- The provider's side: compute the answer to a challenge (unsigned).
-- ch = { kind, nonce, params, scope (lease id or "provider") }; storage =
-- { path, commitment } for storage challenges. answer | nil, err.
function _M.answer(ch, storage_ctx)
  if type(ch) ~= "table" or type(ch.kind) ~= "string" or type(ch.nonce) ~= "string"
    or #ch.nonce ~= 64 or not ch.nonce:match("^%x+$") then
    return nil, "a challenge is { kind, nonce (64 hex), params }"
  end
  local params = type(ch.params) == "table" and ch.params or {}
  local out = { kind = ch.kind, nonce = ch.nonce:lower(), params = params, scope = ch.scope }
  local t0 = host.now()
  if ch.kind == "latency" then
    out.result = {}
  elseif ch.kind == "compute" then
    local T = params.t
    if type(T) ~= "number" or T < 1 or T > 1e9 or T ~= math.floor(T) then return nil, "compute: params.t 1 .. 1e9" end
    local y, proof = host.vdf_eval(wp.unhex(out.nonce), T)
    if not y then return nil, "compute: " .. tostring(proof) end
    out.result = { y = wp.hex(y), proof = wp.hex(proof) }
  elseif ch.kind == "storage" then
    if not storage_ctx then return nil, "storage: this lease has no committed storage" end
    local st = require "workproof.uptime.storage"
    local k = params.k
    if type(k) ~= "number" or k < 1 or k > 256 then return nil, "storage: params.k 1 .. 256" end
    local idx = st.indices(out.nonce, storage_ctx.commitment.chunks, k)
    local ans, err = st.prove(storage_ctx.path, storage_ctx.commitment, idx)
    if not ans then return nil, "storage: " .. tostring(err) end
    out.result = { indices = idx, answer = ans }
  else
    return nil, "unknown kind " .. ch.kind
  end
  out.work_ms = math.floor((host.now() - t0) * 1e6) / 1e3
  return out
end

--- The challenger's check of a signed answer to the challenge it issued.
-- ch = what it sent ({ kind, nonce, params, scope }), key = the provider key
-- that must have signed, commitment for storage; storage_key (the
-- consumer's, storage.key) also checks each chunk against the consumer's
-- stream (without it: the inclusion proofs against the commitment's root,
-- what a third party can check). true | false, reason.
function _M.check(ch, ans, key, commitment, storage_key)
  local ok, why = _M.verify(_M.ANSWER, ans, key)
  if not ok then return false, why end
  if ans.kind ~= ch.kind or ans.nonce ~= ch.nonce or canon(ans.params) ~= canon(ch.params)
    or ans.scope ~= ch.scope then
    return false, "NOT_THIS_CHALLENGE"   -- a replayed answer to another nonce, or another lease's
  end
  local r = ans.result
  if type(r) ~= "table" then return false, "NO_RESULT" end
  if ch.kind == "compute" then
    local y, proof = wp.unhex(r.y or ""), wp.unhex(r.proof or "")
    if not y or not proof or not wp.vdf.verify(wp.unhex(ch.nonce), ch.params.t, y, proof) then
      return false, "BAD_VDF"
    end
  elseif ch.kind == "storage" then
    if not commitment then return false, "NO_COMMITMENT" end
    local st = require "workproof.uptime.storage"
    local idx = st.indices(ch.nonce, commitment.chunks, ch.params.k)
    if canon(idx) ~= canon(r.indices) then return false, "WRONG_INDICES" end
    local sok, swhy = st.verify(commitment, idx, r.answer, { key = storage_key })
    if not sok then return false, "STORAGE: " .. tostring(swhy) end
  end
  return true
end

--- One challenge over the transport: POST it, time it, check the answer.
-- o = { url, tls, key (expected signer), ch, deadline_s, commitment, storage_key }.
-- Returns a result { kind, nonce, issuedAt, deadline, ms, ok, why, answer }.
function _M.run(o)
  local ch = o.ch
  local res = { kind = ch.kind, nonce = ch.nonce, params = ch.params, issuedAt = wp.time(),
    deadline = wp.time() + o.deadline_s, deadline_s = o.deadline_s }
  local t0 = host.now()
  local st, hd_or_err, body = host.http_request { url = o.url, method = "POST", body = cjson.encode(ch),
    headers = { ["content-type"] = "application/json" }, timeout = o.deadline_s * 3 + 5,
    connect_timeout = 5, tls = o.tls }
  res.ms = (host.now() - t0) * 1000
  if st ~= 200 then
    res.ok, res.why = false, st and ("HTTP " .. st .. " " .. tostring(body)) or tostring(hd_or_err)
    return res
  end
  local ans = cjson.decode(body or "")
  res.answer = ans
  res.ok, res.why = _M.check(ch, ans, o.key, o.commitment, o.storage_key)
  return res
end

--- A capacity attestation's check: shares within capacity in every
-- dimension, and (when given) the lease listed. true | false, reason.
function _M.capacity_check(att, lease_id)
  if type(att) ~= "table" or type(att.capacity) ~= "table" or type(att.leases) ~= "table" then
    return false, "MALFORMED"
  end
  local sum, listed = {}, false
  for _, l in ipairs(att.leases) do
    if type(l) == "table" and type(l.share) == "table" then
      if l.id == lease_id then listed = true end
      for dim, v in pairs(l.share) do sum[dim] = (sum[dim] or 0) + (tonumber(v) or 0) end
    end
  end
  for dim, v in pairs(sum) do
    local cap = tonumber(att.capacity[dim])
    if not cap or v > cap then
      return false, format("OVERCOMMITTED: %s shares %g > capacity %s", dim, v, tostring(att.capacity[dim]))
    end
  end
  if lease_id and not listed then return false, "LEASE_NOT_LISTED" end
  return true
end

return _M
