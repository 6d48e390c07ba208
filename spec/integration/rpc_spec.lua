-- SPDX-License-Identifier: MIT
-- host.http_request and wp.rpc against a REAL anvil on a free loopback
-- port: chain id, balances, an EIP-1559 and a legacy EIP-155 transfer signed
-- by our core and mined, concurrent calls, batches, and the failure paths
-- (connection refused, JSON-RPC error, timeout, oversized response) against
-- small servers of our own on the same loop.
--
-- anvil is found through WORKPROOF_ANVIL, else contracts/node_modules (npm
-- @foundry-rs/anvil, pinned in contracts/package.json). Without it the
-- anvil cases are pending; the HTTP cases still run.
local wp = require "workproof"
local host = require "workproof.host"
local rpc = require "workproof.rpc"
local h = require "helpers"

local ANVIL_KEY0 = wp.unhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
local ACCOUNT0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
local ACCOUNT1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
local ACCOUNT2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
local ETH = "000000000000000000"

local function executable(path)
  if not path or path == "" then return false end
  local f = io.open(path, "rb")
  if not f then return false end
  f:close()
  return os.execute(("test -x '%s'"):format(path:gsub("'", "")))
end

local function find_anvil()
  local env = os.getenv("WORKPROOF_ANVIL")
  if env and env ~= "" then return executable(env) and env or nil end
  for _, c in ipairs({
    "contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    "contracts/node_modules/@foundry-rs/anvil-linux-arm64/bin/anvil",
    "contracts/node_modules/.bin/anvil",
  }) do
    if executable(c) then return c end
  end
end

local eventually = h.eventually

-- The failure paths talk to spec/fixtures/evm/http_server.lua, run as its
-- own host process (a server inside this process would keep the loop alive
-- after the specs end). Returns the process and its base URL.
local function start_server()
  local p = assert(host.process_spawn { file = host.build_dir .. "/workproof",
    args = { "run", "spec/fixtures/evm/http_server.lua" }, timeout = 600 })
  local buf = ""
  while not buf:find("listening on %d+") do
    local c = p:read()
    if not c then error("test server did not start: " .. p:wait().stderr) end
    buf = buf .. c
  end
  wp.spawn(function() while p:read() do end end)
  return p, "http://127.0.0.1:" .. buf:match("listening on (%d+)")
end

local function stop_server(p)
  p:kill(9)
  p:wait()
end

-- a loopback port that nothing listens on (a server's, after it died)
local function dead_port()
  local p, url = start_server()
  stop_server(p)
  return url
end

describe("host.http_request #integration", function()
  local srv, url

  setup(function() srv, url = start_server() end)

  teardown(function() stop_server(srv) end)

  it("returns status, lowercase headers and body", function()
    local status, headers, body = host.http_request { url = url .. "/echo", headers = { ["X-Hello"] = "hi" } }
    assert.equal(201, status)
    assert.equal("yes", headers["x-test"])
    assert.equal("text/plain", headers["content-type"])
    assert.equal("GET /echo hi ", body)
  end)

  it("sends a body with POST (and other methods)", function()
    local status, _, body = host.http_request { url = url .. "/p", body = "payload", headers = { "X-Hello: there" } }
    assert.equal(201, status)
    assert.equal("POST /p there payload", body)
    status, _, body = host.http_request { method = "PUT", url = url .. "/q", body = "b" }
    assert.equal(201, status)
    assert.equal("PUT /q - b", body)
  end)

  it("fails with EHTTP when the connection is refused", function()
    local status, err = host.http_request { url = dead_port() .. "/", timeout = 5 }
    assert.is_nil(status)
    assert.matches("^EHTTP: ", err)
    assert.matches("onnect", err)
  end)

  it("fails with EHTTP when the server does not answer in time", function()
    local t0 = wp.now()
    local status, err = host.http_request { url = url .. "/slow", timeout = 0.3 }
    assert.is_nil(status)
    assert.matches("^EHTTP: Timeout", err)
    assert.is_true(wp.now() - t0 < 1.5)
  end)

  it("bounds the response size", function()
    local status, err = host.http_request { url = url .. "/big", max_response = 1000 }
    assert.is_nil(status)
    assert.equal("EHTTP: response larger than 1000 bytes", err)
    local _, _, body = host.http_request { url = url .. "/big" }
    assert.equal(100000, #body)
  end)

  it("runs requests from many coroutines at once", function()
    local done, n = 0, 12
    for i = 1, n do
      wp.spawn(function()
        local status, _, body = host.http_request { url = url .. "/c" .. i }
        if status == 201 and body == "GET /c" .. i .. " - " then done = done + 1 end
      end)
    end
    -- every spawned coroutine is now waiting in its own transfer
    assert.equal(n, host.http_active())
    assert.is_true(eventually(function() return done == n end))
    assert.equal(0, host.http_active())
  end)

  it("raises on argument errors and outside a host coroutine", function()
    assert.has_error(function() host.http_request("http://x") end)
    assert.has_error(function() host.http_request {} end)
    assert.has_error(function() host.http_request { url = url, timeout = -1 } end)
    assert.has_error(function() host.http_request { url = url, method = "get" } end)
    assert.has_error(function() host.http_request { url = url, headers = { ["X-Bad"] = "a\r\nb" } } end)
    local co = coroutine.create(function() return host.http_request { url = url } end)
    local ok, err = coroutine.resume(co)
    assert.is_false(ok)
    assert.matches("not in a host coroutine", err)
  end)
end)

describe("wp.rpc against anvil #integration", function()
  local anvil_path = find_anvil()
  local proc, url, client

  if not anvil_path then
    pending("anvil not found (set WORKPROOF_ANVIL or npm install in contracts/)")
    return
  end

  setup(function()
    local buf
    proc, buf = h.spawn_until({ file = anvil_path,
      args = { "--host", "127.0.0.1", "--port", "0", "--chain-id", "31337" }, timeout = 600 },
      "Listening on [%d%.]+:%d+", "anvil")
    url = "http://" .. buf:match("Listening on ([%d%.]+:%d+)")
    -- anvil logs every call to stdout: keep draining it so it never blocks
    wp.spawn(function() while proc:read() do end end)
    client = rpc.new(url, { timeout = 10 })
  end)

  teardown(function()
    if proc then
      proc:kill(15)
      proc:wait()
    end
  end)

  it("reports chain id 31337 and a block number", function()
    assert.equal(31337, client:chain_id())
    local n = assert(client:block_number())
    assert.is_number(n)
    assert.is_true(n >= 0)
  end)

  it("reports the default accounts' balances", function()
    assert.equal("10000" .. ETH, client:get_balance(ACCOUNT1))
    assert.equal("10000" .. ETH, client:get_balance(ACCOUNT2:lower()))
    assert.equal("0", client:get_balance("0x000000000000000000000000000000000000dEaD"))
  end)

  it("mines an EIP-1559 transfer signed by our core", function()
    local nonce = assert(client:get_transaction_count(ACCOUNT0))
    local block = assert(client:get_block("latest"))
    local base = assert(wp.abi.to_decimal(block.baseFeePerGas))
    local gas = assert(client:estimate_gas { from = ACCOUNT0, to = ACCOUNT1, value = "1" .. ETH })
    assert.equal(21000, gas)
    local t = { chainId = 31337, nonce = nonce, maxPriorityFeePerGas = "1000000000",
                maxFeePerGas = wp.abi.to_decimal(("0x%x"):format(tonumber(base) * 2 + 1000000000)),
                gas = gas, to = ACCOUNT1, value = "1" .. ETH }
    local raw, hash = assert(wp.tx.sign_eip1559(t, ANVIL_KEY0))
    assert.equal(ACCOUNT0, assert(wp.tx.decode(raw)).from)
    local sent = assert(client:send_raw_transaction(raw))
    assert.equal("0x" .. wp.hex(hash), sent)
    local receipt = assert(client:wait_for_receipt(hash, { timeout = 20 }))
    assert.equal("0x1", receipt.status)
    assert.equal(ACCOUNT0:lower(), receipt.from:lower())
    assert.equal(ACCOUNT1:lower(), receipt.to:lower())
    local mined = assert(client:get_transaction(sent))
    assert.equal("0x2", mined.type)
    assert.equal(ACCOUNT0:lower(), mined.from:lower())
    assert.equal("10001" .. ETH, client:get_balance(ACCOUNT1))
    assert.equal(nonce + 1, client:get_transaction_count(ACCOUNT0))
  end)

  it("mines a legacy EIP-155 transfer signed by our core", function()
    local nonce = assert(client:get_transaction_count(ACCOUNT0, "pending"))
    local price = assert(client:gas_price())
    local raw, hash = assert(wp.tx.sign_legacy({ chainId = 31337, nonce = nonce, gasPrice = price, gas = 21000,
      to = ACCOUNT2, value = "2" .. ETH }, ANVIL_KEY0))
    local sent = assert(client:send_raw_transaction(raw))
    assert.equal("0x" .. wp.hex(hash), sent)
    local receipt = assert(client:wait_for_receipt(sent))
    assert.equal("0x1", receipt.status)
    assert.equal(ACCOUNT0:lower(), receipt.from:lower())
    local mined = assert(client:get_transaction(hash))
    assert.equal("0x0", mined.type)
    local v = tonumber(mined.v:sub(3), 16)
    assert.is_true(v == 31337 * 2 + 35 or v == 31337 * 2 + 36)
    assert.equal("10002" .. ETH, client:get_balance(ACCOUNT2))
  end)

  it("reads contract state with eth_call (no code: empty result)", function()
    local data = assert(wp.abi.encode_call("balanceOf(address)", { ACCOUNT0 }))
    assert.equal("", assert(client:eth_call { to = ACCOUNT1, data = data }))
    assert.equal("", assert(client:get_code(ACCOUNT1)))
  end)

  it("serves concurrent calls from several coroutines", function()
    local results, n = {}, 8
    for i = 1, n do
      wp.spawn(function()
        local c = i % 2 == 0 and client or rpc.new(url)
        results[i] = { c:chain_id(), c:get_balance(ACCOUNT1) }
      end)
    end
    assert.equal(n, host.http_active())
    assert.is_true(eventually(function()
      for i = 1, n do if not results[i] then return false end end
      return true
    end))
    for i = 1, n do
      assert.same({ 31337, "10001" .. ETH }, results[i])
    end
  end)

  it("sends batches and keeps the order of the calls", function()
    local r = assert(client:batch { { "eth_chainId" }, { "eth_getBalance", { ACCOUNT1, "latest" } },
                                    { "eth_noSuchMethod", {} }, { "eth_blockNumber" } })
    assert.equal(4, #r)
    assert.equal("0x7a69", r[1].result)
    assert.equal("10001" .. ETH, wp.abi.to_decimal(r[2].result))
    assert.matches("^ERPC: %-32601", r[3].error)
    assert.matches("^0x", r[4].result)
    assert.same({}, client:batch {})
  end)

  it("returns ERPC for JSON-RPC errors", function()
    local ok, err, obj = client:call("eth_noSuchMethod", {})
    assert.is_nil(ok)
    assert.matches("^ERPC: %-32601 ", err)
    assert.equal(-32601, obj.code)
    -- a transaction the node refuses: nonce too low
    local raw = assert(wp.tx.sign_eip1559({ chainId = 31337, nonce = 0, maxFeePerGas = "100000000000", gas = 21000,
      to = ACCOUNT1, value = 1 }, ANVIL_KEY0))
    ok, err = client:send_raw_transaction(raw)
    assert.is_nil(ok)
    assert.matches("^ERPC: ", err)
  end)

  it("returns false for an unknown receipt and EHTTP when nothing listens", function()
    assert.is_false(client:get_transaction_receipt(("\1"):rep(32)))
    local ok, err = rpc.new(dead_port(), { timeout = 5 }):chain_id()
    assert.is_nil(ok)
    assert.matches("^EHTTP: ", err)
  end)

  it("returns EPROTO / EHTTP for servers that do not speak JSON-RPC", function()
    local srv, base = start_server()
    local ok, err = rpc.new(base .. "/html"):chain_id()
    assert.is_nil(ok)
    assert.matches("^EHTTP: status 502", err)
    ok, err = rpc.new(base .. "/plain"):chain_id()
    assert.is_nil(ok)
    assert.matches("^EPROTO: ", err)
    ok, err = rpc.new(base .. "/slow", { timeout = 0.2 }):chain_id()
    assert.is_nil(ok)
    assert.matches("^EHTTP: Timeout", err)
    stop_server(srv)
  end)
end)

describe("wp.rpc JSON encoding of params", function()
  it("encodes arrays, objects and scalars; empty tables as []", function()
    assert.equal("[]", rpc.encode({}))
    assert.equal("{}", rpc.encode(rpc.object()))
    assert.equal('[1,"a",true,null,{"a":1,"b":[2]}]', rpc.encode({ 1, "a", true, rpc.null, { b = { 2 }, a = 1 } }))
    assert.equal('{"data":"0x0102","gas":"0x5208","to":"0x1234"}',
      rpc.encode(rpc.call_object { data = "\1\2", gas = 21000, to = "0x1234" }))
    assert.has_error(function() rpc.encode({ [true] = 1 }) end)
    assert.has_error(function() rpc.encode(0 / 0) end)
  end)
end)
