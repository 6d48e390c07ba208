-- SPDX-License-Identifier: MIT
--- Stage `code_patterns` (phase admit): the code_patterns policy's rules.
local errors = require "workproof.errors"
local generation = require "workproof.notary.generation"

local function run(ctx)
  local rule, desc = generation.hook(ctx.gen, "code_patterns", "check", nil, nil, ctx.language, ctx.task.code)
  if rule then
    return errors.refusal("EBLOCKED",
      { code = ("blocked by rule '%s'%s"):format(rule, desc and (": " .. desc) or "") })
  end
end

return { name = "code_patterns", run = run }
