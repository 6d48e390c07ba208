-- SPDX-License-Identifier: MIT
-- wp.eip712 / wp.eip191: EIP-712's own "Mail" example (assets/eip-712/
-- Example.js: encodeType, typeHash, encodeData hash, domain separator,
-- digest, the signature of the "cow" key), the EIP-3009
-- TransferWithAuthorization typehash, and vectors cross-checked with viem
-- 2.45.0 (hashTypedData with nested struct arrays, multi-dimensional arrays,
-- bytes, int8, bytesN; hashMessage; signTypedData of an x402 payment).
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"

local eip712, hex = wp.eip712, wp.hex

local MAIL_JSON = [[{
  "types": {
    "EIP712Domain": [
      { "name": "name", "type": "string" }, { "name": "version", "type": "string" },
      { "name": "chainId", "type": "uint256" }, { "name": "verifyingContract", "type": "address" }
    ],
    "Person": [ { "name": "name", "type": "string" }, { "name": "wallet", "type": "address" } ],
    "Mail": [
      { "name": "from", "type": "Person" }, { "name": "to", "type": "Person" },
      { "name": "contents", "type": "string" }
    ]
  },
  "primaryType": "Mail",
  "domain": { "name": "Ether Mail", "version": "1", "chainId": 1,
              "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" },
  "message": {
    "from": { "name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    "to": { "name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    "contents": "Hello, Bob!"
  }
}]]

local MAIL = {
  encode_type = "Mail(Person from,Person to,string contents)Person(string name,address wallet)",
  type_hash = "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2",
  hash_struct = "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e",
  domain = "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f",
  digest = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2",
  address = "0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826",
  r = "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d",
  s = "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562",
  v = 28,
}

local TWA_TYPES = { TransferWithAuthorization = {
  { name = "from", type = "address" }, { name = "to", type = "address" }, { name = "value", type = "uint256" },
  { name = "validAfter", type = "uint256" }, { name = "validBefore", type = "uint256" },
  { name = "nonce", type = "bytes32" } } }

-- x402 "exact" on Base Sepolia USDC, signed with anvil key 0 by viem
local TWA = {
  domain = { name = "USDC", version = "2", chainId = 84532,
             verifyingContract = "0x036CbD53842c5426634e7929541eC2318f3dCF7e" },
  message = { from = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", to = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
              value = "10000", validAfter = "1740672089", validBefore = "1740672154", nonce = "0x" .. ("f0"):rep(32) },
  digest = "aaf68506030f52fb6efd5013e5619a56a04925a33944f9fec13a69389f32fa2d",
  sig = "cf6e301f847749211ef5682ae86865ad5b0b0c9d7e7f57071e17f90a5aeda1af" ..
    "60605e61d52115173acd4a7ebffa40fde9bc5e40ada19c2a15321e06616f287a1b",
}

describe("wp.eip712 (the EIP's Mail example)", function()
  local td = cjson.decode(MAIL_JSON)

  it("computes encodeType, typeHash and hashStruct", function()
    assert.equal(MAIL.encode_type, eip712.encode_type(td.types, "Mail"))
    assert.equal(MAIL.type_hash, hex(eip712.type_hash(td.types, "Mail")))
    assert.equal(MAIL.hash_struct, hex(assert(eip712.hash_struct(td.types, "Mail", td.message))))
  end)

  it("computes the domain separator and the digest", function()
    assert.equal(MAIL.domain, hex(assert(eip712.domain_separator(td.domain))))
    local digest, ds, sh = eip712.hash_typed_data(td.types, td.primaryType, td.domain, td.message)
    assert.equal(MAIL.digest, hex(digest))
    assert.equal(MAIL.domain, hex(ds))
    assert.equal(MAIL.hash_struct, hex(sh))
    assert.equal(MAIL.digest, hex(eip712.digest(ds, sh)))
  end)

  it("takes the eth_signTypedData_v4 object as one argument", function()
    assert.equal(MAIL.digest, hex(assert(eip712.hash_typed_data(td))))
  end)

  it("derives EIP712Domain from the domain when types lack it", function()
    local types = { Person = td.types.Person, Mail = td.types.Mail }
    assert.equal(MAIL.digest, hex(assert(eip712.hash_typed_data(types, "Mail", td.domain, td.message))))
  end)

  it("reproduces the cow key's signature", function()
    local key = wp.keccak256("cow")
    assert.equal(MAIL.address, wp.eth.address(wp.secp256k1.pubkey(key)):lower())
    local sig = wp.secp256k1.sign(key, h.unhex(MAIL.digest))
    assert.equal(MAIL.r, hex(sig:sub(1, 32)))
    assert.equal(MAIL.s, hex(sig:sub(33, 64)))
    assert.equal(MAIL.v, sig:byte(65) + 27)
  end)

  it("changes the digest when any field changes", function()
    local m = cjson.decode(MAIL_JSON)
    m.message.to.wallet = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbc"
    assert.are_not.equal(MAIL.digest, hex(eip712.hash_typed_data(m)))
    m = cjson.decode(MAIL_JSON)
    m.domain.chainId = 2
    assert.are_not.equal(MAIL.digest, hex(eip712.hash_typed_data(m)))
  end)
end)

describe("wp.eip712 arrays and nested structs (viem hashTypedData)", function()
  local types = {
    Person = { { name = "name", type = "string" }, { name = "wallets", type = "address[]" } },
    Mail = {
      { name = "from", type = "Person" }, { name = "to", type = "Person[]" },
      { name = "contents", type = "string" }, { name = "attachment", type = "bytes" },
      { name = "grid", type = "uint256[2][]" }, { name = "delta", type = "int8" },
      { name = "flag", type = "bool" }, { name = "tag", type = "bytes32" }, { name = "tags", type = "bytes4[2]" },
    },
  }
  local function message()
    return {
      from = { name = "Cow", wallets = { "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
                                         "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF" } },
      to = { { name = "Bob", wallets = { "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
        "0xB0BdaBea57B0BDABeA57b0bdABEA57b0BDabEa57", "0xB0B0b0b0b0b0B000000000000000000000000000" } } },
      contents = "Hello, Bob!", attachment = "0x0102030405",
      grid = { { 1, 2 }, { 3, "115792089237316195423570985008687907853269984665640564039457584007913129639935" } },
      delta = -5, flag = true, tag = "0x" .. ("ab"):rep(32), tags = { "0x01020304", "\222\173\190\239" },
    }
  end
  local domain = { name = "Ether Mail", version = "1", chainId = 84532,
                   verifyingContract = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC", salt = "0x" .. ("11"):rep(32) }

  it("matches viem's digest, domain hash (with salt) and struct hash", function()
    local d, ds, sh = eip712.hash_typed_data(types, "Mail", domain, message())
    assert.equal("3792e883c674057cab0bd0541faee3413969855c9040021fce6bba932f65bfe6", hex(d))
    assert.equal("3f000a3249c0ce636b1d08edfe53095610b8814d62b9658b671a9cb59e7afa08", hex(ds))
    assert.equal("5e14fc03b97715ca3566dcc2951ff5498d2a2e9cc5e4497a58800786fce53d18", hex(sh))
  end)

  it("returns nil, err with the path of a bad value", function()
    local cases = {
      { function(m) m.from.wallets[2] = "0x12" end, "^EINVAL: message.from.wallets%[2%]" },
      { function(m) m.to[1].name = nil end, "^EINVAL: message.to%[1%].name: missing" },
      { function(m) m.grid[2] = { 1 } end, "^ERANGE: message.grid%[2%]: expected 2" },
      { function(m) m.delta = 200 end, "^ERANGE: message.delta" },
      { function(m) m.flag = "yes" end, "^EINVAL: message.flag" },
      { function(m) m.attachment = "raw" end, "^EINVAL: message.attachment" },
      { function(m) m.tags = { "0x0102" , "0x01020304" } end, "^EINVAL: message.tags%[1%]" },
      { function(m) m.to = "nobody" end, "^EINVAL: message.to" },
    }
    for _, c in ipairs(cases) do
      local m = message()
      c[1](m)
      local ok, err = eip712.hash_typed_data(types, "Mail", domain, m)
      assert.is_nil(ok)
      assert.matches(c[2], err)
    end
    local ok, err = eip712.hash_typed_data(types, "Mail", { name = "x", chainId = "x" }, message())
    assert.is_nil(ok)
    assert.matches("^EINVAL: domain.chainId", err)
  end)

  it("raises on malformed types and unknown names", function()
    local bad_types = {
      { Mail = { { name = "a", type = "Unknown" } } },
      { Mail = { { name = "a", type = "uint" } } },          -- not canonical
      { Mail = { { name = "a", type = "uint256[0]" } } },
      { Mail = { { name = "a", type = "uint256[" } } },
      { Mail = { { name = "a", type = "uint256" }, { name = "a", type = "bool" } } },
      { Mail = { { name = "a b", type = "uint256" } } },
      { ["Ma il"] = { { name = "a", type = "uint256" } } },
      { Mail = { "uint256 a" } },
    }
    for _, t in ipairs(bad_types) do
      assert.has_error(function() eip712.hash_struct(t, "Mail", {}) end)
    end
    assert.has_error(function() eip712.hash_struct(types, "Nope", {}) end)
    assert.has_error(function() eip712.domain_separator({ name = "x", chain = 1 }) end)
    assert.has_error(function() eip712.domain_separator({}) end)
  end)

  it("hashes recursive types (a struct that contains itself)", function()
    local t = { Node = { { name = "value", type = "uint256" }, { name = "children", type = "Node[]" } } }
    assert.equal("Node(uint256 value,Node[] children)", eip712.encode_type(t, "Node"))
    local leaf = { value = 2, children = {} }
    local a = assert(eip712.hash_struct(t, "Node", { value = 1, children = { leaf } }))
    local b = assert(eip712.hash_struct(t, "Node", { value = 1, children = {} }))
    assert.are_not.equal(hex(a), hex(b))
  end)
end)

describe("wp.eip712.transfer_with_authorization_hash (EIP-3009, x402 exact)", function()
  it("uses the EIP-3009 typehash", function()
    assert.equal("7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267",
      hex(eip712.type_hash(TWA_TYPES, "TransferWithAuthorization")))
    assert.equal(hex(wp.keccak256("TransferWithAuthorization(address from,address to,uint256 value," ..
      "uint256 validAfter,uint256 validBefore,bytes32 nonce)")),
      hex(eip712.type_hash(TWA_TYPES, "TransferWithAuthorization")))
  end)

  it("matches viem's digest and recovers the payer from viem's signature", function()
    local d, sh = eip712.transfer_with_authorization_hash(TWA.domain, TWA.message)
    assert.equal(TWA.digest, hex(d))
    assert.equal(hex(assert(eip712.hash_struct(TWA_TYPES, "TransferWithAuthorization", TWA.message))), hex(sh))
    local pub = assert(wp.secp256k1.recover(d, h.unhex(TWA.sig)))
    assert.equal(TWA.message.from, wp.eth.address(pub))
  end)

  it("agrees with the generic path and accepts a precomputed separator", function()
    local ds = assert(eip712.domain_separator(TWA.domain))
    assert.equal(TWA.digest, hex(eip712.transfer_with_authorization_hash(ds, TWA.message)))
    assert.equal(TWA.digest, hex(eip712.hash_typed_data(TWA_TYPES, "TransferWithAuthorization",
      TWA.domain, TWA.message)))
    local m = {}
    for k, v in pairs(TWA.message) do m[k] = v end
    m.value, m.validAfter, m.nonce = 10000, "0x67c08c59", h.unhex(("f0"):rep(32))
    assert.equal(TWA.digest, hex(eip712.transfer_with_authorization_hash(ds, m)))
  end)

  it("returns nil, err for bad message values and raises on a bad separator", function()
    for field, bad in pairs({ from = "0x00", to = 5, value = "-1", validAfter = "1e9", validBefore = {},
      nonce = "0x1234" }) do
      local m = {}
      for k, v in pairs(TWA.message) do m[k] = v end
      m[field] = bad
      local ok, err = eip712.transfer_with_authorization_hash(TWA.domain, m)
      assert.is_nil(ok, field)
      assert.matches("^E%u+: message%." .. field, err)
    end
    assert.has_error(function() eip712.transfer_with_authorization_hash("short", TWA.message) end)
  end)
end)

describe("wp.eip191.hash", function()
  it("matches viem's hashMessage", function()
    assert.equal("d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68", hex(wp.eip191.hash("hello world")))
    assert.equal("5f35dce98ba4fba25530a026ed80b2cecdaa31091ba4958b99b52ea1d068adad", hex(wp.eip191.hash("")))
    local long = ("x"):rep(1000)
    assert.equal(hex(wp.keccak256("\25Ethereum Signed Message:\n1000" .. long)), hex(wp.eip191.hash(long)))
  end)
end)
