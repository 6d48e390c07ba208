-- SPDX-License-Identifier: MIT
--- The service's chain client: the signer, a nonce manager that serialises
-- its transactions, and a durable outbox so that a crash or an RPC outage
-- loses nothing and never writes twice.
--
--   local chain = require("workproof.chain").new {
--     rpc = wp.rpc.new(url), db = store, chain_id = 31337,
--     key = { file = "/etc/workproof/signer.key" } | { env = "WORKPROOF_SIGNER_KEY" },
--   }
--   local id = chain:enqueue("attest", job_id, { to = registry, data = calldata })
--   local rec = chain:wait(id, 15)   -- { status = "mined", tx_hash, block, ok }
--
-- Outbox rows move pending -> sent -> mined | failed. One coroutine (the
-- sender) owns the nonce: it takes rows in id order, signs with the next
-- nonce, records (nonce, tx hash) BEFORE broadcasting, then waits for the
-- receipt. A row is unique per (kind, ref): enqueueing the same job twice
-- returns the existing row. On start, rows left "sent" are re-checked by
-- their recorded hashes and re-broadcast with the same nonce if unknown,
-- so a restart can neither lose nor duplicate a write. A transaction not
-- mined within `reprice_after` seconds is replaced (same nonce, fees
-- raised by 12.5 %, the minimum replacement bump).
local wp = require "workproof"
local host = require "workproof.host"

local type, tostring, tonumber, setmetatable, pcall, floor =
  type, tostring, tonumber, setmetatable, pcall, math.floor

local _M = {}
local mt = { __index = _M }

local SCHEMA = [[CREATE TABLE IF NOT EXISTS outbox(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL, ref TEXT NOT NULL,
  to_addr TEXT NOT NULL, data BLOB NOT NULL, value TEXT NOT NULL DEFAULT '0',
  gas TEXT,
  status TEXT NOT NULL DEFAULT 'pending',
  nonce INTEGER, tx_hash TEXT, hashes TEXT NOT NULL DEFAULT '',
  max_fee TEXT, prio_fee TEXT,
  block INTEGER, ok INTEGER, error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  created REAL NOT NULL, updated REAL NOT NULL,
  UNIQUE(kind, ref))]]

-- One sender per signer even when several host processes share the store:
-- whoever holds this lease owns the nonce; the others enqueue and wait.
local LEASE_SCHEMA = [[CREATE TABLE IF NOT EXISTS outbox_sender(
  id INTEGER PRIMARY KEY CHECK (id = 1), owner TEXT NOT NULL, expires REAL NOT NULL)]]
local LEASE_SECONDS = 10

--- Read the signer key: 32 bytes as 64 hex (optional 0x) from a file that
-- only its owner may read (mode 0600 or 0400), or from an environment
-- variable. The key never appears in logs or errors.
function _M.load_key(spec)
  local text
  if spec.hex then
    text = spec.hex
  elseif spec.file then
    local p = io.popen("stat -c '%a' '" .. spec.file:gsub("'", "") .. "' 2>/dev/null")
    local mode = p and p:read("*l")
    if p then p:close() end
    if not mode then return nil, "EKEY: cannot stat the signer key file " .. spec.file end
    if mode ~= "600" and mode ~= "400" then
      return nil, ("EKEY: signer key file %s has mode %s; it must be 0600 or 0400"):format(spec.file, mode)
    end
    local f = io.open(spec.file, "rb")
    if not f then return nil, "EKEY: cannot read the signer key file " .. spec.file end
    text = f:read("*a")
    f:close()
  elseif spec.env then
    text = os.getenv(spec.env)
    if not text then return nil, "EKEY: environment variable " .. spec.env .. " is not set" end
  else
    return nil, "EKEY: no signer key configured (key.file or key.env)"
  end
  local secret = wp.unhex((text:gsub("%s+", "")))
  if not secret or #secret ~= 32 then return nil, "EKEY: the signer key must be 32 bytes of hex" end
  local pub, err = wp.secp256k1.pubkey(secret)
  if not pub then return nil, "EKEY: invalid signer key (" .. tostring(err):gsub(":.*", "") .. ")" end
  return secret, wp.eth.address(pub)
end

function _M.new(opts)
  local self = setmetatable({
    rpc = assert(opts.rpc, "chain.new: rpc required"),
    db = assert(opts.db, "chain.new: db required"),
    chain_id = opts.chain_id,
    reprice_after = opts.reprice_after or 30,
    poll = opts.poll or 0.25,
    gas_limit = opts.gas_limit,
    waiters = {},
    stats = { sent = 0, mined = 0, failed = 0, repriced = 0, rpc_errors = 0 },
    running = false,
  }, mt)
  local secret, address = _M.load_key(opts.key or {})
  if not secret then return nil, address end
  self.secret, self.address = secret, address
  local ok, err = self.db:exec(SCHEMA)
  if ok then ok, err = self.db:exec(LEASE_SCHEMA) end
  if ok then
    ok, err = self.db:exec("INSERT OR IGNORE INTO outbox_sender(id, owner, expires) VALUES (1, '', 0)")
  end
  if not ok then return nil, err end
  self.owner = ("%d-%s"):format(host.pid or 0, wp.hex(wp.sha256(tostring(host.now()) .. tostring(self))):sub(1, 12))
  return self
end

local function now() return host.time() end

--- Put a transaction in the outbox. Returns the row id (the existing one
-- when (kind, ref) was enqueued before: never twice).
function _M:enqueue(kind, ref, tx)
  local data = tx.data or ""
  local ok, err = self.db:exec([[INSERT OR IGNORE INTO outbox(kind, ref, to_addr, data, value, gas, created, updated)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)]], kind, ref, tx.to, data, tx.value or "0", tx.gas, now(), now())
  if not ok then return nil, err end
  local row = self.db:row("SELECT id FROM outbox WHERE kind = ? AND ref = ?", kind, ref)
  self:kick()
  return row and row.id
end

function _M:get(id)
  return self.db:row("SELECT * FROM outbox WHERE id = ?", id)
end

--- Wait (yielding) until row id is mined or failed, or `timeout` seconds.
-- Returns the row, or nil, "ETIMEDOUT: ..." with the row still pending.
function _M:wait(id, timeout)
  local deadline = host.now() + (timeout or 30)
  while true do
    local r = self:get(id)
    if r and (r.status == "mined" or r.status == "failed") then return r end
    if host.now() >= deadline then return nil, "ETIMEDOUT: transaction not mined yet", r end
    host.sleep(self.poll)
  end
end

local function hexq(n)   -- a JSON-RPC quantity
  return wp.abi.to_quantity(n)
end

local function to_int(q)
  if type(q) == "number" then return q end
  return tonumber(q)
end

function _M:fees()
  local block, err = self.rpc:call("eth_getBlockByNumber", { "latest", false })
  if not block then return nil, err end
  local base = to_int(block.baseFeePerGas or "0x0") or 0
  local prio, perr = self.rpc:call("eth_maxPriorityFeePerGas", {})
  prio = prio and to_int(prio) or (perr and 1e9) or 1e9
  return 2 * base + prio, prio
end

local function bump(x) return floor(x * 1.125) + 1 end

-- Sign and broadcast row r with its nonce and fees; records the hash first.
function _M:broadcast(r, max_fee, prio)
  local gas = r.gas and tonumber(r.gas)
  if not gas then
    local est, err = self.rpc:call("eth_estimateGas", { {
      from = self.address, to = r.to_addr, data = "0x" .. wp.hex(r.data), value = hexq(r.value) } })
    if not est and tostring(err):find("^ERPC") then
      -- the node says this call reverts: retrying cannot help, and a row
      -- that never leaves would block every write behind it
      return nil, err, "reverts"
    end
    if not est then return nil, err end
    gas = floor(to_int(est) * 1.25) + 10000
  end
  local raw, hash = wp.tx.sign_eip1559({
    chainId = self.chain_id, nonce = r.nonce, maxPriorityFeePerGas = prio, maxFeePerGas = max_fee,
    gas = gas, to = r.to_addr, value = r.value, data = r.data,
  }, self.secret)
  if not raw then return nil, hash end
  local txh = "0x" .. wp.hex(hash)
  local hashes = (r.hashes ~= "" and (r.hashes .. ",") or "") .. txh
  self.db:exec([[UPDATE outbox SET status = 'sent', tx_hash = ?, hashes = ?, max_fee = ?, prio_fee = ?, gas = ?,
    attempts = attempts + 1, updated = ? WHERE id = ?]], txh, hashes, tostring(max_fee), tostring(prio),
    tostring(gas), now(), r.id)
  local ok, err = self.rpc:call("eth_sendRawTransaction", { "0x" .. wp.hex(raw) })
  if not ok and not tostring(err):find("already known") and not tostring(err):find("nonce too low") then
    return nil, err
  end
  self.stats.sent = self.stats.sent + 1
  return txh
end

-- Look for a receipt of any hash this row was ever sent under.
function _M:receipt(r)
  for h in (r.hashes or ""):gmatch("[^,]+") do
    local rc, err = self.rpc:call("eth_getTransactionReceipt", { h })
    if err then return nil, err end
    if rc and rc ~= false and type(rc) == "table" then return rc, h end
  end
  return false
end

function _M:settle_row(r, rc, h)
  local ok = (to_int(rc.status) == 1) and 1 or 0
  self.db:exec("UPDATE outbox SET status = ?, tx_hash = ?, block = ?, ok = ?, updated = ? WHERE id = ?",
    ok == 1 and "mined" or "failed", h, to_int(rc.blockNumber), ok, now(), r.id)
  if ok == 1 then self.stats.mined = self.stats.mined + 1 else self.stats.failed = self.stats.failed + 1 end
end

-- Drive one row to a receipt. Returns true when settled, nil, err on an
-- RPC failure (the row stays as it is and is retried later).
function _M:drive(r)
  if r.status == "pending" then
    if not self.next_nonce then
      local n, err = self.rpc:call("eth_getTransactionCount", { self.address, "pending" })
      if not n then return nil, err end
      self.next_nonce = to_int(n)
    end
    local max_fee, prio = self:fees()
    if not max_fee then return nil, prio end
    r.nonce = self.next_nonce
    local h, err, why = self:broadcast(r, max_fee, prio)
    if why == "reverts" then
      self.db:exec("UPDATE outbox SET status = 'failed', ok = 0, error = ?, updated = ? WHERE id = ?",
        tostring(err), now(), r.id)
      self.stats.failed = self.stats.failed + 1
      return true      -- the nonce was not used
    end
    if not h then return nil, err end
    self.db:exec("UPDATE outbox SET nonce = ? WHERE id = ?", self.next_nonce, r.id)
    self.next_nonce = self.next_nonce + 1
    r = self:get(r.id)
  end
  local sent_at = host.now()
  while true do
    local rc, h = self:receipt(r)
    if rc == nil then return nil, h end
    if rc then
      self:settle_row(r, rc, h)
      return true
    end
    self:lease()
    if host.now() - sent_at > self.reprice_after then
      local max_fee, prio = bump(tonumber(r.max_fee)), bump(tonumber(r.prio_fee))
      local fee_now, prio_now = self:fees()
      if fee_now and fee_now > max_fee then max_fee = fee_now end
      if prio_now and prio_now > prio then prio = prio_now end
      local nh, err = self:broadcast(r, max_fee, prio)
      if not nh then return nil, err end
      self.stats.repriced = self.stats.repriced + 1
      r = self:get(r.id)
      sent_at = host.now()
    end
    host.sleep(self.poll)
  end
end

--- Start the sender coroutine if it is not running. It drains the outbox
-- in id order and stops when nothing is left; RPC failures back off and
-- retry, so the outbox drains once the chain is back.
function _M:kick()
  if self.running then return end
  self.running = true
  host.spawn(function()
    local backoff = 0.5
    while true do
      local r = self.db:row([[SELECT * FROM outbox WHERE status IN ('pending', 'sent') ORDER BY
        CASE status WHEN 'sent' THEN 0 ELSE 1 END, id LIMIT 1]])
      if not r then break end
      while not self:lease() do host.sleep(0.2) end   -- another process is sending
      local ok, err = pcall(self.drive, self, r)
      if ok and err == true then
        backoff = 0.5
      else
        self.stats.rpc_errors = self.stats.rpc_errors + 1
        self.last_error = tostring(err)
        self.next_nonce = nil    -- re-read from the chain after an outage
        host.sleep(backoff)
        backoff = math.min(backoff * 2, 10)
      end
    end
    self:release()
    self.running = false
  end)
end

--- Take or renew the sender lease. Returns true while this process holds it.
function _M:lease()
  local t = now()
  -- renewing is a store write: only once half the lease has run out
  if self.holding and self.lease_until and t < self.lease_until - LEASE_SECONDS / 2 then return true end
  local n = self.db:exec(
    "UPDATE outbox_sender SET owner = ?, expires = ? WHERE id = 1 AND (owner = ? OR expires < ?)",
    self.owner, t + LEASE_SECONDS, self.owner, t)
  local held = n == 1
  if held and not self.holding then self.next_nonce = nil end   -- another sender may have moved it
  self.holding = held
  self.lease_until = held and t + LEASE_SECONDS or nil
  return held
end

function _M:release()
  if self.holding then
    self.db:exec("UPDATE outbox_sender SET expires = 0 WHERE id = 1 AND owner = ?", self.owner)
    self.holding = false
  end
end

function _M:pending_count()
  local r = self.db:row("SELECT count(*) AS n FROM outbox WHERE status IN ('pending', 'sent')")
  return r and r.n or 0
end


return _M
