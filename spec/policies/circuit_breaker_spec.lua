-- SPDX-License-Identifier: MIT
-- policies/circuit_breaker.lua over simulated time (injected clock, no sleeps).
local policy = require "workproof.policy"
local h = require "helpers"

local FILE = "policies/circuit_breaker.lua"

local FAIL = { verdict = "ERROR", infra = true }
local OK = { verdict = "VALID", infra = false }

local t, p

local function conf_of(c)
  return assert(policy.configure(p, c or {}))
end

local function allow(conf, state, at)
  local ok, retry = p.allow(conf, state, at or t)
  return { ok, retry }
end

local function fail_n(conf, state, n, step)
  for _ = 1, n do
    p.record(conf, state, t, FAIL)
    t = t + (step or 0)
  end
end

before_each(function()
  t = 1700000000
  p = policy.load_file(FILE, { clock = function() return t end })
end)

describe("circuit_breaker policy: schema", function()
  it("fills every default", function()
    assert.equal("circuit_breaker", p.name)
    assert.same({
      failure_threshold = 10, window = 60, open_seconds = 30, half_open_max_probes = 1,
      half_open_timeout = 60, count_as_failure = { "infra" },
    }, conf_of())
  end)

  it("reports every bad setting exactly", function()
    local errs = h.refused_config(policy.configure, p, {
      failure_threshold = 0, window = -1, open_seconds = "30", half_open_max_probes = 1.5,
      half_open_timeout = 0, count_as_failure = { "ERROR", "CRASH", 3 }, threshold = 10,
    })
    assert.same({
      failure_threshold = "must be >= 1",
      window = "must be >= 1",
      open_seconds = "expected a number",
      half_open_max_probes = "expected an integer",
      half_open_timeout = "must be >= 1",
      count_as_failure = {
        [2] = "expected one of: VALID, INVALID, ERROR, TIMEOUT, infra",
        [3] = "expected a string",
      },
      threshold = "unknown field",
    }, errs)
    local _, e2 = policy.configure(p, { count_as_failure = "ERROR" })
    assert.same({ count_as_failure = "expected an array" }, e2)
  end)
end)

describe("circuit_breaker policy: is_failure", function()
  it("counts infrastructure failures by default, not the client's ERROR, TIMEOUT or INVALID", function()
    local conf = conf_of()
    assert.is_false(p.is_failure(conf, { verdict = "ERROR", infra = false }))
    assert.is_true(p.is_failure(conf, { verdict = "ERROR", infra = true }))
    assert.is_true(p.is_failure(conf, { verdict = "TIMEOUT", infra = true }))
    assert.is_true(p.is_failure(conf, { infra = true }))
    assert.is_false(p.is_failure(conf, { verdict = "TIMEOUT", infra = false }))
    assert.is_false(p.is_failure(conf, { verdict = "INVALID", infra = false }))
    assert.is_false(p.is_failure(conf, { verdict = "VALID" }))
    assert.is_false(p.is_failure(conf, {}))
    assert.is_false(p.is_failure(conf, nil))
    assert.is_false(p.is_failure(conf, { verdict = "ERROR_ISH", infra = "yes" }))
  end)

  it("follows count_as_failure", function()
    local conf = conf_of({ count_as_failure = { "TIMEOUT" } })
    assert.is_true(p.is_failure(conf, { verdict = "TIMEOUT", infra = false }))
    assert.is_false(p.is_failure(conf, { verdict = "ERROR", infra = true }))
    local infra_only = conf_of({ count_as_failure = { "infra" } })
    assert.is_false(p.is_failure(infra_only, { verdict = "ERROR", infra = false }))
    assert.is_true(p.is_failure(infra_only, { verdict = "ERROR", infra = true }))
    local none = conf_of({ count_as_failure = {} })
    assert.is_false(p.is_failure(none, FAIL))
  end)
end)

describe("circuit_breaker policy: over simulated time", function()
  local conf, state
  before_each(function()
    conf = conf_of()
    state = {}
  end)

  it("starts closed and admits everything", function()
    assert.equal("closed", p.status(conf, state, t))
    for _ = 1, 100 do assert.same({ true }, allow(conf, state)) end
  end)

  it("opens on the 10th failure within 60 s", function()
    fail_n(conf, state, 9, 5) -- 9 failures over 45 s
    assert.equal("closed", p.status(conf, state, t))
    assert.equal("open", p.record(conf, state, t, FAIL))
    assert.equal("open", p.status(conf, state, t))
    assert.same({ false, 30 }, allow(conf, state))
  end)

  it("does not open when the failures are spread over more than the window", function()
    fail_n(conf, state, 30, 7) -- never 10 within 60 s
    assert.equal("closed", p.status(conf, state, t))
    assert.equal(9, #state.failures) -- the last 60 s: failures 7 s apart
  end)

  it("is not reset by successes while closed: it counts failures in the window", function()
    fail_n(conf, state, 9, 1)
    for _ = 1, 50 do p.record(conf, state, t, OK) end
    p.record(conf, state, t, FAIL)
    assert.equal("open", p.status(conf, state, t))
  end)

  it("ignores outcomes that are not failures", function()
    for _ = 1, 50 do
      p.record(conf, state, t, { verdict = "TIMEOUT", infra = false })
      p.record(conf, state, t, { verdict = "INVALID", infra = false })
    end
    assert.equal("closed", p.status(conf, state, t))
  end)

  it("refuses while open with a shrinking whole Retry-After", function()
    fail_n(conf, state, 10)
    local t0 = t
    for s = 0, 29 do
      t = t0 + s
      assert.same({ false, 30 - s }, allow(conf, state))
    end
    t = t0 + 29.9
    assert.same({ false, 1 }, allow(conf, state))
  end)

  it("half-opens after open_seconds, admits one probe, closes on its success", function()
    fail_n(conf, state, 10)
    t = t + 30
    assert.equal("half_open", p.status(conf, state, t))
    assert.same({ true }, allow(conf, state))
    assert.same({ false, 60 }, allow(conf, state)) -- the probe is out
    t = t + 2
    assert.same({ false, 58 }, allow(conf, state))
    assert.equal("closed", p.record(conf, state, t, OK))
    assert.equal("closed", p.status(conf, state, t))
    assert.same({ true }, allow(conf, state))
    assert.same({ true }, allow(conf, state))
  end)

  it("re-opens for another open_seconds when the probe fails", function()
    fail_n(conf, state, 10)
    t = t + 30
    assert.same({ true }, allow(conf, state))
    t = t + 5
    assert.equal("open", p.record(conf, state, t, FAIL))
    assert.same({ false, 30 }, allow(conf, state))
    t = t + 30
    assert.equal("half_open", p.status(conf, state, t))
  end)

  it("counts TIMEOUT as a success of a probe by default", function()
    fail_n(conf, state, 10)
    t = t + 30
    assert.same({ true }, allow(conf, state))
    assert.equal("closed", p.record(conf, state, t, { verdict = "TIMEOUT", infra = false }))
  end)

  it("admits at most half_open_max_probes probes at a time", function()
    local c = conf_of({ half_open_max_probes = 3 })
    fail_n(c, state, 10)
    t = t + 30
    for _ = 1, 3 do assert.same({ true }, allow(c, state)) end
    assert.same({ false, 60 }, allow(c, state))
    assert.equal(3, #state.probes)
  end)

  it("cannot be wedged by a probe that never reports", function()
    fail_n(conf, state, 10)
    t = t + 30
    local probe_at = t
    assert.same({ true }, allow(conf, state)) -- this request dies before the worker
    t = probe_at + 59
    assert.same({ false, 1 }, allow(conf, state))
    assert.equal("half_open", p.status(conf, state, t))
    t = probe_at + 60 -- the probe counts as failed as of now: open for open_seconds
    assert.equal("open", p.status(conf, state, t))
    assert.same({ false, 30 }, allow(conf, state))
    t = probe_at + 90
    assert.equal("half_open", p.status(conf, state, t))
    assert.same({ true }, allow(conf, state))
    assert.equal("closed", p.record(conf, state, t, OK))
  end)

  it("cannot be wedged by sparse traffic either: the next request after a quiet day probes", function()
    fail_n(conf, state, 10)
    t = t + 30
    assert.same({ true }, allow(conf, state)) -- a probe that is lost
    t = t + 86400 -- nobody calls for a day
    assert.same({ true }, allow(conf, state))
    assert.equal("half_open", p.status(conf, state, t))
  end)

  it("frees a probe slot at once when the probe is abandoned", function()
    fail_n(conf, state, 10)
    t = t + 30
    assert.same({ true }, allow(conf, state))
    assert.same({ false, 60 }, allow(conf, state))
    assert.equal("half_open", p.abandon(conf, state, t))
    assert.same({ true }, allow(conf, state))
    -- a no-op when closed or open, and with no probe out
    assert.equal("half_open", p.abandon(conf, state, t))
    assert.equal("half_open", p.abandon(conf, state, t))
    assert.same({ true }, allow(conf, state))
    assert.equal("closed", p.abandon(conf, {}, t))
  end)

  it("ignores outcomes reported while open (late reports do not stretch it)", function()
    fail_n(conf, state, 10)
    t = t + 10
    for _ = 1, 20 do assert.equal("open", p.record(conf, state, t, FAIL)) end
    assert.equal("open", p.record(conf, state, t, OK))
    assert.same({ false, 20 }, allow(conf, state))
    t = t + 20
    assert.equal("half_open", p.status(conf, state, t))
  end)

  it("closes on a success reported in half-open even from a request admitted earlier", function()
    fail_n(conf, state, 10)
    t = t + 31
    assert.equal("closed", p.record(conf, state, t, OK))
  end)

  it("uses the injected clock when no time is passed", function()
    fail_n(conf, state, 10)
    assert.same({ false, 30 }, { p.allow(conf, state) })
    t = t + 30
    assert.equal("half_open", p.status(conf, state))
    assert.is_true(p.allow(conf, state))
    assert.equal("closed", p.record(conf, state, nil, OK))
  end)

  it("keeps its state across a reload", function()
    fail_n(conf, state, 10)
    local p2 = policy.load_file(FILE, { clock = function() return t end })
    local c2 = assert(policy.configure(p2, { failure_threshold = 3, open_seconds = 10 }))
    t = t + 5
    -- the remaining 25 s exceed the new open_seconds: capped at 10 s from now
    assert.equal("open", p2.status(c2, state, t))
    assert.same({ false, 10 }, { p2.allow(c2, state, t) })
    t = t + 10
    assert.equal("half_open", p2.status(c2, state, t))
  end)

  it("applies a new failure_threshold to the failures already counted", function()
    fail_n(conf, state, 5)
    local c3 = conf_of({ failure_threshold = 6 })
    assert.equal("open", p.record(c3, state, t, FAIL))
  end)

  it("repairs a state from an older or damaged version", function()
    local st = { state = "melted", failures = "x" }
    assert.equal("closed", p.status(conf, st, t))
    st = { state = "closed", failures = { "a", t, {} } }
    for _ = 1, 9 do p.record(conf, st, t, FAIL) end
    assert.equal("open", p.status(conf, st, t))
    st = { state = "open" } -- no open_until
    assert.equal("half_open", p.status(conf, st, t))
    st = { state = "half_open", probes = "?" }
    assert.same({ true }, allow(conf, st))
  end)

  it("survives a clock stepped back while open", function()
    fail_n(conf, state, 10)
    t = t - 86400
    local ok, retry = p.allow(conf, state, t)
    assert.is_false(ok)
    assert.equal(30, retry)
  end)

  it("counts how often it opened", function()
    fail_n(conf, state, 10)
    t = t + 30
    p.allow(conf, state, t)
    p.record(conf, state, t, FAIL)
    assert.equal(2, state.opened)
  end)
end)
