-- SPDX-License-Identifier: MIT
-- The real controller (`workproof serve`) with policies that loop: a stage
-- hook and a rate_limit.client_key that spin forever on a header, under
-- traffic, then reloads whose new policy file loops in its main chunk.
-- Every other request is answered; the looping calls get their fallback;
-- the reloads are rejected naming the file; the metric counts each stop.
local wp = require "workproof"
local h = require "helpers"
local cjson = require "cjson.safe"
local config = require "workproof.config"

local HOOK_MS, LOAD_MS = 100, 300

-- the default flow with the looping stage policy after `validate`
local function flow_src()
  local t = {}
  for _, s in ipairs(config.FLOW) do
    t[#t + 1] = ("%q"):format(s)
    if s == "validate" then t[#t + 1] = '"looper"' end
  end
  return "{ " .. table.concat(t, ", ") .. " }"
end

local CONFIG = h.config(("limits = { timeout_min = 1 }, policy_budget = { hook_ms = %d, load_ms = %d }, flow = %s,")
  :format(HOOK_MS, LOAD_MS, flow_src()), { looper = "{}", rate_limit = "{ config = { limit = 100000 } }" })

local LOOPER = [[
-- a stage that never ends when the request says so
return {
  name = "looper",
  stage = function(conf, ctx)
    if ctx.req.headers["x-loop"] then
      local n = 0
      while true do n = n + 1 end
    end
  end,
}
]]

local LOOPER_LOAD = [[
-- the same policy, edited: its main chunk never ends
local n = 0
while n >= 0 do n = n + 1 end
return { name = "looper", stage = function() end }
]]

local function new_dir()
  local d = h.policy_dir()
  h.write(d .. "/policies/looper.lua", LOOPER)
  -- rate_limit.client_key spins on x-loop-key (its fallback: the peer address)
  local rl = h.read(d .. "/policies/rate_limit.lua")
  local patched, n = rl:gsub("(function _M%.client_key%(conf, peer_ip, headers%)\n)",
    '%1  if headers["x-loop-key"] then while true do end end\n')
  assert(n == 1, "rate_limit.client_key not found: update this spec")
  h.write(d .. "/policies/rate_limit.lua", patched)
  return d
end

local function post(srv, headers)
  return h.verify(srv, { taskType = "code-execution", language = "lua", code = "print(2 + 2)",
    expectedHash = h.sha("4") }, headers)
end

local function metric(text, labels)
  return tonumber(text:match("wp_policy_budget_exceeded_total{" .. labels:gsub("%p", "%%%0") .. "} (%d+)")) or 0
end

describe("policy budget #integration", function()
  it("looping hooks get their fallback while every other request is answered; looping loads are rejected",
    function()
    local dir = new_dir()
    local srv = h.start_controller(CONFIG, { dir = dir })
    local done, why = false, {}
    local normal, health, loops, loop_keys, slowest = 0, 0, 0, 0, 0
    local function fail(msg) why[#why + 1] = msg end

    -- two clients of ordinary traffic: /health and a normal /verify
    for _ = 1, 2 do
      wp.spawn(function()
        while not done do
          local t0 = wp.now()
          local st = h.http("GET", srv.url .. "/health")
          slowest = math.max(slowest, wp.now() - t0)
          if st == 200 then health = health + 1 else fail("health " .. tostring(st)) end
          local st2, r = post(srv)
          if st2 == 200 and r.result == "VALID" then normal = normal + 1
          else fail(("verify %s %s"):format(tostring(st2), cjson.encode(r))) end
        end
      end)
    end
    -- a client whose requests make the stage hook loop: 500 EPOLICY (the
    -- stage's fallback), and one whose requests make client_key loop: the
    -- fallback key (the peer) and an ordinary VALID answer
    wp.spawn(function()
      while not done do
        local st, r = post(srv, { ["x-loop"] = "1" })
        if st == 500 and type(r) == "table" and r.code == "EPOLICY" then loops = loops + 1
        else fail(("looping stage answered %s %s"):format(tostring(st), cjson.encode(r))) end
        local st2, r2 = post(srv, { ["x-loop-key"] = "1" })
        if st2 == 200 and r2.result == "VALID" then loop_keys = loop_keys + 1
        else fail(("looping client_key answered %s %s"):format(tostring(st2), cjson.encode(r2))) end
      end
    end)
    wp.sleep(2)

    -- an edit whose main chunk loops: rejected by the admin endpoint, by the
    -- file watch (watch = true) and by SIGHUP; the old generation serves on
    h.write(dir .. "/policies/looper.lua", LOOPER_LOAD)
    local st, _, body = h.http("POST", srv.url .. "/admin/reload")
    local r = cjson.decode(body)
    require("workproof.host").kill(srv.proc.pid, 1)
    wp.sleep(1.5)
    done = true
    wp.sleep(0.5)
    local _, _, text = h.http("GET", srv.url .. "/metrics")
    local _, _, info = h.http("GET", srv.url .. "/info")
    local status = h.stop(srv)

    assert.same({}, why)
    assert.is_true(normal >= 5, "normal requests answered: " .. normal)
    assert.is_true(health >= 5, "health answered: " .. health)
    assert.is_true(loops >= 3, "looping stage requests: " .. loops)
    assert.is_true(loop_keys >= 3, "looping client_key requests: " .. loop_keys)
    -- a looping request holds the loop for about hook_ms, not forever; a
    -- rejected load for about load_ms
    assert.is_true(slowest < 5, "slowest /health: " .. slowest .. " s")

    assert.equal(400, st)
    assert.is_false(r.accepted)
    assert.matches("/policies/looper%.lua:3: budget exceeded: ran longer than 300 ms %(policy_budget%.load_ms%)",
      r.error)
    assert.equal(1, cjson.decode(info).generation)

    assert.is_true(metric(text, 'hook="stage",policy="looper"') >= loops)
    assert.is_true(metric(text, 'hook="client_key",policy="rate_limit"') >= loop_keys)
    -- the admin reload, SIGHUP, and the watch (at least once)
    assert.is_true(metric(text, 'hook="load",policy="looper"') >= 3, text)
    local rejected = tonumber(text:match('wp_reloads_total{result="rejected"} (%d+)'))
    assert.is_true(rejected >= 3, "rejected reloads: " .. tostring(rejected))

    assert.matches("looper%.stage: [^\n]*/policies/looper%.lua:%d+: budget exceeded: ran longer than 100 ms",
      status.stderr)
    assert.matches("rate_limit%.client_key: [^\n]*budget exceeded", status.stderr)
    assert.matches("reload %(SIGHUP%) rejected[^\n]*looper%.lua:3: budget exceeded", status.stderr)
  end)
end)
