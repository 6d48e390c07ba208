// SPDX-License-Identifier: MIT
// UptimeRegistry on a real anvil: providers, collateral, leases, anchored and forced
// rotations, linked claims (read back with ethers), disputes upheld / dismissed /
// expired with the token balances they move, and the gas of every operation
// (printed, written to build/uptime-gas.json, quoted in contracts/README.md).
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const ethers = require('ethers');
const h = require('./helpers.js');

const { viem, ZERO_HASH } = h;
const PROVIDER = 1;
const CONSUMER = 2;
const COLLATERAL = 1_000_000_000n;   // 1,000 tokens
const BOND = 10_000_000n;            // 10 tokens
const WINDOW = 3600n;
const RULE = 1800n;

const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
const sha256 = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts.map((p) => Buffer.from(p)))).digest();

/** n-byte big-endian of a non-negative integer. */
function uint(v, n) {
  const b = Buffer.alloc(n);
  let x = BigInt(v);
  for (let i = n - 1; i >= 0; i--) { b[i] = Number(x & 0xffn); x >>= 8n; }
  return b;
}

function edKey() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { raw, hex: hex(raw), sign: (m) => crypto.sign(null, m, privateKey) };
}

/** The 194-byte claim of docs/uptime.md section 3, signed by key. */
function makeClaim({ leaseId, index, first, count, start, end, root, prev, key }) {
  const body = Buffer.concat([
    Buffer.from([1, 0]), Buffer.from(leaseId.slice(2), 'hex'), uint(index, 4), uint(first, 8), uint(count, 4),
    uint(start, 8), uint(end, 8), root, Buffer.from(prev.slice(2), 'hex'),
  ]);
  assert.equal(body.length, 130);
  const claimHash = sha256(Buffer.from('WP-UPTIME-CLAIM1'), body);
  const claim = Buffer.concat([body, key.sign(claimHash)]);
  assert.equal(claim.length, 194);
  return { bytes: hex(claim), claimHash: hex(claimHash) };
}

describe('UptimeRegistry', () => {
  let env, usdc, reg;
  const acct = { gov: 0, provider: 1, consumer: 2, fisher: 3, arbiter: 9 };
  const addr = (i) => env.accounts[i].address;
  const pk = edKey();         // the provider's identity key (also its first lease key)
  const ck = edKey();         // the consumer's
  const E = 5; const K = 2;   // the demo's sizes: claims of 10 beats
  let leaseId;
  const claims = [];
  const gas = [];
  const measure = (op, r) => { gas.push({ op, gasUsed: Number(r.gasUsed) }); return r; };
  const balance = (i) => h.read(env, usdc, 'balanceOf', [addr(i)]);

  before(async () => {
    env = await h.setupChain();
    usdc = await h.deploy(env, 'TestUSDC', ['USD Coin', 'USDC', '2']);
    reg = await h.deploy(env, 'UptimeRegistry', [usdc.address, addr(acct.gov), addr(acct.arbiter), WINDOW, RULE, BOND]);
    for (const i of [acct.provider, acct.consumer, acct.fisher]) {
      await h.mustSend(env, usdc, 'mint', [addr(i), 10n * COLLATERAL]);
      await h.mustSend(env, usdc, 'approve', [reg.address, 2n ** 255n], { from: i });
    }
  });
  after(async () => { if (env) await env.close(); });

  it('refuses a constructor without a token, governance, arbiter or windows', async () => {
    const a = h.artifact('UptimeRegistry');
    for (const args of [
      [addr(0), addr(0), addr(9), WINDOW, RULE, BOND],              // an EOA is not a token
      [usdc.address, h.ZERO_ADDRESS, addr(9), WINDOW, RULE, BOND],
      [usdc.address, addr(0), h.ZERO_ADDRESS, WINDOW, RULE, BOND],
      [usdc.address, addr(0), addr(9), 0n, RULE, BOND],
    ]) {
      const hash = await env.wallets[0].deployContract({ abi: a.abi, bytecode: a.bytecode, args, gas: 3_000_000n });
      assert.equal((await env.pub.waitForTransactionReceipt({ hash })).status, 'reverted');
    }
  });

  it('registers a provider with collateral and a lease whose id is the agents\' SHA-256', async () => {
    measure('registerProvider (with collateral)',
      await h.mustSend(env, reg, 'registerProvider', [pk.hex, COLLATERAL], { from: acct.provider }));
    await h.expectTxRevert(env, reg, 'registerProvider', [pk.hex, 0n], 'AlreadyRegistered', [], { from: acct.fisher });
    const p = await h.read(env, reg, 'getProvider', [pk.hex]);
    assert.equal(p.owner, addr(acct.provider));
    assert.equal(p.collateral, COLLATERAL);

    const start = 1764900000000000000n;
    const nonce = hex(crypto.randomBytes(16));
    const args = [pk.hex, pk.hex, ck.hex, start, nonce, addr(acct.consumer), E, K];
    await h.expectTxRevert(env, reg, 'registerLease', args, 'NotAllowed', [], { from: acct.fisher });
    await h.expectTxRevert(env, reg, 'registerLease', [...args.slice(0, 6), 61, K], 'BadArgument', ['sizes'], { from: acct.provider });
    const r = measure('registerLease', await h.mustSend(env, reg, 'registerLease', args, { from: acct.provider }));
    leaseId = hex(sha256(Buffer.from('workproof-lease-v1'), pk.raw, ck.raw, uint(start, 8), Buffer.from(nonce.slice(2), 'hex')));
    const ev = h.eventsOf(r, reg.abi, reg.address).find((e) => e.eventName === 'LeaseRegistered');
    assert.equal(ev.args.leaseId, leaseId);
    const l = await h.read(env, reg, 'getLease', [leaseId]);
    assert.equal(l.consumer, addr(acct.consumer));
    assert.equal(l.epochBeats, E);
    assert.equal(l.nextClaim, 0);
    assert.equal(await h.read(env, reg, 'keyStatus', [leaseId, PROVIDER, pk.hex]), 2n ** 64n);
    await h.expectTxRevert(env, reg, 'registerLease', args, 'AlreadyRegistered', [], { from: acct.provider });
  });

  it('accepts linked claims in order and refuses every broken one', async () => {
    let prev = ZERO_HASH;
    for (let i = 0; i < 3; i++) {
      const c = makeClaim({ leaseId, index: i, first: i * E * K, count: E * K, start: 1000 + i, end: 2000 + i,
        root: crypto.randomBytes(32), prev, key: pk });
      const r = await h.mustSend(env, reg, 'postClaim', [c.bytes, pk.hex], { from: acct.provider });
      if (i < 2) measure(i === 0 ? 'postClaim (claim 0)' : 'postClaim (linked)', r);
      const ev = h.eventsOf(r, reg.abi, reg.address)[0];
      assert.equal(ev.args.claimHash, c.claimHash, 'the registry hashes claims as the core does');
      claims.push(c);
      prev = c.claimHash;
    }
    const good = { leaseId, index: 3, first: 3 * E * K, count: E * K, start: 1, end: 2, root: crypto.randomBytes(32), prev, key: pk };
    const bad = async (over, why, from = acct.provider, signer = pk.hex, err = 'BadClaim') => {
      const c = makeClaim({ ...good, ...over });
      await h.expectTxRevert(env, reg, 'postClaim', [c.bytes, signer], err, why === null ? [] : [why], { from });
    };
    await bad({ index: 4, first: 4 * E * K }, 'index');
    await bad({ first: 3 * E * K + 1 }, 'first sequence');
    await bad({ count: E * K + 1 }, 'beat count');
    await bad({ count: 0 }, 'beat count');
    await bad({ start: 3, end: 2 }, 'period');
    await bad({ prev: claims[1].claimHash }, 'prevClaimHash');
    await bad({}, null, acct.fisher, pk.hex, 'NotAllowed');
    await bad({}, ck.hex, acct.provider, ck.hex, 'KeyNotAccepted');
    const short = makeClaim(good).bytes.slice(0, -2);
    await h.expectTxRevert(env, reg, 'postClaim', [short, pk.hex], 'BadClaim', ['length'], { from: acct.provider });
    const v2 = `0x02${makeClaim(good).bytes.slice(4)}`;
    await h.expectTxRevert(env, reg, 'postClaim', [v2, pk.hex], 'BadClaim', ['version'], { from: acct.provider });
  });

  it('claims read back with ethers: the getter and the ClaimPosted log with the 194 bytes', async () => {
    const provider = new ethers.JsonRpcProvider(env.url, 31337, { staticNetwork: true });
    try {
      const c = new ethers.Contract(reg.address, h.artifact('UptimeRegistry').abi, provider);
      const stored = await c.getClaim(leaseId, 1);
      assert.equal(stored.claimHash, claims[1].claimHash);
      assert.equal(stored.firstSequence, BigInt(E * K));
      assert.equal(stored.beatCount, BigInt(E * K));
      assert.equal(stored.state, 1n);
      const logs = await c.queryFilter(c.filters.ClaimPosted(leaseId), 0, 'latest');
      assert.deepEqual(logs.map((l) => l.args.claim), claims.map((x) => x.bytes));
      assert.deepEqual(logs.map((l) => Number(l.args.index)), [0, 1, 2]);
      assert.equal((await c.getLease(leaseId)).lastClaimHash, claims[2].claimHash);
    } finally {
      provider.destroy();
    }
  });

  it('anchors rotations by their owners; a forced rotation revokes the old key from its sequence on', async () => {
    const pk2 = edKey(); const ck2 = edKey(); const pk3 = edKey();
    const rec = () => hex(crypto.randomBytes(32));
    await h.expectTxRevert(env, reg, 'anchorRotation', [leaseId, PROVIDER, 0, pk2.hex, 35n, rec()], 'NotAllowed', [], { from: acct.consumer });
    await h.expectTxRevert(env, reg, 'anchorRotation', [leaseId, PROVIDER, 1, pk2.hex, 35n, rec()], 'BadArgument', ['index'], { from: acct.provider });
    const recHash = rec();
    measure('anchorRotation', await h.mustSend(env, reg, 'anchorRotation', [leaseId, PROVIDER, 0, pk2.hex, 35n, recHash], { from: acct.provider }));
    assert.equal(await h.read(env, reg, 'rotationHash', [leaseId, PROVIDER, 0]), recHash);
    await h.mustSend(env, reg, 'anchorRotation', [leaseId, CONSUMER, 0, ck2.hex, 35n, rec()], { from: acct.consumer });
    await h.expectTxRevert(env, reg, 'anchorRotation', [leaseId, PROVIDER, 1, pk.hex, 40n, rec()], 'BadArgument', ['newKey'], { from: acct.provider });

    // pk2 is compromised: governance replaces it from sequence 45 (record 1)
    await h.expectTxRevert(env, reg, 'forceRotation', [leaseId, PROVIDER, 1, pk3.hex, 45n, rec()], 'NotAllowed', [], { from: acct.provider });
    const r = measure('forceRotation', await h.mustSend(env, reg, 'forceRotation', [leaseId, PROVIDER, 1, pk3.hex, 45n, rec()], { from: acct.gov }));
    const revoked = h.eventsOf(r, reg.abi, reg.address).filter((e) => e.eventName === 'KeyRevoked');
    assert.deepEqual(revoked.map((e) => [e.args.key, e.args.fromSequence]), [[pk2.hex, 45n]]);
    assert.equal(await h.read(env, reg, 'keyStatus', [leaseId, PROVIDER, pk2.hex]), 46n);

    // claim 3 covers 30..39: pk2 is still good there; claim 4 covers 40..49: pk2 no longer
    const c3 = makeClaim({ leaseId, index: 3, first: 30, count: 10, start: 5, end: 6, root: crypto.randomBytes(32),
      prev: claims[2].claimHash, key: pk2 });
    await h.mustSend(env, reg, 'postClaim', [c3.bytes, pk2.hex], { from: acct.provider });
    claims.push(c3);
    const c4 = { leaseId, index: 4, first: 40, count: 10, start: 7, end: 8, root: crypto.randomBytes(32), prev: c3.claimHash };
    await h.expectTxRevert(env, reg, 'postClaim', [makeClaim({ ...c4, key: pk2 }).bytes, pk2.hex], 'KeyNotAccepted', [pk2.hex], { from: acct.provider });
    // ... even a claim ending right at the revoked sequence
    await h.expectTxRevert(env, reg, 'postClaim', [makeClaim({ ...c4, count: 6, key: pk2 }).bytes, pk2.hex], 'KeyNotAccepted', [pk2.hex], { from: acct.provider });
    const ok = makeClaim({ ...c4, key: pk3 });
    await h.mustSend(env, reg, 'postClaim', [ok.bytes, pk3.hex], { from: acct.provider });
    claims.push(ok);
  });

  it('a dispute upheld slashes the collateral, refunds the consumer and rewards the disputer', async () => {
    const evidence = h.pseudoBytes(834, 3);   // the size of a disclosure proof
    await h.expectTxRevert(env, reg, 'openDispute', [leaseId, 9, 1, evidence], 'ClaimNotPosted', [], { from: acct.consumer });
    await h.expectTxRevert(env, reg, 'openDispute', [leaseId, 0, 6, evidence], 'BadArgument', ['kind'], { from: acct.consumer });
    await h.expectTxRevert(env, reg, 'openDispute', [leaseId, 0, 1, '0x'], 'BadArgument', ['evidence'], { from: acct.consumer });
    const before = { consumer: await balance(acct.consumer), reg: await h.read(env, usdc, 'balanceOf', [reg.address]) };
    const r = measure('openDispute (834-byte evidence)',
      await h.mustSend(env, reg, 'openDispute', [leaseId, 4, 1, evidence], { from: acct.consumer }));
    const ev = h.eventsOf(r, reg.abi, reg.address).find((e) => e.eventName === 'DisputeOpened');
    assert.equal(ev.args.evidence, evidence);
    const id = ev.args.id;
    const d = await h.read(env, reg, 'getDispute', [id]);
    assert.equal(d.evidenceHash, viem.keccak256(evidence));
    assert.equal(await balance(acct.consumer), before.consumer - BOND);
    assert.equal((await h.read(env, reg, 'getClaim', [leaseId, 4])).state, 2);
    await h.expectTxRevert(env, reg, 'withdrawCollateral', [pk.hex, 1n, addr(acct.provider)], 'CollateralLocked', [], { from: acct.provider });

    const report = hex(sha256(Buffer.from('{"ruling":"upheld"}')));
    await h.expectTxRevert(env, reg, 'resolve', [id, true, 100n, 50n, report], 'NotAllowed', [], { from: acct.gov });
    await h.expectTxRevert(env, reg, 'resolve', [id, true, 50n, 100n, report], 'InsufficientCollateral', [], { from: acct.arbiter });
    await h.expectTxRevert(env, reg, 'resolve', [id, true, COLLATERAL + 1n, 0n, report], 'InsufficientCollateral', [], { from: acct.arbiter });
    const slash = 100_000_000n; const refund = 80_000_000n;
    measure('resolve (upheld)', await h.mustSend(env, reg, 'resolve', [id, true, slash, refund, report], { from: acct.arbiter }));
    assert.equal(await balance(acct.consumer), before.consumer - BOND + refund + (slash - refund) + BOND,
      'the consumer, also the disputer here, gets the refund, the reward and its bond');
    assert.equal((await h.read(env, reg, 'getProvider', [pk.hex])).collateral, COLLATERAL - slash);
    assert.equal(await h.read(env, usdc, 'balanceOf', [reg.address]), before.reg - slash);
    assert.equal((await h.read(env, reg, 'getDispute', [id])).state, 2);
    assert.equal((await h.read(env, reg, 'getClaim', [leaseId, 4])).state, 3);
    await h.expectTxRevert(env, reg, 'resolve', [id, true, 1n, 0n, report], 'NotOpen', [], { from: acct.arbiter });
  });

  it('a false dispute is dismissed and its bond goes to the provider; an unruled one expires', async () => {
    const fisher0 = await balance(acct.fisher); const prov0 = await balance(acct.provider);
    const r = await h.mustSend(env, reg, 'openDispute', [leaseId, 4, 2, h.pseudoBytes(416, 5)], { from: acct.fisher });
    const id = h.eventsOf(r, reg.abi, reg.address).find((e) => e.eventName === 'DisputeOpened').args.id;
    await h.expectTxRevert(env, reg, 'resolve', [id, false, 1n, 0n, ZERO_HASH], 'BadArgument', ['dismissed with amounts'], { from: acct.arbiter });
    measure('resolve (dismissed)', await h.mustSend(env, reg, 'resolve', [id, false, 0n, 0n, ZERO_HASH], { from: acct.arbiter }));
    assert.equal(await balance(acct.fisher), fisher0 - BOND);
    assert.equal(await balance(acct.provider), prov0 + BOND);

    const r2 = await h.mustSend(env, reg, 'openDispute', [leaseId, 4, 3, h.pseudoBytes(600, 6)], { from: acct.fisher });
    const id2 = h.eventsOf(r2, reg.abi, reg.address).find((e) => e.eventName === 'DisputeOpened').args.id;
    await h.expectTxRevert(env, reg, 'expire', [id2], 'TooEarly', [], { from: acct.fisher });
    await env.test.increaseTime({ seconds: Number(RULE) });
    await env.test.mine({ blocks: 1 });
    await h.expectTxRevert(env, reg, 'resolve', [id2, true, 1n, 0n, ZERO_HASH], 'WindowClosed', [], { from: acct.arbiter });
    measure('expire', await h.mustSend(env, reg, 'expire', [id2], { from: acct.gov }));
    assert.equal(await balance(acct.fisher), fisher0 - BOND, 'the expired dispute\'s bond came back');
    assert.equal((await h.read(env, reg, 'getDispute', [id2])).state, 4);
  });

  it('the dispute window closes; then the collateral can be withdrawn', async () => {
    await env.test.increaseTime({ seconds: Number(WINDOW) });
    await env.test.mine({ blocks: 1 });
    await h.expectTxRevert(env, reg, 'openDispute', [leaseId, 4, 1, '0x01'], 'WindowClosed', [], { from: acct.consumer });
    await h.expectTxRevert(env, reg, 'withdrawCollateral', [pk.hex, 1n, addr(acct.provider)], 'NotAllowed', [], { from: acct.consumer });
    const left = (await h.read(env, reg, 'getProvider', [pk.hex])).collateral;
    await h.expectTxRevert(env, reg, 'withdrawCollateral', [pk.hex, left + 1n, addr(acct.provider)], 'InsufficientCollateral', [], { from: acct.provider });
    const p0 = await balance(acct.provider);
    measure('withdrawCollateral', await h.mustSend(env, reg, 'withdrawCollateral', [pk.hex, left, addr(acct.provider)], { from: acct.provider }));
    assert.equal(await balance(acct.provider), p0 + left);
  });

  it('prints the gas of every operation (build/uptime-gas.json)', () => {
    const lines = ['UptimeRegistry gas (anvil receipts, solc 0.8.37, optimizer 200 runs, evm cancun)',
      ...gas.map((g) => `${g.op.padEnd(40)} ${String(g.gasUsed).padStart(8)}`)];
    console.log(lines.join('\n'));
    fs.writeFileSync(path.join(__dirname, '..', 'build', 'uptime-gas.json'), JSON.stringify(gas, null, 2) + '\n');
    const post = gas.find((g) => g.op === 'postClaim (linked)').gasUsed;
    assert.ok(post < 150_000, `postClaim costs ${post} gas`);
  });
});
