-- SPDX-License-Identifier: MIT
--- Signatures through the Lua API against the raw C libraries (bench_sig.c).
-- Same inputs on both sides: a 64-byte message, Ed25519 seed 0x42 x 32,
-- secp256k1 key SHA-256("bench key") signing SHA-256(message).
local wp = require "workproof"

local ed25519, secp256k1 = wp.ed25519, wp.secp256k1

local function message()
  local t = {}
  for i = 0, 63 do t[#t + 1] = string.char((i * 7 + 1) % 256) end
  return table.concat(t)
end

return function(b)
  local prog = b.program("bench_sig")
  -- the shortest op on the noisiest rows: more alternating rounds for a steadier median
  local rounds = math.max(b.repeats, 9)
  local slice = 0.25 -- seconds per measured run

  -- One C measurement of `op` (a single run of about `slice` seconds).
  local function c_rate(op)
    local out = b.exec(("BENCH_REPEATS=1 BENCH_MIN_TIME=%g %s %s"):format(slice, prog, op))
    return assert(tonumber(out:match("^%s*([%d%.]+)")), "bench_sig printed no rate: " .. out)
  end

  -- The box is shared: alternate Lua and C runs so both see the same load,
  -- then take the median of each side.
  local function pair(fn, op)
    local lua, c = {}, {}
    for i = 1, rounds do
      lua[i] = b.rate(fn, { repeats = 1, min_time = slice })
      c[i] = c_rate(op)
    end
    return b.median(lua), b.median(c)
  end

  local msg = message()
  local pub, secret = ed25519.keypair(("\x42"):rep(32))
  local sig = ed25519.sign(secret, msg)
  assert(ed25519.verify(pub, msg, sig), "bench setup: signature does not verify")

  local sk, hash = wp.sha256("bench key"), wp.sha256(msg)
  local k1_pub = secp256k1.pubkey(sk)
  local k1_sig = secp256k1.sign(sk, hash)
  assert(secp256k1.recover(hash, k1_sig) == k1_pub, "bench setup: recovery mismatch")

  local verify_lua, verify_c = pair(function(n)
    local ok
    for _ = 1, n do ok = ed25519.verify(pub, msg, sig) end
    assert(ok == true)
  end, "ed25519-verify")

  local signrec_lua, signrec_c = pair(function(n)
    local p
    for _ = 1, n do p = secp256k1.recover(hash, secp256k1.sign(sk, hash)) end
    assert(p == k1_pub)
  end, "secp256k1-signrecover")

  local sign_lua, sign_c = pair(function(n)
    for _ = 1, n do ed25519.sign(secret, msg) end
  end, "ed25519-sign")

  local rec_lua, rec_c = pair(function(n)
    for _ = 1, n do secp256k1.recover(hash, k1_sig) end
  end, "secp256k1-recover")

  return {
    b.row{ name = "ed25519 verify (wp.ed25519.verify)", value = verify_lua, unit = "op/s",
           anchor_name = "libsodium verify_detached (C)", anchor = verify_c, goal = 0.9 },
    b.row{ name = "secp256k1 sign+recover (Lua)", value = signrec_lua, unit = "op/s",
           anchor_name = "libsecp256k1 sign+recover (C)", anchor = signrec_c, goal = 0.9 },
    b.row{ name = "ed25519 sign (wp.ed25519.sign)", value = sign_lua, unit = "op/s",
           anchor_name = "libsodium sign_detached (C)", anchor = sign_c, goal_kind = "report" },
    b.row{ name = "secp256k1 recover (wp.secp256k1.recover)", value = rec_lua, unit = "op/s",
           anchor_name = "libsecp256k1 recover (C)", anchor = rec_c, goal_kind = "report" },
  }
end
