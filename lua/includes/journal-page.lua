-- A page of the journal (include: journal-page), for readers that follow it in seq order: the
-- HTTP feed (read-journal-2.lua) and the publishers (follow-5.lua). Committed records only (a
-- rejection has no seq). The journal's stream ids are `0-<seq>`, so "after seq s" is the
-- exclusive range `(0-s` (Redis 6.2+).

-- Whether `s` is a seq as a caller may name one: '0' or a canonical positive integer that a Lua
-- number holds exactly (seqs count records; they are not money).
local function jp_seq_ok(s)
  return s == '0' or (#s <= 15 and string.find(s, '^[1-9]%d*$') ~= nil)
end

-- A stream's newest number (its ids are `0-<n>`; the journal's are seqs): '0' when empty.
local function jp_head(stream)
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if top then return string.sub(top[1], 3) end
  return '0'
end

-- Up to `count` records after seq `after`: { entries, ids, head }. entries is XRANGE's reply
-- ({ '0-<seq>', { field, value, ... } } each), ids the ids of each record's accounts (two per
-- record, by number from the account-number hash), head the newest seq ('0': none yet).
local function jp_read(journal, accountIds, after, count)
  local entries = redis.call('XRANGE', journal, '(0-' .. after, '+', 'COUNT', count)
  local numbers = {}
  for i, e in ipairs(entries) do
    local r = e[2]
    if r[{{J_FROM}} - 1] ~= 'f' or r[{{J_TO}} - 1] ~= 't' then
      return redis.error_reply('ERR corrupt ledger: journal record ' .. e[1] .. ' out of shape')
    end
    numbers[2 * i - 1], numbers[2 * i] = r[{{J_FROM}}], r[{{J_TO}}]
  end
  local ids = {}
  if #numbers > 0 then ids = redis.call('HMGET', accountIds, unpack(numbers)) end
  return { entries, ids, jp_head(journal) }
end
