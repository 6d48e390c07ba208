-- SPDX-License-Identifier: MIT
--- Durable jobs: the store the controller opens, its `jobs` and `hosts`
-- tables and their queries. Host processes sharing a store (a state dir's
-- SQLite file, or one PostgreSQL server for many machines) own their jobs:
-- jobs.owner names an instance in `hosts` (workproof.owner), and only a
-- dead owner's running jobs are taken over.
--
-- Each instance beats: hosts.seen is renewed every lease/3 seconds. An
-- instance is dead when its beat is older than the lease (store_lease), or
-- at once when it ran on this machine (same boot id) and its process is
-- gone. Taking a dead instance's running job over is one conditional UPDATE
-- (status still 'running', owner still the dead one), so of several hosts
-- sweeping at once exactly one does it: the job is answered ERROR
-- (EINTERRUPTED, refundable) and shows so on every host.
local host = require "workproof.host"
local cjson = require "cjson.safe"
local fs = require "workproof.fs"
local store = require "workproof.store"
local owner = require "workproof.owner"
local errors = require "workproof.errors"

local ipairs, tostring = ipairs, tostring

local _M = {}

local db      -- the store, once opened
local lease   -- seconds without a beat before an instance is dead
local beating -- the heartbeat coroutine runs

local function encode(t) return (cjson.encode(t)) end

--- Open (creating its directory) the store at path (or a postgres:// URL),
-- migrate it, register this instance. opts: pool, lease. Returns the
-- store, or nil, err.
function _M.open(path, opts)
  opts = opts or {}
  if not store.is_url(path) then
    local made, merr = fs.mkdir_p(fs.dirname(path))
    if not made then return nil, merr end
  end
  local d, err = store.open(path, { pool = opts.pool })
  if not d then return nil, err end
  local ok, e = d:migrate(require "workproof.store.schema")
  if not ok then
    d:close()
    return nil, e
  end
  db, lease = d, opts.lease or 15
  local me = owner.self()
  ok, e = db:exec([[INSERT INTO hosts(id, pid, start, boot, started, seen, machine) VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET pid = excluded.pid, start = excluded.start, boot = excluded.boot,
    started = excluded.started, seen = excluded.seen, machine = excluded.machine]],
    me.id, me.pid, me.start, me.boot, host.time(), host.time(), owner.machine())
  if not ok then return nil, e end
  return db
end

--- The open store (nil before open).
function _M.db() return db end

--- Record a job as running, owned by this instance.
function _M.create(id, task_hash)
  if not db then return end
  local ok, err = db:exec("INSERT INTO jobs(id, status, created, updated, task_hash, owner) "
    .. "VALUES (?, 'running', ?, ?, ?, ?)", id, host.time(), host.time(), task_hash, owner.self().id)
  if not ok then host.log("error", "job " .. id .. " not recorded: " .. tostring(err)) end
end

--- Record a job's final answer (unless another host took it over first:
-- its answer stands). With task_hash, the job was never recorded as running
-- (a synchronous request: nobody can ask for it before its answer, which
-- names it): its one row is written now, completed.
function _M.complete(id, response, task_hash)
  if not db then return end
  local n, err
  if task_hash then
    n, err = db:exec("INSERT INTO jobs(id, status, created, updated, task_hash, owner, response) "
      .. "VALUES (?, 'completed', ?, ?, ?, ?, ?)", id, host.time(), host.time(), task_hash, owner.self().id,
      encode(response))
  else
    n, err = db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? "
      .. "WHERE id = ? AND status = 'running'", host.time(), encode(response), id)
  end
  if not n then host.log("error", "job " .. id .. " not stored: " .. tostring(err)) end
  if n == 0 then host.log("warn", "job " .. id .. " was answered by another host meanwhile; its answer stands") end
end

--- A job as GET /verify/{id} shows it: { raw = stored JSON } when done,
-- { body = running record } while running, nil when unknown.
function _M.get(id)
  if not id:find("^%x+$") or #id > 64 then return nil end
  local row = db and db:row("SELECT status, response, task_hash FROM jobs WHERE id = ?", id)
  if not row then return nil end
  if row.status == "running" then
    return { body = { jobId = id, taskHash = row.task_hash, status = "running" } }
  end
  return { raw = row.response }
end

-- Is this hosts row (pid, start, boot, seen) a dead instance?
local function dead(h, now)
  if h.pid == nil then return true end   -- no row: gone for good
  if h.boot == owner.boot_id() and not owner.alive(h.pid, h.start, h.boot) then return true end
  return (h.seen or h.started or 0) < now - lease
end

--- Jobs that were running when their host died: ERROR (EINTERRUPTED),
-- refundable. Only a DEAD owner's jobs; a live one's run on. Dead
-- instances' rows are then forgotten. Returns the number taken over here.
function _M.recover()
  if not db then return 0 end
  local me, now = owner.self().id, host.time()
  local rows = db:exec([[SELECT j.id, j.task_hash, j.owner, h.pid, h.start, h.boot, h.seen, h.started
    FROM jobs j LEFT JOIN hosts h ON h.id = j.owner WHERE j.status = 'running']]) or {}
  local n = 0
  for _, r in ipairs(rows) do
    if r.owner ~= me and dead(r, now) then
      local e = errors.get("EINTERRUPTED")
      local resp = {
        jobId = r.id, taskHash = r.task_hash, status = "completed", result = e.verdict,
        refundEligible = e.refund, error = "EINTERRUPTED: host stopped while the job was running",
        actualHash = cjson.null, executionTimeMs = 0, totalTimeMs = 0,
      }
      local changed = db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? "
        .. "WHERE id = ? AND status = 'running' AND coalesce(owner, '') = ?", host.time(), encode(resp), r.id,
        r.owner or "")
      if changed == 1 then
        n = n + 1
        host.log("warn", ("job %s of stopped host %s taken over: ERROR (refundable)"):format(r.id, tostring(r.owner)))
      end
    end
  end
  for _, h in ipairs(db:exec("SELECT id, pid, start, boot, seen, started FROM hosts") or {}) do
    if h.id ~= me and dead(h, now) then
      db:exec("DELETE FROM hosts WHERE id = ? AND (seen IS NULL OR seen < ?)", h.id, now - lease + 1)
    end
  end
  if n > 0 then
    host.log("warn", ("%d job(s) interrupted by a stopped host marked ERROR (refundable)"):format(n))
  end
  return n
end

--- Beat every lease/3 seconds and take over dead hosts' jobs (then run
-- also(), a sweep), until stopped. Returns the stop function.
function _M.start_heartbeat(also)
  beating = true
  local me = owner.self()
  host.spawn(function()
    while beating and db do
      host.sleep(lease / 3)
      if not (beating and db) then break end
      local n, err = db:exec("UPDATE hosts SET seen = ? WHERE id = ?", host.time(), me.id)
      if n == 0 then   -- forgotten by a host that thought this one dead: come back
        db:exec("INSERT INTO hosts(id, pid, start, boot, started, seen, machine) VALUES (?, ?, ?, ?, ?, ?, ?) "
          .. "ON CONFLICT DO NOTHING", me.id, me.pid, me.start, me.boot, host.time(), host.time(), owner.machine())
      elseif not n then
        host.log("warn", "store heartbeat failed: " .. tostring(err))
      end
      _M.recover()
      if also then also() end
    end
  end)
  return function() beating = false end
end

--- Forget completed jobs answered more than `retention` seconds ago, at
-- most `batch` of them (the oldest first). Running jobs are never pruned;
-- payments and attestations live in their own tables, kept as long as
-- replay protection needs them. Returns the number deleted (0 without a
-- store), or nil, err.
function _M.prune(retention, batch, now)
  if not db then return 0 end
  return db:exec("DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE updated < ? "
    .. "AND status = 'completed' ORDER BY updated LIMIT ?)", (now or host.time()) - retention, batch)
end

--- Prune in the background (docs/configuration.md, `jobs`): every
-- `interval` seconds, batches of `batch` rows until none is left, the loop
-- served between two batches. settings() gives the current { retention,
-- interval, batch } (a reload applies at the next round; retention 0 keeps
-- everything). Returns a stop function.
function _M.start_pruner(settings)
  local running = true
  host.spawn(function()
    while running do
      local s = settings()
      host.sleep(s.interval)
      s = settings()
      while running and s.retention > 0 do
        local n, err = _M.prune(s.retention, s.batch)
        if not n then
          host.log("error", "jobs: prune: " .. tostring(err))
          break
        end
        if n < s.batch then break end
        host.sleep(0)   -- let requests in between two batches
      end
    end
  end)
  return function() running = false end
end

--- Forget this instance and close the store (a clean stop).
function _M.close()
  if not db then return end
  beating = false
  db:exec("DELETE FROM hosts WHERE id = ?", owner.self().id)
  db:close()
  db = nil
end

return _M
