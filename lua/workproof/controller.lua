-- SPDX-License-Identifier: MIT
--- The notary controller: what `workproof serve` starts. It only wires the
-- notary's modules together; each owns its part and its state:
--
--   notary/generation  config + policies + flow, hot reload, policy state
--   notary/runner      a /verify request through the stages (stages/*)
--   notary/routes      the HTTP API
--   notary/jobs        the store, durable jobs, recovery after a crash
--   notary/registry    the chain client and the attestation
--   notary/payment     x402 and legacy payments: verify, settle, refund
--   notary/metrics     the metrics registry and /metrics
--   notary/dashboard   /dashboard: the operator's live page (SSE)
--   notary/context     the request context record
--   errors             the error vocabulary (codes -> status, verdict,
--                      infrastructure, refund)
--
-- docs/architecture.md draws the phases; docs/policies.md the stage order.
local generation = require "workproof.notary.generation"
local dashboard = require "workproof.notary.dashboard"
local jobs = require "workproof.notary.jobs"
local payment = require "workproof.notary.payment"
local registry = require "workproof.notary.registry"
local routes = require "workproof.notary.routes"
local runner = require "workproof.notary.runner"
local shared = require "workproof.notary.shared"

local _M = {}

_M.HEALTH = routes.HEALTH
_M.handle = routes.handle
_M.reload = generation.reload
_M.current = generation.current
_M.set_server = routes.set_server
_M.drain = runner.drain
_M.draining = runner.draining
_M.recover_jobs = jobs.recover
_M.start_dashboard = dashboard.start

--- Where the config comes from (nil: the embedded defaults), and overrides.
function _M.configure(config_path, overrides) generation.configure(config_path, overrides) end

--- Open the store conf.store (a SQLite file or a postgres:// URL) and
-- share the policy state there when conf.shared_limits. Returns it, or
-- nil, err.
function _M.open_store(conf)
  local db, err = jobs.open(conf.store, { pool = conf.store_pool, lease = conf.store_lease })
  if db and conf.shared_limits then shared.setup(db) end
  return db, err
end

--- Beat in the store and take over dead hosts' jobs (every store_lease/3
-- seconds). Returns the stop function.
function _M.start_heartbeat() return jobs.start_heartbeat(shared.sweep) end

--- Prune completed jobs past jobs.retention in the background, with the
-- current generation's settings (a reload applies). Returns a stop function.
function _M.start_pruner()
  return jobs.start_pruner(function()
    local j = generation.current().config.jobs
    return { retention = j.retention, interval = j.prune_interval, batch = j.prune_batch }
  end)
end

--- Connect the chain and resolve the payment settings (at start; chain
-- settings take effect at the next start, not on reload). True or nil, err.
function _M.setup_chain(conf)
  local chain, err = registry.setup(conf, jobs.db())
  if not chain then return nil, err end
  if chain == true then return true end
  return payment.setup(conf, chain, jobs.db())
end

--- A clean stop: another process may send chain writes now; this instance
-- leaves the store.
function _M.close()
  registry.release()
  shared.setup(nil)
  jobs.close()
end

return _M
