-- SPDX-License-Identifier: MIT
-- policies/worker_threshold.lua: the cap on active workers and per client.
local policy = require "workproof.policy"
local h = require "helpers"

local FILE = "policies/worker_threshold.lua"

local t, p, logged

local function conf_of(c)
  return assert(policy.configure(p, c or {}))
end

local function admit(conf, state, key)
  local ok, why, retry = p.admit(conf, state, key)
  return { ok, why, retry }
end

before_each(function()
  t = 1700000000
  logged = {}
  p = policy.load_file(FILE, {
    clock = function() return t end,
    log = function(level, msg) logged[#logged + 1] = level .. ": " .. msg end,
  })
end)

describe("worker_threshold policy: schema", function()
  it("fills every default", function()
    assert.equal("worker_threshold", p.name)
    assert.same({ max_active = 100, per_client = 10, retry_after = 5, lease_seconds = 900 }, conf_of())
  end)

  it("reports every bad setting exactly", function()
    local errs = h.refused_config(policy.configure, p, {
      max_active = 0, per_client = "10", retry_after = 2.5, lease_seconds = -1, max = 3,
    })
    assert.same({
      max_active = "must be >= 1",
      per_client = "expected an integer",
      retry_after = "expected an integer",
      lease_seconds = "must be >= 0",
      max = "unknown field",
    }, errs)
  end)
end)

describe("worker_threshold policy: admit and release", function()
  local conf, state
  before_each(function()
    conf = conf_of()
    state = {}
  end)

  it("caps the active workers at max_active (100 by default)", function()
    for i = 1, 100 do
      assert.same({ true }, admit(conf, state, "client" .. (i % 20)))
    end
    assert.equal(100, p.active(conf, state))
    assert.same({ false, "capacity", 5 }, admit(conf, state, "newcomer"))
    p.release(conf, state, "client3")
    assert.equal(99, p.active(conf, state))
    assert.same({ true }, admit(conf, state, "newcomer"))
  end)

  it("caps one client at per_client and leaves the others alone", function()
    for _ = 1, 10 do assert.same({ true }, admit(conf, state, "a")) end
    assert.same({ false, "client", 5 }, admit(conf, state, "a"))
    assert.same({ true }, admit(conf, state, "b"))
    assert.equal(10, p.held(conf, state, "a"))
    assert.equal(1, p.held(conf, state, "b"))
    assert.is_true(p.release(conf, state, "a"))
    assert.same({ true }, admit(conf, state, "a"))
  end)

  it("tells the client about its own cap first when both are reached", function()
    local c = conf_of({ max_active = 3, per_client = 3, retry_after = 7 })
    for _ = 1, 3 do p.admit(c, state, "a") end
    assert.same({ false, "client", 7 }, admit(c, state, "a"))
    assert.same({ false, "capacity", 7 }, admit(c, state, "b"))
  end)

  it("never goes negative and tolerates a release without an admit", function()
    assert.is_false(p.release(conf, state, "ghost"))
    assert.equal(0, p.active(conf, state))
    p.admit(conf, state, "a")
    assert.is_true(p.release(conf, state, "a"))
    assert.is_false(p.release(conf, state, "a"))
    assert.is_false(p.release(conf, state, nil))
    assert.equal(0, p.active(conf, state))
    assert.equal(0, p.held(conf, state, "a"))
  end)

  it("forgets a client that holds nothing (memory stays bounded)", function()
    for i = 1, 50 do
      p.admit(conf, state, "c" .. i)
      p.release(conf, state, "c" .. i)
    end
    assert.is_nil(next(state.clients))
    assert.equal(0, state.active)
  end)

  it("treats a nil client key as one client '?'", function()
    for _ = 1, 10 do p.admit(conf, state, nil) end
    assert.same({ false, "client", 5 }, admit(conf, state, "?"))
  end)

  it("keeps its counts across a reload and applies a lower cap to them", function()
    for i = 1, 50 do p.admit(conf, state, "c" .. i) end
    local p2 = policy.load_file(FILE, { clock = function() return t end })
    local c2 = assert(policy.configure(p2, { max_active = 40 }))
    assert.equal(50, p2.active(c2, state))
    local ok, why = p2.admit(c2, state, "x")
    assert.same({ false, "capacity" }, { ok, why })
    for i = 1, 11 do p2.release(c2, state, "c" .. i) end
    assert.is_true(p2.admit(c2, state, "x"))
  end)
end)

describe("worker_threshold policy: leases", function()
  local state
  before_each(function() state = {} end)

  it("reclaims a client's slots not released within lease_seconds, and logs it", function()
    local conf = conf_of({ per_client = 2, lease_seconds = 100 })
    p.admit(conf, state, "a")
    p.admit(conf, state, "a") -- both releases get lost
    t = t + 99
    assert.same({ false, "client", 5 }, admit(conf, state, "a"))
    assert.same({}, logged)
    t = t + 1
    assert.same({ true }, admit(conf, state, "a"))
    assert.equal(1, p.active(conf, state))
    assert.same({ "warn: reclaimed 2 worker slot(s) held over 100 s" }, logged)
  end)

  it("reclaims across all clients when the cap is reached", function()
    local conf = conf_of({ max_active = 3, lease_seconds = 60 })
    for _, k in ipairs({ "a", "b", "c" }) do p.admit(conf, state, k) end
    t = t + 30
    assert.same({ false, "capacity", 5 }, admit(conf, state, "d"))
    t = t + 30
    assert.same({ true }, admit(conf, state, "d"))
    assert.equal(1, p.active(conf, state))
  end)

  it("releases the oldest lease first, so a long job's slot is the one reclaimed last", function()
    local conf = conf_of({ lease_seconds = 100 })
    p.admit(conf, state, "a")
    t = t + 50
    p.admit(conf, state, "a")
    p.release(conf, state, "a")
    assert.same({ t }, state.clients.a)
  end)

  it("never reclaims with lease_seconds = 0", function()
    local conf = conf_of({ per_client = 1, lease_seconds = 0 })
    p.admit(conf, state, "a")
    t = t + 86400 * 365
    assert.same({ false, "client", 5 }, admit(conf, state, "a"))
  end)
end)

describe("worker_threshold policy: older or damaged state", function()
  it("recounts a missing or wrong total", function()
    local conf = conf_of()
    local st = { active = 42 }
    assert.equal(0, p.active(conf, st))
    st = { active = -3, clients = { a = { t, t } } }
    assert.equal(2, p.active(conf, st))
  end)

  it("turns counters of an older layout into leases", function()
    local conf = conf_of({ per_client = 3 })
    local st = { clients = { a = 3, b = "junk", c = { "x", t } }, active = 3 }
    assert.equal(4, p.active(conf, st))
    assert.same({ false, "client", 5 }, admit(conf, st, "a"))
    assert.is_true(p.release(conf, st, "a"))
    assert.equal(3, p.active(conf, st))
    assert.is_nil(st.clients.b)
    assert.equal(1, p.held(conf, st, "c"))
  end)

  it("starts over on a state that is not its own", function()
    local conf = conf_of()
    local st = { clients = "nope", active = "many" }
    assert.same({ true }, admit(conf, st, "a"))
    assert.equal(1, p.active(conf, st))
  end)
end)
