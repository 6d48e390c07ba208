-- SPDX-License-Identifier: MIT
--- qemu micro-VM backend (worker/vm): boot-to-result latency of one task,
-- from the launch of worker/vm/run-task.sh to QEMU's exit after the
-- NOTARY_RESULT line, under TCG and (where the probe says it works) KVM.
-- Anchor, measured in the same run: the same task through the worker on the
-- host with --isolation none, i.e. what the VM adds. The host-side cost of
-- task delivery (workproof.cpio.append_file onto the base image) is a row
-- of its own. Figures are reported, not judged: they depend on the host
-- (nested virtualisation, TCG speed); see worker/vm/README.md.
local wp = require "workproof"
local cjson = require "cjson"
local cpio = require "workproof.cpio"
local h = require "helpers"
local q, read = h.q, h.slurp

local RUNS = 3



return function(b)
  local vmdir = os.getenv("WORKPROOF_VM_DIR") or (b.build .. "/vm")
  local worker = b.build .. "/workproof-worker"
  assert(read(worker), "no " .. worker .. ": build the worker first")
  b.exec("WORKER=" .. q(worker) .. " sh worker/vm/build-initramfs.sh " .. q(vmdir) .. " 2>/dev/null")

  local task = os.tmpname()
  local f = assert(io.open(task, "wb"))
  f:write(cjson.encode({ jobId = "bench", language = "lua", code = "print(2+2)", input = "",
    timeoutMs = 5000, memoryBytes = 64 * 1024 * 1024, outputLimitBytes = 65536 }))
  f:close()

  local function timed(cmd)
    local t0 = wp.now()
    local out = b.exec(cmd)
    local s = wp.now() - t0
    assert(("\n" .. out):find("\nNOTARY_RESULT: ", 1, true), "no result line from: " .. cmd .. "\n" .. out)
    return s
  end

  local function median_of(cmd)
    local xs = {}
    for i = 1, RUNS do xs[i] = timed(cmd) end
    return b.median(xs)
  end

  -- first use after a host boot probes KVM (cached in accel.env): keep
  -- that one-time cost out of the figures
  b.exec("worker/vm/run-task.sh " .. q(task) .. " " .. q(vmdir) .. " >/dev/null 2>&1 || true")
  local accel = {}
  for line in (read(vmdir .. "/accel.env") or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then accel[k] = v end
  end

  local host_s = median_of(q(worker) .. " --isolation none < " .. q(task) .. " 2>/dev/null")
  local rows = {}
  local tcg = median_of("ACCEL=tcg worker/vm/run-task.sh " .. q(task) .. " " .. q(vmdir) .. " 2>&1")
  rows[#rows + 1] = b.row { name = "qemu microvm TCG boot-to-result (median of 3)", value = tcg, unit = "s",
    anchor_name = "same task, host worker (none)", anchor = host_s, goal_kind = "report" }

  if accel.KVM_MS and accel.KVM_MS ~= "-" then
    local kvm = median_of("ACCEL=kvm worker/vm/run-task.sh " .. q(task) .. " " .. q(vmdir) .. " 2>&1")
    rows[#rows + 1] = b.row { name = "qemu microvm KVM boot-to-result (median of 3)", value = kvm, unit = "s",
      anchor_name = "TCG boot-to-result", anchor = tcg, goal_kind = "report" }
  else
    rows[#rows + 1] = b.row { name = "qemu microvm KVM: not usable here", goal_kind = "report",
      anchor_name = (accel.KVM_NOTE or "no probe verdict"):sub(1, 28) }
    io.stderr:write("qemu_bench: KVM not usable here: ", accel.KVM_NOTE or "no probe verdict", "\n")
  end

  -- host-side delivery cost per task: copy the base image, append the task;
  -- where the copy goes matters (a disk-backed /tmp vs tmpfs)
  local base = vmdir .. "/initramfs.cpio"
  local json = read(task)
  local mb = math.floor(#read(base) / 1048576)
  local dirs = { os.getenv("TMPDIR") or "/tmp" }
  if io.open("/dev/shm/.", "rb") and dirs[1] ~= "/dev/shm" then dirs[2] = "/dev/shm" end
  for _, dir in ipairs(dirs) do
    local out = ("%s/qemu-bench-%d.initrd"):format(dir, math.floor(wp.now() * 1e6) % 1e9)
    local rate = b.rate(function(n)
      for _ = 1, n do assert(cpio.append_file(base, out, { ["task.json"] = json })) end
    end, { min_time = 0.3 })
    os.remove(out)
    rows[#rows + 1] = b.row { name = ("task initrd: cpio.append_file, %d MB, %s"):format(mb, dir),
      value = 1 / rate, unit = "s", goal_kind = "report" }
  end

  os.remove(task)
  return rows
end
