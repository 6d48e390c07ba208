-- SPDX-License-Identifier: MIT
--- `workproof serve --processes N` (or `processes = N` in the config): a
-- parent that runs N `workproof serve` children on one port.
--
-- The parent holds the port (host.tcp_reserve: a socket bound with
-- SO_REUSEPORT that never listens, so it takes no connections), which
-- fixes the number for `:0` and keeps the port the group's while children
-- come and go: a `workproof serve` without reuseport on the same port
-- fails with EADDRINUSE. Each child runs `serve CONFIG --listen ADDR:PORT
-- --supervised-by PARENT`: it binds with SO_REUSEPORT (the kernel spreads
-- connections over the listening children), shares the state dir (the
-- children own their records: workproof.owner) and stops by itself when
-- the parent is gone.
--
--   start-up   children start one after another; the parent prints
--              "listening on ADDR:PORT" once all of them listen. A child
--              that fails to start fails the parent with its exit status
--              (the child printed why).
--   crash      a child that exits while the parent is not stopping is
--              started again (after 0.1 s, doubling up to 5 s while it
--              keeps dying within 10 s of its start).
--   SIGTERM / SIGINT  forwarded to every child; the parent exits 0 when all
--              have exited (SIGKILL for any still running shutdown_grace +
--              5 s later).
--   SIGHUP     forwarded (each child reloads; each also watches the config).
local host = require "workproof.host"

local _M = {}

--- Run the supervisor. o = { config = path|nil, listen = "HOST:PORT",
-- processes = N, grace = seconds, fail = function(code, msg) (does not
-- return) }. Does not return either: the process exits when the children
-- have stopped.
function _M.run(o)
  local config = require "workproof.config"
  local h, port = config.parse_listen(o.listen)
  local res, rerr = host.tcp_reserve(h, port)
  if not res then o.fail(1, rerr) end
  local addr = res.family == 6 and ("[" .. res.address .. "]") or res.address
  local listen = addr .. ":" .. res.port
  local exe = host.exepath
  if not exe then o.fail(1, "ESPAWN: cannot find this executable (/proc/self/exe)") end
  local argv = { "serve" }
  if o.config then argv[#argv + 1] = o.config end
  for _, a in ipairs({ "--listen", listen, "--supervised-by", tostring(host.pid) }) do argv[#argv + 1] = a end

  local slots = {}        -- i -> { proc = , started = , backoff = }
  local stopping, running = false, 0

  -- Start child i; read its stdout until it listens. Returns the process,
  -- or nil and its exit status when it ended first.
  local function start(i)
    local p, err = host.process_spawn { file = exe, args = argv, inherit_stderr = true }
    if not p then return nil, { exit_status = 1, error = err } end
    local buf = ""
    while not buf:find("listening on [^\n]*\n") do
      local c = p:read()
      if not c then return nil, p:wait() end
      buf = buf .. c
    end
    slots[i].proc, slots[i].started = p, host.now()
    running = running + 1
    if stopping then host.kill(p.pid, 15) end   -- came up while the group stops
    host.log("info", ("process %d/%d (pid %d) listening"):format(i, o.processes, p.pid))
    return p
  end

  local function finish()
    res:close()
    io.stdout:flush()
    io.stderr:flush()
    host.stop(0)
  end

  -- one coroutine per slot: forward the child's stdout, wait, restart
  local function keep(i)
    local slot = slots[i]
    while true do
      local p = slot.proc
      while true do
        local c = p:read()
        if not c then break end
        io.stdout:write(c)
        io.stdout:flush()
      end
      local st = p:wait()
      running = running - 1
      slot.proc = nil
      if stopping then
        if running == 0 then finish() end
        return
      end
      local lived = host.now() - slot.started
      slot.backoff = lived < 10 and math.min((slot.backoff or 0.05) * 2, 5) or 0.1
      host.log("warn", ("process %d (pid %d) exited (status %s, signal %s) after %.1f s: restarting in %.1f s")
        :format(i, st.pid, tostring(st.exit_status), tostring(st.term_signal), lived, slot.backoff))
      host.sleep(slot.backoff)
      if stopping then
        if running == 0 then finish() end
        return
      end
      while not start(i) do
        if stopping then
          if running == 0 then finish() end
          return
        end
        slot.backoff = math.min(slot.backoff * 2, 5)
        host.log("error", ("process %d failed to start: retrying in %.1f s"):format(i, slot.backoff))
        host.sleep(slot.backoff)
      end
    end
  end

  local function forward(sig, signum)
    for _, slot in ipairs(slots) do
      if slot.proc and not slot.proc.exited then host.kill(slot.proc.pid, signum) end
    end
    host.log("info", ("SIG%s forwarded to %d process(es)"):format(sig, running))
  end
  local function stop(sig, signum)
    if stopping then return end
    stopping = true
    forward(sig, signum)
    if running == 0 then finish() end
    host.sleep((o.grace or 65) + 5)
    for _, slot in ipairs(slots) do
      if slot.proc and not slot.proc.exited then host.kill(slot.proc.pid, 9) end
    end
  end
  host.on_signal("TERM", function() stop("TERM", 15) end)
  host.on_signal("INT", function() stop("INT", 2) end)
  host.on_signal("HUP", function() forward("HUP", 1) end)

  for i = 1, o.processes do
    slots[i] = {}
    local p, st = start(i)
    if not p then
      -- the child said why on stderr (shared); stop the ones already up
      stopping = true
      for _, slot in ipairs(slots) do
        if slot.proc then
          host.kill(slot.proc.pid, 15)
          while slot.proc:read() do end
          slot.proc:wait()
        end
      end
      if st.error then io.stderr:write("workproof serve: ", st.error, "\n") end
      res:close()
      io.stderr:flush()
      host.stop(st.exit_status ~= 0 and st.exit_status or 1)
    end
  end
  for i = 1, o.processes do host.spawn(keep, i) end
  host.log("info", ("workproof %s: %d processes serving on http://%s (parent pid %d)"):format(
    host.version, o.processes, listen, host.pid))
  io.stdout:write(("listening on %s\n"):format(listen))
  io.stdout:flush()
end

return _M
