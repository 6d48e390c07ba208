-- SPDX-License-Identifier: MIT
--- `workproof serve [CONFIG.lua] [--listen HOST:PORT] [--processes N]`: the
-- notary controller. With N > 1 (or `processes` in the config) this
-- process supervises N serve children on one port (cli/supervise.lua).
-- Any start-up failure exits at once, non-zero, with one line on stderr.
--
-- Start-up: load and validate the config and every policy (a broken one is
-- fatal here, with file:line), open the store (registering this instance),
-- mark jobs that hosts which DIED left running as ERROR (refundable) and
-- kill their orphaned workers (hosts still running on the same state dir
-- keep theirs: workproof.owner), start the reaper, listen. Then:
--   SIGHUP, a change under policies/ or to the config file, POST /admin/reload
--       -> reload (validate, build aside, swap; a bad one is rejected)
--   SIGTERM / SIGINT -> graceful shutdown: stop accepting, let in-flight
--       requests finish up to limits.shutdown_grace, kill what remains,
--       close the store, exit 0.
local host = require "workproof.host"
local controller = require "workproof.controller"
local worker = require "workproof.worker"
local config = require "workproof.config"
local args = require "workproof.cli.args"

local _M = {}

local DECL = {
  name = "workproof serve",
  summary = "the notary controller (HTTP API)",
  description = "Runs the notary controller. With no CONFIG it runs on the embedded defaults\n"
    .. "(127.0.0.1:8402, sandbox backend, SQLite under ./var/, payments and chain\n"
    .. "off); examples/config.lua lists every setting. `workproof check CONFIG`\n"
    .. "validates a config without serving. SIGHUP reloads; SIGTERM drains and stops.",
  positionals = { { "CONFIG.lua", optional = true, help = "the config file" } },
  options = {
    { "--listen", arg = "HOST:PORT",   -- checked by config.parse_listen
      help = "overrides the config's listen (a name is resolved; [::1]:8402 for IPv6)" },
    { "--processes", arg = "N", match = "^%d+$",
      help = "N processes sharing the port under a supervising parent (overrides the config's processes)" },
    { "--supervised-by", arg = "PID", match = "^%d+$",
      help = "internal: run as a child of `serve --processes` (the port is shared; exits when PID does)" },
  },
}

-- A start-up failure: one line on stderr, then undo what was set up and
-- stop the host at once (a timer or a watch left behind would hold the
-- loop, and a supervisor would see a process that is up but does not
-- listen). host.stop ends the loop; the host closes every handle and the
-- Lua state, so nothing is left to the kernel (or to LeakSanitizer).
local cleanups = {}
local function fail(code, msg)
  io.stderr:write("workproof serve: ", msg, "\n")
  for i = #cleanups, 1, -1 do pcall(cleanups[i]) end
  io.stdout:flush()
  io.stderr:flush()
  host.stop(code)
end

-- A child of `serve --processes` ends itself when its parent is gone (a
-- SIGKILLed parent cannot forward a SIGTERM): it is re-parented then.
local function watch_parent(ppid, shutdown)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int getppid(void);")
  host.spawn(function()
    while ffi.C.getppid() == ppid do host.sleep(0.5) end
    host.log("warn", "supervising parent " .. ppid .. " is gone: stopping")
    shutdown("TERM")
  end)
end

local function main(...)
  local opts, code = args.run(DECL, { ... })
  if not opts then return code end
  opts.config = opts[1]
  if opts.listen then
    local ok, lerr = config.parse_listen(opts.listen)
    if not ok then fail(2, "--listen: " .. lerr:gsub("^EINVAL: ", "")) end
  end
  local nproc = opts.processes and tonumber(opts.processes)
  if nproc and (nproc < 1 or nproc > 256) then
    fail(2, "--processes: expected 1 to 256, got " .. opts.processes)
  end
  local ppid = opts["supervised-by"] and tonumber(opts["supervised-by"])

  local over = {}
  if opts.listen then over.listen = opts.listen end
  if ppid then over.reuseport = true end   -- the port is the process group's
  controller.configure(opts.config, next(over) and over or nil)
  local gen, rerr = controller.reload("start")
  if not gen then fail(2, rerr) end
  local conf = gen.config
  nproc = nproc or conf.processes
  if nproc > 1 and not ppid then
    return require("workproof.cli.supervise").run {
      config = opts.config, listen = conf.listen, processes = nproc,
      grace = conf.limits.shutdown_grace, fail = fail,
    }
  end
  local h, port = config.parse_listen(conf.listen)
  local store, derr = controller.open_store(conf)
  if not store then fail(1, derr) end
  cleanups[#cleanups + 1] = controller.close
  controller.recover_jobs()
  local stop_heartbeat = controller.start_heartbeat()
  local stop_pruner = controller.start_pruner()
  cleanups[#cleanups + 1] = stop_pruner
  local cok, cerr = controller.setup_chain(conf)
  if not cok then fail(2, "chain: " .. tostring(cerr)) end
  worker.configure { state_dir = conf.state_dir }
  local orphans = worker.reap_orphans()
  if orphans > 0 then host.log("warn", orphans .. " orphaned worker(s) of a stopped host killed") end
  local stop_reaper = worker.start_reaper(conf.worker.reaper_interval)
  worker.start_pool()
  cleanups[#cleanups + 1] = function() stop_reaper(); worker.stop_pool(); worker.release_records() end

  local srv, lerr = host.http_listen {
    host = h, port = port, reuseport = conf.reuseport,
    max_body = conf.limits.max_body * 2,   -- over max_body: our JSON 413; over twice: h2o's own
    max_connections_per_client = conf.limits.max_connections_per_client,
    fd_reserve = conf.limits.fd_reserve,
    header_timeout = conf.limits.header_timeout,
    body_timeout = conf.limits.body_timeout,
    handler = controller.handle,
  }
  if not srv then fail(1, lerr) end
  -- health checks are answered in C, without entering Lua: they stay cheap
  -- under load and answer while Lua is busy (the Lua route stays as the
  -- fallback); a draining host answers 503
  controller.set_server(srv)
  srv:static("/health", 200, controller.HEALTH, "application/json")
  local stop_dashboard = controller.start_dashboard()
  local shown = h:find(":") and ("[" .. h .. "]") or h
  host.log("info", ("workproof %s serving on http://%s:%d (generation %d, backend %s, store %s)"):format(
    host.version, shown, srv.port, gen.id, conf.worker.backend, tostring(store)))
  io.stdout:write(("listening on %s:%d\n"):format(shown, srv.port))
  io.stdout:flush()

  -- reloads: SIGHUP, file changes (debounced: editors write in bursts)
  local pending_reload = false
  local function reload_soon(reason)
    if pending_reload then return end
    pending_reload = true
    host.sleep(0.15)
    pending_reload = false
    controller.reload(reason)
  end
  local handles = {}
  handles[#handles + 1] = host.on_signal("HUP", function() controller.reload("SIGHUP") end)
  if conf.watch then
    handles[#handles + 1] = host.watch(conf.policies_dir, function(name)
      if name:find("%.lua$") then reload_soon("policies/" .. name .. " changed") end
    end)
    if opts.config then
      handles[#handles + 1] = host.watch(opts.config, function() reload_soon("config changed") end)
    end
  end

  -- graceful shutdown
  local function shutdown(signame)
    if controller.draining() then return end
    controller.drain()
    srv:static("/health", 503, '{"status":"draining"}', "application/json")
    host.log("info", "SIG" .. signame .. ": draining " .. srv.active .. " request(s)")
    stop_dashboard()   -- the event streams end (srv:shutdown closes any left)
    srv:shutdown()
    stop_reaper()
    worker.stop_pool()
    stop_heartbeat()
    stop_pruner()
    local deadline = host.now() + controller.current().config.limits.shutdown_grace
    while srv.active > 0 and host.now() < deadline do host.sleep(0.05) end
    for _, w in ipairs(worker.list()) do host.kill(w.pid, 9, true) end
    while srv.active > 0 and host.now() < deadline + 2 do host.sleep(0.05) end
    srv:drop()   -- idle keep-alive peers: h2o closes their connections the ordinary way
    local drop_by = host.now() + 1
    while srv.connections > 0 and host.now() < drop_by do host.sleep(0.01) end
    for _, hd in ipairs(handles) do hd:stop() end
    worker.release_records()
    controller.close()   -- the outbox lease and the store
    host.log("info", "stopped")
    io.stdout:flush()
    io.stderr:flush()
    host.stop(0)   -- the host closes what is left (timers, sockets) and the Lua state
  end
  -- not in `handles`: a drain stops those, and a TERM or INT that comes
  -- while it runs (a supervisor's repeat, a second Ctrl-C) must find its
  -- handler still there, not the default action that kills the process
  host.on_signal("TERM", shutdown)
  host.on_signal("INT", shutdown)
  if ppid then watch_parent(ppid, shutdown) end

  -- the server's listener keeps the loop alive; main returns and serves
end

_M.main = main

return _M
