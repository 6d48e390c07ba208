-- SPDX-License-Identifier: MIT
--- The HTTP API (docs/http-api.md): routes, /info, /metrics, the job and
-- outbox views, the admin reload. Metrics labels are route PATTERNS, a
-- fixed set, never the request path.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local worker = require "workproof.worker"
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local jobs = require "workproof.notary.jobs"
local payment = require "workproof.notary.payment"
local registry = require "workproof.notary.registry"
local runner = require "workproof.notary.runner"
local nmetrics = require "workproof.notary.metrics"

local ipairs, tonumber, type = ipairs, tonumber, type

local _M = {}

_M.HEALTH = '{"status":"ok"}'

local server          -- the HTTP server (host.http_listen), for its C-side counters
local started = host.time()

--- The listening server, once it listens.
function _M.set_server(srv) server = srv end

local function is_loopback(ip)
  return ip and (ip:find("^127%.") or ip == "::1" or ip:find("^::ffff:127%.")) ~= nil
end

local function info()
  local gen = generation.current()
  return { status = 200, body = {
    version = wp.version,
    generation = gen.id,
    features = {
      backend = gen.config.worker.backend,
      languages = { "javascript", "lua" },
      payments = gen.config.payments.enabled,
      chain = gen.config.chain.enabled,
      asyncMode = true,
    },
    flow = gen.config.flow,
    chain = registry.info(),
    payment = payment.info(),
    policies = generation.policy_names(gen),
  } }
end

nmetrics.collector(function(m)
  local ws = worker.stats()
  m.gauge("wp_workers_active", "Workers running now", ws.active)
  for _, k in ipairs({ "spawned", "finished", "timed_out", "crashed", "reaped", "spawn_failed" }) do
    m.gauge("wp_workers_" .. k, "Worker lifecycle count: " .. k, ws[k])
  end
  local gen = generation.current()
  local bs = generation.hook(gen, "circuit_breaker", "status", "unknown", "disabled",
    generation.state("circuit_breaker"), host.time())
  for _, s in ipairs({ "closed", "open", "half_open" }) do
    m.gauge("wp_breaker_state", "Circuit breaker state (1 = current)", bs == s and 1 or 0, { state = s })
  end
  local rl = generation.hook(gen, "rate_limit", "stats", nil, nil, generation.state("rate_limit"), host.time())
  if type(rl) == "table" then
    for _, k in ipairs({ "tracked", "blocked", "blacklisted" }) do
      m.gauge("wp_rate_limit_" .. k, "Rate-limit clients " .. k, tonumber(rl[k]) or 0)
    end
  end
  if server then   -- /health is answered in C (srv:static), counted there
    m.counter_total("wp_http_static_requests_total", "Requests answered in C without Lua",
      'route="/health"', server:static_hits("/health"))
    local cs = server:stats()   -- connection budgets, counted in C
    m.gauge("wp_http_connections_open", "HTTP connections open now", cs.connections)
    m.gauge("wp_http_clients", "Clients (IPv4 address or IPv6 /64) with a connection open", cs.clients)
    m.counter_total("wp_http_connections_accepted_total", "HTTP connections accepted", nil, cs.accepted)
    for _, r in ipairs({ "per_client", "fd_reserve" }) do
      m.counter_total("wp_http_connections_rejected_total", "HTTP connections refused at accept (503, closed)",
        ('reason="%s"'):format(r), cs["rejected_" .. r])
    end
    for _, p in ipairs({ "header", "body" }) do
      m.counter_total("wp_http_connections_timed_out_total", "HTTP connections closed for a slow request",
        ('phase="%s"'):format(p), cs["timeout_" .. p])
    end
    if cs.fds_open then m.gauge("wp_process_open_fds", "Descriptors open now", cs.fds_open) end
    if cs.fd_limit then m.gauge("wp_process_max_fds", "RLIMIT_NOFILE (soft)", cs.fd_limit) end
  end
  m.gauge("wp_uptime_seconds", "Seconds since the host started", host.time() - started)
end)

local function get_job(id)
  local j = jobs.get(id)
  if not j then return errors.refusal("ENOTFOUND", nil, nil, "no such job") end
  return { status = 200, body = j.body, raw = j.raw }
end

local function outbox(path)
  local chain = registry.chain()
  if not chain then return errors.refusal("ENOTFOUND", nil, nil, "the chain is not enabled") end
  if path == "/outbox" then return { status = 200, body = chain.client:summary() } end
  local id = path:match("^/outbox/(%d+)$")
  local row = id and #id <= 15 and chain.client:describe(tonumber(id))
  if not row then return errors.refusal("ENOTFOUND", nil, nil, "no such outbox row") end
  return { status = 200, body = row }
end

local function admin_reload(req)
  if not is_loopback(req.peer) then
    return errors.refusal("EFORBIDDEN", nil, nil, "admin endpoints answer loopback clients only")
  end
  local gen, err = generation.reload("POST /admin/reload")
  if gen then return { status = 200, body = { accepted = true, generation = gen.id, hash = gen.hash } } end
  return { status = 400, body = { accepted = false, generation = generation.current().id, error = err } }
end

-- pattern -> { methods allowed, handler(req) }; the pattern is the label
local EXACT = {
  ["/health"] = { "GET, HEAD", function() return { status = 200, raw = _M.HEALTH } end },
  ["/verify"] = { "POST", runner.verify },
  ["/info"] = { "GET", info },
  ["/outbox"] = { "GET", function(req) return outbox(req.path) end },
  ["/metrics"] = { "GET", function()
    return { status = 200, headers = { ["content-type"] = "text/plain; version=0.0.4" }, raw = nmetrics.render() }
  end },
  ["/admin/reload"] = { "POST", admin_reload },
}
local PREFIX = {
  { "^/verify/", "/verify/:id", "GET", function(req) return get_job(req.path:sub(9)) end },
  { "^/outbox/", "/outbox/:id", "GET", function(req) return outbox(req.path) end },
}

local function allowed(methods, m)
  return (", " .. methods .. ","):find(", " .. m .. ",", 1, true) ~= nil
end

-- The response and the route's pattern.
local function route(req)
  local r, label = EXACT[req.path], req.path
  if not r then
    for _, p in ipairs(PREFIX) do
      if req.path:find(p[1]) then r, label = { p[3], p[4] }, p[2] break end
    end
  end
  if not r then return errors.refusal("ENOTFOUND", nil, nil, "no such route"), "other" end
  if not allowed(r[1], req.method) then
    return errors.refusal("EMETHOD", nil, { allow = r[1] }), label
  end
  return r[2](req), label
end

local label_keys = {}

--- The HTTP handler given to host.http_listen.
function _M.handle(req)
  local t0 = host.now()
  local res, label = route(req)
  local body = res.raw or cjson.encode(res.body)
  local headers = res.headers or {}
  if not headers["content-type"] then headers["content-type"] = "application/json" end
  -- label keys formatted once per (route, status): this runs on every
  -- request. Routes are patterns, statuses HTTP codes: a fixed set, so the
  -- page stays bounded whatever clients send.
  local keys = label_keys[label]
  if not keys then
    keys = { route = nmetrics.key({ route = label }) }
    label_keys[label] = keys
  end
  local ks = keys[res.status]
  if not ks then
    ks = nmetrics.key({ route = label, status = res.status })
    keys[res.status] = ks
  end
  nmetrics.counter("wp_http_requests_total", "HTTP requests", ks)
  nmetrics.observe("wp_http_request_seconds", "HTTP request latency", host.now() - t0, keys.route)
  return res.status, headers, body
end

return _M
