-- SPDX-License-Identifier: MIT
--- Stage `worker_threshold` (phase run, before spawn): a worker slot for
-- this client (the worker_threshold policy's caps), held until the finally
-- phase gives it back (ctx.held.slot).
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"
local rate_limit = require "workproof.stages.rate_limit"

local tostring, tonumber, max, ceil = tostring, tonumber, math.max, math.ceil

local function run(ctx)
  local ok, why, retry = generation.hook(ctx.gen, "worker_threshold", "admit", false, true,
    generation.state("worker_threshold"), rate_limit.client_key(ctx))
  if not ok then
    return errors.retry_later("ECAPACITY", max(1, ceil(tonumber(retry) or 5)),
      { workers = tostring(why or "capacity") })
  end
  ctx.held.slot = true
end

return { name = "worker_threshold", run = run }
