-- SPDX-License-Identifier: MIT
--- JSON-RPC 2.0 client for Ethereum nodes over host.http_request (libcurl
-- multi on the host loop): every call yields only its own coroutine, so many
-- coroutines may call at once.
--
--   local rpc = require "workproof.rpc"
--   local c = rpc.new("http://127.0.0.1:8545", { timeout = 10 })
--   local id = assert(c:chain_id())
--   local r, err = c:call("eth_getBalance", { addr, "latest" })
--
-- Errors follow the library convention: nil, "EHTTP: ..." for transport
-- failures (refused, timeout, oversized, non-JSON HTTP error), nil,
-- "ERPC: <code> <message>" (and the error object as a third value) for a
-- JSON-RPC error, nil, "EPROTO: ..." for a response that is not JSON-RPC.
-- Programming errors (bad argument types) raise.
--
-- Value conventions of the typed helpers: quantities come back as Lua
-- numbers where they always fit 2^53 (chain id, block number, nonce, gas)
-- and as decimal strings otherwise (wei amounts); byte strings (call data,
-- code, raw transactions) are raw Lua strings in and out; hashes and
-- addresses are "0x" hex strings as the node gives them.
local host = require "workproof.host"
local core = require "workproof.core"
local cjson = require "cjson.safe"
local schema_is_array = require("workproof.schema").is_array

local type, tostring, tonumber, pairs, ipairs, error, setmetatable =
  type, tostring, tonumber, pairs, ipairs, error, setmetatable
local concat, sort, format, floor, huge = table.concat, table.sort, string.format, math.floor, math.huge
local http_request = host.http_request

local _M = {}

--- JSON null as results carry it (cjson.null).
_M.null = cjson.null

-- ---------------------------------------------------------------------------
-- JSON encoding of request params. lua-cjson 2.1.0 cannot tell an empty
-- array from an empty object and JSON-RPC wants `[]` for no params, so
-- params get this small encoder: a table with only keys 1..n is an array
-- (the empty table too), anything else an object with sorted string keys.
-- ---------------------------------------------------------------------------

local OBJECT = setmetatable({}, { __mode = "k" })

--- Mark a table to be encoded as a JSON object even when empty.
function _M.object(t)
  t = t or {}
  OBJECT[t] = true
  return t
end

local encode_value

local function is_array(t)
  return not OBJECT[t] and schema_is_array(t)
end

encode_value = function(v, out, depth)
  local tv = type(v)
  if depth > 64 then error("rpc: params nested too deeply", 0) end
  if tv == "string" then
    out[#out + 1] = cjson.encode(v)
  elseif tv == "number" then
    if v ~= v or v == huge or v == -huge then error("rpc: cannot encode NaN or infinity", 0) end
    if v == floor(v) and v < 2 ^ 53 and v > -2 ^ 53 then
      out[#out + 1] = format("%.0f", v)
    else
      out[#out + 1] = format("%.17g", v)
    end
  elseif tv == "boolean" then
    out[#out + 1] = tostring(v)
  elseif v == nil or v == cjson.null then
    out[#out + 1] = "null"
  elseif tv == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode_value(v[i], out, depth + 1)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" then error("rpc: object keys must be strings", 0) end
        keys[#keys + 1] = k
      end
      sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = cjson.encode(k)
        out[#out + 1] = ":"
        encode_value(v[k], out, depth + 1)
      end
      out[#out + 1] = "}"
    end
  else
    error("rpc: cannot encode a " .. tv, 0)
  end
end

--- JSON text of a Lua value (the encoder used for params).
function _M.encode(v)
  local out = {}
  encode_value(v, out, 0)
  return concat(out)
end

local function request_json(id, method, params)
  local out = { '{"jsonrpc":"2.0","id":', format("%d", id), ',"method":', cjson.encode(method), ',"params":' }
  encode_value(params == nil and {} or params, out, 0)
  out[#out + 1] = "}"
  return concat(out)
end

-- ---------------------------------------------------------------------------
-- client
-- ---------------------------------------------------------------------------

local Client = {}
Client.__index = Client

-- methods that change state: never re-sent by the client itself
local WRITES = { eth_sendRawTransaction = true, eth_sendTransaction = true }

local function retryable(err)
  err = tostring(err)
  return err:find("^EHTTP: Couldn't connect") ~= nil or err:find("^EHTTP: Recv failure") ~= nil
    or err:find("^EHTTP: Failure when receiving") ~= nil or err:find("^EHTTP: Server returned nothing") ~= nil
end

--- rpc.new(url [, opts]) -> client
-- opts: timeout (seconds, 30), connect_timeout, headers ({name = value}),
-- max_response (bytes, 16 MiB).
function _M.new(url, opts)
  if type(url) ~= "string" then error("rpc.new: url must be a string", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("rpc.new: opts must be a table", 2) end
  local headers = { ["content-type"] = "application/json", accept = "application/json" }
  for k, v in pairs(opts.headers or {}) do headers[k:lower()] = v end
  return setmetatable({
    url = url,
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout,
    max_response = opts.max_response,
    headers = headers,
    id = 0,
  }, Client)
end

local function rpc_error(e)
  if type(e) ~= "table" then return "ERPC: " .. tostring(e) end
  local msg = format("ERPC: %s %s", tostring(e.code), tostring(e.message))
  if type(e.data) == "string" and #e.data <= 1024 then msg = msg .. " (data " .. e.data .. ")" end
  return msg
end

local function snippet(s)
  s = s:sub(1, 200):gsub("[%c]", " ")
  return s
end

-- POST body; returns the decoded JSON value or nil, err
function Client:post(body)
  local status, headers_or_err, resp = http_request {
    method = "POST", url = self.url, headers = self.headers, body = body,
    timeout = self.timeout, connect_timeout = self.connect_timeout, max_response = self.max_response,
  }
  if not status then return nil, headers_or_err end
  local obj = cjson.decode(resp)
  if obj == nil then
    if status ~= 200 then return nil, format("EHTTP: status %d: %s", status, snippet(resp)) end
    return nil, "EPROTO: response is not JSON: " .. snippet(resp)
  end
  return obj, status
end

function Client:next_id()
  local id = self.id + 1
  self.id = id
  return id
end

--- client:call(method [, params]) -> result | nil, err [, error object]
-- A JSON null result comes back as rpc.null.
function Client:call(method, params)
  if type(method) ~= "string" then error("rpc:call: method must be a string", 2) end
  if params ~= nil and type(params) ~= "table" then error("rpc:call: params must be a table", 2) end
  local id = self:next_id()
  local obj, status = self:post(request_json(id, method, params))
  -- a read that never reached the node (refused, reset: a node under a burst
  -- of connections) is asked again, twice, shortly after; a write is not
  -- (its outcome is the caller's to resolve), nor a timeout (it would only
  -- multiply the wait)
  for attempt = 1, 2 do
    if obj or WRITES[method] or not retryable(status) or not host.in_coroutine() then break end
    host.sleep(0.05 * attempt * attempt)
    obj, status = self:post(request_json(id, method, params))
  end
  if not obj then return nil, status end
  if type(obj) ~= "table" then return nil, "EPROTO: response is not a JSON-RPC object" end
  if obj.error ~= nil and obj.error ~= cjson.null then return nil, rpc_error(obj.error), obj.error end
  if status ~= 200 then return nil, format("EHTTP: status %d", status) end
  if obj.id ~= id then return nil, "EPROTO: response id does not match the request" end
  if obj.result == nil then return nil, "EPROTO: response has neither result nor error" end
  return obj.result
end

--- client:batch({ {method, params}, ... }) -> results | nil, err
-- One HTTP request; results[i] is { result = value } or
-- { error = "ERPC: ...", rpc_error = obj } in the order of the calls.
function Client:batch(calls)
  if type(calls) ~= "table" then error("rpc:batch: calls must be an array", 2) end
  if #calls == 0 then return {} end
  local parts, index = {}, {}
  for i, c in ipairs(calls) do
    if type(c) ~= "table" or type(c[1]) ~= "string" then
      error("rpc:batch: every call is { method, params }", 2)
    end
    local id = self:next_id()
    index[id] = i
    parts[i] = request_json(id, c[1], c[2])
  end
  local obj, status = self:post("[" .. concat(parts, ",") .. "]")
  if not obj then return nil, status end
  if type(obj) ~= "table" then return nil, "EPROTO: batch response is not an array" end
  if obj.error ~= nil then return nil, rpc_error(obj.error), obj.error end
  local out = {}
  for _, r in ipairs(obj) do
    local i = type(r) == "table" and index[r.id]
    if i and not out[i] then
      if r.error ~= nil and r.error ~= cjson.null then
        out[i] = { error = rpc_error(r.error), rpc_error = r.error }
      elseif r.result ~= nil then
        out[i] = { result = r.result }
      end
    end
  end
  for i = 1, #calls do
    if not out[i] then out[i] = { error = "EPROTO: no response for this call" } end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- typed helpers
-- ---------------------------------------------------------------------------

-- "0x.." QUANTITY -> Lua number (must fit 2^53)
local function qnum(v)
  if type(v) ~= "string" or not v:match("^0x%x+$") or #v > 15 then
    return nil, "EPROTO: expected a small hex quantity, got " .. tostring(v)
  end
  return tonumber(v:sub(3), 16)
end

-- "0x.." QUANTITY -> decimal string (any size up to 2^256)
local function qdec(v)
  if type(v) ~= "string" or not v:match("^0x%x+$") then
    return nil, "EPROTO: expected a hex quantity, got " .. tostring(v)
  end
  return core.abi.to_decimal(v)
end

local function qbytes(v)
  if type(v) ~= "string" or not v:match("^0x%x*$") then
    return nil, "EPROTO: expected hex data, got " .. tostring(v)
  end
  return core.unhex(v)
end

local function then_(f, r, err, ...)
  if r == nil then return nil, err, ... end
  return f(r)
end

local function quantity(x)
  local q, err = core.abi.to_quantity(x)
  if not q then error("rpc: " .. err, 3) end
  return q
end

local function hash_hex(h)
  if type(h) ~= "string" then error("rpc: a hash must be a string", 3) end
  if #h == 32 then return "0x" .. core.hex(h) end
  return h
end

local function addr_hex(a)
  if type(a) ~= "string" then error("rpc: an address must be a string", 3) end
  if #a == 20 then return "0x" .. core.hex(a) end
  return a
end

local function block_tag(b, default)
  if b == nil then return default end
  if type(b) == "number" then return quantity(b) end
  return b
end

local QUANTITY_FIELDS = { value = true, gas = true, gasPrice = true, maxFeePerGas = true,
  maxPriorityFeePerGas = true, nonce = true, chainId = true }

--- A call/estimate object from Lua conventions to JSON-RPC: data/input as
-- raw bytes, quantities as numbers or decimal/0x strings, addresses as text
-- or 20 raw bytes.
function _M.call_object(t)
  if type(t) ~= "table" then error("rpc: a call object must be a table", 2) end
  local o = {}
  for k, v in pairs(t) do
    if k == "data" or k == "input" then
      if type(v) ~= "string" then error("rpc: " .. k .. " must be a raw byte string", 2) end
      o[k] = "0x" .. core.hex(v)
    elseif QUANTITY_FIELDS[k] then
      o[k] = quantity(v)
    elseif k == "to" or k == "from" then
      o[k] = addr_hex(v)
    else
      o[k] = v
    end
  end
  return _M.object(o)
end

function Client:chain_id() return then_(qnum, self:call("eth_chainId")) end

function Client:block_number() return then_(qnum, self:call("eth_blockNumber")) end

--- balance in wei, as a decimal string
function Client:get_balance(addr, block)
  return then_(qdec, self:call("eth_getBalance", { addr_hex(addr), block_tag(block, "latest") }))
end

--- the account's nonce ("pending" by default: what the next tx should use)
function Client:get_transaction_count(addr, block)
  return then_(qnum, self:call("eth_getTransactionCount", { addr_hex(addr), block_tag(block, "pending") }))
end

--- raw signed transaction bytes -> "0x" transaction hash
function Client:send_raw_transaction(raw)
  if type(raw) ~= "string" then error("rpc:send_raw_transaction: raw must be a byte string", 2) end
  return self:call("eth_sendRawTransaction", { "0x" .. core.hex(raw) })
end

local function or_false(v)
  if v == cjson.null then return false end
  return v
end

--- receipt table as the node returns it, or false while not mined
function Client:get_transaction_receipt(hash)
  return then_(or_false, self:call("eth_getTransactionReceipt", { hash_hex(hash) }))
end

--- transaction table as the node returns it, or false when unknown
function Client:get_transaction(hash)
  return then_(or_false, self:call("eth_getTransactionByHash", { hash_hex(hash) }))
end

--- poll for a receipt: opts.timeout (seconds, 30), opts.interval (0.1)
function Client:wait_for_receipt(hash, opts)
  opts = opts or {}
  local deadline = host.now() + (opts.timeout or 30)
  while true do
    local r, err = self:get_transaction_receipt(hash)
    if r then return r end
    if r == nil then return nil, err end
    if host.now() >= deadline then
      return nil, "ETIMEDOUT: no receipt for " .. hash_hex(hash)
    end
    host.sleep(opts.interval or 0.1)
  end
end

function Client:estimate_gas(obj, block)
  local params = { _M.call_object(obj) }
  if block ~= nil then params[2] = block_tag(block) end
  return then_(qnum, self:call("eth_estimateGas", params))
end

--- gas price in wei (decimal string)
function Client:gas_price() return then_(qdec, self:call("eth_gasPrice")) end

--- suggested priority fee in wei (decimal string)
function Client:max_priority_fee_per_gas() return then_(qdec, self:call("eth_maxPriorityFeePerGas")) end

--- eth_feeHistory as the node returns it
function Client:fee_history(block_count, newest, percentiles)
  return self:call("eth_feeHistory", { quantity(block_count), block_tag(newest, "latest"), percentiles or {} })
end

--- eth_call -> raw return bytes (ABI-decode them with wp.abi.decode)
function Client:eth_call(obj, block)
  return then_(qbytes, self:call("eth_call", { _M.call_object(obj), block_tag(block, "latest") }))
end

--- deployed code at addr (raw bytes; "" for none)
function Client:get_code(addr, block)
  return then_(qbytes, self:call("eth_getCode", { addr_hex(addr), block_tag(block, "latest") }))
end

--- the block as the node returns it, or false ("latest" by default)
function Client:get_block(block, full)
  return then_(or_false, self:call("eth_getBlockByNumber", { block_tag(block, "latest"), full and true or false }))
end

_M.Client = Client

return _M
