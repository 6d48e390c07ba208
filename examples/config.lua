-- SPDX-License-Identifier: MIT
-- Every setting of `workproof serve`, with its default. Copy, edit, run:
--   build/workproof serve examples/config.lua
-- A config file is Lua returning a table, loaded as text with only
-- os.getenv available. Unknown keys are errors. Changing this file (or any
-- file under policies_dir) reloads the controller; `listen`, `reuseport`, `processes`,
-- `state_dir` and `store` take effect at the next start.
return {
  listen = "127.0.0.1:8402",        -- HOST:PORT: IPv4, a host name (resolved at start) or [IPv6]:PORT; 0: any port
  reuseport = false,                -- share the port with other processes (SO_REUSEPORT); off: a busy port fails
  processes = 1,                    -- N > 1: N serve processes on one port under a parent restarting them
  state_dir = "./var",              -- live-worker records, the store
  -- store = "./var/workproof.db",  -- SQLite file (default: <state_dir>/workproof.db), or a
  --                                 -- postgres:// URL shared by many hosts (docs/operations.md)
  -- store_pool = 4,                 -- PostgreSQL connections per process at most
  -- store_lease = 15,               -- seconds without a heartbeat: a host is dead, its jobs taken over
  -- shared_limits = nil,            -- rate limits and the breaker in the store (default: on with PostgreSQL)
  -- policies_dir = "<repo>/policies",
  watch = true,                     -- reload on changes to policies/ and this file
  policy_budget = {                 -- a policy that loops or allocates without bound is stopped
    load_ms = 2000,                 -- a file's main chunk; then its schema checks and self_check
    hook_ms = 250,                  -- one hook call (over it: the hook's fallback)
    mem_mb = 256,                   -- Lua heap growth during one call
  },
  log_level = "info",               -- debug | info | warn | error (WORKPROOF_LOG wins when set)
  log_format = "text",              -- text | json: one JSON object per line (WORKPROOF_LOG_FORMAT wins)
  access_log = true,                -- an info line per HTTP request answered in Lua
  cors = {                          -- browser clients on other origins (docs/http-api.md, CORS)
    -- origins = { "https://app.example" },   -- or "*"; unset (the default): CORS off
    max_age = 600,                  -- seconds a browser may cache a preflight answer
  },
  dashboard = {                     -- GET /dashboard, the operator's live page (docs/dashboard.md)
    -- token = "a-long-random-string",   -- lets non-loopback clients in (Bearer or ?token=); unset: loopback only
    -- uptime = "http://127.0.0.1:8451", -- an uptime agent's status API: its leases on the page
  },

  worker = {
    backend = "sandbox",            -- sandbox | qemu | none (development only)
    -- path = "<build>/workproof-worker",  -- the worker binary (default: the one built beside this host)
    grace = 2,                      -- seconds past a task's timeout before the host kills
    reaper_interval = 5,            -- seconds between orphan sweeps
    memory_bytes = 268435456,       -- per task
    output_limit_bytes = 1048576,   -- per task stdout
    zygote = true,                  -- sandbox/none: workers forked by one `workproof-worker --zygote`
                                    -- (started once) instead of exec'd per task: less CPU a task
    -- warm sandboxes kept ready per language (sandbox and none backends): started
    -- ahead of demand, each used for ONE task, replaced once it took one; idle and
    -- running workers together stay under worker_threshold's max_active
    pool = { lua = 4, javascript = 2 },
  },

  jobs = {
    retention = 604800,             -- seconds an answered job is kept (7 days; 0: forever)
    prune_interval = 60,            -- seconds between pruning rounds
    prune_batch = 500,              -- rows per delete; the loop serves between batches
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

  -- payments need the chain (chain.enabled = true); examples/local.lua
  -- turns both on against a local anvil
  payments = {
    enabled = false,
    x402 = {                        -- x402 v2 "exact": an EIP-3009 authorization in X-PAYMENT
      enabled = true,
      -- network = "eip155:31337",  -- CAIP-2 (default: from the chain id)
      -- asset = "0x...",           -- the EIP-3009 token (default: from chain.deployment)
      amount = "10000",             -- atomic units (0.01 USDC)
      -- pay_to = "0x...",          -- default: the signer's address
      token_name = "USD Coin",      -- the token's EIP-712 domain
      token_version = "2",
      max_timeout_seconds = 300,
      -- facilitator = "https://facilitator.example",  -- verify and settle there (POST /verify, /settle)
      min_validity_seconds = 70,    -- an authorization must stay valid this long (settled after the verdict)
    },
    txhash = {                      -- legacy: the client pays first and sends the tx hash
      enabled = true,
      -- pay_to = "0x...",          -- default: the signer's address
      amount_wei = "1000000000000000",   -- 0.001 ETH
      confirmations = 2,
    },
  },

  chain = {
    enabled = false,                -- attestations on chain (ValidationRegistry)
    rpc = "http://127.0.0.1:8545",
    -- chain_id = 31337,            -- checked against the node at start (default: from the deployment)
    -- deployment = "contracts/deployments/local.json",   -- fills registry, erc8004, token, chain id
    -- registry = "0x...",          -- the ValidationRegistry address
    -- uptime_registry = "0x...",   -- the UptimeRegistry shown in /info (default: the deployment's)
    -- erc8004 = "0x...",           -- the ERC-8004 registry it forwards to (fixed at its deployment)
    -- key_file = "/etc/workproof/signer.key",   -- 64 hex, mode 0600 or 0400
    key_env = "WORKPROOF_SIGNER_KEY",   -- else the key comes from this environment variable
    method = "reexecution-v1-code-execution",
    wait_receipt = 15,              -- seconds a request waits for its receipt (then: pending)
    reprice_after = 30,             -- seconds before a stuck transaction is re-sent with more gas
    stuck_after = 120,              -- seconds before an unmined outbox row is logged as a warning
    reorg_depth = 12,               -- blocks within which mined rows are re-checked for a reorg
  },
}
