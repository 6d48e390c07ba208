-- SPDX-License-Identifier: MIT
-- Hostile tasks against the REAL built workproof-worker.
--
-- 1. The corpus: every spec/fixtures/hostile/*.lua|js file is one case whose
--    first line states the expected outcome (harness.lua, H.case).
-- 2. The sandbox itself, below the runtimes: --selftest-probe makes one
--    forbidden system call under each runtime's seccomp profile.
-- 3. The host is unharmed: files the tasks tried to create do not exist, the
--    worker's environment never reaches a task, host processes survive.
local cjson = require "cjson"
local H = dofile("spec/fixtures/worker/harness.lua")

local SECRET_VALUE = H.SECRET:match("=(.*)$")

-- files hostile cases try to create on the host
local HOST_PATHS = {
  "/tmp/workproof-hostile-os-execute", "/tmp/workproof-hostile-io-output", "/tmp/workproof-hostile-js",
  "/workproof-escape", "/etc/workproof-hostile",
}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- each case cold, then in a warm sandbox (--warm: the sandbox and runtime
-- made before the task arrives, as the controller's pool makes them)
for _, warm in ipairs({ false, true }) do
describe("hostile corpus" .. (warm and ", warm sandbox" or "") .. " #sandbox", function()
  setup(function()
    for _, p in ipairs(HOST_PATHS) do os.remove(p) end
  end)

  local files = H.list("spec/fixtures/hostile", "%.lua$")
  for _, p in ipairs(H.list("spec/fixtures/hostile", "%.js$")) do files[#files + 1] = p end
  assert(#files >= 60, "hostile corpus missing")

  for _, path in ipairs(files) do
    local task, expect = H.case(path)
    it(path:match("([^/]+)$") .. " -> " .. expect.raw, function()
      if H.sanitized and expect.error == "KILLED: SIGSEGV" then
        -- ASan's own SIGSEGV reporter takes over (and the filter stops it)
        return pending("sanitizer build: ASan handles the segfault itself")
      end
      local r = H.run(task, { args = warm and { "--warm", task.language,
        "--memory-bytes", tostring(task.memoryBytes or 268435456),
        "--timeout-ms", tostring(task.timeoutMs or 30000) } or nil })
      H.one_result(r)
      local msg = H.check(r, expect)
      assert(msg == nil, msg)
      assert.not_matches(SECRET_VALUE, r.stdout .. r.stderr, 1, true)
    end)
  end

  it("left nothing on the host", function()
    for _, p in ipairs(HOST_PATHS) do
      assert.is_false(exists(p), p)
    end
  end)
end)
end

describe("sandbox probes (--selftest-probe, test only) #sandbox", function()
  -- expected outcome under the node profile; under the Lua profile every
  -- probe is killed by the filter (the runtime only writes and exits)
  local SIGSYS = "KILLED: SIGSYS"
  local NODE = {
    ["socket-inet"] = "EACCES", ["socket-inet6"] = "EACCES", ["socket-unix"] = "EACCES",
    ["tcp-connect"] = "EACCES",
    ptrace = SIGSYS, ["kill-all"] = SIGSYS, mount = SIGSYS, unshare = SIGSYS, setns = SIGSYS,
    keyctl = SIGSYS, bpf = SIGSYS, perf = SIGSYS, reboot = SIGSYS, kexec = SIGSYS,
    ["init-module"] = SIGSYS, fork = SIGSYS, chroot = SIGSYS, setuid = SIGSYS, mknod = SIGSYS,
    ["open-shadow"] = "ENOENT", ["open-proc"] = "ENOENT", ["write-root"] = "EROFS",
    ["write-tmp"] = "OK", ["exec-sh"] = "ENOENT", ["io-uring"] = "ENOSYS",
    caps = "00/00/00", uid = "0", hostname = "workproof",
  }
  local names = {}
  for k in pairs(NODE) do names[#names + 1] = k end
  table.sort(names)

  local function probe(lang, name, code, args)
    local a = { "--selftest-probe", name }
    for _, x in ipairs(args or {}) do a[#a + 1] = x end
    local r = H.run(H.task(lang, code or "", { jobId = "probe-" .. name }), { iso = "sandbox", args = a })
    return H.one_result(r)
  end

  local function outcome(res)
    if res.error ~= cjson.null then return res.error end
    return res.actualHash
  end

  local function expected(word)
    if word:match("^KILLED") then return word end
    return H.sha(word)
  end

  for _, name in ipairs(names) do
    it("lua profile: " .. name .. " -> " .. SIGSYS, function()
      assert.equal(SIGSYS, outcome(probe("lua", name)))
    end)
    it("node profile: " .. name .. " -> " .. NODE[name], function()
      assert.equal(expected(NODE[name]), outcome(probe("javascript", name)))
    end)
  end

  it("a write outside /tmp fails and leaves no file on the host", function()
    os.remove("/etc/workproof-hostile")
    assert.equal(H.sha("EROFS"), outcome(probe("javascript", "write-path", "/etc/workproof-hostile")))
    assert.is_false(exists("/etc/workproof-hostile"))
    assert.equal(H.sha("EROFS"), outcome(probe("javascript", "write-root")))
    assert.is_false(exists("/workproof-escape"))
  end)

  it("/tmp is private to the sandbox: a file written there is not on the host", function()
    local path = ("/tmp/workproof-hostile-tmp-%d"):format(os.time())
    os.remove(path)
    assert.equal(H.sha("OK"), outcome(probe("javascript", "write-path", path)))
    assert.is_false(exists(path))
  end)

  it("host files are not there: /etc/shadow, this spec, the worker sources", function()
    local cwd = H.sh("pwd"):gsub("\n$", "")
    local paths = { "/etc/shadow", "/etc/passwd", cwd .. "/spec/unit/hostile_spec.lua", cwd .. "/worker/main.c" }
    for _, p in ipairs(paths) do
      assert.equal(H.sha("ENOENT"), outcome(probe("javascript", "read-path", p)), p)
    end
  end)

  it("--ro makes a host path readable, never writable", function()
    assert.equal(H.sha("ENOENT"), outcome(probe("javascript", "read-path", "/etc/hostname")))
    assert.equal(H.sha("OK"), outcome(probe("javascript", "read-path", "/etc/hostname", { "--ro", "/etc/hostname" })))
    local w = outcome(probe("javascript", "write-path", "/etc/hostname", { "--ro", "/etc/hostname" }))
    assert.is_true(w == H.sha("EACCES") or w == H.sha("EROFS"))
  end)

  it("kill(-1, SIGKILL) from the task leaves host processes alive", function()
    local out = H.sh("sleep 30 > /dev/null 2>&1 & echo $!")
    local pid = assert(tonumber(out:match("%d+")))
    local lua_res = outcome(probe("lua", "kill-all"))
    local js_res = outcome(probe("javascript", "kill-all"))
    local _, alive = H.sh("kill -0 " .. pid)
    H.sh("kill " .. pid)
    assert.equal(SIGSYS, lua_res)
    assert.equal(SIGSYS, js_res)
    assert.equal(0, alive)
  end)
end)
