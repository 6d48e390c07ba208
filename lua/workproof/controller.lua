-- SPDX-License-Identifier: MIT
--- The notary controller: the HTTP API, the request flow as named stages,
-- policy generations with hot reload, durable jobs, metrics.
--
-- Request flow (config.flow, DESIGN.md): validate -> size -> rate_limit
-- -> code_patterns (after the limiter: the scan costs ~ms per 100 KB)
-- -> circuit_breaker -> payment -> worker_threshold -> spawn
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
local flow_shape = require "workproof.flow"
local fs = require "workproof.fs"
local policy = require "workproof.policy"
local schema = require "workproof.schema"
local metrics = require "workproof.metrics"
local store = require "workproof.store"
local worker = require "workproof.worker"
local owner = require "workproof.owner"
local x402 = require "workproof.x402"

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
        -- a policy that loops or allocates without bound is stopped: the
        -- hook's fallback answers (load: the reload is rejected)
        budget = conf.policy_budget,
        on_budget = function(hook_name)
          S.metrics:counter("wp_policy_budget_exceeded_total", "Policy calls stopped by policy_budget",
            { policy = name, hook = hook_name })
        end,
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
  local fok, ferr = flow_shape.check(conf.flow, { payments = conf.payments.enabled })
  if not fok then error((S.config_path or "config") .. ": " .. ferr, 0) end
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
  worker.configure { backend = gen.config.worker.backend, grace = gen.config.worker.grace,
    worker = gen.config.worker.path or (host.build_dir .. "/workproof-worker") }
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
  -- what cjson accepts but JavaScript reads differently (1e400 -> Infinity,
  -- 01, raw control characters) would make the task see something else than
  -- the taskHash commits to: the client's input, a 400, never a worker error
  local fin, why = json.representable(t.inputData, "inputData")
  if not fin then return err_response(400, "EVALIDATION", "invalid request", { inputData = why }) end
  local js_ok, js_why = json.check_js(body)
  if not js_ok then
    return err_response(400, "EVALIDATION", "invalid request", { body = "JavaScript reads it differently: " .. js_why })
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
  local request_hash = t.requestHash
  if request_hash ~= nil and request_hash ~= cjson.null then
    if not is_hex64(norm_hash(request_hash)) then bad("requestHash", "expected 64 hex digits (optional 0x)") end
  else
    request_hash = nil
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

  ctx.task = t
  ctx.language = lang
  ctx.expected = norm_hash(expected)
  ctx.timeout = timeout
  ctx.def = def
  ctx.request_hash = request_hash and norm_hash(request_hash)
  ctx.worker_input = hook(gen, "task_types", "worker_input", nil, input, def, t)
  return nil
end

-- The request's own text of inputData (nil when absent): what the taskHash
-- commits to and what the worker gets, numbers and key order as written.
local function input_text(ctx)
  if ctx.input_text == nil then
    ctx.input_text = false
    if ctx.task.inputData ~= nil then
      local body = ctx.req.body
      local a, b = json.member(body, "inputData")
      if not a then error("inputData not found in a validated body: " .. tostring(b)) end
      ctx.input_text = body:sub(a, b)
    end
  end
  return ctx.input_text or nil
end

-- taskHash: SHA-256 of what JavaScript prints for
-- JSON.stringify({taskType, code, expectedHash, inputData, [language]}) after
-- JSON.parse of the body (json.task_json; docs/http-api.md). Computed when
-- the job is created, not in `validate`, so the rejection paths stay cheap.
local function task_hash(ctx)
  local task_json, err = json.task_json(ctx.req.body, ctx.language, ctx.gen.config.limits.max_depth + 1)
  if not task_json then error("taskHash of a validated body: " .. tostring(err)) end
  return wp.hex(wp.sha256(task_json))
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

local function payment_required(ctx, why, detail)
  local pay = S.pay
  local url = "http://" .. (ctx.req.authority ~= "" and ctx.req.authority or "localhost") .. "/verify"
  local body = { error = "payment required", code = "EPAYMENT",
    details = { payment = detail and (why .. ": " .. detail) or why } }
  local headers = {}
  if pay.x402 then
    headers["payment-required"] = x402.required_header(pay.x402, url, why)
    local v1 = x402.required_v1(pay.x402, url, why)
    body.x402Version, body.accepts = v1.x402Version, v1.accepts
  end
  if pay.txhash then
    body.txhash = { header = "X-402-Payment", payTo = pay.txhash.pay_to, amountWei = pay.txhash.amount_wei,
      confirmations = pay.txhash.confirmations }
  end
  return { status = 402, body = body, headers = headers }
end

local function payment_unavailable(ctx, msg)
  ctx.infra = true
  log("warn", "payment verification unavailable: " .. tostring(msg))
  return err_response(503, "EPAYMENT_UNAVAILABLE", "payment verification unavailable, not charged",
    { payment = "the chain cannot be reached; retry later" }, { ["retry-after"] = "5" })
end

-- Replay records belong to one chain, named by its id and genesis block
-- hash: a fresh development chain (same id, new genesis) starts clean while
-- a real chain's records stay forever. Read once, then cached.
local function chain_scope()
  return (S.chain:scope())
end

-- Verify before any worker spawns; settle only after a VALID/INVALID verdict
-- (builtin.settle). An infrastructure failure is never charged.
function builtin.payment(ctx)
  if not ctx.gen.config.payments.enabled then return end
  local pay, hdr = S.pay, ctx.req.headers
  if not pay then return payment_unavailable(ctx, "payments enabled but the chain is not set up") end
  local sig = hdr["payment-signature"] or hdr["x-payment"]
  local legacy = hdr["x-402-payment"]
  if sig and pay.x402 then
    local p, reason, msg = x402.decode(sig)
    if not p then return payment_required(ctx, reason, msg) end
    local payer
    payer, reason, msg = x402.check(pay.x402, p, host.time())
    if not payer then return payment_required(ctx, reason, msg) end
    if pay.x402.facilitator then
      -- the facilitator is authoritative for the on-chain checks
      local v, ferr = x402.facilitator(pay.x402, "/verify", p)
      if not v then return payment_unavailable(ctx, ferr) end
      if not v.isValid then return payment_required(ctx, tostring(v.invalidReason), "refused by the facilitator") end
    else
      local ok
      ok, reason, msg = x402.check_chain(pay.x402, p, S.rpc)
      if not ok then
        if reason == "unexpected_verify_error" then return payment_unavailable(ctx, msg) end
        return payment_required(ctx, reason, msg)
      end
    end
    local scope = chain_scope()
    if not scope then return payment_unavailable(ctx, "cannot read the chain's genesis block") end
    local key = scope .. ":x402:" .. payer:lower() .. ":" .. wp.hex(p.nonce)
    local ins = S.db:exec("INSERT OR IGNORE INTO payments(id, kind, payer, amount, status, created) VALUES "
      .. "(?, 'x402', ?, ?, 'reserved', ?)", key, payer, p.authorization.value, host.time())
    if ins ~= 1 then return payment_required(ctx, "invalid_transaction_state", "authorization nonce already used") end
    ctx.payment = { kind = "x402", id = key, pay = p, payer = payer, version = p.version }
  elseif legacy and pay.txhash then
    local info, err, infra = x402.check_legacy(pay.txhash, legacy, S.rpc)
    if not info then
      if infra then return payment_unavailable(ctx, err) end
      return payment_required(ctx, "invalid_payment", err)
    end
    local scope = chain_scope()
    if not scope then return payment_unavailable(ctx, "cannot read the chain's genesis block") end
    local key = scope .. ":tx:" .. info.hash
    -- consumed atomically, shared by every host process on this store
    local ins = S.db:exec("INSERT OR IGNORE INTO payments(id, kind, payer, amount, status, created) VALUES "
      .. "(?, 'txhash', ?, ?, 'consumed', ?)", key, info.payer, info.value, host.time())
    if ins ~= 1 then return payment_required(ctx, "invalid_payment", "this transaction hash was already used") end
    ctx.payment = { kind = "txhash", id = key, info = info, payer = info.payer }
  else
    return payment_required(ctx, "payment required")
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
    attestation = ctx.attestation,
    refundTxHash = ctx.refund_tx,
    error = ctx.error_detail,
  }
  return r
end

function builtin.spawn(ctx)
  ctx.job_id = new_job_id()
  ctx.task_hash = ctx.task_hash or task_hash(ctx)
  if S.db then
    S.db:exec("INSERT INTO jobs(id, status, created, updated, task_hash, owner) VALUES (?, 'running', ?, ?, ?, ?)",
      ctx.job_id, host.time(), host.time(), ctx.task_hash, owner.self().id)
  end
  if ctx.async then
    -- answer now; the rest of the flow continues in its own coroutine
    ctx.continue_async = true
    return { status = 202, body = { jobId = ctx.job_id, taskHash = ctx.task_hash, status = "running" } }
  end
end

local function run_worker(ctx)
  local wconf = ctx.gen.config.worker
  -- the request's inputData itself goes as its own text (exact numbers, key
  -- order, -0); a value the task_types policy built goes as that value
  local input, input_json = ctx.worker_input, nil
  if input ~= nil and rawequal(input, ctx.task.inputData) then input, input_json = nil, input_text(ctx) end
  local r, err = worker.run({
    jobId = ctx.job_id, language = ctx.language, code = ctx.task.code, input = input, inputJson = input_json,
    timeoutMs = math.floor(ctx.timeout * 1000), memoryBytes = wconf.memory_bytes,
    outputLimitBytes = wconf.output_limit_bytes,
  })
  ctx.worker_result, ctx.worker_error = r, err
end

-- The worker's enumerated errorClass (worker/worker.h, "error classes"),
-- decided from what the worker observed, never from text the task wrote:
-- true = the task's fault (ERROR, no refund). TIMEOUT is its own verdict;
-- SANDBOX, and a class missing or unknown, are infrastructure (refund).
local TASK_ERRORS = { RUNTIME_ERROR = true, MEMORY_LIMIT = true, OUTPUT_LIMIT = true, INSTRUCTION_LIMIT = true,
  KILLED = true, BAD_TASK = true }

function builtin.result(ctx)
  if not ctx.worker_result and not ctx.worker_error then run_worker(ctx) end
  local r, err = ctx.worker_result, ctx.worker_error
  if not r then
    ctx.error_detail = err
    if err and err:find("^ETIMEDOUT") then
      -- the host killed the worker at the task's deadline plus grace: the
      -- task's own time ran out (a loop the worker did not stop in time on
      -- a loaded machine). Code and timeout are the client's: a TIMEOUT,
      -- never an infrastructure failure a client could open the breaker with
      ctx.verdict = "TIMEOUT"
      return
    end
    ctx.infra, ctx.refund, ctx.verdict = true, true, "ERROR"
    return
  end
  ctx.actual = type(r.actualHash) == "string" and r.actualHash:lower() or nil
  ctx.execution_ms = tonumber(r.executionTimeMs) or 0
  local werr = r.error
  if werr ~= nil and werr ~= cjson.null then
    -- the class field, not the text: "RUNTIME_ERROR: TIMEOUT" stays an error
    local class = r.errorClass
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

-- Write VALID / INVALID verdicts to the registry through the outbox. The
-- request waits up to chain.wait_receipt seconds for the receipt; after
-- that the attestation is reported pending and still lands (the outbox).
function builtin.attestation(ctx)
  local cc = ctx.gen.config.chain
  if not (cc.enabled and S.chain) or (ctx.verdict ~= "VALID" and ctx.verdict ~= "INVALID") then return end
  local proof = encode({ jobId = ctx.job_id, taskHash = ctx.task_hash, expectedHash = ctx.expected,
    actualHash = ctx.actual, executionTimeMs = ctx.execution_ms, backend = ctx.gen.config.worker.backend,
    verdict = ctx.verdict, language = ctx.language })
  local data
  if ctx.request_hash and S.erc8004 then
    -- the registry also answers the ERC-8004 Validation Registry's request
    data = wp.abi.encode_call("attestValidationFor(bytes32,bytes32,string,bool,bytes)",
      { wp.unhex(ctx.request_hash), wp.unhex(ctx.task_hash), cc.method, ctx.verdict == "VALID", proof })
  else
    data = wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
      { wp.unhex(ctx.task_hash), cc.method, ctx.verdict == "VALID", proof })
  end
  local id, err = S.chain:enqueue("attest", ctx.job_id, { to = S.registry, data = data })
  if not id then
    log("error", "attestation for job " .. ctx.job_id .. " not queued: " .. tostring(err))
    ctx.attestation = "failed"
    return
  end
  local row = S.chain:wait(id, cc.wait_receipt)
  if row and row.status == "mined" then
    ctx.registry_tx = row.tx_hash
    ctx.attestation = "mined"
  else
    ctx.attestation = row and row.status or "pending"
  end
end

-- Settle or refund after the verdict (x402: transferWithAuthorization by
-- the controller; legacy: a refund transfer on infrastructure failure).
function builtin.settle(ctx)
  local p = ctx.payment
  if not p or ctx.settled then return end
  ctx.settled = true
  local charge = (ctx.verdict == "VALID" or ctx.verdict == "INVALID") and not ctx.infra
  if p.kind == "x402" then
    if not charge then
      S.db:exec("DELETE FROM payments WHERE id = ? AND status = 'reserved'", p.id)
      return
    end
    local row, ok
    if S.pay.x402.facilitator then
      local s = x402.facilitator(S.pay.x402, "/settle", p.pay)
      ok = s and s.success == true
      row = { tx_hash = s and s.transaction ~= "" and s.transaction or nil }
      if not ok then
        log("error", "facilitator settlement failed: " .. (s and tostring(s.errorReason) or "unreachable"))
      end
    else
      local id = S.chain:enqueue("settle", p.id, { to = S.pay.x402.asset, data = x402.settle_calldata(p.pay) })
      row = id and S.chain:wait(id, ctx.gen.config.chain.wait_receipt)
      ok = row and row.status == "mined"
    end
    S.db:exec("UPDATE payments SET status = ?, tx_hash = ? WHERE id = ?", ok and "settled" or "settling",
      row and row.tx_hash, p.id)
    local resp = x402.response_header({ success = ok or false, transaction = row and row.tx_hash or "",
      network = S.pay.x402.network, payer = p.payer, errorReason = (not ok) and "settlement pending" or nil })
    ctx.headers["payment-response"] = resp
    if p.version == 1 then ctx.headers["x-payment-response"] = resp end
  elseif p.kind == "txhash" and ctx.refund then
    local id = S.chain:enqueue("refund", p.id, { to = p.payer, data = "", value = p.info.value, gas = "21000" })
    local row = id and S.chain:wait(id, ctx.gen.config.chain.wait_receipt)
    ctx.refund_tx = row and row.tx_hash
    S.db:exec("UPDATE payments SET status = 'refunded', tx_hash = ? WHERE id = ?", ctx.refund_tx, p.id)
  end
end

function builtin.cleanup(ctx)
  if ctx.cleaned then return end
  ctx.cleaned = true
  if ctx.admitted then
    hook(ctx.gen, "worker_threshold", "release", nil, nil, pstate("worker_threshold"), ctx.client)
  end
  pcall(builtin.settle, ctx)
  if ctx.breaker_admitted and (ctx.verdict or ctx.infra) then
    hook(ctx.gen, "circuit_breaker", "record", nil, nil, pstate("circuit_breaker"), host.time(),
      { verdict = ctx.verdict, infra = ctx.infra or false })
  elseif ctx.breaker_admitted then
    -- stopped later in the flow (payment, capacity): no outcome to report,
    -- but a half-open probe slot must not wait for its timeout
    hook(ctx.gen, "circuit_breaker", "abandon", nil, nil, pstate("circuit_breaker"), host.time())
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
      if st.name ~= "cleanup" and (ctx.admitted or ctx.breaker_admitted or ctx.payment) then builtin.cleanup(ctx) end
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

--- Jobs that were running when their host died: ERROR, refundable. Host
-- processes sharing the store own their jobs (jobs.owner, an instance in
-- the hosts table): only a DEAD owner's jobs are marked (its pid gone or
-- naming another process, workproof.owner); a live one's run on. Dead
-- instances' rows are then forgotten. Returns the number marked.
function _M.recover_jobs()
  if not S.db then return 0 end
  local me = owner.self().id
  local rows = S.db:exec([[SELECT j.id, j.task_hash, j.owner, h.pid, h.start, h.boot
    FROM jobs j LEFT JOIN hosts h ON h.id = j.owner WHERE j.status = 'running']]) or {}
  local n = 0
  for _, r in ipairs(rows) do
    if r.owner ~= me and not owner.alive(r.pid, r.start, r.boot) then
      local resp = {
        jobId = r.id, taskHash = r.task_hash, status = "completed", result = "ERROR",
        refundEligible = true, error = "host stopped while the job was running",
        actualHash = cjson.null, executionTimeMs = 0, totalTimeMs = 0,
      }
      local changed = S.db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? "
        .. "WHERE id = ? AND status = 'running'", host.time(), encode(resp), r.id)
      if changed == 1 then n = n + 1 end
    end
  end
  for _, h in ipairs(S.db:exec("SELECT id, pid, start, boot FROM hosts") or {}) do
    if h.id ~= me and not owner.alive(h.pid, h.start, h.boot) then
      S.db:exec("DELETE FROM hosts WHERE id = ?", h.id)
    end
  end
  if n > 0 then
    log("warn", ("%d job(s) interrupted by a stopped host marked ERROR (refundable)"):format(n))
  end
  return n
end

--- Forget this instance in the store (a clean stop, before closing it).
function _M.release_instance()
  if S.db then S.db:exec("DELETE FROM hosts WHERE id = ?", owner.self().id) end
end

function _M.open_store(path)
  local made, merr = fs.mkdir_p(fs.dirname(path))
  if not made then return nil, merr end
  local db, err = store.open(path)
  if not db then return nil, err end
  local ok, e = db:exec([[CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL, updated REAL, task_hash TEXT, response TEXT,
    owner TEXT)]])
  if not ok then return nil, e end
  -- stores made before jobs had owners: add the column (another process
  -- migrating at the same time makes ours fail; the column is then there)
  local function has_owner()
    for _, c in ipairs(db:exec("PRAGMA table_info(jobs)") or {}) do
      if c.name == "owner" then return true end
    end
    return false
  end
  if not has_owner() then
    ok, e = db:exec("ALTER TABLE jobs ADD COLUMN owner TEXT")
    if not ok and not has_owner() then return nil, e end
  end
  -- the host processes using this store: jobs.owner names one
  ok, e = db:exec([[CREATE TABLE IF NOT EXISTS hosts(
    id TEXT PRIMARY KEY, pid INTEGER NOT NULL, start TEXT NOT NULL, boot TEXT, started REAL)]])
  if not ok then return nil, e end
  local me = owner.self()
  ok, e = db:exec("INSERT OR REPLACE INTO hosts(id, pid, start, boot, started) VALUES (?, ?, ?, ?, ?)",
    me.id, me.pid, me.start, me.boot, host.time())
  if not ok then return nil, e end
  ok, e = db:exec([[CREATE TABLE IF NOT EXISTS payments(
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, payer TEXT, amount TEXT, status TEXT NOT NULL,
    tx_hash TEXT, job_id TEXT, created REAL)]])
  if not ok then return nil, e end
  S.db = db
  return db
end

--- Connect the chain client and resolve payment settings (at start; chain
-- settings take effect at the next start, not on reload).
function _M.setup_chain(conf)
  local cc, pc = conf.chain, conf.payments
  if not cc.enabled then return true end
  local rpc = require("workproof.rpc").new(cc.rpc, { timeout = 10 })
  local dep
  if cc.deployment then
    dep = cjson.decode(read_all(cc.deployment))
    if type(dep) ~= "table" then return nil, "cannot read the deployment " .. cc.deployment end
  end
  local chain_id = cc.chain_id or (dep and dep.chainId)
  if not chain_id then return nil, "chain.chain_id (or chain.deployment) is required" end
  local remote = rpc:call("eth_chainId", {})
  if remote and tonumber(remote) ~= chain_id then
    return nil, ("the node at %s is chain %s, the config says %d"):format(cc.rpc, tostring(tonumber(remote)), chain_id)
  elseif not remote then
    log("warn", "the chain at " .. cc.rpc .. " does not answer yet; writes wait in the outbox")
  end
  local client, err = require("workproof.chain").new { rpc = rpc, db = S.db, chain_id = chain_id,
    key = { file = cc.key_file, env = cc.key_env }, reprice_after = cc.reprice_after,
    stuck_after = cc.stuck_after, reorg_depth = cc.reorg_depth }
  if not client then return nil, err end
  S.rpc, S.chain, S.chain_id = rpc, client, chain_id
  S.registry = cc.registry or (dep and dep.contracts and dep.contracts.ValidationRegistry
    and dep.contracts.ValidationRegistry.address)
  if not S.registry then return nil, "chain.registry (or chain.deployment) is required" end
  local e8 = cc.erc8004 or (dep and dep.erc8004ValidationRegistry)
  S.erc8004 = e8 and not e8:find("^0x0+$") and e8 or nil
  if pc.enabled then
    S.pay = {}
    if pc.x402.enabled then
      local x = pc.x402
      local token = dep and dep.token or {}
      S.pay.x402 = {
        network = x.network or ("eip155:" .. chain_id), chain_id = chain_id,
        asset = x.asset or token.address, amount = x.amount, pay_to = x.pay_to or client.address,
        token_name = token.name or x.token_name, token_version = token.version or x.token_version,
        max_timeout_seconds = x.max_timeout_seconds, min_validity_seconds = x.min_validity_seconds,
        facilitator = x.facilitator,
      }
      if not S.pay.x402.asset then return nil, "payments.x402.asset (or chain.deployment) is required" end
    end
    if pc.txhash.enabled then
      S.pay.txhash = { pay_to = pc.txhash.pay_to or client.address, amount_wei = pc.txhash.amount_wei,
        confirmations = pc.txhash.confirmations }
    end
  end
  client:kick()   -- drain what a previous run left in the outbox
  log("info", ("chain %d at %s: signer %s, registry %s"):format(chain_id, cc.rpc, client.address, S.registry))
  return true
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
    chain = S.chain and { chainId = S.chain_id, rpc = gen.config.chain.rpc, registry = S.registry,
      verifier = S.chain.address } or nil,
    payment = S.pay and {
      x402 = S.pay.x402 and { network = S.pay.x402.network, asset = S.pay.x402.asset,
        amount = S.pay.x402.amount, payTo = S.pay.x402.pay_to } or nil,
      txhash = S.pay.txhash and { payTo = S.pay.txhash.pay_to, amountWei = S.pay.txhash.amount_wei,
        confirmations = S.pay.txhash.confirmations } or nil,
    } or nil,
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
  local rl = hook(S.gen, "rate_limit", "stats", nil, nil, pstate("rate_limit"), host.time())
  if type(rl) == "table" then
    for _, k in ipairs({ "tracked", "blocked", "blacklisted" }) do
      m:gauge("wp_rate_limit_" .. k, "Rate-limit clients " .. k, tonumber(rl[k]) or 0)
    end
  end
  if S.chain then
    m:gauge("wp_outbox_pending", "Chain writes waiting in the outbox", S.chain:pending_count())
    local states = S.chain:states()
    for _, s in ipairs(S.chain.STATES) do
      m:gauge("wp_outbox_rows", "Outbox rows by state", states[s] or 0, { state = s })
    end
    m:gauge("wp_outbox_oldest_unmined_seconds", "Age of the oldest outbox row not yet mined (0: none)",
      S.chain:oldest_unmined())
    for _, k in ipairs({ "conflicts", "reorgs", "repriced", "resent", "stuck_warnings" }) do
      m:counter_total("wp_outbox_" .. k .. "_total", "Outbox events since start: " .. k, nil, S.chain.stats[k])
    end
  end
  if S.server then   -- /health is answered in C (srv:static), counted there
    m:counter_total("wp_http_static_requests_total", "Requests answered in C without Lua",
      'route="/health"', S.server:static_hits("/health"))
    local cs = S.server:stats()   -- connection budgets, counted in C
    m:gauge("wp_http_connections_open", "HTTP connections open now", cs.connections)
    m:gauge("wp_http_clients", "Clients (IPv4 address or IPv6 /64) with a connection open", cs.clients)
    m:counter_total("wp_http_connections_accepted_total", "HTTP connections accepted", nil, cs.accepted)
    for _, r in ipairs({ "per_client", "fd_reserve" }) do
      m:counter_total("wp_http_connections_rejected_total", "HTTP connections refused at accept (503, closed)",
        ('reason="%s"'):format(r), cs["rejected_" .. r])
    end
    for _, p in ipairs({ "header", "body" }) do
      m:counter_total("wp_http_connections_timed_out_total", "HTTP connections closed for a slow request",
        ('phase="%s"'):format(p), cs["timeout_" .. p])
    end
    if cs.fds_open then m:gauge("wp_process_open_fds", "Descriptors open now", cs.fds_open) end
    if cs.fd_limit then m:gauge("wp_process_max_fds", "RLIMIT_NOFILE (soft)", cs.fd_limit) end
  end
  m:gauge("wp_uptime_seconds", "Seconds since the host started", host.time() - S.started)
  return { status = 200, headers = { ["content-type"] = "text/plain; version=0.0.4" }, raw = m:render() }
end

local HEALTH = '{"status":"ok"}'
_M.HEALTH = HEALTH
local label_keys = {}

-- Returns the response and the route's PATTERN (the metrics label: a
-- fixed set, never the request path), or nil, pattern, allowed methods for
-- a known route asked with the wrong method (405).
local function route(req)
  local path, method = req.path, req.method
  if path == "/health" then
    if method ~= "GET" and method ~= "HEAD" then return nil, "/health", "GET, HEAD" end
    return { status = 200, raw = HEALTH }, "/health"
  elseif path == "/verify" then
    if method ~= "POST" then return nil, "/verify", "POST" end
    return verify(req), "/verify"
  elseif path:find("^/verify/") then
    if method ~= "GET" then return nil, "/verify/:id", "GET" end
    return get_job(path:sub(9)), "/verify/:id"
  elseif path == "/info" then
    if method ~= "GET" then return nil, "/info", "GET" end
    return info(), "/info"
  elseif path == "/outbox" or path:find("^/outbox/") then
    if method ~= "GET" then return nil, "GET" end
    local label = path == "/outbox" and "/outbox" or "/outbox/:id"
    if not S.chain then return err_response(404, "ENOTFOUND", "the chain is not enabled"), label end
    if path == "/outbox" then return { status = 200, body = S.chain:summary() }, label end
    local id = path:match("^/outbox/(%d+)$")
    local row = id and #id <= 15 and S.chain:describe(tonumber(id))
    if not row then return err_response(404, "ENOTFOUND", "no such outbox row"), label end
    return { status = 200, body = row }, label
  elseif path == "/metrics" then
    if method ~= "GET" then return nil, "/metrics", "GET" end
    return render_metrics(), "/metrics"
  elseif path == "/admin/reload" then
    if method ~= "POST" then return nil, "/admin/reload", "POST" end
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
  local res, label, allow = route(req)
  if not res then   -- known route, wrong method: labelled with its pattern
    res = err_response(405, "EMETHOD", "method not allowed", nil, { allow = allow })
  end
  local body = res.raw or encode(res.body)
  local headers = res.headers or {}
  if not headers["content-type"] then headers["content-type"] = JSON_HDR["content-type"] end
  -- label keys formatted once per (route, status): this runs on every
  -- request. Routes are route() patterns, statuses HTTP codes: a fixed set,
  -- so the page stays bounded whatever clients send.
  local keys = label_keys[label]
  if not keys then
    keys = { route = metrics.key({ route = label }) }
    label_keys[label] = keys
  end
  local ks = keys[res.status]
  if not ks then
    ks = metrics.key({ route = label, status = res.status })
    keys[res.status] = ks
  end
  S.metrics:counter("wp_http_requests_total", "HTTP requests", ks)
  S.metrics:observe("wp_http_request_seconds", "HTTP request latency", host.now() - t0, keys.route)
  return res.status, headers, body
end

return _M
