-- SPDX-License-Identifier: MIT
-- policies/rate_limit.lua, loaded as the controller loads it, driven by an
-- injected clock (no sleeps).
local policy = require "workproof.policy"
local h = require "helpers"

local FILE = "policies/rate_limit.lua"

local t
local p

local function conf_of(c)
  local conf, errs = policy.configure(p, c or {})
  assert(conf, errs and table.concat(require("workproof.schema").format_errors(errs), "; "))
  return conf
end

-- run n checks of key at time t, returning the list of actions
local function burst(conf, state, key, n)
  local out = {}
  for i = 1, n do out[i] = (p.check(conf, state, key, t)) end
  return out
end

-- action and retry_after of one check, as a list
local function act(c, state, key, at)
  local a, retry = p.check(c, state, key, at)
  return { a, retry }
end

local function count(list, what)
  local n = 0
  for _, a in ipairs(list) do if a == what then n = n + 1 end end
  return n
end

before_each(function()
  t = 1700000000
  p = policy.load_file(FILE, { clock = function() return t end })
end)

describe("rate_limit policy: schema", function()
  it("loads the real file and fills every default", function()
    assert.equal("rate_limit", p.name)
    assert.same({
      limit = 100, window = 60, warn_ratio = 0.8, block_seconds = 60, blacklist_after = 3,
      blacklist_window = 3600, blacklist_seconds = 86400, ipv6_prefix = 64, trusted_proxies = {},
      max_clients = 100000,
    }, conf_of({}))
  end)

  it("reports every bad setting at once, keyed by field", function()
    local errs = h.refused_config(policy.configure, p, {
      limit = 0, window = "60", warn_ratio = 1.5, block_seconds = 0, blacklist_after = 1.5,
      blacklist_window = -1, blacklist_seconds = true, ipv6_prefix = 129, max_clients = 0, burst = 5,
      trusted_proxies = { "10.0.0.0/8", "bogus", "1.2.3.4/33", "2001:db8::/129", "10.0.0.1/", 7,
        "::ffff:10.0.0.0/90", "2001:db8::1/64" },
    })
    assert.same({
      limit = "must be >= 1",
      window = "expected a number",
      warn_ratio = "must be <= 1",
      block_seconds = "must be >= 1",
      blacklist_after = "expected an integer",
      blacklist_window = "must be >= 1",
      blacklist_seconds = "expected a number",
      ipv6_prefix = "must be <= 128",
      max_clients = "must be >= 1",
      burst = "unknown field",
      trusted_proxies = {
        [2] = "not an IP address or CIDR: 'bogus'",
        [3] = "prefix length over /32 in '1.2.3.4/33'",
        [4] = "prefix length over /128 in '2001:db8::/129'",
        [5] = "invalid prefix length in '10.0.0.1/'",
        [6] = "expected a string",
        [7] = "IPv4-mapped prefix shorter than /96: '::ffff:10.0.0.0/90'",
      },
    }, errs)
  end)

  it("rejects a trusted_proxies that is not an array", function()
    local _, errs = policy.configure(p, { trusted_proxies = "10.0.0.0/8" })
    assert.same({ trusted_proxies = "expected an array" }, errs)
  end)
end)

describe("rate_limit policy: client_key", function()
  local conf
  before_each(function() conf = conf_of({}) end)

  it("uses an IPv4 peer as it is", function()
    assert.equal("203.0.113.7", p.client_key(conf, "203.0.113.7", {}))
    assert.equal("10.1.2.3", p.client_key(conf, "010.001.2.3", {}))
  end)

  it("groups IPv6 peers by /64 whatever the spelling", function()
    local k = p.client_key(conf, "2001:db8:aa:bb::1", {})
    assert.equal("2001:db8:aa:bb::/64", k)
    for _, a in ipairs({
      "2001:db8:aa:bb::2", "2001:DB8:AA:BB:ffff:ffff:ffff:ffff", "2001:0db8:00aa:00bb:0:0:0:1",
      "2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb:1:2:1.2.3.4", "2001:db8:aa:bb::1%eth0", "2001:db8:aa:bb::",
    }) do
      assert.equal(k, p.client_key(conf, a, {}), a)
    end
    assert.equal("2001:db8:aa:bc::/64", p.client_key(conf, "2001:db8:aa:bc::1", {}))
    assert.equal("2001:db8:0:1::/64", p.client_key(conf, "2001:db8:0:1:ffff::", {}))
  end)

  it("formats keys per RFC 5952 and handles the corner cases of ::", function()
    local cases = {
      ["::"] = "::/64", ["::1"] = "::/64", ["1::"] = "1::/64", ["fe80::1%25eth0"] = "fe80::/64",
      ["1:2:3:4:5:6:7:8"] = "1:2:3:4::/64", ["1:0:0:0:5:6:7:8"] = "1::/64",
      ["1:2:3:4:5:6:7::"] = "1:2:3:4::/64", ["::2:3:4:5:6:7:8"] = "0:2:3:4::/64",
      ["1:0:3:4::"] = "1:0:3:4::/64", ["0:0:1:0::"] = "0:0:1::/64",
      ["::1.2.3.4"] = "::/64", -- IPv4-compatible (deprecated) is IPv6
    }
    for addr, key in pairs(cases) do assert.equal(key, p.client_key(conf, addr, {}), addr) end
  end)

  it("treats IPv4-mapped IPv6 as IPv4", function()
    assert.equal("192.0.2.1", p.client_key(conf, "::ffff:192.0.2.1", {}))
    assert.equal("192.0.2.1", p.client_key(conf, "::FFFF:c000:0201", {}))
    assert.equal("192.0.2.1", p.client_key(conf, "0:0:0:0:0:ffff:192.0.2.1", {}))
  end)

  it("honours ipv6_prefix, including prefixes inside a group", function()
    local c48 = conf_of({ ipv6_prefix = 48 })
    assert.equal("2001:db8:aa::/48", p.client_key(c48, "2001:db8:aa:bb::1", {}))
    local c56 = conf_of({ ipv6_prefix = 56 })
    assert.equal("2001:db8:aa:bb00::/56", p.client_key(c56, "2001:db8:aa:bbff::1", {}))
    local c128 = conf_of({ ipv6_prefix = 128 })
    assert.equal("2001:db8::1/128", p.client_key(c128, "2001:db8::1", {}))
    assert.not_equal(p.client_key(c128, "2001:db8::1", {}), p.client_key(c128, "2001:db8::2", {}))
    -- RFC 5952: the first of two equal zero runs is the one compressed
    assert.equal("2001:db8::1:0:0:1/128", p.client_key(c128, "2001:db8:0:0:1:0:0:1", {}))
    assert.equal("1:0:0:2::/128", p.client_key(c128, "1:0:0:2:0:0:0:0", {}))
  end)

  it("keys an unparsable peer by its text (at most 64 bytes)", function()
    for _, a in ipairs({ "1:::2", ":1::", "1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1.2.3.256",
      "1.2.3", "unix:/run/sock", "?" }) do
      assert.equal(a, p.client_key(conf, a, {}), a)
    end
    assert.equal(64, #p.client_key(conf, ("x"):rep(200), {}))
    assert.equal("?", p.client_key(conf, nil, {}))
  end)

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy", function()
    assert.equal("198.51.100.9", p.client_key(conf, "198.51.100.9", { ["x-forwarded-for"] = "203.0.113.1" }))
    local tc = conf_of({ trusted_proxies = { "10.0.0.0/8" } })
    assert.equal("198.51.100.9", p.client_key(tc, "198.51.100.9", { ["x-forwarded-for"] = "203.0.113.1" }))
  end)

  describe("behind trusted proxies", function()
    local tc
    before_each(function()
      tc = conf_of({ trusted_proxies = { "10.0.0.0/8", "192.0.2.5", "2001:db8:ffff::/48" } })
    end)
    local function key(peer, xff) return p.client_key(tc, peer, { ["x-forwarded-for"] = xff }) end

    it("takes the right-most address that is not a trusted proxy", function()
      assert.equal("203.0.113.9", key("10.0.0.1", "203.0.113.9"))
      assert.equal("203.0.113.9", key("10.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.2"))
      assert.equal("203.0.113.9", key("10.0.0.1", "203.0.113.9,192.0.2.5,10.9.9.9"))
      assert.equal("203.0.113.9", key("192.0.2.5", " 203.0.113.9 "))
    end)

    it("cannot be spoofed by entries a client prepends", function()
      -- the client sent "X-Forwarded-For: 1.1.1.1"; our proxy appended what it saw
      assert.equal("203.0.113.9", key("10.0.0.1", "1.1.1.1, 203.0.113.9"))
      assert.equal("203.0.113.9", key("10.0.0.1", "garbage, 203.0.113.9"))
    end)

    it("falls back to the peer when the entry that decides is unreadable", function()
      assert.equal("10.0.0.1", key("10.0.0.1", "203.0.113.9, garbage"))
      assert.equal("10.0.0.1", key("10.0.0.1", "203.0.113.9, unknown, 10.0.0.2"))
      assert.equal("10.0.0.1", key("10.0.0.1", "203.0.113.999"))
      assert.equal("10.0.0.1", key("10.0.0.1", ""))
      assert.equal("10.0.0.1", key("10.0.0.1", nil))
      assert.equal("10.0.0.1", p.client_key(tc, "10.0.0.1", nil))
    end)

    it("uses the left-most entry when every entry is a trusted proxy", function()
      assert.equal("10.0.0.7", key("10.0.0.1", "10.0.0.7, 10.0.0.2"))
    end)

    it("groups a forwarded IPv6 client by /64 and reads brackets and ports", function()
      assert.equal("2001:db8:5:6::/64", key("10.0.0.1", "2001:db8:5:6::7"))
      assert.equal("2001:db8:5:6::/64", key("10.0.0.1", "[2001:DB8:5:6::8]:443"))
      assert.equal("2001:db8:5:6::/64", key("10.0.0.1", '"[2001:db8:5:6::9]"'))
      assert.equal("203.0.113.9", key("10.0.0.1", "203.0.113.9:5555"))
      assert.equal("203.0.113.9", key("10.0.0.1", "::ffff:203.0.113.9"))
    end)

    it("trusts IPv6 proxies by CIDR and IPv4-mapped peers by their IPv4 range", function()
      assert.equal("203.0.113.9", key("2001:db8:ffff:1::1", "203.0.113.9"))
      assert.equal("2001:db8:fffe::/64", key("2001:db8:fffe::1", "203.0.113.9"))
      assert.equal("203.0.113.9", key("::ffff:10.1.1.1", "203.0.113.9"))
      assert.equal("203.0.113.9", key("10.0.0.1", "203.0.113.9, 2001:db8:ffff:9::1"))
    end)

    it("reads the header whatever its case, and repeated headers", function()
      assert.equal("203.0.113.9", p.client_key(tc, "10.0.0.1", { ["X-Forwarded-For"] = "203.0.113.9" }))
      assert.equal("203.0.113.9", p.client_key(tc, "10.0.0.1",
        { ["x-forwarded-for"] = { "1.1.1.1", "203.0.113.9, 10.0.0.3" } }))
    end)

    it("looks at the last 4 KiB of a huge header only", function()
      local xff = ("1.1.1.1, "):rep(2000) .. "203.0.113.9"
      assert.equal("203.0.113.9", key("10.0.0.1", xff))
      -- a proxy chain longer than that is cut mid-entry: the peer is used
      xff = "203.0.113.9, " .. ("10.0.0.2, "):rep(500) .. "10.0.0.3"
      assert.equal("10.0.0.1", key("10.0.0.1", xff))
    end)
  end)
end)

describe("rate_limit policy: check over simulated time", function()
  local conf, state
  before_each(function()
    conf = conf_of({})
    state = {}
  end)

  it("allows the limit per window, warns over warn_ratio, then blocks with Retry-After", function()
    local acts = burst(conf, state, "a", 100)
    assert.equal(80, count(acts, "allow"))
    assert.equal(20, count(acts, "warn"))
    assert.equal("allow", acts[80])
    assert.equal("warn", acts[81])
    local a, retry, info = p.check(conf, state, "a", t)
    assert.same({ "block", 60, { remaining = 0, limit = 100 } }, { a, retry, info })
  end)

  it("reports the remaining requests", function()
    local a, retry, info = p.check(conf, state, "a", t)
    assert.same({ "allow", nil, { remaining = 99, limit = 100 } }, { a, retry, info })
    burst(conf, state, "a", 49)
    assert.same({ remaining = 49, limit = 100 }, select(3, p.check(conf, state, "a", t)))
    t = t + 6 -- ten requests' worth drains
    assert.same({ remaining = 58, limit = 100 }, select(3, p.check(conf, state, "a", t)))
  end)

  it("is a sliding window: a steady rate at the limit is never refused", function()
    for _ = 1, 1000 do
      local a = p.check(conf, state, "a", t)
      assert.is_true(a == "allow" or a == "warn")
      t = t + 0.6
    end
  end)

  it("catches a rate just above the limit at the predicted request", function()
    -- every 0.5 s against 0.6 s per request: the backlog grows 0.1 s per
    -- request and passes the 60 s window at request 596
    local first_block
    for i = 1, 700 do
      local a = p.check(conf, state, "a", t)
      if a == "block" then first_block = i break end
      t = t + 0.5
    end
    assert.equal(596, first_block)
  end)

  it("does not extend a block with the blocked client's own requests", function()
    burst(conf, state, "a", 100)
    local t0 = t
    assert.equal("block", (p.check(conf, state, "a", t)))
    for s = 1, 59 do
      t = t0 + s
      local a, retry = p.check(conf, state, "a", t)
      assert.equal("block", a)
      assert.equal(60 - s, retry)
    end
    t = t0 + 59.5
    assert.same({ "block", 1 }, act(conf, state, "a", t))
    t = t0 + 60
    assert.equal("allow", (p.check(conf, state, "a", t)))
  end)

  it("keeps clients apart", function()
    burst(conf, state, "a", 101)
    assert.equal("block", (p.check(conf, state, "a", t)))
    assert.equal("allow", (p.check(conf, state, "b", t)))
  end)

  it("blacklists a client on its next offence after blacklist_after blocks", function()
    local t0 = t
    for round = 1, 3 do
      local acts = burst(conf, state, "a", 101)
      assert.equal("block", acts[101], "round " .. round)
      t = t + 61
    end
    local acts = burst(conf, state, "a", 101)
    assert.equal(100, count(acts, "allow") + count(acts, "warn"))
    local a, retry = p.check(conf, state, "a", t)
    assert.equal("blacklist", a)
    assert.equal(86400, retry)
    assert.equal("blacklist", acts[101])
    -- refused without extension for the whole day
    local bl_at = t0 + 3 * 61
    t = bl_at + 3600
    assert.same({ "blacklist", 86400 - 3600 }, act(conf, state, "a", t))
    t = bl_at + 86399.5
    assert.same({ "blacklist", 1 }, act(conf, state, "a", t))
    t = bl_at + 86400
    assert.equal("allow", (p.check(conf, state, "a", t)))
    -- strikes were reset: the next offence is a block again
    local again = burst(conf, state, "a", 100)
    assert.equal("block", again[100])
  end)

  it("starts a client over after a blacklist, even within blacklist_window", function()
    local c = conf_of({ limit = 1, warn_ratio = 1, blacklist_after = 1, block_seconds = 10, blacklist_seconds = 100 })
    assert.same({ "allow", "block" }, burst(c, state, "a", 2))
    t = t + 60
    assert.same({ "allow", "blacklist" }, burst(c, state, "a", 2))
    t = t + 100
    assert.same({ "allow", "block" }, burst(c, state, "a", 2))
  end)

  it("forgets blocks older than blacklist_window", function()
    for _ = 1, 10 do
      local acts = burst(conf, state, "a", 101)
      assert.equal("block", acts[101])
      t = t + 1800 -- two blocks per window at most
    end
  end)

  it("honours warn_ratio, limit and window from the config", function()
    local c = conf_of({ limit = 10, window = 10, warn_ratio = 0.5, block_seconds = 5 })
    local acts = burst(c, state, "a", 11)
    assert.same({ "allow", "allow", "allow", "allow", "allow", "warn", "warn", "warn", "warn", "warn", "block" },
      acts)
    assert.same({ "block", 5 }, act(c, state, "a", t))
    local never = conf_of({ limit = 10, warn_ratio = 1 })
    assert.equal(0, count(burst(never, {}, "a", 10), "warn"))
    local always = conf_of({ limit = 10, warn_ratio = 0 })
    assert.equal(10, count(burst(always, {}, "a", 10), "warn"))
  end)

  it("uses the injected clock when no time is passed", function()
    burst(conf, state, "a", 100)
    local a, retry = p.check(conf, state, "a")
    assert.same({ "block", 60 }, { a, retry })
    t = t + 30
    assert.same({ "block", 30 }, act(conf, state, "a"))
  end)

  it("keeps its state across a reload (a new config, the same host-owned state)", function()
    burst(conf, state, "a", 101)
    local p2 = policy.load_file(FILE, { clock = function() return t end })
    local conf2 = assert(policy.configure(p2, { limit = 1000 }))
    t = t + 10
    local a, retry = p2.check(conf2, state, "a", t)
    assert.same({ "block", 50 }, { a, retry })
  end)

  it("survives a clock stepped back", function()
    burst(conf, state, "a", 50)
    t = t - 3600
    assert.equal("allow", (p.check(conf, state, "a", t)))
    burst(conf, state, "b", 101)
    t = t - 86400 * 10
    local a, retry = p.check(conf, state, "b", t)
    assert.equal("block", a)
    assert.is_true(retry <= 60)
  end)

  it("repairs a state written by an older or damaged version", function()
    local st = { clients = "not a table", count = 5 }
    assert.equal("allow", (p.check(conf, st, "a", t)))
    assert.same({ tracked = 1, blocked = 0, blacklisted = 0 }, p.stats(conf, st, t))
    st = { clients = { a = "junk", b = { tat = "x", block_until = {}, strikes = "no" } } }
    assert.equal("allow", (p.check(conf, st, "a", t)))
    assert.equal("allow", (p.check(conf, st, "b", t)))
    assert.equal(2, p.stats(conf, st, t).tracked)
    -- a v0 entry with a block in force still counts
    st = { clients = { c = { block_until = t + 20 } } }
    assert.same({ "block", 20 }, act(conf, st, "c", t))
  end)

  it("lifts penalties with forgive", function()
    burst(conf, state, "a", 101)
    assert.is_true(p.forgive(conf, state, "a"))
    assert.is_false(p.forgive(conf, state, "zzz"))
    t = t + 30 -- half the bucket has drained; only the block would refuse
    assert.equal("allow", (p.check(conf, state, "a", t)))
    local other = {}
    burst(conf, other, "a", 101)
    assert.equal("block", (p.check(conf, other, "a", t)))
  end)
end)

describe("rate_limit policy: bounded memory and stats", function()
  it("never tracks more than max_clients keys", function()
    local conf = conf_of({ max_clients = 100 })
    local state = {}
    for i = 1, 1000 do
      p.check(conf, state, "k" .. i, t)
      assert.is_true(p.stats(conf, state, t).tracked <= 100)
      t = t + 0.001
    end
    local n = 0
    for _ in pairs(state.clients) do n = n + 1 end
    assert.is_true(n <= 100)
    assert.is_not_nil(state.clients.k1000)
    assert.is_nil(state.clients.k1)
  end)

  it("drops expired keys before live ones", function()
    local conf = conf_of({ max_clients = 10 })
    local state = {}
    for i = 1, 5 do p.check(conf, state, "stale" .. i, t) end -- each drains in 0.6 s
    t = t + 1
    for i = 1, 5 do p.check(conf, state, "live" .. i, t) end
    assert.equal(10, state.count)
    t = t + 0.1
    p.check(conf, state, "x", t)
    for i = 1, 5 do
      assert.is_nil(state.clients["stale" .. i])
      assert.is_not_nil(state.clients["live" .. i])
    end
    assert.equal(6, p.stats(conf, state, t).tracked)
  end)

  it("evicts the least recently seen live keys, penalised keys last", function()
    local conf = conf_of({ max_clients = 10, limit = 2 })
    local state = {}
    burst(conf, state, "offender", 3) -- blocked
    for i = 1, 9 do p.check(conf, state, "old" .. i, t) end
    t = t + 1
    -- the table is full; every new key forces room to be made
    for i = 1, 30 do p.check(conf, state, "new" .. i, t); t = t + 0.01 end
    assert.is_not_nil(state.clients.offender)
    assert.equal("block", (p.check(conf, state, "offender", t)))
    assert.is_nil(state.clients.old1)
  end)

  it("sweeps keys whose window has passed", function()
    local conf = conf_of({})
    local state = {}
    for i = 1, 50 do p.check(conf, state, "k" .. i, t) end
    assert.equal(50, p.stats(conf, state, t).tracked)
    t = t + 61
    p.check(conf, state, "fresh", t)
    assert.equal(1, p.stats(conf, state, t).tracked)
    assert.equal(1, state.count)
  end)

  it("keeps keys that still carry a strike within blacklist_window", function()
    local conf = conf_of({ limit = 1 })
    local state = {}
    burst(conf, state, "a", 2) -- one block, one strike
    t = t + 600
    p.check(conf, state, "b", t) -- sweep
    assert.is_not_nil(state.clients.a)
    t = t + 3600
    p.check(conf, state, "b", t)
    assert.is_nil(state.clients.a)
  end)

  it("counts tracked, blocked and blacklisted keys", function()
    local conf = conf_of({ limit = 1, blacklist_after = 1 })
    local state = {}
    assert.same({ tracked = 0, blocked = 0, blacklisted = 0 }, p.stats(conf, state, t))
    burst(conf, state, "bl", 2)
    assert.same({ tracked = 1, blocked = 1, blacklisted = 0 }, p.stats(conf, state, t))
    t = t + 61
    burst(conf, state, "bl", 2)
    burst(conf, state, "blocked", 2)
    p.check(conf, state, "ok", t)
    assert.same({ tracked = 3, blocked = 1, blacklisted = 1 }, p.stats(conf, state, t))
    t = t + 61
    assert.same({ tracked = 3, blocked = 0, blacklisted = 1 }, p.stats(conf, state))
  end)
end)
