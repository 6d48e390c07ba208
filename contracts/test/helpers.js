// SPDX-License-Identifier: MIT
//
// Shared test helpers: a real anvil per test file (loopback, free port, killed after),
// viem clients for anvil's 10 default accounts, artifact loading, deployment, and
// revert assertions that decode the revert data of MINED transactions.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const viem = require('viem');
const { privateKeyToAccount } = require('viem/accounts');
const { startAnvil, DEFAULT_ACCOUNTS } = require('../scripts/lib/anvil.js');

const ROOT = path.resolve(__dirname, '..');
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';
const ZERO_HASH = `0x${'00'.repeat(32)}`;

const artifacts = new Map();
/** build/<name>.json (run scripts/build.js first; test.sh does). */
function artifact(name) {
  if (!artifacts.has(name)) {
    artifacts.set(name, JSON.parse(fs.readFileSync(path.join(ROOT, 'build', `${name}.json`), 'utf8')));
  }
  return artifacts.get(name);
}

/** Start anvil and build clients. Call env.close() in after(). */
async function setupChain() {
  const anvil = await startAnvil({ timeoutMs: 300_000 });
  const chain = viem.defineChain({
    id: 31337,
    name: 'anvil',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [anvil.url] } },
  });
  const transport = viem.http(anvil.url, { retryCount: 0 });
  const common = { chain, transport, pollingInterval: 10, cacheTime: 0 };
  const pub = viem.createPublicClient(common);
  const test = viem.createTestClient({ ...common, mode: 'anvil' });
  const accounts = DEFAULT_ACCOUNTS.map((a) => privateKeyToAccount(a.privateKey));
  const wallets = accounts.map((account) => viem.createWalletClient({ ...common, account }));
  const env = {
    anvil, chain, pub, test, accounts, wallets, url: anvil.url,
    close: () => anvil.stop(),
  };
  return env;
}

/** Deploy build/<name>.json from wallets[from]; returns { address, abi, receipt }. */
async function deploy(env, name, args = [], from = 0) {
  const a = artifact(name);
  const hash = await env.wallets[from].deployContract({ abi: a.abi, bytecode: a.bytecode, args });
  const receipt = await env.pub.waitForTransactionReceipt({ hash });
  assert.equal(receipt.status, 'success', `deploy ${name}`);
  return { address: viem.getAddress(receipt.contractAddress), abi: a.abi, receipt, name };
}

/**
 * Send a transaction with a FIXED gas limit (no estimation, so a reverting call is
 * mined instead of failing early) and return its receipt.
 */
async function sendTx(env, c, functionName, args = [], { from = 0, gas = 3_000_000n, value } = {}) {
  const hash = await env.wallets[from].writeContract({ address: c.address, abi: c.abi, functionName, args, gas, value });
  return env.pub.waitForTransactionReceipt({ hash });
}

/** Send and require success; returns the receipt. */
async function mustSend(env, c, functionName, args = [], opts = {}) {
  const r = await sendTx(env, c, functionName, args, opts);
  if (r.status !== 'success') {
    const err = await revertOfTx(env, r.transactionHash, c.abi).catch(() => null);
    assert.fail(`${functionName} reverted: ${err ? `${err.errorName}(${stringify(err.args)})` : 'unknown'}`);
  }
  return r;
}

/** Raw revert data of a mined transaction (callTracer output). */
async function revertDataOfTx(env, hash) {
  const t = await env.pub.request({ method: 'debug_traceTransaction', params: [hash, { tracer: 'callTracer' }] });
  return t.output || '0x';
}

/** Decoded revert of a mined transaction: { errorName, args }. */
async function revertOfTx(env, hash, abi) {
  const data = await revertDataOfTx(env, hash);
  return viem.decodeErrorResult({ abi, data });
}

function stringify(v) {
  return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
}

/**
 * Mine a transaction that must revert with errorName (a custom error of c.abi, or
 * "Error" for a revert string) and, when given, exactly these args.
 * Returns the receipt and the decoded error.
 */
async function expectTxRevert(env, c, functionName, args, errorName, errorArgs, opts = {}) {
  const r = await sendTx(env, c, functionName, args, opts);
  assert.equal(r.status, 'reverted', `${functionName} should revert with ${errorName}`);
  const err = await revertOfTx(env, r.transactionHash, opts.errorAbi || c.abi);
  assert.equal(err.errorName, errorName, `${functionName}: got ${err.errorName}(${stringify(err.args)})`);
  if (errorArgs !== undefined) assert.deepEqual(err.args ?? [], errorArgs);
  return { receipt: r, error: err };
}

/** eth_call that must revert with errorName (and args); for views. */
async function expectCallRevert(env, c, functionName, args, errorName, errorArgs) {
  let caught;
  try {
    await env.pub.readContract({ address: c.address, abi: c.abi, functionName, args });
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `${functionName} should revert with ${errorName}`);
  const rev = caught.walk((e) => e instanceof viem.ContractFunctionRevertedError);
  assert.ok(rev && rev.data, `${functionName}: not a decoded revert: ${caught.shortMessage || caught}`);
  assert.equal(rev.data.errorName, errorName);
  if (errorArgs !== undefined) assert.deepEqual(rev.data.args ?? [], errorArgs);
  return rev.data;
}

/** Decoded logs of a receipt for abi, in order, restricted to address when given. */
function eventsOf(receipt, abi, address) {
  const logs = address
    ? receipt.logs.filter((l) => l.address.toLowerCase() === address.toLowerCase())
    : receipt.logs;
  return viem.parseEventLogs({ abi, logs, strict: true });
}

function read(env, c, functionName, args = []) {
  return env.pub.readContract({ address: c.address, abi: c.abi, functionName, args });
}

async function blockTime(env, receipt) {
  const b = await env.pub.getBlock({ blockNumber: receipt.blockNumber });
  return b.timestamp;
}

/** Timestamp of the latest block. */
async function now(env) {
  return (await env.pub.getBlock()).timestamp;
}

/** Deterministic pseudo-random bytes (hex) for test payloads. */
function pseudoBytes(n, seed = 1) {
  let x = seed >>> 0 || 1;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return `0x${out.toString('hex')}`;
}

module.exports = {
  viem, ZERO_ADDRESS, ZERO_HASH, DEFAULT_ACCOUNTS,
  artifact, setupChain, deploy, sendTx, mustSend, revertDataOfTx, revertOfTx,
  expectTxRevert, expectCallRevert, eventsOf, read, blockTime, now, pseudoBytes, stringify,
};
