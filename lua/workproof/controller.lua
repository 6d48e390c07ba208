-- SPDX-License-Identifier: MIT
--- The notary controller: the HTTP API, the request flow as named stages,
-- policy generations with hot reload, durable jobs, metrics.
--
-- Request flow (config.flow, DESIGN.md): validate -> size -> code_patterns
-- -> rate_limit -> circuit_breaker -> payment -> worker_threshold -> spawn
-- -> result -> attestation -> cleanup. A stage is function(ctx) returning
-- nil to go on, or a response to stop. Operators reorder, remove or add
-- stages in config; a stage that is not built in is a policy with a
-- `stage(conf, ctx)` hook. `cleanup` always runs once a request got past
-- the checks (it releases the worker slot and feeds the breaker).
--
-- Generations (convention 5): a reload builds a complete new generation
-- aside (config + policies + flow), validates it, then swaps one pointer.
-- A request keeps the generation it started with. Host-owned state (rate
-- buckets, breaker, counters, jobs) lives here, outside policies.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local json = require "workproof.json"
local config = require "workproof.config"
local policy = require "workproof.policy"
local schema = require "workproof.schema"
local metrics = require "workproof.metrics"
local store = require "workproof.store"
local worker = require "workproof.worker"

local type, pairs, ipairs, tostring, tonumber, pcall, error, concat =
  type, pairs, ipairs, tostring, tonumber, pcall, error, table.concat

local _M = {}

local S = {
  gen = nil,              -- the current generation
  seq = 0,                -- generations built so far
  policy_state = {},      -- policy name -> host-owned state table
  metrics = metrics.new(),
  db = nil,
  config_path = nil,
  overrides = nil,
  started = host.time(),
  draining = false,
  last_reload = nil,
}
_M.state = S

local JSON_HDR = { ["content-type"] = "application/json" }

local function log(level, msg) host.log(level, msg) end

-- A JSON body: cjson for speed; plain tables only.
local function encode(t) return (cjson.encode(t)) end

local function err_response(status, code, message, details, headers)
  return { status = status, headers = headers,
    body = { error = message, code = code, details = details or {} } }
end

-- Random job ids: 16 bytes from the kernel.
local urandom
local function new_job_id()
  urandom = urandom or assert(io.open("/dev/urandom", "rb"))
  return wp.hex(urandom:read(16))
end

---------------------------------------------------------------------------
-- generations

local function policy_clock() return host.time() end

local function read_all(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local builtin = {}

local function build_generation()
  local t0 = host.now()
  local conf = config.load(S.config_path, S.overrides)
  local gen = { config = conf, policies = {}, flow = {}, files = {} }
  local digest = { read_all(S.config_path or "/dev/null") }
  local names = {}
  for name in pairs(conf.policies) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local pc = conf.policies[name]
    if pc.enabled then
      local file = pc.file or (conf.policies_dir .. "/" .. name .. ".lua")
      local p = policy.load_file(file, {
        clock = policy_clock,
        log = function(level, msg) log(level, "policy " .. name .. ": " .. msg) end,
      })
      local pconf, errs = policy.configure(p, pc.config)
      if not pconf then
        error(file .. ": invalid config for policy '" .. name .. "':\n  "
          .. concat(schema.format_errors(errs), "\n  "), 0)
      end
      gen.policies[name] = { policy = p, conf = pconf, file = file }
      gen.files[#gen.files + 1] = file
      digest[#digest + 1] = read_all(file)
    end
  end
  for i, stage in ipairs(conf.flow) do
    local fn = builtin[stage]
    if not fn then
      local pol = gen.policies[stage]
      if not (pol and type(pol.policy.stage) == "function") then
        error(("flow[%d]: unknown stage '%s' (not built in, and no enabled policy with a stage hook)")
          :format(i, stage), 0)
      end
      local p, pconf = pol.policy, pol.conf
      fn = function(ctx)
        return policy.call(p, "stage", err_response(500, "EPOLICY", "policy stage failed"),
          function(e) log("error", e) end, nil, pconf, ctx)
      end
    end
    gen.flow[i] = { name = stage, fn = fn }
  end
  gen.hash = wp.hex(wp.sha256(concat(digest, "\0"))):sub(1, 12)
  gen.build_ms = (host.now() - t0) * 1000
  return gen
end

--- Build a new generation and swap it in. Returns the generation, or nil and
-- the reason (the old generation keeps serving).
function _M.reload(reason)
  local ok, gen = pcall(build_generation)
  if not ok then
    S.metrics:counter("wp_reloads_total", "Policy/config reloads", { result = "rejected" })
    S.last_reload = { ok = false, error = tostring(gen), reason = reason, at = host.time() }
    log("error", ("reload (%s) rejected, generation %d keeps serving: %s"):format(
      tostring(reason), S.gen and S.gen.id or 0, tostring(gen)))
    return nil, tostring(gen)
  end
  S.seq = S.seq + 1
  gen.id = S.seq
  S.gen = gen   -- the swap: one assignment, no yield in between
  worker.configure { backend = gen.config.worker.backend, grace = gen.config.worker.grace }
  S.metrics:counter("wp_reloads_total", "Policy/config reloads", { result = "accepted" })
  S.metrics:gauge("wp_generation", "Current policy generation", gen.id)
  S.last_reload = { ok = true, generation = gen.id, reason = reason, at = host.time() }
  log("info", ("generation %d (%s) applied in %.1f ms (%s)"):format(gen.id, gen.hash, gen.build_ms,
    tostring(reason)))
  return gen
end

local function pstate(name)
  local st = S.policy_state[name]
  if not st then st = {}; S.policy_state[name] = st end
  return st
end

-- Call hook of the generation's policy `name`; returns `absent` when the
-- policy is disabled or lacks the hook, `fallback` when it raises.
local function hook(gen, name, fn, fallback, absent, ...)
  local pol = gen.policies[name]
  if not pol then return absent end
  return policy.call(pol.policy, fn, fallback, function(e) log("error", e) end, absent, pol.conf, ...)
end

---------------------------------------------------------------------------
-- stages

local function is_hex64(s)
  return type(s) == "string" and #s == 64 and not s:find("[^%x]")
end

local function norm_hash(h)
  if type(h) ~= "string" then return nil end
  return (h:gsub("^0[xX]", "")):lower()
end

function builtin.validate(ctx)
  local gen, req, lim = ctx.gen, ctx.req, ctx.gen.config.limits
  local body = req.body
  if #body > lim.max_body then
    return err_response(413, "ETOOLARGE", "request body too large", { body = "over " .. lim.max_body .. " bytes" })
  end
  if not json.utf8_valid(body) then
    return err_response(400, "EVALIDATION", "invalid request", { body = "invalid UTF-8" })
  end
  local dec = _M.decoder(lim.max_depth)
  local t, perr = dec.decode(body)
  if t == nil then
    local deep = perr and perr:find("nested") and "nesting too deep" or ("malformed JSON: " .. tostring(perr))
    return err_response(400, "EVALIDATION", "invalid request", { body = deep })
  end
  if type(t) ~= "table" or (next(t) ~= nil and t[1] ~= nil) or body:match("^%s*%[") then
    return err_response(400, "EVALIDATION", "invalid request", { body = "expected a JSON object" })
  end
  local details = {}
  local function bad(field, msg) details[field] = msg end

  if type(t.taskType) ~= "string" then bad("taskType", "required string") end
  if type(t.code) ~= "string" then bad("code", "required string")
  elseif t.code == "" then bad("code", "must not be empty") end
  local lang = t.language
  if lang == nil then lang = "javascript" end
  if lang ~= "javascript" and lang ~= "lua" then bad("language", "expected one of: javascript, lua") end
  local expected = t.expectedHash
  if expected ~= nil and expected ~= cjson.null then
    if type(expected) ~= "string" then bad("expectedHash", "expected a string")
    elseif #expected > lim.max_expected_hash then bad("expectedHash", "longer than " .. lim.max_expected_hash)
    elseif not is_hex64(norm_hash(expected)) then bad("expectedHash", "expected 64 hex digits (optional 0x)")
    end
  else
    expected = nil
  end
  local timeout = t.timeoutSeconds
  if timeout == nil then timeout = lim.timeout_default
  elseif type(timeout) ~= "number" or timeout ~= timeout then bad("timeoutSeconds", "expected a number")
  elseif timeout < lim.timeout_min or timeout > lim.timeout_max then
    bad("timeoutSeconds", ("must be between %s and %s"):format(lim.timeout_min, lim.timeout_max))
  end
  local input = t.inputData
  if input ~= nil and input ~= cjson.null and type(input) ~= "table" and type(input) ~= "string"
    and type(input) ~= "number" and type(input) ~= "boolean" then
    bad("inputData", "unsupported value")
  end
  -- the task type registry (a policy): unknown types and missing inputs
  local def
  if type(t.taskType) == "string" then
    local d, ferrs = hook(gen, "task_types", "resolve", nil, { name = t.taskType, input = "inputData" },
      t.taskType, t)
    if d then def = d
    else for k, v in pairs(ferrs or { taskType = "unknown task type" }) do bad(k, v) end end
  end
  if not expected and type(input) == "table" and type(input.expectedOutput) == "string" then
    expected = wp.hex(wp.sha256((input.expectedOutput:gsub("[\r\n]+$", ""))))
  end
  if not expected and not details.expectedHash then
    bad("expectedHash", "required (or inputData.expectedOutput)")
  end
  if next(details) then return err_response(400, "EVALIDATION", "invalid request", details) end

  -- taskHash: JSON.stringify({taskType, code, expectedHash, inputData}) with
  -- inputData in the client's own key order (json.lua)
  local input_ordered
  if input ~= nil then
    local ordered = json.decode_ordered(body, lim.max_depth + 1)
    input_ordered = ordered and ordered.inputData
  end
  local task_json = json.stringify(json.object("taskType", t.taskType, "code", t.code,
    "expectedHash", t.expectedHash ~= cjson.null and t.expectedHash or nil, "inputData", input_ordered))
  ctx.task = t
  ctx.language = lang
  ctx.expected = norm_hash(expected)
  ctx.timeout = timeout
  ctx.def = def
  ctx.task_hash = wp.hex(wp.sha256(task_json))
  ctx.worker_input = hook(gen, "task_types", "worker_input", nil, input, def, t)
  return nil
end

function builtin.size(ctx)
  local max = ctx.gen.config.limits.max_code
  if #ctx.task.code > max then
    return err_response(413, "ETOOLARGE", "code too large", { code = ("over %d bytes"):format(max) })
  end
end

function builtin.code_patterns(ctx)
  local rule, desc = hook(ctx.gen, "code_patterns", "check", nil, nil, ctx.language, ctx.task.code)
  if rule then
    return err_response(400, "EBLOCKED", "code blocked by policy",
      { code = ("blocked by rule '%s'%s"):format(rule, desc and (": " .. desc) or "") })
  end
end

local function client_key(ctx)
  if not ctx.client then
    ctx.client = hook(ctx.gen, "rate_limit", "client_key", ctx.req.peer, ctx.req.peer, ctx.req.peer or "?",
      ctx.req.headers) or "?"
  end
  return ctx.client
end

function builtin.rate_limit(ctx)
  local key = client_key(ctx)
  local action, retry = hook(ctx.gen, "rate_limit", "check", "block", "allow", pstate("rate_limit"), key,
    host.time())
  S.metrics:counter("wp_rate_limit_actions_total", "Rate-limit decisions", { action = tostring(action) })
  if action == "block" or action == "blacklist" then
    retry = math.max(1, math.ceil(tonumber(retry) or 60))
    return err_response(429, "ERATELIMIT", action == "blacklist" and "client blacklisted" or "too many requests",
      { retryAfter = retry }, { ["retry-after"] = tostring(retry) })
  elseif action == "warn" then
    ctx.headers["x-ratelimit-warning"] = "approaching the request limit"
  end
end

function builtin.circuit_breaker(ctx)
  local ok, retry = hook(ctx.gen, "circuit_breaker", "allow", false, true, pstate("circuit_breaker"), host.time())
  if not ok then
    retry = math.max(1, math.ceil(tonumber(retry) or 30))
    return err_response(503, "EBREAKER", "service temporarily unavailable (circuit open)",
      { retryAfter = retry }, { ["retry-after"] = tostring(retry) })
  end
  ctx.breaker_admitted = true
end

function builtin.payment(ctx)
  -- x402 and the legacy tx-hash mode arrive with the chain work; until then a
  -- config that asks for payments is refused at load (config.lua)
  if ctx.gen.config.payments.enabled then
    return err_response(402, "EPAYMENT", "payment required", { payment = "payments are not available in this build" })
  end
end

function builtin.worker_threshold(ctx)
  local ok, why, retry = hook(ctx.gen, "worker_threshold", "admit", false, true, pstate("worker_threshold"),
    client_key(ctx))
  if not ok then
    retry = math.max(1, math.ceil(tonumber(retry) or 5))
    return err_response(503, "ECAPACITY", "worker capacity reached",
      { workers = tostring(why or "capacity") }, { ["retry-after"] = tostring(retry) })
  end
  ctx.admitted = true
end

local function job_response(ctx)
  local r = {
    jobId = ctx.job_id, taskHash = ctx.task_hash, status = "completed", result = ctx.verdict,
    expectedHash = ctx.expected, actualHash = ctx.actual or cjson.null,
    executionTimeMs = ctx.execution_ms or 0,
    totalTimeMs = math.floor((host.now() - ctx.t0) * 1000 + 0.5),
    refundEligible = ctx.refund or false,
    registryTxHash = ctx.registry_tx,
    error = ctx.error_detail,
  }
  return r
end

function builtin.spawn(ctx)
  ctx.job_id = new_job_id()
  if S.db then
    S.db:exec("INSERT INTO jobs(id, status, created, updated, task_hash) VALUES (?, 'running', ?, ?, ?)",
      ctx.job_id, host.time(), host.time(), ctx.task_hash)
  end
  if ctx.async then
    -- answer now; the rest of the flow continues in its own coroutine
    ctx.continue_async = true
    return { status = 202, body = { jobId = ctx.job_id, taskHash = ctx.task_hash, status = "running" } }
  end
end

local function run_worker(ctx)
  local wconf = ctx.gen.config.worker
  local r, err = worker.run({
    jobId = ctx.job_id, language = ctx.language, code = ctx.task.code, input = ctx.worker_input,
    timeoutMs = math.floor(ctx.timeout * 1000), memoryBytes = wconf.memory_bytes,
    outputLimitBytes = wconf.output_limit_bytes,
  })
  ctx.worker_result, ctx.worker_error = r, err
end

-- the worker's own error classes that are the task's fault (no refund)
local TASK_ERRORS = { RUNTIME_ERROR = true, MEMORY_LIMIT = true, OUTPUT_LIMIT = true, INSTRUCTION_LIMIT = true,
  KILLED = true, BAD_TASK = true }

function builtin.result(ctx)
  if not ctx.worker_result and not ctx.worker_error then run_worker(ctx) end
  local r, err = ctx.worker_result, ctx.worker_error
  if not r then
    ctx.infra = true
    if err and err:find("^ETIMEDOUT") then ctx.verdict = "TIMEOUT" else ctx.verdict = "ERROR" end
    ctx.refund = true
    ctx.error_detail = err
    return
  end
  ctx.actual = type(r.actualHash) == "string" and r.actualHash:lower() or nil
  ctx.execution_ms = tonumber(r.executionTimeMs) or 0
  local werr = r.error
  if werr ~= nil and werr ~= cjson.null then
    local class = tostring(werr):match("^([%u_]+)")
    if class == "TIMEOUT" then
      ctx.verdict = "TIMEOUT"
    else
      ctx.verdict = "ERROR"
      ctx.infra = not TASK_ERRORS[class]
      ctx.refund = ctx.infra
    end
    ctx.error_detail = tostring(werr)
    return
  end
  ctx.verdict = (ctx.actual == ctx.expected) and "VALID" or "INVALID"
end

function builtin.attestation(ctx)
  -- on-chain attestations arrive with the chain work (registryTxHash)
  ctx.registry_tx = nil
end

function builtin.cleanup(ctx)
  if ctx.cleaned then return end
  ctx.cleaned = true
  if ctx.admitted then
    hook(ctx.gen, "worker_threshold", "release", nil, nil, pstate("worker_threshold"), ctx.client)
  end
  if ctx.breaker_admitted and ctx.verdict then
    hook(ctx.gen, "circuit_breaker", "record", nil, nil, pstate("circuit_breaker"), host.time(),
      { verdict = ctx.verdict, infra = ctx.infra or false })
  end
  if ctx.verdict then
    S.metrics:counter("wp_verdicts_total", "Verification verdicts", { result = ctx.verdict })
    local resp = job_response(ctx)
    ctx.response_body = resp
    if S.db and ctx.job_id then
      local ok, err = S.db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? WHERE id = ?",
        host.time(), encode(resp), ctx.job_id)
      if not ok then log("error", "job " .. ctx.job_id .. " not stored: " .. tostring(err)) end
    end
  end
end

---------------------------------------------------------------------------
-- the flow runner

local decoders = {}
function _M.decoder(depth)
  local d = decoders[depth]
  if not d then
    d = cjson.new()
    d.decode_max_depth(depth)
    d.decode_invalid_numbers(false)
    decoders[depth] = d
  end
  return d
end

local function run_stages(ctx, from)
  local flow = ctx.gen.flow
  for i = from, #flow do
    local st = flow[i]
    ctx.stage = st.name
    local res = st.fn(ctx)
    if res then
      if ctx.continue_async then
        ctx.continue_async = false
        local resume_at = i + 1
        host.spawn(function()
          local ok, e = pcall(run_stages, ctx, resume_at)
          if not ok then
            log("error", "async job " .. tostring(ctx.job_id) .. " failed: " .. tostring(e))
            ctx.verdict, ctx.refund, ctx.infra, ctx.error_detail = "ERROR", true, true, "internal error"
            builtin.cleanup(ctx)
          end
        end)
        return res
      end
      if st.name ~= "cleanup" and (ctx.admitted or ctx.breaker_admitted) then builtin.cleanup(ctx) end
      return res
    end
  end
  builtin.cleanup(ctx)
  if ctx.response_body then return { status = 200, body = ctx.response_body } end
  return err_response(500, "EFLOW", "the flow ended without a verdict",
    { flow = "check config.flow: it must include spawn, result and cleanup" })
end

local function verify(req)
  if S.draining then
    return err_response(503, "ESHUTDOWN", "shutting down", nil, { ["retry-after"] = "5" })
  end
  local ctx = { req = req, gen = S.gen, t0 = host.now(), headers = {} }
  local prefer = req.headers.prefer
  ctx.async = prefer ~= nil and prefer:lower():find("respond%-async") ~= nil
  local ok, res = pcall(run_stages, ctx, 1)
  if not ok then
    log("error", "verify failed in stage " .. tostring(ctx.stage) .. ": " .. tostring(res))
    if ctx.job_id then
      ctx.verdict, ctx.refund, ctx.infra, ctx.error_detail = "ERROR", true, true, "internal error"
    end
    pcall(builtin.cleanup, ctx)
    if ctx.response_body then return { status = 200, body = ctx.response_body, headers = ctx.headers } end
    return err_response(500, "EINTERNAL", "internal error")
  end
  res.headers = res.headers or {}
  for k, v in pairs(ctx.headers) do res.headers[k] = v end
  return res
end

local function get_job(id)
  if not id:find("^%x+$") or #id > 64 then return err_response(404, "ENOTFOUND", "no such job") end
  local row = S.db and S.db:row("SELECT status, response, task_hash FROM jobs WHERE id = ?", id)
  if not row then return err_response(404, "ENOTFOUND", "no such job") end
  if row.status == "running" then
    return { status = 200, body = { jobId = id, taskHash = row.task_hash, status = "running" } }
  end
  return { status = 200, raw = row.response }
end

--- Jobs that were running when a previous host died: ERROR, refundable.
function _M.recover_jobs()
  if not S.db then return 0 end
  local rows = S.db:exec("SELECT id, task_hash, created FROM jobs WHERE status = 'running'") or {}
  for _, r in ipairs(rows) do
    local resp = {
      jobId = r.id, taskHash = r.task_hash, status = "completed", result = "ERROR",
      refundEligible = true, error = "host stopped while the job was running",
      actualHash = cjson.null, executionTimeMs = 0, totalTimeMs = 0,
    }
    S.db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? WHERE id = ?",
      host.time(), encode(resp), r.id)
  end
  if #rows > 0 then
    log("warn", ("%d job(s) interrupted by a previous stop marked ERROR (refundable)"):format(#rows))
  end
  return #rows
end

function _M.open_store(path)
  os.execute("mkdir -p '" .. (path:match("^(.*)/[^/]*$") or ".") .. "'")
  local db, err = store.open(path)
  if not db then return nil, err end
  local ok, e = db:exec([[CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL, updated REAL, task_hash TEXT, response TEXT)]])
  if not ok then return nil, e end
  S.db = db
  return db
end

---------------------------------------------------------------------------
-- routes

local function is_loopback(ip)
  return ip and (ip:find("^127%.") or ip == "::1" or ip:find("^::ffff:127%.")) ~= nil
end

local function info()
  local gen = S.gen
  return { status = 200, body = {
    version = wp.version,
    generation = gen.id,
    features = {
      backend = gen.config.worker.backend,
      languages = { "javascript", "lua" },
      payments = gen.config.payments.enabled,
      chain = gen.config.chain.enabled,
      asyncMode = true,
    },
    flow = gen.config.flow,
    policies = (function()
      local t = {}
      for name in pairs(gen.policies) do t[#t + 1] = name end
      table.sort(t)
      return t
    end)(),
  } }
end

local function render_metrics()
  local m = S.metrics
  local ws = worker.stats()
  m:gauge("wp_workers_active", "Workers running now", ws.active)
  for _, k in ipairs({ "spawned", "finished", "timed_out", "crashed", "reaped", "spawn_failed" }) do
    m:gauge("wp_workers_" .. k, "Worker lifecycle count: " .. k, ws[k])
  end
  local bs = hook(S.gen, "circuit_breaker", "status", "unknown", "disabled", pstate("circuit_breaker"), host.time())
  for _, s in ipairs({ "closed", "open", "half_open" }) do
    m:gauge("wp_breaker_state", "Circuit breaker state (1 = current)", bs == s and 1 or 0, { state = s })
  end
  m:gauge("wp_uptime_seconds", "Seconds since the host started", host.time() - S.started)
  return { status = 200, headers = { ["content-type"] = "text/plain; version=0.0.4" }, raw = m:render() }
end

local HEALTH = '{"status":"ok"}'

local function route(req)
  local path, method = req.path, req.method
  if path == "/health" then
    if method ~= "GET" and method ~= "HEAD" then return nil, "GET, HEAD" end
    return { status = 200, raw = HEALTH }, "/health"
  elseif path == "/verify" then
    if method ~= "POST" then return nil, "POST" end
    return verify(req), "/verify"
  elseif path:find("^/verify/") then
    if method ~= "GET" then return nil, "GET" end
    return get_job(path:sub(9)), "/verify/:id"
  elseif path == "/info" then
    if method ~= "GET" then return nil, "GET" end
    return info(), "/info"
  elseif path == "/metrics" then
    if method ~= "GET" then return nil, "GET" end
    return render_metrics(), "/metrics"
  elseif path == "/admin/reload" then
    if method ~= "POST" then return nil, "POST" end
    if not is_loopback(req.peer) then
      return err_response(403, "EFORBIDDEN", "admin endpoints answer loopback clients only"), "/admin/reload"
    end
    local gen, err = _M.reload("POST /admin/reload")
    if gen then
      return { status = 200, body = { accepted = true, generation = gen.id, hash = gen.hash } }, "/admin/reload"
    end
    return { status = 400, body = { accepted = false, generation = S.gen.id, error = err } }, "/admin/reload"
  end
  return err_response(404, "ENOTFOUND", "no such route"), "other"
end

--- The HTTP handler given to host.http_listen.
function _M.handle(req)
  local t0 = host.now()
  local res, label = route(req)
  if not res then   -- known path, wrong method
    res = err_response(405, "EMETHOD", "method not allowed", nil, { allow = label })
    label = req.path
  end
  local body = res.raw or encode(res.body)
  local headers = res.headers or {}
  if not headers["content-type"] then headers["content-type"] = JSON_HDR["content-type"] end
  S.metrics:counter("wp_http_requests_total", "HTTP requests", { route = label, status = tostring(res.status) })
  S.metrics:observe("wp_http_request_seconds", "HTTP request latency", host.now() - t0, { route = label })
  return res.status, headers, body
end

return _M
