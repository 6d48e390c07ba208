-- SPDX-License-Identifier: MIT
--- The uptime agents and the UptimeRegistry (docs/uptime.md section 12),
-- on when an agent's config has a `chain` block. Every write goes through
-- the durable outbox in the agent's own store (workproof.chain: never
-- twice, survives restarts and RPC outages); every (kind, ref) below is
-- enqueued at most once however often it is asked for.
--
-- Provider: registers its identity key with `chain.collateral` (approving
-- the token first) and each lease (`consumer_address` in the lease), anchors
-- its own key rotations, and posts each claim it signs.
-- Consumer: reads the claims posted for its leases, checks each against
-- its own chain (the claim it countersigned, or the one its beats give),
-- and disputes a claim that differs, and the evidence its agent kept
-- (equivocations, failed challenges, overcommitment), when
-- policies/disputes.lua says so, against the newest claim whose dispute
-- window is open.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local oc = require "workproof.uptime.onchain"
local evidence = require "workproof.uptime.evidence"

local u = wp.uptime
local ipairs, pairs, tostring, tonumber, type, format = ipairs, pairs, tostring, tonumber, type, string.format

local _M = {}

local MAX_APPROVAL = "57896044618658097711785492504343953926634992332820282019728792003956564819968"   -- 2^255

local function enqueue(agent, kind, ref, tx)
  local id, err = agent.chain.client:enqueue(kind, ref, tx)
  if not id then host.log("error", ("chain: cannot queue %s %s: %s"):format(kind, ref, tostring(err))) end
  return id
end

-- ---- provider ------------------------------------------------------------------------------

--- A claim the provider signed (lease L, index, its 194 bytes, the signer key hex).
function _M.post_claim(agent, L, index, enc, signer)
  if not agent.chain then return end
  enqueue(agent, "uptime-claim", L.id .. ":" .. index, oc.post_claim(agent.chain.registry, enc, signer))
end

--- A rotation record of this agent's own party (forced ones are governance's to anchor).
function _M.anchor(agent, L, rec)
  if not agent.chain or rec.reason == "forced" then return end
  if not rec.effectiveSequence then   -- the registry anchors keys by sequence
    host.log("warn", ("chain: rotation %s/%d takes effect by time: not anchored"):format(rec.party, rec.index))
    return
  end
  enqueue(agent, "uptime-rotation", format("%s:%s:%d", L.id, rec.party, rec.index), oc.anchor_rotation(
    agent.chain.registry, { lease = L.id, party = rec.party, index = rec.index, new_key = rec.newKey:lower(),
      effective_sequence = rec.effectiveSequence, record_hash = u.rotation_hash(rec) }))
end

local function register(agent)
  local c, conf = agent.chain, agent.conf
  local p
  while not p and not agent.stopping do   -- the node may not be up yet
    p = oc.provider(c.rpc, c.registry, conf.key)
    if not p then host.sleep(c.poll_s) end
  end
  if not p then return end
  if not p.registered then
    if conf.chain.collateral > 0 then
      enqueue(agent, "uptime-approve", c.registry, oc.approve(c.token, c.registry, conf.chain.collateral))
    end
    enqueue(agent, "uptime-provider", conf.key, oc.register_provider(c.registry, conf.key, conf.chain.collateral))
    host.log("info", ("chain: registering identity %s with %d units of collateral"):format(conf.key:sub(1, 12),
      conf.chain.collateral))
  end
  for _, L in ipairs(agent.order) do
    local l = oc.lease(c.rpc, c.registry, L.id)
    if l and not l.registered then
      if not L.consumer_address then
        host.log("error", ("chain: lease %s has no consumer_address: it cannot be registered, its claims not posted")
          :format(L.id:sub(1, 12)))
      else
        enqueue(agent, "uptime-lease", L.id, oc.register_lease(c.registry, { provider = conf.key,
          provider_key = L.provider_key, consumer_key = L.consumer_key, start_ns = L.start_ns, nonce = L.nonce,
          consumer = L.consumer_address, epoch_beats = conf.epoch_beats, claim_epochs = conf.claim_epochs }))
      end
    end
    -- what was signed before the chain was configured (or before a crash)
    local next_claim = l and l.nextClaim or 0
    for _, r in ipairs(L.records) do
      if r.party == "provider" then _M.anchor(agent, L, r) end
    end
    for _, cl in ipairs(agent.ledger:claims(L.id)) do
      if cl.idx >= next_claim then
        local enc = wp.unhex(cl.enc)
        local d = u.claim_decode(enc)
        _M.post_claim(agent, L, cl.idx, enc, agent:key_at(L, "provider", d.firstSequence + d.beatCount - 1))
      end
    end
  end
end

-- ---- consumer ------------------------------------------------------------------------------

-- evidence bytes for the claim `posted` (table from ClaimPosted) that is not ours, or nil, why
local function mismatch_evidence(agent, L, posted)
  local d = u.claim_decode(posted.claim)
  local mine = agent.ledger:claim(L.id, posted.index)
  if mine and mine.hash ~= posted.claimHash then
    return evidence.claim_pair(wp.unhex(mine.enc))      -- the provider signed two claims for this index
  end
  -- a claim we never saw: what our dual-signed chain gives for its range
  local K = agent.conf.claim_epochs
  local beats = agent.ledger:beats(L.id, d.firstSequence, d.beatCount)
  if #beats ~= d.beatCount then return nil, "our chain does not hold the claim's beats" end
  local prev, path = nil, {}
  if d.index > 0 then
    local es = agent.ledger:epochs(L.id)
    local lo = (d.index - 1) * K
    local hashes = {}
    for i = 1, K do
      local e = es[lo + i]
      if not e then return nil, "our chain lacks the previous claim's epochs" end
      hashes[i] = wp.unhex(e.hash)
    end
    prev = es[lo + K].hash
    for i, x in ipairs(assert(wp.merkle.inclusion_proof(hashes, K - 1))) do path[i] = wp.hex(x) end
  end
  local bytes = evidence.claim_chain(beats, prev, path)
  if bytes and #bytes > evidence.MAX_BYTES then
    return nil, ("the chain evidence is %d bytes, more than the registry takes"):format(#bytes)
  end
  return bytes
end

-- the evidence bytes for a row the agent kept, or nil
local function kept_evidence(agent, L, row)
  local t = cjson.decode(row.data or "")
  if type(t) ~= "table" then return nil end
  if row.kind == "EQUIVOCATION" then return evidence.equivocation(t.ours, t.theirs) end
  if row.kind == "CHALLENGE_FAILED" and type(t.answer) == "table" then
    local com = t.challenge and t.challenge.kind == "storage" and agent.ledger:statement(L.id, "storage") or nil
    return evidence.challenge_failed(t.challenge, t.answer, com)
  end
  if row.kind == "OVERCOMMITTED" and type(t.attestation) == "table" then
    return evidence.overcommitted(t.attestation)
  end
end

--- Queue a dispute of claim `claim_index` of `lease` (once per ref, the
-- bond approved first) when the disputes policy says so. c = onchain.connect's
-- record, pol = { p, conf }. true | false, why.
function _M.queue_dispute(c, pol, ref, lease, claim_index, kind, bytes, window_left)
  local ok, why = pol.p.open(pol.conf, { kind = kind, window_left_s = window_left })
  if not ok then return false, why end
  local id, err = c.client:enqueue("uptime-approve", c.registry, oc.approve(c.token, c.registry, MAX_APPROVAL))
  if id then
    id, err = c.client:enqueue("uptime-dispute", ref, oc.open_dispute(c.registry, lease, claim_index, kind, bytes))
  end
  if not id then return false, tostring(err) end
  return true
end

local function dispute(agent, L, ref, kind, claim_index, bytes, window_left)
  local ok, why = _M.queue_dispute(agent.chain, agent.pol.disputes, L.id .. ":" .. ref, L.id, claim_index, kind, bytes,
    window_left)
  if not ok then
    if not L.disputes_skipped[ref] then
      L.disputes_skipped[ref] = true
      host.log("info", ("lease %s: not disputing %s (%s): %s"):format(L.id:sub(1, 12), kind, ref, why))
    end
    return
  end
  if not L.disputed[ref] then
    L.disputed[ref] = true
    agent.m.disputes = (agent.m.disputes or 0) + 1
    host.log("warn", ("lease %s: DISPUTE %s against claim %d (%d bytes of evidence)"):format(L.id:sub(1, 12), kind,
      claim_index, #bytes))
  end
end

local function check_lease(agent, L, params, now)
  local c = agent.chain
  -- the claims posted since the last look (events from the block after it)
  local head = tonumber(c.rpc:call("eth_blockNumber", {}) or "")
  if not head then return end
  local _, evs = oc.claims(c.rpc, c.registry, L.id, L.claims_from or 0)
  if not evs then return end
  L.claims_from = head + 1
  L.onchain, L.posted = L.onchain or {}, L.posted or {}
  L.disputed, L.disputes_skipped = L.disputed or {}, L.disputes_skipped or {}
  for _, e in ipairs(evs) do L.onchain[e.index] = e end
  -- claims are posted in order: only the newest can still be in its dispute window
  local newest = oc.open_claim(c.rpc, c.registry, L.id, params.disputeWindow, now)
  for i, p in pairs(L.onchain) do
    local left = newest and newest.index == i and newest.left or -1
    if L.posted[i] == nil then
      -- ours: the claim we countersigned, or the one our own epochs give
      local mine = agent.ledger:claim(L.id, i)
      local own = not (mine and mine.hash == p.claimHash) and agent:own_claim(L, i)
      if (mine and mine.hash == p.claimHash) or (own and u.claim_hash(own) == p.claimHash) then
        L.posted[i] = "ok"
      elseif mine or own then
        local d = u.claim_decode(p.claim)
        local bytes, why = mismatch_evidence(agent, L, p)
        L.posted[i] = bytes and "mismatch" or "unprovable"
        agent.ledger:evidence(L.id, "POSTED_CLAIM_MISMATCH", d.firstSequence + d.beatCount - 1,
          { index = i, claim = wp.hex(p.claim), claimHash = p.claimHash, evidence = bytes and wp.hex(bytes),
            why = why })
        host.log("warn", ("lease %s: posted claim %d is not the one our chain gives%s"):format(L.id:sub(1, 12), i,
          why and (" (" .. why .. ")") or ""))
        if bytes then dispute(agent, L, "claim:" .. i, "CLAIM_MISMATCH", i, bytes, left) end
      end   -- else our chain has not reached it yet
    end
  end
  if not newest then return end
  for _, row in ipairs(agent.ledger:evidence_list(L.id)) do
    local ref = "evidence:" .. row.id
    if oc.KIND[row.kind] and not L.disputed[ref] then
      local bytes = kept_evidence(agent, L, row)
      if bytes then dispute(agent, L, ref, row.kind, newest.index, bytes, newest.left) end
    end
  end
end

local function watch(agent)
  local c = agent.chain
  local params
  while not agent.stopping do
    params = params or oc.params(c.rpc, c.registry)
    local now = params and oc.chain_time(c.rpc)
    if now then
      for _, L in ipairs(agent.order) do
        local ok, err = pcall(check_lease, agent, L, params, now)
        if not ok then host.log("error", ("lease %s: registry: %s"):format(L.id:sub(1, 12), tostring(err))) end
      end
    end
    host.sleep(c.poll_s)
  end
end

--- Connect when the config has a chain block; start the provider's
-- registration or the consumer's watch. true | nil, err (a config error).
function _M.start(agent)
  local cc = agent.conf.chain
  if not cc or not cc.rpc then
    if cc and (cc.deployment or cc.registry or cc.key_file or cc.key_env) then return nil, "chain.rpc: required" end
    return true
  end
  local c, err = oc.connect(cc, agent.ledger.db, agent.conf.base)
  if not c then return nil, "chain: " .. tostring(err) end
  agent.chain = c
  host.log("info", ("chain %d: UptimeRegistry %s, signer %s"):format(c.chain_id, c.registry, c.address))
  host.spawn(function() (agent.role == "provider" and register or watch)(agent) end)
  return true
end

--- /metrics and /leases: the outbox's rows by state.
function _M.states(agent)
  return agent.chain and agent.chain.client:states() or nil
end

return _M
