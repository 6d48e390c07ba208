// SPDX-License-Identifier: MIT
// Pay the notary with the official x402 v2 client libraries (@x402/fetch and
// @x402/evm, installed under contracts/): the first POST gets 402 and the
// requirements, the library signs an EIP-3009 authorization for TestUSDC and
// retries with PAYMENT-SIGNATURE.
//
//   node examples/x402-client.cjs [URL] [RPC] [PRIVATE_KEY]
//   (defaults: http://127.0.0.1:8402/verify, http://127.0.0.1:8545, anvil account #1)
'use strict';

const path = require('path');
const { createRequire } = require('module');

const need = createRequire(path.join(__dirname, '..', 'contracts', 'package.json'));
const { wrapFetchWithPaymentFromConfig, decodePaymentResponseHeader } = need('@x402/fetch');
const { ExactEvmScheme, toClientEvmSigner } = need('@x402/evm');
const { createPublicClient, http } = need('viem');
const { privateKeyToAccount } = need('viem/accounts');
const { foundry } = need('viem/chains');

const url = process.argv[2] || 'http://127.0.0.1:8402/verify';
const rpc = process.argv[3] || 'http://127.0.0.1:8545';
const key = process.argv[4] || '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';

async function main() {
  const account = privateKeyToAccount(key);
  const pub = createPublicClient({ chain: foundry, transport: http(rpc) });
  const payFetch = wrapFetchWithPaymentFromConfig(fetch, {
    schemes: [{ network: 'eip155:31337', client: new ExactEvmScheme(toClientEvmSigner(account, pub)) }],
  });
  const task = {
    taskType: 'code-execution',
    language: 'lua',
    code: process.env.CODE || 'print(2 + 2)',
    // SHA-256("4")
    expectedHash: process.env.EXPECTED || '4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a',
  };
  const res = await payFetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(task),
  });
  const body = await res.json();
  const pr = res.headers.get('payment-response');
  console.log(JSON.stringify({
    status: res.status,
    payer: account.address,
    result: body,
    paymentResponse: pr ? decodePaymentResponseHeader(pr) : null,
  }, null, 2));
  process.exitCode = res.status === 200 ? 0 : 1;
}

main().catch((e) => { console.error(e); process.exitCode = 2; });
