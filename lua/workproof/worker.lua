-- SPDX-License-Identifier: MIT
--- Running untrusted tasks: wp.worker.run(task, opts) spawns a worker on the
-- loop through a backend, streams its stdout through logscan, returns the
-- NOTARY_RESULT as soon as the line arrives and tears the worker down.
--
-- Backends build a command line; spawning, streaming, killing, listing and
-- reaping are the same for all of them (the process layer in
-- core/host/l_process.c):
--   sandbox  workproof-worker --isolation sandbox   (namespaces + seccomp)
--   none     workproof-worker --isolation none      (development only)
--   qemu     qemu-system-x86_64 microvm, serial console on stdout (worker/vm)
--
-- Live workers are recorded durably (one file per worker under
-- <state_dir>/workers/) so that a host that crashed can kill its orphans at
-- the next start (_M.reap_orphans).
local core = require "workproof.core"
local host = require "workproof.host"
local cjson = require "cjson.safe"

local type, pairs, tostring, tonumber, error, math_floor = type, pairs, tostring, tonumber, error, math.floor
local io_open, os_remove = io.open, os.remove

local _M = {}

local config = {
  backend = "sandbox",
  worker = host.build_dir .. "/workproof-worker",
  vm_dir = host.build_dir .. "/vm",
  qemu = "qemu-system-x86_64",
  qemu_accel = "tcg",          -- set from the KVM probe (worker/vm/README.md)
  qemu_memory_mb = 256,
  grace = 2,                   -- seconds past the task timeout before the host kills
  boot_allowance = 20,         -- extra seconds a VM gets to boot
  state_dir = nil,             -- durable records of live workers (nil: none)
  max_result_line = 65536,
}

local stats = { spawned = 0, finished = 0, timed_out = 0, crashed = 0, reaped = 0, spawn_failed = 0 }
local live = {}   -- pid -> { proc =, deadline =, backend = }
local nlive = 0

--- Change settings (a table of the keys above); unknown keys raise.
function _M.configure(t)
  for k, v in pairs(t) do
    if config[k] == nil and k ~= "state_dir" then error("worker.configure: unknown key '" .. tostring(k) .. "'", 2) end
    config[k] = v
  end
  return config
end

function _M.settings() return config end

local backends = {}

backends.sandbox = function()
  return config.worker, { "--isolation", "sandbox" }
end

backends.none = function()
  return config.worker, { "--isolation", "none" }
end

-- KEY=value lines (vm_dir/accel.env, vm_dir/manifest.txt)
local function read_kv(path)
  local f = io_open(path, "r")
  if not f then return nil end
  local t = {}
  for line in f:lines() do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then t[k] = v end
  end
  f:close()
  return t
end

-- The micro-VM image's settings (worker/vm/README.md): the accelerator the
-- KVM probe chose for this host boot, the TSC rate TCG guests must be told,
-- the kernel command line, the memory the image needs.
local function vm_settings()
  local dir = config.vm_dir
  local accel = read_kv(dir .. "/accel.env")
  local boot_id
  local f = io_open("/proc/sys/kernel/random/boot_id", "r")
  if f then boot_id = f:read("*l"); f:close() end
  if not accel or accel.BOOT_ID ~= boot_id then
    -- first task since this host booted: probe (KVM often opens yet hangs);
    -- it takes seconds, so it runs as a child this coroutine waits for
    local probe = host.process_spawn { file = "/bin/sh",
      args = { host.source_dir .. "/worker/vm/kvm-probe.sh", dir }, timeout = 120 }
    if probe then
      while probe:read() do end
      probe:wait()
    end
    accel = read_kv(dir .. "/accel.env") or {}
  end
  local manifest = read_kv(dir .. "/manifest.txt") or {}
  local cf = io_open(dir .. "/cmdline", "r")
  local cmdline = cf and cf:read("*l") or "console=ttyS0 quiet loglevel=0 panic=-1"
  if cf then cf:close() end
  return {
    accel = (os.getenv("ACCEL") or accel.ACCEL or config.qemu_accel), tsc_khz = accel.TSC_KHZ,
    cmdline = cmdline, kernel = dir .. "/" .. (manifest.kernel or "vmlinux"),
    memory = math.max(config.qemu_memory_mb, tonumber(manifest.min_memory_mb) or 0),
  }
end

backends.qemu = function(task_json, job)
  -- the task travels as a second cpio archive appended to the base initramfs
  local cpio = require "workproof.cpio"
  local vm = vm_settings()
  local tmp = io_open("/dev/shm", "r") and "/dev/shm" or (os.getenv("TMPDIR") or "/tmp")
  local path = ("%s/wp-task-%s-%d.cpio"):format(tmp, job:gsub("[^%w_-]", ""):sub(1, 40),
    math_floor(host.now() * 1e6) % 1e9)
  local ok, err = cpio.append_file(config.vm_dir .. "/initramfs.cpio", path, { ["task.json"] = task_json })
  if not ok then return nil, err end
  local append = vm.cmdline
  if vm.accel == "tcg" and vm.tsc_khz then
    append = append .. " tsc_early_khz=" .. vm.tsc_khz .. " tsc=reliable"
  end
  return config.qemu, {
    "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on",
    "-accel", vm.accel, "-cpu", vm.accel == "kvm" and "host" or "max",
    "-m", tostring(vm.memory), "-smp", "1",
    "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
    "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-serial", "stdio",
    "-kernel", vm.kernel, "-initrd", path,
    "-append", append,
  }, path
end

_M.backends = backends

local function record_path(pid)
  return config.state_dir and (config.state_dir .. "/workers/" .. pid) or nil
end

-- Field 22 of /proc/<pid>/stat: start time in clock ticks since boot. A pid
-- plus its start time names one process for good (pids are reused).
local function starttime(pid)
  local f = io_open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  local rest = s:match("^%d+ %b() (.*)$")   -- comm may contain spaces
  if not rest then return nil end
  local i = 2
  for field in rest:gmatch("%S+") do
    i = i + 1
    if i == 22 then return field end
  end
  return nil
end

local made_dir   -- the state dir whose workers/ exists: created once, not per spawn
local function record(pid)
  local p = record_path(pid)
  if not p then return end
  if made_dir ~= config.state_dir then
    os.execute("mkdir -p '" .. config.state_dir .. "/workers'")
    made_dir = config.state_dir
  end
  local f = io_open(p, "w")
  if f then
    f:write(pid, " ", starttime(pid) or "?", "\n")
    f:close()
  end
end

local function unrecord(pid)
  local p = record_path(pid)
  if p then os_remove(p) end
end

--- Kill workers a crashed host left behind (recorded under state_dir) and
-- forget their records. Returns the number killed.
function _M.reap_orphans()
  if not config.state_dir then return 0 end
  local dir = config.state_dir .. "/workers"
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  local n = 0
  for name in p:lines() do
    local pid = tonumber(name)
    local f = pid and io_open(dir .. "/" .. name, "r")
    if f then
      local line = f:read("*l") or ""
      f:close()
      local st = line:match("^%d+ (%S+)")
      if st and st == starttime(pid) then
        host.kill(pid, 9, true)
        n = n + 1
      end
    end
    os_remove(dir .. "/" .. name)
  end
  p:close()
  stats.reaped = stats.reaped + n
  return n
end

--- One sweep: kill any live worker past its deadline plus grace (the process
-- layer's own deadline timer normally got there first). Returns the count.
-- `now` (monotonic seconds) is injectable for specs.
function _M.sweep(now)
  local n = 0
  now = now or host.now()
  for _, w in pairs(live) do
    if now > w.deadline + config.grace and not w.proc.exited then
      w.proc:kill()
      w.reaped = true
      n = n + 1
    end
  end
  stats.reaped = stats.reaped + n
  return n
end

--- Start the periodic reaper in its own host coroutine; returns a stop function.
function _M.start_reaper(interval)
  local running = true
  host.spawn(function()
    while running do
      host.sleep(interval or 5)
      if running then _M.sweep() end
    end
  end)
  return function() running = false end
end

--- Counters for metrics: spawned, finished, timed_out, crashed, reaped,
-- spawn_failed, active.
function _M.stats()
  local t = {}
  for k, v in pairs(stats) do t[k] = v end
  t.active = nlive
  return t
end

--- The live workers: array of { pid, backend, age, deadline_in }.
function _M.list()
  local out, now = {}, host.now()
  for pid, w in pairs(live) do
    out[#out + 1] = { pid = pid, backend = w.backend, age = now - w.started, deadline_in = w.deadline - now }
  end
  return out
end

local function check_task(task)
  if type(task) ~= "table" then error("worker.run: task must be a table", 3) end
  if type(task.jobId) ~= "string" or task.jobId == "" then error("worker.run: task.jobId must be a string", 3) end
  if type(task.code) ~= "string" then error("worker.run: task.code must be a string", 3) end
  local lang = task.language or "javascript"
  if lang ~= "lua" and lang ~= "javascript" then error("worker.run: unknown language " .. tostring(lang), 3) end
  local t = task.timeoutMs or 30000
  if type(t) ~= "number" or t <= 0 or t ~= math_floor(t) then error("worker.run: bad timeoutMs", 3) end
end

--- Run a task in a fresh worker. Must be called from a host coroutine.
-- task: { jobId, language, code, input, timeoutMs, memoryBytes, outputLimitBytes }
-- opts: { backend = "sandbox" | "none" | "qemu" }
-- Returns result, info on success, where result is the worker's
-- NOTARY_RESULT table (its `error` field may say TIMEOUT etc.: the worker
-- itself reports task-level outcomes) and info = { backend, pid, wall_ms,
-- exit_status, term_signal, stderr }.
-- Returns nil, "ECODE: text", info when there is no usable result:
--   ETIMEDOUT   the host killed the worker at its deadline (worker hung)
--   ENORESULT   the worker exited without a result line (crash)
--   EBADRESULT  malformed, duplicated, oversized or mismatched result line
--   ESPAWN      the backend could not be started
function _M.run(task, opts)
  check_task(task)
  opts = opts or {}
  local backend = opts.backend or config.backend
  local build = backends[backend]
  if not build then error("worker.run: unknown backend " .. tostring(backend), 2) end
  local payload = cjson.encode(task)
  if not payload then return nil, "EINVAL: task is not JSON-encodable" end

  local file, args, tmpfile = build(payload, task.jobId)
  if not file then
    stats.spawn_failed = stats.spawn_failed + 1
    return nil, "ESPAWN: " .. tostring(args)
  end
  local timeout = (task.timeoutMs or 30000) / 1000 + config.grace
    + (backend == "qemu" and config.boot_allowance or 0)
  local t0 = host.now()
  local proc, err = host.process_spawn {
    file = file, args = args, stdin = backend ~= "qemu" and payload or nil,
    timeout = timeout, stderr_limit = 16384,
  }
  if not proc then
    if tmpfile then os_remove(tmpfile) end
    stats.spawn_failed = stats.spawn_failed + 1
    return nil, err
  end
  local pid = proc.pid
  stats.spawned = stats.spawned + 1
  live[pid] = { proc = proc, started = t0, deadline = t0 + timeout, backend = backend }
  nlive = nlive + 1
  record(pid)

  local scanner = core.logscan.new { max_line = config.max_result_line }
  local result, bad
  local function take(results, diags)
    for _, d in ipairs(diags or {}) do
      if not bad then bad = ("%s at line %s"):format(tostring(d.kind), tostring(d.line)) end
    end
    if results and results[1] and not result then result = results[1] end
  end
  while not result and not bad do
    local chunk = proc:read()
    if not chunk then
      take(scanner:finish())
      break
    end
    take(scanner:feed(chunk))
  end
  -- result in hand (or none coming): tear the worker down now
  proc:kill()
  local st = proc:wait()
  live[pid] = nil
  nlive = nlive - 1
  unrecord(pid)
  if tmpfile then os_remove(tmpfile) end

  local info = {
    backend = backend, pid = pid, wall_ms = (host.now() - t0) * 1000,
    exit_status = st.exit_status, term_signal = st.term_signal, stderr = st.stderr,
  }
  if result and not bad then
    if result.jobId ~= task.jobId then
      bad = "result for job " .. tostring(result.jobId)
    elseif type(result.actualHash) ~= "string" and result.actualHash ~= cjson.null then
      bad = "result without actualHash"
    end
  end
  if bad then
    stats.crashed = stats.crashed + 1
    return nil, "EBADRESULT: " .. bad, info
  end
  if result then
    stats.finished = stats.finished + 1
    if result.error == "TIMEOUT" then stats.timed_out = stats.timed_out + 1 end
    return result, info
  end
  if st.timed_out then
    stats.timed_out = stats.timed_out + 1
    return nil, ("ETIMEDOUT: worker killed by the host after %.1f s"):format(timeout), info
  end
  stats.crashed = stats.crashed + 1
  local why = st.term_signal ~= 0 and ("signal " .. st.term_signal) or ("status " .. tostring(st.exit_status))
  local tail = st.stderr:sub(-300):gsub("%s+$", "")
  return nil, ("ENORESULT: worker exited (%s) without a result%s"):format(why,
    tail ~= "" and (": " .. tail) or ""), info
end

return _M
