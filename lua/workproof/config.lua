-- SPDX-License-Identifier: MIT
--- Controller configuration: embedded defaults, the schema, loading a
-- config file. `workproof serve` with no file runs on the defaults alone;
-- examples/config.lua shows every setting with its default.
--
-- A config file is Lua returning a table, loaded as text in an env offering
-- only os.getenv (secrets come from the environment). Its keys are checked
-- against the schema below: a typo is an error, not a silent default.
local schema = require "workproof.schema"

local _M = {}

-- The shipped policies: where the host says (host.policies_dir: <repo>/policies
-- in a build tree, <prefix>/share/workproof/policies installed); under plain
-- luajit from where this file was loaded: <repo>/lua -> <repo>/policies,
-- <prefix>/share/lua/5.1 -> <prefix>/share/workproof/policies.
local function default_policies_dir()
  local ok, host = pcall(require, "workproof.host")
  if ok and type(host) == "table" and host.policies_dir then return host.policies_dir end
  local src = debug.getinfo(1, "S").source:sub(2)
  local lua_dir = src:match("^(.*)/workproof/config%.lua$")
  if not lua_dir then return "policies" end
  local prefix = lua_dir:match("^(.*)/share/lua/5%.1$")
  if prefix then return prefix .. "/share/workproof/policies" end
  return lua_dir .. "/../policies"
end

_M.FLOW = {
  "validate", "size", "rate_limit", "code_patterns", "circuit_breaker", "payment",
  "worker_threshold", "spawn", "result", "attestation", "cleanup",
}

-- cors.origins: "*" or a list of origins as browsers send them
-- (scheme://host[:port], no path)
local function check_origins(v)
  if v == "*" then return true end
  if type(v) ~= "table" or #v == 0 then return nil, 'expected "*" or a non-empty list of origins' end
  local n = 0
  for k in pairs(v) do
    n = n + 1
    if type(k) ~= "number" or k < 1 or k > #v or k % 1 ~= 0 then return nil, "expected a list, not a map" end
  end
  if n ~= #v then return nil, "expected a list without holes" end
  for k, o in ipairs(v) do
    if type(o) ~= "string" or not o:match("^https?://[%w%.%-]+$") and not o:match("^https?://[%w%.%-]+:%d+$")
      and not o:match("^https?://%[[%x:%.]+%]:?%d*$") then
      return nil, ("origin %d: expected scheme://host[:port] (no path), got %s"):format(k, tostring(o))
    end
  end
  return true
end

local policy_conf = { type = "record", fields = {
  enabled = { type = "boolean", default = true },
  file = { type = "string", description = "policy file (default: <policies_dir>/<name>.lua)" },
  config = { type = "map", keys = { type = "string" }, default = {},
    description = "the policy's own settings, checked against its schema" },
} }

_M.schema = {
  listen = { type = "string", default = "127.0.0.1:8402",
    description = "HOST:PORT: an IPv4 address, a host name (resolved at start) or [IPv6]; port 0-65535 (0: any)" },
  reuseport = { type = "boolean", default = false,
    description = "share the port with other processes (SO_REUSEPORT); off, a busy port fails the start" },
  processes = { type = "integer", min = 1, max = 256, default = 1,
    description = "serve processes sharing the port under one supervising parent (docs/operations.md)" },
  state_dir = { type = "string", default = "./var" },
  store = { type = "string", description = "SQLite file (default: <state_dir>/workproof.db), or a postgres:// URL "
    .. "shared by several hosts (docs/operations.md, Many hosts)" },
  store_pool = { type = "integer", min = 1, max = 64, default = 4,
    description = "PostgreSQL connections per process at most" },
  shared_limits = { type = "boolean", description = "rate-limit entries and the circuit breaker kept in the store, "
    .. "shared by every host (default: on with a postgres:// store, off with SQLite)" },
  store_lease = { type = "number", min = 2, max = 3600, default = 15,
    description = "seconds without a heartbeat after which a host counts as dead: its running jobs are taken over" },
  policies_dir = { type = "string", default = default_policies_dir() },
  watch = { type = "boolean", default = true, description = "reload on changes to policies/ or the config" },
  policy_budget = { type = "record", description = "limits on policy code (docs/policies.md, Budget)", fields = {
    load_ms = { type = "number", min = 1, default = 2000, description = "a policy's main chunk; then its configure" },
    hook_ms = { type = "number", min = 1, default = 250, description = "one hook call" },
    mem_mb = { type = "number", min = 1, default = 256, description = "Lua heap growth during one call" },
  } },
  cors = { type = "record", fields = {
      origins = { type = "any", custom = check_origins,
        description = '"*" (any origin) or a list such as { "https://app.example" }; unset: CORS off '
          .. "(docs/http-api.md, CORS)" },
      max_age = { type = "integer", min = 0, max = 86400, default = 600,
        description = "seconds a browser may cache a preflight answer" },
    } },
  dashboard = { type = "record", fields = {
      token = { type = "string", match = "^[%w%-_%.~]+$", min = 16, max = 256,
        description = "lets clients other than loopback see /dashboard (Authorization: Bearer TOKEN or "
          .. "?token=TOKEN; at least 16 URL-safe characters); unset: loopback only (docs/dashboard.md)" },
      uptime = { type = "string", match = "^https?://[^/%s]+$",
        description = "an uptime agent's status API (http://127.0.0.1:8451): its leases on the dashboard" },
    } },
  log_level = { type = "string", one_of = { "debug", "info", "warn", "error" }, default = "info",
    description = "the least severe level written (WORKPROOF_LOG wins when set); applied at start and on reload" },
  log_format = { type = "string", one_of = { "text", "json" }, default = "text",
    description = "every log line as text or as one JSON object (WORKPROOF_LOG_FORMAT wins when set)" },
  access_log = { type = "boolean", default = true, description = "an info line per HTTP request answered in Lua" },
  worker = { type = "record", fields = {
    backend = { type = "string", one_of = { "sandbox", "qemu", "none" }, default = "sandbox" },
    path = { type = "string", description = "workproof-worker (default: the one built beside this host)" },
    grace = { type = "number", min = 0, default = 2 },
    reaper_interval = { type = "number", min = 0.1, default = 5 },
    memory_bytes = { type = "integer", min = 16777216, default = 268435456 },
    output_limit_bytes = { type = "integer", min = 1024, default = 1048576 },
    zygote = { type = "boolean", default = true, description = "backends sandbox and none: workers are forked "
      .. "by a `workproof-worker --zygote` started once, not each exec'd (the same sandbox, less CPU)" },
    pool = { type = "record", description = "warm sandboxes kept ready per language (backends sandbox and none): "
      .. "started ahead of demand, each used for one task, replaced once it took one", fields = {
      lua = { type = "integer", min = 0, max = 1000, default = 4 },
      javascript = { type = "integer", min = 0, max = 1000, default = 2 },
    } },
  } },
  jobs = { type = "record", description = "the jobs table: answers kept for GET /verify/{jobId}", fields = {
    retention = { type = "number", min = 0, default = 604800,
      description = "seconds a completed job is kept after its answer (default 7 days; 0: forever)" },
    prune_interval = { type = "number", min = 0.01, default = 60,
      description = "seconds between two pruning rounds" },
    prune_batch = { type = "integer", min = 1, max = 100000, default = 500,
      description = "rows deleted at a time; the event loop runs between two batches" },
  } },
  limits = { type = "record", fields = {
    max_body = { type = "integer", min = 1024, default = 1048576 },
    max_code = { type = "integer", min = 1, default = 102400 },
    max_expected_hash = { type = "integer", min = 64, default = 128 },
    max_depth = { type = "integer", min = 2, max = 512, default = 32 },
    timeout_min = { type = "number", min = 1, default = 5 },
    timeout_max = { type = "number", min = 1, default = 60 },
    timeout_default = { type = "number", min = 1, default = 30 },
    shutdown_grace = { type = "number", min = 0, default = 65 },
    -- connection budgets: idle or slow sockets must not starve the
    -- descriptors a worker spawn needs (taken at start, not on reload)
    max_connections_per_client = { type = "integer", min = 0, default = 64,
      description = "open connections per client IPv4 address or IPv6 /64 (0: no cap)" },
    fd_reserve = { type = "integer", min = 0, default = 64,
      description = "descriptors kept free for workers and the store: a connection that would eat into them "
        .. "is answered 503 and closed (0: off)" },
    header_timeout = { type = "number", min = 0.1, max = 86400, default = 10,
      description = "seconds to receive a request head, from the connect or the previous request (keep-alive idle)" },
    body_timeout = { type = "number", min = 0.1, max = 86400, default = 30,
      description = "seconds to receive the whole request, head and body, from the same point" },
  } },
  flow = { type = "array", elements = { type = "string", match = "^[%w_]+$" }, default = _M.FLOW,
    description = "stage names in order; a name that is not built in is a policy file with a `stage` hook" },
  policies = { type = "map", keys = { type = "string", match = "^[%w_]+$" }, values = policy_conf, default = {
    task_types = {}, code_patterns = {}, rate_limit = {}, circuit_breaker = {}, worker_threshold = {},
  } },
  chain = { type = "record", fields = {
    enabled = { type = "boolean", default = false },
    rpc = { type = "string", default = "http://127.0.0.1:8545" },
    chain_id = { type = "integer", min = 1, description = "checked against the node at start" },
    deployment = { type = "string", description = "contracts/deployments/*.json: fills registry and token" },
    registry = { type = "string", description = "ValidationRegistry address" },
    uptime_registry = { type = "string", match = "^0x%x+$", min = 42, max = 42,
      description = "UptimeRegistry address, shown in /info (default from chain.deployment)" },
    erc8004 = { type = "string", description = "the ERC-8004 Validation Registry the registry forwards to "
      .. "(it is fixed at the registry's deployment; default from chain.deployment)" },
    key_file = { type = "string", description = "signer key (64 hex), file mode 0600 or 0400" },
    key_env = { type = "string", default = "WORKPROOF_SIGNER_KEY" },
    method = { type = "string", default = "reexecution-v1-code-execution" },
    wait_receipt = { type = "number", min = 0, default = 15,
      description = "seconds a request waits for its attestation's receipt (then it is reported pending)" },
    reprice_after = { type = "number", min = 1, default = 30 },
    stuck_after = { type = "number", min = 1, default = 120,
      description = "seconds after which an outbox row not yet mined is logged as a warning" },
    reorg_depth = { type = "integer", min = 0, default = 12,
      description = "blocks within which mined outbox rows are re-checked for a reorg" },
  } },
  payments = { type = "record", fields = {
    enabled = { type = "boolean", default = false },
    x402 = { type = "record", fields = {
      enabled = { type = "boolean", default = true },
      network = { type = "string", description = "CAIP-2, e.g. eip155:31337 (default from chain_id)" },
      asset = { type = "string", description = "EIP-3009 token (default from the deployment)" },
      amount = { type = "string", match = "^%d+$", default = "10000", description = "atomic units (0.01 USDC)" },
      pay_to = { type = "string", description = "default: the signer's address" },
      token_name = { type = "string", default = "USD Coin" },
      token_version = { type = "string", default = "2" },
      max_timeout_seconds = { type = "integer", min = 10, default = 300 },
      facilitator = { type = "string", match = "^https?://",
        description = "verify and settle through this x402 facilitator (POST /verify, /settle) instead of on our own" },
      min_validity_seconds = { type = "integer", min = 0, default = 70,
        description = "an authorization must stay valid this long: it is settled after the verdict" },
    } },
    txhash = { type = "record", fields = {
      enabled = { type = "boolean", default = true },
      pay_to = { type = "string", description = "default: the signer's address" },
      amount_wei = { type = "string", match = "^%d+$", default = "1000000000000000" },
      confirmations = { type = "integer", min = 1, default = 2 },
    } },
  } },
}

--- Split a listen address "HOST:PORT", "[IPV6]:PORT" into host and port.
-- Returns host, port or nil, "EINVAL: text", "EINVAL".
function _M.parse_listen(s)
  if type(s) ~= "string" then return nil, "EINVAL: listen must be a string HOST:PORT", "EINVAL" end
  local h, p = s:match("^%[([^%]]*)%]:(%d+)$")
  if h then
    if not h:find(":") then
      return nil, ("EINVAL: %q: brackets are for IPv6 addresses ([::1]:8402)"):format(s), "EINVAL"
    end
  else
    h, p = s:match("^([^:%[%]]+):(%d+)$")
  end
  if not h or h == "" or h:find("%s") then
    return nil, ("EINVAL: %q: expected HOST:PORT or [IPV6]:PORT"):format(s), "EINVAL"
  end
  local port = tonumber(p)
  if #p > 5 or port > 65535 then
    return nil, ("EINVAL: %q: port %s out of range (0-65535)"):format(s, p), "EINVAL"
  end
  return h, port
end

--- The defaults alone (what `workproof serve` runs with no config file).
function _M.defaults()
  return assert(schema.validate(_M.schema, {}))
end

-- The line of src where the setting `dotted` ("chain.rpcc") is written:
-- each name in turn, as a table key (`name =` or `["name"] =`), searched
-- after the previous one; nil when not found (a missing field, an array
-- element).
local function locate(src, dotted)
  local at
  for name in dotted:gmatch("[^.]+") do
    if not name:find("^[%a_][%w_]*$") then break end
    local from = at or 1
    local a = src:find("%f[%w_]" .. name .. "%s*=[^=]", from)
    local b = src:find("%[%s*[\"']" .. name .. "[\"']%s*%]%s*=[^=]", from)
    local p = (a and b) and math.min(a, b) or a or b
    if not p then return nil end
    at = p + #name
  end
  if not at then return nil end
  local line = 1
  for _ in src:sub(1, at):gmatch("\n") do line = line + 1 end
  return line
end

_M.locate = locate

--- Load and validate a config file; raises "file:line: ..." or a readable
-- list of schema errors, one per line ("file:line: key: message" where the
-- key is written in the file). With path nil returns the defaults.
function _M.load(path, overrides)
  local raw, src = {}, nil
  if path then
    local f, err = io.open(path, "rb")
    if not f then error("cannot read config: " .. tostring(err), 0) end
    src = f:read("*a")
    f:close()
    local env = { os = { getenv = os.getenv }, tostring = tostring, tonumber = tonumber }
    local fn, lerr = load(src, "@" .. path, "t", env)
    if not fn then error(lerr, 0) end
    local ok, res = pcall(fn)
    if not ok then error(res, 0) end
    if type(res) ~= "table" then error(path .. ": config must return a table", 0) end
    raw = res
  end
  for k, v in pairs(overrides or {}) do raw[k] = v end
  local conf, errs = schema.validate(_M.schema, raw)
  if not conf then
    local lines = schema.format_errors(errs)
    for i, l in ipairs(lines) do
      local line = src and locate(src, l:match("^([^:]*):") or "")
      lines[i] = (path or "config") .. (line and (":" .. line) or "") .. ": " .. l
    end
    error(table.concat(lines, "\n"), 0)
  end
  local lh, lerr = _M.parse_listen(conf.listen)
  if not lh then error((path or "config") .. ": listen: " .. lerr:gsub("^EINVAL: ", ""), 0) end
  if conf.limits.timeout_min > conf.limits.timeout_max then
    error((path or "config") .. ": limits.timeout_min > limits.timeout_max", 0)
  end
  if conf.limits.header_timeout > conf.limits.body_timeout then
    error((path or "config") .. ": limits.header_timeout > limits.body_timeout", 0)
  end
  -- safe by default: the shipped controller policies run unless the config
  -- turns one off by name (`rate_limit = { enabled = false }`); a config
  -- that lists some policies does not silently drop the others
  for name in pairs(_M.schema.policies.default) do
    if conf.policies[name] == nil then conf.policies[name] = assert(schema.validate(policy_conf.fields, {})) end
  end
  conf.store = conf.store or (conf.state_dir .. "/workproof.db")
  if conf.shared_limits == nil then conf.shared_limits = require("workproof.store").is_url(conf.store) end
  if conf.payments.enabled and not conf.chain.enabled then
    error((path or "config") .. ": payments need the chain (chain.enabled = true)", 0)
  end
  return conf
end

return _M
