-- SPDX-License-Identifier: MIT
--- Shared helpers for specs: one entry point (DESIGN.md convention 10).
local wp = require "workproof"

local _M = {}

--- Decode hex or fail the spec loudly (fixtures are trusted).
function _M.unhex(h)
  local s, err = wp.unhex(h)
  if not s then error("bad hex fixture: " .. tostring(err), 2) end
  return s
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

-- Everything below needs the workproof host (it spawns processes on the loop).

_M.build = os.getenv("WORKPROOF_BUILD") or "build"

--- Run a program to completion on the loop; returns stdout, status table.
function _M.run(file, args, stdin)
  local host = require "workproof.host"
  local p = assert(host.process_spawn { file = file, args = args or {}, stdin = stdin, timeout = 120 })
  local out = {}
  while true do
    local c = p:read()
    if not c then break end
    out[#out + 1] = c
  end
  return table.concat(out), p:wait()
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

--- Start `workproof serve` with a config (Lua source text) in a fresh state
-- dir on an ephemeral loopback port. Returns a server table
-- { url, port, dir, proc, log = function() }; stop it with _M.stop(server).
function _M.start_controller(config_src, opts)
  local host = require "workproof.host"
  opts = opts or {}
  local dir = opts.dir
  if not dir then
    dir = os.tmpname()
    os.remove(dir)
  end
  os.execute("mkdir -p " .. dir .. "/policies")
  -- one config file per controller: several may share a state dir, and
  -- each watches its own config for reloads
  _M.controllers = (_M.controllers or 0) + 1
  local cfg = ("%s/config-%d.lua"):format(dir, _M.controllers)
  local f = assert(io.open(cfg, "w"))
  f:write((((config_src or "return {}"):gsub("@DIR@", dir))))
  f:close()
  local file, args = _M.build .. "/workproof", { "serve", cfg, "--listen", opts.listen or "127.0.0.1:0" }
  if opts.nofile then   -- a descriptor limit (RLIMIT_NOFILE); exec keeps the pid the controller's
    table.insert(args, 1, file)
    table.insert(args, 1, ("ulimit -n %d && exec \"$0\" \"$@\""):format(opts.nofile))
    table.insert(args, 1, "-c")
    file = "/bin/sh"
  end
  local p = assert(host.process_spawn { file = file, args = args, timeout = opts.timeout or 600,
    stderr_limit = 1048576 })
  local buf = ""
  while not buf:find("listening on") do
    local c = p:read()
    if not c then
      local st = p:wait()
      error("controller did not start:\n" .. buf .. st.stderr, 2)
    end
    buf = buf .. c
  end
  local port = tonumber(buf:match("listening on [^\n]*:(%d+)"))
  return { url = "http://127.0.0.1:" .. port, port = port, dir = dir, proc = p, config = cfg }
end

--- Start anvil (npm, contracts/) on a free loopback port with the contracts
-- deployed; it stops by itself (timeout, or when this process dies).
-- Returns { url, dep (the deployment JSON), dir, proc }.
function _M.start_anvil(dir)
  local host = require "workproof.host"
  local cjson = require "cjson"
  if not dir then
    dir = os.tmpname()
    os.remove(dir)
  end
  os.execute("mkdir -p " .. dir)
  local p = assert(host.process_spawn { file = "/usr/bin/env",
    args = { "node", "contracts/scripts/anvil.js", "--port", "0", "--timeout", "900",
      "--deploy", "--out", dir .. "/dep.json", "--quiet" }, timeout = 900 })
  local buf = ""
  while not buf:find("anvil: deployed") do
    local c = p:read()
    if not c then error("anvil did not start: " .. buf .. p:wait().stderr, 2) end
    buf = buf .. c
  end
  return { url = buf:match("listening on (http://127%.0%.0%.1:%d+)"), dep = cjson.decode(_M.read(dir .. "/dep.json")),
    dir = dir, proc = p }
end

--- Start the fault-injecting JSON-RPC proxy (spec/fixtures/rpcproxy.cjs) in
-- front of `target` on a free loopback port; it stops by itself. Returns
-- { url, proc, control = function(cmd) -> state, rules = function(list),
-- state = function(), stop = function() } (see the fixture for the rules).
function _M.start_rpc_proxy(target, timeout)
  local host = require "workproof.host"
  local cjson = require "cjson.safe"
  local p = assert(host.process_spawn { file = "/usr/bin/env",
    args = { "node", "spec/fixtures/rpcproxy.cjs", "--target", target, "--timeout", tostring(timeout or 600) },
    timeout = (timeout or 600) + 5 })
  local buf = ""
  while not buf:find("listening on [^\n]*\n") do
    local c = p:read()
    if not c then error("rpcproxy did not start: " .. buf .. p:wait().stderr, 2) end
    buf = buf .. c
  end
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
