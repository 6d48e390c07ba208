-- SPDX-License-Identifier: MIT
-- /metrics under hostile clients: request paths and methods never become
-- label values (routes are patterns from a fixed set), the page stays
-- valid exposition text for a real parser (promtool, Debian's `prometheus`
-- package, installed by `make deps`) and its size stays bounded however
-- many unique paths clients send.
local h = require "helpers"
local metrics = require "workproof.metrics"

local CONFIG = [[
return {
  state_dir = "@DIR@/var",
  policies_dir = "@DIR@/policies",
  policies = { rate_limit = { config = { limit = 100000 } } },
}
]]

local PROMTOOL = "/usr/bin/promtool"

-- promtool check metrics reads the page on stdin; returns ok, its output
local function promtool(text)
  local out, st = h.run(PROMTOOL, { "check", "metrics" }, text)
  return st.exit_status == 0 and st.term_signal == 0, out .. st.stderr
end

-- one curl for many requests (a config file: 8 KB paths do not fit an
-- argument list); --request-target sends the target bytes as given
local function requests(srv, method, targets)
  local cfg = os.tmpname()
  local lines = {}
  for i, t in ipairs(targets) do
    if i > 1 then lines[#lines + 1] = "next" end
    lines[#lines + 1] = ('url = "%s/"'):format(srv.url)
    lines[#lines + 1] = ('request = "%s"'):format(method)
    lines[#lines + 1] = ('request-target = "%s"'):format((t:gsub("\\", "\\\\"):gsub('"', '\\"')))
    lines[#lines + 1] = 'output = "/dev/null"'
    lines[#lines + 1] = 'write-out = "%{http_code}\\n"'
    lines[#lines + 1] = "silent"
    lines[#lines + 1] = "globoff"
    lines[#lines + 1] = 'max-time = "60"'
  end
  h.write(cfg, table.concat(lines, "\n") .. "\n")
  local out = h.run("/usr/bin/curl", { "-K", cfg })
  os.remove(cfg)
  local codes = {}
  for c in out:gmatch("(%d+)\n") do codes[#codes + 1] = tonumber(c) end
  return codes
end

describe("metrics exposition (unit)", function()
  it("escapes label values and HELP text as the text format says", function()
    local m = metrics.new()
    m:counter("wp_x_total", "a help\\with\nnewline", { route = 'a"}x{b="c\\d\ne' })
    local text = m:render()
    assert.matches('# HELP wp_x_total a help\\\\with\\nnewline\n', text, 1, true)
    assert.matches('wp_x_total{route="a\\"}x{b=\\"c\\\\d\\ne"} 1\n', text, 1, true)
    local ok, out = promtool(text)
    assert.is_true(ok, out)
  end)

  it("promtool rejects a page with an unescaped label value (the check can fail)", function()
    local ok = promtool('# HELP wp_x_total x\n# TYPE wp_x_total counter\nwp_x_total{route="a"}x{b="c"} 1\n')
    assert.is_false(ok)
  end)

  it("metrics.key preformats the same key as a labels table", function()
    local m = metrics.new()
    local key = metrics.key({ status = 405, route = '/x"y' })
    assert.equal('route="/x\\"y",status="405"', key)
    m:counter("wp_y_total", "y", key)
    m:counter("wp_y_total", "y", { route = '/x"y', status = 405 })
    assert.equal(2, m:value("wp_y_total", key))
  end)
end)

describe("/metrics under hostile requests #integration", function()
  local srv = h.controller_for(CONFIG)

  local function page() return (h.metrics(srv)) end

  local function value(text, name)
    return tonumber(text:match("\n" .. name:gsub("[{}%.%-\"]", "%%%0") .. " (%S+)\n"))
  end

  it("counters are named _total, build_info and the standard process_* metrics; promtool has nothing to say",
    function()
      local text = page()
      local ok, out = promtool(text)
      assert.is_true(ok, out)
      assert.equal("", out, "promtool lint findings")
      for _, k in ipairs({ "spawned", "finished", "timed_out", "crashed", "reaped", "spawn_failed", "warm_used",
        "warm_lost" }) do
        assert.matches("# TYPE wp_workers_" .. k .. "_total counter\n", text, 1, true)
        assert.not_matches("\nwp_workers_" .. k .. " ", text, 1, true)
      end
      local wp = require "workproof"
      assert.matches(('workproof_build_info{arch="%s",luajit="%s",os="%s",version="%s"} 1\n'):format(
        jit.arch, jit.version, jit.os, wp.version), text, 1, true)
      assert.not_matches("wp_process_", text, 1, true)
      assert.matches("# TYPE process_cpu_seconds_total counter\n", text, 1, true)
      for _, g in ipairs({ "resident_memory_bytes", "virtual_memory_bytes", "start_time_seconds", "open_fds",
        "max_fds" }) do
        assert.matches("# TYPE process_" .. g .. " gauge\n", text, 1, true)
      end
      -- against what ps(1) says about the controller
      local pid = tostring(srv.proc.pid)
      local ps = h.run("/bin/ps", { "-o", "etimes=,rss=,times=", "-p", pid })
      local etimes, rss_kb, cpu_s = ps:match("(%d+)%s+(%d+)%s+(%d+)")
      assert.is_truthy(etimes, ps)
      local now = require("workproof.host").time()
      assert.near(now - tonumber(etimes), value(text, "process_start_time_seconds"), 2.5)
      local rss = value(text, "process_resident_memory_bytes")
      assert.is_true(rss > tonumber(rss_kb) * 1024 * 0.5 and rss < tonumber(rss_kb) * 1024 * 2,
        ("rss %d vs ps %d KiB"):format(rss, rss_kb))
      local cpu = value(text, "process_cpu_seconds_total")
      assert.is_true(cpu > 0 and cpu <= tonumber(cpu_s) + 1.5, ("cpu %s vs ps %s s"):format(cpu, cpu_s))
      local fds, max = value(text, "process_open_fds"), value(text, "process_max_fds")
      assert.is_true(fds > 3 and fds < max, ("%s of %s"):format(fds, max))
    end)

  it("hostile paths and methods label with route patterns; the page parses", function()
    -- 405s on every known route, with paths and methods a client chose
    local codes = requests(srv, "DELETE", { '/verify/a"}x{b="c', "/verify/a\\b", "/verify", "/health",
      "/metrics", "/info", "/admin/reload" })
    assert.same({ 405, 405, 405, 405, 405, 405, 405 }, codes)
    codes = requests(srv, "BREW", { '/verify/"}', "/nope/%0a", '/x"}y{z="1' })
    assert.same({ 405, 404, 404 }, codes)
    codes = requests(srv, "GET", { "/verify/" .. ("ab"):rep(40), '/q"}{' })
    assert.same({ 404, 404 }, codes)

    local text = page()
    local ok, out = promtool(text)
    assert.is_true(ok, out .. "\n" .. text)
    -- the only route label values are patterns
    local allowed = { ["/health"] = true, ["/verify"] = true, ["/verify/:id"] = true, ["/info"] = true,
      ["/metrics"] = true, ["/admin/reload"] = true, other = true }
    local n = 0
    for route in text:gmatch('route="([^"]*)"') do
      assert.is_true(allowed[route] == true, "route label " .. route)
      n = n + 1
    end
    assert.is_true(n > 0)
    assert.matches('wp_http_requests_total{route="/verify/:id",status="405"} 3', text, 1, true)
    assert.matches('wp_http_requests_total{route="/verify/:id",status="404"} 1', text, 1, true)
    assert.matches('wp_http_requests_total{route="/health",status="405"} 1', text, 1, true)
    assert.matches('wp_http_requests_total{route="other",status="404"} 3', text, 1, true)
    assert.not_matches("BREW", text, 1, true)
    assert.not_matches("nope", text, 1, true)
  end)

  it("300 requests with unique 8 KB paths leave the page's size bounded", function()
    local before = #page()
    local targets = {}
    for i = 1, 150 do
      targets[#targets + 1] = ("/verify/%04d"):format(i) .. ("f"):rep(8192)
    end
    local codes = requests(srv, "DELETE", targets)
    assert.equal(150, #codes)
    targets = {}
    for i = 1, 150 do
      targets[#targets + 1] = ("/unknown/%04d/"):format(i) .. ("z"):rep(8192)
    end
    codes = requests(srv, "POST", targets)
    assert.equal(150, #codes)
    local text = page()
    -- the same series as before (counts changed, at most a few new
    -- (route, status) pairs): nothing grows with the paths
    assert.is_true(#text < before + 4096, ("page grew from %d to %d bytes"):format(before, #text))
    assert.is_true(#text < 64 * 1024, "page is " .. #text .. " bytes")
    assert.not_matches(("f"):rep(64), text, 1, true)
    local ok, out = promtool(text)
    assert.is_true(ok, out)
    -- /health answered promptly after the flood
    local t0 = require("workproof.host").now()
    local st = h.http("GET", srv.url .. "/health")
    assert.equal(200, st)
    assert.is_true(require("workproof.host").now() - t0 < 1)
  end)
end)
