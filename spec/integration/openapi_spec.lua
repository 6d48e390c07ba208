-- SPDX-License-Identifier: MIT
-- docs/openapi.yaml against real controllers. The document describes every
-- route the controller has (and no other) and GET /openapi.json serves it;
-- then real `workproof serve` processes are driven to EVERY response the
-- document declares — each (method, path, status), one row per error code
-- a response names and per oneOf branch or extra media type — and each
-- answer is checked against it: its status is one the operation declares,
-- its required headers are there (Allow naming exactly the path's
-- methods), its media type is declared, its body validates (a JSON Schema
-- subset validator, spec/jsonschema.lua, on exact JSON trees), an error
-- code has the status errors.lua gives it (an answer to HEAD is read as
-- headers only: its status, headers and media type are checked).
-- COVERAGE below says how each declared response is driven; the last test
-- fails unless every one of them was.
--
-- The controllers: the main one (CORS on, small limits, a policy stage
-- that fails on request: spec/fixtures/policies/openapi_stage.lua); one
-- whose worker binary is missing and whose Lua library has no document
-- beside it (real ESPAWN failures open the breaker; /openapi.json cannot
-- be read; CORS off); one listening on a non-loopback address (admin from
-- a non-loopback client); one that drains after SIGTERM while a job runs
-- (keep-alive connections opened before: spec/fixtures/drain_client.js);
-- and, with anvil, two on a chain (payments, the outbox, the chain gone).
local h = require "helpers"
local cjson = require "cjson"
local json = require "workproof.json"
local jsonschema = require "jsonschema"
local openapi = require "workproof.openapi"
local errors = require "workproof.errors"
local config = require "workproof.config"
local host = require "workproof.host"
local wp = require "workproof"

local sha = h.sha
local DOC = cjson.decode((assert(openapi.json())))
local V = jsonschema.new(DOC)
local ORIGIN = "https://app.example"
local UNKNOWN = "(unknown)"   -- the path of a request no path template matches
local EXTRA_METHODS = { "DELETE", "HEAD", "OPTIONS" }   -- asked wherever a path does not list them: 405
local CORS_PATHS = { "/verify", "/verify/abc", "/info", "/openapi.json" }
local CWD = (function()
  local p = assert(io.popen("pwd"))
  local d = p:read("*l")
  p:close()
  return d
end)()
local SRV   -- the controller `call` talks to

-- How each response the document declares is driven (one row per
-- "METHOD path status [code|branch] [media]"; the first test checks that
-- the rows are exactly what the document declares, the last that every
-- row was driven).
local COVERAGE = {
  ["GET /health 200"] = "main controller",
  ["HEAD /health 200"] = "main controller (curl --head)",
  ["GET /health 503"] = "drain: on a keep-alive connection opened before SIGTERM, while a job runs",
  ["HEAD /health 503"] = "drain: the same, HEAD",
  ["DELETE /health 405 EMETHOD"] = "main controller (the Lua route: Allow GET, HEAD)",
  ["OPTIONS /health 405 EMETHOD"] = "main controller",
  ["POST /verify 200"] = "main: VALID, INVALID, ERROR, TIMEOUT (lua, javascript, inputData.expectedOutput); "
    .. "no worker binary: ERROR ESPAWN, refundEligible; drain: the in-flight job; chain: attestation mined",
  ["POST /verify 202"] = "main: Prefer respond-async",
  ["POST /verify 400 EVALIDATION"] = "main: malformed JSON, a wrong type",
  ["POST /verify 400 EBLOCKED"] = "main: require('fs') (code_patterns)",
  ["POST /verify 402 EPAYMENT"] = "chain, payments on: no payment (PAYMENT-REQUIRED, v1 body, legacy option)",
  ["POST /verify 413 ETOOLARGE"] = "main: code over limits.max_code; body over limits.max_body",
  ["POST /verify 413 text/plain"] = "main: body over twice limits.max_body (h2o refuses it unread)",
  ["POST /verify 429 ERATELIMIT"] = "main: one client over rate_limit.limit",
  ["POST /verify 500 EPOLICY"] = "main: the openapi_stage policy stage raises",
  ["POST /verify 500 EINTERNAL"] = "main: the openapi_stage policy stage returns no response (the handler fails)",
  ["POST /verify 503 ECAPACITY"] = "main: a second job of a client while its first runs (per_client 1)",
  ["POST /verify 503 EBREAKER"] = "no worker binary: one ESPAWN opens the breaker (failure_threshold 1)",
  ["POST /verify 503 ESHUTDOWN"] = "drain: on a keep-alive connection opened before SIGTERM, while a job runs",
  ["POST /verify 503 EPAYMENT_UNAVAILABLE"] = "chain, payments on: X-402-Payment after anvil stopped",
  ["OPTIONS /verify 204"] = "main: preflight from the allowed origin, another origin, no origin",
  ["OPTIONS /verify 405 EMETHOD"] = "no worker binary (CORS off)",
  ["DELETE /verify 405 EMETHOD"] = "main controller",
  ["HEAD /verify 405"] = "main controller",
  ["GET /verify/{jobId} 200 Running"] = "main: an async job, and a slow one, while they run",
  ["GET /verify/{jobId} 200 Verdict"] = "main: a completed job (sync and async)",
  ["GET /verify/{jobId} 404 ENOTFOUND"] = "main: unknown ids (hex, not hex, with a slash)",
  ["OPTIONS /verify/{jobId} 204"] = "main: preflight",
  ["OPTIONS /verify/{jobId} 405 EMETHOD"] = "no worker binary (CORS off)",
  ["DELETE /verify/{jobId} 405 EMETHOD"] = "main controller",
  ["HEAD /verify/{jobId} 405"] = "main controller",
  ["GET /info 200"] = "main, drain, chain (chain and payment sections)",
  ["OPTIONS /info 204"] = "main: preflight",
  ["OPTIONS /info 405 EMETHOD"] = "no worker binary (CORS off)",
  ["DELETE /info 405 EMETHOD"] = "main controller",
  ["HEAD /info 405"] = "main controller",
  ["GET /openapi.json 200"] = "main controller, with and without Origin",
  ["GET /openapi.json 500 EINTERNAL"] = "no document: WORKPROOF_LUA_DIR names a library with no docs/ beside it",
  ["OPTIONS /openapi.json 204"] = "main: preflight",
  ["OPTIONS /openapi.json 405 EMETHOD"] = "no worker binary (CORS off)",
  ["DELETE /openapi.json 405 EMETHOD"] = "main controller",
  ["HEAD /openapi.json 405"] = "main controller",
  ["GET /metrics 200"] = "main, drain (polled until the job runs)",
  ["DELETE /metrics 405 EMETHOD"] = "main controller",
  ["HEAD /metrics 405"] = "main controller",
  ["OPTIONS /metrics 405 EMETHOD"] = "main controller (CORS on, not a CORS route)",
  ["GET /outbox 200"] = "chain: the summary",
  ["GET /outbox 404 ENOTFOUND"] = "main (no chain)",
  ["DELETE /outbox 405 EMETHOD"] = "main controller",
  ["HEAD /outbox 405"] = "main controller",
  ["OPTIONS /outbox 405 EMETHOD"] = "main controller",
  ["GET /outbox/{id} 200"] = "chain: the attestation's row",
  ["GET /outbox/{id} 404 ENOTFOUND"] = "main (no chain); chain: an unknown row",
  ["DELETE /outbox/{id} 405 EMETHOD"] = "main controller",
  ["HEAD /outbox/{id} 405"] = "main controller",
  ["OPTIONS /outbox/{id} 405 EMETHOD"] = "main controller",
  ["POST /admin/reload 200"] = "main controller",
  ["POST /admin/reload 400"] = "main: the config file broken, then restored",
  ["POST /admin/reload 403 EFORBIDDEN"] = "a controller on this host's non-loopback address, asked from it",
  ["DELETE /admin/reload 405 EMETHOD"] = "main controller",
  ["HEAD /admin/reload 405"] = "main controller",
  ["OPTIONS /admin/reload 405 EMETHOD"] = "main controller",
  ["GET /dashboard 200"] = "main controller",
  ["GET /dashboard 403 EFORBIDDEN"] = "a controller on this host's non-loopback address, asked from it",
  ["GET /dashboard 500 EINTERNAL"] = "no document: the library has no dashboard/ beside it",
  ["DELETE /dashboard 405 EMETHOD"] = "main controller",
  ["HEAD /dashboard 405"] = "main controller",
  ["OPTIONS /dashboard 405 EMETHOD"] = "main controller",
  ["GET /dashboard/events 200"] = "main controller (read for a second)",
  ["GET /dashboard/events 403 EFORBIDDEN"] = "non-loopback address, no token",
  ["DELETE /dashboard/events 405 EMETHOD"] = "main controller",
  ["HEAD /dashboard/events 405"] = "main controller",
  ["OPTIONS /dashboard/events 405 EMETHOD"] = "main controller",
  ["GET /dashboard/{file} 200 text/html"] = "main: index.html",
  ["GET /dashboard/{file} 200 text/javascript"] = "main: app.js",
  ["GET /dashboard/{file} 200 text/css"] = "main: app.css",
  ["GET /dashboard/{file} 403 EFORBIDDEN"] = "non-loopback address, a wrong token",
  ["GET /dashboard/{file} 404 ENOTFOUND"] = "main: a file that is not the dashboard's (../, nope.js)",
  ["GET /dashboard/{file} 500 EINTERNAL"] = "no document: the library has no dashboard/ beside it",
  ["DELETE /dashboard/{file} 405 EMETHOD"] = "main controller",
  ["HEAD /dashboard/{file} 405"] = "main controller",
  ["OPTIONS /dashboard/{file} 405 EMETHOD"] = "main controller",
  ["GET (unknown) 404 ENOTFOUND"] = "main controller",
  ["POST (unknown) 404 ENOTFOUND"] = "main controller",
  ["HEAD (unknown) 404"] = "main controller",
}
-- these need a non-loopback address on this host
local NO_ADDRESS_403 = { ["POST /admin/reload 403 EFORBIDDEN"] = true, ["GET /dashboard 403 EFORBIDDEN"] = true,
  ["GET /dashboard/events 403 EFORBIDDEN"] = true, ["GET /dashboard/{file} 403 EFORBIDDEN"] = true }
-- the rows only the #slow chain test drives (left out when it is, e.g. --exclude-tags=slow)
local CHAIN_ROWS = { ["GET /outbox 200"] = true, ["GET /outbox/{id} 200"] = true, ["POST /verify 402 EPAYMENT"] = true,
  ["POST /verify 503 EPAYMENT_UNAVAILABLE"] = true }
local chain_ran = false

local function deref(x)
  while type(x) == "table" and x["$ref"] do x = V:resolve(x["$ref"]) end
  return x
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- The error codes a schema allows (a set), nil when it does not constrain
-- `code`: a `code` enum, intersected through allOf and $ref.
local function codes_of(s)
  s = deref(s)
  if type(s) ~= "table" then return nil end
  local out
  local function meet(set)
    if not set then return end
    if not out then out = set return end
    local n = {}
    for k in pairs(out) do if set[k] then n[k] = true end end
    out = n
  end
  local c = s.properties and s.properties.code
  if c and c.enum then meet(set_of(c.enum)) end
  for _, sub in ipairs(s.allOf or {}) do meet(codes_of(sub)) end
  return out
end

-- The names of a schema's oneOf branches ($ref'd schemas), or nil.
local function branches(s)
  s = deref(s)
  if type(s) ~= "table" or not s.oneOf then return nil end
  local out = {}
  for i, b in ipairs(s.oneOf) do out[i] = assert(b["$ref"], "a oneOf branch without $ref"):match("[^/]+$") end
  return out
end

local function key(method, tmpl, st, detail, media)
  return ("%s %s %s"):format(method, tmpl, tostring(st)) .. (detail and (" " .. detail) or "")
    .. (media and (" " .. media) or "")
end

-- Every response the document declares, as COVERAGE keys.
local function declared()
  local out = {}
  local function add(method, tmpl, st, resp)
    resp = deref(resp)
    local medias = sorted_keys(resp.content or {})
    if method == "HEAD" or #medias == 0 then out[key(method, tmpl, st)] = true return end
    for _, ct in ipairs(medias) do
      local media = (#medias > 1 and ct ~= "application/json") and ct or nil
      local schema = resp.content[ct].schema
      local details = ct == "application/json" and (codes_of(schema) and sorted_keys(codes_of(schema))
        or branches(schema)) or { false }
      for _, d in ipairs(details) do out[key(method, tmpl, st, d or nil, media)] = true end
    end
  end
  for tmpl, item in pairs(DOC.paths) do
    for m, op in pairs(item) do
      if m ~= "parameters" then for st, r in pairs(op.responses) do add(m:upper(), tmpl, st, r) end end
    end
    for _, m in ipairs(EXTRA_METHODS) do
      if not item[m:lower()] then add(m, tmpl, "405", DOC.components.responses.MethodNotAllowed) end
    end
  end
  for _, m in ipairs({ "GET", "POST", "HEAD" }) do add(m, UNKNOWN, "404", DOC.components.responses.NotFound) end
  return out
end
local DECLARED = declared()

-- the path template a request path falls under (a parameter is the rest
-- of the path: the controller routes anything under /verify/ to the job
-- route, and answers 404 for an id that is none)
local function find_path(path)
  path = path:match("^[^?]*")
  if DOC.paths[path] then return path, DOC.paths[path] end   -- /dashboard/events before /dashboard/{file}
  for tmpl, item in pairs(DOC.paths) do
    local pat = "^" .. tmpl:gsub("[%.%-]", "%%%0"):gsub("{[^}]+}", ".+") .. "$"
    if path:match(pat) then return tmpl, item end
  end
end

-- the methods a path item lists, as the controller's Allow names them
local function methods_of(item, with_options)
  local out = {}
  for m in pairs(item) do
    if m ~= "parameters" and (with_options or m ~= "options") then out[#out + 1] = m:upper() end
  end
  table.sort(out)
  return out
end

local function split_allow(v)
  local out = {}
  for m in tostring(v):gmatch("[^,%s]+") do out[#out + 1] = m end
  table.sort(out)
  return out
end

local covered = {}

-- Check one answer against the document (fails the test); returns the
-- JSON tree of its body (nil for none or another media type).
local function conform(method, path, st, hd, body)
  local where = ("%s %s -> %s"):format(method, path, tostring(st))
  assert.is_number(st, where .. ": no answer: " .. tostring(body))
  local tmpl, item = find_path(path)
  local resp
  if not tmpl then   -- an unknown route: ENOTFOUND
    assert.equal(404, st, where .. ": a path the document does not list")
    resp, tmpl = deref(DOC.components.responses.NotFound), UNKNOWN
  elseif not item[method:lower()] then   -- a method the path does not list: EMETHOD
    assert.equal(405, st, where .. ": a method the document does not list")
    resp = deref(DOC.components.responses.MethodNotAllowed)
    assert.same(methods_of(item), split_allow(hd.allow), where .. ": Allow")
  else
    resp = deref(item[method:lower()].responses[tostring(st)])
    assert.is_table(resp, where .. ": status not in the document")
    if st == 405 then   -- OPTIONS with CORS off
      assert.same(methods_of(item), split_allow(hd.allow), where .. ": Allow")
    elseif method == "OPTIONS" and st == 204 then
      assert.same(methods_of(item, true), split_allow(hd.allow), where .. ": Allow")
    end
  end
  for name, hdr in pairs(resp.headers or {}) do
    if deref(hdr).required then assert.is_string(hd[name:lower()], where .. ": header " .. name .. " missing") end
  end
  local rid = hd["x-request-id"]
  if rid then assert.is_truthy(#rid <= 128 and rid:match("^[!-~]+$"), where .. ": X-Request-Id " .. rid) end
  local ct = (hd["content-type"] or ""):match("^[^;%s]+")
  local media, tree, detail, media_key
  if resp.content then
    media = resp.content[ct]
    assert.is_table(media, where .. ": media type " .. tostring(ct) .. " not in the document")
    if #sorted_keys(resp.content) > 1 and ct ~= "application/json" then media_key = ct end
  end
  if method == "HEAD" then
    assert.equal("", body, where .. ": a body in an answer to HEAD")
  elseif not media then
    assert.equal("", body, where .. ": a body where the document has none")
  elseif ct == "application/json" then
    local err
    tree, err = json.decode_ordered(body)
    assert.is_truthy(tree, where .. ": not JSON: " .. tostring(err) .. "\n" .. body)
    local ok, verr = V:validate(media.schema, tree)
    assert.is_true(ok, where .. ": " .. tostring(verr) .. "\n" .. body)
    if codes_of(media.schema) then
      detail = tree.code
      -- errors.lua decides a refusal's status; the document must agree
      assert.equal(errors.CODES[detail].status, st, where .. ": the status of " .. detail)
    elseif branches(media.schema) then
      for _, b in ipairs(branches(media.schema)) do
        if V:validate({ ["$ref"] = "#/components/schemas/" .. b }, tree) then detail = b end
      end
    end
    local retry = hd["retry-after"]
    if retry and type(tree.details) == "table" and tree.details.retryAfter then
      assert.equal(tostring(tree.details.retryAfter), retry, where .. ": Retry-After and details.retryAfter")
    end
  end
  local k = key(method, tmpl, st, detail, media_key)
  assert.is_true(DECLARED[k], where .. ": " .. k .. " is not a declared response")
  covered[k] = true
  return tree
end

-- HTTP over loopback (spec/helpers.lua's curl), and HEAD (curl --head:
-- no body is read; -X HEAD would wait for the Content-Length bytes).
local function http(method, url, body, headers, opts)
  if method ~= "HEAD" then return h.http(method, url, body, headers, opts) end
  local args = { "-s", "-i", "--head", "--max-time", "30" }
  for k, v in pairs(headers or {}) do args[#args + 1] = "-H"; args[#args + 1] = k .. ": " .. v end
  args[#args + 1] = url
  local out = h.run("/usr/bin/curl", args)
  local head, rest = out:match("^(.-)\r\n\r\n(.*)$")
  if not head then return nil, nil, out end
  local hdrs = {}
  for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[k:lower()] = v end
  return tonumber(head:match("^HTTP/%S+ (%d+)")), hdrs, rest
end

local function call(method, path, body, headers, opts)
  local st, hd, b = http(method, SRV.url .. path, body, headers, opts)
  local tree = conform(method, path, st, hd, b)
  return st, hd, b, tree
end

local function verify(task, headers, from)
  headers = headers or {}
  headers["content-type"] = "application/json"
  local st, hd, b = call("POST", "/verify", type(task) == "table" and cjson.encode(task) or task, headers,
    from and { from = from })
  return st, cjson.decode(b), hd
end

local function task(code, expect, extra)
  local t = { taskType = "code-execution", language = "lua", code = code, expectedHash = sha(expect) }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

-- Run fn(srv) with srv as the controller `call` talks to; stop srv after.
-- Returns stop's status table.
local function with_controller(srv, fn)
  local main = SRV
  SRV = srv
  local ok, err = pcall(fn, srv)
  SRV = main
  local status = h.stop(srv)
  if not ok then error(err, 0) end
  return status
end

-- the default flow with a policy stage right after validate, as Lua source
local function flow_with(stage)
  assert(config.FLOW[1] == "validate")
  local names = { ("%q"):format("validate"), ("%q"):format(stage) }
  for i = 2, #config.FLOW do names[#names + 1] = ("%q"):format(config.FLOW[i]) end
  return "{ " .. table.concat(names, ", ") .. " }"
end

-- a non-loopback address of this host (IPv4 first; IPv6 in brackets), or nil
local function non_loopback_address()
  local p = io.popen("hostname -I 2>/dev/null")
  local out = p and p:read("*a") or ""
  if p then p:close() end
  for a in out:gmatch("%S+") do
    if a:match("^%d+%.%d+%.%d+%.%d+$") and not a:match("^127%.") then return a end
  end
  for a in out:gmatch("%S+") do
    if a:find(":", 1, true) and a ~= "::1" and not a:lower():find("^fe80") then return "[" .. a .. "]" end
  end
end
local PUBLIC = non_loopback_address()

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
      local tmpl = r[1]:gsub(":id$", r[1] == "/verify/:id" and "{jobId}" or "{id}"):gsub(":file$", "{file}")
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

  it("names every refusal code of errors.lua, each under the status errors.lua gives it", function()
    local want = {}
    for code, e in pairs(errors.CODES) do if e.status then want[code] = e.status end end
    local got = {}
    for k in pairs(DECLARED) do
      local st, code = k:match("^%u+ %S+ (%d+) (E[%u_]+)$")
      if code then
        assert.equal(want[code], tonumber(st), k)
        got[code] = tonumber(st)
      end
    end
    assert.same(want, got)
    assert.same(sorted_keys(want), (function()
      local l = {}
      for _, c in ipairs(DOC.components.schemas.Error.properties.code.enum) do l[#l + 1] = c end
      table.sort(l)
      return l
    end)())
  end)

  it("the coverage table has one row for each response the document declares", function()
    assert.same(sorted_keys(DECLARED), sorted_keys(COVERAGE))
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
    -- an error response narrows the codes (allOf): another code fails, so does an extra member
    local not_found = deref(DOC.components.responses.NotFound).content["application/json"].schema
    assert.is_true(check(not_found, '{"error":"x","code":"ENOTFOUND","details":{}}'))
    assert.is_false(check(not_found, '{"error":"x","code":"EMETHOD","details":{}}'))
    assert.is_false(check(not_found, '{"error":"x","code":"ENOTFOUND","details":{},"more":1}'))
    assert.is_false(check(not_found, '{"error":"x","code":"ENOTFOUND"}'))
    assert.has_error(function() V:check({ type = "string", pattern = "^x" }) end)
    assert.has_error(function() V:validate({ ["$ref"] = "#/components/schemas/Nope" }, json.decode_ordered("1")) end)
  end)
end)

describe("the controller answers as the document says #integration", function()
  SRV = h.controller_for(h.config(([[
  watch = false,
  cors = { origins = { "%s" } },
  limits = { max_code = 4096, max_body = 8192, timeout_min = 1 },
  flow = %s,]]):format(ORIGIN, flow_with("openapi_stage")), {
    rate_limit = "{ config = { limit = 12, window = 60, warn_ratio = 1 } }",
    worker_threshold = "{ config = { per_client = 1 } }",
    openapi_stage = ("{ file = %q }"):format(CWD .. "/spec/fixtures/policies/openapi_stage.lua"),
  }))

  it("GET /openapi.json serves the document", function()
    local st, _, b = call("GET", "/openapi.json")
    assert.equal(200, st)
    assert.same(DOC, cjson.decode(b))
    st = call("GET", "/openapi.json", nil, { origin = ORIGIN })
    assert.equal(200, st)
  end)

  it("/health, /info, /metrics; 404 for unknown paths; 405 for every method a path does not list", function()
    assert.equal(200, (call("GET", "/health")))
    assert.equal(200, (call("HEAD", "/health")))
    assert.equal(200, (call("GET", "/info")))
    assert.equal(200, (call("GET", "/metrics")))
    for _, m in ipairs({ "GET", "POST", "HEAD" }) do assert.equal(404, (call(m, "/nope"))) end
    assert.equal(404, (call("POST", "/nope/x")))
    for tmpl, item in pairs(DOC.paths) do
      local path = tmpl:gsub("{[^}]+}", "1")
      for _, m in ipairs(EXTRA_METHODS) do
        if not item[m:lower()] then assert.equal(405, (call(m, path)), m .. " " .. path) end
      end
    end
  end)

  it("/dashboard: the page, its files, its event stream", function()
    local st, hd, b = call("GET", "/dashboard")
    assert.equal(200, st)
    assert.matches("<title>WorkProof dashboard</title>", b, 1, true)
    assert.matches("default-src 'self'", hd["content-security-policy"], 1, true)
    for _, f in ipairs({ "index.html", "app.js", "app.css" }) do
      assert.equal(200, (call("GET", "/dashboard/" .. f)))
    end
    for _, f in ipairs({ "nope.js", "sub/app.js", "app.js.bak", "events/x" }) do
      assert.equal(404, (call("GET", "/dashboard/" .. f)), f)
    end
    -- the stream stays open: read it for 1.5 s (curl ends at --max-time)
    local out = h.run("/usr/bin/curl", { "-s", "-i", "-N", "--max-time", "1.5", SRV.url .. "/dashboard/events" })
    local head, rest = out:match("^(.-)\r\n\r\n(.*)$")
    local hdrs = {}
    for k, v in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do hdrs[k:lower()] = v end
    conform("GET", "/dashboard/events", tonumber(head:match("^HTTP/%S+ (%d+)")), hdrs, rest)
    assert.equal("no-cache", hdrs["cache-control"])
    assert.matches("^retry: 2000\n\nevent: state\ndata: {", rest)
  end)

  it("OPTIONS on the CORS routes: 204 for the allowed origin (with the grant), another origin, none", function()
    for _, p in ipairs(CORS_PATHS) do
      local st, hd = call("OPTIONS", p, nil, { origin = ORIGIN, ["access-control-request-method"] = "GET" })
      assert.equal(204, st)
      assert.equal(ORIGIN, hd["access-control-allow-origin"])
      assert.is_string(hd["access-control-allow-methods"])
      st, hd = call("OPTIONS", p, nil, { origin = "https://other.example", ["access-control-request-method"] = "GET" })
      assert.equal(204, st)
      assert.is_nil(hd["access-control-allow-origin"])
      assert.equal(204, (call("OPTIONS", p)))
    end
  end)

  it("POST /verify: the verdicts, async and its job states, refusals", function()
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
      local _, _, _, tree = call("GET", "/verify/" .. r.jobId)
      return tree.status == "completed"
    end, 30))
    assert.equal(200, (call("GET", "/verify/" .. done)))
    assert.equal(404, (call("GET", "/verify/" .. ("ab"):rep(16))))
    assert.equal(404, (call("GET", "/verify/not-hex")))
    assert.equal(404, (call("GET", "/verify/x/y")))

    st, r = verify("{")
    assert.equal(400, st)
    assert.equal("EVALIDATION", r.code)
    st, r = verify({ taskType = "code-execution", code = 5 })
    assert.equal(400, st)
    assert.equal("EVALIDATION", r.code)
    st, r = verify({ taskType = "code-execution", language = "javascript",
      code = "const fs = require('fs'); console.log(4)", expectedHash = sha("4") })
    assert.equal(400, st)
    assert.equal("EBLOCKED", r.code)
    -- CORS headers on an ordinary answer do not change its shape
    st = verify(task("print(2 + 2)", "4"), { origin = ORIGIN })
    assert.equal(200, st)
  end)

  it("413: the code over max_code, the body over max_body (JSON), over twice max_body (h2o, plain text)", function()
    local st, r = verify(task(("-"):rep(5000) .. "\nprint(4)", "4"))
    assert.equal(413, st)
    assert.equal("ETOOLARGE", r.code)
    assert.is_string(r.details.code)
    st, r = verify(task("print(4)", "4", { inputData = { pad = ("x"):rep(9000) } }))
    assert.equal(413, st)
    assert.equal("ETOOLARGE", r.code)
    assert.is_string(r.details.body)
    local hd, b
    st, hd, b = call("POST", "/verify", cjson.encode(task("print(4)", "4", { inputData = { pad = ("x"):rep(20000) } })),
      { ["content-type"] = "application/json" })
    assert.equal(413, st)
    assert.matches("^text/plain", hd["content-type"])
    assert.is_string(b)
  end)

  it("500: a policy stage that raises (EPOLICY), one that answers no response (EINTERNAL)", function()
    local st, r = verify(task("print(1) -- policy:raise", "1"), { origin = ORIGIN }, "127.0.0.80")
    assert.equal(500, st)
    assert.equal("EPOLICY", r.code)
    -- each failure gets its own answer: the CORS grant of the one before
    -- (with Origin) is not carried over to one without
    local hd
    st, r, hd = verify(task("print(1) -- policy:raise", "1"), nil, "127.0.0.80")
    assert.equal(500, st)
    assert.equal("EPOLICY", r.code)
    assert.is_nil(hd["access-control-allow-origin"])
    st, r = verify(task("print(1) -- policy:garbage", "1"), nil, "127.0.0.80")
    assert.equal(500, st)
    assert.equal("EINTERNAL", r.code)
    -- the controller still serves
    st, r = verify(task("print(1)", "1"), nil, "127.0.0.80")
    assert.equal(200, st)
    assert.equal("VALID", r.result)
  end)

  it("a running job, TIMEOUT, and 503 ECAPACITY for a client over its worker cap", function()
    local slow = { taskType = "code-execution", language = "lua", timeoutSeconds = 3,
      code = "local x = 0 for i = 1, 5e9 do x = x + i end print(x)", expectedHash = sha("1") }
    local st, r = verify(slow, { Prefer = "respond-async" }, "127.0.0.61")
    assert.equal(202, st)
    local _, _, _, tree = call("GET", "/verify/" .. r.jobId)
    assert.equal("running", tree.status)
    local st2, r2, hd2 = verify(slow, nil, "127.0.0.61")
    assert.equal(503, st2)
    assert.equal("ECAPACITY", r2.code)
    assert.is_string(hd2["retry-after"])
    assert.is_true(h.eventually(function()
      local _, _, _, t = call("GET", "/verify/" .. r.jobId)
      return t.status == "completed"
    end, 30))
    _, _, _, tree = call("GET", "/verify/" .. r.jobId)
    assert.equal("TIMEOUT", tree.result)
  end)

  it("429 ERATELIMIT once a client is over the rate limit", function()
    local blocked = { taskType = "code-execution", language = "javascript",
      code = "const fs = require('fs'); console.log(4)", expectedHash = sha("4") }
    local st, r, hd
    for _ = 1, 20 do
      st, r, hd = verify(blocked, nil, "127.0.0.70")
      if st == 429 then break end
      assert.equal(400, st)
    end
    assert.equal(429, st)
    assert.equal("ERATELIMIT", r.code)
    assert.matches("^%d+$", hd["retry-after"])
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
end)

describe("a controller with no worker binary and no OpenAPI document beside its library #integration", function()
  it("an ESPAWN verdict opens the breaker: 503 EBREAKER; GET /openapi.json 500; with CORS off OPTIONS is 405",
    function()
    local dir = h.policy_dir()
    -- the Lua library through a directory with no docs/ beside it
    -- (WORKPROOF_LUA_DIR), so docs/openapi.yaml is not found
    local lib, bin = dir .. "/lib/lua", dir .. "/bin"
    assert(os.execute(("mkdir -p %s %s && ln -s %s %s"):format(h.q(lib), h.q(bin), h.q(CWD .. "/lua/workproof"),
      h.q(lib .. "/workproof"))))
    local exe = h.build:sub(1, 1) == "/" and h.build or (CWD .. "/" .. h.build)
    h.write(bin .. "/workproof", ('#!/bin/sh\nWORKPROOF_LUA_DIR=%s exec %s "$@"\n'):format(h.q(lib),
      h.q(exe .. "/workproof")))
    assert(os.execute("chmod +x " .. h.q(bin .. "/workproof")))
    local saved = h.build
    h.build = bin
    local ok, srv = pcall(h.start_controller, h.config([[
  watch = false,
  worker = { path = "/nonexistent/workproof-worker" },]], {
      circuit_breaker = "{ config = { failure_threshold = 1 } }" }), { dir = dir })
    h.build = saved
    assert(ok, srv)
    with_controller(srv, function()
      local st, r = verify(task("print(1)", "1"))
      assert.equal(200, st)
      assert.equal("ERROR", r.result)
      assert.is_true(r.refundEligible)
      assert.matches("^ESPAWN", r.error)
      local hd
      st, r, hd = verify(task("print(1)", "1"))
      assert.equal(503, st)
      assert.equal("EBREAKER", r.code)
      assert.matches("^%d+$", hd["retry-after"])
      local _, _, _, tree = call("GET", "/openapi.json")
      assert.equal("EINTERNAL", tree.code)
      for _, p in ipairs({ "/dashboard", "/dashboard/app.js" }) do   -- no dashboard/ beside the library either
        st, _, _, tree = call("GET", p)
        assert.equal(500, st)
        assert.equal("EINTERNAL", tree.code)
      end
      for _, p in ipairs(CORS_PATHS) do
        assert.equal(405, (call("OPTIONS", p, nil, { origin = ORIGIN, ["access-control-request-method"] = "GET" })))
      end
    end)
  end)
end)

describe("an admin request from a non-loopback client #integration", function()
  it("POST /admin/reload: 403 EFORBIDDEN", function()
    if not PUBLIC then
      pending("this host has no non-loopback address")
      return
    end
    local token = "dashboard-token-0123456789"
    local srv = h.start_controller(h.config(('  watch = false,\n  dashboard = { token = "%s" },'):format(token)),
      { dir = h.policy_dir(), listen = PUBLIC .. ":0" })
    srv.url = ("http://%s:%d"):format(PUBLIC, srv.port)
    with_controller(srv, function()
      local st, _, _, tree = call("POST", "/admin/reload")
      assert.equal(403, st)
      assert.equal("EFORBIDDEN", tree.code)
      -- the dashboard: 403 without the token or with a wrong one; the token
      -- as a bearer or in the query lets this client in
      for _, ask in ipairs({ { "/dashboard" }, { "/dashboard/events" }, { "/dashboard/app.css?token=" .. token .. "x" },
        { "/dashboard/app.css", { authorization = "Bearer " .. token:sub(2) } } }) do
        st, _, _, tree = call("GET", ask[1], nil, ask[2])
        assert.equal(403, st, ask[1])
        assert.equal("EFORBIDDEN", tree.code)
      end
      assert.equal(200, (call("GET", "/dashboard", nil, { authorization = "Bearer " .. token })))
      assert.equal(200, (call("GET", "/dashboard/app.js?token=" .. token)))
    end)
  end)
end)

describe("a controller draining after SIGTERM #integration", function()
  it("answers a request on a kept-alive connection 503 ESHUTDOWN and /health 503 while a job runs on", function()
    local srv = h.start_controller(h.config([[
  watch = false,
  limits = { timeout_min = 1 },]]), { dir = h.policy_dir() })
    local body = cjson.encode(task("print(1)", "1"))
    local asks = {
      { "POST", "/verify", ("POST /verify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        .. "Content-Length: %d\r\n\r\n%s"):format(#body, body) },
      { "GET", "/health", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" },
      { "HEAD", "/health", "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n" },
      { "GET", "/info", "GET /info HTTP/1.1\r\nHost: x\r\n\r\n" },
    }
    local texts = {}
    for i, a in ipairs(asks) do texts[i] = a[3] end
    local slow
    local status = with_controller(srv, function()
      -- the client's connections are open (and idle) before the drain
      local client, out = h.spawn_until({ file = "/usr/bin/env", args = { "node", "spec/fixtures/drain_client.js",
        cjson.encode({ port = srv.port, requests = texts }) }, timeout = 30 }, "ready\n", "the drain client")
      wp.spawn(function()
        slow = { pcall(verify, task("while true do end", "1", { timeoutSeconds = 3 })) }
      end)
      assert.is_true(h.eventually(function()
        local _, _, text = call("GET", "/metrics")
        return text:find("\nwp_workers_active 1\n", 1, true) ~= nil
      end, 10), "the slow job did not start")
      assert.equal(200, (call("GET", "/info")))
      host.kill(srv.proc.pid, 15)
      while true do
        local c = client:read()
        if not c then break end
        out = out .. c
      end
      local line = out:match("ready\n([^\n]*)")
      local exit = client:wait()
      assert.equal(0, exit.exit_status, out .. exit.stderr)
      local res = cjson.decode(line).responses
      for i, a in ipairs(asks) do conform(a[1], a[2], res[i].status, res[i].headers, res[i].body) end
      assert.equal("ESHUTDOWN", cjson.decode(res[1].body).code)
      assert.same({ status = "draining" }, cjson.decode(res[2].body))
      assert.equal(503, res[3].status)
      assert.equal(200, res[4].status)
      assert.is_true(h.eventually(function() return slow ~= nil end, 30), "the in-flight request was not answered")
      assert(slow[1], slow[2])
      assert.equal(200, slow[2])
      assert.equal("TIMEOUT", slow[3].result)
    end)
    assert.equal(0, status.exit_status, status.stderr)
  end)
end)

describe("with a chain (anvil) #integration", function()
  it("402 with PAYMENT-REQUIRED, 503 EPAYMENT_UNAVAILABLE, /info's chain and payment, /outbox rows #slow",
    function()
    chain_ran = true
    local a = h.start_anvil()
    h.write(a.dir .. "/signer.key", "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n")   -- anvil #0
    os.execute("chmod 600 " .. a.dir .. "/signer.key")
    local function chain_config(payments)
      return h.config(([[
  watch = false,
  chain = { enabled = true, rpc = "%s", deployment = "%s/dep.json", key_file = "%s/signer.key", wait_receipt = 15 },
  payments = { enabled = %s },]]):format(a.url, a.dir, a.dir, payments))
    end
    local ok, err = pcall(function()
      -- unpaid: a VALID verdict is attested through the outbox
      with_controller(h.start_controller(chain_config("false"), { dir = h.policy_dir() }), function()
        local st, r = verify(task("print(4)", "4"))
        assert.equal(200, st)
        assert.equal("mined", r.attestation)
        assert.equal(200, (call("GET", "/info")))
        assert.equal(200, (call("GET", "/outbox")))
        assert.equal(200, (call("GET", "/outbox/1")))
        assert.equal(404, (call("GET", "/outbox/999")))
      end)
      with_controller(h.start_controller(chain_config("true"), { dir = h.policy_dir() }), function()
        local st, r, hd = verify(task("print(4)", "4"))
        assert.equal(402, st)
        assert.equal("EPAYMENT", r.code)
        assert.is_string(hd["payment-required"])
        local _, _, _, info = call("GET", "/info")
        assert.is_true(info.features.payments)
        -- the chain goes away: a payment cannot be checked
        a.proc:kill(15)
        a.proc:wait()
        a.stopped = true
        st, r, hd = verify(task("print(4)", "4"), { ["X-402-Payment"] = "0x" .. ("ab"):rep(32) })
        assert.equal(503, st)
        assert.equal("EPAYMENT_UNAVAILABLE", r.code)
        assert.matches("^%d+$", hd["retry-after"])
      end)
    end)
    if not a.stopped then
      a.proc:kill(15)
      a.proc:wait()
    end
    assert(ok, err)
  end)
end)

describe("the coverage table #integration", function()
  it("every response the document declares was driven above", function()
    local missing, skipped = {}, {}
    for _, k in ipairs(sorted_keys(COVERAGE)) do
      if (NO_ADDRESS_403[k] and not PUBLIC) or (CHAIN_ROWS[k] and not chain_ran) then
        skipped[#skipped + 1] = k
      elseif not covered[k] then
        missing[#missing + 1] = k .. "  (" .. COVERAGE[k] .. ")"
      end
    end
    assert.same({}, missing)
    assert.is_string(wp.version)
    if #skipped > 0 then pending("not driven here (no non-loopback address, or the #slow chain test left out): "
      .. table.concat(skipped, ", ")) end
  end)
end)
