-- SPDX-License-Identifier: MIT
--- The durable store, one face over two backends: SQLite (WAL) through
-- LuaJIT's FFI, the default, and PostgreSQL (a "postgres://" or
-- "postgresql://" URL: workproof/store/postgres.lua, libpq on the loop).
-- Trusted tier.
--
--   local db = assert(store.open("var/workproof.db"))      -- or a postgres:// URL
--   db:migrate(list)   -- versioned schema changes (workproof/store/migrate.lua)
--   db:exec("CREATE TABLE IF NOT EXISTS t(k TEXT PRIMARY KEY, v TEXT)")
--   db:exec("INSERT INTO t VALUES (?, ?)", "a", "1")
--   local rows = db:exec("SELECT v FROM t WHERE k = ?", "a")  -- { {v = "1"} }
--   db:transaction(function() ... end)  -- BEGIN IMMEDIATE ... COMMIT / ROLLBACK
--
-- Statements use ? placeholders and SQL both engines run (ON CONFLICT,
-- RETURNING, DOUBLE PRECISION, ...); db.kind says which one it is.
-- Operational failures return nil, "ESTORE: message", SQLSTATE (SQLite's
-- codes mapped: 23505 is a unique violation on both). Several host
-- processes may share one database file: WAL mode, a busy timeout, and
-- BEGIN IMMEDIATE for read-modify-write so checks like "consumed?" are atomic
-- across processes. Calls are synchronous: with WAL and synchronous=NORMAL a
-- write is a few tens of microseconds, far below a request's other costs.
local ffi = require "ffi"

ffi.cdef [[
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
int sqlite3_open_v2(const char *filename, sqlite3 **db, int flags, const char *vfs);
int sqlite3_close_v2(sqlite3 *db);
const char *sqlite3_errmsg(sqlite3 *db);
int sqlite3_busy_timeout(sqlite3 *db, int ms);
int sqlite3_prepare_v2(sqlite3 *db, const char *sql, int n, sqlite3_stmt **stmt, const char **tail);
int sqlite3_bind_text(sqlite3_stmt *s, int i, const char *v, int n, void (*d)(void *));
int sqlite3_bind_blob(sqlite3_stmt *s, int i, const void *v, int n, void (*d)(void *));
int sqlite3_bind_int64(sqlite3_stmt *s, int i, int64_t v);
int sqlite3_bind_double(sqlite3_stmt *s, int i, double v);
int sqlite3_bind_null(sqlite3_stmt *s, int i);
int sqlite3_bind_parameter_count(sqlite3_stmt *s);
int sqlite3_step(sqlite3_stmt *s);
int sqlite3_reset(sqlite3_stmt *s);
int sqlite3_clear_bindings(sqlite3_stmt *s);
int sqlite3_finalize(sqlite3_stmt *s);
int sqlite3_column_count(sqlite3_stmt *s);
const char *sqlite3_column_name(sqlite3_stmt *s, int i);
int sqlite3_column_type(sqlite3_stmt *s, int i);
int64_t sqlite3_column_int64(sqlite3_stmt *s, int i);
double sqlite3_column_double(sqlite3_stmt *s, int i);
const unsigned char *sqlite3_column_text(sqlite3_stmt *s, int i);
const void *sqlite3_column_blob(sqlite3_stmt *s, int i);
int sqlite3_column_bytes(sqlite3_stmt *s, int i);
int sqlite3_changes(sqlite3 *db);
int sqlite3_extended_errcode(sqlite3 *db);
int sqlite3_exec(sqlite3 *db, const char *sql, void *cb, void *arg, char **errmsg);
]]

local C = ffi.load("libsqlite3.so.0")
local TRANSIENT = ffi.cast("void (*)(void *)", -1)
local SQLITE_OK, SQLITE_ROW, SQLITE_DONE = 0, 100, 101
local OPEN_FLAGS = 0x2 + 0x4 + 0x10000   -- READWRITE | CREATE | FULLMUTEX

local type, tonumber, select, error, pcall, setmetatable = type, tonumber, select, error, pcall,
  setmetatable
local ffi_string = ffi.string

local _M = {}
local db_mt = {}
db_mt.__index = db_mt

-- SQLite's extended codes as the SQLSTATE a PostgreSQL store returns for
-- the same failure (the third value of a failed exec): a unique or
-- primary-key violation is 23505 on both.
local SQLSTATE = { [2067] = "23505", [1555] = "23505", [1299] = "23502", [275] = "23514", [787] = "23503",
  [5] = "55P03", [517] = "55P03", [1] = "42601" }

local function errmsg(self)
  return "ESTORE: " .. ffi_string(C.sqlite3_errmsg(self.handle)),
    SQLSTATE[C.sqlite3_extended_errcode(self.handle)] or "HY000"
end

--- Is this store name a PostgreSQL URL?
function _M.is_url(name) return name:find("^postgres") ~= nil and name:find("://", 1, true) ~= nil end

--- Open (creating) a database file, ":memory:" for a private in-memory one,
-- or a pool on a postgres:// URL (opts.pool connections at most).
function _M.open(path, opts)
  if _M.is_url(path) then return require("workproof.store.postgres").open(path, opts) end
  opts = opts or {}
  local pp = ffi.new("sqlite3 *[1]")
  local rc = C.sqlite3_open_v2(path, pp, OPEN_FLAGS, nil)
  if rc ~= SQLITE_OK then
    local msg = pp[0] ~= nil and ffi_string(C.sqlite3_errmsg(pp[0])) or ("code " .. rc)
    if pp[0] ~= nil then C.sqlite3_close_v2(pp[0]) end
    return nil, "ESTORE: cannot open " .. path .. ": " .. msg
  end
  local self = setmetatable({ handle = ffi.gc(pp[0], C.sqlite3_close_v2), stmts = {}, path = path,
    kind = "sqlite" }, db_mt)
  C.sqlite3_busy_timeout(self.handle, opts.busy_timeout_ms or 5000)
  for _, pragma in ipairs({ "PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA foreign_keys=ON" }) do
    local ok, err = self:exec(pragma)
    if not ok then return nil, err end
  end
  return self
end

local function prepare(self, sql)
  local st = self.stmts[sql]
  if st then return st end
  local sp = ffi.new("sqlite3_stmt *[1]")
  if C.sqlite3_prepare_v2(self.handle, sql, #sql, sp, nil) ~= SQLITE_OK then
    local err, state = errmsg(self)
    return nil, err, state
  end
  st = ffi.gc(sp[0], C.sqlite3_finalize)
  self.stmts[sql] = st
  return st
end

local function bind(st, i, v)
  local t = type(v)
  if v == nil then return C.sqlite3_bind_null(st, i) end
  if t == "number" then
    if v == math.floor(v) and v >= -2 ^ 53 and v <= 2 ^ 53 then return C.sqlite3_bind_int64(st, i, v) end
    return C.sqlite3_bind_double(st, i, v)
  end
  if t == "boolean" then return C.sqlite3_bind_int64(st, i, v and 1 or 0) end
  if t == "string" then return C.sqlite3_bind_text(st, i, v, #v, TRANSIENT) end
  error("store: cannot bind a " .. t, 3)
end

local function column(st, i)
  local t = C.sqlite3_column_type(st, i)
  if t == 1 then return tonumber(C.sqlite3_column_int64(st, i)) end
  if t == 2 then return C.sqlite3_column_double(st, i) end
  if t == 5 then return nil end
  local n = C.sqlite3_column_bytes(st, i)
  if t == 4 then return ffi_string(C.sqlite3_column_blob(st, i), n) end
  return ffi_string(C.sqlite3_column_text(st, i), n)
end

--- Run one statement with ? parameters. Returns an array of row tables
-- (column name -> value) for queries, the number of changed rows otherwise,
-- or nil, "ESTORE: ...".
function db_mt:exec(sql, ...)
  local st, err, state = prepare(self, sql)
  if not st then return nil, err, state end
  local n = select("#", ...)
  for i = 1, n do bind(st, i, (select(i, ...))) end
  local rows, ncol = nil, C.sqlite3_column_count(st)
  while true do
    local rc = C.sqlite3_step(st)
    if rc == SQLITE_ROW then
      local row = {}
      for c = 0, ncol - 1 do row[ffi_string(C.sqlite3_column_name(st, c))] = column(st, c) end
      rows = rows or {}
      rows[#rows + 1] = row
    elseif rc == SQLITE_DONE then
      break
    else
      err, state = errmsg(self)
      C.sqlite3_reset(st)
      C.sqlite3_clear_bindings(st)
      return nil, err, state
    end
  end
  C.sqlite3_reset(st)
  C.sqlite3_clear_bindings(st)
  if ncol > 0 then return rows or {} end
  return C.sqlite3_changes(self.handle)
end

--- First row of a query, or nil (and an error message on failure).
function db_mt:row(sql, ...)
  local rows, err, state = self:exec(sql, ...)
  if not rows then return nil, err, state end
  return rows[1]
end

--- Several statements, no parameters (migrations): true or nil, err.
function db_mt:script(sql)
  if C.sqlite3_exec(self.handle, sql, nil, nil, nil) ~= SQLITE_OK then
    local err, state = errmsg(self)
    return nil, err, state
  end
  return true
end

function db_mt:__tostring() return "sqlite store " .. self.path end

--- Versioned migrations (workproof/store/migrate.lua).
function db_mt:migrate(list) return require("workproof.store.migrate")(self, list) end

-- the methods both backends share (built on their own exec)
_M.common = { row = db_mt.row, migrate = db_mt.migrate }

--- Run fn inside BEGIN IMMEDIATE ... COMMIT (atomic across processes). An
-- error in fn rolls back and is re-raised; returns fn's first result.
function db_mt:transaction(fn)
  local ok, err = self:exec("BEGIN IMMEDIATE")
  if not ok then return nil, err end
  local res = { pcall(fn) }
  if not res[1] then
    self:exec("ROLLBACK")
    error(res[2], 0)
  end
  ok, err = self:exec("COMMIT")
  if not ok then
    self:exec("ROLLBACK")
    return nil, err
  end
  return res[2], res[3]
end

function db_mt:close()
  -- finalize now: close_v2 keeps a connection with live statements as a
  -- zombie until they are collected, which a process ending with os.exit
  -- never does (the connection's memory would be lost)
  for k, st in pairs(self.stmts) do
    C.sqlite3_finalize(ffi.gc(st, nil))
    self.stmts[k] = nil
  end
  if self.handle then
    C.sqlite3_close_v2(ffi.gc(self.handle, nil))
    self.handle = nil
  end
end


return _M
