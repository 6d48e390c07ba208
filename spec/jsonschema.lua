-- SPDX-License-Identifier: MIT
--- A JSON Schema (2020-12) validator for the subset docs/openapi.yaml uses,
-- for the specs: type (a name or a list; integer is a number without a
-- fraction), properties, required, additionalProperties (false or a
-- schema), enum, items, allOf, oneOf, anyOf, $ref (local "#/..."
-- pointers), minimum; description, title, format, examples and default are
-- annotations. Any other keyword raises: a document must not claim a
-- constraint nobody checks.
--
-- Schemas are plain Lua tables (cjson's decoding of the document);
-- instances are json.decode_ordered trees, which tell an empty array from
-- an empty object and null from absent (cjson's tables cannot).
--
--   local v = jsonschema.new(doc)
--   v:check(schema)                   raises on an unsupported keyword
--   v:validate(schema, tree) -> true | false, "where: what"
--   v:resolve("#/components/schemas/X") -> the schema (raises if absent)
local json = require "workproof.json"
local cjson = require "cjson"

local ORDER, ARRAY = json.ORDER, json.ARRAY
local type, pairs, ipairs, tostring, floor = type, pairs, ipairs, tostring, math.floor

local _M = {}
local mt = { __index = _M }

local KEYWORDS = {
  type = true, properties = true, required = true, additionalProperties = true, enum = true, items = true,
  allOf = true, oneOf = true, anyOf = true, ["$ref"] = true, minimum = true,
  description = false, title = false, format = false, examples = false, default = false,
}

function _M.new(doc) return setmetatable({ doc = doc }, mt) end

--- The JSON type of a decode_ordered value.
function _M.kind(v)
  if v == json.null or v == cjson.null then return "null" end
  local t = type(v)
  if t == "table" then
    if v[ARRAY] then return "array" end
    if v[ORDER] then return "object" end
    error("jsonschema: not a decode_ordered tree", 2)
  end
  return t
end
local kind = _M.kind

function _M:resolve(ref)
  if type(ref) ~= "string" or ref:sub(1, 2) ~= "#/" then error("jsonschema: only local refs: " .. tostring(ref), 2) end
  local node = self.doc
  for part in ref:sub(3):gmatch("[^/]+") do
    part = part:gsub("~1", "/"):gsub("~0", "~")
    node = type(node) == "table" and node[part] or nil
    if node == nil then error("jsonschema: unresolved $ref " .. ref, 2) end
  end
  return node
end

--- Raise unless every keyword in `schema` (and below) is one this
-- validator implements or an annotation.
function _M:check(schema, where, seen)
  where, seen = where or "#", seen or {}
  if type(schema) ~= "table" or seen[schema] then return end
  seen[schema] = true
  for k, sub in pairs(schema) do
    if KEYWORDS[k] == nil then error(("jsonschema: %s: unsupported keyword %q"):format(where, k), 0) end
    if k == "properties" then
      for name, s in pairs(sub) do self:check(s, where .. "/properties/" .. name, seen) end
    elseif k == "items" or (k == "additionalProperties" and type(sub) == "table") then
      self:check(sub, where .. "/" .. k, seen)
    elseif k == "allOf" or k == "oneOf" or k == "anyOf" then
      for i, s in ipairs(sub) do self:check(s, where .. "/" .. k .. "/" .. i, seen) end
    elseif k == "$ref" then
      self:check(self:resolve(sub), sub, seen)
    end
  end
end

local function same(a, b)   -- a schema's enum value vs an instance scalar
  if a == cjson.null then return kind(b) == "null" end
  return a == b
end

local function type_ok(want, v, k)
  if want == "integer" then return k == "number" and v == floor(v) and v == v and v ~= math.huge and v ~= -math.huge end
  return want == k
end

function _M:validate(schema, v, where)
  where = where or "$"
  if schema == true or schema == nil then return true end
  if schema == false then return false, where .. ": nothing is allowed here" end
  local k = kind(v)
  if schema["$ref"] then
    local ok, err = self:validate(self:resolve(schema["$ref"]), v, where)
    if not ok then return false, err end
  end
  local t = schema.type
  if t then
    local list = type(t) == "table" and t or { t }
    local ok = false
    for _, want in ipairs(list) do if type_ok(want, v, k) then ok = true break end end
    if not ok then
      return false, ("%s: expected %s, got %s"):format(where, table.concat(list, " or "), k)
    end
  end
  if schema.enum then
    local ok = false
    for _, e in ipairs(schema.enum) do if same(e, v) then ok = true break end end
    if not ok then return false, ("%s: %s is not one of the enum"):format(where, tostring(v)) end
  end
  if schema.minimum and k == "number" and v < schema.minimum then
    return false, ("%s: %s < minimum %s"):format(where, tostring(v), tostring(schema.minimum))
  end
  if k == "object" then
    for _, name in ipairs(schema.required or {}) do
      if v[name] == nil then return false, ("%s: required member %q missing"):format(where, name) end
    end
    local props = schema.properties or {}
    for _, name in ipairs(v[ORDER]) do
      local sub = props[name]
      if sub == nil then sub = schema.additionalProperties end
      if sub == false then return false, ("%s: member %q not allowed"):format(where, name) end
      if sub ~= nil then
        local ok, err = self:validate(sub, v[name], where .. "." .. name)
        if not ok then return false, err end
      end
    end
  elseif k == "array" and schema.items then
    for i = 1, v[ARRAY] do
      local ok, err = self:validate(schema.items, v[i], ("%s[%d]"):format(where, i - 1))
      if not ok then return false, err end
    end
  end
  for i, s in ipairs(schema.allOf or {}) do
    local ok, err = self:validate(s, v, where)
    if not ok then return false, ("%s (allOf[%d])"):format(err, i - 1) end
  end
  if schema.anyOf then
    local errs = {}
    for _, s in ipairs(schema.anyOf) do
      local ok, err = self:validate(s, v, where)
      if ok then errs = nil break end
      errs[#errs + 1] = err
    end
    if errs then return false, where .. ": no anyOf branch matches (" .. table.concat(errs, "; ") .. ")" end
  end
  if schema.oneOf then
    local n, errs = 0, {}
    for _, s in ipairs(schema.oneOf) do
      local ok, err = self:validate(s, v, where)
      if ok then n = n + 1 else errs[#errs + 1] = err end
    end
    if n ~= 1 then
      return false, ("%s: %d oneOf branches match, expected exactly 1 (%s)"):format(where, n, table.concat(errs, "; "))
    end
  end
  return true
end

return _M
