-- The consumer's uptime agent: `workproof uptime consumer examples/uptime/consumer.lua`
-- (docs/uptime.md, "Agents"). Every setting, with its default where it has one.
--
-- DEMO KEYS: the seed below is public (SHA-256 of a sentence). Give a real
-- consumer `identity = { seed_file = "consumer.key" }` (created 0600 with a
-- fresh key when missing) and make leases with `workproof uptime lease`.
local env = os.getenv
local lease_start = env("WORKPROOF_UPTIME_LEASE_START")   -- `make uptime-demo`: a fresh lease each run
return {
  identity = { seed = "620a6ee6154f9b27b6db4c8679d9b697c9fd37b488d27e86c3a5d7f39699d34a" },
  -- the status API (plain HTTP; keep it on loopback)
  status_listen = env("WORKPROOF_UPTIME_STATUS") or "127.0.0.1:8452",
  state_dir = env("WORKPROOF_UPTIME_STATE") or "../../var/uptime-consumer",
  -- policies_dir = "<the shipped policies>",
  policies = {
    -- the consumer checks every beat against ITS clock: drift_s both ways
    timestamps = { interval_s = tonumber(env("WORKPROOF_UPTIME_INTERVAL") or "60"),
      tolerance_s = tonumber(env("WORKPROOF_UPTIME_TOLERANCE") or "30"), drift_s = 10 },
    key_rotation = { schedule_days = 30, grace_days = 3, allow_manual = true },
    liveness = { late_after = 1.5, down_after = 3 },
    -- challenges to the provider: kinds, frequency, parameters, deadlines, what a failure means
    challenges = {
      compute_every_s = tonumber(env("WORKPROOF_UPTIME_CHALLENGE_S") or "300"), compute_t = 200000,
      compute_deadline_s = 10, slow_factor = 1.5,
      storage_every_s = tonumber(env("WORKPROOF_UPTIME_CHALLENGE_S") or "300"), storage_chunks = 8,
      storage_deadline_s = 0.25, storage_max_mb = 4096,   -- uploaded to the provider at lease start
      latency_every_s = 60, latency_bound_ms = 200,
      on_miss = "degrade", on_degraded = "note", score_alert = 0.9, score_dispute = 0.7,
    },
  },
  epoch_beats = tonumber(env("WORKPROOF_UPTIME_EPOCH_BEATS") or "60"),
  claim_epochs = tonumber(env("WORKPROOF_UPTIME_CLAIM_EPOCHS") or "24"),
  cert_lifetime = 86400,
  connect_timeout = 5,     -- seconds to reach a provider
  watch = true,
  log_level = "info",
  -- the UptimeRegistry (docs/uptime.md section 12): the provider's posted claims
  -- checked against this chain, disputed (with a bond) when they differ and for
  -- the evidence kept, as policies/disputes.lua says. Off without an RPC.
  chain = env("WORKPROOF_UPTIME_RPC") and { rpc = env("WORKPROOF_UPTIME_RPC"),
    deployment = env("WORKPROOF_UPTIME_DEPLOYMENT"), key_file = env("WORKPROOF_UPTIME_SIGNER"), poll_s = 2 } or nil,
  leases = {
    { id = not lease_start and "efab9217733a19f995f73c17d3929d76773ef416655fb55ba4d47c3e2c76f03f" or nil,
      provider_key = "f4ed7f3b1853bcb86b71651e72312caa5a58554c34d733ffc871d46580b98167",
      consumer_key = "52f4d0e07a2faa37bcbc4ca544f6ccab829ffd3843dadf3ddf8ed77b783674c8",
      start = lease_start or "1764547200000000000", nonce = "00112233445566778899aabbccddeeff",
      provider = env("WORKPROOF_UPTIME_PROVIDER") or "127.0.0.1:8451" },
  },
}
