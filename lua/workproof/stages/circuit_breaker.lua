-- SPDX-License-Identifier: MIT
--- Stage `circuit_breaker` (phase admit): refused while the breaker is open.
-- An admitted request holds the breaker (ctx.held.breaker) until the
-- finally phase reports its outcome (stages/cleanup.lua).
local host = require "workproof.host"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local shared = require "workproof.notary.shared"

local tonumber, unpack, max, ceil = tonumber, unpack, math.max, math.ceil

--- Call the breaker policy's hook fn on the breaker every host shares
-- (notary/shared.lua), or on this process's own. Returns its results.
local function call(gen, fn, fallback, absent, ...)
  if shared.enabled() then
    local args = { ... }
    local res = { shared.with("circuit_breaker", "", function(st)
      return generation.hook(gen, "circuit_breaker", fn, fallback, absent, st, unpack(args))
    end) }
    if res[1] then return unpack(res, 2) end
  end
  return generation.hook(gen, "circuit_breaker", fn, fallback, absent, generation.state("circuit_breaker"), ...)
end

local function run(ctx)
  local ok, retry = call(ctx.gen, "allow", false, true, host.time())
  if not ok then return errors.retry_later("EBREAKER", max(1, ceil(tonumber(retry) or 30))) end
  ctx.held.breaker = true
end

return { name = "circuit_breaker", run = run, call = call }
