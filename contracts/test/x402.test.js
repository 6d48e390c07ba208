// SPDX-License-Identifier: MIT
// End to end with the real x402 EVM code (@x402/evm 2.10.0): the client signs an
// `exact` (EIP-3009) payment for TestUSDC on eip155:31337, the facilitator verifies it
// (signature, amount, window, simulation) and settles it on anvil.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const h = require('./helpers.js');
const { ExactEvmScheme: ExactEvmClient, toClientEvmSigner, toFacilitatorEvmSigner } = require('@x402/evm');
const { ExactEvmScheme: ExactEvmFacilitator } = require('@x402/evm/exact/facilitator');

const { viem } = h;

describe('x402 exact scheme (EIP-3009) with @x402/evm against TestUSDC', () => {
  let env;
  let usdc;
  let requirements;
  let facilitator;
  const PRICE = 10_000n; // $0.01 at 6 decimals

  before(async () => {
    env = await h.setupChain();
    usdc = await h.deploy(env, 'TestUSDC', ['USD Coin', 'USDC', '2']);
    await h.mustSend(env, usdc, 'mint', [env.accounts[1].address, 1_000_000n]);
    requirements = {
      scheme: 'exact',
      network: 'eip155:31337',
      amount: PRICE.toString(),
      asset: usdc.address,
      payTo: env.accounts[2].address,
      maxTimeoutSeconds: 300,
      extra: { name: 'USD Coin', version: '2' },
    };
    const fw = env.wallets[3]; // the facilitator's own key pays gas
    facilitator = new ExactEvmFacilitator(toFacilitatorEvmSigner({
      address: fw.account.address,
      readContract: (a) => env.pub.readContract(a),
      verifyTypedData: (a) => env.pub.verifyTypedData(a),
      writeContract: (a) => fw.writeContract(a),
      sendTransaction: (a) => fw.sendTransaction(a),
      waitForTransactionReceipt: (a) => env.pub.waitForTransactionReceipt(a),
      getCode: (a) => env.pub.getCode(a),
    }));
  });
  after(async () => { if (env) await env.close(); });

  const pay = async (req = requirements, payer = 1) => {
    const client = new ExactEvmClient(toClientEvmSigner(env.accounts[payer], env.pub));
    const p = await client.createPaymentPayload(2, req);
    return {
      x402Version: 2,
      resource: { url: 'http://127.0.0.1/verify', description: 'notarized re-execution', mimeType: 'application/json' },
      accepted: req,
      payload: p.payload,
    };
  };

  it('verifies and settles a payment; the transfer lands on chain once', async () => {
    const payload = await pay();
    assert.equal(payload.payload.signature.length, 132, '65-byte ECDSA signature');
    const v = await facilitator.verify(payload, requirements);
    assert.deepEqual(v, { isValid: true, invalidReason: undefined, payer: env.accounts[1].address });

    const s = await facilitator.settle(payload, requirements);
    assert.equal(s.success, true, JSON.stringify(s));
    const receipt = await env.pub.getTransactionReceipt({ hash: s.transaction });
    const ev = h.eventsOf(receipt, usdc.abi, usdc.address);
    assert.deepEqual(ev.map((e) => e.eventName), ['AuthorizationUsed', 'Transfer']);
    assert.deepEqual(ev[1].args, { from: env.accounts[1].address, to: env.accounts[2].address, value: PRICE });
    assert.equal(await h.read(env, usdc, 'balanceOf', [env.accounts[2].address]), PRICE);
    assert.equal(await h.read(env, usdc, 'authorizationState', [env.accounts[1].address, payload.payload.authorization.nonce]), true);

    // the same payload cannot be used again
    // (@x402/evm 2.10.0 reports the used nonce as a failed simulation: its finer
    // diagnosis needs Multicall3, which a bare anvil does not have)
    const again = await facilitator.verify(payload, requirements);
    assert.equal(again.isValid, false);
    assert.equal(again.invalidReason, 'invalid_exact_evm_transaction_simulation_failed');
    const s2 = await facilitator.settle(payload, requirements);
    assert.equal(s2.success, false);
    assert.equal(s2.errorReason, 'invalid_exact_evm_transaction_failed');
    assert.equal(await h.read(env, usdc, 'balanceOf', [env.accounts[2].address]), PRICE);
  });

  it('refuses a payment for the wrong amount, payee or token domain', async () => {
    const payload = await pay();
    const r1 = await facilitator.verify(payload, { ...requirements, amount: (PRICE + 1n).toString() });
    assert.equal(r1.isValid, false);
    assert.equal(r1.invalidReason, 'invalid_exact_evm_authorization_value');
    const r2 = await facilitator.verify(payload, { ...requirements, payTo: env.accounts[4].address });
    assert.equal(r2.isValid, false);
    assert.equal(r2.invalidReason, 'invalid_exact_evm_recipient_mismatch');
    // signed for a domain name the token does not have: the signature does not verify
    const wrongName = { ...requirements, extra: { name: 'USDC', version: '2' } };
    const p3 = await pay(wrongName);
    const r3 = await facilitator.verify(p3, wrongName);
    assert.equal(r3.isValid, false);
    assert.equal(r3.invalidReason, 'invalid_exact_evm_transaction_simulation_failed');
    // and on chain the token refuses it too
    const a = p3.payload.authorization;
    await h.expectTxRevert(env, usdc, 'transferWithAuthorization',
      [a.from, a.to, BigInt(a.value), BigInt(a.validAfter), BigInt(a.validBefore), a.nonce, p3.payload.signature], 'InvalidSignature', []);
  });

  it('refuses a payer without enough balance', async () => {
    const payload = await pay(requirements, 5); // account 5 holds no TestUSDC
    const r = await facilitator.verify(payload, requirements);
    assert.equal(r.isValid, false);
    assert.equal(r.invalidReason, 'invalid_exact_evm_transaction_simulation_failed');
  });

  it('uses the header-level shape x402 servers exchange (base64 JSON round trip)', async () => {
    const payload = await pay();
    const header = Buffer.from(JSON.stringify(payload)).toString('base64');
    const decoded = JSON.parse(Buffer.from(header, 'base64').toString('utf8'));
    assert.deepEqual(Object.keys(decoded.payload.authorization).sort(), ['from', 'nonce', 'to', 'validAfter', 'validBefore', 'value']);
    assert.ok(viem.isHex(decoded.payload.authorization.nonce) && decoded.payload.authorization.nonce.length === 66);
    const v = await facilitator.verify(decoded, requirements);
    assert.equal(v.isValid, true);
  });
});
