-- SPDX-License-Identifier: MIT
--- Storage challenges (issue 12, item 1; docs/uptime.md section 10,
-- "Storage challenges").
--
-- At lease start the provider fills a file of the declared size with
-- sequentially encoded data derived from a public seed and commits to it
-- (RFC 6962 root over the chunks). A challenge names k random chunks (from a
-- nonce); the provider answers with the chunks' bytes read from the file and
-- their inclusion proofs, the challenger checks them against the root (and,
-- optionally, that a chunk is the encoding of its predecessor).
--
-- Encoding of chunk i (chunk_size = 32 m bytes, `work` = w):
--
--   prev  = RFC 6962 leaf hash of chunk i-1, SHA-256(0x00 || chunk[i-1]);
--           32 zero bytes for chunk 0
--   x     = SHA-256("WP-STORAGE-F1" || seed (32) || be64(i) || be32(chunk_size)
--                   || be32(work) || prev)
--   x     = SHA-256(x || 992 zero bytes), w times      (the work: 1 KiB
--           messages, 17 compressions each, all depending on x)
--   chunk = b1 || b2 || ... || bm,  b1 = SHA-256(x), b(j+1) = SHA-256(bj)
--
-- so a chunk costs 17 w + m + 2 sequential SHA-256 compressions plus the
-- leaf hash that feeds the next one, and chunk i cannot be made without
-- chunks 0 .. i-1 (or stored hashes of them: see the docs, "What it does
-- not prove"). The work hashes 1 KiB a call so that a call from Lua costs
-- little more than the same compressions in native code.
--
-- Error convention (docs/lua-api.md): a wrong argument type raises; a
-- malformed value or an operational failure returns nil, "ECODE: text",
-- "ECODE"; a check that does not hold returns false, "REASON: text", "REASON".
local wp = require "workproof"

local type, tostring, error, pairs, ipairs = type, tostring, error, pairs, ipairs
local floor, huge = math.floor, math.huge
local char, byte, format = string.char, string.byte, string.format
local concat, sort = table.concat, table.sort
local io_open, os_remove, os_rename = io.open, os.remove, os.rename

local sha256, hex, unhex = wp.sha256, wp.hex, wp.unhex
local leaf_hash, node_hash = wp.merkle.leaf_hash, wp.merkle.node_hash
local verify_inclusion, builder = wp.merkle.verify_inclusion, wp.merkle.builder
local b64enc, b64dec = wp.base64.encode, wp.base64.decode

local _M = {}

_M.VERSION = 1
_M.DEFAULT_CHUNK_SIZE = 4096
--- ~2 s to provision 64 MiB on the reference box (docs/uptime.md has the figures).
_M.DEFAULT_WORK = 64
_M.MAX_CHUNK_SIZE = 16 * 1024 * 1024
_M.MAX_WORK = 100000000
_M.MAX_CHUNKS = 2 ^ 48
_M.ENCODING = "base64"        -- chunk bytes in answers: standard, padded base64
_M.reasons = { "BAD_FORMAT", "ROOT_MISMATCH", "WRONG_INDICES", "BAD_CHUNK_SIZE", "BAD_PROOF",
               "BAD_PREV_PROOF", "NO_PREV", "BAD_ENCODING" }

local TAG_F = "WP-STORAGE-F1"
local TAG_IDX = "WP-STORAGE-IDX1"
local ZERO32 = ("\0"):rep(32)
local WORK_PAD = ("\0"):rep(992)   -- x || WORK_PAD is 1 KiB
local WRITE_BYTES = 256 * 1024      -- buffered before a write
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
-- (wp.sleep(0)) once `slice` seconds have passed since the last yield, so a
-- provider agent keeps beating while it provisions. Elsewhere it is a no-op.
local function slicer(slice, before_yield)
  if not (hosted and wp.in_coroutine()) then return function() end end
  slice = slice or SLICE_S
  local last = clock()
  return function()
    local t = clock()
    if t - last >= slice then
      if before_yield then before_yield() end
      wp.sleep(0)
      last = clock()
    end
  end
end

-- ---- parameters ------------------------------------------------------------

local function check_seed(seed, what)
  if type(seed) ~= "string" then
    return fail("EINVAL", "%s: expected 64 hex digits (32 bytes), got %s", what, type(seed))
  end
  local raw = unhex(seed)
  if not raw or #raw ~= 32 then
    return fail("EINVAL", "%s: expected 64 hex digits (32 bytes), got %q", what, seed:sub(1, 80))
  end
  return raw
end

local function check_chunk_size(cs, what)
  if not is_int(cs, 32, _M.MAX_CHUNK_SIZE) or cs % 32 ~= 0 then
    return fail("EINVAL", "%s: expected a multiple of 32 in 32 .. %d, got %s", what,
                _M.MAX_CHUNK_SIZE, tostring(cs))
  end
  return cs
end

local function check_work(w, what)
  if not is_int(w, 0, _M.MAX_WORK) then
    return fail("EINVAL", "%s: expected an integer 0 .. %d, got %s", what, _M.MAX_WORK, tostring(w))
  end
  return w
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

--- The commitment's fields, decoded; nil, err when malformed.
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
  local p = { root = root, size = size, chunk_size = cs, chunks = n, work = c.work }
  if c.seed ~= nil then
    p.seed, err, code = check_seed(c.seed, "commitment.seed")
    if not p.seed then return nil, err, code end
  end
  if c.work ~= nil then
    p.work, err, code = check_work(c.work, "commitment.work")
    if not p.work then return nil, err, code end
  end
  return p
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

-- ---- the encoding ----------------------------------------------------------

local parts = {}    -- reused by encode (which never yields)

--- F(seed, i, prev): chunk i from the 32-byte raw seed and the 32-byte leaf
-- hash of chunk i-1 (ZERO32 for chunk 0). Costs 17 work + chunk_size/32 + 2
-- SHA-256 compressions, in sequence.
local function encode(seed, i, prev, cs, work)
  local x = sha256(TAG_F .. seed .. be(i, 8) .. be(cs, 4) .. be(work, 4) .. prev)
  for _ = 1, work do x = sha256(x .. WORK_PAD) end
  local m = cs / 32
  for j = 1, m do
    x = sha256(x)
    parts[j] = x
  end
  for j = #parts, m + 1, -1 do parts[j] = nil end
  return concat(parts)
end

local function encoding_opts(opts, fname)
  if opts ~= nil and type(opts) ~= "table" then
    error(fname .. ": opts: expected a table, got " .. type(opts), 3)
  end
  opts = opts or {}
  local seed, err, code = check_seed(opts.seed, "opts.seed")
  if not seed then return nil, err, code end
  local cs
  cs, err, code = check_chunk_size(opts.chunk_size or _M.DEFAULT_CHUNK_SIZE, "opts.chunk_size")
  if not cs then return nil, err, code end
  local work
  work, err, code = check_work(opts.work or _M.DEFAULT_WORK, "opts.work")
  if not work then return nil, err, code end
  return seed, cs, work
end

--- Chunk i given the leaf hash of chunk i-1 (raw 32 bytes; nil or "" for
-- chunk 0). Not part of the agents' API: the one-chunk step F, for checks,
-- specs and benches. opts = { seed = hex, chunk_size =, work = }.
function _M.encode_chunk(i, prev_leaf_hash, opts)
  local seed, cs, work = encoding_opts(opts, "storage.encode_chunk")
  if not seed then return nil, cs, work end
  if not is_int(i, 0, 2 ^ 53 - 1) then return fail("EINVAL", "index %s is not a chunk index", tostring(i)) end
  prev_leaf_hash = prev_leaf_hash or ""
  if i == 0 and prev_leaf_hash == "" then prev_leaf_hash = ZERO32 end
  if type(prev_leaf_hash) ~= "string" or #prev_leaf_hash ~= 32 then
    error("storage.encode_chunk: prev_leaf_hash: expected 32 raw bytes", 2)
  end
  return encode(seed, i, prev_leaf_hash, cs, work)
end

--- Chunk i made from the seed alone, as a provider without the file must:
-- chunks 0 .. i in order (i + 1 encodings). Not part of the agents' API:
-- the "re-derive on demand" cost, for specs and benches.
function _M.rederive(i, opts)
  local seed, cs, work = encoding_opts(opts, "storage.rederive")
  if not seed then return nil, cs, work end
  if not is_int(i, 0, 2 ^ 53 - 1) then return fail("EINVAL", "index %s is not a chunk index", tostring(i)) end
  local prev, c = ZERO32, nil
  for k = 0, i do
    c = encode(seed, k, prev, cs, work)
    prev = leaf_hash(c)
  end
  return c
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
  local per_read = math.max(1, floor(READ_BYTES / cs))
  local hashes, b, n = {}, builder(), size / cs
  local i = 0
  while i < n do
    local want = math.min(per_read, n - i)
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

-- ---- the API -------------------------------------------------------------------

--- Fill `path` with `size` bytes of encoded chunks, write `path .. ".tree"`
-- (the chunks' leaf hashes, 32 raw bytes each, in order) and return the
-- commitment { root, size, chunk_size, chunks, seed, work } (hex root and
-- seed). opts: seed (64 hex digits, required), chunk_size (default 4096, a
-- multiple of 32), work (default DEFAULT_WORK), slice (seconds between
-- yields to the host loop, default 0.02). Both files are written as
-- NAME.part and renamed into place at the end.
function _M.provision(path, size, opts)
  if type(path) ~= "string" then error("storage.provision: path: expected a string, got " .. type(path), 2) end
  local seed, cs, work = encoding_opts(opts, "storage.provision")
  if not seed then return nil, cs, work end
  local ok, err, code = check_size(size, cs, "size")
  if not ok then return nil, err, code end
  local n = size / cs

  local tmp = path .. ".part"
  local f
  f, err = io_open(tmp, "wb")
  if not f then return io_fail(err) end

  local buf, nbuf, tree, b = {}, 0, {}, builder()
  local function flush()
    if nbuf == 0 then return true end
    local wok, werr = f:write(concat(buf, "", 1, nbuf))
    for j = 1, nbuf do buf[j] = nil end
    nbuf = 0
    return wok, werr
  end
  local step = slicer(opts.slice)
  local per_write = math.max(1, floor(WRITE_BYTES / cs))
  local prev = ZERO32
  for i = 0, n - 1 do
    local c = encode(seed, i, prev, cs, work)
    prev = leaf_hash(c)
    b:append_hash(prev)
    tree[i + 1] = prev
    nbuf = nbuf + 1
    buf[nbuf] = c
    if nbuf >= per_write then
      ok, err = flush()
      if not ok then break end
    end
    step()
  end
  if ok then ok, err = flush() end
  if ok then ok, err = f:close() else f:close() end
  if not ok then
    os_remove(tmp)
    return io_fail(err)
  end
  ok, err, code = write_atomic(path .. ".tree", concat(tree))
  if not ok then
    os_remove(tmp)
    return nil, err, code
  end
  ok, err = os_rename(tmp, path)
  if not ok then
    os_remove(tmp)
    return io_fail(err)
  end
  return { root = hex(b:root()), size = size, chunk_size = cs, chunks = n, seed = hex(seed), work = work }
end

--- The commitment of the existing file at `path` (reads it all). opts:
-- chunk_size (default 4096); seed and work, copied into the commitment when
-- given (they cannot be read from the file); slice as for provision.
function _M.commit(path, opts)
  if type(path) ~= "string" then error("storage.commit: path: expected a string, got " .. type(path), 2) end
  if opts ~= nil and type(opts) ~= "table" then error("storage.commit: opts: expected a table", 2) end
  opts = opts or {}
  local cs, err, code = check_chunk_size(opts.chunk_size or _M.DEFAULT_CHUNK_SIZE, "opts.chunk_size")
  if not cs then return nil, err, code end
  local seed, work
  if opts.seed ~= nil then
    seed, err, code = check_seed(opts.seed, "opts.seed")
    if not seed then return nil, err, code end
  end
  if opts.work ~= nil then
    work, err, code = check_work(opts.work, "opts.work")
    if not work then return nil, err, code end
  end
  local hashes, root, size = scan(path, cs, opts.slice)
  if not hashes then return nil, root, size end
  return { root = hex(root), size = size, chunk_size = cs, chunks = #hashes,
           seed = seed and hex(seed) or nil, work = work }
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
-- chunk = base64, proof = { hex, ... }, prev = { chunk = base64,
-- proof = { hex, ... } } (chunk i-1, for i > 0) }, ... } } in the order of
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

  local function chunk_at(i)
    f:seek("set", i * cs)
    local data = f:read(cs)
    if not data or #data ~= cs then return nil end
    return b64enc(data)
  end
  local items = {}
  for j = 1, #indices do
    local i = indices[j]
    local item = { index = i, chunk = chunk_at(i), proof = hex_list(audit_path(levels, i, 0, n, {})) }
    if i > 0 then
      item.prev = { chunk = chunk_at(i - 1), proof = hex_list(audit_path(levels, i - 1, 0, n, {})) }
    end
    if not item.chunk or (item.prev and not item.prev.chunk) then
      f:close()
      return fail("ETRUNC", "%s: short read at chunk %d", path, i)
    end
    items[j] = item
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

--- An untrusted chunk with its proof; returns bytes, proof or nil, reason.
local function decode_item(t, what)
  if type(t) ~= "table" then return nil, what .. " is not a table" end
  local data = type(t.chunk) == "string" and b64dec(t.chunk)
  if not data then return nil, what .. ".chunk is not standard base64" end
  local proof = decode_proof(t.proof)
  if not proof then return nil, what .. ".proof is not an array of 64-hex-digit hashes" end
  return data, proof
end

--- The challenger's check of `answer` for `indices` against `commitment`:
-- true, or false, "REASON: text", "REASON" (REASON one of _M.reasons).
-- opts.check_encoding: also require, for each index i, chunk i =
-- F(seed, i, leaf hash of chunk i-1) with chunk i-1 (for i > 0) carried in
-- the answer with its own inclusion proof; needs commitment.seed and
-- commitment.work. The commitment and the indices are the challenger's own:
-- malformed ones raise; a malformed answer is false, "BAD_FORMAT: ...".
function _M.verify(commitment, indices, answer, opts)
  local c, err = parse_commitment(commitment)
  if not c then error("storage.verify: " .. err, 2) end
  local ok
  ok, err = parse_indices(indices, c.chunks)
  if not ok then error("storage.verify: " .. err, 2) end
  if opts ~= nil and type(opts) ~= "table" then error("storage.verify: opts: expected a table", 2) end
  local check = opts and opts.check_encoding
  if check and not (c.seed and c.work) then
    error("storage.verify: opts.check_encoding needs commitment.seed and commitment.work", 2)
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
    local data, proof = decode_item(item, ("items[%d]"):format(j))
    if not data then return no("BAD_FORMAT", "%s", proof) end
    if #data ~= cs then
      return no("BAD_CHUNK_SIZE", "chunk %d is %d bytes, the commitment's chunks are %d", i, #data, cs)
    end
    if not verify_inclusion(data, i, n, proof, root) then
      return no("BAD_PROOF", "chunk %d does not verify against root %s at index %d of %d", i, hex(root), i, n)
    end
    local prev_hash = ZERO32
    if item.prev ~= nil and i > 0 then
      local pdata, pproof = decode_item(item.prev, ("items[%d].prev"):format(j))
      if not pdata then return no("BAD_FORMAT", "%s", pproof) end
      if #pdata ~= cs then
        return no("BAD_CHUNK_SIZE", "chunk %d (prev of %d) is %d bytes, the commitment's chunks are %d",
                  i - 1, i, #pdata, cs)
      end
      if not verify_inclusion(pdata, i - 1, n, pproof, root) then
        return no("BAD_PREV_PROOF", "chunk %d (prev of %d) does not verify against root %s", i - 1, i, hex(root))
      end
      prev_hash = leaf_hash(pdata)
    elseif check and i > 0 then
      return no("NO_PREV", "chunk %d comes without chunk %d: its encoding cannot be checked", i, i - 1)
    end
    if check and encode(c.seed, i, prev_hash, cs, c.work) ~= data then
      return no("BAD_ENCODING", "chunk %d is not F(seed, %d, H(chunk %d)) for this seed and work %d",
                i, i, i - 1, c.work)
    end
  end
  return true
end

return _M
