-- SPDX-License-Identifier: MIT
--- The OpenAPI document of the HTTP API, served at GET /openapi.json.
--
-- The source is docs/openapi.yaml (YAML: comments, and a reviewer reads
-- it as prose's neighbour). It is converted to JSON the first time it is
-- asked for, with lyaml (Debian's lua-yaml, a LibYAML binding) and cjson,
-- and the text kept: no build step and no second copy to keep in step; the
-- YAML parser is LibYAML, not one of ours. YAML 1.1's implicit types are
-- the trap (an unquoted 200: key is a number, null a sentinel): the
-- document quotes its status codes and "null", and `convert` refuses
-- non-string keys and turns lyaml's null into JSON null.
--
--   openapi.json([path]) -> JSON text or nil, "ECODE: text", "ECODE"
--   openapi.convert(yaml_text) -> JSON text or nil, "EOPENAPI: text", "EOPENAPI"
local cjson = require "cjson.safe"

local type, pairs, pcall, tostring = type, pairs, pcall, tostring

local _M = {}

-- <repo>/docs/openapi.yaml; installed, <prefix>/share/doc/workproof/openapi.yaml
_M.PATH = require("workproof.share").locate("docs/openapi.yaml", "share/doc/workproof/openapi.yaml")

local function fail(text) return nil, "EOPENAPI: " .. text, "EOPENAPI" end

-- lyaml's tree -> cjson's: null sentinels to cjson.null; keys must be strings
local function walk(v, null, where)
  if v == null then return cjson.null end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    if type(k) ~= "string" and (type(k) ~= "number" or k < 1 or k > #v) then
      error(("%s: key %s is not a string (quote it: YAML reads it as a %s)"):format(where, tostring(k), type(k)), 0)
    end
    out[k] = walk(x, null, where .. "/" .. tostring(k))
  end
  if #v > 0 then
    for k in pairs(out) do
      if type(k) == "string" then error(where .. ": a mapping mixed with a sequence", 0) end
    end
  end
  return out
end

--- The JSON text of a YAML document (a mapping at the top).
function _M.convert(text)
  if type(text) ~= "string" then error("openapi.convert: string expected", 2) end
  local ok, lyaml = pcall(require, "lyaml")
  if not ok then return fail("lyaml is not installed (Debian: lua-yaml)") end
  local okp, doc = pcall(lyaml.load, text)
  if not okp then return fail("YAML: " .. tostring(doc)) end
  if type(doc) ~= "table" or #doc > 0 then return fail("the document is not a mapping") end
  local okw, tree = pcall(walk, doc, lyaml.null, "#")
  if not okw then return fail(tree) end
  if type(tree.openapi) ~= "string" or type(tree.paths) ~= "table" then
    return fail("not an OpenAPI document (no openapi version or paths)")
  end
  local json, err = cjson.encode(tree)
  if not json then return fail(tostring(err)) end
  return json
end

local cached   -- the served text, converted once

--- The document as JSON text (docs/openapi.yaml unless `path`), converted
-- once and kept.
function _M.json(path)
  if cached and not path then return cached end
  local f, err = io.open(path or _M.PATH, "rb")
  if not f then return fail("cannot read the document: " .. tostring(err)) end
  local text = f:read("*a")
  f:close()
  local json, cerr, code = _M.convert(text)
  if not json then return nil, cerr, code end
  if not path then cached = json end
  return json
end

return _M
