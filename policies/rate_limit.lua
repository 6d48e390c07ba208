-- SPDX-License-Identifier: MIT
--- Per-client rate limiting with progressive penalties (docs/policies.md).
--
-- Who is the client: client_key() maps a request to a key. The peer address
-- is the client unless the peer is a trusted proxy, in which case the
-- right-most X-Forwarded-For entry that is not itself a trusted proxy is.
-- IPv4 addresses are keys as they are; IPv6 addresses are grouped by their
-- /ipv6_prefix (64 by default: one customer site gets one bucket, however
-- many addresses it rotates through); IPv4-mapped IPv6 counts as IPv4.
--
-- How fast: GCRA (the generic cell rate algorithm, as in
-- lua-resty-limit-traffic): one "theoretical arrival time" per key; each
-- request pushes it by window/limit seconds; a request that would push it
-- more than `window` ahead of now is over the limit. This is a sliding
-- window of `limit` requests per `window` seconds without storing requests.
--
-- What happens: over warn_ratio of the limit the request passes with a
-- warning ("warn"); over the limit the client is blocked for block_seconds
-- ("block"); a client already blocked blacklist_after times within
-- blacklist_window is blacklisted for blacklist_seconds on its next offence
-- ("blacklist"). Requests during a block or blacklist are refused without
-- extending it and without using capacity.
--
-- State (host-owned, survives reloads, docs/conventions.md §5):
--   state.clients[key] = { tat=, seen=, block_until=, bl_until=, strikes={t...} }
--   state.count        = number of keys in state.clients
--   state.next_sweep   = time of the next expiry sweep
-- Every field is created lazily and checked before use, so a state left by
-- an older version of this file (or a damaged one) is repaired, not trusted.
local _M = {
  name = "rate_limit",
  version = "1",
  description = "per-client request rate: warn, block, blacklist; IPv6 by prefix; XFF from trusted proxies",
}

local type, tonumber, tostring, pairs, ipairs, setmetatable = type, tonumber, tostring, pairs, ipairs, setmetatable
local floor, ceil, max = math.floor, math.ceil, math.max
local sort, concat = table.sort, table.concat
local clock = now

---------------------------------------------------------------------------
-- addresses: a parsed address is an array of 4 (IPv4) or 16 (IPv6) bytes

local function parse_v4(s)
  local a, b, c, d = s:match("^(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)%.(%d%d?%d?)$")
  if not a then return nil end
  a, b, c, d = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
  if a > 255 or b > 255 or c > 255 or d > 255 then return nil end
  return { a, b, c, d }
end

-- Append the 16-bit groups of one side of "::" to out; the last item may be
-- a dotted quad when v4_last. Returns false on a malformed item.
local function v6_groups(part, out, v4_last)
  if part == "" then return true end
  local items = {}
  for item in (part .. ":"):gmatch("([^:]*):") do items[#items + 1] = item end
  for i, item in ipairs(items) do
    if item:find(".", 1, true) then
      if i ~= #items or not v4_last then return false end
      local q = parse_v4(item)
      if not q then return false end
      out[#out + 1] = q[1] * 256 + q[2]
      out[#out + 1] = q[3] * 256 + q[4]
    elseif item:match("^%x%x?%x?%x?$") then
      out[#out + 1] = tonumber(item, 16)
    else
      return false -- empty (stray ':'), too long, not hex
    end
  end
  return true
end

-- s: lowercase, no zone id. Returns 16 bytes or nil.
local function parse_v6(s)
  if #s < 2 or #s > 45 or s:find("[^%x:%.]") then return nil end
  local head, tail = s, nil
  local dc = s:find("::", 1, true)
  if dc then
    head, tail = s:sub(1, dc - 1), s:sub(dc + 2)
    if tail:find("::", 1, true) then return nil end
  end
  local h, t = {}, {}
  if not v6_groups(head, h, tail == nil) then return nil end
  if tail and not v6_groups(tail, t, true) then return nil end
  if tail then
    if #h + #t > 7 then return nil end
    for _ = 1, 8 - #h - #t do h[#h + 1] = 0 end
    for _, g in ipairs(t) do h[#h + 1] = g end
  elseif #h ~= 8 then
    return nil
  end
  local bytes = {}
  for i, g in ipairs(h) do
    bytes[2 * i - 1] = floor(g / 256)
    bytes[2 * i] = g % 256
  end
  return bytes
end

--- Parse an IP address. Accepts IPv4 dotted quads and IPv6 in any RFC 4291
-- text form ("::" compression, embedded dotted quad, any case, a %zone
-- suffix which is dropped). IPv4-mapped IPv6 (::ffff:a.b.c.d) comes back as
-- IPv4. Returns the byte array (4 or 16 entries) and whether it was mapped,
-- or nil.
local function parse_ip(s)
  if type(s) ~= "string" or #s == 0 or #s > 64 then return nil end
  if not s:find(":", 1, true) then return parse_v4(s) end
  s = s:lower():gsub("%%.*$", "")
  local b = parse_v6(s)
  if not b then return nil end
  for i = 1, 10 do if b[i] ~= 0 then return b end end
  if b[11] == 255 and b[12] == 255 then return { b[13], b[14], b[15], b[16] }, true end
  return b
end
_M.parse_ip = function(_, s) return parse_ip(s) end

--- Parse "addr" or "addr/len". Returns { bytes =, len = } or nil, reason.
local function parse_cidr(s)
  if type(s) ~= "string" then return nil, "expected a string" end
  local addr, len = s:match("^([^/]+)/(%d%d?%d?)$")
  if not addr then
    if s:find("/", 1, true) then return nil, "invalid prefix length in '" .. s .. "'" end
    addr = s
  end
  local b, mapped = parse_ip(addr)
  if not b then return nil, "not an IP address or CIDR: '" .. s .. "'" end
  local bits = #b * 8
  if len then
    len = tonumber(len)
    if mapped then
      if len < 96 then return nil, "IPv4-mapped prefix shorter than /96: '" .. s .. "'" end
      len = len - 96
    end
    if len > bits then return nil, "prefix length over /" .. bits .. " in '" .. s .. "'" end
  else
    len = bits
  end
  return { bytes = b, len = len }
end

-- does address a (bytes) fall inside cidr c?
local function in_cidr(a, c)
  if #a ~= #c.bytes then return false end
  local full = floor(c.len / 8)
  for i = 1, full do
    if a[i] ~= c.bytes[i] then return false end
  end
  local rest = c.len - full * 8
  if rest > 0 then
    local d = 2 ^ (8 - rest)
    if floor(a[full + 1] / d) ~= floor(c.bytes[full + 1] / d) then return false end
  end
  return true
end

-- RFC 5952 text of 8 16-bit groups: lowercase, no leading zeros, the
-- longest run (first on a tie) of two or more zero groups as "::".
local function format_v6(g)
  local best, best_len, run, run_len = nil, 1, nil, 0
  for i = 1, 8 do
    if g[i] == 0 then
      if not run then run, run_len = i, 0 end
      run_len = run_len + 1
      if run_len > best_len then best, best_len = run, run_len end
    else
      run = nil
    end
  end
  local parts = {}
  local i = 1
  while i <= 8 do
    if i == best then
      parts[#parts + 1] = (i == 1) and ":" or ""
      i = i + best_len
      if i > 8 then parts[#parts + 1] = "" end
    else
      parts[#parts + 1] = ("%x"):format(g[i])
      i = i + 1
    end
  end
  return concat(parts, ":")
end

-- The rate-limit key of a parsed address.
local function key_of(b, prefix)
  if #b == 4 then return concat(b, ".") end
  local g = {}
  for i = 1, 8 do
    local bit0 = (i - 1) * 16
    local v = b[2 * i - 1] * 256 + b[2 * i]
    if bit0 >= prefix then
      v = 0
    elseif bit0 + 16 > prefix then
      local d = 2 ^ (bit0 + 16 - prefix)
      v = floor(v / d) * d
    end
    g[i] = v
  end
  return format_v6(g) .. "/" .. prefix
end

-- compiled trusted_proxies per validated config (a cache derived from the
-- config, not state: it dies with the generation's conf table)
local compiled = setmetatable({}, { __mode = "k" })

local function trusted_list(conf)
  local list = compiled[conf]
  if not list then
    list = {}
    for _, s in ipairs(conf.trusted_proxies) do
      local c = parse_cidr(s)
      if c then list[#list + 1] = c end
    end
    compiled[conf] = list
  end
  return list
end

local function is_trusted(list, a)
  for i = 1, #list do
    if in_cidr(a, list[i]) then return true end
  end
  return false
end

-- One X-Forwarded-For entry: trims blanks and quotes, accepts "[v6]",
-- "[v6]:port" and "v4:port".
local function parse_entry(e)
  e = e:match("^%s*(.-)%s*$"):gsub('^"(.*)"$', "%1")
  local inner = e:match("^%[([^%]]+)%]:?%d*$")
  if inner then return parse_ip(inner) end
  local v4 = e:match("^([%d%.]+):%d+$")
  if v4 then return parse_ip(v4) end
  return parse_ip(e)
end

local MAX_XFF = 4096 -- bytes of the header looked at, from the right

local function forwarded_for(headers)
  if type(headers) ~= "table" then return nil end
  local v = headers["x-forwarded-for"]
  if v == nil then
    for k, x in pairs(headers) do
      if type(k) == "string" and k:lower() == "x-forwarded-for" then v = x break end
    end
  end
  if type(v) == "table" then v = concat(v, ",") end
  if type(v) ~= "string" or v == "" then return nil end
  if #v > MAX_XFF then v = v:sub(-MAX_XFF) end
  return v
end

--- The client key of a request: see the file header. Unparsable peers
-- (unix sockets, "?") are keys as given (at most 64 bytes).
function _M.client_key(conf, peer_ip, headers)
  local peer = parse_ip(peer_ip)
  if not peer then
    return type(peer_ip) == "string" and peer_ip:sub(1, 64) or "?"
  end
  local client = peer
  local list = trusted_list(conf)
  if #list > 0 and is_trusted(list, peer) then
    local xff = forwarded_for(headers)
    if xff then
      local entries = {}
      for e in (xff .. ","):gmatch("([^,]*),") do entries[#entries + 1] = e end
      local chosen
      for i = #entries, 1, -1 do
        local a = parse_entry(entries[i])
        if not a then chosen = nil break end -- unreadable: believe nothing left of it
        chosen = a
        if not is_trusted(list, a) then break end
      end
      client = chosen or peer
    end
  end
  return key_of(client, conf.ipv6_prefix)
end

---------------------------------------------------------------------------
-- config

_M.schema = {
  limit = { type = "integer", default = 100, min = 1, max = 1000000000,
    description = "requests allowed per window per client" },
  window = { type = "number", default = 60, min = 1, max = 86400,
    description = "seconds; the sliding window the limit applies to" },
  warn_ratio = { type = "number", default = 0.8, min = 0, max = 1,
    description = "over this fraction of the limit a request passes with action 'warn'" },
  block_seconds = { type = "number", default = 60, min = 1, max = 604800,
    description = "how long a client over the limit is refused" },
  blacklist_after = { type = "integer", default = 3, min = 1, max = 1000,
    description = "blocks within blacklist_window after which the next offence blacklists" },
  blacklist_window = { type = "number", default = 3600, min = 1, max = 31536000,
    description = "seconds over which blocks are counted" },
  blacklist_seconds = { type = "number", default = 86400, min = 1, max = 31536000,
    description = "how long a blacklisted client is refused" },
  ipv6_prefix = { type = "integer", default = 64, min = 8, max = 128,
    description = "IPv6 clients are grouped by this prefix length" },
  trusted_proxies = { type = "array", default = {},
    elements = { type = "string", custom = function(s)
      local ok, why = parse_cidr(s)
      if ok then return true end
      return nil, why
    end },
    description = "peers (IPs or CIDRs) whose X-Forwarded-For is believed" },
  max_clients = { type = "integer", default = 100000, min = 1, max = 10000000,
    description = "tracked keys at most; beyond it expired then least recently seen keys are dropped" },
}

---------------------------------------------------------------------------
-- state

local function num(v)
  return type(v) == "number" and v == v and v or nil
end

local function clients_of(state)
  local c = state.clients
  if type(c) ~= "table" then
    c = {}
    state.clients, state.count = c, 0
  end
  if type(state.count) ~= "number" then
    local n = 0
    for _ in pairs(c) do n = n + 1 end
    state.count = n
  end
  return c
end

-- An entry that no longer matters: bucket drained, no penalty, no strike
-- that could still count towards a blacklist.
local function expired(conf, e, t)
  if type(e) ~= "table" then return true end
  if (num(e.tat) or 0) > t then return false end
  if (num(e.block_until) or 0) > t or (num(e.bl_until) or 0) > t then return false end
  local s = e.strikes
  if type(s) == "table" and #s > 0 and (num(s[#s]) or 0) + conf.blacklist_window > t then return false end
  return true
end

local function sweep(conf, state, t)
  local c = clients_of(state)
  local n = 0
  for k, e in pairs(c) do
    if expired(conf, e, t) then c[k] = nil else n = n + 1 end
  end
  state.count = n
end

-- Make room for one more key: drop expired keys; if still full, drop the
-- least recently seen down to 90 % of max_clients, penalised keys last
-- (so a flood of new keys does not easily wash out a blacklist).
local function make_room(conf, state, t)
  sweep(conf, state, t)
  if state.count < conf.max_clients then return end
  local c = state.clients
  local list = {}
  for k, e in pairs(c) do
    local pen = ((num(e.block_until) or 0) > t or (num(e.bl_until) or 0) > t) and 1 or 0
    list[#list + 1] = { k, pen, num(e.seen) or 0 }
  end
  sort(list, function(x, y)
    if x[2] ~= y[2] then return x[2] < y[2] end
    if x[3] ~= y[3] then return x[3] < y[3] end
    return x[1] < y[1]
  end)
  local target = floor(conf.max_clients * 0.9)
  if target >= conf.max_clients then target = conf.max_clients - 1 end
  local drop = #list - target
  for i = 1, drop do c[list[i][1]] = nil end
  state.count = #list - drop
end

local function retry(until_t, t)
  return max(1, ceil(until_t - t - 1e-9))
end

---------------------------------------------------------------------------
-- hooks

--- Decide one request of client `key` at time `now` (default: the clock).
-- Returns action ("allow" | "warn" | "block" | "blacklist"), retry_after
-- (whole seconds >= 1 for block/blacklist, nil otherwise) and
-- info = { remaining = n, limit = conf.limit }.
function _M.check(conf, state, key, t)
  t = num(t) or clock()
  key = tostring(key)
  local limit, window = conf.limit, conf.window
  local c = clients_of(state)
  local ns = num(state.next_sweep) or 0
  if t >= ns or ns > t + max(window, 60) then
    if state.count > 0 then sweep(conf, state, t) end
    state.next_sweep = t + max(window, 60)
  end
  local e = c[key]
  if type(e) ~= "table" then
    if e == nil and state.count >= conf.max_clients then make_room(conf, state, t) end
    if c[key] == nil then state.count = state.count + 1 end
    e = {}
    c[key] = e
  end
  e.seen = t

  -- penalties first; a clock stepped back cannot make them longer
  local bl = num(e.bl_until)
  if bl and bl > t then
    if bl > t + conf.blacklist_seconds then bl = t + conf.blacklist_seconds; e.bl_until = bl end
    return "blacklist", retry(bl, t), { remaining = 0, limit = limit }
  end
  local bu = num(e.block_until)
  if bu and bu > t then
    if bu > t + conf.block_seconds then bu = t + conf.block_seconds; e.block_until = bu end
    return "block", retry(bu, t), { remaining = 0, limit = limit }
  end

  local step = window / limit
  local tat = num(e.tat)
  if not tat or tat < t or tat > t + window + step then tat = t end
  local new = tat + step
  if new - t > window + window * 1e-9 then
    -- an offence: a block, or a blacklist for a repeat offender
    local s = type(e.strikes) == "table" and e.strikes or {}
    local kept = {}
    for _, st in ipairs(s) do
      if type(st) == "number" and st + conf.blacklist_window > t then kept[#kept + 1] = st end
    end
    while #kept > conf.blacklist_after do table.remove(kept, 1) end
    if #kept >= conf.blacklist_after then
      e.strikes, e.block_until = {}, nil
      e.bl_until = t + conf.blacklist_seconds
      return "blacklist", retry(e.bl_until, t), { remaining = 0, limit = limit }
    end
    kept[#kept + 1] = t
    e.strikes = kept
    e.block_until = t + conf.block_seconds
    return "block", retry(e.block_until, t), { remaining = 0, limit = limit }
  end
  e.tat = new
  local remaining = floor((window - (new - t)) / step + 1e-6)
  if remaining < 0 then remaining = 0 end
  if remaining > limit then remaining = limit end
  local info = { remaining = remaining, limit = limit }
  if limit - remaining > conf.warn_ratio * limit + 1e-9 then return "warn", nil, info end
  return "allow", nil, info
end

--- Counts for metrics at time `now` (default: the clock):
-- { tracked = keys held, blocked = keys in a block, blacklisted = keys blacklisted }.
function _M.stats(_, state, t)
  t = num(t) or clock()
  local c = clients_of(state)
  local tracked, blocked, blacklisted = 0, 0, 0
  for _, e in pairs(c) do
    tracked = tracked + 1
    if type(e) == "table" then
      if (num(e.bl_until) or 0) > t then blacklisted = blacklisted + 1
      elseif (num(e.block_until) or 0) > t then blocked = blocked + 1 end
    end
  end
  state.count = tracked
  return { tracked = tracked, blocked = blocked, blacklisted = blacklisted }
end

--- Lift every penalty of one key (an operator's pardon; not called by the
-- controller). Returns true if the key was tracked.
function _M.forgive(_, state, key)
  local c = clients_of(state)
  local e = c[tostring(key)]
  if type(e) ~= "table" then return false end
  e.block_until, e.bl_until, e.strikes = nil, nil, nil
  return true
end

return _M
