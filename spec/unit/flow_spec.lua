-- SPDX-License-Identifier: MIT
-- The flow's shape (lua/workproof/flow.lua): phases admit -> pay -> run ->
-- record -> finally; flows that could run unpaid code or answer without a
-- verdict are refused, naming the stage.
local flow = require "workproof.flow"
local config = require "workproof.config"

local function check(f, payments) return flow.check(f, { payments = payments }) end

describe("flow.check", function()
  it("accepts the default flow, with and without payments", function()
    assert.is_true(check(config.FLOW, true))
    assert.is_true(check(config.FLOW, false))
  end)

  it("accepts reordering within a phase and policy stages between validate and cleanup", function()
    assert.is_true(check({ "validate", "code_patterns", "rate_limit", "size", "circuit_breaker", "payment",
      "my_stage", "worker_threshold", "spawn", "result", "audit", "attestation", "cleanup" }, true))
    assert.is_true(check({ "validate", "spawn", "result", "cleanup" }, false))
  end)

  it("refuses a flow that spawns before payment", function()
    local ok, err = check({ "validate", "spawn", "result", "payment", "cleanup" }, true)
    assert.is_nil(ok)
    assert.equal("flow[4]: stage 'payment' (phase pay) after 'result' (phase run): phases run admit -> pay -> "
      .. "run -> record -> finally", err)
    ok, err = check({ "validate", "worker_threshold", "payment", "spawn", "result", "cleanup" }, true)
    assert.is_nil(ok)
    assert.truthy(err:find("flow%[3%]: stage 'payment'"))
  end)

  it("refuses a paid service whose flow has no payment stage", function()
    local ok, err = check({ "validate", "spawn", "result", "cleanup" }, true)
    assert.is_nil(ok)
    assert.truthy(err:find("no 'payment' stage"))
  end)

  it("refuses flows that can answer without a verdict", function()
    for _, case in ipairs({
      { { "validate", "spawn", "cleanup" }, "stage 'result' is missing" },
      { { "validate", "result", "cleanup" }, "stage 'spawn' is missing" },
      { { "validate", "spawn", "result" }, "stage 'cleanup' is missing" },
      { { "size", "validate", "spawn", "result", "cleanup" }, "validate must come first" },
      { { "validate", "spawn", "result", "cleanup", "attestation" }, "cleanup must come last" },
      { { "validate", "result", "spawn", "cleanup" }, "'result' before 'spawn'" },
      { { "validate", "spawn", "worker_threshold", "result", "cleanup" }, "'worker_threshold' after 'spawn'" },
      { { "validate", "spawn", "result", "spawn", "cleanup" }, "appears twice" },
      { { "validate", "spawn", "result", "attestation", "rate_limit", "cleanup" }, "phase admit" },
    }) do
      local ok, err = check(case[1], false)
      assert.is_nil(ok, table.concat(case[1], ","))
      assert.truthy(err:find(case[2], 1, true), err)
    end
  end)
end)
