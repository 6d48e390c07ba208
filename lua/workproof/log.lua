-- SPDX-License-Identifier: MIT
--- Logging settings and the per-request pieces of the controller's logs
-- (docs/operations.md, Logging): the config's `log_level`, `log_format`
-- and `access_log` applied to the host's logger (host.log_configure; the
-- WORKPROOF_LOG and WORKPROOF_LOG_FORMAT environment variables win), the
-- request id (X-Request-Id), and the fields of an access line.
local host = require "workproof.host"

local type, floor = type, math.floor

local _M = {}

--- Write an access line per request? (config `access_log`, and the level
-- lets info lines through). Read on every request: a plain field.
_M.access = true

--- Apply a config's logging settings; returns the effective level and
-- format (the environment may override the config).
function _M.configure(conf)
  local level, format = host.log_configure { level = conf.log_level, format = conf.log_format }
  _M.access = conf.access_log ~= false and host.log_enabled("info")
  return level, format
end

--- Is `v` an acceptable client-sent request id: a string of 1 to 128
-- printable ASCII characters other than the space (so it stays one word
-- in text logs and a safe header value)?
function _M.valid_request_id(v)
  return type(v) == "string" and #v >= 1 and #v <= 128 and not v:find("[^\33-\126]")
end

--- The request id of a request whose X-Request-Id header is `v`: `v`
-- when it is acceptable, else a fresh one (16 random bytes, hex).
function _M.request_id(v)
  if _M.valid_request_id(v) then return v end
  return host.request_id() or "-"
end

--- Milliseconds from seconds, rounded to the microsecond (short log text).
function _M.ms(seconds)
  return floor(seconds * 1e6 + 0.5) / 1e3
end

--- The fields of the access line of a request answered with `res` (a route
-- response: status, body or raw) whose body is `bytes` long, after
-- `seconds`. jobId and verdict come from the response's JSON document
-- (POST /verify, GET /verify/{id}) when it has them, or from the
-- response's own job_id and verdict (a stored document sent raw), and
-- code from a refusal's (workproof.errors).
function _M.access_fields(req, res, bytes, seconds)
  local doc = res.body
  local job, verdict, code = res.job_id, res.verdict, nil
  if type(doc) == "table" then
    job, verdict, code = job or doc.jobId, verdict or doc.result, doc.code
    if type(job) ~= "string" then job = nil end
    if type(verdict) ~= "string" then verdict = nil end
    if type(code) ~= "string" then code = nil end
  end
  return {
    client = req.peer or "-", method = req.method, path = req.path, status = res.status,
    bytes = bytes, ms = _M.ms(seconds), requestId = req.request_id, jobId = job, verdict = verdict,
    code = code,
  }
end

return _M
