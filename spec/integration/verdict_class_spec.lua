-- SPDX-License-Identifier: MIT
-- The verdict class comes from what the host observed (the worker's
-- deadline kill, the runtime's memory limit), never from what the task
-- threw: through a real controller, tasks that throw a verdict's words get
-- ERROR with no refund, a real endless loop gets TIMEOUT after its
-- deadline and a real memory hog MEMORY_LIMIT.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson.safe"

local sha = h.sha

-- the pattern scan would refuse the hogs before they run
local CONFIG = h.config("limits = { timeout_min = 1 }, worker = { memory_bytes = 67108864 },",
  { code_patterns = "{ enabled = false }" })

describe("verdict classes through the controller #integration", function()
  local srv = h.controller_for(CONFIG)

  local function verify(language, code, timeout)
    local t0 = wp.now()
    local st, r = h.verify(srv, { taskType = "code-execution", language = language, code = code,
      expectedHash = sha("4"), timeoutSeconds = timeout or 10 })
    assert.equal(200, st, cjson.encode(r))
    return r, wp.now() - t0
  end

  local FORGED = {
    { "javascript", "throw {code: 'ERR_SCRIPT_EXECUTION_TIMEOUT'}" },
    { "javascript", "const e = new Error('Script execution timed out after 10000ms'); "
      .. "e.code = 'ERR_SCRIPT_EXECUTION_TIMEOUT'; throw e" },
    { "javascript", "throw new RangeError('Array buffer allocation failed')" },
    { "javascript", "console.error('FATAL ERROR: Reached heap limit Allocation failed - "
      .. "JavaScript heap out of memory'); throw new RangeError('Invalid string length')" },
    { "lua", "error('TIMEOUT after 10000 ms', 0)" },
    { "lua", "error('TIMEOUT')" },
    { "lua", "error('MEMORY_LIMIT', 0)" },
    { "lua", "error('not enough memory', 0)" },
  }
  for _, case in ipairs(FORGED) do
    it(case[1] .. ": " .. case[2] .. " -> ERROR, no refund", function()
      local r, took = verify(case[1], case[2])
      assert.equal("ERROR", r.result, cjson.encode(r))
      assert.is_false(r.refundEligible)
      assert.matches("^RUNTIME_ERROR: ", r.error)
      assert.is_true(took < 5, "took " .. took .. " s")
    end)
  end

  it("a real endless loop is TIMEOUT, after its deadline (javascript, lua)", function()
    for _, case in ipairs({ { "javascript", "for (;;) {}" }, { "lua", "while true do end" } }) do
      local r, took = verify(case[1], case[2], 1)
      assert.equal("TIMEOUT", r.result, cjson.encode(r))
      assert.equal("TIMEOUT", r.error)
      assert.is_false(r.refundEligible)
      assert.is_true(took >= 1, case[1] .. " took " .. took .. " s")
    end
  end)

  it("a real memory hog is MEMORY_LIMIT (javascript heap and ArrayBuffers, lua)", function()
    local hogs = {
      { "javascript", "const a = []; for (;;) a.push(new Array(1e6).fill(1));" },
      { "javascript", "const a = []; for (;;) a.push(new Uint8Array(1 << 24));" },
      { "lua", "local t = {} for i = 1, 1e9 do t[i] = i end" },
    }
    for _, case in ipairs(hogs) do
      local r = verify(case[1], case[2])
      assert.equal("ERROR", r.result, cjson.encode(r))
      assert.equal("MEMORY_LIMIT", r.error, case[2])
      assert.is_false(r.refundEligible)
    end
  end)
end)
