-- SPDX-License-Identifier: MIT
--- Stage `result` (phase run): run the task in a fresh worker and conclude
-- the job. The outcome's code comes from what was observed — the worker's
-- enumerated errorClass (worker/worker.h), or the host's own code when the
-- worker gave no usable result (workproof.worker: ETIMEDOUT, ESPAWN, ...) —
-- never from text the task wrote. workproof.errors says what each means.
local cjson = require "cjson.safe"
local worker = require "workproof.worker"
local context = require "workproof.notary.context"

local type, tonumber, tostring, rawequal, rawget, floor = type, tonumber, tostring, rawequal, rawget, math.floor

local function run(ctx)
  local wconf = ctx.gen.config.worker
  -- the request's inputData itself (the policy answered with its
  -- description, json.request's `input`, or with the decoded value) goes as
  -- its own text: exact numbers, key order, -0; a value the task_types
  -- policy built goes as that value
  local input, input_json, sent = ctx.worker_input, nil, ctx.input
  if input ~= nil and sent and (rawequal(input, sent) or rawequal(input, rawget(ctx.task, "inputData"))) then
    input, input_json = nil, ctx.req.body:sub(sent.first, sent.last)
  end
  local r, err, code = worker.run({
    jobId = ctx.job_id, language = ctx.language, code = ctx.task.code, input = input, inputJson = input_json,
    timeoutMs = floor(ctx.timeout * 1000), memoryBytes = wconf.memory_bytes,
    outputLimitBytes = wconf.output_limit_bytes,
  })
  if not r then return context.conclude(ctx, code, err) end
  local actual = type(r.actualHash) == "string" and r.actualHash:lower() or nil
  local ms = tonumber(r.executionTimeMs) or 0
  if r.error ~= nil and r.error ~= cjson.null then
    -- the class field, not the text: "RUNTIME_ERROR: TIMEOUT" stays an error;
    -- a class missing or unknown is the host's failure (errors.get)
    return context.conclude(ctx, tostring(r.errorClass), tostring(r.error), actual, ms)
  end
  context.conclude(ctx, actual == ctx.expected and "VALID" or "INVALID", nil, actual, ms)
end

return { name = "result", run = run }
