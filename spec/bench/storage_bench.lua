-- SPDX-License-Identifier: MIT
--- Storage challenges (lua/workproof/uptime/storage.lua; docs/uptime.md
-- section 10, "Storage challenges"), at the default chunk size and work:
--
--   provision          fill and commit a BENCH_STORAGE_MB (64) MiB file; goal
--                      1-3 s for 64 MiB; anchored on writing the same bytes
--                      without encoding them
--   prove / verify     k = 8 chunks; verify with the encoding check
--   re-derive          a random chunk from the seed alone (chunk n/2: the
--                      average cost), as a provider without the file must;
--                      goal >= 0.5 s. Anchor: the native floor, the same
--                      SHA-256 compressions at the bulk rate of the C core
--                      (wp.sha256 over 1 MiB), i.e. what a provider with
--                      native SHA-NI code needs at least
--   one F              a chunk from the hash of its predecessor (what a
--                      provider that kept the leaf hashes pays; reported)
local wp = require "workproof"
local storage = require "workproof.uptime.storage"

local function env_num(name, default) return tonumber(os.getenv(name) or "") or default end

return function(b)
  local mb = env_num("BENCH_STORAGE_MB", 64)
  local size = mb * 1024 * 1024
  local cs, work = storage.DEFAULT_CHUNK_SIZE, storage.DEFAULT_WORK
  local n = size / cs
  local seed = wp.hex(wp.sha256(("11"):rep(32) .. "storage"))
  local opts = { seed = seed, chunk_size = cs, work = work }
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local path = dir .. "/storage.dat"

  local function timed(fn, repeats)
    local ts = {}
    for r = 1, repeats or b.repeats do
      local t0 = wp.now()
      fn()
      ts[r] = wp.now() - t0
    end
    return b.median(ts)
  end

  -- provisioning, and the same bytes written plainly
  local c
  local t_prov = timed(function() c = assert(storage.provision(path, size, opts)) end)
  local data = {}
  do
    local f = assert(io.open(path, "rb"))
    for i = 1, 64 do data[i] = f:read(256 * 1024) end
    f:close()
  end
  local t_write = timed(function()
    local f = assert(io.open(dir .. "/plain.dat", "wb"))
    for _ = 1, size / (64 * 256 * 1024) do
      for i = 1, 64 do f:write(data[i]) end
    end
    f:close()
  end)
  os.remove(dir .. "/plain.dat")
  data = nil
  collectgarbage()   -- a large live heap slows allocation-heavy Lua loops (cache misses)

  -- a challenge of 8 chunks
  local k = 8
  local nonces, s = {}, 0
  local function next_indices()
    s = s + 1
    nonces[s] = nonces[s] or wp.hex(wp.sha256("bench nonce " .. s))
    return assert(storage.indices(nonces[s], n, k))
  end
  local answers, idxs = {}, {}
  local reps = 20
  local t_prove = timed(function()
    for r = 1, reps do
      idxs[r] = next_indices()
      answers[r] = assert(storage.prove(path, c, idxs[r]))
    end
  end) / reps
  local t_verify = timed(function()
    for r = 1, reps do assert(storage.verify(c, idxs[r], answers[r], { check_encoding = true })) end
  end) / reps

  -- re-deriving: chunk n/2 from the seed (the mean over a random index)
  local mid = math.floor(n / 2)
  local t_rederive = timed(function() assert(storage.rederive(mid, opts)) end)
  local tree = assert(io.open(path .. ".tree", "rb")):read("*a")
  local prev = tree:sub((mid - 1) * 32 + 1, mid * 32)
  local t_one = timed(function()
    for _ = 1, 100 do assert(storage.encode_chunk(mid, prev, opts)) end
  end) / 100

  -- the native floor: SHA-256 compression blocks per chunk at the C core's
  -- bulk rate. Per chunk: 2 blocks for the 93-byte seed message, 17 per
  -- work iteration (1 KiB messages), cs/32 for the expansion,
  -- ceil((cs + 1 + 9) / 64) for the leaf hash.
  local mib = ("\0"):rep(1024 * 1024)
  local t_bulk = timed(function() for _ = 1, 64 do wp.sha256(mib) end end)
  local ns_block = t_bulk / (64 * 1024 * 1024 / 64)
  local blocks = 2 + 17 * work + cs / 32 + math.ceil((cs + 10) / 64)
  local floor_rederive = (mid + 1) * blocks * ns_block

  os.remove(path)
  os.remove(path .. ".tree")
  os.remove(dir)

  local tag = ("%d MiB, %d B chunks, work %d"):format(mb, cs, work)
  return {
    b.row{ name = "storage provision " .. tag, value = size / t_prov / 1e6, unit = "MB/s",
           anchor_name = "plain write, same bytes", anchor = size / t_write / 1e6, goal_kind = "report" },
    b.row{ name = "storage provision time (goal 1-3 s @64 MiB)", value = t_prov, unit = "s",
           goal = 3 * size / (64 * 1024 * 1024), goal_kind = "max" },
    b.row{ name = "storage prove, k = 8", value = t_prove, unit = "s",
           anchor_name = "re-derive avg chunk (below)", anchor = t_rederive, goal = 0.05, goal_kind = "max" },
    b.row{ name = "storage verify, k = 8, check_encoding", value = t_verify, unit = "s",
           anchor_name = "one F (below)", anchor = t_one, goal = 0.01, goal_kind = "max" },
    b.row{ name = "storage re-derive avg chunk (Lua)", value = t_rederive, unit = "s",
           anchor_name = "native floor (bulk SHA-256)", anchor = floor_rederive, goal = 0.5, goal_kind = "min" },
    b.row{ name = "storage re-derive avg chunk, native floor", value = floor_rederive, unit = "s",
           anchor_name = "C SHA-256 ns per 64 B block", anchor = ns_block * 1e9, anchor_unit = "ns",
           goal_kind = "report" },
    b.row{ name = "storage one F (provider kept leaf hashes)", value = t_one, unit = "s",
           anchor_name = "native floor, one F", anchor = blocks * ns_block, goal_kind = "report" },
  }
end
