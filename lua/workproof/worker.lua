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
-- Warm sandboxes (sandbox and none backends): `pool = { lua = N,
-- javascript = N }` keeps that many workers started ahead of demand with
-- `--warm LANG` (namespaces, root, filters and runtime ready, each waiting
-- for its ONE task on stdin); a task that fits (its language, the pool's
-- memory, a timeout up to the pool's) takes the oldest, and a replacement
-- is started once the task is done, unless as many tasks run as there are
-- CPUs. Idle and running workers together stay under `max_workers` (the
-- worker threshold's max_active).
--
-- Live workers are recorded durably so that a host that crashed has its
-- orphans killed at the next start (_M.reap_orphans). Several host
-- processes may share a state dir: each records its workers under
-- <state_dir>/workers/<instance id>/ (one file per worker, "pid start")
-- beside an `owner` file naming the instance's process (workproof.owner),
-- and only a DEAD owner's workers are reaped.
local host = require "workproof.host"
local logscan = require "workproof.logscan"
local owner = require "workproof.owner"
local fs = require "workproof.fs"
local cjson = require "cjson.safe"
local json = require "workproof.json"

local type, pairs, tostring, tonumber, error, math_floor = type, pairs, tostring, tonumber, error, math.floor
local io_open, os_remove = io.open, os.remove

local _M = {}

-- the worker's own defaults for a task that leaves them out (worker/README.md)
local DEFAULT_TIMEOUT_MS, DEFAULT_MEMORY = 30000, 268435456

local config = {
  backend = "sandbox",
  -- beside the host in a build tree, <prefix>/libexec/workproof installed
  -- (core/host/layout.c); the VM image: WORKPROOF_VM_DIR, else <build>/vm,
  -- else <prefix>/libexec/workproof/vm/image (docs/operations.md, "Installing")
  worker = host.libexec_dir .. "/workproof-worker",
  vm_dir = os.getenv("WORKPROOF_VM_DIR") or (host.build_dir and host.build_dir .. "/vm")
    or (host.vm_scripts_dir .. "/image"),
  qemu = "qemu-system-x86_64",
  qemu_accel = "tcg",          -- set from the KVM probe (worker/vm/README.md)
  qemu_memory_mb = 256,
  grace = 2,                   -- seconds past the task timeout before the host kills
  boot_allowance = 20,         -- extra seconds a VM gets to boot
  state_dir = nil,             -- durable records of live workers (nil: none)
  max_result_line = 65536,
  pool = { lua = 0, javascript = 0 },   -- warm workers kept per language
  pool_memory = DEFAULT_MEMORY,   -- the memoryBytes warm workers are made for
  pool_timeout_ms = 60000,     -- the longest timeoutMs they take
  max_workers = 100,           -- idle warm + running workers, at most
  zygote = true,               -- sandbox/none: workers forked by a `workproof-worker --zygote`
}

local stats = { spawned = 0, finished = 0, timed_out = 0, crashed = 0, reaped = 0, spawn_failed = 0,
  warm_used = 0, warm_lost = 0 }
local live = {}   -- pid -> { proc =, deadline =, backend = }
local nlive = 0
local pools = { lua = {}, javascript = {} }   -- warm workers: language -> idle { proc, slot }, oldest first

local drain_pool, fill_soon   -- the warm pool (below)

--- Change settings (a table of the keys above); unknown keys raise. Warm
-- workers made for other settings are stopped and replaced.
function _M.configure(t)
  local changed = false
  for k, v in pairs(t) do
    if config[k] == nil and k ~= "state_dir" then error("worker.configure: unknown key '" .. tostring(k) .. "'", 2) end
    if k == "pool" then
      changed = changed or config.pool.lua ~= v.lua or config.pool.javascript ~= v.javascript
    elseif k ~= "max_workers" and k ~= "grace" then
      changed = changed or config[k] ~= v
    end
    config[k] = v
  end
  if changed then drain_pool() end
  fill_soon()
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
      args = { host.vm_scripts_dir .. "/kvm-probe.sh", dir }, timeout = 120 }
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

local starttime = owner.starttime

-- this instance's record dir: <state_dir>/workers/<instance id>
local function own_dir()
  return config.state_dir and (config.state_dir .. "/workers/" .. owner.self().id) or nil
end

local function slot_path(slot)
  local d = own_dir()
  return d and (d .. "/" .. slot) or nil
end

local made_dir   -- the record dir made (with its owner file): once, not per spawn
local function make_dir()
  local d = own_dir()
  if made_dir == d then return true end
  -- the owner file is in place before the dir has its name: a dir under
  -- workers/ without one is never a live instance's
  local tmp = d .. ".new"
  fs.mkdir_p(tmp)
  local f = io_open(tmp .. "/owner", "w")
  if not f then return false end
  f:write(owner.format(owner.self()))
  f:close()
  if not os.rename(tmp, d) then
    os_remove(tmp .. "/owner")
    os_remove(tmp)
    if not io_open(d .. "/owner", "r") then return false end
  end
  made_dir = d
  return true
end

-- Records live in slot files, <dir>/1, <dir>/2, ...: "pid start" while a
-- worker uses the slot, blank when it is free. A slot is rewritten, never
-- created and deleted per worker: creating a file per spawn made ext4 hunt
-- for a free inode not recently deleted, a quarter of the controller's CPU
-- per verification.
local free_slots, nslots = {}, 0

-- Each record is overwritten in place at a fixed width, never truncated:
-- ext4 flushes a file truncated and rewritten when it is closed. A slot's
-- file stays open while this instance keeps its records (one descriptor
-- per slot, as many as workers ever ran at once): a rewrite is a seek and
-- a write, with no path to look up (files are keyed by path: a spec may
-- move the state dir).
local SLOT_WIDTH = 48
local slot_files = {}

local function write_slot(slot, text)
  local p = slot_path(slot)
  local f = slot_files[p]
  if not f then
    f = io_open(p, "r+be") or io_open(p, "wbe")   -- e: close-on-exec
    if not f then return end
    f:setvbuf("no")
    slot_files[p] = f
  end
  f:seek("set", 0)
  -- one write (unbuffered: a write per argument), so a record is never
  -- seen half written
  f:write(text .. (" "):rep(SLOT_WIDTH - 1 - #text) .. "\n")
end

-- pid's start time, given host.boot_ticks() read just before and just
-- after it was spawned: the tick both readings name when they agree (the
-- kernel stamps a process when it forks, from the same clock), else the
-- kernel's own figure from /proc (one spawn in several crosses a tick)
local function spawned_start(pid, before, after)
  if before == after then return tostring(before) end
  return starttime(pid)
end

local function record(pid, before, after)
  if not own_dir() or not make_dir() then return end
  local slot = table.remove(free_slots)
  if not slot then
    nslots = nslots + 1
    slot = nslots
  end
  write_slot(slot, pid .. " " .. (spawned_start(pid, before, after) or "?"))
  return slot
end

local function unrecord(slot)
  if not slot then return end
  write_slot(slot, "")   -- blank: the slot is free
  free_slots[#free_slots + 1] = slot
end

-- The names in dir, sorted, directories with a trailing "/" (none when
-- dir does not exist).
local function list_dir(dir)
  local names = fs.scandir(dir) or {}
  for i, name in ipairs(names) do
    local st = fs.stat(dir .. "/" .. name)
    if st and st.type == "directory" then names[i] = name .. "/" end
  end
  table.sort(names)
  return names
end

-- Kill the worker a record file names ("pid start"; a blank one is a free
-- slot) if that process still runs (same start time), and remove the
-- record. 1 if killed.
local function reap_record(path)
  local f = io_open(path, "r")
  local killed = 0
  if f then
    local line = f:read("*l") or ""
    f:close()
    local pid, st = line:match("^(%d+) (%S+)")
    pid = tonumber(pid)
    if pid and pid > 1 and st == starttime(pid) then
      host.kill(pid, 9, true)
      killed = 1
    end
  end
  os_remove(path)
  return killed
end

--- Kill workers that hosts which died left behind and forget their
-- records. Records of live instances sharing the state dir (their owner
-- process still runs) are left alone. Returns the number killed.
function _M.reap_orphans()
  if not config.state_dir then return 0 end
  local dir = config.state_dir .. "/workers"
  local me = owner.self().id
  local n = 0
  for _, name in ipairs(list_dir(dir)) do
    -- <id>/: an instance's records; <id>.new/: one being made (only an owner file)
    local id, new = name:match("^(%x+)(%.?n?e?w?)/$")
    if new ~= "" and new ~= ".new" then id = nil end
    if tonumber(name) then
      -- a record of the layout before owners: its host is gone
      n = n + reap_record(dir .. "/" .. name)
    elseif id and id ~= me then
      local sub = dir .. "/" .. id .. new
      local f = io_open(sub .. "/owner", "r")
      local o = f and owner.parse(f:read("*a"))
      if f then f:close() end
      if not (o and o.id == id and owner.alive(o.pid, o.start, o.boot)) then
        for _, rec in ipairs(list_dir(sub)) do
          if tonumber(rec) then n = n + reap_record(sub .. "/" .. rec) end
        end
        os_remove(sub .. "/owner")
        os_remove(sub)
      end
    end
  end
  stats.reaped = stats.reaped + n
  return n
end

--- Forget this instance's record dir (at a clean stop, once its workers
-- are gone).
function _M.release_records()
  local d = own_dir()
  for _, f in pairs(slot_files) do f:close() end
  slot_files = {}
  if not d or made_dir ~= d then return end
  for _, rec in ipairs(list_dir(d)) do
    if tonumber(rec) then os_remove(d .. "/" .. rec) end
  end
  os_remove(d .. "/owner")
  os_remove(d)
  made_dir = nil
  free_slots, nslots = {}, 0
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
-- spawn_failed, warm_used (tasks a warm worker took), warm_lost (warm
-- workers that died waiting), active, warm = { lua =, javascript = } (idle).
function _M.stats()
  local t = {}
  for k, v in pairs(stats) do t[k] = v end
  t.active = nlive
  t.warm = { lua = #pools.lua, javascript = #pools.javascript }
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

-- --- warm workers -----------------------------------------------------------

local pool_started, filling = false, false

local function npooled()
  return #pools.lua + #pools.javascript
end

--- Whether a backend runs workproof-worker itself (sandbox and none; not
-- qemu, nor a backend a spec registers): the ones that can keep warm
-- workers and have them forked by the zygote.
local function warm_capable(backend)
  return backend == "sandbox" or backend == "none"
end
_M.warm_capable = warm_capable

-- The CPUs this host may use (/sys/devices/system/cpu/online: "0-1,4").
local function online_cpus()
  local f = io_open("/sys/devices/system/cpu/online", "r")
  local text = f and f:read("*l") or ""
  if f then f:close() end
  local n = 0
  for a, b in text:gmatch("(%d+)%-?(%d*)") do n = n + (b ~= "" and tonumber(b) - tonumber(a) + 1 or 1) end
  return math.max(n, 1)
end
local cpus = online_cpus()

--- The CPUs this host may use (what the warm pool compares running tasks to).
function _M.cpus() return cpus end

-- Start warm workers up to each language's size, idle and running together
-- under max_workers; none while at least as many tasks run as there are
-- CPUs: they would be made by CPUs the tasks need, and a warm worker costs
-- a little more CPU than a cold one (the pool refills once load drops).
local function fill()
  if not (pool_started and warm_capable(config.backend)) then return end
  for lang, idle in pairs(pools) do
    while #idle < (config.pool[lang] or 0) and npooled() + nlive < config.max_workers and nlive < cpus do
      local file, base = backends[config.backend]()
      local args = { "--warm", lang, "--memory-bytes", tostring(config.pool_memory),
        "--timeout-ms", tostring(config.pool_timeout_ms) }
      for i = #base, 1, -1 do table.insert(args, 1, base[i]) end
      local before = host.boot_ticks()
      local proc = host.process_spawn { file = file, args = args, keep_stdin = true, stderr_limit = 16384,
        zygote = config.zygote }
      if not proc then
        stats.spawn_failed = stats.spawn_failed + 1
        return
      end
      stats.spawned = stats.spawned + 1
      idle[#idle + 1] = { proc = proc, slot = record(proc.pid, before, host.boot_ticks()) }
    end
  end
end

-- On the next turn of the loop (never inside the caller's own step).
function fill_soon()
  if filling or not pool_started then return end
  filling = true
  host.spawn(function()
    host.sleep(0)
    filling = false
    fill()
  end)
end

function drain_pool()
  for _, idle in pairs(pools) do
    for i = #idle, 1, -1 do
      idle[i].proc:kill()
      unrecord(idle[i].slot)
      idle[i] = nil
    end
  end
end

--- Start keeping warm workers (once the state dir is configured: they are
-- recorded like running ones).
function _M.start_pool()
  pool_started = true
  fill()
end

--- Stop and forget the idle warm workers (a drain, a stop).
function _M.stop_pool()
  pool_started = false
  drain_pool()
end

-- The oldest idle warm worker that fits the task, or nil.
local function take_warm(task, backend)
  local idle = warm_capable(backend) and backend == config.backend and pools[task.language or "javascript"]
  if not idle or (task.memoryBytes or DEFAULT_MEMORY) ~= config.pool_memory
    or (task.timeoutMs or DEFAULT_TIMEOUT_MS) > config.pool_timeout_ms then
    return nil
  end
  while idle[1] do
    local w = table.remove(idle, 1)
    if not w.proc.exited then return w end
    unrecord(w.slot)   -- died while it waited
    stats.warm_lost = stats.warm_lost + 1
  end
end

local function check_task(task)
  if type(task) ~= "table" then error("worker.run: task must be a table", 3) end
  if type(task.jobId) ~= "string" or task.jobId == "" then error("worker.run: task.jobId must be a string", 3) end
  if type(task.code) ~= "string" then error("worker.run: task.code must be a string", 3) end
  local lang = task.language or "javascript"
  if lang ~= "lua" and lang ~= "javascript" then error("worker.run: unknown language " .. tostring(lang), 3) end
  local t = task.timeoutMs or DEFAULT_TIMEOUT_MS
  if type(t) ~= "number" or t <= 0 or t ~= math_floor(t) then error("worker.run: bad timeoutMs", 3) end
  if task.inputJson ~= nil and type(task.inputJson) ~= "string" then
    error("worker.run: task.inputJson must be JSON text", 3)
  end
end

-- The task as the worker reads it (worker/README.md). The input travels as
-- JSON text in `inputJson`: the caller's own text when it gives one (the
-- request's inputData: numbers, key order and -0 as the client wrote them),
-- else `input` printed by json.stringify, which every finite double survives
-- (lua-cjson's 14 digits would turn 1.0000000000000002 into 1).
local function encode_task(task)
  local input_json = task.inputJson
  if input_json == nil and task.input ~= nil then
    local ok, why = json.representable(task.input, "input")
    if not ok then return nil, "EINVAL: " .. why end
    local done, s = pcall(json.stringify, task.input)
    if not done then return nil, "EINVAL: task input is not JSON-encodable: " .. tostring(s) end
    input_json = s
  end
  local t = {}
  for k, v in pairs(task) do t[k] = v end
  t.input, t.inputJson = nil, input_json
  local payload = cjson.encode(t)
  if not payload then return nil, "EINVAL: task is not JSON-encodable" end
  return payload
end

--- Run a task in a fresh worker. Must be called from a host coroutine.
-- task: { jobId, language, code, input, inputJson, timeoutMs, memoryBytes, outputLimitBytes }
-- where the task's input is inputJson (JSON text, passed on exactly) or
-- else input (a Lua value: lua-cjson's decoded form or an ordered tree).
-- opts: { backend = "sandbox" | "none" | "qemu" }
-- Returns result, info on success, where result is the worker's
-- NOTARY_RESULT table (its `errorClass` field may say TIMEOUT etc.: the
-- worker itself reports task-level outcomes; `error` is the text) and
-- info = { backend, pid, wall_ms } (the worker's exit is reaped after).
-- Returns nil, "ECODE: text", "ECODE", info (with exit_status, term_signal,
-- stderr) when there is no usable result:
--   ETIMEDOUT   the host killed the worker at its deadline (worker hung)
--   ENORESULT   the worker exited without a result line (crash)
--   EBADRESULT  malformed, duplicated, oversized or mismatched result line
--   ESPAWN      the backend could not be started
--   EINVAL      the task could not be encoded for the worker
function _M.run(task, opts)
  check_task(task)
  opts = opts or {}
  local backend = opts.backend or config.backend
  local build = backends[backend]
  if not build then error("worker.run: unknown backend " .. tostring(backend), 2) end
  local payload, perr = encode_task(task)
  if not payload then return nil, perr, "EINVAL" end

  local timeout = (task.timeoutMs or DEFAULT_TIMEOUT_MS) / 1000 + config.grace
    + (backend == "qemu" and config.boot_allowance or 0)
  local t0 = host.now()
  local proc, slot, tmpfile
  local w = take_warm(task, backend)
  if w and w.proc:send(payload, timeout) then
    proc, slot = w.proc, w.slot
    stats.warm_used = stats.warm_used + 1
  else
    if w then   -- it died between the check and the hand-over
      unrecord(w.slot)
      stats.warm_lost = stats.warm_lost + 1
    end
    local file, args
    file, args, tmpfile = build(payload, task.jobId)
    if not file then
      stats.spawn_failed = stats.spawn_failed + 1
      return nil, "ESPAWN: " .. tostring(args), "ESPAWN"
    end
    local err
    local before = host.boot_ticks()
    proc, err = host.process_spawn {
      file = file, args = args, stdin = backend ~= "qemu" and payload or nil,
      timeout = timeout, stderr_limit = 16384, zygote = config.zygote and warm_capable(backend),
    }
    if not proc then
      if tmpfile then os_remove(tmpfile) end
      stats.spawn_failed = stats.spawn_failed + 1
      return nil, err, "ESPAWN"
    end
    stats.spawned = stats.spawned + 1
    slot = record(proc.pid, before, host.boot_ticks())
  end
  local pid = proc.pid
  live[pid] = { proc = proc, started = t0, deadline = t0 + timeout, backend = backend }
  nlive = nlive + 1

  -- which line is the verdict and what makes it an ERROR: wp.logscan
  local scanner = logscan.new { max_line = config.max_result_line }
  local result, bad
  repeat
    local chunk = proc:read()
    if chunk then scanner:feed(chunk) else scanner:finish() end
    result, bad = scanner:verdict()
  until result or bad or not chunk
  nlive = nlive - 1
  if result and not bad then
    if result.jobId ~= task.jobId then
      bad = "result for job " .. tostring(result.jobId)
    elseif type(result.actualHash) ~= "string" and result.actualHash ~= cjson.null then
      bad = "result without actualHash"
    end
  end
  -- Result in hand (or none coming): tear the worker down now. Except a
  -- workproof-worker that answered: it prints once its sandbox's runtime has
  -- ended, then reaps the sandbox's pid 1 and exits. Killed with it, that
  -- process would be orphaned: reparented to pid 1, and where the host IS pid 1 (a
  -- container without an init) never reaped, one zombie per verification.
  -- Its process timeout still bounds it.
  if bad or not (result and warm_capable(backend)) then proc:kill() end
  -- its exit reaped, its record freed; a replacement for the warm worker
  -- taken (or one held back by max_workers) started now that the task is
  -- done, so that its set-up does not compete with the task for the CPU
  local function reap()
    local st = proc:wait()
    live[pid] = nil
    unrecord(slot)
    if tmpfile then os_remove(tmpfile) end
    fill_soon()
    return st
  end
  local info = { backend = backend, pid = pid, wall_ms = (host.now() - t0) * 1000 }
  if result and not bad then
    -- the answer does not wait for the process's teardown (~1 ms)
    host.spawn(reap)
    stats.finished = stats.finished + 1
    if result.errorClass == "TIMEOUT" then stats.timed_out = stats.timed_out + 1 end
    return result, info
  end
  local st = reap()
  info.exit_status, info.term_signal, info.stderr = st.exit_status, st.term_signal, st.stderr
  if bad then
    stats.crashed = stats.crashed + 1
    return nil, "EBADRESULT: " .. bad, "EBADRESULT", info
  end
  if st.timed_out then
    stats.timed_out = stats.timed_out + 1
    return nil, ("ETIMEDOUT: worker killed by the host after %.1f s"):format(timeout), "ETIMEDOUT", info
  end
  stats.crashed = stats.crashed + 1
  local why = st.term_signal ~= 0 and ("signal " .. st.term_signal) or ("status " .. tostring(st.exit_status))
  local tail = st.stderr:sub(-300):gsub("%s+$", "")
  return nil, ("ENORESULT: worker exited (%s) without a result%s"):format(why,
    tail ~= "" and (": " .. tail) or ""), "ENORESULT", info
end

return _M
