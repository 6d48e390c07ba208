-- SPDX-License-Identifier: MIT
--- The operator's dashboard (docs/dashboard.md): GET /dashboard serves a
-- page (dashboard/ in the source tree, share/workproof/dashboard installed)
-- that follows GET /dashboard/events, a Server-Sent Events stream of the
-- controller's state, one `state` event a second while anyone watches.
--
-- What the state holds is counted here, beside the request path, in O(1)
-- per verification (`record`, from the runner's finally phase):
--   * per second for the last minute and per 10 s for the last hour:
--     verifications by class (the verdict; REFUSED for a refusal,
--     RATE_LIMITED for ERATELIMIT) and a latency histogram (log buckets,
--     x1.25 from 1 ms: a percentile is its bucket's upper bound, within 25 %)
--   * the last 50 verifications
--   * the breaker's state changes (sampled each second, from start)
-- and read when a state is built (`snapshot`, once a second for every
-- watcher together): workers, rate-limit clients, the outbox, payments,
-- the generation and the last reload, and the uptime agent's leases when
-- `dashboard.uptime` names its status API (fetched every 5 s).
--
-- Access: loopback clients, as /admin/*; others only with the config's
-- `dashboard.token` (Authorization: Bearer, or ?token= — an EventSource
-- cannot set headers).
local host = require "workproof.host"
local cjson = require "cjson.safe"
local worker = require "workproof.worker"
local fs = require "workproof.fs"
local share = require "workproof.share"
local bit = require "bit"
local ffi = require "ffi"
local wp = require "workproof"
local generation = require "workproof.notary.generation"
local jobs = require "workproof.notary.jobs"
local payment = require "workproof.notary.payment"
local registry = require "workproof.notary.registry"
local nmetrics = require "workproof.notary.metrics"

local floor, ipairs, pairs, next, tonumber, tostring, type = math.floor, ipairs, pairs, next, tonumber, tostring, type

local _M = {}

local NBUCKETS = 48
local BASE, FACTOR = 0.001, 1.25
local LOG_FACTOR = math.log(FACTOR)
local RECENT = 50
local HOUR_STEP, HOUR_SLOTS = 10, 360
local CLASSES = { "VALID", "INVALID", "ERROR", "REFUSED", "RATE_LIMITED" }

-- the bucket of a latency in seconds (1: up to 1 ms, NBUCKETS: the rest)
local function bucket(s)
  if s <= BASE then return 1 end
  local b = floor(math.log(s / BASE) / LOG_FACTOR) + 2
  return b > NBUCKETS and NBUCKETS or b
end
local function bucket_upper(b) return BASE * FACTOR ^ (b - 1) end

local function new_slot(t)
  local s = { t = t, n = 0, hist = {} }
  for _, c in ipairs(CLASSES) do s[c] = 0 end
  for b = 1, NBUCKETS do s.hist[b] = 0 end
  return s
end

local secs, hour = {}, {}     -- rings: [t % size + 1] = slot
local recent, recent_at = {}, 0   -- ring of the last RECENT verifications
local breaker_history = {}   -- { t, state }, the last 20 changes
local breaker_state
local totals = { n = 0 }
for _, c in ipairs(CLASSES) do totals[c] = 0 end

local function slot_of(ring, size, step, t)
  local k = floor(t / step)
  local i = k % size + 1
  local s = ring[i]
  if not s or s.t ~= k * step then
    s = new_slot(k * step)
    ring[i] = s
  end
  return s
end

local function class_of(ctx)
  if ctx.outcome then
    local v = ctx.outcome.verdict
    return (v == "VALID" or v == "INVALID") and v or "ERROR"
  end
  return ctx.code == "ERATELIMIT" and "RATE_LIMITED" or "REFUSED"
end

--- Count one /verify request that ended (the runner's finally phase).
function _M.record(ctx)
  local t = host.time()
  local dt = host.now() - ctx.t0
  local c = class_of(ctx)
  local b = bucket(dt)
  for _, s in ipairs({ slot_of(secs, 60, 1, t), slot_of(hour, HOUR_SLOTS, HOUR_STEP, t) }) do
    s.n = s.n + 1
    s[c] = s[c] + 1
    s.hist[b] = s.hist[b] + 1
  end
  totals.n = totals.n + 1
  totals[c] = totals[c] + 1
  recent_at = recent_at % RECENT + 1
  recent[recent_at] = { at = t, class = c, code = ctx.code, jobId = ctx.job_id, taskHash = ctx.task_hash,
    language = ctx.language, ms = floor(dt * 10000 + 0.5) / 10 }
end

-- percentiles (seconds) of a summed histogram: { p50, p90, p99 } or nil
local function percentiles(hist, n, ps)
  if n == 0 then return nil end
  local out, acc, i = {}, 0, 1
  for b = 1, NBUCKETS do
    acc = acc + hist[b]
    while ps[i] and acc >= ps[i] * n do
      out[i] = bucket_upper(b) * 1000
      i = i + 1
    end
  end
  return out
end

local function sum_slots(ring, size, step, t, count)
  local sum = new_slot(0)
  for k = 0, count - 1 do
    local at = (floor(t / step) - k) * step
    local s = ring[floor(at / step) % size + 1]
    if s and s.t == at then
      sum.n = sum.n + s.n
      for _, c in ipairs(CLASSES) do sum[c] = sum[c] + s[c] end
      for b = 1, NBUCKETS do sum.hist[b] = sum.hist[b] + s.hist[b] end
    end
  end
  return sum
end

-- the last hour, oldest first: { t, per second, p50 ms, p95 ms } per 10 s
local function series(t)
  local out = {}
  local now_k = floor(t / HOUR_STEP)
  for k = now_k - HOUR_SLOTS + 1, now_k do
    local s = hour[k % HOUR_SLOTS + 1]
    if s and s.t == k * HOUR_STEP and s.n > 0 then
      local p = percentiles(s.hist, s.n, { 0.5, 0.95 })
      out[#out + 1] = { s.t, s.n / HOUR_STEP, p[1], p[2] }
    end
  end
  return out
end

local function pconf(gen, name, key)
  local p = gen.policies[name]
  return p and p.conf[key]
end

local function outbox()
  local chain = registry.chain()
  if not chain then return nil end
  local info = registry.info()
  return { registry = info.registry, chainId = info.chainId, signer = info.verifier,
    states = chain.client:states(), recent = chain.client:recent(10) }
end

local function payments()
  if not payment.info() then return nil end
  local out = {}
  for _, r in ipairs(jobs.db():exec("SELECT status, count(*) AS n FROM payments GROUP BY status") or {}) do
    out[r.status] = r.n
  end
  return out
end

local uptime_state   -- the agent's leases as last fetched, or { error = text }

local function current_recent()
  local out = {}
  for k = 0, RECENT - 1 do
    local i = (recent_at - k - 1) % RECENT + 1
    if recent[i] then out[#out + 1] = recent[i] end
  end
  return out
end

--- The dashboard's state now (a table, sent as JSON: docs/dashboard.md).
function _M.snapshot()
  local t = host.time()
  local gen = generation.current()
  local last10 = sum_slots(secs, 60, 1, t - 1, 10)   -- the last 10 whole seconds
  local last60 = sum_slots(secs, 60, 1, t, 60)
  local rate = {}
  for _, c in ipairs(CLASSES) do rate[c] = last10[c] / 10 end
  local p = percentiles(last60.hist, last60.n, { 0.5, 0.9, 0.99 })
  local rl = generation.hook(gen, "rate_limit", "stats", nil, nil, generation.state("rate_limit"), t)
  local lr = generation.last_reload()
  local files = {}
  for _, name in ipairs(generation.policy_names(gen)) do
    files[#files + 1] = { policy = name, file = gen.policies[name].file }
  end
  return {
    at = t, version = wp.version, pid = host.pid,
    rate = rate, total = totals,
    latencyMs = p and { p50 = p[1], p90 = p[2], p99 = p[3], samples = last60.n } or cjson.null,
    series = series(t),
    recent = current_recent(),
    rateLimit = type(rl) == "table" and { tracked = rl.tracked, blocked = rl.blocked,
      blacklisted = rl.blacklisted, refused = totals.RATE_LIMITED } or cjson.null,
    breaker = { state = breaker_state or "unknown", history = breaker_history },
    workers = { active = worker.stats().active, threshold = pconf(gen, "worker_threshold", "max_active")
      or cjson.null, warm = worker.stats().warm },
    outbox = outbox() or cjson.null,
    payments = payments() or cjson.null,
    generation = { id = gen.id, hash = gen.hash, files = files },
    reload = lr and { ok = lr.ok, error = lr.error, reason = lr.reason, at = lr.at,
      generation = lr.generation } or cjson.null,
    uptime = uptime_state or cjson.null,
  }
end

-- --- the stream ----------------------------------------------------------

local streams = {}   -- open SSE streams

local function encode(state) return cjson.encode(state) end

-- CPU seconds this thread spent building and sending states
-- (wp_dashboard_seconds_total): the thread's CPU clock, so neither a
-- preempted process nor the thread pool's work counts
local busy = 0
ffi.cdef [[
struct wp_dash_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct wp_dash_timespec *tp);
]]
local CLOCK_THREAD_CPUTIME_ID = 3
local ts = ffi.new("struct wp_dash_timespec")
local function thread_cpu()
  ffi.C.clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local function broadcast()
  local t0 = thread_cpu()
  local msg = "event: state\ndata: " .. encode(_M.snapshot()) .. "\n\n"
  local n = 0
  for s in pairs(streams) do
    if s:send(msg) then n = n + 1 else streams[s] = nil end
  end
  busy = busy + (thread_cpu() - t0)
  return n
end

--- The response of GET /dashboard/events: a stream; the first state now.
function _M.events()
  return { status = 200, headers = { ["content-type"] = "text/event-stream", ["cache-control"] = "no-cache",
    ["x-accel-buffering"] = "no" }, stream = function(s)
    local t0 = thread_cpu()
    local ok = s:send("retry: 2000\n\nevent: state\ndata: " .. encode(_M.snapshot()) .. "\n\n")
    busy = busy + (thread_cpu() - t0)
    if ok then streams[s] = true end
  end }
end

--- Open streams now.
function _M.watchers()
  local n = 0
  for s in pairs(streams) do if s.open then n = n + 1 end end
  return n
end

nmetrics.collector(function(m)
  m.gauge("wp_dashboard_watchers", "Dashboard event streams open", _M.watchers())
  m.counter_total("wp_dashboard_seconds_total", "CPU seconds spent building and sending dashboard states", nil, busy)
end)

-- GET a JSON document of the uptime agent's status API (nil when it fails)
local function get_json(url)
  local st, _, body = host.http_request { method = "GET", url = url, timeout = 3 }
  return st == 200 and cjson.decode(body) or nil, st or body
end

-- the uptime agent's status API: its leases (20 at most), each with its
-- timeline (the agent's report.svg as a data: URL, shown in an <img>: an
-- SVG there runs no script), challenge results and dispute evidence
local function fetch_uptime(url)
  local list, err = get_json(url .. "/leases")
  if type(list) ~= "table" or type(list.leases) ~= "table" then
    return { url = url, error = ("GET %s/leases: %s"):format(url, tostring(err)) }
  end
  local out = {}
  for i, l in ipairs(list.leases) do
    if i > 20 then break end
    if type(l) == "table" and type(l.id) == "string" and l.id:match("^%x+$") then
      local base = url .. "/leases/" .. l.id
      local st, _, svg = host.http_request { method = "GET", url = base .. "/report.svg", timeout = 3 }
      l.svg = st == 200 and ("data:image/svg+xml;base64," .. wp.base64.encode(svg)) or nil
      local ev = get_json(base .. "/evidence")
      l.evidence = ev and type(ev.evidence) == "table" and #ev.evidence or nil
      l.disputes = ev and type(ev.disputes) == "table" and #ev.disputes or nil   -- opened on the registry
      local ch = get_json(base .. "/challenges")
      if ch and type(ch.challenges) == "table" then
        local passed, failed = 0, 0
        for _, c in ipairs(ch.challenges) do
          if c.passed == true then passed = passed + 1 elseif c.passed == false then failed = failed + 1 end
        end
        l.challenges = { passed = passed, failed = failed, score = ch.score, state = ch.scoreState }
      end
      out[#out + 1] = l
    end
  end
  return { url = url, leases = out }
end

--- Start sampling (serve, once listening): the breaker each second, a
-- state to every watcher each second, the uptime agent every 5 s while
-- anyone watches. Returns a function that stops it and ends the streams.
function _M.start()
  local run = { on = true }
  host.spawn(function()
    local tick = 0
    while run.on do
      local gen = generation.current()
      local bs = generation.hook(gen, "circuit_breaker", "status", "unknown", "disabled",
        generation.state("circuit_breaker"), host.time())
      if bs ~= breaker_state then
        breaker_state = bs
        breaker_history[#breaker_history + 1] = { at = host.time(), state = bs }
        if #breaker_history > 20 then table.remove(breaker_history, 1) end
      end
      if next(streams) then
        local url = gen.config.dashboard.uptime
        if url and tick % 5 == 0 and not run.fetching then
          run.fetching = true
          host.spawn(function()
            local ok, st = pcall(fetch_uptime, url)
            uptime_state = ok and st or { url = url, error = tostring(st) }
            run.fetching = false
          end)
        elseif not url then
          uptime_state = nil
        end
        broadcast()
      end
      tick = tick + 1
      host.sleep(1)
    end
  end)
  return function()
    run.on = false
    for s in pairs(streams) do s:close() end
    streams = {}
  end
end

-- --- access and the page --------------------------------------------------

local function is_loopback(ip)
  return ip and (ip:find("^127%.") or ip == "::1" or ip:find("^::ffff:127%.")) ~= nil
end
_M.is_loopback = is_loopback

-- compare without an early exit (the token is a secret)
local function same(a, b)
  if type(a) ~= "string" or #a ~= #b then return false end
  local d = 0
  for i = 1, #a do d = bit.bor(d, bit.bxor(a:byte(i), b:byte(i))) end
  return d == 0
end

--- Whether this request may see the dashboard.
function _M.allowed(req)
  if is_loopback(req.peer) then return true end
  local token = generation.current().config.dashboard.token
  if not token then return false end
  local auth = req.headers.authorization
  local given = auth and auth:match("^[Bb]earer%s+(%S+)$")
  if not given and req.query then
    given = req.query:match("^token=([^&]*)") or req.query:match("&token=([^&]*)")
  end
  return same(given, token)
end

-- the page's files: name -> content type
local FILES = { ["index.html"] = "text/html; charset=utf-8", ["app.js"] = "text/javascript; charset=utf-8",
  ["app.css"] = "text/css; charset=utf-8" }
_M.DIR = share.locate("dashboard", "share/workproof/dashboard")
local cache = {}

--- One of the page's files: the response, or nil when there is no such file.
-- A missing file in an installation is its fault: nil, err.
function _M.file(name)
  local ctype = FILES[name]
  if not ctype then return nil end
  local body = cache[name]
  if not body then
    local err
    body, err = fs.read(_M.DIR .. "/" .. name)
    if not body then return nil, tostring(err) end
    cache[name] = body
  end
  return { status = 200, raw = body, headers = { ["content-type"] = ctype, ["cache-control"] = "no-cache",
    ["x-content-type-options"] = "nosniff", ["x-frame-options"] = "DENY",
    ["content-security-policy"] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'" } }
end

_M.CLASSES = CLASSES
_M.bucket, _M.bucket_upper, _M.percentiles = bucket, bucket_upper, percentiles

return _M
