-- SPDX-License-Identifier: MIT
--- Payments: x402 (EIP-3009 `exact`, v2 and v1 headers, on our own or
-- through a facilitator) and the legacy tx-hash mode. Verified before any
-- worker spawns (the pay phase); settled only after a VALID / INVALID
-- verdict, refunded (legacy) or released (x402) when the host failed — an
-- infrastructure failure is never charged (the finally phase).
--
-- Replay records (table `payments`) are consumed with a primary key, so a
-- payment is used once across restarts and host processes, and belong to
-- the chain they were made on: keys start with the chain's scope
-- (eip155:<id>:<genesis hash>), so a fresh development chain starts clean
-- while a real chain's records stay forever.
local wp = require "workproof"
local host = require "workproof.host"
local x402 = require "workproof.x402"
local errors = require "workproof.errors"
local registry = require "workproof.notary.registry"

local _M = {}

local pay         -- nil: payments off; { x402 = cfg?, txhash = cfg? }
local db

--- Resolve the payment settings (at start) from conf.payments and the chain
-- record (registry.setup). Returns true or nil, err.
function _M.setup(conf, chain, store)
  local pc = conf.payments
  if not pc.enabled then return true end
  db = store
  local ok, err = db:migrate(require "workproof.store.schema")
  if not ok then return nil, err end
  pay = {}
  local dep = chain.deployment
  if pc.x402.enabled then
    local x = pc.x402
    local token = dep and dep.token or {}
    pay.x402 = {
      network = x.network or ("eip155:" .. chain.id), chain_id = chain.id,
      asset = x.asset or token.address, amount = x.amount, pay_to = x.pay_to or chain.client.address,
      token_name = token.name or x.token_name, token_version = token.version or x.token_version,
      max_timeout_seconds = x.max_timeout_seconds, min_validity_seconds = x.min_validity_seconds,
      facilitator = x.facilitator,
    }
    if not pay.x402.asset then return nil, "payments.x402.asset (or chain.deployment) is required" end
  end
  if pc.txhash.enabled then
    pay.txhash = { pay_to = pc.txhash.pay_to or chain.client.address, amount_wei = pc.txhash.amount_wei,
      confirmations = pc.txhash.confirmations }
  end
  return true
end

--- /info's payment section (nil when payments are off).
function _M.info()
  if not pay then return nil end
  return {
    x402 = pay.x402 and { network = pay.x402.network, asset = pay.x402.asset, amount = pay.x402.amount,
      payTo = pay.x402.pay_to } or nil,
    txhash = pay.txhash and { payTo = pay.txhash.pay_to, amountWei = pay.txhash.amount_wei,
      confirmations = pay.txhash.confirmations } or nil,
  }
end

-- 402 with what to pay and how (PAYMENT-REQUIRED, the v1 body, legacy).
-- reason: the x402 error reason; said: what the client is told.
local function required(ctx, reason, said)
  local url = "http://" .. (ctx.req.authority ~= "" and ctx.req.authority or "localhost") .. "/verify"
  local res = errors.refusal("EPAYMENT", { payment = said or reason }, {})
  if pay.x402 then
    res.headers["payment-required"] = x402.required_header(pay.x402, url, reason)
    local v1 = x402.required_v1(pay.x402, url, reason)
    res.body.x402Version, res.body.accepts = v1.x402Version, v1.accepts
  end
  if pay.txhash then
    res.body.txhash = { header = "X-402-Payment", payTo = pay.txhash.pay_to, amountWei = pay.txhash.amount_wei,
      confirmations = pay.txhash.confirmations }
  end
  return res
end

local function unavailable(msg)
  host.log("warn", "payment verification unavailable: " .. tostring(msg))
  return errors.retry_later("EPAYMENT_UNAVAILABLE", 5, { payment = "the chain cannot be reached; retry later" })
end

-- The answer to an x402 error (nil, err, code, reason): the code decides.
local function refuse(ctx, err, code, reason)
  if code == "EPAYMENT_UNAVAILABLE" then return unavailable(err) end
  return required(ctx, reason, (err:gsub("^EPAYMENT: ", "")))
end

-- Consume a replay record of this chain; false when it was used before.
local function consume(kind, status, id, payer, amount)
  local scope = registry.chain().client:scope()
  if not scope then return nil end
  local key = ("%s:%s:%s"):format(scope, kind == "x402" and "x402" or "tx", id)
  -- the primary key decides, in one statement: two hosts presenting the
  -- same payment at the same instant cannot both insert it
  local ins, err = db:exec("INSERT INTO payments(id, kind, payer, amount, status, created) VALUES "
    .. "(?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", key, kind, payer, amount, status, host.time())
  if not ins then return nil, err end
  return ins == 1, key
end

local function verify_x402(ctx, sig)
  local p, err, code, reason = x402.decode(sig)
  if not p then return refuse(ctx, err, code, reason) end
  local payer
  payer, err, code, reason = x402.check(pay.x402, p, host.time())
  if not payer then return refuse(ctx, err, code, reason) end
  if pay.x402.facilitator then
    -- the facilitator is authoritative for the on-chain checks
    local v, ferr = x402.facilitator(pay.x402, "/verify", p)
    if not v then return unavailable(ferr) end
    if not v.isValid then
      return required(ctx, tostring(v.invalidReason), tostring(v.invalidReason) .. ": refused by the facilitator")
    end
  else
    local ok
    ok, err, code, reason = x402.check_chain(pay.x402, p, registry.chain().rpc)
    if not ok then return refuse(ctx, err, code, reason) end
  end
  local fresh, key = consume("x402", "reserved", payer:lower() .. ":" .. wp.hex(p.nonce), payer,
    p.authorization.value)
  if fresh == nil then return unavailable(key or "cannot read the chain's genesis block") end
  if not fresh then
    return required(ctx, "invalid_transaction_state", "invalid_transaction_state: authorization nonce already used")
  end
  ctx.payment = { kind = "x402", id = key, pay = p, payer = payer, version = p.version }
end

local function verify_legacy(ctx, hash)
  local info, err, code, reason = x402.check_legacy(pay.txhash, hash, registry.chain().rpc)
  if not info then return refuse(ctx, err, code, reason) end
  local fresh, key = consume("txhash", "consumed", info.hash, info.payer, info.value)
  if fresh == nil then return unavailable(key or "cannot read the chain's genesis block") end
  if not fresh then
    return required(ctx, "invalid_payment", "invalid_payment: this transaction hash was already used")
  end
  ctx.payment = { kind = "txhash", id = key, info = info, payer = info.payer }
end

--- The pay phase: nil when paid (ctx.payment set) or payments are off,
-- else the refusal (402, or 503 when the chain cannot say).
function _M.verify(ctx)
  if not ctx.gen.config.payments.enabled then return nil end
  if not pay then return unavailable("payments enabled but the chain is not set up") end
  local hdr = ctx.req.headers
  local sig = hdr["payment-signature"] or hdr["x-payment"]
  if sig and pay.x402 then return verify_x402(ctx, sig) end
  local legacy = hdr["x-402-payment"]
  if legacy and pay.txhash then return verify_legacy(ctx, legacy) end
  return required(ctx, "payment required")
end

local function settle_x402(ctx, p)
  local row, ok
  if pay.x402.facilitator then
    local s = x402.facilitator(pay.x402, "/settle", p.pay)
    ok = s and s.success == true
    row = { tx_hash = s and s.transaction ~= "" and s.transaction or nil }
    if not ok then
      host.log("error", "facilitator settlement failed: " .. (s and tostring(s.errorReason) or "unreachable"))
    end
  else
    row = registry.write("settle", p.id, { to = pay.x402.asset, data = x402.settle_calldata(p.pay) },
      ctx.gen.config.chain.wait_receipt)
    ok = row and row.status == "mined"
  end
  db:exec("UPDATE payments SET status = ?, tx_hash = ? WHERE id = ?", ok and "settled" or "settling",
    row and row.tx_hash, p.id)
  local resp = x402.response_header({ success = ok or false, transaction = row and row.tx_hash or "",
    network = pay.x402.network, payer = p.payer, errorReason = (not ok) and "settlement pending" or nil })
  ctx.headers["payment-response"] = resp
  if p.version == 1 then ctx.headers["x-payment-response"] = resp end
end

--- The payment's end (the finally phase, once): charge a VALID / INVALID
-- verdict, refund (legacy) or release (x402) an infrastructure failure,
-- release an x402 reservation when no verdict came (refused later on).
-- Returns the refund's transaction hash, if one was sent.
function _M.finish(ctx)
  local p = ctx.payment
  if not p then return nil end
  local out = ctx.outcome
  local charged = out and (out.verdict == "VALID" or out.verdict == "INVALID")
  local refund = out and errors.get(out.code).refund
  if p.kind == "x402" then
    if charged and not refund then return settle_x402(ctx, p) end
    db:exec("DELETE FROM payments WHERE id = ? AND status = 'reserved'", p.id)
  elseif p.kind == "txhash" and refund then
    local row = registry.write("refund", p.id, { to = p.payer, data = "", value = p.info.value, gas = "21000" },
      ctx.gen.config.chain.wait_receipt)
    local tx = row and row.tx_hash
    db:exec("UPDATE payments SET status = 'refunded', tx_hash = ? WHERE id = ?", tx, p.id)
    return tx
  elseif p.kind == "txhash" and not out then
    -- refused after paying (capacity, a policy stage): the hash may be
    -- presented again, nothing was done for it
    db:exec("DELETE FROM payments WHERE id = ? AND status = 'consumed'", p.id)
  end
end

return _M
