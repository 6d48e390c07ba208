-- SPDX-License-Identifier: MIT
--- The request context: one record per /verify request, passed to every
-- stage (and to a policy's `stage(conf, ctx)` hook, which may read it).
--
--   req           the HTTP request { method, path, headers, body, peer, authority }
--   gen           the generation the request started with (config, policies, flow)
--   t0            host.now() at arrival
--   async         the client asked `Prefer: respond-async`
--   headers       extra response headers stages add (X-RateLimit-Warning,
--                 PAYMENT-RESPONSE)
--   stage         the stage running now (for logs)
--   client        the rate-limit client key (stages.rate_limit.client_key)
--   -- the validated request (stages.validate)
--   task          the decoded body
--   language      "javascript" | "lua"
--   expected      expected hash, 64 lowercase hex
--   timeout       seconds
--   def           the task type's definition (policy task_types)
--   request_hash  ERC-8004 request hash, 64 lowercase hex, or nil
--   worker_input  the task's input as the task_types policy shaped it (`input`
--                 itself: inputData as sent)
--   task_text     the taskHash text (json.request)
--   input         inputData as sent: { first, last, type, bytes }, or nil
--   -- what the request holds, given back once in the finally phase
--   held          { breaker = true (admitted by the breaker), slot = true (a worker slot) }
--   payment       the verified payment, or nil (workproof.notary.payment)
--   -- the job
--   job_id, task_hash
--   outcome       { code, verdict, detail, actual, execution_ms }: `code` is
--                 a workproof.errors code; what it means for the breaker and
--                 refunds is read from there, never kept as flags
--   record        { attestation, registry_tx, refund_tx } (the record phase)
--   code          the code the request ended with (refusal or outcome)
local host = require "workproof.host"
local errors = require "workproof.errors"

local _M = {}

function _M.new(req, gen)
  local prefer = req.headers.prefer
  return {
    req = req, gen = gen, t0 = host.now(), headers = {}, held = {}, record = {},
    async = prefer ~= nil and prefer:lower():find("respond%-async") ~= nil,
  }
end

--- Set the job's outcome from a workproof.errors code (VALID, TIMEOUT,
-- RUNTIME_ERROR, ESPAWN, ...) and the detail text shown to the client.
function _M.conclude(ctx, code, detail, actual, execution_ms)
  ctx.outcome = { code = code, verdict = errors.get(code).verdict, detail = detail, actual = actual,
    execution_ms = execution_ms }
  ctx.code = code
end

return _M
