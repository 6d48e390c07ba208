#!/usr/bin/env node
// SPDX-License-Identifier: MIT
//
// Run a local anvil on 127.0.0.1 (chain id 31337, anvil's deterministic default
// accounts) that stops by itself:
//   * when this script's parent dies (polled: the parent pid changes), or this script
//     is killed (anvil is started with PR_SET_PDEATHSIG through setpriv on Linux);
//   * after --timeout seconds (default 3600);
//   * on SIGINT / SIGTERM / SIGHUP.
//
// usage: node scripts/anvil.js [--port N] [--timeout SECONDS] [--deploy [deploy args...]]
//   --port N        listen port (default 8545; 0 = any free port)
//   --timeout S     stop after S seconds (default 3600)
//   --deploy ...    once anvil listens, run scripts/deploy.js against it; every argument
//                   after --deploy is passed to deploy.js (e.g. --erc8004 mock)
// Prints "anvil: listening on http://127.0.0.1:PORT pid PID" once ready (and
// "anvil: deployed" after --deploy). Exit status 0 on a clean stop.
'use strict';

const { startAnvil } = require('./lib/anvil.js');

async function main() {
  const argv = process.argv.slice(2);
  let port = 8545;
  let timeout = 3600;
  let deployArgs = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--port') port = Number(argv[++i]);
    else if (a === '--timeout') timeout = Number(argv[++i]);
    else if (a === '--deploy') { deployArgs = argv.slice(i + 1); break; }
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/anvil.js [--port N] [--timeout SECONDS] [--deploy [deploy.js args...]]');
      return 0;
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('--port must be 0..65535');
  if (!(timeout > 0)) throw new Error('--timeout must be > 0 seconds');

  // The library timer is only a backstop (+5 s): the graceful stop below comes first.
  const anvil = await startAnvil({ port, chainId: 31337, timeoutMs: (timeout + 5) * 1000 });
  console.log(`anvil: listening on ${anvil.url} pid ${anvil.pid}`);

  let stopping = false;
  const stop = async (why, code = 0) => {
    if (stopping) return;
    stopping = true;
    console.log(`anvil: stopping (${why})`);
    await anvil.stop();
    process.exit(code);
  };
  anvil.child.once('exit', (code, sig) => {
    if (!stopping) {
      console.error(`anvil: exited on its own (code ${code}, signal ${sig})`);
      stopping = true;
      process.exit(code === 0 ? 0 : 1);
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => stop(sig));
  setTimeout(() => stop(`timeout ${timeout}s`), timeout * 1000).unref();

  // Parent death: on Linux an orphan is re-parented (to init or a subreaper), so a
  // change of ppid means whoever started us is gone.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop(`parent ${parent} exited`);
  }, 500);

  if (deployArgs) {
    const { deploy, parseArgs } = require('./deploy.js');
    try {
      await deploy(parseArgs(['--rpc', anvil.url, ...deployArgs]));
      console.log('anvil: deployed');
    } catch (err) {
      console.error(`anvil: deploy failed: ${err && err.shortMessage ? err.shortMessage : err}`);
      await stop('deploy failed', 1);
    }
  }
  return null;
}

main().then((code) => {
  if (typeof code === 'number') process.exitCode = code;
}, (err) => {
  console.error(`anvil: ${err && err.message ? err.message : err}`);
  process.exitCode = 1;
});
