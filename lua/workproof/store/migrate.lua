-- SPDX-License-Identifier: MIT
--- Versioned migrations, the same for both backends:
--
--   db:migrate({
--     { version = 1, name = "jobs", sql = "CREATE TABLE ..." },          -- both engines
--     { version = 2, name = "x", sqlite = fn_or_sql, postgres = sql },   -- per engine
--   })
--
-- Applied in version order, each in its own transaction together with its
-- row in schema_migrations, under a lock (SQLite: BEGIN IMMEDIATE;
-- PostgreSQL: an advisory transaction lock), so hosts starting at the same
-- time apply each migration once. A function gets the store. Returns true,
-- or nil, "ESTORE: migration <v> (<name>): ...".
local host = require "workproof.host"

local ipairs, type, tostring, pcall, error, sort = ipairs, type, tostring, pcall, error, table.sort

local LOCK = 0x77706d67   -- "wpmg": the advisory lock key of migrations

local TABLE = [[CREATE TABLE IF NOT EXISTS schema_migrations(
  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)]]

local function apply(db, m)
  local step = m[db.kind] or m.sql
  if type(step) == "function" then return step(db) end
  return db:script(step)
end

return function(db, list)
  local todo = {}
  for _, m in ipairs(list) do todo[#todo + 1] = m end
  sort(todo, function(a, b) return a.version < b.version end)
  for _, m in ipairs(todo) do
    local pok, ok, err = pcall(db.transaction, db, function()
      if db.kind == "postgres" then
        local _, lerr = db:exec("SELECT pg_advisory_xact_lock(?) AS locked", LOCK)
        if lerr then error(lerr, 0) end
      end
      local _, cerr = db:script(TABLE)
      if cerr then error(cerr, 0) end
      if db:row("SELECT version FROM schema_migrations WHERE version = ?", m.version) then return true end
      local done, aerr = apply(db, m)
      if not done then error(aerr or "failed", 0) end
      local _, ierr = db:exec("INSERT INTO schema_migrations(version, name, applied) VALUES (?, ?, ?)",
        m.version, m.name, host.time())
      if ierr then error(ierr, 0) end
      return true
    end)
    if not pok then ok, err = nil, ok end
    if not ok then
      return nil, ("ESTORE: migration %d (%s): %s"):format(m.version, m.name, tostring(err))
    end
  end
  return true
end
