-- SPDX-License-Identifier: MIT
--- Proof of uptime: one day of one lease (1,440 beats, 2,880 signatures)
-- verified in C and through the Lua paths, against 2,880 raw libsodium
-- verifications measured in the same run; the daily epoch + claim roll-up.
local wp = require "workproof"
local cjson = require "cjson"

local u = wp.uptime

return function(b)
  -- C: the verifier and its anchor, same process, same digests
  local out = b.exec(b.program("bench_uptime") .. " " .. math.max(b.repeats, 5))
  local c = {}
  for k, v in out:gmatch("(%S+) (%S+)\n") do c[k] = tonumber(v) end
  local anchor = c.raw_verify_2880_ms

  -- Lua: a day of beat tables, its JSON lines and its packed form
  local ppub, psec = wp.ed25519.keypair(("\1"):rep(32))
  local cpub, csec = wp.ed25519.keypair(("\2"):rep(32))
  local beats, prev, lines = {}, nil, {}
  for i = 0, u.CLAIM_BEATS - 1 do
    local bt = assert(u.build(("11"):rep(32), i, ("%d000000000"):format(1700000000 + 60 * i), prev))
    u.sign(bt, psec)
    u.countersign(bt, ppub, csec)
    beats[#beats + 1] = bt
    lines[#lines + 1] = cjson.encode(bt)
    prev = bt.hash
  end
  local packed = assert(u.pack(beats))
  local keys = { provider = ppub, consumer = cpub }
  local function day_ms(fn)
    local rate = b.rate(function(n) for _ = 1, n do assert(fn()) end end, { min_time = 0.5 })
    return 1000 / rate
  end
  local tables_ms = day_ms(function() return u.verify_chain(beats, keys) end)
  local packed_ms = day_ms(function() return u.verify_chain(packed, keys) end)
  local jsonl_ms = day_ms(function()
    local t = {}
    for i, l in ipairs(lines) do t[i] = cjson.decode(l) end
    return u.verify_chain(t, keys)
  end)
  local rollup_rate = b.rate(function(n) for _ = 1, n do assert(u.rollup(beats)) end end)

  return {
    b.row { name = "uptime: verify 1 day, C (2,880 sigs)", value = c.verify_day_ms, unit = "ms",
      anchor_name = "2,880 raw libsodium verifies", anchor = anchor, goal = 150, goal_kind = "max" },
    b.row { name = "uptime: verify 1 day, Lua beat tables", value = tables_ms, unit = "ms",
      anchor_name = "2,880 raw libsodium verifies", anchor = anchor, goal = 150, goal_kind = "max" },
    b.row { name = "uptime: verify 1 day, Lua packed string", value = packed_ms, unit = "ms",
      anchor_name = "2,880 raw libsodium verifies", anchor = anchor, goal = 150, goal_kind = "max" },
    b.row { name = "uptime: JSON lines decode + verify 1 day", value = jsonl_ms, unit = "ms",
      anchor_name = "2,880 raw libsodium verifies", anchor = anchor, goal_kind = "report" },
    b.row { name = "uptime: epoch + claim roll-up / lease-day (C)", value = c.rollup_day_us, unit = "us",
      goal_kind = "report" },
    b.row { name = "uptime: roll-up / lease-day (Lua tables)", value = 1e6 / rollup_rate, unit = "us",
      goal_kind = "report" },
  }
end
