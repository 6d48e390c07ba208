-- SPDX-License-Identifier: MIT
--- VDF benchmarks (docs/vdf.md, "Cost model"). The C program bench_vdf
-- measures everything in one run: the core's Montgomery squaring chain,
-- the plain-GMP anchor (mpz_mul + mpz_mod) and OpenSSL's Montgomery chain
-- (goal: at least its rate) in alternating rounds (the core on the fastest
-- path this CPU has: "path" names it, docs/vdf.md), each ratio the median
-- of the ratios within a round, verify
-- time, and the prover's cost relative to the chain. The C figures are thread
-- CPU time (robust on a shared machine); the Lua verify row is wall time.
local wp = require "workproof"

return function(b)
  local out = b.exec(("%s %d"):format(b.program("bench_vdf"), b.repeats))
  local m = {}
  for k, v in out:gmatch("(%S+) (%S+)") do m[k] = tonumber(v) or v end
  for _, k in ipairs({ "sq_per_s", "mpz_sq_per_s", "openssl_sq_per_s", "mpz_ratio", "openssl_ratio", "verify_ms",
                       "prove_ratio_checkpoint", "prove_ratio_longdiv" }) do
    if type(m[k]) ~= "number" then error("bench_vdf printed no " .. k .. ":\n" .. out) end
  end

  -- the binding adds nothing measurable to verify; check it from Lua too
  local y, proof = wp.vdf.eval("bench-lua", 4096)
  local lua_verify = b.rate(function(n)
    for _ = 1, n do assert(wp.vdf.verify("bench-lua", 4096, y, proof)) end
  end, { min_time = 0.2 })

  return {
    b.row{ name = ("vdf: 2048-bit squarings/s (core, %s path, CPU time)"):format(m.path), value = m.sq_per_s,
           unit = "sq/s",
           goal = 1.0e6, goal_kind = "min" },
    b.row{ name = "vdf: squarings vs plain GMP mpz_mul+mpz_mod", value = m.sq_per_s, unit = "sq/s",
           anchor_name = "GMP mpz_mul+mpz_mod", anchor = m.mpz_sq_per_s, ratio = m.mpz_ratio, goal = 1.3 },
    b.row{ name = "vdf: squarings vs OpenSSL BN Montgomery", value = m.sq_per_s, unit = "sq/s",
           anchor_name = "OpenSSL BN_mod_mul_mont", anchor = m.openssl_sq_per_s, ratio = m.openssl_ratio,
           goal = 1.0 },
    b.row{ name = "vdf: verify (C, CPU time)", value = m.verify_ms, unit = "ms", goal = 3, goal_kind = "max" },
    b.row{ name = "vdf: verify (Lua, wall time)", value = 1e3 / lua_verify, unit = "ms",
           goal = 3, goal_kind = "max" },
    b.row{ name = "vdf: prove/eval cost, checkpoints (T=2^19)", value = m.prove_ratio_checkpoint,
           unit = "x", goal_kind = "report" },
    b.row{ name = "vdf: prove/eval cost, long division (T=2^18)", value = m.prove_ratio_longdiv,
           unit = "x", goal_kind = "report" },
  }
end
