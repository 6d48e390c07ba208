-- SPDX-License-Identifier: MIT
--- wp.sha256, wp.keccak256, wp.blake2b: published vectors (FIPS 180-2,
-- RFC 7693, libsodium's keyed BLAKE2b test), Keccak-256 across the 136-byte
-- rate boundaries from two independent JS implementations
-- (spec/fixtures/hash/vectors.json), and the C incremental contexts, which
-- have no Lua API, driven through LuaJIT FFI against the one-shot results.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"
local ffi = require "ffi"

local char, rep = string.char, string.rep

local V = cjson.decode(h.read("spec/fixtures/hash/vectors.json"))

-- The fixture's "pattern" inputs: byte i is i % 256.
local function pattern(n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = char(i % 256) end
  return table.concat(t)
end

local function input_of(v)
  if v["repeat"] then return rep(v["repeat"], v.len) end
  if v.pattern then return pattern(v.len) end
  return v.text
end

describe("wp.sha256", function()
  it("matches the FIPS 180-2 example vectors, one million 'a' included", function()
    assert.equal(5, #V.sha256_fips)
    for _, v in ipairs(V.sha256_fips) do
      local d = wp.sha256(input_of(v))
      assert.equal(32, #d)
      assert.equal(v.sha256, wp.hex(d))
    end
  end)

  it("is right at the 64-byte block and 56-byte padding boundaries", function()
    for _, v in ipairs(V.sha256_blocks) do
      assert.equal(v.sha256, wp.hex(wp.sha256(pattern(v.len))), "length " .. v.len)
    end
  end)

  it("hashes embedded NULs and high bytes (strings are bytes, not C strings)", function()
    assert.not_equal(wp.sha256("a"), wp.sha256("a\0b"))
    assert.not_equal(wp.sha256(""), wp.sha256("\0"))
    assert.equal(wp.sha256(pattern(256)), wp.sha256(pattern(256)))
  end)

  it("keeps no state between calls (per-thread context is re-initialised)", function()
    local a, b = wp.sha256("abc"), wp.sha256(rep("x", 1000))
    for _ = 1, 3 do
      assert.equal(a, wp.sha256("abc"))
      assert.equal(b, wp.sha256(rep("x", 1000)))
    end
  end)

  it("raises on a missing or non-string argument", function()
    assert.has_error(function() wp.sha256() end)
    assert.has_error(function() wp.sha256(nil) end)
    assert.has_error(function() wp.sha256({}) end)
    assert.has_error(function() wp.sha256(true) end)
  end)
end)

describe("wp.keccak256", function()
  it("is Ethereum's Keccak-256 (0x01 padding), not FIPS 202 SHA3-256", function()
    local empty = wp.hex(wp.keccak256(""))
    assert.equal("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470", empty)
    -- SHA3-256("") would be a7ffc6f8...; a padding mix-up shows here
    assert.not_equal("a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a", empty)
    assert.equal("4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
      wp.hex(wp.keccak256("abc")))
  end)

  it("matches the reference at and around the 136-byte rate (135..137, 271..273)", function()
    local lens = {}
    for _, v in ipairs(V.keccak256) do
      local d = wp.keccak256(input_of(v))
      assert.equal(32, #d)
      assert.equal(v.keccak256, wp.hex(d), "length " .. v.len)
      lens[v.len] = true
    end
    for _, n in ipairs({ 0, 135, 136, 137, 271, 272, 1000000 }) do
      assert.is_true(lens[n], "fixture covers length " .. n)
    end
  end)

  it("gives the well-known Ethereum values", function()
    -- the empty-trie root: keccak256(rlp("")) = keccak256(0x80)
    assert.equal("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421",
      wp.hex(wp.keccak256("\128")))
    -- ERC-20 Transfer event topic
    assert.equal("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
      wp.hex(wp.keccak256("Transfer(address,address,uint256)")))
  end)

  it("raises on a missing or non-string argument", function()
    assert.has_error(function() wp.keccak256() end)
    assert.has_error(function() wp.keccak256({}) end)
  end)
end)

describe("wp.blake2b", function()
  it("matches RFC 7693 appendix A (BLAKE2b-512 of \"abc\")", function()
    local v = V.blake2b_rfc7693
    assert.equal(v.out, wp.hex(wp.blake2b(v.text, v.outlen)))
  end)

  it("defaults to a 32-byte unkeyed digest", function()
    for _, v in ipairs(V.blake2b_unkeyed) do
      local d = wp.blake2b(v.text, v.outlen)
      assert.equal(v.outlen, #d)
      assert.equal(v.out, wp.hex(d))
      if v.outlen == 32 then assert.equal(d, wp.blake2b(v.text)) end
    end
    -- the output length is a parameter of the hash, not a truncation
    assert.not_equal(wp.blake2b("abc", 32), wp.blake2b("abc", 64):sub(1, 32))
  end)

  it("matches libsodium's keyed test vectors (generichash.exp)", function()
    assert.equal(49, #V.blake2b_sodium)
    for _, v in ipairs(V.blake2b_sodium) do
      local d = wp.blake2b(pattern(v.inlen), v.outlen, pattern(v.keylen))
      assert.equal(v.out, wp.hex(d), "vector with input length " .. v.inlen)
    end
  end)

  it("accepts a nil key as unkeyed and keys change the digest", function()
    assert.equal(wp.blake2b("abc", 32), wp.blake2b("abc", 32, nil))
    assert.not_equal(wp.blake2b("abc", 32), wp.blake2b("abc", 32, rep("k", 32)))
  end)

  it("raises on out-of-range lengths and wrong types", function()
    assert.has_error(function() wp.blake2b("abc", 15) end)
    assert.has_error(function() wp.blake2b("abc", 65) end)
    assert.has_error(function() wp.blake2b("abc", 32, rep("k", 15)) end)
    assert.has_error(function() wp.blake2b("abc", 32, rep("k", 65)) end)
    assert.has_error(function() wp.blake2b("abc", "many") end)
    assert.has_error(function() wp.blake2b("abc", 32, {}) end)
    assert.has_error(function() wp.blake2b() end)
    assert.has_no_error(function() wp.blake2b("abc", 16, rep("k", 16)) end)
    assert.has_no_error(function() wp.blake2b("abc", 64, rep("k", 64)) end)
  end)
end)

-- The incremental C contexts (wp_sha256_init/update/final and the Keccak
-- sponge) through FFI: the host exports the core's symbols; under plain
-- luajit the module is loaded RTLD_LOCAL, so open it again by path.
describe("C incremental contexts (FFI)", function()
  ffi.cdef [[
    typedef struct { void *evp; } wp_spec_sha256_ctx;
    /* opaque and generously sized: the real struct embeds nettle's state */
    typedef struct { uint64_t opaque[128]; } wp_spec_keccak_ctx;
    int wp_sha256_init(wp_spec_sha256_ctx *c);
    void wp_sha256_update(wp_spec_sha256_ctx *c, const void *data, size_t len);
    void wp_sha256_final(wp_spec_sha256_ctx *c, uint8_t *out);
    void wp_keccak256_init(wp_spec_keccak_ctx *c);
    void wp_keccak256_update(wp_spec_keccak_ctx *c, const void *data, size_t len);
    void wp_keccak256_final(wp_spec_keccak_ctx *c, uint8_t *out);
  ]]
  local C
  if pcall(function() return ffi.C.wp_keccak256_init end) then
    C = ffi.C
  else
    C = ffi.load(assert(package.searchpath("workproof.core", package.cpath)))
  end

  local function sha256_chunks(chunks)
    local c = ffi.new("wp_spec_sha256_ctx")
    local out = ffi.new("uint8_t[32]")
    assert.equal(0, C.wp_sha256_init(c))
    for _, s in ipairs(chunks) do C.wp_sha256_update(c, s, #s) end
    C.wp_sha256_final(c, out)
    assert.is_true(c.evp == nil, "final frees the EVP context")
    return ffi.string(out, 32)
  end

  local function keccak_chunks(chunks)
    local c = ffi.new("wp_spec_keccak_ctx")
    local out = ffi.new("uint8_t[32]")
    C.wp_keccak256_init(c)
    for _, s in ipairs(chunks) do C.wp_keccak256_update(c, s, #s) end
    C.wp_keccak256_final(c, out)
    return ffi.string(out, 32)
  end

  it("give the one-shot digest for any chunking (seeded random splits)", function()
    for _, n in ipairs({ 0, 1, 55, 64, 135, 136, 137, 272, 1000, 5000 }) do
      local msg = pattern(n)
      for seed = 1, 8 do
        local chunks = h.random_chunks(msg, seed * 7919 + n, seed * 40)
        assert.equal(wp.sha256(msg), sha256_chunks(chunks), "sha256 length " .. n)
        assert.equal(wp.keccak256(msg), keccak_chunks(chunks), "keccak length " .. n)
      end
    end
  end)

  it("accept empty updates and byte-at-a-time feeding across the rate", function()
    local msg = pattern(300)
    local bytes = { "" }
    for i = 1, #msg do bytes[#bytes + 1] = msg:sub(i, i); bytes[#bytes + 1] = "" end
    assert.equal(wp.keccak256(msg), keccak_chunks(bytes))
    assert.equal(wp.sha256(msg), sha256_chunks(bytes))
    -- exactly one full rate block, then the padding block alone
    assert.equal(wp.keccak256(pattern(136)), keccak_chunks({ pattern(136):sub(1, 136) }))
    assert.equal(wp.hex(wp.keccak256("abc")), wp.hex(keccak_chunks({ "a", "b", "c" })))
  end)
end)
