-- SPDX-License-Identifier: MIT
--- Shared helpers for specs: one entry point (docs/conventions.md §10).
local wp = require "workproof"

local _M = {}

--- a - b for 32-byte big-endian strings (a >= b), e.g. n - s, a
-- signature's malleable twin.
function _M.sub256(a, b)
  local out, borrow = {}, 0
  for i = 32, 1, -1 do
    local v = a:byte(i) - b:byte(i) - borrow
    borrow = v < 0 and 1 or 0
    out[i] = string.char(v % 256)
  end
  return table.concat(out)
end

--- Decode hex or fail the spec loudly (fixtures are trusted).
function _M.unhex(h)
  local s, err = wp.unhex(h)
  if not s then error("bad hex fixture: " .. tostring(err), 2) end
  return s
end

--- The errors of a configuration that must be refused: configure(...)
-- (policy.configure, schema.validate) must return nil, errors.
function _M.refused_config(configure, ...)
  local out, errs = configure(...)
  assert(out == nil, "the configuration was accepted")
  return errs
end

--- Lowercase hex in plain Lua: for the specs of the core's encoders and
-- signatures, which must not depend on the encoder under test.
function _M.plain_hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

--- The bytes of a hex fixture in plain Lua (see plain_hex); bad hex fails.
function _M.plain_unhex(s)
  assert(#s % 2 == 0 and not s:find("[^0-9a-fA-F]"), "bad hex fixture")
  return (s:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end

--- Deterministic pseudo-random generator (xorshift32), so a failing random
-- chunking can be replayed from its seed.
function _M.rng(seed)
  local x = seed % 4294967296
  if x == 0 then x = 2463534242 end
  local bit = require "bit"
  return function(n)
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    local u = x % 4294967296
    return n and (u % n) + 1 or u
  end
end

--- Split s into random chunks (sizes 1..maxlen) with a seeded rng.
function _M.random_chunks(s, seed, maxlen)
  local r, out, i = _M.rng(seed), {}, 1
  while i <= #s do
    local n = r(maxlen or 64)
    out[#out + 1] = s:sub(i, i + n - 1)
    i = i + n
  end
  return out
end

--- A whole file's bytes, or nil when it cannot be read.
function _M.slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Read a whole file that must exist (fixtures).
function _M.read(path)
  return (assert(_M.slurp(path), "cannot read " .. tostring(path)))
end

--- Write a whole file.
function _M.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- Quote a string for /bin/sh.
function _M.q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- A fresh empty directory.
function _M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. _M.q(d)))
  return d
end

--- A fresh directory holding a copy of the shipped policies (policies/*.lua
-- in DIR/policies), for a controller started on it.
function _M.policy_dir()
  local d = _M.tmpdir()
  assert(os.execute("mkdir -p " .. _M.q(d .. "/policies") .. " && cp policies/*.lua " .. _M.q(d .. "/policies/")))
  return d
end

--- Lowercase hex SHA-256 of s (what expectedHash and taskHash hold).
function _M.sha(s)
  return wp.hex(wp.sha256(s))
end

--- The names in a directory, sorted ({} when it does not exist).
function _M.ls(path)
  local out = {}
  local p = io.popen("ls -1 " .. _M.q(path) .. " 2>/dev/null")
  for name in p:lines() do out[#out + 1] = name end
  p:close()
  return out
end

--- Is pid running? (a zombie waiting for whoever adopted it to reap it is not)
function _M.alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return false end
  local state = f:read("*a"):match("^%d+ %b() (%a)")
  f:close()
  return state ~= "Z" and state ~= "X"
end

--- Poll pred() on the loop until it is true (returns true) or `seconds`
-- (default 10) have passed (returns false), so a regression fails rather
-- than hangs.
function _M.eventually(pred, seconds)
  local deadline = wp.now() + (seconds or 10)
  while not pred() do
    if wp.now() > deadline then return false end
    wp.sleep(0.02)
  end
  return true
end

-- Everything below needs the workproof host (it spawns processes on the loop).

_M.build = os.getenv("WORKPROOF_BUILD") or "build"

--- The live workers a controller (by its pid) has recorded under its state
-- dir (lua/workproof/worker.lua: slot files, "pid start" while a worker uses
-- them, blank when free): their pids and the instance id.
function _M.workers_of(dir, pid)
  local owner = require "workproof.owner"
  local base = dir .. "/var/workers"
  for _, id in ipairs(_M.ls(base)) do
    local o = owner.parse(_M.slurp(base .. "/" .. id .. "/owner") or "")
    if o and o.pid == pid then
      local pids = {}
      for _, name in ipairs(_M.ls(base .. "/" .. id)) do
        local rec = tonumber(name) and _M.slurp(base .. "/" .. id .. "/" .. name)
        local wpid = rec and tonumber(rec:match("^(%d+) "))
        if wpid then pids[#pids + 1] = wpid end
      end
      return pids, id
    end
  end
  return {}
end

--- Read a process's stdout to its end; returns it and its status table.
function _M.read_all(p)
  local out = {}
  while true do
    local c = p:read()
    if not c then break end
    out[#out + 1] = c
  end
  return table.concat(out), p:wait()
end

--- Run a program to completion on the loop; returns stdout, status table.
function _M.run(file, args, stdin)
  local host = require "workproof.host"
  return _M.read_all(assert(host.process_spawn { file = file, args = args or {}, stdin = stdin, timeout = 120 }))
end

--- Follow a stream (server-sent events) with curl -N for up to `seconds`:
-- the process (read it with read_all).
function _M.follow(url, seconds, headers)
  local args = { "-s", "-N", "--max-time", tostring(seconds) }
  for k, v in pairs(headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = k .. ": " .. v end
  args[#args + 1] = url
  return assert(require("workproof.host").process_spawn { file = "/usr/bin/curl", args = args, timeout = seconds + 5 })
end

--- HTTP over loopback with curl (a separate process, so the server under
-- test and this client never share a loop turn). Returns status, headers
-- (lowercase names), body. opts.from: a loopback source address (each one
-- is a different client to the rate limiter and the worker caps).
function _M.http(method, url, body, headers, opts)
  local args = { "-s", "-i", "-X", method, "--max-time", "90" }
  if opts and opts.from then args[#args + 1] = "--interface"; args[#args + 1] = opts.from end
  for k, v in pairs(headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = k .. ": " .. v end
  if body then args[#args + 1] = "--data-binary"; args[#args + 1] = "@-" end
  args[#args + 1] = url
  local out = _M.run("/usr/bin/curl", args, body)
  local head, rest = out:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, nil, out end
  -- a 100 Continue precedes the real response for large bodies
  while head:match("^HTTP/%S+ 100") do head, rest = rest:match("^(.-)\r\n\r\n(.*)$") end
  local status = tonumber(head:match("^HTTP/%S+ (%d+)"))
  local hdrs = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[k:lower()] = v end
  return status, hdrs, rest
end

--- Spawn a process (host.process_spawn spec) and read its stdout until
-- `pattern` is found; returns the process and what it printed. When it
-- exits first, fails the caller's caller with `what` and its output.
function _M.spawn_until(spec, pattern, what)
  local p = assert(require("workproof.host").process_spawn(spec))
  local buf = ""
  while not buf:find(pattern) do
    local c = p:read()
    if not c then error(what .. " did not start:\n" .. buf .. p:wait().stderr, 3) end
    buf = buf .. c
  end
  return p, buf
end

-- the policies of a spec's controller: all five, with limits that stay out
-- of the way of what the spec exercises
local SPEC_POLICIES = {
  task_types = "{}", code_patterns = "{}", worker_threshold = "{}",
  rate_limit = "{ config = { limit = 1000 } }",
  circuit_breaker = "{ config = { failure_threshold = 1000 } }",
}

--- A controller config (Lua source for start_controller): state and
-- policies under @DIR@, the five policies as above; `fields` is Lua source
-- for more fields of the config table, `policies` maps a policy name to the
-- Lua source of its entry (replacing or adding one).
function _M.config(fields, policies)
  local entries, names = {}, {}
  for k, v in pairs(SPEC_POLICIES) do entries[k] = v end
  for k, v in pairs(policies or {}) do entries[k] = v end
  for k in pairs(entries) do names[#names + 1] = k end
  table.sort(names)
  local lines = {}
  for i, k in ipairs(names) do lines[i] = ("    %s = %s,"):format(k, entries[k]) end
  return ('return {\n  state_dir = "@DIR@/var",\n  policies_dir = "@DIR@/policies",\n  %s\n'
    .. "  policies = {\n%s\n  },\n}\n"):format(fields or "", table.concat(lines, "\n"))
end

--- POST a body (a table is JSON-encoded) to the controller's /verify;
-- returns the status, the decoded reply (the raw text when it is not
-- JSON) and the headers.
function _M.verify(srv, body, headers, opts)
  local cjson = require "cjson.safe"
  local st, hd, b = _M.http("POST", srv.url .. "/verify", type(body) == "table" and cjson.encode(body) or body,
    headers, opts)
  return st, cjson.decode(b or "") or b, hd
end

--- GET the controller's /metrics page; fails unless it answers 200.
-- Returns the page text and the headers.
function _M.metrics(srv)
  local st, hd, text = _M.http("GET", srv.url .. "/metrics")
  assert(st == 200, "GET /metrics: " .. tostring(st) .. " " .. tostring(text))
  return text, hd
end

--- Start `workproof serve` with a config (Lua source text) in a fresh state
-- dir on an ephemeral loopback port (opts.listen: another address;
-- opts.args: more serve options). Returns a server table
-- { url, port, dir, proc, log = function() }; stop it with _M.stop(server).
function _M.start_controller(config_src, opts)
  opts = opts or {}
  local dir = opts.dir or _M.tmpdir()
  os.execute("mkdir -p " .. dir .. "/policies")
  -- one config file per controller: several may share a state dir, and
  -- each watches its own config for reloads
  _M.controllers = (_M.controllers or 0) + 1
  local cfg = ("%s/config-%d.lua"):format(dir, _M.controllers)
  local f = assert(io.open(cfg, "w"))
  f:write((((config_src or "return {}"):gsub("@DIR@", dir))))
  f:close()
  local file, args = _M.build .. "/workproof", { "serve", cfg, "--listen", opts.listen or "127.0.0.1:0" }
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end   -- more serve options
  if opts.nofile then   -- a descriptor limit (RLIMIT_NOFILE); exec keeps the pid the controller's
    table.insert(args, 1, file)
    table.insert(args, 1, ("ulimit -n %d && exec \"$0\" \"$@\""):format(opts.nofile))
    table.insert(args, 1, "-c")
    file = "/bin/sh"
  end
  if opts.prefix then   -- another program first (e.g. unshare), which runs the controller
    table.insert(args, 1, file)
    for i = #opts.prefix, 2, -1 do table.insert(args, 1, opts.prefix[i]) end
    file = opts.prefix[1]
  end
  local p, buf = _M.spawn_until({ file = file, args = args, timeout = opts.timeout or 600,
    stderr_limit = 1048576 }, "listening on", "controller")
  local port = tonumber(buf:match("listening on [^\n]*:(%d+)"))
  return { url = "http://127.0.0.1:" .. port, port = port, dir = dir, proc = p, config = cfg }
end

--- Whether this process runs as root.
function _M.is_root()
  local id = io.popen("id -u")
  local uid = id:read("*a")
  id:close()
  return uid == "0\n"
end

--- The pid of `pid`'s one child (a program such as `unshare --fork` that
-- runs the controller as its child), or nil.
function _M.child_of(pid)
  local f = io.open(("/proc/%d/task/%d/children"):format(pid, pid))
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("%d+"))
end

--- Assert (busted's assert) that a worker zygote serves with all its code
-- mapped (worker/zygote.c, map_code_for_forks): each read-only private file
-- mapping in /proc/PID/smaps (code and constants) fully resident and
-- holding a private page, so a fork copies its entries; the worker's and
-- libc's among them.
function _M.assert_code_mapped(pid)
  local assert = require "luassert"
  local seen, hdr = {}, nil
  for line in _M.read("/proc/" .. pid .. "/smaps"):gmatch("[^\n]+") do
    if line:match("^%x+%-%x+ ") then
      local perms, path = line:match("^%S+ (%S+) %S+ %S+ %S+%s+(/%S+)")
      hdr = perms and perms:match("^r%-.p$") and { path = path, line = line } or nil
      if hdr then seen[#seen + 1] = hdr end
    elseif hdr then
      local k, kb = line:match("^(%a+):%s+(%d+) kB")
      if k then hdr[k] = tonumber(kb) end
    end
  end
  local libs = {}
  for _, m in ipairs(seen) do
    libs[m.path:match("[^/]+$")] = true
    assert.equal(m.Size, m.Rss, "all resident: " .. m.line)
    assert.is_true(m.Anonymous > 0, "one private page, so fork() copies it: " .. m.line)
  end
  assert.is_true(libs["workproof-worker"] and libs["libc.so.6"], "mappings: " .. #seen)
end

--- The `ps` lines of `pid`'s children that are zombies (exited, not reaped).
function _M.zombie_children(pid)
  local out, ps = {}, io.popen("ps -e -o pid=,stat=,ppid=,comm=")
  for line in ps:lines() do
    local st, pp = line:match("%d+%s+(%S+)%s+(%d+)")
    if st and st:find("^Z") and tonumber(pp) == pid then out[#out + 1] = line end
  end
  ps:close()
  return out
end

--- Inside a describe block: a controller with `config_src` on a fresh copy
-- of the policies, started before the block's tests and stopped after them.
-- Returns the table that holds the server's fields (url, port, dir, proc)
-- while it runs.
function _M.controller_for(config_src)
  local busted = require "busted"
  local srv = {}
  busted.setup(function()
    for k, v in pairs(_M.start_controller(config_src, { dir = _M.policy_dir() })) do srv[k] = v end
  end)
  busted.teardown(function() if srv.proc then _M.stop(srv) end end)
  return srv
end

--- Start anvil (npm, contracts/) on a free loopback port with the contracts
-- deployed; it stops by itself (timeout, or when this process dies).
-- Returns { url, dep (the deployment JSON), dir, proc }.
function _M.start_anvil(dir)
  local cjson = require "cjson"
  dir = dir or _M.tmpdir()
  os.execute("mkdir -p " .. dir)
  local p, buf = _M.spawn_until({ file = "/usr/bin/env",
    args = { "node", "contracts/scripts/anvil.js", "--port", "0", "--timeout", "900",
      "--deploy", "--out", dir .. "/dep.json", "--quiet" }, timeout = 900 }, "anvil: deployed", "anvil")
  return { url = buf:match("listening on (http://127%.0%.0%.1:%d+)"), dep = cjson.decode(_M.read(dir .. "/dep.json")),
    dir = dir, proc = p }
end

--- An x402 v2 payment header (base64) for deployment dep, signed with
-- opts.key (32 raw bytes; default anvil's account #1); opts override any
-- part: from (default: the key's address), to, value, valid_after,
-- valid_before, nonce, chain_id, network.
-- Returns the header and the authorization.
function _M.x402_payment(dep, opts)
  local cjson = require "cjson"
  opts = opts or {}
  local key = opts.key or _M.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
  local now = os.time()
  local auth = {
    from = opts.from or wp.eth.address(wp.secp256k1.pubkey(key)), to = opts.to or dep.deployer,
    value = opts.value or "10000",
    validAfter = tostring(opts.valid_after or (now - 60)), validBefore = tostring(opts.valid_before or (now + 600)),
    nonce = opts.nonce or ("0x" .. wp.hex(wp.sha256(tostring(math.random()) .. tostring(wp.now())))),
  }
  local digest = assert(wp.eip712.transfer_with_authorization_hash({ name = "USD Coin", version = "2",
    chainId = opts.chain_id or 31337, verifyingContract = dep.token.address }, auth))
  local sig = wp.secp256k1.sign(key, digest)
  sig = sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
  local p = { x402Version = 2, accepted = { scheme = "exact", network = opts.network or "eip155:31337",
      amount = "10000", asset = dep.token.address, payTo = dep.deployer, maxTimeoutSeconds = 300,
      extra = { name = "USD Coin", version = "2" } },
    payload = { signature = "0x" .. wp.hex(sig), authorization = auth } }
  return wp.base64.encode(cjson.encode(p)), auth
end

--- Start the fault-injecting JSON-RPC proxy (spec/fixtures/rpcproxy.cjs) in
-- front of `target` on a free loopback port; it stops by itself. Returns
-- { url, proc, control = function(cmd) -> state, rules = function(list),
-- state = function(), stop = function() } (see the fixture for the rules).
function _M.start_rpc_proxy(target, timeout)
  local host = require "workproof.host"
  local cjson = require "cjson.safe"
  local p, buf = _M.spawn_until({ file = "/usr/bin/env",
    args = { "node", "spec/fixtures/rpcproxy.cjs", "--target", target, "--timeout", tostring(timeout or 600) },
    timeout = (timeout or 600) + 5 }, "listening on [^\n]*\n", "rpcproxy")
  local px = { url = buf:match("listening on (http://127%.0%.0%.1:%d+)"), proc = p }
  local function ctl(method, body)
    local st, _, resp = host.http_request { method = method, url = px.url .. "/__ctl", body = body,
      headers = { ["content-type"] = "application/json" }, timeout = 10 }
    assert(st == 200, "rpcproxy control: " .. tostring(st) .. " " .. tostring(resp))
    return cjson.decode(resp)
  end
  function px.control(cmd) return ctl("POST", cjson.encode(cmd)) end
  function px.rules(list) return ctl("POST", cjson.encode({ rules = list })) end
  function px.state() return ctl("GET") end
  function px.stop() p:kill(15); p:wait() end
  return px
end

--- Start a PostgreSQL server of its own (Debian's postgresql: initdb in a
-- fresh directory, the server on a free loopback port, trust auth for the
-- superuser "workproof"). The server runs in the foreground as a child of
-- this process, so it stops by itself (opts.timeout, default 900 s) even
-- when the spec dies. Returns { url (the postgres database), port, dir,
-- proc, db = function(name) -> url of a fresh database, stop = function() }.
function _M.start_postgres(opts)
  opts = opts or {}
  local host = require "workproof.host"
  local bin = io.popen("ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1"):read("*l")
  assert(bin, "postgresql is not installed (make deps)")
  local dir = _M.tmpdir()
  -- initdb refuses to run as root: as root, the server runs as "postgres"
  local as = ""
  if io.popen("id -u"):read("*l") == "0" then
    assert(os.execute("chown postgres:postgres " .. _M.q(dir)))
    as = "setpriv --reuid=postgres --regid=postgres --init-groups -- "
  end
  local out, st = _M.run("/bin/sh", { "-c", ("exec %s%s/initdb -D %s -A trust -U workproof -E UTF8 --no-sync "
    .. "--no-instructions 2>&1"):format(as, bin, _M.q(dir .. "/data")) })
  assert(st.exit_status == 0, "initdb failed: " .. out)
  local p, port
  math.randomseed(host.pid * 1000 + math.floor(host.now() * 1000) % 1000)
  for _ = 1, 8 do
    port = 20000 + math.random(0, 39999)
    local ok, proc = pcall(_M.spawn_until, { file = "/bin/sh", timeout = opts.timeout or 900, args = { "-c",
      ("exec %s%s/postgres -D %s -p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off "
        .. "-c synchronous_commit=off -c full_page_writes=off -c max_connections=%d 2>&1"):format(
        as, bin, _M.q(dir .. "/data"), port, _M.q(dir), opts.max_connections or 100) } },
      "ready to accept connections", "postgres")
    if ok then p = proc break end
    if not tostring(proc):find("could not bind", 1, true) then error(proc, 2) end
  end
  assert(p, "postgres: no free port found")
  local pg = { port = port, dir = dir, proc = p, url = ("postgresql://workproof@127.0.0.1:%d/postgres"):format(port) }
  -- keep reading its log, so it never blocks writing it
  host.spawn(function() while p:read() do end end)
  local n = 0
  function pg.db(name)
    n = n + 1
    name = name or ("wp" .. n)
    local c = assert(host.pg_connect(pg.url))
    assert(c:exec("CREATE DATABASE " .. name))
    c:close()
    return ("postgresql://workproof@127.0.0.1:%d/%s"):format(port, name)
  end
  function pg.stop()
    if pg.stopped then return end
    pg.stopped = true
    host.kill(p.pid, 2)   -- SIGINT: fast shutdown
    p:wait()
  end
  return pg
end

--- SIGTERM the controller and wait; returns its status table (with stderr).
function _M.stop(server, signal)
  -- the controller's pid only (as an operator would): its workers live in
  -- sessions of their own, and one being forked must not catch the signal
  require("workproof.host").kill(server.proc.pid, signal or 15)
  -- drain stdout so the process is never blocked writing it
  while server.proc:read() do end
  return server.proc:wait()
end

return _M
