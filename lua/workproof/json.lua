-- SPDX-License-Identifier: MIT
--- JSON as JavaScript sees it, for hashes that must match a JS client.
--
-- taskHash = SHA-256 of JSON.stringify({taskType, code, expectedHash,
-- inputData}) (DESIGN.md). lua-cjson cannot reproduce that: it escapes "/",
-- formats numbers its own way and forgets object key order. So this module
-- parses JSON into an ORDERED tree and prints it exactly as JSON.stringify
-- would: insertion order (a repeated key keeps its first position and its
-- last value), no whitespace, "/" and non-ASCII left alone, the short escapes
-- JS uses, lone surrogates as \uXXXX, numbers in JS Number#toString form.
--
-- Ordered tree: objects are { [ORDER] = {k1, k2, ...}, k1 = v1, ... },
-- arrays are { [ARRAY] = n, v1, ..., vn }, null is json.null.
local byte, char, sub, find, format, concat = string.byte, string.char, string.sub, string.find, string.format,
  table.concat
local tonumber, tostring, type, floor, huge = tonumber, tostring, type, math.floor, math.huge
local bit = require "bit"

local _M = {}

local ORDER, ARRAY = {}, {}
_M.ORDER, _M.ARRAY = ORDER, ARRAY
_M.null = setmetatable({}, { __tostring = function() return "null" end })

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + bit.rshift(cp, 6), 0x80 + bit.band(cp, 0x3F)) end
  if cp < 0x10000 then
    return char(0xE0 + bit.rshift(cp, 12), 0x80 + bit.band(bit.rshift(cp, 6), 0x3F), 0x80 + bit.band(cp, 0x3F))
  end
  return char(0xF0 + bit.rshift(cp, 18), 0x80 + bit.band(bit.rshift(cp, 12), 0x3F),
    0x80 + bit.band(bit.rshift(cp, 6), 0x3F), 0x80 + bit.band(cp, 0x3F))
end

-- Lone surrogates cannot be UTF-8; keep them as a private marker that the
-- printer turns back into \uD8xx, as JSON.stringify does (ES2019).
local function surrogate_marker(cp) return "\255" .. format("%04x", cp) end

local ESC = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function decode(s, max_depth)
  local pos = 1
  local function fail(msg)
    error({ json_error = format("%s at byte %d", msg, pos) }, 0)
  end
  local function ws()
    pos = find(s, "[^ \t\r\n]", pos) or #s + 1
  end
  local value
  local function str()
    pos = pos + 1   -- opening quote
    local parts, n = {}, 0
    while true do
      local a = find(s, '["\\%c]', pos)
      if not a then fail("unterminated string") end
      if a > pos then n = n + 1; parts[n] = sub(s, pos, a - 1) end
      local c = byte(s, a)
      if c == 34 then pos = a + 1; break end
      if c < 32 then pos = a; fail("control character in string") end
      local e = sub(s, a + 1, a + 1)
      if ESC[e] then
        n = n + 1; parts[n] = ESC[e]; pos = a + 2
      elseif e == "u" then
        local h = sub(s, a + 2, a + 5)
        if not h:find("^%x%x%x%x$") then pos = a; fail("bad \\u escape") end
        local cp = tonumber(h, 16)
        pos = a + 6
        if cp >= 0xD800 and cp <= 0xDBFF and sub(s, pos, pos + 1) == "\\u" then
          local lo = tonumber(sub(s, pos + 2, pos + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            pos = pos + 6
          end
        end
        n = n + 1
        parts[n] = (cp >= 0xD800 and cp <= 0xDFFF) and surrogate_marker(cp) or utf8_char(cp)
      else
        pos = a; fail("bad escape")
      end
    end
    return concat(parts)
  end
  local function num()
    local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    local t = a and sub(s, a, b)
    if not t or not (t:find("^-?0$") or t:find("^-?0[%.eE]") or t:find("^-?[1-9]")) or t:find("^-?0%d")
      or t:find("%.$") or t:find("%.[eE]") or t:find("[eE][-+]?$") then
      fail("bad number")
    end
    pos = b + 1
    return tonumber(t)
  end
  value = function(depth)
    if depth > max_depth then fail("nesting too deep") end
    ws()
    local c = sub(s, pos, pos)
    if c == "{" then
      pos = pos + 1
      local obj, keys = {}, {}
      obj[ORDER] = keys
      ws()
      if sub(s, pos, pos) == "}" then pos = pos + 1; return obj end
      while true do
        ws()
        if sub(s, pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if sub(s, pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        local v = value(depth + 1)
        if obj[k] == nil then keys[#keys + 1] = k end
        obj[k] = v
        ws()
        local d = sub(s, pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then pos = pos - 1; fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      pos = pos + 1
      local arr, n = {}, 0
      ws()
      if sub(s, pos, pos) == "]" then pos = pos + 1; arr[ARRAY] = 0; return arr end
      while true do
        n = n + 1
        arr[n] = value(depth + 1)
        ws()
        local d = sub(s, pos, pos)
        pos = pos + 1
        if d == "]" then arr[ARRAY] = n; return arr end
        if d ~= "," then pos = pos - 1; fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif c == "t" and sub(s, pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif c == "f" and sub(s, pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif c == "n" and sub(s, pos, pos + 3) == "null" then pos = pos + 4; return _M.null
    elseif c == "-" or c:find("%d") then return num()
    end
    fail(c == "" and "unexpected end" or "unexpected character")
  end
  local ok, v = pcall(function()
    local r = value(1)
    ws()
    if pos <= #s then fail("trailing data") end
    return r
  end)
  if ok then return v end
  if type(v) == "table" and v.json_error then return nil, v.json_error end
  error(v, 0)
end

--- Parse JSON text into an ordered tree. Returns tree or nil, "message at byte N".
function _M.decode_ordered(s, max_depth)
  if type(s) ~= "string" then error("json.decode_ordered: expected a string", 2) end
  return decode(s, max_depth or 64)
end

-- JS Number.prototype.toString for finite doubles.
local function js_number(x)
  if x ~= x or x == huge or x == -huge then return "null" end
  if x == 0 then return "0" end
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return format("%.0f", x) end
  local s
  for p = 1, 17 do
    s = format("%." .. p .. "g", x)
    if tonumber(s) == x then break end
  end
  local mant, exp = s:match("^(-?[%d%.]+)e([-+]%d+)$")
  if not mant then return s end
  local e = tonumber(exp)
  local neg = mant:sub(1, 1) == "-"
  if neg then mant = mant:sub(2) end
  local digits = mant:gsub("%.", "")
  local point = #mant:match("^%d+") + e   -- position of the decimal point
  local out
  if e >= 21 or e <= -7 then
    local frac = #digits > 1 and ("." .. digits:sub(2)) or ""
    out = digits:sub(1, 1) .. frac .. "e" .. (e > 0 and "+" or "-") .. math.abs(e)
  elseif point <= 0 then
    out = "0." .. ("0"):rep(-point) .. digits
  elseif point >= #digits then
    out = digits .. ("0"):rep(point - #digits)
  else
    out = digits:sub(1, point) .. "." .. digits:sub(point + 1)
  end
  return (neg and "-" or "") .. out
end
_M.js_number = js_number

local SHORT = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t" }

local function js_string(s)
  s = s:gsub('[%z\1-\31"\\]', function(c) return SHORT[c] or format("\\u%04x", byte(c)) end)
  s = s:gsub("\255(%x%x%x%x)", "\\u%1")
  return '"' .. s .. '"'
end
_M.js_string = js_string

local function stringify(v, out)
  local t = type(v)
  if v == _M.null or v == nil then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = js_number(v)
  elseif t == "string" then out[#out + 1] = js_string(v)
  elseif t == "table" and v[ARRAY] then
    out[#out + 1] = "["
    for i = 1, v[ARRAY] do
      if i > 1 then out[#out + 1] = "," end
      stringify(v[i], out)
    end
    out[#out + 1] = "]"
  elseif t == "table" then
    local keys = v[ORDER]
    if not keys then   -- a plain Lua table: sorted keys, for determinism
      keys = {}
      for k in pairs(v) do if type(k) == "string" then keys[#keys + 1] = k end end
      table.sort(keys)
    end
    out[#out + 1] = "{"
    local first = true
    for _, k in ipairs(keys) do
      local x = v[k]
      if x ~= nil and type(x) ~= "function" then
        if not first then out[#out + 1] = "," end
        first = false
        out[#out + 1] = js_string(k)
        out[#out + 1] = ":"
        stringify(x, out)
      end
    end
    out[#out + 1] = "}"
  else
    error("json.stringify: cannot encode a " .. t, 0)
  end
end

--- JSON.stringify of an ordered tree (or plain Lua values; plain tables are
-- objects with sorted keys unless they carry ORDER or ARRAY).
function _M.stringify(v)
  local out = {}
  stringify(v, out)
  return concat(out)
end

--- An ordered object from alternating key, value arguments; nil values are
-- omitted as JSON.stringify omits undefined.
function _M.object(...)
  local obj, keys = {}, {}
  obj[ORDER] = keys
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then keys[#keys + 1] = k; obj[k] = v end
  end
  return obj
end

--- Is s valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)?
function _M.utf8_valid(s)
  if not find(s, "[\128-\255]") then return true end
  local i, n = 1, #s
  while i <= n do
    local a = find(s, "[\128-\255]", i)
    if not a then return true end
    local c = byte(s, a)
    local len, min
    if c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
    else return false end
    local cp = bit.band(c, bit.rshift(0x7F, len))
    for j = 1, len - 1 do
      local d = byte(s, a + j)
      if not d or d < 0x80 or d > 0xBF then return false end
      cp = cp * 64 + (d - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
    i = a + len
  end
  return true
end

return _M
