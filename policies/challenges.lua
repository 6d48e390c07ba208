-- SPDX-License-Identifier: MIT
--- Challenges to a lease's provider (docs/uptime.md, "Challenges"): which
-- kinds, how often, with what parameters and deadlines, and what a result
-- means. Used by the consumer agent (and the fisherman) on every tick;
-- hot-reloadable like every policy.
--
--   compute  a VDF of t squarings seeded by the nonce: sequential work whose
--            honest time on the machine is learnt (the provider's own
--            baseline: the median of its last passes); slower than
--            slow_factor x baseline is "degraded", past the deadline a miss
--   storage  k chunks of the data the consumer uploaded at lease start (a
--            keyed stream only it can make), chosen by the nonce, with their
--            inclusion proofs, within deadline_s
--   latency  a signed echo of the nonce within bound_ms (a relay to a
--            distant machine shows)
local _M = {
  name = "challenges",
  version = "1",
  description = "challenge kinds, frequency, parameters, deadlines, and what a failure means",
}

local ipairs, floor, sort, min, max = ipairs, math.floor, table.sort, math.min, math.max

local ACTIONS = { "note", "degrade", "dispute" }

_M.schema = {
  enabled = { type = "boolean", default = true, description = "issue challenges at all" },
  compute_every_s = { type = "number", default = 300, min = 1, max = 86400,
    description = "seconds between compute challenges (0 < x)" },
  compute_t = { type = "integer", default = 200000, min = 1000, max = 1e9,
    description = "VDF squarings per compute challenge (200000: ~0.15 s on this machine class)" },
  compute_deadline_s = { type = "number", default = 10, min = 0.1, max = 3600,
    description = "a compute answer later than this is a miss" },
  slow_factor = { type = "number", default = 1.5, min = 1, max = 100,
    description = "a compute answer slower than baseline x this is degraded" },
  baseline_window = { type = "integer", default = 10, min = 1, max = 1000,
    description = "passes whose median time is the baseline" },
  storage_every_s = { type = "number", default = 300, min = 1, max = 86400,
    description = "seconds between storage challenges" },
  storage_chunks = { type = "integer", default = 8, min = 1, max = 256, description = "chunks asked per challenge" },
  storage_deadline_s = { type = "number", default = 0.25, min = 0.01, max = 3600,
    description = "a storage answer later than this is a miss: the round trip plus ~10 ms of reading and "
      .. "proving; the slack is what a provider fetching chunks from elsewhere has (docs/uptime.md, Storage "
      .. "challenges)" },
  storage_max_mb = { type = "integer", default = 4096, min = 1, max = 1048576,
    description = "the most data (MiB) the consumer generates and uploads for one lease's storage" },
  latency_every_s = { type = "number", default = 60, min = 1, max = 86400,
    description = "seconds between latency challenges" },
  latency_bound_ms = { type = "number", default = 200, min = 0.1, max = 60000,
    description = "a round trip above this is degraded" },
  on_miss = { type = "string", default = "degrade", one_of = ACTIONS,
    description = "a missed or wrong answer: note it, degrade the score, or raise a dispute" },
  on_degraded = { type = "string", default = "note", one_of = ACTIONS,
    description = "a slow but correct answer" },
  rtt_bound_ms = { type = "number", default = 500, min = 0.1, max = 600000,
    description = "beat round trips above this lower the score in proportion" },
  score_window = { type = "integer", default = 50, min = 1, max = 10000,
    description = "challenges the score looks at" },
  score_alert = { type = "number", default = 0.9, min = 0, max = 1, description = "below: an alert" },
  score_dispute = { type = "number", default = 0.7, min = 0, max = 1,
    description = "below: dispute evidence is recorded" },
}

function _M.self_check(conf)
  if conf.score_dispute > conf.score_alert then error("score_dispute must not exceed score_alert") end
end

--- The challenges due now: ctx = { now = s, last = { [kind] = s } }.
-- Returns an array of { kind, params, deadline_s }.
function _M.due(conf, ctx)
  if not conf.enabled then return {} end
  local out = {}
  local function want(kind, every, params, deadline)
    local last = ctx.last[kind]
    if not last or ctx.now - last >= every then
      out[#out + 1] = { kind = kind, params = params, deadline_s = deadline }
    end
  end
  want("latency", conf.latency_every_s, {}, max(conf.latency_bound_ms / 1000 * 10, 1))
  want("compute", conf.compute_every_s, { t = conf.compute_t }, conf.compute_deadline_s)
  if ctx.storage then
    want("storage", conf.storage_every_s, { k = conf.storage_chunks }, conf.storage_deadline_s)
  end
  return out
end

local function median(xs)
  if #xs == 0 then return nil end
  local c = {}
  for i, x in ipairs(xs) do c[i] = x end
  sort(c)
  return c[floor((#c + 1) / 2)]
end

--- Judge one result: r = { kind, ok (the answer verified), ms (round
-- trip), deadline_s }, history = earlier results of this lease (newest
-- last). Returns { passed, degraded, action, detail }.
function _M.judge(conf, r, history)
  if not r.ok then return { passed = false, action = conf.on_miss, detail = r.why or "wrong answer" } end
  if r.ms > r.deadline_s * 1000 then
    return { passed = false, action = conf.on_miss, detail = ("late: %.0f ms, deadline %g s"):format(r.ms,
      r.deadline_s) }
  end
  if r.kind == "latency" and r.ms > conf.latency_bound_ms then
    return { passed = true, degraded = true, action = conf.on_degraded,
      detail = ("round trip %.1f ms above %g ms"):format(r.ms, conf.latency_bound_ms) }
  end
  if r.kind == "compute" then
    local times = {}
    for i = #history, 1, -1 do
      local h = history[i]
      if h.kind == "compute" and h.passed and not h.degraded and #times < conf.baseline_window then
        times[#times + 1] = h.ms
      end
    end
    local base = median(times)
    if base and r.ms > base * conf.slow_factor then
      return { passed = true, degraded = true, action = conf.on_degraded, baseline_ms = base,
        detail = ("%.0f ms against a baseline of %.0f ms"):format(r.ms, base) }
    end
    return { passed = true, baseline_ms = base }
  end
  return { passed = true }
end

--- The lease's SLA score in [0, 1] from its last challenges, its beats'
-- uptime and their round trips: passes count 1, degraded 0.5, misses 0;
-- times the uptime; times rtt_bound_ms / the beats' mean round trip when
-- that is above the bound. Returns score, state ("ok", "alert", "dispute").
function _M.score(conf, history, uptime, rtt_ms)
  local n, sum = 0, 0
  for i = #history, max(1, #history - conf.score_window + 1), -1 do
    local h = history[i]
    n = n + 1
    sum = sum + (h.passed and (h.degraded and 0.5 or 1) or 0)
  end
  local s = (n > 0 and sum / n or 1) * min(uptime or 1, 1)
  if rtt_ms and rtt_ms > conf.rtt_bound_ms then s = s * conf.rtt_bound_ms / rtt_ms end
  local state = s < conf.score_dispute and "dispute" or s < conf.score_alert and "alert" or "ok"
  return s, state
end

return _M
