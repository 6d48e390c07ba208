-- SPDX-License-Identifier: MIT
--- Helpers for the uptime agents' specs: leases between fresh identities,
-- agent configs, real agent processes, their status API and metrics.
local h = require "helpers"
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson.safe"
local ledger = require "workproof.uptime.ledger"
local assert = require "luassert"

local _M = {}

local function seed() return wp.hex(wp.sha256(tostring(math.random()) .. wp.time())) end
local function pub(s) return wp.hex((wp.ed25519.keypair(wp.unhex(s)))) end

local function now_ns()
  local t = wp.time()
  return ("%d%09d"):format(math.floor(t), math.floor((t % 1) * 1e9))
end

-- A lease between two fresh identities, and a directory for it.
local function new_lease(start)
  local ps, cs = seed(), seed()
  local l = { dir = h.tmpdir(), ps = ps, cs = cs, pk = pub(ps), ck = pub(cs), start = start or now_ns(),
    nonce = wp.hex(wp.sha256(ps .. cs)):sub(1, 32) }
  l.id = ledger.lease_id(l.pk, l.ck, l.start, l.nonce)
  return l
end

local function conf_src(l, role, opts)
  local lines = {
    "return {",
    ("  identity = { seed = %q },"):format(role == "provider" and l.ps or l.cs),
    ("  state_dir = %q,"):format(l.dir .. "/" .. role),
    '  status_listen = "127.0.0.1:0",',
    role == "provider" and ("  listen = %q,"):format(l.addr or "127.0.0.1:0") or "",
    "  epoch_beats = 5, claim_epochs = 2, watch = false,",
    "  " .. (opts.policies or "policies = { timestamps = { interval_s = 1, tolerance_s = 0.5, drift_s = 10 } },"),
    ("  leases = { { provider_key = %q, consumer_key = %q, start = %q, nonce = %q%s%s } },"):format(
      l.pk, l.ck, l.start, l.nonce, role == "consumer" and (", provider = %q"):format(l.via or l.addr) or "",
      role == "provider" and opts.share and (", share = " .. opts.share) or ""),
    opts.extra or "",
    "}",
  }
  local path = l.dir .. "/" .. role .. ".lua"
  h.write(path, table.concat(lines, "\n"))
  return path
end

-- Start an agent; its status URL (and the provider's transport address).
local function start(l, role, opts)
  opts = opts or {}
  local path = conf_src(l, role, opts)
  local file, args = h.build .. "/workproof", { "uptime", role, path }
  if opts.faketime then
    -- libfaketime (Debian's faketime) shifts the agent's wall clock only;
    -- preloaded through env, which execs: the pid stays the agent's
    local lib = "/usr/lib/" .. (io.popen("gcc -print-multiarch"):read("*l") or "x86_64-linux-gnu")
      .. "/faketime/libfaketime.so.1"
    local pre = { "LD_PRELOAD=" .. lib, "FAKETIME=" .. opts.faketime, "FAKETIME_DONT_FAKE_MONOTONIC=1" }
    -- a sanitizer build wants its runtime first among the libraries: let it
    -- come second to libfaketime
    if os.getenv("ASAN_OPTIONS") then
      pre[#pre + 1] = "ASAN_OPTIONS=" .. os.getenv("ASAN_OPTIONS") .. ":verify_asan_link_order=0"
    end
    pre[#pre + 1] = file
    for i, a in ipairs(pre) do table.insert(args, i, a) end
    file = "/usr/bin/env"
  end
  if opts.cpus then   -- taskset execs: the pid stays the agent's
    for i, a in ipairs({ "-c", opts.cpus, file }) do table.insert(args, i, a) end
    file = "/usr/bin/taskset"
  end
  local p, buf = h.spawn_until({ file = file, args = args, timeout = 600, stderr_limit = 4 * 1048576 },
    "status API on [^\n]*\n", role)
  local a = { proc = p, role = role, status = "http://" .. buf:match("status API on http://(%S+)") }
  if role == "provider" then
    l.addr = buf:match("listening on (%S+)")   -- a restart keeps the port
    a.addr = l.addr
  end
  l[role] = a
  return a
end

local function get(a, path)
  local st, _, body = h.http("GET", a.status .. path)
  assert(st == 200, ("GET %s: %s %s"):format(path, tostring(st), tostring(body)))
  return cjson.decode(body) or body
end

local function lease_of(a, l) return get(a, "/leases/" .. l.id) end

local function beats(a, l) return lease_of(a, l).beats end

-- poll (every 0.25 s: each poll is a curl process) until pred() or seconds
local function soon(pred, seconds)
  local deadline = wp.now() + (seconds or 30)
  while not pred() do
    if wp.now() > deadline then return false end
    wp.sleep(0.25)
  end
  return true
end

local function wait_beats(a, l, n, seconds)
  assert(soon(function() return beats(a, l) >= n end, seconds or 30),
    ("%s: fewer than %d beats (%d)"):format(a.role, n, beats(a, l)))
end

local function stop(a, sig)
  host.kill(a.proc.pid, sig or 15)
  while a.proc:read() do end
  return a.proc:wait()
end

local function stop_all(l)
  for _, role in ipairs({ "consumer", "provider" }) do
    if l[role] and not l[role].stopped then l[role].stopped = true stop(l[role]) end
  end
end

local function chain_lines(a, l)
  local st, _, body = h.http("GET", a.status .. "/leases/" .. l.id .. "/chain")
  assert.equal(200, st)
  local out = {}
  for line in body:gmatch("[^\n]+") do out[#out + 1] = line end
  return out
end

-- `workproof uptime export` then `workproof uptime verify` on the result
local function export_verify(l, role, with_rotations, governance_key)
  local out, rot = l.dir .. "/" .. role .. "-chain.jsonl", l.dir .. "/" .. role .. "-rot.jsonl"
  local args = { "uptime", "export", l.dir .. "/" .. role .. ".lua", "--out", out }
  if with_rotations then args[#args + 1] = "--rotations-out"; args[#args + 1] = rot end
  local text, st = h.run(h.build .. "/workproof", args)
  assert(st.exit_status == 0, text .. st.stderr)
  local vargs = { "uptime", "verify", out, "--provider-key", l.pk, "--consumer-key", l.ck, "--interval", "1",
    "--tolerance", "0.5", "--json" }
  if with_rotations then vargs[#vargs + 1] = "--rotations"; vargs[#vargs + 1] = rot end
  if governance_key then vargs[#vargs + 1] = "--governance-key"; vargs[#vargs + 1] = governance_key end
  local vout, vst = h.run(h.build .. "/workproof", vargs)
  return cjson.decode(vout) or vout, vst, out
end

local function no_repeats(lines)
  local seen = {}
  for i, line in ipairs(lines) do
    local b = cjson.decode(line)
    assert.equal(i - 1, b.sequence)
    assert.is_nil(seen[b.sequence])
    seen[b.sequence] = true
  end
end

local function metric(a, name, label)
  local st, _, body = h.http("GET", a.status .. "/metrics")
  assert.equal(200, st)
  local pat = name:gsub("_", "%%_") .. "{[^}]*" .. (label and label:gsub("[%-%%]", "%%%0") or "") .. "[^}]*} (%d+)"
  local n = 0
  for v in body:gmatch(pat) do n = n + tonumber(v) end
  return n
end

-- an exchange made from this process with an identity and a pin of our choice
local function exchange(l, identity_seed, pin, body)
  local id = assert(host.tls_identity(identity_seed, 3600))
  return host.http_request { url = "https://" .. l.addr .. "/v1/leases/" .. l.id .. "/exchange", method = "POST",
    body = cjson.encode(body or { last = cjson.null }), timeout = 10,
    tls = { cert = id.cert, key = id.key, pin = pin } }
end


_M.seed = seed
_M.pub = pub
_M.now_ns = now_ns
_M.new_lease = new_lease
_M.conf_src = conf_src
_M.start = start
_M.get = get
_M.lease_of = lease_of
_M.beats = beats
_M.soon = soon
_M.wait_beats = wait_beats
_M.stop = stop
_M.stop_all = stop_all
_M.chain_lines = chain_lines
_M.export_verify = export_verify
_M.no_repeats = no_repeats
_M.metric = metric
_M.exchange = exchange

return _M
