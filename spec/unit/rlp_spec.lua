-- SPDX-License-Identifier: MIT
--- wp.rlp: the ethereum/tests RLPTests vectors (spec/fixtures/rlp), the
-- later upstream invalid cases, canonical-form rules, integer encoding,
-- argument errors, deep nesting and seeded random round trips.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"

local char, byte, rep, floor = string.char, string.byte, string.rep, math.floor
local encode, decode = wp.rlp.encode, wp.rlp.decode

local VALID = cjson.decode(h.read("spec/fixtures/rlp/rlptest.json"))
local INVALID = cjson.decode(h.read("spec/fixtures/rlp/invalidRLPTest.json"))

-- ethereum/tests write big integers as "#<decimal>": convert to minimal
-- big-endian bytes by long division of the decimal string by 256.
local function decimal_to_bytes(dec)
  local digits = {}
  for i = 1, #dec do digits[i] = byte(dec, i) - 48 end
  local out = {}
  while #digits > 0 do
    local rem, q = 0, {}
    for i = 1, #digits do
      local cur = rem * 10 + digits[i]
      local d = floor(cur / 256)
      rem = cur % 256
      if #q > 0 or d > 0 then q[#q + 1] = d end
    end
    out[#out + 1] = char(rem)
    digits = q
  end
  return string.reverse(table.concat(out))
end

-- Minimal big-endian bytes of a non-negative integer (independent of C).
local function int_bytes(n)
  local out = ""
  while n > 0 do
    out = char(n % 256) .. out
    n = floor(n / 256)
  end
  return out
end

-- A fixture "in" value as what decode returns: strings, arrays of them.
local function as_decoded(v)
  if type(v) == "number" then return int_bytes(v) end
  if type(v) == "string" then
    if v:sub(1, 1) == "#" then return decimal_to_bytes(v:sub(2)) end
    return v
  end
  local t = {}
  for i, x in ipairs(v) do t[i] = as_decoded(x) end
  return t
end

-- A fixture "in" value as encode's argument: big integers as their bytes.
local function as_input(v)
  if type(v) == "string" and v:sub(1, 1) == "#" then return decimal_to_bytes(v:sub(2)) end
  if type(v) == "table" then
    local t = {}
    for i, x in ipairs(v) do t[i] = as_input(x) end
    return t
  end
  return v
end

-- Assert decode refused s with the given code (and header offset).
local function rejects(s, code, offset, reason)
  local v, err = decode(s)
  assert.is_nil(v, "accepted " .. wp.hex(s))
  assert.is_string(err)
  assert.matches("^" .. code .. ": ", err)
  if offset then assert.matches("at offset " .. offset .. "$", err) end
  if reason then assert.matches(reason, err, 1, true) end
  return err
end

local function nest(depth, leaf)
  local t = leaf == nil and {} or { leaf }
  for _ = 2, depth do t = { t } end
  return t
end

describe("wp.rlp with the ethereum/tests vectors", function()
  -- listofbinaries in this revision is inconsistent: its prefix 0xf8a7
  -- declares 167 payload bytes, the items listed need 328, and the "out"
  -- holds 322 bytes. It cannot be represented; every other entry is used.
  local SKIP = { listofbinaries = true }

  it("encodes every valid vector (1 inconsistent upstream vector skipped)", function()
    local n, skipped = 0, 0
    for name, t in pairs(VALID) do
      if SKIP[name] then
        skipped = skipped + 1
      else
        assert.equal(t.out:gsub("^0x", ""):lower(), wp.hex(encode(as_input(t["in"]))), name)
        n = n + 1
      end
    end
    assert.equal(28, n)
    assert.equal(1, skipped)
  end)

  it("decodes every valid vector to its value (integers as minimal big-endian bytes)", function()
    for name, t in pairs(VALID) do
      if not SKIP[name] then
        local v, err = decode(h.unhex(t.out))
        assert.is_nil(err, name)
        assert.same(as_decoded(t["in"]), v, name)
      end
    end
  end)

  it("re-encodes every decoded valid vector to the same bytes", function()
    for name, t in pairs(VALID) do
      if not SKIP[name] then
        local s = h.unhex(t.out)
        assert.equal(s, encode(decode(s)), name)
      end
    end
  end)

  it("refuses the skipped vector's bytes (bytes after the top-level item)", function()
    rejects(h.unhex(VALID.listofbinaries.out), "EINVAL", 169, "bytes after the top-level item")
  end)

  it("refuses every invalid vector", function()
    local n = 0
    for name, t in pairs(INVALID) do
      assert.equal("INVALID", t["in"])
      local v, err = decode(h.unhex(t.out))
      assert.is_nil(v, name)
      assert.matches("^E%u+: .* at offset %d+$", err)
      n = n + 1
    end
    assert.equal(17, n)
  end)

  it("gives the expected code and offset for each invalid vector", function()
    local expect = {
      int32Overflow = { "ETRUNC", 0 }, int32Overflow2 = { "ETRUNC", 0 },
      wrongSizeList = { "EINVAL", 0 }, wrongSizeList2 = { "EINVAL", 0 },
      incorrectLengthInArray = { "EINVAL", 0 }, randomRLP = { "EINVAL", 4 },
      bytesShouldBeSingleByte00 = { "EINVAL", 0 }, bytesShouldBeSingleByte01 = { "EINVAL", 0 },
      bytesShouldBeSingleByte7F = { "EINVAL", 0 },
      leadingZerosInLongLengthArray1 = { "EINVAL", 0 }, leadingZerosInLongLengthArray2 = { "EINVAL", 0 },
      leadingZerosInLongLengthList1 = { "EINVAL", 0 }, leadingZerosInLongLengthList2 = { "EINVAL", 0 },
      nonOptimalLongLengthArray1 = { "EINVAL", 0 }, nonOptimalLongLengthArray2 = { "EINVAL", 0 },
      nonOptimalLongLengthList1 = { "EINVAL", 0 }, nonOptimalLongLengthList2 = { "EINVAL", 0 },
    }
    for name, t in pairs(INVALID) do
      local e = assert(expect[name], name)
      rejects(h.unhex(t.out), e[1], e[2])
    end
  end)

  it("refuses the invalid cases added to invalidRLPTest.json upstream later", function()
    local later = {
      emptyEncoding = { "", "ETRUNC" },
      lessThanShortLengthArray1 = { "81", "ETRUNC" },
      lessThanShortLengthArray2 = { "a0000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e", "ETRUNC" },
      lessThanShortLengthList1 = { "c5010203", "ETRUNC" },
      lessThanShortLengthList2 = { "e201020304050607", "ETRUNC" },
      lessThanLongLengthArray1 = { "ba010000aabbccddeeff", "ETRUNC" },
      lessThanLongLengthArray2 = { "b840ffeeddccbbaa99887766554433221100", "ETRUNC" },
      lessThanLongLengthList1 = { "f90180", "ETRUNC" },
      lessThanLongLengthList2 = { "ffffffffffffffffff0001020304050607", "ETRUNC" },
    }
    for _, c in pairs(later) do rejects(h.unhex(c[1]), c[2], 0) end
  end)
end)

describe("wp.rlp.encode", function()
  it("uses the single-byte, short and long forms at their boundaries", function()
    assert.equal("\128", encode(""))
    assert.equal("\0", encode("\0"))
    assert.equal("\127", encode("\127"))
    assert.equal("\129\128", encode("\128"))
    assert.equal("\129\255", encode("\255"))
    assert.equal("\183" .. rep("a", 55), encode(rep("a", 55)))
    assert.equal("\184\56" .. rep("a", 56), encode(rep("a", 56)))
    assert.equal("\184\255", encode(rep("a", 255)):sub(1, 2))
    assert.equal("\185\1\0", encode(rep("a", 256)):sub(1, 3))
    assert.equal("\185\255\255", encode(rep("a", 65535)):sub(1, 3))
    assert.equal("\186\1\0\0", encode(rep("a", 65536)):sub(1, 4))
    assert.equal("\192", encode({}))
    -- a 54-byte string encodes to 55 bytes: the largest short-list payload
    assert.equal("\247\182", encode({ rep("a", 54) }):sub(1, 2))
    assert.equal("\248\56\183", encode({ rep("a", 55) }):sub(1, 3))
    assert.equal("\248\255", encode({ rep("a", 253) }):sub(1, 2))
    assert.equal("\249\1\0", encode({ rep("a", 254) }):sub(1, 3))
  end)

  it("encodes integers as minimal big-endian byte strings", function()
    assert.equal("\128", encode(0))
    assert.equal("\1", encode(1))
    assert.equal("\127", encode(127))
    assert.equal("\129\128", encode(128))
    assert.equal("\129\255", encode(255))
    assert.equal("\130\1\0", encode(256))
    assert.equal("\131\1\0\0", encode(65536))
    assert.equal("\132\255\255\255\255", encode(2 ^ 32 - 1))
    assert.equal("\135\32\0\0\0\0\0\0", encode(2 ^ 53))
    assert.equal("\135\31\255\255\255\255\255\255", encode(2 ^ 53 - 1))
    assert.equal(encode("\4\0"), encode(1024))
    assert.equal("\195\128\1\128", encode({ 0, 1, "" }))
  end)

  it("raises on negative, fractional, huge or non-finite numbers", function()
    for _, bad in ipairs({ -1, -0.5, 1.5, 2 ^ 53 + 2, 2 ^ 64, math.huge, -math.huge, 0 / 0 }) do
      assert.has_error(function() encode(bad) end, nil, tostring(bad))
      assert.has_error(function() encode({ "ok", { bad } }) end, nil, tostring(bad))
    end
  end)

  it("raises on tables that are not arrays 1..n", function()
    assert.has_error(function() encode({ 1, nil, 3 }) end)
    assert.has_error(function() encode({ [2] = "x" }) end)
    assert.has_error(function() encode({ a = 1 }) end)
    assert.has_error(function() encode({ "x", n = 1 }) end)
    assert.has_error(function() encode({ [0] = "x" }) end)
    assert.has_error(function() encode({ [1.5] = "x" }) end)
    assert.has_error(function() encode({ { [true] = 1 } }) end)
  end)

  it("raises on other types", function()
    assert.has_error(function() encode() end)
    assert.has_error(function() encode(nil) end)
    assert.has_error(function() encode(true) end)
    assert.has_error(function() encode(print) end)
    assert.has_error(function() encode({ "a", false }) end)
    assert.has_error(function() encode(coroutine.create(print)) end)
  end)

  it("encodes 1024 levels of nesting and raises beyond, cycles included", function()
    local s = encode(nest(1024))
    assert.is_table(decode(s))
    assert.has_error(function() encode(nest(1025)) end)
    local cyclic = {}
    cyclic[1] = cyclic
    assert.has_error(function() encode(cyclic) end)
  end)
end)

describe("wp.rlp.decode", function()
  it("returns strings and nested arrays of strings", function()
    assert.equal("dog", decode("\131dog"))
    assert.equal("", decode("\128"))
    assert.equal("\0", decode("\0"))
    assert.same({}, decode("\192"))
    assert.same({ "", {}, { "" } }, decode("\196\128\192\193\128"))
    assert.same({ { {}, {} }, {} }, decode(h.unhex("c4c2c0c0c0")))
  end)

  it("refuses non-canonical forms", function()
    rejects("\129\0", "EINVAL", 0, "single byte below 0x80")
    rejects("\129\127", "EINVAL", 0, "single byte below 0x80")
    rejects("\184\55" .. rep("a", 55), "EINVAL", 0, "long length form")
    rejects("\184\0", "EINVAL", 0, "leading zero")
    rejects("\185\0\56" .. rep("a", 56), "EINVAL", 0, "leading zero")
    rejects("\248\1\128", "EINVAL", 0, "long length form")
    rejects("\249\0\56" .. rep("\128", 56), "EINVAL", 0, "leading zero")
    -- and inside a list, at the inner header's offset
    rejects("\194\129\5", "EINVAL", 1, "single byte below 0x80")
    rejects("\195\128\129\0", "EINVAL", 2)
  end)

  it("accepts the canonical neighbours of those forms", function()
    assert.equal("\128", decode("\129\128"))
    assert.equal(rep("a", 56), decode("\184\56" .. rep("a", 56)))
    assert.equal(rep("\0", 256), decode("\185\1\0" .. rep("\0", 256)))
    assert.same({ "" }, decode("\193\128"))
  end)

  it("refuses truncated input and lengths beyond it", function()
    rejects("", "ETRUNC", 0, "empty input")
    rejects("\129", "ETRUNC", 0)
    rejects("\131do", "ETRUNC", 0)
    rejects("\184", "ETRUNC", 0, "inside a length prefix")
    rejects("\185\1", "ETRUNC", 0, "inside a length prefix")
    rejects("\191\255\255\255\255\255\255\255\255", "ETRUNC", 0)
    rejects("\255\255\255\255\255\255\255\255\255", "ETRUNC", 0)
    rejects("\193", "ETRUNC", 0)
    rejects("\194\128", "ETRUNC", 0)
    rejects("\196\131do", "ETRUNC", 0)
    -- every proper prefix of a valid encoding is refused
    local s = encode({ "abc", { rep("x", 70), "" }, rep("y", 200), { { {} } } })
    for n = 0, #s - 1 do
      local v, err = decode(s:sub(1, n))
      assert.is_nil(v, "prefix " .. n)
      assert.matches("^E%u+: ", err)
    end
  end)

  it("refuses items that run past their list and bytes after the item", function()
    rejects("\194\131dog", "EINVAL", 1, "past the end of its list")
    rejects("\194\195\128\128\128", "EINVAL", 1, "past the end of its list")
    rejects("\194\184\56" .. rep("a", 56), "EINVAL", 1, "past the end of its list")
    rejects("\193\185\1", "EINVAL", 1, "length prefix runs past")
    rejects("\192\192", "EINVAL", 1, "bytes after the top-level item")
    rejects("\131dog\0", "EINVAL", 4, "bytes after the top-level item")
    rejects("\0\0", "EINVAL", 1)
    rejects("\193\192\192", "EINVAL", 2)
  end)

  -- Wrap an encoding in one more list header (independent of the encoder).
  local function wrap(x)
    local n = #x
    if n < 56 then return char(0xc0 + n) .. x end
    local be = int_bytes(n)
    return char(0xf7 + #be) .. be .. x
  end

  it("decodes 1024 levels of nesting and refuses 1025 (no C recursion)", function()
    local inner = encode(nest(1024, "x"))
    local v = decode(inner)
    for _ = 1, 1023 do v = v[1] end
    assert.same({ "x" }, v)
    -- one more list around it: the innermost list (header "\193", 2 bytes
    -- from the end) is now at depth 1025
    local deeper = wrap(inner)
    assert.equal(#inner + 3, #deeper)
    rejects(deeper, "ERANGE", #deeper - 2, "nested too deeply")
  end)

  it("stops hostile nesting at the limit without recursion or allocation", function()
    -- 5000 well-formed levels: refused at the 1025th header
    local s = "\128"
    local offsets = {}
    for _ = 1, 5000 do s = wrap(s) end
    local pos, depth = 1, 0
    while depth < 1025 do
      local b = byte(s, pos)
      depth = depth + 1
      offsets[depth] = pos - 1
      pos = pos + (b <= 0xf7 and 1 or 1 + b - 0xf7)
    end
    rejects(s, "ERANGE", offsets[1025], "nested too deeply")
    -- a million headers each claiming the next byte: refused at once
    rejects(rep("\193", 1000000), "EINVAL", 1, "past the end of its list")
    rejects(rep("\247", 2000), "EINVAL", 1, "past the end of its list")
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() decode() end)
    assert.has_error(function() decode({}) end)
  end)
end)

describe("wp.rlp round trips", function()
  local r = h.rng(0x524c50)

  local function random_bytes(n)
    local t = {}
    for i = 1, n do t[i] = char(r(256) - 1) end
    return table.concat(t)
  end

  local function gen(depth)
    if depth <= 0 or r(100) <= 45 then
      local k = r(100)
      if k <= 15 then return "" end
      if k <= 30 then return random_bytes(1) end
      if k <= 60 then return random_bytes(r(60) - 1) end
      return random_bytes(r(400) - 1)
    end
    local t = {}
    for i = 1, r(7) - 1 do t[i] = gen(depth - 1) end
    return t
  end

  it("decode(encode(x)) equals x and encode(decode(y)) equals y", function()
    for _ = 1, 500 do
      local x = gen(5)
      local y = encode(x)
      assert.same(x, decode(y))
      assert.equal(y, encode(decode(y)))
    end
  end)

  it("any byte flip either is refused or decodes to a value that re-encodes to it", function()
    for _ = 1, 40 do
      local y = encode(gen(4))
      for i = 1, #y, math.max(1, floor(#y / 50)) do
        for _, delta in ipairs({ 1, 0x40, 0x80 }) do
          local b = (byte(y, i) + delta) % 256
          local z = y:sub(1, i - 1) .. char(b) .. y:sub(i + 1)
          local v = decode(z)
          if v ~= nil then assert.equal(z, encode(v)) end
        end
      end
    end
  end)
end)
