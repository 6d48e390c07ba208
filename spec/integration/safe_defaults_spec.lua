-- SPDX-License-Identifier: MIT
-- The product as a user starts it, with no config of the spec's own:
--   * `workproof serve` with no config file (what `make serve` runs), in a
--     fresh directory, on the real port 127.0.0.1:8402;
--   * the same as pid 1 of its own pid namespace (a container without an
--     init): no zombie left behind;
--   * the `make run` stack exactly as make starts it (examples/run-local.sh:
--     anvil on 8545, the contracts, the controller on 8402 with
--     examples/local.lua), twice in a row.
-- Each proves every protection of the embedded defaults: all five policies
-- loaded, 429 + Retry-After after 100 requests a minute and a block that
-- holds, unknown taskType 400, a blocked code pattern, the per-client and
-- global worker caps, the breaker opening on real infrastructure failures
-- and never on what a client sends.
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"
local cjson = require "cjson.safe"

local URL = "http://127.0.0.1:8402"
local FOUR = wp.hex(wp.sha256("4"))
local SRC = host.source_dir
local BUILD = h.build:find("^/") and h.build or (SRC .. "/" .. h.build)

local function body(t)
  local b = { taskType = "code-execution", language = "lua", code = "print(2 + 2)", expectedHash = FOUR }
  for k, v in pairs(t or {}) do b[k] = v end
  return cjson.encode(b)
end

-- a task that holds its worker (and its slot) until its deadline: 5 s, and
-- 15 s where 110 paid requests must all arrive while the first still runs
local SLOW = body { code = "local x = 0 while true do x = x + 1 end", timeoutSeconds = 5 }
local SLOWER = body { code = "local x = 0 while true do x = x + 1 end", timeoutSeconds = 15 }

local function post(b, from, headers)
  local st, hd, raw = h.http("POST", URL .. "/verify", b, headers, { from = from })
  return st, cjson.decode(raw or "") or raw, hd or {}
end

-- fn(i) for i = 1..n at once, each in its own coroutine; waits for all.
local function together(n, fn)
  local out, left = {}, n
  for i = 1, n do
    wp.spawn(function()
      local ok, a, b, c = pcall(fn, i)
      out[i] = ok and { a, b, c } or { nil, a }
      left = left - 1
    end)
  end
  while left > 0 do wp.sleep(0.05) end
  return out
end

-- Start a long-running command through /bin/sh, wait for the controller.
local function start(cmd)
  return (h.spawn_until({ file = "/bin/sh", args = { "-c", cmd }, timeout = 900, stderr_limit = 1048576 },
    "listening on 127%.0%.0%.1:8402", cmd))
end

local function stop(p)
  p:kill(15)   -- the whole group: sh, the controller, anvil
  while p:read() do end
  return p:wait()
end

local function info()
  local _, _, raw = h.http("GET", URL .. "/info")
  return cjson.decode(raw)
end

local function breaker_state()
  local _, _, raw = h.http("GET", URL .. "/metrics")
  for state, v in raw:gmatch('wp_breaker_state{state="([%w_]+)"} (%d)') do
    if v == "1" then return state end
  end
end

-- The protections both stacks must show. `pay(i)` returns the headers of a
-- paid request (the make-run stack takes payments) or nil.
local function protections(pay, net)
  pay = pay or function() return nil end

  it("loads all five policies", function()
    local i = info()
    assert.same({ "circuit_breaker", "code_patterns", "rate_limit", "task_types", "worker_threshold" }, i.policies)
  end)

  it("answers a verification", function()
    local st, r = post(body(), net .. ".1", pay(1))
    assert.equal(200, st, cjson.encode(r))
    assert.equal("VALID", r.result)
  end)

  it("refuses an unknown taskType with 400", function()
    local st, r = post(body { taskType = "no-such-type" }, net .. ".2")
    assert.equal(400, st)
    assert.equal("EVALIDATION", r.code)
    assert.truthy(r.details.taskType)
  end)

  it("blocks a forbidden code pattern", function()
    local st, r = post(body { language = "javascript", code = "const fs = require('fs'); console.log(4)" },
      net .. ".2")
    assert.equal(400, st)
    assert.equal("EBLOCKED", r.code)
  end)

  it("refuses input a double cannot hold with 400 (the client's fault, not the host's)", function()
    local st, r = post(body():gsub("}$", ',"inputData":{"x":1e400}}'), net .. ".2")
    assert.equal(400, st)
    assert.matches("^inputData%.x: number out of range", r.details.inputData)
    assert.equal("closed", breaker_state())
  end)

  it("429 + Retry-After after 100 requests a minute, and the block holds", function()
    local from = net .. ".3"
    -- GCRA: a request frees one slot every 0.6 s, so the 429 comes after
    -- 100 + (the seconds the first 100 took) / 0.6 requests, never before 100
    local t0, n = host.now(), 0
    local st, r, hd
    repeat
      n = n + 1
      st, r, hd = post(body { code = ("print(%d)"):format(n) }, from)
    until st == 429 or n > 200
    assert.equal(429, st)
    assert.truthy(n > 100 and n <= 101 + math.ceil((host.now() - t0) / 0.6), "429 at request " .. n)
    assert.equal("ERATELIMIT", r.code)
    local retry = tonumber(hd["retry-after"])
    assert.truthy(retry and retry >= 55 and retry <= 60, tostring(hd["retry-after"]))
    -- blocked: refused again, the block not extended by asking
    local st2, _, hd2 = post(body(), from)
    assert.equal(429, st2)
    assert.truthy(tonumber(hd2["retry-after"]) <= retry)
    -- another client is not affected
    assert.is_not.equal(429, (post(body(), net .. ".4")))
  end)

  it("caps the workers of one client at 10", function()
    local res = together(11, function(i) return post(SLOW, net .. ".5", pay(100 + i)) end)
    local capped, ran = 0, 0
    for _, r in ipairs(res) do
      if r[1] == 503 then
        capped = capped + 1
        assert.equal("ECAPACITY", r[2].code)
        assert.equal("client", r[2].details.workers)
        assert.truthy(tonumber(r[3]["retry-after"]))
      elseif r[1] == 200 then
        ran = ran + 1
        assert.equal("TIMEOUT", r[2].result)
      end
    end
    assert.equal(1, capped)
    assert.equal(10, ran)
  end)

  it("caps the workers of all clients at 100, and stays responsive while they loop", function()
    -- 11 clients x 10 jobs: every client within its own cap, 110 > 100.
    -- Meanwhile /health is asked every 0.2 s: a hundred busy tasks must not
    -- starve the host (tasks run at the lowest priority, their sessions'
    -- autogroups too: worker/main.c)
    local slowest, busy = 0, true
    wp.spawn(function()
      wp.sleep(1)
      while busy do
        local t = host.now()
        h.http("GET", URL .. "/health")
        slowest = math.max(slowest, host.now() - t)
        wp.sleep(0.2)
      end
    end)
    local res = together(110, function(i)
      return post(SLOWER, ("%s.%d"):format(net, 10 + (i % 11)), pay(200 + i))
    end)
    busy = false
    -- (10-17 s before the fix in a release build; a sanitizer build, `make
    -- test-asan` sets ASAN_OPTIONS, is several times slower at everything)
    local bound = os.getenv("ASAN_OPTIONS") and 9 or 6
    assert.truthy(slowest < bound, ("/health took %.1f s while the tasks ran"):format(slowest))
    local capped, ran, other = 0, 0, {}
    for _, r in ipairs(res) do
      if r[1] == 503 and r[2].code == "ECAPACITY" then
        assert.equal("capacity", r[2].details.workers)
        capped = capped + 1
      elseif r[1] == 200 then
        ran = ran + 1
      else
        other[#other + 1] = tostring(r[1]) .. " " .. cjson.encode(r[2])
      end
    end
    assert.same({}, other)
    assert.equal(10, capped)
    assert.equal(100, ran)
    -- a hundred tasks that loop until their deadline are the clients' doing
    assert.equal("closed", breaker_state())
  end)
end

describe("safe defaults #integration", function()
  describe("workproof serve with no config file", function()
    local dir, p
    setup(function()
      dir = h.tmpdir()
      p = start(("cd %s && exec %s/workproof serve"):format(h.q(dir), h.q(BUILD)))
    end)
    teardown(function() if p then stop(p) end end)

    protections(nil, "127.0.1")

    it("runs with the state under ./var of its working directory", function()
      assert.truthy(h.slurp(dir .. "/var/workproof.db"))
    end)

    it("says in /info what guards it: every protection on, at its default", function()
      assert.same({
        rateLimit = { limit = 100, window = 60, blockSeconds = 60 },
        workers = { maxActive = 100, perClient = 10, warm = { lua = 4, javascript = 2 }, zygote = true,
          sandboxNet = "zygote" },
        breaker = { failureThreshold = 10, window = 60, countAsFailure = { "infra" } },
        codePatterns = true, taskTypes = true,
        policyBudget = { loadMs = 2000, hookMs = 250, memMb = 256 },
        http = { maxConnectionsPerClient = 64, headerTimeout = 10, bodyTimeout = 30, fdReserve = 64,
          maxBody = 1048576, reuseport = false, processes = 1, cors = false, shutdownGrace = 65 },
        admin = "loopback", dashboard = "loopback",
        task = { maxCode = 102400, timeoutMin = 5, timeoutMax = 60, memoryBytes = 268435456,
          outputLimitBytes = 1048576 },
        logging = { level = "info", format = "text", accessLog = true },
        storage = { backend = "sqlite", sharedLimits = false, hostLease = 15, jobRetention = 604800,
          pruneInterval = 60, pruneBatch = 500 },
      }, info().protections)
      -- and the features: the sandbox, both languages, reloads on file changes; no chain, no payments
      assert.same({ backend = "sandbox", languages = { "javascript", "lua" }, payments = false, chain = false,
        asyncMode = true, hotReload = true }, info().features)
    end)

    it("keeps warm sandboxes ready (4 Lua, 2 JavaScript) and verifies on them", function()
      local function warm_now()
        local _, _, raw = h.http("GET", URL .. "/metrics")
        local n = {}
        for lang, v in raw:gmatch('wp_workers_warm{language="(%a+)"} (%d+)') do n[lang] = tonumber(v) end
        n.used = tonumber(raw:match("\nwp_workers_warm_used_total (%d+)"))
        -- the controller's children (a worker's sandbox processes share its command line)
        local ps = h.run("/bin/sh", { "-c", ("pgrep -P %d -f '^[^ ]*workproof-worker .*--warm lua' | wc -l; " ..
          "pgrep -P %d -f '^[^ ]*workproof-worker .*--warm javascript' | wc -l"):format(info().pid, info().pid) })
        n.procs_lua, n.procs_js = ps:match("(%d+)%s+(%d+)")
        return n
      end
      local n
      for _ = 1, 100 do
        n = warm_now()
        if n.lua == 4 and n.javascript == 2 and n.procs_lua == "4" and n.procs_js == "2" then break end
        wp.sleep(0.1)
      end
      assert.same({ 4, 2, "4", "2" }, { n.lua, n.javascript, n.procs_lua, n.procs_js })
      -- the sandboxes' processes, by the pid each has in its namespace: a Lua
      -- sandbox is the runtime alone (pid 1), a JavaScript one an init and node
      local shapes = h.run("/bin/sh", { "-c", ([[
        for w in $(pgrep -P %d -f '^[^ ]*workproof-worker .*--warm (lua|javascript)'); do
          s=$(tr '\0' ' ' < /proc/$w/cmdline | grep -o -- '--warm [a-z]*' | cut -d' ' -f2)
          for c in $(pgrep -P $w); do
            s="$s $(awk '/^NSpid:/ {print $NF}' /proc/$c/status)"
            for g in $(pgrep -P $c); do s="$s/$(awk '/^NSpid:/ {print $NF}' /proc/$g/status)"; done
          done
          echo "$s"
        done | sort | uniq -c | sed 's/^ *//']]):format(info().pid) })
      assert.equal("2 javascript 1/2\n4 lua 1\n", shapes)
      local st, res = post(body(), "127.0.1.70")
      assert.equal(200, st)
      assert.equal("VALID", res.result)
      assert.is_true(warm_now().used > n.used)
      -- one worker zygote (worker.zygote, on by default), and the warm worker
      -- that replaced the used one is its fork: mapped where it is (an exec
      -- would have placed it anew)
      local forked = [[
        z=$(pgrep -P %d -f '^[^ ]*workproof-worker --zygote$')
        [ "$(echo "$z" | wc -w)" = 1 ] || { echo "zygotes: $z"; exit; }
        at() { grep -m1 'workproof-worker$' /proc/$1/maps | cut -d- -f1; }
        for w in $(pgrep -P %d -f '^[^ ]*workproof-worker .*--warm lua'); do
          [ "$(at $w)" = "$(at $z)" ] && echo forked
        done | sort -u]]
      local out
      assert.is_true(h.eventually(function()
        out = h.run("/bin/sh", { "-c", forked:format(info().pid, info().pid) })
        return out == "forked\n"
      end), out)
      -- as /info says (sandboxNet "zygote"): every warm sandbox (pid 1 of its
      -- pid namespace) the zygote forked is in the zygote's net namespace,
      -- not the host's, and that namespace holds only a loopback, down. A
      -- warm worker made while the zygote was not yet ready (a loaded
      -- machine at start) was exec'd instead and has one of its own.
      local nets = h.run("/bin/sh", { "-c", ([=[
        z=$(pgrep -P %d -f '^[^ ]*workproof-worker --zygote$')
        at() { grep -m1 'workproof-worker$' /proc/$1/maps | cut -d- -f1; }
        echo "zygote $z $(readlink /proc/$z/ns/net) host $(readlink /proc/self/ns/net)"
        nsenter --net=/proc/$z/ns/net ip -o link | cut -d' ' -f2,3
        for w in $(pgrep -P %d -f '^[^ ]*workproof-worker .*--warm'); do
          f=exec; [ "$(at $w)" = "$(at $z)" ] && f=forked
          for c in $(pgrep -P $w); do
            grep -q '^NSpid:.*[[:space:]]1$' /proc/$c/status && echo "$f $(readlink /proc/$c/ns/net)"
          done
        done]=]):format(info().pid, info().pid) })
      local z, zn, hn = nets:match("^zygote (%d+) (%S+) host (%S+)\n")
      assert.is_string(zn, nets)
      assert.not_equal(hn, zn)
      assert.equal("lo: <LOOPBACK>", nets:match("\n([^\n]*)\n"), nets)
      local nforked, total = 0, 0
      for how, net in nets:gmatch("\n(%a+) (net:%S+)") do
        total = total + 1
        if how == "forked" then
          nforked = nforked + 1
          assert.equal(zn, net, nets)
        else
          assert.is_true(net ~= zn and net ~= hn, nets)
        end
      end
      assert.equal(6, total, nets)
      assert.is_true(nforked >= 1, nets)
      -- and the zygote maps all its code before it serves, so a fork copies
      -- those page-table entries (no setting, nothing in /info: a cost, not
      -- a guard)
      h.assert_code_mapped(z)
    end)

    it("records each live worker with its kernel start time under ./var/workers (what a restart reaps by)", function()
      local owner = require "workproof.owner"
      local function records()
        local out = {}
        for _, id in ipairs(h.ls(dir .. "/var/workers")) do
          for _, slot in ipairs(h.ls(dir .. "/var/workers/" .. id)) do   -- 1, 2, ... (and the owner file)
            local pid, st = (h.read(dir .. "/var/workers/" .. id .. "/" .. slot) or ""):match("^(%d+) (%S+)")
            if pid and tonumber(slot) then out[#out + 1] = { pid = tonumber(pid), start = st } end
          end
        end
        return out
      end
      -- the six idle warm workers (4 Lua, 2 JavaScript), each recorded once it is in the pool
      local recs
      assert.is_true(h.eventually(function()
        recs = records()
        return #recs == 6
      end), cjson.encode(recs))
      for _, r in ipairs(recs) do
        assert.equal((owner.starttime(r.pid)), r.start, "pid " .. r.pid)
        local cmdline = (h.read("/proc/" .. r.pid .. "/cmdline") or ""):gsub("%z", " ")
        assert.matches("workproof%-worker .*%-%-warm", cmdline)
      end
    end)

    it("reads the body in one pass: inputData as sent, node's taskHash, the task types' input limit", function()
      local b = '{"taskType":"data-transformation","language":"lua","code":"print(input.a[1] + input.b)",'
        .. '"expectedHash":"' .. wp.hex(wp.sha256("101.5")) .. '","inputData":{"b":1.50,"a":[1e2,-0],"1":"\\u00e9"}}'
      local st, res = post(b, "127.0.1.71")
      assert.equal(200, st)
      assert.equal("VALID", res.result)
      local want = h.run("/usr/bin/env", { "node", "-e", [[
const t = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(require('crypto').createHash('sha256').update(JSON.stringify({ taskType: t.taskType,
  code: t.code, expectedHash: t.expectedHash, inputData: t.inputData, language: t.language })).digest('hex'));]] }, b)
      assert.equal(want, res.taskHash)
      -- the default registry's 64 KiB limit, measured without decoding inputData
      st, res = post(body { taskType = "data-transformation", inputData = ("x"):rep(65537) }, "127.0.1.71")
      assert.equal(400, st)
      assert.equal("larger than 65536 bytes (max_input_bytes of data-transformation)", res.details.inputData)
      -- what JSON.parse reads differently is the client's error
      st, res = post(body():gsub("}$", ',"inputData":"\\ud800"}'), "127.0.1.71")
      assert.equal(400, st)
      assert.matches("^malformed JSON: lone surrogate in string at byte %d+$", res.details.body)
    end)

    it("has the operator's features on: request ids, the API document, build info; CORS off", function()
      local st, hd = h.http("POST", URL .. "/verify", body(), { ["x-request-id"] = "safe-defaults-1" },
        { from = "127.0.1.60" })
      assert.equal(200, st)
      assert.equal("safe-defaults-1", hd["x-request-id"])
      local _, hd2 = h.http("GET", URL .. "/health-not-a-route")
      assert.matches("^%x+$", hd2["x-request-id"] or "")
      local st3, _, api = h.http("GET", URL .. "/openapi.json")
      assert.equal(200, st3)
      assert.equal("3.1.0", cjson.decode(api).openapi)
      local _, _, m = h.http("GET", URL .. "/metrics")
      assert.matches('workproof_build_info{[^}]*version="', m)
      assert.equal(405, (h.http("OPTIONS", URL .. "/verify", nil, { origin = "https://app.example" })))
    end)

    it("a second serve with no config on the same port fails loudly (reuseport is off)", function()
      local other = h.tmpdir()
      local out, st = h.run("/bin/sh", { "-c", ("cd %s && exec %s/workproof serve"):format(h.q(other), h.q(BUILD)) })
      assert.equal("", out)
      assert.is_not.equal(0, st.exit_status)
      assert.matches("ELISTEN: 127%.0%.0%.1:8402: address already in use", st.stderr)
    end)

    it("logs an access line per request and a line per verdict; SIGTERM drains and exits 0", function()
      local st = stop(p)
      p = nil
      assert.same({ 0, 0 }, { st.exit_status, st.term_signal }, st.stderr)
      assert.matches("%[info%] SIGTERM: draining", st.stderr)
      assert.matches("%[info%] stopped", st.stderr)
      assert.matches('%[info%] [^\n]*requestId=safe%-defaults%-1[^\n]*status=200', st.stderr)
      assert.matches("%[info%] [^\n]*verdict=VALID", st.stderr)
    end)
  end)

  it("refuses to start on a flow that would run code before it is paid for", function()
    local dir = h.tmpdir()
    h.write(dir .. "/unsafe.lua", [[return {
  state_dir = "]] .. dir .. [[/var",
  chain = { enabled = true, chain_id = 31337, registry = "0x5FbDB2315678afecb367f032d93F642f64180aa3" },
  payments = { enabled = true },
  flow = { "validate", "spawn", "result", "payment", "cleanup" },
}]])
    local out, st = h.run(BUILD .. "/workproof", { "serve", dir .. "/unsafe.lua", "--listen", "127.0.0.1:0" })
    assert.equal(2, st.exit_status, out .. st.stderr)
    assert.truthy(st.stderr:find("flow[4]: stage 'payment' (phase pay) after 'result' (phase run)", 1, true),
      st.stderr)
  end)

  describe("workproof serve with no config file as pid 1 (a container without an init)", function()
    it("verifies, and leaves no zombie behind (the sandboxes' pid 1s are reaped)", function()
      if not h.is_root() then return pending("a pid namespace of its own needs root") end
      local dir = h.tmpdir()
      local p = start(("cd %s && exec unshare --fork --pid --mount-proc %s/workproof serve"):format(h.q(dir),
        h.q(BUILD)))
      local ok, err = pcall(function()
        local pid = assert(h.child_of(p.pid))
        for i = 1, 6 do
          local st, r = post(body(), "127.0.4." .. i)
          assert.equal(200, st)
          assert.equal("VALID", r.result)
        end
        wp.sleep(1)   -- the sandboxes' teardown
        assert.same({}, h.zombie_children(pid))
      end)
      stop(p)
      assert(ok, err)
    end)
  end)

  describe("the breaker on the embedded defaults", function()
    it("opens after 10 infrastructure failures (no worker binary), not on client input", function()
      local dir = h.tmpdir()
      assert(os.execute("mkdir -p " .. h.q(dir .. "/empty")))
      local p = start(("cd %s && WORKPROOF_BUILD=%s exec %s/workproof serve"):format(h.q(dir),
        h.q(dir .. "/empty"), h.q(BUILD)))
      local ok, err = pcall(function()
        -- client-made trouble first: none of it counts
        for _ = 1, 12 do
          assert.equal(400, (post(body():gsub("}$", ',"inputData":[1e400]}'), "127.0.2.1")))
        end
        assert.equal("closed", breaker_state())
        for i = 1, 10 do
          local st, r = post(body(), "127.0.2." .. (i + 1))
          assert.equal(200, st)
          assert.equal("ERROR", r.result)
          assert.truthy(r.refundEligible)
          assert.truthy(r.error:find("^ESPAWN"), r.error)
        end
        local st, r, hd = post(body(), "127.0.2.20")
        assert.equal(503, st)
        assert.equal("EBREAKER", r.code)
        assert.truthy(tonumber(hd["retry-after"]))
        assert.equal("open", breaker_state())
      end)
      stop(p)
      assert(ok, err)
    end)
  end)

  describe("the make run stack (examples/run-local.sh), twice", function()
    local ACCT1 = h.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
    local rpc = wp.rpc.new("http://127.0.0.1:8545")
    local p, nonce_seq = nil, 0

    local function run_stack()
      return start(("cd %s && BUILD=%s exec sh examples/run-local.sh"):format(h.q(SRC), h.q(BUILD)))
    end

    -- x402 (EIP-3009) from anvil account #1, one fresh authorization a call
    local req
    local function pay()
      if not req then
        local _, hd = h.http("POST", URL .. "/verify", body(), nil, { from = "127.0.3.250" })
        req = cjson.decode(wp.base64.decode(hd["payment-required"])).accepts[1]
      end
      nonce_seq = nonce_seq + 1
      local now = os.time()
      local auth = { from = wp.eth.address(wp.secp256k1.pubkey(ACCT1)), to = req.payTo, value = req.amount,
        validAfter = tostring(now - 60), validBefore = tostring(now + req.maxTimeoutSeconds),
        nonce = "0x" .. wp.hex(wp.sha256(("safe-defaults %d %f"):format(nonce_seq, host.now()))) }
      local digest = assert(wp.eip712.transfer_with_authorization_hash({ name = req.extra.name,
        version = req.extra.version, chainId = 31337, verifyingContract = req.asset }, auth))
      local sig = wp.secp256k1.sign(ACCT1, digest)
      sig = sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
      return { ["payment-signature"] = wp.base64.encode(cjson.encode { x402Version = 2, accepted = req,
        payload = { signature = "0x" .. wp.hex(sig), authorization = auth } }) }
    end

    -- The same legacy payment on each fresh chain: account #1's first
    -- transaction, identical bytes and hash every time.
    local function legacy_tx()
      local i = info()
      local raw, hash = wp.tx.sign_eip1559({ chainId = 31337, nonce = 0, maxPriorityFeePerGas = 1000000000,
        maxFeePerGas = 10000000000, gas = 21000, to = i.payment.txhash.payTo,
        value = i.payment.txhash.amountWei, data = "" }, ACCT1)
      return "0x" .. wp.hex(raw), "0x" .. wp.hex(hash)
    end

    local function pay_legacy(raw, hash)
      local sent = rpc:call("eth_sendRawTransaction", { raw })
      assert.equal(hash, sent)
      assert(rpc:call("evm_mine", {}))   -- the second confirmation
      local st, r = post(body(), "127.0.3.251", { ["x-402-payment"] = hash })
      return st, r
    end

    setup(function() p = run_stack() end)
    teardown(function() if p then stop(p) end end)

    protections(pay, "127.0.3")

    it("/info names the UptimeRegistry make run deployed; make uptime-demo posts its claims there", function()
      local dep = cjson.decode(h.read(SRC .. "/var/local/deployment.json"))
      assert.equal(dep.contracts.UptimeRegistry.address, info().chain.uptimeRegistry)
      -- the demo as the Makefile runs it, with a temporary state directory
      local state = h.tmpdir()
      local d = h.spawn_until({ file = BUILD .. "/workproof",
        args = { "run", SRC .. "/examples/uptime/demo.lua", state }, timeout = 300, stderr_limit = 4 * 1048576 },
        "on chain: 1 posted and checked", "uptime-demo on chain")
      local pid = d.pid
      finally(function() if h.alive(pid) then host.kill(pid, 9) end end)
      local oc = require "workproof.uptime.onchain"
      local ids = {}
      for _, e in ipairs(assert(oc.events(rpc, dep.uptime.registry, "ClaimPosted", {}))) do ids[e.leaseId] = e end
      local lease = assert(next(ids), "a claim on the registry")
      local le = assert(oc.lease(rpc, dep.uptime.registry, lease))
      assert.equal("0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f", le.consumer)   -- anvil #8
      assert.is_true(le.nextClaim >= 1)
      assert.equal(100000000, tonumber(oc.provider(rpc, dep.uptime.registry, le.provider).collateral))
      host.kill(pid, 15)
      while d:read() do end
      assert.equal(0, d:wait().exit_status)
    end)

    local first_hash
    it("takes a legacy payment on the first chain", function()
      local raw, hash = legacy_tx()
      first_hash = hash
      local st, r = pay_legacy(raw, hash)
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result)
      -- and refuses to take it twice on the same chain
      local st2, r2 = post(body(), "127.0.3.252", { ["x-402-payment"] = hash })
      assert.equal(402, st2)
      assert.truthy(cjson.encode(r2):find("already used"))
    end)

    it("the breaker opens when the chain goes away, with the store kept", function()
      os.execute("pkill -f 'anvil.* --port 8545' >/dev/null 2>&1")
      wp.sleep(0.5)
      for i = 1, 10 do
        local st, r = post(body(), "127.0.3." .. (100 + i), { ["x-402-payment"] = "0x" .. ("ab"):rep(32) })
        assert.equal(503, st, cjson.encode(r))
        assert.equal("EPAYMENT_UNAVAILABLE", r.code)
      end
      local st, r = post(body(), "127.0.3.120", { ["x-402-payment"] = "0x" .. ("ab"):rep(32) })
      assert.equal(503, st)
      assert.equal("EBREAKER", r.code)
    end)

    it("a second `make run` on a fresh chain takes the same payment again", function()
      stop(p)
      p = run_stack()
      local raw, hash = legacy_tx()
      assert.equal(first_hash, hash)   -- the fresh chain re-issues the same hash
      local st, r = pay_legacy(raw, hash)
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result)
    end)
  end)
end)
