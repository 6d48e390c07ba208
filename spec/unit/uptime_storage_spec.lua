-- SPDX-License-Identifier: MIT
--- Storage challenges (lua/workproof/uptime/storage.lua; docs/uptime.md
-- section 10, "Storage challenges"): provisioning and its commitment, the
-- challenge indices, the provider's answer and the challenger's check, each
-- way a provider without the data fails, and the cost of re-deriving a
-- chunk from the seed. Small files (1 MiB and less) and small `work` keep
-- it fast; the default work is exercised where the cost is the point.
local wp = require "workproof"
local h = require "helpers"
local storage = require "workproof.uptime.storage"

local M = wp.merkle
local hex, sha256 = wp.hex, wp.sha256
local b64 = wp.base64

local MiB = 1024 * 1024
local SEED = hex(sha256(("ab"):rep(32) .. "storage"))      -- SHA-256(leaseId || "storage")
local OTHER_SEED = hex(sha256(("cd"):rep(32) .. "storage"))

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
  local c = assert(storage.provision(path, size, { seed = opts.seed or SEED, chunk_size = opts.chunk_size,
                                                   work = opts.work or 8, slice = opts.slice }))
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

local function median(xs)
  table.sort(xs)
  return xs[math.floor((#xs + 1) / 2)]
end

describe("storage.provision and storage.commit", function()
  it("write the declared size and a sidecar of leaf hashes, and agree on the commitment", function()
    local path, c = provision(MiB, { work = 8 })
    assert.same({ size = MiB, chunk_size = 4096, chunks = 256, seed = SEED, work = 8 },
      { size = c.size, chunk_size = c.chunk_size, chunks = c.chunks, seed = c.seed, work = c.work })
    assert.matches("^%x+$", c.root)
    assert.equal(64, #c.root)
    assert.equal(MiB, file_size(path))
    assert.equal(256 * 32, file_size(path .. ".tree"))
    assert.is_nil(file_size(path .. ".part"))
    assert.is_nil(file_size(path .. ".tree.part"))

    local again = assert(storage.commit(path, { seed = SEED, work = 8 }))
    assert.same(c, again)
    -- without seed and work the commitment has only what the file says
    local bare = assert(storage.commit(path))
    assert.same({ root = c.root, size = MiB, chunk_size = 4096, chunks = 256 }, bare)

    -- the sidecar is the chunks' RFC 6962 leaf hashes, the root theirs
    local chunks = chunks_of(path, 4096)
    local tree = read_all(path .. ".tree")
    for i = 1, #chunks do assert.equal(M.leaf_hash(chunks[i]), tree:sub(i * 32 - 31, i * 32)) end
    assert.equal(c.root, hex(M.root(chunks)))
  end)

  it("is deterministic in the seed, the chunk size and the work, and each changes everything", function()
    local _, c1 = provision(64 * 1024, { work = 4 })
    local _, c2 = provision(64 * 1024, { work = 4 })
    assert.equal(c1.root, c2.root)
    local _, c3 = provision(64 * 1024, { work = 5 })
    local _, c4 = provision(64 * 1024, { work = 4, chunk_size = 2048 })
    local _, c5 = provision(64 * 1024, { work = 4, seed = OTHER_SEED })
    assert.are_not.equal(c1.root, c3.root)
    assert.are_not.equal(c1.root, c4.root)
    assert.are_not.equal(c1.root, c5.root)
  end)

  it("encodes sequentially: chunk 0 = F(seed, 0), chunk i = F(seed, i, H(chunk i-1))", function()
    local opts = { seed = SEED, chunk_size = 1024, work = 3 }
    local path = fresh()
    local c = assert(storage.provision(path, 16 * 1024, opts))
    local chunks = chunks_of(path, 1024)
    assert.equal(16, c.chunks)
    assert.equal(chunks[1], storage.encode_chunk(0, nil, opts))
    for i = 1, 15 do
      assert.equal(chunks[i + 1], storage.encode_chunk(i, M.leaf_hash(chunks[i]), opts))
      assert.are_not.equal(chunks[i + 1], storage.encode_chunk(i, M.leaf_hash(chunks[i + 1]), opts))
    end
    assert.equal(chunks[12], storage.rederive(11, opts))
    -- F by hand, from the definition in the docs
    local function be(n, k)
      local t = {}
      for j = k, 1, -1 do t[j] = n % 256; n = math.floor(n / 256) end
      return string.char(unpack(t))
    end
    local x = sha256("WP-STORAGE-F1" .. wp.unhex(SEED) .. be(5, 8) .. be(1024, 4) .. be(3, 4)
                     .. M.leaf_hash(chunks[5]))
    for _ = 1, 3 do x = sha256(x .. ("\0"):rep(992)) end
    local parts = {}
    for j = 1, 32 do x = sha256(x); parts[j] = x end
    assert.equal(chunks[6], table.concat(parts))
  end)

  -- the root and the indices below were cross-checked with an independent
  -- transcription of docs/uptime.md in Python (hashlib)
  it("pins the format: a fixed vector", function()
    local path = fresh()
    local seed = hex(sha256("workproof storage vector"))
    local c = assert(storage.provision(path, 8192, { seed = seed, chunk_size = 1024, work = 3 }))
    assert.equal("750f196b8728f6b692c57709d5c6a1c0e2294dc1c41f96991e7463966b2ff039", c.root)
  end)

  it("gives clear errors for malformed parameters", function()
    local function err(...)
      local ok, e, code = storage.provision(fresh(), ...)
      assert.is_nil(ok)
      return e, code
    end
    local e, code = err(MiB + 100, { seed = SEED })
    assert.equal("EINVAL", code)
    assert.matches("size 1048676 is not a multiple of chunk_size 4096", e, 1, true)
    assert.matches("size: expected a positive integer", (err(0, { seed = SEED })), 1, true)
    assert.matches("size: expected a positive integer", (err(1.5, { seed = SEED })), 1, true)
    assert.matches("opts.seed: expected 64 hex digits", (err(MiB, {})), 1, true)
    assert.matches("opts.seed: expected 64 hex digits", (err(MiB, { seed = "zz" })), 1, true)
    assert.matches("opts.seed: expected 64 hex digits", (err(MiB, { seed = ("ab"):rep(31) })), 1, true)
    assert.matches("opts.chunk_size: expected a multiple of 32", (err(MiB, { seed = SEED, chunk_size = 100 })), 1, true)
    assert.matches("opts.chunk_size: expected a multiple of 32", (err(MiB, { seed = SEED, chunk_size = 0 })), 1, true)
    assert.matches("opts.work: expected an integer", (err(MiB, { seed = SEED, work = -1 })), 1, true)
    local _, e3, c3 = storage.provision(dir .. "/no/such/dir/x", 4096, { seed = SEED })
    assert.equal("ENOENT", c3)
    assert.matches("^ENOENT: .*No such file or directory", e3)
    assert.has_error(function() storage.provision(42, MiB, { seed = SEED }) end)
    assert.has_error(function() storage.provision(fresh(), MiB, "opts") end)

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
  end)

  it("yields to the host loop between slices when in a host coroutine", function()
    assert.is_true(wp.in_coroutine())
    local ticks, done = 0, false
    wp.spawn(function()
      while not done do
        ticks = ticks + 1
        wp.sleep(0)
      end
    end)
    local _, c = provision(MiB, { work = 64, slice = 0.001 })
    done = true
    assert.equal(256, c.chunks)
    assert.is_true(ticks >= 3, "the loop ran " .. ticks .. " times while provisioning")
    -- and it runs outside one too (a plain coroutine: no yielding to the loop)
    local co = coroutine.create(function() return storage.provision(fresh(), 64 * 1024, { seed = SEED, work = 2 }) end)
    local ok, c2 = coroutine.resume(co)
    assert.is_true(ok)
    assert.equal(16, c2.chunks)
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
    -- a fixed vector (cross-checked like the encoding's)
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
  setup(function() path, c = provision(MiB, { work = 8 }) end)

  it("round-trip for random nonces, with and without the encoding check", function()
    for s = 1, 30 do
      local idx = assert(storage.indices(nonce(s), c.chunks, 8))
      local a = assert(storage.prove(path, c, idx))
      assert.equal(c.root, a.root)
      assert.equal("base64", a.encoding)
      assert.equal(8, #a.items)
      for j, item in ipairs(a.items) do
        assert.equal(idx[j], item.index)
        assert.equal(4096, #b64.decode(item.chunk))
        assert.equal(8, #item.proof)      -- 256 leaves: log2
        assert.equal(item.index > 0, item.prev ~= nil)
      end
      assert.is_true(storage.verify(c, idx, a))
      assert.is_true(storage.verify(c, idx, a, { check_encoding = true }))
    end
  end)

  it("answers with RFC 6962 audit paths: those of wp.merkle.inclusion_proof", function()
    for _, n in ipairs({ 1, 2, 3, 5, 7, 13, 16, 21 }) do
      local p, cn = provision(n * 64, { chunk_size = 64, work = 1 })
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
      assert.is_true(storage.verify(cn, all, a, { check_encoding = true }))
    end
  end)

  it("fails to prove when the file was deleted", function()
    local p, cp = provision(64 * 1024, { work = 2 })
    os.remove(p)
    local ok, err, code = storage.prove(p, cp, { 0, 3 })
    assert.is_nil(ok)
    assert.equal("ENOENT", code)
    assert.matches("^ENOENT: .*No such file", err)
  end)

  it("fails on a truncated file; what is left of a chunk does not verify", function()
    local p, cp = provision(64 * 1024, { work = 2 })
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
    local v, reason, rcode = storage.verify(cp, idx, a)
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

  it("a sparse file of the right size does not verify (with the real sidecar) or prove (without)", function()
    local p, cp = provision(MiB, { work = 2 })
    local tree = read_all(p .. ".tree")
    os.remove(p)
    assert(os.execute(("truncate -s %d %s"):format(MiB, h.q(p))))
    assert.equal(MiB, file_size(p))
    local idx = storage.indices(nonce("sparse"), cp.chunks, 8)
    local a = assert(storage.prove(p, cp, idx))
    local ok, reason, code = storage.verify(cp, idx, a)
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
    local p, cp = provision(MiB, { work = 2 })
    local idx = storage.indices(nonce("flip"), cp.chunks, 8)
    local target = idx[5]
    local data = read_all(p)
    local off = target * 4096 + 1234
    write_all(p, data:sub(1, off) .. string.char(bit.bxor(data:byte(off + 1), 0x01)) .. data:sub(off + 2))
    local a = assert(storage.prove(p, cp, idx))
    local ok, reason, code = storage.verify(cp, idx, a)
    assert.is_false(ok)
    assert.equal("BAD_PROOF", code)
    assert.matches(("chunk %d does not verify"):format(target), reason, 1, true)
    -- a chunk not challenged would have passed: the other seven are fine
    local rest = {}
    for j = 1, 8 do if j ~= 5 then rest[#rest + 1] = idx[j] end end
    assert.is_true(storage.verify(cp, rest, assert(storage.prove(p, cp, rest))))
  end)

  it("a flipped byte in the carried previous chunk is BAD_PREV_PROOF", function()
    local idx = storage.indices(nonce("prev"), c.chunks, 8)
    local a = assert(storage.prove(path, c, idx))
    local j = idx[1] > 0 and 1 or 2
    local prev = b64.decode(a.items[j].prev.chunk)
    a.items[j].prev.chunk = b64.encode(string.char(bit.bxor(prev:byte(1), 0x80)) .. prev:sub(2))
    local ok, reason, code = storage.verify(c, idx, a)
    assert.is_false(ok)
    assert.equal("BAD_PREV_PROOF", code)
    assert.matches(("chunk %d (prev of %d)"):format(idx[j] - 1, idx[j]), reason, 1, true)
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
    local p2, c2 = provision(MiB, { work = 8, seed = OTHER_SEED })
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
    -- the encoding check needs chunk i-1
    b = copy(a)
    local j = idx[1] > 0 and 1 or 2
    b.items[j].prev = nil
    assert.is_true(storage.verify(c, idx, b))
    local code, r = reason(b, { check_encoding = true })
    assert.equal("NO_PREV", code)
    assert.matches(("chunk %d comes without chunk %d"):format(idx[j], idx[j] - 1), r, 1, true)
    -- the challenger's own inputs must be well formed
    assert.has_error(function() storage.verify({ root = "x" }, idx, a) end)
    assert.has_error(function() storage.verify(c, { -1 }, a) end)
    assert.has_error(function() storage.verify(c, { 3, 3 }, a) end)
    assert.has_error(function() storage.verify(c, idx, a, "check_encoding") end)
    local bare = copy(c); bare.seed = nil
    assert.has_error(function() storage.verify(bare, idx, a, { check_encoding = true }) end)
  end)

  it("the encoding check catches a commitment to data that is not the encoding", function()
    -- random (incompressible, but not derived from the seed) data, committed honestly
    local p = fresh()
    local parts = {}
    for i = 1, 64 do parts[i] = wp.blake2b(tostring(i), 64):rep(16) end
    write_all(p, table.concat(parts))
    local cj = assert(storage.commit(p, { seed = SEED, work = 8 }))
    local idx = storage.indices(nonce("junk"), cj.chunks, 8)
    local a = assert(storage.prove(p, cj, idx))
    assert.is_true(storage.verify(cj, idx, a))    -- the proofs hold ...
    local ok, reason, code = storage.verify(cj, idx, a, { check_encoding = true })
    assert.is_false(ok)                           -- ... the encoding does not
    assert.equal("BAD_ENCODING", code)
    assert.matches(("chunk %d is not F(seed, %d, H(chunk %d))"):format(idx[1], idx[1], idx[1] - 1), reason, 1, true)
    -- a tree over zero chunks (a provider keeping nothing at all): same
    local z = fresh()
    assert(os.execute(("truncate -s %d %s"):format(64 * 4096, h.q(z))))
    local cz = assert(storage.commit(z, { seed = SEED, work = 8 }))
    a = assert(storage.prove(z, cz, idx))
    assert.is_true(storage.verify(cz, idx, a))
    assert.equal("BAD_ENCODING", select(3, storage.verify(cz, idx, a, { check_encoding = true })))
  end)

  it("rebuilds a missing or stale sidecar from the file", function()
    local p, cp = provision(256 * 1024, { work = 2 })
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
    assert.matches("indices[1] = 256 is not a chunk index 0 .. 255", (err(c, { 256 })), 1, true)
    assert.matches("indices[2] = 4 is repeated", (err(c, { 4, 4 })), 1, true)
    assert.matches("indices: expected 1 .. 256 of them, got 0", (err(c, {})), 1, true)
    local _, code = err(c, { 0.5 })
    assert.equal("EINVAL", code)
  end)
end)

describe("the cost of re-deriving a chunk without the file", function()
  it("grows with the chunk's index: chunk at 90 % costs > 10x chunk at 5 %", function()
    local opts = { seed = SEED, work = storage.DEFAULT_WORK }
    local n = MiB / 4096
    local lo, hi = math.floor(0.05 * n), math.floor(0.9 * n)
    local path = fresh()
    assert(storage.provision(path, MiB, opts))
    local chunks = chunks_of(path, 4096)
    local function cost(i)
      local ts = {}
      for r = 1, 5 do
        local t0 = wp.now()
        local got = storage.rederive(i, opts)
        ts[r] = wp.now() - t0
        assert.equal(chunks[i + 1], got)
      end
      return median(ts)
    end
    local t_lo, t_hi = cost(lo), cost(hi)
    -- (hi + 1) / (lo + 1) = 231 / 13, about 17.8
    assert.is_true(t_hi > 10 * t_lo, ("chunk %d: %.4f s, chunk %d: %.4f s"):format(lo, t_lo, hi, t_hi))
  end)

  it("DOES NOT stop a provider that kept the leaf hashes: one chunk is then one F (documented limit)", function()
    local opts = { seed = SEED, work = 8 }
    local path = fresh()
    assert(storage.provision(path, MiB, opts))
    local tree = read_all(path .. ".tree")
    local chunks = chunks_of(path, 4096)
    for _, i in ipairs({ 1, 100, 255 }) do
      assert.equal(chunks[i + 1], storage.encode_chunk(i, tree:sub(i * 32 - 31, i * 32), opts))
    end
  end)
end)
