-- SPDX-License-Identifier: MIT
-- The host's file-system calls (core/host/l_fs.c, lua/workproof/fs.lua),
-- synchronously and from a host coroutine (thread pool + yield).
local fs = require "workproof.fs"
local wp = require "workproof"
local h = require "helpers"

local function in_coroutine(fn)
  local res, done = nil, false
  wp.spawn(function() res = { fn() }; done = true end)
  while not done do wp.sleep(0.01) end
  return unpack(res)
end

describe("host fs", function()
  local dir
  before_each(function() dir = h.tmpdir() end)

  for _, mode in ipairs({ "plain", "coroutine" }) do
    local run = mode == "plain" and function(fn) return fn() end or in_coroutine
    describe(mode, function()
      it("mkdir, stat, scandir, rename, unlink, rmdir", function()
        run(function()
          assert.is_true(fs.mkdir(dir .. "/a", tonumber("700", 8)))
          local st = fs.stat(dir .. "/a")
          assert.equal("directory", st.type)
          assert.equal(tonumber("700", 8), st.mode)
          h.write(dir .. "/a/f", "xyz")
          local f = fs.stat(dir .. "/a/f")
          assert.equal("file", f.type)
          assert.equal(3, f.size)
          assert.same({ "f" }, fs.scandir(dir .. "/a"))
          assert.is_true(fs.rename(dir .. "/a/f", dir .. "/a/g"))
          assert.same({ "g" }, fs.scandir(dir .. "/a"))
          assert.is_true(fs.unlink(dir .. "/a/g"))
          assert.same({}, fs.scandir(dir .. "/a"))
          assert.is_true(fs.rmdir(dir .. "/a"))
        end)
      end)

      it("answers failures with nil, 'ECODE: op path: text', 'ECODE'", function()
        run(function()
          local ok, err, code = fs.stat(dir .. "/missing")
          assert.is_nil(ok)
          assert.equal("ENOENT", code)
          assert.equal("ENOENT: stat " .. dir .. "/missing: no such file or directory", err)
          assert.is_true(fs.mkdir(dir .. "/d"))
          ok, err, code = fs.mkdir(dir .. "/d")
          assert.is_nil(ok)
          assert.equal("EEXIST", code)
          assert.truthy(err:find("^EEXIST: mkdir "))
          assert.equal("ENOTEMPTY", select(3, fs.rmdir(dir)))
          assert.equal("ENOENT", select(3, fs.scandir(dir .. "/missing")))
          assert.equal("ENOENT", select(3, fs.rename(dir .. "/missing", dir .. "/x")))
          assert.equal("ENOENT", select(3, fs.unlink(dir .. "/missing")))
        end)
      end)

      it("mkdir_p creates parents, accepts an existing directory, refuses a file", function()
        run(function()
          assert.is_true(fs.mkdir_p(dir .. "/x/y/z"))
          assert.is_true(fs.mkdir_p(dir .. "/x/y/z"))
          assert.equal("directory", fs.stat(dir .. "/x/y/z").type)
          h.write(dir .. "/file", "")
          local ok, err, code = fs.mkdir_p(dir .. "/file/sub")
          assert.is_nil(ok)
          assert.equal("ENOTDIR", code, err)
          ok, _, code = fs.mkdir_p(dir .. "/file")
          assert.is_nil(ok)
          assert.equal("ENOTDIR", code)
        end)
      end)
    end)
  end

  it("raises on wrong argument types", function()
    assert.has_error(function() fs.mkdir(nil) end)
    assert.has_error(function() fs.rename("a") end)
    assert.has_error(function() fs.mkdir("x", -1) end)
  end)

  it("dirname", function()
    assert.equal("/a/b", fs.dirname("/a/b/c"))
    assert.equal(".", fs.dirname("c"))
    assert.equal("var", fs.dirname("var/workproof.db"))
  end)
end)
