-- SPDX-License-Identifier: MIT
--- The agents' challenge side (docs/uptime.md, "Challenges"): the
-- provider's storage, its answers and its capacity attestation; the
-- consumer's challenge loop, judged by the `challenges` policy into a
-- per-lease score.
--
-- Transport routes (the provider; every connection is authenticated):
--   POST /v1/leases/{id}/challenge   the lease's consumer: { kind, nonce, params } -> signed answer
--   GET  /v1/leases/{id}/storage     the lease's consumer: the signed storage commitment
--   POST /v1/challenge               any authenticated peer (a fisherman): latency or compute,
--                                    signed with the provider's identity key
--   GET  /v1/capacity                any authenticated peer: the signed capacity attestation
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local fs = require "workproof.fs"
local chal = require "workproof.uptime.challenge"

local type, ipairs, tostring, tonumber, min = type, ipairs, tostring, tonumber, math.min

local _M = {}

local JSON = { ["content-type"] = "application/json" }
local function json(st, t) return st, JSON, cjson.encode(t) end

-- ---- provider ----------------------------------------------------------------------

local function storage_path(agent, L)
  return agent.conf.state_dir .. "/storage/" .. L.id .. ".dat"
end

--- Provision a lease's storage (in the background, at start) and keep its
-- signed commitment; nothing when the config declares no storage.
function _M.provision(agent, L)
  local sc = agent.conf.storage
  if not sc or not sc.size_mb or agent.role ~= "provider" then return end
  local have = agent.ledger:statement(L.id, "storage")
  if have then
    L.storage = { path = storage_path(agent, L), commitment = have.commitment, signed = have }
    return
  end
  L.provisioning = true
  host.spawn(function()
    local st = require "workproof.uptime.storage"
    fs.mkdir_p(agent.conf.state_dir .. "/storage", 448)
    local t0 = host.now()
    local c, err = st.provision(storage_path(agent, L), sc.size_mb * 1048576,
      { seed = wp.hex(wp.sha256(L.id .. "storage")), chunk_size = sc.chunk_size, work = sc.work })
    L.provisioning = false
    if not c then
      host.log("error", ("lease %s: storage: %s"):format(L.id:sub(1, 12), tostring(err)))
      return
    end
    local _, sk = wp.ed25519.keypair(wp.unhex(agent.conf.seed))
    local signed = chal.sign(chal.STORAGE, { leaseId = L.id, commitment = c }, sk, agent.conf.key)
    agent.ledger:set_statement(L.id, "storage", signed)
    L.storage = { path = storage_path(agent, L), commitment = c, signed = signed }
    host.log("info", ("lease %s: %d MiB of storage provisioned in %.1f s, root %s"):format(L.id:sub(1, 12),
      sc.size_mb, host.now() - t0, c.root:sub(1, 12)))
  end)
end

local function capacity_attestation(agent)
  local cap = agent.conf.capacity
  if not cap then return nil end
  local leases = {}
  for _, L in ipairs(agent.order) do
    leases[#leases + 1] = { id = L.id, share = L.share or {} }
  end
  local _, sk = wp.ed25519.keypair(wp.unhex(agent.conf.seed))
  return chal.sign(chal.CAPACITY, { provider = agent.conf.key, capacity = cap, leases = leases,
    at = math.floor(wp.time()) }, sk, agent.conf.key)
end

-- answer and sign (lease scope: the lease's current provider key)
local function answer(agent, ch, scope, L, secret, pub)
  ch.scope = scope
  local ans, err = chal.answer(ch, L and L.storage)
  if not ans then return json(400, { error = "BAD_CHALLENGE", detail = err }) end
  agent.m.challenges_answered = (agent.m.challenges_answered or 0) + 1
  return json(200, chal.sign(chal.ANSWER, ans, secret, pub))
end

--- The transport routes above; nil when the path is not one of them.
function _M.provider_route(agent, req, peer)
  local path, method = req.path, req.method
  if path == "/v1/challenge" and method == "POST" then
    local ch = cjson.decode(req.body or "")
    if type(ch) ~= "table" or (ch.kind ~= "latency" and ch.kind ~= "compute") then
      return json(400, { error = "BAD_CHALLENGE", detail = "provider-wide challenges: latency or compute" })
    end
    local _, sk = wp.ed25519.keypair(wp.unhex(agent.conf.seed))
    return answer(agent, ch, "provider", nil, sk, agent.conf.key)
  end
  if path == "/v1/capacity" and method == "GET" then
    local att = capacity_attestation(agent)
    if not att then return json(404, { error = "NO_CAPACITY", detail = "this provider declares none" }) end
    return json(200, att)
  end
  local id, rest = path:match("^/v1/leases/(%x+)/(%a+)$")
  if not id or (rest ~= "challenge" and rest ~= "storage") then return nil end
  local L = agent.leases[id:lower()]
  if not L then return json(404, { error = "UNKNOWN_LEASE", detail = "no such lease here" }) end
  if not (L.pins and L.pins[peer]) then
    return json(403, { error = "WRONG_PEER", detail = "this connection's key is not the lease's consumer" })
  end
  if rest == "storage" then
    if L.storage then return json(200, L.storage.signed) end
    if L.provisioning then return json(503, { error = "PROVISIONING", detail = "storage is being written" }) end
    return json(404, { error = "NO_STORAGE", detail = "this lease has no committed storage" })
  end
  local ch = cjson.decode(req.body or "")
  if type(ch) ~= "table" then return json(400, { error = "BAD_JSON" }) end
  local seq = L.head and L.head.sequence + 1 or 0
  local pub = agent:key_at(L, "provider", seq)
  local sk = agent:secret_at(L, seq)
  if not sk then return json(500, { error = "NO_KEY" }) end
  return answer(agent, ch, L.id, L, sk, pub)
end

-- ---- consumer ------------------------------------------------------------------------

local function fetch(agent, L, path)
  local st, _, body = host.http_request { url = "https://" .. L.addr .. path, timeout = 10,
    connect_timeout = agent.conf.connect_timeout,
    tls = { cert = agent.tls.cert, key = agent.tls.key, pin = L.provider_key } }
  return st, cjson.decode(body or "")
end

-- the storage commitment, once: the first valid one binds the lease
local function commitment(agent, L)
  if L.commitment ~= nil then return L.commitment end
  local have = agent.ledger:statement(L.id, "storage")
  if have then L.commitment = have.commitment return L.commitment end
  local st, t = fetch(agent, L, "/v1/leases/" .. L.id .. "/storage")
  if st == 404 then L.commitment = false return false end
  if st ~= 200 then return nil end
  local ok, why = chal.verify(chal.STORAGE, t, L.provider_key)
  local c = type(t) == "table" and t.commitment
  if ok and (t.leaseId ~= L.id or type(c) ~= "table") then ok, why = false, "not this lease's" end
  -- the encoding's parameters are the lease's, not the provider's choice:
  -- the seed is derived from the lease, and a cheap `work` would make
  -- re-deriving chunks on demand fit the deadline
  local pc = agent.pol.challenges.conf
  if ok and c.seed ~= wp.hex(wp.sha256(L.id .. "storage")) then ok, why = false, "seed not derived from the lease" end
  if ok and (tonumber(c.work) or 0) < pc.storage_min_work then
    ok, why = false, ("work %s below the policy's %d"):format(tostring(c.work), pc.storage_min_work)
  end
  if not ok then
    agent:reject(L, "BAD_COMMITMENT", tostring(why), { kind = "BAD_COMMITMENT", commitment = t })
    L.commitment = false
    return false
  end
  agent.ledger:set_statement(L.id, "storage", t)
  L.commitment = t.commitment
  host.log("info", ("lease %s: storage commitment %s (%d chunks) recorded"):format(L.id:sub(1, 12),
    t.commitment.root:sub(1, 12), t.commitment.chunks))
  return L.commitment
end

local function check_capacity(agent, L)
  local st, att = fetch(agent, L, "/v1/capacity")
  if st ~= 200 then return end
  local ok, why = chal.verify(chal.CAPACITY, att, L.provider_key)
  if ok then ok, why = chal.capacity_check(att, L.id) end
  L.capacity = { ok = ok, detail = why, at = wp.time() }
  if not ok then
    agent:reject(L, "OVERCOMMITTED", why, { kind = "OVERCOMMITTED", attestation = att })
  end
end

--- Run what the challenges policy says is due for a lease, judge it, keep it.
function _M.tick(agent, L)
  local pol = agent.pol.challenges
  if not pol then return end
  L.challenge_last = L.challenge_last or {}
  local com = commitment(agent, L)
  local due = pol.p.due(pol.conf, { now = wp.time(), last = L.challenge_last, storage = com and true or false })
  for _, d in ipairs(due) do
    L.challenge_last[d.kind] = wp.time()
    local ch = { kind = d.kind, nonce = chal.nonce(), params = d.params, scope = L.id }
    local r = chal.run { url = "https://" .. L.addr .. "/v1/leases/" .. L.id .. "/challenge", ch = ch,
      tls = { cert = agent.tls.cert, key = agent.tls.key, pin = L.provider_key },
      key = agent:key_at(L, "provider", L.head and L.head.sequence + 1 or 0), deadline_s = d.deadline_s,
      commitment = com or nil }
    local history = agent.ledger:challenges(L.id, 200)
    local j = pol.p.judge(pol.conf, r, history)
    r.passed, r.degraded, r.detail = j.passed, j.degraded, j.detail or r.why
    agent.ledger:add_challenge(L.id, r)
    agent.m.challenges = agent.m.challenges or {}
    local key = d.kind .. (r.passed and (r.degraded and ":degraded" or ":passed") or ":failed")
    agent.m.challenges[key] = (agent.m.challenges[key] or 0) + 1
    if not r.passed or r.degraded then
      host.log("warn", ("lease %s: %s challenge %s: %s"):format(L.id:sub(1, 12), d.kind,
        r.passed and "degraded" or "failed", tostring(r.detail)))
    end
    if j.action == "dispute" then
      agent.ledger:evidence(L.id, "CHALLENGE_FAILED", L.head and L.head.sequence,
        { challenge = ch, result = { ms = r.ms, why = r.why, detail = r.detail }, answer = r.answer })
    end
    history[#history + 1] = r
    local score, state = pol.p.score(pol.conf, history, L.uptime, L.rtt_ms)
    if state ~= L.score_state and state ~= "ok" then
      host.log("warn", ("lease %s: SLA score %.3f: %s"):format(L.id:sub(1, 12), score, state))
      if state == "dispute" then
        agent.ledger:evidence(L.id, "SCORE_BELOW_DISPUTE", L.head and L.head.sequence, { score = score })
      end
    end
    L.score, L.score_state = score, state
  end
  if not L.capacity or wp.time() - L.capacity.at > 600 then check_capacity(agent, L) end
end

--- The consumer's challenge loop for one lease (beside its beat loop).
function _M.follow(agent, L)
  host.spawn(function()
    while not agent.stopping and agent.leases[L.id] do
      local ok, err = pcall(_M.tick, agent, L)
      if not ok then host.log("error", "lease " .. L.id:sub(1, 12) .. ": challenges: " .. tostring(err)) end
      host.sleep(min(1, agent.pol.timestamps.conf.interval_s))
    end
  end)
end

--- GET /leases/{id}/challenges on the status API.
function _M.list(agent, L)
  local out = {}
  for i, r in ipairs(agent.ledger:challenges(L.id, 1000)) do
    out[i] = { kind = r.kind, issuedAt = r.issuedAt, deadline = r.deadline, passed = r.passed,
      degraded = r.degraded, latencyMs = r.ms, detail = r.detail or cjson.null }
  end
  return { challenges = out, score = L.score or cjson.null, scoreState = L.score_state or "ok",
    capacity = L.capacity or cjson.null }
end

return _M
