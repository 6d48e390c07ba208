-- SPDX-License-Identifier: MIT
--- The PostgreSQL backend of workproof.store: the same face as the SQLite
-- one (exec, row, transaction, script, migrate, close) over host.pg_connect
-- (libpq, non-blocking, polled by the host's libuv loop: a query yields
-- only its own coroutine).
--
--   local db = assert(store.open("postgresql://wp@10.0.0.5/workproof", { pool = 4 }))
--
-- A small pool: up to opts.pool connections (default 4), opened on demand,
-- each with its own prepared statements (one per distinct SQL text, made on
-- first use; the server tells which parameters are bytea). A coroutine in
-- db:transaction keeps one connection until COMMIT / ROLLBACK, and its
-- statements run there. A connection that broke is dropped, the next call
-- opens another. Statements are written once for both backends: `?`
-- placeholders (rewritten to $1, $2, ...) and the SQL both engines share
-- (INSERT ... ON CONFLICT, RETURNING, coalesce, ...).
local host = require "workproof.host"

local error, ipairs, pcall, setmetatable, tostring = error, ipairs, pcall, setmetatable, tostring
local remove, running = table.remove, coroutine.running

local _M = {}
local db_mt = {}
db_mt.__index = db_mt

-- `?` -> `$n`, outside quoted strings and identifiers.
local function number_params(sql)
  local out, n, i, len = {}, 0, 1, #sql
  while i <= len do
    local ch = sql:sub(i, i)
    if ch == "'" or ch == '"' then
      local j = sql:find(ch, i + 1, true) or len
      out[#out + 1] = sql:sub(i, j)
      i = j + 1
    elseif ch == "?" then
      n = n + 1
      out[#out + 1] = "$" .. n
      i = i + 1
    else
      local j = sql:find("['\"?]", i) or (len + 1)
      out[#out + 1] = sql:sub(i, j - 1)
      i = j
    end
  end
  return table.concat(out)
end
_M.number_params = number_params

-- A server that stops answering must not hold a request forever: unless
-- the URL says otherwise, statements end after 30 s on the server
-- (statement_timeout) and a dead peer is noticed by TCP keepalives in ~25 s.
local DEFAULTS = { { "statement_timeout", "options=-c%20statement_timeout%3D30000" },
  { "keepalives_idle", "keepalives_idle=10" }, { "keepalives_interval", "keepalives_interval=5" },
  { "keepalives_count", "keepalives_count=3" } }
local function with_defaults(url)
  if not url:match("^postgres") then return url end   -- a key=value string: as given
  for _, d in ipairs(DEFAULTS) do
    if not url:find(d[1], 1, true) then url = url .. (url:find("?", 1, true) and "&" or "?") .. d[2] end
  end
  return url
end
_M.with_defaults = with_defaults

--- Open a pool on url (nothing connects until the first statement, which
-- is then checked here: a wrong URL fails at open). Returns the store or
-- nil, "ESTORE: ...".
function _M.open(url, opts)
  opts = opts or {}
  local self = setmetatable({
    url = with_defaults(url), kind = "postgres", max = opts.pool or 4, n = 0,
    idle = {}, waiting = {}, pinned = setmetatable({}, { __mode = "k" }), stmts = {}, seq = 0,
  }, db_mt)
  local ok, err = self:exec("SELECT 1 AS one")
  if not ok then return nil, err end
  return self
end

local function connect(self)
  self.n = self.n + 1
  local c, err = host.pg_connect(self.url)
  if not c then
    self.n = self.n - 1
    return nil, err
  end
  self.stmts[c] = {}
  return c
end

local function acquire(self)
  local co = running()
  local c = co and self.pinned[co]
  if c then return c, true end
  c = remove(self.idle)
  if c then return c end
  if self.n < self.max or not host.in_coroutine() then return connect(self) end
  -- every connection is in use: wait for one to come back (rare: a pool
  -- smaller than the requests in flight)
  local w = {}
  self.waiting[#self.waiting + 1] = w
  while not w.conn do host.sleep(0.001) end
  return w.conn
end

local function drop(self, c)
  self.stmts[c] = nil
  self.n = self.n - 1
  c:close()
end

local function release(self, c)
  if not c:ok() then return drop(self, c) end
  local w = remove(self.waiting, 1)
  if w then
    w.conn = c
  elseif self.closed then
    drop(self, c)
  else
    self.idle[#self.idle + 1] = c
  end
end

-- Run sql with params on connection c (prepared once per connection).
local function run(self, c, sql, ...)
  local cache = self.stmts[c]
  local st = cache[sql]
  if not st then
    self.seq = self.seq + 1
    local name = "wp" .. self.seq
    local ok, err, state = c:prepare(name, number_params(sql))
    if not ok then return nil, err, state end
    local types
    types, err, state = c:describe(name)
    if not types then return nil, err, state end
    st = { name = name, types = types }
    cache[sql] = st
  end
  return c:run(st.name, st.types, ...)
end

--- Run one statement with ? parameters: rows (an array of column -> value
-- tables) for a query or a RETURNING, the changed-row count otherwise, or
-- nil, "ESTORE: ...", SQLSTATE.
function db_mt:exec(sql, ...)
  local c, pinned = acquire(self)
  if not c then return nil, pinned end
  local res, err, state = run(self, c, sql, ...)
  if not pinned then release(self, c) end
  return res, err, state
end

-- row (the first row of a query) and migrate are the SQLite backend's
local common = require("workproof.store").common
db_mt.row, db_mt.migrate = common.row, common.migrate

--- Several statements, no parameters (migrations): true or nil, err.
function db_mt:script(sql)
  local c, pinned = acquire(self)
  if not c then return nil, pinned end
  local res, err, state = c:exec(sql)
  if not pinned then release(self, c) end
  if res == nil then return nil, err, state end
  return true
end

--- Run fn inside BEGIN ... COMMIT on one connection (READ COMMITTED: use
-- constraints, conditional UPDATEs or SELECT ... FOR UPDATE for what must
-- be atomic). An error in fn rolls back and is re-raised; returns fn's
-- first results.
function db_mt:transaction(fn)
  local co = running()
  if co and self.pinned[co] then return fn() end   -- nested: part of the outer one
  local c, err = acquire(self)
  if not c then return nil, err end
  local ok, e = c:exec("BEGIN")
  if not ok then
    release(self, c)
    return nil, e
  end
  if co then self.pinned[co] = c end
  local res = { pcall(fn) }
  if co then self.pinned[co] = nil end
  if not res[1] then
    c:exec("ROLLBACK")
    release(self, c)
    error(res[2], 0)
  end
  ok, e = c:exec("COMMIT")
  if not ok then
    c:exec("ROLLBACK")
    release(self, c)
    return nil, e
  end
  release(self, c)
  return res[2], res[3]
end

--- Close every idle connection now and the busy ones when they come back.
function db_mt:close()
  self.closed = true
  for i = #self.idle, 1, -1 do drop(self, self.idle[i]) self.idle[i] = nil end
end


function db_mt:__tostring() return "postgres store " .. tostring(self.url):gsub("//[^@/]*@", "//***@") end

_M.db_mt = db_mt
return _M
