-- SPDX-License-Identifier: MIT
--- The uptime agents' status API (docs/uptime.md, "Status API"): plain
-- HTTP, loopback by default.
--
--   GET  /leases                  every lease: id, peer, state, beats, last beat, uptime, gaps
--   GET  /leases/{id}             one lease, with its keys, intervals, rotations, claims, evidence count
--   GET  /leases/{id}/chain       JSON lines, exactly the `workproof uptime verify` format
--   GET  /leases/{id}/rotations   JSON lines (`verify --rotations`)
--   GET  /leases/{id}/evidence    what the peer was refused for, kept
--   GET  /leases/{id}/report.svg  the timeline
--   POST /leases/{id}/rotate      rotate this agent's key: {"reason":"manual"} or
--                                 {"reason":"forced","record":{...},"seed":"hex"}
--   GET  /metrics                 Prometheus text
--   GET  /health
local cjson = require "cjson.safe"
local ledger_mod = require "workproof.uptime.ledger"
local svg = require "workproof.uptime.svg"

local type, pairs, ipairs, format, concat = type, pairs, ipairs, string.format, table.concat

local _M = {}

local JSON = { ["content-type"] = "application/json" }

local function json(status, t) return status, JSON, cjson.encode(t) end

local function lease_summary(agent, L)
  local peer = agent.role == "provider" and "consumer" or "provider"
  local missed = 0
  for _, g in ipairs(L.gaps or {}) do missed = missed + g.missed end
  return {
    id = L.id, role = agent.role, peer = L.addr or L[peer .. "_key"], peerKey = L[peer .. "_key"],
    state = L.state, beats = L.beats or 0,
    lastBeat = L.head and { sequence = L.head.sequence, timestamp = L.head.timestamp, hash = L.head.hash }
      or cjson.null,
    uptime = L.uptime or 1, gaps = #(L.gaps or {}), missedBeats = missed,
    downtimeSeconds = (L.downtime_ns or 0) / 1e9,
    lastRefusal = L.last_reject or cjson.null, lastError = L.last_error or cjson.null,
  }
end

local function lease_detail(agent, L)
  local t = lease_summary(agent, L)
  local ts = agent.pol.timestamps.conf
  t.providerKey, t.consumerKey, t.start, t.nonce = L.provider_key, L.consumer_key, L.start_ns, L.nonce
  t.interval, t.tolerance, t.drift = ts.interval_s, ts.tolerance_s, ts.drift_s
  t.epochBeats, t.claimEpochs = agent.conf.epoch_beats, agent.conf.claim_epochs
  local next_seq = L.head and L.head.sequence + 1 or 0
  local function key_now(party)
    local k
    for _, r in ipairs(L.ranges[party]) do
      if next_seq >= r.first and (r.last == nil or next_seq <= r.last) then k = r.key end
    end
    return k
  end
  t.currentKeys = { provider = key_now("provider"), consumer = key_now("consumer") }
  t.rotations = {}
  for i, r in ipairs(L.records) do
    t.rotations[i] = { party = r.party, index = r.index, newKey = r.newKey, reason = r.reason,
      effectiveSequence = r.effectiveSequence, effectiveTimestamp = r.effectiveTimestamp, acknowledged = r.acked }
  end
  t.epochs = agent.ledger:epoch_count(L.id)
  t.claims = {}
  for i, c in ipairs(agent.ledger:claims(L.id)) do
    t.claims[i] = { index = c.idx, hash = c.hash, encoded = c.enc, consumerSignature = c.csig or cjson.null }
    local row = agent.chain and agent.chain.client.db:row(
      "SELECT status, tx_hash FROM outbox WHERE kind = 'uptime-claim' AND ref = ?", L.id .. ":" .. c.idx)
    if row then t.claims[i].posted = { status = row.status, txHash = row.tx_hash or cjson.null } end
    local seen = L.posted and L.posted[c.idx]
    if seen then t.claims[i].onChain = seen end   -- consumer: ok | mismatch | unprovable
  end
  t.gapList = {}
  for i, g in ipairs(L.gaps or {}) do t.gapList[i] = { from = g.from_ns, to = g.to_ns, missed = g.missed } end
  t.evidence = #agent.ledger:evidence_list(L.id)
  t.score, t.scoreState = L.score or cjson.null, L.score_state or "ok"
  return t
end

-- Prometheus text: beats sent, received, rejected by reason, gaps,
-- round trips, key age, leases by state
local function metrics(agent)
  local m, o = agent.m, {}
  local function add(name, typ, help, lines)
    o[#o + 1] = format("# HELP %s %s\n# TYPE %s %s", name, help, name, typ)
    for _, l in ipairs(lines) do o[#o + 1] = l end
  end
  local role = agent.role
  add("workproof_uptime_beats_sent_total", "counter", "beats this agent signed and sent",
    { format('workproof_uptime_beats_sent_total{role="%s"} %d', role, m.sent) })
  add("workproof_uptime_beats_received_total", "counter", "beats verified and stored dual-signed",
    { format('workproof_uptime_beats_received_total{role="%s"} %d', role, m.received) })
  local rej = {}
  for reason, n in pairs(m.rejected) do
    rej[#rej + 1] = format('workproof_uptime_beats_rejected_total{role="%s",reason="%s"} %d', role, reason, n)
  end
  table.sort(rej)
  add("workproof_uptime_beats_rejected_total", "counter", "refusals by reason", rej)
  add("workproof_uptime_gaps_total", "counter", "gaps seen while running",
    { format('workproof_uptime_gaps_total{role="%s"} %d', role, m.gaps) })
  local ch = {}
  for key, n in pairs(m.challenges or {}) do
    local kind, outcome = key:match("^(%a+):(%a+)$")
    ch[#ch + 1] = format('workproof_uptime_challenges_total{role="%s",kind="%s",outcome="%s"} %d', role, kind,
      outcome, n)
  end
  table.sort(ch)
  add("workproof_uptime_challenges_total", "counter", "challenges issued, by kind and outcome", ch)
  add("workproof_uptime_challenges_answered_total", "counter", "provider: challenges answered",
    { format('workproof_uptime_challenges_answered_total{role="%s"} %d', role, m.challenges_answered or 0) })
  add("workproof_uptime_exchanges_total", "counter", "exchanges (consumer: made; provider: answered)",
    { format('workproof_uptime_exchanges_total{role="%s"} %d', role, m.exchanges) })
  add("workproof_uptime_exchange_errors_total", "counter", "consumer: exchanges that failed",
    { format('workproof_uptime_exchange_errors_total{role="%s"} %d', role, m.exchange_errors) })
  add("workproof_uptime_claims_total", "counter", "claims signed (provider) or countersigned (consumer)",
    { format('workproof_uptime_claims_total{role="%s"} %d', role, m.claims) })
  add("workproof_uptime_round_trip_seconds", "summary", "consumer: exchange round trips that brought a beat",
    { format('workproof_uptime_round_trip_seconds_sum{role="%s"} %.6f', role, m.rtt_sum),
      format('workproof_uptime_round_trip_seconds_count{role="%s"} %d', role, m.rtt_n) })
  local states = { new = 0, up = 0, late = 0, down = 0 }
  local oldest = 0
  local ts_seconds = require("workproof.uptime.agent").ts_seconds   -- (agent requires this module)
  for _, L in ipairs(agent.order) do
    states[L.state or "new"] = (states[L.state or "new"] or 0) + 1
    -- this agent's key in use took effect at its range's first beat
    -- (the lease's start for the initial key; not yet: no age)
    local ranges = L.ranges and L.ranges[role]
    local first = ranges and ranges[#ranges] and ranges[#ranges].first or 0
    local b = first > 0 and agent.ledger:beat(L.id, first)
    local since = b and ts_seconds(b.timestamp) or (first == 0 and ts_seconds(L.start_ns)) or agent.now()
    local age = agent.now() - since
    if age > oldest then oldest = age end
  end
  local sl = {}
  for _, s in ipairs({ "new", "up", "late", "down" }) do
    sl[#sl + 1] = format('workproof_uptime_leases{role="%s",state="%s"} %d', role, s, states[s])
  end
  add("workproof_uptime_leases", "gauge", "leases by liveness state", sl)
  local srv = agent.server
  if srv and srv.tls then
    local st = srv:stats()
    local refused = {}
    for k, v in pairs(st) do
      local reason = k:match("^tls_refused_(.+)$")
      if reason then
        refused[#refused + 1] = format('workproof_uptime_tls_refused_total{role="%s",reason="%s"} %d', role, reason, v)
      end
    end
    table.sort(refused)
    add("workproof_uptime_tls_handshakes_total", "counter", "transport handshakes completed",
      { format('workproof_uptime_tls_handshakes_total{role="%s"} %d', role, st.tls_handshakes or 0) })
    add("workproof_uptime_tls_refused_total", "counter", "transport connections refused, by reason", refused)
  end
  if agent.chain then
    local rows = {}
    for st, n in pairs(agent.chain.client:states()) do
      rows[#rows + 1] = format('workproof_uptime_registry_txs{role="%s",state="%s"} %d', role, st, n)
    end
    table.sort(rows)
    add("workproof_uptime_registry_txs", "gauge", "UptimeRegistry transactions in the outbox, by state", rows)
    add("workproof_uptime_disputes_opened_total", "counter", "consumer: disputes queued for the registry",
      { format('workproof_uptime_disputes_opened_total{role="%s"} %d', role, m.disputes or 0) })
  end
  add("workproof_uptime_key_age_seconds", "gauge", "age of this agent's oldest key in use",
    { format('workproof_uptime_key_age_seconds{role="%s"} %.0f', role, oldest) })
  return concat(o, "\n") .. "\n"
end
_M.metrics = metrics

function _M.handler(agent)
  local wp = require "workproof"
  agent.now = agent.now or wp.time
  return function(req)
    local path, method = req.path, req.method
    if path == "/health" then return json(200, { status = "ok", role = agent.role, leases = #agent.order }) end
    if path == "/metrics" and method == "GET" then
      return 200, { ["content-type"] = "text/plain; version=0.0.4" }, metrics(agent)
    end
    if path == "/leases" and method == "GET" then
      local out = {}
      for i, L in ipairs(agent.order) do out[i] = lease_summary(agent, L) end
      return json(200, { leases = out })
    end
    local id, rest = path:match("^/leases/(%x+)(.*)$")
    local L = id and agent.leases[id:lower()]
    if not L then return json(404, { error = "NOT_FOUND", detail = "no such lease or route" }) end
    if rest == "" and method == "GET" then return json(200, lease_detail(agent, L)) end
    if rest == "/chain" and method == "GET" then
      local lines = {}
      for i, b in ipairs(agent.ledger:beats(L.id)) do lines[i] = ledger_mod.beat_json(b) end
      return 200, { ["content-type"] = "application/x-ndjson" }, concat(lines, "\n") .. (#lines > 0 and "\n" or "")
    end
    if rest == "/rotations" and method == "GET" then
      local lines = {}
      for i, r in ipairs(L.records) do lines[i] = ledger_mod.rotation_json(r) end
      return 200, { ["content-type"] = "application/x-ndjson" }, concat(lines, "\n") .. (#lines > 0 and "\n" or "")
    end
    if rest == "/challenges" and method == "GET" then
      return json(200, require("workproof.uptime.challenger").list(agent, L))
    end
    if rest == "/evidence" and method == "GET" then
      -- and the disputes this agent opened on the registry (its outbox rows)
      local disputes = {}
      for i, r in ipairs(agent.chain and agent.chain.client.db:exec([[SELECT ref, status, tx_hash, error FROM outbox
          WHERE kind = 'uptime-dispute' AND ref LIKE ? ORDER BY id]], L.id .. ":%") or {}) do
        disputes[i] = { ref = r.ref:sub(#L.id + 2), status = r.status, txHash = r.tx_hash or cjson.null,
          error = r.error or cjson.null }
      end
      return json(200, { evidence = agent.ledger:evidence_list(L.id), disputes = disputes })
    end
    if rest == "/report.svg" and method == "GET" then
      local beats = agent.ledger:beats(L.id)
      if #beats == 0 then return json(404, { error = "NO_BEATS", detail = "no beats yet" }) end
      local ts = agent.pol.timestamps
      local c = {}
      for k, v in pairs(ts.conf) do c[k] = v end
      c.drift_s = 300
      local tr = ts.p.check_chain(c, beats, {})
      local title = format("Lease %s…  uptime %.2f %%", L.id:sub(1, 16), (tr.uptime or 1) * 100)
      return 200, { ["content-type"] = "image/svg+xml" },
        svg.render(beats, tr, c.interval_s, title, agent.conf.epoch_beats, agent.conf.claim_epochs)
    end
    if rest == "/rotate" and method == "POST" then
      -- changes a key: only from this machine, whatever status_listen binds
      local from = req.peer_addr or req.peer or ""
      if not (from:match("^127%.") or from == "::1" or from:match("^::ffff:127%.")) then
        return json(403, { error = "LOOPBACK_ONLY", detail = "rotations are asked for from this machine" })
      end
      local body = cjson.decode(req.body ~= "" and req.body or "{}")
      if type(body) ~= "table" then return json(400, { error = "BAD_JSON" }) end
      local reason = body.reason or "manual"
      if reason ~= "manual" and reason ~= "scheduled" and reason ~= "forced" then
        return json(400, { error = "BAD_REASON", detail = 'reason: "manual", "scheduled" or "forced"' })
      end
      local rec, err = agent:rotate(L, reason, reason == "forced" and body or nil)
      if not rec then return json(409, { error = "ROTATION_REFUSED", detail = err }) end
      local out = {}
      for k, v in pairs(rec) do if k ~= "acked" then out[k] = v end end
      return json(200, { rotation = out })
    end
    return json(405, { error = "METHOD", detail = method .. " " .. path })
  end
end

return _M
