-- SPDX-License-Identifier: MIT
--- The arbiter (docs/uptime.md section 12): `workproof uptime arbiter
-- CONFIG.lua` (examples/uptime/arbiter.lua). It watches the UptimeRegistry
-- for disputes, checks each one's evidence with the core's verifiers
-- against what the registry holds (the posted claims, the lease's keys and
-- their anchored rotations and revocations: workproof.uptime.evidence),
-- prices the result with policies/disputes.lua, writes a report, and
-- submits the ruling through the durable outbox.
--
-- Never twice, restart-safe: a ruling is decided once and kept (its report
-- and hash in the arbiter's store); its transaction is the outbox row
-- ("uptime-resolve", dispute id), enqueued at most once whatever happens
-- between a decision and a crash; the outbox sends it exactly once
-- (docs/chain.md). The cursor of the events read is kept too.
local wp = require "workproof"
local host = require "workproof.host"
local fs = require "workproof.fs"
local store = require "workproof.store"
local policy = require "workproof.policy"
local schema = require "workproof.schema"
local oc = require "workproof.uptime.onchain"
local evidence = require "workproof.uptime.evidence"
local canon = require("workproof.uptime.challenge").canon

local ipairs, tostring, tonumber, format = ipairs, tostring, tonumber, string.format

local _M = {}

_M.SCHEMA = {
  chain = oc.SCHEMA,
  state_dir = { type = "string", default = "var/arbiter", description = "the arbiter's store and its reports" },
  policies_dir = { type = "string", description = "where disputes.lua is (default: the installed policies)" },
  policies = { type = "map", keys = { type = "string" }, values = { type = "any" }, default = {},
    description = "per-policy settings: disputes = { slash_bps = { ... }, refund_share = 0.8 }" },
  vdf_t = { type = "integer", default = 0, min = 0, description = "VDF delay of the leases' beats (0: off)" },
  from_block = { type = "integer", default = 0, min = 0, description = "the first block to look at" },
  watch = { type = "boolean", default = true, description = "reload the policy when its file changes" },
  log_level = { type = "string", default = "info", one_of = { "debug", "info", "warn", "error" } },
}

local STATE = [[CREATE TABLE IF NOT EXISTS rulings(id INTEGER PRIMARY KEY, lease TEXT NOT NULL,
  kind TEXT NOT NULL, upheld INTEGER NOT NULL, slash TEXT NOT NULL, refund TEXT NOT NULL,
  report TEXT NOT NULL, hash TEXT NOT NULL, decided REAL NOT NULL)]]
local CURSOR = [[CREATE TABLE IF NOT EXISTS cursor(id INTEGER PRIMARY KEY CHECK (id = 1), block INTEGER NOT NULL)]]

--- policies/disputes.lua from conf.policies_dir, configured by conf.policies.disputes: { p, conf } | nil, err
local function load_policy(conf)
  local ok, p = pcall(policy.load_file, conf.policies_dir .. "/disputes.lua", { clock = wp.time })
  if not ok then return nil, tostring(p) end
  local c, errs = policy.configure(p, conf.policies.disputes or {})
  if not c then return nil, "disputes: " .. table.concat(schema.format_errors(errs), "; ") end
  return { p = p, conf = c }
end

--- Examine dispute `id` (read from the registry; `opened` is its
-- DisputeOpened event when known): check the evidence and rule.
-- chain = onchain.connect's record; pol = { p, conf }. Returns
-- { dispute, check, ruling, report (JSON text), hash } | nil, err. The
-- collateral is read as of `block` when given (a re-check of a past ruling).
function _M.examine(chain, pol, id, opened, vdf_t, block)
  local rpc, reg = chain.rpc, chain.registry
  local d, err = oc.dispute(rpc, reg, id)
  if not d then return nil, err end
  if not opened then
    local evs, eerr = oc.events(rpc, reg, "DisputeOpened", { format("%064x", id) })
    if not evs then return nil, eerr end
    opened = evs[1]
    if not opened then return nil, "ENOENT: no dispute " .. id end
  end
  if wp.hex(wp.keccak256(opened.evidence)) ~= d.evidenceHash then
    return nil, "EPROTO: dispute " .. id .. ": the evidence does not hash to the stored evidenceHash"
  end
  local lease, lerr = oc.lease(rpc, reg, d.leaseId)
  if not lease then return nil, lerr end
  local keys, kerr = oc.keys(rpc, reg, d.leaseId)
  if not keys then return nil, kerr end
  local claims, cerr = oc.claims(rpc, reg, d.leaseId)
  if not claims then return nil, cerr end
  local prov, perr = oc.provider(rpc, reg, lease.provider, block)
  if not prov then return nil, perr end
  local claim = claims[d.claimIndex]
  local res, why = evidence.check(opened.evidence, {
    lease = d.leaseId, epoch_beats = lease.epochBeats, claim_epochs = lease.claimEpochs,
    claim = claim and claim.claim, prev_claim = claims[d.claimIndex - 1] and claims[d.claimIndex - 1].claim,
    keys = keys, identity = lease.provider, vdf_t = vdf_t,
  })
  if not res then res = { kind = d.kind, proven = false, reason = "MALFORMED", detail = why } end
  if res.kind ~= d.kind then
    res = { kind = d.kind, proven = false, reason = "KIND_MISMATCH",
      detail = "the evidence is " .. tostring(res.kind) .. ", the dispute says " .. tostring(d.kind) }
  end
  local ruling = pol.p.judge(pol.conf, { kind = d.kind, proven = res.proven, reason = res.reason,
    collateral = tonumber(prov.collateral) or 0 })
  local report = canon({
    version = 1, dispute = id, registry = reg, lease = d.leaseId, claimIndex = d.claimIndex, kind = d.kind,
    disputer = d.disputer, evidenceHash = d.evidenceHash,
    check = { proven = res.proven, reason = res.reason, detail = res.detail },
    ruling = { upheld = ruling.upheld, slash = tostring(ruling.slash), refund = tostring(ruling.refund),
      why = ruling.why },
    policy = { name = pol.p.name, version = pol.p.version },
  })
  return { dispute = d, check = res, ruling = ruling, report = report, hash = wp.hex(wp.sha256(report)) }
end

local Arbiter = {}
Arbiter.__index = Arbiter

-- decide once (kept), enqueue at most once (the outbox's unique (kind, ref))
function Arbiter:rule(ev)
  local db = self.db
  local row = db:row("SELECT * FROM rulings WHERE id = ?", ev.id)
  if not row then
    local d = oc.dispute(self.chain.rpc, self.chain.registry, ev.id)
    if not d then return end                      -- the node is down: next time
    if d.state ~= "open" then return end          -- ruled or expired already
    local x, err = _M.examine(self.chain, self.pol, ev.id, ev, self.conf.vdf_t)
    if not x then host.log("error", ("dispute %d: %s"):format(ev.id, tostring(err))) return end
    local r = x.ruling
    db:exec([[INSERT OR IGNORE INTO rulings(id, lease, kind, upheld, slash, refund, report, hash, decided)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)]], ev.id, x.dispute.leaseId, x.dispute.kind, r.upheld and 1 or 0,
      tostring(r.slash), tostring(r.refund), x.report, x.hash, wp.time())
    local f = io.open(format("%s/reports/dispute-%d.json", self.conf.state_dir, ev.id), "wb")
    if f then f:write(x.report, "\n") f:close() end
    host.log(r.upheld and "warn" or "info", ("dispute %d (%s, lease %s, claim %d): %s — %s"):format(ev.id,
      x.dispute.kind, x.dispute.leaseId:sub(1, 12), x.dispute.claimIndex, r.upheld
        and format("UPHELD, slash %s, refund %s", tostring(r.slash), tostring(r.refund)) or "dismissed", r.why))
    row = db:row("SELECT * FROM rulings WHERE id = ?", ev.id)
  end
  local tx = oc.resolve(self.chain.registry, row.id, row.upheld == 1, row.slash, row.refund, row.hash)
  local id = self.chain.client:enqueue("uptime-resolve", tostring(row.id), tx)
  if id and not self.reported[row.id] then
    self.reported[row.id] = true
    io.stdout:write(format("ruling %d %s\n", row.id, row.upheld == 1 and "upheld" or "dismissed"))
    io.stdout:flush()
  end
end

function Arbiter:tick()
  local rpc = self.chain.rpc
  local head = rpc:call("eth_blockNumber", {})
  if not head then return end
  head = tonumber(head)
  local cur = self.db:row("SELECT block FROM cursor WHERE id = 1")
  local from = cur and cur.block + 1 or self.conf.from_block
  if from > head then return end
  local evs, err = oc.events(rpc, self.chain.registry, "DisputeOpened", { from = from, to = head })
  if not evs then host.log("warn", "registry events: " .. tostring(err)) return end
  for _, ev in ipairs(evs) do self:rule(ev) end
  -- every dispute of these blocks is decided (or failed to read: then the
  -- cursor stays, and they are looked at again)
  for _, ev in ipairs(evs) do
    if not self.db:row("SELECT id FROM rulings WHERE id = ?", ev.id) then
      local d = oc.dispute(rpc, self.chain.registry, ev.id)
      if not d or d.state == "open" then return end
    end
  end
  self.db:exec("INSERT INTO cursor(id, block) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET block = excluded.block", head)
end

local function load_config(path)
  local conf, errs = require("workproof.uptime.agent").read_config(path, _M.SCHEMA)
  if not conf then return nil, errs end
  if not conf.chain.rpc then return nil, { path .. ": chain.rpc: required" } end
  local base = path:match("^(.*)/[^/]*$") or "."
  local function abs(p) return p:sub(1, 1) == "/" and p or (base .. "/" .. p) end
  conf.base = base
  conf.state_dir = abs(conf.state_dir)
  conf.policies_dir = conf.policies_dir and abs(conf.policies_dir) or host.policies_dir
  return conf
end

_M.load_policy = load_policy

--- `workproof uptime dispute check`: examine dispute id as the arbiter
-- would (its config's chain and policy), beside the ruling on chain.
-- Opens no store and sends nothing.
function _M.recheck(path, id)
  local conf, errs = load_config(path)
  if not conf then return nil, table.concat(errs, "; ") end
  local pol, perr = load_policy(conf)
  if not pol then return nil, perr end
  local chain, cerr = oc.locate(conf.chain, conf.base)
  if not chain then return nil, cerr end
  local res = oc.events(chain.rpc, chain.registry, "DisputeResolved", { format("%064x", id) })
  local e = res and res[1]
  local x, err = _M.examine(chain, pol, id, nil, conf.vdf_t, e and e.block - 1)
  if not x then return nil, err end
  local d, r = x.dispute, x.ruling
  local out = { id = id, kind = d.kind, lease = d.leaseId, claimIndex = d.claimIndex, disputer = d.disputer,
    state = d.state, check = { proven = x.check.proven, reason = x.check.reason, detail = x.check.detail },
    ruling = { upheld = r.upheld, slash = tostring(r.slash), refund = tostring(r.refund), why = r.why },
    reportHash = x.hash }
  if e and d.state ~= "expired" then
    out.onchain = { state = oc.DISPUTE_STATE[e.state], slashed = tostring(e.slashed), refunded = tostring(e.refunded),
      reportHash = e.reportHash }
    out.agrees = (e.state == 2) == r.upheld and tostring(e.slashed) == tostring(r.slash)
      and tostring(e.refunded) == tostring(r.refund)
  end
  return out
end

function _M.run(path)
  local conf, errs = load_config(path)
  local function fail(code, ...)
    for _, e in ipairs({ ... }) do io.stderr:write("workproof uptime arbiter: ", tostring(e), "\n") end
    return code
  end
  if not conf then return fail(2, unpack(errs)) end
  require("workproof.log").configure(conf)
  local pol, perr = load_policy(conf)
  if not pol then return fail(2, perr) end
  local ok, merr = fs.mkdir_p(conf.state_dir .. "/reports", 448)
  if not ok then return fail(1, merr) end
  local db, derr = store.open(conf.state_dir .. "/arbiter.db")
  if not db then return fail(1, derr) end
  for _, sql in ipairs({ "PRAGMA synchronous=FULL", STATE, CURSOR }) do
    local sok, serr = db:exec(sql)
    if not sok then return fail(1, serr) end
  end
  local chain, cerr = oc.connect(conf.chain, db, conf.base)
  if not chain then return fail(2, cerr) end
  local self = setmetatable({ conf = conf, db = db, chain = chain, pol = pol, reported = {} }, Arbiter)
  local params = oc.params(chain.rpc, chain.registry)
  if params and params.arbiter:lower() ~= chain.address:lower() then
    return fail(2, ("the registry's arbiter is %s, this key is %s"):format(params.arbiter, chain.address))
  end
  local stopping = false
  local function stop(sig)
    if stopping then return end
    stopping = true
    host.log("info", "SIG" .. sig .. ": stopping")
    chain.client:release()
    host.stop(0)
  end
  host.on_signal("TERM", function() stop("TERM") end)
  host.on_signal("INT", function() stop("INT") end)
  local function reload(why)
    local p, err = load_policy(conf)
    if p then self.pol = p host.log("info", "disputes policy reloaded (" .. why .. ")")
    else host.log("error", "disputes policy NOT reloaded (" .. why .. "): " .. tostring(err)) end
  end
  host.on_signal("HUP", function() reload("SIGHUP") end)
  if conf.watch then
    host.watch(conf.policies_dir, function(name) if name == "disputes.lua" then reload(name .. " changed") end end)
  end
  host.log("info", ("workproof uptime arbiter %s on registry %s (chain %d), policy disputes v%s"):format(
    chain.address, chain.registry, chain.chain_id, pol.p.version))
  io.stdout:write("arbiter ", chain.address, " watching ", chain.registry, "\n")
  io.stdout:flush()
  while not stopping do
    local tok, terr = pcall(self.tick, self)
    if not tok then host.log("error", "arbiter: " .. tostring(terr)) end
    host.sleep(chain.poll_s)
  end
  return 0
end

return _M
