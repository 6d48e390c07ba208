// SPDX-License-Identifier: MIT
//
// Start the npm-pinned anvil on loopback and make sure it stops by itself.
//
// Three independent stops, because a test runner can die in any of these ways:
//   1. stop() / process exit of the parent (normal path, SIGINT/SIGTERM included);
//   2. the parent is SIGKILLed: on Linux the child is started through
//      `setpriv --pdeathsig KILL` (util-linux), so the kernel kills anvil when the
//      thread that spawned it dies; setpriv exec()s anvil, so the pid is anvil's;
//   3. a wall-clock timeout (default 10 minutes for tests) kills it regardless.
'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');

/** Anvil's default (deterministic) mnemonic accounts, chain id 31337. */
const DEFAULT_ACCOUNTS = [
  ['0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266', '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80'],
  ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8', '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d'],
  ['0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC', '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a'],
  ['0x90F79bf6EB2c4f870365E785982E1f101E93b906', '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6'],
  ['0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65', '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a'],
  ['0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc', '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba'],
  ['0x976EA74026E726554dB657fA54763abd0C3a0aa9', '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e'],
  ['0x14dC79964da2C08b23698B3D3cc7Ca32193d9955', '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356'],
  ['0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f', '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97'],
  ['0xa0Ee7A142d267C1f36714E4a8F75612F20a79720', '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6'],
].map(([address, privateKey]) => ({ address, privateKey }));

const PLATFORM_PACKAGE = {
  linux: { x64: 'linux-amd64', arm64: 'linux-arm64' },
  darwin: { x64: 'darwin-amd64', arm64: 'darwin-arm64' },
  win32: { x64: 'win32-amd64' },
};

/**
 * Path of the anvil executable. package.json pins the platform package
 * @foundry-rs/anvil-linux-amd64 directly (the binary is inside it): the umbrella
 * package @foundry-rs/anvil only adds a Node wrapper that re-spawns the binary (a
 * SIGKILL of the wrapper would orphan anvil) and optional dependencies for platforms
 * this registry does not carry, which make `npm ci` reject the lockfile.
 * $ANVIL_BIN overrides (e.g. a Foundry install on another platform).
 */
function anvilBinary() {
  if (process.env.ANVIL_BIN) return process.env.ANVIL_BIN;
  const plat = (PLATFORM_PACKAGE[process.platform] || {})[process.arch];
  if (plat) {
    try {
      return require.resolve(`@foundry-rs/anvil-${plat}/bin/anvil${process.platform === 'win32' ? '.exe' : ''}`,
        { paths: [ROOT] });
    } catch { /* not installed for this platform */ }
  }
  const bin = path.join(ROOT, 'node_modules', '.bin', 'anvil');
  if (fs.existsSync(bin)) return bin;
  throw new Error(`anvil not installed for ${process.platform}-${process.arch}: run \`npm ci\` in contracts/ ` +
    '(the pinned binary package is @foundry-rs/anvil-linux-amd64) or set ANVIL_BIN');
}

function setprivPath() {
  if (process.platform !== 'linux') return null;
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) if (fs.existsSync(p)) return p;
  return null;
}

/**
 * Start anvil on 127.0.0.1.
 * @param {object} [opts]
 * @param {number} [opts.port=0]        0 = let anvil pick a free port (read back from its output)
 * @param {number} [opts.chainId=31337]
 * @param {number} [opts.timeoutMs=600000] kill anvil after this long (0 = never; avoid)
 * @param {string[]} [opts.args]        extra anvil arguments
 * @param {(line: string) => void} [opts.onOutput]
 * @returns {Promise<{url: string, port: number, pid: number, child: import('node:child_process').ChildProcess, stop: () => Promise<void>}>}
 */
function startAnvil(opts = {}) {
  const port = opts.port ?? 0;
  const chainId = opts.chainId ?? 31337;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const anvilArgs = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId),
    ...(opts.args || [])];
  const bin = anvilBinary();
  const setpriv = setprivPath();
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...anvilArgs]] : [bin, anvilArgs];

  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let settled = false;
    let out = '';
    let exited = false;
    const exitPromise = new Promise((r) => child.once('exit', () => { exited = true; r(); }));

    const kill = () => { if (!exited) { try { child.kill('SIGKILL'); } catch { /* gone */ } } };
    const onParentExit = () => kill();
    process.once('exit', onParentExit);

    const timer = timeoutMs > 0 ? setTimeout(() => {
      process.stderr.write(`anvil: timeout after ${timeoutMs} ms, killing pid ${child.pid}\n`);
      kill();
    }, timeoutMs) : null;
    if (timer) timer.unref();

    const stop = async () => {
      if (timer) clearTimeout(timer);
      process.removeListener('exit', onParentExit);
      if (!exited) {
        child.kill('SIGTERM');
        const t = setTimeout(kill, 2000);
        await exitPromise;
        clearTimeout(t);
      }
    };

    const onData = (buf) => {
      const s = buf.toString();
      if (opts.onOutput) for (const line of s.split('\n')) if (line) opts.onOutput(line);
      if (settled) return;
      out += s;
      const m = out.match(/Listening on 127\.0\.0\.1:(\d+)/);
      if (m) {
        settled = true;
        out = '';
        const p = Number(m[1]);
        resolve({ url: `http://127.0.0.1:${p}`, port: p, pid: child.pid, child, stop });
      } else if (out.length > 1 << 20) {
        out = out.slice(-4096);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', (err) => { if (!settled) { settled = true; reject(err); } });
    child.once('exit', (code, sig) => {
      if (timer) clearTimeout(timer);
      process.removeListener('exit', onParentExit);
      if (!settled) {
        settled = true;
        reject(new Error(`anvil exited before listening (code ${code}, signal ${sig}): ${out.slice(-2000)}`));
      }
    });
  });
}

module.exports = { startAnvil, anvilBinary, DEFAULT_ACCOUNTS };
