-- SPDX-License-Identifier: MIT
-- wp.abi: the Solidity "Contract ABI Specification" examples (baz, bar,
-- sam, f, g), selectors and event topics, integer/address/bytesN value
-- conversions, and the strict decoder against malformed data (one case per
-- bound check).
local wp = require "workproof"
local h = require "helpers"

local abi, hex = wp.abi, wp.hex

-- a 32-byte word from a short hex tail (left-padded with zeros)
local function word(tail) return ("0"):rep(64 - #tail) .. tail end
local function words(...) return h.unhex(table.concat({ ... })) end

-- Solidity docs, "Examples" and "Use of Dynamic Types"
local VECTORS = {
  { sig = "baz(uint32,bool)", selector = "cdcd77c0", values = { 69, true },
    hex = "cdcd77c0" .. word("45") .. word("1") },
  { sig = "bar(bytes3[2])", selector = "fce353f6", values = { { "abc", "def" } },
    hex = "fce353f6" .. "616263" .. ("0"):rep(58) .. "646566" .. ("0"):rep(58) },
  { sig = "sam(bytes,bool,uint[])", selector = "a5643bf2", canonical = "sam(bytes,bool,uint256[])",
    values = { "dave", true, { 1, 2, 3 } },
    hex = "a5643bf2" .. word("60") .. word("1") .. word("a0") .. word("4") ..
      "64617665" .. ("0"):rep(56) .. word("3") .. word("1") .. word("2") .. word("3") },
  { sig = "f(uint,uint32[],bytes10,bytes)", selector = "8be65246",
    canonical = "f(uint256,uint32[],bytes10,bytes)",
    values = { "0x123", { "0x456", "0x789" }, "1234567890", "Hello, world!" },
    hex = "8be65246" .. word("123") .. word("80") .. "31323334353637383930" .. ("0"):rep(44) ..
      word("e0") .. word("2") .. word("456") .. word("789") .. word("d") ..
      "48656c6c6f2c20776f726c6421" .. ("0"):rep(38) },
  { sig = "g(uint[][],string[])", selector = "2289b18c", canonical = "g(uint256[][],string[])",
    values = { { { 1, 2 }, { 3 } }, { "one", "two", "three" } },
    hex = "2289b18c" .. word("40") .. word("140") .. word("2") .. word("40") .. word("a0") ..
      word("2") .. word("1") .. word("2") .. word("1") .. word("3") .. word("3") ..
      word("60") .. word("a0") .. word("e0") .. word("3") .. "6f6e65" .. ("0"):rep(58) ..
      word("3") .. "74776f" .. ("0"):rep(58) .. word("5") .. "7468726565" .. ("0"):rep(54) },
}

describe("wp.abi (Solidity ABI spec examples)", function()
  for _, v in ipairs(VECTORS) do
    it("encodes " .. v.sig, function()
      local sel, canon = abi.selector(v.sig)
      assert.equal(v.selector, hex(sel))
      assert.equal(v.canonical or v.sig, canon)
      assert.equal(v.hex, hex(assert(abi.encode_call(v.sig, v.values))))
    end)
  end

  it("decodes the f example back to its values (integers as decimal strings)", function()
    local t = assert(abi.decode_call("f(uint256,uint32[],bytes10,bytes)", h.unhex(VECTORS[4].hex)))
    assert.same({ "291", { "1110", "1929" }, "1234567890", "Hello, world!" }, t)
  end)

  it("decodes the g example (nested dynamic arrays, string[])", function()
    local t = assert(abi.decode_call("g(uint256[][],string[])", h.unhex(VECTORS[5].hex)))
    assert.same({ { { "1", "2" }, { "3" } }, { "one", "two", "three" } }, t)
  end)

  it("re-encodes every example from its decoded values", function()
    for _, v in ipairs(VECTORS) do
      local _, canon = abi.selector(v.sig)
      local args = canon:match("^[%w_]+(%(.*%))$")
      local data = h.unhex(v.hex):sub(5)
      local back = assert(abi.decode(args, data))
      assert.equal(v.hex:sub(9), hex(assert(abi.encode(args, back))))
    end
  end)

  it("refuses calldata whose selector does not match", function()
    local ok, err = abi.decode_call("baz(uint32,bool)", h.unhex(VECTORS[2].hex))
    assert.is_nil(ok)
    assert.matches("^EPROTO:", err)
    ok, err = abi.decode_call("baz(uint32,bool)", "\1\2")
    assert.is_nil(ok)
    assert.matches("^ETRUNC:", err)
  end)
end)

describe("wp.abi selectors and topics", function()
  it("computes well-known selectors and event topics", function()
    assert.equal("a9059cbb", hex((abi.selector("transfer(address,uint256)"))))
    assert.equal("70a08231", hex((abi.selector("balanceOf(address)"))))
    assert.equal("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
      hex((abi.event_topic("Transfer(address,address,uint256)"))))
    -- EIP-3009 transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)
    assert.equal("e3ee160e", hex((abi.selector(
      "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"))))
    assert.equal("e3ee160e", hex((abi.selector(
      "transferWithAuthorization(address,address,uint,uint,uint,bytes32,uint8,bytes32,bytes32)"))))
  end)

  it("canonicalises tuples, aliases and nested arrays", function()
    local sel, canon = abi.selector("f((uint,int)[2][],bytes)")
    assert.equal("f((uint256,int256)[2][],bytes)", canon)
    assert.equal(hex(wp.keccak256(canon):sub(1, 4)), hex(sel))
    assert.equal("()", abi.canonical(""))
    assert.equal("()", abi.canonical("()"))
    assert.equal("(uint256,bytes)", abi.canonical("(uint,bytes)"))
    assert.equal("(uint256,bytes)", abi.canonical("uint,bytes"))
    assert.equal("((uint256,bytes))", abi.canonical("((uint,bytes))"))
    assert.equal("((bytes32,string,bool,uint256,bytes)[])",
      abi.canonical("(bytes32,string,bool,uint256,bytes)[]"))
  end)

  it("raises on malformed type strings and signatures", function()
    for _, bad in ipairs({ "uint7", "uint264", "uint0", "uint08", "bytes0", "bytes33", "foo", "Uint256",
      "uint256[0]", "uint256[", "uint256[01]", "(uint256", "uint256)", "(())", "(uint256,)",
      ",uint256", "uint256 x", "uint256[65537]", ("("):rep(40) .. "uint8" .. (")"):rep(40),
      "uint8" .. ("[]"):rep(40), "fixed128x18", "function" }) do
      assert.has_error(function() abi.encode(bad, {}) end, nil, bad)
    end
    for _, bad in ipairs({ "f", "f(", "1f(uint256)", "f(uint256),(bool)", "f (uint256)", "(uint256)",
      "f(uint256)[]" }) do
      assert.has_error(function() abi.selector(bad) end, nil, bad)
    end
    assert.has_error(function() abi.encode("uint256", "not a table") end)
  end)

  it("accepts the deepest allowed nesting", function()
    local t = ("("):rep(31) .. "uint8" .. (")"):rep(31)
    local v = { 7 }
    for _ = 1, 30 do v = { v } end   -- 31 tuple levels, the outermost is the argument list
    assert.equal(("00"):rep(31) .. "07", hex(assert(abi.encode(t, v))))
    assert.has_error(function() abi.encode("(" .. t .. ")", { v }) end)
  end)
end)

describe("wp.abi values", function()
  it("takes integers as numbers, decimal strings and 0x hex", function()
    local a = abi.encode("uint256,uint256,uint256", { 255, "255", "0xff" })
    assert.equal(word("ff"):rep(3), hex(a))
    local max = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
    assert.equal(("ff"):rep(32), hex(assert(abi.encode("uint256", { max }))))
    assert.same({ max }, abi.decode("uint256", h.unhex(("ff"):rep(32))))
  end)

  it("encodes signed integers in two's complement and decodes them back", function()
    assert.equal(("ff"):rep(32), hex(assert(abi.encode("int8", { -1 }))))
    assert.same({ "-128", "127", "-1" },
      abi.decode("int8,int8,int256", assert(abi.encode("int8,int8,int256", { -128, "127", "-1" }))))
    local min = "-57896044618658097711785492504343953926634992332820282019728792003956564819968"
    assert.same({ min }, abi.decode("int256", assert(abi.encode("int256", { min }))))
  end)

  it("returns ERANGE/EINVAL with a path for values that do not fit", function()
    local cases = {
      { "uint8", { 256 }, "^ERANGE: values%[1%]" },
      { "uint256", { -1 }, "^ERANGE: values%[1%]" },
      { "int8", { 128 }, "^ERANGE" },
      { "int8", { -129 }, "^ERANGE" },
      { "int256", { "57896044618658097711785492504343953926634992332820282019728792003956564819968" }, "^ERANGE" },
      { "uint256", { "115792089237316195423570985008687907853269984665640564039457584007913129639936" }, "^ERANGE" },
      { "uint256", { 1.5 }, "^EINVAL" },
      { "uint256", { 2 ^ 60 }, "^EINVAL" },
      { "uint256", { "12a" }, "^EINVAL" },
      { "uint256", { "" }, "^EINVAL" },
      { "uint256", { " 1" }, "^EINVAL" },
      { "uint256", { "0x" }, "^EINVAL" },
      { "uint256", { true }, "^EINVAL" },
      { "bool", { 1 }, "^EINVAL" },
      { "address", { "0x1234" }, "^EINVAL" },
      { "address", { "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD827" }, "^EPROTO" },
      { "bytes3", { "abcd" }, "^EINVAL" },
      { "bytes", { 12 }, "^EINVAL" },
      { "uint256[2]", { { 1 } }, "^ERANGE: values%[1%]: expected 2" },
      { "(uint256,bool)", { 1 }, "^ERANGE" },
      { "uint256[]", { { 1, nil, 3 } }, "^EINVAL" },
      { "uint256[]", { { x = 1 } }, "^EINVAL" },
      { "(uint8,uint8[])", { 1, { 2, 300 } }, "^ERANGE: values%[2%]%[2%]" },
    }
    for _, c in ipairs(cases) do
      local ok, err = abi.encode(c[1], c[2])
      assert.is_nil(ok, c[1])
      assert.matches(c[3], err)
    end
  end)

  it("takes addresses as EIP-55/lowercase hex or 20 raw bytes and returns EIP-55", function()
    local a = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"
    local enc = assert(abi.encode("address", { a:lower() }))
    assert.equal(enc, abi.encode("address", { a }))
    assert.equal(enc, abi.encode("address", { h.unhex(a) }))
    assert.same({ a }, abi.decode("address", enc))
  end)

  it("takes bytesN raw or as 0x hex and returns raw bytes", function()
    local enc = assert(abi.encode("bytes4,bytes32", { "0xdeadbeef", ("\7"):rep(32) }))
    assert.same({ "\222\173\190\239", ("\7"):rep(32) }, abi.decode("bytes4,bytes32", enc))
  end)

  it("round-trips tuples of dynamic members and arrays of them", function()
    local t = "(bytes32,string,bool,uint256,bytes)[]"
    local v = { { { ("\1"):rep(32), "ünïcødé", true, "42", "" },
                  { ("\2"):rep(32), "", false, "0", ("\0"):rep(33) } } }
    local enc = assert(abi.encode(t, v))
    local back = assert(abi.decode(t, enc))
    assert.same({ { { ("\1"):rep(32), "ünïcødé", true, "42", "" },
                    { ("\2"):rep(32), "", false, "0", ("\0"):rep(33) } } }, back)
    assert.equal(enc, abi.encode(t, back))
    assert.same({}, abi.decode("", ""))
    assert.equal("", abi.encode("()", {}))
  end)

  it("round-trips random values (seeded)", function()
    local r = h.rng(20240601)
    local function rand_bytes(n)
      local t = {}
      for i = 1, n do t[i] = string.char(r(256) - 1) end
      return table.concat(t)
    end
    local function gen(depth)
      -- returns type, value
      local k = r(depth > 3 and 6 or 9)
      if k == 1 then return "uint256", abi.to_decimal("0x" .. hex(rand_bytes(32))) end
      if k == 2 then return "int64", tostring(r(2000000) - 1000000) end
      if k == 3 then return "bool", r(2) == 1 end
      if k == 4 then return "bytes", rand_bytes(r(70) - 1) end
      if k == 5 then return "string", rand_bytes(r(40) - 1) end
      if k == 6 then return "bytes7", rand_bytes(7) end
      if k == 7 then
        local et, ev = gen(depth + 1)
        local n, vals = r(4) - 1, { ev }
        for i = 2, n do
          -- same shape: regenerate until the type matches (bounded tries)
          local t2, v2
          for _ = 1, 50 do t2, v2 = gen(depth + 1); if t2 == et then break end end
          vals[i] = t2 == et and v2 or ev
        end
        if n == 0 then vals = {} end
        return et .. "[]", vals
      end
      local n = r(3)
      local ts, vs = {}, {}
      for i = 1, n do ts[i], vs[i] = gen(depth + 1) end
      if k == 8 then return "(" .. table.concat(ts, ",") .. ")", vs end
      return ts[1] .. "[1]", { vs[1] }
    end
    for _ = 1, 300 do
      local t, v = gen(0)
      local list = "(" .. t .. ")"   -- one argument of type t
      local enc = assert(abi.encode(list, { v }), t)
      local back = assert(abi.decode(list, enc), t)
      assert.equal(hex(enc), hex(assert(abi.encode(list, back))), t)
    end
  end)

  it("converts integers with to_decimal / to_quantity", function()
    assert.equal("255", abi.to_decimal("0xff"))
    assert.equal("0", abi.to_decimal(0))
    assert.equal("0x0", abi.to_quantity(0))
    assert.equal("0x1", abi.to_quantity("1"))
    assert.equal("0x1000", abi.to_quantity(4096))
    assert.equal("0xde0b6b3a7640000", abi.to_quantity("1000000000000000000"))
    local ok, err = abi.to_decimal("-1")
    assert.is_nil(ok)
    assert.matches("^ERANGE", err)
    ok, err = abi.to_quantity("x")
    assert.is_nil(ok)
    assert.matches("^EINVAL", err)
  end)
end)

describe("wp.abi.decode on malformed data", function()
  local function fails(types, data, code, opts)
    local ok, err = abi.decode(types, data, opts)
    assert.is_nil(ok, types)
    assert.matches("^" .. code .. ": abi.decode: ", err)
    return err
  end

  it("rejects data shorter than the head", function()
    fails("uint256", h.unhex(word("1"):sub(3)), "ETRUNC")
    fails("uint256", "", "ETRUNC")
    fails("uint256,uint256", words(word("1")), "ETRUNC")
  end)

  it("rejects non-zero padding in static words", function()
    fails("uint8", words(word("100")), "EINVAL")
    fails("uint32", words("01" .. word("1"):sub(3)), "EINVAL")
    fails("int8", words(word("80")), "EINVAL")                       -- -128 must be sign-extended
    fails("int8", words(("ff"):rep(31) .. "7f"), "EINVAL")           -- 127 with 0xff padding
    fails("address", words("01" .. ("00"):rep(11) .. ("11"):rep(20)), "EINVAL")
    fails("bool", words(word("2")), "EINVAL")
    fails("bytes3", words("61626364" .. ("00"):rep(28)), "EINVAL")
    assert.same({ "-128" }, abi.decode("int8", words(("ff"):rep(31) .. "80")))
  end)

  it("rejects offsets that are unrepresentable, out of range or not canonical", function()
    fails("bytes", words("01" .. word("20"):sub(3), word("0")), "ERANGE")      -- high bytes set
    fails("bytes", words(word("60"), word("0")), "ERANGE")                     -- past the end
    fails("bytes", words(word("ffffffffffffffe0"), word("0")), "ERANGE")       -- wraps
    -- pointing back into the head: in range, but not where the encoder puts it
    local aliased = words(word("0"))
    fails("bytes", aliased, "EPROTO")
    assert.same({ "" }, abi.decode("bytes", aliased, { lenient = true }))
    local err = fails("bytes", words(word("40"), word("0"), word("0")), "EPROTO")
    assert.matches("not canonical", err)
    assert.same({ "" }, abi.decode("bytes", words(word("40"), word("0"), word("0")), { lenient = true }))
  end)

  it("rejects lengths that are unrepresentable or run past the data", function()
    fails("bytes", words(word("20"), "01" .. word("1"):sub(3)), "ERANGE")
    fails("bytes", words(word("20"), word("21"), ("61"):rep(32)), "ETRUNC")
    fails("bytes", words(word("20"), word("ffffffffffffffff")), "ERANGE")
    fails("bytes", words(word("20"), word("ffffffffffff")), "ETRUNC")
    fails("string", words(word("20"), word("1")), "ETRUNC")             -- no padded tail at all
    fails("uint256[]", words(word("20"), word("2"), word("1")), "ETRUNC")
    fails("uint256[]", words(word("20"), word("10000000000")), "ETRUNC")
    fails("bytes32[][]", words(word("20"), word("1"), word("20"), word("3")), "ETRUNC")
  end)

  it("rejects non-zero padding after a byte string", function()
    fails("bytes", words(word("20"), word("1"), "61" .. ("00"):rep(30) .. "01"), "EINVAL")
    assert.same({ "a" }, abi.decode("bytes", words(word("20"), word("1"), "61" .. ("00"):rep(31))))
  end)

  it("rejects trailing bytes unless lenient", function()
    local data = words(word("1"), word("2"))
    fails("uint256", data, "EPROTO")
    assert.same({ "1" }, abi.decode("uint256", data, { lenient = true }))
  end)

  it("bounds the values a lenient decode may produce (aliased offsets)", function()
    -- uint256[][]: 200 outer elements all pointing at one inner array of
    -- 200 words: 40k values out of ~13 KiB of input
    local parts = { word("20"), word(("%x"):format(200)) }
    for _ = 1, 200 do parts[#parts + 1] = word(("%x"):format(200 * 32)) end
    parts[#parts + 1] = word(("%x"):format(200))
    for _ = 1, 200 do parts[#parts + 1] = word("7") end
    local data = h.unhex(table.concat(parts))
    fails("uint256[][]", data, "EPROTO")                          -- canonical: aliasing refused
    local t = assert(abi.decode("uint256[][]", data, { lenient = true }))
    assert.equal(200, #t[1])
    fails("uint256[][]", data, "EPROTO", { lenient = true, max_items = 1000 })
  end)

  it("raises on a non-string data argument", function()
    assert.has_error(function() abi.decode("uint256", {}) end)
    assert.has_error(function() abi.decode("uint256", "", 5) end)
  end)
end)
