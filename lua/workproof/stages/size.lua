-- SPDX-License-Identifier: MIT
--- Stage `size` (phase admit): the code is within limits.max_code.
local errors = require "workproof.errors"

local function run(ctx)
  local max = ctx.gen.config.limits.max_code
  if #ctx.task.code > max then
    return errors.refusal("ETOOLARGE", { code = ("over %d bytes"):format(max) }, nil, "code too large")
  end
end

return { name = "size", run = run }
