#!/bin/sh
# SPDX-License-Identifier: MIT
# The full local stack (what `make run` starts): anvil on 127.0.0.1:8545
# with the contracts deployed and test tokens minted to anvil's default
# accounts, then the controller on 127.0.0.1:8402 with chain writes and both
# payment modes on. Ctrl-C stops both.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
STATE=${STATE:-var/local}
mkdir -p "$STATE"
rm -f "$STATE/deployment.json"

[ -d contracts/node_modules ] || (cd contracts && npm ci --no-audit --no-fund)

node contracts/scripts/anvil.js --port 8545 --timeout 86400 --deploy --out "$PWD/$STATE/deployment.json" &
ANVIL=$!
trap 'kill $ANVIL 2>/dev/null || true' EXIT INT TERM
i=0
while [ ! -s "$STATE/deployment.json" ]; do
	i=$((i + 1))
	if [ $i -gt 600 ] || ! kill -0 $ANVIL 2>/dev/null; then
		echo "run-local: anvil did not come up" >&2
		exit 1
	fi
	sleep 0.1
done

# anvil's well-known account #0 signs the service's transactions: a local
# development key, never a real one (mode 0600 as the controller demands)
umask 077
printf '%s\n' ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 > "$STATE/signer.key"
# ... and account #9 is the UptimeRegistry's arbiter in this deployment
# (`workproof uptime arbiter examples/uptime/arbiter.lua` uses this file)
printf '%s\n' 2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6 > "$STATE/arbiter.key"

"$BUILD/workproof" serve examples/local.lua
