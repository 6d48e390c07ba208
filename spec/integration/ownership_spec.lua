-- SPDX-License-Identifier: MIT
-- Host processes sharing one state dir own their records: a second
-- controller started on the dir leaves the first one's running jobs and
-- workers alone; only a DEAD host's jobs are marked ERROR (refundable) and
-- its workers reaped. Real controllers, real workers, one SQLite store.
local wp = require "workproof"
local h = require "helpers"
local host = require "workproof.host"
local owner = require "workproof.owner"
local store = require "workproof.store"
local cjson = require "cjson.safe"

local sha, alive, ls, new_dir = h.sha, h.alive, h.ls, h.policy_dir

-- no warm workers: the records counted here are the running jobs' (the
-- last test has warm ones)
local CONFIG = h.config("worker = { pool = { lua = 0, javascript = 0 } },")

-- a Lua task that keeps its worker busy for a few seconds, then answers
local SLOW = "local x = 0 for i = 1, 3e8 do x = x + i % 7 end print('done')"

local function post_async(srv, body)
  local st, r = h.verify(srv, body, { Prefer = "respond-async" })
  assert.equal(202, st, cjson.encode(r))
  return r
end

local function job(srv, id)
  local _, _, b = h.http("GET", srv.url .. "/verify/" .. id)
  return cjson.decode(b or "")
end

local function wait_job(srv, id, seconds)
  local deadline = wp.now() + seconds
  while wp.now() < deadline do
    local j = job(srv, id)
    if j and j.status == "completed" then return j end
    wp.sleep(0.1)
  end
  error("job " .. id .. " still running after " .. seconds .. " s")
end

local workers_of = h.workers_of

local function wait_workers(dir, pid)
  for _ = 1, 50 do
    local pids = workers_of(dir, pid)
    if #pids > 0 then return pids end
    wp.sleep(0.05)
  end
  error("no worker recorded for controller " .. pid)
end

describe("controllers sharing a state dir #integration", function()
  it("a second controller leaves the first one's running job and worker alone", function()
    local dir = new_dir()
    local a = h.start_controller(CONFIG, { dir = dir })
    local t0 = wp.now()
    local r = post_async(a, { taskType = "code-execution", language = "lua", code = SLOW,
      expectedHash = sha("done"), timeoutSeconds = 60 })
    local wpids = wait_workers(dir, a.proc.pid)
    assert.equal(1, #wpids)
    -- the second process starts while the job runs (its start-up recovers
    -- jobs and reaps orphans)
    local b = h.start_controller(CONFIG, { dir = dir })
    assert.is_true(alive(wpids[1]), "the first controller's worker was killed")
    assert.equal("running", job(b, r.jobId).status)
    local j = wait_job(a, r.jobId, 60)
    local took = wp.now() - t0
    assert.equal("VALID", j.result, cjson.encode(j))
    assert.is_false(j.refundEligible)
    assert.is_true(took > 1, "the slow task took only " .. took .. " s")
    -- the same verdict through the second controller (one store)
    assert.equal("VALID", job(b, r.jobId).result)
    local sb = h.stop(b)
    local sa = h.stop(a)
    assert.not_matches("orphaned worker", sb.stderr)
    assert.not_matches("marked ERROR", sb.stderr)
    assert.equal(0, sa.exit_status)
    -- clean stops forget their instances
    assert.same({}, ls(dir .. "/var/workers"))
    local db = assert(store.open(dir .. "/var/workproof.db"))
    assert.same({}, db:exec("SELECT id FROM hosts"))
    db:close()
  end)

  it("after the first dies (kill -9), the next start marks its job ERROR and reaps its worker; "
    .. "a live one keeps its own", function()
    local dir = new_dir()
    local a = h.start_controller(CONFIG, { dir = dir })
    local b = h.start_controller(CONFIG, { dir = dir })
    local ra = post_async(a, { taskType = "code-execution", language = "lua", code = "while true do end",
      expectedHash = sha("4"), timeoutSeconds = 60 })
    local rb = post_async(b, { taskType = "code-execution", language = "lua", code = SLOW,
      expectedHash = sha("done"), timeoutSeconds = 60 })
    local apids = wait_workers(dir, a.proc.pid)
    local bpids = wait_workers(dir, b.proc.pid)
    h.stop(a, 9)   -- SIGKILL: no clean-up of any kind
    assert.is_true(alive(apids[1]), "the dead controller's worker should outlive it")
    local c = h.start_controller(CONFIG, { dir = dir })
    wp.sleep(0.1)
    local ja = job(c, ra.jobId)
    assert.equal("completed", ja.status)
    assert.equal("ERROR", ja.result)
    assert.is_true(ja.refundEligible)
    assert.is_false(alive(apids[1]), "the dead controller's worker was not reaped")
    -- b is alive: its job and worker run on, to their verdict
    assert.is_true(alive(bpids[1]), "the live controller's worker was killed")
    local jb = wait_job(b, rb.jobId, 60)
    assert.equal("VALID", jb.result, cjson.encode(jb))
    local sc = h.stop(c)
    h.stop(b)
    assert.matches("1 orphaned worker", sc.stderr)
    assert.matches("1 job%(s%) interrupted", sc.stderr)
  end)

  it("a dead controller's warm workers are reaped at the next start; a clean stop ends its own", function()
    local dir = new_dir()
    local WARM = h.config("worker = { pool = { lua = 2, javascript = 1 } },")
    -- the 3 warm workers a controller keeps (waits for them)
    local function warm_of(pid)
      local pids
      for _ = 1, 100 do
        pids = workers_of(dir, pid)
        if #pids == 3 then break end
        wp.sleep(0.05)
      end
      assert.equal(3, #pids)
      return pids
    end
    local a = h.start_controller(WARM, { dir = dir })
    local apids = warm_of(a.proc.pid)
    -- a warm worker leaves by itself when its stdin ends with its controller;
    -- stopped, these cannot, so only the next start's reaper can end them
    for _, p in ipairs(apids) do assert(os.execute("kill -STOP " .. p) == 0) end
    h.stop(a, 9)
    for _, p in ipairs(apids) do assert.is_true(alive(p), "a warm worker died with its controller") end
    local c = h.start_controller(WARM, { dir = dir })
    wp.sleep(0.1)
    for _, p in ipairs(apids) do assert.is_false(alive(p), "an orphaned warm worker was not reaped") end
    local cpids = warm_of(c.proc.pid)
    local sc = h.stop(c)
    assert.equal(0, sc.exit_status)
    assert.matches("3 orphaned worker", sc.stderr)
    wp.sleep(0.3)
    for _, p in ipairs(cpids) do assert.is_false(alive(p), "a clean stop left a warm worker") end
    assert.same({}, ls(dir .. "/var/workers"))
  end)

  it("a store from before job owners is migrated; its running jobs are a dead host's", function()
    local dir = new_dir()
    os.execute("mkdir -p " .. h.q(dir .. "/var"))
    local db = assert(store.open(dir .. "/var/workproof.db"))
    assert(db:exec([[CREATE TABLE jobs(id TEXT PRIMARY KEY, status TEXT NOT NULL, created REAL,
      updated REAL, task_hash TEXT, response TEXT)]]))
    assert(db:exec("INSERT INTO jobs(id, status, created, updated, task_hash) VALUES ('00ff', 'running', 1, 1, 'ab')"))
    db:close()
    local c = h.start_controller(CONFIG, { dir = dir })
    local j = job(c, "00ff")
    h.stop(c)
    assert.equal("ERROR", j.result)
    assert.is_true(j.refundEligible)
    db = assert(store.open(dir .. "/var/workproof.db"))
    local cols = {}
    for _, col in ipairs(db:exec("PRAGMA table_info(jobs)")) do cols[col.name] = true end
    db:close()
    assert.is_true(cols.owner)
  end)
end)

describe("owner records", function()
  it("this process is alive under its own record; other records are judged by pid and start time", function()
    local me = owner.self()
    assert.matches("^%x+$", me.id)
    assert.equal(32, #me.id)
    assert.equal(host.pid, me.pid)
    assert.is_true(owner.alive(me.pid, me.start, me.boot))
    assert.is_false(owner.alive(me.pid, me.start .. "1", me.boot))
    assert.is_false(owner.alive(nil, me.start, me.boot))
    assert.is_false(owner.alive(me.pid, "?", me.boot))
    assert.same(me, owner.parse(owner.format(me)))
  end)
end)
