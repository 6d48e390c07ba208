-- SPDX-License-Identifier: MIT
-- policies/disputes.lua: what a proven fault costs, who gets it, what is
-- dismissed, and when the consumer agent disputes by itself.
local policy = require "workproof.policy"
local schema = require "workproof.schema"

describe("disputes policy", function()
  local p = policy.load_file("policies/disputes.lua")
  local conf = assert(policy.configure(p, {}))
  local C = 1000000000

  it("prices each proven kind in basis points of the collateral, refunding the consumer its share", function()
    for kind, bps in pairs({ INVALID_BEAT = 1000, EQUIVOCATION = 5000, CHALLENGE_FAILED = 500, CLAIM_MISMATCH = 5000,
      OVERCOMMITTED = 2000 }) do
      local r = p.judge(conf, { kind = kind, proven = true, reason = "X", collateral = C })
      assert.is_true(r.upheld, kind)
      assert.equal(C * bps / 10000, r.slash, kind)
      assert.equal(math.floor(r.slash * 0.8), r.refund, kind)
      assert.matches(kind .. " proven", r.why)
    end
  end)

  it("dismisses what the evidence does not prove, and kinds priced at 0", function()
    local r = p.judge(conf, { kind = "EQUIVOCATION", proven = false, reason = "SAME_BEAT", collateral = C })
    assert.is_false(r.upheld)
    assert.equal(0, r.slash)
    assert.matches("SAME_BEAT", r.why)
    local c0 = assert(policy.configure(p, { slash_bps = { CHALLENGE_FAILED = 0 } }))
    assert.is_false(p.judge(c0, { kind = "CHALLENGE_FAILED", proven = true, collateral = C }).upheld)
    -- a kind left out of a configured map keeps its default
    assert.equal(C / 2, p.judge(c0, { kind = "EQUIVOCATION", proven = true, collateral = C }).slash)
  end)

  it("caps a slash at max_slash, never above the collateral, whole units only", function()
    local c = assert(policy.configure(p, { max_slash = 12345, refund_share = 0.5 }))
    local r = p.judge(c, { kind = "EQUIVOCATION", proven = true, collateral = C })
    assert.equal(12345, r.slash)
    assert.equal(6172, r.refund)
    assert.equal(0, p.judge(conf, { kind = "INVALID_BEAT", proven = true, collateral = 9 }).slash)
    assert.equal(0, p.judge(conf, { kind = "INVALID_BEAT", proven = true, collateral = 0 }).slash)
  end)

  it("tells the consumer when to dispute", function()
    assert.is_true(p.open(conf, { kind = "CLAIM_MISMATCH", window_left_s = 3600 }))
    local ok, why = p.open(conf, { kind = "CLAIM_MISMATCH", window_left_s = 30 })
    assert.is_false(ok)
    assert.matches("window", why)
    assert.is_false(p.open(conf, { kind = "SCORE_BELOW_DISPUTE", window_left_s = 3600 }), "the consumer's own word")
    local off = assert(policy.configure(p, { auto_dispute = false }))
    assert.is_false(p.open(off, { kind = "EQUIVOCATION", window_left_s = 3600 }))
    local some = assert(policy.configure(p, { dispute_kinds = { CHALLENGE_FAILED = false } }))
    assert.is_false(p.open(some, { kind = "CHALLENGE_FAILED", window_left_s = 3600 }))
    assert.is_true(p.open(some, { kind = "EQUIVOCATION", window_left_s = 3600 }))
  end)

  it("refuses a malformed configuration with the field named", function()
    for _, bad in ipairs({
      { { slash_bps = { NOPE = 1 } }, "slash_bps.NOPE" },
      { { slash_bps = { EQUIVOCATION = 10001 } }, "slash_bps.EQUIVOCATION" },
      { { refund_share = 1.5 }, "refund_share" },
      { { max_slash = -1 }, "max_slash" },
      { { dispute_kinds = { EQUIVOCATION = "yes" } }, "dispute_kinds.EQUIVOCATION" },
    }) do
      local c, errs = policy.configure(p, bad[1])
      assert.is_nil(c)
      assert.matches(bad[2], table.concat(schema.format_errors(errs), "; "), 1, true)
    end
  end)
end)
