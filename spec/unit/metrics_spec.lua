-- SPDX-License-Identifier: MIT
-- workproof.metrics: counters, gauges and histograms rendered as text
-- exposition format 0.0.4, parsed back here by a reader written from the
-- format's grammar, and checked by promtool (Debian's `prometheus`
-- package, installed by `make deps`) on rendered pages, random label values
-- included. The /metrics endpoint under hostile clients is
-- spec/integration/metrics_spec.lua.
local h = require "helpers"
local metrics = require "workproof.metrics"

local function promtool(text)
  local out, st = h.run("/usr/bin/promtool", { "check", "metrics" }, text)
  return st.exit_status == 0 and st.term_signal == 0, out .. st.stderr
end

-- a label value as the format quotes it: \\, \" and \n are the only escapes
local function unescape(s)
  return (s:gsub("\\(.)", function(c)
    if c == "n" then return "\n" end
    assert(c == "\\" or c == '"', "bad escape \\" .. c)
    return c
  end))
end

-- parse a page: { families = { name = { help, type } }, samples = { {name, labels, value} } }
local function parse(text)
  local fam, samples = {}, {}
  assert.equal("\n", text:sub(-1))
  for line in text:gmatch("([^\n]*)\n") do
    local kw, name, rest = line:match("^# (%u+) ([%a_:][%w_:]*) (.*)$")
    if kw == "HELP" then
      fam[name] = fam[name] or {}
      fam[name].help = unescape(rest)
    elseif kw == "TYPE" then
      fam[name] = fam[name] or {}
      fam[name].type = rest
    else
      local n, i = line:match("^([%a_:][%w_:]*)()")
      assert(n, "bad sample line: " .. line)
      local labels = {}
      if line:sub(i, i) == "{" then
        i = i + 1
        while line:sub(i, i) ~= "}" do
          local k, j = line:match('^([%a_][%w_]*)="()', i)
          assert(k, "bad label at " .. i .. ": " .. line)
          -- the value runs to the first " not preceded by an odd run of backslashes
          local v = {}
          while true do
            local c = line:sub(j, j)
            assert(c ~= "", "unterminated label value: " .. line)
            if c == "\\" then v[#v + 1] = line:sub(j, j + 1); j = j + 2
            elseif c == '"' then break
            else v[#v + 1] = c; j = j + 1 end
          end
          labels[k] = unescape(table.concat(v))
          i = j + 1
          if line:sub(i, i) == "," then i = i + 1 end
        end
        i = i + 1
      end
      local value = line:sub(i):match("^ (%S+)$")
      assert(value, "bad value: " .. line)
      local num = value == "+Inf" and math.huge or value == "-Inf" and -math.huge or
        value == "NaN" and 0 / 0 or tonumber(value)
      assert(num, "bad number: " .. value)
      samples[#samples + 1] = { name = n, labels = labels, value = num, text = value }
    end
  end
  return { families = fam, samples = samples }
end

local function find(page, name, labels)
  for _, s in ipairs(page.samples) do
    if s.name == name then
      local same = true
      for k, v in pairs(labels or {}) do if s.labels[k] ~= v then same = false end end
      for k in pairs(s.labels) do if not (labels or {})[k] then same = false end end
      if same then return s end
    end
  end
end

describe("metrics #host", function()
  it("counts counters per label set, in the order first seen", function()
    local m = metrics.new()
    m:counter("wp_req_total", "Requests", { route = "/verify", status = "200" })
    m:counter("wp_req_total", "Requests", { status = "200", route = "/verify" }, 2)   -- same series
    m:counter("wp_req_total", "Requests", { route = "/health", status = "200" })
    m:counter("wp_other_total", "Other")
    assert.equal(3, m:value("wp_req_total", { route = "/verify", status = "200" }))
    assert.equal(1, m:value("wp_req_total", { route = "/health", status = "200" }))
    assert.equal(0, m:value("wp_req_total", { route = "/nope" }))
    assert.equal(0, m:value("wp_missing"))
    assert.equal(1, m:value("wp_other_total"))
    local text = m:render()
    assert.equal(table.concat({
      "# HELP wp_req_total Requests",
      "# TYPE wp_req_total counter",
      'wp_req_total{route="/verify",status="200"} 3',
      'wp_req_total{route="/health",status="200"} 1',
      "# HELP wp_other_total Other",
      "# TYPE wp_other_total counter",
      "wp_other_total 1",
      "" }, "\n"), text)
    local ok, out = promtool(text)
    assert.is_true(ok, out)
  end)

  it("takes a preformatted key as the same series as its table", function()
    local m = metrics.new()
    local key = metrics.key({ status = 404, route = "/x" })
    assert.equal('route="/x",status="404"', key)
    m:counter("wp_c_total", "c", key)
    m:counter("wp_c_total", "c", { route = "/x", status = "404" })
    assert.equal(2, m:value("wp_c_total", key))
    assert.equal("", metrics.key({}))
    assert.equal("", metrics.key(nil))
  end)

  it("sets counter totals counted elsewhere and gauges", function()
    local m = metrics.new()
    m:counter_total("wp_accepted_total", "Accepted", nil, 41)
    m:counter_total("wp_accepted_total", "Accepted", nil, 42)
    m:gauge("wp_active", "Active", 3)
    m:gauge("wp_active", "Active", 1)
    m:gauge("wp_state", "State", 1, { state = "closed" })
    m:gauge("wp_state", "State", 0, { state = "open" })
    m:gauge("wp_temp", "Temperature", -2.5)
    assert.equal(42, m:value("wp_accepted_total"))
    assert.equal(1, m:value("wp_active"))
    local page = parse(m:render())
    assert.equal("counter", page.families.wp_accepted_total.type)
    assert.equal("gauge", page.families.wp_active.type)
    assert.equal(42, find(page, "wp_accepted_total").value)
    assert.equal(1, find(page, "wp_active").value)
    assert.equal(1, find(page, "wp_state", { state = "closed" }).value)
    assert.equal(0, find(page, "wp_state", { state = "open" }).value)
    assert.equal(-2.5, find(page, "wp_temp").value)
    assert.is_true((promtool(m:render())))
  end)

  it("renders histograms with cumulative buckets, +Inf, _sum and _count", function()
    local m = metrics.new()
    local b = { 0.1, 1, 10 }
    for _, v in ipairs({ 0.05, 0.1, 0.5, 2, 20, 20 }) do
      m:observe("wp_lat_seconds", "Latency", v, { route = "/verify" }, b)
    end
    m:observe("wp_lat_seconds", "Latency", 0.2, { route = "/health" })    -- buckets fixed by the first call
    assert.equal(6, m:value("wp_lat_seconds", { route = "/verify" }))
    local text = m:render()
    local page = parse(text)
    assert.equal("histogram", page.families.wp_lat_seconds.type)
    local want = { ["0.1"] = 2, ["1"] = 3, ["10"] = 4, ["+Inf"] = 6 }
    for le, n in pairs(want) do
      local s = find(page, "wp_lat_seconds_bucket", { route = "/verify", le = le })
      assert(s, le)
      assert.equal(n, s.value)
    end
    assert.near(42.65, find(page, "wp_lat_seconds_sum", { route = "/verify" }).value, 1e-9)
    assert.equal(6, find(page, "wp_lat_seconds_count", { route = "/verify" }).value)
    assert.equal(1, find(page, "wp_lat_seconds_bucket", { route = "/health", le = "1" }).value)
    assert.equal(0, find(page, "wp_lat_seconds_bucket", { route = "/health", le = "0.1" }).value)
    assert.is_nil(find(page, "wp_lat_seconds_bucket", { route = "/health", le = "0.25" }))
    -- no labels: the bucket carries only le
    local m2 = metrics.new()
    m2:observe("wp_t_seconds", "T", 0.003)
    local p2 = parse(m2:render())
    assert.equal(#metrics.DEFAULT_BUCKETS + 3, #p2.samples)
    assert.equal(1, find(p2, "wp_t_seconds_bucket", { le = "0.005" }).value)
    assert.equal(0, find(p2, "wp_t_seconds_bucket", { le = "0.0025" }).value)
    assert.equal(1, find(p2, "wp_t_seconds_count").value)
    local ok, out = promtool(text .. m2:render())
    assert.is_true(ok, out)
  end)

  it("escapes label values and HELP text, and they parse back to the original", function()
    local m = metrics.new()
    local nasty = 'a"}x{b="c\\d\ne\\n\\"'
    m:counter("wp_x_total", "a help\\with\nnewline and \"quotes\"", { route = nasty, z = "ok" })
    local text = m:render()
    assert.truthy(text:find('# HELP wp_x_total a help\\\\with\\nnewline and "quotes"\n', 1, true))
    local page = parse(text)
    assert.equal("a help\\with\nnewline and \"quotes\"", page.families.wp_x_total.help)
    local s = find(page, "wp_x_total", { route = nasty, z = "ok" })
    assert(s, text)
    assert.equal(1, s.value)
    local ok, out = promtool(text)
    assert.is_true(ok, out)
    assert.equal('\\\\\\"\\n', metrics.escape('\\"\n'))
  end)

  it("random label values (any bytes but NUL) round-trip and pass promtool", function()
    local m = metrics.new()
    local r = h.rng(402)
    local values = {}
    for i = 1, 200 do
      local t = {}
      for j = 1, r(24) do
        -- mostly the characters that need care, some printable ASCII, some UTF-8
        local k = r(6)
        t[j] = k == 1 and "\\" or k == 2 and '"' or k == 3 and "\n" or k == 4 and "é" or
          string.char(31 + r(95))
      end
      values[i] = table.concat(t) .. i        -- distinct
      m:counter("wp_rand_total", "Random", { v = values[i] }, i)
    end
    local text = m:render()
    local page = parse(text)
    assert.equal(200, #page.samples)
    for i, v in ipairs(values) do
      local s = find(page, "wp_rand_total", { v = v })
      assert(s, ("value %d %q lost"):format(i, v))
      assert.equal(i, s.value)
    end
    local ok, out = promtool(text)
    assert.is_true(ok, out)
  end)

  it("renders numbers exactly and the special values as the format spells them", function()
    local m = metrics.new()
    m:gauge("wp_g", "g", 0 / 0, { v = "nan" })
    m:gauge("wp_g", "g", math.huge, { v = "inf" })
    m:gauge("wp_g", "g", -math.huge, { v = "-inf" })
    m:gauge("wp_g", "g", 2 ^ 53, { v = "big" })
    m:gauge("wp_g", "g", 1234567890.123456, { v = "frac" })
    m:gauge("wp_g", "g", 0.1, { v = "tenth" })
    m:gauge("wp_g", "g", 1e-300, { v = "tiny" })
    m:gauge("wp_g", "g", 999999999999999, { v = "int" })
    local text = m:render()
    local page = parse(text)
    assert.equal("NaN", find(page, "wp_g", { v = "nan" }).text)
    assert.equal("+Inf", find(page, "wp_g", { v = "inf" }).text)
    assert.equal("-Inf", find(page, "wp_g", { v = "-inf" }).text)
    assert.equal("999999999999999", find(page, "wp_g", { v = "int" }).text)
    assert.equal("0.1", find(page, "wp_g", { v = "tenth" }).text)
    for _, v in ipairs({ "big", "frac", "tiny", "int" }) do
      local s = find(page, "wp_g", { v = v })
      assert.equal(tonumber(s.text), s.value)
    end
    assert.equal(2 ^ 53, find(page, "wp_g", { v = "big" }).value)
    assert.equal(1234567890.123456, find(page, "wp_g", { v = "frac" }).value)
    assert.equal(1e-300, find(page, "wp_g", { v = "tiny" }).value)
    local ok, out = promtool(text)
    assert.is_true(ok, out)
  end)

  it("refuses one name with two kinds (the page has one TYPE line per name)", function()
    local m = metrics.new()
    m:counter("wp_a_total", "a")
    assert.has_error(function() m:gauge("wp_a_total", "a", 1) end, "metric wp_a_total is a counter, not a gauge")
    assert.has_error(function() m:observe("wp_a_total", "a", 1) end)
    m:gauge("wp_b", "b", 1)
    assert.has_error(function() m:counter("wp_b", "b") end)
    -- counter_total is a counter
    m:counter_total("wp_a_total", "a", nil, 5)
    assert.equal(5, m:value("wp_a_total"))
  end)

  it("an empty registry renders an empty page", function()
    assert.equal("", metrics.new():render())
  end)
end)
