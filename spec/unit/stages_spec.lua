-- SPDX-License-Identifier: MIT
-- Each built-in stage (lua/workproof/stages/*) on its own, with a real
-- generation (the shipped policies at their defaults) and a request context
-- as the runner builds it: what it refuses, what it leaves in the context,
-- what it holds and what the finally phase gives back.
local wp = require "workproof"
local cjson = require "cjson.safe"
local json = require "workproof.json"
local h = require "helpers"

-- the notary's modules need the host (loaded in setup: plain luajit skips #host)
local context, generation
local function stage(name) return require("workproof.stages." .. name).run end

local FOUR = h.sha("4")

describe("stages #host", function()
  local gen, n = nil, 0

  setup(function()
    context = require "workproof.notary.context"
    generation = require "workproof.notary.generation"
    local dir = h.tmpdir()
    h.write(dir .. "/config.lua", ('return { state_dir = "%s/var", limits = { timeout_min = 1 } }'):format(dir))
    generation.configure(dir .. "/config.lua")
    gen = assert(generation.reload("stages spec"))
  end)

  -- a fresh context for a body (a table is encoded), from a peer
  local function ctx_for(body, peer, headers)
    n = n + 1
    local req = { method = "POST", path = "/verify", headers = headers or {}, peer = peer or ("10.9.0." .. n),
      authority = "localhost", body = type(body) == "table" and cjson.encode(body) or body }
    return context.new(req, gen)
  end

  local function valid_ctx(t, peer)
    local b = { taskType = "code-execution", language = "lua", code = "print(2 + 2)", expectedHash = FOUR }
    for k, v in pairs(t or {}) do b[k] = v end
    local ctx = ctx_for(b, peer)
    assert.is_nil(stage("validate")(ctx))
    return ctx
  end

  describe("validate", function()
    it("refuses malformed bodies and fields with 400 EVALIDATION, details by field", function()
      for _, c in ipairs({
        { "{bad", "body" }, { "[1]", "body" }, { '{"taskType":"code-execution","code":"x"}', "expectedHash" },
        { { taskType = "nope", code = "x", expectedHash = FOUR }, "taskType" },
        { { taskType = "code-execution", code = "", expectedHash = FOUR }, "code" },
        { { taskType = "code-execution", code = "x", expectedHash = FOUR, language = "cobol" }, "language" },
        { { taskType = "code-execution", code = "x", expectedHash = "zz" }, "expectedHash" },
        { { taskType = "code-execution", code = "x", expectedHash = FOUR, timeoutSeconds = 0.1 }, "timeoutSeconds" },
        { '{"taskType":"code-execution","code":"x","expectedHash":"' .. FOUR .. '","inputData":1e400}', "inputData" },
      }) do
        local res = stage("validate")(ctx_for(c[1]))
        assert.equal(400, res.status)
        assert.equal("EVALIDATION", res.body.code)
        assert.is_string(res.body.details[c[2]], cjson.encode(res.body))
      end
    end)

    it("fills the validated request: language default, hash normalised, timeout default", function()
      local ctx = ctx_for({ taskType = "code-execution", code = "console.log(4)", expectedHash = "0X" .. FOUR:upper() })
      assert.is_nil(stage("validate")(ctx))
      assert.equal("javascript", ctx.language)
      assert.equal(FOUR, ctx.expected)
      assert.equal(gen.config.limits.timeout_default, ctx.timeout)
      assert.equal("console.log(4)", ctx.task.code)
    end)

    it("takes the expected hash from inputData.expectedOutput", function()
      local ctx = ctx_for({ taskType = "code-execution", code = "x", inputData = { expectedOutput = "4\n" } })
      assert.is_nil(stage("validate")(ctx))
      assert.equal(FOUR, ctx.expected)
    end)
  end)

  it("size: code over limits.max_code is 413 ETOOLARGE", function()
    local ctx = valid_ctx({ code = ("x"):rep(gen.config.limits.max_code + 1) })
    local res = stage("size")(ctx)
    assert.equal(413, res.status)
    assert.equal("ETOOLARGE", res.body.code)
    assert.is_nil(stage("size")(valid_ctx()))
  end)

  it("code_patterns: a blocked module is 400 EBLOCKED naming the rule", function()
    local res = stage("code_patterns")(valid_ctx({ language = "javascript", code = "require('fs')" }))
    assert.equal("EBLOCKED", res.body.code)
    assert.matches("filesystem.fs", res.body.details.code)
    assert.is_nil(stage("code_patterns")(valid_ctx()))
  end)

  it("rate_limit: a client's 101st request in a minute is 429 with Retry-After; the key is kept", function()
    local res
    for i = 1, 101 do
      local ctx = valid_ctx(nil, "10.8.0.1")
      res = stage("rate_limit")(ctx)
      assert.equal("10.8.0.1", ctx.client)
      if i <= 100 then assert.is_nil(res, "request " .. i) end
    end
    assert.equal(429, res.status)
    assert.equal("ERATELIMIT", res.body.code)
    assert.truthy(tonumber(res.headers["retry-after"]) >= 1)
  end)

  it("circuit_breaker: an admitted request holds the breaker", function()
    local ctx = valid_ctx()
    assert.is_nil(stage("circuit_breaker")(ctx))
    assert.is_true(ctx.held.breaker)
  end)

  it("payment: nothing to do when payments are off", function()
    assert.is_nil(stage("payment")(valid_ctx()))
  end)

  it("worker_threshold: a slot per request, 10 per client, given back by cleanup", function()
    local held = {}
    for i = 1, 10 do
      held[i] = valid_ctx(nil, "10.7.0.1")
      assert.is_nil(stage("worker_threshold")(held[i]))
      assert.is_true(held[i].held.slot)
    end
    local over = valid_ctx(nil, "10.7.0.1")
    local res = stage("worker_threshold")(over)
    assert.equal("ECAPACITY", res.body.code)
    assert.equal("client", res.body.details.workers)
    assert.is_nil(over.held.slot)
    local before = generation.state("worker_threshold").active
    for _, c in ipairs(held) do stage("cleanup")(c) end
    assert.equal(before - 10, generation.state("worker_threshold").active)
    assert.is_nil(stage("worker_threshold")(over))
    stage("cleanup")(over)
  end)

  it("spawn: a job id and the taskHash JavaScript would print; async answers 202 and goes on", function()
    local ctx = valid_ctx()
    assert.is_nil(stage("spawn")(ctx))
    assert.matches("^%x+$", ctx.job_id)
    assert.equal(32, #ctx.job_id)
    assert.equal(wp.hex(wp.sha256(assert(json.task_json(ctx.req.body, "lua")))), ctx.task_hash)
    local actx = valid_ctx()
    actx.async = true
    local res, go_on = stage("spawn")(actx)
    assert.equal(202, res.status)
    assert.is_true(go_on)
    assert.equal(actx.task_hash, res.body.taskHash)
  end)

  describe("result", function()
    local function run(t)
      local ctx = valid_ctx(t)
      stage("spawn")(ctx)
      stage("result")(ctx)
      return ctx
    end

    it("concludes VALID / INVALID from the hashes", function()
      local ctx = run()
      assert.same({ "VALID", "VALID", FOUR }, { ctx.outcome.code, ctx.outcome.verdict, ctx.outcome.actual })
      assert.equal("INVALID", run({ code = "print(5)" }).outcome.verdict)
    end)

    it("a task's own failure is its class: ERROR, not refunded", function()
      local ctx = run({ code = "error('TIMEOUT')" })
      assert.equal("RUNTIME_ERROR", ctx.outcome.code)
      assert.equal("ERROR", ctx.outcome.verdict)
      stage("cleanup")(ctx)
      assert.is_false(ctx.response_body.refundEligible)
    end)
  end)

  it("attestation: nothing to write when the chain is off", function()
    local ctx = valid_ctx()
    stage("spawn")(ctx)
    stage("result")(ctx)
    assert.is_nil(stage("attestation")(ctx))
    assert.is_nil(ctx.record.attestation)
  end)

  describe("cleanup", function()
    it("reports the outcome to the breaker and builds the verdict document", function()
      local ctx = valid_ctx()
      stage("circuit_breaker")(ctx)
      stage("spawn")(ctx)
      context.conclude(ctx, "ESPAWN", "ESPAWN: no worker")
      stage("cleanup")(ctx)
      local doc = ctx.response_body
      assert.same({ "ERROR", true, "ESPAWN: no worker", ctx.job_id }, { doc.result, doc.refundEligible, doc.error,
        doc.jobId })
      local failures = generation.state("circuit_breaker").failures
      assert.truthy(type(failures) == "table" and #failures >= 1)
    end)

    it("a refusal leaves no verdict and gives the breaker's admission back", function()
      local ctx = valid_ctx()
      stage("circuit_breaker")(ctx)
      ctx.code = "ECAPACITY"
      stage("cleanup")(ctx)
      assert.is_nil(ctx.response_body)
    end)
  end)
end)
