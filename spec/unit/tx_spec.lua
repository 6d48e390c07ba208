-- SPDX-License-Identifier: MIT
-- wp.tx: EIP-155's own example, viem's published signTransaction vectors
-- (EIP-1559, EIP-2930, legacy; anvil key 0, src/accounts/utils/
-- signTransaction.test.ts), decoding with sender recovery, and malformed
-- transactions.
local wp = require "workproof"
local h = require "helpers"

local tx, hex = wp.tx, wp.hex

local ANVIL0 = h.unhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
local ANVIL0_ADDR = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
local GWEI = "000000000"

local EIP155 = {
  tx = { nonce = 9, gasPrice = "20" .. GWEI, gas = 21000, to = "0x3535353535353535353535353535353535353535",
         value = "1000000000000000000", chainId = 1 },
  key = ("46"):rep(32),
  signing_data = "ec098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a764000080018080",
  signing_hash = "daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53",
  v = "37",
  r = "18515461264373351373200002665853028612451056578545711640558177340181847433846",
  s = "46948507304638947509940763649030358759909902576025900602547168820602576006531",
  raw = "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc" ..
    "2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a" ..
    "3b6d83",
}

local ACCESS = { { address = ANVIL0_ADDR, storageKeys = {
  "0x0000000000000000000000000000000000000000000000000000000000000001",
  "0x60fdd29ff912ce880cd3edaf9f932dc61d3dae823ea77e0323f94adb9f6a72fe" } } }

-- viem 2.x signTransaction.test.ts inline snapshots (base: gas 21000, nonce 785)
local VIEM = {
  { name = "eip1559 default", tx = { chainId = 1, gas = 21000, nonce = 785, type = "eip1559" },
    raw = "02f850018203118080825208808080c080a04012522854168b27e5dc3d5839bab5e6b39e1a0ffd343901ce1622e3d64b48f1a04e" ..
      "00902ae0502c4728cbf12156290df99c3ed7de85b1dbfe20b5c36931733a33" },
  { name = "eip1559 minimal (maxFeePerGas)", tx = { chainId = 1, maxFeePerGas = 1 },
    raw = "02f84c0180800180808080c080a0c95f157628e67a435b1b85584db1b8346cbccf9890d28466f6edfed07d097793a03bdfde4f59" ..
      "a340a4308b5b4d2c89da83838d691c8059b228d0667309f1d2e893" },
  { name = "eip1559 minimal (type)", tx = { chainId = 1, type = "eip1559" },
    raw = "02f84c0180808080808080c001a0db5b8a12b90b68aeb786379ac14219ac85934e833082dee6cf03fd912809224da06902cc208e" ..
      "3b14a056dca2005c96f59eae33118b899f642551a58cff09044c9a" },
  { name = "eip1559 accessList", tx = { chainId = 1, gas = 21000, nonce = 785, type = 2, accessList = ACCESS },
    raw = "02f8ac018203118080825208808080f85bf85994f39fd6e51aad88f6f4ce6ab8827279cfffb92266f842a0000000000000000000" ..
      "0000000000000000000000000000000000000000000001a060fdd29ff912ce880cd3edaf9f932dc61d3dae823ea77e0323f94adb9f" ..
      "6a72fe80a0df4810a25d0e147163b03e392bf083dc852702715b9ba848eb9821c70ce2c92ea00b6d11209ef326abaf83aa2443ba6185" ..
      "1c7c8ca0813e347a04b501f584b03024" },
  { name = "eip1559 data", tx = { chainId = 1, gas = 21000, nonce = 785, type = "eip1559", data = "\18\52" },
    raw = "02f8520182031180808252088080821234c001a054d552c58a162c9003633c20871d8e381ef7a3c35d1c8a79c7c12d5cf09a09" ..
      "14a0" ..
      "3c5d6241f8c4fcf8b35262de038d3ab1940feb1a70b934ae5d40ea6bce912e2d" },
  { name = "eip1559 fees", tx = { chainId = 1, gas = 21000, nonce = 785, maxFeePerGas = "20" .. GWEI,
                                  maxPriorityFeePerGas = "2" .. GWEI },
    raw = "02f8590182031184773594008504a817c800825208808080c001a06ea33b188b30a5f5d0d1cec62b2bac7203ff428a4904876659" ..
      "6727737689043fa0255b74c8e704e3692497a29cd246ffc4344b4107457ce1c914fe2b4e09993859" },
  { name = "eip2930 default", tx = { chainId = 1, gas = 21000, nonce = 785, type = "eip2930" },
    raw = "01f84f0182031180825208808080c080a089cebce5c7f728febd1060b55837c894ec2a79dd7854350abce252fc2de96b5da039f2" ..
      "782c70b92f4b1916aa8db91453c7229f33458bd091b3e10a40f9a7e443d2" },
  { name = "eip2930 minimal (accessList & gasPrice)", tx = { chainId = 1, gasPrice = "2" .. GWEI,
      accessList = { { address = "0x0000000000000000000000000000000000000000", storageKeys = { ("\0"):rep(32) } } } },
    raw = "01f8880180847735940080808080f838f7940000000000000000000000000000000000000000e1a00000000000000000000000" ..
      "0000" ..
      "0000000000000000000000000000000000000080a0ddef1ec6e66b32535e9114cd7b3418560fc6bca2180e1adc8d295dc145cc5ac0a0" ..
      "636a1359bff1e30a2582429f33b68b532bd5d18e9f39ae0b637b3eae85ba6ad9" },
  { name = "eip2930 data", tx = { chainId = 1, gas = 21000, nonce = 785, type = 1, data = "\18\52" },
    raw = "01f85101820311808252088080821234c080a084fdcea5fe55ce8378aa94a8d4a9c01545d59922f1edcdd89a71ebf740dc0bf5a0" ..
      "539a4ab61a42509a6b4c35c85099d8b7b8e815967f0c832c868327caca6307cb" },
  { name = "eip2930 gasPrice",
    tx = { chainId = 1, gas = 21000, nonce = 785, type = "eip2930", gasPrice = "20" .. GWEI },
    raw = "01f854018203118504a817c800825208808080c080a058e29913bc928a79e0536fc588e8fe372464d1ff4feff691c344c0163280" ..
      "c97ea037780b5c99301a67aaacfbe98c83139fd026e30925fc103b7898b53af9cb0658" },
  { name = "legacy default (pre-EIP-155)", tx = { gas = 21000, nonce = 785, gasPrice = "2" .. GWEI, type = "legacy" },
    raw = "f85182031184773594008252088080801ba0462e5dabe6d0e82ac9d2832d5ecc815e317669ae2eb018c2a07ae6f3a4763618a003" ..
      "214adcddee51ee1d46cb12a694f5520c851581fe53c543c8999d45fa18de07" },
  { name = "legacy minimal (gasPrice)", tx = { gasPrice = "2" .. GWEI },
    raw = "f84d808477359400808080801ba07abf45a28c3ce5a1d79d5ab5362878be5411ac51b3c2316670e1263936ef869ea001ca38d178" ..
      "2880bff3e2056f4949e75418858195b06fa8b6b13910a789e51989" },
  { name = "legacy minimal (type)", tx = { type = "legacy" },
    raw = "f8498080808080801ba0ed0dde91ca0736a47cbd91b770cd7b43c9a749edd966dcb5205ba2e0298d22e0a07372cfcbf5319fda0b" ..
      "7c5eebbdde6582b80de24cf9c5f4475a537a39e4156166" },
  { name = "legacy data", tx = { gas = 21000, nonce = 785, gasPrice = "2" .. GWEI, type = 0, data = "\18\52" },
    raw = "f853820311847735940082520880808212341ba06aaba448432a7ea0749d6ad06dae0f7530cec5c7e184f82047a9435ff24364" ..
      "39a0" ..
      "1caf56f78d2e755490c89780bd74fe74dcdbcc007184fcd93619f5d5a4c3ea3d" },
}

describe("wp.tx (EIP-155 example)", function()
  it("produces the published signing data, signing hash and signed transaction", function()
    local sh, payload = assert(tx.signing_hash(EIP155.tx))
    assert.equal(EIP155.signing_data, hex(payload))
    assert.equal(EIP155.signing_hash, hex(sh))
    local raw, th = assert(tx.sign_legacy(EIP155.tx, h.unhex(EIP155.key)))
    assert.equal(EIP155.raw, hex(raw))
    assert.equal(hex(wp.keccak256(raw)), hex(th))
  end)

  it("decodes it: v, r, s as published and the sender recovered", function()
    local t = assert(tx.decode(h.unhex(EIP155.raw)))
    assert.equal(0, t.type)
    assert.equal("1", t.chainId)
    assert.equal("9", t.nonce)
    assert.equal("20000000000", t.gasPrice)
    assert.equal("21000", t.gas)
    assert.equal("0x3535353535353535353535353535353535353535", t.to)
    assert.equal("1000000000000000000", t.value)
    assert.equal("", t.data)
    assert.equal(EIP155.v, t.v)
    assert.equal(EIP155.r, t.r)
    assert.equal(EIP155.s, t.s)
    assert.equal(0, t.yParity)
    local pub = wp.secp256k1.pubkey(h.unhex(EIP155.key))
    assert.equal(wp.eth.address(pub), t.from)
    assert.equal(hex(wp.keccak256(h.unhex(EIP155.raw))), hex(t.hash))
  end)
end)

describe("wp.tx (viem signTransaction vectors)", function()
  for _, v in ipairs(VIEM) do
    it("signs " .. v.name, function()
      local raw, th = assert(tx.sign(v.tx, ANVIL0))
      assert.equal(v.raw, hex(raw))
      assert.equal(hex(wp.keccak256(raw)), hex(th))
    end)

    it("decodes " .. v.name .. " and re-signs it identically", function()
      local t = assert(tx.decode(h.unhex(v.raw)))
      assert.equal(ANVIL0_ADDR, t.from)
      local again = {}
      for _, k in ipairs({ "type", "chainId", "nonce", "gasPrice", "maxPriorityFeePerGas", "maxFeePerGas", "gas",
        "to", "value", "data", "accessList" }) do
        again[k] = t[k]
      end
      assert.equal(v.raw, hex(assert(tx.sign(again, ANVIL0))))
    end)
  end

  it("decodes access lists with raw 32-byte storage keys and EIP-55 addresses", function()
    local t = assert(tx.decode(h.unhex(VIEM[4].raw)))
    assert.equal(2, t.type)
    assert.equal(1, #t.accessList)
    assert.equal(ANVIL0_ADDR, t.accessList[1].address)
    assert.same({ h.unhex(ACCESS[1].storageKeys[1]:sub(3)), h.unhex(ACCESS[1].storageKeys[2]:sub(3)) },
      t.accessList[1].storageKeys)
    assert.same({}, assert(tx.decode(h.unhex(VIEM[1].raw))).accessList)
  end)

  it("gives the same signing hash for every integer spelling", function()
    local a = tx.signing_hash({ chainId = 31337, nonce = 0, maxFeePerGas = 1000000000, gas = 21000,
      to = ANVIL0_ADDR, value = "1000000000000000000" })
    local b = tx.signing_hash({ chainId = "0x7a69", nonce = "0", maxFeePerGas = "0x3b9aca00", gas = "21000",
      to = ANVIL0_ADDR:lower(), value = "0xde0b6b3a7640000" })
    assert.equal(hex(a), hex(b))
  end)

  it("signs contract creations (no `to`) and decodes them without one", function()
    local raw = assert(tx.sign_eip1559({ chainId = 31337, gas = 100000, data = "\96\0" }, ANVIL0))
    local t = assert(tx.decode(raw))
    assert.is_nil(t.to)
    assert.equal("\96\0", t.data)
  end)
end)

describe("wp.tx argument and value errors", function()
  it("raises on programming errors", function()
    assert.has_error(function() tx.sign({ chainId = 1, gasLimit = 21000 }, ANVIL0) end)   -- unknown field
    assert.has_error(function() tx.sign({ nonce = 1, maxFeePerGas = 1 }, ANVIL0) end)    -- chainId required
    assert.has_error(function() tx.sign({ chainId = 1, maxFeePerGas = 1, gasPrice = 1 }, ANVIL0) end)
    assert.has_error(function() tx.sign_legacy({ chainId = 1, maxFeePerGas = 1 }, ANVIL0) end)
    assert.has_error(function() tx.sign_eip1559({ chainId = 1, type = "legacy" }, ANVIL0) end)
    assert.has_error(function() tx.sign({ chainId = 1, type = "eip4844" }, ANVIL0) end)
    assert.has_error(function() tx.sign({ chainId = 1 }, "short key") end)
    assert.has_error(function() tx.sign({ chainId = 1, data = 5 }, ANVIL0) end)
    assert.has_error(function() tx.sign("not a table", ANVIL0) end)
  end)

  it("returns nil, err for values that do not fit", function()
    local cases = {
      { { chainId = 1, value = "115792089237316195423570985008687907853269984665640564039457584007913129639936" },
        "^ERANGE: tx.value" },
      { { chainId = 1, nonce = -1 }, "^ERANGE: tx.nonce" },
      { { chainId = 1, gas = "lots" }, "^EINVAL: tx.gas" },
      { { chainId = 1, to = "0x1234" }, "^EINVAL: tx.to" },
      { { chainId = 1, accessList = { { address = ANVIL0_ADDR, storageKeys = { "0x01" } } } },
        "^EINVAL: tx.accessList%[1%].storageKeys%[1%]" },
      { { chainId = 1, accessList = { 5 } }, "^EINVAL: tx.accessList%[1%]" },
      { { chainId = "0x4000000000000000", gasPrice = 1, type = "legacy" }, "^ERANGE" },
    }
    for _, c in ipairs(cases) do
      local ok, err = tx.sign(c[1], ANVIL0)
      assert.is_nil(ok)
      assert.matches(c[2], err)
    end
    local ok, err = tx.sign({ chainId = 1 }, ("\0"):rep(32))
    assert.is_nil(ok)
    assert.matches("^EINVAL", err)
  end)
end)

describe("wp.tx.decode on malformed transactions", function()
  local good = h.unhex(VIEM[6].raw)   -- eip1559 with fees

  local function fails(raw, code)
    local ok, err = tx.decode(raw)
    assert.is_nil(ok)
    assert.matches("^" .. code .. ": tx.decode: ", err)
    return err
  end

  -- re-encode a type-2 field list with one field replaced (wp.rlp does the list)
  local function with_field(i, value)
    local fields = {}
    local list = assert(wp.rlp.decode(good:sub(2)))
    for k, f in ipairs(list) do fields[k] = f end
    fields[i] = value
    return "\2" .. wp.rlp.encode(fields)
  end

  it("accepts the untouched transaction and its own re-encoding", function()
    assert.is_table(tx.decode(good))
    assert.is_table(tx.decode(with_field(2, "\3\17")))
  end)

  it("rejects empty, truncated and trailing input", function()
    fails("", "ETRUNC")
    fails("\2", "ETRUNC")
    fails(good:sub(1, -2), "ETRUNC")
    fails(good .. "\0", "EINVAL")
  end)

  it("rejects unknown types and non-list payloads", function()
    fails("\3" .. good:sub(2), "EINVAL")
    fails("\4" .. good:sub(2), "EINVAL")
    fails("\2\130\1\2", "EINVAL")
  end)

  it("rejects field count and shape errors", function()
    local list = assert(wp.rlp.decode(good:sub(2)))
    local fewer, more = {}, {}
    for k = 1, #list - 1 do fewer[k] = list[k] end
    for k = 1, #list do more[k] = list[k] end
    more[#more + 1] = ""
    fails("\2" .. wp.rlp.encode(fewer), "EINVAL")
    fails("\2" .. wp.rlp.encode(more), "EINVAL")
    fails(with_field(2, { "" }), "EINVAL")                 -- nonce as a list
    fails(with_field(9, ""), "EINVAL")                     -- access list as a string
    fails(with_field(9, { "" }), "EINVAL")                 -- entry not a list
    fails(with_field(9, { { ("\1"):rep(19), {} } }), "EINVAL")
    fails(with_field(9, { { ("\1"):rep(20), { ("\1"):rep(31) } } }), "EINVAL")
    fails(with_field(9, { { ("\1"):rep(20), {}, "" } }), "EINVAL")
  end)

  it("rejects non-canonical integers and bad recipients", function()
    fails(with_field(2, "\0\1"), "EINVAL")                 -- leading zero
    fails(with_field(2, "\0"), "EINVAL")                   -- zero must be empty
    fails(with_field(2, ("\1"):rep(9)), "ERANGE")          -- nonce over 64 bits
    fails(with_field(7, ("\1"):rep(33)), "ERANGE")         -- value over 256 bits
    fails(with_field(6, ("\1"):rep(19)), "EINVAL")         -- to: 19 bytes
    fails(with_field(10, "\2"), "EINVAL")                  -- yParity 2
    fails(with_field(11, ""), "EINVAL")                    -- r = 0
  end)

  it("rejects a high-s signature (EIP-2) and a bad legacy v", function()
    local n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"
    local list = assert(wp.rlp.decode(good:sub(2)))
    -- s' = n - s, with the parity flipped: the same key recovers, but high s
    local s = wp.abi.to_decimal("0x" .. hex(list[12]))
    local function sub(a, b)   -- a - b for hex strings (256 bit), via decimal-free byte math
      local x, y, out, borrow = h.unhex(a), h.unhex(("0"):rep(64 - #b) .. b), {}, 0
      for i = 32, 1, -1 do
        local d = x:byte(i) - y:byte(i) - borrow
        borrow = d < 0 and 1 or 0
        out[i] = string.char((d + 256) % 256)
      end
      return table.concat(out)
    end
    assert.is_string(s)
    local high = sub(n, hex(list[12]))
    local flipped = {}
    for k, f in ipairs(list) do flipped[k] = f end
    flipped[10] = list[10] == "" and "\1" or ""
    flipped[12] = high:gsub("^%z+", "")
    local err = fails("\2" .. wp.rlp.encode(flipped), "EPROTO")
    assert.matches("high s", err)
    -- legacy v = 29: neither 27/28 nor EIP-155
    local leg = assert(wp.rlp.decode(h.unhex(EIP155.raw)))
    leg[7] = "\29"
    fails(wp.rlp.encode(leg), "EINVAL")
  end)

  it("survives every truncation and every single-byte corruption", function()
    for i = 0, #good - 1 do
      local ok = tx.decode(good:sub(1, i))
      assert.is_nil(ok)
    end
    local r = h.rng(7)
    for _ = 1, 300 do
      local i = r(#good)
      local b = string.char((good:byte(i) + r(255)) % 256)
      local t = tx.decode(good:sub(1, i - 1) .. b .. good:sub(i + 1))
      -- either refused, or a valid transaction whose sender is some address
      if t then assert.matches("^0x%x+$", t.from) end
    end
  end)
end)
