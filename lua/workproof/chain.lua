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
-- Rows move pending -> sent -> mined | failed | conflict (docs/chain.md has
-- the whole state machine). One coroutine (the sender, one per signer
-- across processes by a lease in the store) owns the nonce and drives one
-- row at a time:
--
-- * Write-ahead. A pending row gets its nonce, is signed, and the nonce, the
--   raw signed transaction and its hash are committed to the store (status
--   'sent') BEFORE the first byte goes to the node. A row is never signed
--   without a nonce, and a 'sent' row is only ever re-signed with its own
--   recorded nonce (re-pricing replaces the same nonce).
-- * No guessing from error strings. Whatever the node answered (or did not
--   answer) to eth_sendRawTransaction is only recorded as the row's last
--   error; the outcome is decided by asking the chain: a receipt for any
--   hash the row was ever sent under -> mined (or failed when it reverted);
--   else the signer's "latest" transaction count above the row's nonce ->
--   the nonce was used by a transaction that is not ours (the account is
--   shared with another sender): the row is surfaced as a conflict, logged,
--   and re-queued with a fresh nonce (up to `max_conflicts` times, then left
--   'conflict'); else the node knows one of our hashes -> in flight, wait
--   (re-price after `reprice_after`); else the node does not know it (the
--   send never arrived, the pool dropped it, a crash before sending) ->
--   re-broadcast the SAME recorded raw transaction.
-- * Reorgs. Rows mined within the last `reorg_depth` blocks are re-checked
--   whenever the sender starts (every start of the host included) and every
--   `recheck_every` seconds while it runs: a receipt that disappeared puts
--   the row back to 'sent', and the loop above lands it again.
-- * Never silent. Every row keeps its last error; a row unmined for longer
--   than `stuck_after` seconds is logged as a warning (once per row and
--   sender run); states() and oldest_unmined() feed /metrics.
--
-- Test hook (specs only): with WORKPROOF_TEST_OUTBOX_HOOK=<point> in the
-- environment, the sender prints "WP_TEST_HOOK <point> <row id>" on stdout
-- when it reaches <point> and then stops there (sleeps) so that a spec can
-- kill -9 the process at exactly that moment. Points: "recorded" (the row
-- is committed as sent, nothing broadcast yet) and "broadcast" (the send
-- returned, no receipt looked for yet).
local wp = require "workproof"
local host = require "workproof.host"

local type, tostring, tonumber, setmetatable, pcall, floor, ipairs =
  type, tostring, tonumber, setmetatable, pcall, math.floor, ipairs

local _M = {}
local mt = { __index = _M }

-- The tables (outbox, and outbox_sender: one sender per signer even when
-- several host processes share the store; whoever holds its lease owns the
-- nonce, the others enqueue and wait) are workproof/store/schema.lua's.
local schema = require "workproof.store.schema"
local LEASE_SECONDS = 10

--- The row states, in the order /metrics lists them.
_M.STATES = { "pending", "sent", "mined", "failed", "conflict", "orphaned" }
local TERMINAL = { mined = true, failed = true, conflict = true, orphaned = true }

--- Read the signer key: 32 bytes as 64 hex (optional 0x) from a file that
-- only its owner may read (mode 0600 or 0400), or from an environment
-- variable. The key never appears in logs or errors.
function _M.load_key(spec)
  local text
  if spec.hex then
    text = spec.hex
  elseif spec.file then
    local st = require("workproof.fs").stat(spec.file)
    if not st then return nil, "EKEY: cannot stat the signer key file " .. spec.file end
    local mode = ("%o"):format(st.mode)
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

--- chain.new(opts) -> client | nil, err
-- opts: rpc, db, chain_id, key, and the tunables (seconds unless said):
-- reprice_after (30), poll (0.25), resend_every (1: how often a
-- transaction the node does not know is re-broadcast), stuck_after (120),
-- reorg_depth (blocks, 12), recheck_every (10), max_conflicts (3),
-- lease_seconds (10), log (function(level, msg), default host.log).
function _M.new(opts)
  local self = setmetatable({
    rpc = assert(opts.rpc, "chain.new: rpc required"),
    db = assert(opts.db, "chain.new: db required"),
    chain_id = opts.chain_id,
    reprice_after = opts.reprice_after or 30,
    poll = opts.poll or 0.25,
    resend_every = opts.resend_every or 1,
    stuck_after = opts.stuck_after or 120,
    reorg_depth = opts.reorg_depth or 12,
    recheck_every = opts.recheck_every or 10,
    max_conflicts = opts.max_conflicts or 3,
    lease_seconds = opts.lease_seconds or LEASE_SECONDS,
    gas_limit = opts.gas_limit,
    log = opts.log or function(level, msg) host.log(level, msg) end,
    waiters = {},
    warned = {},       -- row id -> true once its stuck warning was logged
    logged = {},       -- row id -> the last error logged for it
    stats = { sent = 0, resent = 0, mined = 0, failed = 0, repriced = 0, rpc_errors = 0,
      conflicts = 0, reorgs = 0, stuck_warnings = 0 },
    running = false,
    test_hook = os.getenv("WORKPROOF_TEST_OUTBOX_HOOK"),
  }, mt)
  local secret, address = _M.load_key(opts.key or {})
  if not secret then return nil, address end
  self.secret, self.address = secret, address
  local ok, err = self.db:migrate(schema)
  if not ok then return nil, err end
  self.owner = ("%d-%s"):format(host.pid or 0, wp.hex(wp.sha256(tostring(host.now()) .. tostring(self))):sub(1, 12))
  return self
end

local function now() return host.time() end

--- The chain this client writes to, named by its id and genesis block hash
-- ("eip155:31337:0x…"): a development chain started afresh under the same
-- id is another chain. Read from the node once; nil, err while it is down.
function _M:scope()
  if not self.chain_scope then
    local g, err = self.rpc:call("eth_getBlockByNumber", { "0x0", false })
    if type(g) ~= "table" or type(g.hash) ~= "string" then
      return nil, err or "ERPC: the node has no genesis block"
    end
    self.chain_scope = ("eip155:%d:%s"):format(self.chain_id, g.hash:lower())
  end
  return self.chain_scope
end

-- Rows enqueued for another chain (a development chain started afresh, its
-- store kept) are never sent to this one: they end 'orphaned', once, with
-- the reason. Rows enqueued before the chain was known are this chain's.
function _M:adopt(scope)
  self.db:exec("UPDATE outbox SET chain = ? WHERE chain IS NULL AND status IN ('pending', 'sent')", scope)
  local n = self.db:exec([[UPDATE outbox SET status = 'orphaned', error = ?, updated = ?
    WHERE chain <> ? AND status IN ('pending', 'sent')]],
    "EORPHANED: enqueued for another chain than " .. scope, now(), scope)
  if type(n) == "number" and n > 0 then
    self.log("warn", ("outbox: %d row(s) of another chain than %s left unsent (orphaned)"):format(n, scope))
  end
end

--- Put a transaction in the outbox. Returns the row id (the existing one
-- when (kind, ref) was enqueued before: never twice).
function _M:enqueue(kind, ref, tx)
  local data = tx.data or ""
  local ok, err = self.db:exec([[INSERT INTO outbox(kind, ref, to_addr, data, value, gas, created, updated,
    chain) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING]],
    kind, ref, tx.to, data, tx.value or "0", tx.gas, now(), now(), self.chain_scope)
  if not ok then return nil, err end
  local row = self.db:row("SELECT id FROM outbox WHERE kind = ? AND ref = ?", kind, ref)
  self:kick()
  return row and row.id
end

function _M:get(id)
  return self.db:row("SELECT * FROM outbox WHERE id = ?", id)
end

--- Wait (yielding) until row id is mined, failed or in conflict, or
-- `timeout` seconds. Returns the row, or nil, "ETIMEDOUT: ...", row.
function _M:wait(id, timeout)
  local deadline = host.now() + (timeout or 30)
  while true do
    local r = self:get(id)
    if r and TERMINAL[r.status] then return r end
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

local function known(v) return v ~= nil and v ~= false and type(v) == "table" end

function _M:fees()
  local block, err = self.rpc:call("eth_getBlockByNumber", { "latest", false })
  if not block then return nil, err end
  local base = to_int(block.baseFeePerGas or "0x0") or 0
  local prio, perr = self.rpc:call("eth_maxPriorityFeePerGas", {})
  prio = prio and to_int(prio) or (perr and 1e9) or 1e9
  return 2 * base + prio, prio
end

local function bump(x) return floor(x * 1.125) + 1 end

-- Stop here when the test hook names this point (specs kill -9 us here).
function _M:hook(point, r)
  if self.test_hook ~= point then return end
  io.stdout:write(("WP_TEST_HOOK %s %d\n"):format(point, r.id))
  io.stdout:flush()
  while true do host.sleep(3600) end
end

-- Record the row's last error (and log it once per distinct error).
function _M:note(r, err, level)
  err = tostring(err)
  self.db:exec("UPDATE outbox SET error = ?, updated = ? WHERE id = ?", err, now(), r.id)
  r.error = err
  if self.logged[r.id] ~= err then
    self.logged[r.id] = err
    self.log(level or "warn", ("outbox row %d (%s %s, nonce %s): %s"):format(r.id, r.kind, r.ref,
      tostring(r.nonce), err))
  end
end

--- Sign row r with `nonce` and fees and commit nonce, raw transaction and
-- hash (status 'sent') before anything is broadcast. A 'sent' row may only
-- be re-signed with its own nonce. Returns the updated row, or nil, err.
function _M:sign_row(r, nonce, max_fee, prio, gas)
  if type(nonce) ~= "number" then error("chain: refusing to sign outbox row " .. r.id .. " without a nonce", 2) end
  if r.status == "sent" and r.nonce ~= nonce then
    error(("chain: outbox row %d has nonce %s, refusing to re-sign it with %d"):format(r.id, tostring(r.nonce),
      nonce), 2)
  end
  local raw, hash = wp.tx.sign_eip1559({
    chainId = self.chain_id, nonce = nonce, maxPriorityFeePerGas = prio, maxFeePerGas = max_fee,
    gas = gas, to = r.to_addr, value = r.value, data = r.data,
  }, self.secret)
  if not raw then return nil, hash end
  local txh = "0x" .. wp.hex(hash)
  local hashes = r.hashes or ""
  if not (("," .. hashes .. ","):find("," .. txh .. ",", 1, true)) then
    hashes = (hashes ~= "" and (hashes .. ",") or "") .. txh
  end
  local t = now()
  local n, err
  if r.status == "sent" then
    n, err = self.db:exec([[UPDATE outbox SET raw = ?, tx_hash = ?, hashes = ?, max_fee = ?, prio_fee = ?,
      gas = ?, signed_at = ?, attempts = attempts + 1, updated = ? WHERE id = ? AND status = 'sent' AND nonce = ?]],
      wp.hex(raw), txh, hashes, tostring(max_fee), tostring(prio), tostring(gas), t, t, r.id, nonce)
  else
    n, err = self.db:exec([[UPDATE outbox SET status = 'sent', nonce = ?, raw = ?, tx_hash = ?, hashes = ?,
      max_fee = ?, prio_fee = ?, gas = ?, signed_at = ?, attempts = attempts + 1, updated = ?,
      chain = coalesce(chain, ?) WHERE id = ? AND status = 'pending']],
      nonce, wp.hex(raw), txh, hashes, tostring(max_fee), tostring(prio), tostring(gas), t, t, self.chain_scope, r.id)
  end
  if not n then return nil, err end
  if n ~= 1 then return nil, "ESTATE: outbox row " .. r.id .. " changed under the sender" end
  return self:get(r.id)
end

-- Broadcast the row's recorded raw transaction. The answer is only
-- recorded: what happened is decided by resolve(), by asking the chain.
function _M:send(r)
  local ok, err = self.rpc:call("eth_sendRawTransaction", { "0x" .. r.raw })
  self.last_send = host.now()
  if ok then
    self.stats.sent = self.stats.sent + 1
    return true
  end
  self:note(r, "broadcast: " .. tostring(err))
  return false
end

-- Look for a receipt of any hash this row was ever sent under.
function _M:receipt(r)
  for hh in (r.hashes or ""):gmatch("[^,]+") do
    local rc, err = self.rpc:call("eth_getTransactionReceipt", { hh })
    if err then return nil, err end
    if known(rc) then return rc, hh end
  end
  return false
end

function _M:settle_row(r, rc, hh)
  local ok = (to_int(rc.status) == 1) and 1 or 0
  self.db:exec([[UPDATE outbox SET status = ?, tx_hash = ?, block = ?, block_hash = ?, ok = ?, updated = ?,
    error = CASE WHEN ? = 1 THEN error ELSE ? END WHERE id = ?]],
    ok == 1 and "mined" or "failed", hh, to_int(rc.blockNumber), rc.blockHash, ok, now(),
    ok, "EREVERTED: mined in block " .. tostring(to_int(rc.blockNumber)) .. " but reverted (status 0)", r.id)
  if ok == 1 then self.stats.mined = self.stats.mined + 1 else self.stats.failed = self.stats.failed + 1 end
  self.warned[r.id], self.logged[r.id] = nil, nil
end

--- Decide where a 'sent' row stands by asking the chain. Returns
-- "settled" (receipt found, row updated), "conflict" (its nonce was used by
-- a transaction that is not ours), "inflight" (the node knows one of our
-- hashes), "unknown" (the node knows none and the nonce is still free), or
-- nil, err when the node cannot be asked.
function _M:resolve(r)
  local rc, hh = self:receipt(r)
  if rc == nil then return nil, hh end
  if rc then self:settle_row(r, rc, hh); return "settled" end
  local latest, err = self.rpc:call("eth_getTransactionCount", { self.address, "latest" })
  if not latest then return nil, err end
  if to_int(latest) > r.nonce then
    -- the nonce is used; ours may have been mined since the receipts were read
    rc, hh = self:receipt(r)
    if rc == nil then return nil, hh end
    if rc then self:settle_row(r, rc, hh); return "settled" end
    return "conflict"
  end
  for h2 in (r.hashes or ""):gmatch("[^,]+") do
    local tx, terr = self.rpc:call("eth_getTransactionByHash", { h2 })
    if terr then return nil, terr end
    if known(tx) and to_int(tx.nonce) == r.nonce then return "inflight" end
  end
  return "unknown"
end

-- The nonce of row r was used by someone else: surface it, and re-queue the
-- same logical write (same row, same (kind, ref)) for a fresh nonce.
function _M:conflict(r)
  local conflicts = (r.conflicts or 0) + 1
  local msg = ("ECONFLICT: nonce %d of signer %s was used by a transaction that is not ours (is the account "
    .. "shared with another sender?); none of this row's transactions (%s) was mined"):format(r.nonce,
    self.address, r.hashes)
  self.stats.conflicts = self.stats.conflicts + 1
  self.next_nonce = nil
  if conflicts > self.max_conflicts then
    self.db:exec([[UPDATE outbox SET status = 'conflict', error = ?, conflicts = ?, updated = ?
      WHERE id = ? AND status = 'sent']], msg, conflicts, now(), r.id)
    self.log("error", ("outbox row %d (%s %s): %s; given up after %d conflicts"):format(r.id, r.kind, r.ref, msg,
      conflicts))
  else
    -- the old hashes stay on the row: their receipts are still looked for
    self.db:exec([[UPDATE outbox SET status = 'pending', nonce = NULL, raw = NULL, tx_hash = NULL, error = ?,
      conflicts = ?, updated = ? WHERE id = ? AND status = 'sent']], msg, conflicts, now(), r.id)
    self.log("error", ("outbox row %d (%s %s): %s; re-queued with a fresh nonce (conflict %d of %d allowed)")
      :format(r.id, r.kind, r.ref, msg, conflicts, self.max_conflicts))
  end
  self.logged[r.id] = msg
end

-- A 'sent' row without a recorded raw transaction was left by an older
-- version (which recorded the nonce only after a successful send). Give it
-- a raw transaction again, or put it back to pending when nothing of it
-- reached the node. Returns the row, or nil, err.
function _M:repair(r)
  local rc, hh = self:receipt(r)
  if rc == nil then return nil, hh end
  if rc then self:settle_row(r, rc, hh); return self:get(r.id) end
  local nonce, max_fee, prio, gas = r.nonce, tonumber(r.max_fee), tonumber(r.prio_fee), tonumber(r.gas)
  if not nonce then
    for h2 in (r.hashes or ""):gmatch("[^,]+") do
      local tx, err = self.rpc:call("eth_getTransactionByHash", { h2 })
      if err then return nil, err end
      if known(tx) then
        nonce, gas = to_int(tx.nonce), to_int(tx.gas)
        max_fee, prio = to_int(tx.maxFeePerGas), to_int(tx.maxPriorityFeePerGas)
        break
      end
    end
  end
  if not (nonce and max_fee and prio and gas) then
    self.db:exec([[UPDATE outbox SET status = 'pending', nonce = NULL, error = ?, updated = ?
      WHERE id = ? AND status = 'sent']], "ERECOVER: left 'sent' without a recorded nonce by an older version and "
      .. "unknown to the node; re-queued", now(), r.id)
    return self:get(r.id)
  end
  self.db:exec("UPDATE outbox SET nonce = ? WHERE id = ?", nonce, r.id)
  r.nonce = nonce
  return self:sign_row(r, nonce, max_fee, prio, gas)
end

function _M:next_nonce_for()
  if not self.next_nonce then
    local n, err = self.rpc:call("eth_getTransactionCount", { self.address, "pending" })
    if not n then return nil, err end
    self.next_nonce = to_int(n)
  end
  -- never below a nonce this outbox still holds
  local top = self.db:row("SELECT max(nonce) AS n FROM outbox WHERE status = 'sent'")
  if top and top.n and top.n + 1 > self.next_nonce then self.next_nonce = top.n + 1 end
  return self.next_nonce
end

-- Give a pending row its nonce and record it (write-ahead), then send.
-- Returns the row now 'sent', true when it was settled without a nonce
-- (reverts at estimation), or nil, err.
function _M:assign(r)
  local max_fee, prio = self:fees()
  if not max_fee then return nil, prio end
  local gas = r.gas and tonumber(r.gas)
  if not gas then
    local est, err = self.rpc:call("eth_estimateGas", { {
      from = self.address, to = r.to_addr, data = "0x" .. wp.hex(r.data), value = hexq(r.value) } })
    if not est and tostring(err):find("^ERPC") and not tostring(err):lower():find("insufficient funds") then
      -- the node says this call reverts: retrying cannot help, and a row
      -- that never leaves would block every write behind it
      self.db:exec("UPDATE outbox SET status = 'failed', ok = 0, error = ?, updated = ? WHERE id = ?",
        tostring(err), now(), r.id)
      self.stats.failed = self.stats.failed + 1
      return true      -- the nonce was not used
    end
    if not est then return nil, err end
    gas = floor(to_int(est) * 1.25) + 10000
  end
  local nonce, nerr = self:next_nonce_for()
  if not nonce then return nil, nerr end
  local row, serr = self:sign_row(r, nonce, max_fee, prio, gas)
  if not row then return nil, serr end
  self.next_nonce = nonce + 1
  self:hook("recorded", row)
  self:send(row)
  self:hook("broadcast", row)
  return row
end

function _M:check_stuck(r)
  local age = now() - r.created
  if age > self.stuck_after and not self.warned[r.id] then
    self.warned[r.id] = true
    self.stats.stuck_warnings = self.stats.stuck_warnings + 1
    self.log("warn", ("outbox row %d (%s %s) not mined after %d s: status %s, nonce %s, %d attempts, last error: %s")
      :format(r.id, r.kind, r.ref, floor(age), r.status, tostring(r.nonce), r.attempts or 0, tostring(r.error)))
  end
end

-- Drive one row to a receipt. Returns true when it left the front of the
-- queue (settled, failed, re-queued after a conflict), nil, err on an RPC
-- failure or a lost lease (the row stays as it is and is retried later).
function _M:drive(r)
  if r.status == "sent" and not r.raw then
    local err
    r, err = self:repair(r)
    if not r then return nil, err end
    if r.status ~= "sent" then return true end
  end
  if r.status == "pending" then
    local row, err = self:assign(r)
    if row == true then return true end
    if not row then return nil, err end
    r = row
  else
    self.last_send = nil    -- a row we did not send in this run: look before re-sending
  end
  local resends, suspect = 0, false
  while true do
    local state, err = self:resolve(r)
    if not state then return nil, err end
    if state == "settled" then return true end
    if state == "conflict" then
      -- acted on only when two looks a poll apart agree: a receipt that a
      -- node behind a load balancer shows a moment late is not a conflict
      if suspect then self:conflict(r); return true end
      suspect = true
    else
      suspect = false
    end
    self:check_stuck(r)
    if host.now() - self.recheck_at >= self.recheck_every then
      -- a reorged row with a lower nonce must go first: back to the queue
      local back = self:recheck()
      if back and back > 0 then return true end
    end
    if not self:lease() then return nil, "ELEASE: another process took over the outbox" end
    -- re-price only what the node holds (or keeps refusing): fees are no
    -- reason for a transaction it never received, those get the same bytes
    if state ~= "conflict" and now() - (r.signed_at or 0) > self.reprice_after
      and (state == "inflight" or resends >= 3) then
      local max_fee, prio = bump(tonumber(r.max_fee)), bump(tonumber(r.prio_fee))
      local fee_now, prio_now = self:fees()
      if fee_now and fee_now > max_fee then max_fee = fee_now end
      if prio_now and prio_now > prio then prio = prio_now end
      local row, serr = self:sign_row(r, r.nonce, max_fee, prio, tonumber(r.gas))
      if not row then return nil, serr end
      r = row
      resends = 0
      self.stats.repriced = self.stats.repriced + 1
      self:send(r)
    elseif state == "unknown" and (not self.last_send or host.now() - self.last_send >= self.resend_every) then
      -- the node does not know it and the nonce is free: the same bytes again
      resends = resends + 1
      self.stats.resent = self.stats.resent + 1
      self:send(r)
    end
    host.sleep(self.poll)
    r = self:get(r.id)
    if r.status ~= "sent" then return true end
  end
end

--- Re-check rows mined (or reverted) within the last `reorg_depth` blocks:
-- a receipt that disappeared puts the row back to 'sent' (and starts the
-- sender). Returns the number of rows put back, or nil, err.
function _M:recheck()
  self.recheck_at = host.now()
  local head, err = self.rpc:call("eth_blockNumber", {})
  if not head then return nil, err end
  local scope, serr = self:scope()
  if not scope then return nil, serr end
  local rows = self.db:exec([[SELECT * FROM outbox WHERE status IN ('mined', 'failed') AND block IS NOT NULL
    AND block >= ? AND chain = ? ORDER BY id DESC LIMIT 256]], to_int(head) - self.reorg_depth, scope) or {}
  local back = 0
  for _, r in ipairs(rows) do
    local rc, rerr = self.rpc:call("eth_getTransactionReceipt", { r.tx_hash })
    if rerr then return nil, rerr end
    if not known(rc) then
      local msg = ("EREORG: the receipt of %s in block %d disappeared (reorganised away); sending again"):format(
        r.tx_hash, r.block)
      local n = self.db:exec([[UPDATE outbox SET status = 'sent', block = NULL, block_hash = NULL, ok = NULL,
        error = ?, signed_at = ?, updated = ? WHERE id = ? AND status = ?]], msg, now(), now(), r.id, r.status)
      if n == 1 then
        back = back + 1
        self.stats.reorgs = self.stats.reorgs + 1
        self.log("warn", ("outbox row %d (%s %s, nonce %s): %s"):format(r.id, r.kind, r.ref, tostring(r.nonce), msg))
      end
    elseif rc.blockHash ~= r.block_hash then
      self.db:exec("UPDATE outbox SET block = ?, block_hash = ?, updated = ? WHERE id = ?",
        to_int(rc.blockNumber), rc.blockHash, now(), r.id)
    end
  end
  if back > 0 then self:kick() end
  return back
end

--- Start the sender coroutine if it is not running. It re-checks recent
-- receipts, then drains the outbox ('sent' rows first, by nonce) and stops
-- when nothing is left; RPC failures back off and retry, so the outbox
-- drains once the chain is back.
function _M:kick()
  if self.running then return end
  self.running = true
  self.recheck_at = self.recheck_at or -math.huge
  host.spawn(function()
    local backoff = 0.5
    local scope = self:scope()
    while not scope do   -- the node is down: nothing can be sent anyway
      host.sleep(backoff)
      backoff = math.min(backoff * 2, 10)
      scope = self:scope()
    end
    backoff = 0.5
    self:adopt(scope)
    pcall(self.recheck, self)
    while true do
      local r = self.db:row([[SELECT * FROM outbox WHERE status IN ('pending', 'sent')
        AND (chain = ? OR chain IS NULL) ORDER BY
        CASE status WHEN 'sent' THEN 0 ELSE 1 END, nonce, id LIMIT 1]], scope)
      if not r then break end
      if not self:lease() then
        host.sleep(0.2)   -- another process is sending; look again when it is done
        goto continue
      end
      r = self:get(r.id)  -- fresh: the previous holder may have moved it
      if TERMINAL[r.status] then goto continue end
      self:check_stuck(r)
      local ok, err, derr = pcall(self.drive, self, r)
      if ok and err == true then
        backoff = 0.5
      else
        if ok then err = derr end   -- drive returned nil, err
        self.stats.rpc_errors = self.stats.rpc_errors + 1
        self.last_error = tostring(err)
        local cur = self:get(r.id)
        if cur and not TERMINAL[cur.status] then self:note(cur, err) end
        self.next_nonce = nil    -- re-read from the chain after an outage
        host.sleep(backoff)
        backoff = math.min(backoff * 2, 10)
      end
      ::continue::
    end
    self:release()
    self.running = false
  end)
end

--- Take or renew the sender lease. Returns true while this process holds it.
function _M:lease()
  local t = now()
  -- renewing is a store write: only once half the lease has run out
  if self.holding and self.lease_until and t < self.lease_until - self.lease_seconds / 2 then return true end
  local n = self.db:exec(
    "UPDATE outbox_sender SET owner = ?, expires = ? WHERE id = 1 AND (owner = ? OR expires < ?)",
    self.owner, t + self.lease_seconds, self.owner, t)
  local held = n == 1
  if held and not self.holding then self.next_nonce = nil end   -- another sender may have moved it
  self.holding = held
  self.lease_until = held and t + self.lease_seconds or nil
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

--- Row counts by state: { pending = n, sent = n, mined = n, failed = n, conflict = n }.
function _M:states()
  local t = {}
  for _, s in ipairs(_M.STATES) do t[s] = 0 end
  for _, r in ipairs(self.db:exec("SELECT status, count(*) AS n FROM outbox GROUP BY status") or {}) do
    t[r.status] = r.n
  end
  return t
end

--- Seconds since the oldest row still pending or sent was enqueued (0 when none).
function _M:oldest_unmined()
  local r = self.db:row("SELECT min(created) AS t FROM outbox WHERE status IN ('pending', 'sent')")
  if not (r and r.t) then return 0 end
  local age = now() - r.t
  return age > 0 and age or 0
end

-- The public view of a row (no raw transaction, no call data).
local function view(r, t)
  local hashes = {}
  for hh in (r.hashes or ""):gmatch("[^,]+") do hashes[#hashes + 1] = hh end
  return {
    id = r.id, kind = r.kind, ref = r.ref, status = r.status, nonce = r.nonce, txHash = r.tx_hash,
    hashes = hashes, block = r.block, attempts = r.attempts, conflicts = r.conflicts or 0,
    error = r.error, created = r.created, updated = r.updated,
    ageSeconds = (not TERMINAL[r.status]) and floor((t - r.created) * 1000) / 1000 or nil,
  }
end

--- One row as the API shows it, or nil.
function _M:describe(id)
  local r = self:get(id)
  return r and view(r, now())
end

--- The latest `limit` rows (10) of any state, newest first, as the API
-- shows them (the dashboard: what was queued, sent, mined, with hashes).
function _M:recent(limit)
  local t, out = now(), {}
  for _, r in ipairs(self.db:exec("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", limit or 10) or {}) do
    out[#out + 1] = view(r, t)
  end
  return out
end

--- The outbox as the API shows it: counts by state, the oldest unmined
-- row's age, the rows not yet mined (oldest first) and the latest rows
-- that ended failed or in conflict (at most `limit` of each, 50).
function _M:summary(limit)
  limit = limit or 50
  local t = now()
  local out = { signer = self.address, states = self:states(), oldestUnminedSeconds = self:oldest_unmined(),
    unmined = {}, failed = {}, sender = { running = self.running, holding = self.holding or false,
      lastError = self.last_error } }
  for _, r in ipairs(self.db:exec([[SELECT * FROM outbox WHERE status IN ('pending', 'sent') ORDER BY id
    LIMIT ?]], limit) or {}) do out.unmined[#out.unmined + 1] = view(r, t) end
  for _, r in ipairs(self.db:exec([[SELECT * FROM outbox WHERE status IN ('failed', 'conflict') ORDER BY id DESC
    LIMIT ?]], limit) or {}) do out.failed[#out.failed + 1] = view(r, t) end
  return out
end

return _M
