-- SPDX-License-Identifier: MIT
--- wp.eth: addresses from keys, EIP-55 checksum encoding and validation.
local wp = require "workproof"
local unhex = require("helpers").plain_unhex

local function key(n) return unhex(("%064x"):format(n)) end

-- The test cases of EIP-55 (ERC-55), each group as the EIP lists it.
local EIP55 = {
  ["all caps"] = {
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
  },
  ["all lower"] = {
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
  },
  ["normal"] = {
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
  },
}
local GROUPS = { "all caps", "all lower", "normal" }

-- Swap the case of the first letter digit at or after position i.
local function swapcase_at(a, i)
  for j = i, #a do
    local c = a:sub(j, j)
    if c:match("[a-fA-F]") then
      local sw = c:match("%l") and c:upper() or c:lower()
      return a:sub(1, j - 1) .. sw .. a:sub(j + 1)
    end
  end
end

describe("wp.eth", function()
  describe("address", function()
    it("of private keys 1, 2, 3 and EIP-155's 0x46..46", function()
      local cases = {
        { key(1), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" },
        { key(2), "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF" },
        { key(3), "0x6813Eb9362372EEF6200f3b1dbC3f819671cBA69" },
        { unhex(("46"):rep(32)), "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F" },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(c[2], wp.eth.address(wp.secp256k1.pubkey(c[1])))
      end
    end)

    it("of a recovered key equals the signer's address", function()
      local sk, hash = key(1), wp.keccak256("hello")
      local pub = wp.secp256k1.recover(hash, wp.secp256k1.sign(sk, hash))
      assert.are.equal("0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf", wp.eth.address(pub))
    end)

    it("refuses a key without the 0x04 prefix: nil, EINVAL", function()
      local pub = wp.secp256k1.pubkey(key(1))
      for _, p in ipairs({ "\2", "\3", "\0", "\5" }) do
        local a, err = wp.eth.address(p .. pub:sub(2))
        assert.is_nil(a)
        assert.matches("^EINVAL: ", err)
      end
    end)

    it("raises on a wrong-length or non-string key", function()
      local pub = wp.secp256k1.pubkey(key(1))
      assert.has_error(function() wp.eth.address(pub:sub(1, 33)) end)
      assert.has_error(function() wp.eth.address(pub:sub(2)) end)
      assert.has_error(function() wp.eth.address(pub .. "\0") end)
      assert.has_error(function() wp.eth.address(nil) end)
    end)
  end)

  describe("EIP-55 test cases", function()
    for _, group in ipairs(GROUPS) do
      for _, a in ipairs(EIP55[group]) do
        it(group .. ": " .. a, function()
          local digits = a:sub(3)
          -- the encoding, from every input form
          assert.are.equal(a, wp.eth.checksum(a))
          assert.are.equal(a, wp.eth.checksum(a:lower()))
          assert.are.equal(a, wp.eth.checksum("0x" .. digits:upper()))
          assert.are.equal(a, wp.eth.checksum(digits:lower()))
          assert.are.equal(a, wp.eth.checksum(unhex(digits)))
          -- validation
          assert.is_true(wp.eth.is_address(a))
          assert.is_true(wp.eth.is_address(a:lower()))
          assert.is_true(wp.eth.is_address("0x" .. digits:upper()))
          assert.is_true(wp.eth.is_address(digits))
        end)
      end
    end

    it("a single swapped case in a mixed-case address fails the checksum", function()
      local n = 0
      for _, a in ipairs(EIP55.normal) do
        for i = 3, #a do
          local bad = swapcase_at(a, i)
          -- a swap can make the address single-case (no checksum): skip those
          if bad and bad ~= a and bad:sub(3):match("%l") and bad:sub(3):match("%u") then
            n = n + 1
            assert.is_false(wp.eth.is_address(bad), bad)
            local got, err = wp.eth.checksum(bad)
            assert.is_nil(got)
            assert.matches("^EPROTO: ", err)
          end
        end
      end
      assert.is_true(n > 50)
    end)

    it("all caps / all lower groups become mixed case when one letter flips", function()
      local a = EIP55["all caps"][1]
      local bad = swapcase_at(a, 3)
      assert.is_false(wp.eth.is_address(bad))
      a = EIP55["all lower"][1]
      bad = swapcase_at(a, 3)
      assert.is_false(wp.eth.is_address(bad))
    end)
  end)

  describe("malformed addresses", function()
    local good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    local bad = {
      "", "0x", good:sub(1, -2), good .. "d", good:sub(3, -2), "0x" .. good:sub(3) .. "00",
      "0X" .. good:sub(3), "1x" .. good:sub(3), " " .. good, good .. " ", good:sub(1, -2) .. "g",
      "0x" .. ("z"):rep(40), good:sub(1, 10) .. "\0" .. good:sub(12), ("0"):rep(42),
    }

    it("is_address is false", function()
      for _, s in ipairs(bad) do
        assert.is_false(wp.eth.is_address(s), s)
      end
    end)

    it("checksum returns nil, EINVAL", function()
      for _, s in ipairs(bad) do
        local got, err = wp.eth.checksum(s)
        assert.is_nil(got, s)
        assert.matches("^EINVAL: ", err)
      end
    end)

    it("20 raw bytes are an address for checksum but not text for is_address", function()
      local raw = ("\0"):rep(19) .. "\1"
      assert.are.equal("0x0000000000000000000000000000000000000001", wp.eth.checksum(raw))
      assert.is_false(wp.eth.is_address(raw))
      assert.is_true(wp.eth.is_address("0x0000000000000000000000000000000000000000"))
    end)

    it("raises on non-string arguments", function()
      assert.has_error(function() wp.eth.is_address(nil) end)
      assert.has_error(function() wp.eth.is_address({}) end)
      assert.has_error(function() wp.eth.checksum(nil) end)
      assert.has_error(function() wp.eth.checksum(true) end)
    end)
  end)
end)
