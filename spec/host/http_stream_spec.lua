-- SPDX-License-Identifier: MIT
-- Streamed responses of host.http_listen (a handler that returns a
-- function as its body: Server-Sent Events for /dashboard/events), read by
-- curl: what is sent arrives in order, close ends the response, a client
-- that leaves is noticed, a reader that stops reading is dropped past
-- 1 MiB queued, srv:shutdown() ends every stream, a stream is
-- not timed out as an idle connection, an opener that fails closes its
-- stream, and a host that stops with a stream open exits cleanly.
local h = require "helpers"
local host = require "workproof.host"

local curl, read_all = h.follow, h.read_all

-- a server whose /s streams: the opener's stream is kept in `streams`
local function server(opts)
  local streams = {}
  opts = opts or {}
  local srv = assert(host.http_listen { port = 0, header_timeout = opts.header_timeout, handler = function(req)
    if req.path == "/s" then
      return 200, { ["content-type"] = "text/event-stream" }, function(s)
        if opts.opener then return opts.opener(s) end
        assert.is_true(s:send("data: first\n\n"))
        streams[#streams + 1] = s
      end
    end
    return 200, {}, "plain"
  end })
  return srv, streams, "http://127.0.0.1:" .. srv.port
end

describe("host.http_listen: streamed responses", function()
  it("sends in order, in several writes; close ends the response", function()
    local srv, streams, base = server()
    finally(function() srv:shutdown(); srv:drop() end)
    local p = curl(base .. "/s", 10)
    assert.is_true(h.eventually(function() return #streams == 1 end))
    local s = streams[1]
    assert.is_true(s.open)
    assert.equal(1, srv.streams)
    assert.equal(0, srv.active)   -- a stream is not a request in flight
    for i = 1, 5 do
      assert.is_true(s:send(("data: %d\n\n"):format(i)))
      assert.is_true(s:send(""))   -- nothing to send is fine
      host.sleep(0.02)
    end
    s:close()
    assert.is_false(s.open)
    assert.is_false(s:send("data: late\n\n"))
    local out, st = read_all(p)
    assert.equal(0, st.exit_status)
    assert.equal("data: first\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\ndata: 5\n\n", out)
    assert.is_true(h.eventually(function() return srv.streams == 0 end))
    s:close()   -- again: nothing
  end)

  it("a client that leaves: send returns false soon after, the stream is gone", function()
    local srv, streams, base = server()
    finally(function() srv:shutdown(); srv:drop() end)
    local p = curl(base .. "/s", 0.5)
    assert.is_true(h.eventually(function() return #streams == 1 end))
    read_all(p)
    local s = streams[1]
    assert.is_true(h.eventually(function()
      s:send("data: x\n\n")
      return not s.open
    end, 5))
    assert.is_false(s:send("data: y\n\n"))
    assert.equal(0, srv.streams)
  end)

  it("srv:shutdown() ends every open stream; a stream outlives header_timeout", function()
    local srv, streams, base = server({ header_timeout = 0.3 })
    local ps = { curl(base .. "/s", 10), curl(base .. "/s", 10) }
    assert.is_true(h.eventually(function() return #streams == 2 end))
    host.sleep(0.8)   -- past header_timeout: the connections stay
    for _, s in ipairs(streams) do assert.is_true(s:send("data: still\n\n")) end
    srv:shutdown()
    for _, p in ipairs(ps) do
      local out, st = read_all(p)
      assert.equal(0, st.exit_status)
      assert.equal("data: first\n\ndata: still\n\n", out)
    end
    for _, s in ipairs(streams) do assert.is_false(s.open) end
    assert.is_true(h.eventually(function() return srv.connections == 0 end))
    assert.equal(0, srv.streams)
  end)

  it("a reader that stops reading: past 1 MiB queued send returns false and the connection is ended", function()
    local srv, streams, base = server()
    finally(function() srv:shutdown(); srv:drop() end)
    -- a client that sends its request and never reads (node: the socket paused)
    local port, flag = base:match(":(%d+)$"), os.tmpname()   -- the client reads on once flag is written
    os.remove(flag)
    local p = assert(host.process_spawn { file = "/usr/bin/env", timeout = 60, args = { "node", "-e", ([[
const s = require('net').connect(%s, '127.0.0.1', () => { s.write('GET /s HTTP/1.1\r\nHost: x\r\n\r\n'); s.pause(); });
let n = 0;
s.on('data', (d) => { n += d.length; });
s.on('error', () => {});
s.on('close', () => { console.log('closed after ' + n); process.exit(0); });
const go = setInterval(() => { if (require('fs').existsSync('%s')) { clearInterval(go); s.resume(); } }, 50);
setTimeout(() => process.exit(1), 50000);]]):format(port, flag) } })
    assert.is_true(h.eventually(function() return #streams == 1 end))
    local s, chunk, sent = streams[1], ("x"):rep(65536), 0
    while sent < 1024 and s:send(chunk) do
      sent = sent + 1
      host.sleep(0.001)
    end
    assert.is_true(sent < 1024, "never refused")   -- the kernel's buffers hold a few MiB, then it refuses
    assert.is_false(s.open)
    h.write(flag, "read on")
    local out, st = read_all(p)
    assert.equal(0, st.exit_status)
    local got = tonumber(out:match("^closed after (%d+)\n$"))
    assert.is_number(got, out)
    assert.is_true(got < sent * #chunk, "the queue was dropped, not delivered")
    assert.is_true(h.eventually(function() return srv.streams == 0 end))
    os.remove(flag)
  end)

  it("an opener that raises: logged, its stream closed", function()
    local srv, _, base = server({ opener = function(s)
      s:send("data: before\n\n")
      error("opener broke")
    end })
    finally(function() srv:shutdown(); srv:drop() end)
    local out, st = read_all(curl(base .. "/s", 10))
    assert.equal(0, st.exit_status)
    assert.equal("data: before\n\n", out)
  end)

  it("an opener that keeps nothing: the stream is closed when collected", function()
    local srv, _, base = server({ opener = function(s) s:send("data: only\n\n") end })
    finally(function() srv:shutdown(); srv:drop() end)
    local p = curl(base .. "/s", 10)
    assert.is_true(h.eventually(function() return srv.streams == 1 end))
    assert.is_true(h.eventually(function()
      collectgarbage()
      return srv.streams == 0
    end))
    local out, st = read_all(p)
    assert.equal(0, st.exit_status)
    assert.equal("data: only\n\n", out)
  end)

  it("a host that stops with a stream open exits cleanly", function()
    local script = os.tmpname()
    h.write(script, [[
local host = require "workproof.host"
local srv = assert(host.http_listen { port = 0, handler = function()
  return 200, {}, function(s) _G.kept = s; s:send("data: x\n\n") end
end })
local p = assert(host.process_spawn { file = "/usr/bin/curl", args = { "-s", "-N", "--max-time", "10",
  "http://127.0.0.1:" .. srv.port .. "/" }, timeout = 15 })
while srv.streams == 0 do host.sleep(0.01) end
p:read()
host.stop(0)
]])
    local _, st = h.run(h.build .. "/workproof", { "run", script })
    os.remove(script)
    assert.equal(0, st.exit_status, st.stderr)
    assert.equal("", st.stderr)
  end)
end)
