#!lua flags=no-writes
--[[
read-balance: an account's posted totals as they stood after seq `at`, walking its entries
chain back from the newest (as read-entries-4.lua does) and taking off every entry after `at`,
with the caller's tag echoed back (see read-hash-1.lua for why). A walk longer than one call
goes on from a cursor, with the totals so far; the chain below the newest entry never changes.

KEYS[1] account     the account's hash
KEYS[2] journal     stream of committed records, stream id `0-<seq>`
KEYS[3] positions   hash: `archive:f`, the seq up to which archived records were freed

ARGV[1] tag      echoed: the account id
ARGV[2] at       the seq to stand at (1 .. the journal's newest)
ARGV[3] count    entries to walk in this call, 1 .. ENTRIES_READ_CHUNK_MAX
ARGV[4] cursor   '' for the first call (the account's newest entry and its totals now), else
                 the seq to go on from, with ARGV[5..6] the debits and credits so far

Returns { tag, exists (1 or 0), state, debits, credits, cursor }: state 'done' (the totals
after `at`), 'more' (call again from cursor with these totals) or 'archive' (an entry after
`at` was freed from Redis: `at` is at or before the freed seq, so every entry up to it is in
PostgreSQL, which answers instead).
]]

--- @include journal

local at, count, cursor = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] or ''
if not at or at < 0 or at % 1 ~= 0 or not count or count < 1
  or count > {{L_ENTRIES_READ_CHUNK_MAX}} then
  return redis.error_reply('ERR read-balance: bad arguments')
end
local account = a_read(KEYS[1])
if not account[{{A_NUMBER}}] then return { ARGV[1], 0, 'done', '0', '0', '0' } end
local me = account[{{A_NUMBER}}]
local debits, credits, seq = account[{{A_DEBITS}}], account[{{A_CREDITS}}],
  account[{{A_LAST_SEQ}}]
if cursor ~= '' then
  debits, credits, seq = ARGV[5] or '', ARGV[6] or '', cursor
  if not string.find(debits, '^%d+$') or #debits > 39 or not string.find(credits, '^%d+$')
    or #credits > 39 or not string.find(cursor, '^[1-9]%d*$') then
    return redis.error_reply('ERR read-balance: bad arguments')
  end
end

local walked = 0
while seq ~= '0' and tonumber(seq) > at do
  if walked == count then return { ARGV[1], 1, 'more', debits, credits, seq } end
  local found = redis.call('XRANGE', KEYS[2], '0-' .. seq, '0-' .. seq)
  local r = found[1] and found[1][2]
  if not r then
    local freed = tonumber(redis.call('HGET', KEYS[3], 'archive:f') or '0')
    if tonumber(seq) <= freed then return { ARGV[1], 1, 'archive', '0', '0', seq } end
    return redis.error_reply('ERR corrupt ledger: entry chain broken at seq ' .. seq)
  end
  local amount = r[{{J_AMOUNT}}]
  if r[{{J_FROM}}] == me and u_cmp(debits, amount) >= 0 then
    debits, seq = u_sub(debits, amount), r[{{J_FROM_PREVIOUS}}]
  elseif r[{{J_TO}}] == me and u_cmp(credits, amount) >= 0 then
    credits, seq = u_sub(credits, amount), r[{{J_TO_PREVIOUS}}]
  else
    return redis.error_reply('ERR corrupt ledger: entry chain broken at seq ' .. seq)
  end
  walked = walked + 1
end
return { ARGV[1], 1, 'done', debits, credits, seq }
