std = "luajit"
max_line_length = 120
codes = true
-- the busted DSL in specs
files["spec"] = { std = "+busted" }
exclude_files = { "build*/**", "contracts/node_modules/**" }
