-- SPDX-License-Identifier: MIT
--- An uptime agent's durable state (docs/uptime.md, "Agents"): one SQLite
-- file per agent (`<state_dir>/uptime.db`, synchronous=FULL: a beat is on
-- disk before the agent acknowledges it), shared by the provider and the
-- consumer roles.
--
--   leases     the leases this agent follows (id, keys, start, nonce)
--   beats      dual-signed beats, one per (lease, sequence): the chain
--   pending    provider only: the beat it signed and sent, not yet
--              countersigned (resent until acknowledged, across restarts)
--   rotations  key rotation records of both parties (acked: the peer has it)
--   secrets    this agent's rotated secret keys (seeds), per lease
--   evidence   what the peer did wrong, kept (equivocations, refused
--              beats, superseded beats): the disputes' raw material
--   epochs, claims   the live roll-up
local store = require "workproof.store"
local fs = require "workproof.fs"
local wp = require "workproof"
local cjson = require "cjson.safe"

local u = wp.uptime
local type, tonumber, ipairs, format = type, tonumber, ipairs, string.format

local _M = {}
local mt = {}
mt.__index = mt

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS leases(id TEXT PRIMARY KEY, provider_key TEXT NOT NULL,
      consumer_key TEXT NOT NULL, start_ns TEXT NOT NULL, nonce TEXT NOT NULL, created REAL NOT NULL)]],
  [[CREATE TABLE IF NOT EXISTS beats(lease TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL,
      prev TEXT NOT NULL, psig TEXT NOT NULL, csig TEXT NOT NULL, hash TEXT NOT NULL, at REAL NOT NULL,
      PRIMARY KEY(lease, seq))]],
  [[CREATE TABLE IF NOT EXISTS pending(lease TEXT PRIMARY KEY, seq INTEGER NOT NULL, ts TEXT NOT NULL,
      prev TEXT NOT NULL, psig TEXT NOT NULL, made REAL NOT NULL)]],
  [[CREATE TABLE IF NOT EXISTS rotations(lease TEXT NOT NULL, party TEXT NOT NULL, idx INTEGER NOT NULL,
      record TEXT NOT NULL, hash TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY(lease, party, idx))]],
  [[CREATE TABLE IF NOT EXISTS secrets(lease TEXT NOT NULL, idx INTEGER NOT NULL, seed TEXT NOT NULL,
      PRIMARY KEY(lease, idx))]],
  [[CREATE TABLE IF NOT EXISTS evidence(id INTEGER PRIMARY KEY, lease TEXT NOT NULL, kind TEXT NOT NULL,
      seq INTEGER, at REAL NOT NULL, data TEXT NOT NULL)]],
  [[CREATE TABLE IF NOT EXISTS epochs(lease TEXT NOT NULL, idx INTEGER NOT NULL, record TEXT NOT NULL,
      hash TEXT NOT NULL, PRIMARY KEY(lease, idx))]],
  [[CREATE TABLE IF NOT EXISTS challenges(id INTEGER PRIMARY KEY, lease TEXT NOT NULL, kind TEXT NOT NULL,
      issued REAL NOT NULL, deadline REAL NOT NULL, passed INTEGER NOT NULL, degraded INTEGER NOT NULL,
      ms REAL NOT NULL, detail TEXT, answer TEXT)]],
  [[CREATE TABLE IF NOT EXISTS statements(lease TEXT NOT NULL, kind TEXT NOT NULL, data TEXT NOT NULL,
      PRIMARY KEY(lease, kind))]],
  [[CREATE TABLE IF NOT EXISTS claims(lease TEXT NOT NULL, idx INTEGER NOT NULL, enc TEXT NOT NULL,
      hash TEXT NOT NULL, csig TEXT, PRIMARY KEY(lease, idx))]],
}

--- Lease id (docs/uptime.md, "Lease"): SHA-256 of "workproof-lease-v1" ||
-- providerKey (32) || consumerKey (32) || start (8-byte big-endian Unix ns)
-- || nonce (16). Keys and nonce in hex, start a decimal ns string.
function _M.lease_id(provider_key, consumer_key, start_ns, nonce)
  local function raw(h, n, what)
    if type(h) ~= "string" or #h ~= 2 * n or not h:match("^%x+$") then
      error(format("%s: expected %d hex digits", what, 2 * n), 3)
    end
    return wp.unhex(h)
  end
  if type(start_ns) ~= "string" or not start_ns:match("^%d+$") or #start_ns > 19 then
    error("start: expected a decimal string of Unix nanoseconds", 2)
  end
  -- 8 bytes big-endian from the decimal string, exactly (no doubles)
  local digits, be = start_ns, {}
  for i = 8, 1, -1 do
    -- divide the decimal string by 256, keeping the remainder
    local q, r = {}, 0
    for d in digits:gmatch("%d") do
      local cur = r * 10 + tonumber(d)
      q[#q + 1] = math.floor(cur / 256)
      r = cur % 256
    end
    be[i] = string.char(r)
    digits = table.concat(q):gsub("^0+", "")
    if digits == "" then digits = "0" end
  end
  if digits ~= "0" then error("start: beyond 2^64 ns", 2) end
  return wp.hex(wp.sha256("workproof-lease-v1" .. raw(provider_key, 32, "provider key")
    .. raw(consumer_key, 32, "consumer key") .. table.concat(be) .. raw(nonce, 16, "nonce")))
end

--- Open (creating) the agent's database under state_dir.
function _M.open(state_dir)
  local ok, err = fs.mkdir_p(state_dir, 448)   -- 0700: the file holds secret keys
  if not ok then return nil, err end
  local db, derr = store.open(state_dir .. "/uptime.db")
  if not db then return nil, derr end
  for _, pragma in ipairs({ "PRAGMA synchronous=FULL" }) do
    local pok, perr = db:exec(pragma)
    if not pok then db:close() return nil, perr end
  end
  for _, sql in ipairs(SCHEMA) do
    local sok, serr = db:exec(sql)
    if not sok then db:close() return nil, serr end
  end
  return setmetatable({ db = db }, mt)
end

function mt:close() self.db:close() end

-- Every write goes through here: a failure is an error (the caller's
-- exchange fails and nothing is acknowledged).
function mt:x(sql, ...)
  local r, err = self.db:exec(sql, ...)
  if not r then error(err, 2) end
  return r
end

function mt:tx(fn)
  local ok, err = self.db:transaction(function() fn() return true end)
  if not ok then error(err, 2) end
end

function mt:add_lease(l)
  local row = self:x("SELECT * FROM leases WHERE id = ?", l.id)[1]
  if row then
    if row.provider_key ~= l.provider_key or row.consumer_key ~= l.consumer_key then
      return nil, "lease " .. l.id .. ": the stored keys differ from the configured ones"
    end
    return true
  end
  self:x("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?)", l.id, l.provider_key, l.consumer_key, l.start_ns,
    l.nonce, wp.time())
  return true
end

--- One beat as a line of the chain file (the `uptime verify` format).
function _M.beat_json(b)
  return format('{"leaseId":"%s","sequence":%d,"timestamp":"%s","prevHash":"%s","providerSig":"%s",'
    .. '"consumerSig":"%s","hash":"%s"%s}', b.leaseId, b.sequence, b.timestamp, b.prevHash, b.providerSig,
    b.consumerSig, b.hash, b.vdf and (',"vdf":"' .. b.vdf .. '"') or "")
end

--- One rotation record as a line of a rotations file (`verify --rotations`).
function _M.rotation_json(r)
  local eff = r.effectiveSequence and format('"effectiveSequence":%d', r.effectiveSequence)
    or format('"effectiveTimestamp":"%s"', r.effectiveTimestamp)
  return format('{"leaseId":"%s","party":"%s","index":%d,"newKey":"%s",%s,"prevHash":"%s","reason":"%s",'
    .. '"signature":"%s"}', r.leaseId, r.party, r.index, r.newKey, eff, r.prevHash, r.reason, r.signature)
end
local rotation_json = _M.rotation_json

local function beat_of(r)
  if not r then return nil end
  return { leaseId = r.lease, sequence = r.seq, timestamp = r.ts, prevHash = r.prev, providerSig = r.psig,
    consumerSig = r.csig, hash = r.hash, at = r.at }
end
_M.beat_of = beat_of

function mt:head(lease)
  return beat_of(self:x("SELECT * FROM beats WHERE lease = ? ORDER BY seq DESC LIMIT 1", lease)[1])
end

function mt:beat(lease, seq)
  return beat_of(self:x("SELECT * FROM beats WHERE lease = ? AND seq = ?", lease, seq)[1])
end

function mt:beats(lease, from, limit)
  local out = {}
  for i, r in ipairs(self:x("SELECT * FROM beats WHERE lease = ? AND seq >= ? ORDER BY seq LIMIT ?", lease,
    from or 0, limit or -1)) do
    out[i] = beat_of(r)
  end
  return out
end

function mt:count(lease)
  return self:x("SELECT count(*) AS n FROM beats WHERE lease = ?", lease)[1].n
end

--- Append a verified dual-signed beat (and drop the pending one).
function mt:append(b)
  self:x("INSERT INTO beats VALUES (?, ?, ?, ?, ?, ?, ?, ?)", b.leaseId, b.sequence, b.timestamp, b.prevHash,
    b.providerSig, b.consumerSig, b.hash, wp.time())
  self:x("DELETE FROM pending WHERE lease = ? AND seq <= ?", b.leaseId, b.sequence)
end

function mt:pending(lease)
  local r = self:x("SELECT * FROM pending WHERE lease = ?", lease)[1]
  if not r then return nil end
  return { leaseId = r.lease, sequence = r.seq, timestamp = r.ts, prevHash = r.prev, providerSig = r.psig },
    r.made
end

function mt:set_pending(b)
  self:x("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?)", b.leaseId, b.sequence, b.timestamp,
    b.prevHash, b.providerSig, wp.time())
end

-- ---- rotations and secrets -------------------------------------------------------

function mt:rotations(lease)
  local out = {}
  for i, r in ipairs(self:x("SELECT record, acked FROM rotations WHERE lease = ? ORDER BY party, idx", lease)) do
    out[i] = assert(cjson.decode(r.record))
    out[i].acked = r.acked == 1
  end
  return out
end

function mt:add_rotation(rec, acked)
  self:x("INSERT OR IGNORE INTO rotations VALUES (?, ?, ?, ?, ?, ?)", rec.leaseId, rec.party, rec.index,
    rotation_json(rec), u.rotation_hash(rec), acked and 1 or 0)
end

function mt:ack_rotations(lease, party, upto)
  self:x("UPDATE rotations SET acked = 1 WHERE lease = ? AND party = ? AND idx <= ?", lease, party, upto)
end

function mt:secrets(lease)
  local out = {}
  for _, r in ipairs(self:x("SELECT idx, seed FROM secrets WHERE lease = ? ORDER BY idx", lease)) do
    out[r.idx] = r.seed
  end
  return out
end

function mt:add_secret(lease, idx, seed_hex)
  self:x("INSERT OR REPLACE INTO secrets VALUES (?, ?, ?)", lease, idx, seed_hex)
end

-- ---- evidence ----------------------------------------------------------------------

--- Keep what the peer sent that was refused or contradicts the chain:
-- kind (EQUIVOCATION, SUPERSEDED, REFUSED_<reason>, FORK ...), data a table.
function mt:evidence(lease, kind, seq, data)
  self:x("INSERT INTO evidence(lease, kind, seq, at, data) VALUES (?, ?, ?, ?, ?)", lease, kind, seq, wp.time(),
    cjson.encode(data) or "{}")
end

function mt:evidence_list(lease, kind)
  local rows = kind and self:x("SELECT * FROM evidence WHERE lease = ? AND kind = ? ORDER BY id", lease, kind)
    or self:x("SELECT * FROM evidence WHERE lease = ? ORDER BY id", lease)
  for _, r in ipairs(rows) do r.data = cjson.decode(r.data) end
  return rows
end

-- ---- challenges and signed statements ----------------------------------------------

function mt:add_challenge(lease, r)
  self:x("INSERT INTO challenges(lease, kind, issued, deadline, passed, degraded, ms, detail, answer) "
    .. "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", lease, r.kind, r.issuedAt, r.deadline, r.passed and 1 or 0,
    r.degraded and 1 or 0, r.ms, r.detail, r.answer and cjson.encode(r.answer) or nil)
end

--- The last n challenges of a lease, oldest first.
function mt:challenges(lease, n)
  local rows = self:x("SELECT * FROM challenges WHERE lease = ? ORDER BY id DESC LIMIT ?", lease, n or -1)
  local out = {}
  for i = #rows, 1, -1 do
    local r = rows[i]
    out[#out + 1] = { kind = r.kind, issuedAt = r.issued, deadline = r.deadline, passed = r.passed == 1,
      degraded = r.degraded == 1, ms = r.ms, detail = r.detail }
  end
  return out
end

--- A signed statement kept per lease (the provider's storage commitment,
-- its capacity attestation): kind -> table.
function mt:statement(lease, kind)
  local r = self:x("SELECT data FROM statements WHERE lease = ? AND kind = ?", lease, kind)[1]
  return r and cjson.decode(r.data) or nil
end

function mt:set_statement(lease, kind, t)
  self:x("INSERT OR REPLACE INTO statements VALUES (?, ?, ?)", lease, kind, cjson.encode(t))
end

-- ---- roll-up -----------------------------------------------------------------------

function mt:epochs(lease)
  local out = {}
  for i, r in ipairs(self:x("SELECT record FROM epochs WHERE lease = ? ORDER BY idx", lease)) do
    out[i] = cjson.decode(r.record)
  end
  return out
end

function mt:epoch_count(lease)
  return self:x("SELECT count(*) AS n FROM epochs WHERE lease = ?", lease)[1].n
end

function mt:claims(lease)
  return self:x("SELECT idx, enc, hash, csig FROM claims WHERE lease = ? ORDER BY idx", lease)
end

function mt:claim(lease, idx)
  return self:x("SELECT idx, enc, hash, csig FROM claims WHERE lease = ? AND idx = ?", lease, idx)[1]
end

--- After beat b was appended: close an epoch when it completes one
-- (epoch_beats beats, by sequence), and a claim when that epoch completes
-- claim_epochs. Deterministic, so both parties reach the same records.
-- Returns the new claim (unsigned table) when one completed, else nil.
function mt:rollup(b, epoch_beats, claim_epochs)
  if (b.sequence + 1) % epoch_beats ~= 0 then return nil end
  local lease = b.leaseId
  local idx = (b.sequence + 1) / epoch_beats - 1
  if self:x("SELECT 1 FROM epochs WHERE lease = ? AND idx = ?", lease, idx)[1] then return nil end
  local beats = self:beats(lease, b.sequence + 1 - epoch_beats, epoch_beats)
  local hashes = {}
  for i, x in ipairs(beats) do hashes[i] = x.hash end
  local prev = idx > 0 and self:x("SELECT hash FROM epochs WHERE lease = ? AND idx = ?", lease, idx - 1)[1]
  local e = assert(u.epoch_make(lease, idx, hashes, prev and prev.hash or nil, { epoch_beats = epoch_beats }))
  self:x("INSERT INTO epochs VALUES (?, ?, ?, ?)", lease, idx, cjson.encode(e), e.hash)
  if (idx + 1) % claim_epochs ~= 0 then return nil end
  local cidx = (idx + 1) / claim_epochs - 1
  local es = {}
  for i, r in ipairs(self:x("SELECT record FROM epochs WHERE lease = ? AND idx >= ? ORDER BY idx LIMIT ?", lease,
    idx + 1 - claim_epochs, claim_epochs)) do
    es[i] = cjson.decode(r.record)
  end
  local first = self:beat(lease, (idx + 1 - claim_epochs) * epoch_beats)
  local pc = cidx > 0 and self:claim(lease, cidx - 1)
  return assert(u.claim_make(es, { index = cidx, period_start = first.timestamp, period_end = b.timestamp,
    prev_claim_hash = pc and pc.hash or nil, epoch_beats = epoch_beats, claim_epochs = claim_epochs }))
end

function mt:add_claim(lease, idx, enc, csig)
  self:x("INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?)", lease, idx, wp.hex(enc),
    u.claim_hash(u.claim_decode(enc)), csig and wp.hex(csig) or nil)
  if csig then self:x("UPDATE claims SET csig = ? WHERE lease = ? AND idx = ?", wp.hex(csig), lease, idx) end
end

return _M
