-- SPDX-License-Identifier: MIT
--- Many leases per process (issue 11, item 6; docs/uptime.md, "Many
-- leases"): one `workproof uptime provider` holding N leases (one
-- identity, one consumer, distinct nonces) and one `workproof uptime
-- consumer` following all N, real processes over the real transport on
-- loopback, at 60-second beats by default.
--
-- Why not short beats extrapolated: the agents behave differently below
-- ~30 s. Up to 25 s the provider holds each exchange until the beat is
-- due, so every lease keeps a request (a curl transfer, a TLS connection
-- and its buffers on both sides) in flight all the time; above that it
-- answers at once with `wait`, a beat takes two exchanges, and a
-- connection idle longer than the transport's 30-second keep-alive is
-- closed, so some beats also pay a TLS handshake. Short beats measure
-- the first regime, the goals are about the second; BENCH_UPTIME_INTERVAL
-- picks either.
--
-- The consumer's leases are added in batches over one interval (config
-- rewritten, SIGHUP), as leases arrive in life, so their beats are spread
-- evenly instead of all falling due in the same second; then the consumer
-- is restarted with all of them (each lease resumes on its own phase).
-- A second pair with N_SMALL leases runs beside it for the memory
-- baseline.
--
--   CPU per beat      utime + stime (/proc/PID/stat) of each process over a
--                     window / beats the consumer stored in it
--                     (workproof_uptime_beats_received_total)
--   CPU / 100 leases  cpu_per_beat * 100 leases / 60 s, in % of one core
--                     (at 60-second beats; goal <= 1 %)
--   memory per lease  (VmRSS with N leases - VmRSS with N_SMALL leases)
--                     / (N - N_SMALL), at the end of the last window;
--                     goal <= 20 KB
--
-- and checks the run: no beat refused on either side, every lease's chain
-- grew in every window (a window is at least one interval), no gap.
-- Settings (environment): BENCH_UPTIME_LEASES (1000), BENCH_UPTIME_SMALL
-- (10), BENCH_UPTIME_INTERVAL (60 s), BENCH_UPTIME_TOLERANCE (interval / 4),
-- BENCH_UPTIME_WINDOW (the interval, at least 20 s), BENCH_UPTIME_WINDOWS
-- (2; medians), BENCH_UPTIME_KEEP (keep the state directories).
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local h = require "helpers"
local ledger = require "workproof.uptime.ledger"

local function env_num(name, default) return tonumber(os.getenv(name) or "") or default end

local N = env_num("BENCH_UPTIME_LEASES", 1000)
local N_SMALL = env_num("BENCH_UPTIME_SMALL", 10)
local INTERVAL = env_num("BENCH_UPTIME_INTERVAL", 60)
local TOLERANCE = env_num("BENCH_UPTIME_TOLERANCE", INTERVAL / 4)
local WINDOW = env_num("BENCH_UPTIME_WINDOW", math.max(INTERVAL, 20))
local WINDOWS = env_num("BENCH_UPTIME_WINDOWS", 2)
local BATCHES = 20

local function seed() return wp.hex(wp.sha256(tostring(math.random()) .. wp.time() .. tostring({}))) end
local function pub(s) return wp.hex((wp.ed25519.keypair(wp.unhex(s)))) end

local function now_ns()
  local t = wp.time()
  return ("%d%09d"):format(math.floor(t), math.floor((t % 1) * 1e9))
end

local CLK_TCK
local function cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local s = f:read("*a")
  f:close()
  -- after "pid (comm) ": state is field 3, utime 14, stime 15
  local fields = {}
  for x in s:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / CLK_TCK
end

local function rss_kb(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local kb = tonumber(f:read("*a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

local function get(a, path)
  local st, _, body = h.http("GET", a.status .. path)
  assert(st == 200, ("%s GET %s: %s %s"):format(a.role, path, tostring(st), tostring(body)))
  return body
end

-- sum of a metric's samples
local function metric(text, name)
  local n = 0
  for v in text:gmatch(name .. "%b{} (%S+)") do n = n + tonumber(v) end
  return n
end

-- refusals since the start: "reason=count" list, total
local function rejected(text)
  local out, total = {}, 0
  for reason, v in text:gmatch('workproof_uptime_beats_rejected_total{[^}]*reason="([^"]+)"} (%d+)') do
    if tonumber(v) > 0 then out[#out + 1] = reason .. "=" .. v end
    total = total + tonumber(v)
  end
  return out, total
end

-- beats per lease id from GET /leases
local function beats_by_lease(a)
  local t = assert(cjson.decode(get(a, "/leases")), "GET /leases: not JSON")
  local out = {}
  for _, l in ipairs(t.leases) do out[l.id] = l.beats end
  return out
end

local function stop_pair(pair)
  for _, role in ipairs({ "consumer", "provider" }) do
    local a = pair[role]
    if a and not a.stopped then
      a.stopped = true
      host.kill(a.pid, 15)
      while a.proc:read() do end
      a.proc:wait()
    end
  end
  if not os.getenv("BENCH_UPTIME_KEEP") then os.execute("rm -rf " .. h.q(pair.dir)) end
end

-- One provider with n leases, one consumer that is given them in batches
-- over one interval, then restarted with all. Returns the pair once it is
-- started (see warm()).
local function start_pair(n)
  local dir = h.tmpdir()
  local ps, cs = seed(), seed()
  local pk, ck = pub(ps), pub(cs)
  local start = now_ns()
  local leases = {}
  for i = 1, n do
    local nonce = wp.hex(wp.sha256(ps .. cs .. i)):sub(1, 32)
    leases[i] = { id = ledger.lease_id(pk, ck, start, nonce), nonce = nonce }
  end
  local pair = { dir = dir, n = n, leases = leases }
  local function write_conf(role, upto)
    local lines = {
      "return {",
      ("  identity = { seed = %q },"):format(role == "provider" and ps or cs),
      ("  state_dir = %q,"):format(dir .. "/" .. role),
      '  status_listen = "127.0.0.1:0",',
      role == "provider" and '  listen = "127.0.0.1:0",' or "",
      '  watch = false, log_level = "warn",',
      ("  policies = { timestamps = { interval_s = %g, tolerance_s = %g },"):format(INTERVAL, TOLERANCE),
      "    challenges = { enabled = false } },",
      "  leases = {",
    }
    local tail = role == "consumer" and (", provider = %q"):format(pair.provider.addr) or ""
    for i = 1, upto do
      local l = leases[i]
      lines[#lines + 1] = ("    { id = %q, provider_key = %q, consumer_key = %q, start = %q, nonce = %q%s },")
        :format(l.id, pk, ck, start, l.nonce, tail)
    end
    lines[#lines + 1] = "  },\n}\n"
    local path = dir .. "/" .. role .. ".lua"
    local tmp = path .. ".tmp"
    h.write(tmp, table.concat(lines, "\n"))
    assert(os.rename(tmp, path))
    return path
  end
  local function spawn(role, upto)
    local p, buf = h.spawn_until({ file = h.build .. "/workproof", args = { "uptime", role, write_conf(role, upto) },
      timeout = 7200, stderr_limit = 1048576 }, "status API on [^\n]*\n", role)
    local a = { proc = p, role = role, pid = p.pid, status = "http://" .. buf:match("status API on http://(%S+)"),
      addr = buf:match("listening on (%S+)") }
    pair[role] = a
    return a
  end
  local ok, err = pcall(function()
    spawn("provider", n)
    local batches = math.min(BATCHES, n)
    local upto = math.ceil(n / batches)
    spawn("consumer", upto)
    for b = 2, batches do
      wp.sleep(INTERVAL / batches)
      upto = math.ceil(n * b / batches)
      write_conf("consumer", upto)
      host.kill(pair.consumer.pid, 1)   -- SIGHUP: reload, follow the new leases
    end
    -- then restarted with all of them, as a consumer of n leases starts:
    -- each resumes its chain on its own phase
    wp.sleep(INTERVAL / batches)
    local c = pair.consumer
    host.kill(c.pid, 15)
    while c.proc:read() do end
    c.proc:wait()
    spawn("consumer", n)
  end)
  if not ok then
    stop_pair(pair)   -- the agents would keep this process's loop alive
    error(err, 0)
  end
  return pair
end

-- wait until every lease has two beats on the consumer (its genesis and
-- one on cadence), then one more interval
local function warm(pair)
  local ok, err = pcall(function()
    local deadline = wp.now() + 60 + pair.n * 0.05 + 4 * INTERVAL
    while true do
      local got, missing = beats_by_lease(pair.consumer), 0
      for _, l in ipairs(pair.leases) do if (got[l.id] or 0) < 2 then missing = missing + 1 end end
      if missing == 0 then break end
      if wp.now() > deadline then
        error(("%d of %d leases have fewer than 2 beats after the warm-up; the consumer's metrics:\n%s")
          :format(missing, pair.n, get(pair.consumer, "/metrics"):gsub("#[^\n]*\n", "")), 0)
      end
      wp.sleep(1)
    end
  end)
  if not ok then
    stop_pair(pair)
    error(err, 0)
  end
end

-- one measured window: CPU of each process, beats the consumer stored,
-- refusals, gaps, leases whose chain did not grow
local function window(pair, seconds)
  local c, p = pair.consumer, pair.provider
  local b0 = beats_by_lease(c)
  local m0c = get(c, "/metrics")
  local cpu0c, cpu0p, t0 = cpu_seconds(c.pid), cpu_seconds(p.pid), wp.now()
  wp.sleep(seconds)
  local cpu1c, cpu1p, t1 = cpu_seconds(c.pid), cpu_seconds(p.pid), wp.now()
  local m1c, m1p = get(c, "/metrics"), get(p, "/metrics")
  local b1 = beats_by_lease(c)
  local stalled = 0
  for _, l in ipairs(pair.leases) do
    if (b1[l.id] or 0) <= (b0[l.id] or 0) then stalled = stalled + 1 end
  end
  local refused = {}
  local rc, nc = rejected(m1c)
  local rp, np = rejected(m1p)
  for _, r in ipairs(rc) do refused[#refused + 1] = "consumer " .. r end
  for _, r in ipairs(rp) do refused[#refused + 1] = "provider " .. r end
  local function delta(name) return metric(m1c, name) - metric(m0c, name) end
  return {
    seconds = t1 - t0, beats = delta("workproof_uptime_beats_received_total"),
    exchanges = delta("workproof_uptime_exchanges_total"),
    cpu_c = cpu1c - cpu0c, cpu_p = cpu1p - cpu0p,
    refused = refused, nrefused = nc + np, stalled = stalled, gaps = delta("workproof_uptime_gaps_total"),
    errors = delta("workproof_uptime_exchange_errors_total"),
    handshakes = metric(m1p, "workproof_uptime_tls_handshakes_total"),
    rss_c = rss_kb(c.pid), rss_p = rss_kb(p.pid),
  }
end

return function(b)
  CLK_TCK = tonumber(b.exec("getconf CLK_TCK")) or 100
  assert(N > N_SMALL, "BENCH_UPTIME_LEASES must exceed BENCH_UPTIME_SMALL")

  -- the anchor: a beat's unavoidable crypto on the consumer (verify the
  -- provider's signature, sign its own) and on the provider (sign, then
  -- verify both signatures of the acknowledgement), in this process
  local ppub, psec = wp.ed25519.keypair(("\1"):rep(32))
  local _, csec = wp.ed25519.keypair(("\2"):rep(32))
  local digest = wp.sha256("beat")
  local sig = wp.ed25519.sign(psec, digest)
  local verify_rate = b.rate(function(n) for _ = 1, n do wp.ed25519.verify(ppub, digest, sig) end end)
  local sign_rate = b.rate(function(n) for _ = 1, n do wp.ed25519.sign(csec, digest) end end)
  local anchor_c = 1e3 / verify_rate + 1e3 / sign_rate   -- ms
  local anchor_p = 2e3 / verify_rate + 1e3 / sign_rate

  local small = start_pair(N_SMALL)
  local big
  local ws, last_small = {}, nil
  local ok, err = pcall(function()
    big = start_pair(N)
    warm(small)
    warm(big)
    local hs0 = window(big, 0).handshakes
    for i = 1, WINDOWS do
      ws[i] = window(big, WINDOW)
      ws[i].handshakes, hs0 = ws[i].handshakes - hs0, ws[i].handshakes
    end
    last_small = window(small, 0)
  end)
  if big then stop_pair(big) end
  stop_pair(small)
  if not ok then error(err, 0) end

  local per_beat_c, per_beat_p, rates, xpb, hpb, stalled, gaps, errors = {}, {}, {}, {}, {}, 0, 0, 0
  for i, w in ipairs(ws) do
    local beats = math.max(w.beats, 1)
    per_beat_c[i], per_beat_p[i] = w.cpu_c / beats, w.cpu_p / beats
    rates[i], xpb[i], hpb[i] = w.beats / w.seconds, w.exchanges / beats, w.handshakes / beats
    stalled, gaps, errors = stalled + w.stalled, gaps + w.gaps, errors + w.errors
  end
  -- refusals are counted from the start (the warm-up included)
  local last = ws[#ws]
  local nrefused = last.nrefused + last_small.nrefused
  if nrefused > 0 then
    io.stderr:write("uptime_agents: refusals: ", table.concat(last.refused, ", "), " ",
      table.concat(last_small.refused, ", "), "\n")
  end
  local cpb_c, cpb_p = b.median(per_beat_c), b.median(per_beat_p)
  -- at 60-second beats 100 leases exchange 100/60 beats a second
  local function pct(cpb) return cpb * 100 / 60 * 100 end
  local mem_c = (last.rss_c - last_small.rss_c) / (N - N_SMALL)
  local mem_p = (last.rss_p - last_small.rss_p) / (N - N_SMALL)
  local at = INTERVAL == 60 and "" or (" (at %gs)"):format(INTERVAL)
  return {
    b.row { name = ("uptime agents: beats/s (%d leases, %gs)"):format(N, INTERVAL), value = b.median(rates),
      unit = "/s", anchor_name = "leases / interval", anchor = N / INTERVAL, goal_kind = "report" },
    b.row { name = "uptime agents: exchanges / beat", value = b.median(xpb), unit = "", goal_kind = "report" },
    b.row { name = "uptime agents: TLS handshakes / beat", value = b.median(hpb), unit = "", goal_kind = "report" },
    b.row { name = "uptime agents: consumer CPU / beat", value = cpb_c * 1e3, unit = "ms",
      anchor_name = "Ed25519 verify+sign", anchor = anchor_c, goal_kind = "report" },
    b.row { name = "uptime agents: provider CPU / beat", value = cpb_p * 1e3, unit = "ms",
      anchor_name = "Ed25519 sign+2 verify", anchor = anchor_p, goal_kind = "report" },
    b.row { name = "consumer CPU, 100 leases @60s" .. at, value = pct(cpb_c), unit = "%",
      goal = 1, goal_kind = "max" },
    b.row { name = "provider CPU, 100 leases @60s" .. at, value = pct(cpb_p), unit = "%",
      goal = 1, goal_kind = "max" },
    b.row { name = ("consumer RSS, %d leases"):format(N), value = last.rss_c / 1024, unit = "MB",
      anchor_name = ("RSS with %d leases"):format(N_SMALL), anchor = last_small.rss_c / 1024, goal_kind = "report" },
    b.row { name = ("provider RSS, %d leases"):format(N), value = last.rss_p / 1024, unit = "MB",
      anchor_name = ("RSS with %d leases"):format(N_SMALL), anchor = last_small.rss_p / 1024, goal_kind = "report" },
    b.row { name = "consumer memory / lease", value = mem_c, unit = "KB", goal = 20, goal_kind = "max" },
    b.row { name = "provider memory / lease", value = mem_p, unit = "KB", goal = 20, goal_kind = "max" },
    b.row { name = "uptime agents: beats refused (both sides)", value = nrefused, unit = "", goal = 0,
      goal_kind = "max" },
    b.row { name = "uptime agents: lease-windows without a beat", value = stalled, unit = "", goal = 0,
      goal_kind = "max" },
    b.row { name = "uptime agents: gaps + exchange errors", value = gaps + errors, unit = "", goal = 0,
      goal_kind = "max" },
  }
end
