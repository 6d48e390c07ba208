// SPDX-License-Identifier: MIT
// Gas per attestation, measured from mined receipts on anvil, for ValidationRegistry and
// for NaiveValidationRegistry (the whole struct in storage) in the same run.
// Prints a table and writes build/gas-report.json. Reference from the seed: ~150,000.
'use strict';

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const h = require('./helpers.js');

const { viem, ZERO_ADDRESS } = h;
const METHOD = 'reexecution-v1-code-execution';
const SEED_REFERENCE = 150_000n;
const BUDGET = 200_000n; // regression guard for the typical case

/** 21000 + calldata cost (EIP-2028), to split execution from intrinsic gas. */
function intrinsic(data) {
  let g = 21_000n;
  for (let i = 2; i < data.length; i += 2) g += data.slice(i, i + 2) === '00' ? 4n : 16n;
  return g;
}

describe('gas per attestation', () => {
  let env;
  const rows = [];

  before(async () => { env = await h.setupChain(); });
  after(async () => { if (env) await env.close(); });

  it('measures ValidationRegistry against the naive layout', async () => {
    const mock = await h.deploy(env, 'MockERC8004ValidationRegistry');
    const reg = await h.deploy(env, 'ValidationRegistry', [mock.address]);
    const naive = await h.deploy(env, 'NaiveValidationRegistry');
    const proof = h.pseudoBytes(200, 11); // ~200 bytes of proofData
    let n = 0;
    const task = () => viem.sha256(viem.toHex(`gas-task-${n++}`));

    const measure = async (c, fn, args, from) => {
      const r = await h.mustSend(env, c, fn, args, { from });
      const data = viem.encodeFunctionData({ abi: c.abi, functionName: fn, args });
      return { gas: r.gasUsed, exec: r.gasUsed - intrinsic(data), calldataBytes: (data.length - 2) / 2 };
    };

    const cases = [];
    for (const [label, c] of [['ValidationRegistry', reg], ['NaiveValidationRegistry', naive]]) {
      const from = label === 'ValidationRegistry' ? 5 : 6; // fresh verifiers
      const t1 = task();
      cases.push([label, 'first attestation of a new verifier, new task', await measure(c, 'attestValidation', [t1, METHOD, true, proof], from)]);
      cases.push([label, 'typical: known verifier, new task', await measure(c, 'attestValidation', [task(), METHOD, true, proof], from)]);
      cases.push([label, 'second attestation of the same task', await measure(c, 'attestValidation', [t1, METHOD, false, proof], from)]);
      cases.push([label, 'known verifier, new task, empty proofData', await measure(c, 'attestValidation', [task(), METHOD, true, '0x'], from)]);
    }
    const req = viem.keccak256(viem.toHex('gas request'));
    await h.mustSend(env, mock, 'validationRequest', [reg.address, 1n, 'ipfs://x', req], { from: 9 });
    cases.push(['ValidationRegistry', 'attestValidationFor + ERC-8004 forward (mock), known verifier',
      await measure(reg, 'attestValidationFor', [req, task(), METHOD, true, proof], 5)]);
    const noFwd = await h.deploy(env, 'ValidationRegistry', [ZERO_ADDRESS]);
    await h.mustSend(env, noFwd, 'attestValidation', [task(), METHOD, true, '0x'], { from: 7 });
    cases.push(['ValidationRegistry', 'attestValidationFor, no ERC-8004 registry, known verifier',
      await measure(noFwd, 'attestValidationFor', [req, task(), METHOD, true, proof], 7)]);

    for (const [contract, scenario, m] of cases) rows.push({ contract, scenario, gasUsed: m.gas, execution: m.exec, calldataBytes: m.calldataBytes });

    const get = (contract, scenario) => rows.find((r) => r.contract === contract && r.scenario.startsWith(scenario)).gasUsed;
    const typical = get('ValidationRegistry', 'typical');
    const naiveTypical = get('NaiveValidationRegistry', 'typical');

    const lines = [
      `gas per attestation (proofData ${(proof.length - 2) / 2} bytes, method "${METHOD}", solc optimizer 200 runs, anvil receipts)`,
      `${'contract'.padEnd(24)} ${'scenario'.padEnd(62)} ${'gasUsed'.padStart(8)} ${'exec'.padStart(8)}`,
      ...rows.map((r) => `${r.contract.padEnd(24)} ${r.scenario.padEnd(62)} ${String(r.gasUsed).padStart(8)} ${String(r.execution).padStart(8)}`),
      `typical ValidationRegistry ${typical} vs seed ~${SEED_REFERENCE} (${(Number(typical) / Number(SEED_REFERENCE)).toFixed(2)}x) vs naive ${naiveTypical} (${(Number(typical) / Number(naiveTypical)).toFixed(2)}x)`,
    ];
    console.log(lines.join('\n'));
    fs.writeFileSync(path.join(__dirname, '..', 'build', 'gas-report.json'), JSON.stringify({
      proofDataBytes: (proof.length - 2) / 2, method: METHOD, seedReference: Number(SEED_REFERENCE),
      rows: rows.map((r) => ({ ...r, gasUsed: Number(r.gasUsed), execution: Number(r.execution) })),
    }, null, 2) + '\n');

    assert.ok(typical < naiveTypical, 'the packed/SSTORE2 layout must beat the naive one');
    assert.ok(typical <= BUDGET, `typical attestation ${typical} gas exceeds the ${BUDGET} budget`);
  });
});
