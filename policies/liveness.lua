-- SPDX-License-Identifier: MIT
--- What a missing or late beat means for a lease (docs/uptime.md,
-- "Agents"): both uptime agents ask assess() every second and after each
-- beat, log every change of state (warn for late and down), and show the
-- state in their status API and metrics.
--
--   new   no beat yet
--   up    the last beat is at most late_after intervals old
--   late  older than that: the next exchange is overdue
--   down  older than down_after intervals: the lease is counted down (the
--         gap itself is recorded by the chain when beats resume)
local _M = {
  name = "liveness",
  version = "1",
  description = "lease state from the age of its last beat: up, late, down",
}

_M.schema = {
  late_after = { type = "number", default = 1.5, min = 1, max = 100,
    description = "intervals without a beat before a lease is late" },
  down_after = { type = "number", default = 3, min = 1, max = 1000,
    description = "intervals without a beat before a lease is down" },
}

function _M.self_check(conf)
  if conf.down_after < conf.late_after then error("down_after must be at least late_after") end
end

--- ctx: { since_s = seconds since the last beat (or since the agent
-- started following a lease that has none), interval_s, beats }
function _M.assess(conf, ctx)
  if ctx.since_s > conf.down_after * ctx.interval_s then return "down" end
  if ctx.since_s > conf.late_after * ctx.interval_s then return "late" end
  if (ctx.beats or 0) == 0 then return "new" end
  return "up"
end

return _M
