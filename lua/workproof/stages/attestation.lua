-- SPDX-License-Identifier: MIT
--- Stage `attestation` (phase record): a VALID / INVALID verdict is written
-- to the registry when the chain is on (workproof.notary.registry).
local registry = require "workproof.notary.registry"

local function run(ctx)
  local v = ctx.outcome and ctx.outcome.verdict
  if not (ctx.gen.config.chain.enabled and registry.chain()) or (v ~= "VALID" and v ~= "INVALID") then return end
  local a = registry.attest(ctx)
  ctx.record.attestation, ctx.record.registry_tx = a.attestation, a.tx
end

return { name = "attestation", run = run }
