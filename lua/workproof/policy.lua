-- SPDX-License-Identifier: MIT
--- Operator policies: load a policy file into an allowlisted environment,
-- check its shape and schema, validate its config, call its hooks safely.
--
-- A policy file returns a table (DESIGN.md convention 4):
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
-- getfenv/setfenv, rawset/rawget. Sources load as text only (mode "t").
-- Reading an undefined global or assigning a global raises. The string
-- metatable is unreachable (getmetatable("") returns nil here), so a policy
-- cannot change string methods for the host.
local schema = require "workproof.schema"

local type, pairs, ipairs, error, pcall, setmetatable, getmetatable, load, tostring, select =
  type, pairs, ipairs, error, pcall, setmetatable, getmetatable, load, tostring, select
local io_open = io.open

local _M = {}

local RESERVED = { name = true, version = true, description = true, schema = true, self_check = true }

local function shallow_copy(t, without)
  local c = {}
  for k, v in pairs(t) do
    if not (without and without[k]) then c[k] = v end
  end
  return c
end

-- Pure primitives of the core are safe for policies; loop-bound host
-- functions (sleep, spawn, processes) are not offered.
local function wp_subset()
  local ok, core = pcall(require, "workproof.core")
  if not ok then return {} end
  local t = {}
  for k, v in pairs(core) do
    t[k] = type(v) == "table" and shallow_copy(v) or v
  end
  return t
end

local WP = wp_subset()
local cjson_ok, cjson = pcall(require, "cjson.safe")
local JSON = cjson_ok and { encode = cjson.encode, decode = cjson.decode, null = cjson.null } or nil

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
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = xpcall, rawequal = rawequal,
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
    wp = shallow_copy(WP),
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
-- syntax error, a runtime error in the main chunk, or a malformed policy.
function _M.load_string(src, chunkname, opts)
  chunkname = chunkname or "=policy"
  local fn, err = load(src, chunkname, "t", _M.env(opts))
  if not fn then error(err, 0) end
  local ok, p = pcall(fn)
  if not ok then error(p, 0) end
  local bad = shape_errors(p)
  if bad then error(chunkname:gsub("^[@=]", "") .. ": " .. bad, 0) end
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

--- Validate conf against the policy's schema and run its self-check.
-- Returns the config (defaults filled) or nil and the nested error table.
function _M.configure(p, conf)
  local out, errs = schema.validate(p.schema or {}, conf)
  if not out then return nil, errs end
  if p.self_check then
    local ok, e = pcall(p.self_check, out)
    if not ok then return nil, { ["@self_check"] = tostring(e) } end
  end
  return out
end

--- Call hook `name` of policy p as p[name](...) in protected mode
-- (convention 3). A missing hook returns `absent`; an error is logged through
-- on_error(err) and returns `fallback` (the hook's defined safe outcome).
function _M.call(p, name, fallback, on_error, absent, ...)
  local hook = p[name]
  if hook == nil then return absent end
  local res = { pcall(hook, ...) }
  if not res[1] then
    if on_error then on_error(("%s.%s: %s"):format(p.name, name, tostring(res[2]))) end
    return fallback
  end
  return unpack(res, 2, table.maxn(res))
end

return _M
