-- SPDX-License-Identifier: MIT
-- The error vocabulary (lua/workproof/errors.lua): one table decides, for
-- every code a request can end with, its HTTP status or verdict, whether it
-- is an infrastructure failure (the breaker) and whether it is refunded.
-- This spec states every decision once more, by hand, so that changing one
-- is a visible choice; checks that the worker's classes are all known; and
-- that every code has a producer in the source.
local errors = require "workproof.errors"
local h = require "helpers"

-- code = { status (refusal) | verdict (outcome), infra, refund }
local EXPECTED = {
  EVALIDATION = { 400 }, ETOOLARGE = { 413 }, EBLOCKED = { 400 }, ERATELIMIT = { 429 }, EPAYMENT = { 402 },
  ECAPACITY = { 503 }, EBREAKER = { 503 }, ESHUTDOWN = { 503 }, ENOTFOUND = { 404 }, EMETHOD = { 405 },
  EFORBIDDEN = { 403 }, EPOLICY = { 500 },
  EPAYMENT_UNAVAILABLE = { 503, infra = true },   -- nothing charged: no refund to make
  VALID = { "VALID" }, INVALID = { "INVALID" },
  -- the task's own outcomes: never refunded, never the breaker's business
  TIMEOUT = { "TIMEOUT" }, ETIMEDOUT = { "TIMEOUT" },
  RUNTIME_ERROR = { "ERROR" }, MEMORY_LIMIT = { "ERROR" }, OUTPUT_LIMIT = { "ERROR" },
  INSTRUCTION_LIMIT = { "ERROR" }, KILLED = { "ERROR" }, BAD_TASK = { "ERROR" },
  -- the host's failures with a job: ERROR, refunded, counted
  SANDBOX = { "ERROR", infra = true, refund = true }, ESPAWN = { "ERROR", infra = true, refund = true },
  ENORESULT = { "ERROR", infra = true, refund = true }, EBADRESULT = { "ERROR", infra = true, refund = true },
  EINVAL = { "ERROR", infra = true, refund = true }, EINTERRUPTED = { "ERROR", infra = true, refund = true },
  EINTERNAL = { 500, "ERROR", infra = true, refund = true },
}

local function sorted_keys(t)
  local k = {}
  for name in pairs(t) do k[#k + 1] = name end
  table.sort(k)
  return k
end

describe("errors", function()
  it("decides every code exactly as stated here, and no code goes undecided", function()
    assert.same(sorted_keys(EXPECTED), sorted_keys(errors.CODES))
    for code, want in pairs(EXPECTED) do
      local e = errors.CODES[code]
      local status = type(want[1]) == "number" and want[1] or nil
      local verdict = type(want[1]) == "string" and want[1] or want[2]
      assert.equal(status, e.status, code)
      assert.equal(verdict, e.verdict, code)
      assert.equal(want.infra == true, e.infra == true, code .. ".infra")
      assert.equal(want.refund == true, e.refund, code .. ".refund")
    end
  end)

  it("refunds exactly the host's failures that had a job, and never a verdict of the task", function()
    for code, e in pairs(errors.CODES) do
      assert.equal(e.infra == true and e.verdict ~= nil, e.refund, code)
      if e.verdict == "VALID" or e.verdict == "INVALID" or e.verdict == "TIMEOUT" then
        assert.is_false(e.refund, code)
        assert.is_not_true(e.infra, code)
      end
    end
  end)

  it("knows every class the worker can report (worker/worker.h WK_CLASSES)", function()
    local hdr = h.read("worker/worker.h")
    local list = hdr:match("#define WK_CLASSES%(X%)(.-)\n\n")
    local n = 0
    for class in list:gmatch("X%(([%u_]+)%)") do
      n = n + 1
      assert.is_table(errors.CODES[class], class)
      assert.is_string(errors.CODES[class].verdict, class)
    end
    assert.is_true(n >= 8)
  end)

  it("an unknown or missing code is the host's failure (refunded)", function()
    for _, code in ipairs({ "NO_SUCH_CLASS", "nil" }) do
      local e = errors.get(code)
      assert.equal("ERROR", e.verdict)
      assert.is_true(e.infra)
      assert.is_true(e.refund)
    end
    assert.equal(errors.CODES.EINTERNAL, errors.get(nil))
  end)

  it("every code has a producer in the source", function()
    local src = {}
    local p = io.popen("find lua/workproof policies -name '*.lua' ! -name errors.lua | sort")
    for f in p:lines() do src[#src + 1] = h.read(f) end
    p:close()
    src[#src + 1] = h.read("worker/worker.h")
    local all = table.concat(src, "\n")
    for code in pairs(errors.CODES) do
      local found = all:find('"' .. code .. '"', 1, true) or all:find("X(" .. code .. ")", 1, true)
      assert.truthy(found, code .. " is produced nowhere")
    end
  end)

  it("builds refusals and Retry-After answers; refuses a non-refusal code", function()
    local r = errors.refusal("EVALIDATION", { body = "x" })
    assert.same({ status = 400, body = { error = "invalid request", code = "EVALIDATION",
      details = { body = "x" } } }, r)
    r = errors.retry_later("EBREAKER", 7)
    assert.equal(503, r.status)
    assert.equal("7", r.headers["retry-after"])
    assert.equal(7, r.body.details.retryAfter)
    assert.has_error(function() errors.refusal("TIMEOUT") end)
    assert.has_error(function() errors.refusal("ENOPE") end)
  end)
end)
