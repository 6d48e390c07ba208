-- SPDX-License-Identifier: MIT
--- `make run` (until the controller lands): a tour of the core from Lua,
-- inside the host's event loop.
local wp = require "workproof"

local function say(fmt, ...) io.write(fmt:format(...), "\n") end

say("workproof %s — the core from Lua", wp.version)

-- hashing
say("sha256('abc')    = %s", wp.hex(wp.sha256("abc")))
say("keccak256('')    = %s", wp.hex(wp.keccak256("")))

-- ed25519: a heartbeat-style signature over a digest
local pub, secret = wp.ed25519.keypair(("\1"):rep(32))
local msg = wp.sha256("lease:0:1700000000000000000:" .. ("0"):rep(64))
local sig = wp.ed25519.sign(secret, msg)
say("ed25519 pub      = %s", wp.hex(pub))
say("ed25519 verify   = %s (tampered: %s)", tostring(wp.ed25519.verify(pub, msg, sig)),
  tostring(wp.ed25519.verify(pub, msg .. "x", sig)))

-- secp256k1 / Ethereum
local key1 = ("\0"):rep(31) .. "\1"
say("address(key 1)   = %s", wp.eth.address(wp.secp256k1.pubkey(key1)))
local h = wp.keccak256("hello")
local rec = wp.secp256k1.recover(h, wp.secp256k1.sign(key1, h))
say("recover(sign)    = %s", wp.eth.address(rec))

-- RFC 6962 Merkle tree with an inclusion proof
local leaves = {}
for i = 1, 60 do leaves[i] = "heartbeat " .. i end
local root = wp.merkle.root(leaves)
local proof = wp.merkle.inclusion_proof(leaves, 37)
say("merkle root(60)  = %s, proof for #37: %d hashes, verifies: %s", wp.hex(root), #proof,
  tostring(wp.merkle.verify_inclusion(leaves[38], 37, #leaves, proof, root)))

-- RLP
say("rlp(['cat','dog']) = %s", wp.hex(wp.rlp.encode({ "cat", "dog" })))

-- logscan: find the worker's verdict line in a noisy, chunked stream
local sc = wp.logscan.new {}
local stream = "booting\nnoise NOTARY_RESULT: fake\nNOTARY_RESULT: {\"jobId\":\"demo\",\"exitCode\":0}\n"
for i = 1, #stream, 7 do sc:feed(stream:sub(i, i + 6)) end
local r = sc:result()
say("logscan result   = jobId %s, exitCode %s", r and r.jobId, r and r.exitCode)

-- the loop: three coroutines sleeping concurrently
local t0, done = wp.now(), 0
for i = 1, 3 do
  wp.spawn(function()
    wp.sleep(0.1 * i)
    done = done + 1
  end)
end
wp.sleep(0.35)
say("3 concurrent sleeps finished: %d in %.2f s", done, wp.now() - t0)
