-- SPDX-License-Identifier: MIT
--- Hash throughput: the core C API (spec/bench/bench_hash.c) against
-- `openssl speed` on the same machine in the same run, and the Lua API
-- against the C figure.
--
-- `openssl speed` times with user CPU time (not wall time) unless given
-- -elapsed; bench_hash and the Lua loop below therefore time CPU too, so a
-- busy machine shifts neither side of a ratio.
local wp = require "workproof"

local clock, rep = os.clock, string.rep

-- Median over `repeats` of the CPU-time rate of fn(n) (n operations per
-- call), n calibrated so that one repeat takes about min_time seconds.
local function cpu_rate(b, fn, min_time)
  min_time = min_time or 0.3
  local n = 1
  while true do
    local t0 = clock()
    fn(n)
    local dt = clock() - t0
    if dt >= min_time / 4 then
      n = math.max(1, math.floor(n * min_time / dt))
      break
    end
    n = n * 4
  end
  local rates = {}
  for i = 1, b.repeats do
    local t0 = clock()
    fn(n)
    rates[i] = n / math.max(clock() - t0, 1e-9)
  end
  return b.median(rates)
end

-- Median over `repeats` runs of `openssl speed -mr` for one digest and
-- size, in bytes per second.
local function openssl_speed(b, digest, bytes)
  local cmd = ("openssl speed -mr -evp %s -bytes %d -seconds 1 2>/dev/null"):format(digest, bytes)
  local xs = {}
  for i = 1, b.repeats do
    local out = b.exec(cmd)
    local v = out:match("%+F:%d+:[^:]+:([%d%.]+)")
    if not v then error("cannot parse `" .. cmd .. "` output: " .. out) end
    xs[i] = tonumber(v)
  end
  return b.median(xs)
end

return function(b)
  local out = b.exec(b.program("bench_hash") .. " " .. b.repeats)
  local c = {}
  for k, v in out:gmatch("(%S+)%s+(%S+)") do c[k] = tonumber(v) end
  for _, k in ipairs({ "sha256_16k_Bps", "sha256_32_hps", "keccak256_64_hps", "keccak256_16k_Bps" }) do
    if not c[k] then error("bench_hash printed no " .. k .. ": " .. out) end
  end

  local ossl_sha256 = openssl_speed(b, "sha256", 16384)
  local ossl_sha3 = openssl_speed(b, "sha3-256", 16384)

  local sha256, buf = wp.sha256, rep("\90", 16384)
  local lua_sha256 = cpu_rate(b, function(n)
    for _ = 1, n do sha256(buf) end
  end) * 16384

  return {
    b.row{ name = "sha256 16 KiB, C API (wp_sha256)", value = c.sha256_16k_Bps, unit = "B/s",
           anchor_name = "openssl speed -evp sha256", anchor = ossl_sha256, goal = 0.9 },
    b.row{ name = "sha256 16 KiB, Lua wp.sha256", value = lua_sha256, unit = "B/s",
           anchor_name = "the C API figure", anchor = c.sha256_16k_Bps, goal_kind = "report" },
    b.row{ name = "sha256 32 B, C API", value = c.sha256_32_hps, unit = "hash/s", goal_kind = "report" },
    b.row{ name = "keccak256 64 B, C API", value = c.keccak256_64_hps, unit = "hash/s", goal_kind = "report" },
    -- same Keccak-f[1600] permutation and 136-byte rate, different padding
    b.row{ name = "keccak256 16 KiB, C API (nettle)", value = c.keccak256_16k_Bps, unit = "B/s",
           anchor_name = "openssl speed -evp sha3-256", anchor = ossl_sha3, goal_kind = "report" },
  }
end
