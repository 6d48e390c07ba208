-- SPDX-License-Identifier: MIT
--- x402 payment verification through the Lua API against the same work
-- through the core's C API (bench_evm.c), measured in the same run:
-- EIP-712 TransferWithAuthorization digest from the header's text fields,
-- secp256k1 recovery of the payer, address comparison.
local wp = require "workproof"

local eip712, secp256k1, eth = wp.eip712, wp.secp256k1, wp.eth

-- the viem-signed payment of spec/unit/eip712_spec.lua (anvil key 0)
local DOMAIN = { name = "USDC", version = "2", chainId = 84532,
                 verifyingContract = "0x036CbD53842c5426634e7929541eC2318f3dCF7e" }
local MSG = { from = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
              value = "10000", validAfter = "1740672089", validBefore = "1740672154",
              nonce = "0x" .. ("f0"):rep(32) }
local SIG = wp.unhex("cf6e301f847749211ef5682ae86865ad5b0b0c9d7e7f57071e17f90a5aeda1af" ..
  "60605e61d52115173acd4a7ebffa40fde9bc5e40ada19c2a15321e06616f287a1b")

return function(b)
  local prog = b.program("bench_evm")
  local rounds = b.repeats
  local slice = 0.25

  local function c_rate(op)
    local out = b.exec(("BENCH_REPEATS=1 BENCH_MIN_TIME=%g %s %s"):format(slice, prog, op))
    return assert(tonumber(out:match("^%s*([%d%.]+)")), "bench_evm printed no rate: " .. out)
  end

  -- alternate Lua and C runs so both see the same machine load
  local function pair(fn, op)
    local lua, c = {}, {}
    for i = 1, rounds do
      lua[i] = b.rate(fn, { repeats = 1, min_time = slice })
      c[i] = c_rate(op)
    end
    return b.median(lua), b.median(c)
  end

  local ds = assert(eip712.domain_separator(DOMAIN))
  local function verify(domain)
    local digest = assert(eip712.transfer_with_authorization_hash(domain, MSG))
    local pub = assert(secp256k1.recover(digest, SIG))
    return eth.address(pub) == MSG.from
  end
  assert(verify(ds) and verify(DOMAIN), "bench setup: the payment does not verify")

  local verify_lua, verify_c = pair(function(n)
    local ok
    for _ = 1, n do ok = verify(ds) end
    assert(ok)
  end, "x402-verify")

  local hash_lua, hash_c = pair(function(n)
    for _ = 1, n do eip712.transfer_with_authorization_hash(ds, MSG) end
  end, "twa-hash")

  local verify_domain_lua = b.rate(function(n)
    for _ = 1, n do verify(DOMAIN) end
  end)

  return {
    b.row{ name = "x402 verify (Lua: 712 hash + recover)", value = verify_lua, unit = "op/s",
           anchor_name = "same through the C API", anchor = verify_c, goal = 10000, goal_kind = "min" },
    b.row{ name = "TransferWithAuthorization hash (Lua)", value = hash_lua, unit = "op/s",
           anchor_name = "same through the C API", anchor = hash_c, goal_kind = "report" },
    b.row{ name = "x402 verify, domain table per call", value = verify_domain_lua, unit = "op/s",
           anchor_name = "C, precomputed separator", anchor = verify_c, goal_kind = "report" },
  }
end
