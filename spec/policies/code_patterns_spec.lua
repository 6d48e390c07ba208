-- SPDX-License-Identifier: MIT
-- policies/code_patterns.lua: blocked patterns as data, edited through config.
local policy = require "workproof.policy"
local h = require "helpers"

local FILE = "policies/code_patterns.lua"

local p, conf

local function conf_of(c)
  local out, errs = policy.configure(p, c or {})
  assert(out, errs and table.concat(require("workproof.schema").format_errors(errs), "; "))
  return out
end

before_each(function()
  p = policy.load_file(FILE)
  conf = conf_of()
end)

describe("code_patterns policy: defaults", function()
  it("has the default rule sets of both languages, in this order", function()
    assert.equal("code_patterns", p.name)
    assert.same({
      "module.child_process", "module.node_builtin", "network.http", "network.net", "network.tls",
      "network.dgram", "network.dns", "filesystem.fs", "filesystem.path", "module.vm", "module.worker_threads",
      "module.require", "module.import", "network.fetch", "network.XMLHttpRequest", "network.WebSocket",
      "network.EventSource", "network.sendBeacon", "global.process", "global.globalThis", "global.global",
      "global.Deno", "global.Bun", "dynamic.string_timer", "dynamic.eval", "dynamic.Function",
      "dynamic.constructor", "dynamic.WebAssembly", "timers.setTimeout", "timers.setInterval",
      "timers.setImmediate", "timers.queueMicrotask", "prototype.__proto__", "prototype.constructor_prototype",
      "prototype.Object_prototype", "prototype.setPrototypeOf", "prototype.defineProperty",
      "prototype.legacy_accessor", "memory.huge_array", "memory.huge_string", "memory.self_concat",
      "memory.alloc_loop",
    }, p.active(conf, "javascript"))
    assert.same({
      "module.require", "module.package", "module.module", "library.io", "library.os", "dynamic.load",
      "dynamic.loadstring", "dynamic.dofile", "dynamic.loadfile", "dynamic.string_dump", "library.debug",
      "env.getfenv", "env.setfenv", "library.collectgarbage", "library.ffi", "library.jit", "metatable.string",
      "memory.huge_string", "memory.self_concat", "memory.alloc_loop",
    }, p.active(conf, "lua"))
  end)

  it("fills the settings and gives every default rule all its fields", function()
    assert.is_true(conf.enabled)
    assert.is_true(conf.normalize)
    assert.equal(1e7, conf.huge_number)
    assert.same({}, conf.extra_rules)
    assert.same({}, conf.disabled_rules)
    assert.same(p.DEFAULT_RULES(), conf.rules)
    for lang, rules in pairs(conf.rules) do
      for i, r in ipairs(rules) do
        local where = lang .. "[" .. i .. "]"
        assert.matches("^[%w_]+%.[%w_]+$", r.name, 1, false, where)
        assert.is_string(r.pattern, where)
        assert.is_boolean(r.plain, where)
        assert.is_true(#r.description > 0, where)
        if not r.plain then assert.is_nil(p.pattern_error(conf, r.pattern), where) end
      end
    end
  end)
end)

describe("code_patterns policy: schema errors", function()
  it("reports bad settings and bad rules exactly, nested by field", function()
    local errs = h.refused_config(policy.configure, p, {
      enabled = "yes", huge_number = 0, normalize = 1, foo = 1,
      rules = {
        javascript = {
          { name = "x", pattern = "[a" }, { name = "bad name!", pattern = "a" }, { pattern = "b" },
          { name = "ok", pattern = "" }, { name = "p", pattern = "%", plain = true },
        },
        ["c++"] = {},
      },
      extra_rules = { lua = { { name = "y", pattern = "a(b" }, "str" }, python = "x" },
      disabled_rules = { 5, "x y" },
    })
    assert.same({
      enabled = "expected a boolean",
      huge_number = "must be >= 1",
      normalize = "expected a boolean",
      foo = "unknown field",
      rules = {
        ["c++"] = "key: invalid value: c++",
        javascript = {
          [1] = { pattern = "bad pattern: missing ']'" },
          [2] = { name = "invalid value: bad name!" },
          [3] = { name = "required field missing" },
          [4] = { pattern = "length must be >= 1" },
        },
      },
      extra_rules = {
        lua = { [1] = { pattern = "bad pattern: unfinished capture" }, [2] = "expected a record (table)" },
        python = "expected an array",
      },
      disabled_rules = { [1] = "expected a string", [2] = "invalid value: x y" },
    }, errs)
  end)

  it("rejects a pattern string.find on an empty subject would not notice", function()
    -- "a[" fails only once the matcher reaches the '[': pcall(string.find, "", p) is not enough
    assert.is_true((pcall(string.find, "", "a[")))
    local _, errs = policy.configure(p, { extra_rules = { javascript = { { name = "late", pattern = "x%f" } } } })
    assert.same({ extra_rules = { javascript = { [1] = { pattern = "bad pattern: %f needs a '['" } } } }, errs)
  end)

  it("rejects (self_check) a disabled rule name that does not exist", function()
    local _, errs = policy.configure(p, { disabled_rules = { "network.fetch", "nope" } })
    assert.same({ ["@self_check"] = "disabled_rules[2]: no rule named 'nope'" }, errs)
  end)

  it("knows the Lua pattern syntax", function()
    local bad = {
      ["%"] = "bad pattern: ends with '%'",
      ["a%"] = "bad pattern: ends with '%'",
      ["[a"] = "bad pattern: missing ']'",
      ["a[b"] = "bad pattern: missing ']'",
      ["[%"] = "bad pattern: missing ']'",
      ["[]"] = "bad pattern: missing ']'",
      ["[^]"] = "bad pattern: missing ']'",
      ["(a"] = "bad pattern: unfinished capture",
      ["(a)(b"] = "bad pattern: unfinished capture",
      ["a)"] = "bad pattern: ')' without '('",
      ["%f"] = "bad pattern: %f needs a '['",
      ["x%fa"] = "bad pattern: %f needs a '['",
      ["%f[a"] = "bad pattern: missing ']'",
      ["%b("] = "bad pattern: %b needs two characters",
      ["%1"] = "bad pattern: invalid back-reference %1",
      ["(a%1)"] = "bad pattern: invalid back-reference %1",
      ["(a)%2"] = "bad pattern: invalid back-reference %2",
      ["%0"] = "bad pattern: invalid back-reference %0",
      [("()"):rep(33)] = "bad pattern: too many captures",
    }
    for pat, msg in pairs(bad) do assert.equal(msg, p.pattern_error(conf, pat), pat) end
    for _, pat in ipairs({ "a", "[]]", "[^]]", "[%]]", "(a)%1", "%bxy", "%f[%w]x", "a%%b", "()", "^a$",
      "a-", "[a-z]+", "%.", ("()"):rep(32), "%g" }) do
      assert.is_nil(p.pattern_error(conf, pat), pat)
    end
  end)
end)

describe("code_patterns policy: check", function()
  local function rule(lang, code, c) return (p.check(c or conf, lang, code)) end

  it("passes ordinary programs", function()
    local clean = {
      { "javascript", "console.log([1, 2, 3].map(x => x * 2).join(','))" },
      { "javascript", "function process(items) { return items.filter(Boolean) }\nconsole.log(process([0, 1]))" },
      { "javascript", "class Point { constructor(x, y) { this.x = x; this.y = y } }\nconsole.log(new Point(1, 2).x)" },
      { "javascript", "const url = 'https://example.com/a'; console.log(url.length)" },
      { "javascript", "let a = new Array(1000).fill(0); console.log(a.length)" },
      { "javascript", "console.log('ab'.repeat(9999999).length)" },
      { "javascript", "while (true) { a.push(1); if (a.length > 5) break; }" },
      { "javascript", "let x = 1; x += y; const evaluation = 3; const refetch = 1; const imported = 2" },
      { "javascript", "const obj = { path: '/x', 'fs': 1 }; console.log(obj.path)" },
      { "javascript", "const n = 0x1fffff, m = 1e6, k = 2 ** 20, big = 9_999_999" },
      { "lua", "local t = {} for i = 1, 10 do t[#t + 1] = i * i end print(table.concat(t, ','))" },
      { "lua", "local function dumper(x) return tostring(x) end print(dumper(1), string.rep('x', 100))" },
      { "lua", "local s = ('x'):rep(1000) print(#s, string.format('%d', 5), math.floor(2.5))" },
      { "lua", "local pos, ratio, loaded = 1, 0.5, true print(pos, ratio, loaded)" },
    }
    for _, c in ipairs(clean) do assert.is_nil(rule(c[1], c[2]), c[2]) end
  end)

  it("blocks each family of the seed, JavaScript", function()
    local cases = {
      { "const cp = require('child_process')", "module.child_process" },
      { "import fs from 'node:fs'", "module.node_builtin" },
      { "const h = require('https')", "network.http" },
      { "import http from \"http\"", "network.http" },
      { "require('net').connect(80)", "network.net" },
      { "require('tls')", "network.tls" },
      { "require('dgram')", "network.dgram" },
      { "require('dns').lookup('x')", "network.dns" },
      { "const fs = require(\"fs\")", "filesystem.fs" },
      { "import { readFile } from 'fs/promises'", "filesystem.fs" },
      { "const p = require('path')", "filesystem.path" },
      { "require('vm').runInThisContext('1')", "module.vm" },
      { "new (require('worker_threads').Worker)('x')", "module.worker_threads" },
      { "const r = require; r('os')", "module.require" },
      { "import('./x.mjs')", "module.import" },
      { "fetch('https://evil.example')", "network.fetch" },
      { "new XMLHttpRequest()", "network.XMLHttpRequest" },
      { "new WebSocket('ws://x')", "network.WebSocket" },
      { "new EventSource('/x')", "network.EventSource" },
      { "navigator.sendBeacon('/x', 'd')", "network.sendBeacon" },
      { "process.exit(0)", "global.process" },
      { "console.log(process.env.SECRET)", "global.process" },
      { "const p = process;", "global.process" },
      { "process?.kill", "global.process" },
      { "globalThis.x = 1", "global.globalThis" },
      { "global.setTimeout", "global.global" },
      { "Deno.readTextFile('x')", "global.Deno" },
      { "Bun.file('x')", "global.Bun" },
      { "setTimeout('alert(1)', 0)", "dynamic.string_timer" },
      { "eval('1 + 1')", "dynamic.eval" },
      { "const e = eval; e('1')", "dynamic.eval" },
      { "new Function('return 1')()", "dynamic.Function" },
      { "Function ('return this')()", "dynamic.Function" },
      { "''.constructor.constructor('return process')()", "dynamic.constructor" },
      { "(async () => {}).constructor('return 1')", "dynamic.constructor" },
      { "WebAssembly.instantiate(buf)", "dynamic.WebAssembly" },
      { "setTimeout(() => {}, 10)", "timers.setTimeout" },
      { "setInterval(f, 1)", "timers.setInterval" },
      { "setImmediate(f)", "timers.setImmediate" },
      { "queueMicrotask(f)", "timers.queueMicrotask" },
      { "a.__proto__.polluted = 1", "prototype.__proto__" },
      { "x.constructor.prototype.y = 1", "prototype.constructor_prototype" },
      { "Object.prototype.isAdmin = true", "prototype.Object_prototype" },
      { "Reflect.setPrototypeOf(a, b)", "prototype.setPrototypeOf" },
      { "Object.defineProperty(Array.prototype, 'x', {})", "prototype.defineProperty" },
      { "Object.defineProperties( String.prototype , {})", "prototype.defineProperty" },
      { "a.__defineGetter__('x', f)", "prototype.legacy_accessor" },
      { "new Array(1e9).fill(0)", "memory.huge_array" },
      { "Array(1000000000)", "memory.huge_array" },
      { "new Float64Array(2**30)", "memory.huge_array" },
      { "new ArrayBuffer(0x40000000)", "memory.huge_array" },
      { "Buffer.alloc(1_000_000_000)", "memory.huge_array" },
      { "Array.from({ length: 1e8 })", "memory.huge_array" },
      { "a.length = 4294967295", "memory.huge_array" },
      { "'x'.repeat(1 << 30)", "memory.huge_string" },
      { "'x'.padStart(Math.pow(2, 31))", "memory.huge_string" },
      { "let s = 'x'; for (;;) s += s", "memory.self_concat" },
      { "s = s + s", "memory.self_concat" },
      { "while (true) { a.push(new Array(1000)) }", "memory.alloc_loop" },
      { "while(1){arr.push([])}", "memory.alloc_loop" },
      { "for (;;) list.push('x'.repeat(100))", "memory.alloc_loop" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], rule("javascript", c[1]), c[1]) end
  end)

  it("blocks each family of the seed, Lua", function()
    local cases = {
      { "local json = require 'json'", "module.require" },
      { "package.loaded.x = 1", "module.package" },
      { "module('x', package.seeall)", "module.package" },
      { "module ('x')", "module.module" },
      { "io.write('x')", "library.io" },
      { "local f = io.open('/etc/passwd')", "library.io" },
      { "os.execute('ls')", "library.os" },
      { "print(os.time())", "library.os" },
      { "load('return 1')()", "dynamic.load" },
      { "loadstring('x')", "dynamic.loadstring" },
      { "dofile('/x')", "dynamic.dofile" },
      { "loadfile('/x')", "dynamic.loadfile" },
      { "local b = string.dump(f)", "dynamic.string_dump" },
      { "local b = f:dump()", "dynamic.string_dump" },
      { "debug.sethook()", "library.debug" },
      { "getfenv(1).x = 1", "env.getfenv" },
      { "setfenv(f, {})", "env.setfenv" },
      { "collectgarbage('count')", "library.collectgarbage" },
      { "local ffi = nil", "library.ffi" },
      { "jit.off()", "library.jit" },
      { "getmetatable('').__index.upper = nil", "metatable.string" },
      { "getmetatable ''", "metatable.string" },
      { "string.rep = nil", "metatable.string" },
      { "string.upper = function() end", "metatable.string" },
      { "rawset(string, 'x', 1)", "metatable.string" },
      { "local s = string.rep('x', 1e9)", "memory.huge_string" },
      { "local s = ('x'):rep(2^40)", "memory.huge_string" },
      { "local s = ('x'):rep(0x7fffffff)", "memory.huge_string" },
      { "local s = 'a' for i = 1, 40 do s = s .. s end", "memory.self_concat" },
      { "local t = {} while true do t[#t + 1] = {} end", "memory.alloc_loop" },
    }
    for _, c in ipairs(cases) do assert.equal(c[2], rule("lua", c[1]), c[1]) end
  end)

  it("returns the rule's description with its name", function()
    assert.same({ "dynamic.eval", "dynamic code execution (eval)" }, { p.check(conf, "javascript", "eval('1')") })
  end)

  it("is not fooled by cheap disguises", function()
    local js = {
      { "require ('fs')", "filesystem.fs" },
      { "require\n(\t'fs'\n)", "filesystem.fs" },
      { "globalThis ['process'].exit()", "global.process" },
      { "self[ \"eval\" ]('1')", "dynamic.eval" },
      { "globalThis[ \"eval\" ]('1')", "global.globalThis" },
      { "this[`ev` + `al`]('1')", "dynamic.eval" },
      { "this['ev' + \"al\"]('1')", "dynamic.eval" },
      { "globalThis['pro'+'ce'+'ss'].exit()", "global.process" },
      { "\\u0065val('1')", "dynamic.eval" },
      { "\\u{65}val('1')", "dynamic.eval" },
      { "self['\\x65val']('1')", "dynamic.eval" },
      { "self['\\145val']('1')", "dynamic.eval" },
      { "x['constructor']['constructor']('return 1')()", "dynamic.constructor" },
      { "o['__proto__'].x = 1", "prototype.__proto__" },
      { "require('no' + 'de:fs')", "module.node_builtin" },
      { "eval/**/('1')", "dynamic.eval" },
      { "new Array(1e+9)", "memory.huge_array" },
      { "new Array(0b1000000000000000000000000000000)", "memory.huge_array" },
      { "new Array(0o7777777777)", "memory.huge_array" },
      { "new Array(10000000n)", "memory.huge_array" },
    }
    for _, c in ipairs(js) do assert.equal(c[2], rule("javascript", c[1]), c[1]) end
    local lua = {
      { "_G['req' .. 'uire']('x')", "module.require" },
      { "_G[\"\\114equire\"]('x')", "module.require" },
      { "_G['\\x72equire']('x')", "module.require" },
      { "_G[ [[require]] ]('x')", "module.require" },
      { "local s = string . rep ( 'x' , 1E9 )", "memory.huge_string" },
    }
    for _, c in ipairs(lua) do assert.equal(c[2], rule("lua", c[1]), c[1]) end
  end)

  it("leaves run-time name building to the sandbox (documented out of scope)", function()
    assert.is_nil(rule("javascript", "this[String.fromCharCode(101, 118, 97, 108)]('1')"))
    assert.is_nil(rule("javascript", "this[['e', 'v', 'a', 'l'].join('')]('1')"))
    assert.is_nil(rule("lua", "_G[string.char(114, 101)]"))
  end)

  it("defaults the language to javascript and ignores non-string code", function()
    assert.equal("dynamic.eval", rule(nil, "eval('x')"))
    assert.is_nil(rule("javascript", nil))
    assert.is_nil(rule("javascript", 42))
  end)

  it("passes languages without rules", function()
    assert.is_nil(rule("python", "import os; eval('x')"))
  end)
end)

describe("code_patterns policy: normalize", function()
  it("rewrites disguises and huge numbers before matching", function()
    assert.equal("globalThis .process.exit() eval <huge> <huge> <huge> <huge> <huge> 9999999 <huge> 5",
      p.normalize(conf, "javascript",
        "globalThis ['pro'+'cess'].exit() \\x65val 1_000_000_000 0x7fffffff 1e+9 Math.pow(2, 40) 1 << 30 "
        .. "9999999 10000000 5"))
    assert.equal("_G.require string.rep('x', <huge>) <huge> <huge> 12",
      p.normalize(conf, "lua", "_G['req'..'uire'] string.rep('x', 2^31) 0x40000000 1e+9 12"))
    assert.equal("eval(1e9)", p.normalize(conf_of({ normalize = false }), "javascript", "eval(1e9)"))
    assert.equal("\\u0065val", p.normalize(conf, "python", "\\u0065val"))
  end)

  it("does not decode escapes into characters that change the structure", function()
    assert.equal("'\\u0027' + '\\x28'", p.normalize(conf, "javascript", "'\\u0027' + '\\x28'"))
  end)

  it("finds the literals a pattern needs (the cheap pre-test of each rule)", function()
    assert.same({ "eval" }, p.required_literals(conf, "%f[%w_$]eval%f[^%w_$]"))
    assert.same({ "prototype", "Object", "." }, p.required_literals(conf, "%f[%w_$]Object%s*%.%s*prototype"))
    assert.same({ "<huge>", "Array", "(" }, p.required_literals(conf, "Array%s*%(%s*<huge>"))
    assert.same({ "+=" }, p.required_literals(conf, "%f[%w_$]([%w_$]+)%s*%+=%s*%1%f[^%w_$]"))
    assert.same({ "abc" }, p.required_literals(conf, "^a(b)c$"))
    assert.same({ "a" }, p.required_literals(conf, "a+b*c?d-"))
    assert.same({}, p.required_literals(conf, "[abc]%d."))
  end)
end)

describe("code_patterns policy: edits through config", function()
  it("switches rules off by name (every pattern with that name)", function()
    local c = conf_of({ disabled_rules = { "dynamic.eval", "global.process" } })
    assert.is_nil(p.check(c, "javascript", "eval('1')"))
    assert.is_nil(p.check(c, "javascript", "process.exit(); const p = process;"))
    assert.equal("dynamic.Function", (p.check(c, "javascript", "eval(1); new Function('x')")))
    assert.equal("dynamic.eval", (p.check(conf, "javascript", "eval('1')")))
  end)

  it("adds rules with extra_rules without copying the defaults", function()
    local c = conf_of({ extra_rules = {
      javascript = { { name = "local.crypto", pattern = "%f[%w_$]crypto%s*%.", description = "no crypto" } },
      lua = { { name = "local.plain", pattern = "a.b", plain = true } },
      python = { { name = "py.os", pattern = "import%s+os" } },
    } })
    assert.same({ "local.crypto", "no crypto" }, { p.check(c, "javascript", "crypto.randomUUID()") })
    assert.equal("dynamic.eval", (p.check(c, "javascript", "eval(1); crypto.x")))
    assert.equal("local.plain", (p.check(c, "lua", "print('a.b')")))
    assert.is_nil(p.check(c, "lua", "print('axb')")) -- plain: the dot is a dot
    assert.equal("py.os", (p.check(c, "python", "import  os")))
    assert.same({ "local.plain" }, { p.check(c, "lua", "print('a.b')") }) -- no description: nil
  end)

  it("replaces one language's rules and keeps the others' defaults", function()
    local c = conf_of({ rules = { javascript = { { name = "only.this", pattern = "forbidden" } } } })
    assert.is_nil(p.check(c, "javascript", "eval('1')"))
    assert.equal("only.this", (p.check(c, "javascript", "forbidden()")))
    assert.equal("library.io", (p.check(c, "lua", "io.write(1)")))
    local cleared = conf_of({ rules = { lua = {} } })
    assert.is_nil(p.check(cleared, "lua", "io.write(1)"))
    assert.equal("dynamic.eval", (p.check(cleared, "javascript", "eval(1)")))
  end)

  it("can be switched off, or told not to normalise", function()
    local off = conf_of({ enabled = false })
    assert.is_nil(p.check(off, "javascript", "eval('1')"))
    local raw = conf_of({ normalize = false })
    assert.is_nil(p.check(raw, "javascript", "\\u0065val('1')"))
    assert.is_nil(p.check(raw, "javascript", "new Array(1e9)"))
  end)

  it("takes the size of a huge number from huge_number", function()
    assert.is_nil(p.check(conf, "javascript", "new Array(5000)"))
    local c = conf_of({ huge_number = 1000 })
    assert.equal("memory.huge_array", (p.check(c, "javascript", "new Array(5000)")))
    assert.is_nil(p.check(c, "javascript", "new Array(999)"))
    local tiny = conf_of({ huge_number = 10 })
    assert.equal("memory.huge_array", (p.check(tiny, "javascript", "new Array(12)")))
    assert.equal("memory.huge_string", (p.check(tiny, "lua", "string.rep('x', 99)")))
  end)

  it("reloads: a new file generation with new config sees its own rules", function()
    local p2 = policy.load_file(FILE)
    local c2 = assert(policy.configure(p2, { disabled_rules = { "timers.setTimeout" } }))
    assert.is_nil(p2.check(c2, "javascript", "setTimeout(f, 1)"))
    assert.equal("timers.setTimeout", (p.check(conf, "javascript", "setTimeout(f, 1)")))
  end)
end)

describe("code_patterns policy: cost", function()
  -- Loose benchmark: the filter must stay linear in the code size on inputs
  -- built to make a careless pattern rescan the text. A quadratic rule would
  -- make 4x the input cost 16x; linear costs about 4x. CPU time, best of 3.
  local function cpu(f)
    local best = math.huge
    for _ = 1, 3 do
      local t0 = os.clock()
      f()
      best = math.min(best, os.clock() - t0)
    end
    return best
  end

  local function fill(unit, n) return unit:rep(math.ceil(n / #unit)):sub(1, n) end

  local inputs = {
    { "javascript", "while(true){a.push(" }, { "javascript", "defineProperty(" }, { "javascript", "'a'+" },
    { "javascript", "['x" }, { "javascript", "Array(" }, { "javascript", "abcdefghij " },
    { "javascript", "while " }, { "javascript", "\\u00" }, { "javascript", "1e" },
    { "lua", "while true do t[#t+1] =" }, { "lua", "string.rep(x" }, { "lua", "'a'.." }, { "lua", "s = s " },
  }

  for _, case in ipairs(inputs) do
    local lang, unit = case[1], case[2]
    it(("is linear on %s built from %q"):format(lang, unit), function()
      local small, large = fill(unit, 100000), fill(unit, 400000)
      assert.is_nil(p.check(conf, lang, small))
      local ts = cpu(function() p.check(conf, lang, small) end)
      local tl = cpu(function() p.check(conf, lang, large) end)
      assert.is_true(tl < 10 * math.max(ts, 1e-4), ("100 KB %.1f ms, 400 KB %.1f ms"):format(ts * 1e3, tl * 1e3))
    end)
  end
end)
