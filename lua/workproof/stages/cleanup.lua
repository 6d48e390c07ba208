-- SPDX-License-Identifier: MIT
--- Stage `cleanup` (phase finally, always last): run exactly once for every
-- request that got past its first stage, however it ended (the flow runner
-- guarantees it). Gives back what the request holds — its worker slot, its
-- breaker admission (reporting the outcome: only an infrastructure code
-- counts as a failure, workproof.errors) — ends the payment (settle,
-- refund or release), and stores the verdict.
local host = require "workproof.host"
local cjson = require "cjson.safe"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local payment = require "workproof.notary.payment"
local jobs = require "workproof.notary.jobs"
local nmetrics = require "workproof.notary.metrics"
local breaker = require "workproof.stages.circuit_breaker"

local pcall, tostring, floor = pcall, tostring, math.floor

-- The verdict document (POST /verify's 200, GET /verify/{id}).
local function verdict_document(ctx)
  local out = ctx.outcome
  return {
    jobId = ctx.job_id, taskHash = ctx.task_hash, status = "completed", result = out.verdict,
    expectedHash = ctx.expected, actualHash = out.actual or cjson.null,
    executionTimeMs = out.execution_ms or 0,
    totalTimeMs = floor((host.now() - ctx.t0) * 1000 + 0.5),
    refundEligible = errors.get(out.code).refund,
    registryTxHash = ctx.record.registry_tx,
    attestation = ctx.record.attestation,
    refundTxHash = ctx.record.refund_tx,
    error = out.detail,
  }
end

local function run(ctx)
  local gen, held = ctx.gen, ctx.held
  if held.slot then
    generation.hook(gen, "worker_threshold", "release", nil, nil, generation.state("worker_threshold"), ctx.client)
  end
  local ok, refund_tx = pcall(payment.finish, ctx)
  if ok then ctx.record.refund_tx = refund_tx
  else host.log("error", "payment of job " .. tostring(ctx.job_id) .. " not finished: " .. tostring(refund_tx)) end
  if held.breaker then
    local e = ctx.code and errors.get(ctx.code)
    if ctx.outcome or (e and e.infra) then
      breaker.call(gen, "record", nil, nil, host.time(),
        { verdict = ctx.outcome and ctx.outcome.verdict, infra = e and e.infra == true })
    else
      -- refused later in the flow (payment, capacity): no outcome to report,
      -- but a half-open probe slot must not wait for its timeout
      breaker.call(gen, "abandon", nil, nil, host.time())
    end
  end
  if ctx.outcome then
    nmetrics.counter("wp_verdicts_total", "Verification verdicts", { result = ctx.outcome.verdict })
    ctx.response_body = verdict_document(ctx)
    local doc = ctx.response_body
    host.log("info", "verdict", { jobId = doc.jobId, taskHash = doc.taskHash, verdict = doc.result,
      code = ctx.outcome.code, ms = doc.totalTimeMs })
    if ctx.job_id then jobs.complete(ctx.job_id, ctx.response_body, not ctx.async and ctx.task_hash or nil) end
  end
end

return { name = "cleanup", run = run }
