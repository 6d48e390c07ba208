-- SPDX-License-Identifier: MIT
--- wp.merkle: RFC 6962 tree hash, inclusion and consistency proofs, the
-- RFC 9162 verifiers and the incremental builder, checked against the
-- Certificate Transparency reference vectors (spec/fixtures/merkle) and
-- against a pure-Lua transcription of the RFC's recursive definitions.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson"
local bit = require "bit"

local M = wp.merkle
local sha256 = wp.sha256
local char, byte, floor = string.char, string.byte, math.floor

-- Local hex helpers (wp.hex/wp.unhex belong to another area).
local function unhex(s)
  assert(#s % 2 == 0 and not s:find("[^%x]"), "bad hex fixture")
  return (s:gsub("%x%x", function(x) return char(tonumber(x, 16)) end))
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(byte(c)) end))
end

local V = cjson.decode(h.read("spec/fixtures/merkle/rfc6962_vectors.json"))

local function unhex_all(t)
  local out = {}
  for i, x in ipairs(t) do out[i] = unhex(x) end
  return out
end

local LEAVES = unhex_all(V.leaves)
local EMPTY = unhex(V.empty_root)
local ROOTS = unhex_all(V.roots)            -- ROOTS[n] = root of the first n leaves

local function root_of(n) return n == 0 and EMPTY or ROOTS[n] end

local function slice(t, i, j)
  local out = {}
  for k = i, j do out[#out + 1] = t[k] end
  return out
end

local function copy(t) return slice(t, 1, #t) end

local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function hexlist(t)
  local out = {}
  for i, x in ipairs(t) do out[i] = hex(x) end
  return out
end

local function flip(s, pos, bitno)  -- pos 1-based byte, bitno 0..7
  return s:sub(1, pos - 1) .. char(bit.bxor(byte(s, pos), bit.lshift(1, bitno))) .. s:sub(pos + 1)
end

---------------------------------------------------------------------------
-- Reference: RFC 6962 §2.1 recursions written out literally (slicing
-- copies, no cleverness), on wp.sha256 only, independent of wp.merkle.
---------------------------------------------------------------------------
local ref = {}

function ref.leaf(d) return sha256("\0" .. d) end
function ref.node(l, r) return sha256("\1" .. l .. r) end

-- the largest power of two smaller than n (n > 1)
function ref.k(n)
  local k = 1
  while k * 2 < n do k = k * 2 end
  return k
end

function ref.mth(D)
  local n = #D
  if n == 0 then return sha256("") end
  if n == 1 then return ref.leaf(D[1]) end
  local k = ref.k(n)
  return ref.node(ref.mth(slice(D, 1, k)), ref.mth(slice(D, k + 1, n)))
end

-- PATH(m, D[n]), m 0-based
function ref.path(m, D)
  local n = #D
  if n <= 1 then return {} end
  local k = ref.k(n)
  local out
  if m < k then
    out = ref.path(m, slice(D, 1, k))
    out[#out + 1] = ref.mth(slice(D, k + 1, n))
  else
    out = ref.path(m - k, slice(D, k + 1, n))
    out[#out + 1] = ref.mth(slice(D, 1, k))
  end
  return out
end

-- SUBPROOF(m, D[n], b)
function ref.subproof(m, D, b)
  local n = #D
  if m == n then
    if b then return {} end
    return { ref.mth(D) }
  end
  local k = ref.k(n)
  local out
  if m <= k then
    out = ref.subproof(m, slice(D, 1, k), b)
    out[#out + 1] = ref.mth(slice(D, k + 1, n))
  else
    out = ref.subproof(m - k, slice(D, k + 1, n), false)
    out[#out + 1] = ref.mth(slice(D, 1, k))
  end
  return out
end

-- PROOF(m, D[n]); empty for m == 0 (RFC 9162) and m == n
function ref.proof(m, D)
  if m == 0 then return {} end
  return ref.subproof(m, D, true)
end

-- Recompute the root from an audit path by the recursive structure of
-- PATH (deepest element first). Returns nil when the path does not have
-- exactly the length the tree shape requires.
function ref.root_from_path(lh, m, n, P)
  if m >= n then return nil end
  local pos = 1
  local function walk(mm, nn)
    if nn == 1 then return lh end
    local k = ref.k(nn)
    local r
    if mm < k then
      r = walk(mm, k)
      if not r or not P[pos] then return nil end
      r = ref.node(r, P[pos])
    else
      r = walk(mm - k, nn - k)
      if not r or not P[pos] then return nil end
      r = ref.node(P[pos], r)
    end
    pos = pos + 1
    return r
  end
  local r = walk(m, n)
  if not r or pos ~= #P + 1 then return nil end
  return r
end

-- deterministic leaves of varied lengths (0..300 bytes: both sides of the
-- binding's 128-byte copy threshold)
local function gen_leaves(n, seed)
  local r, out = h.rng(seed), {}
  for i = 1, n do
    local len = r(301) - 1
    local t = {}
    for j = 1, len do t[j] = char(r(256) - 1) end
    out[i] = table.concat(t)
  end
  return out
end

describe("wp.merkle reference vectors (RFC 6962 / Certificate Transparency)", function()
  it("the fixture is the 8-leaf reference tree", function()
    assert.are.equal(8, #LEAVES)
    assert.are.equal("", LEAVES[1])
    assert.are.equal("\0", LEAVES[2])
    assert.are.equal(16, #LEAVES[8])
    assert.are.equal(8, #ROOTS)
    assert.are.equal(5, #V.inclusion)
    assert.are.equal(5, #V.consistency)
  end)

  it("empty tree root is SHA-256 of the empty string", function()
    assert.are.equal(V.empty_root, hex(M.root({})))
    assert.are.equal(V.empty_root, hex(M.root_from_hashes({})))
    assert.are.equal(V.empty_root, hex(M.builder():root()))
    assert.are.equal(V.empty_root, hex(sha256("")))
  end)

  it("leaf hashes are the published level-0 node hashes", function()
    for i, d in ipairs(LEAVES) do
      assert.are.equal(V.node_hashes[1][i], hex(M.leaf_hash(d)))
      assert.are.equal(V.node_hashes[1][i], hex(ref.leaf(d)))
    end
  end)

  it("leaf_hash and node_hash are the RFC formulas at every length 0..300", function()
    -- covers one-block (1 + len <= 55), multi-block and large-leaf paths
    local r = h.rng(77)
    for len = 0, 300 do
      local t = {}
      for j = 1, len do t[j] = char(r(256) - 1) end
      local d = table.concat(t)
      assert.are.equal(hex(sha256("\0" .. d)), hex(M.leaf_hash(d)), "len=" .. len)
    end
    local a, b = sha256("a"), sha256("b")
    assert.are.equal(sha256("\1" .. a .. b), M.node_hash(a, b))
    assert.are.equal(sha256("\1" .. b .. a), M.node_hash(b, a))
  end)

  it("node_hash combines the published level hashes", function()
    for level = 2, #V.node_hashes do
      local below = V.node_hashes[level - 1]
      for i, want in ipairs(V.node_hashes[level]) do
        local got = M.node_hash(unhex(below[2 * i - 1]), unhex(below[2 * i]))
        assert.are.equal(want, hex(got))
      end
    end
  end)

  it("every perfect subtree root matches the published node hashes", function()
    for level = 1, #V.node_hashes do
      local width = 2 ^ (level - 1)
      for i, want in ipairs(V.node_hashes[level]) do
        local part = slice(LEAVES, (i - 1) * width + 1, i * width)
        assert.are.equal(want, hex(M.root(part)))
      end
    end
  end)

  it("root of every size 1..8 matches the published roots", function()
    local b = M.builder()
    for n = 1, 8 do
      local part = slice(LEAVES, 1, n)
      assert.are.equal(V.roots[n], hex(M.root(part)))
      local lh = {}
      for i = 1, n do lh[i] = M.leaf_hash(part[i]) end
      assert.are.equal(V.roots[n], hex(M.root_from_hashes(lh)))
      assert.are.equal(V.roots[n], hex(ref.mth(part)))
      assert.are.equal(n, b:append(LEAVES[n]))
      assert.are.equal(V.roots[n], hex(b:root()))
    end
  end)

  it("published inclusion proofs are generated and verify", function()
    for _, v in ipairs(V.inclusion) do
      local part = slice(LEAVES, 1, v.tree_size)
      local proof = assert(M.inclusion_proof(part, v.index))
      assert.are.same(v.path, hexlist(proof))
      assert.is_true(M.verify_inclusion(LEAVES[v.index + 1], v.index, v.tree_size,
        unhex_all(v.path), ROOTS[v.tree_size]))
    end
  end)

  it("published consistency proofs are generated and verify", function()
    for _, v in ipairs(V.consistency) do
      local proof = assert(M.consistency_proof(slice(LEAVES, 1, v.size2), v.size1))
      assert.are.same(v.proof, hexlist(proof))
      assert.is_true(M.verify_consistency(v.size1, v.size2, ROOTS[v.size1], ROOTS[v.size2],
        unhex_all(v.proof)))
    end
  end)
end)

-- The probe set of the CT verifier tests (merkle_tree_test.cc VerifierCheck,
-- transparency-dev corruptInclusionProof) plus every single-bit flip.
local SOME_HASH = unhex("abacaba000000000000000000000000000000000000000000060061e00123456")

local function inclusion_probes(i, n, P, root, leaf)
  local probes = {
    { i - 1, n, root, leaf, P, "index - 1" },
    { i + 1, n, root, leaf, P, "index + 1" },
    { bit.bxor(i, 2), n, root, leaf, P, "index ^ 2" },
    { i, n * 2, root, leaf, P, "size * 2" },
    { i, floor(n / 2), root, leaf, P, "size / 2" },
    { i, n, root, "WrongLeaf", P, "wrong leaf" },
    { i, n, EMPTY, leaf, P, "empty root" },
    { i, n, SOME_HASH, leaf, P, "random root" },
    { i, n, "WrongRoot", leaf, P, "short root" },
  }
  local function with(desc, q) probes[#probes + 1] = { i, n, root, leaf, q, desc } end
  local q = copy(P); q[#q + 1] = ""; with("trailing garbage", q)
  q = copy(P); q[#q + 1] = root; with("trailing root", q)
  q = copy(P); table.insert(q, 1, ""); with("preceding garbage", q)
  q = copy(P); table.insert(q, 1, root); with("preceding root", q)
  if #P > 0 then
    with("removed component", slice(P, 1, #P - 1))
    q = copy(P); q[#q] = q[#q] .. "\0"; with("extended last element", q)
    q = copy(P); q[#q] = q[#q]:sub(1, 31); with("truncated last element", q)
    for j = 1, #P do
      q = copy(P); q[j] = EMPTY; with(("proof[%d] = empty root"):format(j), q)
    end
  end
  if #P > 1 then
    q = { P[1], SOME_HASH }
    for j = 2, #P do q[#q + 1] = P[j] end
    with("inserted component", q)
  end
  -- every single-bit flip of every element
  for j = 1, #P do
    for pos = 1, 32 do
      for b = 0, 7 do
        q = copy(P); q[j] = flip(P[j], pos, b)
        with(("proof[%d] byte %d bit %d"):format(j, pos, b), q)
      end
    end
  end
  return probes
end

local function consistency_probes(m, n, r1, r2, P)
  local probes = {
    { m - 1, n, r1, r2, P, "m - 1" },
    { m + 1, n, r1, r2, P, "m + 1" },
    { bit.bxor(m, 2), n, r1, r2, P, "m ^ 2" },
    { m, n * 2, r1, r2, P, "n * 2" },
    { m, floor(n / 2), r1, r2, P, "n / 2" },
    { m, n, "WrongRoot", r2, P, "wrong root1" },
    { m, n, r1, "WrongRoot", P, "wrong root2" },
    { m, n, SOME_HASH, r2, P, "random root1" },
    { m, n, r1, SOME_HASH, P, "random root2" },
    { m, n, r2, r1, P, "swapped roots" },
    { m, n, r1, r2, {}, "empty proof" },
  }
  local function with(desc, q) probes[#probes + 1] = { m, n, r1, r2, q, desc } end
  local q = copy(P); q[#q + 1] = ""; with("trailing garbage", q)
  q = copy(P); q[#q + 1] = r1; with("trailing root1", q)
  q = copy(P); q[#q + 1] = r2; with("trailing root2", q)
  q = copy(P); table.insert(q, 1, ""); with("preceding garbage", q)
  q = copy(P); table.insert(q, 1, r1); with("preceding root1", q)
  q = copy(P); table.insert(q, 1, r2); with("preceding root2", q)
  q = copy(P); table.insert(q, 1, P[1]); with("preceding proof[1]", q)
  with("truncated proof", slice(P, 1, #P - 1))
  q = copy(P); q[#q] = q[#q] .. "\0"; with("extended last element", q)
  q = copy(P); q[1] = q[1]:sub(1, 31); with("truncated first element", q)
  for j = 1, #P do
    q = copy(P); q[j] = EMPTY; with(("proof[%d] = empty root"):format(j), q)
    for pos = 1, 32 do
      for b = 0, 7 do
        q = copy(P); q[j] = flip(P[j], pos, b)
        with(("proof[%d] byte %d bit %d"):format(j, pos, b), q)
      end
    end
  end
  return probes
end

local function check_inclusion_probes(i, n, P, root, leaf)
  local wrong = {}
  for _, p in ipairs(inclusion_probes(i, n, P, root, leaf)) do
    if M.verify_inclusion(p[4], p[1], p[2], p[5], p[3]) then wrong[#wrong + 1] = p[6] end
  end
  assert.are.same({}, wrong, ("i=%d n=%d accepted corrupted proofs"):format(i, n))
end

local function check_consistency_probes(m, n, r1, r2, P)
  local wrong = {}
  for _, p in ipairs(consistency_probes(m, n, r1, r2, P)) do
    if M.verify_consistency(p[1], p[2], p[3], p[4], p[5]) then wrong[#wrong + 1] = p[6] end
  end
  assert.are.same({}, wrong, ("m=%d n=%d accepted corrupted proofs"):format(m, n))
end

describe("wp.merkle inclusion proofs", function()
  it("published proofs reject every corruption of the CT probe set", function()
    for _, v in ipairs(V.inclusion) do
      check_inclusion_probes(v.index, v.tree_size, unhex_all(v.path), ROOTS[v.tree_size],
        LEAVES[v.index + 1])
    end
  end)

  it("every i < n for n in 1..8: generated = reference PATH, verifies, corruptions fail", function()
    local count = 0
    for n = 1, 8 do
      local D = slice(LEAVES, 1, n)
      for i = 0, n - 1 do
        local P = assert(M.inclusion_proof(D, i))
        assert.are.same(hexlist(ref.path(i, D)), hexlist(P), ("i=%d n=%d"):format(i, n))
        assert.are.equal(ROOTS[n], ref.root_from_path(ref.leaf(D[i + 1]), i, n, P))
        assert.is_true(M.verify_inclusion(D[i + 1], i, n, P, ROOTS[n]))
        check_inclusion_probes(i, n, P, ROOTS[n], D[i + 1])
        count = count + 1
      end
    end
    assert.are.equal(36, count)
  end)

  it("a proof verifies for exactly the (index, size) it was made for", function()
    -- Verify every proof of the 8-leaf family against every (i', n') with
    -- the real root of n': the C verifier must agree with the recursive
    -- reference, and accept only where the leaf really sits at i'.
    local proofs = {}
    for n = 1, 8 do
      for i = 0, n - 1 do proofs[#proofs + 1] = { i, n, M.inclusion_proof(slice(LEAVES, 1, n), i) } end
    end
    for _, pr in ipairs(proofs) do
      local i, n, P = pr[1], pr[2], pr[3]
      local leaf = LEAVES[i + 1]
      for n2 = 0, 9 do
        for i2 = 0, 9 do
          local root = n2 <= 8 and root_of(n2) or SOME_HASH
          local got = M.verify_inclusion(leaf, i2, n2, P, root)
          local r = ref.root_from_path(ref.leaf(leaf), i2, n2, P)
          assert.are.equal(r ~= nil and r == root, got, ("proof(%d,%d) at (%d,%d)"):format(i, n, i2, n2))
          assert.are.equal(i2 == i and i2 < n2 and n2 <= 8 and same_list(P, ref.path(i, slice(LEAVES, 1, n2))), got)
        end
      end
    end
  end)

  it("larger trees with varied leaves match the reference", function()
    for _, n in ipairs({ 9, 13, 16, 17, 31, 33, 47 }) do
      local D = gen_leaves(n, n * 7919)
      local root = M.root(D)
      assert.are.equal(hex(ref.mth(D)), hex(root))
      for i = 0, n - 1 do
        local P = M.inclusion_proof(D, i)
        assert.are.same(hexlist(ref.path(i, D)), hexlist(P))
        assert.is_true(M.verify_inclusion(D[i + 1], i, n, P, root))
        -- (size + 1 can legitimately replay the same hash steps; the CT
        -- probes use size * 2 and size / 2)
        assert.is_false(M.verify_inclusion(D[i + 1], i, n * 2, P, root))
        assert.is_false(M.verify_inclusion(D[i + 1], i, floor(n / 2), P, root))
      end
    end
  end)

  it("index out of range -> nil, ERANGE", function()
    local cases = { { LEAVES, 8 }, { LEAVES, -1 }, { LEAVES, 1.5 }, { {}, 0 }, { LEAVES, 1e300 },
      { LEAVES, 0 / 0 } }
    for _, c in ipairs(cases) do
      local p, err = M.inclusion_proof(c[1], c[2])
      assert.is_nil(p)
      assert.matches("^ERANGE: ", err)
    end
    assert.are.same({}, M.inclusion_proof({ "x" }, 0))
  end)

  it("degenerate verifications are false", function()
    local lh = "data"
    local root1 = M.root({ lh })
    assert.is_true(M.verify_inclusion(lh, 0, 1, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0, 0, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 1, 0, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 1, 1, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 2, 1, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0, 1, {}, ""))
    assert.is_false(M.verify_inclusion(lh, 0, 1, {}, EMPTY))
    assert.is_false(M.verify_inclusion(lh, 0, 0, {}, EMPTY))
    assert.is_false(M.verify_inclusion(lh, -1, 1, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0.5, 1, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0, 1.5, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0, 2 ^ 60, {}, root1))
    assert.is_false(M.verify_inclusion(lh, 0 / 0, 1, {}, root1))
    -- a proof longer than any tree can need is refused without hashing
    local long = {}
    for i = 1, 66 do long[i] = SOME_HASH end
    assert.is_false(M.verify_inclusion(lh, 0, 1, long, root1))
  end)

  it("wrong argument types raise", function()
    local P = M.inclusion_proof(LEAVES, 0)
    assert.has_error(function() M.inclusion_proof(nil, 0) end)
    assert.has_error(function() M.inclusion_proof("abc", 0) end)
    assert.has_error(function() M.inclusion_proof(LEAVES, "x") end)
    assert.has_error(function() M.inclusion_proof(LEAVES) end)
    assert.has_error(function() M.inclusion_proof({ "a", 2 }, 0) end)
    assert.has_error(function() M.inclusion_proof({ "a", {} }, 0) end)
    assert.has_error(function() M.verify_inclusion(nil, 0, 8, P, ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], nil, 8, P, ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, "x", P, ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, 8, "proof", ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, 8, nil, ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, 8, { P[1], 7, P[3] }, ROOTS[8]) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, 8, P, nil) end)
    assert.has_error(function() M.verify_inclusion(LEAVES[1], 0, 8, P, {}) end)
    -- a type error raises even when another argument already decides "false"
    assert.has_error(function() M.verify_inclusion(LEAVES[1], -1, 8, P, {}) end)
    assert.is_true(M.verify_inclusion(LEAVES[1], 0, 8, P, ROOTS[8]))
  end)
end)

describe("wp.merkle consistency proofs", function()
  it("published proofs reject every corruption of the CT probe set", function()
    for _, v in ipairs(V.consistency) do
      if #v.proof > 0 then
        check_consistency_probes(v.size1, v.size2, ROOTS[v.size1], ROOTS[v.size2], unhex_all(v.proof))
      end
    end
  end)

  it("every 1 <= m <= n <= 8: generated = reference PROOF, verifies, corruptions fail", function()
    local count = 0
    for n = 1, 8 do
      local D = slice(LEAVES, 1, n)
      for m = 1, n do
        local P = assert(M.consistency_proof(D, m))
        assert.are.same(hexlist(ref.proof(m, D)), hexlist(P), ("m=%d n=%d"):format(m, n))
        assert.is_true(M.verify_consistency(m, n, ROOTS[m], ROOTS[n], P))
        if m < n then
          assert.is_true(#P > 0)
          check_consistency_probes(m, n, ROOTS[m], ROOTS[n], P)
        else
          assert.are.same({}, P)
        end
        count = count + 1
      end
    end
    assert.are.equal(36, count)
  end)

  it("a proof verifies for exactly the sizes whose proof it is", function()
    local proofs = {}
    for n = 0, 8 do
      for m = 0, n do
        proofs[#proofs + 1] = { m, n, M.consistency_proof(slice(LEAVES, 1, n), m) }
      end
    end
    for _, pr in ipairs(proofs) do
      local P = pr[3]
      for n2 = 0, 8 do
        for m2 = 0, 9 do
          local got = M.verify_consistency(m2, n2, root_of(math.min(m2, 8)), root_of(n2), P)
          local want = m2 <= n2 and same_list(P, ref.proof(m2, slice(LEAVES, 1, n2)))
          assert.are.equal(want, got, ("proof(%d,%d) at (%d,%d)"):format(pr[1], pr[2], m2, n2))
        end
      end
    end
  end)

  it("larger trees with varied leaves match the reference", function()
    for _, n in ipairs({ 9, 15, 16, 17, 31, 33, 40 }) do
      local D = gen_leaves(n, n * 104729)
      local rn = M.root(D)
      for m = 0, n do
        local P = M.consistency_proof(D, m)
        assert.are.same(hexlist(ref.proof(m, D)), hexlist(P))
        local rm = M.root(slice(D, 1, m))
        assert.is_true(M.verify_consistency(m, n, rm, rn, P))
        if m > 0 and m < n then
          assert.is_false(M.verify_consistency(m, n, rn, rm, P))
          assert.is_false(M.verify_consistency(m, n * 2, rm, rn, P))
          assert.is_false(M.verify_consistency(m, floor(n / 2), rm, rn, P))
        end
      end
    end
  end)

  it("edge cases m = 0 and m = n (RFC 9162: empty proof)", function()
    assert.are.same({}, M.consistency_proof(LEAVES, 0))
    assert.are.same({}, M.consistency_proof(LEAVES, 8))
    assert.are.same({}, M.consistency_proof({}, 0))
    -- m == n: the roots must be equal and the proof empty
    assert.is_true(M.verify_consistency(8, 8, ROOTS[8], ROOTS[8], {}))
    assert.is_true(M.verify_consistency(0, 0, EMPTY, EMPTY, {}))
    assert.is_false(M.verify_consistency(8, 8, ROOTS[8], ROOTS[7], {}))
    assert.is_false(M.verify_consistency(1, 1, EMPTY, ROOTS[1], {}))
    assert.is_false(M.verify_consistency(8, 8, ROOTS[8], ROOTS[8], { EMPTY }))
    assert.is_false(M.verify_consistency(0, 0, EMPTY, EMPTY, { EMPTY }))
    -- m == 0: every tree extends the empty one, whose root is SHA-256("")
    assert.is_true(M.verify_consistency(0, 8, EMPTY, ROOTS[8], {}))
    assert.is_true(M.verify_consistency(0, 1, EMPTY, ROOTS[1], {}))
    assert.is_false(M.verify_consistency(0, 8, ROOTS[1], ROOTS[8], {}))
    assert.is_false(M.verify_consistency(0, 1, EMPTY, EMPTY, { EMPTY }))
    assert.is_false(M.verify_consistency(0, 0, SOME_HASH, SOME_HASH, {}))
    -- time travel and empty proofs for real extensions
    assert.is_false(M.verify_consistency(1, 0, ROOTS[1], EMPTY, {}))
    assert.is_false(M.verify_consistency(2, 1, ROOTS[2], ROOTS[1], {}))
    assert.is_false(M.verify_consistency(1, 2, ROOTS[1], ROOTS[2], {}))
    -- impossible numbers are false, not errors
    assert.is_false(M.verify_consistency(-1, 8, ROOTS[1], ROOTS[8], {}))
    assert.is_false(M.verify_consistency(1.5, 8, ROOTS[1], ROOTS[8], {}))
    assert.is_false(M.verify_consistency(1, 2 ^ 60, ROOTS[1], ROOTS[8], {}))
    local long = {}
    for i = 1, 66 do long[i] = SOME_HASH end
    assert.is_false(M.verify_consistency(3, 8, ROOTS[3], ROOTS[8], long))
  end)

  it("m out of range -> nil, ERANGE", function()
    for _, m in ipairs({ 9, -1, 0.5, 1e300 }) do
      local p, err = M.consistency_proof(LEAVES, m)
      assert.is_nil(p)
      assert.matches("^ERANGE: ", err)
    end
  end)

  it("wrong argument types raise", function()
    local P = M.consistency_proof(LEAVES, 3)
    assert.has_error(function() M.consistency_proof(nil, 0) end)
    assert.has_error(function() M.consistency_proof(LEAVES, nil) end)
    assert.has_error(function() M.consistency_proof({ "a", false }, 1) end)
    assert.has_error(function() M.verify_consistency(nil, 8, ROOTS[3], ROOTS[8], P) end)
    assert.has_error(function() M.verify_consistency(3, {}, ROOTS[3], ROOTS[8], P) end)
    assert.has_error(function() M.verify_consistency(3, 8, nil, ROOTS[8], P) end)
    assert.has_error(function() M.verify_consistency(3, 8, ROOTS[3], true, P) end)
    assert.has_error(function() M.verify_consistency(3, 8, ROOTS[3], ROOTS[8], "P") end)
    assert.has_error(function() M.verify_consistency(3, 8, ROOTS[3], ROOTS[8], { P[1], {} }) end)
    assert.is_true(M.verify_consistency(3, 8, ROOTS[3], ROOTS[8], P))
  end)
end)

describe("wp.merkle roots", function()
  it("root matches the reference for sizes 0..70 with varied leaves", function()
    local D = gen_leaves(70, 12345)
    for n = 0, 70 do
      local part = slice(D, 1, n)
      assert.are.equal(hex(ref.mth(part)), hex(M.root(part)), "n=" .. n)
    end
  end)

  it("a 1-leaf tree's root is its leaf hash; roots differ by leaf order", function()
    assert.are.equal(M.leaf_hash("x"), M.root({ "x" }))
    assert.are_not.equal(M.root({ "a", "b" }), M.root({ "b", "a" }))
    -- leaf/node domain separation: a node is not a leaf of its preimage
    local a, b = M.leaf_hash("a"), M.leaf_hash("b")
    assert.are.equal(M.node_hash(a, b), M.root({ "a", "b" }))
    assert.are_not.equal(M.root({ "a", "b" }), M.root({ a .. b }))
  end)

  it("wrong argument types and lengths raise", function()
    assert.has_error(function() M.root() end)
    assert.has_error(function() M.root("abc") end)
    assert.has_error(function() M.root({ "a", 1 }) end)
    assert.has_error(function() M.root({ "a", {} }) end)
    assert.has_error(function() M.root_from_hashes({ SOME_HASH, "short" }) end)
    assert.has_error(function() M.root_from_hashes({ SOME_HASH .. "x" }) end)
    assert.has_error(function() M.root_from_hashes({ 5 }) end)
    assert.has_error(function() M.leaf_hash(nil) end)
    assert.has_error(function() M.leaf_hash({}) end)
    assert.has_error(function() M.node_hash(SOME_HASH, "short") end)
    assert.has_error(function() M.node_hash("", SOME_HASH) end)
    assert.has_error(function() M.node_hash(SOME_HASH) end)
  end)
end)

describe("wp.merkle.builder", function()
  it("matches root() after every append for sizes 0..300", function()
    local D = gen_leaves(300, 4242)
    local b, b2 = M.builder(), M.builder()
    assert.are.equal(0, b:size())
    assert.are.equal(EMPTY, b:root())
    -- the running root via prefix roots of one builder vs full root() calls
    for n = 1, 300 do
      assert.are.equal(n, b:append(D[n]))
      assert.are.equal(n, b2:append_hash(M.leaf_hash(D[n])))
      assert.are.equal(n, b:size())
      local want = M.root(slice(D, 1, n))
      assert.are.equal(want, b:root(), "n=" .. n)
      assert.are.equal(want, b2:root(), "n=" .. n)
    end
    assert.are.equal(hex(ref.mth(D)), hex(b:root()))
  end)

  it("matches root() and root_from_hashes() for random sizes up to 10^4", function()
    local r = h.rng(20240601)
    local sizes = { 1023, 1024, 1025, 4096, 10000 }
    for _ = 1, 4 do sizes[#sizes + 1] = r(10000) end
    for _, n in ipairs(sizes) do
      local D, H = {}, {}
      local b, bh = M.builder(), M.builder()
      for i = 1, n do
        D[i] = ("leaf %d of %d"):format(i, n)
        H[i] = M.leaf_hash(D[i])
        b:append(D[i])
        bh:append_hash(H[i])
      end
      local want = M.root(D)
      assert.are.equal(want, b:root(), "n=" .. n)
      assert.are.equal(want, bh:root(), "n=" .. n)
      assert.are.equal(want, M.root_from_hashes(H), "n=" .. n)
      assert.are.equal(n, b:size())
    end
  end)

  it("independent builders do not share state; root() does not consume", function()
    local a, b = M.builder(), M.builder()
    a:append("x")
    assert.are.equal(0, b:size())
    assert.are.equal(a:root(), a:root())
    a:append("y")
    assert.are.equal(M.root({ "x", "y" }), a:root())
    assert.matches("^workproof%.merkle%.builder", tostring(a))
  end)

  it("wrong argument types raise", function()
    local b = M.builder()
    assert.has_error(function() b:append(nil) end)
    assert.has_error(function() b:append({}) end)
    assert.has_error(function() b:append_hash("short") end)
    assert.has_error(function() b:append_hash(SOME_HASH .. "x") end)
    assert.has_error(function() b.root({}) end)
    assert.has_error(function() b.size("x") end)
    assert.has_error(function() b.append(io.stdout, "x") end)
    assert.are.equal(0, b:size())
  end)
end)
