-- SPDX-License-Identifier: MIT
--- x402 payments, the `exact` EVM scheme (EIP-3009), v2 headers with v1
-- accepted, verified before any worker is spawned and settled only after a
-- VALID or INVALID verdict; and the seed's legacy mode (the hash of a native
-- transfer in `X-402-Payment`).
--
-- cfg (config.payments):
--   network "eip155:31337", chain_id, asset (token address), amount
--   (atomic units, decimal string), pay_to, token_name, token_version,
--   max_timeout_seconds, legacy = { pay_to, amount_wei, confirmations }
local wp = require "workproof"
local cjson = require "cjson.safe"

local type, tostring, tonumber, ipairs = type, tostring, tonumber, ipairs

local _M = {}

local function lower(s) return type(s) == "string" and s:lower() or s end

-- Errors (docs/conventions.md §2): nil, "ECODE: reason: text", "ECODE",
-- reason. ECODE is EPAYMENT when the payment is refused (402) and
-- EPAYMENT_UNAVAILABLE when the chain or facilitator cannot be asked (an
-- infrastructure failure, never charged: workproof.errors); reason is the
-- x402 error reason the 402 answer names ("insufficient_funds", ...).
local function refused(reason, text)
  return nil, "EPAYMENT: " .. reason .. ": " .. text, "EPAYMENT", reason
end
local function unavailable(text)
  return nil, "EPAYMENT_UNAVAILABLE: " .. text, "EPAYMENT_UNAVAILABLE", "unexpected_verify_error"
end

local function b64json(t)
  return wp.base64.encode(cjson.encode(t))
end

local function accepts(cfg)
  return {
    scheme = "exact", network = cfg.network, amount = cfg.amount, asset = cfg.asset, payTo = cfg.pay_to,
    maxTimeoutSeconds = cfg.max_timeout_seconds or 300,
    extra = { name = cfg.token_name, version = cfg.token_version },
  }
end

--- The v2 PaymentRequired object for a resource URL.
function _M.required(cfg, url, err)
  return {
    x402Version = 2,
    error = err or "payment required",
    resource = { url = url, description = "WorkProof re-execution verification", mimeType = "application/json" },
    accepts = { accepts(cfg) },
  }
end

--- The v1 body (PaymentRequirementsResponse) for old clients.
function _M.required_v1(cfg, url, err)
  local a = accepts(cfg)
  return {
    x402Version = 1,
    error = err or "X-PAYMENT header is required",
    accepts = { {
      scheme = "exact", network = cfg.network, maxAmountRequired = cfg.amount, asset = cfg.asset,
      payTo = cfg.pay_to, resource = url, description = "WorkProof re-execution verification",
      mimeType = "application/json", maxTimeoutSeconds = a.maxTimeoutSeconds, extra = a.extra,
    } },
  }
end

--- Header value for PAYMENT-REQUIRED.
function _M.required_header(cfg, url, err)
  return b64json(_M.required(cfg, url, err))
end

--- Header value for PAYMENT-RESPONSE / X-PAYMENT-RESPONSE.
function _M.response_header(t)
  return b64json(t)
end

--- Decode a PAYMENT-SIGNATURE (v2) or X-PAYMENT (v1) header value.
-- Returns the normalised payment { version, scheme, network, signature,
-- authorization = {from,to,value,validAfter,validBefore,nonce}, raw } or
-- nil, "EPAYMENT: ...", "EPAYMENT", reason (an x402 error reason).
function _M.decode(value)
  if type(value) ~= "string" or #value == 0 or #value > 16384 then
    return refused("invalid_payload", "empty or oversized payment header")
  end
  local text = wp.base64.decode(value) or wp.base64.decode(value, "url")
  if not text then return refused("invalid_payload", "payment header is not base64") end
  local p = cjson.decode(text)
  if type(p) ~= "table" then return refused("invalid_payload", "payment header is not a JSON object") end
  local version = p.x402Version
  local scheme, network
  if version == 2 then
    if type(p.accepted) ~= "table" then return refused("invalid_payload", "v2 payload without `accepted`") end
    scheme, network = p.accepted.scheme, p.accepted.network
  elseif version == 1 then
    scheme, network = p.scheme, p.network
  else
    return refused("invalid_x402_version", "x402Version must be 1 or 2")
  end
  local pl = p.payload
  local a = type(pl) == "table" and pl.authorization
  if type(a) ~= "table" or type(pl.signature) ~= "string" then
    return refused("invalid_payload", "payload needs signature and authorization")
  end
  for _, k in ipairs({ "from", "to", "value", "validAfter", "validBefore", "nonce" }) do
    if type(a[k]) ~= "string" then
      return refused("invalid_payload", "authorization." .. k .. " must be a string")
    end
  end
  if not (wp.eth.is_address(a.from) and wp.eth.is_address(a.to)) then
    return refused("invalid_payload", "authorization.from/to must be addresses")
  end
  for _, k in ipairs({ "value", "validAfter", "validBefore" }) do
    if not a[k]:find("^%d+$") or #a[k] > 78 then
      return refused("invalid_payload", "authorization." .. k .. " must be a decimal integer")
    end
  end
  local nonce = wp.unhex(a.nonce)
  if not nonce or #nonce ~= 32 then
    return refused("invalid_payload", "authorization.nonce must be 32 bytes of hex")
  end
  local sig = wp.unhex(pl.signature)
  if not sig or #sig ~= 65 then
    return refused("invalid_exact_evm_payload_signature", "signature must be 65 bytes")
  end
  -- v as a bare recovery id (0/1) is the same signature, but USDC's ECRecover
  -- (and TestUSDC) take only 27/28: settle with that form, or the transfer
  -- reverts after the work is done
  local v = sig:byte(65)
  if v == 0 or v == 1 then sig = sig:sub(1, 64) .. string.char(v + 27) end
  return {
    version = version, scheme = scheme, network = network, accepted = p.accepted,
    signature = sig, authorization = a, nonce = nonce, raw = p,
  }
end

-- compare decimal strings as integers (no leading zeros after tonumber-free normalisation)
local function dec_norm(s) return (s:gsub("^0+(%d)", "%1")) end
local function dec_cmp(a, b)
  a, b = dec_norm(a), dec_norm(b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end

--- Check everything that can be checked without the chain. Returns the
-- payer address or nil, "EPAYMENT: ...", "EPAYMENT", reason. `now` is Unix
-- seconds.
function _M.check(cfg, pay, now)
  if pay.scheme ~= "exact" then return refused("unsupported_scheme", "only the exact scheme is accepted") end
  if pay.network ~= cfg.network then
    return refused("invalid_network",
      ("payment is for %s, this service takes %s"):format(tostring(pay.network), cfg.network))
  end
  local a = pay.authorization
  if pay.version == 2 then
    local acc = pay.accepted
    if lower(acc.asset) ~= lower(cfg.asset) or lower(acc.payTo) ~= lower(cfg.pay_to) or acc.amount ~= cfg.amount then
      return refused("invalid_payment_requirements", "`accepted` does not match this service's requirements")
    end
  end
  if lower(a.to) ~= lower(cfg.pay_to) then
    return refused("invalid_exact_evm_payload_recipient_mismatch", "authorization.to is not payTo")
  end
  if dec_cmp(a.value, cfg.amount) ~= 0 then
    return refused("invalid_exact_evm_payload_authorization_value_mismatch", "the amount must match exactly")
  end
  local after, before = tonumber(a.validAfter), tonumber(a.validBefore)
  if not after or after > now then
    return refused("invalid_exact_evm_payload_authorization_valid_after", "authorization not valid yet")
  end
  -- settlement happens after the verdict: the authorization must outlive the job
  if not before or before < now + (cfg.min_validity_seconds or 6) then
    return refused("invalid_exact_evm_payload_authorization_valid_before",
      "authorization expired or expires too soon")
  end
  local digest, derr = wp.eip712.transfer_with_authorization_hash({
    name = cfg.token_name, version = cfg.token_version, chainId = cfg.chain_id, verifyingContract = cfg.asset,
  }, { from = a.from, to = a.to, value = a.value, validAfter = a.validAfter, validBefore = a.validBefore,
       nonce = a.nonce })
  if not digest then return refused("invalid_payload", tostring(derr)) end
  local pub = wp.secp256k1.recover(digest, pay.signature)
  if not pub or lower(wp.eth.address(pub)) ~= lower(a.from) then
    return refused("invalid_exact_evm_payload_signature", "the signature does not recover to authorization.from")
  end
  return a.from
end

local function eth_call(rpc, to, sig, args)
  local data = assert(wp.abi.encode_call(sig, args))
  local r, err = rpc:call("eth_call", { { to = to, data = "0x" .. wp.hex(data) }, "latest" })
  if not r then return nil, err end
  return wp.unhex(r)
end

--- The on-chain checks: the nonce unused and the balance sufficient.
-- Returns true, or nil, err, code, reason: code EPAYMENT when the payment is
-- refused, EPAYMENT_UNAVAILABLE (reason "unexpected_verify_error") when the
-- chain cannot be asked.
function _M.check_chain(cfg, pay, rpc)
  local a = pay.authorization
  local used, err = eth_call(rpc, cfg.asset, "authorizationState(address,bytes32)", { a.from, pay.nonce })
  if not used then return unavailable(tostring(err)) end
  if used:byte(32) ~= 0 then
    return refused("invalid_transaction_state", "authorization nonce already used")
  end
  local bal, berr = eth_call(rpc, cfg.asset, "balanceOf(address)", { a.from })
  if not bal then return unavailable(tostring(berr)) end
  local v = wp.abi.decode("(uint256)", bal)
  if not v or dec_cmp(tostring(v[1]), a.value) < 0 then
    return refused("insufficient_funds", "the payer's balance is below the amount")
  end
  return true
end

--- Calldata for the settlement: transferWithAuthorization(..., bytes signature).
function _M.settle_calldata(pay)
  local a = pay.authorization
  return assert(wp.abi.encode_call(
    "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)",
    { a.from, a.to, a.value, a.validAfter, a.validBefore, pay.nonce, pay.signature }))
end

--- Ask an external facilitator: path "/verify" or "/settle". Returns its
-- decoded answer, or nil, "EPAYMENT_UNAVAILABLE: ...", "EPAYMENT_UNAVAILABLE"
-- when it cannot be reached or answers nonsense.
function _M.facilitator(cfg, path, pay)
  local host = require "workproof.host"
  local body = cjson.encode { x402Version = pay.version, paymentPayload = pay.raw,
    paymentRequirements = accepts(cfg) }
  local st, hdr, resp = host.http_request { method = "POST", url = cfg.facilitator .. path, body = body,
    headers = { ["content-type"] = "application/json" }, timeout = 60 }
  if not st then return unavailable("facilitator: " .. tostring(hdr)) end   -- (nil, err)
  local r = cjson.decode(resp or "")
  if st ~= 200 or type(r) ~= "table" then
    return unavailable(("facilitator: %s answered %s"):format(path, tostring(st)))
  end
  return r
end

---------------------------------------------------------------------------
-- the legacy mode: X-402-Payment: <tx hash of a native transfer>

--- Verify a legacy payment hash. lcfg = { pay_to, amount_wei, confirmations }.
-- Returns { payer, value, block, hash } or nil, err, code, reason (reason
-- "invalid_payment"; code EPAYMENT_UNAVAILABLE when the chain could not be
-- asked).
function _M.check_legacy(lcfg, hash, rpc)
  if type(hash) ~= "string" or not hash:lower():find("^0x%x+$") or #hash ~= 66 then
    return refused("invalid_payment", "X-402-Payment must be a 0x-prefixed 32-byte transaction hash")
  end
  hash = hash:lower()   -- a node refuses "0X…": that is the client's error, not the chain's
  local tx, err = rpc:call("eth_getTransactionByHash", { hash })
  if err then return unavailable("cannot read the transaction: " .. tostring(err)) end
  if type(tx) ~= "table" then return refused("invalid_payment", "no such transaction") end
  if lower(tx.to) ~= lower(lcfg.pay_to) then
    return refused("invalid_payment", "the transaction does not pay this service")
  end
  local value = wp.abi.to_decimal(tx.value)
  if dec_cmp(value, lcfg.amount_wei) ~= 0 then
    return refused("invalid_payment",
      ("the transaction pays %s wei, the price is %s wei"):format(value, lcfg.amount_wei))
  end
  local rc, rerr = rpc:call("eth_getTransactionReceipt", { hash })
  if rerr then return unavailable("cannot read the receipt: " .. tostring(rerr)) end
  if type(rc) ~= "table" then return refused("invalid_payment", "the transaction is not mined yet") end
  if tonumber(rc.status) ~= 1 then return refused("invalid_payment", "the transaction failed") end
  local head, herr = rpc:call("eth_blockNumber", {})
  if not head then return unavailable("cannot read the head: " .. tostring(herr)) end
  local confirmations = tonumber(head) - tonumber(rc.blockNumber) + 1
  if confirmations < (lcfg.confirmations or 2) then
    return refused("invalid_payment",
      ("%d confirmation(s), %d required"):format(confirmations, lcfg.confirmations or 2))
  end
  -- the receipt's block must still be the canonical one (a reorg drops it)
  local blk, berr = rpc:call("eth_getBlockByNumber", { rc.blockNumber, false })
  if berr then return unavailable("cannot read the block: " .. tostring(berr)) end
  if type(blk) ~= "table" or lower(blk.hash) ~= lower(rc.blockHash) then
    return refused("invalid_payment", "the payment's block is no longer canonical (reorganised)")
  end
  return { payer = tx.from, value = value, block = tonumber(rc.blockNumber), hash = hash }
end

return _M
