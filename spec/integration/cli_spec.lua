-- SPDX-License-Identifier: MIT
-- The workproof command line as an operator types it: `workproof check`
-- on good and broken configs, and --help / `workproof help` for every
-- command and subcommand.
local h = require "helpers"

-- the source tree (ctest runs specs there, but $PWD is wherever ctest was started)
local REPO = require("workproof.host").source_dir
local function abs(p) return p:sub(1, 1) == "/" and p or (REPO .. "/" .. p) end
local BIN = abs((os.getenv("WORKPROOF_BUILD") or "build") .. "/workproof")

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- run `workproof ARGS...` (in dir `cwd` if given); returns code, stdout, stderr
local function wp(opts, ...)
  local parts = { BIN }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = sh_quote(a) end
  local dir = h.tmpdir()
  local cmd = table.concat(parts, " ") .. " >" .. dir .. "/out 2>" .. dir .. "/err"
  if opts.cwd then cmd = "cd " .. sh_quote(opts.cwd) .. " && " .. cmd end
  local ok, _, code = os.execute(cmd)
  if type(ok) == "number" then code = ok / 256 end
  return code, h.read(dir .. "/out"), h.read(dir .. "/err")
end

local function count(s, plain)
  local n, at = 0, 1
  while true do
    local i = s:find(plain, at, true)
    if not i then return n end
    n, at = n + 1, i + 1
  end
end

describe("workproof check #integration", function()
  it("accepts examples/config.lua and the defaults: exit 0, one summary line", function()
    local code, out, err = wp({}, "check", "examples/config.lua")
    assert.equal(0, code, err)
    assert.matches("^configuration ok: 5 policies %(circuit_breaker, code_patterns, rate_limit, task_types, "
      .. "worker_threshold%), flow validate > size > .- > cleanup;", out)
    assert.equal("", err)
    code, out = wp({}, "check")
    assert.equal(0, code)
    assert.matches("^configuration ok: 5 policies", out)
  end)

  it("examples/local.lua: names the missing deployment and key, then passes once they exist", function()
    local dir = h.tmpdir()
    local code, out, err = wp({ cwd = dir }, "check", REPO .. "/examples/local.lua")
    assert.equal(1, code, out)
    assert.truthy(err:find("local.lua: chain.deployment: cannot read var/local/deployment.json", 1, true), err)
    assert.truthy(err:find("cannot stat the signer key file var/local/signer.key", 1, true), err)
    assert.equal("", out)
    -- what `make run` writes: the deployment and anvil's account #0 key
    assert(os.execute("mkdir -p " .. dir .. "/var/local"))
    h.write(dir .. "/var/local/deployment.json", '{"chainId":31337,"contracts":{"ValidationRegistry":'
      .. '{"address":"0x5FbDB2315678afecb367f032d93F642f64180aa3"}}}')
    h.write(dir .. "/var/local/signer.key", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")
    assert(os.execute("chmod 600 " .. dir .. "/var/local/signer.key"))
    code, out, err = wp({ cwd = dir }, "check", REPO .. "/examples/local.lua")
    assert.equal(0, code, err)
    assert.matches("chain on, payments on", out)
    -- a deployment that is not JSON
    h.write(dir .. "/var/local/deployment.json", "{nope")
    code, out, err = wp({ cwd = dir }, "check", REPO .. "/examples/local.lua")
    assert.equal("", out)
    assert.equal(1, code)
    assert.truthy(err:find("var/local/deployment.json is not a JSON object", 1, true), err)
  end)

  it("a typo: exit 1, file:line and 'did you mean', every error once", function()
    local dir = h.tmpdir()
    h.write(dir .. "/c.lua", 'return {\n  lisen = "127.0.0.1:1",\n  chain = {\n    rpcc = "x",\n  },\n'
      .. '  policies = { rate_limit = { config = { limt = 5 } } },\n}\n')
    local code, out, err = wp({}, "check", dir .. "/c.lua")
    assert.equal(1, code)
    assert.equal("", out)
    assert.truthy(err:find(dir .. "/c.lua:2: lisen: unknown field (did you mean 'listen'?)", 1, true), err)
    assert.truthy(err:find(dir .. "/c.lua:4: chain.rpcc: unknown field (did you mean 'rpc'?)", 1, true), err)
    assert.equal(1, count(err, "lisen"))
    assert.matches("2 error%(s%)", err)
    -- the policy's own settings: checked once the config itself is right
    h.write(dir .. "/c.lua", 'return {\n  policies = {\n    rate_limit = { config = { limt = 5 } },\n  },\n}\n')
    code, out, err = wp({}, "check", dir .. "/c.lua")
    assert.equal("", out)
    assert.equal(1, code)
    assert.truthy(err:find(dir .. "/c.lua:3: policies.rate_limit.config.limt: unknown field "
      .. "(did you mean 'limit'?)", 1, true), err)
  end)

  it("a broken policy and a bad flow: exit 1, each with file:line, printed once", function()
    local dir = h.tmpdir()
    assert(os.execute("mkdir -p " .. dir .. "/pol && cp " .. REPO .. "/policies/*.lua " .. dir .. "/pol/"))
    h.write(dir .. "/pol/rate_limit.lua", 'return {\n  name = "rate_limit",\n  schema = {},\n'
      .. '  check = function( x\n}\n')
    h.write(dir .. "/pol/code_patterns.lua", 'local x = nil\nreturn x.field\n')
    h.write(dir .. "/c.lua", 'return {\n  policies_dir = "' .. dir .. '/pol",\n'
      .. '  flow = { "validate", "nosuch", "spawn", "result", "cleanup" },\n}\n')
    local code, out, err = wp({}, "check", dir .. "/c.lua")
    assert.equal(1, code)
    assert.equal("", out)
    assert.equal(1, count(err, dir .. "/pol/rate_limit.lua:5:"), err)
    assert.equal(1, count(err, dir .. "/pol/code_patterns.lua:2:"), err)
    assert.equal(1, count(err, dir .. "/c.lua:3: flow[2]: unknown stage 'nosuch'"), err)
    assert.matches("3 error%(s%)", err)
    -- serve refuses the same config at start (exit 2), naming the policy
    code, out, err = wp({}, "serve", dir .. "/c.lua", "--listen", "127.0.0.1:0")
    assert.equal("", out)
    assert.equal(2, code)
    assert.truthy(err:find(dir .. "/pol/code_patterns.lua:2:", 1, true), err)
  end)

  it("usage errors: exit 2", function()
    local code, _, err = wp({}, "check", "a.lua", "b.lua")
    assert.equal(2, code)
    assert.truthy(err:find("workproof check: unexpected argument 'b.lua'", 1, true), err)
    code, _, err = wp({}, "check", "--listen")
    assert.equal(2, code)
    assert.truthy(err:find("--listen needs a value", 1, true), err)
    code, _, err = wp({}, "check", "--lisen", "x:1")
    assert.equal(2, code)
    assert.truthy(err:find("unknown option --lisen (did you mean --listen?)", 1, true), err)
    code, _, err = wp({}, "check", "/nonexistent/c.lua")
    assert.equal(1, code)
    assert.truthy(err:find("cannot read config", 1, true), err)
  end)
end)

describe("workproof help #integration", function()
  -- every command and subcommand, and an option its help must list
  local COMMANDS = {
    { "serve", "--listen" }, { "check", "--listen" }, { "run", "SCRIPT.lua" }, { "version", "--help" },
    { "vdf eval", "--no-progress" }, { "vdf verify", "PROOF_HEX" },
    { "uptime verify", "--governance-key" }, { "uptime simulate", "--rotations-out" },
    { "uptime claim", "--rotations" }, { "uptime report", "--tolerance" },
  }
  local GROUPS = { vdf = { "eval", "verify" }, uptime = { "verify", "simulate", "claim", "report" } }

  local function words(s)
    local t = {}
    for w in s:gmatch("%S+") do t[#t + 1] = w end
    return t
  end

  it("every command answers --help, -h and `help CMD` with exit 0 and its own usage", function()
    for _, c in ipairs(COMMANDS) do
      local w = words(c[1])
      local long, short = { unpack(w) }, { unpack(w) }
      long[#long + 1], short[#short + 1] = "--help", "-h"
      local forms = { long, short, { "help", unpack(w) } }
      local first
      for _, f in ipairs(forms) do
        local code, out, err = wp({}, unpack(f))
        assert.equal(0, code, table.concat(f, " ") .. ": " .. err)
        assert.equal("", err)
        assert.equal(1, count(out, "usage:"), table.concat(f, " ") .. " prints one usage, not a page")
        assert.matches("^usage: workproof " .. c[1]:gsub("%p", "%%%0") .. "[ \n]", out)
        assert.truthy(out:find(c[2], 1, true), c[1] .. " help lists " .. c[2])
        assert.truthy(out:find("-h, --help", 1, true))
        first = first or out
        assert.equal(first, out, "the same help whichever way it is asked")
      end
    end
  end)

  it("a command with subcommands lists them; `workproof help vdf`", function()
    for g, subs in pairs(GROUPS) do
      for _, form in ipairs({ { "help", g }, { g, "--help" }, { g, "help" } }) do
        local code, out = wp({}, unpack(form))
        assert.equal(0, code)
        assert.matches("^usage: workproof " .. g .. " " .. subs[1] .. " ", out)
        assert.equal(1, count(out, "usage:"))
        for _, s in ipairs(subs) do assert.matches("\n  " .. s .. " ", out) end
      end
      local code, _, err = wp({}, g)
      assert.equal(2, code)
      assert.matches("^usage: workproof " .. g .. " " .. subs[1] .. " ", err)
      code, _, err = wp({}, g, "frobnicate")
      assert.equal(2, code)
      assert.truthy(err:find("workproof " .. g .. ": unknown command 'frobnicate'", 1, true), err)
    end
    -- the top level lists every command
    local code, out = wp({}, "help")
    assert.equal(0, code)
    for _, c in ipairs({ "serve", "check", "run", "vdf", "uptime", "version", "help" }) do
      assert.matches("\n  " .. c .. "[ \n]", out)
    end
    code = wp({}, "help", "frobnicate")
    assert.equal(2, code)
  end)

  it("a missing required option or argument says which", function()
    local cases = {
      { { "uptime", "verify", "chain.jsonl", "--consumer-key", ("ab"):rep(32) }, "--provider-key is required" },
      { { "uptime", "simulate" }, "--out is required" },
      { { "uptime", "report", "chain.jsonl" }, "--out is required" },
      { { "uptime", "claim" }, "missing CHAIN.jsonl" },
      { { "vdf", "eval", "00" }, "missing ITERATIONS" },
      { { "vdf", "verify", "00", "1" }, "missing Y_HEX" },
      { { "run" }, "missing SCRIPT.lua" },
      { { "vdf", "eval", "00", "5", "--bogus" }, "unknown option --bogus" },
      { { "uptime", "claim", "c.jsonl", "--rotation", "f" }, "unknown option --rotation (did you mean --rotations?)" },
      { { "version", "extra" }, "unexpected argument 'extra'" },
    }
    for _, c in ipairs(cases) do
      local code, out, err = wp({}, unpack(c[1]))
      assert.equal(2, code, table.concat(c[1], " "))
      assert.equal("", out)
      assert.truthy(err:find(c[2], 1, true), table.concat(c[1], " ") .. ": " .. err)
      assert.equal(1, count(err, "--help for usage"))
    end
  end)

  it("run passes --help after the script to the script", function()
    local dir = h.tmpdir()
    h.write(dir .. "/s.lua", "print(select('#', ...), ...) return 0")
    local code, out = wp({}, "run", dir .. "/s.lua", "--help", "x")
    assert.equal(0, code)
    assert.equal("2\t--help\tx\n", out)
  end)
end)
