-- SPDX-License-Identifier: MIT
-- CORS (config `cors`, docs/http-api.md): a browser x402 client on another
-- origin can preflight /verify, send the payment headers and read the
-- payment answers; an origin not allowed gets nothing CORS; off by default.
local h = require "helpers"
local config = require "workproof.config"

local ORIGIN = "https://app.example"

local function preflight(srv, path, origin, method)
  return h.http("OPTIONS", srv.url .. path, nil, { origin = origin,
    ["access-control-request-method"] = method or "POST",
    ["access-control-request-headers"] = "content-type,payment-signature" })
end

local function tokens(list)
  local t = {}
  for w in (list or ""):gmatch("[^,%s]+") do t[w:lower()] = true end
  return t
end

describe("cors config", function()
  it("is off by default; origins is \"*\" or a list of scheme://host[:port]", function()
    assert.is_nil(config.defaults().cors.origins)
    assert.equal(600, config.defaults().cors.max_age)
    assert.equal("*", config.load(nil, { cors = { origins = "*" } }).cors.origins)
    local c = config.load(nil, { cors = { origins = { ORIGIN, "http://127.0.0.1:5173", "http://[::1]:8080" },
      max_age = 60 } }).cors
    assert.same({ ORIGIN, "http://127.0.0.1:5173", "http://[::1]:8080" }, c.origins)
    assert.equal(60, c.max_age)
  end)

  it("refuses malformed origins and settings", function()
    for _, bad in ipairs({
      { origins = "https://app.example" },          -- a string other than "*"
      { origins = {} },
      { origins = { "app.example" } },              -- no scheme
      { origins = { "https://app.example/" } },     -- a path
      { origins = { "https://app.example/x" } },
      { origins = { "ftp://app.example" } },
      { origins = { 42 } },
      { origins = { a = "https://app.example" } },  -- a map
      { origins = { ORIGIN, nil, ORIGIN } },
      { origins = "*", max_age = -1 },
      { origins = "*", max_age = 1e9 },
      { origins = "*", maxage = 5 },                -- a typo
    }) do
      local ok, err = pcall(config.load, nil, { cors = bad })
      assert.is_false(ok, require("cjson").encode(bad))
      assert.matches("cors%.", err)
    end
  end)
end)

describe("CORS with a list of origins #integration", function()
  local srv = h.controller_for(h.config(('cors = { origins = { "%s" }, max_age = 120 },'):format(ORIGIN)))

  it("answers a preflight for /verify 204 with the grant for an allowed origin", function()
    local st, hd = preflight(srv, "/verify", ORIGIN)
    assert.equal(204, st)
    assert.equal(ORIGIN, hd["access-control-allow-origin"])
    assert.same({ post = true }, tokens(hd["access-control-allow-methods"]))
    local allow = tokens(hd["access-control-allow-headers"])
    for _, name in ipairs({ "payment-signature", "x-payment", "x-402-payment", "prefer", "content-type" }) do
      assert.is_true(allow[name], name)
    end
    assert.equal("120", hd["access-control-max-age"])
    assert.equal("Origin", hd.vary)
    -- an origin is compared as browsers send it, case aside
    st, hd = preflight(srv, "/verify", "HTTPS://APP.EXAMPLE")
    assert.equal(204, st)
    assert.equal("HTTPS://APP.EXAMPLE", hd["access-control-allow-origin"])
  end)

  it("preflights /verify/:id and /info with their own methods", function()
    local st, hd = preflight(srv, "/verify/abc", ORIGIN, "GET")
    assert.equal(204, st)
    assert.same({ get = true }, tokens(hd["access-control-allow-methods"]))
    st, hd = preflight(srv, "/info", ORIGIN, "GET")
    assert.equal(204, st)
    assert.same({ get = true }, tokens(hd["access-control-allow-methods"]))
  end)

  it("exposes the payment and retry headers on ordinary answers, errors included", function()
    for _, req in ipairs({ { "GET", "/info", 200 }, { "GET", "/verify/nope", 404 }, { "POST", "/verify", 400 } }) do
      local st, hd = h.http(req[1], srv.url .. req[2], req[1] == "POST" and "{}" or nil, { origin = ORIGIN })
      assert.equal(req[3], st)
      assert.equal(ORIGIN, hd["access-control-allow-origin"])
      local exp = tokens(hd["access-control-expose-headers"])
      for _, name in ipairs({ "payment-required", "payment-response", "x-payment-response", "retry-after",
        "x-request-id" }) do
        assert.is_true(exp[name], name)
      end
    end
  end)

  it("gives an origin not allowed, and a request without Origin, no CORS headers", function()
    for _, origin in ipairs({ "https://evil.example", "https://app.example.evil", "null" }) do
      local st, hd = preflight(srv, "/verify", origin)
      assert.equal(204, st)
      assert.equal("POST, OPTIONS", hd.allow)
      st, hd = h.http("GET", srv.url .. "/info", nil, { origin = origin })
      assert.equal(200, st)
      for k in pairs(hd) do assert.is_nil(k:match("^access%-control%-"), k) end
      assert.equal("Origin", hd.vary)   -- caches keep answers to different origins apart
    end
    local st, hd = h.http("GET", srv.url .. "/info")
    assert.equal(200, st)
    assert.is_nil(hd["access-control-allow-origin"])
  end)

  it("other routes have no CORS: OPTIONS on them is a 405 as before", function()
    local st, hd = preflight(srv, "/admin/reload", ORIGIN)
    assert.equal(405, st)
    assert.is_nil(hd["access-control-allow-origin"])
    st = preflight(srv, "/metrics", ORIGIN, "GET")
    assert.equal(405, st)
  end)
end)

describe("CORS with origins \"*\" #integration", function()
  local srv = h.controller_for(h.config('cors = { origins = "*" },'))

  it("grants any origin with *, without Vary", function()
    local st, hd = preflight(srv, "/verify", "https://anyone.example")
    assert.equal(204, st)
    assert.equal("*", hd["access-control-allow-origin"])
    assert.equal("600", hd["access-control-max-age"])
    st, hd = h.http("GET", srv.url .. "/info", nil, { origin = "https://anyone.example" })
    assert.equal(200, st)
    assert.equal("*", hd["access-control-allow-origin"])
    assert.is_nil(hd.vary)
  end)
end)

describe("CORS off (the default) #integration", function()
  local srv = h.controller_for(h.config())

  it("sends no CORS headers and answers OPTIONS 405", function()
    local st, hd = preflight(srv, "/verify", ORIGIN)
    assert.equal(405, st)
    assert.is_nil(hd["access-control-allow-origin"])
    st, hd = h.http("GET", srv.url .. "/info", nil, { origin = ORIGIN })
    assert.equal(200, st)
    for k in pairs(hd) do assert.is_nil(k:match("^access%-control%-"), k) end
    assert.is_nil(hd.vary)
  end)
end)
