-- SPDX-License-Identifier: MIT
-- One suite, both backends: SQLite (a temporary file) and PostgreSQL (a
-- server of its own, spec/helpers.lua start_postgres, a fresh database per
-- test).
local store = require "workproof.store"
local helpers = require "helpers"
local host   -- (#host: the PostgreSQL backend runs on the host's loop)

local pg   -- the PostgreSQL server, started once for the file

local BACKENDS = {
  sqlite = {
    open = function()
      local path = os.tmpname()
      return assert(store.open(path)), path, function()
        os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
      end
    end,
    real = "REAL", blob = "BLOB",
  },
  postgres = {
    open = function()
      pg = pg or helpers.start_postgres()
      local url = pg.db()
      return assert(store.open(url, { pool = 3 })), url, function() end
    end,
    real = "DOUBLE PRECISION", blob = "BYTEA",
  },
}

teardown(function() if pg then pg.stop() end end)

for _, kind in ipairs({ "sqlite", "postgres" }) do
  local B = BACKENDS[kind]
  describe("store (" .. kind .. ") #host", function()
    local db, where, cleanup
    before_each(function() db, where, cleanup = B.open() end)
    after_each(function()
      db:close()
      cleanup()
    end)

    it("creates, inserts with parameters of every type, queries", function()
      assert.equal(kind, db.kind)
      assert.equal(0, db:exec(("CREATE TABLE t(k TEXT PRIMARY KEY, i BIGINT, f %s, b %s, n TEXT)"):format(
        B.real, B.blob)))
      assert.equal(1, db:exec("INSERT INTO t VALUES (?, ?, ?, ?, ?)", "a", 42, 1.5, "bin\0ary\255'?\\x", nil))
      assert.equal(1, db:exec("INSERT INTO t(k, i) VALUES (?, ?)", "b", true))
      local rows = db:exec("SELECT * FROM t ORDER BY k")
      assert.same({ { k = "a", i = 42, f = 1.5, b = "bin\0ary\255'?\\x" }, { k = "b", i = 1 } }, rows)
      assert.same({ i = 42 }, db:row("SELECT i FROM t WHERE k = ?", "a"))
      assert.is_nil(db:row("SELECT i FROM t WHERE k = ?", "zz"))
      -- a ? inside a string literal is text, not a parameter
      assert.same({ { q = "what?", k = "a" } }, db:exec("SELECT 'what?' AS q, k FROM t WHERE k = ?", "a"))
      -- big integers and timestamps survive
      assert.equal(1, db:exec("UPDATE t SET i = ?, f = ? WHERE k = ?", 2 ^ 53, 1764000000.123456, "b"))
      assert.same({ i = 2 ^ 53, f = 1764000000.123456 }, db:row("SELECT i, f FROM t WHERE k = 'b'"))
    end)

    it("shares INSERT ... ON CONFLICT and RETURNING", function()
      db:exec("CREATE TABLE c(k TEXT PRIMARY KEY, n BIGINT NOT NULL)")
      assert.equal(1, db:exec("INSERT INTO c(k, n) VALUES (?, 1) ON CONFLICT DO NOTHING", "x"))
      assert.equal(0, db:exec("INSERT INTO c(k, n) VALUES (?, 1) ON CONFLICT DO NOTHING", "x"))
      local r = db:exec("INSERT INTO c(k, n) VALUES (?, 1) ON CONFLICT(k) DO UPDATE SET n = c.n + 1 RETURNING n", "x")
      assert.same({ { n = 2 } }, r)
      assert.same({}, db:exec("UPDATE c SET n = 0 WHERE k = ? RETURNING n", "nobody"))
    end)

    it("returns nil, ESTORE, SQLSTATE on SQL errors and constraint violations, and stays usable", function()
      local ok, err, state = db:exec("SELEC nonsense")
      assert.is_nil(ok)
      assert.matches("^ESTORE: .*syntax error", err)
      assert.equal("42601", state)
      db:exec("CREATE TABLE u(k TEXT PRIMARY KEY)")
      assert.equal(1, db:exec("INSERT INTO u VALUES (?)", "x"))
      ok, err, state = db:exec("INSERT INTO u VALUES (?)", "x")
      assert.is_nil(ok)
      assert.matches("^ESTORE: .*[Uu][Nn][Ii][Qq][Uu][Ee]", err)
      assert.equal("23505", state)
      assert.equal(1, #db:exec("SELECT * FROM u"))
      ok, err = db:exec("SELECT * FROM no_such_table")
      assert.is_nil(ok)
      assert.matches("no_such_table", err)
    end)

    it("transactions commit, and roll back on error", function()
      db:exec("CREATE TABLE v(n INTEGER)")
      assert.equal("done", db:transaction(function() db:exec("INSERT INTO v VALUES (1)") return "done" end))
      assert.has_error(function()
        db:transaction(function()
          db:exec("INSERT INTO v VALUES (2)")
          error("abort")
        end)
      end, "abort")
      assert.same({ { n = 1 } }, db:exec("SELECT n FROM v"))
    end)

    it("is shared by two connections (as by two host processes)", function()
      db:exec("CREATE TABLE w(k TEXT PRIMARY KEY)")
      local other = assert(store.open(where))
      assert.equal(1, db:exec("INSERT INTO w VALUES ('seen')"))
      local _, err, state = other:exec("INSERT INTO w VALUES ('seen')")
      assert.matches("^ESTORE", err)
      assert.equal("23505", state)
      if kind == "sqlite" then assert.same({ { journal_mode = "wal" } }, other:exec("PRAGMA journal_mode")) end
      other:close()
    end)

    it("migrates in version order, once, and records each version", function()
      local calls = 0
      local list = {
        { version = 2, name = "second", sql = "ALTER TABLE m ADD COLUMN b TEXT" },
        { version = 1, name = "first", sql = "CREATE TABLE m(a TEXT); CREATE INDEX m_a ON m(a)" },
        { version = 3, name = "per engine",
          sqlite = function(d) calls = calls + 1 return d:exec("INSERT INTO m(a) VALUES ('s')") end,
          postgres = "INSERT INTO m(a) VALUES ('p')" },
      }
      assert.is_true(db:migrate(list))
      assert.is_true(db:migrate(list))
      assert.same({ { version = 1 }, { version = 2 }, { version = 3 } },
        db:exec("SELECT version FROM schema_migrations ORDER BY version"))
      assert.same({ { a = kind == "sqlite" and "s" or "p" } }, db:exec("SELECT a FROM m"))
      assert.equal(kind == "sqlite" and 1 or 0, calls)
      -- a failing migration is rolled back whole and named
      local ok, err = db:migrate({ { version = 4, name = "broken", sql = "CREATE TABLE z(a TEXT); CREATE TABL oops" } })
      assert.is_nil(ok)
      assert.matches("^ESTORE: migration 4 %(broken%): ", err)
      assert.is_nil(db:row("SELECT version FROM schema_migrations WHERE version = 4"))
      assert.is_nil(db:exec("SELECT * FROM z"))
    end)
  end)
end

describe("store (sqlite only) #host", function()
  it("reports a database that cannot be opened", function()
    local d, err = store.open("/nonexistent-dir/x.db")
    assert.is_nil(d)
    assert.matches("^ESTORE: cannot open", err)
  end)

  it("shared policy state keeps numbers exactly (a rate-limit entry's time at the limit)", function()
    local shared = require "workproof.notary.shared"
    local path = os.tmpname()
    local db = assert(store.open(path))
    assert(db:migrate(require "workproof.store.schema"))
    shared.setup(db)
    local t = 1764933000.123456789
    assert.is_true((shared.with("rate_limit", "k", function(e) e.tat = t end)))
    local back
    assert.is_true((shared.with("rate_limit", "k", function(e) back = e.tat end)))
    shared.setup(nil)
    db:close()
    os.remove(path); os.remove(path .. "-wal"); os.remove(path .. "-shm")
    assert.equal(t, back)
  end)
end)

describe("store (postgres only) #host", function()
  host = require "workproof.host"
  local url
  before_each(function()
    pg = pg or helpers.start_postgres()
    url = pg.db()
  end)

  it("reports a server that cannot be reached, or a bad URL, at open", function()
    local d, err = store.open(("postgresql://workproof@127.0.0.1:%d/postgres"):format(pg.port == 1 and 2 or 1))
    assert.is_nil(d)
    assert.matches("^ESTORE: cannot connect to PostgreSQL: .*refused", err)
    d, err = store.open("postgresql://workproof@127.0.0.1:" .. pg.port .. "/no_such_db")
    assert.is_nil(d)
    assert.matches("no_such_db", err)
    d, err = store.open("postgresql://[bad")
    assert.is_nil(d)
    assert.matches("^ESTORE: ", err)
  end)

  it("ends statements after 30 s and notices a dead peer unless the URL says otherwise", function()
    local db = assert(store.open(url))
    assert.equal("30s", db:row("SHOW statement_timeout").statement_timeout)
    db:close()
    local sep = url:find("?", 1, true) and "&" or "?"
    local own = assert(store.open(url .. sep .. "options=-c%20statement_timeout%3D250"))
    assert.equal("250ms", own:row("SHOW statement_timeout").statement_timeout)
    local ok, err = own:exec("SELECT pg_sleep(2)")
    assert.is_nil(ok)
    assert.matches("statement timeout", err)
    own:close()
  end)

  it("runs statements of many coroutines at once on a small pool, each on its own", function()
    local db = assert(store.open(url, { pool = 3 }))
    local done, bad, t0 = 0, 0, host.now()
    for i = 1, 12 do
      host.spawn(function()
        local r = db:row("SELECT pg_sleep(0.1), ? AS v", i)
        if not (r and r.v == tostring(i)) then bad = bad + 1 end
        done = done + 1
      end)
    end
    assert.is_true(helpers.eventually(function() return done == 12 end, 10))
    assert.equal(0, bad)
    assert.equal(3, db.n)                   -- never more than the pool
    assert.is_true(host.now() - t0 >= 0.4)  -- 12 sleeps of 0.1 s, three at a time
    db:close()
  end)

  it("keeps a transaction on one connection while other coroutines run", function()
    local db = assert(store.open(url, { pool = 2 }))
    db:exec("CREATE TABLE tx(n INTEGER)")
    local seen
    host.spawn(function()
      db:transaction(function()
        db:exec("INSERT INTO tx VALUES (1)")
        host.sleep(0.2)
        db:exec("INSERT INTO tx VALUES (2)")
      end)
    end)
    host.sleep(0.05)
    seen = db:row("SELECT count(*) AS n FROM tx")   -- another connection: nothing committed yet
    assert.equal(0, seen.n)
    assert.is_true(helpers.eventually(function() return db:row("SELECT count(*) AS n FROM tx").n == 2 end, 5))
    db:close()
  end)

  it("drops a connection the server ended and carries on with a new one", function()
    local db = assert(store.open(url, { pool = 1 }))
    local pid = db:row("SELECT pg_backend_pid() AS p").p
    local admin = assert(store.open(url))
    assert.same({ { t = 1 } }, admin:exec("SELECT 1 AS t FROM pg_terminate_backend(?)", pid))
    admin:close()
    local ok, err = db:row("SELECT 1 AS one")
    assert.is_nil(ok)
    assert.matches("^ESTORE", err)
    assert.same({ one = 1 }, db:row("SELECT 1 AS one"))
    assert.is_not.equal(pid, db:row("SELECT pg_backend_pid() AS p").p)
    db:close()
  end)

  it("applies each migration once when several hosts migrate at the same time", function()
    local list = { { version = 1, name = "one", sql = "CREATE TABLE once(a TEXT)" },
      { version = 2, name = "two", sql = "INSERT INTO once VALUES ('x')" } }
    local done, errs = 0, {}
    for _ = 1, 4 do
      host.spawn(function()
        local d = assert(store.open(url))
        local ok, err = d:migrate(list)
        if not ok then errs[#errs + 1] = err end
        d:close()
        done = done + 1
      end)
    end
    assert.is_true(helpers.eventually(function() return done == 4 end, 10))
    assert.same({}, errs)
    local db = assert(store.open(url))
    assert.same({ { a = "x" } }, db:exec("SELECT a FROM once"))
    db:close()
  end)

  it("shared policy state: 60 racing read-modify-writes on one key from 3 stores lose none", function()
    local shared = require "workproof.notary.shared"
    local stores = {}
    for i = 1, 3 do stores[i] = assert(store.open(url, { pool = 4 })) end
    assert.is_true(stores[1]:migrate(require "workproof.store.schema"))
    local done, failed = 0, 0
    for i = 1, 60 do
      host.spawn(function()
        -- spread over three stores (pools of connections), one decision each
        shared.setup(stores[i % 3 + 1])
        local ok = shared.with("spec", "k", function(e)
          host.sleep(0.001)   -- widen the race between the read and the write
          e.n = (e.n or 0) + 1
          return e.n
        end)
        if not ok then failed = failed + 1 end
        done = done + 1
      end)
    end
    assert.is_true(helpers.eventually(function() return done == 60 end, 30))
    shared.setup(nil)
    assert.equal(0, failed)
    assert.same({ entry = '{"n":60}' }, stores[1]:row("SELECT entry FROM shared_state WHERE name = 'spec'"))
    for _, d in ipairs(stores) do d:close() end
  end)
end)
