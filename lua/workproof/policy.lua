-- SPDX-License-Identifier: MIT
--- Operator policies: load a policy file into an allowlisted environment,
-- check its shape and schema, validate its config, call its hooks safely.
--
-- A policy file returns a table (docs/conventions.md §4):
--
--   return {
--     name = "rate_limit",            -- required, [%w_]+
--     version = "1",                  -- optional
--     description = "...",            -- optional
--     schema = { <field> = {...} },   -- see workproof.schema
--     self_check = function(conf) end,-- optional canary, run at load: raise to reject
--     <hook> = function(conf, ...) end-- every other key must be a function
--   }
--
-- Trust tier (convention 6): policies get no ffi, require, package, debug,
-- io, os (only a clock), load/loadstring/dofile, string.dump, collectgarbage,
-- getfenv/setfenv, rawset/rawget, coroutine. Sources load as text only
-- (mode "t"). Reading an undefined global or assigning a global raises. The
-- string metatable is unreachable (getmetatable("") returns nil here), so a
-- policy cannot change string methods for the host. `wp` is an explicit
-- allowlist of core functions (ALLOW below): hashing, encodings, signature
-- *verification*, Merkle, ABI/RLP, uptime and VDF verifiers; no signing, no
-- VDF evaluation, no test hooks.
--
-- Budget: the main chunk, configure (schema customs and self_check) and
-- every hook called through _M.call run under a time and heap budget
-- (DEFAULT_BUDGET, config `policy_budget`). A count hook (debug.sethook,
-- every CHECK_EVERY VM instructions) checks the deadline and the growth of
-- the Lua heap and raises once either is passed; it keeps raising, and the
-- env's pcall/xpcall re-raise, so a policy cannot catch its way out. LuaJIT
-- count hooks do not fire inside compiled traces, so every function of a
-- policy file is kept out of the JIT (jit.off on the chunk, recursively):
-- policy code always runs interpreted. C functions are not interrupted: the
-- allowlist offers none whose cost is not bounded by the size of its input.
local schema = require "workproof.schema"

local type, pairs, ipairs, error, pcall, setmetatable, getmetatable, load, tostring, select =
  type, pairs, ipairs, error, pcall, setmetatable, getmetatable, load, tostring, select
local unpack = unpack
local co_running = coroutine.running
local gc = collectgarbage
local sethook, gethook, getinfo = debug.sethook, debug.gethook, debug.getinfo
local io_open = io.open

local has_host, host = pcall(require, "workproof.host")
-- monotonic seconds: the host's clock, os.clock (CPU time) outside it
local mono = has_host and host.now or os.clock

local _M = {}

--- The budget every policy gets unless the caller (the controller:
-- config `policy_budget`) says otherwise. Chosen so that the shipped
-- policies never come near it (docs/policies.md, "Budget").
_M.DEFAULT_BUDGET = {
  load_ms = 2000,   -- the main chunk; then, separately, configure (schema + self_check)
  hook_ms = 250,    -- one hook call
  mem_mb = 256,     -- growth of the Lua heap during one call (after a full collection)
}

-- VM instructions between two budget checks: a check costs ~0.1 us, a
-- thousand interpreted instructions ~4 us.
local CHECK_EVERY = 1000

local RESERVED = { name = true, version = true, description = true, schema = true, self_check = true }

local function shallow_copy(t, without)
  local c = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then c[k] = v end
  end
  return c
end

-- The core functions policies may call. Each one's cost is bounded by the
-- size of its input (a count hook cannot stop C code). Left out: signing
-- and key derivation (policies hold no secrets), VDF evaluation (T
-- squarings: unbounded), builders of uptime chains, the logscan object, and
-- the test hooks (vdf._squarings, vdf._eval_reference).
local ALLOW = {
  hex = true, unhex = true, sha256 = true, keccak256 = true, blake2b = true,
  base64 = { "encode", "decode" },
  ed25519 = { "verify" },
  secp256k1 = { "recover" },
  eth = { "address", "checksum", "is_address" },
  eip191 = { "hash" },
  eip712 = { "digest", "domain_separator", "encode_type", "hash_struct", "hash_typed_data", "type_hash",
    "transfer_with_authorization_hash" },
  merkle = { "leaf_hash", "node_hash", "root", "root_from_hashes", "inclusion_proof", "consistency_proof",
    "verify_inclusion", "verify_consistency" },
  rlp = { "encode", "decode" },
  abi = { "canonical", "decode", "decode_call", "encode", "encode_call", "event_topic", "selector",
    "to_decimal", "to_quantity" },
  tx = { "decode", "signing_hash" },
  uptime = { "payload", "hash", "verify", "verify_chain", "pack", "unpack", "epoch_record", "epoch_hash",
    "claim_decode", "claim_hash", "claim_verify", "claim_verify_countersign", "proof_decode", "proof_verify",
    "vdf_decode", "rotation_bytes", "rotation_hash", "rotation_verify", "attestation_digest",
    "attestation_verify", constants = true },
  vdf = { "verify", "h2g", "h2p", "modulus", "T_MAX" },
}
_M.ALLOW = ALLOW

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deep_copy(x) end
  return c
end

local function wp_subset()
  local ok, core = pcall(require, "workproof.core")
  if not ok then return {} end
  -- areas whose formats live in Lua over a bytes-only binding (init.lua)
  local lua_areas = { uptime = require "workproof.uptime" }
  local t = {}
  for k, allow in pairs(ALLOW) do
    local v = lua_areas[k] or core[k]
    if allow == true then
      t[k] = v
    elseif type(v) == "table" then
      local sub = {}
      for _, name in ipairs(allow) do sub[name] = v[name] end
      if allow.constants then   -- the module's constants (numbers, strings, tables of them)
        for name, x in pairs(v) do
          if type(x) ~= "function" then sub[name] = deep_copy(x) end
        end
      end
      t[k] = sub
    end
  end
  return t
end

local WP = wp_subset()
local cjson_ok, cjson = pcall(require, "cjson.safe")
local JSON = cjson_ok and { encode = cjson.encode, decode = cjson.decode, null = cjson.null } or nil

---------------------------------------------------------------------------
-- the budget

-- The running budgeted call of each coroutine. Weak keys and values: a
-- coroutine suspended inside a policy (only possible through host code a
-- stage reaches) and never resumed takes its entry with it (its record,
-- which names it, is held only by its own stack). LuaJIT's hook is global
-- to the VM; the hook ignores coroutines without an entry.
local MAIN = {}
local active = setmetatable({}, { __mode = "kv" })
local saved_hook   -- { fn, mask, count } of a hook in place before ours (a debugger, luacov)

local THIS = getinfo(1, "S").source

-- "file:line: " of the policy code that was running when the budget ran
-- out: the first Lua frame, from the interrupted one up, not in this file
local function where()
  for level = 3, 40 do
    local i = getinfo(level, "Sl")
    if not i then break end
    if i.what ~= "C" and i.source ~= THIS and (i.currentline or 0) > 0 then
      local src = i.source:sub(1, 1) == "@" and i.source:sub(2) or i.short_src
      return src .. ":" .. i.currentline .. ": "
    end
  end
  return ""
end

local function on_count()
  local a = active[co_running() or MAIN]
  if not a then return end
  if a.stopped then error(a.msg, 0) end
  local why
  if mono() > a.deadline then
    why = ("budget exceeded: ran longer than %s ms (%s)"):format(a.ms, a.ms_name)
  elseif gc("count") > a.mem_limit then
    gc("collect")   -- garbage is not growth
    if gc("count") > a.mem_limit then
      why = ("budget exceeded: grew the Lua heap by more than %s MB (policy_budget.mem_mb)"):format(a.mem_mb)
    end
  end
  if why then
    a.stopped = true
    a.msg = where() .. why
    error(a.msg, 0)
  end
end

local function leave(a)
  if a.left then return end
  a.left = true
  if active[a.key] == a then active[a.key] = nil end
  if next(active) == nil then
    if saved_hook then sethook(saved_hook[1], saved_hook[2], saved_hook[3]) else sethook() end
    saved_hook = nil
  end
end

local function pack(...) return { n = select("#", ...), ... } end

-- (a, ok, ...) with ok false and the message when the budget stopped it
local function finish(a, ok, ...)
  leave(a)
  if a.stopped then return a, false, a.msg end
  return a, ok, ...
end

local function body(a, fn, ...)
  return finish(a, pcall(fn, ...))
end

local function done(a, pok, ...)
  leave(a)
  if a.stopped then return a, false, a.msg end
  if not pok then return a, false, ... end
  return ...   -- body's: a, ok, ...
end

local function nested(outer, ok, ...)
  if not ok and outer.stopped then error(outer.msg, 0) end
  return outer, ok, ...
end

--- Run fn(...) under a budget: `ms` milliseconds and `mem_mb` MB of heap
-- growth (`ms_name` names the setting in messages). Returns the budget
-- record `a` and pcall's results: a, true, ... | a, false, err. When the
-- budget stopped fn, a.stopped is true and err is a.msg ("file:line:
-- budget exceeded: ..."). A call made while a budget is already running in
-- this coroutine (a policy reaching host code that calls a hook) runs
-- under the outer budget. No tables but `a`: hooks run on every request.
local function budgeted(ms, mem_mb, ms_name, fn, ...)
  local key = co_running() or MAIN
  local outer = active[key]
  if outer then return nested(outer, pcall(fn, ...)) end
  local a = { key = key, ms = ms, mem_mb = mem_mb, ms_name = ms_name,
    deadline = mono() + ms / 1000, mem_limit = gc("count") + mem_mb * 1024, stopped = false, left = false }
  if next(active) == nil then
    local h, mask, count = gethook()
    saved_hook = h and { h, mask, count } or nil
    sethook(on_count, "", CHECK_EVERY)
  end
  active[key] = a
  -- the hook may still fire once between the policy's return and leave():
  -- this pcall catches that, and the hook's count starts over after each
  -- firing, so the leave() in finish() below cannot be interrupted
  return done(a, pcall(body, a, fn, ...))
end

--- Run fn(...) under a budget (see DEFAULT_BUDGET for the units). Returns
-- true, ... | false, err, stopped (true when the budget stopped fn).
function _M.budgeted(ms, mem_mb, fn, ...)
  local r = pack(budgeted(ms, mem_mb, "budget", fn, ...))
  if r[2] then return unpack(r, 2, r.n) end
  return false, r[3], r[1].stopped
end

-- the env's pcall/xpcall: a budget that stopped the policy cannot be caught
local function rethrow(...)
  local a = active[co_running() or MAIN]
  if a and a.stopped then error(a.msg, 0) end
  return ...
end
local function env_pcall(...) return rethrow(pcall(...)) end
-- LuaJIT fires no hooks inside an error handler, so a policy's handler runs
-- after the call has unwound (policies have no debug library: the handler
-- cannot tell), as ordinary code under the budget; an error in it
-- propagates
local function xpcall_done(handler, ok, ...)
  if ok then return true, ... end
  rethrow()
  local msg = handler((...))
  rethrow()
  return false, msg
end
local function env_xpcall(f, handler, ...)
  if type(handler) ~= "function" then error("bad argument #2 to 'xpcall' (function expected)", 2) end
  return xpcall_done(handler, pcall(f, ...))
end

-- the budget of each loaded policy (weak: dies with the policy)
local BUDGETS = setmetatable({}, { __mode = "k" })

local function resolve_budget(b)
  local d = _M.DEFAULT_BUDGET
  b = b or {}
  return { load_ms = b.load_ms or d.load_ms, hook_ms = b.hook_ms or d.hook_ms, mem_mb = b.mem_mb or d.mem_mb }
end

--- Build a fresh policy environment.
-- opts.clock: function returning Unix seconds (injectable for specs; default os.time)
-- opts.log: function(level, msg) (default: discard)
-- opts.globals: extra read-only names the host offers
function _M.env(opts)
  opts = opts or {}
  local clock = opts.clock or os.time
  local log = opts.log or function() end
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = env_pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = env_xpcall, rawequal = rawequal,
    setmetatable = setmetatable,
    getmetatable = function(v)
      if type(v) == "string" then return nil end
      return getmetatable(v)
    end,
    string = shallow_copy(string, { dump = true }),
    table = shallow_copy(table),
    math = shallow_copy(math),
    bit = shallow_copy(require "bit"),
    os = { time = function() return clock() end, clock = os.clock },
    now = function() return clock() end,
    log = function(level, ...)
      local parts = {}
      for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
      log(level, table.concat(parts, " "))
    end,
    wp = deep_copy(WP),   -- deep: a policy that overwrites wp.x.y changes only its own
    json = JSON and shallow_copy(JSON) or nil,
  }
  env._G = env
  for k, v in pairs(opts.globals or {}) do env[k] = v end
  return setmetatable(env, {
    __index = function(_, k)
      error("undefined global '" .. tostring(k) .. "'", 2)
    end,
    __newindex = function(_, k)
      error("assignment to global '" .. tostring(k) .. "' (use local)", 2)
    end,
    __metatable = false,
  })
end

local function shape_errors(p)
  if type(p) ~= "table" then return "policy must return a table, got " .. type(p) end
  if type(p.name) ~= "string" or not p.name:match("^[%w_]+$") then
    return "policy.name must be a string of letters, digits and _"
  end
  if p.schema ~= nil then
    local ok, errs = schema.check_schema(p.schema)
    if not ok then return "bad schema: " .. table.concat(schema.format_errors(errs), "; ") end
  end
  if getmetatable(p) ~= nil then
    return "the policy table must not have a metatable (the host reads it outside the budget)"
  end
  if p.self_check ~= nil and type(p.self_check) ~= "function" then
    return "policy.self_check must be a function"
  end
  for k, v in pairs(p) do
    if not RESERVED[k] and type(v) ~= "function" then
      return ("policy.%s: hooks must be functions, got %s"):format(tostring(k), type(v))
    end
  end
  return nil
end

--- Load a policy from source text. Raises "chunkname:line: message" on a
-- syntax error, a runtime error in the main chunk, a main chunk that ran out
-- of its budget, or a malformed policy.
-- opts: see _M.env, and
--   opts.budget = { load_ms =, hook_ms =, mem_mb = } (missing fields: DEFAULT_BUDGET)
--   opts.on_budget = function(hook, message): called whenever the budget
--     stops this policy: hook is "load", "schema", "self_check" or a hook name
function _M.load_string(src, chunkname, opts)
  opts = opts or {}
  chunkname = chunkname or "=policy"
  local file = chunkname:gsub("^[@=]", "")
  local b = resolve_budget(opts.budget)
  local fn, err = load(src, chunkname, "t", _M.env(opts))
  if not fn then error(err, 0) end
  -- every function of the file, now and as created later, stays out of the
  -- JIT: count hooks do not fire inside compiled traces
  if jit then jit.off(fn, true) end
  local a, ok, p, bad = budgeted(b.load_ms, b.mem_mb, "policy_budget.load_ms", function()
    local p = fn()
    return p, shape_errors(p)
  end)
  if a.stopped then
    if opts.on_budget then opts.on_budget("load", a.msg) end
    error(a.msg:sub(1, #file) == file and a.msg or (file .. ": " .. a.msg), 0)
  end
  if not ok then error(p, 0) end
  if bad then error(file .. ": " .. bad, 0) end
  BUDGETS[p] = { budget = b, on_budget = opts.on_budget }
  return p
end

--- Load a policy file. Raises with file:line (see load_string).
function _M.load_file(path, opts)
  local f, err = io_open(path, "rb")
  if not f then error("cannot open policy: " .. tostring(err), 0) end
  local src = f:read("*a")
  f:close()
  return _M.load_string(src, "@" .. path, opts)
end

local function budget_of(p)
  local pb = BUDGETS[p]
  if pb then return pb.budget, pb.on_budget end
  return resolve_budget(nil), nil
end

--- Validate conf against the policy's schema and run its self-check, each
-- under the load budget. Returns the config (defaults filled) or nil and
-- the nested error table (a budget stop: `@schema` or `@self_check`).
function _M.configure(p, conf)
  local b, on_budget = budget_of(p)
  local a, ok, out, errs = budgeted(b.load_ms, b.mem_mb, "policy_budget.load_ms", schema.validate,
    p.schema or {}, conf)
  if a.stopped then
    if on_budget then on_budget("schema", a.msg) end
    return nil, { ["@schema"] = a.msg }
  end
  if not ok then error(out, 0) end   -- a schema that raises: as before, the caller's error
  if not out then return nil, errs end
  if p.self_check then
    local err
    a, ok, err = budgeted(b.load_ms, b.mem_mb, "policy_budget.load_ms", p.self_check, out)
    if a.stopped and on_budget then on_budget("self_check", a.msg) end
    if not ok then return nil, { ["@self_check"] = tostring(err) } end
  end
  return out
end

local function returned(p, name, fallback, on_error, on_budget, a, ok, ...)
  if ok then return ... end
  if a.stopped and on_budget then on_budget(name, a.msg) end
  if on_error then on_error(("%s.%s: %s"):format(p.name, name, tostring((...)))) end
  return fallback
end

--- Call hook `name` of policy p as p[name](...) in protected mode
-- (convention 3), under the policy's hook budget. A missing hook returns
-- `absent`; an error or a budget stop is logged through on_error(err) and
-- returns `fallback` (the hook's defined safe outcome); a budget stop also
-- calls the policy's on_budget(name, message).
function _M.call(p, name, fallback, on_error, absent, ...)
  local hook = p[name]
  if hook == nil then return absent end
  local b, on_budget = budget_of(p)
  return returned(p, name, fallback, on_error, on_budget,
    budgeted(b.hook_ms, b.mem_mb, "policy_budget.hook_ms", hook, ...))
end

return _M
