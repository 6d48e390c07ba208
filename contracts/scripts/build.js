#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Compile contracts/src/**/*.sol with the pinned npm `solc` (standard-JSON API) into
// contracts/build/<ContractName>.json = { contractName, sourceName, abi, bytecode,
// deployedBytecode, methodIdentifiers, storageLayout, compiler }.
//
// Fails (exit 1) on any compiler error, and on any warning that is not listed in
// ALLOWED_WARNINGS with a reason. Skips the compile when the sources, settings and
// compiler are unchanged since the last build (build/.input-hash); --force rebuilds.
//
// usage: node scripts/build.js [--force] [--quiet]
//        require('./build.js').build({ force, quiet }) -> exit code (0 = ok)
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src');
const OUT = path.join(ROOT, 'build');

// Settings are part of the artifact: change them only with a measured reason.
// evmVersion is pinned (not solc's moving default) so the bytecode runs on every
// chain WorkProof targets (Base / Base Sepolia are past Cancun) and on anvil.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'cancun',
  metadata: { bytecodeHash: 'ipfs' },
  outputSelection: {
    '*': {
      '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers', 'storageLayout'],
    },
  },
};

// Warnings we accept, keyed by solc errorCode, each with why. Empty on purpose.
const ALLOWED_WARNINGS = {};

/** Readers (tests running beside a build) never see a half-written file. */
function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function listSources(dir) {
  const out = [];
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    if (ent.isDirectory()) out.push(...listSources(p));
    else if (ent.isFile() && ent.name.endsWith('.sol')) out.push(p);
  }
  return out.sort();
}

function build({ force = false, quiet = false } = {}) {
  const log = (...a) => { if (!quiet) console.log(...a); };

  const solc = require('solc');
  const files = listSources(SRC);
  if (files.length === 0) throw new Error(`no .sol files under ${SRC}`);

  const sources = {};
  for (const f of files) {
    const key = path.relative(ROOT, f).split(path.sep).join('/'); // "src/Foo.sol"
    sources[key] = { content: fs.readFileSync(f, 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const inputJson = JSON.stringify(input);

  const hash = crypto.createHash('sha256').update(solc.version()).update('\0').update(inputJson).digest('hex');
  const hashFile = path.join(OUT, '.input-hash');
  if (!force && fs.existsSync(hashFile) && fs.readFileSync(hashFile, 'utf8').trim() === hash) {
    log(`build: up to date (solc ${solc.version()}, ${files.length} sources)`);
    return 0;
  }

  // Every source is in `sources`, so an import the compiler asks for is a typo.
  const findImports = (p) => ({ error: `import not found: ${p}` });
  const output = JSON.parse(solc.compile(inputJson, { import: findImports }));

  let failed = false;
  for (const e of output.errors || []) {
    const allowed = e.severity === 'warning' && ALLOWED_WARNINGS[e.errorCode];
    if (e.severity === 'info' || allowed) {
      log(e.formattedMessage || e.message);
      continue;
    }
    console.error(e.formattedMessage || `${e.severity}: ${e.message}`);
    failed = true; // an error, or a warning nobody justified
  }
  if (failed) {
    console.error('build: FAILED (errors or unjustified warnings above)');
    return 1;
  }

  fs.mkdirSync(OUT, { recursive: true });
  const written = [];
  for (const [sourceName, contracts] of Object.entries(output.contracts || {})) {
    for (const [contractName, c] of Object.entries(contracts)) {
      if (written.includes(contractName)) throw new Error(`duplicate contract name ${contractName}`);
      const artifact = {
        contractName,
        sourceName,
        abi: c.abi,
        bytecode: '0x' + c.evm.bytecode.object,
        deployedBytecode: '0x' + c.evm.deployedBytecode.object,
        methodIdentifiers: c.evm.methodIdentifiers,
        storageLayout: c.storageLayout,
        compiler: { name: 'solc', version: solc.version(), settings: { ...SETTINGS, outputSelection: undefined } },
      };
      writeAtomic(path.join(OUT, `${contractName}.json`), JSON.stringify(artifact, null, 2) + '\n');
      written.push(contractName);
      const size = (artifact.deployedBytecode.length - 2) / 2;
      log(`  ${sourceName.padEnd(44)} ${contractName.padEnd(32)} runtime ${size} bytes`);
      if (size > 24576) {
        console.error(`build: ${contractName} runtime code ${size} bytes exceeds EIP-170 (24576)`);
        return 1;
      }
    }
  }
  writeAtomic(hashFile, hash + '\n');
  log(`build: ok, solc ${solc.version()}, ${written.length} contracts -> ${path.relative(process.cwd(), OUT) || '.'}`);
  return 0;
}

module.exports = { build, BUILD_DIR: OUT };

if (require.main === module) {
  const args = new Set(process.argv.slice(2));
  try {
    process.exitCode = build({ force: args.has('--force'), quiet: args.has('--quiet') });
  } catch (err) {
    console.error(`build: ${err && err.stack ? err.stack : err}`);
    process.exitCode = 1;
  }
}
