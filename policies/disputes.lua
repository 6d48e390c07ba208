-- SPDX-License-Identifier: MIT
--- Dispute arbitration (docs/uptime.md section 12): what evidence counts,
-- what a proven fault costs the provider and who gets it, and when the
-- consumer agent opens a dispute by itself. The arbiter asks judge() for
-- every dispute it has checked; the consumer asks open() for every piece of
-- evidence its agent kept. Hot-reloadable like every policy.
--
-- The facts come from the core's verifiers (workproof.uptime.evidence):
-- `proven` is never the disputer's word. This file only prices them.
local _M = {
  name = "disputes",
  version = "1",
  description = "which dispute evidence counts, slashing and refund amounts, and when the consumer disputes",
}

local floor, min = math.floor, math.min

-- the evidence kinds UptimeRegistry knows, with their default price in basis
-- points of the provider's collateral (0: the kind does not count)
local KINDS = {
  INVALID_BEAT = 1000,      -- a beat in a claim that is not dual-signed, or outside its period
  EQUIVOCATION = 5000,      -- two beats for one sequence under one key
  CHALLENGE_FAILED = 500,   -- a wrong answer the provider signed
  CLAIM_MISMATCH = 5000,    -- a posted claim contradicting the dual-signed chain
  OVERCOMMITTED = 2000,     -- a signed capacity attestation over capacity
}
local kind_map = { type = "map", keys = { type = "string", one_of = { "INVALID_BEAT", "EQUIVOCATION",
  "CHALLENGE_FAILED", "CLAIM_MISMATCH", "OVERCOMMITTED" } } }

_M.schema = {
  slash_bps = { type = "map", keys = kind_map.keys, values = { type = "integer", min = 0, max = 10000 },
    default = KINDS, description = "per evidence kind: basis points of the provider's collateral slashed "
      .. "when the evidence proves the fault (0: the kind does not count and its disputes are dismissed; "
      .. "a kind left out keeps its default)" },
  max_slash = { type = "integer", default = 0, min = 0,
    description = "token units one ruling slashes at most (0: no cap beyond the collateral)" },
  refund_share = { type = "number", default = 0.8, min = 0, max = 1,
    description = "share of a slash refunded to the lease's consumer; the rest rewards the disputer" },
  auto_dispute = { type = "boolean", default = true,
    description = "the consumer agent opens disputes by itself for the kinds below" },
  dispute_kinds = { type = "map", keys = kind_map.keys, values = { type = "boolean" },
    default = { EQUIVOCATION = true, CLAIM_MISMATCH = true, CHALLENGE_FAILED = true, OVERCOMMITTED = true,
      INVALID_BEAT = true },
    description = "evidence kinds the consumer agent turns into disputes (a kind left out: yes)" },
  window_margin_s = { type = "number", default = 60, min = 0, max = 86400 * 30,
    description = "the consumer disputes a claim only while at least this much of its dispute window is left" },
}

function _M.self_check(conf)
  for k in pairs(conf.slash_bps) do
    if not KINDS[k] then error("slash_bps: unknown evidence kind " .. tostring(k)) end
  end
end

--- The ruling on a checked dispute. d = { kind, proven (from the core's
-- verifiers), reason, collateral (token units, number) }. Returns
-- { upheld, slash, refund, why } with amounts in whole token units.
-- a kind left out of a configured map keeps its default
local function bps_of(conf, kind)
  local v = conf.slash_bps[kind]
  if v == nil then v = KINDS[kind] end
  return v or 0
end

function _M.judge(conf, d)
  local bps = bps_of(conf, d.kind)
  if not d.proven then
    return { upheld = false, slash = 0, refund = 0,
      why = "the evidence does not prove a fault: " .. tostring(d.reason) }
  end
  if bps == 0 then
    return { upheld = false, slash = 0, refund = 0, why = d.kind .. " does not count under this policy" }
  end
  local slash = floor((d.collateral or 0) * bps / 10000)
  if conf.max_slash > 0 then slash = min(slash, conf.max_slash) end
  local refund = floor(slash * conf.refund_share)
  return { upheld = true, slash = slash, refund = refund,
    why = ("%s proven (%s): %d bps of the collateral"):format(d.kind, tostring(d.reason), bps) }
end

--- Should the consumer dispute? ev = { kind (the evidence kind), window_left_s
-- (of the claim it would dispute) }. true | false, why.
function _M.open(conf, ev)
  if not conf.auto_dispute then return false, "auto_dispute is off" end
  if conf.dispute_kinds[ev.kind] == false or not KINDS[ev.kind] then return false, ev.kind .. " is not disputed" end
  if bps_of(conf, ev.kind) == 0 then return false, ev.kind .. " does not count" end
  if ev.window_left_s < conf.window_margin_s then return false, "too little of the dispute window is left" end
  return true
end

return _M
