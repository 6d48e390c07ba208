-- SPDX-License-Identifier: MIT
-- `workproof uptime ...` end to end: the built CLI on simulated chains.
local cjson = require "cjson"
local h = require "helpers"
local read, write = h.read, h.write

local BIN = (os.getenv("WORKPROOF_BUILD") or "build") .. "/workproof"
local PSEED = ("01"):rep(32)
local CSEED = ("02"):rep(32)

local function sh_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- run the CLI; returns exit code and combined output
local function run(...)
  local parts = { BIN, "uptime" }
  for _, a in ipairs({ ... }) do parts[#parts + 1] = sh_quote(a) end
  local p = assert(io.popen(table.concat(parts, " ") .. " 2>&1; echo \"__EXIT=$?\""))
  local out = p:read("*a")
  p:close()
  local code = tonumber(out:match("__EXIT=(%d+)%s*$"))
  return code, out:gsub("__EXIT=%d+%s*$", "")
end



local function lines_of(path)
  local t = {}
  for l in read(path):gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("workproof uptime CLI #integration", function()
  local dir, chain, keys

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. sh_quote(dir)))
    chain = dir .. "/chain.jsonl"
    local code, out = run("simulate", "--out", chain, "--hours", "2", "--gap", "30:40",
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    keys = { provider = out:match("provider key%s+(%x+)"), consumer = out:match("consumer key%s+(%x+)") }
  end)

  teardown(function()
    os.execute("rm -rf " .. sh_quote(dir))
  end)

  local function verify(file, ...)
    return run("verify", file, "--provider-key", keys.provider, "--consumer-key", keys.consumer, ...)
  end

  it("simulates a signed chain with the given keys and a gap", function()
    -- seeds 01..01 / 02..02 give fixed public keys
    assert.equal(64, #keys.provider)
    assert.equal(64, #keys.consumer)
    assert.equal(110, #lines_of(chain))
    local b = cjson.decode(lines_of(chain)[1])
    assert.equal(0, b.sequence)
    assert.equal(("0"):rep(64), b.prevHash)
    assert.equal("string", type(b.timestamp))
  end)

  it("verifies a valid chain: exit 0 and a JSON report", function()
    local code, out = verify(chain)
    assert.equal(0, code, out)
    assert.matches("VALID  110 beats", out)
    code, out = verify(chain, "--json")
    assert.equal(0, code, out)
    local rep = cjson.decode(out)
    assert.is_true(rep.valid)
    assert.equal(110, rep.beats)
    assert.equal(1, #rep.gaps)
    assert.equal(10, rep.gaps[1].missed)
    assert.equal(2, #rep.epochs)
    assert.same({ 60, 50 }, { rep.epochs[1].count, rep.epochs[2].count })
    assert.matches("^%x+$", rep.epochs[1].root)
    assert.equal(64, #rep.epochs[1].root)
    assert.near(1 - 600 / 7200, rep.uptime, 0.01)
  end)

  it("names the tampering and the line: exit 1", function()
    local l = lines_of(chain)
    local function case(mutate, reason, line)
      local t = {}
      for i, x in ipairs(l) do t[i] = x end
      mutate(t)
      local f = dir .. "/tampered.jsonl"
      write(f, table.concat(t, "\n") .. "\n")
      local code, out = verify(f)
      assert.equal(1, code, out)
      assert.matches("INVALID  " .. reason, out)
      if line then assert.matches("line " .. line .. "%)", out) end
      code, out = verify(f, "--json")
      assert.equal(1, code)
      local rep = cjson.decode(out)
      assert.is_false(rep.valid)
      assert.equal(reason, rep.reason)
    end
    case(function(t) t[20] = t[20]:gsub('"timestamp":"(%d+)"', function(d) return '"timestamp":"' .. d:sub(1, -2)
      .. (d:sub(-1) == "0" and "1" or "0") .. '"' end) end, "BAD_PROVIDER_SIG", 20)
    case(function(t) table.remove(t, 50) end, "BAD_SEQUENCE", 50)
    case(function(t) t[7], t[8] = t[8], t[7] end, "BAD_SEQUENCE", 7)
    case(function(t) table.insert(t, 9, t[8]) end, "BAD_SEQUENCE", 9)
    case(function(t) t[3] = t[3]:gsub('"hash":"(%x)', '"hash":"%1%1'):gsub('%x"}$', '"}') end, "BAD_HASH", 3)
    case(function(t) t[4] = t[4]:gsub('"leaseId":"%x%x', '"leaseId":"ff') end, "LEASE_MISMATCH", 4)
    case(function(t) t[5] = t[5]:gsub('"providerSig":"%x+"', '"providerSig":"zz"') end, "BAD_FORMAT", 5)
  end)

  it("rejects a wrong key: exit 1", function()
    local code, out = run("verify", chain, "--provider-key", keys.consumer, "--consumer-key", keys.consumer)
    assert.equal(1, code)
    assert.matches("BAD_PROVIDER_SIG at beat 1", out)
  end)

  it("refuses unusable input with a clear message: exit 2", function()
    local code, out = verify(dir .. "/missing.jsonl")
    assert.equal(2, code)
    assert.matches("cannot read chain", out)
    local l = lines_of(chain)
    l[12] = "{not json"
    write(dir .. "/broken.jsonl", table.concat(l, "\n"))
    code, out = verify(dir .. "/broken.jsonl")
    assert.equal(2, code)
    assert.matches("malformed JSON line 12", out)
    code, out = run("verify", chain, "--provider-key", "xyz", "--consumer-key", keys.consumer)
    assert.equal(2, code)
    assert.matches("%-%-provider%-key: expected 64 hex digits", out)
    code, out = run("verify", chain)
    assert.equal(2, code)
    assert.matches("%-%-provider%-key is required", out)
    code, out = run("frobnicate")
    assert.equal(2, code)
    assert.matches("unknown command", out)
    code, out = verify(chain, "--policies", dir .. "/nowhere")
    assert.equal(2, code)
    assert.matches("cannot open policy", out)
    code = run("--help")
    assert.equal(0, code)
  end)

  it("reads Go-style bare integer timestamps exactly", function()
    local l = lines_of(chain)
    for i, x in ipairs(l) do l[i] = x:gsub('"timestamp":"(%d+)"', '"timestamp":%1') end
    write(dir .. "/bare.jsonl", table.concat(l, "\n"))
    local code, out = verify(dir .. "/bare.jsonl")
    assert.equal(0, code, out)
  end)

  it("applies the timestamp policy: future, early and the configured interval", function()
    local future = dir .. "/future.jsonl"
    local code, out = run("simulate", "--out", future, "--hours", "0.1", "--start", tostring(os.time() + 3600),
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    code, out = verify(future)
    assert.equal(1, code)
    assert.matches("IN_FUTURE at beat 1", out)
    local fast = dir .. "/fast.jsonl"
    code = run("simulate", "--out", fast, "--hours", "0.2", "--interval", "20", "--jitter", "1",
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code)
    code, out = verify(fast)
    assert.equal(1, code)
    assert.matches("TOO_EARLY at beat 2", out)
    code, out = verify(fast, "--interval", "20", "--tolerance", "5")
    assert.equal(0, code, out)
  end)

  it("verifies key rotations across an epoch boundary from a rotations file", function()
    local rc, rr = dir .. "/rot.jsonl", dir .. "/rotations.jsonl"
    local code, out = run("simulate", "--out", rc, "--hours", "2", "--rotate", "provider:59",
      "--rotate", "consumer:61", "--rotate", "provider:100", "--rotations-out", rr,
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    assert.matches("3 rotation record", out)
    assert.equal(3, #lines_of(rr))
    code, out = verify(rc, "--rotations", rr)
    assert.equal(0, code, out)
    code, out = verify(rc, "--rotations", rr, "--json")
    assert.equal(0, code)
    local rep = cjson.decode(out)
    assert.equal(3, #rep.key_ranges.provider)
    assert.equal(59, rep.key_ranges.provider[2].first)
    code, out = verify(rc)
    assert.equal(1, code)
    assert.matches("BAD_PROVIDER_SIG at beat 60", out)
    -- a tampered record
    local recs = lines_of(rr)
    recs[2] = recs[2]:gsub('"effectiveSequence":61', '"effectiveSequence":62')
    write(rr, table.concat(recs, "\n"))
    code, out = verify(rc, "--rotations", rr)
    assert.equal(1, code)
    assert.matches("BAD_ROTATION", out)
    assert.matches("BAD_SIGNATURE", out)
  end)

  it("rolls a chain into claims of 194 bytes and proves one beat", function()
    local out_dir = dir .. "/claims"
    local code, out = run("claim", chain, "--provider-seed", PSEED, "--consumer-key", keys.consumer,
      "--beat", "37", "--out", out_dir)
    assert.equal(0, code, out)
    assert.matches("110 beats %-> 2 epoch%(s%) %-> 1 claim%(s%) %(chain verified%)", out)
    assert.matches("194 bytes, provider%-signed", out)
    assert.matches("disclosure proof for beat 37: 706 bytes, 6 %+ 1 path hashes, verifies", out)
    assert.equal(194, #read(out_dir .. "/claim-0000.bin"))
    assert.equal(706, #read(out_dir .. "/proof-37.bin"))
    local proof = cjson.decode(read(out_dir .. "/proof-37.json"))
    assert.equal(37, proof.beat.sequence)
    assert.equal(2, #cjson.decode(read(out_dir .. "/epochs.json")))
    code, out = run("claim", chain, "--json")
    assert.equal(0, code)
    local rep = cjson.decode(out:match("{.*}"))
    assert.is_false(rep.verified)
    assert.equal(194, rep.claim_bytes)
    assert.is_false(rep.claims[1].signed)
    code, out = run("claim", chain, "--beat", "5000")
    assert.equal(2, code)
    assert.matches("not in the chain", out)
  end)

  it("renders the uptime timeline as SVG", function()
    local svg = dir .. "/r.svg"
    local code, out = run("report", chain, "--out", svg)
    assert.equal(0, code, out)
    local s = read(svg)
    assert.matches("^<svg", s)
    assert.matches("uptime 9%d%.%d%d %%", s)
    assert.matches('fill="#d62728"', s)                 -- the gap
    assert.matches("epoch boundary %(1%)", s)
    if os.execute("command -v rsvg-convert >/dev/null 2>&1") == 0 then
      assert.equal(0, os.execute("rsvg-convert " .. sh_quote(svg) .. " -o " .. sh_quote(dir .. "/r.png")))
    end
    code = run("report", chain)
    assert.equal(2, code)
  end)

  it("a report's --title keeps the uptime; a 48-hour chart dates its time axis", function()
    local c48, svg = dir .. "/c48.jsonl", dir .. "/r48.svg"
    -- 2025-12-05 01:20 UTC, 48 h of 10-minute beats, 3 h down on the first day
    local code, out = run("simulate", "--out", c48, "--hours", "48", "--interval", "600", "--jitter", "0",
      "--start", "1764897600", "--gap", "600:780", "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    code, out = run("report", c48, "--interval", "600", "--title", "Rack <7>", "--out", svg)
    assert.equal(0, code, out)
    local s = read(svg)
    local pct = out:match("uptime (%d+%.%d)%d* %%")
    assert.is_truthy(pct, out)
    assert.matches("<title>Rack &lt;7&gt;  ·  uptime " .. pct:gsub("%.", "%%.") .. "%d %%</title>", s)
    assert.matches(">Rack &lt;7&gt;  ·  uptime " .. pct:gsub("%.", "%%.") .. "%d %%</text>", s)
    -- ticks every 6 h: times repeat, so each day's first tick carries its date
    local dates = {}
    for d in s:gmatch('fill="#666">(%d%d%d%d%-%d%d%-%d%d)</text>') do dates[#dates + 1] = d end
    assert.same({ "2025-12-05", "2025-12-06", "2025-12-07" }, dates)
    local times = {}
    for tm in s:gmatch('fill="#333">(%d%d:%d%d)</text>') do times[tm] = (times[tm] or 0) + 1 end
    assert.equal(2, times["06:00"])
    -- one day only: no dates under the ticks (the 2-hour chart of the spec
    -- above, pinned to one day)
    local c2, svg2 = dir .. "/c2.jsonl", dir .. "/r2.svg"
    code, out = run("simulate", "--out", c2, "--hours", "2", "--start", "1764897600",
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    code, out = run("report", c2, "--out", svg2)
    assert.equal(0, code, out)
    s = read(svg2)
    assert.not_matches('fill="#666">%d%d%d%d%-', s)
    assert.matches("<title>Lease %x+…  uptime 100%.00 %%</title>", s)
  end)

  it("hardens a chain with VDFs and checks them", function()
    local vc = dir .. "/vdf.jsonl"
    local code, out = run("simulate", "--out", vc, "--hours", "0.1", "--vdf-t", "32",
      "--provider-seed", PSEED, "--consumer-seed", CSEED)
    assert.equal(0, code, out)
    assert.matches('"vdf":"5750', read(vc))
    code, out = verify(vc, "--vdf-t", "32")
    assert.equal(0, code, out)
    code, out = verify(vc, "--vdf-t", "33")
    assert.equal(1, code)
    assert.matches("BAD_VDF", out)
    code, out = verify(vc)
    assert.equal(1, code)
    assert.matches("BAD_FORMAT", out)
  end)
end)
