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
    ("  leases = { { provider_key = %q, consumer_key = %q, start = %q, nonce = %q%s%s%s } },"):format(
      l.pk, l.ck, l.start, l.nonce, role == "consumer" and (", provider = %q"):format(l.via or l.addr) or "",
      role == "provider" and opts.share and (", share = " .. opts.share) or "",
      opts.lease_extra and (", " .. opts.lease_extra) or ""),
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


-- ---- the chain (anvil from spec/helpers.lua's start_anvil) ----------------------------

-- anvil's default accounts: { address, key (hex) }
_M.ACCOUNTS = {}
for i, k in ipairs({ "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
  "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
  "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
  "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
  "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
  "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
  "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6" }) do
  _M.ACCOUNTS[i - 1] = { key = k, address = wp.eth.address(wp.secp256k1.pubkey(wp.unhex(k))) }
end

--- A signer key file (mode 0600) for anvil account i in dir; its path.
function _M.key_file(dir, i)
  local path = ("%s/signer-%d.key"):format(dir, i)
  h.write(path, _M.ACCOUNTS[i].key .. "\n")
  os.execute("chmod 600 " .. path)
  return path
end

--- Send a transaction from anvil account i and wait for its receipt:
-- receipt, status ("0x1" mined ok, "0x0" reverted). tx = { to, data }.
function _M.send(url, i, tx)
  local r = wp.rpc.new(url)
  local acct = _M.ACCOUNTS[i]
  local nonce = assert(r:call("eth_getTransactionCount", { acct.address, "pending" }))
  local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = tonumber(nonce), maxPriorityFeePerGas = 1e9,
    maxFeePerGas = 3e10, gas = 3000000, to = tx.to, value = "0", data = tx.data }, wp.unhex(acct.key)))
  local hash = assert(r:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) }))
  local rc
  assert(soon(function() rc = r:call("eth_getTransactionReceipt", { hash }) return type(rc) == "table" end, 30))
  return rc, rc.status
end

--- A token balance (number) of address.
function _M.balance(url, token, address)
  local data = assert(wp.abi.encode_call("balanceOf(address)", { address }))
  local raw = assert(wp.rpc.new(url):call("eth_call", { { to = token, data = "0x" .. wp.hex(data) }, "latest" }))
  return tonumber(raw, 16)
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
