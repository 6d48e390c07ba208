-- SPDX-License-Identifier: MIT
-- PLACEHOLDER: `workproof uptime` is being written (replace this whole file).
local _M = {}

function _M.main()
  io.stderr:write("workproof uptime: not built yet\n")
  return 2
end

return _M
