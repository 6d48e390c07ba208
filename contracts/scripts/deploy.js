#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Deploy TestUSDC, ValidationRegistry and UptimeRegistry to an EVM JSON-RPC endpoint (anvil by default),
// mint test tokens to anvil's 10 default accounts and write a deployment file.
//
// usage: node scripts/deploy.js [options]
//   --rpc URL            JSON-RPC endpoint (default $RPC_URL or http://127.0.0.1:8545)
//   --out FILE           deployment file (default contracts/deployments/local.json)
//   --erc8004 X          ERC-8004 Validation Registry for the bridge: an address,
//                        "mock" (deploy MockERC8004ValidationRegistry, local tests only)
//                        or "none" (default: forwarding off)
//   --mint UNITS         token units minted to each default account (default 1000000000000
//                        = 1,000,000.000000 tokens at 6 decimals; 0 = no minting)
//   --token-name S       EIP-712 domain name / ERC-20 name   (default "USD Coin")
//   --token-symbol S     ERC-20 symbol                       (default "USDC")
//   --token-version S    EIP-712 domain version              (default "2")
//   --governance ADDR    UptimeRegistry governance (forced rotations; default: the deployer)
//   --arbiter ADDR       UptimeRegistry arbiter (rulings; default: anvil account #9)
//   --dispute-window S   seconds a posted claim can be disputed (default 3600)
//   --rule-window S      seconds the arbiter has to rule (default 3600)
//   --dispute-bond UNITS token units a disputer stakes (default 10000000 = 10 tokens)
//   --quiet
// The deployer is anvil's first default account unless $DEPLOYER_PRIVATE_KEY is set.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { build, BUILD_DIR } = require('./build.js');
const { DEFAULT_ACCOUNTS } = require('./lib/anvil.js');

const ROOT = path.resolve(__dirname, '..');
const ZERO = '0x0000000000000000000000000000000000000000';

function parseArgs(argv) {
  const o = {
    rpc: process.env.RPC_URL || 'http://127.0.0.1:8545',
    out: path.join(ROOT, 'deployments', 'local.json'),
    erc8004: 'none',
    mint: 1_000_000_000_000n,
    tokenName: 'USD Coin',
    tokenSymbol: 'USDC',
    tokenVersion: '2',
    governance: null,
    arbiter: DEFAULT_ACCOUNTS[9].address,
    disputeWindow: 3600n,
    ruleWindow: 3600n,
    disputeBond: 10_000_000n,
    quiet: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case '--rpc': o.rpc = val(); break;
      case '--out': o.out = path.resolve(val()); break;
      case '--erc8004': o.erc8004 = val(); break;
      case '--mint': o.mint = BigInt(val()); break;
      case '--token-name': o.tokenName = val(); break;
      case '--token-symbol': o.tokenSymbol = val(); break;
      case '--token-version': o.tokenVersion = val(); break;
      case '--governance': o.governance = val(); break;
      case '--arbiter': o.arbiter = val(); break;
      case '--dispute-window': o.disputeWindow = BigInt(val()); break;
      case '--rule-window': o.ruleWindow = BigInt(val()); break;
      case '--dispute-bond': o.disputeBond = BigInt(val()); break;
      case '--quiet': o.quiet = true; break;
      case '-h': case '--help':
        process.stdout.write(fs.readFileSync(__filename, 'utf8').split('\n').slice(3, 24).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (o.mint < 0n) throw new Error('--mint must be >= 0');
  for (const k of ['governance', 'arbiter']) {
    if (o[k] !== null && !/^0x[0-9a-fA-F]{40}$/.test(o[k])) throw new Error(`--${k} must be an address`);
  }
  if (o.disputeWindow <= 0n || o.ruleWindow <= 0n) throw new Error('--dispute-window and --rule-window must be > 0');
  if (o.disputeBond < 0n) throw new Error('--dispute-bond must be >= 0');
  if (!['none', 'mock'].includes(o.erc8004) && !/^0x[0-9a-fA-F]{40}$/.test(o.erc8004)) {
    throw new Error('--erc8004 must be an address, "mock" or "none"');
  }
  return o;
}

function artifact(name) {
  return JSON.parse(fs.readFileSync(path.join(BUILD_DIR, `${name}.json`), 'utf8'));
}

/**
 * Deploy everything. Returns the deployment object (also written to opts.out unless
 * opts.out is null).
 */
async function deploy(opts) {
  const viem = await import('viem');
  const { privateKeyToAccount } = await import('viem/accounts');
  const log = (...a) => { if (!opts.quiet) console.log(...a); };

  if (build({ quiet: true }) !== 0) throw new Error('contract build failed');

  const transport = viem.http(opts.rpc, { retryCount: 0, timeout: 30_000 });
  const probe = viem.createPublicClient({ transport });
  const chainId = await probe.getChainId();
  const chain = viem.defineChain({
    id: chainId,
    name: `chain-${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [opts.rpc] } },
  });
  // anvil mines on submission: poll receipts fast, never serve a cached block number.
  const pub = viem.createPublicClient({ chain, transport, pollingInterval: 50, cacheTime: 0 });
  const account = privateKeyToAccount(process.env.DEPLOYER_PRIVATE_KEY || DEFAULT_ACCOUNTS[0].privateKey);
  const wallet = viem.createWalletClient({ account, chain, transport, pollingInterval: 50, cacheTime: 0 });
  const startBlock = Number(await pub.getBlockNumber());

  const deployOne = async (name, args) => {
    const a = artifact(name);
    const hash = await wallet.deployContract({ abi: a.abi, bytecode: a.bytecode, args });
    const r = await pub.waitForTransactionReceipt({ hash });
    if (r.status !== 'success' || !r.contractAddress) throw new Error(`${name} deployment reverted (${hash})`);
    log(`deployed ${name.padEnd(30)} ${viem.getAddress(r.contractAddress)} block ${r.blockNumber} gas ${r.gasUsed}`);
    return {
      address: viem.getAddress(r.contractAddress),
      txHash: hash,
      blockNumber: Number(r.blockNumber),
      gasUsed: Number(r.gasUsed),
      constructorArgs: args.map((a) => (typeof a === 'bigint' ? a.toString() : a)),
    };
  };

  const contracts = {};
  contracts.TestUSDC = await deployOne('TestUSDC', [opts.tokenName, opts.tokenSymbol, opts.tokenVersion]);

  let erc8004 = ZERO;
  if (opts.erc8004 === 'mock') {
    contracts.MockERC8004ValidationRegistry = await deployOne('MockERC8004ValidationRegistry', []);
    erc8004 = contracts.MockERC8004ValidationRegistry.address;
  } else if (opts.erc8004 !== 'none') {
    erc8004 = viem.getAddress(opts.erc8004);
  }
  contracts.ValidationRegistry = await deployOne('ValidationRegistry', [erc8004]);
  const uptime = {
    governance: viem.getAddress(opts.governance || account.address),
    arbiter: viem.getAddress(opts.arbiter),
    disputeWindow: Number(opts.disputeWindow),
    ruleWindow: Number(opts.ruleWindow),
    disputeBond: opts.disputeBond.toString(),
  };
  contracts.UptimeRegistry = await deployOne('UptimeRegistry', [contracts.TestUSDC.address, uptime.governance,
    uptime.arbiter, opts.disputeWindow, opts.ruleWindow, opts.disputeBond]);

  const mints = [];
  if (opts.mint > 0n) {
    const usdc = artifact('TestUSDC');
    // Send all mints with consecutive nonces, then wait: one round trip per block, not per tx.
    let nonce = await pub.getTransactionCount({ address: account.address, blockTag: 'pending' });
    const hashes = [];
    for (const acct of DEFAULT_ACCOUNTS) {
      hashes.push([acct.address, await wallet.writeContract({
        address: contracts.TestUSDC.address, abi: usdc.abi, functionName: 'mint',
        args: [acct.address, opts.mint], nonce: nonce++, gas: 100_000n,
      })]);
    }
    for (const [to, hash] of hashes) {
      const r = await pub.waitForTransactionReceipt({ hash });
      if (r.status !== 'success') throw new Error(`mint to ${to} reverted (${hash})`);
      mints.push({ account: to, amount: opts.mint.toString(), txHash: hash, blockNumber: Number(r.blockNumber) });
    }
    log(`minted ${opts.mint} units to each of ${mints.length} accounts`);
  }

  const deployment = {
    chainId,
    network: `eip155:${chainId}`,
    rpcUrl: opts.rpc,
    deployer: account.address,
    deployedAt: new Date().toISOString(),
    startBlock,
    endBlock: Number(await pub.getBlockNumber()),
    contracts,
    erc8004ValidationRegistry: erc8004,
    token: {
      address: contracts.TestUSDC.address,
      name: opts.tokenName,
      symbol: opts.tokenSymbol,
      version: opts.tokenVersion,
      decimals: 6,
    },
    x402: {
      network: `eip155:${chainId}`,
      asset: contracts.TestUSDC.address,
      extra: { name: opts.tokenName, version: opts.tokenVersion },
    },
    uptime: { registry: contracts.UptimeRegistry.address, ...uptime },
    mints,
  };

  if (opts.out) {
    fs.mkdirSync(path.dirname(opts.out), { recursive: true });
    const tmp = `${opts.out}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(deployment, null, 2) + '\n');
    fs.renameSync(tmp, opts.out); // readers never see a half-written file
    log(`wrote ${path.relative(process.cwd(), opts.out)}`);
  }
  return deployment;
}

module.exports = { deploy, parseArgs };

if (require.main === module) {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    console.error(`deploy: ${err.message}`);
    process.exit(2);
  }
  deploy(opts).catch((err) => {
    console.error(`deploy: ${err && err.shortMessage ? err.shortMessage : err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  });
}
