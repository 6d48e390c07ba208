// SPDX-License-Identifier: MIT
// scripts/deploy.js and scripts/anvil.js as an operator runs them: deployment file
// contents against chain state, and the "stops by itself" guarantees of the launcher.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./helpers.js');

const { viem, ZERO_ADDRESS, DEFAULT_ACCOUNTS } = h;
const ROOT = path.resolve(__dirname, '..');

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 60_000, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** True while pid exists and is not a zombie. */
function alive(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Local addresses (host:port) in LISTEN state for a port, from /proc/net/tcp{,6}. */
function listeners(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.trim().split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      const [addr, p] = cols[1].split(':');
      if (p === hexPort && cols[3] === '0A') out.push(addr);
    }
  }
  return out;
}

describe('scripts/deploy.js', () => {
  let env;
  let tmp;
  before(async () => {
    env = await h.setupChain();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wp-deploy-'));
  });
  after(async () => {
    if (env) await env.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('deploys the three contracts, mints to the 10 default accounts and writes a matching file', async () => {
    const out = path.join(tmp, 'local.json');
    const r = await run(process.execPath, ['scripts/deploy.js', '--rpc', env.url, '--out', out]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const d = JSON.parse(fs.readFileSync(out, 'utf8'));
    assert.equal(d.chainId, 31337);
    assert.equal(d.network, 'eip155:31337');
    assert.equal(d.rpcUrl, env.url);
    assert.equal(d.deployer, DEFAULT_ACCOUNTS[0].address);
    assert.deepEqual(Object.keys(d.contracts).sort(), ['TestUSDC', 'UptimeRegistry', 'ValidationRegistry']);
    assert.equal(d.erc8004ValidationRegistry, ZERO_ADDRESS);
    assert.deepEqual(d.token, { address: d.contracts.TestUSDC.address, name: 'USD Coin', symbol: 'USDC', version: '2', decimals: 6 });
    assert.deepEqual(d.x402, { network: 'eip155:31337', asset: d.contracts.TestUSDC.address, extra: { name: 'USD Coin', version: '2' } });

    for (const [name, c] of Object.entries(d.contracts)) {
      assert.equal(c.address, viem.getAddress(c.address), 'checksummed');
      // same runtime code as the artifact (immutables are filled in, so compare the size)
      assert.equal((await env.pub.getCode({ address: c.address })).length, h.artifact(name).deployedBytecode.length, name);
      const rc = await env.pub.getTransactionReceipt({ hash: c.txHash });
      assert.equal(Number(rc.blockNumber), c.blockNumber);
      assert.ok(c.blockNumber > d.startBlock && c.blockNumber <= d.endBlock);
    }
    const usdc = { address: d.contracts.TestUSDC.address, abi: h.artifact('TestUSDC').abi };
    assert.equal(d.mints.length, 10);
    for (const [i, m] of d.mints.entries()) {
      assert.equal(m.account, DEFAULT_ACCOUNTS[i].address);
      assert.equal(await h.read(env, usdc, 'balanceOf', [m.account]), BigInt(m.amount));
    }
    assert.equal(await h.read(env, usdc, 'totalSupply'), 10n * 1_000_000_000_000n);
    const reg = { address: d.contracts.ValidationRegistry.address, abi: h.artifact('ValidationRegistry').abi };
    assert.equal(await h.read(env, reg, 'erc8004ValidationRegistry'), ZERO_ADDRESS);
    const up = { address: d.contracts.UptimeRegistry.address, abi: h.artifact('UptimeRegistry').abi };
    assert.deepEqual(d.uptime, { registry: up.address, governance: DEFAULT_ACCOUNTS[0].address,
      arbiter: DEFAULT_ACCOUNTS[9].address, disputeWindow: 3600, ruleWindow: 3600, disputeBond: '10000000' });
    assert.equal(await h.read(env, up, 'token'), usdc.address);
    assert.equal(await h.read(env, up, 'arbiter'), DEFAULT_ACCOUNTS[9].address);
    assert.equal(await h.read(env, up, 'disputeBond'), 10_000_000n);
  });

  it('--erc8004 mock deploys the stand-in and wires the registry to it; options are honoured', async () => {
    const out = path.join(tmp, 'mock.json');
    const r = await run(process.execPath, ['scripts/deploy.js', '--rpc', env.url, '--out', out, '--erc8004', 'mock',
      '--mint', '5', '--token-name', 'USDC', '--token-version', '2', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '', '--quiet prints nothing');
    const d = JSON.parse(fs.readFileSync(out, 'utf8'));
    const mockAddr = d.contracts.MockERC8004ValidationRegistry.address;
    assert.equal(d.erc8004ValidationRegistry, mockAddr);
    const reg = { address: d.contracts.ValidationRegistry.address, abi: h.artifact('ValidationRegistry').abi };
    assert.equal(await h.read(env, reg, 'erc8004ValidationRegistry'), mockAddr);
    assert.deepEqual(d.x402.extra, { name: 'USDC', version: '2' });
    const usdc = { address: d.token.address, abi: h.artifact('TestUSDC').abi };
    assert.equal(await h.read(env, usdc, 'name'), 'USDC');
    assert.equal(await h.read(env, usdc, 'balanceOf', [DEFAULT_ACCOUNTS[9].address]), 5n);
  });

  it('rejects bad arguments (exit 2) and an unreachable RPC (exit 1)', async () => {
    assert.equal((await run(process.execPath, ['scripts/deploy.js', '--bogus'])).code, 2);
    assert.equal((await run(process.execPath, ['scripts/deploy.js', '--erc8004', 'nope'])).code, 2);
    const r = await run(process.execPath, ['scripts/deploy.js', '--rpc', 'http://127.0.0.1:1', '--out', path.join(tmp, 'x.json')]);
    assert.equal(r.code, 1);
    assert.equal(fs.existsSync(path.join(tmp, 'x.json')), false, 'no file on failure');
  });
});

describe('anvil launcher (scripts/lib/anvil.js, scripts/anvil.js)', () => {
  const started = [];
  after(() => {
    // Only what this file started, and only if the pid still is an anvil or launcher
    // (never kill a recycled pid).
    for (const p of started) {
      let cmd = '';
      try { cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'); } catch { continue; }
      if (alive(p) && /anvil/.test(cmd)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    }
  });

  /** Start scripts/anvil.js; resolve with { child, url, anvilPid } once it listens. */
  const launch = (args, spawnOpts = {}) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/anvil.js', '--port', '0', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...spawnOpts });
    started.push(child.pid);
    let buf = '';
    child.stdout.on('data', (b) => {
      buf += b;
      const m = buf.match(/listening on (http:\/\/127\.0\.0\.1:(\d+)) pid (\d+)/);
      if (m) { started.push(Number(m[3])); resolve({ child, url: m[1], port: Number(m[2]), anvilPid: Number(m[3]), out: () => buf }); }
    });
    child.once('exit', (code) => reject(new Error(`anvil.js exited early (${code}): ${buf}`)));
  });

  it('the test harness anvil listens on loopback only, chain id 31337', async () => {
    const env = await h.setupChain();
    try {
      assert.deepEqual(listeners(env.anvil.port), ['0100007F']);
      assert.equal(await env.pub.getChainId(), 31337);
      assert.equal((await env.pub.getBalance({ address: DEFAULT_ACCOUNTS[9].address })) > 0n, true);
    } finally {
      await env.close();
    }
    assert.equal(alive(env.anvil.pid), false, 'stop() ends anvil');
  });

  it('stops by itself after --timeout', async () => {
    const a = await launch(['--timeout', '1']);
    await new Promise((resolve) => a.child.once('exit', resolve));
    await waitFor(() => !alive(a.anvilPid), 5000, 'anvil to stop after the timeout');
    assert.match(a.out(), /stopping \(timeout 1s\)/);
  });

  it('anvil dies with the launcher when the launcher is SIGKILLed (PR_SET_PDEATHSIG)', async () => {
    const a = await launch(['--timeout', '60']);
    assert.equal(alive(a.anvilPid), true);
    a.child.kill('SIGKILL');
    await waitFor(() => !alive(a.anvilPid), 5000, 'anvil to die with its parent');
  });

  it('stops when the process that started the launcher exits', async () => {
    const log = path.join(os.tmpdir(), `wp-anvil-${process.pid}.log`);
    try {
      // sh starts the launcher in the background, waits until it listens, then exits:
      // the running launcher is orphaned.
      await run('/bin/sh', ['-c', `${JSON.stringify(process.execPath)} scripts/anvil.js --port 0 --timeout 60 > ${JSON.stringify(log)} 2>&1 &
        for i in $(seq 100); do grep -q listening ${JSON.stringify(log)} && break; sleep 0.1; done`]);
      let anvilPid = 0;
      await waitFor(() => {
        const m = fs.existsSync(log) && fs.readFileSync(log, 'utf8').match(/pid (\d+)/);
        if (m) anvilPid = Number(m[1]);
        return Boolean(m);
      }, 10_000, 'the orphaned launcher to start anvil');
      started.push(anvilPid);
      await waitFor(() => !alive(anvilPid), 5000, 'the orphaned launcher to stop anvil');
      assert.match(fs.readFileSync(log, 'utf8'), /stopping \(parent \d+ exited\)/);
    } finally {
      fs.rmSync(log, { force: true });
    }
  });

  it('SIGTERM stops cleanly; --deploy deploys to the fresh chain', async () => {
    const a = await launch(['--timeout', '60', '--deploy', '--out', path.join(os.tmpdir(), `wp-launch-${process.pid}.json`), '--quiet']);
    await waitFor(() => /anvil: deployed/.test(a.out()), 20_000, 'deployment');
    const d = JSON.parse(fs.readFileSync(path.join(os.tmpdir(), `wp-launch-${process.pid}.json`), 'utf8'));
    // a fresh anvil gives the deterministic CREATE addresses of the default deployer
    assert.equal(d.contracts.TestUSDC.address, '0x5FbDB2315678afecb367f032d93F642f64180aa3');
    assert.equal(d.contracts.ValidationRegistry.address, '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512');
    fs.rmSync(path.join(os.tmpdir(), `wp-launch-${process.pid}.json`), { force: true });
    const exited = new Promise((resolve) => a.child.once('exit', (code) => resolve(code)));
    a.child.kill('SIGTERM');
    assert.equal(await exited, 0);
    await waitFor(() => !alive(a.anvilPid), 5000, 'anvil to stop on SIGTERM');
  });
});
