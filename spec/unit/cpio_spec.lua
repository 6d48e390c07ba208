-- SPDX-License-Identifier: MIT
-- workproof.cpio: the newc writer that delivers a task to a micro-VM guest.
-- GNU cpio (Debian package `cpio`) is the oracle: it must list and extract
-- what we write, byte for byte, and our parse of its own archives must match
-- our archives entry for entry.
local cpio = require "workproof.cpio"
local h = require "helpers"
local tmpdir, write, read = h.tmpdir, h.write, h.slurp

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = p:read("*a")
  local ok, _, code = p:close()
  return out, ok and 0 or code
end

local function have_cpio()
  local _, code = sh("command -v cpio")
  return code == 0
end




-- Independent parse of a newc archive (first archive only): entries with
-- their header fields, and the offset just past the trailer.
local function parse(s)
  local out, pos = {}, 1
  while true do
    assert(pos % 4 == 1, "header not 4-byte aligned at " .. pos)
    local magic = s:sub(pos, pos + 5)
    assert(magic == "070701", "bad magic at " .. pos .. ": " .. magic)
    local f = {}
    for i = 0, 12 do f[i + 1] = tonumber(s:sub(pos + 6 + 8 * i, pos + 13 + 8 * i), 16) end
    local namesize, size = f[12], f[7]
    local name = s:sub(pos + 110, pos + 110 + namesize - 2)
    assert(s:byte(pos + 110 + namesize - 1) == 0, "name not NUL-terminated")
    local dpos = pos + 110 + namesize
    dpos = dpos + (4 - (dpos - 1) % 4) % 4
    if name == "TRAILER!!!" then return out, dpos - 1 end
    out[#out + 1] = { name = name, ino = f[1], mode = f[2], uid = f[3], gid = f[4], nlink = f[5],
      mtime = f[6], size = size, data = s:sub(dpos, dpos + size - 1), check = f[13] }
    pos = dpos + size
    pos = pos + (4 - (pos - 1) % 4) % 4
  end
end

describe("workproof.cpio", function()
  describe("archive()", function()
    it("writes a newc header GNU cpio and the kernel accept", function()
      local a = cpio.archive({ ["task.json"] = '{"jobId":"j1"}' })
      assert.are.equal("070701", a:sub(1, 6))
      assert.are.equal(0, #a % 512)
      local e = parse(a)
      assert.are.equal(1, #e)
      assert.are.same({ "task.json", 0x81A4, 0, 0, 1, 14, '{"jobId":"j1"}', 0 },
        { e[1].name, e[1].mode, e[1].uid, e[1].gid, e[1].nlink, e[1].size, e[1].data, e[1].check })
      -- the fixed-size header: 6 + 13 * 8 = 110 bytes, name "task.json\0" (10)
      -- makes 120, already 4-aligned, so the data starts at byte 121
      assert.are.equal('{"jobId":"j1"}', a:sub(121, 134))
    end)

    it("pads names and data to 4 bytes for every length", function()
      local files = {}
      for n = 0, 9 do files[#files + 1] = { name = ("f%s"):format(("x"):rep(n)), data = ("d"):rep(n) } end
      local e = parse(cpio.archive(files))
      assert.are.equal(10, #e)
      for n = 0, 9 do
        assert.are.equal(("f%s"):format(("x"):rep(n)), e[n + 1].name)
        assert.are.equal(("d"):rep(n), e[n + 1].data)
      end
    end)

    it("is deterministic for a map (sorted names) and keeps array order", function()
      local m = { b = "2", a = "1", c = "3" }
      assert.are.equal(cpio.archive(m), cpio.archive(m))
      local e = parse(cpio.archive(m))
      assert.are.same({ "a", "b", "c" }, { e[1].name, e[2].name, e[3].name })
      e = parse(cpio.archive({ { name = "z" }, { name = "y" } }))
      assert.are.same({ "z", "y" }, { e[1].name, e[2].name })
    end)

    it("encodes directories, symlinks, modes and mtimes", function()
      local e = parse(cpio.archive({
        { name = "etc", type = "dir" },
        { name = "etc/x", data = "#!", mode = 493, mtime = 1700000000 },
        { name = "lib", type = "symlink", data = "usr/lib" },
      }))
      assert.are.equal(0x41ED, e[1].mode)
      assert.are.equal(0x81ED, e[2].mode)
      assert.are.equal(1700000000, e[2].mtime)
      assert.are.equal(0xA1FF, e[3].mode)
      assert.are.equal("usr/lib", e[3].data)
    end)

    it("strips a leading / or ./ from names", function()
      local e = parse(cpio.archive({ { name = "/task.json" }, { name = "./a/b" } }))
      assert.are.same({ "task.json", "a/b" }, { e[1].name, e[2].name })
    end)

    it("raises on bad names, types, modes and data", function()
      for _, bad in ipairs({ "", "/", "a/../b", "..", "./", "a//b", "a/", "a\0b", "a/./b" }) do
        assert.has_error(function() cpio.archive({ { name = bad } }) end)
      end
      assert.has_error(function() cpio.archive({ { name = 1 } }) end)
      assert.has_error(function() cpio.archive({ { name = "a", type = "fifo" } }) end)
      assert.has_error(function() cpio.archive({ { name = "a", mode = 4096 } }) end)
      assert.has_error(function() cpio.archive({ { name = "a", mode = -1 } }) end)
      assert.has_error(function() cpio.archive({ { name = "a", mtime = -1 } }) end)
      assert.has_error(function() cpio.archive({ { name = "a", data = 5 } }) end)
      assert.has_error(function() cpio.archive({ { name = "d", type = "dir", data = "x" } }) end)
      assert.has_error(function() cpio.archive({ { name = "l", type = "symlink" } }) end)
      assert.has_error(function() cpio.archive("task.json") end)
      assert.has_error(function() cpio.archive({ [1] = "x" }) end)
    end)

    it("an empty set is a lone trailer", function()
      local a = cpio.archive({})
      local e, stop = parse(a)
      assert.are.equal(0, #e)
      assert.are.equal(124, stop)     -- 110 + "TRAILER!!!\0" (11) padded to 124
      assert.are.equal(512, #a)
    end)
  end)

  describe("against GNU cpio", function()
    local dir
    before_each(function()
      if not have_cpio() then error("GNU cpio is missing: apt-get install cpio") end
      dir = tmpdir()
    end)
    after_each(function() if dir then os.execute("rm -rf '" .. dir .. "'") end end)

    it("cpio -t lists and cpio -i extracts our archive byte for byte", function()
      local bin = {}
      for i = 0, 255 do bin[#bin + 1] = string.char(i) end
      bin = table.concat(bin):rep(5)          -- NULs and every byte value
      write(dir .. "/in.cpio", cpio.archive({
        { name = "d", type = "dir" },
        { name = "d/task.json", data = '{"code":"print(2+2)"}' },
        { name = "d/bin", data = bin, mode = 448 },
        { name = "empty" },
        { name = "ln", type = "symlink", data = "d/task.json" },
      }))
      local list, code = sh("cd '" .. dir .. "' && cpio -t --quiet < in.cpio")
      assert.are.equal(0, code, list)
      assert.are.equal("d\nd/task.json\nd/bin\nempty\nln\n", list)
      local out
      out, code = sh("mkdir '" .. dir .. "/x' && cd '" .. dir .. "/x' && cpio -i -d --quiet < ../in.cpio")
      assert.are.equal(0, code, out)
      assert.are.equal('{"code":"print(2+2)"}', read(dir .. "/x/d/task.json"))
      assert.are.equal(bin, read(dir .. "/x/d/bin"))
      assert.are.equal("", read(dir .. "/x/empty"))
      assert.are.equal("d/task.json\n", (sh("readlink '" .. dir .. "/x/ln'")))
      assert.are.equal("700\n", (sh("stat -c %a '" .. dir .. "/x/d/bin'")))
    end)

    it("matches what GNU cpio writes for the same tree, entry for entry", function()
      assert(os.execute(("cd '%s' && mkdir -p t/etc && printf 'root:x:0:0::/:/bin/sh\\n' > t/etc/passwd"
        .. " && printf 'abc' > t/task.json && chmod 600 t/task.json && ln -s etc t/conf"
        .. " && touch -h -d @1700000000 t/etc/passwd t/task.json t/conf t/etc"):format(dir)))
      local _, code = sh(("cd '%s/t' && printf 'etc\\netc/passwd\\ntask.json\\nconf\\n'"
        .. " | cpio -o -H newc -R 0:0 --reproducible --quiet > ../gnu.cpio"):format(dir))
      assert.are.equal(0, code)
      local gnu = parse(read(dir .. "/gnu.cpio"))
      local ours = parse(cpio.archive({
        { name = "etc", type = "dir", mtime = 1700000000 },
        { name = "etc/passwd", data = "root:x:0:0::/:/bin/sh\n", mtime = 1700000000 },
        { name = "task.json", data = "abc", mode = 384, mtime = 1700000000 },
        { name = "conf", type = "symlink", data = "etc", mtime = 1700000000 },
      }))
      assert.are.equal(#gnu, #ours)
      for i = 1, #gnu do
        local g, o = gnu[i], ours[i]
        -- inode numbers and a directory's link count legitimately differ
        assert.are.same({ g.name, g.mode, g.uid, g.gid, g.mtime, g.size, g.data },
          { o.name, o.mode, o.uid, o.gid, o.mtime, o.size, o.data })
      end
    end)
  end)

  describe("append_file()", function()
    local dir
    before_each(function() dir = tmpdir() end)
    after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

    it("writes base, zero padding to 4 bytes, then the task archive", function()
      for _, n in ipairs({ 0, 1, 2, 3, 4, 1001, 1024 * 1024 + 3 }) do
        local base = ("B"):rep(n)
        write(dir .. "/base", base)
        assert.is_true(cpio.append_file(dir .. "/base", dir .. "/out", { ["task.json"] = "{}" }))
        local s = read(dir .. "/out")
        local padded = n + (4 - n % 4) % 4
        assert.are.equal(base, s:sub(1, n))
        assert.are.equal(("\0"):rep(padded - n), s:sub(n + 1, padded))
        assert.are.equal(cpio.archive({ ["task.json"] = "{}" }), s:sub(padded + 1))
      end
    end)

    it("appends after a GNU cpio base so that both archives are intact", function()
      if not have_cpio() then error("GNU cpio is missing: apt-get install cpio") end
      assert(os.execute(("cd '%s' && mkdir b && printf init > b/init && cd b"
        .. " && echo init | cpio -o -H newc --quiet > ../base.cpio"):format(dir)))
      assert.is_true(cpio.append_file(dir .. "/base.cpio", dir .. "/all.cpio", { ["task.json"] = "T" }))
      local all = read(dir .. "/all.cpio")
      local first, stop = parse(all)
      assert.are.equal("init", first[1].name)
      -- GNU cpio pads to 512: the second archive starts on that boundary
      local rest = all:sub(#read(dir .. "/base.cpio") + 1)
      assert.is_true(stop <= #read(dir .. "/base.cpio"))
      local second = parse(rest)
      assert.are.same({ "task.json", "T" }, { second[1].name, second[1].data })
    end)

    it("returns EIO for a missing base or an unwritable output", function()
      local ok, err = cpio.append_file(dir .. "/nope", dir .. "/out", { a = "b" })
      assert.is_nil(ok)
      assert.matches("^EIO: ", err)
      assert.is_nil(read(dir .. "/out"))
      write(dir .. "/base", "x")
      ok, err = cpio.append_file(dir .. "/base", dir .. "/no/such/dir/out", { a = "b" })
      assert.is_nil(ok)
      assert.matches("^EIO: ", err)
    end)

    it("raises on wrong argument types", function()
      assert.has_error(function() cpio.append_file(nil, "x", {}) end)
      assert.has_error(function() cpio.append_file("x", nil, {}) end)
      assert.has_error(function() cpio.append_file(dir .. "/b", dir .. "/o", { { name = "../x" } }) end)
    end)
  end)
end)
