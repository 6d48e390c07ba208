-- SPDX-License-Identifier: MIT
--- `make uptime-demo`: a provider and a consumer on loopback, 2-second
-- beats, 5-beat epochs, 2-epoch claims, over the authenticated transport
-- (the provider takes beats on 127.0.0.1:8451; the consumer's status API is
-- on 127.0.0.1:8452, the provider's on 127.0.0.1:8453), with compute,
-- storage (16 MiB) and latency challenges every 20 s. Prints progress;
-- Ctrl-C or SIGTERM stops both.
--
-- When `make run`'s anvil is up (var/local/deployment.json, its RPC
-- answering), the lease goes on chain too: the provider (anvil account #7)
-- registers with collateral and posts every claim to the UptimeRegistry, the
-- consumer (#8) checks them, and an arbiter (#9, the deployment's) runs.
-- (Accounts no other example pays from: `examples/pay.lua` uses #1.)
--
--   workproof run examples/uptime/demo.lua [STATE_DIR]
local host = require "workproof.host"
local cjson = require "cjson.safe"

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local state = (...) or (here .. "/../../build/uptime-demo")
os.execute("rm -rf '" .. state .. "' && mkdir -p '" .. state .. "'")

local ENV = { WORKPROOF_UPTIME_INTERVAL = "2", WORKPROOF_UPTIME_TOLERANCE = "1",
  WORKPROOF_UPTIME_EPOCH_BEATS = "5", WORKPROOF_UPTIME_CLAIM_EPOCHS = "2",
  WORKPROOF_UPTIME_CHALLENGE_S = "20", WORKPROOF_UPTIME_STORAGE_MB = "16" }
for k in pairs(ENV) do ENV[k] = os.getenv(k) or ENV[k] end   -- the environment may say otherwise
ENV.WORKPROOF_UPTIME_LEASE_START = os.getenv("WORKPROOF_UPTIME_LEASE_START")
  or ("%d000000000"):format(os.time())   -- a fresh lease each run: the registry keeps the old ones

-- the chain of `make run`, when it is up
local DEPLOYMENT = os.getenv("WORKPROOF_UPTIME_DEPLOYMENT") or (here .. "/../../var/local/deployment.json")
local chain = (function()
  local f = io.open(DEPLOYMENT, "rb")
  local dep = f and cjson.decode(f:read("*a") or "")
  if f then f:close() end
  if type(dep) ~= "table" or type(dep.uptime) ~= "table" then return nil end
  local st, _, body = host.http_request { method = "POST", url = dep.rpcUrl, timeout = 2,
    headers = { ["content-type"] = "application/json" },
    body = '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' }
  local r = st == 200 and cjson.decode(body or "")
  if not (r and tonumber(r.result) == dep.chainId) then return nil end
  -- anvil's well-known development keys (#7 provider, #8 consumer, #9 the arbiter)
  local keys = { provider = "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    consumer = "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    arbiter = "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6" }
  local files = {}
  for role, k in pairs(keys) do
    files[role] = state .. "/" .. role .. ".key"
    local kf = assert(io.open(files[role], "wb"))
    kf:write(k, "\n")
    kf:close()
    os.execute("chmod 600 '" .. files[role] .. "'")
  end
  return { dep = dep, keys = files, rpc = dep.rpcUrl, registry = dep.uptime.registry }
end)()

local procs, ended = {}, {}
local function start(role, extra)
  local args = {}
  for k, v in pairs(ENV) do args[#args + 1] = k .. "=" .. v end
  for k, v in pairs(extra) do args[#args + 1] = k .. "=" .. v end
  table.sort(args)
  for _, a in ipairs({ host.exepath, "uptime", role, here .. "/" .. role .. ".lua" }) do args[#args + 1] = a end
  local p = assert(host.process_spawn { file = "/usr/bin/env", args = args, inherit_stderr = true })
  procs[role] = p.pid   -- the handle goes once the process has ended and its output is read
  -- relay its stdout
  host.spawn(function()
    while true do
      local c = p:read()
      if not c then ended[role] = true break end
      for line in c:gmatch("[^\n]+") do io.stdout:write(("[%s] %s\n"):format(role, line)) end
      io.stdout:flush()
    end
  end)
  return p
end

local function on_chain(role)
  if not chain then return {} end
  return { WORKPROOF_UPTIME_RPC = chain.rpc, WORKPROOF_UPTIME_DEPLOYMENT = DEPLOYMENT,
    WORKPROOF_UPTIME_SIGNER = chain.keys[role], WORKPROOF_UPTIME_ARBITER_KEY = chain.keys.arbiter,
    WORKPROOF_UPTIME_CONSUMER_ADDRESS = "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f" }   -- anvil #8
end
local function with(t, extra)
  for k, v in pairs(extra) do t[k] = v end
  return t
end
start("provider", with({ WORKPROOF_UPTIME_STATE = state .. "/provider" }, on_chain("provider")))
start("consumer", with({ WORKPROOF_UPTIME_STATE = state .. "/consumer" }, on_chain("consumer")))
if chain then
  start("arbiter", with({ WORKPROOF_UPTIME_STATE = state .. "/arbiter" }, on_chain("arbiter")))
  io.stdout:write("uptime-demo: on chain ", tostring(chain.dep.chainId), ": claims go to the UptimeRegistry ",
    chain.registry, "\n")
else
  io.stdout:write("uptime-demo: no chain (start `make run` first to post claims to the UptimeRegistry)\n")
end

local stopping = false
local function stop(sig)
  if stopping then return end
  stopping = true
  io.stdout:write("uptime-demo: SIG", sig, ": stopping the agents\n")
  for role, pid in pairs(procs) do if not ended[role] then host.kill(pid, 15) end end
  local deadline = host.now() + 10
  local function all_ended()
    for role in pairs(procs) do if not ended[role] then return false end end
    return true
  end
  while not all_ended() and host.now() < deadline do host.sleep(0.05) end
  io.stdout:write("uptime-demo: stopped; state in ", state, "\n")
  io.stdout:flush()
  host.stop(0)
end
host.on_signal("INT", function() stop("INT") end)
host.on_signal("TERM", function() stop("TERM") end)

-- progress: the consumer's view of the lease, every beat
local last
while not stopping do
  host.sleep(2)
  local st, _, body = host.http_request { url = "http://127.0.0.1:8452/leases", timeout = 2 }
  local t = st == 200 and cjson.decode(body)
  local L = t and t.leases and t.leases[1]
  if L and L.beats ~= last then
    last = L.beats
    local d = select(3, host.http_request { url = "http://127.0.0.1:8452/leases/" .. L.id, timeout = 2 })
    local detail = cjson.decode(d or "") or {}
    local signed, checked = 0, 0
    for _, c in ipairs(detail.claims or {}) do
      if c.consumerSignature ~= cjson.null then signed = signed + 1 end
      if c.onChain == "ok" then checked = checked + 1 end
    end
    local cs = select(3, host.http_request { url = "http://127.0.0.1:8452/leases/" .. L.id .. "/challenges",
      timeout = 2 })
    local ch = cjson.decode(cs or "") or {}
    local kinds = {}
    for _, r in ipairs(ch.challenges or {}) do
      local k = kinds[r.kind] or { 0, 0 }
      k[1], k[2] = k[1] + (r.passed and 1 or 0), k[2] + 1
      kinds[r.kind] = k
    end
    local parts = {}
    for _, kind in ipairs({ "compute", "storage", "latency" }) do
      if kinds[kind] then parts[#parts + 1] = ("%s %d/%d"):format(kind, kinds[kind][1], kinds[kind][2]) end
    end
    io.stdout:write(("uptime-demo: lease %s… %-5s beats %d  epochs %d  claims %d (%d countersigned)  "
      .. "uptime %.2f %%  gaps %d  challenges passed: %s  score %s%s\n"):format(L.id:sub(1, 12), L.state, L.beats,
      detail.epochs or 0, #(detail.claims or {}), signed, L.uptime * 100, L.gaps,
      #parts > 0 and table.concat(parts, ", ") or "none yet",
      type(ch.score) == "number" and ("%.3f"):format(ch.score) or "-",
      chain and ("  on chain: %d posted and checked"):format(checked) or ""))
    io.stdout:flush()
  end
  for role in pairs(procs) do
    if ended[role] and not stopping then
      io.stdout:write("uptime-demo: the ", role, " exited: stopping\n")
      stop("CHLD")
    end
  end
end
