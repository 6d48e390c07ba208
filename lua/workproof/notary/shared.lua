-- SPDX-License-Identifier: MIT
--- Policy state every host shares (store_shared_limits, on by default
-- with a PostgreSQL store): the rate-limit entry of a client key and the
-- circuit breaker live in the store's shared_state table instead of this
-- process's memory, so a limit holds across hosts (Kong's "cluster"
-- policy). The policy code is unchanged: its hook runs on a table read from
-- the store, and what it changed is written back by compare-and-swap on
-- the row's version (an UPDATE ... WHERE version = ?, or an INSERT that
-- loses to a concurrent one): two hosts deciding at the same instant on the
-- same key cannot both win; the loser reads again and decides again. After
-- three lost races the key is decided under a row lock instead (a
-- transaction with SELECT ... FOR UPDATE; BEGIN IMMEDIATE on SQLite), which
-- always makes progress: a key many requests hammer at once is still
-- counted exactly.
--
-- Per request: one SELECT, and one write only when the state changed (a
-- rate-limit entry always does; the breaker only on failures and
-- transitions). When the store fails, the decision falls back to this
-- process's own state (logged once a minute): availability over
-- strictness, as a store outage must not stop the service.
local host = require "workproof.host"
local cjson = require "cjson.safe"
local json = require "workproof.json"

local type, unpack, tostring, pcall, pairs = type, unpack, tostring, pcall, pairs

local _M = {}

local db
local MAX_TRIES = 3
local FORGET_AFTER = 2 * 86400   -- rows unseen this long are swept
local warned_at = -math.huge

--- Use db for shared state (nil: every process keeps its own).
function _M.setup(store) db = store end

function _M.enabled() return db ~= nil end

local function warn(msg)
  if host.now() - warned_at > 60 then
    warned_at = host.now()
    host.log("warn", "shared policy state unavailable, deciding on this process's own: " .. tostring(msg))
  end
end

-- Entries are written with JavaScript's shortest round-trip numbers: cjson
-- writes 14 significant digits, which rounds a timestamp (a rate-limit
-- entry's tat) by up to 50 us — enough to tip the decision at exactly the
-- limit. nil for a table that is not JSON.
local function encode(st)
  local ok, text = pcall(json.stringify, st)
  return ok and text or nil
end

local function decode(entry)
  local st = entry and cjson.decode(entry)
  return type(st) == "table" and st or {}
end

-- Equal as JSON values (the key order of an encoding may differ).
local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- The slow path: the row locked for the decision.
local function locked(name, key, fn)
  local ok, res = pcall(db.transaction, db, function()
    local t = host.time()
    local _, err = db:exec("INSERT INTO shared_state(name, key, entry, version, seen) VALUES (?, ?, '{}', 0, ?) "
      .. "ON CONFLICT DO NOTHING", name, key, t)
    if err then error(err, 0) end
    local row
    row, err = db:row("SELECT entry FROM shared_state WHERE name = ? AND key = ?"
      .. (db.kind == "postgres" and " FOR UPDATE" or ""), name, key)
    if not row then error(err or "ESTORE: shared state row vanished", 0) end
    local st = decode(row.entry)
    local r = { fn(st) }
    _, err = db:exec("UPDATE shared_state SET entry = ?, version = version + 1, seen = ? WHERE name = ? AND key = ?",
      encode(st) or row.entry, t, name, key)
    if err then error(err, 0) end
    return r
  end)
  if not (ok and res) then
    warn(ok and "transaction failed" or res)
    return nil, ok and "ESTORE: transaction failed" or res
  end
  return true, unpack(res)
end

--- Run fn(state) on the shared state (name, key): fn changes the table as
-- the policy hooks do; with() returns true and fn's results, or nil, err
-- when the store cannot be used (the caller falls back).
function _M.with(name, key, fn)
  for _ = 1, MAX_TRIES do
    local row, err = db:row("SELECT entry, version FROM shared_state WHERE name = ? AND key = ?", name, key)
    if err then
      warn(err)
      return nil, err
    end
    local st = decode(row and row.entry)
    local res = { fn(st) }
    local entry, t = encode(st), host.time()
    if not entry then return true, unpack(res) end   -- not JSON (a damaged policy state): not shared
    local n
    if not row then
      n, err = db:exec("INSERT INTO shared_state(name, key, entry, version, seen) VALUES (?, ?, ?, 1, ?) "
        .. "ON CONFLICT DO NOTHING", name, key, entry, t)
    elseif entry == row.entry or same(st, decode(row.entry)) then
      return true, unpack(res)
    else
      n, err = db:exec("UPDATE shared_state SET entry = ?, version = version + 1, seen = ? "
        .. "WHERE name = ? AND key = ? AND version = ?", entry, t, name, key, row.version)
    end
    if not n then
      warn(err)
      return nil, err
    end
    if n == 1 then return true, unpack(res) end
    -- another host wrote first: decide again on what it wrote
  end
  return locked(name, key, fn)
end

--- Forget entries nobody used for two days (the heartbeat's sweep).
function _M.sweep()
  if db then db:exec("DELETE FROM shared_state WHERE seen < ?", host.time() - FORGET_AFTER) end
end

return _M
