-- SPDX-License-Identifier: MIT
--- wp.logscan: the worker's verdict line in a chunked byte stream
-- (docs/lua-api.md, "wp.logscan").
--
-- The C core (core/src/logscan.c through workproof.core.logscan) finds the
-- candidate lines - `NOTARY_RESULT: ` at the start, after an optional
-- prefix and search window - and hands over their raw payload bytes. What
-- they mean is decided here and nowhere else:
--
--   * the FIRST candidate line is THE verdict line, whatever it holds;
--   * its payload must be a JSON object (decoded by a private cjson.safe
--     instance with strict numbers, so nobody else's cjson settings change
--     what a verdict means); a malformed or non-object payload leaves no
--     result;
--   * every later candidate is a "duplicate" diagnostic (a valid one's
--     table is kept in diag.value), a line over max_line an "oversized" one;
--   * any diagnostic makes the run an ERROR: scanner:verdict() is the one
--     answer the worker host (lua/workproof/worker.lua) acts on.
local core = require "workproof.core"
local cjson = require "cjson.safe"

local C = core.logscan
local type, pairs, error, format, find, setmetatable, tostring =
  type, pairs, error, string.format, string.find, setmetatable, tostring

local _M = {}

local decode
do
  local j = cjson.new()
  j.decode_invalid_numbers(false)   -- NaN, Infinity and hex are not JSON
  decode = j.decode
end

local KNOWN = { marker = true, prefix = true, search = true, max_line = true }

local function opt_error(field, what)
  error(format("wp.logscan.new: opts.%s: %s", field, what), 4)
end

local function opt_string(opts, field)
  local s = opts[field]
  if s == nil then return nil end
  if type(s) ~= "string" then opt_error(field, "string expected, got " .. type(s)) end
  if find(s, "[\r\n]") then opt_error(field, "must not contain CR or LF") end
  if #s > C.MAX_TOKEN then opt_error(field, "longer than 4096 bytes") end
  return s
end

local function opt_size(opts, field, dflt)
  local v = opts[field]
  if v == nil then return dflt end
  if type(v) ~= "number" then opt_error(field, "integer expected, got " .. type(v)) end
  if v % 1 ~= 0 or v < 0 or v > C.MAX_LINE_LIMIT then
    opt_error(field, "must be an integer in 0.." .. format("%d", C.MAX_LINE_LIMIT))
  end
  return v
end

-- JSON type name of a decoded value whose text is not an object
local function json_kind(v)
  local t = type(v)
  if t == "table" then return "array" end
  if t == "number" or t == "string" or t == "boolean" then return t end
  return "null"
end

local state = setmetatable({}, { __mode = "k" })   -- scanner -> its state
local MT = { __metatable = "workproof.logscan" }
local methods = {}
MT.__index = methods
MT.__tostring = function(self)
  local st = state[self]
  return "wp.logscan: " .. (st and tostring(st.raw):match("0x%x+") or "?")
end

local function check(self, fname)
  local st = state[self]
  if not st then error(format("bad argument #1 to '%s' (wp.logscan scanner expected)", fname), 3) end
  return st
end

-- Payload -> value, is_object, err. Objects are told from arrays by the
-- text, as cjson gives a table for both.
local function payload_value(p)
  local v, err = decode(p)
  if v == nil then return nil, false, err end
  return v, find(p, "^[ \t\r\n]*{") ~= nil
end

local function diag(st, diags, kind, line, bytes, message, value)
  local d = { kind = kind, line = line, bytes = bytes, message = message, value = value }
  diags[#diags + 1] = d
  if not st.first_diag then st.first_diag = d end
end

-- the events of one feed/finish call -> results, diags
local function take(st, ev)
  local results, diags = {}, {}
  for i = 1, #ev, 4 do
    local seq, line, bytes, payload = ev[i], ev[i + 1], ev[i + 2], ev[i + 3]
    if seq == 1 then st.verdict_line = line end
    if payload == false then
      diag(st, diags, "oversized", line, bytes, format("%s line of %d bytes exceeds max_line (%d); skipped",
        seq == 1 and "result" or "duplicate result", bytes, st.max_line))
    elseif seq == 1 then
      local v, obj, err = payload_value(payload)
      if obj then
        st.valid, st.result = st.valid + 1, v
        results[#results + 1] = v
      elseif v == nil then
        st.malformed = st.malformed + 1
        diag(st, diags, "malformed", line, bytes, "malformed JSON in the result line: " .. tostring(err))
      else
        st.not_object = st.not_object + 1
        diag(st, diags, "not_object", line, bytes,
          format("the result line holds a JSON %s, not an object", json_kind(v)))
      end
    else
      local v, obj = payload_value(payload)
      diag(st, diags, "duplicate", line, bytes, format("duplicate result line (the verdict line is line %d)%s",
        st.verdict_line or 0, obj and "" or "; its payload is not a valid JSON object"), obj and v or nil)
    end
  end
  return results, diags
end

--- new([opts]) -> scanner (opts: marker, prefix, search, max_line)
function _M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 2)
  end
  for k in pairs(opts) do   -- an unknown field is almost always a typo ("serach")
    if type(k) ~= "string" then error("wp.logscan.new: unknown option key of type " .. type(k), 2) end
    if not KNOWN[k] then error(format("wp.logscan.new: unknown option '%s'", k), 2) end
  end
  local marker, prefix = opt_string(opts, "marker"), opt_string(opts, "prefix")
  if marker == "" then opt_error("marker", "must not be empty") end
  if prefix == "" then prefix = nil end
  local search = opt_size(opts, "search", 0)
  local max_line = opt_size(opts, "max_line", C.MAX_LINE)
  if max_line == 0 then opt_error("max_line", "must be at least 1") end
  if #(prefix or "") + search + #(marker or C.MARKER) > max_line then
    opt_error("search", "prefix + search + marker exceed max_line")
  end
  local raw, err = C.new(marker, prefix, search, max_line)
  if not raw then return nil, err end
  local self = setmetatable({}, MT)
  state[self] = { raw = raw, max_line = max_line, valid = 0, malformed = 0, not_object = 0 }
  return self
end

--- scanner:feed(chunk) -> results, diags
function methods.feed(self, chunk)
  local st = check(self, "feed")
  if type(chunk) ~= "string" then
    error("bad argument #1 to 'feed' (string expected, got " .. type(chunk) .. ")", 2)
  end
  local ev, err = st.raw:feed(chunk)
  if not ev then return nil, err end
  return take(st, ev)
end

--- scanner:finish() -> results, diags (flushes a last line without LF)
function methods.finish(self)
  local st = check(self, "finish")
  local ev, err = st.raw:finish()
  if not ev then return nil, err end
  return take(st, ev)
end

--- scanner:result() -> the verdict line's table, or nil
function methods.result(self)
  return check(self, "result").result
end

--[[ scanner:verdict() -> result | nil, "kind at line N" | nil, nil
The answer on the stream so far: the verdict line's table when it decoded
and nothing else was wrong; the first diagnostic (a duplicate, oversized,
malformed or non-object candidate) as the reason for an ERROR; nil, nil
while no candidate has come. ]]
function methods.verdict(self)
  local st = check(self, "verdict")
  local d = st.first_diag
  if d then return nil, format("%s at line %d", d.kind, d.line) end
  return st.result
end

--- scanner:stats() -> counters
function methods.stats(self)
  local st = check(self, "stats")
  local bytes, lines, candidates, duplicates, oversized, buffer, max_line = st.raw:stats()
  return { bytes = bytes, lines = lines, candidates = candidates, results = st.valid, duplicates = duplicates,
    oversized = oversized, malformed = st.malformed, not_object = st.not_object, buffer = buffer,
    max_line = max_line }
end

return _M
