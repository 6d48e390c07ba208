-- SPDX-License-Identifier: MIT
--- Stage `validate` (phase admit, always first): the body is UTF-8 JSON,
-- an object within the limits, that JavaScript reads exactly as we do; its
-- fields are well formed; the task type is known (policy task_types).
-- Fills the validated-request fields of the context (notary/context.lua).
local wp = require "workproof"
local cjson = require "cjson.safe"
local json = require "workproof.json"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"

local type, pairs, next = type, pairs, next

local decoders = {}
local function decoder(depth)
  local d = decoders[depth]
  if not d then
    d = cjson.new()
    d.decode_max_depth(depth)
    d.decode_invalid_numbers(false)
    decoders[depth] = d
  end
  return d
end

local function invalid(details) return errors.refusal("EVALIDATION", details) end

local function is_hex64(s)
  return type(s) == "string" and #s == 64 and not s:find("[^%x]")
end

local function norm_hash(h)
  if type(h) ~= "string" then return nil end
  return (h:gsub("^0[xX]", "")):lower()
end

-- present and not JSON null
local function given(v) return v ~= nil and v ~= cjson.null end

-- The body as a table, or nil and the refusal.
local function decode(body, lim)
  if #body > lim.max_body then
    return nil, errors.refusal("ETOOLARGE", { body = "over " .. lim.max_body .. " bytes" }, nil,
      "request body too large")
  end
  if not json.utf8_valid(body) then return nil, invalid { body = "invalid UTF-8" } end
  local t, perr = decoder(lim.max_depth).decode(body)
  if t == nil then
    return nil, invalid { body = perr and perr:find("nested") and "nesting too deep"
      or ("malformed JSON: " .. tostring(perr)) }
  end
  if type(t) ~= "table" or (next(t) ~= nil and t[1] ~= nil) or body:match("^%s*%[") then
    return nil, invalid { body = "expected a JSON object" }
  end
  -- what cjson accepts but JavaScript reads differently (1e400 -> Infinity,
  -- 01, raw control characters) would make the task see something else than
  -- the taskHash commits to: the client's input, a 400, never a worker error.
  -- One pass in C over the text; only a refused body has its inputData
  -- walked, to name the number's place when it is there.
  local js_ok, js_why = json.check_js(body)
  if not js_ok then
    local fin, why = json.representable(t.inputData, "inputData")
    if not fin then return nil, invalid { inputData = why } end
    return nil, invalid { body = "JavaScript reads it differently: " .. js_why }
  end
  return t
end

local function run(ctx)
  local gen, lim = ctx.gen, ctx.gen.config.limits
  local t, refusal = decode(ctx.req.body, lim)
  if not t then return refusal end
  local details = {}
  local function bad(field, msg) details[field] = msg end

  if type(t.taskType) ~= "string" then bad("taskType", "required string") end
  if type(t.code) ~= "string" then bad("code", "required string")
  elseif t.code == "" then bad("code", "must not be empty") end
  local lang = t.language
  if lang == nil then lang = "javascript" end
  if lang ~= "javascript" and lang ~= "lua" then bad("language", "expected one of: javascript, lua") end
  local expected = t.expectedHash
  if given(expected) then
    if type(expected) ~= "string" then bad("expectedHash", "expected a string")
    elseif #expected > lim.max_expected_hash then bad("expectedHash", "longer than " .. lim.max_expected_hash)
    elseif not is_hex64(norm_hash(expected)) then bad("expectedHash", "expected 64 hex digits (optional 0x)")
    end
  else
    expected = nil
  end
  local request_hash = given(t.requestHash) and t.requestHash or nil
  if request_hash and not is_hex64(norm_hash(request_hash)) then
    bad("requestHash", "expected 64 hex digits (optional 0x)")
  end
  local timeout = t.timeoutSeconds
  if timeout == nil then timeout = lim.timeout_default
  elseif type(timeout) ~= "number" or timeout ~= timeout then bad("timeoutSeconds", "expected a number")
  elseif timeout < lim.timeout_min or timeout > lim.timeout_max then
    bad("timeoutSeconds", ("must be between %s and %s"):format(lim.timeout_min, lim.timeout_max))
  end
  local input = t.inputData
  -- the task type registry (a policy): unknown types and missing inputs
  local def
  if type(t.taskType) == "string" then
    local d, ferrs = generation.hook(gen, "task_types", "resolve", nil, { name = t.taskType, input = "inputData" },
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
  if next(details) then return invalid(details) end

  ctx.task = t
  ctx.language = lang
  ctx.expected = norm_hash(expected)
  ctx.timeout = timeout
  ctx.def = def
  ctx.request_hash = request_hash and norm_hash(request_hash)
  ctx.worker_input = generation.hook(gen, "task_types", "worker_input", nil, input, def, t)
end

return { name = "validate", run = run }
