-- SPDX-License-Identifier: MIT
-- workproof.x402 without a chain: the 402 shapes (v2 PAYMENT-REQUIRED, v1
-- body) against the x402 specifications' field lists, PAYMENT-SIGNATURE /
-- X-PAYMENT decoding including malformed input, check() against the
-- requirements with real EIP-3009 authorizations signed here (as
-- examples/pay.lua signs them), the settlement calldata decoded back, and
-- check_legacy's input validation. The on-chain parts (check_chain, the rest
-- of check_legacy) run against anvil in spec/integration/chain_spec.lua.
local wp = require "workproof"
local cjson = require "cjson"
local x402 = require "workproof.x402"
local h = require "helpers"

-- anvil accounts #1 (payer) and #2 (a stranger); #0 is paid
local KEY = wp.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
local OTHER_KEY = wp.unhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")
local PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
local PAY_TO = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
local ASSET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
local NOW = 1750000000

local CFG = { network = "eip155:31337", chain_id = 31337, asset = ASSET, amount = "10000", pay_to = PAY_TO,
  token_name = "USDC", token_version = "2", max_timeout_seconds = 120 }

local function copy(t)
  local r = {}
  for k, v in pairs(t) do r[k] = type(v) == "table" and copy(v) or v end
  return r
end

local function merge(t, o)
  local r = copy(t)
  for k, v in pairs(o or {}) do r[k] = v end
  return r
end

local function auth(o)
  return merge({ from = PAYER, to = PAY_TO, value = "10000", validAfter = tostring(NOW - 60),
    validBefore = tostring(NOW + 300), nonce = "0x" .. ("5a"):rep(32) }, o)
end

-- r||s||v with v in {27, 28}, as viem and examples/pay.lua produce it
local function sign(a, key, domain)
  local d = merge({ name = CFG.token_name, version = CFG.token_version, chainId = CFG.chain_id,
    verifyingContract = CFG.asset }, domain)
  local digest = assert(wp.eip712.transfer_with_authorization_hash(d, a))
  local sig = assert(wp.secp256k1.sign(key or KEY, digest))
  return sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
end

local function accepted(o)
  return merge({ scheme = "exact", network = CFG.network, amount = CFG.amount, asset = ASSET, payTo = PAY_TO,
    maxTimeoutSeconds = 120, extra = { name = "USDC", version = "2" } }, o)
end

-- a v2 PaymentPayload table; opts: auth, sig (bytes), accepted
local function v2(o)
  o = o or {}
  local a = o.auth or auth()
  return { x402Version = 2, accepted = o.accepted or accepted(),
    payload = { signature = "0x" .. wp.hex(o.sig or sign(a)), authorization = a } }
end

local function v1(o)
  o = o or {}
  local a = o.auth or auth()
  return { x402Version = 1, scheme = o.scheme or "exact", network = o.network or CFG.network,
    payload = { signature = "0x" .. wp.hex(o.sig or sign(a)), authorization = a } }
end

local function enc(t) return wp.base64.encode(cjson.encode(t)) end

-- decode must succeed for a well-formed payload
local function decoded(t)
  local p, err = x402.decode(enc(t))
  assert(p, tostring(err))
  return p
end

-- a refusal: nil, "EPAYMENT: reason: text", "EPAYMENT", reason
local function refused(reason_want, p, err, code, reason)
  assert.is_nil(p)
  assert.equal("EPAYMENT", code)
  assert.equal(reason_want, reason)
  assert.equal("EPAYMENT: " .. reason_want .. ": ", err:sub(1, #reason_want + 12))
end

local function rejects(value, reason, pattern)
  local p, err, code, r = x402.decode(value)
  refused(reason, p, err, code, r)
  if pattern then assert.truthy(err:find(pattern, 1, true), err) end
end

local function check_fails(pay, reason, cfg, now)
  refused(reason, x402.check(cfg or CFG, pay, now or NOW))
end

-- n - s over 32 big-endian bytes (the malleable twin of a signature)
local N = wp.unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
local function neg(s) return h.sub256(N, s) end

describe("x402 402 responses", function()
  it("v2 PaymentRequired carries the fields the v2 specification names", function()
    local r = x402.required(CFG, "http://h/verify")
    assert.equal(2, r.x402Version)
    assert.equal("payment required", r.error)
    assert.same({ url = "http://h/verify", description = "WorkProof re-execution verification",
      mimeType = "application/json" }, r.resource)
    assert.equal(1, #r.accepts)
    -- v2: amount (not maxAmountRequired); resource moved to the top level
    assert.same({ scheme = "exact", network = "eip155:31337", amount = "10000", asset = ASSET, payTo = PAY_TO,
      maxTimeoutSeconds = 120, extra = { name = "USDC", version = "2" } }, r.accepts[1])
    assert.equal("why", x402.required(CFG, "u", "why").error)
    local nomax = merge(CFG, { max_timeout_seconds = false })
    nomax.max_timeout_seconds = nil
    assert.equal(300, x402.required(nomax, "u").accepts[1].maxTimeoutSeconds)
  end)

  it("PAYMENT-REQUIRED is the base64 of that JSON", function()
    local hdr = x402.required_header(CFG, "http://h/verify", "insufficient_funds")
    assert.truthy(hdr:find("^[A-Za-z0-9+/]+=*$"))
    assert.same(x402.required(CFG, "http://h/verify", "insufficient_funds"), cjson.decode(wp.base64.decode(hdr)))
  end)

  it("v1 PaymentRequirementsResponse has every field v1 requires, with its types", function()
    local r = x402.required_v1(CFG, "http://h/verify")
    assert.equal(1, r.x402Version)
    assert.equal("X-PAYMENT header is required", r.error)
    assert.equal("other", x402.required_v1(CFG, "u", "other").error)
    assert.equal(1, #r.accepts)
    local a = r.accepts[1]
    for _, k in ipairs({ "scheme", "network", "maxAmountRequired", "asset", "payTo", "resource", "description",
      "mimeType" }) do
      assert.is_string(a[k], k)
    end
    assert.is_number(a.maxTimeoutSeconds)
    assert.is_nil(a.amount)                       -- the v2 name
    assert.equal("10000", a.maxAmountRequired)
    assert.equal("http://h/verify", a.resource)
    assert.equal(PAY_TO, a.payTo)
    assert.equal(ASSET, a.asset)
    assert.same({ name = "USDC", version = "2" }, a.extra)
    -- the JSON a client reads keeps amounts as strings
    local j = cjson.decode(cjson.encode(r))
    assert.equal("10000", j.accepts[1].maxAmountRequired)
  end)

  it("PAYMENT-RESPONSE round-trips the SettlementResponse", function()
    local t = { success = true, transaction = "0x" .. ("ab"):rep(32), network = "eip155:31337", payer = PAYER }
    assert.same(t, cjson.decode(wp.base64.decode(x402.response_header(t))))
  end)
end)

describe("x402.decode", function()
  it("normalises a v2 PAYMENT-SIGNATURE", function()
    local t = v2()
    local p = decoded(t)
    assert.equal(2, p.version)
    assert.equal("exact", p.scheme)
    assert.equal("eip155:31337", p.network)
    assert.same(t.accepted, p.accepted)
    assert.same(t.payload.authorization, p.authorization)
    assert.equal(("5a"):rep(32), wp.hex(p.nonce))
    assert.equal(65, #p.signature)
    assert.equal(t.payload.signature, "0x" .. wp.hex(p.signature))
    assert.same(t, p.raw)
  end)

  it("normalises a v1 X-PAYMENT (scheme and network at the top)", function()
    local p = decoded(v1({ network = "eip155:1" }))
    assert.equal(1, p.version)
    assert.equal("exact", p.scheme)
    assert.equal("eip155:1", p.network)
    assert.is_nil(p.accepted)
  end)

  it("takes URL-safe base64 as well", function()
    local t = v2()
    t.extensions = { pad = "???>>>" }           -- forces '/' and '+' into the standard encoding
    local std = enc(t)
    local url = std:gsub("+", "-"):gsub("/", "_")
    assert.are_not.equal(std, url)
    assert.equal(decoded(t).nonce, assert(x402.decode(url)).nonce)
  end)

  it("takes a signature with v as a bare recovery id and settles it as 27/28", function()
    local a = auth()
    local s = sign(a)
    local raw = s:sub(1, 64) .. string.char(s:byte(65) - 27)
    local p = decoded(v2({ auth = a, sig = raw }))
    assert.equal(s, p.signature)
    assert.equal(PAYER, x402.check(CFG, p, NOW))
  end)

  it("refuses what is not a payment header", function()
    rejects(nil, "invalid_payload")
    rejects(42, "invalid_payload")
    rejects("", "invalid_payload")
    rejects(("A"):rep(16385), "invalid_payload", "oversized")
    rejects("!!!not base64!!!", "invalid_payload", "base64")
    rejects("YWJ", "invalid_payload", "base64")                 -- truncated
    rejects(wp.base64.encode("{not json"), "invalid_payload", "JSON object")
    rejects(wp.base64.encode("42"), "invalid_payload", "JSON object")
    rejects(wp.base64.encode('"x402"'), "invalid_payload", "JSON object")
    rejects(wp.base64.encode("null"), "invalid_payload", "JSON object")
    rejects(wp.base64.encode(("["):rep(5000) .. ("]"):rep(5000)), "invalid_payload", "JSON object")
  end)

  it("refuses unknown versions", function()
    for _, ver in ipairs({ 0, 3, 7, "2", "1", false }) do
      local t = v2()
      t.x402Version = ver
      rejects(enc(t), "invalid_x402_version")
    end
    local t = v2()
    t.x402Version = nil
    rejects(enc(t), "invalid_x402_version")
    rejects(wp.base64.encode("[]"), "invalid_x402_version")
  end)

  it("refuses a v2 payload without `accepted`", function()
    for _, acc in ipairs({ cjson.null, "exact", 1 }) do
      local t = v2()
      t.accepted = acc
      rejects(enc(t), "invalid_payload", "accepted")
    end
  end)

  it("refuses a payload without signature or authorization", function()
    for _, mut in ipairs({
      function(t) t.payload = nil end,
      function(t) t.payload = "x" end,
      function(t) t.payload.signature = nil end,
      function(t) t.payload.signature = 123 end,
      function(t) t.payload.authorization = nil end,
      function(t) t.payload.authorization = "x" end,
    }) do
      local t = v2()
      mut(t)
      rejects(enc(t), "invalid_payload", "signature and authorization")
    end
  end)

  it("refuses authorization fields that are missing or not strings", function()
    for _, k in ipairs({ "from", "to", "value", "validAfter", "validBefore", "nonce" }) do
      for _, bad in ipairs({ cjson.null, 10000, true, {} }) do
        local t = v2()
        t.payload.authorization[k] = bad
        rejects(enc(t), "invalid_payload", "authorization." .. k .. " must be a string")
      end
    end
  end)

  it("refuses malformed addresses, integers and nonces", function()
    local cases = {
      { "from", "0x1234", "addresses" }, { "to", "not an address", "addresses" },
      { "to", PAY_TO .. "00", "addresses" }, { "from", "0x" .. ("zz"):rep(20), "addresses" },
      { "value", "-1", "decimal" }, { "value", "1.5", "decimal" }, { "value", "1e4", "decimal" },
      { "value", "0x2710", "decimal" }, { "value", "", "decimal" }, { "value", " 10000", "decimal" },
      { "value", ("9"):rep(79), "decimal" },
      { "validAfter", "abc", "decimal" }, { "validBefore", "1750000000.5", "decimal" },
      { "nonce", "0x" .. ("5a"):rep(31), "nonce" }, { "nonce", "0x" .. ("5a"):rep(33), "nonce" },
      { "nonce", "0x" .. ("5a"):rep(31) .. "5", "nonce" }, { "nonce", "0x" .. ("zz"):rep(32), "nonce" },
    }
    for _, c in ipairs(cases) do
      local t = v2()
      t.payload.authorization[c[1]] = c[2]
      rejects(enc(t), "invalid_payload", c[3])
    end
  end)

  it("refuses signatures that are not 65 bytes of hex", function()
    for _, s in ipairs({ "0x" .. ("11"):rep(64), "0x" .. ("11"):rep(66), "0x" .. ("xy"):rep(65), "0x", "" }) do
      local t = v2()
      t.payload.signature = s
      rejects(enc(t), "invalid_exact_evm_payload_signature")
    end
  end)
end)

describe("x402.check", function()
  it("accepts a matching v2 payment and returns the payer", function()
    assert.equal(PAYER, x402.check(CFG, decoded(v2()), NOW))
  end)

  it("accepts a matching v1 payment", function()
    assert.equal(PAYER, x402.check(CFG, decoded(v1()), NOW))
  end)

  it("compares addresses without regard to case", function()
    local a = auth({ to = PAY_TO:lower() })
    local p = decoded(v2({ auth = a, accepted = accepted({ asset = ASSET:upper():gsub("^0X", "0x"),
      payTo = PAY_TO:lower() }) }))
    assert.equal(PAYER, x402.check(merge(CFG, { pay_to = PAY_TO:upper():gsub("^0X", "0x") }), p, NOW))
  end)

  it("refuses another scheme or network", function()
    check_fails(decoded(v2({ accepted = accepted({ scheme = "upto" }) })), "unsupported_scheme")
    check_fails(decoded(v1({ scheme = "exact-permit2" })), "unsupported_scheme")
    check_fails(decoded(v2({ accepted = accepted({ network = "eip155:8453" }) })), "invalid_network")
    check_fails(decoded(v1({ network = "base-sepolia" })), "invalid_network")
  end)

  it("refuses a v2 `accepted` that is not this service's requirement", function()
    local other = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
    for _, o in ipairs({ { asset = other }, { payTo = other }, { amount = "1" }, { amount = "010000" },
      { amount = 10000 }, { asset = cjson.null } }) do
      check_fails(decoded(v2({ accepted = accepted(o) })), "invalid_payment_requirements")
    end
  end)

  it("refuses an authorization to someone else", function()
    local a = auth({ to = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" })
    check_fails(decoded(v2({ auth = a })), "invalid_exact_evm_payload_recipient_mismatch")
    check_fails(decoded(v1({ auth = a })), "invalid_exact_evm_payload_recipient_mismatch")
  end)

  it("wants the amount exactly (v2 rule), as an integer", function()
    for _, v in ipairs({ "9999", "10001", "100000", "1000", "0" }) do
      check_fails(decoded(v2({ auth = auth({ value = v }) })), "invalid_exact_evm_payload_authorization_value_mismatch")
    end
    -- leading zeros are the same uint256 (and the signature covers the number)
    local a = auth({ value = "0010000" })
    local p = decoded(v2({ auth = a }))
    assert.equal(PAYER, x402.check(CFG, p, NOW))
    local args = wp.abi.decode("(address,address,uint256,uint256,uint256,bytes32,bytes)",
      x402.settle_calldata(p):sub(5))
    assert.equal("10000", tostring(args[3]))
  end)

  it("refuses an authorization that is not valid yet", function()
    check_fails(decoded(v2({ auth = auth({ validAfter = tostring(NOW + 1) }) })),
      "invalid_exact_evm_payload_authorization_valid_after")
    -- valid from this very second
    assert.equal(PAYER, x402.check(CFG, decoded(v2({ auth = auth({ validAfter = tostring(NOW) }) })), NOW))
  end)

  it("refuses an authorization that expired or would expire before settlement", function()
    local code = "invalid_exact_evm_payload_authorization_valid_before"
    check_fails(decoded(v2({ auth = auth({ validBefore = tostring(NOW - 1) }) })), code)
    check_fails(decoded(v2({ auth = auth({ validBefore = tostring(NOW + 5) }) })), code)
    assert.equal(PAYER, x402.check(CFG, decoded(v2({ auth = auth({ validBefore = tostring(NOW + 6) }) })), NOW))
    -- an operator asks for a longer margin
    local p = decoded(v2({ auth = auth({ validBefore = tostring(NOW + 30) }) }))
    check_fails(p, code, merge(CFG, { min_validity_seconds = 60 }))
    -- the same payment, later
    check_fails(decoded(v2()), code, nil, NOW + 300)
  end)

  it("refuses a validity bound beyond uint256 instead of raising", function()
    local a = auth({ validBefore = ("9"):rep(78) })
    check_fails(decoded(v2({ auth = a, sig = ("\1"):rep(64) .. "\27" })), "invalid_payload")
  end)

  it("refuses signatures that do not recover to authorization.from", function()
    local code = "invalid_exact_evm_payload_signature"
    local a = auth()
    -- another key
    check_fails(decoded(v2({ auth = a, sig = sign(a, OTHER_KEY) })), code)
    -- signed over another amount, another nonce, another validBefore
    check_fails(decoded(v2({ auth = a, sig = sign(auth({ value = "10001" })) })), code)
    check_fails(decoded(v2({ auth = a, sig = sign(auth({ nonce = "0x" .. ("00"):rep(32) })) })), code)
    check_fails(decoded(v2({ auth = a, sig = sign(auth({ validBefore = tostring(NOW + 301) })) })), code)
    -- another EIP-712 domain: chain, token, name, version
    check_fails(decoded(v2({ auth = a, sig = sign(a, nil, { chainId = 1 }) })), code)
    check_fails(decoded(v2({ auth = a, sig = sign(a, nil, { verifyingContract = PAY_TO }) })), code)
    check_fails(decoded(v2({ auth = a, sig = sign(a, nil, { name = "USD Coin" }) })), code)
    check_fails(decoded(v2({ auth = a, sig = sign(a, nil, { version = "1" }) })), code)
    -- claiming to be someone else with a good signature of one's own
    check_fails(decoded(v2({ auth = auth({ from = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC" }), sig = sign(a) })),
      code)
    -- wp.eth.is_address takes a bare 40-hex address; it never matches a recovered one
    local bare = auth({ from = PAYER:sub(3) })
    assert.is_nil(x402.check(CFG, decoded(v2({ auth = bare, sig = sign(a) })), NOW))
    -- a flipped bit, a recovery id outside {0,1,27,28}, r = 0
    local s = sign(a)
    check_fails(decoded(v2({ auth = a, sig = s:sub(1, 10) .. string.char(bit.bxor(s:byte(11), 1)) .. s:sub(12) })),
      code)
    check_fails(decoded(v2({ auth = a, sig = s:sub(1, 64) .. "\29" })), code)
    check_fails(decoded(v2({ auth = a, sig = ("\0"):rep(32) .. s:sub(33) })), code)
  end)

  it("refuses the high-s twin of a valid signature (USDC would revert at settlement)", function()
    local a = auth()
    local s = sign(a)
    local twin = s:sub(1, 32) .. neg(s:sub(33, 64)) .. string.char(s:byte(65) == 27 and 28 or 27)
    -- the twin is a valid ecrecover signature of the same key...
    local digest = wp.eip712.transfer_with_authorization_hash({ name = "USDC", version = "2", chainId = 31337,
      verifyingContract = ASSET }, a)
    assert.equal(wp.secp256k1.recover(digest, s), wp.secp256k1.recover(digest, twin, false))
    -- ...that check() does not take
    check_fails(decoded(v2({ auth = a, sig = twin })), "invalid_exact_evm_payload_signature")
  end)
end)

describe("x402.settle_calldata", function()
  it("is transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes) of the payment", function()
    local a = auth({ value = "10000", validAfter = "1749999940", validBefore = "1750000300" })
    local p = decoded(v2({ auth = a }))
    local data = x402.settle_calldata(p)
    local sigtext = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"
    assert.equal(wp.keccak256(sigtext):sub(1, 4), data:sub(1, 4))
    assert.equal("cf092995", wp.hex(data:sub(1, 4)))    -- the selector USDC v2.2 exposes
    local args = wp.abi.decode("(address,address,uint256,uint256,uint256,bytes32,bytes)", data:sub(5))
    assert.equal(PAYER:lower(), args[1]:lower())
    assert.equal(PAY_TO:lower(), args[2]:lower())
    assert.equal("10000", tostring(args[3]))
    assert.equal("1749999940", tostring(args[4]))
    assert.equal("1750000300", tostring(args[5]))
    assert.equal(p.nonce, args[6])
    assert.equal(p.signature, args[7])
    assert.truthy(args[7]:byte(65) == 27 or args[7]:byte(65) == 28)
  end)
end)

describe("x402.check_legacy input validation (before any RPC)", function()
  -- no rpc client: a malformed hash must be refused before the chain is asked
  for _, hash in ipairs({ "0x" .. ("ab"):rep(31), "0x" .. ("ab"):rep(33), ("ab"):rep(33),
    "0x" .. ("ab"):rep(31) .. "zz", "0x" .. ("ab"):rep(31) .. "a", "", "0x", " 0x" .. ("ab"):rep(32) }) do
    it(("refuses %q"):format(hash:sub(1, 12)), function()
      local info, err, code, reason = x402.check_legacy({ pay_to = PAY_TO, amount_wei = "1" }, hash, nil)
      assert.is_nil(info)
      assert.truthy(err:find("32-byte transaction hash", 1, true))
      assert.equal("EPAYMENT", code)             -- the client's error, never the infrastructure's
      assert.equal("invalid_payment", reason)
    end)
  end
  it("refuses non-strings", function()
    for _, v in ipairs({ 1, true, {} }) do
      local info, err, code = x402.check_legacy({}, v, nil)
      assert.is_nil(info)
      assert.is_string(err)
      assert.equal("EPAYMENT", code)
    end
  end)
end)
