-- SPDX-License-Identifier: MIT
--- wp.hex / wp.unhex and wp.base64: RFC 4648 §10 vectors, both alphabets,
-- strict decoding (every malformed shape refused with EINVAL and where),
-- and seeded random round trips.
local wp = require "workproof"
local h = require "helpers"

local char, byte, rep = string.char, string.byte, string.rep

local function all_bytes()
  local t = {}
  for i = 0, 255 do t[#t + 1] = char(i) end
  return table.concat(t)
end

local function random_bytes(r, n)
  local t = {}
  for i = 1, n do t[i] = char(r(256) - 1) end
  return table.concat(t)
end

-- An independent (slow, obviously right) hex encoder to check against.
local function ref_hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(byte(c)) end))
end

-- Assert a decoder refused `input` with EINVAL naming offset `at`.
local function refused(fn, input, at, ...)
  local v, err = fn(input, ...)
  assert.is_nil(v, ("accepted %q"):format(input))
  assert.is_string(err)
  assert.matches("^EINVAL: ", err)
  if at then
    assert.matches("offset " .. at .. "%f[^%d]", err, 1, false)
  end
  return err
end

describe("wp.hex", function()
  it("encodes every byte value as two lowercase digits", function()
    local s = all_bytes()
    local x = wp.hex(s)
    assert.equal(512, #x)
    assert.equal(ref_hex(s), x)
    assert.is_nil(x:find("[^0-9a-f]"))
    assert.equal("", wp.hex(""))
    assert.equal("00ff7f80", wp.hex("\0\255\127\128"))
  end)

  it("handles large inputs (beyond the on-stack scratch buffer)", function()
    local s = random_bytes(h.rng(7), 100000)
    assert.equal(ref_hex(s), wp.hex(s))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() wp.hex() end)
    assert.has_error(function() wp.hex({}) end)
    assert.has_error(function() wp.hex(nil) end)
  end)
end)

describe("wp.unhex", function()
  it("decodes lowercase, uppercase and mixed case, with or without 0x/0X", function()
    local s = all_bytes()
    local x = ref_hex(s)
    assert.equal(s, wp.unhex(x))
    assert.equal(s, wp.unhex(x:upper()))
    assert.equal(s, wp.unhex("0x" .. x))
    assert.equal(s, wp.unhex("0X" .. x:upper()))
    assert.equal("\171\205\239", wp.unhex("aBcDeF"))
    assert.equal("\1\35", wp.unhex("0x0123"))
  end)

  it("decodes the empty string and a bare prefix to the empty string", function()
    assert.equal("", wp.unhex(""))
    assert.equal("", wp.unhex("0x"))
    assert.equal("", wp.unhex("0X"))
  end)

  it("refuses an odd number of digits", function()
    for _, x in ipairs({ "0", "abc", "0x0", "0X123", rep("a", 1001) }) do
      local err = refused(wp.unhex, x)
      assert.matches("odd number of hex digits", err)
    end
  end)

  it("refuses non-hex characters and names the first one's offset", function()
    refused(wp.unhex, "zz", 0)
    refused(wp.unhex, "0xgg", 2)
    refused(wp.unhex, "00g0", 2)
    refused(wp.unhex, " 00", 0)
    refused(wp.unhex, "00 ", 2)      -- odd length, but the bad byte is named
    refused(wp.unhex, "00\n", 2)
    refused(wp.unhex, "0 11", 1)
    refused(wp.unhex, "0x0x00", 3)   -- the prefix is allowed once
    refused(wp.unhex, "x0", 0)
    refused(wp.unhex, "00x0", 2)
    refused(wp.unhex, "+1", 0)
    refused(wp.unhex, "-1", 0)
    refused(wp.unhex, "12\0" .. "4", 2)
    refused(wp.unhex, "ab\255\255", 2)
    refused(wp.unhex, rep("0", 4000) .. "G0", 4000)
    local err = refused(wp.unhex, "0xg1", 2)
    assert.matches("'g'", err, 1, true)
    err = refused(wp.unhex, "\1\1", 0)
    assert.matches("0x01", err, 1, true)   -- control bytes are not echoed raw
  end)

  it("round-trips random data of many lengths", function()
    local r = h.rng(42)
    for n = 0, 300, 7 do
      local s = random_bytes(r, n)
      assert.equal(s, wp.unhex(wp.hex(s)))
      assert.equal(s, wp.unhex("0x" .. wp.hex(s):upper()))
    end
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() wp.unhex() end)
    assert.has_error(function() wp.unhex({}) end)
  end)
end)

describe("wp.base64", function()
  local B = wp.base64
  -- RFC 4648 §10
  local rfc = {
    { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
  }

  it("encodes the RFC 4648 test vectors (std, padded)", function()
    for _, v in ipairs(rfc) do
      assert.equal(v[2], B.encode(v[1]))
      assert.equal(v[2], B.encode(v[1], "std"))
      assert.equal(v[2], B.encode(v[1], nil))
    end
  end)

  it("decodes them back", function()
    for _, v in ipairs(rfc) do
      assert.equal(v[1], B.decode(v[2]))
      assert.equal(v[1], B.decode(v[2], "std"))
    end
  end)

  it("url variant: -_ alphabet, encoded without padding, decoded with or without", function()
    for _, v in ipairs(rfc) do
      local unpadded = v[2]:gsub("=", "")
      assert.equal(unpadded, B.encode(v[1], "url"))
      assert.equal(v[1], B.decode(unpadded, "url"))
      assert.equal(v[1], B.decode(v[2], "url"))
    end
    assert.equal("+/8=", B.encode("\251\255"))
    assert.equal("-_8", B.encode("\251\255", "url"))
    assert.equal("\251\255", B.decode("+/8="))
    assert.equal("\251\255", B.decode("-_8", "url"))
    assert.equal("\251\255", B.decode("-_8=", "url"))
  end)

  it("std decoding requires correct padding", function()
    refused(B.decode, "Zg")
    refused(B.decode, "Zm8")
    refused(B.decode, "Zm9vYg")
    refused(B.decode, "Zg=")
    refused(B.decode, "Zg===", 4)
    refused(B.decode, "Zm8==", 4)
    refused(B.decode, "Zm9v=", 4)
    refused(B.decode, "Zm9v====", 4)
    refused(B.decode, "=")
    refused(B.decode, "====")
  end)

  it("url decoding refuses wrong padding when padding is present", function()
    refused(B.decode, "Zg=", nil, "url")
    refused(B.decode, "Zg===", 4, "url")
    refused(B.decode, "Zm8==", 4, "url")
    refused(B.decode, "Zm9v=", 4, "url")
    refused(B.decode, "=", nil, "url")
  end)

  it("refuses a dangling 6-bit group and non-zero unused bits (one encoding per value)", function()
    for _, variant in ipairs({ "std", "url" }) do
      refused(B.decode, "Z", nil, variant)
      refused(B.decode, "Zm9vY", nil, variant)
      refused(B.decode, "Zm9vY===", nil, variant)
      refused(B.decode, "Zh==", nil, variant)  -- "Zg==" is the canonical "f"
      refused(B.decode, "Zm9=", nil, variant)  -- "Zm8=" is the canonical "fo"
    end
    refused(B.decode, "Zh", nil, "url")
    refused(B.decode, "Zm9", nil, "url")
  end)

  it("refuses characters outside the alphabet, whitespace and trailing garbage", function()
    refused(B.decode, "Zm9v!", 4)
    refused(B.decode, "Zm 9v", 2)
    refused(B.decode, "Zm9v\n", 4)
    refused(B.decode, " Zm9v", 0)
    refused(B.decode, "Zm9v\r\nZm9v", 4)
    refused(B.decode, "Zm9v\0", 4)
    refused(B.decode, "Zg==Zg==", 4)
    refused(B.decode, "Zg==\n", 4)
    refused(B.decode, "Zm9-", 3)           -- url alphabet in std
    refused(B.decode, "Zm9_", 3)
    refused(B.decode, "Zm9+", 3, "url")    -- std alphabet in url
    refused(B.decode, "Zm9/", 3, "url")
    refused(B.decode, "Zm9v.", 4, "url")
    refused(B.decode, "Zg==x", 4, "url")
    refused(B.decode, "Zm9v\255", 4)
  end)

  it("accepts exactly the alphabet's 64 characters, at every byte value", function()
    -- libsodium 1.0.18 alone would decode any byte >= 0x80 as '/' (signed
    -- char in its constant-time compare): "Zm9\255" became "fo\127".
    local std = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    local url = std:sub(1, 62) .. "-_"
    for variant, alphabet in pairs({ std = std, url = url }) do
      local accepted = 0
      for c = 0, 255 do
        local ch = char(c)
        local v = B.decode("AAA" .. ch, variant)
        local pos = alphabet:find(ch, 1, true)
        if pos then
          accepted = accepted + 1
          assert.equal("\0\0" .. char(pos - 1), v)
        elseif ch ~= "=" then
          assert.is_nil(v, variant .. " accepted byte " .. c)
          refused(B.decode, "AAA" .. ch, 3, variant)
          refused(B.decode, ch .. "AAA", 0, variant)
        end
      end
      assert.equal(64, accepted)
    end
  end)

  it("round-trips random data of many lengths in both variants", function()
    local r = h.rng(4648)
    for n = 0, 200 do
      local s = random_bytes(r, n)
      local std, url = B.encode(s), B.encode(s, "url")
      assert.equal(s, B.decode(std))
      assert.equal(s, B.decode(url, "url"))
      assert.equal(s, B.decode(std:gsub("+", "-"):gsub("/", "_"), "url"))
      assert.equal(0, #std % 4)
      assert.is_nil(url:find("[=+/]"))
    end
    local big = random_bytes(r, 70000)
    assert.equal(big, B.decode(B.encode(big)))
    assert.equal(big, B.decode(B.encode(big, "url"), "url"))
  end)

  it("raises on an unknown variant or a non-string argument", function()
    assert.has_error(function() B.encode("x", "URL") end)
    assert.has_error(function() B.encode("x", "base64url") end)
    assert.has_error(function() B.decode("eA==", "mime") end)
    assert.has_error(function() B.decode("eA==", {}) end)
    assert.has_error(function() B.encode() end)
    assert.has_error(function() B.decode({}) end)
    assert.has_error(function() B.decode(nil, "url") end)
  end)
end)
