-- SPDX-License-Identifier: MIT
--- A writer for "newc" cpio archives (the SVR4 format without CRC that the
-- Linux initramfs unpacker reads), used to hand a task to a micro-VM guest:
-- the task travels as a tiny second archive appended to the base initramfs
-- (worker/vm/README.md, "Task delivery"). The kernel unpacks concatenated
-- archives in order, so /task.json simply appears in the guest's rootfs.
--
-- Format (one entry): a 110-byte ASCII header "070701" followed by 13
-- eight-digit hex fields (ino, mode, uid, gid, nlink, mtime, filesize,
-- devmajor, devminor, rdevmajor, rdevminor, namesize incl. NUL, check=0),
-- the NUL-terminated name padded so that header+name is a multiple of 4,
-- then the data padded to a multiple of 4. The archive ends with an entry
-- named "TRAILER!!!". We pad the whole archive to 512 bytes like GNU cpio.
--
-- Trusted-tier module: names and modes come from the host, so bad arguments
-- raise; I/O failures return nil, "EIO: text".
local type, error, pairs, ipairs, tostring, tonumber = type, error, pairs, ipairs, tostring, tonumber
local string_format, string_rep, table_concat, table_sort = string.format, string.rep, table.concat, table.sort
local io_open, os_remove = io.open, os.remove

local _M = {}

local S_IFREG, S_IFDIR, S_IFLNK = 0x8000, 0x4000, 0xA000
local BLOCK = 512
local COPY_CHUNK = 1024 * 1024

local function pad(n, align)
  local r = n % align
  return r == 0 and "" or string_rep("\0", align - r)
end

-- Archive-relative name: no leading "/" or "./", no empty, "." or ".."
-- component, no NUL (a NUL would end the name early in the kernel's parser).
local function clean_name(name)
  if type(name) ~= "string" then error("cpio: entry name must be a string", 3) end
  local n = name:gsub("^%./", ""):gsub("^/+", "")
  if n == "" or n:find("\0", 1, true) or n:find("//", 1, true) or n:sub(-1) == "/" then
    error("cpio: bad entry name '" .. name .. "'", 3)
  end
  for part in n:gmatch("[^/]+") do
    if part == "." or part == ".." then error("cpio: bad entry name '" .. name .. "'", 3) end
  end
  return n
end

local function header(ino, mode, size, mtime, name)
  local namesize = #name + 1
  local h = string_format("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
    ino, mode, 0, 0, 1, mtime, size, 0, 0, 0, 0, namesize, 0)
  return h .. name .. "\0" .. pad(110 + namesize, 4)
end

-- Normalise the argument of archive(): a map name -> data (written in sorted
-- name order, so the bytes are deterministic) or an array of entry tables.
local function entries_of(files)
  if type(files) ~= "table" then error("cpio: files must be a table", 3) end
  local list = {}
  if files[1] ~= nil then
    for i, e in ipairs(files) do
      if type(e) ~= "table" then error("cpio: entry " .. i .. " must be a table", 3) end
      list[i] = e
    end
  else
    local names = {}
    for k in pairs(files) do names[#names + 1] = k end
    for _, k in ipairs(names) do
      if type(k) ~= "string" then error("cpio: entry name must be a string", 3) end
    end
    table_sort(names)
    for i, k in ipairs(names) do list[i] = { name = k, data = files[k] } end
  end
  return list
end

--- Build a newc archive in memory.
-- files: either { [name] = data, ... } (regular files, mode 0644, sorted by
-- name) or an array of entries { name =, data =, type = "file"|"dir"|"symlink",
-- mode = permission bits (default 0644 files, 0755 dirs, 0777 links),
-- mtime = seconds (default 0) } in the order given; a symlink's target is its
-- data. Owner is always root (uid 0, gid 0). Returns the archive string,
-- padded to a multiple of 512 bytes.
function _M.archive(files)
  local list = entries_of(files)
  local out = {}
  for i, e in ipairs(list) do
    local name = clean_name(e.name)
    local kind = e.type or "file"
    local data = e.data or ""
    if type(data) ~= "string" then error("cpio: data of '" .. name .. "' must be a string", 2) end
    local ftype, perm
    if kind == "file" then ftype, perm = S_IFREG, 420          -- 0644
    elseif kind == "dir" then ftype, perm = S_IFDIR, 493       -- 0755
      if #data > 0 then error("cpio: directory '" .. name .. "' cannot have data", 2) end
    elseif kind == "symlink" then ftype, perm = S_IFLNK, 511   -- 0777
      if #data == 0 then error("cpio: symlink '" .. name .. "' needs a target", 2) end
    else error("cpio: bad entry type '" .. tostring(kind) .. "'", 2) end
    if e.mode ~= nil then
      perm = tonumber(e.mode)
      if not perm or perm < 0 or perm > 4095 or perm % 1 ~= 0 then
        error("cpio: bad mode for '" .. name .. "'", 2)
      end
    end
    local mtime = e.mtime or 0
    if type(mtime) ~= "number" or mtime < 0 or mtime > 0xFFFFFFFF or mtime % 1 ~= 0 then
      error("cpio: bad mtime for '" .. name .. "'", 2)
    end
    if #data > 0xFFFFFFFF then error("cpio: '" .. name .. "' is too large for newc", 2) end
    -- distinct inode numbers with nlink 1: the unpacker never links entries
    out[#out + 1] = header(i, ftype + perm, #data, mtime, name)
    out[#out + 1] = data
    out[#out + 1] = pad(#data, 4)
  end
  out[#out + 1] = header(0, 0, 0, 0, "TRAILER!!!")
  local s = table_concat(out)
  return s .. pad(#s, BLOCK)
end

--- Write base_path's bytes followed by archive(files) into out_path (created
-- or truncated): the initrd of one VM run. The base is zero-padded to a
-- multiple of 4 bytes first, because the kernel requires each appended
-- archive to start 4-byte aligned (a compressed base ends anywhere; zero
-- bytes between archives are skipped). Returns true, or nil, "EIO: text";
-- a failed write removes the partial out_path.
function _M.append_file(base_path, out_path, files)
  if type(base_path) ~= "string" then error("cpio.append_file: base_path must be a string", 2) end
  if type(out_path) ~= "string" then error("cpio.append_file: out_path must be a string", 2) end
  local tail = _M.archive(files)
  local src, err = io_open(base_path, "rb")
  if not src then return nil, "EIO: cannot open base image: " .. tostring(err) end
  local dst
  dst, err = io_open(out_path, "wb")
  if not dst then
    src:close()
    return nil, "EIO: cannot create " .. out_path .. ": " .. tostring(err)
  end
  local total, ok = 0, true
  while true do
    local chunk = src:read(COPY_CHUNK)
    if not chunk then break end
    total = total + #chunk
    ok, err = dst:write(chunk)
    if not ok then break end
  end
  src:close()
  if ok then ok, err = dst:write(pad(total, 4), tail) end
  local closed, cerr = dst:close()
  if not ok or not closed then
    os_remove(out_path)
    return nil, "EIO: writing " .. out_path .. ": " .. tostring(err or cerr)
  end
  return true
end

return _M
