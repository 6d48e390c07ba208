-- SPDX-License-Identifier: MIT
--- wp.ed25519: RFC 8032 §7.1 vectors, tampering, malformed input, key pairs.
local wp = require "workproof"
local h = require "helpers"
local bit = require "bit"

local hex, unhex = h.plain_hex, h.plain_unhex

-- XOR one byte of s (1-based position) with mask.
local function flip(s, pos, mask)
  local b = bit.bxor(s:byte(pos), mask or 1)
  return s:sub(1, pos - 1) .. string.char(b) .. s:sub(pos + 1)
end

--- spec/fixtures/ed25519/rfc8032.txt: blocks of `key: hex` lines.
local function load_vectors()
  local vectors, cur = {}, nil
  for line in h.read("spec/fixtures/ed25519/rfc8032.txt"):gmatch("[^\n]*") do
    local k, v = line:match("^(%w+):%s*(.-)%s*$")
    if k == "name" then
      cur = { name = v }
      vectors[#vectors + 1] = cur
    elseif k and cur then
      cur[k] = unhex(v)
    end
  end
  return vectors
end

-- The group order L, little-endian, for building a non-canonical S.
local L = unhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")

-- S + L (little-endian, 32 bytes): the same scalar, non-canonical encoding.
local function add_L(s)
  local out, carry = {}, 0
  for i = 1, 32 do
    local v = s:byte(i) + L:byte(i) + carry
    out[i] = string.char(v % 256)
    carry = math.floor(v / 256)
  end
  return table.concat(out)
end

describe("wp.ed25519", function()
  local vectors = load_vectors()

  it("loads the five RFC 8032 §7.1 vectors", function()
    assert.are.equal(5, #vectors)
    local names = {}
    for _, v in ipairs(vectors) do names[#names + 1] = v.name end
    assert.are.same({ "TEST 1", "TEST 2", "TEST 3", "TEST 1024", "TEST SHA(abc)" }, names)
    assert.are.equal(1023, #vectors[4].message)
    assert.are.equal(64, #vectors[5].message) -- SHA-512("abc")
  end)

  describe("RFC 8032 §7.1", function()
    for _, v in ipairs(load_vectors()) do
      it(v.name .. ": public key from the seed", function()
        local pub, secret = wp.ed25519.keypair(v.secret)
        assert.are.equal(hex(v.public), hex(pub))
        assert.are.equal(hex(v.secret .. v.public), hex(secret))
      end)

      it(v.name .. ": signature is byte-exact", function()
        local _, secret = wp.ed25519.keypair(v.secret)
        assert.are.equal(hex(v.signature), hex(wp.ed25519.sign(secret, v.message)))
      end)

      it(v.name .. ": verifies, and tampering anywhere fails", function()
        local pub, msg, sig = v.public, v.message, v.signature
        assert.is_true(wp.ed25519.verify(pub, msg, sig))
        -- message: flip a bit, append a byte, drop a byte
        if #msg > 0 then
          assert.is_false(wp.ed25519.verify(pub, flip(msg, 1), sig))
          assert.is_false(wp.ed25519.verify(pub, flip(msg, #msg, 0x80), sig))
          assert.is_false(wp.ed25519.verify(pub, msg:sub(1, -2), sig))
        end
        assert.is_false(wp.ed25519.verify(pub, msg .. "\0", sig))
        -- signature: R half, S half, the top byte of S
        assert.is_false(wp.ed25519.verify(pub, msg, flip(sig, 1)))
        assert.is_false(wp.ed25519.verify(pub, msg, flip(sig, 33)))
        assert.is_false(wp.ed25519.verify(pub, msg, flip(sig, 64, 0x10)))
        -- public key
        assert.is_false(wp.ed25519.verify(flip(pub, 1), msg, sig))
        assert.is_false(wp.ed25519.verify(flip(pub, 32, 0x40), msg, sig))
      end)
    end

    it("another vector's key does not verify", function()
      local a, b = vectors[2], vectors[3]
      assert.is_false(wp.ed25519.verify(b.public, a.message, a.signature))
    end)
  end)

  describe("malformed input to verify", function()
    local v = load_vectors()[2]

    it("a key or signature of the wrong length is false, not an error", function()
      for _, n in ipairs({ 0, 31, 33, 64 }) do
        local pub = (v.public .. v.public):sub(1, n)
        assert.is_false(wp.ed25519.verify(pub, v.message, v.signature))
      end
      for _, n in ipairs({ 0, 32, 63, 65, 128 }) do
        local sig = (v.signature .. v.signature):sub(1, n)
        assert.is_false(wp.ed25519.verify(v.public, v.message, sig))
      end
    end)

    it("rejects a non-canonical S (S + L): no malleability", function()
      local sig = v.signature
      local forged = sig:sub(1, 32) .. add_L(sig:sub(33))
      assert.are_not.equal(sig, forged)
      assert.is_false(wp.ed25519.verify(v.public, v.message, forged))
    end)

    it("rejects small-order keys and all-zero signatures", function()
      local identity = "\1" .. ("\0"):rep(31)
      assert.is_false(wp.ed25519.verify(identity, v.message, v.signature))
      assert.is_false(wp.ed25519.verify(("\0"):rep(32), v.message, v.signature))
      assert.is_false(wp.ed25519.verify(v.public, v.message, ("\0"):rep(64)))
      -- R = identity, S = 0 "verifies" any message under a naive check
      assert.is_false(wp.ed25519.verify(identity, v.message, identity .. ("\0"):rep(32)))
    end)

    it("raises on non-string arguments", function()
      assert.has_error(function() wp.ed25519.verify(nil, v.message, v.signature) end)
      assert.has_error(function() wp.ed25519.verify(v.public, {}, v.signature) end)
      assert.has_error(function() wp.ed25519.verify(v.public, v.message, true) end)
      assert.has_error(function() wp.ed25519.verify(v.public, v.message) end)
    end)
  end)

  describe("keypair and sign", function()
    it("makes random key pairs whose secret is seed||pub", function()
      local pub1, sec1 = wp.ed25519.keypair()
      local pub2, sec2 = wp.ed25519.keypair(nil)
      assert.are.equal(32, #pub1)
      assert.are.equal(64, #sec1)
      assert.are.equal(pub1, sec1:sub(33))
      assert.are_not.equal(pub1, pub2)
      assert.are_not.equal(sec1, sec2)
      -- the seed half alone rebuilds the same pair
      local pub3, sec3 = wp.ed25519.keypair(sec1:sub(1, 32))
      assert.are.equal(pub1, pub3)
      assert.are.equal(sec1, sec3)
    end)

    it("signs deterministically and round-trips over many keys and sizes", function()
      local rng = h.rng(8032)
      for i = 1, 64 do
        local seed = wp.sha256("ed25519 seed " .. i)
        local pub, secret = wp.ed25519.keypair(seed)
        local n = rng(300) - 1
        local msg = {}
        for j = 1, n do msg[j] = string.char(rng(256) - 1) end
        msg = table.concat(msg)
        local sig = wp.ed25519.sign(secret, msg)
        assert.are.equal(64, #sig)
        assert.are.equal(sig, wp.ed25519.sign(secret, msg))
        assert.is_true(wp.ed25519.verify(pub, msg, sig))
        assert.is_false(wp.ed25519.verify(pub, msg .. "x", sig))
        assert.is_false(wp.ed25519.verify(pub, msg, flip(sig, rng(64), bit.lshift(1, rng(8) - 1))))
      end
    end)

    it("raises on a wrong-length seed or secret key and on a non-string message", function()
      assert.has_error(function() wp.ed25519.keypair(("s"):rep(31)) end)
      assert.has_error(function() wp.ed25519.keypair(("s"):rep(33)) end)
      assert.has_error(function() wp.ed25519.keypair({}) end)
      local _, secret = wp.ed25519.keypair(("s"):rep(32))
      assert.has_error(function() wp.ed25519.sign(secret:sub(1, 32), "m") end)
      assert.has_error(function() wp.ed25519.sign(secret .. "x", "m") end)
      assert.has_error(function() wp.ed25519.sign(nil, "m") end)
      assert.has_error(function() wp.ed25519.sign(secret, nil) end)
      assert.has_error(function() wp.ed25519.sign(secret, {}) end)
    end)
  end)
end)
