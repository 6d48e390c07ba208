-- SPDX-License-Identifier: MIT
--- A paid verification with the project's own tools, then the attestation
-- read back from the registry:
--   build/workproof run examples/pay.lua [URL] [RPC]
-- Pays with x402 (EIP-3009, TestUSDC) from anvil account #1.
local wp = require "workproof"
local host = require "workproof.host"
local cjson = require "cjson"

local url = arg[1] or "http://127.0.0.1:8402"
local rpc = wp.rpc.new(arg[2] or "http://127.0.0.1:8545")
local KEY = wp.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")

local function post(headers, body)
  local h = { ["content-type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  return host.http_request { method = "POST", url = url .. "/verify", headers = h, body = body, timeout = 90 }
end

local body = cjson.encode { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
  expectedHash = wp.hex(wp.sha256("4")) }

-- 1. ask: 402 with the requirements in PAYMENT-REQUIRED
local st, hd = assert(post(nil, body))
assert(st == 402, "expected 402, got " .. tostring(st))
local req = cjson.decode(wp.base64.decode(hd["payment-required"]))
local acc = req.accepts[1]
print(("402: pay %s units of %s to %s on %s"):format(acc.amount, acc.asset, acc.payTo, acc.network))

-- 2. sign an EIP-3009 TransferWithAuthorization for exactly that
local now = os.time()
local auth = { from = wp.eth.address(wp.secp256k1.pubkey(KEY)), to = acc.payTo, value = acc.amount,
  validAfter = tostring(now - 60), validBefore = tostring(now + acc.maxTimeoutSeconds),
  nonce = "0x" .. wp.hex(wp.sha256(tostring(now) .. tostring(host.now()))) }
local digest = assert(wp.eip712.transfer_with_authorization_hash({ name = acc.extra.name,
  version = acc.extra.version, chainId = tonumber(acc.network:match("%d+$")), verifyingContract = acc.asset }, auth))
local sig = wp.secp256k1.sign(KEY, digest)
sig = sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
local payment = wp.base64.encode(cjson.encode { x402Version = 2, accepted = acc,
  payload = { signature = "0x" .. wp.hex(sig), authorization = auth } })

-- 3. retry with PAYMENT-SIGNATURE
local st2, hd2, resp = assert(post({ ["payment-signature"] = payment }, body))
local r = cjson.decode(resp)
print(("%d: %s, registryTxHash %s"):format(st2, tostring(r.result), tostring(r.registryTxHash)))
if hd2["payment-response"] then
  print("PAYMENT-RESPONSE: " .. wp.base64.decode(hd2["payment-response"]))
end

-- 4. read the attestation back from the registry
local info = cjson.decode(select(3, host.http_request { url = url .. "/info" }))
local call = assert(wp.abi.encode_call("getLatestAttestation(bytes32)", { wp.unhex(r.taskHash) }))
local raw = assert(rpc:call("eth_call", { { to = info.chain.registry, data = "0x" .. wp.hex(call) }, "latest" }))
local a = wp.abi.decode("((bytes32,address,string,bool,uint256,bytes))", wp.unhex(raw))[1]
print(("attestation: task %s verifier %s method %s result %s at %s"):format(wp.hex(a[1]), a[2], a[3],
  tostring(a[4]), a[5]))
print("proofData: " .. a[6])
return st2 == 200 and 0 or 1
