-- SPDX-License-Identifier: MIT
-- The command-line declarations (lua/workproof/cli/args.lua): one table
-- parses the arguments and prints the help.
local args = require "workproof.cli.args"

local DECL = {
  name = "workproof thing",
  summary = "does a thing",
  description = "Does a thing.",
  positionals = { { "IN", help = "input" }, { "OUT", optional = true, help = "output" } },
  options = {
    { "--key", arg = "HEX", required = true, help = "a key" },
    { "--gap", arg = "A:B", list = true, help = "a gap" },
    { "--json", help = "as JSON" },
    { "--listen", arg = "HOST:PORT", match = "^.+:%d+$", help = "where" },
    { "--count", arg = "N", default = 3, help = "how many" },
  },
}

local function parse(...) return args.parse(DECL, { ... }) end

describe("cli args", function()
  it("parses options, --name=value, lists, flags and positionals", function()
    local o = assert(parse("a.txt", "--key", "ab", "--gap", "1:2", "--gap=3:4", "--json", "b.txt",
      "--listen=h:1"))
    assert.same({ "a.txt", "b.txt", key = "ab", gap = { "1:2", "3:4" }, json = true, listen = "h:1" }, o)
    o = assert(parse("--key=", "x"))                 -- an empty value is a value
    assert.same({ "x", key = "" }, o)
    o = assert(parse("--key", "k", "--", "--json"))  -- after --, everything is positional
    assert.same({ "--json", key = "k" }, o)
    o = assert(parse("--key", "k", "-"))             -- "-" (stdin) is a positional
    assert.same({ "-", key = "k" }, o)
  end)

  it("answers --help / -h anywhere before --, even with other errors", function()
    assert.same({ help = true }, parse("--help"))
    assert.same({ help = true }, parse("--bogus", "-h"))
    assert.same({ help = true }, parse("x", "y", "z", "--help"))
    local o, err = parse("--", "--help")
    assert.is_nil(o)
    assert.equal("--key is required", err)
  end)

  it("refuses malformed command lines with one clear message", function()
    local cases = {
      { { "x" }, "--key is required" },
      { { "--key", "k" }, "missing IN" },
      { { "--key", "k", "a", "b", "c" }, "unexpected argument 'c'" },
      { { "x", "--key" }, "--key needs a value (HEX)" },
      { { "x", "--key", "k", "--json=yes" }, "--json takes no value" },
      { { "x", "--key", "k", "--ky", "1" }, "unknown option --ky (did you mean --key?)" },
      { { "x", "--key", "k", "--zzzzzz" }, "unknown option --zzzzzz" },
      { { "x", "--key", "k", "-k" }, "unknown option -k" },
      { { "x", "--key", "k", "--key", "j" }, "--key given twice" },
      { { "x", "--key", "k", "--listen", "nope" }, "--listen: expected HOST:PORT, got 'nope'" },
      { { "x", "--key", "k", "--=1" }, "unknown option --=1" },
    }
    for _, c in ipairs(cases) do
      local o, err = args.parse(DECL, c[1])
      assert.is_nil(o, table.concat(c[1], " "))
      assert.equal(c[2], err)
    end
  end)

  it("prints help from the same declaration: every option, required and default marked", function()
    local text = args.help(DECL)
    assert.matches("^usage: workproof thing IN %[OUT%] %-%-key HEX %[options%]\n", text)
    for _, o in ipairs(DECL.options) do assert.truthy(text:find(o[1], 1, true), o[1]) end
    assert.truthy(text:find("a key (required)", 1, true))
    assert.truthy(text:find("how many (default: 3)", 1, true))
    assert.truthy(text:find("a gap (repeatable)", 1, true))
    assert.truthy(text:find("-h, --help", 1, true))
    assert.truthy(text:find("Does a thing.", 1, true))
  end)

  it("lists a group's commands", function()
    local text = args.group_help { name = "workproof grp", commands = { DECL } }
    assert.matches("^usage: workproof thing IN %[OUT%] %-%-key HEX %[options%]\n", text)
    assert.truthy(text:find("thing%s+does a thing"))
  end)
end)
