-- SPDX-License-Identifier: MIT
-- Per-call cost of the shipped controller hooks through policy.call, as the
-- controller calls them (docs/policies.md, "Budget"): median of 7 rounds.
--   build/workproof run spec/bench/policy_hooks.lua [calls]
local policy = require "workproof.policy"
local host = require "workproof.host"

local N = tonumber(arg and arg[1]) or 20000

local function load(name, conf)
  local p = policy.load_file("policies/" .. name .. ".lua", { clock = host.time })
  return p, assert(policy.configure(p, conf or {}))
end

local function bench(label, n, f)
  local rounds = {}
  for r = 1, 7 do
    local t0 = host.now()
    for i = 1, n do f(i) end
    rounds[r] = (host.now() - t0) / n * 1e9
  end
  table.sort(rounds)
  print(("%-40s %10.0f ns/call"):format(label, rounds[4]))
end

local function on_err(e) error(e) end
local function call(p, hook, fallback, absent, ...) return policy.call(p, hook, fallback, on_err, absent, ...) end

local rl, rlc = load("rate_limit", { limit = 1e9, trusted_proxies = { "10.0.0.0/8" } })
local cb, cbc = load("circuit_breaker")
local wt, wtc = load("worker_threshold", { max_active = 1e6, per_client = 1e6 })
local tt, ttc = load("task_types")
local cp, cpc = load("code_patterns")

local xff = { ["x-forwarded-for"] = "203.0.113.9, 10.1.2.3" }
local body = { taskType = "code-execution", code = "print(1)", language = "lua" }
local line = "const a = [1,2,3].map(x => x * 2); console.log(a.join(','));\n"
local code1k, code100k = line:rep(16), line:rep(1600)
local rst, cst, wst = {}, {}, {}

bench("rate_limit.client_key (v4 peer)", N, function()
  return call(rl, "client_key", nil, nil, rlc, "203.0.113.7", {})
end)
bench("rate_limit.client_key (XFF)", N, function() return call(rl, "client_key", nil, nil, rlc, "10.0.0.1", xff) end)
bench("rate_limit.check", N, function(i)
  return call(rl, "check", "block", "allow", rlc, rst, "k" .. (i % 1000), 1000 + i * 1e-3)
end)
bench("circuit_breaker.allow", N, function() return call(cb, "allow", false, true, cbc, cst, 1000) end)
bench("worker_threshold.admit+release", N, function()
  call(wt, "admit", false, true, wtc, wst, "k")
  return call(wt, "release", nil, nil, wtc, wst, "k")
end)
bench("task_types.resolve", N, function() return call(tt, "resolve", nil, nil, ttc, "code-execution", body) end)
bench("code_patterns.check 1 KB", math.floor(N / 10), function()
  return call(cp, "check", nil, nil, cpc, "javascript", code1k)
end)
bench("code_patterns.check 100 KB", 20, function() return call(cp, "check", nil, nil, cpc, "javascript", code100k) end)
local t0 = host.now()
for _ = 1, 5 do load("code_patterns") end
print(("%-40s %10.1f ms"):format("code_patterns load+configure", (host.now() - t0) / 5 * 1e3))
