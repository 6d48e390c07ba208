-- SPDX-License-Identifier: MIT
--- Storage challenges (lua/workproof/uptime/storage.lua; docs/uptime.md
-- section 10, "Storage challenges"): the consumer's keyed stream and its
-- root, the provider's side of the upload (in order, resumable, refused
-- when the root differs), the challenge indices, the provider's answer and
-- the challenger's check, and each way a provider without the data fails —
-- including one that kept the leaf hashes, which the sequential encoding
-- this replaced did not stop. Small files (1 MiB and less) keep it fast.
local wp = require "workproof"
local h = require "helpers"
local storage = require "workproof.uptime.storage"

local M = wp.merkle
local hex, sha256 = wp.hex, wp.sha256
local b64 = wp.base64

local MiB = 1024 * 1024
local SEED = hex(sha256("consumer seed"))          -- the consumer's identity seed
local LEASE = hex(sha256("a lease"))
local KEY = storage.key(SEED, LEASE)
local OTHER_KEY = storage.key(SEED, hex(sha256("another lease")))

local dir
setup(function() dir = h.tmpdir() end)
teardown(function() if dir then os.execute("rm -rf " .. h.q(dir)) end end)

local count = 0
local function fresh(name)
  count = count + 1
  return ("%s/%s-%d.dat"):format(dir, name or "f", count)
end

local function provision(size, opts, name)
  local path = fresh(name)
  opts = opts or {}
  local c = assert(storage.provision(path, size, { key = opts.key or KEY, chunk_size = opts.chunk_size,
                                                   slice = opts.slice }))
  return path, c
end

local function read_all(path) return h.read(path) end

local function write_all(path, s)
  local f = assert(io.open(path, "wb"))
  assert(f:write(s))
  assert(f:close())
end

local function file_size(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local n = f:seek("end")
  f:close()
  return n
end

local function chunks_of(path, cs)
  local data, t = read_all(path), {}
  for i = 1, #data / cs do t[i] = data:sub((i - 1) * cs + 1, i * cs) end
  return t
end

local function nonce(s) return hex(sha256("nonce " .. tostring(s))) end

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return c
end

local function be(n, k)
  local t = {}
  for j = k, 1, -1 do t[j] = n % 256; n = math.floor(n / 256) end
  return string.char(unpack(t))
end

describe("the consumer's stream: storage.key, generate, slices, root", function()
  it("derives the key from the consumer's seed and the lease, and each changes it", function()
    assert.equal(hex(sha256("workproof-storage-key" .. wp.unhex(SEED) .. wp.unhex(LEASE))), KEY)
    assert.equal(KEY, storage.key(wp.unhex(SEED), wp.unhex(LEASE)))   -- raw or hex
    assert.are_not.equal(KEY, OTHER_KEY)
    assert.are_not.equal(KEY, storage.key(hex(sha256("another consumer")), LEASE))
    local ok, err, code = storage.key("zz", LEASE)
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("seed: expected 32 bytes", err, 1, true)
  end)

  it("makes chunk i as the docs define it, deterministic, different by key, index and chunk size", function()
    local c = assert(storage.generate(KEY, 5, 1024))
    assert.equal(1024, #c)
    assert.equal(c, storage.generate(wp.unhex(KEY), 5, 1024))
    -- by hand: k_i = BLAKE2b-256(K, tag || be32(cs) || be64(i)); blocks BLAKE2b-512(k_i, be32(j))
    local ki = wp.blake2b("WP-STORAGE-D1" .. be(1024, 4) .. be(5, 8), 32, wp.unhex(KEY))
    local parts = {}
    for j = 0, 15 do parts[j + 1] = wp.blake2b(be(j, 4), 64, ki) end
    assert.equal(table.concat(parts), c)
    assert.are_not.equal(c, storage.generate(KEY, 6, 1024))
    assert.are_not.equal(c, storage.generate(OTHER_KEY, 5, 1024))
    assert.are_not.equal(c, storage.generate(KEY, 5, 2048):sub(1, 1024))
    assert.equal(storage.DEFAULT_CHUNK_SIZE, #storage.generate(KEY, 0))
    local ok, err = storage.generate(KEY, 0, 1000)
    assert.is_nil(ok)
    assert.matches("chunk_size: expected a multiple of 64", err, 1, true)
    assert.matches("key: expected 32 bytes", select(2, storage.generate("abc", 0)), 1, true)
  end)

  -- the key and root were cross-checked with an independent transcription
  -- of docs/uptime.md in Python (hashlib's sha256 and keyed blake2b)
  it("pins the format: a fixed vector", function()
    local key = storage.key(hex(sha256("workproof storage vector seed")), hex(sha256("workproof storage vector lease")))
    assert.equal("d038eab40cee6977d1837f7741b1fe9d05b18a4cd15dfca6edd974da10e6c9bc", key)
    local c = assert(storage.root(key, 8192, { chunk_size = 1024 }))
    assert.same({ root = "7129bae1cb25db91f30ee0a995d8612983c36e63c529d485c78192974ea40de0", size = 8192,
                  chunk_size = 1024, chunks = 8 }, c)
    assert.equal("dcd5eba59cf5588c73ce1e074db1f8f4", hex(storage.generate(key, 3, 1024)):sub(1, 32))
  end)

  it("slices: whole chunks in order, from any offset on; the root is RFC 6962's over every chunk", function()
    local size, cs = 64 * 1024, 2048
    local chunks = {}
    for i = 0, size / cs - 1 do chunks[i + 1] = storage.generate(KEY, i, cs) end
    local got, offs = {}, {}
    local c = assert(storage.slices(KEY, size, { chunk_size = cs, bytes = 5000 }, function(off, data)
      offs[#offs + 1] = off
      got[#got + 1] = data
      assert.equal(0, #data % cs)
      return true
    end))
    assert.equal(table.concat(chunks), table.concat(got))
    assert.same({ 0, 4096, 8192 }, { offs[1], offs[2], offs[3] })   -- 5000 bytes: 2 chunks a slice
    assert.same({ root = hex(M.root(chunks)), size = size, chunk_size = cs, chunks = 32 }, c)
    assert.same(c, storage.root(KEY, size, { chunk_size = cs }))
    -- from an offset (rounded down to a chunk): only the rest is handed over, the root is the same
    got = {}
    local c2 = assert(storage.slices(KEY, size, { chunk_size = cs, from = 10 * cs + 7 }, function(off, data)
      got[#got + 1] = { off, data }
      return true
    end))
    assert.same(c, c2)
    assert.equal(1, #got)
    assert.equal(10 * cs, got[1][1])
    assert.equal(table.concat(chunks, "", 11), got[1][2])
    -- fn stops it
    local ok, err, code = storage.slices(KEY, size, { chunk_size = cs, bytes = cs }, function(off)
      if off >= 3 * cs then return nil, "the network went away", "EIO" end
      return true
    end)
    assert.is_nil(ok)
    assert.equal("the network went away", err)
    assert.equal("EIO", code)
    -- malformed
    assert.matches("size 1000 is not a multiple of chunk_size 4096", select(2, storage.root(KEY, 1000)), 1, true)
    assert.matches("opts.from: expected an integer", select(2, storage.slices(KEY, 4096, { from = 8192 },
      function() return true end)), 1, true)
    assert.has_error(function() storage.slices(KEY, 4096, "opts") end)
  end)

  it("yields to the host loop between slices when in a host coroutine #host", function()
    assert.is_true(wp.in_coroutine())
    local ticks, done = 0, false
    wp.spawn(function()
      while not done do
        ticks = ticks + 1
        wp.sleep(0)
      end
    end)
    local _, c = provision(MiB, { slice = 0.001 })
    done = true
    assert.equal(256, c.chunks)
    assert.is_true(ticks >= 3, "the loop ran " .. ticks .. " times while provisioning")
    -- and it runs outside one too (a plain coroutine: no yielding to the loop)
    local co = coroutine.create(function() return storage.root(KEY, 64 * 1024) end)
    local ok, c2 = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal(16, c2.chunks)
  end)
end)

describe("the provider's side: receive, received, finish, provision, commit", function()
  local function wanted(size, cs) return { size = size, chunk_size = cs or 4096 } end

  it("provision (upload and commit, locally) writes the data, its sidecar, and the consumer's root", function()
    local path, c = provision(MiB)
    assert.same(storage.root(KEY, MiB), c)
    assert.equal(MiB, file_size(path))
    assert.equal(256 * 32, file_size(path .. ".tree"))
    assert.is_nil(file_size(path .. ".part"))
    assert.is_nil(file_size(path .. ".tree.part"))
    local chunks = chunks_of(path, 4096)
    local tree = read_all(path .. ".tree")
    for i = 1, #chunks do
      assert.equal(storage.generate(KEY, i - 1), chunks[i])
      assert.equal(M.leaf_hash(chunks[i]), tree:sub(i * 32 - 31, i * 32))
    end
    assert.same(c, storage.commit(path))
    assert.same(MiB, storage.received(path, wanted(MiB)))
  end)

  it("takes slices in order only: another offset is ERANGE with what it holds", function()
    local path, w = fresh(), wanted(64 * 1024)
    local a = storage.generate(KEY, 0) .. storage.generate(KEY, 1)
    assert.equal(0, storage.received(path, w))
    assert.equal(8192, storage.receive(path, w, 0, a))
    assert.equal(8192, storage.received(path, w))
    local ok, err, code, held = storage.receive(path, w, 0, a)      -- again
    assert.is_nil(ok)
    assert.equal("ERANGE", code)
    assert.equal(8192, held)
    assert.matches("a slice at offset 0, 8192 bytes are held", err, 1, true)
    assert.equal("ERANGE", select(3, storage.receive(path, w, 16384, a)))   -- a gap
    assert.equal("EINVAL", select(3, storage.receive(path, w, 8192, "x")))  -- not whole chunks
    assert.equal("EINVAL", select(3, storage.receive(path, w, 8192, ("\0"):rep(64 * 1024))))   -- past the size
    assert.equal("EINVAL", select(3, storage.receive(path, wanted(1000), 0, a)))
    assert.has_error(function() storage.receive(path, w, 0, 42) end)
  end)

  it("resumes an interrupted upload where the provider's copy ends, and commits the consumer's root", function()
    local path, size = fresh(), 256 * 1024
    local w = wanted(size)
    -- the transfer breaks after three slices of 16 KiB
    local n = 0
    local ok, err = storage.slices(KEY, size, { bytes = 16384 }, function(off, data)
      n = n + 1
      if n > 3 then return nil, "connection reset" end
      return storage.receive(path, w, off, data)
    end)
    assert.is_nil(ok)
    assert.equal("connection reset", err)
    assert.equal(3 * 16384, storage.received(path, w))
    -- a crash in the middle of a slice leaves part of a chunk: held rounds down, the rest is sent again
    local f = assert(io.open(path .. ".part", "ab"))
    f:write(storage.generate(KEY, 12):sub(1, 1000))
    f:close()
    assert.equal(3 * 16384, storage.received(path, w))
    -- commit before the end: short
    local c, cerr, ccode = storage.finish(path, w, storage.root(KEY, size).root)
    assert.is_nil(c)
    assert.equal("ETRUNC", ccode)
    assert.matches("of 262144 bytes uploaded", cerr, 1, true)
    -- resumed from what the provider says it holds
    local from, sent = storage.received(path, w), 0
    local expect = assert(storage.slices(KEY, size, { bytes = 16384, from = from }, function(off, data)
      sent = sent + #data
      return storage.receive(path, w, off, data)
    end))
    assert.equal(size - 3 * 16384, sent)
    c = assert(storage.finish(path, w, expect.root))
    assert.same(expect, c)
    assert.same(storage.root(KEY, size), c)
    assert.equal(size, file_size(path))
    assert.is_nil(file_size(path .. ".part"))
    for i, chunk in ipairs(chunks_of(path, 4096)) do assert.equal(storage.generate(KEY, i - 1), chunk) end
  end)

  it("refuses to commit a root that is not the uploaded data's, and drops the upload", function()
    local path, size = fresh(), 64 * 1024
    local w = wanted(size)
    local function upload(off, data) return storage.receive(path, w, off, data) end
    local good = assert(storage.slices(KEY, size, {}, upload))
    -- the consumer's root for other data (another key): refused
    local c, err, code = storage.finish(path, w, storage.root(OTHER_KEY, size).root)
    assert.is_nil(c)
    assert.equal("EPROTO", code)
    assert.matches(("the uploaded data's root is %s, not the consumer's"):format(good.root), err, 1, true)
    assert.is_nil(file_size(path .. ".part"))
    assert.is_nil(file_size(path))
    assert.equal(0, storage.received(path, w))
    -- data changed on the provider's disk before the commit: refused likewise
    assert(storage.slices(KEY, size, {}, upload))
    local part = read_all(path .. ".part")
    write_all(path .. ".part", part:sub(1, 100) .. "X" .. part:sub(102))
    assert.equal("EPROTO", select(3, storage.finish(path, w, good.root)))
    assert.equal("EINVAL", select(3, storage.finish(path, w, "abc")))
    assert.equal("ETRUNC", select(3, storage.finish(path, w, good.root)))   -- nothing left
    -- a part longer than wanted (left by another size) is dropped likewise
    write_all(path .. ".part", ("\0"):rep(size + 4096))
    assert.equal(size, storage.received(path, w))
    assert.equal("EPROTO", select(3, storage.finish(path, w, good.root)))
    assert.equal(0, storage.received(path, w))
  end)

  it("commit reads an existing file's commitment; gives clear errors", function()
    local ok, e2, code2 = storage.commit(dir .. "/missing")
    assert.is_nil(ok)
    assert.equal("ENOENT", code2)
    assert.matches("^ENOENT: ", e2)
    local odd = fresh()
    write_all(odd, ("x"):rep(5000))
    ok, e2, code2 = storage.commit(odd)
    assert.is_nil(ok)
    assert.equal("EINVAL", code2)
    assert.matches("5000 bytes, not a positive multiple of chunk_size 4096", e2, 1, true)
    local _, e3, c3 = storage.provision(dir .. "/no/such/dir/x", 4096, { key = KEY })
    assert.equal("ENOENT", c3)
    assert.matches("^ENOENT: .*No such file or directory", e3)
    assert.equal("EINVAL", select(3, storage.provision(fresh(), MiB + 100, { key = KEY })))
    assert.equal("EINVAL", select(3, storage.provision(fresh(), MiB, { key = "zz" })))
    assert.has_error(function() storage.provision(42, MiB, { key = KEY }) end)
    assert.has_error(function() storage.provision(fresh(), MiB, "opts") end)
  end)
end)

describe("storage.indices", function()
  it("are deterministic, distinct, in range and sorted", function()
    for s = 1, 50 do
      local n = 1 + (s * 37) % 300
      local k = 1 + s % math.min(n, 12)
      local a = assert(storage.indices(nonce(s), n, k))
      assert.same(a, storage.indices(nonce(s), n, k))
      assert.equal(k, #a)
      local seen = {}
      for j, i in ipairs(a) do
        assert.is_true(i >= 0 and i < n and i == math.floor(i))
        assert.is_nil(seen[i])
        seen[i] = true
        if j > 1 then assert.is_true(a[j - 1] < i) end
      end
    end
    assert.are_not.same(storage.indices(nonce(1), 100000, 8), storage.indices(nonce(2), 100000, 8))
    -- k = chunks: every index once
    local all = assert(storage.indices(nonce(3), 37, 37))
    for i = 0, 36 do assert.equal(i, all[i + 1]) end
    -- the nonce is hex of 16 .. 64 bytes, either case, 0x allowed
    assert.same(storage.indices(nonce(4), 500, 8), storage.indices("0x" .. nonce(4):upper(), 500, 8))
    assert.is_table(storage.indices(("00"):rep(16), 10, 3))
    assert.is_table(storage.indices(("00"):rep(64), 10, 3))
    -- a fixed vector (cross-checked like the stream's)
    assert.same({ 388, 6529, 7987, 8930, 11414, 11650, 14060, 16274 },
      storage.indices(hex(sha256("workproof storage vector")), 16384, 8))
  end)

  it("are roughly uniform", function()
    local hits = {}
    for i = 0, 15 do hits[i] = 0 end
    for s = 1, 1600 do
      local a = storage.indices(nonce(s), 16, 2)
      hits[a[1]], hits[a[2]] = hits[a[1]] + 1, hits[a[2]] + 1
    end
    for i = 0, 15 do assert.is_true(hits[i] > 130 and hits[i] < 270, "index " .. i .. ": " .. hits[i]) end
  end)

  it("refuse malformed input with clear errors", function()
    local function err(...)
      local ok, e, code = storage.indices(...)
      assert.is_nil(ok)
      assert.equal("EINVAL", code)
      return e
    end
    assert.matches("nonce: non%-hex character", err(("zz"):rep(32), 10, 2))
    assert.matches("nonce: odd number of hex digits", err("abc", 10, 2))
    assert.matches("nonce: expected 16 .. 64 bytes", err(("ab"):rep(15), 10, 2))
    assert.matches("nonce: expected 16 .. 64 bytes", err(("ab"):rep(65), 10, 2))
    assert.matches("k = 11 is more than chunks = 10", err(nonce(1), 10, 11), 1, true)
    assert.matches("k: expected a positive integer", err(nonce(1), 10, 0), 1, true)
    assert.matches("k: expected a positive integer", err(nonce(1), 10, 2.5), 1, true)
    assert.matches("chunks: expected an integer", err(nonce(1), 0, 1), 1, true)
    assert.has_error(function() storage.indices(nil, 10, 2) end)
    assert.has_error(function() storage.indices(nonce(1), "10", 2) end)
  end)
end)

describe("storage.prove and storage.verify", function()
  local path, c
  setup(function() path, c = provision(MiB) end)

  it("round-trip for random nonces: proofs against the root, chunks against the consumer's key", function()
    for s = 1, 30 do
      local idx = assert(storage.indices(nonce(s), c.chunks, 8))
      local a = assert(storage.prove(path, c, idx))
      assert.equal(c.root, a.root)
      assert.equal("base64", a.encoding)
      assert.equal(8, #a.items)
      for j, item in ipairs(a.items) do
        assert.equal(idx[j], item.index)
        assert.equal(storage.generate(KEY, item.index), b64.decode(item.chunk))
        assert.equal(8, #item.proof)      -- 256 leaves: log2
        assert.is_nil(item.prev)
      end
      assert.is_true(storage.verify(c, idx, a))
      assert.is_true(storage.verify(c, idx, a, { key = KEY }))
      assert.is_true(storage.verify(c, idx, a, { key = wp.unhex(KEY) }))
    end
  end)

  it("answers with RFC 6962 audit paths: those of wp.merkle.inclusion_proof", function()
    for _, n in ipairs({ 1, 2, 3, 5, 7, 13, 16, 21 }) do
      local p, cn = provision(n * 64, { chunk_size = 64 })
      local chunks = chunks_of(p, 64)
      local all = {}
      for i = 0, n - 1 do all[i + 1] = i end
      local a = assert(storage.prove(p, cn, all))
      for i = 0, n - 1 do
        local want = assert(M.inclusion_proof(chunks, i))
        local got = {}
        for j, x in ipairs(a.items[i + 1].proof) do got[j] = wp.unhex(x) end
        assert.same(want, got)
      end
      assert.is_true(storage.verify(cn, all, a, { key = KEY }))
    end
  end)

  it("fails to prove when the file was deleted", function()
    local p, cp = provision(64 * 1024)
    os.remove(p)
    local ok, err, code = storage.prove(p, cp, { 0, 3 })
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("^ENOENT: .*No such file", err)
  end)

  it("fails on a truncated file; what is left of a chunk does not verify", function()
    local p, cp = provision(64 * 1024)
    local idx = { 3, 15 }
    local honest = assert(storage.prove(p, cp, idx))
    assert(os.execute(("truncate -s %d %s"):format(64 * 1024 - 1000, h.q(p))))
    local ok, err, code = storage.prove(p, cp, idx)
    assert.is_nil(ok)
    assert.equal("ETRUNC", code)
    assert.matches("64536 bytes, the commitment is for 65536", err, 1, true)
    -- a provider answering with what it still has: the last chunk is short
    local a = copy(honest)
    a.items[2].chunk = b64.encode(read_all(p):sub(15 * 4096 + 1))
    local v, reason, rcode = storage.verify(cp, idx, a, { key = KEY })
    assert.is_false(v)
    assert.equal("BAD_CHUNK_SIZE", rcode)
    assert.matches("BAD_CHUNK_SIZE: chunk 15 is 3096 bytes, the commitment's chunks are 4096", reason, 1, true)
    -- a longer file is not the committed one either
    assert(os.execute(("truncate -s %d %s"):format(64 * 1024 + 4096, h.q(p))))
    ok, err, code = storage.prove(p, cp, idx)
    assert.is_nil(ok)
    assert.equal("EINVAL", code)
    assert.matches("longer than the committed", err, 1, true)
  end)

  it("a zeroed or sparse file of the right size does not verify (with the real sidecar) or prove (without)", function()
    local p, cp = provision(MiB)
    local tree = read_all(p .. ".tree")
    os.remove(p)
    assert(os.execute(("truncate -s %d %s"):format(MiB, h.q(p))))
    assert.equal(MiB, file_size(p))
    local idx = storage.indices(nonce("sparse"), cp.chunks, 8)
    local a = assert(storage.prove(p, cp, idx))
    local ok, reason, code = storage.verify(cp, idx, a, { key = KEY })
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches(("BAD_PROOF: chunk %d does not verify against root %s"):format(idx[1], cp.root), reason, 1, true)
    -- without the sidecar the provider cannot even make proofs
    os.remove(p .. ".tree")
    local r, err, ecode = storage.prove(p, cp, idx)
    assert.is_nil(r)
    assert.equal("EPROTO", ecode)
    assert.matches("no longer matches the commitment", err, 1, true)
    -- and its sidecar was not replaced by the zero file's
    assert.is_nil(file_size(p .. ".tree"))
    write_all(p .. ".tree", tree)
  end)

  it("one flipped byte in a challenged chunk does not verify", function()
    local p, cp = provision(MiB)
    local idx = storage.indices(nonce("flip"), cp.chunks, 8)
    local target = idx[5]
    local data = read_all(p)
    local off = target * 4096 + 1234
    write_all(p, data:sub(1, off) .. string.char(bit.bxor(data:byte(off + 1), 0x01)) .. data:sub(off + 2))
    local a = assert(storage.prove(p, cp, idx))
    local ok, reason, code = storage.verify(cp, idx, a, { key = KEY })
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches(("chunk %d does not verify"):format(target), reason, 1, true)
    -- a chunk not challenged would have passed: the other seven are fine
    local rest = {}
    for j = 1, 8 do if j ~= 5 then rest[#rest + 1] = idx[j] end end
    assert.is_true(storage.verify(cp, rest, assert(storage.prove(p, cp, rest)), { key = KEY }))
  end)

  it("a chunk from another index does not verify", function()
    local idx = { 10, 200 }
    local a = assert(storage.prove(path, c, idx))
    local other = assert(storage.prove(path, c, { 11, 201 }))
    -- the bytes of chunk 11 with chunk 10's proof
    local b = copy(a)
    b.items[1].chunk = other.items[1].chunk
    local ok, reason, code = storage.verify(c, idx, b)
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches("chunk 10 does not verify", reason, 1, true)
    -- chunk 11 with its own proof, relabelled as chunk 10
    b = copy(a)
    b.items[1] = copy(other.items[1])
    b.items[1].index = 10
    ok, reason, code = storage.verify(c, idx, b)
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches("^BAD_PROOF: chunk 10", reason)
    -- the answer to another challenge
    ok, reason, code = storage.verify(c, idx, other)
    assert.is_false(ok)
    assert.equal("WRONG_INDICES", code)
    assert.matches("items[1] is for chunk 11, chunk 10 was asked", reason, 1, true)
  end)

  it("a proof for another root does not verify", function()
    local p2, c2 = provision(MiB, { key = OTHER_KEY })
    local idx = storage.indices(nonce("root"), c.chunks, 8)
    local a = assert(storage.prove(p2, c2, idx))
    local ok, reason, code = storage.verify(c, idx, a)
    assert.is_false(ok)
    assert.equal("ROOT_MISMATCH", code)
    assert.matches(("the answer is for root %s, the commitment's is %s"):format(c2.root, c.root), reason, 1, true)
    a.root = c.root:upper()
    ok, reason, code = storage.verify(c, idx, a)
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches("^BAD_PROOF: ", reason)
    -- proving the other file against this commitment is refused outright
    local r, err, ecode = storage.prove(p2, c, idx)
    assert.is_nil(r)
    assert.equal("EPROTO", ecode)
    assert.matches("no longer matches", err, 1, true)
  end)

  it("a chunk of the wrong size does not verify", function()
    local idx = { 0, 77 }
    local a = assert(storage.prove(path, c, idx))
    for _, cut in ipairs({ function(s) return s:sub(1, 4095) end, function(s) return s .. "\0" end,
                           function() return "" end }) do
      local b = copy(a)
      b.items[2].chunk = b64.encode(cut(b64.decode(b.items[2].chunk)))
      local ok, reason, code = storage.verify(c, idx, b)
      assert.is_false(ok)
      assert.equal("BAD_CHUNK_SIZE", code)
      assert.matches("^BAD_CHUNK_SIZE: chunk 77 is %d+ bytes, the commitment's chunks are 4096", reason)
    end
    -- a commitment to 2048-byte chunks of the same size, answered with 4096-byte chunks
    local c2 = copy(c)
    c2.chunk_size, c2.chunks = 2048, 512
    local ok, _, code = storage.verify(c2, idx, a)
    assert.is_false(ok)
    assert.equal("BAD_CHUNK_SIZE", code)
  end)

  it("answers that are not for the challenge or not well formed are false with a reason", function()
    local idx = storage.indices(nonce("shape"), c.chunks, 4)
    local a = assert(storage.prove(path, c, idx))
    local function reason(b, opts)
      local ok, r, code = storage.verify(c, idx, b, opts)
      assert.is_false(ok)
      assert.equal(r:match("^(%u[%u_]*):"), code)
      return code, r
    end
    local b = copy(a); table.remove(b.items)
    assert.equal("WRONG_INDICES", (reason(b)))
    b = copy(a); b.items[1], b.items[2] = b.items[2], b.items[1]
    assert.equal("WRONG_INDICES", (reason(b)))
    assert.equal("BAD_FORMAT", (reason("nope")))
    assert.equal("BAD_FORMAT", (reason({ root = c.root })))
    b = copy(a); b.root = "xyz"
    assert.equal("BAD_FORMAT", (reason(b)))
    b = copy(a); b.encoding = "hex"
    assert.equal("BAD_FORMAT", (reason(b)))
    b = copy(a); b.items[1].chunk = "not base64!"
    assert.equal("BAD_FORMAT", (reason(b)))
    b = copy(a); b.items[1].proof = { "00" }
    assert.equal("BAD_FORMAT", (reason(b)))
    b = copy(a); b.items[1].proof[1] = ("00"):rep(32)
    assert.equal("BAD_PROOF", (reason(b)))
    b = copy(a); table.remove(b.items[1].proof)
    assert.equal("BAD_PROOF", (reason(b)))
    -- the challenger's own inputs must be well formed
    assert.has_error(function() storage.verify({ root = "x" }, idx, a) end)
    assert.has_error(function() storage.verify(c, { -1 }, a) end)
    assert.has_error(function() storage.verify(c, { 3, 3 }, a) end)
    assert.has_error(function() storage.verify(c, idx, a, "key") end)
    assert.has_error(function() storage.verify(c, idx, a, { key = "short" }) end)
  end)

  it("the key check catches a commitment over data that is not the consumer's stream", function()
    -- the provider's own random data, committed honestly (the agents refuse
    -- such a commitment at once: its root is not the consumer's)
    local p = fresh()
    local parts = {}
    for i = 1, 64 do parts[i] = wp.blake2b(tostring(i), 64):rep(64) end
    write_all(p, table.concat(parts))
    local cj = assert(storage.commit(p))
    local idx = storage.indices(nonce("junk"), cj.chunks, 8)
    local a = assert(storage.prove(p, cj, idx))
    assert.is_true(storage.verify(cj, idx, a))    -- the proofs hold ...
    local ok, reason, code = storage.verify(cj, idx, a, { key = KEY })
    assert.is_false(ok)                           -- ... the data is not the consumer's
    assert.equal("WRONG_DATA", code)
    assert.matches(("chunk %d is not the consumer's chunk %d"):format(idx[1], idx[1]), reason, 1, true)
    -- the same data under another lease's key: likewise
    local p2, c2 = provision(256 * 1024, { key = OTHER_KEY })
    idx = storage.indices(nonce("other"), c2.chunks, 8)
    assert.equal("WRONG_DATA", select(3, storage.verify(c2, idx, assert(storage.prove(p2, c2, idx)), { key = KEY })))
  end)

  it("rebuilds a missing or stale sidecar from the file", function()
    local p, cp = provision(256 * 1024)
    local idx = storage.indices(nonce("side"), cp.chunks, 8)
    local want = assert(storage.prove(p, cp, idx))
    local tree = read_all(p .. ".tree")
    os.remove(p .. ".tree")
    assert.same(want, storage.prove(p, cp, idx))
    assert.equal(tree, read_all(p .. ".tree"))
    write_all(p .. ".tree", ("\0"):rep(#tree))
    assert.same(want, storage.prove(p, cp, idx))
    assert.equal(tree, read_all(p .. ".tree"))
    write_all(p .. ".tree", tree:sub(33))
    assert.same(want, storage.prove(p, cp, idx))
  end)

  it("refuses malformed commitments and indices with clear errors", function()
    local function err(cm, idx)
      local ok, e, code = storage.prove(path, cm, idx)
      assert.is_nil(ok)
      return e, code
    end
    local bad = copy(c); bad.root = "00"
    assert.matches("commitment.root: expected 64 hex digits", (err(bad, { 1 })), 1, true)
    bad = copy(c); bad.chunks = 3
    assert.matches("commitment.chunks 3 is not size / chunk_size = 256", (err(bad, { 1 })), 1, true)
    bad = copy(c); bad.size = MiB + 1
    assert.matches("commitment.size 1048577 is not a multiple of chunk_size 4096", (err(bad, { 1 })), 1, true)
    bad = copy(c); bad.chunk_size = 4000
    assert.matches("commitment.chunk_size: expected a multiple of 64", (err(bad, { 1 })), 1, true)
    assert.matches("indices[1] = 256 is not a chunk index 0 .. 255", (err(c, { 256 })), 1, true)
    assert.matches("indices[2] = 4 is repeated", (err(c, { 4, 4 })), 1, true)
    assert.matches("indices: expected 1 .. 256 of them, got 0", (err(c, {})), 1, true)
    local _, code = err(c, { 0.5 })
    assert.equal("EINVAL", code)
  end)
end)

describe("a provider that kept the leaf hashes but not the data (the old encoding's weakness, fixed)", function()
  it("cannot answer: the sidecar gives proofs, not the bytes, and without the key it cannot make them", function()
    local p, cp = provision(MiB)
    local tree = read_all(p .. ".tree")
    local idx = storage.indices(nonce("ghost"), cp.chunks, 8)
    local honest = assert(storage.prove(p, cp, idx))
    os.remove(p)                       -- the data is gone, the sidecar kept (1/128 of it)
    assert.equal("ENOENT", select(3, storage.prove(p, cp, idx)))
    -- the proofs depend on the leaf hashes only: the ghost has them all
    -- (the honest answer's), and needs chunk bytes that hash to the leaves
    local attempts = {
      zeros = function() return ("\0"):rep(4096) end,
      leaf_hash_repeated = function(i) return tree:sub(i * 32 + 1, i * 32 + 32):rep(128) end,
      its_own_key = function(i) return storage.generate(storage.key(hex(sha256("provider seed")), LEASE), i) end,
      the_lease_id_as_key = function(i) return storage.generate(LEASE, i) end,
    }
    for name, make in pairs(attempts) do
      local forged = copy(honest)
      for j, item in ipairs(forged.items) do item.chunk = b64.encode(make(idx[j])) end
      local ok, reason, code = storage.verify(cp, idx, forged, { key = KEY })
      assert.is_false(ok, name)
      assert.equal("BAD_PROOF", code, name .. ": " .. tostring(reason))
      assert.is_false((storage.verify(cp, idx, forged)), name)   -- a third party without the key: same
    end
    -- only the consumer's key makes them
    local regenerated = copy(honest)
    for j, item in ipairs(regenerated.items) do item.chunk = b64.encode(storage.generate(KEY, idx[j])) end
    assert.is_true(storage.verify(cp, idx, regenerated, { key = KEY }))
  end)
end)
