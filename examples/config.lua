-- SPDX-License-Identifier: MIT
-- Every setting of `workproof serve`, with its default. Copy, edit, run:
--   build/workproof serve examples/config.lua
-- A config file is Lua returning a table, loaded as text with only
-- os.getenv available. Unknown keys are errors. Changing this file (or any
-- file under policies_dir) reloads the controller; `listen`, `reuseport`,
-- `state_dir` and `store` take effect at the next start.
return {
  listen = "127.0.0.1:8402",        -- HOST:PORT ([::1]:PORT for IPv6)
  reuseport = true,                 -- several processes may share the port
  state_dir = "./var",              -- live-worker records, the store
  -- store = "./var/workproof.db",  -- SQLite file (default: <state_dir>/workproof.db)
  -- policies_dir = "<repo>/policies",
  watch = true,                     -- reload on changes to policies/ and this file
  policy_budget = {                 -- a policy that loops or allocates without bound is stopped
    load_ms = 2000,                 -- a file's main chunk; then its schema checks and self_check
    hook_ms = 250,                  -- one hook call (over it: the hook's fallback)
    mem_mb = 256,                   -- Lua heap growth during one call
  },
  log_level = "info",               -- debug | info | warn | error

  worker = {
    backend = "sandbox",            -- sandbox | qemu | none (development only)
    grace = 2,                      -- seconds past a task's timeout before the host kills
    reaper_interval = 5,            -- seconds between orphan sweeps
    memory_bytes = 268435456,       -- per task
    output_limit_bytes = 1048576,   -- per task stdout
  },

  limits = {
    max_body = 1048576,             -- request body (JSON 413 above it)
    max_code = 102400,              -- the task's code (413 above it)
    max_expected_hash = 128,
    max_depth = 32,                 -- JSON nesting
    timeout_min = 5, timeout_max = 60, timeout_default = 30,   -- timeoutSeconds
    shutdown_grace = 65,            -- seconds in-flight requests get on SIGTERM
    -- connection budgets (docs/operations.md, "Connections and descriptors");
    -- taken at start, not on reload
    max_connections_per_client = 64,  -- per IPv4 address / IPv6 /64; 0: no cap (behind a proxy)
    fd_reserve = 64,                -- descriptors kept free for workers and the store; 0: off
    header_timeout = 10,            -- seconds to send a request head (also the keep-alive idle limit)
    body_timeout = 30,              -- seconds to send the whole request, head and body
  },

  -- the request flow, in order; drop, reorder, or add a stage that is a
  -- policy with a `stage(conf, ctx)` hook (docs/policies.md)
  flow = {
    "validate", "size", "rate_limit", "code_patterns", "circuit_breaker", "payment",
    "worker_threshold", "spawn", "result", "attestation", "cleanup",
  },

  -- policies: each a file <policies_dir>/<name>.lua; `config` is checked
  -- against that policy's schema (docs/policies.md lists every setting)
  policies = {
    task_types = {},
    code_patterns = {},
    -- trusted_proxies: peers whose X-Forwarded-For is believed
    rate_limit = { config = { limit = 100, window = 60, trusted_proxies = {} } },
    circuit_breaker = { config = { failure_threshold = 10, window = 60 } },
    worker_threshold = { config = { max_active = 100 } },
    -- my_policy = { enabled = true, file = "/etc/workproof/my_policy.lua", config = {} },
  },

  payments = { enabled = false },
  chain = { enabled = false },
}
