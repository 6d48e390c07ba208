-- SPDX-License-Identifier: MIT
-- The controller of the local stack (examples/run-local.sh, `make run`):
-- anvil on 127.0.0.1:8545 with the contracts deployed by contracts/scripts,
-- attestations written on chain, x402 and the legacy tx-hash mode on.
return {
  listen = "127.0.0.1:8402",
  state_dir = "var/local",
  chain = {
    enabled = true,
    rpc = "http://127.0.0.1:8545",
    deployment = "var/local/deployment.json",   -- registry, token, chain id
    key_file = "var/local/signer.key",           -- anvil account #0 (local only)
  },
  payments = {
    enabled = true,
    x402 = { amount = "10000" },                 -- 0.01 TestUSDC (6 decimals)
    txhash = { amount_wei = "1000000000000000", confirmations = 2 },   -- 0.001 ETH
  },
}
