-- SPDX-License-Identifier: MIT
--- Shared helpers for specs: one entry point (DESIGN.md convention 10).
local wp = require "workproof"

local _M = {}

--- Decode hex or fail the spec loudly (fixtures are trusted).
function _M.unhex(h)
  local s, err = wp.unhex(h)
  if not s then error("bad hex fixture: " .. tostring(err), 2) end
  return s
end

--- Deterministic pseudo-random generator (xorshift32), so a failing random
-- chunking can be replayed from its seed.
function _M.rng(seed)
  local x = seed % 4294967296
  if x == 0 then x = 2463534242 end
  local bit = require "bit"
  return function(n)
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    local u = x % 4294967296
    return n and (u % n) + 1 or u
  end
end

--- Split s into random chunks (sizes 1..maxlen) with a seeded rng.
function _M.random_chunks(s, seed, maxlen)
  local r, out, i = _M.rng(seed), {}, 1
  while i <= #s do
    local n = r(maxlen or 64)
    out[#out + 1] = s:sub(i, i + n - 1)
    i = i + n
  end
  return out
end

--- Read a whole file (fixtures).
function _M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

return _M
