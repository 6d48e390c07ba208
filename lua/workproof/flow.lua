-- SPDX-License-Identifier: MIT
--- The request flow's shape: which orders of stages a generation accepts.
--
-- Stages belong to fixed phases, in this order:
--
--   admit   validate, size, rate_limit, code_patterns, circuit_breaker
--   pay     payment
--   run     worker_threshold, spawn, result
--   record  attestation
--   finally cleanup
--
-- Operators reorder stages within a phase, drop optional ones and add
-- policy stages (a policy's `stage` hook) anywhere between `validate` and
-- `cleanup`. A flow is rejected, naming the stage, when it could run
-- untrusted code before it is paid for, or answer without a verdict:
--   * validate first, cleanup last; spawn and result present;
--   * built-in stages in phase order (so payment precedes every run stage);
--   * spawn before result; worker_threshold (when present) before spawn;
--   * payment present whenever payments are enabled.
local type, ipairs, tostring = type, ipairs, tostring

local _M = {}

_M.PHASES = { "admit", "pay", "run", "record", "finally" }

local PHASE = {
  validate = 1, size = 1, rate_limit = 1, code_patterns = 1, circuit_breaker = 1,
  payment = 2,
  worker_threshold = 3, spawn = 3, result = 3,
  attestation = 4,
  cleanup = 5,
}
_M.PHASE_OF = PHASE

--- Check a flow (array of stage names). Returns true, or nil and a message
-- naming the offending stage. `opts.payments`: payments are enabled.
function _M.check(flow, opts)
  opts = opts or {}
  local pos = {}
  for i, name in ipairs(flow) do
    if pos[name] then
      return nil, ("flow[%d]: stage '%s' appears twice (first at flow[%d])"):format(i, name, pos[name])
    end
    pos[name] = i
  end
  for _, need in ipairs({ "validate", "spawn", "result", "cleanup" }) do
    if not pos[need] then
      return nil, ("flow: stage '%s' is missing; every flow needs validate, spawn, result and cleanup"):format(need)
    end
  end
  if pos.validate ~= 1 then
    return nil, ("flow[1]: '%s' before 'validate': validate must come first"):format(tostring(flow[1]))
  end
  if pos.cleanup ~= #flow then
    return nil, ("flow[%d]: '%s' after 'cleanup': cleanup must come last"):format(#flow, tostring(flow[#flow]))
  end
  if opts.payments and not pos.payment then
    return nil, "flow: payments are enabled but the flow has no 'payment' stage (work would run unpaid)"
  end
  local last_phase, last_name = 1, "validate"
  for i, name in ipairs(flow) do
    local ph = PHASE[name]
    if ph then
      if ph < last_phase then
        return nil, ("flow[%d]: stage '%s' (phase %s) after '%s' (phase %s): phases run admit -> pay -> run "
          .. "-> record -> finally"):format(i, name, _M.PHASES[ph], last_name, _M.PHASES[last_phase])
      end
      last_phase, last_name = ph, name
    end
  end
  if pos.result < pos.spawn then
    return nil, ("flow[%d]: 'result' before 'spawn'"):format(pos.result)
  end
  if pos.worker_threshold and pos.worker_threshold > pos.spawn then
    return nil, ("flow[%d]: 'worker_threshold' after 'spawn': capacity is taken before a worker starts")
      :format(pos.worker_threshold)
  end
  return true
end

--- True when `name` is a built-in stage.
function _M.builtin(name)
  return type(name) == "string" and PHASE[name] ~= nil
end

return _M
