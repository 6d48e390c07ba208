// SPDX-License-Identifier: MIT
// ValidationRegistry against a real anvil: every function, revert and event.
'use strict';

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers.js');

const { viem, ZERO_ADDRESS, ZERO_HASH } = h;
const METHOD = 'reexecution-v1-code-execution';

const taskHashOf = (s) => viem.sha256(viem.toHex(s));
const tagOf = (method) => viem.keccak256(viem.toHex(method));

describe('ValidationRegistry', () => {
  let env;
  let reg;
  const layout = {};

  before(async () => {
    env = await h.setupChain();
    for (const s of h.artifact('ValidationRegistry').storageLayout.storage) layout[s.label] = BigInt(s.slot);
  });
  after(async () => { if (env) await env.close(); });
  beforeEach(async () => { reg = await h.deploy(env, 'ValidationRegistry', [ZERO_ADDRESS]); });

  const expectedId = (nonce, verifier, taskHash) => viem.keccak256(viem.encodeAbiParameters(
    viem.parseAbiParameters('uint256, address, uint256, address, bytes32'),
    [31337n, reg.address, BigInt(nonce), verifier, taskHash],
  ));
  const attest = (from, taskHash, result = true, proof = h.pseudoBytes(200), method = METHOD, opts = {}) =>
    h.mustSend(env, reg, 'attestValidation', [taskHash, method, result, proof], { from, ...opts });
  const mapSlot = (key, slot) => viem.keccak256(viem.encodeAbiParameters(
    viem.parseAbiParameters('bytes32, uint256'), [key, slot]));

  describe('deployment', () => {
    it('starts empty with the documented constants', async () => {
      assert.equal(await h.read(env, reg, 'erc8004ValidationRegistry'), ZERO_ADDRESS);
      assert.equal(await h.read(env, reg, 'attestationCount'), 0n);
      assert.equal(await h.read(env, reg, 'RESPONSE_VALID'), 100);
      assert.equal(await h.read(env, reg, 'RESPONSE_INVALID'), 0);
      assert.equal(await h.read(env, reg, 'MAX_METHOD_LENGTH'), 128n);
      assert.equal(await h.read(env, reg, 'MAX_PROOF_DATA_LENGTH'), 16384n);
      assert.equal(await h.read(env, reg, 'MAX_ATTESTATIONS_PER_TASK'), (1n << 24n) - 1n);
    });

    it('rejects an ERC-8004 registry address without code', async () => {
      const a = h.artifact('ValidationRegistry');
      const eoa = env.accounts[5].address;
      const hash = await env.wallets[0].deployContract({ abi: a.abi, bytecode: a.bytecode, args: [eoa], gas: 3_000_000n });
      const r = await env.pub.waitForTransactionReceipt({ hash });
      assert.equal(r.status, 'reverted');
      const err = await h.revertOfTx(env, hash, a.abi);
      assert.equal(err.errorName, 'ERC8004RegistryNotContract');
      assert.deepEqual(err.args, [eoa]);
    });

    it('exposes only two state-changing functions (no update, no delete)', () => {
      const writers = reg.abi.filter((x) => x.type === 'function' && !['view', 'pure'].includes(x.stateMutability));
      assert.deepEqual(writers.map((f) => f.name).sort(), ['attestValidation', 'attestValidationFor']);
    });
  });

  describe('attestValidation', () => {
    it('returns the documented nonce-based id, stores the record and emits both events', async () => {
      const v = env.accounts[1].address;
      const task = taskHashOf('task-1');
      const proof = h.pseudoBytes(200, 7);
      const id0 = expectedId(0, v, task);
      assert.equal(await h.read(env, reg, 'computeAttestationId', [0n, v, task]), id0);
      const sim = await env.pub.simulateContract({
        address: reg.address, abi: reg.abi, functionName: 'attestValidation',
        args: [task, METHOD, true, proof], account: env.accounts[1],
      });
      assert.equal(sim.result, id0);

      const r = await attest(1, task, true, proof);
      const ev = h.eventsOf(r, reg.abi, reg.address);
      assert.deepEqual(ev.map((e) => e.eventName), ['AttestationRecorded', 'ValidationResponse']);
      assert.deepEqual(ev[0].args, { attestationId: id0, taskHash: task, verifier: v, result: true, verificationMethod: METHOD });
      assert.deepEqual(ev[1].args, { validator: v, requestHash: task, attestationId: id0, response: 100, tag: tagOf(METHOD) });

      const ts = await h.blockTime(env, r);
      const a = await h.read(env, reg, 'getAttestation', [id0]);
      assert.deepEqual(a, { taskHash: task, verifier: v, verificationMethod: METHOD, result: true, timestamp: ts, proofData: proof });
      assert.equal(await h.read(env, reg, 'attestationExists', [id0]), true);
      assert.equal(await h.read(env, reg, 'attestationCount'), 1n);
    });

    it('records a false result with response 0', async () => {
      const task = taskHashOf('task-false');
      const r = await attest(2, task, false, '0x01');
      const [rec, resp] = h.eventsOf(r, reg.abi, reg.address);
      assert.equal(rec.args.result, false);
      assert.equal(resp.args.response, 0);
      const a = await h.read(env, reg, 'getAttestation', [rec.args.attestationId]);
      assert.equal(a.result, false);
      assert.equal(a.proofData, '0x01');
    });

    it('gives a new id to every attestation, even same verifier and task', async () => {
      const task = taskHashOf('dup');
      const ids = [];
      for (let i = 0; i < 3; i++) {
        const r = await attest(1, task, true, '0x');
        ids.push(h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId);
      }
      assert.equal(new Set(ids).size, 3);
      ids.forEach((id, i) => assert.equal(id, expectedId(i, env.accounts[1].address, task)));
    });

    it('round-trips empty, binary and maximum-size proofData and a UTF-8 method', async () => {
      const task = taskHashOf('sizes');
      const utf8 = 'réexécution-✓';
      const proofs = ['0x', `0x00ff${'00'.repeat(40)}ff`, h.pseudoBytes(16384, 3)];
      for (const p of proofs) {
        const r = await attest(3, task, true, p, utf8, { gas: 6_000_000n });
        const id = h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId;
        const a = await h.read(env, reg, 'getAttestation', [id]);
        assert.equal(a.proofData, p);
        assert.equal(a.verificationMethod, utf8);
      }
      const long = 'm'.repeat(128);
      const r = await attest(3, task, true, '0x', long);
      const a = await h.read(env, reg, 'getAttestation', [h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId]);
      assert.equal(a.verificationMethod, long);
    });

    it('reverts ZeroTaskHash, EmptyVerificationMethod, VerificationMethodTooLong, ProofDataTooLarge', async () => {
      await h.expectTxRevert(env, reg, 'attestValidation', [ZERO_HASH, METHOD, true, '0x'], 'ZeroTaskHash', undefined);
      const t = taskHashOf('x');
      await h.expectTxRevert(env, reg, 'attestValidation', [t, '', true, '0x'], 'EmptyVerificationMethod', undefined);
      await h.expectTxRevert(env, reg, 'attestValidation', [t, 'm'.repeat(129), true, '0x'],
        'VerificationMethodTooLong', [129n, 128n]);
      await h.expectTxRevert(env, reg, 'attestValidation', [t, METHOD, true, h.pseudoBytes(16385)],
        'ProofDataTooLarge', [16385n, 16384n], { gas: 6_000_000n });
      assert.equal(await h.read(env, reg, 'attestationCount'), 0n, 'reverted writes leave no trace');
    });

    it('reverts TooManyAttestationsForTask when a task reaches 2**24-1 attestations', async () => {
      const task = taskHashOf('full');
      const r = await attest(1, task, true, '0x');
      const id = h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId;
      const slot = mapSlot(id, layout._records);
      const packed = viem.hexToBigInt(await env.pub.getStorageAt({ address: reg.address, slot }));
      const lowBits = packed & ((1n << 232n) - 1n);
      assert.equal(packed >> 232n, 1n, 'first attestation has sequence 1');
      // Pretend the task already holds MAX-1 attestations: one more is accepted ...
      const max = (1n << 24n) - 1n;
      await env.test.setStorageAt({ address: reg.address, index: slot, value: viem.toHex(lowBits | ((max - 1n) << 232n), { size: 32 }) });
      const r2 = await attest(1, task, true, '0x');
      assert.equal(await h.read(env, reg, 'getAttestationCountForTask', [task]), max);
      // ... and the next one is refused.
      await h.expectTxRevert(env, reg, 'attestValidation', [task, METHOD, true, '0x'], 'TooManyAttestationsForTask', [task]);
      assert.equal(await h.read(env, reg, 'getLatestAttestationId', [task]),
        h.eventsOf(r2, reg.abi, reg.address)[0].args.attestationId);
    });

    it('reverts StorageWriteFailed when the blob CREATE runs out of gas', async () => {
      const args = [taskHashOf('gas'), METHOD, true, h.pseudoBytes(200)];
      const data = viem.encodeFunctionData({ abi: reg.abi, functionName: 'attestValidation', args });
      const sel = viem.toFunctionSelector('StorageWriteFailed()');
      let found = null;
      for (let gas = 60_000n; gas <= 400_000n && !found; gas += 5_000n) {
        try {
          await env.pub.call({ account: env.accounts[1].address, to: reg.address, data, gas });
        } catch (e) {
          const raw = e.walk((x) => typeof x.data === 'string' && x.data.startsWith('0x'));
          if (raw && raw.data === sel) found = gas;
        }
      }
      assert.ok(found, 'some gas limit makes only the blob CREATE fail');
      // The same gas limit on a mined transaction reverts the same way.
      await h.expectTxRevert(env, reg, 'attestValidation', args, 'StorageWriteFailed', undefined, { from: 1, gas: found });
      assert.equal(await h.read(env, reg, 'attestationCount'), 0n);
    });
  });

  describe('reads', () => {
    it('getAttestationsForTask lists ids oldest first; latest and count follow', async () => {
      const task = taskHashOf('multi');
      const other = taskHashOf('other');
      const ids = [];
      for (const [from, res] of [[1, true], [2, false], [1, true], [3, true]]) {
        const r = await attest(from, task, res, h.pseudoBytes(32, from));
        ids.push(h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId);
        await attest(4, other, true, '0x'); // interleave another task
      }
      assert.deepEqual(await h.read(env, reg, 'getAttestationsForTask', [task]), ids);
      assert.equal(await h.read(env, reg, 'getAttestationCountForTask', [task]), 4n);
      assert.equal(await h.read(env, reg, 'getLatestAttestationId', [task]), ids[3]);
      const latest = await h.read(env, reg, 'getLatestAttestation', [task]);
      assert.deepEqual(latest, await h.read(env, reg, 'getAttestation', [ids[3]]));
      assert.equal(latest.verifier, env.accounts[3].address);
      assert.equal((await h.read(env, reg, 'getAttestationsForTask', [other])).length, 4);
      assert.equal(await h.read(env, reg, 'attestationCount'), 8n);
    });

    it('answers empty for an unknown task and reverts NoAttestationsForTask / AttestationNotFound', async () => {
      const task = taskHashOf('none');
      assert.deepEqual(await h.read(env, reg, 'getAttestationsForTask', [task]), []);
      assert.equal(await h.read(env, reg, 'getAttestationCountForTask', [task]), 0n);
      assert.equal(await h.read(env, reg, 'getLatestAttestationId', [task]), ZERO_HASH);
      await h.expectCallRevert(env, reg, 'getLatestAttestation', [task], 'NoAttestationsForTask', [task]);
      const id = viem.keccak256('0x1234');
      await h.expectCallRevert(env, reg, 'getAttestation', [id], 'AttestationNotFound', [id]);
      await h.expectCallRevert(env, reg, 'getAttestation', [ZERO_HASH], 'AttestationNotFound', [ZERO_HASH]);
      assert.equal(await h.read(env, reg, 'attestationExists', [id]), false);
    });

    it('getVerifierStats counts total/successful and first/last times per verifier', async () => {
      const v = env.accounts[6].address;
      assert.deepEqual(await h.read(env, reg, 'getVerifierStats', [v]),
        { totalAttestations: 0n, successfulAttestations: 0n, firstAttestationTime: 0n, lastAttestationTime: 0n });
      const t0 = (await h.now(env)) + 100n;
      const plan = [[t0, true], [t0 + 10n, false], [t0 + 25n, true]];
      for (const [t, res] of plan) {
        await env.test.setNextBlockTimestamp({ timestamp: t });
        await attest(6, taskHashOf(`s${t}`), res, '0x');
      }
      assert.deepEqual(await h.read(env, reg, 'getVerifierStats', [v]),
        { totalAttestations: 3n, successfulAttestations: 2n, firstAttestationTime: t0, lastAttestationTime: t0 + 25n });
      const a = await h.read(env, reg, 'getLatestAttestation', [taskHashOf(`s${t0 + 10n}`)]);
      assert.equal(a.timestamp, t0 + 10n);
      // another verifier is untouched
      assert.equal((await h.read(env, reg, 'getVerifierStats', [env.accounts[7].address])).totalAttestations, 0n);
    });

    it('stores the immutable part in a STOP-prefixed blob contract that does nothing when called', async () => {
      const task = taskHashOf('blob');
      const proof = h.pseudoBytes(50, 9);
      const r = await attest(1, task, true, proof);
      const id = h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId;
      const packed = viem.hexToBigInt(await env.pub.getStorageAt({ address: reg.address, slot: mapSlot(id, layout._records) }));
      const pointer = viem.getAddress(viem.toHex(packed & ((1n << 160n) - 1n), { size: 20 }));
      const code = await env.pub.getCode({ address: pointer });
      const expectCode = viem.concat(['0x00', task, env.accounts[1].address, ZERO_HASH,
        viem.toHex(METHOD.length, { size: 1 }), viem.toHex(METHOD), proof]).toLowerCase();
      assert.equal(code, expectCode);
      // Calling it (even with value-less data) changes nothing.
      const hash = await env.wallets[2].sendTransaction({ to: pointer, data: '0xdeadbeef', gas: 100_000n });
      assert.equal((await env.pub.waitForTransactionReceipt({ hash })).status, 'success');
      assert.equal(await env.pub.getCode({ address: pointer }), expectCode);
      assert.equal((await h.read(env, reg, 'getAttestation', [id])).proofData, proof);
    });
  });

  describe('attestValidationFor without an ERC-8004 registry', () => {
    it('records the attestation and emits ValidationResponse with the requestHash', async () => {
      const req = viem.keccak256(viem.toHex('erc8004 request payload'));
      const task = taskHashOf('for-1');
      const r = await h.mustSend(env, reg, 'attestValidationFor', [req, task, METHOD, false, '0xaa'], { from: 2 });
      const ev = h.eventsOf(r, reg.abi);
      assert.deepEqual(ev.map((e) => e.eventName), ['AttestationRecorded', 'ValidationResponse']);
      const id = expectedId(0, env.accounts[2].address, task);
      assert.equal(ev[0].args.attestationId, id);
      assert.deepEqual(ev[1].args, { validator: env.accounts[2].address, requestHash: req, attestationId: id, response: 0, tag: tagOf(METHOD) });
      assert.equal(r.logs.length, 2, 'no call to any other contract');
      assert.equal((await h.read(env, reg, 'getAttestation', [id])).taskHash, task);
    });

    it('reverts ZeroRequestHash and the attestValidation input errors', async () => {
      const task = taskHashOf('for-2');
      await h.expectTxRevert(env, reg, 'attestValidationFor', [ZERO_HASH, task, METHOD, true, '0x'], 'ZeroRequestHash', undefined);
      const req = viem.keccak256('0x01');
      await h.expectTxRevert(env, reg, 'attestValidationFor', [req, ZERO_HASH, METHOD, true, '0x'], 'ZeroTaskHash', undefined);
      await h.expectTxRevert(env, reg, 'attestValidationFor', [req, task, '', true, '0x'], 'EmptyVerificationMethod', undefined);
    });
  });
});

describe('ValidationRegistry -> ERC-8004 forwarding (MockERC8004ValidationRegistry)', () => {
  let env;
  let mock;
  let reg;
  const agentId = 42n;

  before(async () => { env = await h.setupChain(); });
  after(async () => { if (env) await env.close(); });
  beforeEach(async () => {
    mock = await h.deploy(env, 'MockERC8004ValidationRegistry');
    reg = await h.deploy(env, 'ValidationRegistry', [mock.address]);
  });

  const request = async (requestHash, validator) =>
    h.mustSend(env, mock, 'validationRequest', [validator, agentId, 'ipfs://request', requestHash], { from: 9 });

  it('forwards validationResponse(requestHash, 100, "", attestationId, method) as the registry', async () => {
    assert.equal(await h.read(env, reg, 'erc8004ValidationRegistry'), mock.address);
    const req = viem.keccak256(viem.toHex('request A'));
    await request(req, reg.address);
    const task = taskHashOf('fwd');
    const r = await h.mustSend(env, reg, 'attestValidationFor', [req, task, METHOD, true, h.pseudoBytes(64)], { from: 1 });
    const id = h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId;
    const own = h.eventsOf(r, reg.abi, reg.address);
    assert.deepEqual(own.map((e) => e.eventName), ['AttestationRecorded', 'ValidationResponse']);
    assert.equal(own[1].args.requestHash, req);
    const remote = h.eventsOf(r, mock.abi, mock.address);
    assert.equal(remote.length, 1);
    assert.deepEqual(remote[0].args, {
      validatorAddress: reg.address, agentId, requestHash: req, response: 100,
      responseURI: '', responseHash: id, tag: METHOD,
    });
    const st = await h.read(env, mock, 'getValidationStatus', [req]);
    assert.deepEqual(st, [reg.address, agentId, 100, id, METHOD, await h.blockTime(env, r)]);
    // the ERC-8004 responseHash leads back to the real verifier
    assert.equal((await h.read(env, reg, 'getAttestation', [st[3]])).verifier, env.accounts[1].address);
  });

  it('forwards a false result as response 0 and allows repeated responses', async () => {
    const req = viem.keccak256(viem.toHex('request B'));
    await request(req, reg.address);
    await h.mustSend(env, reg, 'attestValidationFor', [req, taskHashOf('b'), METHOD, true, '0x'], { from: 1 });
    const r = await h.mustSend(env, reg, 'attestValidationFor', [req, taskHashOf('b'), 'other-method', false, '0x'], { from: 2 });
    const st = await h.read(env, mock, 'getValidationStatus', [req]);
    assert.equal(st[2], 0);
    assert.equal(st[3], h.eventsOf(r, reg.abi, reg.address)[0].args.attestationId);
    assert.equal(st[4], 'other-method');
    assert.equal(await h.read(env, mock, 'responseCount'), 2n);
  });

  it('plain attestValidation never forwards', async () => {
    const r = await h.mustSend(env, reg, 'attestValidation', [taskHashOf('plain'), METHOD, true, '0x'], { from: 1 });
    assert.equal(h.eventsOf(r, mock.abi, mock.address).length, 0);
    assert.equal(await h.read(env, mock, 'responseCount'), 0n);
  });

  it('reverts ERC8004ForwardFailed with the remote reason, and rolls back the attestation', async () => {
    const unknown = viem.keccak256(viem.toHex('never requested'));
    const task = taskHashOf('fail');
    const { error } = await h.expectTxRevert(env, reg, 'attestValidationFor', [unknown, task, METHOD, true, '0x'], 'ERC8004ForwardFailed', undefined);
    assert.equal(error.args[0], unknown);
    assert.deepEqual(viem.decodeErrorResult({ abi: [], data: error.args[1] }).args, ['unknown']);

    const notMine = viem.keccak256(viem.toHex('request for someone else'));
    await request(notMine, env.accounts[8].address);
    const e2 = await h.expectTxRevert(env, reg, 'attestValidationFor', [notMine, task, METHOD, true, '0x'], 'ERC8004ForwardFailed', undefined);
    assert.deepEqual(viem.decodeErrorResult({ abi: [], data: e2.error.args[1] }).args, ['not validator']);

    assert.equal(await h.read(env, reg, 'attestationCount'), 0n);
    assert.equal(await h.read(env, reg, 'getAttestationCountForTask', [task]), 0n);
  });

  describe('the mock itself (reference-implementation rules)', () => {
    it('emits ValidationRequest and rejects bad validator / duplicate request', async () => {
      const req = viem.keccak256('0x0a');
      const r = await request(req, env.accounts[3].address);
      const ev = h.eventsOf(r, mock.abi, mock.address);
      assert.deepEqual(ev[0].args, { validatorAddress: env.accounts[3].address, agentId, requestURI: 'ipfs://request', requestHash: req });
      await h.expectTxRevert(env, mock, 'validationRequest', [ZERO_ADDRESS, 1n, '', viem.keccak256('0x0b')], 'Error', ['bad validator']);
      await h.expectTxRevert(env, mock, 'validationRequest', [env.accounts[3].address, 1n, '', req], 'Error', ['exists']);
    });

    it('rejects responses above 100 and unknown status look-ups', async () => {
      const req = viem.keccak256('0x0c');
      await request(req, env.accounts[3].address);
      await h.expectTxRevert(env, mock, 'validationResponse', [req, 101, '', ZERO_HASH, ''], 'Error', ['resp>100'], { from: 3 });
      await h.mustSend(env, mock, 'validationResponse', [req, 55, 'ipfs://r', ZERO_HASH, 't'], { from: 3 });
      assert.equal((await h.read(env, mock, 'getValidationStatus', [req]))[2], 55);
      await h.expectCallRevert(env, mock, 'getValidationStatus', [viem.keccak256('0x0d')], 'Error', ['unknown']);
    });
  });
});
