-- SPDX-License-Identifier: MIT
--- The HTTP API (docs/http-api.md): routes, /info, /metrics, the job and
-- outbox views, the admin reload. Metrics labels are route PATTERNS, a
-- fixed set, never the request path.
local wp = require "workproof"
local store = require "workproof.store"
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
local dashboard = require "workproof.notary.dashboard"
local wlog = require "workproof.log"
local procstat = require "workproof.procstat"
local openapi = require "workproof.openapi"
local json = require "workproof.json"

local ipairs, pairs, tonumber, tostring, type = ipairs, pairs, tonumber, tostring, type

local _M = {}

_M.HEALTH = '{"status":"ok"}'

local server          -- the HTTP server (host.http_listen), for its C-side counters
local started = host.time()
-- workproof_build_info's labels: what is running, for dashboards and bug reports
local build_labels = nmetrics.key({ version = wp.version, luajit = jit.version, os = jit.os, arch = jit.arch })

--- The listening server, once it listens.
function _M.set_server(srv) server = srv end

local is_loopback = dashboard.is_loopback

-- A policy's effective setting, or nil when the policy is off.
local function pconf(gen, name, key)
  local p = gen.policies[name]
  return p and p.conf[key] or nil
end

-- What guards this generation, as it is in effect (defaults filled in):
-- an operator reads here what a config left on, changed or turned off.
local function protections(gen)
  local c = gen.config
  local lim = c.limits
  local own_workers = worker.warm_capable(c.worker.backend)   -- backends that run workproof-worker
  return {
    rateLimit = { limit = pconf(gen, "rate_limit", "limit"), window = pconf(gen, "rate_limit", "window"),
      blockSeconds = pconf(gen, "rate_limit", "block_seconds") },
    workers = { maxActive = pconf(gen, "worker_threshold", "max_active"),
      perClient = pconf(gen, "worker_threshold", "per_client"),
      -- warm sandboxes kept ready (none on a backend that cannot keep them)
      warm = own_workers and { lua = c.worker.pool.lua, javascript = c.worker.pool.javascript }
        or { lua = 0, javascript = 0 },
      -- workers forked by a `workproof-worker --zygote` (the same backends)
      zygote = own_workers and c.worker.zygote,
      -- the sandbox's net namespace: the zygote's empty one, shared by the
      -- sandboxes it forks, or one of its own (worker/README.md, layer 1)
      sandboxNet = c.worker.backend == "sandbox" and (c.worker.zygote and "zygote" or "own") or nil },
    breaker = { failureThreshold = pconf(gen, "circuit_breaker", "failure_threshold"),
      window = pconf(gen, "circuit_breaker", "window"), countAsFailure = pconf(gen, "circuit_breaker",
        "count_as_failure") },
    codePatterns = pconf(gen, "code_patterns", "enabled") or false,
    taskTypes = gen.policies.task_types ~= nil,
    policyBudget = { loadMs = c.policy_budget.load_ms, hookMs = c.policy_budget.hook_ms,
      memMb = c.policy_budget.mem_mb },
    http = { maxConnectionsPerClient = lim.max_connections_per_client, headerTimeout = lim.header_timeout,
      bodyTimeout = lim.body_timeout, fdReserve = lim.fd_reserve, maxBody = lim.max_body,
      reuseport = c.reuseport, processes = c.processes, cors = c.cors.origins ~= nil,
      shutdownGrace = lim.shutdown_grace },
    admin = "loopback",   -- /admin/* answer loopback clients only (not configurable)
    dashboard = c.dashboard.token and "token" or "loopback",   -- others with dashboard.token
    task = { maxCode = lim.max_code, timeoutMin = lim.timeout_min, timeoutMax = lim.timeout_max,
      memoryBytes = c.worker.memory_bytes, outputLimitBytes = c.worker.output_limit_bytes },
    logging = { level = c.log_level, format = c.log_format, accessLog = c.access_log },
    -- the store: where jobs, payments and the outbox live, how long answers are kept
    storage = { backend = store.is_url(c.store) and "postgres" or "sqlite",
      sharedLimits = c.shared_limits, hostLease = c.store_lease, jobRetention = c.jobs.retention,
      pruneInterval = c.jobs.prune_interval, pruneBatch = c.jobs.prune_batch },
  }
end

local function info()
  local gen = generation.current()
  return { status = 200, body = {
    version = wp.version,
    generation = gen.id,
    pid = host.pid,   -- which process answered (serve --processes runs several)
    features = {
      backend = gen.config.worker.backend,
      languages = { "javascript", "lua" },
      payments = gen.config.payments.enabled,
      chain = gen.config.chain.enabled,
      asyncMode = true,
      hotReload = gen.config.watch,   -- policies and config reloaded when their files change (and on SIGHUP)
    },
    flow = gen.config.flow,
    chain = registry.info(),
    payment = payment.info(),
    policies = generation.policy_names(gen),
    protections = protections(gen),
  } }
end

nmetrics.collector(function(m)
  local ws = worker.stats()
  m.gauge("workproof_build_info", "The running build (value 1)", 1, build_labels)
  m.gauge("wp_workers_active", "Workers running now", ws.active)
  for _, lang in ipairs({ "lua", "javascript" }) do
    m.gauge("wp_workers_warm", "Warm workers waiting for a task", ws.warm[lang], { language = lang })
  end
  -- cumulative since start: counters, named _total (counted in worker.lua)
  for _, k in ipairs({ "spawned", "finished", "timed_out", "crashed", "reaped", "spawn_failed", "warm_used",
    "warm_lost" }) do
    m.counter_total("wp_workers_" .. k .. "_total", "Workers " .. (k:gsub("_", " ")) .. " since start", nil, ws[k])
  end
  -- the standard process_* names (client libraries' own), so stock
  -- dashboards and alerts work unchanged
  local ps = procstat.sample()
  if ps then
    m.counter_total("process_cpu_seconds_total", "User and system CPU time spent in seconds", nil, ps.cpu_seconds)
    m.gauge("process_resident_memory_bytes", "Resident memory size in bytes", ps.resident_bytes)
    m.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes", ps.virtual_bytes)
    m.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds", ps.start_time)
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
    if cs.fds_open then m.gauge("process_open_fds", "Number of open file descriptors", cs.fds_open) end
    if cs.fd_limit then m.gauge("process_max_fds", "Maximum number of open file descriptors (RLIMIT_NOFILE, soft)",
      cs.fd_limit) end
  end
  m.gauge("wp_uptime_seconds", "Seconds since the host started", host.time() - started)
end)

local function get_job(id)
  local j = jobs.get(id)
  if not j then return errors.refusal("ENOTFOUND", nil, nil, "no such job") end
  -- a completed job is its stored document, sent as is: its id and
  -- verdict for the access line without decoding it
  return { status = 200, body = j.body, raw = j.raw, job_id = j.raw and id,
    verdict = j.raw and j.raw:match('"result":"(%u+)"') }
end

-- the outbox's lists as JSON arrays even when empty (cjson would print an
-- empty table as {}): json.stringify honours the ARRAY mark
local function as_array(t)
  t[json.ARRAY] = #t
  return t
end

local function outbox(path)
  local chain = registry.chain()
  if not chain then return errors.refusal("ENOTFOUND", nil, nil, "the chain is not enabled") end
  if path == "/outbox" then
    local s = chain.client:summary()
    for _, list in ipairs({ s.unmined, s.failed }) do
      for _, row in ipairs(list) do as_array(row.hashes) end
      as_array(list)
    end
    return { status = 200, raw = json.stringify(s) }
  end
  local id = path:match("^/outbox/(%d+)$")
  local row = id and #id <= 15 and chain.client:describe(tonumber(id))
  if not row then return errors.refusal("ENOTFOUND", nil, nil, "no such outbox row") end
  as_array(row.hashes)
  return { status = 200, raw = json.stringify(row) }
end

local function admin_reload(req)
  if not is_loopback(req.peer) then
    return errors.refusal("EFORBIDDEN", nil, nil, "admin endpoints answer loopback clients only")
  end
  local gen, err = generation.reload("POST /admin/reload")
  if gen then return { status = 200, body = { accepted = true, generation = gen.id, hash = gen.hash } } end
  return { status = 400, body = { accepted = false, generation = generation.current().id, error = err } }
end

-- docs/openapi.yaml as JSON (workproof.openapi); a missing document is
-- the installation's fault: 500, logged
local function openapi_json()
  local text, err = openapi.json()
  if not text then
    host.log("error", "GET /openapi.json: " .. tostring(err))
    return errors.refusal("EINTERNAL", nil, nil, "the OpenAPI document cannot be read")
  end
  return { status = 200, raw = text }
end

-- /dashboard, its files and its event stream: loopback, or the token
local function dashboard_route(fn)
  return function(req)
    if not dashboard.allowed(req) then
      return errors.refusal("EFORBIDDEN", nil, nil, "the dashboard answers loopback clients (or dashboard.token) only")
    end
    return fn(req)
  end
end

local function dashboard_file(name)
  local res, err = dashboard.file(name)
  if res then return res end
  if err then
    host.log("error", "GET /dashboard/" .. name .. ": " .. err)
    return errors.refusal("EINTERNAL", nil, nil, "the dashboard's files cannot be read")
  end
  return errors.refusal("ENOTFOUND", nil, nil, "no such file")
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
  ["/openapi.json"] = { "GET", openapi_json },
  ["/dashboard"] = { "GET", dashboard_route(function() return dashboard_file("index.html") end) },
  ["/dashboard/events"] = { "GET", dashboard_route(dashboard.events) },
}
local PREFIX = {
  { "^/verify/", "/verify/:id", "GET", function(req) return get_job(req.path:sub(9)) end },
  { "^/outbox/", "/outbox/:id", "GET", function(req) return outbox(req.path) end },
  { "^/dashboard/", "/dashboard/:file", "GET",
    dashboard_route(function(req) return dashboard_file(req.path:sub(#"/dashboard/" + 1)) end) },
}

--- Every route as { pattern, methods } (sorted by pattern): what
-- docs/openapi.yaml must describe (spec/integration/openapi_spec.lua).
function _M.routes()
  local out = {}
  for pattern, r in pairs(EXACT) do out[#out + 1] = { pattern, r[1] } end
  for _, p in ipairs(PREFIX) do out[#out + 1] = { p[2], p[3] } end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

local function allowed(methods, m)
  return (", " .. methods .. ","):find(", " .. m .. ",", 1, true) ~= nil
end

-- CORS (config `cors`, docs/http-api.md): the routes a browser client on
-- another origin uses — verify, poll, read the features, read the API.
local CORS_ROUTES = { ["/verify"] = true, ["/verify/:id"] = true, ["/info"] = true, ["/openapi.json"] = true }
local CORS_ALLOW_HEADERS = "Content-Type, PAYMENT-SIGNATURE, X-PAYMENT, X-402-Payment, Prefer"
local CORS_EXPOSE_HEADERS = "PAYMENT-REQUIRED, PAYMENT-RESPONSE, X-Payment-Response, Retry-After, X-Request-Id"
local origin_sets = setmetatable({}, { __mode = "k" })   -- cors config table -> { [lower origin] = true }

-- The Access-Control-Allow-Origin value for this request (nil: CORS off or
-- the origin not allowed) and whether the answer varies by Origin.
local function cors_origin(req)
  local c = generation.current().config.cors
  local origins = c and c.origins
  local origin = req.headers.origin
  if not origins or not origin then return nil, origins ~= nil and origins ~= "*" end
  if origins == "*" then return "*", false end
  local set = origin_sets[c]
  if not set then
    set = {}
    for _, o in ipairs(origins) do set[o:lower()] = true end
    origin_sets[c] = set
  end
  return set[origin:lower()] and origin or nil, true
end

-- A preflight (OPTIONS with Origin and Access-Control-Request-Method): 204,
-- with the grant when the origin is allowed and nothing CORS when not.
local function preflight(req, methods)
  local res = { status = 204, raw = "", headers = { allow = methods .. ", OPTIONS" } }
  local origin = cors_origin(req)
  if origin then
    res.headers["access-control-allow-methods"] = methods
    res.headers["access-control-allow-headers"] = CORS_ALLOW_HEADERS
    res.headers["access-control-max-age"] = tostring(generation.current().config.cors.max_age)
  end
  return res
end

-- The response and the route's pattern.
local function dispatch(req)
  local r, label = EXACT[req.path], req.path
  if not r then
    for _, p in ipairs(PREFIX) do
      if req.path:find(p[1]) then r, label = { p[3], p[4] }, p[2] break end
    end
  end
  if not r then return errors.refusal("ENOTFOUND", nil, nil, "no such route"), "other" end
  if req.method == "OPTIONS" and CORS_ROUTES[label] and generation.current().config.cors.origins then
    return preflight(req, r[1]), label
  end
  if not allowed(r[1], req.method) then
    return errors.refusal("EMETHOD", nil, { allow = r[1] }), label
  end
  return r[2](req), label
end

-- dispatch, and the CORS grant on the routes that have one
local function route(req)
  local res, label = dispatch(req)
  if CORS_ROUTES[label] then
    local origin, vary = cors_origin(req)
    if origin or vary then res.headers = res.headers or {} end
    if origin then
      res.headers["access-control-allow-origin"] = origin
      res.headers["access-control-expose-headers"] = CORS_EXPOSE_HEADERS
    end
    if vary then res.headers.vary = "Origin" end
  end
  return res, label
end

local label_keys = {}

--- The HTTP handler given to host.http_listen.
function _M.handle(req)
  local t0 = host.now()
  -- the request id: the client's X-Request-Id when acceptable, else a new
  -- one; echoed, and carried by every line this coroutine logs
  local rid = wlog.request_id(req.headers["x-request-id"])
  req.request_id = rid
  host.log_request(rid)
  local res, label = route(req)
  local body = res.stream or res.raw or cjson.encode(res.body)   -- a stream: function(stream) (host.http_listen)
  local headers = res.headers or {}
  if not headers["content-type"] then headers["content-type"] = "application/json" end
  headers["x-request-id"] = rid
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
  local dt = host.now() - t0
  nmetrics.observe("wp_http_request_seconds", "HTTP request latency", dt, keys.route)
  if wlog.access then host.log("info", "access", wlog.access_fields(req, res, res.stream and 0 or #body, dt)) end
  return res.status, headers, body
end

return _M
