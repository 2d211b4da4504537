-- The data format (include: format): which ledgers this release's scripts touch. Its own
-- format, and the one before it, whose records are the same without holds, reversals or closed
-- accounts: the first write marks such a ledger with this format, so that a release that knows
-- nothing of holds refuses it from then on instead of ignoring reserved funds.
local function f_ok(fmt)
  return not fmt or fmt == '{{FORMAT_VERSION}}' or fmt == '{{FORMAT_UPGRADES_FROM}}'
end

-- After a write: the ledger carries this format.
local function f_mark(meta, fmt)
  if fmt ~= '{{FORMAT_VERSION}}' then redis.call('HSET', meta, 'fmt', '{{FORMAT_VERSION}}') end
end
