-- SPDX-License-Identifier: MIT
-- wp.vdf: Wesolowski VDF over the RSA-2048 challenge modulus (docs/vdf.md).
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"
local ffi = require "ffi"

local BUILD = os.getenv("WORKPROOF_BUILD") or "build"
local EXE = BUILD .. "/workproof"
local vdf = wp.vdf

local hex, unhex = h.plain_hex, h.plain_unhex

-- big-endian byte string -> decimal string (repeated division by 10^7)
local function to_decimal(s)
  local b = { s:byte(1, -1) }
  local parts = {}
  while #b > 0 do
    local rem, q = 0, {}
    for i = 1, #b do
      local cur = rem * 256 + b[i]
      local d = math.floor(cur / 1e7)
      rem = cur - d * 1e7
      if #q > 0 or d > 0 then q[#q + 1] = d end
    end
    table.insert(parts, 1, rem)
    b = q
  end
  local out = { tostring(parts[1]) }
  for i = 2, #parts do out[i] = ("%07d"):format(parts[i]) end
  return table.concat(out)
end

-- add a small integer to a 256-byte big-endian number (no overflow past 256 bytes)
local function add_small(s, k)
  local b = { s:byte(1, -1) }
  local carry = k
  for i = #b, 1, -1 do
    local v = b[i] + carry
    b[i] = v % 256
    carry = math.floor(v / 256)
  end
  assert(carry == 0)
  return string.char(unpack(b))
end

-- N - v for 256-byte big-endian v <= N
local function sub_from_n(v)
  local n, a = { vdf.modulus():byte(1, -1) }, { v:byte(1, -1) }
  local borrow, out = 0, {}
  for i = 256, 1, -1 do
    local d = n[i] - a[i] - borrow
    if d < 0 then d, borrow = d + 256, 1 else borrow = 0 end
    out[i] = d
  end
  assert(borrow == 0)
  return string.char(unpack(out))
end

local function flip(s, i, mask)
  return s:sub(1, i - 1) .. string.char(bit.bxor(s:byte(i), mask or 1)) .. s:sub(i + 1)
end

local function run(cmd)
  local base = os.tmpname()
  local ok, _, code = os.execute(("%s >%s.out 2>%s.err"):format(cmd, base, base))
  if type(ok) == "number" then code = ok / 256 end -- Lua 5.1 semantics
  local o, e = h.read(base .. ".out"), h.read(base .. ".err")
  os.remove(base .. ".out")
  os.remove(base .. ".err")
  os.remove(base)
  return code, o, e
end

local VEC = cjson.decode(h.read("spec/fixtures/vdf/vectors.json")).vectors
local ONE = ("\0"):rep(255) .. "\1"

-- RSA-2048 as published by RSA Laboratories (617 digits)
local RSA2048_DEC = "25195908475657893494027183240048398571429282126204032027777137836043662020707595556264018525880784406918290641249515082189298559149176184502808489120072844992687392807287776735971418347270261896375014971824691165077613379859095700097330459748808428401797429100642458691817195118746121515172654632282216869987549182422433637259085141865462043576798423387184774447920739934236584823824281198163815010674810451660377306056201619676256133844143603833904414952634432190114657544454178424020924616515723350778707749817125772467962926386356373289912154831438167899885040445364023527381951378636564391212010397122822120720357" -- luacheck: ignore 631

describe("vdf modulus", function()
  it("is the RSA-2048 challenge number", function()
    local n = vdf.modulus()
    assert.equal(256, #n)
    assert.equal(617, #RSA2048_DEC)
    assert.equal(RSA2048_DEC, to_decimal(n))
    assert.equal("6ae9d033c1d76c4f535b5ad5c0073933a0b375b4120a75fbb66be814eab1a9ce", hex(wp.sha256(n)))
    assert.equal("c7970ceedcc3b075", hex(n:sub(1, 8)))
    assert.equal("9d48c6361cc7e5", hex(n):sub(-14))
  end)

  it("the decimal conversion used above can fail", function()
    assert.not_equal(RSA2048_DEC, to_decimal(flip(vdf.modulus(), 256, 2)))
    assert.equal("1000000000000", to_decimal(unhex("e8d4a51000")))
  end)
end)

describe("vdf pinned vectors (docs/vdf.md, spec/fixtures/vdf/vdf_ref.py)", function()
  it("has vectors for T = 0, 1, 2, 10, 1000 and more", function()
    local seen = {}
    for _, v in ipairs(VEC) do seen[v.T] = true end
    for _, t in ipairs({ 0, 1, 2, 10, 1000 }) do assert.is_true(seen[t], "T=" .. t) end
  end)

  for _, v in ipairs(VEC) do
    local name = ("seed=%q T=%d"):format(v.seed, v.T)
    it("h2g, eval, h2p, verify: " .. name, function()
      local seed = unhex(v.seed)
      assert.equal(v.x, hex(vdf.h2g(seed)))
      local y, proof, l = vdf.eval(seed, v.T)
      assert.equal(v.y, hex(y))
      assert.equal(v.proof, hex(proof))
      assert.equal(v.l, hex(l))
      assert.equal(v.l, hex(vdf.h2p(unhex(v.x), y, v.T)))
      assert.is_true(vdf.verify(seed, v.T, y, proof))
      local y2, proof2 = vdf.eval(seed, v.T, { prover = "longdiv" })
      assert.equal(v.y, hex(y2))
      assert.equal(v.proof, hex(proof2))
    end)
  end

  it("T = 0 is the degenerate case y = x, proof = 1", function()
    local x = vdf.h2g("")
    local y, proof = vdf.eval("", 0)
    assert.equal(x, y)
    assert.equal(ONE, proof)
    assert.is_true(vdf.verify("", 0, y, proof))
    assert.is_false(vdf.verify("", 0, y, x))
  end)

  it("proof = 1 while 2^T < l (T <= 127) and proof = x at T = 128", function()
    for _, t in ipairs({ 1, 50, 127 }) do
      local _, proof = vdf.eval("w", t)
      assert.equal(ONE, proof)
    end
    for _, v in ipairs(VEC) do
      if v.T == 128 then assert.equal(v.x, v.proof) end
    end
  end)
end)

describe("vdf squaring chain", function()
  -- brainhub/modsqr test/sqr_test.c: m^(2^T) mod RSA-2048 (OpenSSL)
  local m = unhex(("00"):rep(224) .. "5bc382da0c21ce5dbac814bd382ac3bee474e467500800e32cbd7f783adf0940")
  local published = {
    [1] = "20e494579fb0b2420552a4b3140d5c1157f1d55c9506d9dfe161228dcf7d8e4b0c49a3ba23e0c58ff81163f977b09e5286244487c6c682e2324ffe821dd59000", -- luacheck: ignore 631
    [2] = "0439f12e79f60df042c09accea1dea5dfd5031a690b773d31e49b8bce0109673a2d1216b9ceae9c909ca5e5903f51a410fc2d43385cae66b489950da94902063360f79e51b200729da14f9bc227785d450488f0b38edeeedb3b046bbcddaafab052b08ebc8e917a28c672054b49bd84a80c73d8e384e8b64fa2054c8f1000000", -- luacheck: ignore 631
    [40] = "9d0073ae84cd3517d3db2f2b0000a82737248b576d8df421549d19320e7823a2c706dd9bdf21c4bf940aa870fd10465b3ea1f6131d629a4a849af14ee2afce19d905379963f93d39b19768ad23445a9a6d23111fad6335c1db3f5601f2151894e3034cac5f7c6f335f7a8a425805a27a152196f4437bc5424139a0fbd22201531e32adb71db66f5b9125e127cae4d9790a2174e81f1a019f6bf21fd9430a308f6bdd0241604f2bed98a37e4a169e15b376e3eb3f0e48cefaaad1fa17d63abdcdc173b72047a65652fe35ec421200ad72fcb13f492976cf93052ed741a14a2c343974e4dd1fb600329417fbd70e49139c562dfea58af68fdd1ab399639404d1ec", -- luacheck: ignore 631
  }
  local function pad(s) return ("0"):rep(512 - #s) .. s end

  it("matches published vectors (brainhub/modsqr) for T = 1, 2, 40", function()
    for t, want in pairs(published) do
      assert.equal(pad(want), hex(vdf._squarings(m, t)), "T=" .. t)
      assert.equal(pad(want), hex(vdf._eval_reference(m, t)), "reference T=" .. t)
    end
  end)

  it("matches the published vector for T = 2^20 #slow", function()
    local want = "4ed421fa52dd1b828839b74b07f8ce6de0a16f752c893cf49dc55c23fd9ff3da5538df0979f42bc5b9a2dbb14c25b2da5a57ef814995ffba82441aac9633d537bddabd5f6229aff0cf92059aa3d22837e9daa06182968cc329f5926d53ac701d75add55494ced38da658faa7737aa19e49188b7a2621174e8897665dbe0d79c6f45b917112b5ff47b75aa45b4a8b1c0372185190e229e549fc58adfb1a452bf146bcbef3970737abd2e6a928baeb6c1b45f5f0a4188dc81e8d61f5f6413f3f5d3f03337eb8cf850e6388fd3a61fd33a831d552f6cecde6ef16f184dd91a0c717cfd81aa604277e799e46b09d0e55224503d7c9711596c88e7af73500afa30cf1" -- luacheck: ignore 631
    assert.equal(want, hex(vdf._squarings(m, 2 ^ 20)))
  end)

  it("agrees with the naive mpz reference for random x and T", function()
    local r = h.rng(20240611)
    for _ = 1, 12 do
      local x = vdf.h2g(tostring(r()))
      if r(2) == 1 then x = sub_from_n(x) end -- also the upper half of [0, N)
      local t = r(3000) - 1
      assert.equal(hex(vdf._eval_reference(x, t)), hex(vdf._squarings(x, t)), "T=" .. t)
    end
    -- edge values: 0, 1, N-1, and numbers with every limb saturated below N
    local n = vdf.modulus()
    for _, x in ipairs({ ("\0"):rep(256), ONE, sub_from_n(ONE), ("\0") .. ("\255"):rep(255),
                         "\199" .. ("\0"):rep(255) }) do
      for _, t in ipairs({ 0, 1, 5, 33 }) do
        assert.equal(hex(vdf._eval_reference(x, t)), hex(vdf._squarings(x, t)))
      end
    end
    assert.equal(hex(sub_from_n(ONE)), hex(vdf._squarings(sub_from_n(ONE), 0)))
    assert.equal(hex(ONE), hex(vdf._squarings(sub_from_n(ONE), 1)))
    assert.equal(hex(("\0"):rep(256)), hex(vdf._squarings(("\0"):rep(256), 7)))
    assert.is_true(#n == 256)
  end)

  describe("every implementation (WORKPROOF_VDF_PATH)", function()
    pcall(ffi.cdef, [[
      int setenv(const char *name, const char *value, int overwrite);
      int unsetenv(const char *name);
    ]])   -- once per Lua state: busted may run several spec files in one
    local cpu = h.read("/proc/cpuinfo") or ""
    local has = function(flag) return cpu:find("%f[%w_]" .. flag .. "%f[^%w_]") ~= nil end
    local best = (has("avx512ifma") and has("avx512f") and "ifma") or
                 ((has("adx") and has("bmi2")) and "adx") or "portable"
    local rank = { portable = 1, adx = 2, ifma = 3 }
    after_each(function() ffi.C.unsetenv("WORKPROOF_VDF_PATH") end)

    it("the default is the fastest this CPU has", function()
      assert.equal(best, vdf.path())
    end)

    for _, path in ipairs({ "portable", "adx", "ifma" }) do
      it(path .. " agrees with the mpz reference (random x, T across the IFMA chain's threshold, edges)", function()
        ffi.C.setenv("WORKPROOF_VDF_PATH", path, 1)
        -- a path the CPU lacks falls back to the fastest it has
        assert.equal(rank[path] <= rank[best] and path or best, vdf.path())
        local r = h.rng(7 + rank[path])
        for i = 1, 40 do
          local x = vdf.h2g(path .. i)
          if r(2) == 1 then x = sub_from_n(x) end
          local t = ({ 63, 64, 65, 200 })[i] or r(400) - 1
          assert.equal(hex(vdf._eval_reference(x, t)), hex(vdf._squarings(x, t)), path .. " T=" .. t)
        end
        for _, x in ipairs({ ("\0"):rep(256), ONE, sub_from_n(ONE), ("\0") .. ("\255"):rep(255),
                             "\199" .. ("\0"):rep(255), sub_from_n(add_small(ONE, 1)) }) do
          for _, t in ipairs({ 64, 100 }) do
            assert.equal(hex(vdf._eval_reference(x, t)), hex(vdf._squarings(x, t)), path .. " T=" .. t)
          end
        end
        -- and the whole eval against the pinned vectors, also under a tiny memory budget (the
        -- chain then runs in many pieces between checkpoints)
        for _, v in ipairs(VEC) do
          for _, o in ipairs({ {}, { memory = 4096 } }) do
            local y, proof = vdf.eval(unhex(v.seed), v.T, o)
            assert.equal(v.y, hex(y), path .. " T=" .. v.T)
            assert.equal(v.proof, hex(proof), path .. " T=" .. v.T)
          end
        end
      end)
    end
  end)

  it("rejects x >= N with ERANGE and wrong lengths by raising", function()
    local n = vdf.modulus()
    for _, x in ipairs({ n, add_small(n, 1), ("\255"):rep(256) }) do
      local y, err = vdf._squarings(x, 3)
      assert.is_nil(y)
      assert.matches("^ERANGE: ", err)
      y, err = vdf._eval_reference(x, 3)
      assert.is_nil(y)
      assert.matches("^ERANGE: ", err)
    end
    assert.has_error(function() vdf._squarings(("\1"):rep(255), 3) end)
    assert.has_error(function() vdf._eval_reference(("\1"):rep(257), 3) end)
  end)
end)

describe("vdf eval / verify", function()
  it("round-trips for several T with both provers and agrees between them", function()
    for _, t in ipairs({ 0, 1, 3, 7, 63, 126, 127, 128, 129, 255, 256, 1000, 4097 }) do
      local seed = "round-trip-" .. t
      local y, proof, l = vdf.eval(seed, t)
      assert.equal(256, #y)
      assert.equal(256, #proof)
      assert.equal(16, #l)
      assert.is_true(vdf.verify(seed, t, y, proof), "T=" .. t)
      local y2, proof2, l2 = vdf.eval(seed, t, { prover = "longdiv" })
      assert.equal(hex(y), hex(y2))
      assert.equal(hex(proof), hex(proof2), "T=" .. t)
      assert.equal(hex(l), hex(l2))
      -- y is the raw chain result or its negation, whichever is smaller
      local raw = vdf._squarings(vdf.h2g(seed), t)
      assert.is_true(raw == y or sub_from_n(raw) == y)
    end
  end)

  it("the checkpoint prover gives the same proof under a tiny memory budget (many passes)", function()
    local v = VEC[#VEC]
    for _, mem in ipairs({ 4096, 20000, 1e6 }) do
      local y, proof = vdf.eval(unhex(v.seed), v.T, { memory = mem })
      assert.equal(v.y, hex(y))
      assert.equal(v.proof, hex(proof), "memory=" .. mem)
    end
  end)

  it("outputs are canonical: y, proof <= (N-1)/2", function()
    local half = hex(vdf.modulus()):sub(1, 2) -- 0xc7 -> (N-1)/2 starts 0x63
    assert.equal("c7", half)
    for i = 1, 8 do
      local y, proof = vdf.eval("canon" .. i, 300)
      assert.is_true(y:byte(1) <= 0x63 and proof:byte(1) <= 0x63)
      assert.is_true(vdf.h2g("canon" .. i):byte(1) <= 0x63)
    end
  end)

  describe("rejects", function()
    local seed, T = "tamper", 1500
    local y, proof = vdf.eval(seed, T)

    it("the genuine proof is accepted", function()
      assert.is_true(vdf.verify(seed, T, y, proof))
    end)

    it("a tampered y or proof", function()
      for _, i in ipairs({ 1, 2, 100, 255, 256 }) do
        assert.is_false(vdf.verify(seed, T, flip(y, i), proof), "y byte " .. i)
        assert.is_false(vdf.verify(seed, T, y, flip(proof, i)), "proof byte " .. i)
      end
      assert.is_false(vdf.verify(seed, T, proof, y))
      assert.is_false(vdf.verify(seed, T, y, y))
    end)

    it("another T or another seed", function()
      for _, t in ipairs({ 0, T - 1, T + 1, 2 * T }) do
        assert.is_false(vdf.verify(seed, t, y, proof), "T=" .. t)
      end
      assert.is_false(vdf.verify("tamper ", T, y, proof))
      assert.is_false(vdf.verify("", T, y, proof))
      assert.is_false(vdf.verify(seed .. "\0", T, y, proof))
    end)

    it("the negated (non-canonical) y and proof, which satisfy the equation mod ±1", function()
      assert.is_false(vdf.verify(seed, T, sub_from_n(y), proof))
      assert.is_false(vdf.verify(seed, T, y, sub_from_n(proof)))
      assert.is_false(vdf.verify(seed, T, sub_from_n(y), sub_from_n(proof)))
    end)

    it("y or proof out of range: 0, N, N+1, all-0xff, (N+1)/2", function()
      local n = vdf.modulus()
      local bad = { ("\0"):rep(256), n, add_small(n, 1), ("\255"):rep(256) }
      -- (N+1)/2 is the smallest non-canonical value: N - (N+1)/2 = (N-1)/2
      local half_up = {}
      do
        local b, carry = { n:byte(1, -1) }, 0
        for i = 1, 256 do
          local v = carry * 256 + b[i]
          half_up[i] = math.floor(v / 2)
          carry = v % 2
        end
        bad[#bad + 1] = add_small(string.char(unpack(half_up)), 1)
      end
      for k, v in ipairs(bad) do
        assert.is_false(vdf.verify(seed, T, v, proof), "y #" .. k)
        assert.is_false(vdf.verify(seed, T, y, v), "proof #" .. k)
      end
    end)

    it("wrong lengths (untrusted input: false, not an error)", function()
      assert.is_false(vdf.verify(seed, T, y:sub(2), proof))
      assert.is_false(vdf.verify(seed, T, y .. "\0", proof))
      assert.is_false(vdf.verify(seed, T, "\0" .. y, proof))
      assert.is_false(vdf.verify(seed, T, y, proof:sub(1, 255)))
      assert.is_false(vdf.verify(seed, T, y, ""))
      assert.is_false(vdf.verify(seed, T, "", ""))
    end)

    it("wrong types and T out of range by raising", function()
      assert.has_error(function() vdf.verify(nil, T, y, proof) end)
      assert.has_error(function() vdf.verify({}, T, y, proof) end)
      assert.has_error(function() vdf.verify(seed, "many", y, proof) end)
      assert.has_error(function() vdf.verify(seed, T, nil, proof) end)
      assert.has_error(function() vdf.verify(seed, T, y, {}) end)
      for _, t in ipairs({ -1, 1.5, 2 ^ 53 + 2, math.huge, -math.huge, 0 / 0 }) do
        assert.has_error(function() vdf.verify(seed, t, y, proof) end, nil, "T=" .. tostring(t))
        assert.has_error(function() vdf.eval(seed, t) end)
        assert.has_error(function() vdf.h2p(y, y, t) end)
      end
      assert.has_error(function() vdf.eval(seed) end)
      assert.has_error(function() vdf.eval(seed, 10, "fast") end)
      assert.has_error(function() vdf.eval(seed, 10, { prover = "magic" }) end)
      assert.has_error(function() vdf.eval(seed, 10, { memory = 100 }) end)
      assert.has_error(function() vdf.h2g() end)
      assert.has_error(function() vdf.h2p(y, y:sub(2), 1) end)
      assert.has_error(function() vdf.h2p(y:sub(2), y, 1) end)
    end)

    it("T at the top of the range is accepted as an argument", function()
      assert.equal(2 ^ 53, vdf.T_MAX)
      assert.is_false(vdf.verify(seed, 2 ^ 53, y, proof))
      assert.equal(16, #vdf.h2p(y, y, 2 ^ 53))
    end)
  end)
end)

describe("vdf hashes", function()
  it("h2g is deterministic, domain-separated and canonical", function()
    assert.equal(vdf.h2g("a"), vdf.h2g("a"))
    assert.not_equal(vdf.h2g("a"), vdf.h2g("b"))
    assert.not_equal(vdf.h2g(""), vdf.h2g("\0"))
    local big = ("z"):rep(1e5)
    assert.equal(256, #vdf.h2g(big))
  end)

  it("h2p has 128 bits, top and low bit set, and binds x, y and T", function()
    local x, y = vdf.h2g("p1"), vdf.h2g("p2")
    local l = vdf.h2p(x, y, 5)
    assert.equal(16, #l)
    assert.is_true(l:byte(1) >= 0x80)
    assert.equal(1, l:byte(16) % 2)
    assert.not_equal(l, vdf.h2p(y, x, 5))
    assert.not_equal(l, vdf.h2p(x, y, 6))
    assert.not_equal(l, vdf.h2p(x, flip(y, 200), 5))
  end)
end)

describe("workproof vdf (command line)", function()
  local v = VEC[5] -- seed 00, T = 1000
  assert(v.seed == "00" and v.T == 1000)

  it("eval --json prints the documented fields", function()
    local code, out = run(EXE .. " vdf eval 00 1000 --json")
    assert.equal(0, code)
    local r = cjson.decode(out)
    assert.equal(hex(vdf.modulus()), r.modulus)
    assert.equal(v.x, r.x)
    assert.equal(v.y, r.y)
    assert.equal(v.proof, r.proof)
    assert.equal(v.l, r.l)
    assert.equal(1000, r.iterations)
    assert.is_number(r.seconds)
  end)

  it("the portable (non-ADX) path gives the same answer", function()
    local code, out = run("WORKPROOF_VDF_PORTABLE=1 " .. EXE .. " vdf eval 0x00 1000 --json")
    assert.equal(0, code)
    local r = cjson.decode(out)
    assert.equal(v.y, r.y)
    assert.equal(v.proof, r.proof)
  end)

  it("plain eval output feeds verify: valid 0, tampered 1, garbage 2", function()
    local code, out = run(EXE .. " vdf eval 00 1000")
    assert.equal(0, code)
    local y, proof = out:match("^(%x+)\n(%x+)\n$")
    assert.equal(v.y, y)
    assert.equal(v.proof, proof)
    local verify = EXE .. " vdf verify "
    assert.equal(0, (run(verify .. "00 1000 " .. y .. " 0x" .. proof)))
    assert.equal(1, (run(verify .. "00 1001 " .. y .. " " .. proof)))
    assert.equal(1, (run(verify .. "01 1000 " .. y .. " " .. proof)))
    assert.equal(1, (run(verify .. "00 1000 " .. proof .. " " .. y)))
    local bad_y = y:sub(1, 100) .. (y:sub(101, 101) == "0" and "1" or "0") .. y:sub(102)
    assert.equal(1, (run(verify .. "00 1000 " .. bad_y .. " " .. proof)))
    assert.equal(1, (run(verify .. "00 1000 " .. ("f"):rep(512) .. " " .. proof)))
    -- unusable input
    local c, _, err = run(verify .. "00 1000 zz " .. proof)
    assert.equal(2, c)
    assert.matches("Y_HEX", err)
    c, _, err = run(verify .. "00 1000 " .. y:sub(3) .. " " .. proof)
    assert.equal(2, c)
    assert.matches("256 bytes", err)
    assert.equal(2, (run(verify .. "0 1000 " .. y .. " " .. proof)))
    assert.equal(2, (run(verify .. "00 -5 " .. y .. " " .. proof)))
    assert.equal(2, (run(verify .. "00 1e3 " .. y .. " " .. proof)))
    assert.equal(2, (run(verify .. "00 9007199254740993 " .. y .. " " .. proof)))
    assert.equal(2, (run(verify .. "00 1000 " .. y)))
  end)

  it("eval rejects unusable input with exit 2", function()
    assert.equal(2, (run(EXE .. " vdf eval xyz 10")))
    assert.equal(2, (run(EXE .. " vdf eval 00 ten")))
    assert.equal(2, (run(EXE .. " vdf eval 00")))
    assert.equal(2, (run(EXE .. " vdf eval 00 10 --frobnicate")))
    assert.equal(2, (run(EXE .. " vdf bogus")))
    assert.equal(2, (run(EXE .. " vdf")))
  end)

  it("--help documents both subcommands", function()
    local code, out = run(EXE .. " vdf --help")
    assert.equal(0, code)
    assert.matches("vdf eval SEED_HEX ITERATIONS", out, 1, true)
    assert.matches("vdf verify SEED_HEX ITERATIONS Y_HEX PROOF_HEX", out, 1, true)
  end)

  it("--progress draws on stderr without touching stdout", function()
    local code, out, err = run(EXE .. " vdf eval '' 70000 --progress")
    assert.equal(0, code)
    assert.matches("^%x+\n%x+\n$", out)
    assert.matches("eval", err)
    assert.matches("100.0%", err, 1, true)
  end)

  it("--progress clears what a longer line left when a shorter one overwrites it", function()
    local code, _, err = run(EXE .. " vdf eval '' 70000 --progress")
    assert.equal(0, code)
    -- replay the carriage returns as a terminal does: each redraw writes
    -- from column 0 over what is there
    local screen, last, redraws = {}, "", 0
    for seg in err:match("^(.-)\n"):gmatch("\r([^\r]*)") do
      for i = 1, #seg do screen[i] = seg:sub(i, i) end
      last, redraws = seg, redraws + 1
    end
    assert.is_true(redraws >= 2, err)
    assert.matches("^  prove %d+/%d+ steps", last)   -- the shorter line, drawn after the eval line
    local shown = table.concat(screen):gsub(" +$", "")
    assert.equal((last:gsub(" +$", "")), shown)   -- nothing of the eval line shows through
  end)
end)
