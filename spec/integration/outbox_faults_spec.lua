-- SPDX-License-Identifier: MIT
-- The chain outbox under RPC faults (issue 18), against a real anvil behind
-- a fault-injecting JSON-RPC proxy (spec/fixtures/rpcproxy.cjs): a send that
-- fails before the node (502, connection reset), one whose answer is lost,
-- one delayed past the client's timeout, a process killed with SIGKILL
-- between recording and sending and between sending and the receipt, a
-- restart with rows in every state, a nonce taken by another sender of the
-- same key, "nonce too low" for our own mined transaction, a replacement
-- refused as underpriced, insufficient funds, and a reorg that drops a
-- mined row. Each asserts with the signer's transaction count and the
-- registry's contents (or the token / ether balances for the settle and
-- refund rows) that every write lands exactly once and the queue moves on.
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"
local store = require "workproof.store"
local chain = require "workproof.chain"
local x402 = require "workproof.x402"
local cjson = require "cjson.safe"

local KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"   -- anvil #0, the deployer
local SECRET = wp.unhex(KEY)
local ADDR = wp.eth.address(wp.secp256k1.pubkey(SECRET))
local PAYER_KEY = wp.unhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d") -- anvil #1
local PAYER = wp.eth.address(wp.secp256k1.pubkey(PAYER_KEY))

describe("chain outbox under RPC faults #integration", function()
  local a, px, direct, dbpath, dbs

  setup(function()
    a = h.start_anvil()
    px = h.start_rpc_proxy(a.url)
    direct = wp.rpc.new(a.url)
  end)
  teardown(function()
    if px then px.stop() end
    if a then a.proc:kill(15); a.proc:wait() end
  end)
  before_each(function()
    dbpath, dbs = os.tmpname(), {}
  end)
  after_each(function()
    px.control({ clear = true, release = "forward" })
    assert(direct:call("evm_setAutomine", { true }))
    for _, db in ipairs(dbs) do db:close() end
    for _, s in ipairs({ "", "-wal", "-shm" }) do os.remove(dbpath .. s) end
  end)

  local function client(opts)
    opts = opts or {}
    local db = assert(store.open(dbpath))
    dbs[#dbs + 1] = db
    return assert(chain.new { rpc = wp.rpc.new(opts.url or px.url, { timeout = opts.timeout or 30 }), db = db,
      chain_id = 31337, key = { hex = KEY }, poll = 0.05, resend_every = 0.2, lease_seconds = 1,
      reprice_after = opts.reprice_after, stuck_after = opts.stuck_after, log = opts.log })
  end

  local function task(label) return wp.sha256("outbox-faults " .. label) end

  local function attest_call(label)
    return { to = a.dep.contracts.ValidationRegistry.address,
      data = assert(wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
        { task(label), "reexecution-v1-code-execution", true, "{}" })) }
  end

  -- how many attestations the registry holds for this task
  local function attestations(label)
    local q = assert(wp.abi.encode_call("getAttestationCountForTask(bytes32)", { task(label) }))
    local raw = assert(direct:call("eth_call", { { to = a.dep.contracts.ValidationRegistry.address,
      data = "0x" .. wp.hex(q) }, "latest" }))
    return tonumber(tostring(wp.abi.decode("(uint256)", wp.unhex(raw))[1]))
  end

  -- the signer's mined transaction count
  local function count()
    return tonumber(assert(direct:call("eth_getTransactionCount", { ADDR, "latest" })))
  end

  -- poll until f() is true (a safety deadline so a regression fails rather than hangs)
  local function eventually(f, what)
    if not h.eventually(f, 60) then error("never happened: " .. what, 2) end
  end

  -- enqueue an attestation whose first send the proxy holds; returns its id
  -- once the send has reached the proxy
  local function held_send(c, name)
    px.rules({ { method = "eth_sendRawTransaction", action = "hold" } })
    local id = assert(c:enqueue("attest", name, attest_call(name)))
    eventually(function() return px.state().held == 1 end, "the send reached the proxy")
    return id
  end

  local function hashes_of(row)
    local t = {}
    for hh in row.hashes:gmatch("[^,]+") do t[#t + 1] = hh end
    return t
  end

  local function sends_seen()
    return px.state().seen.eth_sendRawTransaction or 0
  end

  -- how often the proxy applied this action so far (the proxy lives for the whole file)
  local function applied(action)
    return px.state().applied[action] or 0
  end

  -- a 0-value transfer to self from the signer's key, outside the outbox
  local function steal(nonce, fee)
    local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = nonce, maxPriorityFeePerGas = fee,
      maxFeePerGas = fee, gas = 21000, to = ADDR, value = "0" }, SECRET))
    return assert(direct:send_raw_transaction(raw))
  end

  it("502 on the first broadcast (the issue): recorded first, the same bytes re-sent, mined once, "
    .. "the queue keeps moving", function()
    local c = client()
    local n0, f0 = count(), applied("502")
    px.rules({ { method = "eth_sendRawTransaction", action = "502" } })
    local id1 = assert(c:enqueue("attest", "r502-a", attest_call("r502-a")))
    local id2 = assert(c:enqueue("attest", "r502-b", attest_call("r502-b")))
    local r1, r2 = assert(c:wait(id1, 60)), assert(c:wait(id2, 60))
    assert.equal("mined", r1.status)
    assert.equal("mined", r2.status)
    assert.equal(n0, r1.nonce)
    assert.equal(n0 + 1, r2.nonce)
    assert.equal(1, #hashes_of(r1))                  -- re-broadcast, not re-signed
    assert.matches("502", r1.error)                  -- the failure is on the row
    assert.equal(f0 + 1, applied("502"))
    assert.equal(n0 + 2, count())
    assert.equal(1, attestations("r502-a"))
    assert.equal(1, attestations("r502-b"))
  end)

  it("write-ahead: while the first send is in flight the row already holds nonce, raw tx and hash; "
    .. "a connection reset before the node costs nothing", function()
    local c = client()
    local n0 = count()
    local id = held_send(c, "wal")
    local row = c:get(id)
    assert.equal("sent", row.status)
    assert.equal(n0, row.nonce)
    assert.is_string(row.raw)
    assert.equal(row.tx_hash, "0x" .. wp.hex(wp.keccak256(wp.unhex(row.raw))))
    local tx = assert(wp.tx.decode(wp.unhex(row.raw)))
    assert.equal(tostring(n0), tostring(tx.nonce))
    assert.equal(n0, count())                        -- nothing reached the node
    px.control({ release = "reset" })
    local done = assert(c:wait(id, 60))
    assert.equal("mined", done.status)
    assert.equal(row.tx_hash, done.tx_hash)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("wal"))
  end)

  it("forwarded but the answer lost: resolved by the receipt, never sent twice", function()
    local c = client()
    local n0, d0 = count(), applied("drop")
    px.rules({ { method = "eth_sendRawTransaction", action = "drop" } })
    local id = assert(c:enqueue("attest", "drop", attest_call("drop")))
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(1, #hashes_of(row))
    assert.equal(d0 + 1, applied("drop"))
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("drop"))
  end)

  it("delayed past the client's timeout (arrives after the sender gave up): lands once", function()
    local c = client { timeout = 1 }
    local n0, s0 = count(), sends_seen()
    px.rules({ { method = "eth_sendRawTransaction", action = "delay", ms = 2500 } })
    local id = assert(c:enqueue("attest", "delay", attest_call("delay")))
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.matches("EHTTP", row.error)
    -- let the delayed copy reach the node too: it must change nothing
    eventually(function() return sends_seen() >= s0 + 2 end, "the delayed send and its re-broadcast")
    wp.sleep(2)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("delay"))
    assert.equal("mined", c:get(id).status)
  end)

  -- run spec/fixtures/outbox_driver.lua with the test hook; returns the
  -- process once it stopped at `point` (and the row id)
  local function driver_at(point, ref)
    local call = attest_call(ref)
    local p = assert(host.process_spawn { file = "/usr/bin/env", timeout = 120,
      args = { "WORKPROOF_TEST_OUTBOX_HOOK=" .. point, h.build .. "/workproof", "run",
        "spec/fixtures/outbox_driver.lua", dbpath, a.url, KEY, "attest", ref, call.to, wp.hex(call.data) } })
    local buf = ""
    while not buf:find("WP_TEST_HOOK " .. point .. " %d+") do
      local ch = p:read()
      if not ch then error("driver ended before " .. point .. ": " .. buf .. p:wait().stderr, 2) end
      buf = buf .. ch
    end
    return p, tonumber(buf:match("WP_TEST_HOOK " .. point .. " (%d+)"))
  end

  local function kill9(p)
    p:kill(9)
    local st = p:wait()
    assert.equal(9, st.term_signal)
  end

  it("kill -9 between recording and sending: the restart broadcasts the recorded bytes, once", function()
    local n0 = count()
    local p, id = driver_at("recorded", "k-rec")
    kill9(p)
    local db = assert(store.open(dbpath))
    dbs[#dbs + 1] = db
    local left = db:row("SELECT * FROM outbox WHERE id = ?", id)
    assert.equal("sent", left.status)
    assert.equal(n0, left.nonce)
    assert.equal(false, direct:get_transaction(left.tx_hash))   -- the node never saw it
    assert.equal(n0, count())
    local c = client()
    c:kick()
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(left.tx_hash, row.tx_hash)
    assert.equal(1, #hashes_of(row))
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("k-rec"))
  end)

  it("kill -9 between sending and the receipt (mined meanwhile): the restart finds the receipt, sends nothing",
    function()
    local n0 = count()
    local p, id = driver_at("broadcast", "k-b1")
    kill9(p)
    local c = client()
    local left = c:get(id)
    assert.equal("sent", left.status)
    assert.is_table(assert(direct:get_transaction_receipt(left.tx_hash)))
    local sends = sends_seen()
    c:kick()
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(left.tx_hash, row.tx_hash)
    assert.equal(sends, sends_seen())
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("k-b1"))
  end)

  it("kill -9 after sending, the tx still in the pool; restart with it and a pending row behind it", function()
    local n0 = count()
    assert(direct:call("evm_setAutomine", { false }))
    local p, id2 = driver_at("broadcast", "k-b2")
    kill9(p)
    local c = client()
    local call = attest_call("k-b3")
    c.db:exec([[INSERT INTO outbox(kind, ref, to_addr, data, created, updated) VALUES ('attest', 'k-b3', ?, ?, ?, ?)]],
      call.to, call.data, host.time(), host.time())
    local id3 = c.db:row("SELECT id FROM outbox WHERE ref = 'k-b3'").id
    local r2 = c:get(id2)
    assert.equal("sent", r2.status)
    assert.equal(false, direct:get_transaction_receipt(r2.tx_hash))
    assert.is_table(assert(direct:get_transaction(r2.tx_hash)))   -- in the pool
    local sends = sends_seen()
    c:kick()
    -- the restarted sender looks at the chain and waits for the pool (no
    -- re-send, no re-sign); the pending row stays behind it in nonce order
    eventually(function() return px.state().seen.eth_getTransactionByHash end, "the restart asked the node")
    assert.equal("sent", c:get(id2).status)
    assert.equal("pending", c:get(id3).status)
    assert(direct:call("evm_setAutomine", { true }))
    assert(direct:call("evm_mine", {}))
    for _, id in ipairs({ id2, id3 }) do assert.equal("mined", assert(c:wait(id, 60)).status) end
    assert.equal(r2.tx_hash, c:get(id2).tx_hash)
    assert.equal(1, #hashes_of(c:get(id2)))
    assert.equal(sends + 1, sends_seen())            -- only the pending row was broadcast by the restart
    assert.equal(n0 + 2, count())
    for _, l in ipairs({ "k-b2", "k-b3" }) do assert.equal(1, attestations(l)) end
  end)

  it("a row left 'sent' without a nonce by the old code is recovered, not re-signed with nil", function()
    local c = client()
    local n0 = count()
    local call = attest_call("legacy")
    -- what the old sender left after a failed first broadcast: status sent,
    -- a hash recorded, no nonce, no raw transaction
    c.db:exec([[INSERT INTO outbox(kind, ref, to_addr, data, status, hashes, tx_hash, created, updated)
      VALUES ('attest', 'legacy', ?, ?, 'sent', ?, ?, ?, ?)]], call.to, call.data, "0x" .. ("ab"):rep(32),
      "0x" .. ("ab"):rep(32), host.time(), host.time())
    local id = c.db:row("SELECT id FROM outbox WHERE ref = 'legacy'").id
    c:kick()
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(n0, row.nonce)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("legacy"))
  end)

  it("\"nonce too low\" because OUR transaction was mined meanwhile: mined, not a conflict", function()
    local c = client()
    local n0 = count()
    local id = held_send(c, "ours")
    local row = c:get(id)
    assert(direct:send_raw_transaction(wp.unhex(row.raw)))    -- our bytes reach the node another way
    -- mined on receipt by anvil, but under load the count may trail the answer
    assert.is_true(h.eventually(function() return count() == n0 + 1 end, 10))
    px.control({ release = "forward" })                        -- the node answers "nonce too low"
    local done = assert(c:wait(id, 60))
    assert.equal("mined", done.status)
    assert.equal(0, done.conflicts)
    assert.equal(n0, done.nonce)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("ours"))
  end)

  it("the account shared with another sender: the stolen nonce is detected, surfaced, the write "
    .. "re-queued and landed exactly once", function()
    local logs = {}
    local c = client { log = function(level, msg) logs[#logs + 1] = level .. " " .. msg end }
    local n0 = count()
    local id = held_send(c, "stolen")
    assert.equal(n0, c:get(id).nonce)
    steal(n0, 3000000000)                                      -- someone else uses nonce n0
    eventually(function() return count() == n0 + 1 end, "the thief's transaction mined")
    px.control({ release = "forward" })                        -- "nonce too low" for ours
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(1, row.conflicts)
    assert.equal(n0 + 1, row.nonce)
    assert.matches("ECONFLICT", row.error)
    assert.equal(2, #hashes_of(row))
    assert.equal(n0 + 2, count())                              -- the thief's and ours
    assert.equal(1, attestations("stolen"))
    assert.equal(1, c.stats.conflicts)
    local found = false
    for _, l in ipairs(logs) do found = found or (l:find("^error .*ECONFLICT") ~= nil) end
    assert.is_true(found, "the conflict was not logged")
  end)

  it("our pooled tx replaced by another sender: re-pricing answered \"replacement underpriced\", then a "
    .. "conflict, re-queued, landed once", function()
    local c = client { reprice_after = 0.3 }
    local n0 = count()
    assert(direct:call("evm_setAutomine", { false }))
    local id = assert(c:enqueue("attest", "underpriced", attest_call("underpriced")))
    eventually(function() return c:get(id).status == "sent" end, "sent")
    local row = c:get(id)
    eventually(function() return direct:get_transaction(row.tx_hash) end, "in the pool")
    steal(n0, tonumber(row.max_fee) * 1000)                    -- a far better-paying replacement
    eventually(function()
      local e = c:get(id).error
      return e and e:lower():find("underpriced") and c.stats.repriced >= 1
    end, "a replacement refused as underpriced")
    assert.equal("sent", c:get(id).status)
    assert.equal(n0, c:get(id).nonce)                          -- re-pricing kept the nonce
    assert(direct:call("evm_setAutomine", { true }))
    assert(direct:call("evm_mine", {}))
    local done = assert(c:wait(id, 60))
    assert.equal("mined", done.status)
    assert.equal(1, done.conflicts)
    assert.equal(n0 + 1, done.nonce)
    assert.equal(n0 + 2, count())
    assert.equal(1, attestations("underpriced"))
  end)

  it("insufficient funds: the row keeps its nonce, shows the error, is reported stuck, lands once funded",
    function()
    local logs = {}
    local c = client { stuck_after = 0.3, log = function(level, msg) logs[#logs + 1] = level .. " " .. msg end }
    local n0 = count()
    local balance = assert(direct:call("eth_getBalance", { ADDR, "latest" }))
    assert(direct:call("anvil_setBalance", { ADDR, "0x0" }))
    local id = assert(c:enqueue("attest", "funds", attest_call("funds")))
    eventually(function()
      local e = c:get(id).error
      return e and e:lower():find("insufficient funds")
    end, "insufficient funds recorded")
    eventually(function() return c.stats.stuck_warnings >= 1 end, "a stuck warning")
    local row = c:get(id)
    assert.equal("sent", row.status)
    assert.equal(n0, row.nonce)
    assert.equal(1, c:states().sent)
    assert.is_true(c:oldest_unmined() > 0)
    local view = c:summary()
    assert.equal(id, view.unmined[1].id)
    assert.matches("insufficient funds", view.unmined[1].error:lower())
    local warned = false
    for _, l in ipairs(logs) do
      warned = warned or (l:find("^warn outbox row %d+ %(attest funds%) not mined") ~= nil)
    end
    assert.is_true(warned, "no stuck warning in the log")
    assert(direct:call("anvil_setBalance", { ADDR, balance }))
    local done = assert(c:wait(id, 60))
    assert.equal("mined", done.status)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("funds"))
    assert.equal(0, c:oldest_unmined())
  end)

  it("a reorg drops a mined attestation: the row goes back to 'sent' and lands again, once", function()
    local c = client()
    local n0 = count()
    local snap = assert(direct:call("evm_snapshot", {}))
    local id = assert(c:enqueue("attest", "reorg", attest_call("reorg")))
    local first = assert(c:wait(id, 60))
    assert.equal("mined", first.status)
    assert.equal(1, attestations("reorg"))
    assert.is_true(assert(direct:call("evm_revert", { snap })))
    assert.equal(0, attestations("reorg"))
    assert.equal(n0, count())
    assert.equal(1, c:recheck())
    local back = assert(c:wait(id, 60))
    assert.equal("mined", back.status)
    assert.equal(first.tx_hash, back.tx_hash)                  -- the recorded bytes again
    assert.equal(1, c.stats.reorgs)
    assert.equal(n0 + 1, count())
    assert.equal(1, attestations("reorg"))
  end)

  it("an x402 settlement row survives a 502 and a lost answer: the transfer happens exactly once", function()
    local dep = a.dep
    local now = os.time()
    local auth = { from = PAYER, to = ADDR, value = "10000", validAfter = tostring(now - 60),
      validBefore = tostring(now + 600), nonce = "0x" .. wp.hex(wp.sha256("outbox settle " .. now)) }
    local digest = assert(wp.eip712.transfer_with_authorization_hash({ name = "USD Coin", version = "2",
      chainId = 31337, verifyingContract = dep.token.address }, auth))
    local sig = wp.secp256k1.sign(PAYER_KEY, digest)
    sig = sig:sub(1, 64) .. string.char(sig:byte(65) + 27)
    local header = wp.base64.encode(cjson.encode({ x402Version = 2, accepted = { scheme = "exact",
      network = "eip155:31337", amount = "10000", asset = dep.token.address, payTo = ADDR },
      payload = { signature = "0x" .. wp.hex(sig), authorization = auth } }))
    local pay = assert(x402.decode(header))
    local function token_balance(who)
      local q = assert(wp.abi.encode_call("balanceOf(address)", { who }))
      local raw = assert(direct:call("eth_call", { { to = dep.token.address, data = "0x" .. wp.hex(q) }, "latest" }))
      return tonumber(tostring(wp.abi.decode("(uint256)", wp.unhex(raw))[1]))
    end
    local before, payer_before = token_balance(ADDR), token_balance(PAYER)
    local c = client()
    local n0, f0, d0 = count(), applied("502"), applied("drop")
    px.rules({ { method = "eth_sendRawTransaction", action = "502" },
      { method = "eth_sendRawTransaction", action = "drop" } })
    local id = assert(c:enqueue("settle", "pay-1", { to = dep.token.address, data = x402.settle_calldata(pay) }))
    assert.equal(id, c:enqueue("settle", "pay-1", { to = dep.token.address, data = x402.settle_calldata(pay) }))
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(1, row.ok)
    assert.equal(before + 10000, token_balance(ADDR))
    assert.equal(payer_before - 10000, token_balance(PAYER))
    assert.equal(n0 + 1, count())
    assert.equal(f0 + 1, applied("502"))
    assert.equal(d0 + 1, applied("drop"))
  end)

  it("a legacy refund row survives two 502s and a reset: the ether moves exactly once", function()
    local to = "0x" .. wp.hex(wp.sha256("outbox refund payee")):sub(1, 40)
    local c = client()
    local n0, f0 = count(), applied("502")
    px.rules({ { method = "eth_sendRawTransaction", action = "502", count = 2 },
      { method = "eth_sendRawTransaction", action = "reset" } })
    local id = assert(c:enqueue("refund", "pay-2", { to = to, data = "", value = "1000000000000000", gas = "21000" }))
    local row = assert(c:wait(id, 60))
    assert.equal("mined", row.status)
    assert.equal(1000000000000000, tonumber(assert(direct:call("eth_getBalance", { to, "latest" }))))
    assert.equal(n0 + 1, count())
    assert.equal(f0 + 2, applied("502"))
  end)

  it("the controller (the issue's setup): VALID, the attestation lands once through a 502, and /outbox "
    .. "and /metrics show the row, its last error and the states", function()
    local dir = h.tmpdir()
    h.write(dir .. "/signer.key", KEY .. "\n")
    os.execute("chmod 600 " .. dir .. "/signer.key")
    h.write(dir .. "/dep.json", h.read(a.dir .. "/dep.json"))
    local srv = h.start_controller(([[return {
  state_dir = "%s/var",
  policies = { task_types = {}, code_patterns = {}, worker_threshold = {}, rate_limit = {}, circuit_breaker = {} },
  chain = { enabled = true, rpc = "%s", deployment = "%s/dep.json", key_file = "%s/signer.key",
    wait_receipt = 30, stuck_after = 60 },
}]]):format(dir, px.url, dir, dir), { dir = dir })
    local ok, err = pcall(function()
      local n0, f0 = count(), applied("502")
      px.rules({ { method = "eth_sendRawTransaction", action = "502" } })
      local st, _, b = h.http("POST", srv.url .. "/verify", cjson.encode { taskType = "code-execution",
        language = "lua", code = "print(2 + 2)", expectedHash = wp.hex(wp.sha256("4")) })
      local r = cjson.decode(b)
      assert.equal(200, st, b)
      assert.equal("VALID", r.result)
      assert.matches("^0x%x+$", r.registryTxHash)
      assert.equal(f0 + 1, applied("502"))
      assert.equal(n0 + 1, count())
      local q = assert(wp.abi.encode_call("getAttestationCountForTask(bytes32)", { wp.unhex(r.taskHash) }))
      local raw = assert(direct:call("eth_call", { { to = a.dep.contracts.ValidationRegistry.address,
        data = "0x" .. wp.hex(q) }, "latest" }))
      assert.equal("1", tostring(wp.abi.decode("(uint256)", wp.unhex(raw))[1]))
      -- the outbox through the API
      local s1, _, ob = h.http("GET", srv.url .. "/outbox")
      assert.equal(200, s1)
      local o = cjson.decode(ob)
      assert.equal(1, o.states.mined)
      assert.equal(0, o.states.sent)
      assert.equal(0, o.oldestUnminedSeconds)
      local s2, _, rb = h.http("GET", srv.url .. "/outbox/1")
      assert.equal(200, s2)
      local row = cjson.decode(rb)
      assert.equal("attest", row.kind)
      assert.equal(r.jobId, row.ref)
      assert.equal("mined", row.status)
      assert.equal(r.registryTxHash, row.txHash)
      assert.equal(n0, row.nonce)
      assert.matches("502", row.error)
      assert.is_nil(row.raw)
      for _, bad in ipairs({ "/outbox/999", "/outbox/abc", "/outbox/1x", "/outbox/", "/outbox/" .. ("9"):rep(20) }) do
        local sb = h.http("GET", srv.url .. bad)
        assert.equal(404, sb, bad)
      end
      assert.equal(405, (h.http("POST", srv.url .. "/outbox", "{}")))
      local mb = h.metrics(srv)
      for _, want in ipairs { 'wp_outbox_rows{state="mined"} 1', 'wp_outbox_rows{state="sent"} 0',
        'wp_outbox_rows{state="conflict"} 0', "wp_outbox_oldest_unmined_seconds 0", "wp_outbox_resent_total 1" } do
        assert.matches("\n" .. want .. "\n", mb)
      end
    end)
    h.stop(srv)
    assert(ok, err)
  end)

  it("rows of another chain are never sent to this one (a development chain started afresh, store kept)", function()
    local b = h.start_anvil()
    local ok, err = pcall(function()
      local other = wp.rpc.new(b.url)
      assert(other:call("evm_setAutomine", { false }))
      local c1 = client({ url = b.url })
      local id1 = assert(c1:enqueue("attest", "orphan-a", attest_call("orphan-a")))
      eventually(function() return c1:get(id1).status == "sent" end, "row sent to the first chain")
      assert.matches("^eip155:31337:0x%x+$", c1:get(id1).chain)
      b.proc:kill(15)
      b.proc:wait()
      -- the same store, now on a different chain with the same id
      local n0 = count()
      local c2 = client()
      local id2 = assert(c2:enqueue("attest", "orphan-b", attest_call("orphan-b")))
      assert.equal("mined", assert(c2:wait(id2, 60)).status)
      local r1 = c2:get(id1)
      assert.equal("orphaned", r1.status)
      assert.matches("^EORPHANED: enqueued for another chain than eip155:31337:0x", r1.error)
      assert.equal(0, attestations("orphan-a"))
      assert.equal(1, attestations("orphan-b"))
      assert.equal(n0 + 1, count())
      assert.equal(1, c2:states().orphaned)
    end)
    if b.proc then b.proc:kill(15) end
    assert(ok, err)
  end)
end)
