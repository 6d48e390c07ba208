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

-- A refused number beyond the double range: named by its place when it is
-- in inputData (lua-cjson reads it as +/-inf), else by its byte.
local function out_of_range(body, lim, why)
  local d = cjson.new()
  d.decode_max_depth(lim.max_depth)
  local t = d.decode(body)
  local fin, where = json.representable(type(t) == "table" and t.inputData or nil, "inputData")
  if not fin then return invalid { inputData = where } end
  return invalid { body = "JavaScript reads it differently: " .. why }
end

-- The body as a table, its taskHash text and inputData's description
-- (json.request: one pass in C over the text; inputData is decoded only if
-- something reads it), or nil and the refusal. What lua-cjson alone would
-- accept but JavaScript reads differently (1e400 -> Infinity, 01, raw
-- control characters, lone surrogates) would make the task see something
-- else than the taskHash commits to: the client's input, a 400, never a
-- worker error.
local function decode(body, lim)
  if #body > lim.max_body then
    return nil, errors.refusal("ETOOLARGE", { body = "over " .. lim.max_body .. " bytes" }, nil,
      "request body too large")
  end
  local t, text, input = json.request(body, lim.max_depth)
  if t then return t, text, input end
  local why = text
  if why:find("^invalid UTF%-8") then return nil, invalid { body = "invalid UTF-8" } end
  if why:find("^nesting too deep") then return nil, invalid { body = "nesting too deep" } end
  if why:find("^expected a JSON object") then return nil, invalid { body = "expected a JSON object" } end
  if why:find("^number out of range") then return nil, out_of_range(body, lim, why) end
  return nil, invalid { body = "malformed JSON: " .. why }
end

local function run(ctx)
  local gen, lim = ctx.gen, ctx.gen.config.limits
  local t, text, input = decode(ctx.req.body, lim)
  if not t then return text end
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
  -- the task type registry (a policy): unknown types and missing inputs
  local def
  if type(t.taskType) == "string" then
    local d, ferrs = generation.hook(gen, "task_types", "resolve", nil, { name = t.taskType, input = "inputData" },
      t.taskType, t, input)
    if d then def = d
    else for k, v in pairs(ferrs or { taskType = "unknown task type" }) do bad(k, v) end end
  end
  if not expected and input and input.type == "object" and type(t.inputData.expectedOutput) == "string" then
    expected = wp.hex(wp.sha256((t.inputData.expectedOutput:gsub("[\r\n]+$", ""))))
  end
  if not expected and not details.expectedHash then
    bad("expectedHash", "required (or inputData.expectedOutput)")
  end
  if next(details) then return invalid(details) end

  ctx.task = t
  ctx.task_text = text
  ctx.input = input
  ctx.language = lang
  ctx.expected = norm_hash(expected)
  ctx.timeout = timeout
  ctx.def = def
  ctx.request_hash = request_hash and norm_hash(request_hash)
  -- without the policy inputData as sent; a policy answers with `input`
  -- itself for that, or with any value it built
  local as_sent = input and input.type ~= "null" and input or nil
  ctx.worker_input = generation.hook(gen, "task_types", "worker_input", nil, as_sent, def, t, input)
end

return { name = "validate", run = run }
