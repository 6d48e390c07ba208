-- SPDX-License-Identifier: MIT
--- The registry of task types (docs/policies.md). Adding a task type is an
-- edit of this policy's config (or of the defaults below), not of the
-- controller.
--
-- Each type says what the worker gets as its `input`:
--   input = "none"       the task's code runs with no input; inputData, if
--                        sent, only feeds the controller (expectedOutput);
--   input = "inputData"  the request's inputData (any JSON value) is the
--                        worker's input.
-- and which languages it accepts, whether inputData is required and how
-- large it may be (bytes of its JSON encoding; a string counts its bytes).
--
-- The host hands both hooks `input`, its description of inputData as sent
-- ({ type = "object"|"array"|"string"|"number"|"boolean"|"null", bytes = n },
-- nil when absent), so neither needs to read body.inputData: the controller
-- decodes a large inputData only if something reads it.
local _M = {
  name = "task_types",
  version = "1",
  description = "known task types: what becomes the worker's input, languages, input limits",
}

local type, pairs, ipairs, next, tostring, pcall = type, pairs, ipairs, next, tostring, pcall
local sort, concat = table.sort, table.concat

-- the env offers json (lua-cjson) when the host has it
local has_json, J = pcall(function() return json end)
if not has_json then J = nil end
local NULL = J and J.null

local type_def = { type = "record", fields = {
  description = { type = "string", default = "", max = 500,
    description = "shown to operators and in errors" },
  input = { type = "string", one_of = { "none", "inputData" }, default = "inputData",
    description = "what becomes the worker's input" },
  languages = { type = "array", elements = { type = "string", match = "^[%w_%-]+$" }, min = 1,
    default = { "javascript", "lua" }, description = "languages this type accepts" },
  require_input = { type = "boolean", default = false,
    description = "reject requests without inputData" },
  max_input_bytes = { type = "integer", default = 65536, min = 0, max = 1073741824,
    description = "largest inputData accepted (bytes of its JSON encoding)" },
} }

_M.schema = {
  types = { type = "map", keys = { type = "string", match = "^[%w][%w_.%-]*$" }, values = type_def,
    default = {
      ["code-execution"] = {
        description = "run the code; its stdout hash is compared with expectedHash",
        input = "none", languages = { "javascript", "lua" }, require_input = false, max_input_bytes = 65536,
      },
      ["data-transformation"] = {
        description = "run the code on inputData (the worker's input); compare its stdout hash",
        input = "inputData", languages = { "javascript", "lua" }, require_input = true, max_input_bytes = 65536,
      },
    },
    custom = function(m)
      if next(m) == nil then return nil, "at least one task type is required" end
      return true
    end,
    description = "task type name -> definition" },
}

local function absent(v)
  return v == nil or (NULL ~= nil and v == NULL)
end

-- bytes of a decoded inputData (approximately: its compact JSON encoding),
-- for a caller that gives no description
local function input_size(v)
  local tv = type(v)
  if tv == "string" then return #v end
  if tv == "table" and J then
    local s = J.encode(v)
    if type(s) == "string" then return #s end
  end
  return #tostring(v)
end

local function names_of(conf)
  local names = {}
  for k in pairs(conf.types) do names[#names + 1] = k end
  sort(names)
  return names
end

-- is inputData there (not null), and its size: from the host's description,
-- else from body.inputData
local function input_of(body, input)
  if input ~= nil then return input.type ~= "null", input.bytes end
  local v = body.inputData
  if absent(v) then return false end
  return true, input_size(v)
end

--- Look up task_type and check the request body against it; input: the
-- host's description of inputData (above), or nil.
-- Returns def = { name =, description =, input =, languages =,
-- require_input =, max_input_bytes = } (a copy), or nil and field errors
-- keyed like the request: { taskType = ..., language = ..., inputData = ... }.
function _M.resolve(conf, task_type, body, input)
  local def = type(task_type) == "string" and conf.types[task_type] or nil
  if not def then
    return nil, { taskType = ("unknown task type '%s' (known: %s)"):format(tostring(task_type),
      concat(names_of(conf), ", ")) }
  end
  body = type(body) == "table" and body or {}
  local errs = {}
  local lang = body.language
  if absent(lang) then lang = "javascript" end
  if type(lang) == "string" then
    local ok = false
    for _, l in ipairs(def.languages) do if l == lang then ok = true break end end
    if not ok then
      errs.language = ("'%s' is not accepted by task type '%s' (accepted: %s)"):format(lang, task_type,
        concat(def.languages, ", "))
    end
  end
  local present, size = input_of(body, input)
  if not present then
    if def.require_input then
      errs.inputData = "required for " .. task_type
    end
  elseif size > def.max_input_bytes then
    errs.inputData = ("larger than %d bytes (max_input_bytes of %s)"):format(def.max_input_bytes, task_type)
  end
  if next(errs) then return nil, errs end
  local out = { name = task_type }
  for k, v in pairs(def) do out[k] = v end
  return out
end

--- The value the worker gets as the task's input when def.input ==
-- "inputData" (otherwise nil): inputData as sent — the host's description
-- `input` itself, which the host sends as the request's own text — or, for
-- a caller that gives none, body.inputData.
function _M.worker_input(_, def, body, input)
  if type(def) ~= "table" or def.input ~= "inputData" or type(body) ~= "table" then return nil end
  if input ~= nil then
    if input.type == "null" then return nil end
    return input
  end
  local v = body.inputData
  if absent(v) then return nil end
  return v
end

--- Names of the configured task types, sorted.
function _M.names(conf)
  return names_of(conf)
end

return _M
