-- SPDX-License-Identifier: MIT
--- The notary's one error vocabulary (docs/conventions.md §2): every code a
-- request can end with, and what it means — for the HTTP status, the
-- verdict, the circuit breaker (`infra`) and refunds (`refund`).
--
-- Two kinds of code:
--   refusals  the request is answered with an error document
--             {error, code, details} and `status`, before or instead of a
--             verdict;
--   outcomes  a job ran (or was meant to): HTTP 200 with `verdict`.
-- `infra = true` means the host, not the client, failed: only those count
-- for the breaker, and only those are refunded. What the client controls —
-- its request, its code, its timeout — never maps to an infra code: the
-- worker reports an enumerated class (worker/worker.h) from what it
-- observed, and the host adds its own codes from what it observed.
local tostring, error, pairs = tostring, error, pairs

local _M = {}

local CODES = {
  -- refusals: the client's request, decided before any worker runs
  EVALIDATION = { status = 400, text = "invalid request" },
  ETOOLARGE = { status = 413, text = "request too large" },
  EBLOCKED = { status = 400, text = "code blocked by policy" },
  ERATELIMIT = { status = 429, text = "too many requests" },
  EPAYMENT = { status = 402, text = "payment required" },
  ECAPACITY = { status = 503, text = "worker capacity reached" },
  EBREAKER = { status = 503, text = "service temporarily unavailable (circuit open)" },
  ESHUTDOWN = { status = 503, text = "shutting down" },
  ENOTFOUND = { status = 404, text = "not found" },
  EMETHOD = { status = 405, text = "method not allowed" },
  EFORBIDDEN = { status = 403, text = "forbidden" },
  -- refusals the host caused
  EPAYMENT_UNAVAILABLE = { status = 503, infra = true, text = "payment verification unavailable, not charged" },
  -- an operator's policy stage failed or overran its budget: not counted as
  -- infrastructure (what reaches a policy may be the client's to shape)
  EPOLICY = { status = 500, text = "policy stage failed" },
  -- outcomes: the answer
  VALID = { verdict = "VALID" },
  INVALID = { verdict = "INVALID" },
  -- outcomes of the task (worker/worker.h error classes): the client's
  TIMEOUT = { verdict = "TIMEOUT" },
  RUNTIME_ERROR = { verdict = "ERROR" },
  MEMORY_LIMIT = { verdict = "ERROR" },
  OUTPUT_LIMIT = { verdict = "ERROR" },
  INSTRUCTION_LIMIT = { verdict = "ERROR" },
  KILLED = { verdict = "ERROR" },
  BAD_TASK = { verdict = "ERROR" },
  -- outcomes the host observed
  ETIMEDOUT = { verdict = "TIMEOUT" },   -- killed at the task's deadline + grace: its time ran out
  SANDBOX = { verdict = "ERROR", infra = true },     -- the worker could not build its sandbox
  ESPAWN = { verdict = "ERROR", infra = true },      -- the worker could not be started
  ENORESULT = { verdict = "ERROR", infra = true },   -- it exited without a result line
  EBADRESULT = { verdict = "ERROR", infra = true },  -- malformed, duplicated or foreign result line
  EINVAL = { verdict = "ERROR", infra = true },      -- the host could not hand the task over
  EINTERRUPTED = { verdict = "ERROR", infra = true }, -- the host stopped while the job ran
  EINTERNAL = { status = 500, verdict = "ERROR", infra = true, text = "internal error" },
}
for _, e in pairs(CODES) do e.refund = e.infra == true and e.verdict ~= nil end
_M.CODES = CODES

--- The entry of `code`; an unknown code (a class this host does not know,
-- a missing one) is the host's failure: EINTERNAL's meaning.
function _M.get(code)
  return CODES[code] or CODES.EINTERNAL
end

--- A refusal: the response {status, headers, body = {error, code, details}}.
function _M.refusal(code, details, headers, text)
  local e = CODES[code]
  if not (e and e.status) then error("errors.refusal: not a refusal code: " .. tostring(code), 2) end
  return { status = e.status, headers = headers,
    body = { error = text or e.text, code = code, details = details or {} } }
end

--- A refusal that says when to come back (Retry-After, also in details).
function _M.retry_later(code, seconds, details, text)
  details = details or {}
  details.retryAfter = seconds
  return _M.refusal(code, details, { ["retry-after"] = tostring(seconds) }, text)
end

return _M
