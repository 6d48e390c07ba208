-- SPDX-License-Identifier: MIT
--- Policy generations and hot reload (docs/conventions.md §5): a reload
-- builds a complete new generation aside — config, every enabled policy,
-- the flow of stages — validates it, then swaps one reference. A request
-- keeps the generation it started with. State that must outlive a reload
-- (rate-limit buckets, breaker state, worker slots) is host-owned here, one
-- table per policy name, and handed to the policy's hooks.
local wp = require "workproof"
local host = require "workproof.host"
local config = require "workproof.config"
local flow = require "workproof.flow"
local fs = require "workproof.fs"
local policy = require "workproof.policy"
local schema = require "workproof.schema"
local worker = require "workproof.worker"
local errors = require "workproof.errors"
local nmetrics = require "workproof.notary.metrics"
local wlog = require "workproof.log"

local type, pairs, ipairs, tostring, pcall, error, concat, sort =
  type, pairs, ipairs, tostring, pcall, error, table.concat, table.sort

local _M = {}

local current            -- the generation serving now
local seq = 0            -- generations built so far
local config_path, overrides
local last_reload
local policy_state = {}  -- policy name -> host-owned state table

local function log(level, msg) host.log(level, msg) end

local function read_all(path) return fs.read(path) or "" end

--- Where the config comes from: a file (nil: the embedded defaults) and
-- settings that override it (`--listen`).
function _M.configure(path, over)
  config_path, overrides = path, over
end

--- The generation serving now, and the last reload's result.
function _M.current() return current end
function _M.last_reload() return last_reload end

--- The host-owned state table of policy `name` (created on first use).
function _M.state(name)
  local st = policy_state[name]
  if not st then st = {}; policy_state[name] = st end
  return st
end

--- Call `fn` of the generation's policy `name` with its config and `...`;
-- returns `absent` when the policy is disabled or lacks the hook,
-- `fallback` when it raises or overruns its budget (logged).
function _M.hook(gen, name, fn, fallback, absent, ...)
  local pol = gen.policies[name]
  if not pol then return absent end
  return policy.call(pol.policy, fn, fallback, function(e) log("error", e) end, absent, pol.conf, ...)
end

-- A built-in stage, or a policy's `stage(conf, ctx)` hook as one.
local function resolve_stage(gen, i, name, where)
  if flow.builtin(name) then return require("workproof.stages." .. name).run end
  local pol = gen.policies[name]
  if not (pol and type(pol.policy.stage) == "function") then
    error(("%sflow[%d]: unknown stage '%s' (not built in, and no enabled policy with a stage hook)")
      :format(where and (where .. ": ") or "", i, name), 0)
  end
  local p, pconf = pol.policy, pol.conf
  -- a fresh refusal per failure: the later stages add headers to the
  -- answer they get (one table shared by all would carry them over)
  local failed = {}
  return function(ctx)
    local r = policy.call(p, "stage", failed, function(e) log("error", e) end, nil, pconf, ctx)
    if r == failed then return errors.refusal("EPOLICY") end
    return r
  end
end

-- With `errs` (a list) every policy and stage error is appended to it and
-- the build goes on, so `workproof check` reports them all; without, the
-- first one raises (a reload).
local function build(path, over, errs)
  local t0 = host.now()
  local conf = config.load(path, over)
  local gen = { config = conf, policies = {}, flow = {}, files = {} }
  local digest = { read_all(path or "/dev/null") }
  local function attempt(fn, ...)
    if not errs then return fn(...) end
    local ok, err = pcall(fn, ...)
    if not ok then errs[#errs + 1] = tostring(err) end
  end
  local names = {}
  for name in pairs(conf.policies) do names[#names + 1] = name end
  sort(names)
  local function add_policy(name)
    local pc = conf.policies[name]
    if pc.enabled then
      local file = pc.file or (conf.policies_dir .. "/" .. name .. ".lua")
      local p = policy.load_file(file, {
        clock = function() return host.time() end,
        log = function(level, msg) log(level, "policy " .. name .. ": " .. msg) end,
        -- a policy that loops or allocates without bound is stopped: the
        -- hook's fallback answers (load: the reload is rejected)
        budget = conf.policy_budget,
        on_budget = function(hook_name)
          nmetrics.counter("wp_policy_budget_exceeded_total", "Policy calls stopped by policy_budget",
            { policy = name, hook = hook_name })
        end,
      })
      local pconf, perrs = policy.configure(p, pc.config)
      if not pconf then
        local lines = schema.format_errors(perrs)
        if not path then
          error(file .. ": invalid config for policy '" .. name .. "':\n  " .. concat(lines, "\n  "), 0)
        end
        -- the mistake is in the config file: point at it
        for k, l in ipairs(lines) do
          local key = "policies." .. name .. ".config." .. l
          local line = config.locate(digest[1], key:match("^([^:]*):") or "")
          lines[k] = path .. (line and (":" .. line) or "") .. ": " .. key
        end
        error(concat(lines, "\n") .. "\n  (policy '" .. name .. "', " .. file .. ")", 0)
      end
      gen.policies[name] = { policy = p, conf = pconf, file = file }
      gen.files[#gen.files + 1] = file
      digest[#digest + 1] = read_all(file)
    end
  end
  for _, name in ipairs(names) do attempt(add_policy, name) end
  local flow_line = path and config.locate(digest[1], "flow")
  local where = path and (path .. (flow_line and (":" .. flow_line) or ""))
  local ok, ferr = flow.check(conf.flow, { payments = conf.payments.enabled })
  if not ok then attempt(error, (where or "config") .. ": " .. ferr, 0) end
  for i, name in ipairs(conf.flow) do
    attempt(function() gen.flow[i] = { name = name, run = resolve_stage(gen, i, name, where) } end)
  end
  if errs and #errs > 0 then return nil end
  gen.hash = wp.hex(wp.sha256(concat(digest, "\0"))):sub(1, 12)
  gen.build_ms = (host.now() - t0) * 1000
  return gen
end

--- Build a new generation and swap it in. Returns the generation, or nil and
-- the reason (the old generation keeps serving).
function _M.reload(reason)
  local ok, gen = pcall(build, config_path, overrides)
  if not ok then
    nmetrics.counter("wp_reloads_total", "Policy/config reloads", { result = "rejected" })
    last_reload = { ok = false, error = tostring(gen), reason = reason, at = host.time() }
    -- the first build has no generation to keep: its caller reports the
    -- error (once) and does not start
    if current then
      log("error", ("reload (%s) rejected, generation %d keeps serving: %s"):format(
        tostring(reason), current.id, tostring(gen)))
    end
    return nil, tostring(gen)
  end
  seq = seq + 1
  gen.id = seq
  current = gen   -- the swap: one assignment, no yield in between
  wlog.configure(gen.config)   -- log_level, log_format, access_log: before the line below
  local wc = gen.config.worker
  worker.configure { backend = wc.backend, grace = wc.grace,
    worker = wc.path or (host.libexec_dir .. "/workproof-worker"), zygote = wc.zygote,
    pool = { lua = wc.pool.lua, javascript = wc.pool.javascript }, pool_memory = wc.memory_bytes,
    pool_timeout_ms = math.ceil(gen.config.limits.timeout_max * 1000),
    max_workers = gen.policies.worker_threshold and tonumber(gen.policies.worker_threshold.conf.max_active) or 100 }
  nmetrics.counter("wp_reloads_total", "Policy/config reloads", { result = "accepted" })
  nmetrics.gauge("wp_generation", "Current policy generation", gen.id)
  last_reload = { ok = true, generation = gen.id, reason = reason, at = host.time() }
  log("info", ("generation %d (%s) applied in %.1f ms (%s)"):format(gen.id, gen.hash, gen.build_ms,
    tostring(reason)))
  return gen
end

--- Build a generation from the config file `path` (nil: the defaults) and
-- `over` exactly as a reload does, without swapping it in (`workproof
-- check`). Returns the generation, or nil and the list of every error
-- found, each once (config errors come as one entry: the config must load
-- before its policies can).
function _M.build(path, over)
  local errs = {}
  local ok, gen = pcall(build, path, over, errs)
  if not ok then errs[#errs + 1] = tostring(gen) end
  if #errs > 0 then return nil, errs end
  return gen
end

--- The names of the generation's policies, sorted.
function _M.policy_names(gen)
  local t = {}
  for name in pairs(gen.policies) do t[#t + 1] = name end
  sort(t)
  return t
end

return _M
