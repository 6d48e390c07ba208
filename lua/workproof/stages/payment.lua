-- SPDX-License-Identifier: MIT
--- Stage `payment` (phase pay): verified before any worker spawns
-- (workproof.notary.payment); settled or released in the finally phase.
local payment = require "workproof.notary.payment"

return { name = "payment", run = payment.verify }
