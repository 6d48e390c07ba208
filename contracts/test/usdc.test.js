// SPDX-License-Identifier: MIT
// TestUSDC against a real anvil: ERC-20, minting, EIP-712 domain, EIP-3009 positive and
// negative cases, EIP-1271 wallets.
'use strict';

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const h = require('./helpers.js');

const { viem, ZERO_ADDRESS } = h;
const N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141n;

const TYPES = {
  TransferWithAuthorization: [
    { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
  ],
  ReceiveWithAuthorization: [
    { name: 'from', type: 'address' }, { name: 'to', type: 'address' }, { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' }, { name: 'validBefore', type: 'uint256' }, { name: 'nonce', type: 'bytes32' },
  ],
  CancelAuthorization: [{ name: 'authorizer', type: 'address' }, { name: 'nonce', type: 'bytes32' }],
};

const randomNonce = () => `0x${crypto.randomBytes(32).toString('hex')}`;
const split = (sig) => {
  const { r, s, v } = viem.parseSignature(sig);
  return { r, s, v: Number(v) };
};

describe('TestUSDC', () => {
  let env;
  let usdc;
  let domain;
  const ONE = 1_000_000n; // 1.000000 token

  before(async () => { env = await h.setupChain(); });
  after(async () => { if (env) await env.close(); });
  beforeEach(async () => {
    usdc = await h.deploy(env, 'TestUSDC', ['USD Coin', 'USDC', '2']);
    domain = { name: 'USD Coin', version: '2', chainId: 31337, verifyingContract: usdc.address };
    for (const i of [1, 2, 3]) await h.mustSend(env, usdc, 'mint', [env.accounts[i].address, 100n * ONE]);
  });

  const sign = (i, primaryType, message, dom = domain) =>
    env.accounts[i].signTypedData({ domain: dom, types: { [primaryType]: TYPES[primaryType] }, primaryType, message });
  const bal = (i) => h.read(env, usdc, 'balanceOf', [typeof i === 'number' ? env.accounts[i].address : i]);

  /** A valid authorization from account i to account j, signed, with a window around now. */
  const auth = async (i, j, value, { primaryType = 'TransferWithAuthorization', validAfter, validBefore, nonce, dom } = {}) => {
    const t = await h.now(env);
    const m = {
      from: env.accounts[i].address,
      to: typeof j === 'number' ? env.accounts[j].address : j,
      value,
      validAfter: validAfter ?? t - 600n,
      validBefore: validBefore ?? t + 3600n,
      nonce: nonce ?? randomNonce(),
    };
    const sig = await sign(i, primaryType, m, dom);
    return { m, sig, ...split(sig), args: [m.from, m.to, m.value, m.validAfter, m.validBefore, m.nonce] };
  };
  const twaVRS = (a, v = a.v, r = a.r, s = a.s) => [...a.args, v, r, s];

  describe('metadata and EIP-712 domain', () => {
    it('has USDC-like metadata, 6 decimals and the deployer as minter', async () => {
      assert.equal(await h.read(env, usdc, 'name'), 'USD Coin');
      assert.equal(await h.read(env, usdc, 'symbol'), 'USDC');
      assert.equal(await h.read(env, usdc, 'version'), '2');
      assert.equal(await h.read(env, usdc, 'decimals'), 6);
      assert.equal(await h.read(env, usdc, 'minter'), env.accounts[0].address);
      assert.equal(await h.read(env, usdc, 'totalSupply'), 300n * ONE);
    });

    it('DOMAIN_SEPARATOR, eip712Domain and the type hashes match EIP-712 / EIP-3009', async () => {
      assert.equal(await h.read(env, usdc, 'DOMAIN_SEPARATOR'), viem.hashDomain({
        domain, types: { EIP712Domain: viem.getTypesForEIP712Domain({ domain }) },
      }));
      const d = await h.read(env, usdc, 'eip712Domain');
      assert.deepEqual(d, ['0x0f', 'USD Coin', '2', 31337n, usdc.address, `0x${'00'.repeat(32)}`, []]);
      const k = (s) => viem.keccak256(viem.toHex(s));
      assert.equal(await h.read(env, usdc, 'TRANSFER_WITH_AUTHORIZATION_TYPEHASH'),
        k('TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)'));
      assert.equal(await h.read(env, usdc, 'RECEIVE_WITH_AUTHORIZATION_TYPEHASH'),
        k('ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)'));
      assert.equal(await h.read(env, usdc, 'CANCEL_AUTHORIZATION_TYPEHASH'), k('CancelAuthorization(address authorizer,bytes32 nonce)'));
    });

    it('takes name, symbol and version from the constructor (Base Sepolia style "USDC"/"2")', async () => {
      const t = await h.deploy(env, 'TestUSDC', ['USDC', 'USDC', '2']);
      assert.equal(await h.read(env, t, 'name'), 'USDC');
      assert.notEqual(await h.read(env, t, 'DOMAIN_SEPARATOR'), await h.read(env, usdc, 'DOMAIN_SEPARATOR'));
    });
  });

  describe('ERC-20 and mint', () => {
    it('mint by the deployer emits Transfer from zero; others get NotMinter; zero receiver refused', async () => {
      const r = await h.mustSend(env, usdc, 'mint', [env.accounts[4].address, 5n]);
      assert.deepEqual(h.eventsOf(r, usdc.abi)[0].args, { from: ZERO_ADDRESS, to: env.accounts[4].address, value: 5n });
      assert.equal(await bal(4), 5n);
      await h.expectTxRevert(env, usdc, 'mint', [env.accounts[1].address, 1n], 'NotMinter', [env.accounts[1].address], { from: 1 });
      await h.expectTxRevert(env, usdc, 'mint', [ZERO_ADDRESS, 1n], 'ERC20InvalidReceiver', [ZERO_ADDRESS]);
    });

    it('transfer moves balance and emits Transfer; reverts on short balance and zero receiver', async () => {
      const r = await h.mustSend(env, usdc, 'transfer', [env.accounts[5].address, ONE], { from: 1 });
      assert.deepEqual(h.eventsOf(r, usdc.abi)[0].args, { from: env.accounts[1].address, to: env.accounts[5].address, value: ONE });
      assert.equal(await bal(1), 99n * ONE);
      assert.equal(await bal(5), ONE);
      await h.expectTxRevert(env, usdc, 'transfer', [env.accounts[5].address, 100n * ONE], 'ERC20InsufficientBalance',
        [env.accounts[1].address, 99n * ONE, 100n * ONE], { from: 1 });
      await h.expectTxRevert(env, usdc, 'transfer', [ZERO_ADDRESS, 1n], 'ERC20InvalidReceiver', [ZERO_ADDRESS], { from: 1 });
    });

    it('approve / transferFrom / allowance, finite and infinite', async () => {
      const [o, s, d] = [env.accounts[1].address, env.accounts[2].address, env.accounts[6].address];
      const r = await h.mustSend(env, usdc, 'approve', [s, 3n * ONE], { from: 1 });
      assert.deepEqual(h.eventsOf(r, usdc.abi)[0].args, { owner: o, spender: s, value: 3n * ONE });
      await h.mustSend(env, usdc, 'transferFrom', [o, d, ONE], { from: 2 });
      assert.equal(await h.read(env, usdc, 'allowance', [o, s]), 2n * ONE);
      assert.equal(await bal(d), ONE);
      await h.expectTxRevert(env, usdc, 'transferFrom', [o, d, 3n * ONE], 'ERC20InsufficientAllowance', [s, 2n * ONE, 3n * ONE], { from: 2 });
      const max = (1n << 256n) - 1n;
      await h.mustSend(env, usdc, 'approve', [s, max], { from: 1 });
      await h.mustSend(env, usdc, 'transferFrom', [o, d, ONE], { from: 2 });
      assert.equal(await h.read(env, usdc, 'allowance', [o, s]), max, 'infinite allowance is not decreased');
      await h.expectTxRevert(env, usdc, 'approve', [ZERO_ADDRESS, 1n], 'ERC20InvalidSpender', [ZERO_ADDRESS], { from: 1 });
      await h.expectTxRevert(env, usdc, 'transferFrom', [ZERO_ADDRESS, d, 0n], 'ERC20InvalidSender', [ZERO_ADDRESS], { from: 2 });
    });
  });

  describe('transferWithAuthorization (EIP-3009)', () => {
    it('(v,r,s): a third party submits; AuthorizationUsed then Transfer; nonce marked used', async () => {
      const a = await auth(1, 7, 2n * ONE);
      assert.equal(await h.read(env, usdc, 'authorizationState', [a.m.from, a.m.nonce]), false);
      const r = await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(a), { from: 9 });
      const ev = h.eventsOf(r, usdc.abi);
      assert.deepEqual(ev.map((e) => e.eventName), ['AuthorizationUsed', 'Transfer']);
      assert.deepEqual(ev[0].args, { authorizer: a.m.from, nonce: a.m.nonce });
      assert.deepEqual(ev[1].args, { from: a.m.from, to: a.m.to, value: 2n * ONE });
      assert.equal(await bal(1), 98n * ONE);
      assert.equal(await bal(7), 2n * ONE);
      assert.equal(await h.read(env, usdc, 'authorizationState', [a.m.from, a.m.nonce]), true);
    });

    it('(bytes signature) overload, as x402 facilitators call it', async () => {
      const a = await auth(2, 7, ONE);
      const r = await h.mustSend(env, usdc, 'transferWithAuthorization', [...a.args, a.sig], { from: 9 });
      assert.deepEqual(h.eventsOf(r, usdc.abi).map((e) => e.eventName), ['AuthorizationUsed', 'Transfer']);
      assert.equal(await bal(7), ONE);
    });

    it('rejects a signature by another key, and a tampered message', async () => {
      const a = await auth(1, 7, ONE);
      const forged = await sign(2, 'TransferWithAuthorization', a.m); // account 2 signs account 1's transfer
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...a.args, forged], 'InvalidSignature', []);
      const tampered = [...a.args];
      tampered[2] = 2n * ONE;
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...tampered, a.v, a.r, a.s], 'InvalidSignature', []);
      const redirected = [...a.args];
      redirected[1] = env.accounts[8].address;
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...redirected, a.sig], 'InvalidSignature', []);
      assert.equal(await h.read(env, usdc, 'authorizationState', [a.m.from, a.m.nonce]), false);
      assert.equal(await bal(1), 100n * ONE);
    });

    it('rejects expired authorizations (validBefore <= now), accepts now < validBefore', async () => {
      const T = (await h.now(env)) + 1000n;
      const a = await auth(1, 7, ONE, { validAfter: 0n, validBefore: T });
      await env.test.setNextBlockTimestamp({ timestamp: T });
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'AuthorizationExpired', [T, T]);
      const b = await auth(1, 7, ONE, { validAfter: 0n, validBefore: T + 10n });
      await env.test.setNextBlockTimestamp({ timestamp: T + 9n });
      await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(b));
      const c = await auth(1, 7, ONE, { validAfter: 0n, validBefore: T - 100n });
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...c.args, c.sig], 'AuthorizationExpired');
    });

    it('rejects not-yet-valid authorizations (now <= validAfter), accepts validAfter < now', async () => {
      const T = (await h.now(env)) + 1000n;
      const a = await auth(1, 7, ONE, { validAfter: T, validBefore: T + 3600n });
      await env.test.setNextBlockTimestamp({ timestamp: T });
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'AuthorizationNotYetValid', [T, T]);
      await env.test.setNextBlockTimestamp({ timestamp: T + 1n });
      await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(a));
      assert.equal(await bal(7), ONE);
    });

    it('rejects a replayed nonce (also through the other overload)', async () => {
      const a = await auth(1, 7, ONE);
      await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(a));
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'AuthorizationAlreadyUsed', [a.m.from, a.m.nonce]);
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...a.args, a.sig], 'AuthorizationAlreadyUsed', [a.m.from, a.m.nonce]);
      assert.equal(await bal(7), ONE, 'paid once');
    });

    it('rejects signatures for another domain: chain id, contract, name, version', async () => {
      const other = await h.deploy(env, 'TestUSDC', ['USD Coin', 'USDC', '2']);
      for (const dom of [
        { ...domain, chainId: 1 },
        { ...domain, chainId: 84532 },
        { ...domain, verifyingContract: other.address },
        { ...domain, name: 'USDC' },
        { ...domain, version: '1' },
      ]) {
        const a = await auth(1, 7, ONE, { dom });
        await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'InvalidSignature', []);
      }
    });

    it('rejects malleable high-s, bad v, wrong length and garbage signatures (OpenZeppelin rules)', async () => {
      const a = await auth(1, 7, ONE);
      const highS = viem.toHex(N - viem.hexToBigInt(a.s), { size: 32 });
      const flippedV = a.v === 27 ? 28 : 27;
      // (r, n-s, v^1) recovers the same signer with plain ecrecover: it must still fail.
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a, flippedV, a.r, highS), 'InvalidSignatureS', [highS]);
      for (const v of [0, 1, 29]) {
        await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a, v), 'InvalidSignatureV', [v]);
      }
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...a.args, viem.slice(a.sig, 0, 64)], 'InvalidSignatureLength', [64n]);
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...a.args, viem.concat([a.sig, '0x00'])], 'InvalidSignatureLength', [66n]);
      // r = 0 makes ecrecover return address(0)
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a, a.v, `0x${'00'.repeat(32)}`), 'InvalidSignature', []);
      // the genuine signature still works afterwards (nothing was consumed)
      await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(a));
    });

    it('a ReceiveWithAuthorization signature is not a TransferWithAuthorization one', async () => {
      const a = await auth(1, 7, ONE, { primaryType: 'ReceiveWithAuthorization' });
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'InvalidSignature', []);
    });

    it('a valid signature over more than the balance reverts and leaves the nonce unused', async () => {
      const a = await auth(1, 7, 101n * ONE);
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'ERC20InsufficientBalance',
        [a.m.from, 100n * ONE, 101n * ONE]);
      assert.equal(await h.read(env, usdc, 'authorizationState', [a.m.from, a.m.nonce]), false);
    });
  });

  describe('receiveWithAuthorization', () => {
    it('works when the payee submits it, both overloads', async () => {
      const a = await auth(1, 7, ONE, { primaryType: 'ReceiveWithAuthorization' });
      const r = await h.mustSend(env, usdc, 'receiveWithAuthorization', twaVRS(a), { from: 7 });
      assert.deepEqual(h.eventsOf(r, usdc.abi).map((e) => e.eventName), ['AuthorizationUsed', 'Transfer']);
      const b = await auth(1, 7, ONE, { primaryType: 'ReceiveWithAuthorization' });
      await h.mustSend(env, usdc, 'receiveWithAuthorization', [...b.args, b.sig], { from: 7 });
      assert.equal(await bal(7), 2n * ONE);
    });

    it('reverts CallerMustBePayee for anyone else, and refuses a Transfer-typed signature', async () => {
      const a = await auth(1, 7, ONE, { primaryType: 'ReceiveWithAuthorization' });
      await h.expectTxRevert(env, usdc, 'receiveWithAuthorization', twaVRS(a), 'CallerMustBePayee',
        [env.accounts[9].address, env.accounts[7].address], { from: 9 });
      await h.expectTxRevert(env, usdc, 'receiveWithAuthorization', [...a.args, a.sig], 'CallerMustBePayee',
        [env.accounts[9].address, env.accounts[7].address], { from: 9 });
      const t = await auth(1, 7, ONE); // TransferWithAuthorization type
      await h.expectTxRevert(env, usdc, 'receiveWithAuthorization', twaVRS(t), 'InvalidSignature', [], { from: 7 });
    });
  });

  describe('cancelAuthorization', () => {
    const cancelSig = async (i, nonce, dom) => {
      const sig = await sign(i, 'CancelAuthorization', { authorizer: env.accounts[i].address, nonce }, dom);
      return { sig, ...split(sig) };
    };

    it('cancels an unused nonce (AuthorizationCanceled); the transfer then fails', async () => {
      const a = await auth(1, 7, ONE);
      const c = await cancelSig(1, a.m.nonce);
      const r = await h.mustSend(env, usdc, 'cancelAuthorization', [a.m.from, a.m.nonce, c.v, c.r, c.s], { from: 9 });
      assert.deepEqual(h.eventsOf(r, usdc.abi).map((e) => [e.eventName, e.args]),
        [['AuthorizationCanceled', { authorizer: a.m.from, nonce: a.m.nonce }]]);
      assert.equal(await h.read(env, usdc, 'authorizationState', [a.m.from, a.m.nonce]), true);
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', twaVRS(a), 'AuthorizationAlreadyUsed', [a.m.from, a.m.nonce]);
      assert.equal(await bal(7), 0n);
    });

    it('bytes overload; refuses used nonces, double cancels and bad signatures', async () => {
      const a = await auth(1, 7, ONE);
      await h.mustSend(env, usdc, 'transferWithAuthorization', twaVRS(a));
      const c = await cancelSig(1, a.m.nonce);
      await h.expectTxRevert(env, usdc, 'cancelAuthorization', [a.m.from, a.m.nonce, c.sig], 'AuthorizationAlreadyUsed', [a.m.from, a.m.nonce]);
      const n2 = randomNonce();
      const bad = await cancelSig(2, n2); // account 2 tries to cancel account 1's nonce
      await h.expectTxRevert(env, usdc, 'cancelAuthorization', [env.accounts[1].address, n2, bad.sig], 'InvalidSignature', []);
      const wrongChain = await cancelSig(1, n2, { ...domain, chainId: 1 });
      await h.expectTxRevert(env, usdc, 'cancelAuthorization', [env.accounts[1].address, n2, wrongChain.v, wrongChain.r, wrongChain.s], 'InvalidSignature', []);
      const good = await cancelSig(1, n2);
      await h.mustSend(env, usdc, 'cancelAuthorization', [env.accounts[1].address, n2, good.sig]);
      await h.expectTxRevert(env, usdc, 'cancelAuthorization', [env.accounts[1].address, n2, good.sig], 'AuthorizationAlreadyUsed');
    });
  });

  describe('EIP-1271 smart-contract wallet as authorizer', () => {
    it('accepts the owner signature through isValidSignature (both overloads) and refuses others', async () => {
      const wallet = await h.deploy(env, 'MockERC1271Wallet', [env.accounts[4].address]);
      await h.mustSend(env, usdc, 'mint', [wallet.address, 10n * ONE]);
      const t = await h.now(env);
      const mk = () => ({ from: wallet.address, to: env.accounts[7].address, value: ONE, validAfter: 0n, validBefore: t + 3600n, nonce: randomNonce() });
      const argsOf = (m) => [m.from, m.to, m.value, m.validAfter, m.validBefore, m.nonce];

      const m1 = mk();
      const s1 = await sign(4, 'TransferWithAuthorization', m1); // the wallet's owner signs
      await h.mustSend(env, usdc, 'transferWithAuthorization', [...argsOf(m1), s1]);
      const m2 = mk();
      const s2 = split(await sign(4, 'TransferWithAuthorization', m2));
      await h.mustSend(env, usdc, 'transferWithAuthorization', [...argsOf(m2), s2.v, s2.r, s2.s]);
      assert.equal(await bal(7), 2n * ONE);

      const m3 = mk();
      const s3 = await sign(5, 'TransferWithAuthorization', m3); // not the owner
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...argsOf(m3), s3], 'InvalidSignature', []);
      // a 64-byte blob is handed to the wallet (no ECDSA length rule for contracts) and refused there
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...argsOf(m3), viem.slice(s3, 0, 64)], 'InvalidSignature', []);
      // an account with code that is not a wallet at all
      const notWallet = await h.deploy(env, 'MockERC8004ValidationRegistry');
      const m4 = { ...mk(), from: notWallet.address };
      await h.expectTxRevert(env, usdc, 'transferWithAuthorization', [...argsOf(m4), s1], 'InvalidSignature', []);
    });
  });
});

describe('TestUSDC after a chain id change (fork safety of the domain)', () => {
  let env;
  before(async () => { env = await h.setupChain(); });
  after(async () => { if (env) await env.close(); });

  it('recomputes DOMAIN_SEPARATOR and refuses signatures for the old chain id', async () => {
    const usdc = await h.deploy(env, 'TestUSDC', ['USD Coin', 'USDC', '2']);
    await h.mustSend(env, usdc, 'mint', [env.accounts[1].address, 10n]);
    const base = { name: 'USD Coin', version: '2', verifyingContract: usdc.address };
    const sepOf = (chainId) => viem.hashDomain({
      domain: { ...base, chainId }, types: { EIP712Domain: viem.getTypesForEIP712Domain({ domain: { ...base, chainId } }) },
    });
    const t = await h.now(env);
    const m = { from: env.accounts[1].address, to: env.accounts[2].address, value: 1n, validAfter: 0n, validBefore: t + 3600n, nonce: randomNonce() };
    const signFor = (chainId) => env.accounts[1].signTypedData({
      domain: { ...base, chainId }, types: { TransferWithAuthorization: TYPES.TransferWithAuthorization },
      primaryType: 'TransferWithAuthorization', message: m,
    });
    const args = (sig) => [m.from, m.to, m.value, m.validAfter, m.validBefore, m.nonce, sig];
    const sim = (sig) => env.pub.simulateContract({
      address: usdc.address, abi: usdc.abi, functionName: 'transferWithAuthorization', args: args(sig), account: env.accounts[9],
    });

    const oldSig = await signFor(31337);
    await sim(oldSig); // valid on 31337
    await env.test.request({ method: 'anvil_setChainId', params: [4242] });
    await env.test.mine({ blocks: 1 });
    try {
      assert.equal(await h.read(env, usdc, 'DOMAIN_SEPARATOR'), sepOf(4242));
      await assert.rejects(sim(oldSig), (e) => e.walk((x) => x instanceof viem.ContractFunctionRevertedError).data.errorName === 'InvalidSignature');
      await sim(await signFor(4242));
    } finally {
      await env.test.request({ method: 'anvil_setChainId', params: [31337] });
    }
    assert.equal(await h.read(env, usdc, 'DOMAIN_SEPARATOR'), sepOf(31337));
  });
});
