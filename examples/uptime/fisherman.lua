-- A fisherman: `workproof uptime fisherman examples/uptime/fisherman.lua`
-- (docs/uptime.md section 11). It has no lease: it challenges providers
-- that admit challengers (`challengers = "any"` in their config) and
-- writes a signed evidence report per sample; check one with
-- `workproof uptime evidence verify FILE`.
--
-- DEMO KEY: public. Use your own seed for a real fisherman.
local env = os.getenv
return {
  identity = { seed = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0" },
  reports_dir = env("WORKPROOF_FISHERMAN_REPORTS") or "../../var/fisherman",
  every_s = 600,            -- seconds between samples of every target
  -- samples = 1,           -- stop after this many rounds
  compute_t = 200000,       -- VDF squarings per compute challenge
  latency_bound_ms = 200,
  slow_factor = 1.5,        -- N at once slower than this x alone: degraded together
  log_level = "info",
  targets = {
    { provider_key = "f4ed7f3b1853bcb86b71651e72312caa5a58554c34d733ffc871d46580b98167",
      address = env("WORKPROOF_UPTIME_PROVIDER") or "127.0.0.1:8451" },
  },
}
