-- SPDX-License-Identifier: MIT
-- `make uptime-demo` as a user runs it (the command line the Makefile runs,
-- with a temporary state directory): the provider takes beats on
-- 127.0.0.1:8451 over the authenticated transport, the consumer serves its
-- status API on 127.0.0.1:8452; progress lines show beats, epochs and a
-- countersigned claim (2-second beats, 5-beat epochs, 2-epoch claims) and
-- passed compute and storage challenges (every 20 s);
-- SIGTERM stops both and the demo exits 0.
local h = require "helpers"
local host = require "workproof.host"
local cjson = require "cjson.safe"

describe("make uptime-demo #integration", function()
  it("runs both agents on the documented ports, rolls up a claim, stops cleanly on SIGTERM", function()
    local state = h.tmpdir()
    local p, out = h.spawn_until({ file = h.build .. "/workproof", args = { "run", "examples/uptime/demo.lua", state },
      timeout = 300, stderr_limit = 4 * 1048576 }, "claims 1 %(1 countersigned%)", "uptime-demo")
    local pid = p.pid
    finally(function() if h.alive(pid) then host.kill(pid, 9) end end)
    assert.matches("%[provider%] listening on 127.0.0.1:8451", out)
    assert.matches("%[consumer%] status API on http://127.0.0.1:8452", out)
    assert.matches("epochs 2", out)
    -- a compute and a storage challenge (every 20 s in the demo), passed
    assert.matches("challenges passed: compute [1-9]%d*/[1-9]%d*, storage [1-9]%d*/[1-9]", out)
    -- the status API
    local st, _, body = h.http("GET", "http://127.0.0.1:8452/leases")
    assert.equal(200, st)
    local L = cjson.decode(body).leases[1]
    assert.equal("up", L.state)
    assert.is_true(L.beats >= 10)
    -- the transport: TLS 1.3 only, and no certificate, no answer
    local s_out = h.run("/bin/sh", { "-c", "printf 'GET /leases HTTP/1.0\\r\\n\\r\\n' | "
      .. "openssl s_client -connect 127.0.0.1:8451 -tls1_3 -quiet 2>&1; true" })
    assert.is_nil(s_out:find("HTTP/1.1 200"), s_out)
    assert.is_truthy(s_out:find("alert") or s_out:find("error"), s_out)
    -- SIGTERM: both agents stop, the demo exits 0
    host.kill(pid, 15)
    while p:read() do end
    local res = p:wait()
    assert.equal(0, res.exit_status, res.stderr)
    assert.is_true(h.eventually(function() return h.http("GET", "http://127.0.0.1:8452/health") == nil end, 5))
    assert.is_nil(h.http("GET", "http://127.0.0.1:8453/health"))
  end)
end)
