-- SPDX-License-Identifier: MIT
--- JSON as JavaScript sees it, for hashes that must match a JS client.
--
-- taskHash = SHA-256 of JSON.stringify({taskType, code, expectedHash,
-- inputData[, language]}) after JSON.parse of the request
-- (docs/http-api.md). lua-cjson cannot reproduce that: it escapes "/", prints
-- 14 significant digits and forgets object key order. This module prints
-- exactly what JSON.stringify(JSON.parse(text)) prints:
--   * objects: array-index keys (canonical decimal integers below 2^32 - 1)
--     first in ascending numeric order, then the other keys in insertion
--     order; a repeated key keeps its FIRST position and its LAST value;
--   * numbers as Number.prototype.toString: shortest round-trip digits,
--     1e+21 / 1e-7 exponent forms, -0 as 0, overflow (1e400) as null;
--   * strings: only " \ \b \f \n \r \t and the other control characters
--     (\u00XX, lowercase) escaped; "/" and non-ASCII as is; lone surrogates
--     as \udXXX (well-formed JSON.stringify, ES2019);
--   * no whitespace.
--
-- Two ways in:
--   canonical(text)            text -> text in one pass, no tree (taskHash);
--   decode_ordered + stringify  an ORDERED tree for Lua code to walk.
-- Ordered tree: objects are { [ORDER] = {k1, k2, ...}, k1 = v1, ... } with
-- ORDER in JavaScript's enumeration order, arrays are { [ARRAY] = n, v1,
-- ..., vn }, null is json.null.
--
-- Text given to canonical/decode_ordered must be valid UTF-8 (json.utf8_valid):
-- unescaped string bytes are copied through.
local byte, char, sub, find, format, concat, rep = string.byte, string.char, string.sub, string.find, string.format,
  table.concat, string.rep
local tonumber, tostring, type, pairs, ipairs, select, error, pcall =
  tonumber, tostring, type, pairs, ipairs, select, error, pcall
local floor, huge, frexp, sort = math.floor, math.huge, math.frexp, table.sort
local bit = require "bit"
local ffi = require "ffi"
local cjs = require("workproof.core").json

-- byte loops over long strings (a 100 KB `code`) run as compiled FFI loops:
-- Lua patterns with character classes cost ~10 ns a byte
local cast, U8P = ffi.cast, ffi.typeof("const uint8_t *")

local _M = {}

local ORDER, ARRAY = {}, {}
_M.ORDER, _M.ARRAY = ORDER, ARRAY
_M.null = setmetatable({}, { __tostring = function() return "null" end })

-- lua-cjson's null (a NULL light userdata) counts as null too
local has_cjson, cjson = pcall(require, "cjson.safe")
local CJSON_NULL = has_cjson and cjson.null or _M.null

local function is_null(v) return v == _M.null or v == CJSON_NULL end

local function fail(msg, pos)
  error({ json_error = format("%s at byte %d", msg, pos) }, 0)
end

-- run f(...) and turn a parse failure into nil, "message at byte N"
local function protect(f, ...)
  local ok, a, b = pcall(f, ...)
  if ok then return a, b end
  if type(a) == "table" and a.json_error then return nil, a.json_error end
  error(a, 0)
end

---------------------------------------------------------------------------
-- lexical pieces shared by both parsers

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then return char(0xC0 + bit.rshift(cp, 6), 0x80 + bit.band(cp, 0x3F)) end
  if cp < 0x10000 then
    return char(0xE0 + bit.rshift(cp, 12), 0x80 + bit.band(bit.rshift(cp, 6), 0x3F), 0x80 + bit.band(cp, 0x3F))
  end
  return char(0xF0 + bit.rshift(cp, 18), 0x80 + bit.band(bit.rshift(cp, 12), 0x3F),
    0x80 + bit.band(bit.rshift(cp, 6), 0x3F), 0x80 + bit.band(cp, 0x3F))
end

-- Lone surrogates cannot be UTF-8; keep them as a private marker ("\255"
-- never occurs in UTF-8) that the printer turns back into \udXXX.
local function surrogate_marker(cp) return "\255" .. format("%04x", cp) end

local ESC = { [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r",
  [116] = "\t" }
local STOP = '["\\%z\1-\31]'   -- what ends a run of plain string bytes

-- s[pos] is the opening quote. Returns the decoded string, the position after
-- the closing quote and true when the string had no escapes (its source text
-- is then already in JSON.stringify form).
local function read_string(s, pos)
  local a = find(s, STOP, pos + 1)
  if not a then fail("unterminated string", pos) end
  local c = byte(s, a)
  if c == 34 then return sub(s, pos + 1, a - 1), a + 1, true end
  local parts, n, p = {}, 0, pos + 1
  while true do
    if a > p then n = n + 1; parts[n] = sub(s, p, a - 1) end
    if c == 34 then return concat(parts, "", 1, n), a + 1, false end
    if c ~= 92 then fail("control character in string", a) end
    local e = byte(s, a + 1)
    if ESC[e] then
      n = n + 1; parts[n] = ESC[e]; p = a + 2
    elseif e == 117 then   -- \uXXXX
      local h = sub(s, a + 2, a + 5)
      if not find(h, "^%x%x%x%x$") then fail("bad \\u escape", a) end
      local cp = tonumber(h, 16)
      p = a + 6
      if cp >= 0xD800 and cp <= 0xDBFF and sub(s, p, p + 1) == "\\u" then
        local lo = tonumber(sub(s, p + 2, p + 5), 16)
        if lo and lo >= 0xDC00 and lo <= 0xDFFF and find(sub(s, p + 2, p + 5), "^%x%x%x%x$") then
          cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
          p = p + 6
        end
      end
      n = n + 1
      parts[n] = (cp >= 0xD800 and cp <= 0xDFFF) and surrogate_marker(cp) or utf8_char(cp)
    else
      fail("bad escape", a)
    end
    a = find(s, STOP, p)
    if not a then fail("unterminated string", pos) end
    c = byte(s, a)
  end
end

-- A JSON number token at pos: -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?
-- Returns its text and the position after it.
local function read_number(s, pos)
  local a, b = find(s, "^-?%d+", pos)
  if not a or find(s, "^-?0%d", pos) then fail("bad number", pos) end
  local p = b + 1
  local c = byte(s, p)
  if c == 46 then
    local _, e = find(s, "^%d+", p + 1)
    if not e then fail("bad number", pos) end
    p = e + 1
    c = byte(s, p)
  end
  if c == 101 or c == 69 then
    local _, e = find(s, "^[-+]?%d+", p + 1)
    if not e then fail("bad number", pos) end
    p = e + 1
  end
  return sub(s, pos, p - 1), p
end

-- An array index in ECMA-262's sense: "0" or [1-9][0-9]* below 2^32 - 1.
-- JavaScript enumerates such keys first, in ascending numeric order.
local function is_index(k)
  local n = #k
  if n == 0 or n > 10 then return false end
  if k == "0" then return true end
  if not find(k, "^[1-9]%d*$") then return false end
  return n < 10 or tonumber(k) < 4294967295
end
_M.is_index = is_index

-- plain Lua tables print index keys first (as JavaScript would enumerate
-- them), then the other keys in byte order
local function plain_key_less(a, b)
  local ia, ib = is_index(a), is_index(b)
  if ia ~= ib then return ia end
  if ia then return tonumber(a) < tonumber(b) end
  return a < b
end

-- keys: in insertion order; returns them in JavaScript's enumeration order
local function js_key_order(keys)
  local idx, rest = {}, {}
  for _, k in ipairs(keys) do
    if is_index(k) then idx[#idx + 1] = k else rest[#rest + 1] = k end
  end
  sort(idx, function(a, b) return tonumber(a) < tonumber(b) end)
  for _, k in ipairs(rest) do idx[#idx + 1] = k end
  return idx
end

---------------------------------------------------------------------------
-- printing

-- decimal digit string + 1 in the last place ("199" -> "200", "99" -> "100")
local function dec_increment(d)
  local i = find(d, "[0-8]9*$")
  if not i then return "1" .. rep("0", #d) end
  return sub(d, 1, i - 1) .. char(byte(d, i) + 1) .. rep("0", #d - i)
end

-- Shortest digits (from p0 up) that read back as x > 0, choosing as
-- Number::toString does: of the p-digit decimals that round-trip, the one
-- nearest x; on a tie, the even one. Works from x's decimal expansion to 100
-- significant digits (LuaJIT's %e is exact; it rounds ties away from zero,
-- which is why the choice is made here). A tie needs digit p+1 = 5 and only
-- zeros to digit 100: exact for every double whose expansion fits in 100
-- digits, and a run of 80+ zeros followed by more digits does not occur.
-- Returns digits, decimal exponent of the first digit.
local function shortest(x, p0)
  local d1, rest, e = format("%.99e", x):match("^(%d)%.(%d+)e([-+]%d+)$")
  local D, exp = d1 .. rest, tonumber(e)
  for p = p0, 17 do
    local lower, tail = sub(D, 1, p), sub(D, p + 1)
    if not find(tail, "[1-9]") then return lower, exp end   -- exact at p digits
    local upper, uexp = dec_increment(lower), exp
    if #upper > p then upper, uexp = sub(upper, 1, p), exp + 1 end
    local half = "5" .. rep("0", #tail - 1)
    local up_first = tail > half or (tail == half and byte(lower, p) % 2 == 1)
    local a, ae, b, be = lower, exp, upper, uexp
    if up_first then a, ae, b, be = upper, uexp, lower, exp end
    if tonumber(a .. "e" .. (ae - p + 1)) == x then return a, ae end
    if tonumber(b .. "e" .. (be - p + 1)) == x then return b, be end
  end
  error("json: no round-trip digits for " .. format("%.17g", x))   -- unreachable: 17 always suffice
end

--- JS Number.prototype.toString (and JSON.stringify) of a Lua number.
local function js_number(x)
  if x ~= x or x == huge or x == -huge then return "null" end
  if x == 0 then return "0" end
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return format("%.0f", x) end
  local neg = x < 0
  if neg then x = -x end
  -- Any decimal of <= 15 significant digits survives a round trip through
  -- a normal double, so if one reads back as x, %.15g finds it (only one
  -- can). Past 15 digits, and for subnormals, several may: shortest() picks.
  local digits, e
  if x >= 2.2250738585072014e-308 then
    local m = format("%.14e", x)
    if tonumber(m) ~= x then
      -- the nearest 16, else 17 digits (17 always read back), unless that
      -- is a tie (the next digit shows an exact 5) or x is a power of two
      -- (the gap below x is half the gap above: the nearest may miss while
      -- the next one up hits): shortest() decides those
      m = nil
      if frexp(x) ~= 0.5 and byte(format("%.16e", x), 18) ~= 53 then
        local c = format("%.15e", x)
        if tonumber(c) == x then
          m = c
        elseif byte(format("%.17e", x), 19) ~= 53 then
          m = format("%.16e", x)
        end
      end
    end
    if m then
      local d1, rest, es = m:match("^(%d)%.(%d+)e([-+]%d+)$")
      digits, e = d1 .. rest, tonumber(es)
    else
      digits, e = shortest(x, 16)
    end
  else
    digits, e = shortest(x, 1)
  end
  digits = digits:gsub("0+$", "")
  local k, n = #digits, e + 1   -- k digits, value = digits * 10^(n-k)
  local out
  if k <= n and n <= 21 then
    out = digits .. rep("0", n - k)
  elseif 0 < n and n <= 21 then
    out = sub(digits, 1, n) .. "." .. sub(digits, n + 1)
  elseif -6 < n and n <= 0 then
    out = "0." .. rep("0", -n) .. digits
  else
    out = sub(digits, 1, 1) .. (k > 1 and ("." .. sub(digits, 2)) or "") .. "e" .. (n > 0 and "+" or "-")
      .. (n > 0 and n - 1 or 1 - n)
  end
  return neg and ("-" .. out) or out
end
_M.js_number = js_number

-- what JSON.stringify prints for each character it escapes
local ESCAPE = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r",
  ["\t"] = "\\t" }
for c = 0, 31 do
  if not ESCAPE[char(c)] then ESCAPE[char(c)] = format("\\u%04x", c) end
end

--- A Lua string (UTF-8, lone surrogates as decode_ordered's markers) as
-- JSON.stringify prints it.
local function js_string(s)
  local p = cast(U8P, s)
  for j = 0, #s - 1 do
    local c = p[j]
    if c < 32 or c == 34 or c == 92 or c == 255 then
      s = s:gsub('[%z\1-\31"\\]', ESCAPE)
      if find(s, "\255", 1, true) then s = s:gsub("\255(%x%x%x%x)", "\\u%1") end
      break
    end
  end
  return '"' .. s .. '"'
end
_M.js_string = js_string

---------------------------------------------------------------------------
-- text -> text: JSON.stringify(JSON.parse(text)) without building a tree, in
-- C (core/src/json.c: one pass, an object reordered only when it has an
-- index key or a repeated key)

--- JSON.stringify(JSON.parse(s)) of a JSON text (valid UTF-8 required).
-- Returns the text or nil, "message at byte N". max_depth: nesting limit
-- (default 64).
function _M.canonical(s, max_depth)
  if type(s) ~= "string" then error("json.canonical: expected a string", 2) end
  return cjs.canonical(s, max_depth or 64)
end

---------------------------------------------------------------------------
-- text -> ordered tree

local function decode(s, max_depth)
  local pos = 1
  local function ws()
    pos = find(s, "[^ \t\r\n]", pos) or #s + 1
  end
  local value
  value = function(depth)
    if depth > max_depth then fail("nesting too deep", pos) end
    ws()
    local c = byte(s, pos)
    if c == 123 then
      pos = pos + 1
      local obj, keys, odd = {}, {}, false
      obj[ORDER] = keys
      ws()
      if byte(s, pos) == 125 then pos = pos + 1; return obj end
      while true do
        ws()
        if byte(s, pos) ~= 34 then fail("expected a key", pos) end
        local k
        k, pos = read_string(s, pos)
        ws()
        if byte(s, pos) ~= 58 then fail("expected ':'", pos) end
        pos = pos + 1
        local v = value(depth + 1)
        if obj[k] == nil then
          keys[#keys + 1] = k
          if not odd and is_index(k) then odd = true end
        end
        obj[k] = v
        ws()
        local d = byte(s, pos)
        pos = pos + 1
        if d == 125 then
          if odd then obj[ORDER] = js_key_order(keys) end
          return obj
        end
        if d ~= 44 then fail("expected ',' or '}'", pos - 1) end
      end
    elseif c == 91 then
      pos = pos + 1
      local arr, n = {}, 0
      ws()
      if byte(s, pos) == 93 then pos = pos + 1; arr[ARRAY] = 0; return arr end
      while true do
        n = n + 1
        arr[n] = value(depth + 1)
        ws()
        local d = byte(s, pos)
        pos = pos + 1
        if d == 93 then arr[ARRAY] = n; return arr end
        if d ~= 44 then fail("expected ',' or ']'", pos - 1) end
      end
    elseif c == 34 then
      local v
      v, pos = read_string(s, pos)
      return v
    elseif c == 116 and sub(s, pos, pos + 3) == "true" then pos = pos + 4; return true
    elseif c == 102 and sub(s, pos, pos + 4) == "false" then pos = pos + 5; return false
    elseif c == 110 and sub(s, pos, pos + 3) == "null" then pos = pos + 4; return _M.null
    elseif c == 45 or (c and c >= 48 and c <= 57) then
      local t
      t, pos = read_number(s, pos)
      return tonumber(t)
    end
    fail(c and "unexpected character" or "unexpected end", pos)
  end
  local r = value(1)
  ws()
  if pos <= #s then fail("trailing data", pos) end
  return r
end

--- Parse JSON text into an ordered tree. Returns tree or nil, "message at byte N".
function _M.decode_ordered(s, max_depth)
  if type(s) ~= "string" then error("json.decode_ordered: expected a string", 2) end
  return protect(decode, s, max_depth or 64)
end

---------------------------------------------------------------------------
-- tree / Lua value -> text

-- is v a plain Lua table holding exactly the array 1..#v?
local function plain_array(v)
  local len = #v
  if len == 0 then return false end
  local count = 0
  for _ in pairs(v) do count = count + 1 end
  return count == len
end

local function stringify(v, out)
  local t = type(v)
  if v == nil or is_null(v) then out[#out + 1] = "null"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = js_number(v)
  elseif t == "string" then out[#out + 1] = js_string(v)
  elseif t == "table" and (v[ARRAY] or (not v[ORDER] and plain_array(v))) then
    out[#out + 1] = "["
    for i = 1, v[ARRAY] or #v do
      if i > 1 then out[#out + 1] = "," end
      stringify(v[i], out)
    end
    out[#out + 1] = "]"
  elseif t == "table" then
    local keys = v[ORDER]
    if not keys then   -- a plain Lua table: sorted keys, for determinism
      keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("json.stringify: a table mixing array and object keys", 0) end
        keys[#keys + 1] = k
      end
      sort(keys, plain_key_less)
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

--- JSON.stringify of an ordered tree or of plain Lua values (lua-cjson's
-- decoded form works: a table holding 1..n is an array, other plain tables
-- are objects printed with sorted keys, cjson.null is null). Numbers print
-- as JavaScript does, so a finite double survives the round trip exactly.
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

---------------------------------------------------------------------------
-- request helpers

local function skip_ws(s, p) return find(s, "[^ \t\r\n]", p) or #s + 1 end

-- position after the string starting at p (escapes skipped, not decoded)
local function skip_string(s, pos)
  local p, n = cast(U8P, s), #s
  local j = pos
  while j < n do
    local c = p[j]
    if c == 34 then return j + 2 end
    j = j + (c == 92 and 2 or 1)
  end
  fail("unterminated string", pos)
end

-- position after the JSON value starting at p (its syntax is not checked:
-- canonical/decode_ordered do that on the span)
local function skip_value(s, p)
  local c = byte(s, p)
  if c == 34 then
    return skip_string(s, p)
  elseif c == 123 or c == 91 then
    local b, n, depth = cast(U8P, s), #s, 0
    local j = p - 1   -- 0-based
    while j < n do
      local d = b[j]
      if d == 34 then   -- a string: to its closing quote
        j = j + 1
        while j < n and b[j] ~= 34 do j = j + (b[j] == 92 and 2 or 1) end
      elseif d == 123 or d == 91 then
        depth = depth + 1
      elseif d == 125 or d == 93 then
        depth = depth - 1
        if depth == 0 then return j + 2 end
      end
      j = j + 1
    end
    fail("unterminated value", p)
  else
    local a = find(s, "[,}%] \t\r\n]", p)
    if a == p then fail("expected a value", p) end
    return a or #s + 1
  end
end

-- { key = { first, last } }: where each top-level member's value is (the
-- last occurrence of a repeated key: JSON.parse keeps the last value)
local function members(s)
  local spans = {}
  local p = skip_ws(s, 1)
  if byte(s, p) ~= 123 then fail("expected a JSON object", p) end
  p = skip_ws(s, p + 1)
  if byte(s, p) == 125 then return spans end
  while true do
    if byte(s, p) ~= 34 then fail("expected a key", p) end
    local k
    k, p = read_string(s, p)
    p = skip_ws(s, p)
    if byte(s, p) ~= 58 then fail("expected ':'", p) end
    p = skip_ws(s, p + 1)
    local q = skip_value(s, p)
    spans[k] = { p, q - 1 }
    p = skip_ws(s, q)
    local d = byte(s, p)
    if d == 125 then return spans end
    if d ~= 44 then fail("expected ',' or '}'", p) end
    p = skip_ws(s, p + 1)
  end
end

--- Where the values of a JSON object text's top-level members are: returns
-- { key = { first, last } } (byte offsets; for a repeated key its LAST
-- occurrence, the one JSON.parse keeps; keys compared after unescaping), or
-- nil, "message at byte N" when s is not an object. Fast: the values are
-- skipped, not parsed (check s with a parser first).
function _M.members(s)
  if type(s) ~= "string" then error("json.members: expected a string", 2) end
  return protect(members, s)
end

--- json.members for one key: first, last of its value, or nil when absent.
function _M.member(s, key)
  local spans, err = _M.members(s)
  if not spans then return nil, err end
  local span = spans[key]
  if span then return span[1], span[2] end
  return nil
end

--- The exact text whose SHA-256 is the taskHash of a request body: what
--   const t = JSON.parse(body); JSON.stringify({taskType: t.taskType,
--     code: t.code, expectedHash: t.expectedHash, inputData: t.inputData,
--     ...(language !== "javascript" ? {language} : {})})
-- prints (an absent member is undefined and left out; a null one prints
-- null). language: the request's language after defaulting ("javascript"
-- adds nothing, so JavaScript hashes are unchanged by the field). body must
-- be an object text a JSON parser accepted. Returns the text, or nil,
-- "message at byte N".
function _M.task_json(body, language, max_depth)
  if type(body) ~= "string" then error("json.task_json: expected a string", 2) end
  return cjs.task(body, language, max_depth or 64)
end

local request_decoders = {}

--- A request body in one pass over its text (core/src/json.c,
-- wp_json_request): UTF-8, one JSON object that JavaScript's JSON.parse
-- reads as we do (nesting within max_depth: the object is depth 1, its
-- members' values 2; no raw control character, lone surrogate or number
-- beyond the double range anywhere), and the taskHash text (task_json, with the body's own
-- language when it is a string other than "javascript"). Returns
--   t      the members: scalars as lua-cjson gives them (null: cjson.null),
--          other arrays and objects decoded by lua-cjson; inputData, when
--          it is an array or an object, only when read (t's metatable
--          decodes it then: `pairs` does not list it before);
--   text   the taskHash text;
--   input  inputData as sent: { first =, last = (its text: body:sub(first,
--          last)), type = "object"|"array"|"string"|"number"|"boolean"|
--          "null", bytes = (its JSON.stringify text's length; a string's:
--          its bytes) }, or nil when absent
-- or nil, "message at byte N".
function _M.request(body, max_depth)
  if type(body) ~= "string" then error("json.request: expected a string", 2) end
  local t, spans, text = cjs.request(body, max_depth)
  if not t then return nil, spans end
  local dec = request_decoders[max_depth]
  if not dec then
    -- a member's value is one level down
    dec = cjson.new()
    dec.decode_max_depth(max_depth > 1 and max_depth - 1 or 1)
    request_decoders[max_depth] = dec
  end
  local function value(span)
    local v, err = dec.decode(sub(body, span[1], span[2]))
    if v == nil then error("json.request: lua-cjson refused a checked value: " .. tostring(err)) end
    return v
  end
  local input
  for k, span in pairs(spans) do
    if k == "inputData" then
      input = { first = span[1], last = span[2], type = span[3], bytes = span[4] }
    else
      t[k] = value(span)
    end
  end
  if input and t.inputData == nil then
    setmetatable(t, { __index = function(tt, k)
      if k ~= "inputData" then return nil end
      local v = value(spans.inputData)
      rawset(tt, k, v)
      return v
    end })
  end
  return t, text, input
end

local function finite(v, path, depth)
  local t = type(v)
  if t == "number" then
    if v ~= v or v == huge or v == -huge then
      return nil, ("%s: number out of range (JavaScript reads it as %s and prints null)"):format(path,
        v ~= v and "NaN" or (v > 0 and "Infinity" or "-Infinity"))
    end
  elseif t == "table" then
    if depth > 1000 then return nil, path .. ": nested too deeply" end
    local arr = v[ARRAY] or (not v[ORDER] and #v > 0)
    for k, x in pairs(v) do
      if type(k) ~= "table" then
        local ok, why = finite(x, arr and type(k) == "number" and (path .. "[" .. (k - 1) .. "]")
          or (path .. "." .. tostring(k)), depth + 1)
        if not ok then return nil, why end
      end
    end
  end
  return true
end

--- Can JavaScript represent every number of a decoded JSON value exactly as
-- the worker's runtimes do? JSON numbers beyond the double range (1e400,
-- -1e400) become +/-Infinity, which JSON.stringify prints as null: the task
-- would see something other than what the taskHash commits to. v: a value
-- from lua-cjson or decode_ordered; name: its name in the reason (default
-- "value"). Returns true, or nil, "name.path[i]: number out of range ...".
function _M.representable(v, name)
  return finite(v, name or "value", 1)
end

--- Does JavaScript's JSON.parse read this JSON text as lua-cjson did? For a
-- body lua-cjson already accepted (structure, escapes, depth: cjson checked
-- those), one byte pass finds what cjson lets through and JSON.parse would
-- refuse or read differently: raw control characters inside strings, number
-- spellings JSON forbids (01, -01, 1., 1.e5) and numbers beyond the double
-- range (1e400, -1e400: +/-Infinity, which the task would see and
-- JSON.stringify prints as null). Returns true, or nil, "reason at byte N".
function _M.check_js(s)
  if type(s) ~= "string" then error("json.check_js: expected a string", 2) end
  return cjs.check_js(s)
end

--- Is s valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF)?
function _M.utf8_valid(s)
  if type(s) ~= "string" then error("json.utf8_valid: expected a string", 2) end
  return cjs.utf8_valid(s)
end

return _M
