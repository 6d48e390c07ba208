-- The provider's uptime agent: `workproof uptime provider examples/uptime/provider.lua`
-- (docs/uptime.md, "Agents"). Every setting, with its default where it has one.
--
-- DEMO KEYS: the seed below is public (SHA-256 of a sentence). Give a real
-- provider `identity = { seed_file = "provider.key" }` (created 0600 with a
-- fresh key when missing) and make leases with `workproof uptime lease`.
local env = os.getenv
-- `make uptime-demo` starts a fresh lease on every run (a new start time)
local lease_start = env("WORKPROOF_UPTIME_LEASE_START")
return {
  identity = { seed = "d80e8b263c25377ee9c551fc15f29c553003ca6afbce109963fe5dca272c0857" },
  -- the authenticated transport: TLS 1.3, both certificates bound to the
  -- parties' Ed25519 identity keys, the consumer pinned from the lease
  listen = env("WORKPROOF_UPTIME_LISTEN") or "127.0.0.1:8451",
  -- the status API (plain HTTP; keep it on loopback)
  status_listen = env("WORKPROOF_UPTIME_STATUS") or "127.0.0.1:8453",
  -- uptime.db (chain, pending beat, rotations, rotated keys, evidence, epochs, claims); 0700
  state_dir = env("WORKPROOF_UPTIME_STATE") or "../../var/uptime-provider",
  -- policies_dir = "<the shipped policies>",
  policies = {
    timestamps = { interval_s = tonumber(env("WORKPROOF_UPTIME_INTERVAL") or "60"),
      tolerance_s = tonumber(env("WORKPROOF_UPTIME_TOLERANCE") or "30"), drift_s = 10 },
    key_rotation = { schedule_days = 30, grace_days = 3, allow_manual = true },
    liveness = { late_after = 1.5, down_after = 3 },
  },
  -- storage offered per lease: the consumer uploads this much data (a keyed
  -- stream only it can make) at lease start into state_dir/storage/<lease>.dat;
  -- answered chunk by chunk to storage challenges (docs/uptime.md section 10)
  storage = { size_mb = tonumber(env("WORKPROOF_UPTIME_STORAGE_MB") or "64"), chunk_size = 4096 },
  -- what this machine has, signed with each lease's share (GET /v1/capacity)
  capacity = { vcpus = 2, memory_mb = 4096, storage_mb = 1024 },
  -- fishermen: any proven identity may challenge (latency, compute); beats stay the consumers'
  challengers = "any",
  epoch_beats = tonumber(env("WORKPROOF_UPTIME_EPOCH_BEATS") or "60"),    -- 1 .. 60
  claim_epochs = tonumber(env("WORKPROOF_UPTIME_CLAIM_EPOCHS") or "24"),  -- 1 .. 24
  cert_lifetime = 86400,   -- seconds; re-issued at half its life
  watch = true,            -- reload the policies and this file when they change (also SIGHUP)
  log_level = "info",
  -- the UptimeRegistry (docs/uptime.md section 12): the identity registered with
  -- collateral (token units), each lease registered, each claim posted, own key
  -- rotations anchored, all through the outbox in uptime.db. Off without an RPC;
  -- `make uptime-demo` turns it on when `make run`'s anvil is up.
  chain = env("WORKPROOF_UPTIME_RPC") and { rpc = env("WORKPROOF_UPTIME_RPC"),
    deployment = env("WORKPROOF_UPTIME_DEPLOYMENT"), key_file = env("WORKPROOF_UPTIME_SIGNER"),
    collateral = 100000000, poll_s = 2 } or nil,
  leases = {
    -- `workproof uptime lease --provider-key f4ed… --consumer-key 52f4… --start 1764547200000000000
    --  --nonce 00112233445566778899aabbccddeeff`
    { id = not lease_start and "efab9217733a19f995f73c17d3929d76773ef416655fb55ba4d47c3e2c76f03f" or nil,
      provider_key = "f4ed7f3b1853bcb86b71651e72312caa5a58554c34d733ffc871d46580b98167",
      consumer_key = "52f4d0e07a2faa37bcbc4ca544f6ccab829ffd3843dadf3ddf8ed77b783674c8",
      start = lease_start or "1764547200000000000", nonce = "00112233445566778899aabbccddeeff",
      share = { vcpus = 1, memory_mb = 2048, storage_mb = 64 },
      -- with a chain: the consumer's address (refunds go there)
      consumer_address = env("WORKPROOF_UPTIME_CONSUMER_ADDRESS") },
  },
}
