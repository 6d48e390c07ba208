-- SPDX-License-Identifier: MIT
--- Circuit breaker in front of the workers (docs/policies.md).
--
--   closed ──(failure_threshold failures within window)──► open
--   open ──(open_seconds elapsed)──► half_open
--   half_open: admits at most half_open_max_probes requests at a time;
--     a success closes, a failure re-opens; a probe that has not reported
--     within half_open_timeout counts as failed (re-opens), so a probe whose
--     request died before the worker (payment refused, capacity, crash), or
--     sparse traffic, cannot wedge the breaker in half_open.
--
-- What is a failure is data: count_as_failure lists outcome kinds
-- ("VALID", "INVALID", "ERROR", "TIMEOUT" = the verdict; "infra" = the
-- controller's infra flag: spawn failure, worker crash, store down).
--
-- Outcomes recorded while open are ignored: they are late reports of
-- requests admitted before the breaker opened, and must not stretch the
-- open period. Transitions that depend only on time (open -> half_open,
-- a probe timing out) are applied lazily by every hook, so the breaker
-- needs no timer and behaves the same however rarely it is called.
--
-- State (host-owned, survives reloads):
--   state.state     "closed" | "open" | "half_open"
--   state.failures  array of failure times (closed; at most failure_threshold)
--   state.open_until time the open period ends
--   state.probes    array of admission times of outstanding half-open probes
--   state.opened    number of times the breaker opened (for metrics)
-- Unknown or damaged fields are reset, so a state from an older version is
-- repaired rather than trusted.
local _M = {
  name = "circuit_breaker",
  version = "1",
  description = "stops admitting work after repeated failures; half-open probes; closes on success",
}

local type, ipairs = type, ipairs
local ceil, max = math.ceil, math.max
local clock = now

local KINDS = { "VALID", "INVALID", "ERROR", "TIMEOUT", "infra" }

_M.schema = {
  failure_threshold = { type = "integer", default = 10, min = 1, max = 100000,
    description = "failures within window that open the breaker" },
  window = { type = "number", default = 60, min = 1, max = 86400,
    description = "seconds over which failures are counted" },
  open_seconds = { type = "number", default = 30, min = 1, max = 86400,
    description = "how long the breaker stays open before probing" },
  half_open_max_probes = { type = "integer", default = 1, min = 1, max = 10000,
    description = "requests admitted at the same time while half-open" },
  half_open_timeout = { type = "number", default = 60, min = 1, max = 86400,
    description = "a probe that has not reported after this many seconds counts as failed" },
  count_as_failure = { type = "array", default = { "infra" },
    elements = { type = "string", one_of = KINDS },
    description = "outcome kinds that are failures: VALID, INVALID, ERROR, TIMEOUT (verdicts), infra" },
}

local function num(v)
  return type(v) == "number" and v == v and v or nil
end

local function times(v)
  local out = {}
  if type(v) == "table" then
    for _, x in ipairs(v) do
      if num(x) then out[#out + 1] = x end
    end
  end
  return out
end

local function open(conf, state, at)
  state.state = "open"
  state.open_until = at + conf.open_seconds
  state.failures = {}
  state.probes = {}
  state.opened = (num(state.opened) or 0) + 1
end

local function close(state)
  state.state = "closed"
  state.failures = {}
  state.probes = {}
  state.open_until = nil
end

-- Apply every transition that depends only on time; returns the state name.
local function advance(conf, state, t)
  local s = state.state
  if s ~= "closed" and s ~= "open" and s ~= "half_open" then
    close(state)
    return "closed"
  end
  -- a loop because a long quiet period may cover several transitions
  -- (half_open -> probe timed out -> open -> open_seconds passed -> half_open)
  for _ = 1, 4 do
    if state.state == "open" then
      local u = num(state.open_until)
      if u and u > t + conf.open_seconds then u = t + conf.open_seconds; state.open_until = u end
      if u and u > t then return "open" end
      state.state = "half_open"
      state.probes = {}
    elseif state.state == "half_open" then
      local probes = times(state.probes)
      state.probes = probes
      local oldest = probes[1]
      for _, p in ipairs(probes) do if p < oldest then oldest = p end end
      if oldest and oldest + conf.half_open_timeout <= t then
        -- the probe never reported: a failure, as of its deadline
        open(conf, state, oldest + conf.half_open_timeout)
      else
        return "half_open"
      end
    else
      return "closed"
    end
  end
  return state.state
end

--- Is `outcome` a failure under conf? outcome = { verdict =, infra = }.
function _M.is_failure(conf, outcome)
  if type(outcome) ~= "table" then return false end
  for _, k in ipairs(conf.count_as_failure) do
    if k == "infra" then
      if outcome.infra == true then return true end
    elseif outcome.verdict == k then
      return true
    end
  end
  return false
end

--- May a request go to the workers now? Returns true, or false and
-- retry_after (whole seconds >= 1).
function _M.allow(conf, state, t)
  t = num(t) or clock()
  local s = advance(conf, state, t)
  if s == "closed" then return true end
  if s == "open" then return false, max(1, ceil(state.open_until - t - 1e-9)) end
  local probes = state.probes
  if #probes < conf.half_open_max_probes then
    probes[#probes + 1] = t
    return true
  end
  local oldest = probes[1]
  for _, p in ipairs(probes) do if p < oldest then oldest = p end end
  return false, max(1, ceil(oldest + conf.half_open_timeout - t - 1e-9))
end

--- Report the outcome of an admitted request. Returns the state afterwards.
function _M.record(conf, state, t, outcome)
  t = num(t) or clock()
  local s = advance(conf, state, t)
  local failed = _M.is_failure(conf, outcome)
  if s == "open" then
    return "open"
  elseif s == "half_open" then
    if failed then
      open(conf, state, t)
      return "open"
    end
    close(state)
    return "closed"
  end
  if not failed then return "closed" end
  local kept = {}
  for _, f in ipairs(times(state.failures)) do
    if f + conf.window > t and f <= t then kept[#kept + 1] = f end
  end
  kept[#kept + 1] = t
  while #kept > conf.failure_threshold do table.remove(kept, 1) end
  state.failures = kept
  if #kept >= conf.failure_threshold then
    open(conf, state, t)
    return "open"
  end
  return "closed"
end

--- An admitted request ended without an outcome worth judging (refused
-- later in the flow: payment, capacity). In half-open this frees its probe
-- slot at once instead of after half_open_timeout; otherwise a no-op.
-- Returns the state afterwards. (Optional: the controller may call it.)
function _M.abandon(conf, state, t)
  t = num(t) or clock()
  local s = advance(conf, state, t)
  if s == "half_open" and #state.probes > 0 then
    local probes, oldest = state.probes, 1
    for i, p in ipairs(probes) do if p < probes[oldest] then oldest = i end end
    table.remove(probes, oldest)
  end
  return s
end

--- "closed" | "open" | "half_open" at time `now` (default: the clock).
function _M.status(conf, state, t)
  return advance(conf, state, num(t) or clock())
end

return _M
