-- SPDX-License-Identifier: MIT
--- Storage challenges (lua/workproof/uptime/storage.lua; docs/uptime.md
-- section 10, "Storage challenges"), BENCH_STORAGE_MB (64) MiB of 4096-byte
-- chunks:
--
--   generate + root    the consumer makes its keyed stream and its root
--                      (what it pays at lease start, and again to check a
--                      commitment it did not upload itself). Anchor: keyed
--                      BLAKE2b at the C core's bulk rate (two compressions a
--                      64-byte block), what native code needs at least
--   upload             the whole transfer as the agents run it: generate,
--                      1 MiB PUTs over TLS 1.3 on loopback (identity
--                      certificates, as the transport), the provider's
--                      receive, then its commit (recomputed root, sidecar).
--                      Anchor: writing the same bytes to a file plainly
--   commit             the provider's side of the commit alone (reads the
--                      file, hashes it, writes the sidecar)
--   prove / verify     k = 8 chunks; verify with the consumer's key (proofs
--                      and regenerated chunks) and without (a third party)
local wp = require "workproof"
local storage = require "workproof.uptime.storage"

local function env_num(name, default) return tonumber(os.getenv(name) or "") or default end

return function(b)
  local host = require "workproof.host"
  local mb = env_num("BENCH_STORAGE_MB", 64)
  local size = mb * 1024 * 1024
  local cs = storage.DEFAULT_CHUNK_SIZE
  local n = size / cs
  local wanted = { size = size, chunk_size = cs }
  local key = storage.key(wp.hex(wp.sha256("bench consumer seed")), wp.hex(wp.sha256("bench lease")))
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

  -- the consumer: its stream and root
  local c
  local t_gen = timed(function() c = assert(storage.root(key, size)) end)
  local mib = ("\0"):rep(1024 * 1024)
  local t_b2 = timed(function() for _ = 1, 16 do wp.blake2b(mib, 64) end end) / 16   -- s per MiB, bulk
  local floor_gen = 2 * t_b2 * mb   -- two compressions (key block, counter block) per 64-byte output

  -- the upload over the agents' transport: TLS 1.3, identity certificates, pinned both ways
  local pseed, cseed = wp.hex(wp.sha256("bench provider")), wp.hex(wp.sha256("bench consumer"))
  local ppub, cpub = wp.hex((wp.ed25519.keypair(wp.unhex(pseed)))), wp.hex((wp.ed25519.keypair(wp.unhex(cseed))))
  local pid, cid = assert(host.tls_identity(pseed, 3600)), assert(host.tls_identity(cseed, 3600))
  local srv = assert(host.http_listen { host = "127.0.0.1", port = 0, tls = { cert = pid.cert, key = pid.key,
    pins = { cpub } }, handler = function(req)
      if req.method == "PUT" then
        local have, err = storage.receive(path, wanted, tonumber(req.query:match("offset=(%d+)")), req.body)
        if not have then return 409, {}, err end
        return 200, {}, tostring(have)
      end
      local got, err = storage.finish(path, wanted, req.body)
      if not got then return 409, {}, err end
      return 200, {}, got.root
    end })
  local base = ("https://127.0.0.1:%d/storage"):format(srv.port)
  local tls = { cert = cid.cert, key = cid.key, pin = ppub }
  local t_upload = timed(function()
    os.remove(path)
    os.remove(path .. ".tree")
    local exp = assert(storage.slices(key, size, {}, function(off, data)
      local st, _, body = host.http_request { url = base .. "?offset=" .. off, method = "PUT", body = data, tls = tls,
        timeout = 60 }
      return st == 200 or nil, body
    end))
    local st, _, body = host.http_request { url = base .. "/commit", method = "POST", body = exp.root, tls = tls,
      timeout = 120 }
    assert(st == 200 and body == c.root, tostring(body))
  end)
  srv:close()

  -- the commit alone: the provider reads, hashes and writes the sidecar
  local t_commit = timed(function()
    assert(os.rename(path, path .. ".part"))
    assert(storage.finish(path, wanted, c.root))
  end)

  -- the same bytes written plainly
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
  collectgarbage()

  -- a challenge of 8 chunks
  local k = 8
  local s = 0
  local function next_indices()
    s = s + 1
    return assert(storage.indices(wp.hex(wp.sha256("bench nonce " .. s)), n, k))
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
    for r = 1, reps do assert(storage.verify(c, idxs[r], answers[r], { key = key })) end
  end) / reps
  local t_verify_proofs = timed(function()
    for r = 1, reps do assert(storage.verify(c, idxs[r], answers[r])) end
  end) / reps
  local t_one = timed(function()
    for i = 1, 100 do assert(storage.generate(key, i, cs)) end
  end) / 100

  os.remove(path)
  os.remove(path .. ".tree")
  os.remove(dir)

  local tag = ("%d MiB, %d B chunks"):format(mb, cs)
  return {
    b.row{ name = "storage generate + root " .. tag, value = size / t_gen / 1e6, unit = "MB/s",
           anchor_name = "native floor (keyed BLAKE2b)", anchor = size / floor_gen / 1e6, goal_kind = "report" },
    b.row{ name = "storage upload " .. tag .. " (TLS loopback)", value = size / t_upload / 1e6, unit = "MB/s",
           anchor_name = "plain write, same bytes", anchor = size / t_write / 1e6, goal_kind = "report" },
    b.row{ name = "storage upload time, generate to commit", value = t_upload, unit = "s",
           goal = 3 * size / (64 * 1024 * 1024), goal_kind = "max" },
    b.row{ name = "storage provider commit (read, hash, sidecar)", value = t_commit, unit = "s",
           goal_kind = "report" },
    b.row{ name = "storage prove, k = 8", value = t_prove, unit = "s", goal = 0.05, goal_kind = "max" },
    b.row{ name = "storage verify, k = 8, proofs + key", value = t_verify, unit = "s",
           anchor_name = "regenerate one chunk", anchor = t_one, goal = 0.01, goal_kind = "max" },
    b.row{ name = "storage verify, k = 8, proofs only (3rd party)", value = t_verify_proofs, unit = "s",
           goal = 0.01, goal_kind = "max" },
  }
end
