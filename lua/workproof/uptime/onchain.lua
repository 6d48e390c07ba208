-- SPDX-License-Identifier: MIT
--- The UptimeRegistry contract from Lua (contracts/src/UptimeRegistry.sol,
-- docs/uptime.md section 12): calldata for every write (sent through the
-- durable outbox, workproof.chain), and the reads: the getters over
-- eth_call and the events over eth_getLogs, decoded.
--
--   local oc = require "workproof.uptime.onchain"
--   local tx = oc.post_claim(registry, claim_bytes, signer_hex)     -- { to, data }
--   chain:enqueue("uptime-claim", lease .. ":" .. index, tx)
--   local claims = oc.claims(rpc, registry, lease_hex)             -- ClaimPosted, oldest first
--
-- Keys, lease ids and hashes are hex (64 digits) on this side, bytes on the
-- contract's; amounts are decimal strings; addresses 0x-hex.
local wp = require "workproof"

local type, tonumber, tostring, ipairs, format = type, tonumber, tostring, ipairs, string.format

local _M = {}

_M.PARTY = { provider = 1, consumer = 2 }
_M.KIND = { INVALID_BEAT = 1, EQUIVOCATION = 2, CHALLENGE_FAILED = 3, CLAIM_MISMATCH = 4, OVERCOMMITTED = 5 }
_M.KIND_NAME = {}
for k, v in pairs(_M.KIND) do _M.KIND_NAME[v] = k end
_M.DISPUTE_STATE = { [1] = "open", [2] = "upheld", [3] = "dismissed", [4] = "expired" }
_M.CLAIM_STATE = { [0] = "none", [1] = "posted", [2] = "disputed", [3] = "slashed" }

local function b32(h, what)
  local s = type(h) == "string" and #h == 64 and wp.unhex(h)
  if not s then error(format("%s: expected 64 hex digits, got %s", what, tostring(h)), 3) end
  return s
end

local function call(to, sig, args)
  return { to = to, data = assert(wp.abi.encode_call(sig, args)) }
end

-- ---- writes: { to, data } for the outbox -----------------------------------------------

function _M.approve(token, spender, amount)
  return call(token, "approve(address,uint256)", { spender, tostring(amount) })
end

function _M.register_provider(reg, identity, collateral)
  return call(reg, "registerProvider(bytes32,uint256)", { b32(identity, "identity"), tostring(collateral or 0) })
end

function _M.add_collateral(reg, identity, amount)
  return call(reg, "addCollateral(bytes32,uint256)", { b32(identity, "identity"), tostring(amount) })
end

--- l = { provider (identity hex), provider_key, consumer_key, start_ns (decimal string), nonce (32 hex),
-- consumer (address), epoch_beats, claim_epochs }
function _M.register_lease(reg, l)
  local nonce = type(l.nonce) == "string" and #l.nonce == 32 and wp.unhex(l.nonce)
  if not nonce then error("register_lease: nonce: expected 32 hex digits", 2) end
  return call(reg, "registerLease(bytes32,bytes32,bytes32,uint64,bytes16,address,uint8,uint8)", {
    b32(l.provider, "provider"), b32(l.provider_key, "provider_key"), b32(l.consumer_key, "consumer_key"),
    tostring(l.start_ns), nonce, l.consumer, l.epoch_beats, l.claim_epochs })
end

local ROTATE = "(bytes32,uint8,uint32,bytes32,uint64,bytes32)"
--- r = { lease, party ("provider"|"consumer"), index, new_key, effective_sequence, record_hash }
local function rotation_args(r)
  return { b32(r.lease, "lease"), _M.PARTY[r.party] or error("party: provider or consumer", 3), r.index,
    b32(r.new_key, "new_key"), tostring(r.effective_sequence), b32(r.record_hash, "record_hash") }
end
function _M.anchor_rotation(reg, r) return call(reg, "anchorRotation" .. ROTATE, rotation_args(r)) end
function _M.force_rotation(reg, r) return call(reg, "forceRotation" .. ROTATE, rotation_args(r)) end

function _M.post_claim(reg, claim, signer)
  return call(reg, "postClaim(bytes,bytes32)", { claim, b32(signer, "signer") })
end

function _M.open_dispute(reg, lease, claim_index, kind, evidence)
  local k = _M.KIND[kind] or kind
  if type(k) ~= "number" then error("open_dispute: unknown kind " .. tostring(kind), 2) end
  return call(reg, "openDispute(bytes32,uint32,uint8,bytes)", { b32(lease, "lease"), claim_index, k, evidence })
end

function _M.resolve(reg, id, upheld, slash, refund, report_hash)
  return call(reg, "resolve(uint256,bool,uint256,uint256,bytes32)", { tostring(id), upheld and true or false,
    tostring(slash or 0), tostring(refund or 0), b32(report_hash, "report_hash") })
end

function _M.expire(reg, id) return call(reg, "expire(uint256)", { tostring(id) }) end

-- ---- reads -------------------------------------------------------------------------------

local function eth_call(rpc, to, sig, args, out, block)
  local data = assert(wp.abi.encode_call(sig, args))
  local raw, err = rpc:call("eth_call", { { to = to, data = "0x" .. wp.hex(data) },
    block and format("0x%x", block) or "latest" })
  if type(raw) ~= "string" then return nil, err or "ERPC: eth_call returned nothing" end
  local v, derr = wp.abi.decode(out, wp.unhex(raw:sub(3)) or "")
  if not v then return nil, derr end
  return v
end

local function num(x) return tonumber(x) end
local function hexb(x) return wp.hex(x) end

--- (block: read as of that block; default the latest)
function _M.provider(rpc, reg, identity, block)
  local v, err = eth_call(rpc, reg, "getProvider(bytes32)", { b32(identity, "identity") },
    "address,uint32,uint64,uint256", block)
  if not v then return nil, err end
  return { owner = v[1], openDisputes = num(v[2]), lastClaimAt = num(v[3]), collateral = tostring(v[4]),
    registered = v[1] ~= "0x0000000000000000000000000000000000000000" }
end

function _M.lease(rpc, reg, lease)
  local v, err = eth_call(rpc, reg, "getLease(bytes32)", { b32(lease, "lease") },
    "bytes32,address,uint8,uint8,uint32,uint32[2],bytes32")
  if not v then return nil, err end
  return { provider = hexb(v[1]), consumer = v[2], epochBeats = num(v[3]), claimEpochs = num(v[4]),
    nextClaim = num(v[5]), rotations = { num(v[6][1]), num(v[6][2]) }, lastClaimHash = hexb(v[7]),
    registered = v[1] ~= ("\0"):rep(32) }
end

function _M.claim(rpc, reg, lease, index)
  local v, err = eth_call(rpc, reg, "getClaim(bytes32,uint32)", { b32(lease, "lease"), index },
    "bytes32,bytes32,uint64,uint32,uint64,uint8")
  if not v then return nil, err end
  return { claimHash = hexb(v[1]), root = hexb(v[2]), firstSequence = num(v[3]), beatCount = num(v[4]),
    postedAt = num(v[5]), state = _M.CLAIM_STATE[num(v[6])] }
end

function _M.dispute(rpc, reg, id)
  local v, err = eth_call(rpc, reg, "getDispute(uint256)", { tostring(id) },
    "bytes32,address,uint32,uint32,uint8,uint8,bytes32")
  if not v then return nil, err end
  return { leaseId = hexb(v[1]), disputer = v[2], openedAt = num(v[3]), claimIndex = num(v[4]),
    kind = _M.KIND_NAME[num(v[5])], state = _M.DISPUTE_STATE[num(v[6])], evidenceHash = hexb(v[7]) }
end

--- The registry's immutable parameters.
function _M.params(rpc, reg)
  local out = {}
  for _, p in ipairs({ { "token", "address" }, { "arbiter", "address" }, { "governance", "address" },
    { "disputeWindow", "uint64" }, { "ruleWindow", "uint64" }, { "disputeBond", "uint256" } }) do
    local v, err = eth_call(rpc, reg, p[1] .. "()", {}, p[2])
    if not v then return nil, err end
    out[p[1]] = p[2] == "uint64" and num(v[1]) or tostring(v[1])
  end
  return out
end

-- ---- events ------------------------------------------------------------------------------

-- name -> { signature, types of the non-indexed fields, names of indexed then data fields }
local EVENTS = {
  LeaseRegistered = { "LeaseRegistered(bytes32,bytes32,bytes32,bytes32,address,uint8,uint8)",
    "bytes32,bytes32,address,uint8,uint8",
    { "leaseId", "provider" }, { "providerKey", "consumerKey", "consumer", "epochBeats", "claimEpochs" } },
  RotationAnchored = { "RotationAnchored(bytes32,uint8,uint32,bytes32,uint64,bytes32,bool)",
    "uint8,uint32,bytes32,uint64,bytes32,bool",
    { "leaseId" }, { "party", "index", "newKey", "effectiveSequence", "recordHash", "forced" } },
  KeyRevoked = { "KeyRevoked(bytes32,uint8,bytes32,uint64)", "uint8,bytes32,uint64",
    { "leaseId" }, { "party", "key", "fromSequence" } },
  ClaimPosted = { "ClaimPosted(bytes32,uint32,bytes32,bytes32,bytes)", "bytes32,bytes32,bytes",
    { "leaseId", "index" }, { "claimHash", "signer", "claim" } },
  DisputeOpened = { "DisputeOpened(uint256,bytes32,uint32,uint8,address,bytes)", "uint32,uint8,address,bytes",
    { "id", "leaseId" }, { "claimIndex", "kind", "disputer", "evidence" } },
  DisputeResolved = { "DisputeResolved(uint256,uint8,uint256,uint256,bytes32)", "uint8,uint256,uint256,bytes32",
    { "id" }, { "state", "slashed", "refunded", "reportHash" } },
}
for _, e in pairs(EVENTS) do e.topic = "0x" .. wp.hex(wp.abi.event_topic(e[1])) end

-- a decoded value as this module hands it out: bytes32 as hex, small
-- integers as numbers, bytes as bytes, addresses as they are
local function norm(t, v)
  if t == "bytes32" then return wp.hex(v) end
  if t:match("^uint") and t ~= "uint256" then return tonumber(v) end
  return v
end

--- Decoded logs of event `name` (oldest first). filter = { [1], [2] = 64
-- hex: the value of the first / second indexed field (nil: any), from =
-- block, to = block (latest) }.
function _M.events(rpc, reg, name, filter)
  local e = assert(EVENTS[name], "unknown event")
  filter = filter or {}
  local topics = { e.topic }
  if filter[1] or filter[2] then topics[2] = filter[1] and ("0x" .. filter[1]) or require("cjson").null end
  if filter[2] then topics[3] = "0x" .. filter[2] end
  local logs, err = rpc:call("eth_getLogs", { { address = reg, topics = topics,
    fromBlock = format("0x%x", filter.from or 0), toBlock = filter.to and format("0x%x", filter.to) or "latest" } })
  if type(logs) ~= "table" then return nil, err or "ERPC: eth_getLogs returned nothing" end
  local types = {}
  for t in e[2]:gmatch("[^,]+") do types[#types + 1] = t end
  local ityp = {}
  for t in e[1]:match("%((.*)%)"):gmatch("[^,]+") do ityp[#ityp + 1] = t end
  local out = {}
  for _, lg in ipairs(logs) do
    local v, derr = wp.abi.decode(e[2], wp.unhex(lg.data:sub(3)) or "")
    if not v then return nil, "EPROTO: " .. name .. " log: " .. tostring(derr) end
    local r = { block = tonumber(lg.blockNumber), tx = lg.transactionHash, logIndex = tonumber(lg.logIndex) }
    for i, f in ipairs(e[3]) do
      local raw = wp.unhex(lg.topics[i + 1]:sub(3))
      local t = ityp[i]
      r[f] = t == "bytes32" and wp.hex(raw) or tonumber(wp.hex(raw), 16)
    end
    for i, f in ipairs(e[4]) do r[f] = norm(types[i], v[i]) end
    out[#out + 1] = r
  end
  return out
end

--- Posted claims of a lease, by index: { [index] = { claim (bytes), claimHash, signer, block } }.
function _M.claims(rpc, reg, lease, from)
  local evs, err = _M.events(rpc, reg, "ClaimPosted", { lease, from = from })
  if not evs then return nil, err end
  local out = {}
  for _, e in ipairs(evs) do out[e.index] = e end
  return out, evs
end

--- The leases registered by provider (identity hex): LeaseRegistered events.
function _M.leases_of(rpc, reg, provider)
  return _M.events(rpc, reg, "LeaseRegistered", { nil, provider })
end

--- The newest claim of lease that is still in its dispute window:
-- { index, left = seconds } | nil. now = the chain's time.
function _M.open_claim(rpc, reg, lease, window, now)
  local l = _M.lease(rpc, reg, lease)
  if not l or l.nextClaim == 0 then return nil end
  local c = _M.claim(rpc, reg, lease, l.nextClaim - 1)
  local left = c and c.postedAt + window - now or -1
  return left > 0 and { index = l.nextClaim - 1, left = left } or nil
end

--- The chain's time: the latest block's timestamp (nil while the node is down).
function _M.chain_time(rpc)
  local b = rpc:call("eth_getBlockByNumber", { "latest", false })
  return type(b) == "table" and tonumber(b.timestamp) or nil
end

--- The lease as registered, with each party's key ranges from its
-- registration, its anchored rotations (a forced record replaces the
-- records from its index on) and the revocations:
-- { provider = { {first, last, key, revokedFrom} ... }, consumer = ... }.
function _M.keys(rpc, reg, lease)
  local lr, err = _M.events(rpc, reg, "LeaseRegistered", { lease })
  if not lr then return nil, err end
  if not lr[1] then return nil, "ENOENT: lease " .. lease .. " is not registered" end
  local rot, rerr = _M.events(rpc, reg, "RotationAnchored", { lease })
  if not rot then return nil, rerr end
  local rev, verr = _M.events(rpc, reg, "KeyRevoked", { lease })
  if not rev then return nil, verr end
  local out = { lease = lr[1] }
  for party, p in pairs(_M.PARTY) do
    local list = {}   -- the records in force, by index (a forced one drops those after it)
    for _, r in ipairs(rot) do
      if r.party == p then
        list[r.index + 1] = r
        for i = #list, r.index + 2, -1 do list[i] = nil end
      end
    end
    local ranges = { { first = 0, key = party == "provider" and lr[1].providerKey or lr[1].consumerKey } }
    for _, r in ipairs(list) do
      ranges[#ranges].last = r.effectiveSequence - 1
      ranges[#ranges + 1] = { first = r.effectiveSequence, key = r.newKey }
    end
    for _, r in ipairs(rev) do
      if r.party == p then
        for _, g in ipairs(ranges) do
          if g.key == r.key then
            g.revokedFrom = math.min(g.revokedFrom or math.huge, r.fromSequence)
            if g.last == nil or g.last >= r.fromSequence then g.last = r.fromSequence - 1 end
          end
        end
      end
    end
    out[party] = ranges
  end
  return out
end

-- ---- an agent's (or the arbiter's) connection --------------------------------------------

local ADDR = "^0x%x+$"
--- The `chain` record of the agents' and the arbiter's configs.
_M.SCHEMA = { type = "record", fields = {
  rpc = { type = "string", description = "JSON-RPC endpoint of the chain (without it the chain is off)" },
  deployment = { type = "string",
    description = "contracts/deployments/*.json (what make run writes): registry, token and chain id" },
  registry = { type = "string", match = ADDR, min = 42, max = 42, description = "UptimeRegistry address" },
  token = { type = "string", match = ADDR, min = 42, max = 42, description = "the collateral and bond token" },
  chain_id = { type = "integer", min = 1 },
  key_file = { type = "string", description = "this party's signer key (64 hex, mode 0600)" },
  key_env = { type = "string", description = "... or the environment variable holding it" },
  poll_s = { type = "number", default = 2, min = 0.05, max = 3600,
    description = "seconds between looks at the registry's events" },
  collateral = { type = "integer", default = 0, min = 0,
    description = "provider: token units posted when it registers its identity key" },
}, description = "the UptimeRegistry: claims posted (provider), checked and disputed (consumer), ruled (arbiter)" }

--- Connect: { client (workproof.chain: signer, nonce, outbox over db), rpc,
-- registry, token, chain_id, address } | nil, err. Paths are relative to base.
--- The chain block's registry, token and chain id (from chain.deployment
-- where not given) and an RPC client: { rpc, registry, token, chain_id,
-- abs (a path relative to base) } | nil, err. Sends nothing.
function _M.locate(cc, base)
  local cjson = require "cjson.safe"
  local function abs(p) return (p:sub(1, 1) == "/" or not base) and p or (base .. "/" .. p) end
  local dep = {}
  if cc.deployment then
    local f = io.open(abs(cc.deployment), "rb")
    dep = f and cjson.decode(f:read("*a") or "")
    if f then f:close() end
    if type(dep) ~= "table" then return nil, "chain.deployment: cannot read " .. abs(cc.deployment) end
  end
  local r = { registry = cc.registry or (dep.uptime and dep.uptime.registry),
    token = cc.token or (dep.token and dep.token.address), chain_id = cc.chain_id or dep.chainId, abs = abs,
    rpc = require("workproof.rpc").new(cc.rpc, { timeout = 10 }) }
  if not r.registry then return nil, "chain.registry (or chain.deployment) is required" end
  return r
end

function _M.connect(cc, db, base)
  local r, rerr = _M.locate(cc, base)
  if not r then return nil, rerr end
  if not r.chain_id then return nil, "chain.chain_id (or chain.deployment) is required" end
  local client, err = require("workproof.chain").new { rpc = r.rpc, db = db, chain_id = r.chain_id,
    key = { file = cc.key_file and r.abs(cc.key_file), env = cc.key_env }, poll = 0.1 }
  if not client then return nil, err end
  client:kick()   -- what a previous run left in the outbox
  return { client = client, rpc = r.rpc, registry = r.registry, token = r.token, chain_id = r.chain_id,
    address = client.address, poll_s = cc.poll_s, conf = cc }
end

--- The key of ranges active at sequence seq (nil when none).
function _M.key_at(ranges, seq)
  for _, r in ipairs(ranges) do
    if seq >= r.first and (r.last == nil or seq <= r.last) then return r.key end
  end
end

return _M
