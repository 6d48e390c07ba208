-- SPDX-License-Identifier: MIT
--- Durable jobs: the store the controller opens, its `jobs` and `hosts`
-- tables and their queries. Host processes sharing a store (a state dir)
-- own their jobs: jobs.owner names an instance in `hosts`
-- (workproof.owner), and only a dead owner's running jobs are recovered.
local host = require "workproof.host"
local cjson = require "cjson.safe"
local fs = require "workproof.fs"
local store = require "workproof.store"
local owner = require "workproof.owner"
local errors = require "workproof.errors"

local ipairs = ipairs

local _M = {}

local db   -- the store, once opened

local function encode(t) return (cjson.encode(t)) end

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS jobs(
    id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL, updated REAL, task_hash TEXT, response TEXT,
    owner TEXT)]],
  -- the host processes using this store: jobs.owner names one
  [[CREATE TABLE IF NOT EXISTS hosts(
    id TEXT PRIMARY KEY, pid INTEGER NOT NULL, start TEXT NOT NULL, boot TEXT, started REAL)]],
}

local function has_column(table_name, col)
  for _, c in ipairs(db:exec("PRAGMA table_info(" .. table_name .. ")") or {}) do
    if c.name == col then return true end
  end
  return false
end

--- Open (creating its directory) the store at path, migrate it, register
-- this instance. Returns the store, or nil, err.
function _M.open(path)
  local made, merr = fs.mkdir_p(fs.dirname(path))
  if not made then return nil, merr end
  local d, err = store.open(path)
  if not d then return nil, err end
  db = d
  for _, sql in ipairs(SCHEMA) do
    local ok, e = db:exec(sql)
    if not ok then return nil, e end
  end
  -- stores made before jobs had owners: add the column (another process
  -- migrating at the same time makes ours fail; the column is then there)
  if not has_column("jobs", "owner") then
    local ok, e = db:exec("ALTER TABLE jobs ADD COLUMN owner TEXT")
    if not ok and not has_column("jobs", "owner") then return nil, e end
  end
  local me = owner.self()
  local ok, e = db:exec("INSERT OR REPLACE INTO hosts(id, pid, start, boot, started) VALUES (?, ?, ?, ?, ?)",
    me.id, me.pid, me.start, me.boot, host.time())
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

--- Record a job's final answer.
function _M.complete(id, response)
  if not db then return end
  local ok, err = db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? WHERE id = ?",
    host.time(), encode(response), id)
  if not ok then host.log("error", "job " .. id .. " not stored: " .. tostring(err)) end
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

--- Jobs that were running when their host died: ERROR (EINTERRUPTED),
-- refundable. Only a DEAD owner's jobs (its pid gone or naming another
-- process); a live one's run on. Dead instances' rows are then forgotten.
-- Returns the number marked.
function _M.recover()
  if not db then return 0 end
  local me = owner.self().id
  local rows = db:exec([[SELECT j.id, j.task_hash, j.owner, h.pid, h.start, h.boot
    FROM jobs j LEFT JOIN hosts h ON h.id = j.owner WHERE j.status = 'running']]) or {}
  local n = 0
  for _, r in ipairs(rows) do
    if r.owner ~= me and not owner.alive(r.pid, r.start, r.boot) then
      local e = errors.get("EINTERRUPTED")
      local resp = {
        jobId = r.id, taskHash = r.task_hash, status = "completed", result = e.verdict,
        refundEligible = e.refund, error = "EINTERRUPTED: host stopped while the job was running",
        actualHash = cjson.null, executionTimeMs = 0, totalTimeMs = 0,
      }
      local changed = db:exec("UPDATE jobs SET status = 'completed', updated = ?, response = ? "
        .. "WHERE id = ? AND status = 'running'", host.time(), encode(resp), r.id)
      if changed == 1 then n = n + 1 end
    end
  end
  for _, h in ipairs(db:exec("SELECT id, pid, start, boot FROM hosts") or {}) do
    if h.id ~= me and not owner.alive(h.pid, h.start, h.boot) then
      db:exec("DELETE FROM hosts WHERE id = ?", h.id)
    end
  end
  if n > 0 then
    host.log("warn", ("%d job(s) interrupted by a stopped host marked ERROR (refundable)"):format(n))
  end
  return n
end

--- Forget this instance and close the store (a clean stop).
function _M.close()
  if not db then return end
  db:exec("DELETE FROM hosts WHERE id = ?", owner.self().id)
  db:close()
  db = nil
end

return _M
