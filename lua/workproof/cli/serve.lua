-- SPDX-License-Identifier: MIT
--- `workproof serve [CONFIG.lua] [--listen HOST:PORT]`: the notary controller.
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

local _M = {}

local USAGE = [[
usage: workproof serve [CONFIG.lua] [--listen HOST:PORT]

Runs the notary controller. With no CONFIG it runs on the embedded defaults
(127.0.0.1:8402, sandbox backend, SQLite under ./var/, payments and chain
off); examples/config.lua lists every setting.
]]

local function parse_args(args)
  local opts = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--listen" then
      opts.listen = args[i + 1]
      if not opts.listen or not opts.listen:find("^.+:%d+$") then return nil, "--listen needs HOST:PORT" end
      i = i + 2
    elseif a == "-h" or a == "--help" then
      return nil, nil, true
    elseif a:sub(1, 1) == "-" then
      return nil, "unknown option " .. a
    elseif opts.config then
      return nil, "only one CONFIG file"
    else
      opts.config = a
      i = i + 1
    end
  end
  return opts
end

local function split_listen(s)
  local h, p = s:match("^%[?(.-)%]?:(%d+)$")
  return h, tonumber(p)
end

function _M.main(...)
  local opts, err, help = parse_args({ ... })
  if help then io.stdout:write(USAGE) return 0 end
  if not opts then io.stderr:write("workproof serve: ", err, "\n", USAGE) return 2 end

  controller.configure(opts.config, opts.listen and { listen = opts.listen } or nil)
  local gen, rerr = controller.reload("start")
  if not gen then
    io.stderr:write("workproof serve: ", rerr, "\n")
    return 2
  end
  local conf = gen.config
  local store, derr = controller.open_store(conf.store)
  if not store then
    io.stderr:write("workproof serve: ", derr, "\n")
    return 1
  end
  controller.recover_jobs()
  local cok, cerr = controller.setup_chain(conf)
  if not cok then
    io.stderr:write("workproof serve: chain: ", cerr, "\n")
    return 2
  end
  worker.configure { state_dir = conf.state_dir }
  local orphans = worker.reap_orphans()
  if orphans > 0 then host.log("warn", orphans .. " orphaned worker(s) of a stopped host killed") end
  local stop_reaper = worker.start_reaper(conf.worker.reaper_interval)

  local h, port = split_listen(conf.listen)
  local srv, lerr = host.http_listen {
    host = h, port = port, reuseport = conf.reuseport,
    max_body = conf.limits.max_body * 2,   -- over max_body: our JSON 413; over twice: h2o's own
    max_connections_per_client = conf.limits.max_connections_per_client,
    fd_reserve = conf.limits.fd_reserve,
    header_timeout = conf.limits.header_timeout,
    body_timeout = conf.limits.body_timeout,
    handler = controller.handle,
  }
  if not srv then
    io.stderr:write("workproof serve: ", lerr, "\n")
    return 1
  end
  -- health checks are answered in C, without entering Lua: they stay cheap
  -- under load and answer while Lua is busy (the Lua route stays as the
  -- fallback); a draining host answers 503
  controller.set_server(srv)
  srv:static("/health", 200, controller.HEALTH, "application/json")
  host.log("info", ("workproof %s serving on http://%s:%d (generation %d, backend %s, store %s)"):format(
    host.version, h, srv.port, gen.id, conf.worker.backend, conf.store))
  io.stdout:write(("listening on %s:%d\n"):format(h, srv.port))
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
  local done = false
  local function shutdown(signame)
    if controller.draining() then return end
    controller.drain()
    srv:static("/health", 503, '{"status":"draining"}', "application/json")
    host.log("info", "SIG" .. signame .. ": draining " .. srv.active .. " request(s)")
    srv:shutdown()
    stop_reaper()
    local deadline = host.now() + controller.current().config.limits.shutdown_grace
    while srv.active > 0 and host.now() < deadline do host.sleep(0.05) end
    for _, w in ipairs(worker.list()) do host.kill(w.pid, 9, true) end
    while srv.active > 0 and host.now() < deadline + 2 do host.sleep(0.05) end
    for _, hd in ipairs(handles) do hd:stop() end
    worker.release_records()
    controller.close()   -- the outbox lease and the store
    host.log("info", "stopped")
    done = true
    io.stdout:flush()
    io.stderr:flush()
    os.exit(0)
  end
  handles[#handles + 1] = host.on_signal("TERM", shutdown)
  handles[#handles + 1] = host.on_signal("INT", shutdown)

  -- the server's listener keeps the loop alive; main returns and serves
  return done and 0 or nil
end

return _M
