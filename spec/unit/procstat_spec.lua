-- SPDX-License-Identifier: MIT
-- workproof.procstat: the /proc parsers on real and malformed input, and a
-- sample of this very process against ps(1).
local procstat = require "workproof.procstat"

-- a stat line with `comm` and the fields after it (fields 3..52)
local function stat_line(comm, over)
  local f = {}
  for i = 3, 52 do f[i] = tostring(i * 10) end
  f[3] = "S"
  for k, v in pairs(over or {}) do f[k] = v end
  return "4242 (" .. comm .. ") " .. table.concat(f, " ", 3, 52) .. "\n"
end

describe("procstat", function()
  it("reads utime, stime, starttime, vsize and rss from a stat line", function()
    local st = assert(procstat.parse_stat(stat_line("workproof", { [14] = "7", [15] = "5", [22] = "123456",
      [23] = "60592128", [24] = "3683" })))
    assert.same({ utime = 7, stime = 5, starttime = 123456, vsize = 60592128, rss = 3683 }, st)
  end)

  it("a command name with spaces and parentheses does not shift the fields", function()
    local st = assert(procstat.parse_stat(stat_line("a) (b c) 9 9 9", { [14] = "11", [24] = "99" })))
    assert.equal(11, st.utime)
    assert.equal(99, st.rss)
  end)

  it("refuses malformed stat lines with EPROC", function()
    local bad = {
      "",
      "garbage",
      "4242 workproof S 1 2 3",                          -- no parentheses
      "(workproof) S 1 2 3",                             -- no pid
      "4242 (workproof) S 1 2 3 4 5",                    -- too few fields
      stat_line("w", { [14] = "-7" }),                   -- a negative count
      stat_line("w", { [24] = "12x" }),                  -- not a number
      stat_line("w", { [22] = "1.5" }),
    }
    for _, text in ipairs(bad) do
      local v, err, code = procstat.parse_stat(text)
      assert.is_nil(v, text)
      assert.equal("EPROC", code)
      assert.matches("^EPROC: ", err)
    end
    assert.has_error(function() procstat.parse_stat(nil) end)
  end)

  it("finds btime in /proc/stat and refuses text without one", function()
    assert.equal(1700000000, procstat.parse_btime("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"))
    assert.equal(17, procstat.parse_btime("btime 17\n"))
    for _, text in ipairs({ "", "cpu 1\n", "xbtime 5\n", "cpu 1\nbtime x\n", "cpu 1\nbtime 5" }) do
      local v, err, code = procstat.parse_btime(text)
      assert.is_nil(v, text)
      assert.equal("EPROC", code)
      assert.matches("^EPROC: ", err)
    end
  end)

  it("the parsers agree with the kernel's own files", function()
    local f = assert(io.open("/proc/self/stat"))
    local st = assert(procstat.parse_stat(f:read("*a")))
    f:close()
    assert.is_true(st.rss > 0 and st.vsize > 0)
    f = assert(io.open("/proc/stat"))
    local btime = assert(procstat.parse_btime(f:read("*a")))
    f:close()
    assert.is_true(btime > 1e9 and btime < os.time())
  end)

  it("samples this process as ps(1) sees it", function()
    local s = assert(procstat.sample())
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("*a"):match("^%d+")
    f:close()
    local p = assert(io.popen("ps -o etimes=,rss= -p " .. pid))
    local out = p:read("*a")
    p:close()
    local etimes, rss_kb = out:match("(%d+)%s+(%d+)")
    assert.is_truthy(etimes, out)
    assert.near(os.time() - tonumber(etimes), s.start_time, 2.5)
    assert.is_true(s.resident_bytes > tonumber(rss_kb) * 1024 * 0.5 and s.resident_bytes < tonumber(rss_kb) * 2048)
    assert.is_true(s.cpu_seconds > 0)
    assert.is_true(s.virtual_bytes >= s.resident_bytes)
  end)
end)
