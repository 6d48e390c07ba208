-- SPDX-License-Identifier: MIT
-- `workproof serve` starting, failing to start, sharing a port and watching
-- its files, as an operator runs it: every start-up failure exits non-zero
-- at once with one line; listen addresses take names and [IPv6]; a port is
-- shared only when asked (--processes: a parent restarting its children);
-- the config watch survives rename saves (`sed -i`), deletes and re-creates.
local wp = require "workproof"
local host = require "workproof.host"
local config = require "workproof.config"
local h = require "helpers"
local cjson = require "cjson.safe"

local WP = h.build .. "/workproof"

-- Run `workproof serve ARGS` with warn-level logging to completion; returns
-- the status table (exit_status, stderr), the seconds it took, stdout.
local function serve_once(args)
  local argv = { "WORKPROOF_LOG=warn", WP, "serve" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  local t0 = wp.now()
  local out, st = h.run("/usr/bin/env", argv)
  return st, wp.now() - t0, out
end

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

-- a failed start: the exit code, within `secs`, exactly one line on stderr
-- matching `pattern`, no traceback, nothing on stdout
local function assert_fails(args, code, pattern, secs)
  local st, took, out = serve_once(args)
  local where = table.concat(args, " ") .. " -> " .. st.stderr
  assert.equal(code, st.exit_status, where)
  assert.equal("", out, where)
  assert.same(1, #lines(st.stderr), where)
  assert.matches(pattern, st.stderr, nil, false, where)
  assert.is_nil(st.stderr:find("traceback", 1, true), where)
  if secs then assert.is_true(took < secs, ("took %.2f s: %s"):format(took, where)) end
end

local function write_config(dir, src)
  local path = dir .. "/config.lua"
  h.write(path, (src:gsub("@DIR@", dir)))
  return path
end

local function info(url)
  local st, _, body = h.http("GET", url .. "/info")
  assert.equal(200, st, tostring(body))
  return cjson.decode(body)
end

local function children_of(pid)
  local out = {}
  local f = io.open(("/proc/%d/task/%d/children"):format(pid, pid))
  if not f then return out end
  for c in f:read("*a"):gmatch("%d+") do out[#out + 1] = tonumber(c) end
  f:close()
  table.sort(out)
  return out
end

describe("listen addresses (config.parse_listen)", function()
  it("takes IPv4, names and [IPv6] with ports 0-65535", function()
    for s, want in pairs {
      ["127.0.0.1:8402"] = { "127.0.0.1", 8402 }, ["localhost:0"] = { "localhost", 0 },
      ["[::1]:0"] = { "::1", 0 }, ["[::]:65535"] = { "::", 65535 }, ["0.0.0.0:80"] = { "0.0.0.0", 80 },
      ["notary.example.org:443"] = { "notary.example.org", 443 },
    } do
      assert.same(want, { config.parse_listen(s) }, s)
    end
  end)

  it("refuses malformed forms with EINVAL and a reason", function()
    for s, why in pairs {
      ["localhost:99999"] = "out of range", ["127.0.0.1:65536"] = "out of range",
      ["127.0.0.1:0000080000"] = "out of range", ["127.0.0.1"] = "expected", [":80"] = "expected",
      ["::1:80"] = "expected", ["[::1]"] = "expected", ["[::1]:"] = "expected", ["[127.0.0.1]:80"] = "brackets",
      ["host:port"] = "expected", ["a b:80"] = "expected", [""] = "expected", ["[]:80"] = "brackets",
      ["host:-1"] = "expected", ["[::1]:80x"] = "expected",
    } do
      local ok, err, code = config.parse_listen(s)
      assert.is_nil(ok, s)
      assert.equal("EINVAL", code, s)
      assert.matches(why, err, nil, true, s)
    end
    assert.same({ nil, "EINVAL: listen must be a string HOST:PORT", "EINVAL" }, { config.parse_listen(8402) })
  end)

  it("a bad listen in the config is a config error", function()
    assert.has_error(function() config.load(nil, { listen = "localhost:70000" }) end,
      'config: listen: "localhost:70000": port 70000 out of range (0-65535)')
  end)

  it("host.resolve: literals, names, and failures as ERESOLVE", function()
    assert.same({ address = "127.0.0.1", family = 4, port = 80 }, host.resolve("127.0.0.1", 80))
    assert.same({ address = "::1", family = 6, port = 0 }, host.resolve("::1", 0))
    local r = assert(host.resolve("localhost", 8402))
    assert.is_true(r.address == "127.0.0.1" or r.address == "::1", r.address)
    for _, bad in ipairs { "", "nosuch.invalid", "256.1.1.1.1", "[::1]" } do
      local ok, err, code = host.resolve(bad, 1)
      assert.is_nil(ok, bad)
      assert.equal("ERESOLVE", code, bad)
      assert.is_string(err)
    end
    assert.has_error(function() host.resolve("127.0.0.1", 65536) end)
    assert.has_error(function() host.resolve("127.0.0.1", -1) end)
  end)

  it("host.tcp_reserve holds a port without taking connections", function()
    local r = assert(host.tcp_reserve("127.0.0.1", 0))
    assert.is_true(r.port > 0)
    assert.equal("127.0.0.1", r.address)
    -- a listener without SO_REUSEPORT cannot have it; one with it can
    local no, err, code = host.http_listen { port = r.port, handler = function() return 200, {}, "" end }
    if no then no:close() end   -- (a listener left open would keep this spec's loop alive)
    assert.is_nil(no)
    assert.equal("ELISTEN", code)
    assert.matches("address already in use", err)
    local yes = assert(host.http_listen { port = r.port, reuseport = true,
      handler = function() return 200, {}, "" end })
    yes:close()
    r:close()
    r:close()   -- twice is harmless
    local again = assert(host.http_listen { port = r.port, handler = function() return 200, {}, "" end })
    again:close()
  end)
end)

describe("serve start-up failures #integration", function()
  it("a busy port: exit 1 within a second, one line", function()
    local busy = assert(host.http_listen { port = 0, handler = function() return 200, {}, "" end })
    assert_fails({ "--listen", "127.0.0.1:" .. busy.port }, 1,
      "^workproof serve: ELISTEN: 127%.0%.0%.1:" .. busy.port .. ": address already in use\n$", 1)
    -- the same from the config file's listen
    local dir = h.policy_dir()
    local cfg = write_config(dir, h.config(('listen = "127.0.0.1:%d",'):format(busy.port)))
    assert_fails({ cfg }, 1, "^workproof serve: ELISTEN: .*address already in use\n$", 1)
    busy:close()
  end)

  it("bad --listen forms: exit 2, one line, no traceback", function()
    for _, l in ipairs { "localhost:99999", "127.0.0.1:70000", "[::1]", "::1:80", "[127.0.0.1]:80", ":80",
      "localhost", "host:port" } do
      local st, took = serve_once { "--listen", l }
      assert.equal(2, st.exit_status, l .. ": " .. st.stderr)
      assert.matches("^workproof serve: %-%-listen: ", st.stderr, nil, false, l)
      assert.equal(1, #lines(st.stderr), l .. ": " .. st.stderr)
      assert.is_nil(st.stderr:find("traceback", 1, true), l)
      assert.is_true(took < 1, l)
    end
  end)

  it("a name that does not resolve: exit 1, one line", function()
    assert_fails({ "--listen", "nosuch.invalid:8402" }, 1, "^workproof serve: ELISTEN: nosuch%.invalid:8402: ")
  end)

  it("--processes out of range: exit 2", function()
    for _, n in ipairs { "0", "257", "x" } do
      local st = serve_once { "--listen", "127.0.0.1:0", "--processes", n }
      assert.equal(2, st.exit_status, n .. ": " .. st.stderr)
      assert.matches("^workproof serve: %-%-processes", st.stderr)
    end
  end)

  it("an unreadable config, a bad listen in it, a bad store path: one line each", function()
    local dir = h.policy_dir()
    assert_fails({ dir .. "/missing.lua" }, 2, "^workproof serve: cannot read config: .*missing%.lua", 1)
    local cfg = write_config(dir, h.config('listen = "localhost:123456",'))
    assert_fails({ cfg }, 2, 'listen: "localhost:123456": port 123456 out of range', 1)
    cfg = write_config(dir, h.config('store = "/proc/nonexistent/wp.db",'))
    assert_fails({ cfg, "--listen", "127.0.0.1:0" }, 1, "^workproof serve: .*/proc/nonexistent", 1)
  end)

  it("a config error is printed once, not also as a rejected reload", function()
    local dir = h.policy_dir()
    h.write(dir .. "/policies/rate_limit.lua", "return { name = 'rate_limit', schema = {} } +")
    local st = serve_once { write_config(dir, h.config()), "--listen", "127.0.0.1:0" }
    assert.equal(2, st.exit_status, st.stderr)
    assert.is_nil(st.stderr:find("keeps serving", 1, true), st.stderr)
    local _, n = st.stderr:gsub("rate_limit%.lua:1:", "")
    assert.equal(1, n, st.stderr)
  end)
end)

describe("serve listen addresses #integration", function()
  for _, c in ipairs { { "localhost:0", "localhost" }, { "[::1]:0", "[::1]" } } do
    it(c[1] .. " listens and answers /health", function()
      local srv = h.start_controller(h.config(), { dir = h.policy_dir(), listen = c[1] })
      local ok, err = pcall(function()
        local st, _, body = h.http("GET", ("http://%s:%d/health"):format(c[2], srv.port))
        assert.equal(200, st, tostring(body))
        assert.same({ status = "ok" }, cjson.decode(body))
      end)
      assert.equal(0, h.stop(srv).exit_status)
      assert(ok, err)
    end)
  end
end)

describe("serve with no config file, stopped after traffic #integration", function()
  -- serve drops its TERM and INT handles; collected under traffic, they were
  -- written to at exit (freed memory): a crash in lua_close now and then, an
  -- ASan report every time in a sanitizer build (its Lua heap is on malloc)
  it("drains and exits 0 on SIGTERM, three times in a row, nothing on stderr but its log", function()
    local FOUR = wp.hex(wp.sha256("4"))
    local verify = cjson.encode { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
      expectedHash = FOUR }
    for round = 1, 3 do
      local dir = h.tmpdir()
      local p, buf = h.spawn_until({ file = "/bin/sh", stderr_limit = 1048576, timeout = 300,
        args = { "-c", ("cd %s && exec %s serve --listen 127.0.0.1:0"):format(h.q(dir), h.q(WP)) } },
        "listening on", "serve")
      local srv = { proc = p }
      local ok, err = pcall(function()
        local url = "http://127.0.0.1:" .. buf:match("listening on [^\n]*:(%d+)")
        local st, _, body = h.http("POST", url .. "/verify", verify)
        assert.equal(200, st, tostring(body))
        assert.equal("VALID", cjson.decode(body).result)
        -- garbage enough for full collections: one curl, 400 requests
        local cfg = {}
        for _ = 1, 200 do
          cfg[#cfg + 1] = ('url = "%s/info"\noutput = "/dev/null"\nurl = "%s/metrics"\noutput = "/dev/null"')
            :format(url, url)
        end
        local _, cst = h.run("/usr/bin/curl", { "-s", "-f", "-K", "-" }, table.concat(cfg, "\n"))
        assert.equal(0, cst.exit_status, cst.stderr)
      end)
      local st = h.stop(srv)
      assert(ok, err)
      local where = ("round %d: ...%s"):format(round, st.stderr:sub(-4000))
      assert.same({ 0, 0 }, { st.exit_status, st.term_signal }, where)
      assert.matches("%[info%] stopped\n$", st.stderr, nil, false, where)
      assert.is_nil(st.stderr:find("Sanitizer", 1, true), where)
    end
  end)
end)

describe("port sharing only when asked #integration", function()
  it("a second serve on a busy port fails loudly (reuseport is off by default)", function()
    local srv = h.start_controller(h.config(), { dir = h.policy_dir() })
    local ok, err = pcall(function()
      assert_fails({ "--listen", "127.0.0.1:" .. srv.port }, 1, "ELISTEN: .*address already in use", 1)
      assert.equal(200, (h.http("GET", srv.url .. "/health")))
    end)
    h.stop(srv)
    assert(ok, err)
  end)

  it("--processes 2: two children answer, a killed child is restarted, SIGTERM stops all", function()
    local srv = h.start_controller(h.config(), { dir = h.policy_dir(), args = { "--processes", "2" } })
    local parent = srv.proc.pid
    local ok, err = pcall(function()
      local kids = children_of(parent)
      assert.equal(2, #kids)
      -- connections spread over the children (SO_REUSEPORT hashes each one)
      local seen = {}
      assert.is_true(h.eventually(function()
        seen[info(srv.url).pid] = true
        return seen[kids[1]] and seen[kids[2]]
      end, 20), "answered by " .. table.concat((function()
        local t = {}
        for pid in pairs(seen) do t[#t + 1] = tostring(pid) end
        return t
      end)(), " "))
      -- the port is the group's: a plain serve cannot take it
      assert_fails({ "--listen", "127.0.0.1:" .. srv.port }, 1, "ELISTEN: .*address already in use", 1)
      -- kill -9 one child: the parent starts another
      host.kill(kids[1], 9)
      local now
      assert.is_true(h.eventually(function()
        now = children_of(parent)
        return #now == 2 and now[1] ~= kids[1] and now[2] ~= kids[1]
      end, 10), "children: " .. cjson.encode(now))
      local fresh = now[1] == kids[2] and now[2] or now[1]
      assert.is_true(h.eventually(function() return info(srv.url).pid == fresh end, 20),
        "the restarted child does not answer")
      kids = now
    end)
    local kids = children_of(parent)
    local st = h.stop(srv)
    assert(ok, err)
    assert.equal(0, st.exit_status, st.stderr)
    for _, k in ipairs(kids) do
      assert.is_true(h.eventually(function() return not h.alive(k) end, 5), "child " .. k .. " still running")
    end
    assert.matches("exited %(status 0, signal 9%).*restarting", st.stderr)
  end)

  it("processes = 2 in the config does the same; the children stop when the parent is SIGKILLed", function()
    local srv = h.start_controller(h.config("processes = 2,"), { dir = h.policy_dir() })
    local kids = children_of(srv.proc.pid)
    assert.equal(2, #kids)
    assert.equal(200, (h.http("GET", srv.url .. "/health")))
    host.kill(srv.proc.pid, 9)
    srv.proc:wait()
    for _, k in ipairs(kids) do
      assert.is_true(h.eventually(function() return not h.alive(k) end, 10), "child " .. k .. " outlived its parent")
    end
  end)
end)

describe("config and policy watch #integration", function()
  it("survives rename saves (sed -i), deletes and re-creates", function()
    local srv = h.start_controller(h.config("limits = { timeout_min = 1 },"), { dir = h.policy_dir() })
    local ok, err = pcall(function()
      local gen = info(srv.url).generation
      for i = 1, 3 do
        local before = h.run("/usr/bin/stat", { "-c", "%i", srv.config })
        assert(os.execute(("sed -i 's/timeout_min = %d/timeout_min = %d/' %s"):format(i, i + 1, h.q(srv.config))))
        assert.are_not.equal(before, h.run("/usr/bin/stat", { "-c", "%i", srv.config }))   -- a new inode
        assert.is_true(h.eventually(function() return info(srv.url).generation == gen + i end, 5),
          "edit " .. i .. " not reloaded: generation " .. info(srv.url).generation)
      end
      gen = gen + 3
      -- a policy saved the same way
      assert(os.execute("sed -i 's/^/ /' " .. h.q(srv.dir .. "/policies/rate_limit.lua")))
      assert.is_true(h.eventually(function() return info(srv.url).generation == gen + 1 end, 5))
      gen = gen + 1
      -- deleted (the reload is rejected: the old generation serves), then re-created
      local src = h.read(srv.config)
      os.remove(srv.config)
      wp.sleep(0.5)
      assert.equal(gen, info(srv.url).generation)
      h.write(srv.config, src)
      assert.is_true(h.eventually(function() return info(srv.url).generation == gen + 1 end, 5))
      -- a file beside it is not the config
      h.write(srv.dir .. "/other.lua", "return {}")
      wp.sleep(0.5)
      assert.equal(gen + 1, info(srv.url).generation)
    end)
    h.stop(srv)
    assert(ok, err)
  end)

  it("host.watch on a file reports its name only, across renames", function()
    local dir = h.tmpdir()
    local path = dir .. "/watched.conf"
    h.write(path, "1")
    local seen = {}
    local w = assert(host.watch(path, function(name) seen[#seen + 1] = name end))
    local function settle() wp.sleep(0.2) local n = #seen; seen = {} return n end
    h.write(dir .. "/sibling.conf", "x")
    assert.equal(0, settle())
    for i = 1, 3 do
      h.write(dir .. "/tmp.new", tostring(i))
      assert(os.rename(dir .. "/tmp.new", path))
      assert.is_true(settle() > 0, "rename " .. i .. " not seen")
    end
    os.remove(path)
    assert.is_true(settle() > 0)
    h.write(path, "again")
    assert.is_true(settle() > 0)
    w:stop()
    h.write(path, "after stop")
    assert.equal(0, settle())
    -- a path whose directory does not exist cannot be watched
    local no, _, code = host.watch(dir .. "/missing/x.conf", function() end)
    assert.is_nil(no)
    assert.equal("EWATCH", code)
  end)
end)
