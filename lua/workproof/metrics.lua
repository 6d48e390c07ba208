-- SPDX-License-Identifier: MIT
--- Prometheus metrics (text exposition format 0.0.4). Host-owned: counters
-- survive policy reloads.
--
--   local m = metrics.new()
--   m:counter("wp_requests_total", "HTTP requests", { route = "/verify", status = "200" })
--   m:observe("wp_request_seconds", "Request latency", 0.012, { route = "/verify" })
--   m:gauge("wp_workers_active", "Active workers", 3)
--   labels may also be a key string preformatted once with metrics.key(labels)
--   (hot paths): 'route="/health",status="200"'
--
-- Label values are escaped as the text format says (backslash, double
-- quote, newline), HELP text too (backslash, newline). Callers keep label
-- values to a fixed set (route patterns, never raw request paths): every
-- distinct value is a series for good.

--   m:render() -> text
local pairs, ipairs, tostring, type, format, concat, sort =
  pairs, ipairs, tostring, type, string.format, table.concat, table.sort

local _M = {}
local mt = { __index = _M }

_M.DEFAULT_BUCKETS = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 }

function _M.new()
  return setmetatable({ families = {}, order = {} }, mt)
end

local function escape(v)
  return (tostring(v):gsub("[\\\n\"]", { ["\\"] = "\\\\", ["\n"] = "\\n", ['"'] = '\\"' }))
end
_M.escape = escape

local function escape_help(v)
  return (tostring(v):gsub("[\\\n]", { ["\\"] = "\\\\", ["\n"] = "\\n" }))
end

local function label_key(labels)
  if not labels then return "" end
  -- a string is an already formatted key (hot paths format it once)
  if type(labels) == "string" then return labels end
  local keys = {}
  for k in pairs(labels) do keys[#keys + 1] = k end
  sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = k .. '="' .. escape(labels[k]) .. '"' end
  return concat(parts, ",")
end

--- The label key string of a labels table (sorted names, escaped values),
-- to format once and pass instead of the table on hot paths.
function _M.key(labels) return label_key(labels) end

local function family(self, name, help, kind)
  local f = self.families[name]
  if not f then
    f = { name = name, help = help, kind = kind, series = {}, keys = {} }
    self.families[name] = f
    self.order[#self.order + 1] = name
  elseif f.kind ~= kind then
    -- one name, one TYPE line: a second kind would be rendered as the first
    error(("metric %s is a %s, not a %s"):format(name, f.kind, kind), 3)
  end
  return f
end

local function series(f, labels)
  local key = label_key(labels)
  local s = f.series[key]
  if not s then
    s = { value = 0 }
    f.series[key] = s
    f.keys[#f.keys + 1] = key
  end
  return s, key
end

--- Add n (default 1) to a counter.
function _M:counter(name, help, labels, n)
  local s = series(family(self, name, help, "counter"), labels)
  s.value = s.value + (n or 1)
end

--- Set a counter to a total counted elsewhere (e.g. in C).
function _M:counter_total(name, help, labels, total)
  local s = series(family(self, name, help, "counter"), labels)
  s.value = total
end

--- Set a gauge.
function _M:gauge(name, help, value, labels)
  local s = series(family(self, name, help, "gauge"), labels)
  s.value = value
end

--- Observe a value into a histogram.
function _M:observe(name, help, value, labels, buckets)
  local f = family(self, name, help, "histogram")
  f.buckets = f.buckets or buckets or _M.DEFAULT_BUCKETS
  local s = series(f, labels)
  if not s.counts then
    s.counts, s.sum, s.count = {}, 0, 0
    for i = 1, #f.buckets do s.counts[i] = 0 end
  end
  for i, le in ipairs(f.buckets) do
    if value <= le then s.counts[i] = s.counts[i] + 1 end
  end
  s.sum = s.sum + value
  s.count = s.count + 1
end

--- Current value of a counter or gauge series (for specs and /info).
function _M:value(name, labels)
  local f = self.families[name]
  local s = f and f.series[label_key(labels)]
  return s and (s.count or s.value) or 0
end

-- the text format's spellings of the special values; otherwise the shortest
-- of %.15g/%.17g that reads back as the same double (%.9g lost a counter's
-- last digits past 1e9 and rounded sums)
local function num(v)
  if v ~= v then return "NaN" end
  if v == math.huge then return "+Inf" end
  if v == -math.huge then return "-Inf" end
  if v == math.floor(v) and math.abs(v) < 1e15 then return format("%d", v) end
  local s = format("%.15g", v)
  if tonumber(s) ~= v then s = format("%.17g", v) end
  return s
end

--- The exposition text. Extra gauges may be refreshed by the caller first.
function _M:render()
  local out = {}
  for _, name in ipairs(self.order) do
    local f = self.families[name]
    out[#out + 1] = "# HELP " .. name .. " " .. escape_help(f.help)
    out[#out + 1] = "# TYPE " .. name .. " " .. f.kind
    for _, key in ipairs(f.keys) do
      local s = f.series[key]
      local lb = key ~= "" and ("{" .. key .. "}") or ""
      if f.kind == "histogram" then
        local sep = key ~= "" and (key .. ",") or ""
        for i, le in ipairs(f.buckets) do
          out[#out + 1] = format('%s_bucket{%sle="%s"} %s', name, sep, num(le), num(s.counts[i]))
        end
        out[#out + 1] = format('%s_bucket{%sle="+Inf"} %s', name, sep, num(s.count))
        out[#out + 1] = format("%s_sum%s %s", name, lb, num(s.sum))
        out[#out + 1] = format("%s_count%s %s", name, lb, num(s.count))
      else
        out[#out + 1] = name .. lb .. " " .. num(s.value)
      end
    end
  end
  out[#out + 1] = ""
  return concat(out, "\n")
end

return _M
