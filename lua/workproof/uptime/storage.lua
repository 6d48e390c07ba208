-- SPDX-License-Identifier: MIT
--- Storage challenges (issue 12, item 1; docs/uptime.md section 10,
-- "Storage challenges"): a proof of retrievability.
--
-- The CONSUMER makes the data: chunk i of a lease is a keyed pseudo-random
-- stream under a key K only the consumer holds (derived from its identity
-- seed and the lease id). It computes the RFC 6962 root over the chunks
-- itself and uploads them; the provider stores them, recomputes the root
-- and signs it only when it equals the consumer's. A challenge names k
-- random chunks (from a nonce); the provider answers with the chunks'
-- bytes read from its file and their inclusion proofs; the consumer checks
-- the proofs against its root and each chunk against what it regenerates
-- from K (k chunks: cheap). Without the file the provider cannot answer:
-- it never held K, and the leaf hashes (the sidecar) do not give the bytes.
--
-- The stream (BLAKE2b, RFC 7693, keyed; be32/be64 big-endian integers;
-- m = chunk_size / 64):
--
--   K     = SHA-256("workproof-storage-key" || seed (32) || leaseId (32))
--   k_i   = BLAKE2b-256(key = K,   "WP-STORAGE-D1" || be32(chunk_size) || be64(i))
--   chunk = BLAKE2b-512(key = k_i, be32(0)) || ... || BLAKE2b-512(key = k_i, be32(m-1))
--
-- Error convention (docs/lua-api.md): a wrong argument type raises; a
-- malformed value or an operational failure returns nil, "ECODE: text",
-- "ECODE"; a check that does not hold returns false, "REASON: text", "REASON".
local wp = require "workproof"

local type, tostring, error, pairs, ipairs = type, tostring, error, pairs, ipairs
local floor, huge, max, min = math.floor, math.huge, math.max, math.min
local char, byte, format = string.char, string.byte, string.format
local concat, sort = table.concat, table.sort
local io_open, os_remove, os_rename = io.open, os.remove, os.rename

local sha256, blake2b, hex, unhex = wp.sha256, wp.blake2b, wp.hex, wp.unhex
local leaf_hash, node_hash = wp.merkle.leaf_hash, wp.merkle.node_hash
local verify_inclusion, builder = wp.merkle.verify_inclusion, wp.merkle.builder
local b64enc, b64dec = wp.base64.encode, wp.base64.decode

local _M = {}

_M.VERSION = 2
_M.DEFAULT_CHUNK_SIZE = 4096
_M.MAX_CHUNK_SIZE = 16 * 1024 * 1024
_M.MAX_CHUNKS = 2 ^ 48
_M.UPLOAD_BYTES = 1024 * 1024   -- bytes per upload request (a whole number of chunks)
_M.ENCODING = "base64"          -- chunk bytes in answers: standard, padded base64
_M.reasons = { "BAD_FORMAT", "ROOT_MISMATCH", "WRONG_INDICES", "BAD_CHUNK_SIZE", "BAD_PROOF", "WRONG_DATA" }

local TAG_KEY = "workproof-storage-key"
local TAG_D = "WP-STORAGE-D1"
local TAG_IDX = "WP-STORAGE-IDX1"
local READ_BYTES = 1024 * 1024      -- read per slice when scanning a file
local SLICE_S = 0.02                -- run at most this long between yields

local hosted = wp.hosted
local clock = hosted and wp.now or os.clock

local function fail(code, fmt, ...)
  return nil, code .. ": " .. format(fmt, ...), code
end

local function no(code, fmt, ...)
  return false, code .. ": " .. format(fmt, ...), code
end

local function is_int(x, lo, hi)
  return type(x) == "number" and x == floor(x) and x >= lo and x <= hi
end

--- n as a big-endian unsigned integer of `bytes` bytes (n < 2^53).
local function be(n, bytes)
  local t = {}
  for k = bytes, 1, -1 do
    local b = n % 256
    t[k] = b
    n = (n - b) / 256
  end
  return char(unpack(t))
end

--- A slicer: call it often; inside a host coroutine it yields to the loop
-- (wp.sleep(0)) once `slice` seconds have passed since the last yield, so an
-- agent keeps beating while it generates or hashes. Elsewhere a no-op.
local function slicer(slice)
  if not (hosted and wp.in_coroutine()) then return function() end end
  slice = slice or SLICE_S
  local last = clock()
  return function()
    local t = clock()
    if t - last >= slice then
      wp.sleep(0)
      last = clock()
    end
  end
end

-- ---- parameters ------------------------------------------------------------

--- A 32-byte key given raw or as 64 hex digits; nil, err otherwise.
local function check_key(key, what)
  if type(key) ~= "string" then
    return fail("EINVAL", "%s: expected 32 bytes (raw or 64 hex digits), got %s", what, type(key))
  end
  if #key == 32 then return key end
  local raw = #key == 64 and unhex(key)
  if not raw or #raw ~= 32 then
    return fail("EINVAL", "%s: expected 32 bytes (raw or 64 hex digits), got %d characters", what, #key)
  end
  return raw
end

local function check_chunk_size(cs, what)
  if not is_int(cs, 64, _M.MAX_CHUNK_SIZE) or cs % 64 ~= 0 then
    return fail("EINVAL", "%s: expected a multiple of 64 in 64 .. %d, got %s", what,
                _M.MAX_CHUNK_SIZE, tostring(cs))
  end
  return cs
end

local function check_size(size, cs, what)
  if not is_int(size, 1, 2 ^ 53) then
    return fail("EINVAL", "%s: expected a positive integer, got %s", what, tostring(size))
  end
  if size % cs ~= 0 then
    return fail("EINVAL", "%s %d is not a multiple of chunk_size %d", what, size, cs)
  end
  if size / cs > _M.MAX_CHUNKS then
    return fail("EINVAL", "%s %d makes more than 2^48 chunks", what, size)
  end
  return size
end

--- { size, chunk_size } (what the provider wants, the upload's shape),
-- checked; returns size, chunk_size or nil, err.
local function check_wanted(w, what)
  if type(w) ~= "table" then return fail("EINVAL", "%s: expected { size, chunk_size }, got %s", what, type(w)) end
  local cs, err, code = check_chunk_size(w.chunk_size or _M.DEFAULT_CHUNK_SIZE, what .. ".chunk_size")
  if not cs then return nil, err, code end
  local size
  size, err, code = check_size(w.size, cs, what .. ".size")
  if not size then return nil, err, code end
  return size, cs
end

--- The upload's shape { size, chunk_size } (chunk_size default 4096)
-- checked: size, chunk_size | nil, err, code.
function _M.wanted(w)
  return check_wanted(w, "wanted")
end

--- The commitment's fields, decoded; nil, err when malformed. Fields other
-- than root, size, chunk_size and chunks are ignored.
local function parse_commitment(c)
  if type(c) ~= "table" then return fail("EINVAL", "commitment: expected a table, got %s", type(c)) end
  local root = type(c.root) == "string" and unhex(c.root)
  if not root or #root ~= 32 then
    return fail("EINVAL", "commitment.root: expected 64 hex digits, got %s", tostring(c.root))
  end
  local cs, err, code = check_chunk_size(c.chunk_size, "commitment.chunk_size")
  if not cs then return nil, err, code end
  local size
  size, err, code = check_size(c.size, cs, "commitment.size")
  if not size then return nil, err, code end
  local n = size / cs
  if c.chunks ~= nil and c.chunks ~= n then
    return fail("EINVAL", "commitment.chunks %s is not size / chunk_size = %d", tostring(c.chunks), n)
  end
  return { root = root, size = size, chunk_size = cs, chunks = n }
end

--- Challenge indices: an array of 1 .. chunks distinct integers in [0, chunks).
local function parse_indices(indices, n)
  if type(indices) ~= "table" then return fail("EINVAL", "indices: expected an array, got %s", type(indices)) end
  local count = #indices
  if count < 1 or count > n then
    return fail("EINVAL", "indices: expected 1 .. %d of them, got %d", n, count)
  end
  local seen = {}
  for j = 1, count do
    local i = indices[j]
    if not is_int(i, 0, n - 1) then
      return fail("EINVAL", "indices[%d] = %s is not a chunk index 0 .. %d", j, tostring(i), n - 1)
    end
    if seen[i] then return fail("EINVAL", "indices[%d] = %d is repeated", j, i) end
    seen[i] = true
  end
  return indices
end

-- ---- the consumer's stream ----------------------------------------------------

local COUNTERS = {}   -- COUNTERS[j + 1] = be32(j), grown on demand
local parts = {}      -- reused by gen (which never yields)

--- Chunk i under the raw 32-byte key K: cs / 64 keyed BLAKE2b-512 blocks.
local function gen(K, i, cs)
  local ki = blake2b(TAG_D .. be(cs, 4) .. be(i, 8), 32, K)
  local m = cs / 64
  for j = #COUNTERS + 1, m do COUNTERS[j] = be(j - 1, 4) end
  for j = 1, m do parts[j] = blake2b(COUNTERS[j], 64, ki) end
  return concat(parts, "", 1, m)
end

--- The lease's storage key (64 hex digits): SHA-256("workproof-storage-key"
-- || seed || leaseId), from the consumer's identity seed and the lease id
-- (both 64 hex digits, or 32 raw bytes). Secret: whoever holds it can make
-- the data without storing it.
function _M.key(seed, lease_id)
  local s, err, code = check_key(seed, "seed")
  if not s then return nil, err, code end
  local id
  id, err, code = check_key(lease_id, "lease_id")
  if not id then return nil, err, code end
  return hex(sha256(TAG_KEY .. s .. id))
end

--- Chunk i of the stream under `key` (32 bytes, raw or hex), chunk_size
-- bytes (default 4096, a multiple of 64).
function _M.generate(key, i, chunk_size)
  local K, err, code = check_key(key, "key")
  if not K then return nil, err, code end
  local cs
  cs, err, code = check_chunk_size(chunk_size or _M.DEFAULT_CHUNK_SIZE, "chunk_size")
  if not cs then return nil, err, code end
  if not is_int(i, 0, _M.MAX_CHUNKS - 1) then return fail("EINVAL", "index %s is not a chunk index", tostring(i)) end
  return gen(K, i, cs)
end

--- Generate the stream under `key` for a file of `size` bytes and compute
-- its commitment; fn(offset, data) is called for every slice from
-- opts.from on (data: a whole number of chunks, opts.bytes at most, default
-- UPLOAD_BYTES) and may yield (it uploads); it returns true to go on, or
-- nil, err[, code] to stop (slices returns nil, err, code then). Chunks
-- before opts.from (rounded down to a chunk) are generated and hashed
-- only. opts: chunk_size (default 4096), from (default 0), bytes, slice
-- (seconds between yields to the host loop, default 0.02). Returns the
-- commitment { root, size, chunk_size, chunks } (hex root).
function _M.slices(key, size, opts, fn)
  if opts ~= nil and type(opts) ~= "table" then error("storage.slices: opts: expected a table", 2) end
  if fn ~= nil and type(fn) ~= "function" then error("storage.slices: fn: expected a function", 2) end
  opts = opts or {}
  local K, err, code = check_key(key, "key")
  if not K then return nil, err, code end
  local cs
  cs, err, code = check_chunk_size(opts.chunk_size or _M.DEFAULT_CHUNK_SIZE, "opts.chunk_size")
  if not cs then return nil, err, code end
  local ok
  ok, err, code = check_size(size, cs, "size")
  if not ok then return nil, err, code end
  local from = opts.from or 0
  if not is_int(from, 0, size) then
    return fail("EINVAL", "opts.from: expected an integer 0 .. %d, got %s", size, tostring(from))
  end
  if not fn then from = size end
  local bytes = opts.bytes or _M.UPLOAD_BYTES
  if not is_int(bytes, 1, huge) then return fail("EINVAL", "opts.bytes: expected a positive integer") end
  local n, first = size / cs, floor(from / cs)
  local per = max(1, floor(bytes / cs))
  local step = slicer(opts.slice)
  local b, buf, nbuf, at = builder(), {}, 0, first * cs
  for i = 0, n - 1 do
    local c = gen(K, i, cs)
    b:append(c)
    if i >= first then
      nbuf = nbuf + 1
      buf[nbuf] = c
      if nbuf >= per or i == n - 1 then
        local data = concat(buf, "", 1, nbuf)
        for j = 1, nbuf do buf[j] = nil end
        nbuf = 0
        ok, err, code = fn(at, data)
        if not ok then return nil, tostring(err or "stopped"), code end
        at = at + #data
      end
    end
    step()
  end
  return { root = hex(b:root()), size = size, chunk_size = cs, chunks = n }
end

--- The commitment the consumer expects for `size` bytes of its stream:
-- { root, size, chunk_size, chunks } (generates and hashes it all).
-- opts: chunk_size, slice as for slices.
function _M.root(key, size, opts)
  if opts ~= nil and type(opts) ~= "table" then error("storage.root: opts: expected a table", 2) end
  return _M.slices(key, size, { chunk_size = opts and opts.chunk_size, slice = opts and opts.slice })
end

-- ---- files -------------------------------------------------------------------

local function io_fail(err)
  err = tostring(err)
  local code = err:find("No such file", 1, true) and "ENOENT"
    or err:find("No space", 1, true) and "ENOSPC"
    or err:find("Permission denied", 1, true) and "EACCES" or "EIO"
  return nil, code .. ": " .. err, code
end

--- Write `data` to path.part, then rename it to path.
local function write_atomic(path, data)
  local tmp = path .. ".part"
  local f, err = io_open(tmp, "wb")
  if not f then return io_fail(err) end
  local ok
  ok, err = f:write(data)
  if ok then ok, err = f:close() else f:close() end
  if not ok then
    os_remove(tmp)
    return io_fail(err)
  end
  ok, err = os_rename(tmp, path)
  if not ok then
    os_remove(tmp)
    return io_fail(err)
  end
  return true
end

local function size_of(path)
  local f = io_open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

--- Read the whole file at `path` in slices: its chunks' leaf hashes (array,
-- 1-based), their root and the file size. nil, err if unreadable or not a
-- whole number of chunks.
local function scan(path, cs, slice)
  local f, err = io_open(path, "rb")
  if not f then return io_fail(err) end
  local size = f:seek("end")
  f:seek("set", 0)
  if size == 0 or size % cs ~= 0 then
    f:close()
    return fail("EINVAL", "%s is %d bytes, not a positive multiple of chunk_size %d", path, size, cs)
  end
  local step = slicer(slice)
  local per_read = max(1, floor(READ_BYTES / cs))
  local hashes, b, n = {}, builder(), size / cs
  local i = 0
  while i < n do
    local want = min(per_read, n - i)
    local data = f:read(want * cs)
    if not data or #data ~= want * cs then
      f:close()
      return fail("ETRUNC", "%s: short read at chunk %d", path, i)
    end
    for k = 0, want - 1 do
      local h = leaf_hash(data:sub(k * cs + 1, (k + 1) * cs))
      i = i + 1
      hashes[i] = h
      b:append_hash(h)
    end
    step()
  end
  f:close()
  return hashes, b:root(), size
end

--- Bytes of the upload to `path` the provider holds: the whole file once
-- finished, else what path.part holds, rounded down to a chunk (a slice cut
-- short by a crash is written again).
function _M.received(path, wanted)
  if type(path) ~= "string" then error("storage.received: path: expected a string, got " .. type(path), 2) end
  local size, cs, code = check_wanted(wanted, "wanted")
  if not size then return nil, cs, code end
  local done = size_of(path)
  if done then return done end
  local have = size_of(path .. ".part") or 0
  return min(size, have - have % cs)
end

--- The provider's side of the upload: write `data` (a whole number of
-- chunks) at `offset` of path.part. wanted = { size, chunk_size }. The
-- offset must be what received() says: uploads are in order and resume
-- where the part ends. Returns the bytes now held, or nil, err, code
-- (ERANGE: not the expected offset, the bytes held as a 4th value; EINVAL:
-- a slice that is not whole chunks or goes past size; EIO, ENOSPC, ...).
function _M.receive(path, wanted, offset, data)
  if type(path) ~= "string" then error("storage.receive: path: expected a string, got " .. type(path), 2) end
  if type(data) ~= "string" then error("storage.receive: data: expected a string, got " .. type(data), 2) end
  local size, cs, code = check_wanted(wanted, "wanted")
  if not size then return nil, cs, code end
  if not is_int(offset, 0, size) then
    return fail("EINVAL", "offset: expected an integer 0 .. %d, got %s", size, tostring(offset))
  end
  if #data == 0 or #data % cs ~= 0 then
    return fail("EINVAL", "a slice is a positive whole number of %d-byte chunks, got %d bytes", cs, #data)
  end
  if offset + #data > size then
    return fail("EINVAL", "the slice at %d (%d bytes) goes past the size %d", offset, #data, size)
  end
  local part = path .. ".part"
  local have = size_of(part)
  local held = have and have - have % cs or 0
  if offset ~= held then
    local err, ecode = select(2, fail("ERANGE", "a slice at offset %d, %d bytes are held", offset, held))
    return nil, err, ecode, held
  end
  local f, err = io_open(part, have and "r+b" or "wb")
  if not f then return io_fail(err) end
  local ok
  ok, err = f:seek("set", offset)
  if ok then ok, err = f:write(data) end
  if ok then ok, err = f:close() else f:close() end
  if not ok then return io_fail(err) end
  return offset + #data
end

--- The provider's side of the commit: path.part must hold all of `wanted`;
-- its root is recomputed and compared with `root` (hex, the consumer's).
-- Equal: the sidecar path.tree is written, path.part renamed to path, and
-- the commitment { root, size, chunk_size, chunks } returned. Not equal:
-- nil, "EPROTO: ...", "EPROTO", and path.part is removed (the upload starts
-- over; likewise when it is longer than size). Short: nil, "ETRUNC: ...",
-- "ETRUNC". opts.slice as for slices.
function _M.finish(path, wanted, root, opts)
  if type(path) ~= "string" then error("storage.finish: path: expected a string, got " .. type(path), 2) end
  if opts ~= nil and type(opts) ~= "table" then error("storage.finish: opts: expected a table", 2) end
  local size, cs, code = check_wanted(wanted, "wanted")
  if not size then return nil, cs, code end
  local want = type(root) == "string" and #root == 64 and unhex(root)
  if not want or #want ~= 32 then return fail("EINVAL", "root: expected 64 hex digits, got %s", tostring(root)) end
  local part = path .. ".part"
  local have = size_of(part)
  if not have then return fail("ETRUNC", "nothing uploaded (%s is missing)", part) end
  if have > size then
    os_remove(part)
    return fail("EPROTO", "%s is %d bytes, more than the %d wanted", part, have, size)
  end
  if have ~= size then return fail("ETRUNC", "%d of %d bytes uploaded", have, size) end
  local hashes, got, err = scan(part, cs, opts and opts.slice)
  if not hashes then return nil, got, err end
  if got ~= want then
    os_remove(part)
    return fail("EPROTO", "the uploaded data's root is %s, not the consumer's %s", hex(got), hex(want))
  end
  local ok
  ok, err, code = write_atomic(path .. ".tree", concat(hashes))
  if not ok then return nil, err, code end
  ok, err = os_rename(part, path)
  if not ok then return io_fail(err) end
  return { root = hex(got), size = size, chunk_size = cs, chunks = size / cs }
end

--- Write `size` bytes of the stream under opts.key at `path` (and its
-- sidecar) as an upload would — receive then finish, without the network:
-- for specs, benches, and a consumer and provider sharing a disk. opts:
-- key (required), chunk_size, slice. Returns the commitment.
function _M.provision(path, size, opts)
  if type(path) ~= "string" then error("storage.provision: path: expected a string, got " .. type(path), 2) end
  if type(opts) ~= "table" then error("storage.provision: opts: expected a table", 2) end
  local cs, err, code = check_chunk_size(opts.chunk_size or _M.DEFAULT_CHUNK_SIZE, "opts.chunk_size")
  if not cs then return nil, err, code end
  local wanted = { size = size, chunk_size = cs }
  os_remove(path .. ".part")
  local c
  c, err, code = _M.slices(opts.key, size, { chunk_size = cs, slice = opts.slice }, function(off, data)
    return _M.receive(path, wanted, off, data)
  end)
  if not c then
    os_remove(path .. ".part")
    return nil, err, code
  end
  return _M.finish(path, wanted, c.root, { slice = opts.slice })
end

--- The commitment of the existing file at `path` (reads it all): { root,
-- size, chunk_size, chunks }. opts: chunk_size (default 4096), slice.
function _M.commit(path, opts)
  if type(path) ~= "string" then error("storage.commit: path: expected a string, got " .. type(path), 2) end
  if opts ~= nil and type(opts) ~= "table" then error("storage.commit: opts: expected a table", 2) end
  opts = opts or {}
  local cs, err, code = check_chunk_size(opts.chunk_size or _M.DEFAULT_CHUNK_SIZE, "opts.chunk_size")
  if not cs then return nil, err, code end
  local hashes, root, size = scan(path, cs, opts.slice)
  if not hashes then return nil, root, size end
  return { root = hex(root), size = size, chunk_size = cs, chunks = #hashes }
end

-- ---- RFC 6962 paths from leaf hashes ------------------------------------------

--- levels[0] = leaf hashes, levels[l][j] = root of the perfect subtree of 2^l
-- leaves starting at leaf (j-1) * 2^l (arrays 1-based).
local function build_levels(leaves)
  local levels = { [0] = leaves }
  local l, cur = 0, leaves
  while #cur > 1 do
    local nxt = {}
    for j = 1, floor(#cur / 2) do nxt[j] = node_hash(cur[2 * j - 1], cur[2 * j]) end
    l = l + 1
    levels[l] = nxt
    cur = nxt
  end
  return levels
end

local function split(len)   -- the largest power of two strictly below len (len >= 2)
  local k = 1
  while k * 2 < len do k = k * 2 end
  return k
end

local function log2(len)    -- len a power of two
  local l = 0
  while len > 1 do len, l = len / 2, l + 1 end
  return l
end

--- MTH(D[lo : lo + len]); lo is aligned as every subtree of an RFC 6962 tree is.
local function mth(levels, lo, len)
  local k = split(len + 1)   -- largest power of two <= len
  if k == len then return levels[log2(len)][lo / len + 1] end
  return node_hash(mth(levels, lo, k), mth(levels, lo + k, len - k))
end

--- RFC 6962 PATH(m, D[lo : lo + len]), leaf-nearest hash first, appended to out.
local function audit_path(levels, m, lo, len, out)
  if len <= 1 then return out end
  local k = split(len)
  if m < k then
    audit_path(levels, m, lo, k, out)
    out[#out + 1] = mth(levels, lo + k, len - k)
  else
    audit_path(levels, m - k, lo + k, len - k, out)
    out[#out + 1] = mth(levels, lo, k)
  end
  return out
end

local function hex_list(t)
  local r = {}
  for j = 1, #t do r[j] = hex(t[j]) end
  return r
end

--- The sidecar's leaf hashes when it holds exactly n of them; else nil.
local function read_tree(path, n)
  local f = io_open(path, "rb")
  if not f then return nil end
  local data = f:read("*a")
  f:close()
  if not data or #data ~= n * 32 then return nil end
  local leaves = {}
  for j = 1, n do leaves[j] = data:sub(j * 32 - 31, j * 32) end
  return leaves
end

--- k distinct chunk indices in [0, chunks), ascending, derived from the
-- nonce (16 .. 64 bytes in hex): a partial Fisher-Yates shuffle driven by
-- SHA-256("WP-STORAGE-IDX1" || nonce || be32(counter)), 48 bits a draw,
-- rejection sampling against modulo bias.
function _M.indices(nonce_hex, chunks, k)
  if type(nonce_hex) ~= "string" then
    error("storage.indices: nonce: expected a hex string, got " .. type(nonce_hex), 2)
  end
  if type(chunks) ~= "number" or type(k) ~= "number" then error("storage.indices: chunks, k: expected numbers", 2) end
  local nonce, err = unhex(nonce_hex)
  if not nonce then return fail("EINVAL", "nonce: %s", (tostring(err):gsub("^EINVAL: ", ""))) end
  if #nonce < 16 or #nonce > 64 then
    return fail("EINVAL", "nonce: expected 16 .. 64 bytes (32 .. 128 hex digits), got %d bytes", #nonce)
  end
  if not is_int(chunks, 1, _M.MAX_CHUNKS) then
    return fail("EINVAL", "chunks: expected an integer 1 .. 2^48, got %s", tostring(chunks))
  end
  if not is_int(k, 1, huge) then return fail("EINVAL", "k: expected a positive integer, got %s", tostring(k)) end
  if k > chunks then return fail("EINVAL", "k = %s is more than chunks = %d", tostring(k), chunks) end

  local counter, prefix = 0, TAG_IDX .. nonce
  local function uniform(m)   -- uniform integer in [0, m), m <= 2^48
    local limit = 2 ^ 48 - 2 ^ 48 % m
    while true do
      local d = sha256(prefix .. be(counter, 4))
      counter = counter + 1
      local b1, b2, b3, b4, b5, b6 = byte(d, 1, 6)
      local v = ((((b1 * 256 + b2) * 256 + b3) * 256 + b4) * 256 + b5) * 256 + b6
      if v < limit then return v % m end
    end
  end
  local perm, out = {}, {}
  for j = 0, k - 1 do
    local r = j + uniform(chunks - j)
    local vj, vr = perm[j] or j, perm[r] or r
    perm[j], perm[r] = vr, vj
    out[j + 1] = vr
  end
  sort(out)
  return out
end

--- The provider's answer for the challenged indices, chunks read from the
-- file: { root = hex, encoding = "base64", items = { { index = i,
-- chunk = base64, proof = { hex, ... } }, ... } } in the order of
-- `indices`. Proofs come from the sidecar (checked against the root); when
-- it is missing or stale the file is read again and the sidecar rewritten
-- if the file still matches. nil, err when the file is missing (ENOENT),
-- shorter (ETRUNC) or longer (EINVAL) than committed, or no longer matches
-- the commitment (EPROTO).
function _M.prove(path, commitment, indices)
  if type(path) ~= "string" then error("storage.prove: path: expected a string, got " .. type(path), 2) end
  local c, err, code = parse_commitment(commitment)
  if not c then return nil, err, code end
  local ok
  ok, err, code = parse_indices(indices, c.chunks)
  if not ok then return nil, err, code end
  local n, cs = c.chunks, c.chunk_size

  local f
  f, err = io_open(path, "rb")
  if not f then return io_fail(err) end
  local have = f:seek("end")
  if have ~= c.size then
    f:close()
    if have < c.size then
      return fail("ETRUNC", "%s is %d bytes, the commitment is for %d", path, have, c.size)
    end
    return fail("EINVAL", "%s is %d bytes, longer than the committed %d", path, have, c.size)
  end

  local leaves = read_tree(path .. ".tree", n)
  local levels = leaves and build_levels(leaves)
  if not levels or mth(levels, 0, n) ~= c.root then
    -- no sidecar, or one for other data: rebuild it from the file
    local root, scode
    leaves, root, scode = scan(path, cs)
    if not leaves then
      f:close()
      return nil, root, scode
    end
    if root ~= c.root then
      f:close()
      return fail("EPROTO", "%s no longer matches the commitment (root %s, committed %s)", path,
                  hex(root), hex(c.root))
    end
    levels = build_levels(leaves)
    write_atomic(path .. ".tree", concat(leaves))   -- best effort
  end

  local items = {}
  for j = 1, #indices do
    local i = indices[j]
    f:seek("set", i * cs)
    local data = f:read(cs)
    if not data or #data ~= cs then
      f:close()
      return fail("ETRUNC", "%s: short read at chunk %d", path, i)
    end
    items[j] = { index = i, chunk = b64enc(data), proof = hex_list(audit_path(levels, i, 0, n, {})) }
  end
  f:close()
  return { root = hex(c.root), encoding = _M.ENCODING, items = items }
end

--- An untrusted proof: an array of 64-hex-digit strings, decoded; nil if not.
local function decode_proof(p)
  if type(p) ~= "table" or #p > 64 then return nil end
  local r = {}
  for j, h in ipairs(p) do
    local raw = type(h) == "string" and #h == 64 and unhex(h)
    if not raw or #raw ~= 32 then return nil end
    r[j] = raw
  end
  for k in pairs(p) do
    if type(k) ~= "number" or k > #p then return nil end
  end
  return r
end

--- The challenger's check of `answer` for `indices` against `commitment`:
-- true, or false, "REASON: text", "REASON" (REASON one of _M.reasons).
-- opts.key (32 bytes, raw or hex: the consumer's storage key): also
-- require each chunk to be the stream's chunk at its index. The commitment,
-- the indices and the key are the challenger's own: malformed ones raise;
-- a malformed answer is false, "BAD_FORMAT: ...".
function _M.verify(commitment, indices, answer, opts)
  local c, err = parse_commitment(commitment)
  if not c then error("storage.verify: " .. err, 2) end
  local ok
  ok, err = parse_indices(indices, c.chunks)
  if not ok then error("storage.verify: " .. err, 2) end
  if opts ~= nil and type(opts) ~= "table" then error("storage.verify: opts: expected a table", 2) end
  local K
  if opts and opts.key ~= nil then
    K, err = check_key(opts.key, "opts.key")
    if not K then error("storage.verify: " .. err, 2) end
  end
  local n, cs, root = c.chunks, c.chunk_size, c.root

  if type(answer) ~= "table" then return no("BAD_FORMAT", "the answer is %s, not a table", type(answer)) end
  local aroot = type(answer.root) == "string" and unhex(answer.root)
  if not aroot or #aroot ~= 32 then
    return no("BAD_FORMAT", "answer.root is not 64 hex digits")
  end
  if aroot ~= root then
    return no("ROOT_MISMATCH", "the answer is for root %s, the commitment's is %s", answer.root:lower(), hex(root))
  end
  if answer.encoding ~= nil and answer.encoding ~= _M.ENCODING then
    return no("BAD_FORMAT", "answer.encoding %s is not %s", tostring(answer.encoding), _M.ENCODING)
  end
  local items = answer.items
  if type(items) ~= "table" then return no("BAD_FORMAT", "answer.items is not an array") end
  if #items ~= #indices then
    return no("WRONG_INDICES", "%d chunks answered, %d asked", #items, #indices)
  end
  for j = 1, #indices do
    local i, item = indices[j], items[j]
    if type(item) ~= "table" then return no("BAD_FORMAT", "items[%d] is not a table", j) end
    if item.index ~= i then
      return no("WRONG_INDICES", "items[%d] is for chunk %s, chunk %d was asked", j, tostring(item.index), i)
    end
    local data = type(item.chunk) == "string" and b64dec(item.chunk)
    if not data then return no("BAD_FORMAT", "items[%d].chunk is not standard base64", j) end
    local proof = decode_proof(item.proof)
    if not proof then return no("BAD_FORMAT", "items[%d].proof is not an array of 64-hex-digit hashes", j) end
    if #data ~= cs then
      return no("BAD_CHUNK_SIZE", "chunk %d is %d bytes, the commitment's chunks are %d", i, #data, cs)
    end
    if not verify_inclusion(data, i, n, proof, root) then
      return no("BAD_PROOF", "chunk %d does not verify against root %s at index %d of %d", i, hex(root), i, n)
    end
    if K and gen(K, i, cs) ~= data then
      return no("WRONG_DATA", "chunk %d is not the consumer's chunk %d (the commitment is not over its stream)",
                i, i)
    end
  end
  return true
end

return _M
