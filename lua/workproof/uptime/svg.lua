-- SPDX-License-Identifier: MIT
--- The uptime timeline as SVG (`workproof uptime report`, the agents'
-- /leases/{id}/report.svg): up in green, gaps in red, epoch and claim
-- boundaries, a time axis (dated when it spans days).
local u = require("workproof").uptime

local tostring, ipairs, floor, concat, fmt = tostring, ipairs, math.floor, table.concat, string.format
local NS = 1e9

local _M = {}

local function ts_seconds(ts)
  if #ts <= 9 then return tonumber(ts) / NS end
  return tonumber(ts:sub(1, -10)) + tonumber(ts:sub(-9)) / NS
end

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

--- render(beats, tr (timestamps.check_chain's report), interval, title
-- [, epoch_beats = 60, claim_epochs = 24]) -> SVG text
function _M.render(beats, tr, interval, title, epoch_beats, claim_epochs)
  epoch_beats = epoch_beats or u.EPOCH_BEATS
  local claim_beats = epoch_beats * (claim_epochs or (u.CLAIM_BEATS / u.EPOCH_BEATS))
  local W, H, x0, x1, y0, bh = 1000, 250, 60, 970, 90, 50
  local t0 = ts_seconds(beats[1].timestamp)
  local t1 = ts_seconds(beats[#beats].timestamp) + interval
  local span = math.max(t1 - t0, 1)
  local function X(t) return x0 + (t - t0) / span * (x1 - x0) end
  local o = {}
  local function add(...) o[#o + 1] = fmt(...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family="DejaVu Sans, Arial, sans-serif">', W, H, W, H)
  add('<title>%s</title>', esc(title))
  add('<rect width="%d" height="%d" fill="#ffffff"/>', W, H)
  add('<text x="%d" y="30" font-size="18" font-weight="bold" fill="#222">%s</text>', x0, esc(title))
  local missed = 0
  for _, g in ipairs(tr.gaps) do missed = missed + g.missed end
  add('<text x="%d" y="55" font-size="13" fill="#444">%s .. %s UTC  ·  %d beats  ·  %d gap(s), %d missed beat(s), '
    .. '%.0f s down</text>', x0, os.date("!%Y-%m-%d %H:%M", floor(t0)), os.date("!%Y-%m-%d %H:%M", floor(t1)),
    #beats, #tr.gaps, missed, tr.downtime_ns / NS)
  -- up, then the gaps over it
  add('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="#2e9d4f"/>', x0, y0, x1 - x0, bh)
  for _, g in ipairs(tr.gaps) do
    local a, b = ts_seconds(g.from_ns) + interval, ts_seconds(g.to_ns)
    add('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="#d62728"><title>gap: %d missed beat(s), %.0f s'
      .. '</title></rect>', X(a), y0, math.max(X(b) - X(a), 1.5), bh, g.missed, b - a)
  end
  -- epoch boundaries (every epoch_beats) and claim boundaries
  local nep = 0
  for _, b in ipairs(beats) do
    if b.sequence % epoch_beats == 0 and b ~= beats[1] then
      nep = nep + 1
      local x = X(ts_seconds(b.timestamp))
      local claim = b.sequence % claim_beats == 0
      add('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="%s" stroke-width="%s"%s/>', x, y0 - 8, x, y0 + bh + 8,
        claim and "#000" or "#555", claim and "2" or "1", claim and "" or ' stroke-dasharray="3,2"')
    end
  end
  add('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>', x0, y0, x1 - x0, bh)
  -- time axis
  local steps = { 60, 300, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800 }
  local step = steps[#steps]
  for _, s in ipairs(steps) do if span / s <= 12 then step = s break end end
  local ay = y0 + bh + 25
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', x0, ay - 12, x1, ay - 12)
  local t = (floor(t0 / step) + 1) * step
  -- a chart over more than one UTC day dates its time ticks (a 48-hour
  -- chart would otherwise repeat 06:00 12:00 ... with nothing to tell the
  -- days apart): the date under the first tick and under each new day's
  local multiday = os.date("!%Y-%m-%d", floor(t0)) ~= os.date("!%Y-%m-%d", floor(t1))
  local prev_day
  while t < t1 do
    local x = X(t)
    add('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="#333"/>', x, ay - 16, x, ay - 8)
    add('<text x="%.2f" y="%d" font-size="11" text-anchor="middle" fill="#333">%s</text>', x, ay + 4,
      os.date(step >= 86400 and "!%m-%d" or "!%H:%M", floor(t)))
    local day = os.date("!%Y-%m-%d", floor(t))
    if multiday and step < 86400 and day ~= prev_day then
      add('<text x="%.2f" y="%d" font-size="10" text-anchor="middle" fill="#666">%s</text>', x, ay + 17, day)
    end
    prev_day = day
    t = t + step
  end
  -- legend
  local ly = H - 35
  add('<rect x="%d" y="%d" width="14" height="10" fill="#2e9d4f"/><text x="%d" y="%d" font-size="12">up '
    .. '(dual-signed heartbeats)</text>', x0, ly, x0 + 20, ly + 10)
  add('<rect x="%d" y="%d" width="14" height="10" fill="#d62728"/><text x="%d" y="%d" font-size="12">gap '
    .. '(downtime)</text>', x0 + 240, ly, x0 + 260, ly + 10)
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#555" stroke-dasharray="3,2"/><text x="%d" y="%d" '
    .. 'font-size="12">epoch boundary (%d)</text>', x0 + 380, ly - 2, x0 + 380, ly + 12, x0 + 388, ly + 10, nep)
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#000" stroke-width="2"/><text x="%d" y="%d" '
    .. 'font-size="12">claim boundary</text>', x0 + 560, ly - 2, x0 + 560, ly + 12, x0 + 568, ly + 10)
  add('</svg>')
  return concat(o, "\n") .. "\n"
end

return _M
