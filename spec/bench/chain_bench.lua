-- SPDX-License-Identifier: MIT
-- Attestations per second sustained against anvil through the nonce manager
-- and the durable outbox (reported), beside the anchor of the same number of
-- plain eth_call round trips to the same node (the RPC floor).
local wp = require "workproof"
local h = require "helpers"
local store = require "workproof.store"
local chain = require "workproof.chain"

local N = tonumber(os.getenv("BENCH_ATTESTATIONS") or "100")

return function(b)
  local a = h.start_anvil()
  local dbpath = os.tmpname()
  local c = assert(chain.new { rpc = wp.rpc.new(a.url), db = assert(store.open(dbpath)), chain_id = 31337,
    key = { hex = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80" }, poll = 0.01 })
  local registry = a.dep.contracts.ValidationRegistry.address
  local t0 = wp.now()
  local last
  for i = 1, N do
    last = c:enqueue("attest", "bench" .. i, { to = registry,
      data = assert(wp.abi.encode_call("attestValidation(bytes32,string,bool,bytes)",
        { wp.sha256("bench " .. i), "reexecution-v1-code-execution", true, ("x"):rep(200) })) })
  end
  assert(c:wait(last, 600))
  local rate = N / (wp.now() - t0)
  local rpc = wp.rpc.new(a.url)
  local t1 = wp.now()
  for _ = 1, N do assert(rpc:call("eth_blockNumber", {})) end
  local floor = N / (wp.now() - t1)
  a.proc:kill(15)
  a.proc:wait()
  os.remove(dbpath)
  return {
    b.row { name = ("attestations mined (%d, via outbox)"):format(N), value = rate, unit = "tx/s",
      anchor_name = "eth_blockNumber round trips", anchor = floor, goal_kind = "report" },
  }
end
