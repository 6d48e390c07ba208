-- SPDX-License-Identifier: MIT
-- Mutually authenticated TLS 1.3 of the uptime agents (docs/transport.md):
-- identity certificates (host.tls_identity, host.tls_peer_key), the
-- handshake matrix between host.http_listen{tls=} and
-- host.http_request{tls=} on real loopback sockets, and differential
-- checks against the openssl command line (x509, asn1parse, s_client,
-- s_server), run as child processes on the loop.
local wp = require "workproof"
local host = require "workproof.host"
local h = require "helpers"

local OID = "2.25.177478970144685277834544340244515150372"
local OPENSSL = "/usr/bin/openssl"

local function seed(n) return ("%02x"):format(n):rep(32) end

-- the identity key of a hex seed, computed by the core's Ed25519 (not tlsid.c)
local function pub_of(hexseed)
  local pub = wp.ed25519.keypair(h.unhex(hexseed))
  return wp.hex(pub)
end

local tmpfiles = {}
local function tmpfile(content)
  local name = os.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(content)
  f:close()
  tmpfiles[#tmpfiles + 1] = name
  return name
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- openssl on the loop: stdout, exit status, stderr
local function openssl(args, stdin)
  local p = assert(host.process_spawn { file = OPENSSL, args = args, stdin = stdin, timeout = 30,
    stderr_limit = 1048576 })
  local out = {}
  while true do
    local c = p:read()
    if not c then break end
    out[#out + 1] = c
  end
  local st = p:wait()
  return table.concat(out), st.exit_status, st.stderr
end

-- a certificate and key made by openssl itself (no identity extension)
local function openssl_cert(keyspec)
  local c, k = os.tmpname(), os.tmpname()
  tmpfiles[#tmpfiles + 1], tmpfiles[#tmpfiles + 2] = c, k
  local args = { "req", "-x509", "-nodes", "-subj", "/CN=plain", "-days", "1", "-keyout", k, "-out", c }
  for _, a in ipairs(keyspec) do args[#args + 1] = a end
  local _, code, err = openssl(args)
  assert.equal(0, code, err)
  return { cert = slurp(c), key = slurp(k) }
end

-- DER bytes of an OID, made by openssl asn1parse (independent of tlsid.c)
local function oid_der(oid)
  local out = os.tmpname()
  tmpfiles[#tmpfiles + 1] = out
  local _, code, err = openssl { "asn1parse", "-genstr", "OID:" .. oid, "-out", out, "-noout" }
  assert.equal(0, code, err)
  return slurp(out)
end

local function der_of(pem)
  local der, code, err = openssl({ "x509", "-outform", "DER" }, pem)
  assert.equal(0, code, err)
  return der
end

local S, C, D, T, X = seed(0x11), seed(0x22), seed(0x33), seed(0x44), seed(0x55)
local sid, cid, did

setup(function()
  sid = host.tls_identity(S, 3600)
  cid = host.tls_identity(C, 3600)
  did = host.tls_identity(D, 3600)
end)

teardown(function()
  for _, f in ipairs(tmpfiles) do os.remove(f) end
end)

describe("host.tls_identity", function()
  it("makes a certificate openssl reads: v3, P-256, ECDSA-SHA256, the identity extension", function()
    local text, code, err = openssl({ "x509", "-noout", "-text" }, sid.cert)
    assert.equal(0, code, err)
    assert.matches("Version: 3 (0x2)", text, 1, true)
    assert.matches("Signature Algorithm: ecdsa-with-SHA256", text, 1, true)
    assert.matches("ASN1 OID: prime256v1", text, 1, true)
    assert.matches("Issuer: CN = workproof", text, 1, true)
    assert.matches("Subject: CN = workproof", text, 1, true)
    assert.matches(OID .. ":", text, 1, true)
    assert.not_matches(OID .. ": critical", text, 1, true)
    -- the certificate verifies under its own key
    local f = tmpfile(sid.cert)
    local out, vcode = openssl { "verify", "-CAfile", f, f }
    assert.equal(0, vcode, out)
  end)

  it("carries SEQUENCE { key, Ed25519(key, prefix || SPKI DER) }, checked with openssl's DER", function()
    local der = der_of(cid.cert)
    local oid = oid_der(OID)
    -- extnID, then extnValue: OCTET STRING(102) { SEQUENCE(100) { OCTET STRING(32), OCTET STRING(64) } }
    local at = assert(der:find(oid .. "\4\102\48\100\4\32", 1, true), "extension not found in the DER")
    local v = at + #oid + 6
    local key, sig = der:sub(v, v + 31), der:sub(v + 34, v + 97)
    assert.equal("\4\64", der:sub(v + 32, v + 33))
    assert.equal(pub_of(C), wp.hex(key))
    local spki, code, err = openssl({ "pkey", "-pubin", "-outform", "DER" },
      (openssl({ "x509", "-noout", "-pubkey" }, cid.cert)))
    assert.equal(0, code, err)
    assert.is_true(wp.ed25519.verify(key, "workproof-tls-handshake:" .. spki, sig))
    assert.is_false(wp.ed25519.verify(key, "libp2p-tls-handshake:" .. spki, sig))
  end)

  it("returns the PEMs, the window (now - 60 s .. now + lifetime) and the identity", function()
    local now = os.time()
    local id = host.tls_identity(h.unhex(S), 600)
    assert.equal(pub_of(S), id.identity)
    assert.is_true(math.abs(id.not_before - (now - 60)) <= 2)
    assert.is_true(math.abs(id.not_after - (now + 600)) <= 2)
    assert.matches("^%-%-%-%-%-BEGIN CERTIFICATE%-%-%-%-%-\n", id.cert)
    assert.matches("^%-%-%-%-%-BEGIN PRIVATE KEY%-%-%-%-%-\n", id.key)
    -- openssl reads the same end: not within 540 s, within 660 s
    local _, code = openssl({ "x509", "-noout", "-checkend", "540" }, id.cert)
    assert.equal(0, code)
    _, code = openssl({ "x509", "-noout", "-checkend", "660" }, id.cert)
    assert.equal(1, code)
    -- a fresh TLS key every time, the same identity
    local again = host.tls_identity(S, 600)
    assert.not_equal(id.key, again.key)
    assert.equal(id.identity, again.identity)
  end)

  it("tls_peer_key gives the identity of a good certificate, hex or raw seed alike", function()
    assert.equal(pub_of(C), host.tls_peer_key(cid.cert))
    assert.equal(pub_of(S), host.tls_peer_key(host.tls_identity(h.unhex(S), 60).cert))
    -- the clock is not its business: an expired certificate still names its key
    assert.equal(pub_of(C), host.tls_peer_key(host.tls_identity(C, -10).cert))
  end)

  it("refuses a certificate whose extension was signed by another key", function()
    local forged = host.tls_identity(S, 3600, { claim_key = pub_of(C) })
    local key, err, code = host.tls_peer_key(forged.cert)
    assert.is_nil(key)
    assert.equal("ETLS", code)
    assert.matches("^ETLS: bad_signature: ", err)
  end)

  it("refuses certificates without the extension, with another key type, or a bad self-signature", function()
    local _, err = host.tls_peer_key(openssl_cert({ "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" }).cert)
    assert.matches("^ETLS: bad_extension: ", err)
    _, err = host.tls_peer_key(openssl_cert({ "-newkey", "ed25519" }).cert)
    assert.matches("^ETLS: bad_cert: .*P%-256", err)
    -- flip a bit of the ECDSA signature (the DER's last byte)
    local der = der_of(cid.cert)
    der = der:sub(1, -2) .. string.char(bit.bxor(der:byte(-1), 1))
    local pem, code, perr = openssl({ "x509", "-inform", "DER" }, der)
    assert.equal(0, code, perr)
    _, err = host.tls_peer_key(pem)
    assert.matches("^ETLS: bad_cert: .*self%-signature", err)
    _, err = host.tls_peer_key("not a certificate")
    assert.matches("^ETLS: bad_cert: ", err)
  end)

  it("checks its arguments", function()
    assert.has_error(function() host.tls_identity("short", 60) end)
    assert.has_error(function() host.tls_identity(("zz"):rep(32), 60) end)
    assert.has_error(function() host.tls_identity(S, -60) end)
    assert.has_error(function() host.tls_identity(S, 60, { claim_key = "x" }) end)
  end)
end)

-- a TLS server with sid; handler answers "peer=<req.peer>" and keeps the requests
local function serve(pins, opts)
  local seen = {}
  local o = { port = 0, tls = { cert = (opts and opts.cert) or sid.cert, key = (opts and opts.key) or sid.key,
    pins = pins }, handler = function(req)
      seen[#seen + 1] = req
      return 200, { ["content-type"] = "text/plain" }, "peer=" .. tostring(req.peer)
    end }
  local srv = assert(host.http_listen(o))
  return srv, seen
end

local function get(srv, id, pin, extra)
  local tls = { cert = id.cert, key = id.key, pin = pin or sid.identity }
  for k, v in pairs(extra or {}) do tls[k] = v end
  return host.http_request { url = ("https://127.0.0.1:%d/x"):format(srv.port), tls = tls, timeout = 10 }
end

local function stop(srv)
  srv:shutdown()
  srv:drop()
end

describe("TLS handshake matrix", function()
  local srv, seen
  after_each(function()
    if srv then stop(srv) end
    srv = nil
  end)

  it("a good pair: 200, req.peer is the client's identity, req.peer_addr its address", function()
    srv, seen = serve { cid.identity }
    local st, _, body = get(srv, cid)
    assert.equal(200, st)
    assert.equal("peer=" .. pub_of(C), body)
    assert.equal(pub_of(C), seen[1].peer)
    assert.equal(pub_of(C), seen[1].peer_key)
    assert.equal("127.0.0.1", seen[1].peer_addr)
    local s = srv:stats()
    assert.equal(1, s.tls_handshakes)
    assert.is_true(srv.tls)
  end)

  it("the client refuses a server that is not its pin (ETLS wrong_key)", function()
    srv, seen = serve { cid.identity }
    local st, err, code = get(srv, cid, pub_of(X))
    assert.is_nil(st)
    assert.equal("ETLS", code)
    assert.matches("^ETLS: wrong_key: the server is " .. pub_of(S), err)
    assert.equal(0, #seen)
    assert.equal(0, srv:stats().tls_handshakes)
  end)

  it("the server refuses a client it does not pin (unknown_key); the client hears why", function()
    srv, seen = serve { did.identity }
    local st, err, code = get(srv, cid)
    assert.is_nil(st)
    assert.equal("ETLS", code)
    assert.matches("^ETLS: refused: .*unknown ca", err)
    assert.equal(1, srv:stats().tls_refused_unknown_key)
    assert.equal(0, #seen)
  end)

  it("pins = \"any\" accepts every valid identity", function()
    srv, seen = serve("any")
    assert.equal(200, (get(srv, cid)))
    assert.equal(200, (get(srv, did)))
    assert.same({ pub_of(C), pub_of(D) }, { seen[1].peer, seen[2].peer })
  end)

  it("srv:pin adds and removes client keys for later handshakes", function()
    srv, seen = serve {}
    assert.is_nil((get(srv, cid)))
    assert.is_true(srv:pin(cid.identity, true))
    assert.equal(200, (get(srv, cid)))
    assert.is_true(srv:pin(did.identity))          -- on by default
    assert.equal(200, (get(srv, did)))
    assert.is_true(srv:pin(cid.identity, false))
    -- C's connection is cached by the client: a fresh identity for C forces a handshake
    local c2 = host.tls_identity(C, 3600)
    local st, err = get(srv, c2)
    assert.is_nil(st)
    assert.matches("^ETLS: refused: ", err)
    assert.equal(2, srv:stats().tls_refused_unknown_key)
    assert.has_error(function() srv:pin("nothex") end)
  end)

  it("plaintext HTTP to the TLS port fails and is counted", function()
    srv, seen = serve { cid.identity }
    local st, err = host.http_request { url = ("http://127.0.0.1:%d/x"):format(srv.port), timeout = 10 }
    assert.is_nil(st)
    assert.matches("^EHTTP: ", err)
    assert.equal(1, srv:stats().tls_refused_plaintext)
    assert.equal(0, #seen)
  end)

  it("the server refuses a stale client certificate (expired or not yet valid)", function()
    srv, seen = serve { cid.identity }
    local st, err = get(srv, host.tls_identity(C, -10))
    assert.is_nil(st)
    assert.matches("^ETLS: refused: .*certificate expired", err)
    local now = os.time()
    st = get(srv, host.tls_identity(C, 3600, { not_before = now + 600, not_after = now + 7200 }))
    assert.is_nil(st)
    assert.equal(2, srv:stats().tls_refused_stale_cert)
    assert.equal(0, #seen)
  end)

  it("the client refuses an expired server certificate (ETLS stale_cert)", function()
    local old = host.tls_identity(S, -10)
    srv, seen = serve({ cid.identity }, old)
    local st, err, code = get(srv, cid)
    assert.is_nil(st)
    assert.equal("ETLS", code)
    assert.matches("^ETLS: stale_cert: .*expired", err)
    assert.equal(0, #seen)
  end)

  it("srv:set_tls serves a new certificate to new connections", function()
    srv, seen = serve { cid.identity, did.identity }
    assert.equal(200, (get(srv, cid)))
    local tid = host.tls_identity(T, 3600)
    assert.is_true(srv:set_tls { cert = tid.cert, key = tid.key })
    -- the open connection (verified for S) goes on
    assert.equal(200, (get(srv, cid)))
    assert.equal(1, srv:stats().accepted)
    -- a new connection meets T: pinned to S it is refused, pinned to T accepted
    local st, err = get(srv, did)
    assert.is_nil(st)
    assert.matches("^ETLS: wrong_key: the server is " .. pub_of(T), err)
    assert.equal(200, (get(srv, did, tid.identity)))
    -- a bad pair is refused and the current one stays
    local _, serr, scode = srv:set_tls { cert = tid.cert, key = sid.key }
    assert.equal("ETLS", scode)
    assert.matches("^ETLS: bad_key: ", serr)
    assert.equal(200, (get(srv, did, tid.identity)))
  end)

  it("http_listen and http_request check their tls options", function()
    local _, err, code = host.http_listen { port = 0, tls = { cert = sid.cert, key = cid.key, pins = {} },
      handler = function() end }
    assert.equal("ETLS", code)
    assert.matches("^ETLS: bad_key: ", err)
    local plain_id = openssl_cert { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" }
    _, err, code = host.http_listen { port = 0, tls = { cert = plain_id.cert, key = plain_id.key, pins = {} },
      handler = function() end }
    assert.equal("ETLS", code)
    assert.matches("^ETLS: bad_extension: own certificate", err)
    assert.has_error(function()
      host.http_listen { port = 0, tls = { cert = sid.cert, key = sid.key, pins = { "abc" } },
        handler = function() end }
    end)
    assert.has_error(function()
      host.http_request { url = "http://127.0.0.1:1/", tls = { cert = cid.cert, key = cid.key, pin = sid.identity } }
    end)
    assert.has_error(function()
      host.http_request { url = "https://127.0.0.1:1/", tls = { cert = cid.cert, key = cid.key, pin = "00" } }
    end)
    local got
    local plain = assert(host.http_listen { port = 0, handler = function(req) got = req return 200, {}, "" end })
    assert.is_false(plain.tls)
    -- a plain server's peer stays the address
    assert.equal(200, (host.http_request { url = ("http://127.0.0.1:%d/"):format(plain.port) }))
    assert.same({ "127.0.0.1", "127.0.0.1" }, { got.peer, got.peer_addr })
    assert.is_nil(got.peer_key)
    assert.has_error(function() plain:pin(cid.identity) end)
    assert.is_nil(plain:stats().tls_handshakes)
    plain:shutdown()
    plain:drop()
  end)
end)

describe("TLS connections", function()
  local srv, seen
  after_each(function()
    if srv then stop(srv) end
    srv = nil
  end)

  it("keeps one connection alive for 50 sequential requests", function()
    srv, seen = serve { cid.identity }
    for i = 1, 50 do
      local st, err = get(srv, cid)
      assert.equal(200, st, err)
      assert.equal(i, #seen)
    end
    local s = srv:stats()
    assert.equal(1, s.accepted)
    assert.equal(1, s.tls_handshakes)
  end)

  it("never reuses a connection verified for one pin for a request pinned to another", function()
    srv, seen = serve { cid.identity }
    assert.equal(200, (get(srv, cid)))
    -- same host, port, client certificate; only the pin differs
    local st, err = get(srv, cid, pub_of(X))
    assert.is_nil(st)
    assert.matches("^ETLS: wrong_key: ", err)
    assert.equal(200, (get(srv, cid)))               -- the first connection again
    assert.equal(2, #seen)
    assert.equal(1, srv:stats().tls_handshakes)
    assert.equal(2, srv:stats().accepted)
  end)

  it("never reuses a connection across client identities", function()
    srv, seen = serve { cid.identity, did.identity }
    for _, id in ipairs { cid, did, cid, did } do assert.equal(200, (get(srv, id))) end
    assert.same({ pub_of(C), pub_of(D), pub_of(C), pub_of(D) },
      { seen[1].peer, seen[2].peer, seen[3].peer, seen[4].peer })
    assert.equal(2, srv:stats().accepted)
  end)

  it("puts server_name in the ClientHello (openssl s_server -trace)", function()
    local probe = assert(host.http_listen { port = 0, handler = function() return 200, {}, "" end })
    local port = probe.port
    probe:close()
    wp.sleep(0.05)
    local sc, sk = tmpfile(sid.cert), tmpfile(sid.key)
    local p = assert(host.process_spawn { file = OPENSSL, args = { "s_server", "-accept", tostring(port),
      "-cert", sc, "-key", sk, "-tls1_3", "-naccept", "1", "-trace", "-www" }, timeout = 30 })
    local out = ""
    while not out:find("ACCEPT", 1, true) do
      local c = p:read()
      if not c then error("s_server did not start: " .. out .. p:wait().stderr) end
      out = out .. c
    end
    local st, err = host.http_request { url = ("https://127.0.0.1:%d/"):format(port), timeout = 10,
      tls = { cert = cid.cert, key = cid.key, pin = sid.identity, server_name = "agent.example" } }
    assert.equal(200, st, err)
    while true do
      local c = p:read()
      if not c then break end
      out = out .. c
    end
    p:wait()
    local i = assert(out:find("server_name(0)", 1, true), "no server_name extension")
    assert.matches("agent%.exam", out:sub(i, i + 200))
  end)
end)

describe("TLS against openssl s_client", function()
  local srv, seen, port
  local REQ = "GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
  local ccert, ckey

  before_each(function()
    srv, seen = serve { cid.identity }
    port = "127.0.0.1:" .. srv.port
    ccert, ckey = tmpfile(cid.cert), tmpfile(cid.key)
  end)
  after_each(function() stop(srv) end)

  local function s_client(args)
    local a = { "s_client", "-connect", port, "-ign_eof" }
    for _, x in ipairs(args) do a[#a + 1] = x end
    return openssl(a, REQ)
  end

  it("a pinned client certificate: TLSv1.3 and the HTTP answer", function()
    local out, code, err = s_client { "-tls1_3", "-cert", ccert, "-key", ckey }
    assert.equal(0, code, err)
    assert.matches("New, TLSv1.3, Cipher is", out, 1, true)
    assert.matches("HTTP/1.1 200 OK", out, 1, true)
    assert.matches("peer=" .. pub_of(C), out, 1, true)
    assert.equal(1, srv:stats().tls_handshakes)
  end)

  it("no client certificate: refused with certificate_required", function()
    local out, _, err = s_client { "-tls1_3" }
    assert.not_matches("HTTP/1.1", out, 1, true)
    assert.matches("alert certificate required", err, 1, true)
    assert.equal(1, srv:stats().tls_refused_no_cert)
    assert.equal(0, #seen)
  end)

  it("TLS 1.2: refused with protocol_version", function()
    local out, code, err = s_client { "-tls1_2", "-cert", ccert, "-key", ckey }
    assert.not_equal(0, code)
    assert.not_matches("HTTP/1.1", out, 1, true)
    assert.matches("alert protocol version", err, 1, true)
    assert.equal(1, srv:stats().tls_refused_protocol)
  end)

  it("certificates the server refuses, each counted by its reason", function()
    local plain = openssl_cert { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256" }
    local ed = openssl_cert { "-newkey", "ed25519" }
    local forged = host.tls_identity(C, 3600, { claim_key = pub_of(D) })
    local stale = host.tls_identity(C, -10)
    local cases = {
      { plain, "tls_refused_bad_extension" },
      { ed, "tls_refused_bad_cert" },
      { forged, "tls_refused_bad_signature" },
      { stale, "tls_refused_stale_cert" },
      { did, "tls_refused_unknown_key" },
    }
    for _, case in ipairs(cases) do
      local out = s_client { "-tls1_3", "-cert", tmpfile(case[1].cert), "-key", tmpfile(case[1].key) }
      assert.not_matches("HTTP/1.1", out, 1, true)
      assert.equal(1, srv:stats()[case[2]], case[2])
    end
    -- a chain of two certificates (the pinned one and another): bad_cert
    local out = s_client { "-tls1_3", "-cert", ccert, "-key", ckey, "-cert_chain", tmpfile(did.cert) }
    assert.not_matches("HTTP/1.1", out, 1, true)
    assert.equal(2, srv:stats().tls_refused_bad_cert)
    assert.equal(0, #seen)
  end)
end)
