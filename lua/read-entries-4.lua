#!lua flags=no-writes
--[[
read-entries: a page of an account's entries, newest first, with the caller's tag echoed back
(see read-hash-1.lua for why). An account's entries are not stored apart: each journal record
names the previous seq of both its accounts (pf, pt), and the account hash holds its newest
(lseq), so a page walks that chain, one XRANGE per entry.

KEYS[1] account     the account's hash
KEYS[2] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[3] accountIds  hash: account number -> account id (to name counterparties)
KEYS[4] positions   hash: `archive:f`, the seq up to which archived records were freed

ARGV[1] tag      echoed: the account id
ARGV[2] start    '' for the newest entry, or the seq of the first entry to return (a cursor)
ARGV[3] count    entries to return, 1 .. ENTRIES_READ_CHUNK_MAX (a page takes several calls)

Returns { tag, exists (1 or 0), cursorOk (1 or 0), entries, next, counterpartyIds }:
entries is a flat list of 6 values per entry: seq, transferId, amount (negative for a debit),
balanceAfter, createdAt (ms), kind (a RECORD_KINDS code: '' transfer, 'p' post,
'r' reversal); next is the seq where the following page starts ('0': none);
counterpartyIds holds one account id per entry. cursorOk is 0 when start is not a seq of this
account's entries (a cursor this service did not issue for it). When the chain reaches a record
freed from Redis (archived: src/archive/), the reply has a 7th value, 'archive': the page goes
on in PostgreSQL from `next` (that entry included), where every older entry is.
]]

--- @include journal

local count = tonumber(ARGV[3])
if not count or count < 1 or count > {{L_ENTRIES_READ_CHUNK_MAX}} then
  return redis.error_reply('ERR read-entries: count out of range')
end
local account = a_read(KEYS[1])
if not account[{{A_NUMBER}}] then return { ARGV[1], 0, 1, {}, '0', {} } end
local me, seq = account[{{A_NUMBER}}], account[{{A_LAST_SEQ}}]
if ARGV[2] ~= '' then seq = ARGV[2] end

local entries, others = {}, {}
local first = true
local freed = nil
while seq ~= '0' and #others < count do
  local found = redis.call('XRANGE', KEYS[2], '0-' .. seq, '0-' .. seq)
  local r = found[1] and found[1][2]
  if not r then
    freed = freed or tonumber(redis.call('HGET', KEYS[4], 'archive:f') or '0')
    local n = tonumber(seq)
    if n and n <= freed then
      local ids = {}
      if #others > 0 then ids = redis.call('HMGET', KEYS[3], unpack(others)) end
      return { ARGV[1], 1, 1, entries, seq, ids, 'archive' }
    end
  end
  -- A journal record has a fixed field order (includes/journal.lua); check its ends. Holds and
  -- voids are not on any chain: a cursor naming one is not a cursor of these entries.
  local kind = r and j_kind(r) or ''
  if not r or r[{{J_FROM}} - 1] ~= 'f' or r[{{J_TO_PREVIOUS}} - 1] ~= 'pt'
    or kind == {{K_HOLD}} or kind == {{K_VOID}} then
    if first then return { ARGV[1], 1, 0, {}, '0', {} } end
    return redis.error_reply('ERR corrupt ledger: entry chain broken at seq ' .. seq)
  end
  local n = #entries
  entries[n + 1], entries[n + 2], entries[n + 5] = seq, r[{{J_ID}}], r[{{J_CREATED_AT}}]
  entries[n + 6] = kind
  if r[{{J_FROM}}] == me then
    entries[n + 3], entries[n + 4] = '-' .. r[{{J_AMOUNT}}], r[{{J_FROM_BALANCE_AFTER}}]
    others[#others + 1], seq = r[{{J_TO}}], r[{{J_FROM_PREVIOUS}}]
  elseif r[{{J_TO}}] == me then
    entries[n + 3], entries[n + 4] = r[{{J_AMOUNT}}], r[{{J_TO_BALANCE_AFTER}}]
    others[#others + 1], seq = r[{{J_FROM}}], r[{{J_TO_PREVIOUS}}]
  elseif first then
    return { ARGV[1], 1, 0, {}, '0', {} }
  else
    return redis.error_reply('ERR corrupt ledger: entry chain broken at seq ' .. seq)
  end
  first = false
end
local ids = {}
if #others > 0 then ids = redis.call('HMGET', KEYS[3], unpack(others)) end
return { ARGV[1], 1, 1, entries, seq, ids }
