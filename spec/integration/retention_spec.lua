-- SPDX-License-Identifier: MIT
-- Bounded storage: completed jobs older than jobs.retention are pruned in
-- batches, running ones never; the loop runs between two batches; a soak of
-- 20,000 verdicts recorded through the jobs API the flow uses (create, then
-- complete) keeps the SQLite store flat once the window has passed; and a
-- real controller started from a config with a short window forgets its
-- answered jobs (GET /verify/{id} then says 404). Real SQLite, real host loop.
local h = require "helpers"
local host = require "workproof.host"
local jobs = require "workproof.notary.jobs"
local config = require "workproof.config"
local cjson = require "cjson.safe"

local function size(path)
  local n = 0
  for _, p in ipairs { path, path .. "-wal" } do
    local f = io.open(p, "rb")
    if f then n = n + f:seek("end"); f:close() end
  end
  return n
end

local function count(where)
  return jobs.db():row("SELECT count(*) AS n FROM jobs" .. (where and (" WHERE " .. where) or "")).n
end

-- a verdict as the flow stores it (~600 bytes of JSON)
local function response(id, i)
  return {
    jobId = id, taskHash = h.sha("task " .. i), status = "completed", result = "VALID",
    actualHash = h.sha("out " .. i), expectedHash = h.sha("out " .. i), executionTimeMs = 3,
    totalTimeMs = 9, refundEligible = false, language = "lua", taskType = "generic",
    attestation = { status = "disabled" }, worker = { backend = "sandbox", errorClass = cjson.null },
  }
end

describe("jobs retention", function()
  local dir, path
  before_each(function()
    dir = h.tmpdir()
    path = dir .. "/var/workproof.db"
    assert.is_truthy(jobs.open(path))
  end)
  after_each(function()
    jobs.close()
    os.execute("rm -rf " .. h.q(dir))
  end)

  it("is configured by jobs.retention (default 7 days), checked like every setting", function()
    local conf = config.load(nil)
    assert.equals(604800, conf.jobs.retention)
    assert.equals(500, conf.jobs.prune_batch)
    assert.equals(3600, config.load(nil, { jobs = { retention = 3600 } }).jobs.retention)
    for _, bad in ipairs { { retention = -1 }, { prune_batch = 0 }, { retention = "7d" }, { prune_interval = 0 },
      { retension = 5 } } do
      local ok, err = pcall(config.load, nil, { jobs = bad })
      assert.is_false(ok)
      assert.matches("jobs%.", tostring(err))
    end
  end)

  it("deletes only completed jobs past the window, oldest first, a batch at a time", function()
    local now = host.time()
    local db = jobs.db()
    for i = 1, 30 do
      local id = ("%032x"):format(i)
      jobs.create(id, "th")
      jobs.complete(id, response(id, i))
      -- i = 1..20 answered long ago (1 oldest), 21..30 just now
      if i <= 20 then db:exec("UPDATE jobs SET updated = ? WHERE id = ?", now - 1000 + i, id) end
    end
    jobs.create("ff", "th")   -- running for ages: never pruned
    db:exec("UPDATE jobs SET created = ?, updated = ? WHERE id = 'ff'", now - 5000, now - 5000)

    assert.equals(8, jobs.prune(100, 8, now))
    assert.is_nil(jobs.get(("%032x"):format(8)))            -- the 8 oldest went
    assert.is_table(jobs.get(("%032x"):format(9)))
    assert.equals(12, jobs.prune(100, 500, now))
    assert.equals(0, jobs.prune(100, 500, now))
    assert.equals(11, count())
    assert.equals("running", jobs.get("ff").body.status)
    assert.equals(0, jobs.prune(2000, 500, now))
  end)

  it("prunes in the background without holding the loop: other coroutines run between batches", function()
    local now = host.time()
    local db = jobs.db()
    db:transaction(function()
      for i = 1, 2000 do
        db:exec("INSERT INTO jobs(id, status, created, updated, response) VALUES (?, 'completed', ?, ?, '{}')",
          ("%032x"):format(i), now - 100, now - 100)
      end
    end)
    local seen, ticking = {}, true
    host.spawn(function()
      while ticking do
        seen[count()] = true
        host.sleep(0)
      end
    end)
    local stop = jobs.start_pruner(function() return { retention = 10, interval = 0.01, batch = 100 } end)
    finally(function() stop(); ticking = false end)   -- a failed test must not leave them running
    assert.is_true(h.eventually(function() return count() == 0 end, 60))
    -- the ticker saw the table between batches, not only before and after
    local between = 0
    for n in pairs(seen) do if n > 0 and n < 2000 and n % 100 == 0 then between = between + 1 end end
    assert.is_true(between >= 5, "the loop ran between " .. between .. " batch(es) only")
  end)

  it("keeps the store flat over a soak of 20,000 verdicts once the window has passed", function()
    local N, ROUND = 20000, 500
    local stop = jobs.start_pruner(function() return { retention = 0.3, interval = 0.02, batch = 500 } end)
    finally(stop)
    local sizes, most = {}, 0
    local bytes = 0
    for r = 1, N / ROUND do
      for i = (r - 1) * ROUND + 1, r * ROUND do
        local id = ("%032x"):format(i)
        jobs.create(id, h.sha("task " .. i))
        local resp = response(id, i)
        bytes = bytes + #cjson.encode(resp)
        jobs.complete(id, resp)
      end
      host.sleep(0.05)   -- a paced producer: the pruner's rounds interleave
      sizes[r] = size(path)
      most = math.max(most, count())
    end
    local rounds = N / ROUND
    -- past the first quarter (the window long gone), the file no longer grows
    local quarter = sizes[math.floor(rounds / 4)]
    for r = math.floor(rounds / 4) + 1, rounds do
      assert.is_true(sizes[r] <= quarter * 1.25 + 262144,
        ("round %d: %d bytes, %d after a quarter"):format(r, sizes[r], quarter))
    end
    -- the database itself (the WAL folded in) far below what keeping every
    -- verdict takes
    jobs.db():exec("PRAGMA wal_checkpoint(TRUNCATE)")
    local f = assert(io.open(path, "rb"))
    local main = f:seek("end")
    f:close()
    assert.is_true(main < bytes / 4, main .. " bytes in the database for " .. bytes .. " of verdicts")
    assert.is_true(most < N / 4, most .. " rows at most")
    assert.is_true(h.eventually(function() jobs.prune(0.3, 5000); return count() == 0 end, 10))
  end)
end)

describe("a controller with a short jobs.retention", function()
  local srv = h.controller_for(h.config("jobs = { retention = 1, prune_interval = 0.1 },"))

  it("answers GET /verify/{id} while the job is in the window, 404 after", function()
    local st, r = h.verify(srv, { taskType = "code-execution", language = "lua", code = "print('hi')",
      expectedHash = h.sha("hi") })
    assert.equals(200, st, cjson.encode(r))
    assert.equals("VALID", r.result)
    local gst = h.http("GET", srv.url .. "/verify/" .. r.jobId)
    assert.equals(200, gst)
    assert.is_true(h.eventually(function() return h.http("GET", srv.url .. "/verify/" .. r.jobId) == 404 end, 20))
  end)
end)
