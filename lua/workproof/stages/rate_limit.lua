-- SPDX-License-Identifier: MIT
--- Stage `rate_limit` (phase admit): the rate_limit policy decides per
-- client key (allow, warn, block, blacklist). The key is also the client of
-- the worker caps.
local host = require "workproof.host"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local nmetrics = require "workproof.notary.metrics"

local tostring, tonumber, max, ceil = tostring, tonumber, math.max, math.ceil

--- The request's client key (rate_limit.client_key, once per request).
local function client_key(ctx)
  if not ctx.client then
    local peer = ctx.req.peer
    ctx.client = generation.hook(ctx.gen, "rate_limit", "client_key", peer, peer, peer or "?",
      ctx.req.headers) or "?"
  end
  return ctx.client
end

local function run(ctx)
  local action, retry = generation.hook(ctx.gen, "rate_limit", "check", "block", "allow",
    generation.state("rate_limit"), client_key(ctx), host.time())
  nmetrics.counter("wp_rate_limit_actions_total", "Rate-limit decisions", { action = tostring(action) })
  if action == "block" or action == "blacklist" then
    return errors.retry_later("ERATELIMIT", max(1, ceil(tonumber(retry) or 60)), nil,
      action == "blacklist" and "client blacklisted" or "too many requests")
  elseif action == "warn" then
    ctx.headers["x-ratelimit-warning"] = "approaching the request limit"
  end
end

return { name = "rate_limit", run = run, client_key = client_key }
