-- SPDX-License-Identifier: MIT
-- The dashboard's event stream (issue 17: 10 open dashboards add <= 2 % to
-- the controller's CPU at 100 verifications/s). The controller serves 100
-- VALID verifications a second (a trivial Lua task, sent from here at a
-- fixed rate) in alternating rounds without and with 10 /dashboard/events
-- streams open; its CPU (every thread, /proc/PID/task/*/schedstat, ns) is
-- read around each round. Two figures:
--   * rounds with 10 dashboards against rounds without (medians): the ratio
--     is the whole cost, noise included (goal <= 1.02);
--   * the controller's own count of the time it spent building and sending
--     states (wp_dashboard_seconds_total) as a share of its CPU in the
--     rounds with dashboards (goal <= 2 %).
local wp = require "workproof"
local h = require "helpers"
local host = require "workproof.host"

local RATE = 100
local SECONDS = tonumber(os.getenv("BENCH_DASHBOARD_SECONDS") or "6")
local WATCHERS = 10

local CONFIG = [[
return {
  state_dir = "@DIR@/var",
  watch = false,
  access_log = false,
  limits = { max_connections_per_client = 0 },   -- all the load comes from one client
  policies = {
    task_types = {}, code_patterns = {},
    worker_threshold = { config = { per_client = 1000, max_active = 1000 } },   -- one client here
    rate_limit = { config = { limit = 1000000 } },
    circuit_breaker = {},
  },
}
]]

-- CPU seconds of every thread of pid
local function cpu(pid)
  local total = 0
  local p = io.popen("cat /proc/" .. pid .. "/task/*/schedstat 2>/dev/null")
  for line in p:lines() do total = total + (tonumber(line:match("^(%d+)")) or 0) end
  p:close()
  return total / 1e9
end

local function metric(srv, name)
  return tonumber(h.metrics(srv):match("\n" .. name .. " ([%d%.e%+%-]+)")) or 0
end

-- RATE verifications a second for SECONDS, each on its own coroutine
-- (libcurl on this host's loop); returns how many answered 200
local failures = {}   -- what the failed ones got: status or error -> count

local function load(url, body)
  local ok, sent, done = 0, 0, 0
  local t0 = host.now()
  local n = RATE * SECONDS
  while sent < n do
    local due = t0 + sent / RATE
    local wait = due - host.now()
    if wait > 0 then host.sleep(wait) end
    sent = sent + 1
    host.spawn(function()
      local st, err, resp = host.http_request { method = "POST", url = url, body = body, timeout = 30,
        headers = { ["content-type"] = "application/json" } }
      if st == 200 then
        ok = ok + 1
      else
        local why = st and (st .. " " .. (tostring(resp):match('"code":"(%u+)"') or "")) or tostring(err):sub(1, 60)
        failures[why] = (failures[why] or 0) + 1
      end
      done = done + 1
    end)
  end
  while done < n do host.sleep(0.01) end
  return ok
end

return function(b)
  local srv = h.start_controller(CONFIG)
  local pid = srv.proc.pid
  local url = srv.url .. "/verify"
  local body = ('{"taskType":"code-execution","language":"lua","code":"print(2 + 2)","expectedHash":"%s"}')
    :format(wp.hex(wp.sha256("4")))
  load(url, body)   -- warm up
  local without, with, shares, answered = {}, {}, {}, 0
  for i = 1, b.repeats do
    for _, watched in ipairs({ false, true }) do
      local streams = {}
      if watched then
        for k = 1, WATCHERS do
          streams[k] = assert(host.process_spawn { file = "/usr/bin/curl",
            args = { "-s", "-N", "-o", "/dev/null", srv.url .. "/dashboard/events" }, timeout = 600 })
        end
        assert(h.eventually(function() return metric(srv, "wp_dashboard_watchers") == WATCHERS end, 10))
      end
      local busy0 = metric(srv, "wp_dashboard_seconds_total")
      local c0, t0 = cpu(pid), host.now()
      answered = answered + load(url, body)
      local c1, t1 = cpu(pid), host.now()
      local share = (c1 - c0) / (t1 - t0) * 100
      if watched then
        with[i] = share
        shares[i] = (metric(srv, "wp_dashboard_seconds_total") - busy0) / (c1 - c0) * 100
        for _, p in ipairs(streams) do p:kill(15); p:wait() end
      else
        without[i] = share
      end
    end
  end
  h.stop(srv)
  for why, n in pairs(failures) do   -- beside the table: why requests failed (an overloaded machine, usually)
    io.write(("  (dashboard bench: %d request(s) failed: %s)\n"):format(n, why))
  end
  return {
    b.row { name = ("controller CPU, %d verif/s, %d dashboards"):format(RATE, WATCHERS), unit = "%",
      value = b.median(with), anchor_name = "the same, no dashboard", anchor = b.median(without),
      goal = 1.02, goal_kind = "ratio_max" },
    b.row { name = "dashboard states: share of controller CPU", unit = "%", value = b.median(shares),
      goal = 2, goal_kind = "max" },
    b.row { name = "verifications answered 200 / sent", unit = "", value = answered / (2 * b.repeats * RATE * SECONDS),
      goal = 1, goal_kind = "min" },
  }
end
