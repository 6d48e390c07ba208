-- SPDX-License-Identifier: MIT
--- Stage `spawn` (phase run): the job — its id, its taskHash, and with
-- `Prefer: respond-async` its durable record as running: the client is
-- answered 202 here and the flow goes on without it (the second return
-- value says so). A synchronous job's one row is written with its answer
-- (cleanup): until then nobody knows its id.
local wp = require "workproof"
local json = require "workproof.json"
local jobs = require "workproof.notary.jobs"

local urandom
local function new_job_id()
  urandom = urandom or assert(io.open("/dev/urandom", "rb"))
  return wp.hex(urandom:read(16))
end

-- taskHash: SHA-256 of what JavaScript prints for
-- JSON.stringify({taskType, code, expectedHash, inputData, [language]}) after
-- JSON.parse of the body (json.task_json; docs/http-api.md). Computed here,
-- not in `validate`, so the refusals stay cheap.
local function task_hash(ctx)
  local text, err = json.task_json(ctx.req.body, ctx.language, ctx.gen.config.limits.max_depth + 1)
  if not text then error("taskHash of a validated body: " .. tostring(err)) end
  return wp.hex(wp.sha256(text))
end

local function run(ctx)
  ctx.job_id = new_job_id()
  ctx.task_hash = task_hash(ctx)
  if ctx.async then
    jobs.create(ctx.job_id, ctx.task_hash)
    return { status = 202, body = { jobId = ctx.job_id, taskHash = ctx.task_hash, status = "running" } }, true
  end
end

return { name = "spawn", run = run }
