-- SPDX-License-Identifier: MIT
--- The uptime agents (docs/uptime.md, "Agents"): `workproof uptime provider
-- CONFIG.lua` and `workproof uptime consumer CONFIG.lua`.
--
-- The provider serves the authenticated transport (TLS 1.3, both sides'
-- certificates bound to their Ed25519 identity keys and pinned from the
-- lease: docs/transport.md); the consumer connects to each of its
-- providers. One exchange per step, always started by the consumer:
--
--   POST /v1/leases/{id}/exchange
--     { last = its newest dual-signed beat (the acknowledgement) | null,
--       rotations = its records the provider has not acknowledged,
--       seen = { provider = n, consumer = n } (highest record index held),
--       claimAck = { index, signature } | null, refused = { sequence, reason } | null }
--   200 { ack = sequence | -1, beat = the next provider-signed beat | null,
--         wait = seconds until the next one is due, rotations, seen, claim = hex | null }
--
-- Each side writes a beat to its store before acknowledging it (the
-- consumer before it sends the acknowledging exchange, the provider before
-- it answers one), so either side restarting resumes the chain.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local schema = require "workproof.schema"
local policy = require "workproof.policy"
local ledger_mod = require "workproof.uptime.ledger"
local status = require "workproof.uptime.status"
local challenger = require "workproof.uptime.challenger"
local registrar = require "workproof.uptime.registrar"

local u = wp.uptime
local type, pairs, ipairs, tostring, tonumber, format, floor, min, max =
  type, pairs, ipairs, tostring, tonumber, string.format, math.floor, math.min, math.max

local _M = {}

local NS = 1e9
local OTHER = { provider = "consumer", consumer = "provider" }

local HEX64 = "^%x+$"
local LEASE_FIELDS = {
  provider_key = { type = "string", required = true, match = HEX64, min = 64, max = 64,
    description = "the provider's identity key (Ed25519, hex)" },
  consumer_key = { type = "string", required = true, match = HEX64, min = 64, max = 64,
    description = "the consumer's identity key (Ed25519, hex)" },
  start = { type = "string", required = true, match = "^%d+$", max = 19,
    description = "lease start, Unix nanoseconds (decimal string)" },
  nonce = { type = "string", required = true, match = HEX64, min = 32, max = 32,
    description = "16 random bytes (hex) making the lease id unique" },
  id = { type = "string", match = HEX64, min = 64, max = 64,
    description = "the lease id, checked against its derivation when given" },
  provider = { type = "string",
    description = "consumer: the provider's transport address host:port" },
  share = { type = "map", keys = { type = "string", one_of = { "vcpus", "memory_mb", "storage_mb" } },
    values = { type = "number", min = 0 },
    description = "provider: this lease's share of the capacity (vcpus, memory_mb, storage_mb)" },
  consumer_address = { type = "string", match = "^0x%x+$", min = 42, max = 42,
    description = "provider with a chain block: the consumer's address on chain (refunds; its rotations)" },
}

_M.SCHEMA = {
  identity = { type = "record", required = true, fields = {
    seed = { type = "string", match = HEX64, min = 64, max = 64, description = "Ed25519 seed (hex)" },
    seed_file = { type = "string", description = "a file holding the seed in hex (created 0600 when missing)" },
  }, description = "this agent's identity key: the lease's key for its role, pinned by the peer" },
  listen = { type = "string", description = "provider: the authenticated transport (host:port)" },
  status_listen = { type = "string", description = "the status API (plain HTTP; loopback unless you mean it)" },
  state_dir = { type = "string", description = "where uptime.db lives (0700)" },
  policies_dir = { type = "string", description = "timestamps, key_rotation and liveness policies" },
  policies = { type = "map", keys = { type = "string" }, values = { type = "any" }, default = {},
    description = "per-policy settings, e.g. timestamps = { interval_s = 60 }" },
  epoch_beats = { type = "integer", default = 60, min = 1, max = 60, description = "beats per epoch" },
  claim_epochs = { type = "integer", default = 24, min = 1, max = 24, description = "epochs per claim" },
  cert_lifetime = { type = "number", default = 86400, min = 60, max = 31 * 86400,
    description = "seconds a transport certificate is valid (re-issued at half its life)" },
  connect_timeout = { type = "number", default = 5, min = 0.1, max = 120,
    description = "consumer: seconds to reach a provider" },
  watch = { type = "boolean", default = true, description = "reload policies and config when their files change" },
  log_level = { type = "string", default = "info", one_of = { "debug", "info", "warn", "error" } },
  log_format = { type = "string", default = "text", one_of = { "text", "json" } },
  leases = { type = "array", default = {}, elements = { type = "record", fields = LEASE_FIELDS } },
  storage = { type = "record", description = "provider: storage committed per lease for storage challenges",
    fields = {
      size_mb = { type = "integer", min = 1, max = 1048576, description = "MiB per lease (none: no storage)" },
      chunk_size = { type = "integer", default = 4096, min = 512, max = 1048576, description = "bytes per chunk" },
      work = { type = "integer", min = 1, max = 1e6,
        description = "ignored (the former provider-side encoding; the consumer uploads the data now)" },
    } },
  capacity = { type = "map", keys = { type = "string", one_of = { "vcpus", "memory_mb", "storage_mb" } },
    values = { type = "number", min = 0 },
    description = "provider: the machine's capacity, signed with each lease's share (GET /v1/capacity)" },
  chain = require("workproof.uptime.onchain").SCHEMA,
  challengers = { type = "any",
    description = 'provider: identity keys (hex) besides the leases\' consumers allowed to challenge, or "any"' },
}

local DEFAULTS = {
  provider = { listen = "127.0.0.1:8451", status_listen = "127.0.0.1:8453", state_dir = "var/uptime-provider" },
  consumer = { status_listen = "127.0.0.1:8452", state_dir = "var/uptime-consumer" },
}

local function now_ns()
  local t = wp.time()
  local s = floor(t)
  return format("%d%09d", s, floor((t - s) * NS))
end
_M.now_ns = now_ns

local function ts_seconds(ts)
  return tonumber(ts:sub(1, -10)) + tonumber(ts:sub(-9)) / NS
end
_M.ts_seconds = ts_seconds

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function random_hex(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local s = f:read(n)
  f:close()
  return wp.hex(s)
end
_M.random_hex = random_hex

--- The identity seed (hex): given, or read from seed_file (created 0600
-- with a fresh seed when it does not exist).
local function identity_seed(id, base)
  if id.seed then return id.seed:lower() end
  if not id.seed_file then return nil, "identity: give seed or seed_file" end
  local path = id.seed_file:sub(1, 1) == "/" and id.seed_file or (base .. "/" .. id.seed_file)
  local s = read_file(path)
  if s then
    s = s:match("^%s*(%x+)%s*$")
    if not s or #s ~= 64 then return nil, "identity.seed_file " .. path .. ": expected 64 hex digits" end
    return s:lower()
  end
  local seed = random_hex(32)
  local old = io.open("/dev/null") and os.execute("umask 077 && : > " .. ("%q"):format(path))
  local f, err = io.open(path, "wb")
  if not (old and f) then return nil, "identity.seed_file " .. path .. ": " .. tostring(err) end
  f:write(seed, "\n")
  f:close()
  return seed
end

--- Load an agent config file: the validated table, or nil, errors (lines).
--- Run a Lua config file (os.getenv, os.time, tostring, tonumber in
-- reach) and check what it returns against `fields` (workproof.schema),
-- `defaults` filled in first: the table, or nil, errors (lines). Shared
-- by the agents and the fisherman.
function _M.read_config(path, fields, defaults)
  local src = read_file(path)
  if not src then return nil, { path .. ": cannot read" } end
  local chunk, perr = loadstring(src, "@" .. path)
  if not chunk then return nil, { perr } end
  setfenv(chunk, { os = { getenv = os.getenv, time = os.time }, tostring = tostring, tonumber = tonumber })
  local ok, raw = pcall(chunk)
  if not ok then return nil, { tostring(raw) } end
  if type(raw) ~= "table" then return nil, { path .. ": must return a table" } end
  for k, v in pairs(defaults or {}) do if raw[k] == nil then raw[k] = v end end
  local conf, errs = schema.validate(fields, raw)
  if not conf then return nil, schema.format_errors(errs, path .. ": ") end
  return conf
end

function _M.load_config(path, role)
  local conf, errs = _M.read_config(path, _M.SCHEMA, DEFAULTS[role])
  if not conf then return nil, errs end
  local base = path:match("^(.*)/[^/]*$") or "."
  conf.base = base
  local function abs(p) return p:sub(1, 1) == "/" and p or (base .. "/" .. p) end
  conf.state_dir = abs(conf.state_dir)
  conf.policies_dir = conf.policies_dir and abs(conf.policies_dir) or host.policies_dir
  local seed, serr = identity_seed(conf.identity, base)
  if not seed then return nil, { serr } end
  conf.seed = seed
  local pub = wp.ed25519.keypair(wp.unhex(seed))
  conf.key = wp.hex(pub)
  local errors = {}
  if role == "provider" and not conf.listen then errors[#errors + 1] = "listen: required for a provider" end
  for i, l in ipairs(conf.leases) do
    local where = ("%s: leases[%d]: "):format(path, i)
    l.provider_key, l.consumer_key, l.nonce = l.provider_key:lower(), l.consumer_key:lower(), l.nonce:lower()
    local own = role == "provider" and l.provider_key or l.consumer_key
    if own ~= conf.key then
      errors[#errors + 1] = where .. role .. "_key is not this agent's identity key (" .. conf.key .. ")"
    end
    if role == "consumer" and not l.provider then errors[#errors + 1] = where .. "provider: required (host:port)" end
    local id = ledger_mod.lease_id(l.provider_key, l.consumer_key, l.start, l.nonce)
    if l.id and l.id:lower() ~= id then errors[#errors + 1] = where .. "id does not match its derivation " .. id end
    l.id = id
  end
  if #errors > 0 then return nil, errors end
  return conf
end

-- ---- policies ----------------------------------------------------------------------

local POLICY_NAMES = { "timestamps", "key_rotation", "liveness", "challenges", "disputes" }

local function load_policies(conf)
  local out = {}
  for _, name in ipairs(POLICY_NAMES) do
    local path = conf.policies_dir .. "/" .. name .. ".lua"
    local ok, p = pcall(policy.load_file, path, { clock = wp.time })
    if not ok then return nil, tostring(p) end
    local c, errs = policy.configure(p, conf.policies[name] or {})
    if not c then return nil, name .. ": " .. table.concat(schema.format_errors(errs), "; ") end
    out[name] = { p = p, conf = c }
  end
  return out
end

-- ---- per-lease state -----------------------------------------------------------------

local Agent = {}
Agent.__index = Agent
local provider_signed

local function key_ranges(self, L)
  local kr = self.pol.key_rotation
  local ranges, why, _, detail = kr.p.active_keys(kr.conf, L.records, {
    lease_id = L.id, initial = { provider = L.provider_key, consumer = L.consumer_key },
    first_sequence = 0, start_ns = L.start_ns,
  })
  if not ranges then return nil, (why or "BAD_ROTATION") .. (detail and (": " .. detail) or "") end
  return ranges
end

-- the key of party at sequence seq
local function key_at(L, party, seq)
  local key
  for _, r in ipairs(L.ranges[party]) do
    if seq >= r.first and (r.last == nil or seq <= r.last) then key = r.key end
  end
  return key
end

-- this agent's secret key (libsodium 64-byte form) for sequence seq.
-- Cached per lease and public key: finding it (reading the stored seeds,
-- deriving a key pair from each) cost more than the signature it makes,
-- on every beat. refresh_keys, which every rotation goes through, drops it.
local function own_secret(self, L, seq)
  local pub = key_at(L, self.role, seq)
  local cache = L.secret_cache
  if pub and cache and cache[pub] then return cache[pub] end
  local seeds = self.ledger:secrets(L.id)
  seeds[0] = self.conf.seed
  for _, s in pairs(seeds) do
    local p, sk = wp.ed25519.keypair(wp.unhex(s))
    if wp.hex(p) == pub then
      L.secret_cache = cache or {}
      L.secret_cache[pub] = sk
      return sk
    end
  end
  return nil
end

function Agent.key_at(_, L, party, seq) return key_at(L, party, seq) end
function Agent:secret_at(L, seq) return own_secret(self, L, seq) end

function Agent:refresh_keys(L)
  L.secret_cache = nil
  L.records = self.ledger:rotations(L.id)
  local ranges, err = key_ranges(self, L)
  if not ranges then return nil, err end
  L.ranges = ranges
  L.seen = { provider = -1, consumer = -1 }
  for _, r in ipairs(L.records) do
    if r.index > L.seen[r.party] then L.seen[r.party] = r.index end
  end
  if self.pins then self:pin_peer(L) end
  return true
end

-- gaps and uptime of the whole chain, from the timestamps policy
function Agent:account(L)
  local ts = self.pol.timestamps
  local beats = self.ledger:beats(L.id)
  local c = {}
  for k, v in pairs(ts.conf) do c[k] = v end
  c.drift_s = 300
  local tr = ts.p.check_chain(c, beats, {})
  L.gaps, L.downtime_ns, L.uptime = tr.gaps or {}, tr.downtime_ns or 0, tr.uptime or 1
  L.beats = #beats
  L.first_ts = beats[1] and beats[1].timestamp
end

-- a new beat extends the accounting without re-reading the chain
local function account_beat(self, L, b, prev)
  L.beats = L.beats + 1
  L.first_ts = L.first_ts or b.timestamp
  if prev then
    local interval = self.pol.timestamps.conf.interval_s
    local d = ts_seconds(b.timestamp) - ts_seconds(prev.timestamp)
    if d > interval + self.pol.timestamps.conf.tolerance_s then
      local missed = max(floor(d / interval + 0.5) - 1, 1)
      L.gaps[#L.gaps + 1] = { from_ns = prev.timestamp, to_ns = b.timestamp, missed = missed }
      L.downtime_ns = L.downtime_ns + (d - interval) * NS
      self.m.gaps = self.m.gaps + 1
      host.log("warn", ("lease %s: gap of %d beat(s) (%.1f s) before beat %d"):format(L.id:sub(1, 12), missed,
        d, b.sequence))
    end
    local span = (ts_seconds(b.timestamp) - ts_seconds(L.first_ts)) + interval
    L.uptime = 1 - L.downtime_ns / NS / span
  end
end

function Agent:reject(L, reason, detail, evidence)
  self.m.rejected[reason] = (self.m.rejected[reason] or 0) + 1
  L.last_reject = { reason = reason, detail = detail, at = wp.time() }
  if evidence then self.ledger:evidence(L.id, evidence.kind or ("REFUSED_" .. reason), evidence.seq, evidence) end
  host.log("warn", ("lease %s: refused: %s%s"):format(L.id:sub(1, 12), reason, detail and (": " .. detail) or ""))
end

--- Append a verified dual-signed beat, roll up, keep the accounting.
-- Returns the completed claim (unsigned) if this beat closed one.
function Agent:append(L, b)
  local prev = L.head
  local claim
  self.ledger:tx(function()
    self.ledger:append(b)
    claim = self.ledger:rollup(b, self.conf.epoch_beats, self.conf.claim_epochs)
  end)
  L.head = b
  L.last_ok = wp.time()
  account_beat(self, L, b, prev)
  self:liveness(L)
  return claim
end

--- The liveness policy's state for a lease (up, late, down), logged on change.
function Agent:liveness(L)
  local lv = self.pol.liveness
  local since = wp.time() - (L.last_ok or L.started)
  local state = lv.p.assess(lv.conf, { since_s = since, interval_s = self.pol.timestamps.conf.interval_s,
    beats = L.beats })
  if state ~= L.state then
    local level = (state == "up" or state == "new") and "info" or "warn"
    host.log(level, ("lease %s: %s -> %s (%.1f s since the last beat)"):format(L.id:sub(1, 12), L.state or "start",
      state, since))
    L.state = state
  end
  return state
end

-- ---- rotations over the wire ------------------------------------------------------------

-- records of `party` the peer has not seen (by its `seen`)
local function unseen(L, party, seen_idx)
  local out = {}
  for _, r in ipairs(L.records) do
    if r.party == party and r.index > (seen_idx or -1) then
      local c = {}
      for k, v in pairs(r) do if k ~= "acked" then c[k] = v end end
      out[#out + 1] = c
    end
  end
  return out
end

--- The peer's `seen` (highest record index it holds per party): this
-- agent's records up to it are acknowledged.
function Agent:peer_saw(L, seen)
  local upto = type(seen) == "table" and seen[self.role]
  if type(upto) ~= "number" then return end
  self.ledger:ack_rotations(L.id, self.role, upto)
  for _, r in ipairs(L.records) do
    if r.party == self.role and r.index <= upto then r.acked = true end
  end
end

--- Take the peer's rotation records: verified with all known ones by the
-- key_rotation policy before any is stored. nil, reason on refusal.
function Agent:take_rotations(L, recs)
  if type(recs) ~= "table" or #recs == 0 then return true end
  local peer = OTHER[self.role]
  local all, fresh = {}, {}
  for _, r in ipairs(L.records) do all[#all + 1] = r end
  for _, r in ipairs(recs) do
    if type(r) ~= "table" or r.party ~= peer then return nil, "a rotation record of the wrong party" end
    if r.index > L.seen[peer] then all[#all + 1] = r; fresh[#fresh + 1] = r end
  end
  if #fresh == 0 then return true end
  local kr = self.pol.key_rotation
  local res = kr.p.verify_records(kr.conf, all, { lease_id = L.id,
    initial = { provider = L.provider_key, consumer = L.consumer_key } })
  if not res.valid then return nil, (res.reason or "BAD_ROTATION") .. (res.detail and (": " .. res.detail) or "") end
  local head_seq = L.head and L.head.sequence or -1
  for _, r in ipairs(fresh) do
    if r.effectiveSequence and r.effectiveSequence <= head_seq + 1 and r.reason ~= "forced" then
      return nil, "LATE_ROTATION: takes effect at " .. r.effectiveSequence .. ", the chain is at " .. head_seq
    end
  end
  for _, r in ipairs(fresh) do
    self.ledger:add_rotation(r, true)
    host.log("info", ("lease %s: %s key rotation %d (%s) takes effect at beat %s"):format(L.id:sub(1, 12), r.party,
      r.index, r.reason, tostring(r.effectiveSequence or r.effectiveTimestamp)))
  end
  return self:refresh_keys(L)
end

--- Rotate this agent's key for a lease (manual, scheduled; forced with a
-- governance-signed record and its seed). Takes effect two beats on, so
-- the peer has it before the first beat that needs it.
function Agent:rotate(L, reason, forced)
  local party = self.role
  local last
  for _, r in ipairs(L.records) do if r.party == party then last = r end end
  local seed, rec
  if forced then
    rec, seed = forced.record, forced.seed
    if rec.reason ~= "forced" or rec.party ~= party or rec.leaseId ~= L.id then
      return nil, "a forced record for this lease and party"
    end
  else
    seed = random_hex(32)
    local pub = wp.ed25519.keypair(wp.unhex(seed))
    rec = { leaseId = L.id, party = party, index = last and last.index + 1 or 0, newKey = wp.hex(pub),
      effectiveSequence = (L.head and L.head.sequence or -1) + 3,
      prevHash = last and u.rotation_hash(last) or u.ZERO_HASH, reason = reason }
    local sk = own_secret(self, L, rec.effectiveSequence - 1)
    if not sk then return nil, "no secret key for the current key" end
    assert(u.rotation_sign(rec, sk))
  end
  local all = {}
  for _, r in ipairs(L.records) do all[#all + 1] = r end
  all[#all + 1] = rec
  local kr = self.pol.key_rotation
  local res = kr.p.verify_records(kr.conf, all, { lease_id = L.id,
    initial = { provider = L.provider_key, consumer = L.consumer_key } })
  if not res.valid then return nil, (res.reason or "BAD_ROTATION") .. (res.detail and (": " .. res.detail) or "") end
  local pub = wp.ed25519.keypair(wp.unhex(seed))
  if wp.hex(pub) ~= rec.newKey:lower() then return nil, "the seed is not the record's new key" end
  self.ledger:tx(function()
    local n = 0
    for k in pairs(self.ledger:secrets(L.id)) do n = max(n, k) end
    self.ledger:add_secret(L.id, n + 1, seed)
    self.ledger:add_rotation(rec, false)
  end)
  local ok, err = self:refresh_keys(L)
  if not ok then return nil, err end
  registrar.anchor(self, L, rec)
  host.log("info", ("lease %s: %s key rotated (%s, record %d), from beat %s"):format(L.id:sub(1, 12), party, reason,
    rec.index, tostring(rec.effectiveSequence or rec.effectiveTimestamp)))
  return rec
end

-- scheduled rotations: the key_rotation policy says when a key is due
function Agent:maybe_rotate(L)
  local kr = self.pol.key_rotation
  local due = kr.p.due(kr.conf, L.records, { lease_id = L.id,
    initial = { provider = L.provider_key, consumer = L.consumer_key }, start_ns = L.start_ns,
    beats = L.head and { L.head } or nil })
  local mine = due and due[self.role]
  if mine and mine.overdue then
    -- one at a time: none of ours still waiting for the peer
    for _, r in ipairs(L.records) do if r.party == self.role and not r.acked then return end end
    local ok, err = self:rotate(L, "scheduled")
    if not ok then host.log("error", "lease " .. L.id:sub(1, 12) .. ": scheduled rotation: " .. err) end
  end
end

-- ---- the agent -------------------------------------------------------------------------

local function new_agent(role, conf, path)
  local self = setmetatable({ role = role, conf = conf, path = path, leases = {}, order = {},
    m = { sent = 0, received = 0, rejected = {}, gaps = 0, exchanges = 0, exchange_errors = 0, rtt_sum = 0,
      rtt_n = 0, rtt_last = 0, claims = 0 } }, Agent)
  return self
end

function Agent:add_lease(l)
  local known = self.leases[l.id]
  if known then
    -- a reload: the lease's state is current in memory (head, keys and
    -- accounting follow every beat and rotation); reading it again read
    -- every chain in full on every reload (docs/uptime.md, "Many leases")
    known.addr, known.share, known.consumer_address = l.provider, l.share, l.consumer_address
    return known
  end
  local ok, err = self.ledger:add_lease({ id = l.id, provider_key = l.provider_key, consumer_key = l.consumer_key,
    start_ns = l.start, nonce = l.nonce })
  if not ok then return nil, err end
  local L = self.leases[l.id] or { id = l.id, provider_key = l.provider_key, consumer_key = l.consumer_key,
    start_ns = l.start, nonce = l.nonce, started = wp.time() }
  L.addr, L.share, L.consumer_address = l.provider, l.share, l.consumer_address
  if not self.leases[l.id] then
    self.leases[l.id] = L
    self.order[#self.order + 1] = L
  end
  L.head = self.ledger:head(L.id)
  local rok, rerr = self:refresh_keys(L)
  if not rok then return nil, rerr end
  self:account(L)
  L.last_ok = L.head and ts_seconds(L.head.timestamp) or nil
  L.state = L.head and "up" or "new"
  return L
end

--- The transport identity: a fresh TLS key and a certificate bound to the
-- identity key, re-issued at half its life.
function Agent:issue_cert()
  local id, err = host.tls_identity(self.conf.seed, self.conf.cert_lifetime)
  if not id then return nil, err end
  self.tls = { cert = id.cert, key = id.key }
  self.cert_not_after = id.not_after
  return true
end

function Agent:keep_cert()
  host.spawn(function()
    while not self.stopping do
      host.sleep(max(self.conf.cert_lifetime / 2, 1))
      if self.stopping then break end
      local ok, err = self:issue_cert()
      if not ok then host.log("error", "transport certificate: " .. tostring(err))
      elseif self.server and self.server.set_tls then self.server:set_tls(self.tls) end
    end
  end)
end

--- Open everything: store, policies, leases. nil, errors on failure.
function _M.open(role, path)
  local conf, errs = _M.load_config(path, role)
  if not conf then return nil, errs end
  local self = new_agent(role, conf, path)
  local pol, perr = load_policies(conf)
  if not pol then return nil, { perr } end
  self.pol = pol
  local led, lerr = ledger_mod.open(conf.state_dir)
  if not led then return nil, { lerr } end
  self.ledger = led
  for _, l in ipairs(conf.leases) do
    local ok, err = self:add_lease(l)
    if not ok then led:close() return nil, { err } end
  end
  return self
end

--- Reload config and policies (SIGHUP, file changes): a bad one is logged
-- and the running one kept.
function Agent:reload(why)
  local conf, errs = _M.load_config(self.path, self.role)
  local pol, perr
  if conf then pol, perr = load_policies(conf) end
  if not conf or not pol then
    host.log("error", "reload (" .. why .. ") rejected, keeping the running config: "
      .. (errs and table.concat(errs, "; ") or perr))
    return nil
  end
  if conf.seed ~= self.conf.seed then
    host.log("error", "reload (" .. why .. "): the identity key cannot change while running; restart")
    return nil
  end
  self.conf, self.pol = conf, pol
  require("workproof.log").configure(conf)
  for _, l in ipairs(conf.leases) do
    local L, err = self:add_lease(l)
    if not L then host.log("error", "reload: lease " .. l.id:sub(1, 12) .. ": " .. err)
    elseif self.role == "consumer" and not L.running then
      self:follow(L)
      challenger.follow(self, L)   -- a lease added by a reload is challenged too
    end
  end
  host.log("info", ("reloaded (%s): %d lease(s)"):format(why, #self.order))
  return true
end

-- ---- provider ------------------------------------------------------------------------------

local function jerr(status_code, code, detail, extra)
  local t = { error = code, detail = detail }
  for k, v in pairs(extra or {}) do t[k] = v end
  return status_code, { ["content-type"] = "application/json" }, cjson.encode(t)
end

local function jok(t)
  return 200, { ["content-type"] = "application/json" }, cjson.encode(t)
end

-- the transport pins: each lease's consumer keys (initial and rotated)
function Agent:pin_peer(L)
  local peer = OTHER[self.role]
  local keys = { [L[peer .. "_key"]] = true }
  for _, r in ipairs(L.ranges and L.ranges[peer] or {}) do keys[r.key] = true end
  L.pins = keys
  if self.server and self.server.pin then
    for k in pairs(keys) do self.server:pin(k, true) end
  end
end

local function beat_fields_ok(b)
  return type(b) == "table" and type(b.leaseId) == "string" and type(b.sequence) == "number"
    and type(b.timestamp) == "string" and type(b.prevHash) == "string" and type(b.providerSig) == "string"
end

-- the consumer's acknowledgement: its newest dual-signed beat
function Agent:take_ack(L, b)
  local head = L.head
  if not beat_fields_ok(b) or type(b.consumerSig) ~= "string" or type(b.hash) ~= "string" then
    return 400, "BAD_FORMAT", "last: not a dual-signed beat"
  end
  if b.leaseId:lower() ~= L.id then return 400, "LEASE_MISMATCH", "last: another lease's beat" end
  local hs = head and head.sequence or -1
  if b.sequence <= hs then
    local have = self.ledger:beat(L.id, b.sequence)
    if b.sequence == hs and have and have.hash == b.hash:lower() then return nil end   -- a retry: fine
    if have and have.hash ~= b.hash:lower() then
      self:reject(L, "FORK", "beat " .. b.sequence .. " differs from the stored one",
        { kind = "FORK", seq = b.sequence, theirs = b, ours = have })
      return 409, "FORK", "beat " .. b.sequence .. " differs from the one acknowledged before"
    end
    self:reject(L, "REPLAY", "beat " .. b.sequence .. " is behind the chain (" .. hs .. ")")
    return 409, "REPLAY", "beat " .. b.sequence .. " was acknowledged before; the chain is at " .. hs
  end
  if b.sequence > hs + 1 then
    self:reject(L, "AHEAD", "beat " .. b.sequence .. " beyond the chain (" .. hs .. ")",
      { kind = "AHEAD", seq = b.sequence, theirs = b })
    return 409, "AHEAD", "the chain here ends at " .. hs
  end
  if b.prevHash:lower() ~= (head and head.hash or u.ZERO_HASH) then
    self:reject(L, "BROKEN_LINK", "beat " .. b.sequence)
    return 400, "BROKEN_LINK", "prevHash is not the previous beat's hash"
  end
  local pk, ck = key_at(L, "provider", b.sequence), key_at(L, "consumer", b.sequence)
  if not pk or not ck then return 400, "NO_KEY", "no key covers beat " .. b.sequence end
  local ok, why = u.verify(b, pk, ck)
  if not ok then
    self:reject(L, why or "BAD_BEAT", "beat " .. b.sequence)
    return 400, why or "BAD_BEAT", "beat " .. b.sequence .. " does not verify"
  end
  local beat = { leaseId = L.id, sequence = b.sequence, timestamp = b.timestamp, prevHash = b.prevHash:lower(),
    providerSig = b.providerSig:lower(), consumerSig = b.consumerSig:lower(), hash = b.hash:lower() }
  local claim = self:append(L, beat)
  self.m.received = self.m.received + 1
  if claim then
    local sk = own_secret(self, L, b.sequence)
    local enc = assert(u.claim_encode(claim, sk))
    self.ledger:add_claim(L.id, claim.index, enc)
    registrar.post_claim(self, L, claim.index, enc, key_at(L, "provider", b.sequence))
    self.m.claims = self.m.claims + 1
    host.log("info", ("lease %s: claim %d signed (%d beats, root %s)"):format(L.id:sub(1, 12), claim.index,
      claim.beatCount, claim.root:sub(1, 12)))
  end
  return nil
end

-- the newest claim the consumer has not countersigned
local function claim_to_send(self, L)
  local rows = self.ledger:x("SELECT idx, enc FROM claims WHERE lease = ? AND csig IS NULL ORDER BY idx LIMIT 1",
    L.id)
  return rows[1]
end

function Agent:take_claim_ack(L, a)
  if type(a) ~= "table" or type(a.index) ~= "number" or type(a.signature) ~= "string" then return end
  local c = self.ledger:claim(L.id, a.index)
  if not c or c.csig then return end
  local claim = u.claim_decode(wp.unhex(c.enc))
  local last_seq = claim.firstSequence + claim.beatCount - 1
  local ck = key_at(L, "consumer", last_seq)
  if ck and u.claim_verify_countersign(wp.unhex(c.enc), ck, a.signature) then
    self.ledger:add_claim(L.id, a.index, wp.unhex(c.enc), wp.unhex(a.signature))
    host.log("info", ("lease %s: claim %d acknowledged by the consumer"):format(L.id:sub(1, 12), a.index))
  else
    self:reject(L, "BAD_CLAIM_ACK", "claim " .. a.index)
  end
end

--- One exchange (provider side).
function Agent:exchange(L, msg)
  if L.busy then return jerr(409, "BUSY", "another exchange of this lease is in progress") end
  L.busy = true
  local res = { pcall(self.exchange_locked, self, L, msg) }
  L.busy = false   -- whatever happened: a failed exchange must not wedge the lease
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2)
end

function Agent:exchange_locked(L, msg)
  self.m.exchanges = self.m.exchanges + 1
  local ok, rerr = self:take_rotations(L, msg.rotations)
  if not ok then
    self:reject(L, "BAD_ROTATION", rerr)
    return jerr(400, "BAD_ROTATION", rerr)
  end
  self:peer_saw(L, msg.seen)
  if msg.claimAck ~= nil then self:take_claim_ack(L, msg.claimAck) end
  if type(msg.refused) == "table" then
    self:reject(L, "PEER_" .. tostring(msg.refused.reason),
      "the consumer refused beat " .. tostring(msg.refused.sequence))
  end
  if msg.last ~= nil and msg.last ~= cjson.null then
    local code, reason, detail = self:take_ack(L, msg.last)
    if code then return jerr(code, reason, detail, { head = L.head and L.head.sequence or -1 }) end
  elseif L.head then
    self:reject(L, "BEHIND", "the consumer has no chain; here it is at " .. L.head.sequence)
    return jerr(409, "BEHIND", "this lease's chain is at " .. L.head.sequence, { head = L.head.sequence })
  end
  self:maybe_rotate(L)
  local out = { ack = L.head and L.head.sequence or -1, seen = L.seen,
    rotations = unseen(L, "provider", type(msg.seen) == "table" and msg.seen.provider or -1) }
  local c = claim_to_send(self, L)
  if c then out.claim = c.enc end
  -- the next beat: due one interval after the last (now at genesis)
  local ts = self.pol.timestamps.conf
  local due = L.head and (ts_seconds(L.head.timestamp) + ts.interval_s) or 0
  local wait = due - wp.time()
  local hold = min(ts.interval_s, 25)
  if wait > 0 and wait <= hold then
    host.sleep(wait)
    out.held = wait   -- the consumer's round trip is what it waited minus this
    wait = 0
  end
  if wait > 0 then
    out.wait = wait
    return jok(out)
  end
  local seq = L.head and L.head.sequence + 1 or 0
  local p, made = self.ledger:pending(L.id)
  if p and p.sequence == seq and wp.time() - made <= ts.drift_s / 2 then
    out.beat = p                                 -- resent until acknowledged
  else
    if p and p.sequence == seq then
      -- never countersigned and now too old to be: superseded by a fresh
      -- one (its timestamp is always later: docs/uptime.md, "Evidence")
      self.ledger:evidence(L.id, "SUPERSEDED", seq, { beat = p })
    end
    local b = assert(u.build(L.id, seq, now_ns(), L.head and L.head.hash or nil))
    local sk = own_secret(self, L, seq)
    if not sk then return jerr(500, "NO_KEY", "no secret key for beat " .. seq) end
    assert(u.sign(b, sk))
    self.ledger:set_pending(b)
    out.beat = b
    self.m.sent = self.m.sent + 1
  end
  return jok(out)
end

function Agent:transport_handler()
  return function(req)
    local peer = req.peer_key or req.identity
    local st, hd, body = challenger.provider_route(self, req, peer)
    if st then return st, hd, body end
    local id = req.path:match("^/v1/leases/(%x+)/exchange$")
    if not id or req.method ~= "POST" then return jerr(404, "NOT_FOUND", "POST /v1/leases/{id}/exchange") end
    local L = self.leases[id:lower()]
    if not L then return jerr(404, "UNKNOWN_LEASE", "no such lease here") end
    if not peer or not (L.pins and L.pins[peer]) then
      self:reject(L, "WRONG_PEER", "connection authenticated as " .. tostring(peer))
      return jerr(403, "WRONG_PEER", "this connection's key is not the lease's consumer")
    end
    local msg = cjson.decode(req.body or "")
    if type(msg) ~= "table" then return jerr(400, "BAD_JSON", "the body is not a JSON object") end
    return self:exchange(L, msg)
  end
end

-- ---- consumer ------------------------------------------------------------------------------

-- does the provider's key at its sequence sign this beat's payload?
provider_signed = function(L, b)
  local pk = key_at(L, "provider", b.sequence)
  local payload = pk and u.payload(b)
  local sig = type(b.providerSig) == "string" and #b.providerSig == 128 and wp.unhex(b.providerSig)
  return payload and sig and wp.ed25519.verify(wp.unhex(pk), wp.sha256(payload), sig) or false
end

-- the consumer's checks of the provider's beat; nil, reason, detail, evidence on refusal
function Agent:check_beat(L, b, rtt)
  if not beat_fields_ok(b) then return nil, "BAD_FORMAT", "not a provider-signed beat" end
  if b.leaseId:lower() ~= L.id then return nil, "LEASE_MISMATCH", "another lease's beat" end
  local head = L.head
  local hs = head and head.sequence or -1
  if b.sequence <= hs then
    local have = self.ledger:beat(L.id, b.sequence)
    local same = have and have.timestamp == b.timestamp and have.prevHash == b.prevHash:lower()
      and have.providerSig == b.providerSig:lower()
    if have and not same then
      -- two different beats, one sequence, one key: kept as evidence
      if not provider_signed(L, b) then
        return nil, "BAD_PROVIDER_SIG", "a second beat " .. b.sequence .. " not signed by the provider's key"
      end
      return nil, "EQUIVOCATION", "a second beat " .. b.sequence .. " signed by the provider's key",
        { kind = "EQUIVOCATION", seq = b.sequence, theirs = b, ours = have }
    end
    return nil, "REPLAY", "beat " .. b.sequence .. " is behind the chain (" .. hs .. ")"
  end
  if b.sequence ~= hs + 1 then return nil, "BAD_SEQUENCE", "expected beat " .. (hs + 1) .. ", got " .. b.sequence end
  if b.prevHash:lower() ~= (head and head.hash or u.ZERO_HASH) then
    return nil, "BROKEN_LINK", "prevHash is not the previous beat's hash"
  end
  local ts = self.pol.timestamps
  local ok, reason, detail = ts.p.check_live(ts.conf, b, head, { rtt_s = rtt, start_ns = L.start_ns })
  if not ok then return nil, reason, detail, { seq = b.sequence, theirs = b } end
  return true
end

function Agent:consume(L, res, rtt)
  local ok, err = self:take_rotations(L, res.rotations)
  if not ok then
    self:reject(L, "BAD_ROTATION", err)
    return nil
  end
  self:peer_saw(L, res.seen)
  if type(res.claim) == "string" then self:check_claim(L, res.claim) end
  local b = res.beat
  if type(b) ~= "table" then return false end
  local good, reason, detail, ev = self:check_beat(L, b, rtt)
  if good then
    local sk = own_secret(self, L, b.sequence)
    local pk = key_at(L, "provider", b.sequence)
    if not sk or not pk then
      reason, detail = "NO_KEY", "no key covers beat " .. b.sequence
    else
      local beat = { leaseId = L.id, sequence = b.sequence, timestamp = b.timestamp, prevHash = b.prevHash:lower(),
        providerSig = b.providerSig:lower() }
      local signed, serr = u.countersign(beat, pk, sk)
      if not signed then
        reason, detail = (tostring(serr):match("(BAD_PROVIDER_SIG)") or "BAD_BEAT"), tostring(serr)
      else
        self:append(L, beat)
        self.m.received = self.m.received + 1
        self.m.sent = self.m.sent + 1
        L.refused = nil
        return true
      end
    end
  end
  self:reject(L, reason, detail, ev)
  L.refused = { sequence = b.sequence, reason = reason }
  return false
end

function Agent:check_claim(L, hexenc)
  local enc = wp.unhex(hexenc)
  local claim = enc and u.claim_decode(enc)
  if not claim or claim.leaseId ~= L.id then return self:reject(L, "BAD_CLAIM", "not a claim of this lease") end
  local have = self.ledger:claim(L.id, claim.index)
  if have and have.csig then
    L.claim_ack = { index = claim.index, signature = have.csig }
    return
  end
  -- rebuild it from our own chain: every field must match
  local last = claim.firstSequence + claim.beatCount - 1
  local b = self.ledger:beat(L.id, last)
  if not b then return self:reject(L, "CLAIM_AHEAD", "claim " .. claim.index .. " covers beats not here yet") end
  local mine = self.ledger:x("SELECT 1 FROM epochs WHERE lease = ? AND idx = ?", L.id,
    (claim.index + 1) * self.conf.claim_epochs - 1)[1] and self:own_claim(L, claim.index)
  if not mine or mine.root ~= claim.root or mine.prevClaimHash ~= claim.prevClaimHash
    or mine.periodStart ~= claim.periodStart or mine.periodEnd ~= claim.periodEnd
    or mine.beatCount ~= claim.beatCount then
    return self:reject(L, "CLAIM_MISMATCH", "claim " .. claim.index .. " differs from this chain's",
      { kind = "CLAIM_MISMATCH", seq = last, claim = hexenc })
  end
  local pk = key_at(L, "provider", last)
  if not (pk and u.claim_verify(enc, pk)) then
    return self:reject(L, "BAD_CLAIM_SIG", "claim " .. claim.index,
      { kind = "BAD_CLAIM_SIG", seq = last, claim = hexenc })
  end
  local sk = own_secret(self, L, last)
  local sig = assert(u.claim_countersign(enc, sk))
  self.ledger:add_claim(L.id, claim.index, enc, sig)
  self.m.claims = self.m.claims + 1
  L.claim_ack = { index = claim.index, signature = wp.hex(sig) }
  host.log("info", ("lease %s: claim %d countersigned"):format(L.id:sub(1, 12), claim.index))
end

-- our own (unsigned) claim number idx, rebuilt from our epochs
function Agent:own_claim(L, idx)
  local K, E = self.conf.claim_epochs, self.conf.epoch_beats
  local es = {}
  for i, r in ipairs(self.ledger:x("SELECT record FROM epochs WHERE lease = ? AND idx >= ? ORDER BY idx LIMIT ?",
    L.id, idx * K, K)) do
    es[i] = cjson.decode(r.record)
  end
  if #es < K then return nil end
  local first = self.ledger:beat(L.id, idx * K * E)
  local last = self.ledger:beat(L.id, (idx + 1) * K * E - 1)
  local pc = idx > 0 and self.ledger:claim(L.id, idx - 1) or nil
  local prev_hash = pc and pc.hash or nil
  if idx > 0 and not prev_hash then
    local prev = self:own_claim(L, idx - 1)
    prev_hash = prev and u.claim_hash(prev)
  end
  return u.claim_make(es, { index = idx, period_start = first.timestamp, period_end = last.timestamp,
    prev_claim_hash = prev_hash, epoch_beats = E, claim_epochs = K })
end

-- One exchange of a lease with its provider: the seconds to wait before
-- the next, whether it brought a beat, and true when the agent is
-- stopping. A function of its own so that the request, the answer and
-- their JSON are garbage while the lease waits: a loop's locals stay
-- reachable across its sleep, ~2 KB a lease for as long as a beat's
-- interval, and a consumer may follow thousands (docs/uptime.md, "Many
-- leases").
function Agent:step(L, url)
  local body = cjson.encode({
    last = L.head and { leaseId = L.head.leaseId, sequence = L.head.sequence, timestamp = L.head.timestamp,
      prevHash = L.head.prevHash, providerSig = L.head.providerSig, consumerSig = L.head.consumerSig,
      hash = L.head.hash } or cjson.null,
    rotations = unseen(L, "consumer", L.peer_seen),
    seen = L.seen, claimAck = L.claim_ack or cjson.null, refused = L.refused or cjson.null,
  })
  local interval = self.pol.timestamps.conf.interval_s
  local t0 = host.now()
  local st, hd, resp = host.http_request { url = url, method = "POST", body = body,
    headers = { ["content-type"] = "application/json" },
    timeout = min(interval, 25) + 10, connect_timeout = self.conf.connect_timeout,
    tls = { cert = self.tls.cert, key = self.tls.key, pin = L.provider_key } }
  local elapsed = host.now() - t0
  local res = st and cjson.decode(resp or "")
  self.m.exchanges = self.m.exchanges + 1
  if st == 200 and type(res) == "table" then
    L.backoff = 0
    L.claim_ack = nil
    if L.refused then L.refused = nil end
    local rtt = elapsed - (tonumber(res.held) or 0)
    local cok, cres = xpcall(self.consume, debug.traceback, self, L, res, rtt)
    if not cok then host.log("error", "lease " .. L.id:sub(1, 12) .. ": " .. tostring(cres)) end
    local progressed = cok and cres
    if progressed then
      self.m.rtt_last = rtt
      self.m.rtt_sum, self.m.rtt_n = self.m.rtt_sum + rtt, self.m.rtt_n + 1
      L.rtt_ms = (L.rtt_ms or rtt * 1000) * 0.9 + rtt * 1000 * 0.1   -- moving mean for the score
    end
    if res.wait then return min(res.wait, interval), progressed end
    return progressed == false and min(1, interval / 2) or 0, progressed
  end
  if self.stopping then return 0, false, true end
  self.m.exchange_errors = self.m.exchange_errors + 1
  local why = st and (res and res.error or ("HTTP " .. st)) or tostring(hd)
  if L.last_error ~= why then
    host.log("warn", ("lease %s: exchange with %s failed: %s"):format(L.id:sub(1, 12), L.addr, why))
    L.last_error = why
  end
  if st == 409 and res and res.error == "BEHIND" then
    host.log("error", ("lease %s: the provider's chain is at %s and this store has none: the consumer's "
      .. "state was lost (docs/uptime.md, Operations)"):format(L.id:sub(1, 12), tostring(res.head)))
  end
  local backoff = L.backoff or 0
  L.backoff = min(backoff > 0 and backoff * 2 or 0.25, max(1, interval / 2))
  return L.backoff, false
end

--- Follow one lease: exchange with its provider until stopped.
function Agent:follow(L)
  L.running = true
  L.backoff = 0
  host.spawn(function()
    local url = "https://" .. L.addr .. "/v1/leases/" .. L.id .. "/exchange"
    -- a resumed chain's next beat is due one interval after its head: the
    -- first exchange (it also carries the acknowledgement) waits for it,
    -- so a consumer restarted with many leases takes each up on its own
    -- phase instead of all of them in the same second
    local interval = self.pol.timestamps.conf.interval_s
    local due = L.head and ts_seconds(L.head.timestamp) + interval - wp.time() or 0
    if due > 0 then host.sleep(min(due, interval)) end
    while not self.stopping and self.leases[L.id] do
      local pause, progressed, stopping = self:step(L, url)
      if stopping then break end
      if pause > 0 then host.sleep(pause) end
      if progressed then L.last_error = nil end
      self:liveness(L)
      if not self.stopping then self:maybe_rotate(L) end
    end
    L.running = false
  end)
end

-- ---- run -----------------------------------------------------------------------------------

-- Descriptors for n leases: a consumer may hold a connection per lease to
-- its providers, a provider as many from its consumers, besides the store
-- and the listeners. The soft RLIMIT_NOFILE (often 1024) is raised towards
-- the hard one when it is short.
local function fit_descriptors(n)
  local need = 2 * n + 256
  local ok, ffi = pcall(require, "ffi")
  if not ok or ffi.os ~= "Linux" then return end
  pcall(ffi.cdef, [[
    struct wp_uptime_rlimit { unsigned long cur, max; };
    int getrlimit(int resource, struct wp_uptime_rlimit *rl);
    int setrlimit(int resource, const struct wp_uptime_rlimit *rl);
  ]])
  local RLIMIT_NOFILE = 7
  local rl = ffi.new("struct wp_uptime_rlimit")
  if ffi.C.getrlimit(RLIMIT_NOFILE, rl) ~= 0 or tonumber(rl.cur) >= need then return end
  local want = min(tonumber(rl.max), need)
  if want > tonumber(rl.cur) then
    rl.cur = want
    if ffi.C.setrlimit(RLIMIT_NOFILE, rl) ~= 0 then want = tonumber(rl.cur) end
  end
  if want < need then
    host.log("warn", ("%d lease(s) want about %d file descriptors, RLIMIT_NOFILE allows %d: raise it (ulimit -n)")
      :format(n, need, want))
  end
end

-- Give the C heap's free pages back to the system (glibc's malloc_trim;
-- nothing elsewhere). A start or a reload with many leases opens
-- thousands of transfers and TLS connections at once; what they free
-- stays in the process, interleaved with what lives on, and would count in
-- its RSS for good.
local function trim_heap()
  local ok, ffi = pcall(require, "ffi")
  if not ok then return end
  pcall(ffi.cdef, "int malloc_trim(size_t pad);")
  pcall(function() return ffi.C.malloc_trim(0) end)
end

--- Run an agent until SIGTERM/SIGINT. Prints "listening on ..." lines.
function _M.run(role, path)
  local self, errs = _M.open(role, path)
  if not self then
    for _, e in ipairs(errs) do io.stderr:write("workproof uptime ", role, ": ", e, "\n") end
    return 2
  end
  local conf = self.conf
  local config = require "workproof.config"
  require("workproof.log").configure(conf)
  fit_descriptors(#self.order)
  -- collect at 1.5 x the live heap, not 2 x (the default): a lease is a few
  -- KB of Lua state and the RSS keeps the heap's high-water mark; at 1,000
  -- leases this is ~2.5 KB a lease less, no CPU difference measurable
  -- (docs/uptime.md, "Many leases")
  collectgarbage("setpause", 150)
  local ok, cerr = self:issue_cert()
  if not ok then
    io.stderr:write("workproof uptime ", role, ": transport certificate: ", tostring(cerr), "\n")
    self.ledger:close()
    return 1
  end
  local function fail(msg)
    io.stderr:write("workproof uptime ", role, ": ", msg, "\n")
    if self.server then self.server:close() end
    if self.status_server then self.status_server:close() end
    self.ledger:close()
    host.stop(1)
  end
  if role == "provider" then
    local h, port = config.parse_listen(conf.listen)
    if not h then return fail("listen: " .. tostring(port)) end
    local pins = {}
    for _, L in ipairs(self.order) do for k in pairs(L.pins or {}) do pins[#pins + 1] = k end end
    if type(conf.challengers) == "table" then
      for _, k in ipairs(conf.challengers) do pins[#pins + 1] = tostring(k):lower() end
    elseif conf.challengers == "any" then
      pins = "any"   -- fishermen: any proven identity may challenge; exchanges stay the consumers'
    end
    -- a consumer keeps an exchange per lease open while its beat is due
    -- within the hold, all from one address: the per-address cap (64 by
    -- default) must let a consumer of every lease here through
    -- (docs/uptime.md, "Many leases")
    local srv, lerr = host.http_listen { host = h, port = port, handler = self:transport_handler(),
      header_timeout = 30, body_timeout = 60, max_connections_per_client = 64 + 2 * #self.order,
      tls = { cert = self.tls.cert, key = self.tls.key, pins = pins } }
    if not srv then return fail(lerr) end
    self.server = srv
    for _, L in ipairs(self.order) do self:pin_peer(L) end
    io.stdout:write(("listening on %s:%d (uptime transport, TLS 1.3, %d lease(s))\n"):format(h, srv.port,
      #self.order))
  end
  if conf.status_listen and conf.status_listen ~= "" then
    local h, port = config.parse_listen(conf.status_listen)
    if not h then return fail("status_listen: " .. tostring(port)) end
    local srv, lerr = host.http_listen { host = h, port = port, handler = status.handler(self) }
    if not srv then return fail(lerr) end
    self.status_server = srv
    io.stdout:write(("status API on http://%s:%d\n"):format(h, srv.port))
  end
  io.stdout:flush()
  host.log("info", ("workproof uptime %s %s: identity %s, %d lease(s), state %s"):format(role, host.version,
    conf.key, #self.order, conf.state_dir))
  self:keep_cert()
  local rok, rerr = registrar.start(self)
  if not rok then return fail(rerr) end
  if role == "consumer" then
    for _, L in ipairs(self.order) do
      self:follow(L)
      challenger.follow(self, L)
    end
  else
    for _, L in ipairs(self.order) do challenger.provision(self, L) end
  end
  -- liveness of leases with nothing happening (a provider whose consumer
  -- went away); the heap trimmed a minute after the start, then every ten
  local trim_at = wp.time() + 60
  host.spawn(function()
    while not self.stopping do
      host.sleep(1)
      for _, L in ipairs(self.order) do self:liveness(L) end
      if wp.time() >= trim_at then
        trim_heap()
        trim_at = wp.time() + 600
      end
    end
  end)
  local handles = {}
  local function stop(sig)
    if self.stopping then return end
    self.stopping = true
    host.log("info", "SIG" .. sig .. ": stopping")
    for _, hd in ipairs(handles) do hd:stop() end
    if self.server then self.server:close() self.server:drop() end
    if self.status_server then self.status_server:close() self.status_server:drop() end
    if self.chain then self.chain.client:release() end
    host.sleep(0.05)
    self.ledger:close()
    host.log("info", "stopped")
    io.stdout:flush()
    io.stderr:flush()
    host.stop(0)
  end
  -- kept while stopping (not in `handles`): a repeated TERM or INT must not
  -- meet the default action halfway through
  host.on_signal("TERM", function() stop("TERM") end)
  host.on_signal("INT", function() stop("INT") end)
  handles[#handles + 1] = host.on_signal("HUP", function() self:reload("SIGHUP") end)
  if conf.watch then
    local pending = false
    local function soon(why)
      if pending then return end
      pending = true
      host.sleep(0.15)
      pending = false
      self:reload(why)
    end
    handles[#handles + 1] = host.watch(conf.policies_dir, function(name)
      if name:find("%.lua$") then soon("policies/" .. name .. " changed") end
    end)
    handles[#handles + 1] = host.watch(path, function() soon("config changed") end)
  end
  _M.current = self
end

return _M
