-- The arbiter: `workproof uptime arbiter examples/uptime/arbiter.lua` (docs/uptime.md
-- section 12). It watches the UptimeRegistry for disputes, checks each one's
-- evidence with the core's verifiers against the posted claims and the lease's
-- anchored keys, rules by policies/disputes.lua and submits the ruling through
-- its outbox, once. Its signer must be the registry's arbiter address.
--
-- Below: `make run`'s anvil (127.0.0.1:8545) and its deployment, whose arbiter
-- is anvil's well-known account #9 — a development key, never a real one.
local env = os.getenv
return {
  chain = {
    rpc = env("WORKPROOF_UPTIME_RPC") or "http://127.0.0.1:8545",
    deployment = env("WORKPROOF_UPTIME_DEPLOYMENT") or "../../var/local/deployment.json",
    key_file = env("WORKPROOF_UPTIME_ARBITER_KEY") or "../../var/local/arbiter.key",   -- 64 hex, mode 0600
    poll_s = 1,
  },
  state_dir = env("WORKPROOF_UPTIME_STATE") or "../../var/uptime-arbiter",   -- arbiter.db, reports/
  -- policies_dir = "<the shipped policies>",
  policies = {
    disputes = {
      -- basis points of the provider's collateral per proven fault (0: not counted)
      slash_bps = { INVALID_BEAT = 1000, EQUIVOCATION = 5000, CHALLENGE_FAILED = 500, CLAIM_MISMATCH = 5000,
        OVERCOMMITTED = 2000 },
      max_slash = 0,          -- token units per ruling at most (0: the collateral)
      refund_share = 0.8,     -- of a slash to the consumer; the rest to the disputer
    },
  },
  vdf_t = 0,                  -- the leases' VDF delay (0: off)
  watch = true,               -- reload disputes.lua when it changes (also SIGHUP)
  log_level = "info",
}
