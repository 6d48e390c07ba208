-- SPDX-License-Identifier: MIT
--- Admission of work to the workers: a cap on active workers and on the
-- workers one client holds at a time (docs/policies.md).
--
-- admit() takes a slot, release() gives it back; the controller calls
-- release exactly once per successful admit (in its cleanup stage). Each
-- slot is a lease stamped with the clock: a slot not released within
-- lease_seconds is reclaimed (and logged), so a lost release — a bug, a
-- coroutine that died — costs capacity for a while, not forever. Set
-- lease_seconds above the longest job (timeout_max + spawn + grace).
--
-- State (host-owned, survives reloads):
--   state.clients[key] = { admit time, ... }   (oldest first; key removed at 0)
--   state.active       = total slots held
--   state.v            = 1 (the layout version; anything else is repaired)
-- A damaged or older state is repaired: a number where a lease list is
-- expected becomes that many leases stamped now; a missing or wrong total
-- is recounted.
local _M = {
  name = "worker_threshold",
  version = "1",
  description = "caps active workers overall and per client",
}

local type, pairs, tostring, remove = type, pairs, tostring, table.remove
local floor = math.floor
local clock = now

_M.schema = {
  max_active = { type = "integer", default = 100, min = 1, max = 1000000,
    description = "workers running at the same time, all clients together" },
  per_client = { type = "integer", default = 10, min = 1, max = 1000000,
    description = "workers one client (rate_limit client key) may hold at a time" },
  retry_after = { type = "integer", default = 5, min = 1, max = 3600,
    description = "seconds suggested to a refused client (Retry-After)" },
  lease_seconds = { type = "number", default = 900, min = 0, max = 604800,
    description = "a slot not released after this long is reclaimed; 0 = never" },
}

local function num(v)
  return type(v) == "number" and v == v and v or nil
end

-- Returns the clients map with every entry a list of numbers; keeps
-- state.active equal to the number of leases.
local function clients_of(state, t)
  local c = state.clients
  local dirty = false
  if type(c) ~= "table" then
    c = {}
    state.clients = c
    dirty = true
  end
  if state.v ~= 1 or not num(state.active) or state.active < 0 then dirty = true end
  if dirty then
    local n = 0
    for k, l in pairs(c) do
      if type(l) == "number" and l >= 1 then
        local list = {}
        for i = 1, floor(l) do list[i] = t end
        c[k], l = list, list
      end
      if type(l) ~= "table" then
        c[k] = nil
      else
        for i = #l, 1, -1 do if not num(l[i]) then remove(l, i) end end
        if #l == 0 then c[k] = nil else n = n + #l end
      end
    end
    state.active = n
    state.v = 1
  end
  return c
end

local function list_of(c, key)
  local l = c[key]
  if l ~= nil and type(l) ~= "table" then l = nil end
  return l
end

-- Drop the leases of one client older than lease_seconds; returns how many.
local function reclaim_key(conf, state, c, key, t)
  local l = list_of(c, key)
  if not l or conf.lease_seconds <= 0 then return 0 end
  local n = 0
  while l[1] and (num(l[1]) or 0) + conf.lease_seconds <= t do
    remove(l, 1)
    n = n + 1
  end
  if #l == 0 then c[key] = nil end
  state.active = state.active - n
  if state.active < 0 then state.active = 0 end
  return n
end

local function reclaim_all(conf, state, c, t)
  local keys, n = {}, 0
  for k in pairs(c) do keys[#keys + 1] = k end
  for _, k in pairs(keys) do n = n + reclaim_key(conf, state, c, k, t) end
  return n
end

--- Take a worker slot for client_key. Returns true, or false, reason
-- ("client": this client holds per_client slots; "capacity": max_active
-- slots are held) and retry_after (seconds).
function _M.admit(conf, state, client_key)
  local t = clock()
  local key = tostring(client_key or "?")
  local c = clients_of(state, t)
  local got = reclaim_key(conf, state, c, key, t)
  if state.active >= conf.max_active and conf.lease_seconds > 0 then
    got = got + reclaim_all(conf, state, c, t)
  end
  if got > 0 then log("warn", ("reclaimed %d worker slot(s) held over %g s"):format(got, conf.lease_seconds)) end
  local l = list_of(c, key)
  if l and #l >= conf.per_client then return false, "client", conf.retry_after end
  if state.active >= conf.max_active then return false, "capacity", conf.retry_after end
  if not l then
    l = {}
    c[key] = l
  end
  l[#l + 1] = t
  state.active = state.active + 1
  return true
end

--- Give back a slot of client_key (the oldest). A release without a
-- matching admit does nothing; the counts never go negative. Returns true
-- when a slot was released.
function _M.release(_, state, client_key)
  local key = tostring(client_key or "?")
  local c = clients_of(state, clock())
  local l = list_of(c, key)
  if not l or #l == 0 then
    c[key] = nil
    return false
  end
  remove(l, 1)
  if #l == 0 then c[key] = nil end
  state.active = state.active - 1
  if state.active < 0 then state.active = 0 end
  return true
end

--- Slots held now.
function _M.active(_, state)
  clients_of(state, clock())
  return state.active
end

--- Slots held by one client now.
function _M.held(_, state, client_key)
  local l = list_of(clients_of(state, clock()), tostring(client_key or "?"))
  return l and #l or 0
end

return _M
