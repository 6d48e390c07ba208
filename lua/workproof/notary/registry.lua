-- SPDX-License-Identifier: MIT
--- The chain side of the notary: the chain client (signer, nonce manager,
-- durable outbox: workproof.chain), the ValidationRegistry it attests to,
-- and the attestation itself. Chain settings take effect at start, not on
-- reload.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local fs = require "workproof.fs"
local nmetrics = require "workproof.notary.metrics"

local type, ipairs, tonumber, tostring = type, ipairs, tonumber, tostring

local _M = {}

local chain      -- { client, rpc, id, registry, erc8004, deployment, url }

--- Connect the chain client (conf.chain) over the store db. Returns the
-- chain record, true when the chain is off, or nil, err.
function _M.setup(conf, db)
  local cc = conf.chain
  if not cc.enabled then return true end
  local rpc = require("workproof.rpc").new(cc.rpc, { timeout = 10 })
  local dep
  if cc.deployment then
    dep = cjson.decode(fs.read(cc.deployment) or "")
    if type(dep) ~= "table" then return nil, "cannot read the deployment " .. cc.deployment end
  end
  local chain_id = cc.chain_id or (dep and dep.chainId)
  if not chain_id then return nil, "chain.chain_id (or chain.deployment) is required" end
  local remote = rpc:call("eth_chainId", {})
  if remote and tonumber(remote) ~= chain_id then
    return nil, ("the node at %s is chain %s, the config says %d"):format(cc.rpc, tostring(tonumber(remote)), chain_id)
  elseif not remote then
    host.log("warn", "the chain at " .. cc.rpc .. " does not answer yet; writes wait in the outbox")
  end
  local client, err = require("workproof.chain").new { rpc = rpc, db = db, chain_id = chain_id,
    key = { file = cc.key_file, env = cc.key_env }, reprice_after = cc.reprice_after,
    stuck_after = cc.stuck_after, reorg_depth = cc.reorg_depth }
  if not client then return nil, err end
  local registry = cc.registry or (dep and dep.contracts and dep.contracts.ValidationRegistry
    and dep.contracts.ValidationRegistry.address)
  if not registry then return nil, "chain.registry (or chain.deployment) is required" end
  local e8 = cc.erc8004 or (dep and dep.erc8004ValidationRegistry)
  local up = cc.uptime_registry or (dep and dep.uptime and dep.uptime.registry)
  chain = { client = client, rpc = rpc, id = chain_id, registry = registry, url = cc.rpc, deployment = dep,
    uptime_registry = up,
    erc8004 = e8 and not e8:find("^0x0+$") and e8 or nil }
  client:kick()   -- drain what a previous run left in the outbox
  host.log("info", ("chain %d at %s: signer %s, registry %s"):format(chain_id, cc.rpc, client.address, registry))
  return chain
end

--- The chain record (nil when the chain is off).
function _M.chain() return chain end

--- /info's chain section.
function _M.info()
  return chain and { chainId = chain.id, rpc = chain.url, registry = chain.registry,
    uptimeRegistry = chain.uptime_registry, verifier = chain.client.address } or nil
end

--- Queue a transaction and wait up to `wait` seconds for its receipt.
-- Returns the outbox row (status mined, failed, ...) or nil, err.
function _M.write(kind, ref, tx, wait)
  local id, err = chain.client:enqueue(kind, ref, tx)
  if not id then return nil, err end
  return chain.client:wait(id, wait)
end

--- Write a VALID / INVALID verdict to the registry through the outbox. The
-- request waits up to chain.wait_receipt seconds; after that the
-- attestation is reported pending and still lands (the outbox). Returns
-- { attestation = "mined" | "pending" | ..., tx = hash }.
function _M.attest(ctx)
  local cc = ctx.gen.config.chain
  local out = ctx.outcome
  local proof = cjson.encode({ jobId = ctx.job_id, taskHash = ctx.task_hash, expectedHash = ctx.expected,
    actualHash = out.actual, executionTimeMs = out.execution_ms, backend = ctx.gen.config.worker.backend,
    verdict = out.verdict, language = ctx.language })
  local data
  if ctx.request_hash and chain.erc8004 then
    -- the registry also answers the ERC-8004 Validation Registry's request
    data = wp.abi.encode_call("attestValidationFor(bytes32,bytes32,string,bool,bytes)",
      { wp.unhex(ctx.request_hash), wp.unhex(ctx.task_hash), cc.method, out.verdict == "VALID", proof })
  else
    data = wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
      { wp.unhex(ctx.task_hash), cc.method, out.verdict == "VALID", proof })
  end
  local row, err, waiting = _M.write("attest", ctx.job_id, { to = chain.registry, data = data }, cc.wait_receipt)
  if row then
    return { attestation = row.status, tx = row.status == "mined" and row.tx_hash or nil }
  elseif waiting then   -- queued, not mined within wait_receipt: it still lands
    return { attestation = "pending" }
  end
  host.log("error", "attestation for job " .. ctx.job_id .. " not queued: " .. tostring(err))
  return { attestation = "failed" }
end

nmetrics.collector(function(m)
  if not chain then return end
  local c = chain.client
  m.gauge("wp_outbox_pending", "Chain writes waiting in the outbox", c:pending_count())
  local states = c:states()
  for _, s in ipairs(c.STATES) do
    m.gauge("wp_outbox_rows", "Outbox rows by state", states[s] or 0, { state = s })
  end
  m.gauge("wp_outbox_oldest_unmined_seconds", "Age of the oldest outbox row not yet mined (0: none)",
    c:oldest_unmined())
  for _, k in ipairs({ "conflicts", "reorgs", "repriced", "resent", "stuck_warnings" }) do
    m.counter_total("wp_outbox_" .. k .. "_total", "Outbox events since start: " .. k, nil, c.stats[k])
  end
end)

--- Stop sending (another process may send now).
function _M.release()
  if chain then chain.client:release() end
end

return _M
