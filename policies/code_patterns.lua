-- SPDX-License-Identifier: MIT
--- Blocked code patterns per language, as data operators edit
-- (docs/policies.md).
--
-- This is a cheap pre-filter that turns away obvious attempts before a
-- worker is spent on them; the sandbox (namespaces, seccomp, rlimits, the
-- worker's own restricted runtimes) is the security boundary. It is
-- conservative: a blocked word inside a string or a comment is blocked
-- too.
--
-- How a check runs:
--   1. the code is normalised (when conf.normalize), so that cheap
--      disguises look like the plain form (see normalize_js / normalize_lua):
--      escapes in identifiers and strings (\u0065val, "\x65val", "\101val"),
--      concatenated string literals ('ev' + 'al', "req" .. "uire"),
--      bracket access with a literal (globalThis ['process'] ->
--      globalThis.process), and numeric literals >= huge_number (1e9,
--      0x40000000, 1_000_000_000, 2**30, 1 << 30, Math.pow(2, 30), 2^30)
--      rewritten to the marker <huge>;
--   2. every active rule of the language, in order (rules, then
--      extra_rules), is tried with string.find on the normalised text (a
--      Lua pattern, or a plain substring when plain = true);
--   3. the first hit blocks: check returns the rule's name and description.
--
-- Out of scope (the sandbox handles these): names computed at run time
-- (String.fromCharCode, atob, [..].join(''), reversing strings), aliasing
-- through objects the filter cannot see, comments splitting tokens other
-- than as whitespace, and loops or allocations that are only big at run time.
--
-- Cost: each rule is one string.find over the text; the default rules are
-- written so that no scan can cross a second occurrence of its own prefix
-- (e.g. [^{}]* after a '{'), which keeps every rule linear in the code size.
local _M = {
  name = "code_patterns",
  version = "1",
  description = "blocked code patterns per language (a cheap pre-filter; the sandbox is the boundary)",
}

local type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error =
  type, pairs, ipairs, tostring, tonumber, pcall, setmetatable, error
local find, sub, char, gsub = string.find, string.sub, string.char, string.gsub
local format = string.format

local function R(name, pattern, description, plain)
  return { name = name, pattern = pattern, plain = plain == true, description = description }
end

-- patterns for "a module name as a require/import argument": ( or the m
-- of `from`, then a quoted specifier (node: prefixes have their own rule)
local function module_rule(name, mod, description)
  return R(name, [=[[%(m]%s*["'`]]=] .. mod .. [=[["'`/]]=], description)
end

local JS_LOOPS = { "while%s*%(%s*true%s*%)", "while%s*%(%s*1%s*%)", "for%s*%(%s*;%s*;%s*%)" }

local function js_rules()
  local r = {
    -- modules: the specific names first so the reason is precise
    R("module.child_process", "child_process", "child processes (child_process)", true),
    R("module.node_builtin", [=[["'`]node:]=], "a node: built-in module"),
    module_rule("network.http", "https?2?", "the http/https/http2 modules"),
    module_rule("network.net", "net", "raw sockets (net)"),
    module_rule("network.tls", "tls", "raw TLS sockets (tls)"),
    module_rule("network.dgram", "dgram", "UDP sockets (dgram)"),
    module_rule("network.dns", "dns", "DNS lookups (dns)"),
    module_rule("filesystem.fs", "fs", "the file system (fs)"),
    module_rule("filesystem.path", "path", "file system paths (path)"),
    module_rule("module.vm", "vm", "the vm module"),
    R("module.worker_threads", "worker_threads", "threads (worker_threads)", true),
    R("module.require", "%f[%w_$]require%f[^%w_$]", "loading modules (require)"),
    R("module.import", "%f[%w_$]import%f[^%w_$]", "loading modules (import)"),
    -- network APIs
    R("network.fetch", "%f[%w_$]fetch%f[^%w_$]", "network access (fetch)"),
    R("network.XMLHttpRequest", "XMLHttpRequest", "network access (XMLHttpRequest)", true),
    R("network.WebSocket", "WebSocket", "network access (WebSocket)", true),
    R("network.EventSource", "EventSource", "network access (EventSource)", true),
    R("network.sendBeacon", "sendBeacon", "network access (sendBeacon)", true),
    -- process and global objects
    R("global.process", "%f[%w_$]process%s*[%.%[?]", "the process object"),
    R("global.process", "[=,%(:%[]%s*process%s*[;,%)}%]\n]", "the process object"),
    R("global.globalThis", "%f[%w_$]globalThis%f[^%w_$]", "the global object (globalThis)"),
    R("global.global", "%f[%w_$]global%s*[%.%[?]", "the global object (global)"),
    R("global.global", "[=,%(:%[]%s*global%s*[;,%)}%]\n]", "the global object (global)"),
    R("global.Deno", "%f[%w_$]Deno%f[^%w_$]", "the Deno runtime object"),
    R("global.Bun", "%f[%w_$]Bun%f[^%w_$]", "the Bun runtime object"),
    -- dynamic execution
    R("dynamic.string_timer", [=[set[TI]%a+%s*%(%s*["'`]]=], "code in a string passed to a timer"),
    R("dynamic.eval", "%f[%w_$]eval%f[^%w_$]", "dynamic code execution (eval)"),
    R("dynamic.Function", "%f[%w_$]Function%s*%(", "dynamic code execution (Function constructor)"),
    R("dynamic.constructor", "constructor%s*%.%s*constructor", "reaching the Function constructor"),
    R("dynamic.constructor", "%.%s*constructor%s*%(", "calling a constructor property"),
    R("dynamic.WebAssembly", "%f[%w_$]WebAssembly%f[^%w_$]", "compiling WebAssembly"),
    -- timers
    R("timers.setTimeout", "%f[%w_$]setTimeout%f[^%w_$]", "timers (setTimeout)"),
    R("timers.setInterval", "%f[%w_$]setInterval%f[^%w_$]", "timers (setInterval)"),
    R("timers.setImmediate", "%f[%w_$]setImmediate%f[^%w_$]", "timers (setImmediate)"),
    R("timers.queueMicrotask", "%f[%w_$]queueMicrotask%f[^%w_$]", "scheduling (queueMicrotask)"),
    -- prototype pollution
    R("prototype.__proto__", "__proto__", "prototype pollution (__proto__)", true),
    R("prototype.constructor_prototype", "constructor%s*%.%s*prototype", "prototype pollution (constructor.prototype)"),
    R("prototype.Object_prototype", "%f[%w_$]Object%s*%.%s*prototype", "prototype pollution (Object.prototype)"),
    R("prototype.setPrototypeOf", "setPrototypeOf", "prototype pollution (setPrototypeOf)", true),
    R("prototype.defineProperty", "definePropert[yi]e?s?%s*%([^,%(%)]*prototype",
      "prototype pollution (defineProperty on a prototype)"),
    R("prototype.legacy_accessor", "__define[GS]etter__", "prototype pollution (__defineGetter__)"),
    R("prototype.legacy_accessor", "__lookup[GS]etter__", "prototype pollution (__lookupGetter__)"),
    -- memory exhaustion idioms (<huge> = a literal >= huge_number)
    R("memory.huge_array", "Array%s*%(%s*<huge>", "a huge array"),
    R("memory.huge_array", "Buffer%s*%(%s*<huge>", "a huge buffer"),
    R("memory.huge_array", "alloc%a*%s*%(%s*<huge>", "a huge buffer"),
    R("memory.huge_array", "length%s*:%s*<huge>", "a huge array (Array.from({length}))"),
    R("memory.huge_array", "%.%s*length%s*=%s*<huge>", "a huge array (length =)"),
    R("memory.huge_string", "%.%s*repeat%s*%(%s*<huge>", "a huge string (repeat)"),
    R("memory.huge_string", "%.%s*pad%a*%s*%(%s*<huge>", "a huge string (padStart/padEnd)"),
    R("memory.self_concat", "%f[%w_$]([%w_$]+)%s*%+=%s*%1%f[^%w_$]", "a value doubled in place (s += s)"),
    R("memory.self_concat", "%f[%w_$]([%w_$]+)%s*=%s*%1%s*%+%s*%1%f[^%w_$]", "a value doubled in place (s = s + s)"),
  }
  for _, head in ipairs(JS_LOOPS) do
    r[#r + 1] = R("memory.alloc_loop", head .. "%s*{%s*[%w_$%.]+%s*%.%s*push%s*%([^;{}]*%)%s*;?%s*}",
      "an endless loop that only allocates")
    r[#r + 1] = R("memory.alloc_loop", head .. "%s*[%w_$%.]+%s*%.%s*push%s*%(", "an endless loop that only allocates")
  end
  return r
end

local function lua_rules()
  return {
    R("module.require", "%f[%w_]require%f[^%w_]", "loading modules (require)"),
    R("module.package", "%f[%w_]package%f[^%w_]", "the module system (package)"),
    R("module.module", "%f[%w_]module%s*%(", "the module system (module)"),
    R("library.io", "%f[%w_]io%f[^%w_]", "files and processes (io)"),
    R("library.os", "%f[%w_]os%f[^%w_]", "the operating system (os)"),
    R("dynamic.load", "%f[%w_]load%f[^%w_]", "dynamic code execution (load)"),
    R("dynamic.loadstring", "%f[%w_]loadstring%f[^%w_]", "dynamic code execution (loadstring)"),
    R("dynamic.dofile", "%f[%w_]dofile%f[^%w_]", "running files (dofile)"),
    R("dynamic.loadfile", "%f[%w_]loadfile%f[^%w_]", "loading files (loadfile)"),
    R("dynamic.string_dump", "[%.:]%s*dump%f[^%w_]", "bytecode (string.dump)"),
    R("library.debug", "%f[%w_]debug%f[^%w_]", "the debug library"),
    R("env.getfenv", "%f[%w_]getfenv%f[^%w_]", "function environments (getfenv)"),
    R("env.setfenv", "%f[%w_]setfenv%f[^%w_]", "function environments (setfenv)"),
    R("library.collectgarbage", "%f[%w_]collectgarbage%f[^%w_]", "the garbage collector (collectgarbage)"),
    R("library.ffi", "%f[%w_]ffi%f[^%w_]", "the FFI"),
    R("library.jit", "%f[%w_]jit%f[^%w_]", "the JIT compiler (jit)"),
    R("metatable.string", [=[getmetatable%s*%(?%s*["'%[]]=], "the string metatable"),
    R("metatable.string", [=[setmetatable%s*%(%s*["'%[]]=], "the string metatable"),
    R("metatable.string", "%f[%w_]string%s*%.%s*[%w_]+%s*=[^=]", "replacing a string function"),
    R("metatable.string", "rawset%s*%(%s*string%f[^%w_]", "replacing a string function"),
    R("memory.huge_string", "rep%s*%([^,%(%)]*,%s*<huge>", "a huge string (string.rep)"),
    R("memory.huge_string", ":%s*rep%s*%(%s*<huge>", "a huge string (s:rep)"),
    R("memory.self_concat", "%f[%w_]([%w_]+)%s*=%s*%1%s*%.%.%s*%1%f[^%w_]", "a value doubled in place (s = s .. s)"),
    R("memory.alloc_loop", "while%s+true%s+do%s+[%w_%.]+%s*%[%s*#%s*[%w_%.]+%s*%+%s*1%s*%]%s*=[^\n%[]-%send",
      "an endless loop that only allocates"),
  }
end

_M.DEFAULT_RULES = function() return { javascript = js_rules(), lua = lua_rules() } end
local DEFAULT_RULES = _M.DEFAULT_RULES()

---------------------------------------------------------------------------
-- pattern syntax (string.find on "" does not reach every part of a
-- pattern, so the syntax is walked here; messages are ours)

local function class_end(p, i)
  local n = #p
  local j = i + 1
  if sub(p, j, j) == "^" then j = j + 1 end
  repeat
    if j > n then return nil end
    local c = sub(p, j, j)
    j = j + 1
    if c == "%" then
      if j > n then return nil end
      j = j + 1
    end
  until sub(p, j, j) == "]"
  return j + 1
end

--- nil if p is a valid Lua pattern, else a reason.
local function pattern_error(p)
  local n, i = #p, 1
  local open, closed, count = {}, {}, 0
  while i <= n do
    local c = sub(p, i, i)
    if c == "%" then
      if i == n then return "bad pattern: ends with '%'" end
      local d = sub(p, i + 1, i + 1)
      if d == "b" then
        if i + 3 > n then return "bad pattern: %b needs two characters" end
        i = i + 4
      elseif d == "f" then
        if sub(p, i + 2, i + 2) ~= "[" then return "bad pattern: %f needs a '['" end
        i = class_end(p, i + 2)
        if not i then return "bad pattern: missing ']'" end
      elseif d:match("%d") then
        local l = tonumber(d)
        if l == 0 or not closed[l] then return "bad pattern: invalid back-reference %" .. d end
        i = i + 2
      else
        i = i + 2
      end
    elseif c == "[" then
      i = class_end(p, i)
      if not i then return "bad pattern: missing ']'" end
    elseif c == "(" then
      count = count + 1
      if count > 32 then return "bad pattern: too many captures" end
      if sub(p, i + 1, i + 1) == ")" then
        closed[count] = true
        i = i + 2
      else
        open[#open + 1] = count
        i = i + 1
      end
    elseif c == ")" then
      if #open == 0 then return "bad pattern: ')' without '('" end
      closed[open[#open]] = true
      open[#open] = nil
      i = i + 1
    else
      i = i + 1
    end
  end
  if #open > 0 then return "bad pattern: unfinished capture" end
  -- the engine's own opinion, in case it knows better
  local ok, err = pcall(find, "", p)
  if ok then ok, err = pcall(find, "a(b)[c]%d 1\n", p) end
  if not ok then return "bad pattern: " .. tostring(err) end
  return nil
end
_M.pattern_error = function(_, p) return pattern_error(p) end

--- The literals every match of pattern p must contain: runs of single
-- characters without a quantifier (captures are zero-width and do not
-- break a run). check() skips a rule when one of them is absent, found
-- with plain finds, which is much cheaper than trying the pattern at
-- every position of the text. Returns an array (longest first).
local function required_literals(p)
  local runs, cur, seen = {}, {}, {}
  local function flush()
    local s = table.concat(cur)
    if s ~= "" and not seen[s] then
      seen[s] = true
      runs[#runs + 1] = s
    end
    cur = {}
  end
  local i, n = 1, #p
  if sub(p, 1, 1) == "^" then i = 2 end
  while i <= n do
    local c = sub(p, i, i)
    local lit, nxt, item = nil, i + 1, true
    if c == "%" then
      local d = sub(p, i + 1, i + 1)
      if d == "b" then
        item, nxt = false, i + 4
      elseif d == "f" then
        item, nxt = false, class_end(p, i + 2) or n + 1
      elseif d:match("%d") then
        item, nxt = false, i + 2
      else
        nxt = i + 2
        if not d:match("%a") then lit = d end
      end
    elseif c == "[" then
      nxt = class_end(p, i) or n + 1
    elseif c == "(" or c == ")" then
      item = nil -- zero width: the run goes on
    elseif c == "$" and i == n then
      item = false
    elseif c ~= "." then
      lit = c
    end
    if item == false then
      flush()
      i = nxt
    elseif item == nil then
      i = nxt
    else
      local q = sub(p, nxt, nxt)
      if q == "*" or q == "-" or q == "?" then
        flush()
        i = nxt + 1
      elseif q == "+" then
        if lit then cur[#cur + 1] = lit end
        flush()
        i = nxt + 1
      else
        if lit then cur[#cur + 1] = lit else flush() end
        i = nxt
      end
    end
  end
  flush()
  table.sort(runs, function(a, b) return #a > #b or (#a == #b and a < b) end)
  return runs
end
_M.required_literals = function(_, p) return required_literals(p) end

---------------------------------------------------------------------------
-- config

local rule_def = { type = "record",
  fields = {
    name = { type = "string", required = true, match = "^[%w_.%-]+$", max = 100,
      description = "reported when the rule blocks; disabled_rules refers to it" },
    pattern = { type = "string", required = true, min = 1, max = 2000,
      description = "a Lua pattern, or a plain substring when plain = true" },
    plain = { type = "boolean", default = false, description = "pattern is a plain substring" },
    description = { type = "string", default = "", max = 500, description = "said to the client" },
  },
  custom = function(r)
    if not r.plain then
      local e = pattern_error(r.pattern)
      if e then return nil, { pattern = e } end
    end
    return true
  end,
}

local rule_map = function(default, description)
  return { type = "map", keys = { type = "string", match = "^[%w_%-]+$" },
    values = { type = "array", elements = rule_def }, default = default, description = description }
end

_M.schema = {
  enabled = { type = "boolean", default = true, description = "false: every code passes" },
  normalize = { type = "boolean", default = true,
    description = "match rules against the normalised code (escapes decoded, literals joined, <huge>)" },
  huge_number = { type = "number", default = 1e7, min = 1,
    description = "numeric literals at least this big become <huge> before matching" },
  rules = rule_map(DEFAULT_RULES,
    "language -> rules; a language not listed keeps its default rules, [] clears it"),
  extra_rules = rule_map({}, "language -> rules added after `rules` (add without copying the defaults)"),
  disabled_rules = { type = "array", default = {}, elements = { type = "string", match = "^[%w_.%-]+$" },
    description = "rule names switched off (every rule with that name, any language)" },
}

---------------------------------------------------------------------------
-- normalisation

local function id_char(n)
  if n and n < 128 then
    local ch = char(n)
    if ch:match("[%w_$%.]") then return ch end
  end
  return nil
end

local function hex_char(h) return id_char(tonumber(h, 16)) end
local function huge_marker(v, huge) if v and v >= huge then return "<huge>" end return nil end

local function join_literals(s, pat)
  for _ = 1, 16 do
    local n
    s, n = gsub(s, pat, "%1%2%4%1")
    if n == 0 then break end
  end
  return s
end

local function has(s, lit) return find(s, lit, 1, true) ~= nil end

local function pow_marker(huge)
  return function(a, b) return huge_marker(tonumber(a) ^ tonumber(b), huge) end
end
local function shift_marker(huge)
  return function(a, b) return huge_marker(tonumber(a) * 2 ^ tonumber(b), huge) end
end

-- Every step is one gsub pass (the literal joining at most 16), skipped
-- when the text lacks the character it is about.
local function normalize_js(s, huge)
  if has(s, "\\") then
    s = gsub(s, "\\u{(%x%x?%x?%x?%x?%x?)}", hex_char)
    s = gsub(s, "\\u(%x%x%x%x)", hex_char)
    s = gsub(s, "\\x(%x%x)", hex_char)
    s = gsub(s, "\\([0-3][0-7][0-7])", function(o) return id_char(tonumber(o, 8)) end)
  end
  if has(s, "+") then
    s = join_literals(s, [=[(["'`])([%w_$%.:/]*)%1%s*%+%s*(["'`])([%w_$%.:/]*)%3]=])
  end
  if has(s, "[") then s = gsub(s, [=[%[%s*(["'`])([%w_$]+)%1%s*%]]=], ".%2") end
  local function num(tok)
    local t = gsub(gsub(tok, "_", ""), "n$", "")
    local base, digits = t:match("^0([bBoO])(%w+)$")
    if base then
      return huge_marker(tonumber(digits, (base == "b" or base == "B") and 2 or 8), huge)
    end
    return huge_marker(tonumber(t), huge)
  end
  -- no literal of one or two characters reaches huge_number >= 100
  if huge < 100 then s = gsub(s, "%f[%w_$.](%d[%w_.]*)", num) end
  if has(s, "e+") or has(s, "e-") or has(s, "E+") or has(s, "E-") then
    s = gsub(s, "%f[%w_$.](%d[%d_.]*[eE][%+%-]%d+)", num)
  end
  s = gsub(s, "%f[%w_$.](%d[%w_.][%w_.]+)", num)
  if has(s, "**") then s = gsub(s, "(%d+)%s*%*%*%s*(%d+)", pow_marker(huge)) end
  if has(s, "<<") then s = gsub(s, "(%d+)%s*<<%s*(%d+)", shift_marker(huge)) end
  if has(s, "pow") then s = gsub(s, "Math%s*%.%s*pow%s*%(%s*(%d+)%s*,%s*(%d+)%s*%)", pow_marker(huge)) end
  return s
end

local function normalize_lua(s, huge)
  if has(s, "\\") then
    s = gsub(s, "\\(%d%d?%d?)", function(d) return id_char(tonumber(d)) end)
    s = gsub(s, "\\x(%x%x)", hex_char)
    s = gsub(s, "\\u{(%x%x?%x?%x?%x?%x?)}", hex_char)
  end
  if has(s, "..") then
    s = join_literals(s, [=[(["'])([%w_%.]*)%1%s*%.%.%s*(["'])([%w_%.]*)%3]=])
  end
  if has(s, "[") then
    s = gsub(s, [=[%[%s*(["'])([%w_]+)%1%s*%]]=], ".%2")
    s = gsub(s, "%[%s*%[%[([%w_]+)%]%]%s*%]", ".%1")
  end
  local function num(tok) return huge_marker(tonumber(tok), huge) end
  if huge < 100 then s = gsub(s, "%f[%w_.](%d[%w.]*)", num) end
  if has(s, "e+") or has(s, "e-") or has(s, "E+") or has(s, "E-") then
    s = gsub(s, "%f[%w_.](%d[%d.]*[eE][%+%-]%d+)", num)
  end
  s = gsub(s, "%f[%w_.](%d[%w.][%w.]+)", num)
  if has(s, "^") then s = gsub(s, "(%d+)%s*%^%s*(%d+)", pow_marker(huge)) end
  if has(s, "lshift") then s = gsub(s, "lshift%s*%(%s*(%d+)%s*,%s*(%d+)%s*%)", shift_marker(huge)) end
  return s
end

local NORMALIZERS = { javascript = normalize_js, lua = normalize_lua }

--- The text the rules of `language` are matched against (conf.normalize
-- on): see the file header. Languages without a normaliser are unchanged.
function _M.normalize(conf, language, code)
  local f = NORMALIZERS[language]
  if not f or not conf.normalize then return code end
  return f(code, conf.huge_number)
end

---------------------------------------------------------------------------
-- the active rules of a language (cached per validated config)

local cache = setmetatable({}, { __mode = "k" })

local function active_rules(conf, language)
  local per = cache[conf]
  if not per then
    per = {}
    cache[conf] = per
  end
  local list = per[language]
  if list then return list end
  local off = {}
  for _, n in ipairs(conf.disabled_rules) do off[n] = true end
  list = {}
  local function add(rules)
    for _, r in ipairs(rules or {}) do
      if not off[r.name] then
        local plain = r.plain == true
        list[#list + 1] = { name = r.name, pattern = r.pattern, plain = plain,
          literals = plain and {} or required_literals(r.pattern),
          description = (r.description ~= nil and r.description ~= "") and r.description or nil }
      end
    end
  end
  local base = conf.rules[language]
  if base == nil then base = DEFAULT_RULES[language] end
  add(base)
  add(conf.extra_rules[language])
  per[language] = list
  return list
end

--- Check code of `language` (default "javascript"). Returns nil when clean,
-- or the name and description of the first rule that matches.
function _M.check(conf, language, code)
  if not conf.enabled or type(code) ~= "string" then return nil end
  if type(language) ~= "string" then language = "javascript" end
  local list = active_rules(conf, language)
  if #list == 0 then return nil end
  local text = _M.normalize(conf, language, code)
  for i = 1, #list do
    local r = list[i]
    local lits, present = r.literals, true
    for j = 1, #lits do
      if not find(text, lits[j], 1, true) then present = false break end
    end
    if present and find(text, r.pattern, 1, r.plain) then return r.name, r.description end
  end
  return nil
end

--- Names of the active rules of a language, in order (duplicates once).
function _M.active(conf, language)
  local names, seen = {}, {}
  for _, r in ipairs(active_rules(conf, language)) do
    if not seen[r.name] then
      seen[r.name] = true
      names[#names + 1] = r.name
    end
  end
  return names
end

local CANARY = "require ('x') \\u0065val ['a'+'b'] \"re\"..\"quire\" Array(1e9) 2**40 0x7fffffff 1_000n"

--- Canary at load: every pattern is valid, every disabled name exists,
-- and every language's rules run. Raises (rejecting the reload) if not.
function _M.self_check(conf)
  local names = {}
  local languages = {}
  for _, field in ipairs({ "rules", "extra_rules" }) do
    for lang, rules in pairs(conf[field]) do
      languages[lang] = true
      for i, r in ipairs(rules) do
        names[r.name] = true
        if not r.plain then
          local e = pattern_error(r.pattern)
          if e then error(format("%s.%s[%d] (%s): %s", field, lang, i, r.name, e), 0) end
        end
      end
    end
  end
  for lang, rules in pairs(DEFAULT_RULES) do
    if conf.rules[lang] == nil then
      languages[lang] = true
      for _, r in ipairs(rules) do names[r.name] = true end
    end
  end
  for i, n in ipairs(conf.disabled_rules) do
    if not names[n] then error(format("disabled_rules[%d]: no rule named '%s'", i, n), 0) end
  end
  for lang in pairs(languages) do
    local ok, err = pcall(_M.check, conf, lang, CANARY)
    if not ok then error(format("rules.%s: check failed: %s", lang, tostring(err)), 0) end
  end
end

return _M
