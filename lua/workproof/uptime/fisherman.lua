-- SPDX-License-Identifier: MIT
--- The fisherman (docs/uptime.md, "Fisherman"): `workproof uptime fisherman
-- CONFIG.lua`, a third party with no lease that samples providers over the
-- authenticated transport (its own identity certificate; the provider
-- admits challengers with `challengers = "any"` or their keys), challenges
-- them (latency, compute; and N compute challenges at once, N = the vCPUs
-- the provider attests, to see whether they degrade together), and writes
-- signed evidence reports anyone can check with `workproof uptime evidence
-- verify FILE`.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local fs = require "workproof.fs"
local chal = require "workproof.uptime.challenge"

local type, ipairs, tostring, format, floor, sort, max = type, ipairs, tostring, string.format, math.floor,
  table.sort, math.max

local _M = {}

local HEX64 = "^%x+$"
_M.SCHEMA = {
  identity = { type = "record", required = true, fields = {
    seed = { type = "string", match = HEX64, min = 64, max = 64, description = "Ed25519 seed (hex)" },
  }, description = "the fisherman's identity: signs its reports, proves itself to providers" },
  reports_dir = { type = "string", default = "var/fisherman", description = "where the signed reports go" },
  every_s = { type = "number", default = 600, min = 1, max = 86400, description = "seconds between samples" },
  samples = { type = "integer", min = 1, description = "stop after this many rounds (default: run until stopped)" },
  compute_t = { type = "integer", default = 200000, min = 1000, max = 1e9, description = "VDF squarings" },
  latency_bound_ms = { type = "number", default = 200, min = 0.1, description = "a slower echo is degraded" },
  slow_factor = { type = "number", default = 1.5, min = 1,
    description = "parallel/solo above this: degraded together" },
  log_level = { type = "string", default = "info", one_of = { "debug", "info", "warn", "error" } },
  chain = require("workproof.uptime.onchain").SCHEMA,
  policies_dir = { type = "string", description = "where disputes.lua is (default: the installed policies)" },
  policies = { type = "map", keys = { type = "string" }, values = { type = "any" }, default = {},
    description = "disputes = { ... }: which faults the fisherman disputes (with a chain block)" },
  targets = { type = "array", default = {}, elements = { type = "record", fields = {
    provider_key = { type = "string", required = true, match = HEX64, min = 64, max = 64 },
    address = { type = "string", required = true, description = "host:port of the provider's transport" },
    parallel = { type = "integer", min = 1, max = 64,
      description = "compute challenges at once (default: the vCPUs the provider attests)" },
  } } },
}

local function load_config(path)
  local conf, errs = require("workproof.uptime.agent").read_config(path, _M.SCHEMA)
  if not conf then return nil, errs end
  local base = path:match("^(.*)/[^/]*$") or "."
  if conf.reports_dir:sub(1, 1) ~= "/" then conf.reports_dir = base .. "/" .. conf.reports_dir end
  conf.base = base
  conf.policies_dir = conf.policies_dir and (conf.policies_dir:sub(1, 1) == "/" and conf.policies_dir
    or base .. "/" .. conf.policies_dir) or host.policies_dir
  local pub, sk = wp.ed25519.keypair(wp.unhex(conf.identity.seed))
  conf.key, conf.secret = wp.hex(pub), sk
  return conf
end

local function median(xs)
  local c = {}
  for i, x in ipairs(xs) do c[i] = x end
  sort(c)
  return c[floor((#c + 1) / 2)]
end

-- one challenge to a provider (provider scope)
local function challenge(t, tls, kind, params, deadline)
  local ch = { kind = kind, nonce = chal.nonce(), params = params, scope = "provider" }
  local r = chal.run { url = "https://" .. t.address .. "/v1/challenge", ch = ch, tls = tls, key = t.provider_key,
    deadline_s = deadline }
  return { challenge = ch, answer = r.answer or cjson.null, ms = r.ms, passed = r.ok and r.ms <= deadline * 1000,
    detail = r.why or cjson.null }
end

--- One sample of one provider: the report (signed).
function _M.sample(conf, t, tls)
  local report = { version = 1, provider = t.provider_key, address = t.address, at = floor(wp.time()),
    challenges = {} }
  local cs = report.challenges
  local lat = challenge(t, tls, "latency", {}, 10)
  lat.degraded = lat.passed and lat.ms > conf.latency_bound_ms or false
  cs[#cs + 1] = lat
  local solo = challenge(t, tls, "compute", { t = conf.compute_t }, 60)
  cs[#cs + 1] = solo
  -- the attested capacity, and N challenges at once
  local st, _, body = host.http_request { url = "https://" .. t.address .. "/v1/capacity", timeout = 10, tls = tls }
  local att = st == 200 and cjson.decode(body or "") or nil
  if att then
    local ok, why = chal.verify(chal.CAPACITY, att, t.provider_key)
    if ok then ok, why = chal.capacity_check(att) end
    report.capacity = { attestation = att, ok = ok, detail = why or cjson.null }
  end
  local n = t.parallel or (att and type(att.capacity) == "table" and tonumber(att.capacity.vcpus)) or nil
  if n and n >= 2 and solo.passed then
    -- noise only ever adds time: the fastest of two solo runs against the
    -- better of two rounds of N at once (each round's median)
    local solo2 = challenge(t, tls, "compute", { t = conf.compute_t }, 60)
    cs[#cs + 1] = solo2
    local solo_ms = math.min(solo.ms, solo2.passed and solo2.ms or math.huge)
    local best, all_ok = math.huge, solo2.passed
    for _ = 1, 2 do
      local done, times, results = 0, {}, {}
      for i = 1, n do
        host.spawn(function()
          results[i] = challenge(t, tls, "compute", { t = conf.compute_t }, 60)
          done = done + 1
        end)
      end
      while done < n do host.sleep(0.01) end
      for i = 1, n do
        cs[#cs + 1] = results[i]
        times[i] = results[i].ms
        all_ok = all_ok and results[i].passed
      end
      local m = median(times)
      if m < best then best = m end
    end
    report.parallel = { n = n, solo_ms = solo_ms, median_ms = best, ratio = best / max(solo_ms, 0.001),
      flagged = (not all_ok) or best > solo_ms * conf.slow_factor }
  end
  return chal.sign(chal.REPORT, report, conf.secret, conf.key)
end

--- Check a report file: the fisherman's signature, every answer's
-- provider signature and binding to its challenge, the VDFs, the capacity
-- attestation. Returns a summary table, or nil, why.
function _M.verify_report(r)
  local ok, why = chal.verify(chal.REPORT, r)
  if not ok then return nil, "the report's signature: " .. why end
  if type(r.challenges) ~= "table" or type(r.provider) ~= "string" then return nil, "not an evidence report" end
  local out = { fisherman = r.signer, provider = r.provider, at = r.at, challenges = #r.challenges, failed = 0,
    answers_checked = 0 }
  for i, c in ipairs(r.challenges) do
    if c.answer ~= nil and c.answer ~= cjson.null then
      local aok, awhy = chal.check(c.challenge, c.answer, r.provider)
      if not aok then return nil, format("challenge %d: the provider's answer does not hold: %s", i, awhy) end
      out.answers_checked = out.answers_checked + 1
    end
    if not c.passed then out.failed = out.failed + 1 end
  end
  if r.capacity and r.capacity.attestation then
    local cok, cwhy = chal.verify(chal.CAPACITY, r.capacity.attestation, r.provider)
    if not cok then return nil, "the capacity attestation: " .. cwhy end
  end
  out.parallel = r.parallel
  out.capacity = r.capacity and { ok = r.capacity.ok, detail = r.capacity.detail } or nil
  return out
end

-- ---- disputes (with a chain block) --------------------------------------------------

local WRONG = { BAD_VDF = true, WRONG_INDICES = true, NO_RESULT = true }

--- The faults a signed report proves against the provider: { kind, bytes } each.
function _M.faults(rep)
  local ev = require "workproof.uptime.evidence"
  local out = {}
  for _, c in ipairs(rep.challenges or {}) do
    if type(c.answer) == "table" then
      local ok, why = chal.check(c.challenge, c.answer, rep.provider)
      if not ok and WRONG[why] then
        out[#out + 1] = { kind = "CHALLENGE_FAILED", bytes = ev.challenge_failed(c.challenge, c.answer) }
      end
    end
  end
  local cap = rep.capacity
  if cap and cap.attestation and chal.verify(chal.CAPACITY, cap.attestation, rep.provider) then
    out[#out + 1] = { kind = "OVERCOMMITTED", bytes = ev.overcommitted(cap.attestation), attestation = cap.attestation }
  end
  return out
end

-- Dispute what a report proves, against the provider's leases on chain:
-- each kind of fault on the first lease whose newest claim is in its window
-- (an attestation only where it is over capacity or leaves that lease out),
-- at most once per claim (the outbox's ref).
local function dispute_report(d, rep)
  local c = d.chain
  local faults = _M.faults(rep)
  if #faults == 0 then return end
  local now = require("workproof.uptime.onchain").chain_time(c.rpc)
  local leases = now and d.oc.leases_of(c.rpc, c.registry, rep.provider)
  if not leases then host.log("warn", "registry unreachable: the report's faults wait for the next sample") return end
  for _, f in ipairs(faults) do
    for _, l in ipairs(leases) do
      local counts = f.kind ~= "OVERCOMMITTED" or not chal.capacity_check(f.attestation, l.leaseId)
      local open = counts and d.oc.open_claim(c.rpc, c.registry, l.leaseId, d.window, now)
      if open then
        local ok, why = d.queue(c, d.pol, format("fisherman:%s:%s:%d", f.kind, l.leaseId, open.index), l.leaseId,
          open.index, f.kind, f.bytes, open.left)
        host.log(ok and "warn" or "info", ("provider %s: %s %s on lease %s claim %d%s"):format(rep.provider:sub(1, 12),
          ok and "DISPUTE" or "not disputing", f.kind, l.leaseId:sub(1, 12), open.index, ok and "" or (": " .. why)))
        if ok then
          io.stdout:write("dispute ", f.kind, " ", l.leaseId, "\n")
          io.stdout:flush()
        end
        break
      end
    end
  end
end

-- the chain connection and the disputes policy, when the config has a chain
local function disputes(conf)
  if not (conf.chain and conf.chain.rpc) then return nil end
  local arbiter = require "workproof.uptime.arbiter"
  local pol, perr = arbiter.load_policy(conf)
  if not pol then return nil, perr end
  local db, derr = require("workproof.store").open(conf.reports_dir .. "/fisherman.db")
  if not db then return nil, derr end
  local oc = require "workproof.uptime.onchain"
  local c, cerr = oc.connect(conf.chain, db, conf.base)
  if not c then return nil, cerr end
  local params = oc.params(c.rpc, c.registry)
  return { chain = c, pol = pol, oc = oc, window = params and params.disputeWindow or 0,
    queue = require("workproof.uptime.registrar").queue_dispute }
end

--- Run the fisherman until stopped (or `samples` rounds).
function _M.run(path)
  local conf, errs = load_config(path)
  if not conf then
    for _, e in ipairs(errs) do io.stderr:write("workproof uptime fisherman: ", e, "\n") end
    return 2
  end
  require("workproof.log").configure(conf)
  local id, ierr = host.tls_identity(conf.identity.seed, 86400)
  if not id then io.stderr:write("workproof uptime fisherman: ", tostring(ierr), "\n") return 1 end
  fs.mkdir_p(conf.reports_dir, 493)
  local d, derr = disputes(conf)
  if derr then io.stderr:write("workproof uptime fisherman: chain: ", tostring(derr), "\n") return 2 end
  local stopping = false
  local function stop(sig)
    stopping = true
    host.log("info", "SIG" .. sig .. ": stopping")
    host.stop(0)
  end
  host.on_signal("TERM", function() stop("TERM") end)
  host.on_signal("INT", function() stop("INT") end)
  host.log("info", ("workproof uptime fisherman: identity %s, %d target(s), reports in %s"):format(conf.key,
    #conf.targets, conf.reports_dir))
  io.stdout:write("fisherman ", conf.key, " sampling ", #conf.targets, " provider(s)\n")
  io.stdout:flush()
  local round = 0
  while not stopping do
    round = round + 1
    for _, t in ipairs(conf.targets) do
      local tls = { cert = id.cert, key = id.key, pin = t.provider_key }
      local ok, rep = pcall(_M.sample, conf, t, tls)
      if ok then
        local file = format("%s/%s-%d-%d.json", conf.reports_dir, t.provider_key:sub(1, 16), rep.at, round)
        local f = io.open(file, "wb")
        if f then f:write(cjson.encode(rep), "\n") f:close() end
        local failed = 0
        for _, c in ipairs(rep.challenges) do if not c.passed then failed = failed + 1 end end
        local flagged = rep.parallel and rep.parallel.flagged
        host.log(failed > 0 and "warn" or "info", ("provider %s: %d challenge(s), %d failed%s%s -> %s"):format(
          t.provider_key:sub(1, 12), #rep.challenges, failed, flagged and ", DEGRADED TOGETHER" or "",
          rep.capacity and rep.capacity.ok == false and (", capacity: " .. tostring(rep.capacity.detail)) or "",
          file))
        io.stdout:write("report ", file, "\n")
        io.stdout:flush()
        if d then
          local dok, derr2 = pcall(dispute_report, d, rep)
          if not dok then host.log("error", "disputes: " .. tostring(derr2)) end
        end
      else
        host.log("error", "provider " .. t.provider_key:sub(1, 12) .. ": " .. tostring(rep))
      end
    end
    if conf.samples and round >= conf.samples then break end
    host.sleep(conf.every_s)
  end
  -- the disputes queued: sent before a last sample's exit
  local deadline = host.now() + 60
  while d and d.chain.client:pending_count() > 0 and host.now() < deadline and not stopping do host.sleep(0.2) end
  return 0
end

return _M
