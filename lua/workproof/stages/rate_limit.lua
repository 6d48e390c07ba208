-- SPDX-License-Identifier: MIT
--- Stage `rate_limit` (phase admit): the rate_limit policy decides per
-- client key (allow, warn, block, blacklist). The key is also the client of
-- the worker caps.
local host = require "workproof.host"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local nmetrics = require "workproof.notary.metrics"
local shared = require "workproof.notary.shared"

local tostring, tonumber, type, next, pairs, max, ceil = tostring, tonumber, type, next, pairs, math.max, math.ceil

--- The request's client key (rate_limit.client_key, once per request).
local function client_key(ctx)
  if not ctx.client then
    local peer = ctx.req.peer
    ctx.client = generation.hook(ctx.gen, "rate_limit", "client_key", peer, peer, peer or "?",
      ctx.req.headers) or "?"
  end
  return ctx.client
end

-- The policy's check on the state every host shares: the key's entry alone,
-- read from the store and written back (notary/shared.lua).
local function shared_check(ctx, key, t)
  return shared.with("rate_limit", key, function(e)
    local had = next(e) ~= nil
    local st = { clients = { [key] = had and e or nil }, count = had and 1 or 0, next_sweep = t + 1 }
    local action, retry = generation.hook(ctx.gen, "rate_limit", "check", "block", "allow", st, key, t)
    local now = st.clients[key]
    if now ~= e then
      for k in pairs(e) do e[k] = nil end
      for k, v in pairs(type(now) == "table" and now or {}) do e[k] = v end
    end
    return action, retry
  end)
end

local function run(ctx)
  local key, t = client_key(ctx), host.time()
  local done, action, retry
  if shared.enabled() then done, action, retry = shared_check(ctx, key, t) end
  if not done then
    action, retry = generation.hook(ctx.gen, "rate_limit", "check", "block", "allow",
      generation.state("rate_limit"), key, t)
  end
  nmetrics.counter("wp_rate_limit_actions_total", "Rate-limit decisions", { action = tostring(action) })
  if action == "block" or action == "blacklist" then
    return errors.retry_later("ERATELIMIT", max(1, ceil(tonumber(retry) or 60)), nil,
      action == "blacklist" and "client blacklisted" or "too many requests")
  elseif action == "warn" then
    ctx.headers["x-ratelimit-warning"] = "approaching the request limit"
  end
end

return { name = "rate_limit", run = run, client_key = client_key }
