-- SPDX-License-Identifier: MIT
--- `make uptime-demo`: a provider and a consumer on loopback, 2-second
-- beats, 5-beat epochs, 2-epoch claims, over the authenticated transport
-- (the provider takes beats on 127.0.0.1:8451; the consumer's status API is
-- on 127.0.0.1:8452, the provider's on 127.0.0.1:8453), with compute,
-- storage (16 MiB) and latency challenges every 20 s. Prints progress;
-- Ctrl-C or SIGTERM stops both.
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

start("provider", { WORKPROOF_UPTIME_STATE = state .. "/provider" })
start("consumer", { WORKPROOF_UPTIME_STATE = state .. "/consumer" })

local stopping = false
local function stop(sig)
  if stopping then return end
  stopping = true
  io.stdout:write("uptime-demo: SIG", sig, ": stopping the provider and the consumer\n")
  for role, pid in pairs(procs) do if not ended[role] then host.kill(pid, 15) end end
  local deadline = host.now() + 10
  while not (ended.provider and ended.consumer) and host.now() < deadline do host.sleep(0.05) end
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
    local signed = 0
    for _, c in ipairs(detail.claims or {}) do if c.consumerSignature ~= cjson.null then signed = signed + 1 end end
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
      .. "uptime %.2f %%  gaps %d  challenges passed: %s  score %s\n"):format(L.id:sub(1, 12), L.state, L.beats,
      detail.epochs or 0, #(detail.claims or {}), signed, L.uptime * 100, L.gaps,
      #parts > 0 and table.concat(parts, ", ") or "none yet",
      type(ch.score) == "number" and ("%.3f"):format(ch.score) or "-"))
    io.stdout:flush()
  end
  for role in pairs(procs) do
    if ended[role] and not stopping then
      io.stdout:write("uptime-demo: the ", role, " exited: stopping\n")
      stop("CHLD")
    end
  end
end
