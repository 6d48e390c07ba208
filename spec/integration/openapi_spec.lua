-- SPDX-License-Identifier: MIT
-- docs/openapi.yaml against the real controller: the document describes
-- every route the controller has (and no other), GET /openapi.json serves
-- it, and every answer a controller gives here — each route, each status
-- this box can produce without a chain — has its status, its required
-- headers, its media type and its body as the document says (a JSON
-- Schema subset validator, spec/jsonschema.lua, on exact JSON trees).
local h = require "helpers"
local cjson = require "cjson"
local json = require "workproof.json"
local jsonschema = require "jsonschema"
local openapi = require "workproof.openapi"
local wp = require "workproof"

local sha = h.sha
local DOC = cjson.decode((assert(openapi.json())))
local V = jsonschema.new(DOC)
local ORIGIN = "https://app.example"
local SRV   -- the controller of the #integration block

local function deref(x)
  while type(x) == "table" and x["$ref"] do x = V:resolve(x["$ref"]) end
  return x
end

-- the operation for a request path: the path item whose template matches
-- (a parameter is the rest of the path: the controller routes anything
-- under /verify/ to the job route, and answers 404 for an id that is none)
local function find_path(path)
  for tmpl, item in pairs(DOC.paths) do
    local pat = "^" .. tmpl:gsub("[%.%-]", "%%%0"):gsub("{[^}]+}", ".+") .. "$"
    if path:match(pat) then return tmpl, item end
  end
end

local covered = {}

-- check one answer against the document; returns nothing, fails the test
local function conform(method, path, st, hd, body)
  local tmpl, item = find_path(path)
  local where = ("%s %s -> %s"):format(method, path, tostring(st))
  local resp
  if not tmpl then   -- an unknown route: ENOTFOUND in the error document
    assert.equal(404, st, where)
    resp, tmpl = deref(DOC.components.responses.NotFound), "(unknown)"
  elseif not item[method:lower()] then   -- a method the path does not list: EMETHOD
    assert.equal(405, st, where)
    resp = deref(DOC.components.responses.MethodNotAllowed)
  else
    local op = item[method:lower()]
    resp = deref(op.responses[tostring(st)] or op.responses.default)
    assert.is_table(resp, where .. ": status not in the document")
  end
  for name, hdr in pairs(resp.headers or {}) do
    if deref(hdr).required then assert.is_string(hd[name:lower()], where .. ": header " .. name .. " missing") end
  end
  if resp.content then
    local ct = (hd["content-type"] or ""):match("^[^;%s]+")
    local media = resp.content[ct]
    assert.is_table(media, where .. ": media type " .. tostring(ct) .. " not in the document")
    if ct == "application/json" then
      local tree, err = json.decode_ordered(body)
      assert.is_truthy(tree, where .. ": not JSON: " .. tostring(err) .. "\n" .. body)
      local ok, verr = V:validate(media.schema, tree)
      assert.is_true(ok, where .. ": " .. tostring(verr) .. "\n" .. body)
    end
  else
    assert.equal("", body, where .. ": a body where the document has none")
  end
  covered[method .. " " .. tmpl .. " " .. st] = true
end

local function call(method, path, body, headers, opts)
  local st, hd, b = h.http(method, SRV.url .. path, body, headers, opts)
  assert.is_number(st, "no answer: " .. tostring(b))
  conform(method, path, st, hd, b)
  return st, hd, b
end

local function verify(task, headers, from)
  headers = headers or {}
  headers["content-type"] = "application/json"
  local st, hd, b = call("POST", "/verify", type(task) == "table" and cjson.encode(task) or task, headers,
    from and { from = from })
  return st, cjson.decode(b), hd
end

describe("the OpenAPI document", function()
  it("every keyword it uses is one the validator implements", function()
    for name, s in pairs(DOC.components.schemas) do V:check(s, "#/components/schemas/" .. name) end
    for tmpl, item in pairs(DOC.paths) do
      for m, op in pairs(item) do
        if m ~= "parameters" then
          for st, r in pairs(op.responses) do
            r = deref(r)
            for _, media in pairs(r.content or {}) do V:check(media.schema, tmpl .. " " .. m .. " " .. st) end
          end
        end
      end
    end
  end)

  it("describes exactly the controller's routes and methods", function()
    local routes = require "workproof.notary.routes"
    local want = {}
    for _, r in ipairs(routes.routes()) do
      local tmpl = r[1]:gsub(":id$", r[1] == "/verify/:id" and "{jobId}" or "{id}")
      want[tmpl] = {}
      for m in r[2]:gmatch("%u+") do want[tmpl][m:lower()] = true end
    end
    -- CORS preflights where the controller answers them
    for _, p in ipairs({ "/verify", "/verify/{jobId}", "/info", "/openapi.json" }) do want[p].options = true end
    local got = {}
    for tmpl, item in pairs(DOC.paths) do
      got[tmpl] = {}
      for m in pairs(item) do if m ~= "parameters" then got[tmpl][m] = true end end
    end
    assert.same(want, got)
  end)

  it("is valid YAML converted to the JSON the controller serves; the converter refuses what it cannot carry", function()
    assert.equal("3.1.0", DOC.openapi)
    for _, bad in ipairs({
      "openapi: 3.1.0\npaths: {a: [1, 2}\n",        -- YAML syntax
      "- openapi\n- paths\n",                         -- not a mapping
      "openapi: 3.1.0\npaths:\n  200: {}\n",          -- a number key (unquoted status)
      "openapi: 3.1.0\npaths:\n  true: {}\n",
      "title: not openapi\n",
      "",
    }) do
      local j, err, code = openapi.convert(bad)
      assert.is_nil(j, bad)
      assert.equal("EOPENAPI", code)
      assert.matches("^EOPENAPI: ", err)
    end
    local j = assert(openapi.convert('openapi: 3.1.0\npaths: {}\nx: null\ny: [a, "null"]\n'))
    assert.same({ openapi = "3.1.0", paths = {}, x = cjson.null, y = { "a", "null" } }, cjson.decode(j))
    local _, err, code = openapi.json("/nonexistent/openapi.yaml")
    assert.equal("EOPENAPI", code)
    assert.matches("cannot read", err)
  end)

  it("the validator fails what does not conform (the checks can fail)", function()
    local function check(schema, text)
      return (V:validate(schema, assert(json.decode_ordered(text))))
    end
    local verdict = { ["$ref"] = "#/components/schemas/Verdict" }
    local good = '{"jobId":"a","taskHash":"b","status":"completed","result":"VALID","expectedHash":"c",'
      .. '"actualHash":null,"executionTimeMs":1,"totalTimeMs":2,"refundEligible":false}'
    assert.is_true(check(verdict, good))
    assert.is_false(check(verdict, good:gsub('"VALID"', '"MAYBE"')))
    assert.is_false(check(verdict, good:gsub('"actualHash":null', '"actualHash":5')))
    assert.is_false(check(verdict, good:gsub('"refundEligible":false', '"refundEligible":false,"extra":1')))
    assert.is_false(check(verdict, good:gsub('"jobId":"a",', "")))
    assert.is_false(check(verdict, good:gsub('"totalTimeMs":2', '"totalTimeMs":-2')))
    assert.is_false(check(verdict, "[]"))
    local info = { ["$ref"] = "#/components/schemas/Info" }
    assert.is_false(check(info, '{"version":"1","generation":1,"features":{"backend":"sandbox","languages":{},'
      .. '"payments":false,"chain":false,"asyncMode":true},"flow":[],"policies":[]}'))   -- {} is not []
    assert.is_false(check({ type = "integer" }, "1.5"))
    assert.is_true(check({ type = "integer" }, "2"))
    local job = { oneOf = { { ["$ref"] = "#/components/schemas/Running" }, verdict } }
    assert.is_true(check(job, '{"jobId":"a","taskHash":"b","status":"running"}'))
    assert.is_false(check(job, '{"jobId":"a","taskHash":"b","status":"queued"}'))
    assert.is_false(check({ anyOf = { { type = "string" }, { type = "null" } } }, "1"))
    assert.has_error(function() V:check({ type = "string", pattern = "^x" }) end)
    assert.has_error(function() V:validate({ ["$ref"] = "#/components/schemas/Nope" }, json.decode_ordered("1")) end)
  end)
end)

describe("the controller answers as the document says #integration", function()
  SRV = h.controller_for(h.config(([[
  watch = false,
  cors = { origins = { "%s" } },
  limits = { max_code = 4096 },]]):format(ORIGIN), {
    rate_limit = "{ config = { limit = 12, window = 60, warn_ratio = 1 } }",
    worker_threshold = "{ config = { per_client = 1 } }",
  }))

  it("GET /openapi.json serves the document", function()
    local st, _, b = call("GET", "/openapi.json")
    assert.equal(200, st)
    assert.same(DOC, cjson.decode(b))
    local hd
    st = call("GET", "/openapi.json", nil, { origin = ORIGIN })
    assert.equal(200, st)
    st, hd = call("OPTIONS", "/openapi.json", nil, { origin = ORIGIN, ["access-control-request-method"] = "GET" })
    assert.equal(204, st)
    assert.equal(ORIGIN, hd["access-control-allow-origin"])
  end)

  it("/health, /info, /metrics, unknown paths and 405 on every route", function()
    assert.equal(200, (call("GET", "/health")))
    assert.equal(200, (call("GET", "/info")))
    assert.equal(200, (call("GET", "/metrics")))
    assert.equal(404, (call("GET", "/nope")))
    assert.equal(404, (call("POST", "/nope/x")))
    assert.equal(404, (call("GET", "/verify/x/y")))
    for tmpl in pairs(DOC.paths) do
      local path = tmpl:gsub("{[^}]+}", "1")
      local st, hd = call("DELETE", path)
      assert.equal(405, st)
      assert.is_string(hd.allow)
    end
    for _, p in ipairs({ "/verify", "/verify/abc", "/info" }) do
      local st = call("OPTIONS", p, nil, { origin = ORIGIN, ["access-control-request-method"] = "GET" })
      assert.equal(204, st)
    end
    assert.equal(405, (call("OPTIONS", "/metrics")))
  end)

  it("POST /verify: the verdicts, async, refusals", function()
    local function task(code, expect, extra)
      local t = { taskType = "code-execution", language = "lua", code = code, expectedHash = sha(expect) }
      for k, v in pairs(extra or {}) do t[k] = v end
      return t
    end
    local st, r = verify(task("print(2 + 2)", "4"))
    assert.equal(200, st)
    assert.equal("VALID", r.result)
    local done = r.jobId
    st, r = verify(task("print(2 + 2)", "5"))
    assert.equal(200, st)
    assert.equal("INVALID", r.result)
    st, r = verify(task("error('boom')", "4"))
    assert.equal(200, st)
    assert.equal("ERROR", r.result)
    st, r = verify({ taskType = "code-execution", language = "javascript", code = "console.log(6 * 7)",
      inputData = { expectedOutput = "42", list = {}, nested = { 1, 2 } } })
    assert.equal(200, st)
    assert.equal("VALID", r.result)
    st, r = verify(task("print(1)", "1"), { Prefer = "respond-async" })
    assert.equal(202, st)
    assert.is_true(h.eventually(function()
      local _, _, b = call("GET", "/verify/" .. r.jobId)
      return cjson.decode(b).status == "completed"
    end, 30))
    assert.equal(200, (call("GET", "/verify/" .. done)))
    assert.equal(404, (call("GET", "/verify/" .. ("ab"):rep(8))))
    assert.equal(404, (call("GET", "/verify/not-hex")))

    st, r = verify("{")
    assert.equal(400, st)
    assert.equal("EVALIDATION", r.code)
    st, r = verify({ taskType = "code-execution", code = 5 })
    assert.equal(400, st)
    st, r = verify({ taskType = "code-execution", language = "javascript",
      code = "const fs = require('fs'); console.log(4)", expectedHash = sha("4") })
    assert.equal(400, st)
    assert.equal("EBLOCKED", r.code)
    st, r = verify(task(("-"):rep(5000) .. "\nprint(4)", "4"))
    assert.equal(413, st)
    assert.equal("ETOOLARGE", r.code)
    -- CORS headers on an ordinary answer do not change its shape
    st = verify(task("print(2 + 2)", "4"), { origin = ORIGIN })
    assert.equal(200, st)
  end)

  it("a running job, TIMEOUT, and 503 ECAPACITY for a client over its worker cap", function()
    local slow = { taskType = "code-execution", language = "lua", timeoutSeconds = 5,
      code = "local x = 0 for i = 1, 5e9 do x = x + i end print(x)", expectedHash = sha("1") }
    local st, r = verify(slow, { Prefer = "respond-async" }, "127.0.0.61")
    assert.equal(202, st)
    local _, _, b = call("GET", "/verify/" .. r.jobId)
    assert.equal("running", cjson.decode(b).status)
    local st2, r2, hd2 = verify(slow, nil, "127.0.0.61")
    assert.equal(503, st2)
    assert.equal("ECAPACITY", r2.code)
    assert.is_string(hd2["retry-after"])
    assert.is_true(h.eventually(function()
      local _, _, body = call("GET", "/verify/" .. r.jobId)
      return cjson.decode(body).status == "completed"
    end, 30))
    _, _, b = call("GET", "/verify/" .. r.jobId)
    assert.equal("TIMEOUT", cjson.decode(b).result)
  end)

  it("429 ERATELIMIT once a client is over the rate limit", function()
    local blocked = { taskType = "code-execution", language = "javascript",
      code = "const fs = require('fs'); console.log(4)", expectedHash = sha("4") }
    local st, r
    for _ = 1, 20 do
      st, r = verify(blocked, nil, "127.0.0.70")
      if st == 429 then break end
      assert.equal(400, st)
    end
    assert.equal(429, st)
    assert.equal("ERATELIMIT", r.code)
  end)

  it("/outbox and /outbox/{id} without a chain: 404", function()
    assert.equal(404, (call("GET", "/outbox")))
    assert.equal(404, (call("GET", "/outbox/1")))
  end)

  it("POST /admin/reload: accepted, and rejected with the old generation serving", function()
    local st, _, b = call("POST", "/admin/reload")
    assert.equal(200, st, b)
    local src = h.read(SRV.config)
    h.write(SRV.config, "return {\n  limits = { max_code = 'lots' },\n}\n")
    st, _, b = call("POST", "/admin/reload")
    h.write(SRV.config, src)
    assert.equal(400, st, b)
    assert.is_false(cjson.decode(b).accepted)
  end)

  it("with a chain (anvil): 402 with PAYMENT-REQUIRED, /info's chain and payment, /outbox rows #slow", function()
    local a = h.start_anvil()
    h.write(a.dir .. "/signer.key", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")   -- anvil #0
    os.execute("chmod 600 " .. a.dir .. "/signer.key")
    local function chain_config(payments)
      return h.config(([[
  chain = { enabled = true, rpc = "%s", deployment = "%s/dep.json", key_file = "%s/signer.key", wait_receipt = 15 },
  payments = { enabled = %s },]]):format(a.url, a.dir, a.dir, payments))
    end
    local main = SRV
    local ok, err = pcall(function()
      SRV = h.start_controller(chain_config("true"), { dir = h.policy_dir() })
      local st, r, hd = verify({ taskType = "code-execution", language = "lua", code = "print(4)",
        expectedHash = sha("4") })
      assert.equal(402, st)
      assert.equal("EPAYMENT", r.code)
      assert.is_string(hd["payment-required"])
      assert.equal(200, (call("GET", "/info")))
      h.stop(SRV)
      -- unpaid: a VALID verdict is attested through the outbox
      SRV = h.start_controller(chain_config("false"), { dir = h.policy_dir() })
      st, r = verify({ taskType = "code-execution", language = "lua", code = "print(4)", expectedHash = sha("4") })
      assert.equal(200, st)
      assert.equal("mined", r.attestation)
      assert.equal(200, (call("GET", "/info")))
      assert.equal(200, (call("GET", "/outbox")))
      assert.equal(200, (call("GET", "/outbox/1")))
      assert.equal(404, (call("GET", "/outbox/999")))
    end)
    if SRV ~= main then h.stop(SRV) end
    SRV = main
    a.proc:kill(15)
    a.proc:wait()
    assert(ok, err)
  end)

  it("covered every route and status produced above", function()
    local want = {
      "GET /openapi.json 200", "OPTIONS /openapi.json 204", "GET /health 200", "GET /info 200", "GET /metrics 200",
      "GET (unknown) 404", "POST (unknown) 404", "OPTIONS /verify 204", "OPTIONS /verify/{jobId} 204",
      "OPTIONS /info 204", "OPTIONS /metrics 405",
      "POST /verify 200", "POST /verify 202", "POST /verify 400", "POST /verify 413", "POST /verify 429",
      "POST /verify 503", "GET /verify/{jobId} 200", "GET /verify/{jobId} 404",
      "GET /outbox 404", "GET /outbox/{id} 404", "POST /admin/reload 200", "POST /admin/reload 400",
      "POST /verify 402", "GET /outbox 200", "GET /outbox/{id} 200",
    }
    for tmpl, item in pairs(DOC.paths) do
      for m in pairs(item) do
        if m ~= "parameters" and m ~= "options" and m ~= "head" then want[#want + 1] = "DELETE " .. tmpl .. " 405" end
      end
    end
    for _, k in ipairs(want) do assert.is_true(covered[k], k) end
    assert.is_string(wp.version)
  end)
end)
