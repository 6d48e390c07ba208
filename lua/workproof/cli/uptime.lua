-- SPDX-License-Identifier: MIT
--- `workproof uptime ...`: verify, simulate, claim and report heartbeat
-- chains (docs/uptime.md, "CLI"). Run by core/host/cmd_uptime.c as
-- main(...) in a host coroutine; main returns the exit code:
--   0 valid / done, 1 invalid chain, 2 unusable input or usage error.
local wp = require "workproof"
local policy = require "workproof.policy"
local cjson = require "cjson.safe"
local args = require "workproof.cli.args"
local bit = require "bit"

local io, os, type, tostring, tonumber, ipairs, pairs, floor, concat, fmt =
  io, os, type, tostring, tonumber, ipairs, pairs, math.floor, table.concat, string.format
local u = wp.uptime

local _M = {}

local NS = 1e9

local POLICIES_OPT = { "--policies", arg = "DIR", help = "policy files (default: <repo>/policies)" }

-- One declaration per command: parses its arguments and prints its help
-- (workproof.cli.args).
local DECL = {
  verify = {
    name = "workproof uptime verify",
    summary = "verify signatures, links, sequence, key rotation and timestamps",
    description = "Verifies a heartbeat chain: signatures, hash links, sequence, key rotation and\n"
      .. "timestamps (docs/uptime.md). Exit 0 valid, 1 invalid, 2 unusable input.",
    positionals = { { "CHAIN.jsonl", help = "one JSON heartbeat per line (or a JSON array)" } },
    options = {
      { "--provider-key", arg = "HEX", required = true, help = "the provider's ed25519 public key (64 hex)" },
      { "--consumer-key", arg = "HEX", required = true, help = "the consumer's ed25519 public key (64 hex)" },
      { "--interval", arg = "S", help = "expected seconds between beats (default: the timestamps policy's)" },
      { "--tolerance", arg = "S", help = "seconds a beat may be late before it counts as a gap" },
      { "--drift", arg = "S", help = "seconds a timestamp may lie ahead of this host's clock" },
      { "--rotations", arg = "FILE", help = "key rotation records (JSON lines), e.g. from simulate --rotations-out" },
      { "--governance-key", arg = "HEX", help = "the key that signs emergency rotations (64 hex)" },
      { "--vdf-t", arg = "T", help = "the chain carries VDF blocks of T iterations" },
      { "--json", help = "print the report as JSON" },
      POLICIES_OPT,
    },
  },
  simulate = {
    name = "workproof uptime simulate",
    summary = "write a signed chain (one JSON heartbeat per line); prints the keys",
    description = "Writes a dual-signed heartbeat chain, with gaps and key rotations if asked.",
    options = {
      { "--out", arg = "FILE", required = true, help = "where the chain goes" },
      { "--hours", arg = "H", default = 24, help = "length of the chain" },
      { "--interval", arg = "S", default = 60, help = "seconds between beats" },
      { "--gap", arg = "FROM_MIN:TO_MIN", list = true, help = "leave out the beats in these minutes" },
      { "--provider-seed", arg = "HEX", help = "the provider key's ed25519 seed (64 hex; default: random)" },
      { "--consumer-seed", arg = "HEX", help = "the consumer key's ed25519 seed (64 hex; default: random)" },
      { "--lease", arg = "HEX", help = "the lease id (64 hex; default: derived from the seeds)" },
      { "--start", arg = "UNIX_SECONDS", help = "the first beat's time (default: so the chain ends now)" },
      { "--jitter", arg = "S", default = 2, help = "random +- seconds on each beat, below interval / 4" },
      { "--seed", arg = "N", default = 1, help = "seed of the jitter's random numbers" },
      { "--vdf-t", arg = "T", default = 0, help = "harden each beat with a VDF of T iterations" },
      { "--rotate", arg = "provider|consumer:MINUTE", list = true, help = "rotate that party's key at MINUTE" },
      { "--rotations-out", arg = "FILE", help = "write the rotation records here (for verify --rotations)" },
      POLICIES_OPT,
    },
  },
  claim = {
    name = "workproof uptime claim",
    summary = "roll the chain into epochs and claims, and a disclosure proof for one beat",
    description = "Rolls a chain into Merkle epochs and chained daily claims (194-byte encodings),\n"
      .. "and makes a disclosure proof for one beat. With both keys the chain is verified first.",
    positionals = { { "CHAIN.jsonl", help = "one JSON heartbeat per line (or a JSON array)" } },
    options = {
      { "--out", arg = "DIR", help = "write epochs.json, claims.json, claim-*.bin (and proof-*) here" },
      { "--beat", arg = "SEQUENCE", help = "make a disclosure proof for this beat" },
      { "--provider-seed", arg = "HEX", help = "sign the claims with this provider seed (64 hex)" },
      { "--provider-key", arg = "HEX", help = "verify with this provider public key (64 hex)" },
      { "--consumer-key", arg = "HEX", help = "verify with this consumer public key (64 hex)" },
      { "--interval", arg = "S", help = "expected seconds between beats (for the verification)" },
      { "--rotations", arg = "FILE", help = "key rotation records (JSON lines)" },
      { "--vdf-t", arg = "T", help = "the chain carries VDF blocks of T iterations" },
      { "--json", help = "print the result as JSON" },
      POLICIES_OPT,
    },
  },
  report = {
    name = "workproof uptime report",
    summary = "render the uptime timeline as SVG",
    positionals = { { "CHAIN.jsonl", help = "one JSON heartbeat per line (or a JSON array)" } },
    options = {
      { "--out", arg = "FILE.svg", required = true, help = "where the SVG goes" },
      { "--interval", arg = "S", help = "expected seconds between beats (default: the timestamps policy's)" },
      { "--tolerance", arg = "S", help = "seconds a beat may be late before it counts as a gap" },
      { "--title", arg = "TEXT", help = "the chart's title (default: lease and uptime)" },
      POLICIES_OPT,
    },
  },
  provider = {
    name = "workproof uptime provider",
    summary = "run the provider's agent: sign a beat every interval for each lease",
    description = "Serves the authenticated transport (TLS 1.3, certificates bound to the identity\n"
      .. "key, peers pinned from the leases) and the status API. SIGHUP reloads; SIGTERM stops.",
    positionals = { { "CONFIG.lua", help = "the agent's config (examples/uptime/provider.lua)" } },
  },
  consumer = {
    name = "workproof uptime consumer",
    summary = "run the consumer's agent: check and countersign each lease's beats",
    description = "Connects to each lease's provider over the authenticated transport, checks every\n"
      .. "beat against its own clock and the policies, countersigns and stores it; serves the\n"
      .. "status API. SIGHUP reloads; SIGTERM stops.",
    positionals = { { "CONFIG.lua", help = "the agent's config (examples/uptime/consumer.lua)" } },
  },
  export = {
    name = "workproof uptime export",
    summary = "write a lease's chain (the `uptime verify` format) and its rotation records",
    description = "Reads an agent's store (it may be running) and writes one lease's chain.",
    positionals = { { "CONFIG.lua", help = "the agent's config (its state_dir holds the store)" } },
    options = {
      { "--lease", arg = "ID", help = "the lease id (64 hex; default: the only lease)" },
      { "--out", arg = "FILE", required = true, help = "where the chain goes (JSON lines)" },
      { "--rotations-out", arg = "FILE", help = "where the rotation records go (JSON lines)" },
    },
  },
  fisherman = {
    name = "workproof uptime fisherman",
    summary = "sample providers you have no lease with: challenge them, write signed evidence reports",
    description = "Challenges each target provider over the authenticated transport (latency, compute,\n"
      .. "and as many compute challenges at once as it attests vCPUs) and writes a signed report\n"
      .. "per sample (docs/uptime.md, \"Fisherman\"). SIGTERM stops.",
    positionals = { { "CONFIG.lua", help = "the fisherman's config (examples/uptime/fisherman.lua)" } },
  },
  evidence = {
    name = "workproof uptime evidence",
    summary = "verify a fisherman's evidence report",
    description = "workproof uptime evidence verify FILE: checks the fisherman's signature, every answer's\n"
      .. "provider signature and binding to its challenge, the VDFs and the capacity attestation.\n"
      .. "Exit 0 valid, 1 invalid, 2 unreadable.",
    positionals = { { "verify", help = "the action (verify)" }, { "FILE", help = "the report (JSON)" } },
    options = { { "--json", help = "print the summary as JSON" } },
  },
  arbiter = {
    name = "workproof uptime arbiter",
    summary = "rule on the UptimeRegistry's disputes: check the evidence, apply policies/disputes.lua",
    description = "Watches the registry for disputes, checks each one's evidence with the core's verifiers\n"
      .. "against the posted claims and the lease's anchored keys, rules by the disputes policy and\n"
      .. "submits the ruling through the outbox, once (docs/uptime.md section 12). SIGHUP reloads\n"
      .. "the policy; SIGTERM stops.",
    positionals = { { "CONFIG.lua", help = "the arbiter's config (examples/uptime/arbiter.lua)" } },
  },
  dispute = {
    name = "workproof uptime dispute",
    summary = "re-check a dispute on the registry as the arbiter would, and its ruling",
    description = "workproof uptime dispute check CONFIG.lua ID: reads dispute ID and its evidence from the\n"
      .. "registry named by CONFIG (an arbiter's config, or any with the same chain block), checks\n"
      .. "the evidence, prices it with the disputes policy and compares with the ruling on chain.\n"
      .. "Exit 0 when the ruling on chain (if any) is the one this check gives, 1 when it differs,\n"
      .. "2 unusable input.",
    positionals = { { "check", help = "the action (check)" }, { "CONFIG.lua", help = "the config" },
      { "ID", help = "the dispute id" } },
    options = { { "--json", help = "print the result as JSON" } },
  },
  lease = {
    name = "workproof uptime lease",
    summary = "make a lease: its id from both keys, a start time and a nonce",
    description = "Prints the lease block both agents' configs take (docs/uptime.md, \"Lease\").",
    options = {
      { "--provider-key", arg = "HEX", required = true, help = "the provider's identity key (64 hex)" },
      { "--consumer-key", arg = "HEX", required = true, help = "the consumer's identity key (64 hex)" },
      { "--start", arg = "UNIX_NS", help = "lease start in Unix nanoseconds (default: now)" },
      { "--nonce", arg = "HEX", help = "16 bytes in hex (default: random)" },
      { "--provider", arg = "HOST:PORT", help = "the provider's transport address (for the consumer's block)" },
    },
  },
}

local GROUP = {
  name = "workproof uptime",
  description = "Proof of uptime: heartbeat chains, epochs and claims (docs/uptime.md).\n"
    .. "Exit codes: 0 valid / done, 1 invalid chain, 2 unusable input or usage error.",
  commands = { DECL.verify, DECL.simulate, DECL.claim, DECL.report, DECL.provider, DECL.consumer,
    DECL.export, DECL.lease, DECL.fisherman, DECL.evidence, DECL.arbiter, DECL.dispute },
}

-- ---- small helpers --------------------------------------------------------

local function errf(...) io.stderr:write(fmt(...), "\n") end
local function outf(...) io.stdout:write(fmt(...), "\n") end

local function usage_error(cmd, msg)
  return args.usage_error(cmd and DECL[cmd] or GROUP, msg)
end

local function hexkey(s, len, what)
  if type(s) ~= "string" or #s ~= 2 * len or not s:match("^%x+$") then
    return nil, fmt("%s: expected %d hex digits", what, 2 * len)
  end
  return s:lower()
end

local function number_opt(v, what, min)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n ~= n or (min and n < min) then
    return nil, what .. ": expected a number" .. (min and (" >= " .. min) or "")
  end
  return n
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  if not s then return nil, "read failed" end
  return s
end

local function write_file(path, s)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(s)
  f:close()
  if not ok then return nil, werr end
  return true
end

-- Unix-nanosecond strings <-> (seconds, nanoseconds)
local function ts_split(ts)
  if type(ts) ~= "string" or not ts:match("^%d+$") then return nil end
  if #ts <= 9 then return 0, tonumber(ts) end
  return tonumber(ts:sub(1, -10)), tonumber(ts:sub(-9))
end

local function ts_join(s, n)
  s = s + floor(n / NS)
  n = n % NS
  if s == 0 then return fmt("%d", n) end
  return fmt("%d%09d", s, n)
end

local function ts_seconds(ts)
  local s, n = ts_split(ts)
  return s and (s + n / NS)
end

-- Bare integers in timestamp fields (Go's int64 JSON) lose digits as
-- doubles: quote them before decoding.
local function quote_timestamps(line)
  return (line:gsub('("[%w_]*[Tt]imestamp[%w_]*"%s*:%s*)(%d+)', '%1"%2"'))
end

-- A JSON-lines (or JSON array) file: array of tables, or nil, message.
local function read_jsonl(path, what)
  local s, err = read_file(path)
  if not s then return nil, fmt("cannot read %s %s: %s", what, path, tostring(err)) end
  local items, lines = {}, {}
  if s:match("^%s*%[") then
    local arr = cjson.decode(quote_timestamps(s))
    if type(arr) ~= "table" then return nil, fmt("%s: malformed JSON", path) end
    for i, v in ipairs(arr) do
      if type(v) ~= "table" then return nil, fmt("%s: element %d is not a JSON object", path, i) end
      items[i], lines[i] = v, i
    end
    return items, lines
  end
  local n = 0
  for line in (s .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:match("%S") then
      local v, derr = cjson.decode(quote_timestamps(line))
      if type(v) ~= "table" or v[1] ~= nil then
        return nil, fmt("%s: malformed JSON line %d%s", path, n,
          derr and (": " .. tostring(derr)) or ": expected a JSON object")
      end
      items[#items + 1] = v
      lines[#items] = n
    end
  end
  return items, lines
end

local function policies_dir(opts)
  if opts.policies then return opts.policies end
  local src = debug.getinfo(1, "S").source
  local lua_dir = src:match("^@(.*)/workproof/cli/[^/]*$")
  if not lua_dir then return "policies" end
  local repo = lua_dir:match("^(.*)/lua$")
  return (repo or (lua_dir .. "/..")) .. "/policies"
end

local function clock()
  return wp.hosted and wp.time() or os.time()
end

-- Load and configure one policy; nil, message on failure.
local function load_policy(dir, name, conf)
  local ok, p = pcall(policy.load_file, dir .. "/" .. name .. ".lua", { clock = clock })
  if not ok then return nil, tostring(p) end
  local c, errs = policy.configure(p, conf)
  if not c then
    local schema = require "workproof.schema"
    return nil, name .. " policy config: " .. concat(schema.format_errors(errs), "; ")
  end
  return p, c
end

local function json_out(t)
  io.stdout:write(cjson.encode(t), "\n")
end

-- ---- verification shared by verify / claim / report -------------------------

-- Verify beats; returns a report table (never raises for bad data).
-- o: { provider, consumer (hex), rotations (array|nil), conf = {timestamps conf},
--      rot_conf, dir, vdf_t }
local function check(beats, o)
  local rep = { valid = true, beats = #beats, gaps = {}, epochs = {}, claims = {} }
  local function invalid(reason, index, detail)
    rep.valid, rep.reason, rep.index, rep.detail = false, reason, index, detail
    if index and beats[index] then rep.sequence = beats[index].sequence end
  end
  if #beats == 0 then
    invalid("EMPTY", nil, "no heartbeats")
    return rep
  end
  rep.lease_id = type(beats[1].leaseId) == "string" and beats[1].leaseId:lower() or nil
  rep.first_sequence = beats[1].sequence
  local ts_pol, ts_conf = load_policy(o.dir, "timestamps", o.conf)
  if not ts_pol then return nil, ts_conf end
  local rot_pol, rot_conf = load_policy(o.dir, "key_rotation", o.rot_conf)
  if not rot_pol then return nil, rot_conf end

  -- keys: fixed, or ranges from the rotation records
  local keys = { provider = o.provider, consumer = o.consumer }
  if o.rotations then
    local ranges, why, idx, detail = rot_pol.active_keys(rot_conf, o.rotations, {
      lease_id = rep.lease_id or u.ZERO_HASH, beats = beats,
      initial = { provider = o.provider, consumer = o.consumer },
    })
    if not ranges then
      invalid("BAD_ROTATION", nil, fmt("rotation record %s: %s%s", tostring(idx), tostring(why),
        detail and (" (" .. detail .. ")") or ""))
      return rep
    end
    keys = ranges
    rep.key_ranges = ranges
  end
  local vopts = { vdf_t = o.vdf_t }
  if type(rep.first_sequence) == "number" and rep.first_sequence ~= 0 then
    -- a chain that does not start at genesis: its first link is taken on trust
    vopts.first_sequence = rep.first_sequence
    vopts.prev_hash = type(beats[1].prevHash) == "string" and #beats[1].prevHash == 64
      and beats[1].prevHash:match("^%x+$") and beats[1].prevHash or nil
    rep.anchored = false
  end
  local ok, reason, index, detail = u.verify_chain(beats, keys, vopts)
  if ok == nil then return nil, reason end
  if not ok then
    invalid(reason, index, detail)
    return rep
  end
  local tr = ts_pol.check_chain(ts_conf, beats, {})
  rep.gaps, rep.uptime = tr.gaps, tr.uptime
  rep.downtime_s = tr.downtime_ns / NS
  rep.span_s = tr.span_ns / NS
  rep.interval_s = ts_conf.interval_s
  if not tr.valid then
    invalid(tr.reason, tr.index, tr.detail)
    return rep
  end
  rep.start_ns, rep.end_ns = beats[1].timestamp, beats[#beats].timestamp
  if rep.first_sequence % u.CLAIM_BEATS == 0 then
    local epochs, claims = u.rollup(beats, { flags = (o.vdf_t or 0) > 0 and 1 or 0 })
    rep.epoch_list, rep.claim_list = epochs, claims
    for i, e in ipairs(epochs or {}) do
      rep.epochs[i] = { index = e.index, count = e.count, root = e.root, hash = e.hash }
    end
    for i, c in ipairs(claims or {}) do
      rep.claims[i] = { index = c.index, beats = c.beatCount, epochs = c.epochs, root = c.root, hash = c.hash }
    end
  end
  return rep
end

local function load_rotations(path)
  if not path then return nil end
  local recs, err = read_jsonl(path, "rotations file")
  if not recs then return nil, err end
  return recs
end

-- ---- verify ---------------------------------------------------------------------

local function cmd_verify(argv)
  local opts, code = args.run(DECL.verify, argv)
  if not opts then return code end
  local pos = opts
  local pk, err = hexkey(opts["provider-key"], 32, "--provider-key")
  if not pk then return usage_error("verify", err) end
  local ck
  ck, err = hexkey(opts["consumer-key"], 32, "--consumer-key")
  if not ck then return usage_error("verify", err) end
  local conf = {}
  for _, k in ipairs({ "interval", "tolerance", "drift" }) do
    local v, nerr = number_opt(opts[k], "--" .. k, 0)
    if nerr then return usage_error("verify", nerr) end
    conf[k .. "_s"] = v
  end
  local rot_conf = {}
  if opts["governance-key"] then
    rot_conf.governance_key, err = hexkey(opts["governance-key"], 32, "--governance-key")
    if not rot_conf.governance_key then return usage_error("verify", err) end
  end
  local vdf_t, verr = number_opt(opts["vdf-t"], "--vdf-t", 0)
  if verr then return usage_error("verify", verr) end
  local beats, lines = read_jsonl(pos[1], "chain")
  if not beats then errf("workproof uptime verify: %s", lines) return 2 end
  local rotations, rerr = load_rotations(opts.rotations)
  if rerr then errf("workproof uptime verify: %s", rerr) return 2 end
  local rep, cerr = check(beats, { provider = pk, consumer = ck, conf = conf, rot_conf = rot_conf,
    rotations = rotations, dir = policies_dir(opts), vdf_t = vdf_t })
  if not rep then errf("workproof uptime verify: %s", cerr) return 2 end
  if rep.index then rep.line = lines[rep.index] end
  if opts.json then
    rep.epoch_list, rep.claim_list = nil, nil
    json_out(rep)
  elseif rep.valid then
    outf("VALID  %d beats, lease %s, sequence %d..%d", rep.beats, rep.lease_id or "?", rep.first_sequence,
      rep.first_sequence + rep.beats - 1)
    outf("uptime %.3f %%  over %.1f h, %d gap(s), %.0f s down", rep.uptime * 100, rep.span_s / 3600,
      #rep.gaps, rep.downtime_s)
    for _, g in ipairs(rep.gaps) do
      outf("  gap  %s .. %s  (%d missed beat(s))", os.date("!%Y-%m-%d %H:%M:%S", floor(ts_seconds(g.from_ns))),
        os.date("!%H:%M:%S", floor(ts_seconds(g.to_ns))), g.missed)
    end
    outf("%d epoch(s), %d claim(s)", #rep.epochs, #rep.claims)
    for _, e in ipairs(rep.epochs) do outf("  epoch %-4d %2d beats  root %s", e.index, e.count, e.root) end
    if rep.anchored == false then outf("note: the chain starts at sequence %d, not genesis", rep.first_sequence) end
  else
    local where = rep.index and fmt(" at beat %d (sequence %s, line %s)", rep.index, tostring(rep.sequence),
      tostring(rep.line)) or ""
    outf("INVALID  %s%s%s", rep.reason, where, rep.detail and (": " .. rep.detail) or "")
  end
  return rep.valid and 0 or 1
end

-- ---- simulate -------------------------------------------------------------------

local function rng(seed)
  local x = seed % 4294967296
  if x == 0 then x = 2463534242 end
  return function(n)
    x = bit.bxor(x, bit.lshift(x, 13))
    x = bit.bxor(x, bit.rshift(x, 17))
    x = bit.bxor(x, bit.lshift(x, 5))
    local v = x % 4294967296
    return n and v % n or v
  end
end

local function random_bytes(n)
  local f = io.open("/dev/urandom", "rb")
  if f then
    local s = f:read(n)
    f:close()
    if s and #s == n then return s end
  end
  return wp.sha256(tostring(os.time()) .. tostring(os.clock()) .. tostring({})):sub(1, n)
end

local beat_line = require("workproof.uptime.ledger").beat_json

local function cmd_simulate(argv)
  local opts, code = args.run(DECL.simulate, argv)
  if not opts then return code end
  local hours, e1 = number_opt(opts.hours or "24", "--hours", 0)
  local interval, e2 = number_opt(opts.interval or "60", "--interval", 1)
  local jitter, e3 = number_opt(opts.jitter or "2", "--jitter", 0)
  local vdf_t, e4 = number_opt(opts["vdf-t"] or "0", "--vdf-t", 0)
  local seed, e5 = number_opt(opts.seed or "1", "--seed", 0)
  local nerr = e1 or e2 or e3 or e4 or e5
  if nerr then return usage_error("simulate", nerr) end
  if jitter * 4 >= interval then return usage_error("simulate", "--jitter must stay below interval / 4") end
  local function seed_of(name)
    if not opts[name] then return random_bytes(32) end
    local h, herr = hexkey(opts[name], 32, "--" .. name)
    if not h then return nil, herr end
    return wp.unhex(h)
  end
  local ps, err = seed_of("provider-seed")
  if not ps then return usage_error("simulate", err) end
  local cs
  cs, err = seed_of("consumer-seed")
  if not cs then return usage_error("simulate", err) end
  local lease = opts.lease
  if lease then
    lease, err = hexkey(lease, 32, "--lease")
    if not lease then return usage_error("simulate", err) end
  else
    lease = wp.hex(wp.sha256("workproof-lease" .. ps .. cs))
  end
  local start = opts.start and tonumber(opts.start)
  if opts.start and (not start or start < 0 or start ~= floor(start)) then
    return usage_error("simulate", "--start: expected whole Unix seconds")
  end
  local nslots = floor(hours * 3600 / interval + 0.5)
  start = start or (floor(clock()) - floor(nslots * interval) - 5)
  local gaps = {}
  for _, g in ipairs(opts.gap or {}) do
    local a, b = g:match("^(%d+%.?%d*):(%d+%.?%d*)$")
    if not a or tonumber(a) >= tonumber(b) then
      return usage_error("simulate", "--gap: expected FROM_MIN:TO_MIN with FROM < TO, got " .. g)
    end
    gaps[#gaps + 1] = { tonumber(a) * 60, tonumber(b) * 60 }
  end
  -- keys, with rotations: the k-th new key of a party comes from SHA-256(seed || k)
  local keys = {}
  for party, s in pairs({ provider = ps, consumer = cs }) do
    local pub, sec = wp.ed25519.keypair(s)
    keys[party] = { pub = pub, sec = sec, seed = s, n = 0 }
  end
  local rotations, rot_at = {}, {}
  for _, r in ipairs(opts.rotate or {}) do
    local party, m = r:match("^(%a+):(%d+%.?%d*)$")
    if not keys[party] then return usage_error("simulate", "--rotate: expected provider|consumer:MINUTE") end
    rot_at[#rot_at + 1] = { party = party, at = tonumber(m) * 60 }
  end
  table.sort(rot_at, function(a, b) return a.at < b.at end)
  local prev_rec = { provider = u.ZERO_HASH, consumer = u.ZERO_HASH }

  local r = rng(seed)
  local f, ferr = io.open(opts.out, "wb")
  if not f then errf("workproof uptime simulate: cannot write %s: %s", opts.out, tostring(ferr)) return 2 end
  local initial = { provider = wp.hex(keys.provider.pub), consumer = wp.hex(keys.consumer.pub) }
  local prev, seq, written, ri = nil, 0, 0, 1
  for slot = 0, nslots - 1 do
    local rel = slot * interval
    local down = false
    for _, g in ipairs(gaps) do if rel >= g[1] and rel < g[2] then down = true end end
    if not down then
      local rel_ns = floor(rel * NS)
      if jitter > 0 then
        rel_ns = rel_ns + (r(floor(2 * jitter * 1000) + 1) - floor(jitter * 1000)) * 1e6 + r(1000000)
      end
      if slot == 0 and rel_ns < 0 then rel_ns = 0 end
      local ts = ts_join(start + floor(rel_ns / NS), rel_ns % NS)
      -- rotations due at this point take effect at this beat
      while rot_at[ri] and rot_at[ri].at <= rel do
        local k = keys[rot_at[ri].party]
        k.n = k.n + 1
        local npub, nsec = wp.ed25519.keypair(wp.sha256(k.seed .. tostring(k.n)))
        local rec = {
          leaseId = lease, party = rot_at[ri].party, index = k.n - 1, newKey = wp.hex(npub),
          effectiveSequence = seq, prevHash = prev_rec[rot_at[ri].party], reason = "scheduled",
        }
        assert(u.rotation_sign(rec, k.sec))
        prev_rec[rot_at[ri].party] = u.rotation_hash(rec)
        rotations[#rotations + 1] = rec
        k.pub, k.sec = npub, nsec
        ri = ri + 1
      end
      local b = assert(u.build(lease, seq, ts, prev))
      if vdf_t > 0 then b.vdf = assert(u.vdf_make(b.prevHash, vdf_t)) end
      assert(u.sign(b, keys.provider.sec))
      assert(u.countersign(b, keys.provider.pub, keys.consumer.sec))
      f:write(beat_line(b), "\n")
      prev, seq, written = b.hash, seq + 1, written + 1
    end
  end
  f:close()
  if opts["rotations-out"] then
    local lines = {}
    for i, rec in ipairs(rotations) do
      lines[i] = require("workproof.uptime.ledger").rotation_json(rec)
    end
    local ok, werr = write_file(opts["rotations-out"], concat(lines, "\n") .. (#lines > 0 and "\n" or ""))
    if not ok then
      errf("workproof uptime simulate: cannot write %s: %s", opts["rotations-out"], tostring(werr))
      return 2
    end
  end
  outf("wrote %d heartbeats to %s (%d slots of %g s, %d missed)", written, opts.out, nslots, interval, nslots - written)
  outf("lease         %s", lease)
  outf("provider key  %s", initial.provider)
  outf("consumer key  %s", initial.consumer)
  if #rotations > 0 then
    outf("%d rotation record(s)%s", #rotations, opts["rotations-out"] and (" in " .. opts["rotations-out"]) or "")
  end
  if vdf_t > 0 then outf("VDF hardening T = %d", vdf_t) end
  return 0
end

-- ---- claim ----------------------------------------------------------------------

local function cmd_claim(argv)
  local opts, code = args.run(DECL.claim, argv)
  if not opts then return code end
  local pos = opts
  local psec, ppub, err
  if opts["provider-seed"] then
    local h
    h, err = hexkey(opts["provider-seed"], 32, "--provider-seed")
    if not h then return usage_error("claim", err) end
    ppub, psec = wp.ed25519.keypair(wp.unhex(h))
  end
  local pk, ck
  if opts["provider-key"] then
    pk, err = hexkey(opts["provider-key"], 32, "--provider-key")
    if not pk then return usage_error("claim", err) end
  elseif ppub then
    pk = wp.hex(ppub)
  end
  if opts["consumer-key"] then
    ck, err = hexkey(opts["consumer-key"], 32, "--consumer-key")
    if not ck then return usage_error("claim", err) end
  end
  local interval, ierr = number_opt(opts.interval, "--interval", 1)
  if ierr then return usage_error("claim", ierr) end
  local vdf_t, verr = number_opt(opts["vdf-t"], "--vdf-t", 0)
  if verr then return usage_error("claim", verr) end
  local beat_seq
  if opts.beat then
    beat_seq = tonumber(opts.beat)
    if not beat_seq or beat_seq < 0 or beat_seq ~= floor(beat_seq) then
      return usage_error("claim", "--beat: expected a sequence number")
    end
  end
  local beats, lines = read_jsonl(pos[1], "chain")
  if not beats then errf("workproof uptime claim: %s", lines) return 2 end
  local raw = read_file(pos[1]) or ""
  local rotations, rerr = load_rotations(opts.rotations)
  if rerr then errf("workproof uptime claim: %s", rerr) return 2 end
  local verified = false
  if pk and ck then
    local rep, cerr = check(beats, { provider = pk, consumer = ck, conf = { interval_s = interval },
      rot_conf = {}, rotations = rotations, dir = policies_dir(opts), vdf_t = vdf_t })
    if not rep then errf("workproof uptime claim: %s", cerr) return 2 end
    if not rep.valid then
      errf("workproof uptime claim: the chain is INVALID: %s at beat %s (line %s)%s", rep.reason,
        tostring(rep.index), tostring(rep.index and lines[rep.index]), rep.detail and (": " .. rep.detail) or "")
      return 1
    end
    verified = true
  else
    errf("warning: chain not verified (pass --provider-key/--provider-seed and --consumer-key)")
  end
  if #beats == 0 then errf("workproof uptime claim: no heartbeats") return 2 end
  local epochs, claims = u.rollup(beats, { flags = (vdf_t or 0) > 0 and 1 or 0 })
  if not epochs then errf("workproof uptime claim: %s", claims) return 1 end
  local encoded, report = {}, { verified = verified, beats = #beats, chain_bytes = #raw,
    packed_bytes = #(u.pack(beats) or ""), epochs = {}, claims = {} }
  for i, c in ipairs(claims) do
    local enc
    if psec then
      enc = assert(u.claim_encode(c, psec))
    else
      c.signature = ("00"):rep(64)
      enc = assert(u.claim_encode(c))
    end
    encoded[i] = enc
    report.claims[i] = { index = c.index, beats = c.beatCount, epochs = c.epochs, root = c.root,
      hash = c.hash, prevClaimHash = c.prevClaimHash, periodStart = c.periodStart, periodEnd = c.periodEnd,
      signed = psec ~= nil, size = #enc, encoded = wp.hex(enc) }
  end
  for i, e in ipairs(epochs) do report.epochs[i] = e end
  local total = 0
  for _, e in ipairs(encoded) do total = total + #e end
  report.claim_bytes = total
  report.compression = total > 0 and #raw / total or nil
  if beat_seq then
    local idx = beat_seq - beats[1].sequence + 1
    if not beats[idx] or beats[idx].sequence ~= beat_seq then
      errf("workproof uptime claim: --beat %d is not in the chain", beat_seq)
      return 2
    end
    local ci = floor(beat_seq / u.CLAIM_BEATS) - floor(beats[1].sequence / u.CLAIM_BEATS) + 1
    local proof, perr = u.proof_make(beats, idx, epochs, encoded[ci])
    if not proof then errf("workproof uptime claim: %s", perr) return 1 end
    report.proof = { sequence = beat_seq, size = #proof, encoded = wp.hex(proof), decoded = u.proof_decode(proof) }
    if pk and ck and psec and not rotations then
      report.proof.verified = u.proof_verify(proof, { provider = pk, consumer = ck }, { vdf_t = vdf_t })
    end
    if opts.out then report.proof.bytes = proof end
  end
  if opts.out then
    local made, merr = require("workproof.fs").mkdir_p(opts.out)
    if not made then error(fmt("cannot create %s: %s", opts.out, merr), 0) end
    local function put(name, s)
      local ok, werr = write_file(opts.out .. "/" .. name, s)
      if not ok then error(fmt("cannot write %s/%s: %s", opts.out, name, tostring(werr)), 0) end
    end
    local ok, werr = pcall(function()
      put("epochs.json", cjson.encode(epochs) .. "\n")
      for i, enc in ipairs(encoded) do put(fmt("claim-%04d.bin", claims[i].index), enc) end
      put("claims.json", cjson.encode(report.claims) .. "\n")
      if report.proof then
        put(fmt("proof-%d.bin", beat_seq), report.proof.bytes)
        put(fmt("proof-%d.json", beat_seq), cjson.encode(report.proof.decoded) .. "\n")
      end
    end)
    if not ok then errf("workproof uptime claim: %s", tostring(werr)) return 2 end
    if report.proof then report.proof.bytes = nil end
  end
  if opts.json then
    json_out(report)
    return 0
  end
  outf("%d beats -> %d epoch(s) -> %d claim(s)%s", #beats, #epochs, #claims, verified and " (chain verified)" or "")
  for _, c in ipairs(report.claims) do
    outf("claim %d: %d beats in %d epochs, %d bytes%s", c.index, c.beats, c.epochs, c.size,
      c.signed and ", provider-signed" or ", UNSIGNED (pass --provider-seed)")
    outf("  root %s", c.root)
    outf("  hash %s", c.hash)
    outf("  %s", c.encoded)
  end
  outf("sizes: chain file %d B, packed binary %d B, claims %d B: %.0fx smaller than the chain file",
    report.chain_bytes, report.packed_bytes, total, report.compression or 0)
  if report.proof then
    local p = report.proof
    outf("disclosure proof for beat %d: %d bytes, %d + %d path hashes%s", p.sequence, p.size,
      #p.decoded.epochPath, #p.decoded.claimPath,
      p.verified == nil and "" or (p.verified and ", verifies" or ", DOES NOT VERIFY"))
    outf("  %s", p.encoded)
  end
  if opts.out then
    outf("wrote epochs.json, claims.json, claim-*.bin%s to %s", report.proof and ", proof-*" or "", opts.out)
  end
  return 0
end

-- ---- report (SVG) ------------------------------------------------------------------

local render_svg = require("workproof.uptime.svg").render

local function cmd_report(argv)
  local opts, code = args.run(DECL.report, argv)
  if not opts then return code end
  local pos = opts
  local interval, ierr = number_opt(opts.interval, "--interval", 1)
  local tolerance, terr = number_opt(opts.tolerance, "--tolerance", 0)
  if ierr or terr then return usage_error("report", ierr or terr) end
  local beats, lines = read_jsonl(pos[1], "chain")
  if not beats then errf("workproof uptime report: %s", lines) return 2 end
  if #beats == 0 then errf("workproof uptime report: no heartbeats in %s", pos[1]) return 2 end
  local p, conf = load_policy(policies_dir(opts), "timestamps", { interval_s = interval, tolerance_s = tolerance })
  if not p then errf("workproof uptime report: %s", conf) return 2 end
  -- a report draws what the beats claim: the clock check is not the point here
  conf.drift_s = 300
  local tr = p.check_chain(conf, beats, {})
  if tr.reason == "BAD_TIMESTAMP" or tr.reason == "NOT_INCREASING" then
    errf("workproof uptime report: cannot draw: %s at beat %d (line %d)", tr.reason, tr.index, lines[tr.index])
    return 2
  end
  local lease = type(beats[1].leaseId) == "string" and beats[1].leaseId or "?"
  -- the uptime is the chart's point: in the title whatever --title says
  local pct = fmt("uptime %.2f %%", tr.uptime * 100)
  local title = opts.title and (opts.title .. "  ·  " .. pct) or fmt("Lease %s…  %s", lease:sub(1, 16), pct)
  local ok, werr = write_file(opts.out, render_svg(beats, tr, conf.interval_s, title))
  if not ok then errf("workproof uptime report: cannot write %s: %s", opts.out, tostring(werr)) return 2 end
  outf("wrote %s: %d beats, uptime %.3f %%, %d gap(s)%s", opts.out, #beats, tr.uptime * 100, #tr.gaps,
    tr.valid and "" or fmt(" (timestamps: %s at beat %d)", tr.reason, tr.index))
  return 0
end

-- ---- agents --------------------------------------------------------------------------

local function agent_cmd(role)
  return function(argv)
    local opts, code = args.run(DECL[role], argv)
    if not opts then return code end
    return require("workproof.uptime.agent").run(role, opts[1])
  end
end

local function cmd_export(argv)
  local opts, code = args.run(DECL.export, argv)
  if not opts then return code end
  local agent = require "workproof.uptime.agent"
  local conf, errs = agent.load_config(opts[1], "consumer")
  if not conf then conf, errs = agent.load_config(opts[1], "provider") end
  if not conf then errf("workproof uptime export: %s", concat(errs, "; ")) return 2 end
  local ledger = require "workproof.uptime.ledger"
  local led, lerr = ledger.open(conf.state_dir)
  if not led then errf("workproof uptime export: %s", lerr) return 2 end
  local id = opts.lease and opts.lease:lower()
  if not id then
    local rows = led:x("SELECT id FROM leases")
    if #rows ~= 1 then
      led:close()
      return usage_error("export", ("--lease: this store holds %d leases"):format(#rows))
    end
    id = rows[1].id
  end
  local lease = led:x("SELECT * FROM leases WHERE id = ?", id)[1]
  if not lease then led:close() errf("workproof uptime export: no lease %s in %s", id, conf.state_dir) return 2 end
  local lines = {}
  for i, b in ipairs(led:beats(id)) do lines[i] = ledger.beat_json(b) end
  local rot = {}
  for i, r in ipairs(led:rotations(id)) do rot[i] = ledger.rotation_json(r) end
  led:close()
  local ok, werr = write_file(opts.out, concat(lines, "\n") .. (#lines > 0 and "\n" or ""))
  if ok and opts["rotations-out"] then
    ok, werr = write_file(opts["rotations-out"], concat(rot, "\n") .. (#rot > 0 and "\n" or ""))
  end
  if not ok then errf("workproof uptime export: %s", tostring(werr)) return 2 end
  outf("wrote %d heartbeats of lease %s to %s%s", #lines, id, opts.out,
    opts["rotations-out"] and fmt(" and %d rotation record(s) to %s", #rot, opts["rotations-out"]) or "")
  outf("provider key  %s", lease.provider_key)
  outf("consumer key  %s", lease.consumer_key)
  return 0
end

local function cmd_lease(argv)
  local opts, code = args.run(DECL.lease, argv)
  if not opts then return code end
  local pk, e1 = hexkey(opts["provider-key"], 32, "--provider-key")
  local ck, e2 = hexkey(opts["consumer-key"], 32, "--consumer-key")
  if not pk or not ck then return usage_error("lease", e1 or e2) end
  local start = opts.start or require("workproof.uptime.agent").now_ns()
  if not start:match("^%d+$") or #start > 19 then return usage_error("lease", "--start: expected Unix nanoseconds") end
  local nonce = opts.nonce and opts.nonce:lower() or wp.hex(random_bytes(16))
  if #nonce ~= 32 or not nonce:match("^%x+$") then return usage_error("lease", "--nonce: expected 32 hex digits") end
  local id = require("workproof.uptime.ledger").lease_id(pk, ck, start, nonce)
  outf("-- lease %s", id)
  outf('{ id = "%s",\n  provider_key = "%s",\n  consumer_key = "%s",\n  start = "%s", nonce = "%s",%s }',
    id, pk, ck, start, nonce, opts.provider and fmt('\n  provider = "%s",', opts.provider) or "")
  return 0
end

local function cmd_fisherman(argv)
  local opts, code = args.run(DECL.fisherman, argv)
  if not opts then return code end
  return require("workproof.uptime.fisherman").run(opts[1])
end

local function cmd_evidence(argv)
  local opts, code = args.run(DECL.evidence, argv)
  if not opts then return code end
  if opts[1] ~= "verify" or not opts[2] then return usage_error("evidence", "usage: evidence verify FILE") end
  local text, rerr = read_file(opts[2])
  if not text then errf("workproof uptime evidence: %s: %s", opts[2], tostring(rerr)) return 2 end
  local r = cjson.decode(text)
  if type(r) ~= "table" then errf("workproof uptime evidence: %s: not JSON", opts[2]) return 2 end
  local sum, why = require("workproof.uptime.fisherman").verify_report(r)
  if opts.json then
    json_out(sum and { valid = true, summary = sum } or { valid = false, reason = why })
  elseif sum then
    outf("VALID  report by fisherman %s on provider %s at %s", sum.fisherman, sum.provider,
      os.date("!%Y-%m-%d %H:%M:%S", sum.at or 0))
    outf("%d challenge(s), %d failed, %d provider answer(s) checked", sum.challenges, sum.failed, sum.answers_checked)
    if sum.parallel then
      outf("%d at once: median %.0f ms against %.0f ms alone (x%.2f)%s", sum.parallel.n, sum.parallel.median_ms,
        sum.parallel.solo_ms, sum.parallel.ratio, sum.parallel.flagged and "  DEGRADED TOGETHER" or "")
    end
    if sum.capacity then
      outf("capacity attestation: %s", sum.capacity.ok and "within capacity" or tostring(sum.capacity.detail))
    end
  else
    outf("INVALID  %s", why)
  end
  return sum and 0 or 1
end

local function cmd_arbiter(argv)
  local opts, code = args.run(DECL.arbiter, argv)
  if not opts then return code end
  return require("workproof.uptime.arbiter").run(opts[1])
end

local function cmd_dispute(argv)
  local opts, code = args.run(DECL.dispute, argv)
  if not opts then return code end
  local id = tonumber(opts[3])
  if opts[1] ~= "check" or not id then return usage_error("dispute", "usage: dispute check CONFIG.lua ID") end
  local r, err = require("workproof.uptime.arbiter").recheck(opts[2], id)
  if not r then errf("workproof uptime dispute: %s", tostring(err)) return 2 end
  if opts.json then
    json_out(r)
  else
    outf("dispute %d: %s on lease %s, claim %d, by %s: %s", id, r.kind, r.lease, r.claimIndex, r.disputer, r.state)
    outf("evidence: %s (%s)%s", r.check.proven and "PROVES the fault" or "does not prove a fault", r.check.reason,
      r.check.detail and (": " .. r.check.detail) or "")
    outf("policy: %s", r.ruling.upheld and fmt("uphold, slash %s, refund %s", r.ruling.slash, r.ruling.refund)
      or "dismiss")
    if r.onchain then
      outf("on chain: %s, slashed %s, refunded %s, report %s — %s", r.onchain.state, r.onchain.slashed,
        r.onchain.refunded, r.onchain.reportHash, r.agrees and "as this check rules" or "NOT as this check rules")
    end
  end
  return r.agrees == false and 1 or 0
end

local COMMANDS = { verify = cmd_verify, simulate = cmd_simulate, claim = cmd_claim, report = cmd_report,
  provider = agent_cmd("provider"), consumer = agent_cmd("consumer"), export = cmd_export, lease = cmd_lease,
  fisherman = cmd_fisherman, evidence = cmd_evidence, arbiter = cmd_arbiter, dispute = cmd_dispute }

function _M.main(...)
  local decl, rest = args.dispatch(GROUP, { ... })
  if not decl then return rest end
  return COMMANDS[decl.name:match("(%S+)$")](rest)
end

return _M
