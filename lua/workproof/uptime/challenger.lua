-- SPDX-License-Identifier: MIT
--- The agents' challenge side (docs/uptime.md, "Challenges"): the
-- provider's storage, its answers and its capacity attestation; the
-- consumer's challenge loop, judged by the `challenges` policy into a
-- per-lease score.
--
-- Transport routes (the provider; every connection is authenticated):
--   POST /v1/leases/{id}/challenge   the lease's consumer: { kind, nonce, params } -> signed answer
--   GET  /v1/leases/{id}/storage     the lease's consumer: the signed storage commitment, or
--                                    409 NEEDS_DATA { wanted = { size, chunk_size }, have }
--   PUT  /v1/leases/{id}/storage?offset=N   the consumer's data, raw bytes, in order (resumable)
--   POST /v1/leases/{id}/storage/commit     { root } -> the signed commitment when the uploaded
--                                    data's root is the consumer's, else 409 ROOT_MISMATCH
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

local function storage_wanted(agent)
  local sc = agent.conf.storage
  return { size = sc.size_mb * 1048576, chunk_size = sc.chunk_size or 4096 }
end

--- A lease's storage at start: its signed commitment when the consumer's
-- data was committed before; otherwise the storage routes wait for the
-- consumer's upload. Nothing when the config declares no storage.
function _M.provision(agent, L)
  local sc = agent.conf.storage
  if not sc or not sc.size_mb or agent.role ~= "provider" then return end
  fs.mkdir_p(agent.conf.state_dir .. "/storage", 448)
  local have = agent.ledger:statement(L.id, "storage")
  if have then
    L.storage = { path = storage_path(agent, L), commitment = have.commitment, signed = have }
  end
end

-- GET/PUT /v1/leases/{id}/storage, POST /v1/leases/{id}/storage/commit
local function storage_route(agent, L, req, sub)
  local sc = agent.conf.storage
  if not (sc and sc.size_mb) then
    return json(404, { error = "NO_STORAGE", detail = "this provider offers no storage" })
  end
  local st = require "workproof.uptime.storage"
  local path, w = storage_path(agent, L), storage_wanted(agent)
  local method = req.method
  if not sub and method == "GET" then
    if L.storage then return json(200, L.storage.signed) end
    return json(409, { error = "NEEDS_DATA", detail = "upload the lease's data, then commit its root", wanted = w,
      have = st.received(path, w) or 0 })
  end
  if L.committing then return json(503, { error = "BUSY", detail = "the upload is being committed" }) end
  if not sub and method == "PUT" then
    if L.storage then return json(409, { error = "COMMITTED", detail = "the lease's storage is committed" }) end
    local off = tonumber((req.query or ""):match("offset=(%d+)"))
    local have, err, code, held = st.receive(path, w, off, req.body or "")
    if not have then
      if code == "ERANGE" then return json(409, { error = "OFFSET", detail = err, have = held }) end
      return json(code == "EINVAL" and 400 or 500, { error = code or "EIO", detail = err })
    end
    return json(200, { have = have })
  end
  if sub == "commit" and method == "POST" then
    local body = cjson.decode(req.body or "")
    local root = type(body) == "table" and type(body.root) == "string" and body.root:lower() or nil
    if L.storage then
      if root == L.storage.commitment.root then return json(200, L.storage.signed) end
      return json(409, { error = "COMMITTED", detail = "the lease's storage is committed to another root" })
    end
    L.committing = true
    local ok, c, err, code = pcall(st.finish, path, w, root)
    L.committing = false
    if not ok then return json(500, { error = "EIO", detail = tostring(c) }) end
    if not c then
      if code == "EPROTO" then
        host.log("warn", ("lease %s: storage: %s (the upload starts over)"):format(L.id:sub(1, 12), tostring(err)))
        return json(409, { error = "ROOT_MISMATCH", detail = err, have = 0 })
      end
      if code == "ETRUNC" then
        return json(409, { error = "NEEDS_DATA", detail = err, wanted = w, have = st.received(path, w) or 0 })
      end
      return json(code == "EINVAL" and 400 or 500, { error = code or "EIO", detail = err })
    end
    local _, sk = wp.ed25519.keypair(wp.unhex(agent.conf.seed))
    local signed = chal.sign(chal.STORAGE, { leaseId = L.id, commitment = c }, sk, agent.conf.key)
    agent.ledger:set_statement(L.id, "storage", signed)
    L.storage = { path = path, commitment = c, signed = signed }
    host.log("info", ("lease %s: %d MiB of the consumer's data stored and committed, root %s"):format(
      L.id:sub(1, 12), sc.size_mb, c.root:sub(1, 12)))
    return json(200, signed)
  end
  return json(405, { error = "BAD_METHOD",
    detail = "GET or PUT /v1/leases/{id}/storage, POST /v1/leases/{id}/storage/commit" })
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
  local id, rest, sub = path:match("^/v1/leases/(%x+)/(%a+)/?(%a*)$")
  if not id or (rest ~= "challenge" and rest ~= "storage") or (sub ~= "" and rest ~= "storage") then return nil end
  local L = agent.leases[id:lower()]
  if not L then return json(404, { error = "UNKNOWN_LEASE", detail = "no such lease here" }) end
  if not (L.pins and L.pins[peer]) then
    return json(403, { error = "WRONG_PEER", detail = "this connection's key is not the lease's consumer" })
  end
  if rest == "storage" then return storage_route(agent, L, req, sub ~= "" and sub or nil) end
  local ch = cjson.decode(req.body or "")
  if type(ch) ~= "table" then return json(400, { error = "BAD_JSON" }) end
  local seq = L.head and L.head.sequence + 1 or 0
  local pub = agent:key_at(L, "provider", seq)
  local sk = agent:secret_at(L, seq)
  if not sk then return json(500, { error = "NO_KEY" }) end
  return answer(agent, ch, L.id, L, sk, pub)
end

-- ---- consumer ------------------------------------------------------------------------

local function request(agent, L, path, method, body, ctype, timeout)
  local st, _, b = host.http_request { url = "https://" .. L.addr .. path, method = method, body = body,
    headers = ctype and { ["content-type"] = ctype } or nil, timeout = timeout or 10,
    connect_timeout = agent.conf.connect_timeout,
    tls = { cert = agent.tls.cert, key = agent.tls.key, pin = L.provider_key } }
  return st, cjson.decode(b or "")
end

local function fetch(agent, L, path) return request(agent, L, path) end

-- the consumer's storage key for the lease (secret: it makes the data)
local function storage_key(agent, L)
  L.storage_key = L.storage_key or require("workproof.uptime.storage").key(agent.conf.seed, L.id)
  return L.storage_key
end

local function refuse_storage(agent, L, why, evidence)
  agent:reject(L, "BAD_COMMITMENT", tostring(why), evidence and { kind = "BAD_COMMITMENT", commitment = evidence })
  L.commitment = false
  return false
end

-- a signed commitment from the provider: recorded when it is this lease's,
-- signed by the provider's identity key and over the consumer's own root
-- (`expect`: the commitment the upload computed; recomputed when absent)
local function accept(agent, L, t, expect)
  local ok, why = chal.verify(chal.STORAGE, t, L.provider_key)
  local c = type(t) == "table" and t.commitment
  if ok and (t.leaseId ~= L.id or type(c) ~= "table") then ok, why = false, "not this lease's" end
  local pc = agent.pol.challenges.conf
  if ok and not (tonumber(c.size) and c.size <= pc.storage_max_mb * 1048576) then
    ok, why = false, ("size %s above the policy's storage_max_mb %d"):format(tostring(c.size), pc.storage_max_mb)
  end
  if ok and not expect then
    local err
    expect, err = require("workproof.uptime.storage").root(storage_key(agent, L), c.size,
      { chunk_size = c.chunk_size })
    if not expect then ok, why = false, err end
  end
  if ok and (type(c.root) ~= "string" or c.root:lower() ~= expect.root or c.size ~= expect.size
      or c.chunk_size ~= expect.chunk_size or c.chunks ~= expect.chunks) then
    ok, why = false, ("the signed root %s is not the consumer's %s"):format(tostring(c.root), expect.root)
  end
  if not ok then return refuse_storage(agent, L, why, t) end
  agent.ledger:set_statement(L.id, "storage", t)
  L.commitment = c
  host.log("info", ("lease %s: storage commitment %s (%d chunks) recorded"):format(L.id:sub(1, 12),
    c.root:sub(1, 12), c.chunks))
  return c
end

-- upload the lease's data from `from` (what the provider holds), then
-- commit; runs in its own coroutine. A failure leaves it to the next tick,
-- which resumes where the provider's copy ends.
local function upload(agent, L, size, cs, from)
  local st = require "workproof.uptime.storage"
  local base = "/v1/leases/" .. L.id .. "/storage"
  local t0, sent = host.now(), 0
  if from > 0 then
    host.log("info", ("lease %s: storage upload resumes at %d of %d bytes"):format(L.id:sub(1, 12), from, size))
  end
  local exp, err = st.slices(storage_key(agent, L), size, { chunk_size = cs, from = from }, function(off, data)
    local s, b = request(agent, L, base .. "?offset=" .. off, "PUT", data, "application/octet-stream", 60)
    if s == 200 then
      sent = sent + #data
      return true
    end
    return nil, ("PUT at offset %d: %s %s"):format(off, tostring(s), type(b) == "table" and tostring(b.detail) or "")
  end)
  if not exp then
    host.log("warn", ("lease %s: storage upload stopped (resumes): %s"):format(L.id:sub(1, 12), tostring(err)))
    return
  end
  local s, t = request(agent, L, base .. "/commit", "POST",
    cjson.encode({ root = exp.root, size = size, chunk_size = cs }), "application/json", 120)
  if s == 200 then
    host.log("info", ("lease %s: storage: %.1f MiB uploaded in %.1f s"):format(L.id:sub(1, 12), sent / 1048576,
      host.now() - t0))
    accept(agent, L, t, exp)
  elseif s == 409 and type(t) == "table" and t.error == "ROOT_MISMATCH" then
    -- the provider recomputed another root from what it stored: it dropped
    -- the upload; refused for good after three
    L.root_mismatches = (L.root_mismatches or 0) + 1
    if L.root_mismatches >= 3 then
      refuse_storage(agent, L, "the provider's root differed from the consumer's three times: " .. tostring(t.detail))
    else
      host.log("warn", ("lease %s: storage commit refused: %s"):format(L.id:sub(1, 12), tostring(t.detail)))
    end
  else
    host.log("warn", ("lease %s: storage commit: %s %s"):format(L.id:sub(1, 12), tostring(s),
      type(t) == "table" and tostring(t.detail) or ""))
  end
end

-- the storage commitment: the recorded one, or the provider's answer to
-- GET .../storage (an upload started when it needs the data). nil while
-- there is none yet, false when the lease has no storage challenges.
local function commitment(agent, L)
  if L.commitment ~= nil then return L.commitment end
  local have = agent.ledger:statement(L.id, "storage")
  if have then L.commitment = have.commitment return L.commitment end
  if L.uploading or (L.storage_retry_at or 0) > wp.time() then return nil end
  local st, t = fetch(agent, L, "/v1/leases/" .. L.id .. "/storage")
  if st == 404 and type(t) == "table" and t.error == "NO_STORAGE" then L.commitment = false return false end
  if st == 200 then return accept(agent, L, t) or false end
  if st ~= 409 or type(t) ~= "table" or t.error ~= "NEEDS_DATA" then return nil end
  local pc = agent.pol.challenges.conf
  local size, cs = require("workproof.uptime.storage").wanted(type(t.wanted) == "table" and t.wanted or {})
  if not size then return refuse_storage(agent, L, "the provider wants " .. tostring(cs)) end
  if size > pc.storage_max_mb * 1048576 then
    return refuse_storage(agent, L, ("the provider wants %d bytes, above the policy's storage_max_mb %d"):format(
      size, pc.storage_max_mb))
  end
  local from = tonumber(t.have) or 0
  from = (from >= 0 and from <= size) and from - from % cs or 0
  L.uploading = true
  host.spawn(function()
    local ok, err = pcall(upload, agent, L, size, cs, from)
    if not ok then host.log("error", ("lease %s: storage upload: %s"):format(L.id:sub(1, 12), tostring(err))) end
    L.uploading = false
    L.storage_retry_at = wp.time() + 2
  end)
  return nil
end

local function check_capacity(agent, L)
  L.capacity_at = wp.time()   -- asked: not again for 10 minutes, whatever the answer
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
  -- a lease that is not up is downtime, which the chain already counts:
  -- challenging an unreachable provider would count it twice
  if L.state ~= "up" then return end
  L.challenge_last = L.challenge_last or {}
  local com = commitment(agent, L)
  local due = pol.p.due(pol.conf, { now = wp.time(), last = L.challenge_last, storage = com and true or false })
  for _, d in ipairs(due) do
    L.challenge_last[d.kind] = wp.time()
    local ch = { kind = d.kind, nonce = chal.nonce(), params = d.params, scope = L.id }
    local r = chal.run { url = "https://" .. L.addr .. "/v1/leases/" .. L.id .. "/challenge", ch = ch,
      tls = { cert = agent.tls.cert, key = agent.tls.key, pin = L.provider_key },
      key = agent:key_at(L, "provider", L.head and L.head.sequence + 1 or 0), deadline_s = d.deadline_s,
      commitment = com or nil, storage_key = com and storage_key(agent, L) or nil }
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
  if not L.capacity_at or wp.time() - L.capacity_at > 600 then check_capacity(agent, L) end
end

--- The consumer's challenge loop for one lease (beside its beat loop).
-- Ticks every few seconds (at most every 5 s, at least every interval),
-- the first at a random point of that, so a consumer of many leases does
-- not run every lease's policy every second, nor all at once at start.
function _M.follow(agent, L)
  host.spawn(function()
    local function period() return min(5, agent.pol.timestamps.conf.interval_s) end
    host.sleep(math.random() * period())
    while not agent.stopping and agent.leases[L.id] do
      local ok, err = pcall(_M.tick, agent, L)
      if not ok then host.log("error", "lease " .. L.id:sub(1, 12) .. ": challenges: " .. tostring(err)) end
      host.sleep(period())
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
