-- SPDX-License-Identifier: MIT
-- On-chain attestations and payments end to end: a real anvil (npm), the
-- contracts deployed by contracts/scripts, the real controller, x402
-- payments signed here with the core's EIP-712 and secp256k1, the legacy
-- tx-hash mode, replay across restarts and processes, a reorganised
-- payment, and an RPC outage (through an in-process proxy that can be cut).
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"
local cjson = require "cjson.safe"

local SHA4 = wp.hex(wp.sha256("4"))
local SIGNER_KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"   -- anvil #0
local PAYER_KEY = wp.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d") -- anvil #1
local PAYER = wp.eth.address(wp.secp256k1.pubkey(PAYER_KEY))
local OTHER_KEY = wp.unhex("5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a") -- anvil #2
local LEGACY_PAYER = wp.eth.address(wp.secp256k1.pubkey(OTHER_KEY))

local anvil, anvil_url, dep, dir
local proxy, proxy_up = nil, true

local function rpc() return wp.rpc.new(anvil_url) end

local function start_anvil()
  local a = h.start_anvil()
  anvil, anvil_url, dep, dir = a.proc, a.url, a.dep, a.dir
  -- the JSON-RPC proxy the controller talks to: cut it to simulate an outage
  proxy = assert(host.http_listen { port = 0, handler = function(req)
    if not proxy_up then return 503, {}, "node unavailable" end
    local st, _, body = host.http_request { method = "POST", url = anvil_url, body = req.body,
      headers = { ["content-type"] = "application/json" }, timeout = 30 }
    if not st then return 502, {}, "upstream failed" end
    return st, { ["content-type"] = "application/json" }, body
  end })
  local f = assert(io.open(dir .. "/signer.key", "w"))
  f:write(SIGNER_KEY, "\n")
  f:close()
  os.execute("chmod 600 " .. dir .. "/signer.key")
end

local function config(extra)
  return ([[return {
  state_dir = "%s/var",
  policies = { task_types = {}, code_patterns = {}, worker_threshold = {}, rate_limit = {},
    circuit_breaker = { config = { failure_threshold = 3 } } },
  chain = { enabled = true, rpc = "http://127.0.0.1:%d", deployment = "%s/dep.json",
    key_file = "%s/signer.key", wait_receipt = %s },
  payments = { enabled = %s },
  %s
}]]):format(dir, proxy.port, dir, dir, extra and extra.wait or "15", extra and extra.payments or "true",
    extra and extra.more or "")
end

local function body(code, expected)
  return cjson.encode { taskType = "code-execution", language = "lua", code = code or "print(2 + 2)",
    expectedHash = expected or SHA4 }
end

-- an x402 v2 payment from PAYER; opts override any part (a key other than
-- PAYER's signs for PAYER: a bad signature)
local function payment(opts)
  opts = opts or {}
  opts.key, opts.from = opts.key or PAYER_KEY, opts.from or PAYER
  return h.x402_payment(dep, opts)
end

local function token_call(sig, args)
  local data = assert(wp.abi.encode_call(sig, args))
  local r = assert(rpc():call("eth_call", { { to = dep.token.address, data = "0x" .. wp.hex(data) }, "latest" }))
  return wp.unhex(r)
end

local function balance(addr)
  return tostring(wp.abi.decode("(uint256)", token_call("balanceOf(address)", { addr }))[1])
end

local function verify(srv, headers, b)
  local st, hd, resp = h.http("POST", srv.url .. "/verify", b or body(), headers)
  return st, cjson.decode(resp or "") or resp, hd
end

describe("chain and payments #integration", function()
  local srv
  setup(function()
    start_anvil()
    srv = h.start_controller(config(), { dir = dir })
  end)
  teardown(function()
    if srv then h.stop(srv) end
    if anvil then anvil:kill(15); anvil:wait() end
    if proxy then proxy:close() end
  end)

  it("GET /info carries the chain and payment parameters", function()
    local _, _, b = h.http("GET", srv.url .. "/info")
    local info = cjson.decode(b)
    assert.same({ chainId = 31337, rpc = "http://127.0.0.1:" .. proxy.port,
      registry = dep.contracts.ValidationRegistry.address, uptimeRegistry = dep.contracts.UptimeRegistry.address,
      verifier = dep.deployer }, info.chain)
    assert.same({ network = "eip155:31337", asset = dep.token.address, amount = "10000", payTo = dep.deployer },
      info.payment.x402)
    assert.same({ payTo = dep.deployer, amountWei = "1000000000000000", confirmations = 2 }, info.payment.txhash)
  end)

  it("402 without payment: PAYMENT-REQUIRED (v2, base64) and the v1 body", function()
    local st, r, hd = verify(srv)
    assert.equal(402, st)
    local req = cjson.decode(wp.base64.decode(hd["payment-required"]))
    assert.equal(2, req.x402Version)
    assert.equal("exact", req.accepts[1].scheme)
    assert.equal("10000", req.accepts[1].amount)
    assert.equal(dep.token.address, req.accepts[1].asset)
    assert.equal(1, r.x402Version)
    assert.equal("10000", r.accepts[1].maxAmountRequired)
    assert.equal("EPAYMENT", r.code)
  end)

  it("x402: paid, verified, attested on chain, settled after the verdict", function()
    local before = balance(dep.deployer)
    local pay = payment()
    local st, r, hd = verify(srv, { ["PAYMENT-SIGNATURE"] = pay })
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
    assert.matches("^0x%x+$", r.registryTxHash)
    local resp = cjson.decode(wp.base64.decode(hd["payment-response"]))
    assert.is_true(resp.success)
    assert.equal(PAYER:lower(), resp.payer:lower())
    assert.equal("eip155:31337", resp.network)
    assert.equal(tonumber(before) + 10000, tonumber(balance(dep.deployer)))
    -- the attestation reads back from the registry
    local data = assert(wp.abi.encode_call("getLatestAttestation(bytes32)", { wp.unhex(r.taskHash) }))
    local raw = assert(rpc():call("eth_call", { { to = dep.contracts.ValidationRegistry.address,
      data = "0x" .. wp.hex(data) }, "latest" }))
    local att = wp.abi.decode("((bytes32,address,string,bool,uint256,bytes))", wp.unhex(raw))[1]
    assert.equal(r.taskHash, wp.hex(att[1]))
    assert.equal(dep.deployer:lower(), att[2]:lower())
    assert.equal("reexecution-v1-code-execution", att[3])
    assert.is_true(att[4])
    assert.equal(r.jobId, cjson.decode(att[6]).jobId)
  end)

  it("INVALID verdicts are attested and charged too", function()
    local st, r, hd = verify(srv, { ["PAYMENT-SIGNATURE"] = payment() }, body("print(5)"))
    assert.equal(200, st)
    assert.equal("INVALID", r.result)
    assert.matches("^0x", r.registryTxHash)
    assert.is_true(cjson.decode(wp.base64.decode(hd["payment-response"])).success)
  end)

  describe("x402 rejects", function()
    local function rejected(headers, reason)
      local st, r = verify(srv, headers)
      assert.equal(402, st, cjson.encode(r))
      assert.matches(reason, r.details.payment, 1, true)
    end
    it("a bad signature", function()
      rejected({ ["PAYMENT-SIGNATURE"] = payment { key = OTHER_KEY } }, "invalid_exact_evm_payload_signature")
    end)
    it("the wrong chain", function()
      rejected({ ["PAYMENT-SIGNATURE"] = payment { network = "eip155:1" } }, "invalid_network")
      rejected({ ["PAYMENT-SIGNATURE"] = payment { chain_id = 1 } }, "invalid_exact_evm_payload_signature")
    end)
    it("an expired or not yet valid authorization", function()
      rejected({ ["PAYMENT-SIGNATURE"] = payment { valid_before = os.time() - 5 } }, "valid_before")
      rejected({ ["PAYMENT-SIGNATURE"] = payment { valid_after = os.time() + 3600 } }, "valid_after")
    end)
    it("an amount or recipient mismatch", function()
      rejected({ ["PAYMENT-SIGNATURE"] = payment { value = "9999" } }, "value_mismatch")
      rejected({ ["PAYMENT-SIGNATURE"] = payment { to = PAYER } }, "recipient_mismatch")
    end)
    it("malformed base64 or JSON", function()
      rejected({ ["PAYMENT-SIGNATURE"] = "%%%not-base64%%%" }, "invalid_payload")
      rejected({ ["PAYMENT-SIGNATURE"] = wp.base64.encode("{bad json") }, "invalid_payload")
      rejected({ ["PAYMENT-SIGNATURE"] = wp.base64.encode('{"x402Version":7}') }, "invalid_x402_version")
    end)
    it("a replayed nonce", function()
      local pay = payment()
      assert.equal(200, (verify(srv, { ["PAYMENT-SIGNATURE"] = pay })))
      rejected({ ["PAYMENT-SIGNATURE"] = pay }, "nonce already used")
    end)
    it("accepts v1 X-PAYMENT and answers X-PAYMENT-RESPONSE", function()
      local _, auth = payment()
      local p = payment { nonce = auth.nonce:gsub("^0x%x", "0xa") }
      local v2 = cjson.decode(wp.base64.decode(p))
      local v1 = { x402Version = 1, scheme = "exact", network = "eip155:31337", payload = v2.payload }
      local st, r, hd = verify(srv, { ["X-PAYMENT"] = wp.base64.encode(cjson.encode(v1)) })
      assert.equal(200, st, cjson.encode(r))
      assert.truthy(hd["x-payment-response"])
    end)
  end)

  it("the official x402 client (@x402/fetch + @x402/evm) pays the controller", function()
    local out, st = h.run("/usr/bin/env", { "node", "examples/x402-client.cjs", srv.url .. "/verify", anvil_url })
    assert.equal(0, st.exit_status, out .. st.stderr)
    local r = cjson.decode(out)
    assert.equal(200, r.status)
    assert.equal("VALID", r.result.result)
    assert.matches("^0x%x+$", r.result.registryTxHash)
    assert.is_true(r.paymentResponse.success)
  end)

  it("x402 through an external facilitator (a stand-in running @x402/evm's facilitator)", function()
    local fp, buf = h.spawn_until({ file = "/usr/bin/env",
      args = { "node", "spec/fixtures/x402/facilitator.cjs", anvil_url }, timeout = 600 },
      "listening on", "facilitator")
    local furl = buf:match("(http://127%.0%.0%.1:%d+)")
    local fsrv = h.start_controller(config { more = "" }:gsub("payments = { enabled = true }",
      ('payments = { enabled = true, x402 = { facilitator = "%s" } }'):format(furl)), { dir = dir })
    local before = balance(dep.deployer)
    local st, r, hd = verify(fsrv, { ["PAYMENT-SIGNATURE"] = payment() })
    local st2, r2 = verify(fsrv, { ["PAYMENT-SIGNATURE"] = payment { value = "1" } })
    h.stop(fsrv)
    fp:kill(15)
    fp:wait()
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
    local resp = cjson.decode(wp.base64.decode(hd["payment-response"]))
    assert.is_true(resp.success)
    assert.equal(tonumber(before) + 10000, tonumber(balance(dep.deployer)))
    assert.equal(402, st2)
    assert.matches("mismatch", r2.details.payment)
  end)

  describe("legacy tx-hash mode", function()
    local function pay_native(value)
      local r = rpc()
      local nonce = assert(r:call("eth_getTransactionCount", { LEGACY_PAYER, "pending" }))
      local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = tonumber(nonce), maxPriorityFeePerGas = 1e9,
        maxFeePerGas = 3e10, gas = 21000, to = dep.deployer, value = value or "1000000000000000", data = "" },
        OTHER_KEY))
      return assert(r:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) }))
    end
    local function mine(n) assert(rpc():call("anvil_mine", { n })) end

    it("needs 2 confirmations, then answers; the hash is consumed for good", function()
      local tx = pay_native()
      local st, r = verify(srv, { ["X-402-Payment"] = tx })
      assert.equal(402, st)
      assert.matches("1 confirmation", r.details.payment)
      mine(1)
      st, r = verify(srv, { ["X-402-Payment"] = tx })
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result)
      st, r = verify(srv, { ["X-402-Payment"] = tx })
      assert.equal(402, st)
      assert.matches("already used", r.details.payment)
      -- across a restart, and from a second controller process on the same store
      h.stop(srv)
      srv = h.start_controller(config(), { dir = dir })
      local other = h.start_controller(config(), { dir = dir })
      assert.equal(402, (verify(srv, { ["X-402-Payment"] = tx })))
      assert.equal(402, (verify(other, { ["X-402-Payment"] = tx })))
      h.stop(other)
    end)

    it("rejects the wrong amount and unknown hashes", function()
      local tx = pay_native("999")
      mine(2)
      local st, r = verify(srv, { ["X-402-Payment"] = tx })
      assert.equal(402, st)
      assert.matches("the price is", r.details.payment)
      st = verify(srv, { ["X-402-Payment"] = "0x" .. ("ab"):rep(32) })
      assert.equal(402, st)
      st = verify(srv, { ["X-402-Payment"] = "not-a-hash" })
      assert.equal(402, st)
      -- a node refuses "0X…" (invalid params): still the client's 402, never a 503 infra failure
      st = verify(srv, { ["X-402-Payment"] = "0X" .. ("AB"):rep(32) })
      assert.equal(402, st)
    end)

    it("does not honour a payment whose block was reorganised away", function()
      local snap = assert(rpc():call("evm_snapshot", {}))
      local tx = pay_native()
      mine(2)
      assert(rpc():call("evm_revert", { snap }))
      mine(3)     -- a different chain of the same height and more
      local st, r = verify(srv, { ["X-402-Payment"] = tx })
      assert.equal(402, st, cjson.encode(r))
    end)
  end)

  describe("failures are never charged", function()
    it("x402: an infrastructure failure leaves the authorization unused", function()
      local broken = h.start_controller(config { more = 'worker = { path = "/nonexistent/workproof-worker" },' },
        { dir = dir })
      local pay, auth = payment()
      local before = balance(PAYER)
      local st, r, hd = verify(broken, { ["PAYMENT-SIGNATURE"] = pay })
      h.stop(broken)
      assert.equal(200, st)
      assert.equal("ERROR", r.result)
      assert.is_true(r.refundEligible)
      assert.is_nil(hd["payment-response"])
      assert.equal(before, balance(PAYER))
      local used = token_call("authorizationState(address,bytes32)", { PAYER, wp.unhex(auth.nonce) })
      assert.equal(0, used:byte(32))
      -- and the same authorization can pay for a retry elsewhere
      local st2, r2 = verify(srv, { ["PAYMENT-SIGNATURE"] = pay })
      assert.equal(200, st2, cjson.encode(r2))
      assert.equal("VALID", r2.result, cjson.encode(r2))
    end)

    it("legacy: an infrastructure failure is refunded to the payer", function()
      local broken = h.start_controller(config { more = 'worker = { path = "/nonexistent/workproof-worker" },' },
        { dir = dir })
      local r0 = rpc()
      local nonce = assert(r0:call("eth_getTransactionCount", { LEGACY_PAYER, "pending" }))
      local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = tonumber(nonce), maxPriorityFeePerGas = 1e9,
        maxFeePerGas = 3e10, gas = 21000, to = dep.deployer, value = "1000000000000000", data = "" }, OTHER_KEY))
      local tx = assert(r0:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) }))
      assert(r0:call("anvil_mine", { 2 }))
      local st, r = verify(broken, { ["X-402-Payment"] = tx })
      h.stop(broken)
      assert.equal(200, st, cjson.encode(r))
      assert.equal("ERROR", r.result)
      assert.is_true(r.refundEligible)
      assert.matches("^0x%x+$", r.refundTxHash)
      local rt = assert(r0:call("eth_getTransactionByHash", { r.refundTxHash }))
      assert.equal(LEGACY_PAYER:lower(), rt.to:lower())
      assert.equal("1000000000000000", wp.abi.to_decimal(rt.value))
    end)

    it("RPC down: payments cannot be verified (503, not charged), then the breaker opens", function()
      local fresh = h.start_controller(config(), { dir = dir })   -- a breaker with no history
      proxy_up = false
      local codes = {}
      for i = 1, 4 do
        local st, r = verify(fresh, { ["PAYMENT-SIGNATURE"] = payment() })
        codes[i] = r.code
        assert.equal(503, st)
      end
      proxy_up = true
      h.stop(fresh)
      assert.same({ "EPAYMENT_UNAVAILABLE", "EPAYMENT_UNAVAILABLE", "EPAYMENT_UNAVAILABLE", "EBREAKER" }, codes)
    end)
  end)

  it("ERC-8004: a request's requestHash is answered on the Validation Registry too", function()
    -- a second deployment whose registry forwards to an ERC-8004 Validation
    -- Registry (a stand-in contract: the real one is not on this chain)
    local _, st0 = h.run("/usr/bin/env", { "node", "contracts/scripts/deploy.js", "--rpc", anvil_url,
      "--out", dir .. "/dep8004.json", "--erc8004", "mock", "--quiet" })
    assert.equal(0, st0.exit_status, st0.stderr)
    local d8 = cjson.decode(h.read(dir .. "/dep8004.json"))
    local mock = d8.erc8004ValidationRegistry
    local request = wp.sha256("agent request " .. tostring(wp.now()))
    local call = assert(wp.abi.encode_call("validationRequest(address,uint256,string,bytes32)",
      { d8.contracts.ValidationRegistry.address, 7, "ipfs://request", request }))
    local r0 = rpc()
    assert(r0:call("eth_sendTransaction", { { from = LEGACY_PAYER, to = mock, data = "0x" .. wp.hex(call) } }))
    local cfg = config { payments = "false" }:gsub('deployment = "[^"]*"', 'deployment = "' .. dir .. '/dep8004.json"')
    local srv8 = h.start_controller(cfg, { dir = dir })
    local st, r = verify(srv8, nil, cjson.encode { taskType = "code-execution", language = "lua",
      code = "print(2 + 2) -- 8004", expectedHash = SHA4, requestHash = "0x" .. wp.hex(request) })
    h.stop(srv8)
    assert.equal(200, st, cjson.encode(r))
    assert.matches("^0x%x+$", r.registryTxHash)
    local q = assert(wp.abi.encode_call("getValidationStatus(bytes32)", { request }))
    local raw = assert(r0:call("eth_call", { { to = mock, data = "0x" .. wp.hex(q) }, "latest" }))
    local v = wp.abi.decode("(address,uint256,uint8,bytes32,string,uint256)", wp.unhex(raw))
    assert.equal(d8.contracts.ValidationRegistry.address:lower(), v[1]:lower())
    assert.equal("100", tostring(v[3]))
    assert.equal("reexecution-v1-code-execution", v[5])
  end)

  it("attestations queue during an RPC outage and drain after recovery", function()
    local free = h.start_controller(config { payments = "false", wait = "1" }, { dir = dir })
    proxy_up = false
    local st, r = verify(free, nil, body("print(2 + 2) -- outage"))
    assert.equal(200, st)
    assert.equal("VALID", r.result)
    assert.is_nil(r.registryTxHash)
    assert.equal("pending", r.attestation)
    proxy_up = true
    local count
    for _ = 1, 100 do
      local data = assert(wp.abi.encode_call("getAttestationCountForTask(bytes32)", { wp.unhex(r.taskHash) }))
      local raw = rpc():call("eth_call", { { to = dep.contracts.ValidationRegistry.address,
        data = "0x" .. wp.hex(data) }, "latest" })
      count = raw and tonumber(wp.abi.decode("(uint256)", wp.unhex(raw))[1])
      if count == 1 then break end
      wp.sleep(0.2)
    end
    local metrics
    for _ = 1, 50 do   -- the row is marked mined right after its receipt is seen
      metrics = select(3, h.http("GET", free.url .. "/metrics"))
      if metrics:find("wp_outbox_pending 0", 1, true) then break end
      wp.sleep(0.1)
    end
    h.stop(free)
    assert.equal(1, count)
    assert.matches("wp_outbox_pending 0", metrics)
  end)
end)
