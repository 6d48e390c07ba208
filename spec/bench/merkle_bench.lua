-- SPDX-License-Identifier: MIT
--- RFC 6962 Merkle roots over 2^20 leaves of 32 bytes (heartbeat-hash
-- sized). The C figures come from spec/bench/bench_merkle.c; its anchor is
-- the same SHA-256 work as one-shot wp_sha256 calls (n 33-byte leaf
-- messages + n - 1 65-byte node messages, i.e. the same compressions),
-- measured in the same run. The Lua figures go through wp.merkle and are
-- anchored on the C figure of the same operation.
local wp = require "workproof"

local M = wp.merkle

return function(b)
  local log2n = tonumber(os.getenv("MERKLE_BENCH_LOG2") or "20")
  local n = 2 ^ log2n

  local c = {}
  for name, v in b.exec(b.program("bench_merkle") .. " " .. log2n):gmatch("(%S+) (%S+)") do
    c[name] = tonumber(v)
  end
  assert(c.leaves == n and c.root and c.anchor, "bench_merkle output incomplete")

  -- the same leaves as the C bench: 32-byte strings, all different
  local leaves, hashes = {}, {}
  for i = 1, n do
    leaves[i] = wp.sha256(tostring(i))
    hashes[i] = M.leaf_hash(leaves[i])
  end

  local function median_rate(fn)
    local rates = {}
    fn()  -- warm-up
    for r = 1, b.repeats do
      local t0 = wp.now()
      fn()
      rates[r] = n / (wp.now() - t0)
    end
    return b.median(rates)
  end

  local want = M.root(leaves)
  local lua_root = median_rate(function() assert(M.root(leaves) == want) end)
  local lua_hashes = median_rate(function() assert(M.root_from_hashes(hashes) == want) end)
  local lua_builder = median_rate(function()
    local bl = M.builder()
    for i = 1, n do bl:append(leaves[i]) end
    assert(bl:root() == want)
  end)
  leaves, hashes = nil, nil
  collectgarbage()

  local tag = ("2^%d x 32 B leaves"):format(log2n)
  return {
    b.row{ name = "merkle root, " .. tag .. " (C)", value = c.root, unit = "leaves/s",
           anchor_name = "same SHA-256 calls (C)", anchor = c.anchor,
           goal = 3e6, goal_kind = "min" },
    b.row{ name = "merkle root from leaf hashes (C)", value = c.root_hashes, unit = "leaves/s",
           anchor_name = "n-1 node SHA-256 calls (C)", anchor = c.anchor_nodes,
           goal_kind = "report" },
    b.row{ name = "merkle builder append (C)", value = c.builder, unit = "leaves/s",
           anchor_name = "same SHA-256 calls (C)", anchor = c.anchor, goal_kind = "report" },
    b.row{ name = "wp.merkle.root (Lua array)", value = lua_root, unit = "leaves/s",
           anchor_name = "merkle root (C)", anchor = c.root, goal_kind = "report" },
    b.row{ name = "wp.merkle.root_from_hashes (Lua array)", value = lua_hashes, unit = "leaves/s",
           anchor_name = "root from leaf hashes (C)", anchor = c.root_hashes, goal_kind = "report" },
    b.row{ name = "wp.merkle.builder():append (Lua)", value = lua_builder, unit = "leaves/s",
           anchor_name = "builder append (C)", anchor = c.builder, goal_kind = "report" },
  }
end
