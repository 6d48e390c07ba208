-- SPDX-License-Identifier: MIT
--- The controller's metrics: one registry for the process, counted into by
-- the notary's modules through these functions, rendered for /metrics with
-- the gauges each module reports at scrape time (collectors).
local metrics = require "workproof.metrics"

local ipairs = ipairs

local _M = {}

local registry = metrics.new()
local collectors = {}

function _M.counter(name, help, labels, n) registry:counter(name, help, labels, n) end
function _M.counter_total(name, help, labels, total) registry:counter_total(name, help, labels, total) end
function _M.gauge(name, help, value, labels) registry:gauge(name, help, value, labels) end
function _M.observe(name, help, value, labels) registry:observe(name, help, value, labels) end

--- A label string formatted once (metrics.key), for hot paths.
_M.key = metrics.key

--- Add fn(m) to run before each render; m is this module (set gauges).
function _M.collector(fn) collectors[#collectors + 1] = fn end

--- The Prometheus text exposition of everything.
function _M.render()
  for _, fn in ipairs(collectors) do fn(_M) end
  return registry:render()
end

return _M
