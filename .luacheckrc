std = "luajit"
max_line_length = 120
codes = true
-- the busted DSL in specs
files["spec"] = { std = "+busted" }
-- operator policies run in the allowlisted env of lua/workproof/policy.lua
stds.policy = { read_globals = { "now", "log", "wp", "json", "bit" } }
files["policies"] = { std = "min+policy" }
files["spec/fixtures/policies"] = { std = "min+policy" }
-- wrk calls these globals of its scripts (and shares `valid`, `other` per thread)
files["spec/bench/wrk"] = { globals = { "wrk", "setup", "init", "response", "done", "valid", "other" } }
exclude_files = {
  "build*/**", "contracts/node_modules/**",
  -- deliberately broken or hostile inputs
  "spec/fixtures/policies/syntax_error.lua", "spec/fixtures/policies/bad_global.lua",
  "spec/fixtures/hostile/**",
}
