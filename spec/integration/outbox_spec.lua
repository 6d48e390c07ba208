-- SPDX-License-Identifier: MIT
-- The chain client against a real anvil: the nonce manager serialises the
-- signer's transactions, the durable outbox never writes twice, stuck
-- transactions are re-priced, a restart resumes what was in flight, and the
-- signer key is refused from a file others can read.
local wp = require "workproof"
local h = require "helpers"
local store = require "workproof.store"
local chain = require "workproof.chain"

local KEY = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

describe("chain outbox #integration", function()
  local a, dbpath
  setup(function() a = h.start_anvil() end)
  teardown(function() a.proc:kill(15); a.proc:wait() end)
  before_each(function() dbpath = os.tmpname() end)
  after_each(function() os.remove(dbpath); os.remove(dbpath .. "-wal"); os.remove(dbpath .. "-shm") end)

  local function client(opts)
    local db = assert(store.open(dbpath))
    local c = assert(chain.new { rpc = wp.rpc.new(a.url), db = db, chain_id = 31337, key = { hex = KEY },
      reprice_after = opts and opts.reprice_after, poll = 0.05 })
    return c, db
  end

  local function attest_call(i)
    return { to = a.dep.contracts.ValidationRegistry.address,
      data = assert(wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
        { wp.sha256("task " .. i), "reexecution-v1-code-execution", true, "{}" })) }
  end

  it("serialises nonces: 20 concurrent writes, 20 consecutive nonces, all mined", function()
    local c = client()
    local ids = {}
    for i = 1, 20 do wp.spawn(function() ids[i] = assert(c:enqueue("attest", "job" .. i, attest_call(i))) end) end
    local rows = {}
    for i = 1, 20 do
      while not ids[i] do wp.sleep(0.01) end
      rows[i] = assert(c:wait(ids[i], 60))
    end
    local nonces = {}
    for i, r in ipairs(rows) do
      assert.equal("mined", r.status)
      nonces[i] = r.nonce
    end
    table.sort(nonces)
    for i = 2, #nonces do assert.equal(nonces[i - 1] + 1, nonces[i]) end
  end)

  it("never writes the same (kind, ref) twice", function()
    local c = client()
    local id1 = c:enqueue("attest", "same-job", attest_call("x"))
    local id2 = c:enqueue("attest", "same-job", attest_call("y"))
    assert.equal(id1, id2)
    local r = assert(c:wait(id1, 30))
    assert.equal("mined", r.status)
    local n = #assert(c.db:exec("SELECT id FROM outbox WHERE ref = 'same-job'"))
    assert.equal(1, n)
  end)

  it("a write that reverts is failed, not retried forever ahead of the others", function()
    local c = client()
    local bad = c:enqueue("attest", "reverts", { to = a.dep.contracts.ValidationRegistry.address,
      data = assert(wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
        { ("\0"):rep(32), "m", true, "" })) })     -- ZeroTaskHash
    local good = c:enqueue("attest", "after-revert", attest_call("after"))
    local rb = assert(c:wait(bad, 30))
    local rg = assert(c:wait(good, 30))
    assert.equal("failed", rb.status)
    assert.matches("ERPC", rb.error)
    assert.equal("mined", rg.status)
  end)

  it("re-prices a stuck transaction with the same nonce", function()
    local c = client { reprice_after = 0.5 }
    local r0 = wp.rpc.new(a.url)
    assert(r0:call("evm_setAutomine", { false }))
    local id = c:enqueue("attest", "stuck", attest_call("stuck"))
    wp.sleep(1.5)
    local row = c:get(id)
    assert.equal("sent", row.status)
    local hashes = {}
    for hh in row.hashes:gmatch("[^,]+") do hashes[#hashes + 1] = hh end
    assert.is_true(#hashes >= 2, "not re-priced: " .. row.hashes)
    assert.is_true(c.stats.repriced >= 1)
    assert(r0:call("evm_setAutomine", { true }))
    assert(r0:call("evm_mine", {}))
    row = assert(c:wait(id, 30))
    assert.equal("mined", row.status)
    assert.equal(hashes[#hashes], row.tx_hash)   -- the replacement was mined
  end)

  it("a restart resumes rows left pending or sent, without duplicates", function()
    local c, db = client()
    -- rows written by a previous run that never got to send them
    db:exec([[INSERT INTO outbox(kind, ref, to_addr, data, created, updated) VALUES ('attest', 'left1', ?, ?, 0, 0)]],
      attest_call("l1").to, attest_call("l1").data)
    local fresh = client()
    fresh:kick()
    local row = db:row("SELECT id FROM outbox WHERE ref = 'left1'")
    local done = assert(fresh:wait(row.id, 30))
    assert.equal("mined", done.status)
    assert.equal(1, #db:exec("SELECT id FROM outbox WHERE ref = 'left1'"))
    c.db:close()
  end)

  it("refuses a signer key file others can read, and never echoes the key", function()
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write(KEY)
    f:close()
    os.execute("chmod 644 " .. path)
    local s, err = chain.load_key { file = path }
    assert.is_nil(s)
    assert.matches("mode 644", err)
    assert.is_nil(err:find(KEY:sub(1, 16), 1, true))
    os.execute("chmod 600 " .. path)
    local secret, addr = chain.load_key { file = path }
    os.remove(path)
    assert.equal(32, #secret)
    assert.equal("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", addr)
    local _, e2 = chain.load_key { env = "WORKPROOF_NO_SUCH_VARIABLE" }
    assert.matches("not set", e2)
  end)
end)

describe("chain outbox shared by two processes #integration", function()
  it("one sender at a time: two clients on one store never collide on nonces", function()
    local a = h.start_anvil()
    local dbpath = os.tmpname()
    local function mk()
      return assert(chain.new { rpc = wp.rpc.new(a.url), db = assert(store.open(dbpath)), chain_id = 31337,
        key = { hex = KEY }, poll = 0.05 })
    end
    local c1, c2 = mk(), mk()
    local registry = a.dep.contracts.ValidationRegistry.address
    local function call(i)
      return { to = registry, data = assert(wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
        { wp.sha256("shared " .. i), "m", true, "" })) }
    end
    local ids = {}
    for i = 1, 10 do
      local c = (i % 2 == 0) and c1 or c2
      ids[i] = assert(c:enqueue("attest", "shared" .. i, call(i)))
    end
    for i = 1, 10 do assert.equal("mined", assert(c1:wait(ids[i], 60)).status) end
    a.proc:kill(15)
    a.proc:wait()
    os.remove(dbpath)
  end)
end)
