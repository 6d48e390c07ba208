-- SPDX-License-Identifier: MIT
--- Config schemas for policies (Kong-style): validate a config table against
-- a schema, fill defaults, and report every problem at once as a nested
-- table keyed by field name.
--
-- A schema is a table of field definitions keyed by field name:
--
--   schema = {
--     limit  = { type = "integer", default = 100, min = 1, max = 1e6,
--                description = "requests per window" },
--     mode   = { type = "string", one_of = { "warn", "block" }, default = "block" },
--     window = { type = "record", fields = { seconds = { type = "number", min = 1 } } },
--     cidrs  = { type = "array", elements = { type = "string" }, default = {} },
--     map    = { type = "map", keys = { type = "string" }, values = { type = "number" } },
--     check  = { type = "function" },
--   }
--
-- Field keys: type (string | number | integer | boolean | record | array |
-- map | function | any), required, default, min, max (numbers; lengths for
-- strings and arrays), one_of, match (a Lua pattern), fields (record),
-- elements (array), keys/values (map), custom (function(v) -> true | nil, msg),
-- description. Unknown config keys are errors.
local type, pairs, ipairs, tostring, math_floor, sort, concat =
  type, pairs, ipairs, tostring, math.floor, table.sort, table.concat

local _M = {}

local TYPES = {
  string = true, number = true, integer = true, boolean = true, record = true,
  array = true, map = true, ["function"] = true, any = true,
}

local function copy(v)
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = copy(x) end
  return t
end

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k ~= math_floor(k) then return false end
    n = n + 1
  end
  return n == #t
end

local validate_record

-- Returns the (possibly defaulted) value and an error (string or table) or nil.
local function validate_value(def, v)
  local t = def.type
  if t == "integer" then
    if type(v) ~= "number" or v ~= math_floor(v) or v ~= v or v == math.huge or v == -math.huge then
      return nil, "expected an integer"
    end
  elseif t == "record" then
    if type(v) ~= "table" then return nil, "expected a record (table)" end
    local out, err = validate_record(def.fields or {}, v)
    if err then return nil, err end
    v = out
  elseif t == "array" then
    if type(v) ~= "table" or not is_array(v) then return nil, "expected an array" end
    if def.elements then
      local out, errs = {}, nil
      for i, x in ipairs(v) do
        local ok, e = validate_value(def.elements, x)
        if e then errs = errs or {}; errs[i] = e else out[i] = ok end
      end
      if errs then return nil, errs end
      v = out
    end
  elseif t == "map" then
    if type(v) ~= "table" then return nil, "expected a map (table)" end
    local out, errs = {}, nil
    for k, x in pairs(v) do
      local ek, kerr, ev, verr = k, nil, x, nil
      if def.keys then ek, kerr = validate_value(def.keys, k) end
      if def.values then ev, verr = validate_value(def.values, x) end
      if kerr or verr then
        errs = errs or {}
        errs[tostring(k)] = kerr and ("key: " .. tostring(kerr)) or verr
      else
        out[ek] = ev
      end
    end
    if errs then return nil, errs end
    v = out
  elseif t ~= "any" and type(v) ~= t then
    return nil, "expected a " .. t
  end

  if def.one_of then
    local found = false
    for _, x in ipairs(def.one_of) do if x == v then found = true break end end
    if not found then
      local names = {}
      for i, x in ipairs(def.one_of) do names[i] = tostring(x) end
      return nil, "expected one of: " .. concat(names, ", ")
    end
  end
  local size = (t == "string" or t == "array") and #v or (type(v) == "number" and v) or nil
  if size and def.min and size < def.min then
    return nil, (type(v) == "number" and "must be >= " or "length must be >= ") .. tostring(def.min)
  end
  if size and def.max and size > def.max then
    return nil, (type(v) == "number" and "must be <= " or "length must be <= ") .. tostring(def.max)
  end
  if def.match and type(v) == "string" and not v:match(def.match) then
    return nil, "invalid value: " .. v
  end
  if def.custom then
    local ok, msg = def.custom(v)
    if not ok then return nil, msg or "invalid value" end
  end
  return v
end

-- Levenshtein distance of a and b, or nil once it must exceed `cap`.
local function distance(a, b, cap)
  if math.abs(#a - #b) > cap then return nil end
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur, best = { [0] = i }, i
    local ca = a:byte(i)
    for j = 1, #b do
      local cost = (ca == b:byte(j)) and 0 or 1
      local d = prev[j - 1] + cost
      if prev[j] + 1 < d then d = prev[j] + 1 end
      if cur[j - 1] + 1 < d then d = cur[j - 1] + 1 end
      cur[j] = d
      if d < best then best = d end
    end
    if best > cap then return nil end
    prev = cur
  end
  return prev[#b] <= cap and prev[#b] or nil
end

--- The known name closest to `name` by edit distance (at most 2; the
-- alphabetically first of equals), or nil: "did you mean ...?" for typos.
function _M.closest(name, known)
  if type(name) ~= "string" then return nil end
  local best, best_d
  for _, k in ipairs(known) do
    local d = distance(name, k, 2)
    if d and (not best_d or d < best_d or (d == best_d and k < best)) then best, best_d = k, d end
  end
  return best
end

validate_record = function(fields, conf)
  local out, errs = {}, nil
  local function fail(k, e)
    errs = errs or {}
    errs[k] = e
  end
  local known
  for k in pairs(conf) do
    if fields[k] == nil then
      if not known then
        known = {}
        for f in pairs(fields) do if type(f) == "string" then known[#known + 1] = f end end
      end
      local near = _M.closest(k, known)
      fail(k, near and ("unknown field (did you mean '" .. near .. "'?)") or "unknown field")
    end
  end
  local names = {}
  for k in pairs(fields) do names[#names + 1] = k end
  sort(names)
  for _, k in ipairs(names) do
    local def, v = fields[k], conf[k]
    if v == nil then
      if def.default ~= nil then
        -- a default goes through its own definition too: a map of records
        -- gets each record's defaults (the policies map's `enabled`)
        local ok, e = validate_value(def, copy(def.default))
        if e then fail(k, e) else out[k] = ok end
      elseif def.type == "record" and not def.required then
        -- an absent optional record still gets its fields' defaults
        local sub, e = validate_record(def.fields or {}, {})
        if e then fail(k, e) else out[k] = sub end
      elseif def.required then
        fail(k, "required field missing")
      end
    else
      local ok, e = validate_value(def, v)
      if e then fail(k, e) else out[k] = ok end
    end
  end
  return out, errs
end

--- Check that a schema is itself well formed. Returns true or nil, errors.
function _M.check_schema(fields, path)
  path = path or ""
  if type(fields) ~= "table" then return nil, { [path ~= "" and path or "schema"] = "expected a table" } end
  local errs
  for k, def in pairs(fields) do
    local where = path .. tostring(k)
    local e
    if type(k) ~= "string" then e = "field names must be strings"
    elseif type(def) ~= "table" then e = "field definition must be a table"
    elseif not TYPES[def.type] then e = "unknown type '" .. tostring(def.type) .. "'"
    elseif def.type == "record" and def.fields then
      local ok, sub = _M.check_schema(def.fields, where .. ".")
      if not ok then
        for kk, vv in pairs(sub) do errs = errs or {}; errs[kk] = vv end
      end
    elseif def.default ~= nil then
      local _, derr = validate_value(def, def.default)
      if derr then e = "default does not validate: " .. (type(derr) == "string" and derr or "nested errors") end
    end
    if e then errs = errs or {}; errs[where] = e end
  end
  if errs then return nil, errs end
  return true
end

--- Validate conf against fields. Returns the config with defaults filled in,
-- or nil and a nested table of errors keyed by field name.
function _M.validate(fields, conf)
  if conf == nil then conf = {} end
  if type(conf) ~= "table" then return nil, { ["@"] = "expected a table" } end
  local out, errs = validate_record(fields, conf)
  if errs then return nil, errs end
  return out
end

--- Flatten a nested error table to sorted "a.b: msg" lines (for logs).
function _M.format_errors(errs, prefix, lines)
  lines = lines or {}
  if type(errs) ~= "table" then
    lines[#lines + 1] = (prefix or "") .. ": " .. tostring(errs)
    return lines
  end
  for k, v in pairs(errs) do
    local p = prefix and (prefix .. "." .. tostring(k)) or tostring(k)
    if type(v) == "table" then _M.format_errors(v, p, lines)
    else lines[#lines + 1] = p .. ": " .. tostring(v) end
  end
  if not prefix then sort(lines) end
  return lines
end

_M.is_array = is_array

return _M
