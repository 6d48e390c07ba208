-- SPDX-License-Identifier: MIT
--- The installed product (docs/operations.md, "Installing"): `cmake --install`
-- (and `make install DESTDIR=`) of this build into a temporary prefix, then
-- the installed binaries run from a directory outside the source tree and,
-- where this process may make a mount namespace (root), with the source
-- tree hidden under an empty tmpfs, so any path into it fails. Nothing is
-- copied from the tree by hand: the prefix holds what the install rules put
-- there and nothing else.
local h = require "helpers"
local host = require "workproof.host"
local cjson = require "cjson.safe"

local q = h.q

-- absolute paths: the installed programs run elsewhere
local function abspath(p)
  local out = h.run("/bin/sh", { "-c", "cd " .. q(p) .. " && pwd -P" })
  return assert(out:match("^(/[^\n]*)\n$"), "no such directory: " .. p)
end

local SRC = abspath(host.source_dir)
local BUILD = abspath(h.build)

-- run a shell script; returns stdout, exit status, stderr
local function sh(script, stdin)
  local out, st = h.run("/bin/sh", { "-c", script }, stdin)
  return out, st.exit_status, st.stderr
end

-- can this process hide the source tree from a child (a private mount
-- namespace with a tmpfs over it)? Only as root; elsewhere the child runs
-- with another cwd and the strings check below still holds.
local HIDE = sh("unshare --mount true 2>/dev/null && echo yes") == "yes\n"

-- a command line that runs `cmd` in `dir` with the source tree unreachable
-- (when HIDE) and none of the variables that point the host at a tree
local function outside(dir, cmd)
  local env = "env -u WORKPROOF_LUA_DIR -u WORKPROOF_BUILD -u WORKPROOF_VM_DIR -u LUA_PATH -u LUA_CPATH "
  if HIDE then
    return ("cd %s && exec %sunshare --mount sh -c %s sh %s"):format(q(dir), env,
      q("mount -t tmpfs wp-hidden " .. q(SRC) .. ' && exec "$@"'), cmd)
  end
  return ("cd %s && exec %s%s"):format(q(dir), env, cmd)
end

describe("make install #integration", function()
  local prefix, work

  setup(function()
    prefix = h.tmpdir() .. "/prefix"
    work = h.tmpdir()
    local out, rc, err = sh(("cmake --install %s --prefix %s --strip"):format(q(BUILD), q(prefix)))
    assert(rc == 0, "cmake --install failed:\n" .. out .. err)
  end)

  teardown(function()
    if prefix then os.execute("rm -rf " .. q(prefix:match("^(.*)/prefix$")) .. " " .. q(work)) end
  end)

  it("puts every part in its FHS place", function()
    for _, rel in ipairs {
      "bin/workproof",
      "libexec/workproof/workproof-worker",
      "libexec/workproof/runtime/js_runner.js",
      "libexec/workproof/vm/build-initramfs.sh", "libexec/workproof/vm/kvm-probe.sh",
      "libexec/workproof/vm/run-task.sh", "libexec/workproof/vm/init",
      "share/lua/5.1/workproof/init.lua", "share/lua/5.1/workproof/notary/generation.lua",
      "lib/lua/5.1/workproof/core.so",
      "share/workproof/policies/rate_limit.lua",
      "share/workproof/dashboard/index.html", "share/workproof/dashboard/app.js",
      "share/workproof/dashboard/app.css",
      "share/doc/workproof/operations.md", "share/doc/workproof/examples/config.lua",
      "share/doc/workproof/workproof.service", "share/doc/workproof/README.md",
      "lib/pkgconfig/workproof.pc",
    } do
      assert.is_truthy(io.open(prefix .. "/" .. rel), rel .. " is not installed")
    end
    -- programs stay programs
    for _, rel in ipairs { "bin/workproof", "libexec/workproof/workproof-worker",
      "libexec/workproof/vm/kvm-probe.sh", "libexec/workproof/vm/build-initramfs.sh" } do
      local _, rc = sh("test -x " .. q(prefix .. "/" .. rel))
      assert.equal(0, rc, rel .. " is not executable")
    end
    -- the build-tree marker is what makes a binary look for the sources:
    -- an installed one must not have it
    assert.is_nil(io.open(prefix .. "/bin/workproof-build-tree"))
  end)

  it("has no path of the source tree in the installed binaries", function()
    for _, rel in ipairs { "bin/workproof", "libexec/workproof/workproof-worker",
      "lib/lua/5.1/workproof/core.so" } do
      local out, rc = sh("strings -n 6 " .. q(prefix .. "/" .. rel))
      assert.equal(0, rc)
      -- strings did read the binary: the relative layout it searches is in it
      if rel == "bin/workproof" then assert.truthy(out:find("/share/lua/5.1", 1, true)) end
      if rel == "libexec/workproof/workproof-worker" then assert.truthy(out:find("NOTARY_RESULT", 1, true)) end
      assert.falsy(out:find(SRC, 1, true), rel .. " names the source tree " .. SRC)
    end
  end)

  it("`workproof version` runs from outside the tree", function()
    local out, rc, err = sh(outside(work, q(prefix .. "/bin/workproof") .. " version"))
    assert.equal(0, rc, err)
    assert.equal("workproof " .. host.version .. " ", out:match("^(workproof %S+ )"))
  end)

  it("`workproof serve` verifies with the installed Lua, policies and worker", function()
    local cmd = q(prefix .. "/bin/workproof") .. " serve --listen 127.0.0.1:0"
    local p, buf = h.spawn_until({ file = "/bin/sh", args = { "-c", outside(work, cmd) }, timeout = 300,
      stderr_limit = 1048576 }, "listening on", "installed controller")
    local srv = { url = "http://127.0.0.1:" .. assert(tonumber(buf:match("listening on [^\n]*:(%d+)"))), proc = p }
    local ok, e = pcall(function()
      local st, r = h.verify(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
        expectedHash = h.sha("4") })
      assert.equal(200, st, cjson.encode(r))
      assert.equal("VALID", r.result, cjson.encode(r))
      st, r = h.verify(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 3)",
        expectedHash = h.sha("4") })
      assert.equal(200, st, cjson.encode(r))
      assert.equal("INVALID", r.result, cjson.encode(r))
      -- JavaScript needs the installed runtime (libexec/workproof/runtime)
      if sh("command -v node") ~= "" then
        st, r = h.verify(srv, { taskType = "code-execution", code = "console.log(6 * 7)",
          expectedHash = h.sha("42") })
        assert.equal(200, st, cjson.encode(r))
        assert.equal("VALID", r.result, cjson.encode(r))
      end
      -- the HTTP API's document is found in the prefix (share/doc/workproof)
      local ost, _, obody = h.http("GET", srv.url .. "/openapi.json")
      assert.equal(200, ost, obody)
      assert.equal("3.1.0", cjson.decode(obody).openapi)
      -- and the dashboard's files (share/workproof/dashboard)
      for _, f in ipairs({ "", "/app.js", "/app.css" }) do
        local dst, _, dbody = h.http("GET", srv.url .. "/dashboard" .. f)
        assert.equal(200, dst, dbody)
        assert.equal(h.read("dashboard/" .. (f == "" and "index.html" or f:sub(2))), dbody)
      end
      -- its state went where it was started, not into a tree
      assert.is_truthy(io.open(work .. "/var/workproof.db"))
    end)
    local st = h.stop(srv)
    assert(ok, e)
    assert.equal(0, st.exit_status, st.stderr)
    -- it loaded the shipped policies from the prefix
    assert.falsy(st.stderr:find("[error]", 1, true), st.stderr)
  end)

  it("plain luajit requires workproof from the prefix", function()
    local lmod, cmod = prefix .. "/share/lua/5.1", prefix .. "/lib/lua/5.1"
    local script = ([[
      package.path = %q .. package.path
      package.cpath = %q .. package.cpath
      local wp = require "workproof"
      local config = require "workproof.config"
      io.write(wp.hex(wp.sha256("abc")), "\n", package.searchpath("workproof.core", package.cpath), "\n",
        config.schema.policies_dir.default, "\n")
    ]]):format(lmod .. "/?.lua;" .. lmod .. "/?/init.lua;", cmod .. "/?.so;")
    local out, rc, err = sh(outside(work, "luajit -e " .. q(script)))
    assert.equal(0, rc, err)
    assert.equal(h.sha("abc") .. "\n" .. cmod .. "/workproof/core.so\n"
      .. prefix .. "/share/workproof/policies\n", out)
  end)

  it("its pkg-config file gives the LUA_PATH and LUA_CPATH for the prefix", function()
    local pc = "PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig") .. " pkg-config "
    local version = sh(pc .. "--modversion workproof")
    assert.equal(host.version .. "\n", version)
    local out, rc, err = sh(outside(work, ('env LUA_PATH="$(%s--variable=lua_path workproof);;" '
      .. 'LUA_CPATH="$(%s--variable=lua_cpath workproof);;" '
      .. "luajit -e 'local wp = require \"workproof\" io.write(wp.hex(wp.sha256(\"\")))'"):format(pc, pc)))
    assert.equal(0, rc, err)
    assert.equal(h.sha(""), out)
  end)

  it("make install PREFIX= DESTDIR= stages a relocatable tree", function()
    local dest = h.tmpdir()
    -- deps is the apt step: what the build needed is installed already
    local out, rc, err = sh(("make -s -C %s -o deps install BUILD=%s PREFIX=/opt/workproof DESTDIR=%s")
      :format(q(SRC), q(BUILD), q(dest)))
    assert.equal(0, rc, out .. err)
    local root = dest .. "/opt/workproof"
    assert.is_truthy(io.open(root .. "/libexec/workproof/workproof-worker"))
    assert.is_truthy(io.open(root .. "/share/workproof/policies/rate_limit.lua"))
    -- it runs where it was staged: paths come from where it runs
    local v, vrc, verr = sh(outside(work, q(root .. "/bin/workproof") .. " version"))
    assert.equal(0, vrc, verr)
    assert.truthy(v:find("workproof " .. host.version, 1, true))
    os.execute("rm -rf " .. q(dest))
  end)
end)
