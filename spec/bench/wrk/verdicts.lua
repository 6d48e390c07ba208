-- wrk script: POST the body in the file named by WRK_BODY (as post.lua) and
-- read every reply: a reply counts as VALID only when its status is 200 and
-- its body carries the verdict "result":"VALID". done() prints
-- "VERDICTS valid other seconds".
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init()
  valid, other = 0, 0
end

function response(status, _, body)
  if status == 200 and body:find('"result":"VALID"', 1, true) then
    valid = valid + 1
  else
    other = other + 1
  end
end

function done(summary)
  local v, o = 0, 0
  for _, t in ipairs(threads) do
    v = v + t:get("valid")
    o = o + t:get("other")
  end
  io.write(("VERDICTS %d %d %.6f\n"):format(v, o, summary.duration / 1e6))
end
