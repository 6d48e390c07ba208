-- SPDX-License-Identifier: MIT
--- Command lines from one declaration per command: the same table parses
-- the arguments and prints the help, so an option cannot work without
-- being documented (or the reverse).
--
--   local DECL = {
--     name = "workproof uptime verify",          -- as typed
--     summary = "verify a heartbeat chain",      -- one line (group listings)
--     description = "longer text, printed under the usage line",
--     positionals = { { "CHAIN.jsonl", help = "...", optional = false } },
--     options = {
--       { "--provider-key", arg = "HEX", required = true, help = "..." },
--       { "--gap", arg = "FROM_MIN:TO_MIN", list = true, help = "..." },
--       { "--json", help = "..." },                -- no arg: a flag
--       { "--listen", arg = "HOST:PORT", match = "^.+:%d+$", help = "..." },
--     },
--   }
--   local opts, err = args.parse(DECL, { ... })
--
-- parse returns a table keyed by option name without the dashes
-- ("provider-key"; flags true, lists arrays) with the positionals at 1..n,
-- `{ help = true }` when -h or --help is among the options, or nil and a
-- message ("--provider-key is required", "unknown option --lisen (did you
-- mean --listen?)"). `--name=value` works; `--` ends the options.
local schema = require "workproof.schema"

local ipairs, tostring, concat, fmt, rep = ipairs, tostring, table.concat, string.format, string.rep

local _M = {}

local function find_opt(decl, name)
  for _, o in ipairs(decl.options or {}) do
    if o[1] == "--" .. name then return o end
  end
end

local function key_of(o) return o[1]:sub(3) end

local function is_help(a) return a == "-h" or a == "--help" end

--- Parse argv (an array of strings) against decl; see the module comment.
function _M.parse(decl, argv)
  local n = #argv
  for i = 1, n do
    if argv[i] == "--" then break end
    if is_help(argv[i]) then return { help = true } end
  end
  local opts, pos, i, rest = {}, {}, 1, false
  while i <= n do
    local a = argv[i]
    if rest or a == "-" or a:sub(1, 1) ~= "-" then
      pos[#pos + 1] = a
    elseif a == "--" then
      rest = true
    elseif a:sub(1, 2) ~= "--" then
      return nil, fmt("unknown option %s", a)
    else
      local name, val = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      local o = find_opt(decl, name)
      if not o then
        local known = {}
        for _, x in ipairs(decl.options or {}) do known[#known + 1] = key_of(x) end
        local near = schema.closest(name, known)
        return nil, fmt("unknown option --%s%s", name, near and fmt(" (did you mean --%s?)", near) or "")
      end
      if not o.arg then
        if val then return nil, fmt("--%s takes no value", name) end
        opts[name] = true
      else
        if not val then
          i = i + 1
          val = argv[i]
          if val == nil then return nil, fmt("--%s needs a value (%s)", name, o.arg) end
        end
        if o.match and not val:find(o.match) then
          return nil, fmt("--%s: expected %s, got '%s'", name, o.arg, val)
        end
        if o.list then
          local t = opts[name] or {}
          t[#t + 1] = val
          opts[name] = t
        elseif opts[name] ~= nil then
          return nil, fmt("--%s given twice", name)
        else
          opts[name] = val
        end
      end
    end
    i = i + 1
  end
  for _, o in ipairs(decl.options or {}) do
    if o.required and opts[key_of(o)] == nil then return nil, o[1] .. " is required" end
  end
  local decl_pos = decl.positionals or {}
  local min = 0
  for k, p in ipairs(decl_pos) do if not p.optional then min = k end end
  if #pos < min then return nil, "missing " .. decl_pos[#pos + 1][1] end
  if #pos > #decl_pos then return nil, fmt("unexpected argument '%s'", pos[#decl_pos + 1]) end
  for k, v in ipairs(pos) do opts[k] = v end
  return opts
end

local function synopsis(decl)
  local parts = { "usage: " .. decl.name }
  for _, p in ipairs(decl.positionals or {}) do
    parts[#parts + 1] = p.optional and ("[" .. p[1] .. "]") or p[1]
  end
  for _, o in ipairs(decl.options or {}) do
    if o.required then parts[#parts + 1] = o[1] .. " " .. o.arg end
  end
  if decl.options and #decl.options > 0 then parts[#parts + 1] = "[options]" end
  return concat(parts, " ")
end

-- "  left    text" rows, the text column aligned
local function rows(out, list)
  local w = 0
  for _, r in ipairs(list) do if #r[1] > w then w = #r[1] end end
  w = w < 22 and 22 or (w > 30 and 30 or w)
  for _, r in ipairs(list) do
    if #r[1] > w then
      out[#out + 1] = "  " .. r[1]
      out[#out + 1] = "  " .. rep(" ", w) .. "  " .. r[2]
    else
      out[#out + 1] = "  " .. r[1] .. rep(" ", w - #r[1]) .. "  " .. r[2]
    end
  end
end

--- The help text of one command.
function _M.help(decl)
  local out = { synopsis(decl), "" }
  if decl.description then out[#out + 1] = decl.description:gsub("\n+$", "") ; out[#out + 1] = "" end
  if decl.positionals and #decl.positionals > 0 then
    out[#out + 1] = "arguments:"
    local list = {}
    for _, p in ipairs(decl.positionals) do list[#list + 1] = { p[1], p.help or "" } end
    rows(out, list)
    out[#out + 1] = ""
  end
  out[#out + 1] = "options:"
  local list = {}
  for _, o in ipairs(decl.options or {}) do
    local text = o.help or ""
    if o.required then text = text .. " (required)" end
    if o.default ~= nil then text = text .. " (default: " .. tostring(o.default) .. ")" end
    if o.list then text = text .. " (repeatable)" end
    list[#list + 1] = { o[1] .. (o.arg and (" " .. o.arg) or ""), text }
  end
  list[#list + 1] = { "-h, --help", "this help" }
  rows(out, list)
  return concat(out, "\n") .. "\n"
end

--- The help text of a command with subcommands: group = { name, summary,
-- description, commands = { decl, ... } } (each decl's name ends with its
-- subcommand word).
function _M.group_help(group)
  local out = {}
  for k, d in ipairs(group.commands) do
    out[k] = (k == 1 and "usage: " or "       ") .. synopsis(d):gsub("^usage: ", "")
  end
  out[#out + 1] = ""
  if group.description then out[#out + 1] = group.description:gsub("\n+$", "") ; out[#out + 1] = "" end
  out[#out + 1] = "commands:"
  local list = {}
  for _, d in ipairs(group.commands) do list[#list + 1] = { d.name:match("(%S+)$"), d.summary or "" } end
  rows(out, list)
  out[#out + 1] = ""
  out[#out + 1] = ("%s <command> --help (or workproof help %s <command>) describes one command")
    :format(group.name, group.name:match("(%S+)$"))
  return concat(out, "\n") .. "\n"
end

--- Parse, answering --help on stdout (exit 0) and a usage error on stderr
-- (exit 2): returns opts, or nil and the exit code.
function _M.run(decl, argv)
  local opts, err = _M.parse(decl, argv)
  if opts and opts.help then
    io.stdout:write(_M.help(decl))
    return nil, 0
  end
  if not opts then return nil, _M.usage_error(decl, err) end
  return opts
end

--- Print "NAME: msg" and where the help is to stderr; returns 2.
function _M.usage_error(decl, msg)
  io.stderr:write(decl.name, ": ", msg, "\n(", decl.name, " --help for usage)\n")
  return 2
end

--- Find the subcommand decl in group for argv[1]; answers the group's own
-- help. Returns decl, rest of argv or nil, exit code.
function _M.dispatch(group, argv)
  local cmd = argv[1]
  if cmd == "help" and argv[2] then   -- `uptime help verify` = `uptime verify --help`
    argv = { argv[2], "--help" }
    cmd = argv[1]
  end
  if cmd == nil or cmd == "help" or is_help(cmd) then
    io[cmd and "stdout" or "stderr"]:write(_M.group_help(group))
    return nil, cmd and 0 or 2
  end
  for _, d in ipairs(group.commands) do
    if d.name:match("(%S+)$") == cmd then
      local rest = {}
      for k = 2, #argv do rest[#rest + 1] = argv[k] end
      return d, rest
    end
  end
  local known = {}
  for _, d in ipairs(group.commands) do known[#known + 1] = d.name:match("(%S+)$") end
  local near = schema.closest(cmd, known)
  io.stderr:write(group.name, ": unknown command '", cmd, "'", near and (" (did you mean '" .. near .. "'?)") or "",
    "\n(", group.name, " --help for usage)\n")
  return nil, 2
end

return _M
