-- SPDX-License-Identifier: MIT
--- Stage `spawn` (phase run): the job — its id, its taskHash, and with
-- `Prefer: respond-async` its durable record as running: the client is
-- answered 202 here and the flow goes on without it (the second return
-- value says so). A synchronous job's one row is written with its answer
-- (cleanup): until then nobody knows its id.
local wp = require "workproof"
local jobs = require "workproof.notary.jobs"

local urandom
local function new_job_id()
  urandom = urandom or assert(io.open("/dev/urandom", "rb"))
  return wp.hex(urandom:read(16))
end

-- taskHash: SHA-256 of what JavaScript prints for
-- JSON.stringify({taskType, code, expectedHash, inputData, [language]}) after
-- JSON.parse of the body (docs/http-api.md): `validate` read the text in the
-- same pass that checked the body (json.request); hashed here, not there,
-- so the refusals stay cheap.
local function task_hash(ctx)
  return wp.hex(wp.sha256(ctx.task_text))
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
