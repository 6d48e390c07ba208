-- SPDX-License-Identifier: MIT
--- wp.secp256k1: RFC 6979 vectors, Ethereum signatures, recovery, range edges.
local wp = require "workproof"
local h = require "helpers"

local hex, unhex = h.plain_hex, h.plain_unhex

local N = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
local HALF_N = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"
local HALF_N_PLUS_1 = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1"
local GX = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
local GY = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
local NEG_GY = "b7c52588d95c3b9aa25b0403f1eef75702e84bb7597aabe663b82f6f04ef2777"

local function key(n) return unhex(("%064x"):format(n)) end

local sub256 = h.sub256

-- RFC 6979 deterministic ECDSA over secp256k1 with SHA-256 of the message:
-- the vectors of trezor-crypto and CoreBitcoin as btcsuite/btcec publishes
-- them, with s already lowered to n - s where it was high (Satoshi Nakamoto
-- with key 1 is such a case). Cross-checked against OpenSSL 3's
-- deterministic ECDSA.
local RFC6979 = {
  { "cca9fbcc1b41e5a95d369eaa6ddcff73b61a4efaa279cfc6567e8daa39cbaf50", "sample",
    "af340daf02cc15c8d5d08d7735dfe6b98a474ed373bdb5fbecf7571be52b3842",
    "5009fb27f37034a9b24b707b7c6b79ca23ddef9e25f7282e8a797efe53a8f124" },
  { "0000000000000000000000000000000000000000000000000000000000000001", "Satoshi Nakamoto",
    "934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d8",
    "2442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5" },
  { "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "Satoshi Nakamoto",
    "fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d0",
    "6b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5" },
  { "f8b8af8ce3c7cca5e300d33939540c10d45ce001b8f252bfbc57ba0342904181", "Alan Turing",
    "7063ae83e7f62bbb171798131b4a0564b956930092b33b07b395615d9ec7e15c",
    "58dfcc1e00a35e1572f366ffe34ba0fc47db1e7189759b9fb233c5b05ab388ea" },
  { "0000000000000000000000000000000000000000000000000000000000000001",
    "All those moments will be lost in time, like tears in rain. Time to die...",
    "8600dbd41e348fe5c9465ab92d23e3db8b98b873beecd930736488696438cb6b",
    "547fe64427496db33bf66019dacbf0039c04199abb0122918601db38a72cfc21" },
  { "e91671c46231f833a6406ccbea0e3e392c76c167bac1cb013f6f1013980455c2",
    "There is a computer disease that anybody who works with computers knows about. It's a very serious " ..
    "disease and it interferes completely with the work. The trouble with computers is that you 'play' with them!",
    "b552edd27580141f3b2a5463048cb7cd3e047b97c9f98076c32dbdf85a68718b",
    "279fa72dd19bfae05577e06c7c0c1900c371fcd5893f7e1d56a37d30174671f6" },
}

describe("wp.secp256k1", function()
  describe("pubkey", function()
    it("key 1 is the generator G", function()
      assert.are.equal("04" .. GX .. GY, hex(wp.secp256k1.pubkey(key(1))))
    end)

    it("key n-1 is -G (the top of the range is valid)", function()
      local pub = assert(wp.secp256k1.pubkey(sub256(unhex(N), key(1))))
      assert.are.equal("04" .. GX .. NEG_GY, hex(pub))
    end)

    it("0, n, n+1 and 2^256-1 are not keys: nil, EINVAL", function()
      local n1 = unhex(N):sub(1, 31) .. "\x42"
      for _, k in ipairs({ key(0), unhex(N), n1, ("\255"):rep(32) }) do
        local pub, err = wp.secp256k1.pubkey(k)
        assert.is_nil(pub)
        assert.matches("^EINVAL: ", err)
      end
    end)

    it("raises on a wrong-length or non-string secret", function()
      assert.has_error(function() wp.secp256k1.pubkey(("\1"):rep(31)) end)
      assert.has_error(function() wp.secp256k1.pubkey(("\1"):rep(33)) end)
      assert.has_error(function() wp.secp256k1.pubkey(nil) end)
      assert.has_error(function() wp.secp256k1.pubkey({}) end)
    end)
  end)

  describe("sign (RFC 6979, low s)", function()
    for i, v in ipairs(RFC6979) do
      it(("vector %d: %q"):format(i, v[2]:sub(1, 24)), function()
        local sk, hash = unhex(v[1]), wp.sha256(v[2])
        local sig = wp.secp256k1.sign(sk, hash)
        assert.are.equal(65, #sig)
        assert.are.equal(v[3], hex(sig:sub(1, 32)))
        assert.are.equal(v[4], hex(sig:sub(33, 64)))
        assert.is_true(sig:byte(65) == 0 or sig:byte(65) == 1)
        assert.are.equal(hex(wp.secp256k1.pubkey(sk)), hex(wp.secp256k1.recover(hash, sig)))
      end)
    end

    it("EIP-155's example transaction signature (key 0x46..46)", function()
      -- signing hash, r and s (v = 37 on chain 1, so recovery id 0) from EIP-155
      local sk = unhex(("46"):rep(32))
      local hash = unhex("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
      local sig = wp.secp256k1.sign(sk, hash)
      assert.are.equal("28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276" ..
                       "67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83" .. "00", hex(sig))
    end)

    it("web3.js's personal_sign example ('Some data', v = 28)", function()
      local sk = unhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
      local msg = "Some data"
      local hash = wp.keccak256("\x19Ethereum Signed Message:\n" .. #msg .. msg)
      assert.are.equal("1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655", hex(hash))
      local expected = "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd" ..
                       "6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a029"
      local sig = wp.secp256k1.sign(sk, hash)
      assert.are.equal(expected .. "01", hex(sig))
      -- the wallet's 27/28 form recovers the same key
      local pub = wp.secp256k1.recover(hash, unhex(expected .. "1c"))
      assert.are.equal(hex(wp.secp256k1.pubkey(sk)), hex(pub))
      assert.are.equal("0x2c7536E3605D9C16a7a3D7b1898e529396a65c23", wp.eth.address(pub))
    end)

    it("refuses invalid secret keys with nil, EINVAL", function()
      local hash = wp.sha256("x")
      for _, k in ipairs({ key(0), unhex(N) }) do
        local sig, err = wp.secp256k1.sign(k, hash)
        assert.is_nil(sig)
        assert.matches("^EINVAL: ", err)
      end
      assert.is_string(wp.secp256k1.sign(sub256(unhex(N), key(1)), hash))
    end)

    it("raises on a wrong-length secret or hash", function()
      local sk = key(7)
      assert.has_error(function() wp.secp256k1.sign(sk, ("h"):rep(31)) end)
      assert.has_error(function() wp.secp256k1.sign(sk, ("h"):rep(33)) end)
      assert.has_error(function() wp.secp256k1.sign(sk:sub(2), ("h"):rep(32)) end)
      assert.has_error(function() wp.secp256k1.sign(sk, nil) end)
    end)
  end)

  describe("sign -> recover round trips", function()
    it("recovers the signer over 200 keys, with low s and v in {0, 1}", function()
      local seen_v = {}
      for i = 1, 200 do
        local sk = wp.sha256("secp key " .. i)
        local hash = wp.sha256("message " .. i)
        local pub = assert(wp.secp256k1.pubkey(sk))
        local sig = assert(wp.secp256k1.sign(sk, hash))
        assert.are.equal(sig, wp.secp256k1.sign(sk, hash)) -- deterministic
        local v = sig:byte(65)
        seen_v[v] = true
        assert.is_true(v == 0 or v == 1)
        assert.is_true(sig:sub(33, 64) <= unhex(HALF_N))
        assert.are.equal(pub, wp.secp256k1.recover(hash, sig))
        assert.are.equal(pub, wp.secp256k1.recover(hash, sig, true))
        assert.are.equal(pub, wp.secp256k1.recover(hash, sig, false))
        -- legacy v = 27/28
        assert.are.equal(pub, wp.secp256k1.recover(hash, sig:sub(1, 64) .. string.char(v + 27)))
        -- another hash or the other v gives another key (or none)
        assert.are_not.equal(pub, wp.secp256k1.recover(wp.sha256("other " .. i), sig))
        assert.are_not.equal(pub, wp.secp256k1.recover(hash, sig:sub(1, 64) .. string.char(1 - v)))
      end
      assert.is_true(seen_v[0] and seen_v[1])
    end)

    it("high s: strict (default) refuses with EPROTO, non-strict recovers the same key", function()
      local sk, hash = wp.sha256("malleable"), wp.sha256("tx")
      local pub = wp.secp256k1.pubkey(sk)
      local sig = wp.secp256k1.sign(sk, hash)
      local r, s, v = sig:sub(1, 32), sig:sub(33, 64), sig:byte(65)
      local twin = r .. sub256(unhex(N), s) .. string.char(1 - v)
      local got, err = wp.secp256k1.recover(hash, twin)
      assert.is_nil(got)
      assert.matches("^EPROTO: ", err)
      got, err = wp.secp256k1.recover(hash, twin, true)
      assert.is_nil(got)
      assert.matches("^EPROTO: ", err)
      assert.are.equal(pub, wp.secp256k1.recover(hash, twin, false))
    end)

    it("strict accepts s = n/2 and refuses s = n/2 + 1", function()
      local hash = wp.sha256("edge")
      local r = wp.secp256k1.sign(wp.sha256("k"), hash):sub(1, 32)
      assert.is_string(wp.secp256k1.recover(hash, r .. unhex(HALF_N) .. "\0"))
      local got, err = wp.secp256k1.recover(hash, r .. unhex(HALF_N_PLUS_1) .. "\0")
      assert.is_nil(got)
      assert.matches("^EPROTO: ", err)
      assert.is_string(wp.secp256k1.recover(hash, r .. unhex(HALF_N_PLUS_1) .. "\0", false))
    end)
  end)

  describe("malformed recovery input", function()
    local sk, hash = wp.sha256("victim"), wp.sha256("payload")
    local sig = wp.secp256k1.sign(sk, hash)
    local r, s = sig:sub(1, 32), sig:sub(33, 64)

    local function fails(code, bad, strict)
      local got, err = wp.secp256k1.recover(hash, bad, strict)
      assert.is_nil(got)
      assert.matches("^" .. code .. ": ", err)
    end

    it("v outside {0, 1, 27, 28}: EINVAL", function()
      for _, v in ipairs({ 2, 3, 26, 29, 30, 35, 37, 255 }) do
        fails("EINVAL", r .. s .. string.char(v))
        fails("EINVAL", r .. s .. string.char(v), false)
      end
    end)

    it("r or s zero or not below n: ERANGE (also when not strict)", function()
      local zero, n, top = key(0), unhex(N), ("\255"):rep(32)
      for _, strict in ipairs({ true, false }) do
        fails("ERANGE", zero .. s .. "\0", strict)
        fails("ERANGE", r .. zero .. "\0", strict)
        fails("ERANGE", n .. s .. "\0", strict)
        fails("ERANGE", r .. n .. "\0", strict)
        fails("ERANGE", top .. s .. "\1", strict)
        fails("ERANGE", r .. top .. "\1", strict)
      end
      -- n - 1 is in range
      assert.is_string(wp.secp256k1.recover(hash, r .. sub256(n, key(1)) .. "\0", false))
    end)

    it("r that is no x-coordinate on the curve: ECRYPTO", function()
      -- 5^3 + 7 is a quadratic non-residue mod p: no point has x = 5
      fails("ECRYPTO", key(5) .. s .. "\0")
      fails("ECRYPTO", key(5) .. s .. "\1", false)
    end)

    it("a signature of the wrong length: nil, EINVAL", function()
      fails("EINVAL", sig:sub(1, 64))
      fails("EINVAL", sig .. "\0")
      fails("EINVAL", "")
    end)

    it("raises on a wrong-length hash and on non-string arguments", function()
      assert.has_error(function() wp.secp256k1.recover(hash:sub(2), sig) end)
      assert.has_error(function() wp.secp256k1.recover(hash .. "x", sig) end)
      assert.has_error(function() wp.secp256k1.recover(hash, nil) end)
      assert.has_error(function() wp.secp256k1.recover(hash, {}) end)
      assert.has_error(function() wp.secp256k1.recover(hash, sig, "yes") end)
    end)
  end)
end)
