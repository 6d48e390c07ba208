-- SPDX-License-Identifier: MIT
--- `workproof check [CONFIG.lua] [--listen HOST:PORT]`: load the config,
-- every enabled policy and the flow exactly as `workproof serve` (and each
-- reload) would — the same generation build, not swapped in — and, with the
-- chain on, what serve reads before it talks to the node (the deployment
-- file, the signer key). Exit 0 and one summary line, or 1 and every error
-- found, each once, with file:line where there is one. Nothing is opened,
-- listened on or sent.
local args = require "workproof.cli.args"
local generation = require "workproof.notary.generation"
local fs = require "workproof.fs"
local cjson = require "cjson.safe"

local io, type, ipairs, concat, fmt = io, type, ipairs, table.concat, string.format

local _M = {}

local DECL = {
  name = "workproof check",
  summary = "validate a config, its policies and flow as serve would, then exit",
  description = "Loads CONFIG (default: the embedded defaults), every enabled policy and the\n"
    .. "flow exactly as `workproof serve` does, without serving. With the chain on it\n"
    .. "also reads the deployment file and the signer key. Exit 0 when all is well,\n"
    .. "1 with every error (file:line where there is one), 2 on a usage error.",
  positionals = {
    { "CONFIG.lua", optional = true, help = "the config file (examples/config.lua lists every setting)" },
  },
  options = {
    { "--listen", arg = "HOST:PORT", match = "^.+:%d+$", help = "as serve --listen: overrides the config's listen" },
  },
}

-- What registry.setup needs from the chain settings before it asks the
-- node anything: found offline, so a check needs no running chain.
local function check_chain(cc, where, errs)
  local dep
  if cc.deployment then
    local text = fs.read(cc.deployment)
    if not text then
      errs[#errs + 1] = fmt("%s: chain.deployment: cannot read %s (a deployment is written by "
        .. "contracts/scripts, e.g. `make run`)", where, cc.deployment)
    else
      dep = cjson.decode(text)
      if type(dep) ~= "table" then
        errs[#errs + 1] = fmt("%s: chain.deployment: %s is not a JSON object", where, cc.deployment)
        dep = nil
      end
    end
  end
  if not cc.chain_id and not (dep and dep.chainId) and not (cc.deployment and not dep) then
    errs[#errs + 1] = where .. ": chain.chain_id (or chain.deployment) is required"
  end
  local registry = cc.registry or (dep and type(dep.contracts) == "table"
    and type(dep.contracts.ValidationRegistry) == "table" and dep.contracts.ValidationRegistry.address)
  if not registry and not (cc.deployment and not dep) then
    errs[#errs + 1] = where .. ": chain.registry (or a chain.deployment naming ValidationRegistry) is required"
  end
  local key, kerr = require("workproof.chain").load_key { file = cc.key_file, env = cc.key_env }
  if not key then errs[#errs + 1] = where .. ": chain: " .. kerr:gsub("^EKEY: ", "") end
end

function _M.main(...)
  local opts, code = args.run(DECL, { ... })
  if not opts then return code end
  local path = opts[1]
  local gen, errs = generation.build(path, opts.listen and { listen = opts.listen } or nil)
  errs = errs or {}
  if gen and gen.config.chain.enabled then check_chain(gen.config.chain, path or "config", errs) end
  if #errs > 0 then
    local n = 0
    for _, e in ipairs(errs) do
      io.stderr:write(e, "\n")
      for line in e:gmatch("[^\n]+") do if not line:find("^%s") then n = n + 1 end end
    end
    io.stderr:write(fmt("workproof check: %s: %d error(s)\n", path or "the defaults", n))
    return 1
  end
  local names = generation.policy_names(gen)
  local stages = {}
  for i, st in ipairs(gen.flow) do stages[i] = st.name end
  io.stdout:write(fmt("configuration ok: %d policies (%s), flow %s; listen %s, backend %s, chain %s, "
    .. "payments %s\n", #names, concat(names, ", "), concat(stages, " > "), gen.config.listen,
    gen.config.worker.backend, gen.config.chain.enabled and "on" or "off",
    gen.config.payments.enabled and "on" or "off"))
  return 0
end

return _M
