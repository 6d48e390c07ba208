-- SPDX-License-Identifier: MIT
--- Stage `circuit_breaker` (phase admit): refused while the breaker is open.
-- An admitted request holds the breaker (ctx.held.breaker) until the
-- finally phase reports its outcome (stages/cleanup.lua).
local host = require "workproof.host"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"

local tonumber, max, ceil = tonumber, math.max, math.ceil

local function run(ctx)
  local ok, retry = generation.hook(ctx.gen, "circuit_breaker", "allow", false, true,
    generation.state("circuit_breaker"), host.time())
  if not ok then return errors.retry_later("EBREAKER", max(1, ceil(tonumber(retry) or 30))) end
  ctx.held.breaker = true
end

return { name = "circuit_breaker", run = run }
