-- SPDX-License-Identifier: MIT
-- workproof-worker: the contract (worker/README.md) checked on the REAL
-- built binary: one NOTARY_RESULT line, the output hash, the limits, task
-- validation, arguments, determinism, exit statuses, teardown.
-- The hostile corpus lives in hostile_spec.lua.
local cjson = require "cjson"
local H = dofile("spec/fixtures/worker/harness.lua")

-- setpriv to another user needs root
local it_sandbox_root = (not H.root) and pending or it

local function lua(code, extra) return H.task("lua", code, extra) end
local function js(code, extra) return H.task("javascript", code, extra) end

-- SHA-256 of no output at all
local EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

local function result(task, opts)
  local r = H.run(task, opts)
  return H.one_result(r), r
end

describe("workproof-worker #sandbox", function()
  describe("result line", function()
    it("print(2 + 2) in Lua hashes as \"4\"", function()
      local t = lua("print(2 + 2)")
      local res = result(t)
      assert.equal(t.jobId, res.jobId)
      assert.equal(H.SHA_4, res.actualHash)
      assert.equal(0, res.exitCode)
      assert.equal(2, res.outputBytes)
      assert.equal(cjson.null, res.error)
      assert.is_number(res.executionTimeMs)
    end)

    it("console.log(2 + 2) in JavaScript hashes as \"4\" (seed parity)", function()
      local res = result(js("console.log(2 + 2)"))
      assert.equal(H.SHA_4, res.actualHash)
      assert.equal(0, res.exitCode)
      assert.equal(cjson.null, res.error)
    end)

    it("has its keys in the documented order and nothing else on stdout", function()
      local _, r = result(lua("print(1)"))
      assert.matches('^NOTARY_RESULT: {"jobId":"job%-lua","actualHash":"%x+","exitCode":0,' ..
        '"executionTimeMs":%d+,"outputBytes":2,"error":null,"errorClass":null}\n$', r.stdout)
    end)

    it("echoes a jobId with quotes, backslashes and UTF-8 as valid JSON", function()
      local t = lua("print(1)")
      t.jobId = 'a "quoted" \\ job — ü'
      local res = result(t)
      assert.equal(t.jobId, res.jobId)
    end)

    it("a task printing a forged NOTARY_RESULT line changes only its own hash", function()
      local fake = 'NOTARY_RESULT: {"jobId":"job-lua","actualHash":"' .. H.SHA_4 .. '","exitCode":0,"error":null}'
      local res, r = result(lua("print(" .. ("%q"):format(fake) .. ")"))
      assert.equal(1, #r.lines)
      assert.equal(H.sha(fake), res.actualHash)
    end)
  end)

  describe("output hash", function()
    local cases = {
      { "no output", "", "" },
      { "trailing LF dropped", "io.write('4\\n')", "4" },
      { "trailing CRLF run dropped", "io.write('4\\r\\n\\r\\n\\n')", "4" },
      { "inner CR/LF kept", "io.write('4\\r\\n5\\n')", "4\r\n5" },
      { "leading newlines kept", "io.write('\\n\\n4')", "\n\n4" },
      { "only newlines", "io.write('\\n\\r\\n')", "" },
      { "binary and invalid UTF-8 bytes", "io.write('\\0\\255\\254x')", "\0\255\254x" },
      { "print separates with tabs", "print(1, 'a', nil, true)", "1\ta\tnil\ttrue" },
      { "io.write chains", "io.write('a'):write('b') io.stdout:write('c', 1.5)", "abc1.5" },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local res = result(lua(c[2]))
        assert.equal(H.sha(c[3]), res.actualHash)
        assert.equal(cjson.null, res.error)
      end)
    end

    it("a long trailing newline run across many pipe reads is still dropped", function()
      local res = result(lua("io.write('x', string.rep('\\n', 300000))"))
      assert.equal(H.sha("x"), res.actualHash)
      assert.equal(300001, res.outputBytes)
    end)

    it("a newline run followed by more output is hashed in full", function()
      local res = result(lua("io.write('x', string.rep('\\r\\n', 100000), 'y\\n')"))
      assert.equal(H.sha("x" .. ("\r\n"):rep(100000) .. "y"), res.actualHash)
    end)

    it("hashes large output streaming (8 MiB)", function()
      local res = result(lua("local s = string.rep('ab', 4 * 1024 * 1024) io.write(s)",
        { outputLimitBytes = 16 * 1024 * 1024 }))
      assert.equal(H.sha(("ab"):rep(4 * 1024 * 1024)), res.actualHash)
      assert.equal(8 * 1024 * 1024, res.outputBytes)
    end)
  end)

  describe("limits", function()
    it("output exactly at outputLimitBytes passes, one byte more is OUTPUT_LIMIT", function()
      local res = result(lua("io.write('45')", { outputLimitBytes = 2 }))
      assert.equal(cjson.null, res.error)
      res = result(lua("io.write('456')", { outputLimitBytes = 2 }))
      assert.equal("OUTPUT_LIMIT", res.error)
      assert.equal(137, res.exitCode)
      assert.equal(H.sha("45"), res.actualHash) -- the hash covers the first limit bytes
    end)

    it("outputLimitBytes 0 allows no output at all", function()
      assert.equal(cjson.null, result(lua("", { outputLimitBytes = 0 })).error)
      assert.equal("OUTPUT_LIMIT", result(lua("io.write('x')", { outputLimitBytes = 0 })).error)
    end)

    it("a stdout flood stops at the limit, fast", function()
      local res = result(lua("local s = string.rep('x', 65536) while true do io.write(s) end"))
      assert.equal("OUTPUT_LIMIT", res.error)
      assert.is_true(res.outputBytes < 2 * 1024 * 1024)
      assert.is_true(res.executionTimeMs < 3000)
    end)

    it("TIMEOUT at timeoutMs, killed (exit 137)", function()
      local res = result(lua("while true do end", { timeoutMs = 300 }))
      assert.equal("TIMEOUT", res.error)
      assert.equal(137, res.exitCode)
      assert.is_true(res.executionTimeMs >= 300 and res.executionTimeMs < 2000, tostring(res.executionTimeMs))
    end)

    it("TIMEOUT for JavaScript too", function()
      local res = result(js("for (;;) {}", { timeoutMs = 500 }))
      assert.equal("TIMEOUT", res.error)
    end)

    it("INSTRUCTION_LIMIT for a task-set instruction budget, with output kept", function()
      local res = result(lua("print('before') while true do end", { instructionLimit = 100000 }))
      assert.equal("INSTRUCTION_LIMIT", res.error)
      assert.equal(1, res.exitCode)
      assert.equal(H.sha("before"), res.actualHash)
    end)

    it("a task within its instruction budget finishes", function()
      local res = result(lua("local x = 0 for i = 1, 1000 do x = x + i end print(x)", { instructionLimit = 100000 }))
      assert.equal(cjson.null, res.error)
      assert.equal(H.sha("500500"), res.actualHash)
    end)

    it("MEMORY_LIMIT at memoryBytes (Lua)", function()
      local res = result(lua("local t = {} for i = 1, 1e7 do t[i] = i end", { memoryBytes = 4 * 1024 * 1024 }))
      assert.equal("MEMORY_LIMIT", res.error)
      -- the same task fits a larger limit
      res = result(lua("local t = {} for i = 1, 1e5 do t[i] = i end print(#t)", { memoryBytes = 64 * 1024 * 1024 }))
      assert.equal(cjson.null, res.error)
    end)

    it("MEMORY_LIMIT at memoryBytes (JavaScript heap)", function()
      local res = result(js("const a = []; for (;;) a.push(new Array(1e5).fill(0));",
        { memoryBytes = 32 * 1024 * 1024 }))
      assert.equal("MEMORY_LIMIT", res.error)
    end)
  end)

  describe("runtime errors", function()
    it("a Lua error: RUNTIME_ERROR with the message, exit code 1", function()
      local res = result(lua("error('boom')"))
      assert.equal("RUNTIME_ERROR: task:1: boom", res.error)
      assert.equal(1, res.exitCode)
    end)

    it("a Lua syntax error", function()
      assert.equal("RUNTIME_ERROR: task:1: unexpected symbol near '<eof>'", result(lua("x = (")).error)
    end)

    it("rejects a binary (bytecode) chunk as the task's code", function()
      local res = result(lua(string.dump(function() return 1 end)))
      assert.equal("RUNTIME_ERROR: attempt to load chunk with wrong mode", res.error)
    end)

    it("a non-string error object", function()
      assert.equal("RUNTIME_ERROR: task:1: 42", result(lua("error(42)")).error) -- as Lua does
      assert.equal("RUNTIME_ERROR: 42", result(lua("error(42, 0)")).error)
      assert.equal("RUNTIME_ERROR: (error object is a table value)", result(lua("error({})")).error)
    end)

    it("a JavaScript exception", function()
      local res = result(js("null.x"))
      assert.matches("^RUNTIME_ERROR: TypeError: Cannot read properties of null", res.error)
      assert.equal(1, res.exitCode)
    end)

    it("messages are one printable line", function()
      local res = result(lua("error('a\\nb\\0c\\255')"))
      assert.equal("RUNTIME_ERROR: task:1: a b c?", res.error)
    end)
  end)

  describe("input", function()
    it("reaches Lua as tables, with JSON null as `null`", function()
      local res = result(lua("print(input.n, input.s, #input.a, input.a[2] == null, input.o.k)",
        { input = { n = 1.5, s = "x", a = { 1, cjson.null, 3 }, o = { k = true } } }))
      assert.equal(H.sha("1.5\tx\t3\ttrue\ttrue"), res.actualHash)
    end)

    it("reaches JavaScript as a value of the task's realm", function()
      local res = result(js("console.log(input.a[1], Array.isArray(input.a), input.o instanceof Object)",
        { input = { a = { 1, 2 }, o = {} } }))
      assert.equal(H.sha("2 true true"), res.actualHash)
    end)

    it("is nil/undefined when absent", function()
      assert.equal(H.sha("nil"), result(lua("print(input)")).actualHash)
      assert.equal(H.sha("undefined"), result(js("console.log(input)")).actualHash)
    end)

    it("an input too large for memoryBytes is the task's MEMORY_LIMIT", function()
      local big = {}
      for i = 1, 50000 do big[i] = ("item %d"):format(i) end
      local res = result(lua("print(#input)", { input = big, memoryBytes = 1024 * 1024 }))
      assert.equal("MEMORY_LIMIT", res.error)
    end)
  end)

  describe("task validation: BAD_TASK, exit 0", function()
    local function bad(stdin, pattern, jobid)
      local res = result(stdin)
      assert.matches("^BAD_TASK: " .. pattern, res.error)
      assert.equal(-1, res.exitCode)
      assert.equal(cjson.null, res.actualHash)
      if jobid then assert.equal(jobid, res.jobId) else assert.equal(cjson.null, res.jobId) end
    end
    local function enc(t) return cjson.encode(t) end

    it("not JSON", function() bad("{nope", "task is not valid JSON") end)
    it("empty stdin", function() bad("", "task is not valid JSON") end)
    it("not an object", function() bad("[1,2]", "task must be a JSON object") end)
    it("no jobId", function() bad(enc { language = "lua", code = "" }, "jobId must be") end)
    it("empty jobId", function() bad(enc { jobId = "", language = "lua", code = "" }, "jobId must be") end)
    it("jobId with a control character", function()
      bad(enc { jobId = "a\nb", language = "lua", code = "" }, "jobId must be")
    end)
    it("jobId with invalid UTF-8", function()
      bad(enc { jobId = "a\255b", language = "lua", code = "" }, "jobId must be")
    end)
    it("jobId too long", function()
      bad(enc { jobId = ("j"):rep(257), language = "lua", code = "" }, "jobId must be")
    end)
    it("unknown language", function()
      bad(enc { jobId = "j", language = "python", code = "" }, "language must be", "j")
    end)
    it("code not a string", function()
      bad(enc { jobId = "j", language = "lua", code = 1 }, "code must be a string", "j")
    end)
    for _, c in ipairs {
      { "timeoutMs", 0 }, { "timeoutMs", 1.5 }, { "timeoutMs", 600001 }, { "timeoutMs", "10" },
      { "memoryBytes", 1000 }, { "memoryBytes", 2 ^ 40 }, { "outputLimitBytes", -1 },
      { "outputLimitBytes", 2 ^ 31 }, { "instructionLimit", 10 },
    } do
      it(("%s = %s"):format(c[1], tostring(c[2])), function()
        bad(enc { jobId = "j", language = "lua", code = "", [c[1]] = c[2] }, c[1] .. " must be an integer", "j")
      end)
    end
    it("NaN and Infinity are not numbers", function()
      bad('{"jobId":"j","language":"lua","code":"","timeoutMs":Infinity}', "task is not valid JSON")
    end)
    it("a task over 2 MiB (10 MB of code)", function()
      bad(enc { jobId = "j", language = "lua", code = ("-- padding\n"):rep(1024 * 1024) }, "task larger than 2097152")
    end)
    it("a task just under 2 MiB runs", function()
      local code = "print(1)\n" .. ("-"):rep(2 * 1024 * 1024 - 200)
      local res = result(enc(lua(code)))
      assert.equal(cjson.null, res.error)
    end)
    it("unknown fields are ignored", function()
      local t = lua("print(2 + 2)")
      t.somethingNew = { 1, 2 }
      assert.equal(H.SHA_4, result(t).actualHash)
    end)
  end)

  describe("arguments", function()
    local function args(list)
      return H.run(lua("print(1)"), { iso = false, args = list })
    end

    it("unknown options exit 2 with nothing on stdout", function()
      for _, a in ipairs { { "--bogus" }, { "--isolation", "chroot" }, { "--uid", "0" }, { "--uid", "x" },
        { "--ro", "relative/path" }, { "--isolation" }, { "--selftest-probe", "nope" },
        { "--isolation", "none", "--selftest-probe", "ptrace" }, { "--warm", "ruby" },
        { "--memory-bytes", "16777216" }, { "--warm", "lua", "--timeout-ms", "0" },
        { "--warm", "lua", "--memory-bytes", "12x" }, { "--warm", "lua", "--selftest-probe", "ptrace" } } do
        local r = args(a)
        assert.equal(2, r.rc, table.concat(a, " "))
        assert.equal("", r.stdout)
        assert.matches("usage", r.stderr)
      end
    end)

    it("--isolation=none form and the development warning on stderr", function()
      local r = args { "--isolation=none" }
      assert.equal(H.sha("1"), H.one_result(r).actualHash)
      assert.matches("WARNING: %-%-isolation none", r.stderr)
    end)

    it("lowers its session's priority only when it leads the session", function()
      -- the host starts each worker in a session of its own; run from a
      -- shell (here: busted's session) it must leave that session alone
      local function ours()
        local f = assert(io.open("/proc/self/autogroup"))
        local s = f:read("*a")
        f:close()
        return tonumber(s:match("nice (%-?%d+)"))
      end
      local w = io.open("/proc/self/autogroup", "w")
      if not (w and w:write("0") and w:close()) or ours() ~= 0 then
        pending("autogroups off, or this session's nice cannot be reset")
        return
      end
      assert.equal(H.sha("1"), H.one_result(args {}).actualHash)
      assert.equal(0, ours())
    end)

    it("--version and --help exit 0", function()
      local out, rc = H.sh(H.sh_quote(H.bin) .. " --version")
      assert.equal(0, rc)
      assert.matches("^workproof%-worker %d", out)
      out, rc = H.sh(H.sh_quote(H.bin) .. " --help")
      assert.equal(0, rc)
      assert.matches("usage", out)
    end)
  end)

  describe("determinism", function()
    -- both runs must succeed (a hash of real output, no error) and agree:
    -- two failed runs with the same nil hash prove nothing
    local function twice(task)
      local ra, rb = result(task), result(task)
      for _, r in ipairs({ ra, rb }) do
        assert.is_true(r.errorClass == nil or r.errorClass == cjson.null, tostring(r.error))
        assert.matches("^%x+$", r.actualHash)
        assert.is_not.equal(EMPTY, r.actualHash)
      end
      assert.equal(ra.actualHash, rb.actualHash)
      return ra.actualHash
    end

    it("Lua: pairs order, table addresses and string hashing are the same every run", function()
      twice(lua([[
        local t, keys = {}, {}
        for i = 1, 200 do t["k" .. i] = i; t[{}] = i end
        for k, v in pairs(t) do keys[#keys + 1] = tostring(k) .. "=" .. v end
        print(table.concat(keys, ","), {}, print, coroutine.create(print), string.format("%p", {}))
      ]]))
    end)

    it("JavaScript: Math.random, Date and object printing are the same every run", function()
      twice(js([=[console.log(Math.random(), Math.random(), new Date(), { a: [1, { b: 2 }] }, new Map([[1, 2]]))]=]))
    end)

    it("Lua output does not depend on the isolation mode", function()
      local t = lua("local t = {} for i = 1, 50 do t[{}] = i end " ..
        "for k, v in pairs(t) do io.write(v, ' ') end print({})")
      assert.equal(result(t, { iso = "sandbox" }).actualHash, result(t, { iso = "none" }).actualHash)
    end)
  end)

  describe("sandbox unavailable: exit 3, nothing on stdout, never unsandboxed", function()
    it("when user namespaces cannot be created", function()
      local r = H.run(lua("print(1)"), {
        iso = "sandbox",
        prefix = "unshare -Ur sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec \"$0\" \"$@\"'",
      })
      assert.equal(3, r.rc, r.stderr)
      assert.equal("", r.stdout)
      assert.matches("sandbox unavailable: cannot create namespaces", r.stderr)
    end)

    it_sandbox_root("when an unprivileged worker may not map the requested uid", function()
      local r = H.run(lua("print(1)"), {
        iso = "sandbox", args = { "--uid", "1234" },
        prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups",
      })
      assert.equal(3, r.rc, r.stderr)
      assert.equal("", r.stdout)
      assert.matches("sandbox unavailable: write /proc/%d+/uid_map", r.stderr)
    end)

    it_sandbox_root("an unprivileged worker maps its own uid and works", function()
      local res = result(lua("print(2 + 2)"),
        { iso = "sandbox", prefix = "setpriv --reuid=65534 --regid=65534 --clear-groups" })
      assert.equal(H.SHA_4, res.actualHash)
    end)
  end)

  describe("warm sandbox (--warm: made before its task arrives)", function()
    local function warm(lang, extra)
      local a = { "--warm", lang }
      for _, x in ipairs(extra or {}) do a[#a + 1] = x end
      return a
    end

    it("gives every deterministic task the hash a cold worker gives it", function()
      for _, t in ipairs {
        lua("print(tostring({}), tostring(print), input.n, input.s, next({a = 1, b = 2}))",
          { inputJson = '{"n": 1.0000000000000002, "s": "\\u00fc"}' }),
        lua("local t = {} for i = 1, 50 do t['k' .. i] = {} end for k, v in pairs(t) do io.write(k, tostring(v)) end"),
        js("console.log(Math.random(), new Date().toISOString(), JSON.stringify(input))",
          { inputJson = '{"b": -0, "a": [1e21, 0.1]}' }),
      } do
        local cold = result(t)
        local hot = result(t, { args = warm(t.language, { "--timeout-ms", "10000" }) })
        assert.equal(cjson.null, cold.error)
        assert.equal(cold.actualHash, hot.actualHash, t.code)
        assert.equal(cold.outputBytes, hot.outputBytes)
      end
    end)

    it("has its sandbox and runtime (node) running before the task is written", function()
      -- a heap size of its own names this test's node (other runs may have theirs)
      local res, r = result(js("console.log(2 + 2)", { memoryBytes = 77594624 }), { args = warm("javascript",
        { "--timeout-ms", "10000", "--memory-bytes", "77594624" }), delay = 1.5,
        during = "pgrep -f '^node --max-old-space-size=74 .*js_runner' >/dev/null && echo node-ready" })
      assert.equal(H.SHA_4, res.actualHash)
      assert.matches("node%-ready", r.during)
    end)

    it("starts the deadline at the hand-over, not at the spawn", function()
      -- written 1.2 s after the spawn, a 500 ms task still has its 500 ms
      local res = result(lua("print(2 + 2)", { timeoutMs = 500 }), { args = warm("lua"), delay = 1.2 })
      assert.equal(H.SHA_4, res.actualHash)
      assert.equal(cjson.null, res.error)
      res = result(lua("while true do end", { timeoutMs = 300 }), { args = warm("lua"), delay = 0.5 })
      assert.equal("TIMEOUT", res.errorClass)
    end)

    it("refuses a task its sandbox was not made for (SANDBOX, never run)", function()
      for _, c in ipairs {
        { js("console.log(1)"), warm("lua") },
        { lua("print(1)", { memoryBytes = 33554432 }), warm("lua") },
        { lua("print(1)", { timeoutMs = 40000 }), warm("lua", { "--timeout-ms", "30000" }) },
      } do
        local res, r = result(c[1], { args = c[2] })
        assert.equal(0, r.rc)
        assert.equal("SANDBOX", res.errorClass)
        assert.matches("does not fit this warm sandbox", res.error)
        assert.equal(cjson.null, res.actualHash)
      end
      -- made for it: runs
      local res = result(lua("print(1)", { memoryBytes = 33554432 }),
        { args = warm("lua", { "--memory-bytes", "33554432" }) })
      assert.equal(H.sha("1"), res.actualHash)
    end)

    it("answers a malformed task BAD_TASK, and no task at all too, leaving no process", function()
      local res = result("{nope", { args = warm("lua") })
      assert.equal("BAD_TASK", res.errorClass)
      res = result("", { args = warm("javascript", { "--memory-bytes", "77594624" }) })
      assert.equal("BAD_TASK", res.errorClass)
      local out = H.sh("sleep 0.3; pgrep -f '^node --max-old-space-size=74 .*js_runner' | wc -l")
      assert.equal("0", out:match("%d+"))
    end)

    it("--isolation none takes a task warm too, Lua and JavaScript", function()
      local res = result(lua("print(input.x)", { inputJson = '{"x": 7}' }), { iso = "none", args = warm("lua") })
      assert.equal(H.sha("7"), res.actualHash)
      -- node there runs the runner by its real path: the build tree's
      -- runtime dir is a link, which node's permission model refused
      for _, args in ipairs({ {}, warm("javascript") }) do
        res = result(js("console.log(input.x)", { inputJson = '{"x": 7}' }), { iso = "none", args = args })
        assert.equal(H.sha("7"), res.actualHash, tostring(res.error))
      end
    end)
  end)

  describe("teardown", function()
    -- The processes of a running sandbox: Lua is one (the runtime is the
    -- namespace's pid 1), JavaScript two (an init, node as pid 2). Killing
    -- the worker must take them all.
    local function kill_worker_during(task, nprocs)
      local tmp = os.tmpname()
      H.write_file(tmp, cjson.encode(task))
      local out = H.sh(([[
        %s --isolation sandbox < %s > /dev/null 2>&1 & w=$!
        for i in $(seq 200); do
          top=$(pgrep -P $w); sub=$([ -n "$top" ] && pgrep -P $top)
          [ $(echo $top $sub | wc -w) -ge %d ] && break; sleep 0.05
        done
        sleep 0.2; sub=$(pgrep -P $top)
        echo "top:$top:$(awk '/^NSpid:/ {print $NF}' /proc/$top/status)"
        echo "sub:$sub:$(awk '/^NSpid:/ {print $NF}' /proc/$sub/status 2>/dev/null)"
        kill -9 $w; wait $w 2>/dev/null; sleep 0.3
        for p in $top $sub; do
          s=$(awk '/^State:/ {print $2}' /proc/$p/status 2>/dev/null)
          [ -n "$s" ] && [ "$s" != Z ] && echo "alive:$p:$s"
        done
      ]]):format(H.sh_quote(H.bin), H.sh_quote(tmp), nprocs))
      os.remove(tmp)
      return out
    end

    it("killing the worker kills the whole sandbox (Lua: the runtime alone, pid 1)", function()
      local out = kill_worker_during(lua("while true do end", { timeoutMs = 20000 }), 1)
      assert.matches("top:%d+:1\n", out)
      assert.matches("sub::\n", out) -- no second process
      assert.not_matches("alive:", out)
    end)

    it("killing the worker kills the whole sandbox (JavaScript: init and node as pid 2)", function()
      local out = kill_worker_during(js("while (true) {}", { timeoutMs = 20000 }), 2)
      assert.matches("top:%d+:1\n", out)
      assert.matches("sub:%d+:2\n", out)
      assert.not_matches("alive:", out)
    end)
  end)
end)
