#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The one entry point for the contracts tests (wired into ctest by the lead):
#   1. npm ci when node_modules is missing or older than package-lock.json;
#   2. compile with the pinned solc (scripts/build.js: fails on errors and warnings);
#   3. run every test/*.test.js with node's built-in runner. Each test file starts its
#      own anvil on 127.0.0.1 (a free port) and kills it when done.
# Exit status: non-zero on any failure. Prints node's test summary at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "contracts/test.sh: node not found (apt-get install nodejs)" >&2; exit 1; }

# Two ctest runs (e.g. the normal and the ASan tree) may start this at once: serialise
# install + build on a lock outside the source tree; the tests themselves run in parallel
# fine (each file has its own anvil).
lock="${TMPDIR:-/tmp}/workproof-contracts-$(pwd | cksum | cut -d' ' -f1).lock"
exec 9>"$lock"
flock 9
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	command -v npm >/dev/null || { echo "contracts/test.sh: npm not found" >&2; exit 1; }
	echo "contracts: npm ci"
	npm ci --no-audit --no-fund --loglevel=error
fi
node scripts/build.js
flock -u 9

# spec reporter: readable output, closes with "ℹ tests N / ℹ pass N / ℹ fail N".
exec node --test --test-reporter=spec --test-timeout=120000 test/*.test.js
