-- SPDX-License-Identifier: MIT
--- The flow runner: a /verify request through the generation's stages,
-- phase by phase (admit -> pay -> run -> record -> finally; the order is
-- checked when the generation is built, workproof.flow). A stage returns
-- nil to go on, or a response to stop; `spawn` may answer early (202,
-- async) and let the rest run on in its own coroutine. However the request
-- ends — a refusal, a verdict, an error in a stage — the finally phase
-- (stages/cleanup.lua) runs exactly once, here and nowhere else.
local host = require "workproof.host"
local errors = require "workproof.errors"
local context = require "workproof.notary.context"
local generation = require "workproof.notary.generation"
local dashboard = require "workproof.notary.dashboard"

local pcall, pairs, tostring = pcall, pairs, tostring

local _M = {}

local draining = false

--- Refuse new work from now on (graceful shutdown).
function _M.drain() draining = true end
function _M.draining() return draining end

-- Run stages from index i up to (not including) `cleanup`, the last one.
-- Returns the response that stopped the flow (nil: it ran through) and,
-- when a stage answered early, the index to continue from.
local function run_from(ctx, i)
  local flow = ctx.gen.flow
  while i < #flow do
    local st = flow[i]
    ctx.stage = st.name
    local res, go_on = st.run(ctx)
    if res then
      if go_on then return res, i + 1 end
      ctx.code = ctx.code or (res.body and res.body.code)
      return res
    end
    i = i + 1
  end
  return nil
end

-- The finally phase, then the answer.
local function finish(ctx, ok, res)
  if not ok then
    host.log("error", ("verify failed in stage %s: %s"):format(tostring(ctx.stage), tostring(res)))
    if ctx.job_id then context.conclude(ctx, "EINTERNAL", "internal error") else ctx.code = "EINTERNAL" end
  end
  ctx.stage = "cleanup"
  local cok, cerr = pcall(ctx.gen.flow[#ctx.gen.flow].run, ctx)
  if not cok then host.log("error", "cleanup of job " .. tostring(ctx.job_id) .. " failed: " .. tostring(cerr)) end
  dashboard.record(ctx)
  if ctx.response_body then return { status = 200, body = ctx.response_body } end
  if not ok then return errors.refusal("EINTERNAL") end
  return res or errors.refusal("EINTERNAL", { flow = "the flow ended without a verdict" })
end

--- POST /verify: the response.
function _M.verify(req)
  if draining then return errors.retry_later("ESHUTDOWN", 5) end
  local ctx = context.new(req, generation.current())
  local ok, res, resume = pcall(run_from, ctx, 1)
  if ok and resume then
    host.spawn(function()
      host.log_request(ctx.req.request_id)   -- its log lines carry the request's id
      local ok2, res2 = pcall(run_from, ctx, resume)
      finish(ctx, ok2, res2)
    end)
  else
    res = finish(ctx, ok, res)
  end
  res.headers = res.headers or {}
  for k, v in pairs(ctx.headers) do res.headers[k] = v end
  return res
end

return _M
