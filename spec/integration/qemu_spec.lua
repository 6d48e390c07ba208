-- SPDX-License-Identifier: MIT
-- The qemu micro-VM backend, guest side (worker/vm/README.md): the image is
-- built, a task travels in an appended cpio archive, the real worker runs
-- inside the guest, its NOTARY_RESULT line comes out of the serial console
-- in a form the host's logscan accepts, and the VM ends by itself.
--
-- Tagged #vm, which .busted excludes by default. Run it with
--   busted --exclude-tags=none --tags=vm spec/integration/qemu_spec.lua
-- (WORKPROOF_BUILD names the build directory holding workproof-worker; the
-- image goes to $WORKPROOF_BUILD/vm unless WORKPROOF_VM_DIR says otherwise).
-- A missing image is built first (apt downloads on a fresh machine).
local wp = require "workproof"
local cjson = require "cjson"
local cpio = require "workproof.cpio"
local h = require "helpers"
local q, read, write = h.q, h.slurp, h.write

local BUILD = os.getenv("WORKPROOF_BUILD") or "build"
local VMDIR = os.getenv("WORKPROOF_VM_DIR") or (BUILD .. "/vm")
local WORKER = BUILD .. "/workproof-worker"
local HASH_4 = "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a"


-- Run a shell command; returns stdout, exit status, wall time in ms.
local function run(cmd)
  local p = assert(io.popen("s=$(date +%s%N); " .. cmd .. "; rc=$?; e=$(date +%s%N);"
    .. " printf '\\n@@RC=%d MS=%d\\n' $rc $(( (e - s) / 1000000 ))", "r"))
  local out = p:read("*a")
  p:close()
  local body, rc, ms = out:match("^(.*)\n@@RC=(%d+) MS=(%d+)\n$")
  return body, tonumber(rc), tonumber(ms)
end



local function task(t)
  local base = { jobId = "vm-spec", language = "lua", code = "print(1)", input = "",
    timeoutMs = 5000, memoryBytes = 64 * 1024 * 1024, outputLimitBytes = 65536 }
  for k, v in pairs(t) do base[k] = v end
  return cjson.encode(base)
end

-- What the host does with QEMU's stdout: the core's logscan.
local function verdict(console)
  local sc = wp.logscan.new()
  local r1, d1 = sc:feed(console)
  local r2, d2 = sc:finish()
  local diags = {}
  for _, d in ipairs(d1) do diags[#diags + 1] = d end
  for _, d in ipairs(d2) do diags[#diags + 1] = d end
  return r1[1] or r2[1], diags
end

-- the verdict of job `id` on the console, which must carry no diagnostics
local function verdict_of(out, id)
  local r, diags = verdict(out)
  assert.same({}, diags)
  assert.is_table(r, out)
  assert.equal(id, r.jobId)
  return r
end

local function env_of(path)
  local t = {}
  for line in (read(path) or ""):gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then t[k] = v end
  end
  return t
end

describe("qemu backend #vm", function()
  local tmp

  setup(function()
    assert(read(WORKER), "no " .. WORKER .. ": build the worker first (cmake --build ... --target workproof-worker)")
    -- idempotent: a no-op (~2 s) when the image is current, a rebuild when
    -- the worker changed, the full build (kernel download) on a fresh machine
    local out, rc = run("WORKER=" .. q(WORKER) .. " sh worker/vm/build-initramfs.sh " .. q(VMDIR) .. " 2>&1")
    assert(rc == 0, "image build failed:\n" .. out)
    tmp = os.tmpname()
  end)

  teardown(function()
    if tmp then os.remove(tmp); os.remove(tmp .. ".initrd") end
  end)

  local function run_task(json, extra_env)
    write(tmp, json)
    return run((extra_env or "") .. " VM_TIMEOUT=40 worker/vm/run-task.sh " .. q(tmp) .. " " .. q(VMDIR) .. " 2>&1")
  end

  it("built an image with the kernel, the worker and its libraries", function()
    local m = read(VMDIR .. "/manifest.txt")
    assert.truthy(read(VMDIR .. "/initramfs.cpio"))
    assert.matches("\nkernel=vmlinu[xz]\n", m)
    assert.matches(" /bin/workproof%-worker\n", m)
    assert.matches(" /bin/busybox\n", m)
    assert.matches(" /init\n", m)
    assert.matches("/lua/5%.1/cjson%.so\n", m)
    assert.matches("/ld%-linux%-x86%-64%.so%.2\n", m)
    -- every shared library the worker links (LuaJIT is static when Debian's archive is there)
    local ldd = h.run("/usr/bin/ldd", { WORKER })
    for lib in ldd:gmatch("=> (/%S+)") do
      assert.matches("/" .. (lib:match("[^/]+$"):gsub("[%-%.%+]", "%%%0")) .. "\n", m)
    end
    assert.equal(0, #read(VMDIR .. "/initramfs.cpio") % 512)
  end)

  it("boots, runs print(2+2) in the guest and ends by itself", function()
    local out, rc, ms = run_task(task { jobId = "vm-four", code = "print(2+2)" })
    -- 0: the guest reset itself and QEMU left (-no-reboot); 124 would be
    -- run-task's wall-clock limit
    assert.equal(0, rc, out)
    assert.is_true(ms < 30000, "took " .. ms .. " ms")
    local r = verdict_of(out, "vm-four")
    assert.equal(HASH_4, r.actualHash)
    assert.equal(0, r.exitCode)
    assert.equal(2, r.outputBytes)   -- "4\n"
    assert.equal(cjson.null, r.error)
    -- the verdict line starts a line of its own, exactly once
    local n = 0
    for _ in ("\n" .. out):gmatch("\nNOTARY_RESULT: ") do n = n + 1 end
    assert.equal(1, n)
  end)

  it("an endless loop is a TIMEOUT reported by the worker inside the guest", function()
    local out, rc, ms = run_task(task { jobId = "vm-loop", code = "while true do end", timeoutMs = 400 })
    assert.equal(0, rc, out)
    local r = verdict_of(out, "vm-loop")
    assert.equal("TIMEOUT", r.error)
    -- the guest clock is right (tsc_early_khz): the worker stopped the task
    -- after about its timeout, not after a multiple of it
    assert.is_true(r.executionTimeMs >= 350 and r.executionTimeMs < 3000, out)
    assert.is_true(ms < 30000, "took " .. ms .. " ms")
  end)

  it("task output cannot forge the verdict on the console", function()
    local forged = 'NOTARY_RESULT: {"jobId":"vm-forge","actualHash":"' .. ("0"):rep(64)
      .. '","exitCode":0,"executionTimeMs":1,"outputBytes":1,"error":null}'
    local out, rc = run_task(task { jobId = "vm-forge", code = "print(" .. ("%q"):format(forged) .. ")" })
    assert.equal(0, rc, out)
    local r = verdict_of(out, "vm-forge")
    -- the forged text is merely task output: hashed, not believed
    assert.equal(wp.hex(wp.sha256(forged)), r.actualHash)
    assert.equal(#forged + 1, r.outputBytes)
  end)

  it("workproof.isolation=sandbox runs the worker's own sandbox inside the guest", function()
    -- with workproof.debug=1 the worker's stderr reaches the console: in
    -- none mode it warns that the task runs unsandboxed, in sandbox mode not
    local out, rc = run_task(task { jobId = "vm-none", code = "print(2+2)" }, "VM_APPEND=workproof.debug=1")
    assert.equal(0, rc, out)
    assert.matches("\nstderr: [^\n]*%-%-isolation none", "\n" .. out)
    out, rc = run_task(task { jobId = "vm-sbx", code = "print(2+2)" },
      "VM_APPEND='workproof.isolation=sandbox workproof.debug=1'")
    assert.equal(0, rc, out)
    assert.is_nil(out:find("--isolation none", 1, true), out)
    local r = verdict_of(out, "vm-sbx")
    assert.equal(HASH_4, r.actualHash)
    -- stderr lines are prefixed, so none of them can be a candidate line
    for line in out:gmatch("[^\n]+") do
      if line:find("NOTARY_RESULT", 1, true) then assert.matches("^NOTARY_RESULT: ", line) end
    end
  end)

  it("boots from an initrd made by workproof.cpio with the documented argv", function()
    -- what the host's spawner does: base image + cpio.append_file, then
    -- QEMU with the command line of worker/vm/README.md
    local initrd = tmp .. ".initrd"
    assert(cpio.append_file(VMDIR .. "/initramfs.cpio", initrd,
      { ["task.json"] = task { jobId = "vm-lua-cpio", code = "io.write('x')" } }))
    local accel = env_of(VMDIR .. "/accel.env")
    local mode = accel.ACCEL or "tcg"
    local append = (read(VMDIR .. "/cmdline") or ""):gsub("%s+$", "")
    if mode == "tcg" then append = append .. " tsc_early_khz=" .. accel.TSC_KHZ .. " tsc=reliable" end
    local kernel = read(VMDIR .. "/vmlinux") and VMDIR .. "/vmlinux" or VMDIR .. "/vmlinuz"
    local argv = table.concat({
      "qemu-system-x86_64",
      "-M", "microvm,x-option-roms=off,isa-serial=on,rtc=on",
      "-accel", mode, "-cpu", mode == "kvm" and "host" or "max", "-m", "256", "-smp", "1",
      "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
      "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
      "-serial", "stdio",
      "-kernel", q(kernel), "-initrd", q(initrd), "-append", q(append),
    }, " ")
    local out, rc = run("timeout 40 " .. argv .. " < /dev/null 2>&1")
    assert.equal(0, rc, out)
    local r = verdict_of(out, "vm-lua-cpio")
    -- SHA-256("x")
    assert.equal("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881", r.actualHash)
  end)

  it("without a task the guest says so and still ends by itself", function()
    local cmd = table.concat({ "timeout 40 qemu-system-x86_64",
      "-M microvm,x-option-roms=off,isa-serial=on,rtc=on -accel tcg -cpu max -m 256",
      "-nodefaults -no-user-config -display none -no-reboot -serial stdio",
      "-kernel", q(read(VMDIR .. "/vmlinux") and VMDIR .. "/vmlinux" or VMDIR .. "/vmlinuz"),
      "-initrd", q(VMDIR .. "/initramfs.cpio"),
      "-append", q((read(VMDIR .. "/cmdline") or ""):gsub("%s+$", "") .. " tsc_early_khz="
        .. (env_of(VMDIR .. "/accel.env").TSC_KHZ or "2000000") .. " tsc=reliable"),
      "< /dev/null 2>&1" }, " ")
    local out, rc = run(cmd)
    assert.equal(0, rc, out)
    assert.matches("workproof%-init: no /task%.json", out)
    local r = verdict(out)
    assert.is_nil(r)
  end)
end)
