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
-- text -> text: JSON.stringify(JSON.parse(text)) without building a tree

local function hex_lower(c) return (c >= 48 and c <= 57) or (c >= 97 and c <= 102) end
local SHORT_U = { [8] = true, [9] = true, [10] = true, [12] = true, [13] = true }

-- s[pos] is a quote. Returns the index of the closing quote and whether the
-- text in between is already what JSON.stringify prints (its escapes are
-- \" \\ \b \f \n \r \t and \u00xx, lowercase, for the other control
-- characters); nil when unterminated or holding a raw control character
-- (read_string then reports it). Third result: whether there were escapes.
local function scan_string(s, pos)
  local p, n, canon, esc = cast(U8P, s), #s, true, false
  local j = pos   -- 0-based index of the byte after the quote
  while j < n do
    local c = p[j]
    if c == 34 then return j + 1, canon, esc end
    if c == 92 then
      esc = true
      local e = p[j + 1]   -- at worst the string's NUL terminator
      if e == 117 then
        if j + 5 >= n or p[j + 2] ~= 48 or p[j + 3] ~= 48 or (p[j + 4] ~= 48 and p[j + 4] ~= 49)
          or not hex_lower(p[j + 5]) or SHORT_U[(p[j + 4] - 48) * 16 + p[j + 5] - (p[j + 5] <= 57 and 48 or 87)] then
          canon = false
        end
      elseif not (e == 34 or e == 92 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116) then
        canon = false
      end
      j = j + 2
    elseif c < 32 then
      return nil
    else
      j = j + 1
    end
  end
  return nil
end

-- Does JavaScript print this number token as written? True for the usual
-- spellings: integers of <= 15 digits, and decimals of <= 15 significant
-- digits without an exponent, leading zeros (but "0."), trailing zeros or
-- more than five zeros after "0." (0.0000001 prints as 1e-7). Such a
-- decimal reads back as the one double nearest it, and no shorter decimal
-- reads as that double. c: the first byte; len: #t.
local function plain_number(t, c, len)
  local neg = c == 45 and 1 or 0
  if len - neg > 17 then return false end
  if not find(t, ".", 1, true) then   -- an integer (no exponent: e/E fail the test below)
    return len - neg <= 15 and not find(t, "[^%d]", 1 + neg) and byte(t, 1 + neg) ~= 48
  end
  if byte(t, len) == 48 then return false end   -- trailing zero (or "x.0")
  if find(t, "^-?[1-9]%d*%.%d+$") then return len - neg <= 16 end
  local zeros, rest = t:match("^%-?0%.(0*)([1-9]%d*)$")
  return zeros ~= nil and #zeros <= 5 and #rest <= 15
end

-- string.buffer (LuaJIT 2.1) appends raw bytes without making Lua strings
local has_sbuf, sbuf = pcall(require, "string.buffer")
local cbuf = has_sbuf and sbuf.new() or nil

-- s[pos] is a quote: the string as JSON.stringify prints it and the position
-- after the closing quote, rewriting only the escapes that need it (one
-- pass; the fallback without string.buffer decodes and re-escapes).
local function convert_string(s, pos)
  if not cbuf then
    local str, q = read_string(s, pos)
    return js_string(str), q
  end
  local p, n, buf = cast(U8P, s), #s, cbuf
  buf:reset()
  buf:put('"')
  local j, run = pos, pos   -- 0-based: the byte looked at, the start of the plain run
  while j < n do
    local c = p[j]
    if c == 34 then
      buf:putcdata(p + run, j - run)
      buf:put('"')
      return buf:tostring(), j + 2
    elseif c < 32 then
      fail("control character in string", j + 1)
    elseif c == 92 then
      buf:putcdata(p + run, j - run)
      local e = p[j + 1]
      if e == 117 then
        local h = sub(s, j + 3, j + 6)
        if not find(h, "^%x%x%x%x$") then fail("bad \\u escape", j + 1) end
        local cp = tonumber(h, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and p[j] == 92 and p[j + 1] == 117 then
          local l = sub(s, j + 3, j + 6)
          local lo = find(l, "^%x%x%x%x$") and tonumber(l, 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          end
        end
        if cp < 32 or cp == 34 or cp == 92 then buf:put(ESCAPE[char(cp)])
        elseif cp >= 0xD800 and cp <= 0xDFFF then buf:put(format("\\u%04x", cp))
        else buf:put(utf8_char(cp)) end
      elseif e == 47 then   -- \/
        buf:put("/")
        j = j + 2
      elseif e == 34 or e == 92 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116 then
        buf:putcdata(p + j, 2)
        j = j + 2
      else
        fail("bad escape", j + 1)
      end
      run = j
    else
      j = j + 1
    end
  end
  fail("unterminated string", pos)
end

-- s: the text; from, to: the span of one value in it (default: all of s)
local function canonical(s, max_depth, from, to)
  local pos, out, n = from or 1, {}, 0
  local value
  local function ws()
    local c = byte(s, pos)
    if c == 32 or c == 9 or c == 10 or c == 13 then pos = find(s, "[^ \t\r\n]", pos) or #s + 1 end
  end
  -- an object's members were printed in source order into out[first..n],
  -- one piece list per member; print them again in JavaScript's order
  local function reorder(first, rec, m)
    local pieces, keys, seen = {}, {}, {}
    for i = 1, m do
      local k = rec[3 * i - 2]
      if not seen[k] then keys[#keys + 1] = k end
      seen[k] = concat(out, "", rec[3 * i - 1], rec[3 * i])   -- the last value wins
    end
    for i, k in ipairs(js_key_order(keys)) do pieces[i] = seen[k] end
    n = first
    out[n] = "{" .. concat(pieces, ",") .. "}"
  end
  value = function(depth)
    if depth > max_depth then fail("nesting too deep", pos) end
    ws()
    local c = byte(s, pos)
    if c == 34 then   -- "
      local q, canon = scan_string(s, pos)
      n = n + 1
      if canon then
        out[n] = sub(s, pos, q)
        pos = q + 1
      else
        out[n], pos = convert_string(s, pos)
      end
    elseif c == 123 then   -- {
      pos = pos + 1
      ws()
      n = n + 1
      if byte(s, pos) == 125 then pos = pos + 1; out[n] = "{}"; return end
      out[n] = "{"
      local first, rec, m, seen, odd = n, {}, 0, {}, false
      while true do
        ws()
        if byte(s, pos) ~= 34 then fail("expected a key", pos) end
        local k, p
        local q, canon, esc = scan_string(s, pos)
        if q and not esc then
          k, p = sub(s, pos + 1, q - 1), q + 1
        else
          k, p = read_string(s, pos)
        end
        if m > 0 then n = n + 1; out[n] = "," end
        n = n + 1
        out[n] = (canon and sub(s, pos, q) or js_string(k)) .. ":"
        m = m + 1
        rec[3 * m - 2], rec[3 * m - 1] = k, n
        if seen[k] or is_index(k) then odd = true end
        seen[k] = true
        pos = p
        ws()
        if byte(s, pos) ~= 58 then fail("expected ':'", pos) end
        pos = pos + 1
        value(depth + 1)
        rec[3 * m] = n
        ws()
        local d = byte(s, pos)
        pos = pos + 1
        if d == 125 then break end
        if d ~= 44 then fail("expected ',' or '}'", pos - 1) end
      end
      if odd then reorder(first, rec, m) else n = n + 1; out[n] = "}" end
    elseif c == 91 then   -- [
      pos = pos + 1
      ws()
      n = n + 1
      if byte(s, pos) == 93 then pos = pos + 1; out[n] = "[]"; return end
      out[n] = "["
      while true do
        value(depth + 1)
        ws()
        local d = byte(s, pos)
        pos = pos + 1
        if d == 93 then break end
        if d ~= 44 then fail("expected ',' or ']'", pos - 1) end
        n = n + 1; out[n] = ","
      end
      n = n + 1; out[n] = "]"
    elseif c == 45 or (c and c >= 48 and c <= 57) then
      local t, p = read_number(s, pos)
      pos = p
      n = n + 1
      local len = #t
      out[n] = plain_number(t, c, len) and t or js_number(tonumber(t))
    elseif c == 116 and sub(s, pos, pos + 3) == "true" then pos = pos + 4; n = n + 1; out[n] = "true"
    elseif c == 102 and sub(s, pos, pos + 4) == "false" then pos = pos + 5; n = n + 1; out[n] = "false"
    elseif c == 110 and sub(s, pos, pos + 3) == "null" then pos = pos + 4; n = n + 1; out[n] = "null"
    else
      fail(c and "unexpected character" or "unexpected end", pos)
    end
  end
  value(1)
  if to then
    if pos ~= to + 1 then fail("trailing data", pos) end
  else
    ws()
    if pos <= #s then fail("trailing data", pos) end
  end
  return concat(out, "", 1, n)
end

--- JSON.stringify(JSON.parse(s)) of a JSON text. Returns the text or nil,
-- "message at byte N". max_depth: nesting limit (default 64).
function _M.canonical(s, max_depth)
  if type(s) ~= "string" then error("json.canonical: expected a string", 2) end
  return protect(canonical, s, max_depth or 64)
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

local TASK_KEYS = { "taskType", "code", "expectedHash", "inputData" }

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
  local spans, err = _M.members(body)
  if not spans then return nil, err end
  local parts, n = { "{" }, 1
  for _, k in ipairs(TASK_KEYS) do
    local span = spans[k]
    if span then
      local c, cerr = protect(canonical, body, max_depth or 64, span[1], span[2])
      if not c then return nil, cerr end
      parts[n + 1] = (n > 1 and ',"' or '"') .. k .. '":'
      parts[n + 2] = c
      n = n + 2
    end
  end
  if language ~= nil and language ~= "javascript" then
    parts[n + 1] = (n > 1 and ',"' or '"') .. 'language":'
    parts[n + 2] = js_string(language)
    n = n + 2
  end
  parts[n + 1] = "}"
  return concat(parts)
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

local function is_digit(d) return d >= 48 and d <= 57 end

--- Does JavaScript's JSON.parse read this JSON text as lua-cjson did? For a
-- body lua-cjson already accepted (structure, escapes, depth: cjson checked
-- those), one byte pass finds what cjson lets through and JSON.parse would
-- refuse or read differently: raw control characters inside strings, number
-- spellings JSON forbids (01, -01, 1., 1.e5) and numbers beyond the double
-- range (1e400, -1e400: +/-Infinity, which the task would see and
-- JSON.stringify prints as null). Returns true, or nil, "reason at byte N".
function _M.check_js(s)
  if type(s) ~= "string" then error("json.check_js: expected a string", 2) end
  local p, n = cast(U8P, s), #s
  local j = 0
  while j < n do
    local c = p[j]
    if c == 34 then
      j = j + 1
      while true do
        if j >= n then return nil, format("unterminated string at byte %d", j + 1) end
        local d = p[j]
        if d == 34 then break end
        if d < 32 then return nil, format("control character in a string at byte %d", j + 1) end
        j = j + (d == 92 and 2 or 1)
      end
      j = j + 1
    elseif c == 45 or is_digit(c) then
      local a = j
      if c == 45 then j = j + 1 end
      local first = p[j]   -- p[n] is the string's NUL terminator
      if not is_digit(first) then return nil, format("bad number at byte %d", a + 1) end
      j = j + 1
      while is_digit(p[j]) do j = j + 1 end
      if first == 48 and j - a > (c == 45 and 2 or 1) then
        return nil, format("number with a leading zero at byte %d", a + 1)
      end
      local check = j - a > 300
      if p[j] == 46 then
        j = j + 1
        if not is_digit(p[j]) then return nil, format("bad number at byte %d", a + 1) end
        while is_digit(p[j]) do j = j + 1 end
      end
      if p[j] == 101 or p[j] == 69 then
        j = j + 1
        if p[j] == 43 or p[j] == 45 then j = j + 1 end
        if not is_digit(p[j]) then return nil, format("bad number at byte %d", a + 1) end
        while is_digit(p[j]) do j = j + 1 end
        check = true
      end
      if check then
        local x = tonumber(sub(s, a + 1, j))
        if x == huge or x == -huge then
          return nil, format("number out of range at byte %d (%s reads as %sInfinity)", a + 1,
            sub(s, a + 1, math.min(j, a + 24)) .. (j - a > 24 and "..." or ""), x < 0 and "-" or "")
        end
      end
    else
      j = j + 1
    end
  end
  return true
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
