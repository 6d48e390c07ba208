-- SPDX-License-Identifier: MIT
--- Challenge costs (docs/uptime.md section 11): for each kind, what
-- answering costs the provider (work and signature) and what checking costs
-- the challenger, in CPU time of this process (os.clock: every thread,
-- the VDF runs on the thread pool); then the cost to an honest provider of
-- one lease for a day at the challenges policy's default frequencies.
local wp = require "workproof"
local policy = require "workproof.policy"
local chal = require "workproof.uptime.challenge"
local storage = require "workproof.uptime.storage"

local function cpu_ms(fn, n)
  local t = {}
  for i = 1, n do
    local c0 = os.clock()
    fn()
    t[i] = (os.clock() - c0) * 1000
  end
  return t
end

return function(b)
  local p = policy.load_file("policies/challenges.lua")
  local conf = assert(policy.configure(p, {}))
  local pub, sk = wp.ed25519.keypair(wp.sha256("bench provider"))
  local key = wp.hex(pub)
  local lease = wp.hex(wp.sha256("bench lease"))

  -- storage: 16 MiB of the consumer's stream, stored and committed as after its upload
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local path = dir .. "/lease.dat"
  local skey = storage.key(wp.hex(wp.sha256("bench consumer")), lease)
  local com = assert(storage.provision(path, 16 * 1048576, { key = skey }))
  local ctx = { path = path, commitment = com }

  local kinds = {
    { kind = "compute", params = { t = conf.compute_t }, every = conf.compute_every_s },
    { kind = "storage", params = { k = conf.storage_chunks }, every = conf.storage_every_s },
    { kind = "latency", params = {}, every = conf.latency_every_s },
  }
  local rows, per_day = {}, 0
  for _, k in ipairs(kinds) do
    local last_ch, last_ans
    local prov = cpu_ms(function()
      local ch = { kind = k.kind, nonce = chal.nonce(), params = k.params, scope = lease }
      local ans = assert(chal.answer(ch, ctx))
      last_ch, last_ans = ch, chal.sign(chal.ANSWER, ans, sk, key)
    end, b.repeats)
    local check = cpu_ms(function()
      assert(chal.check(last_ch, last_ans, key, com, skey))
    end, b.repeats)
    local pm, cm = b.median(prov), b.median(check)
    per_day = per_day + pm / 1000 * 86400 / k.every
    rows[#rows + 1] = b.row { name = ("challenge %s: provider answers (CPU)"):format(k.kind), value = pm, unit = "ms",
      goal_kind = "report" }
    rows[#rows + 1] = b.row { name = ("challenge %s: challenger checks (CPU)"):format(k.kind), value = cm,
      unit = "ms", goal_kind = "report" }
  end
  os.remove(path)
  os.remove(path .. ".tree")
  os.remove(dir)
  -- one lease for a day at the default frequencies, as a share of one core
  rows[#rows + 1] = b.row { name = "challenges: provider CPU per lease per day", value = per_day, unit = "s",
    goal_kind = "report" }
  rows[#rows + 1] = b.row { name = "challenges: that as a share of one core", value = per_day / 86400 * 100,
    unit = "%", goal = 0.1, goal_kind = "max" }
  return rows
end
