#!lua flags=no-writes
--[[
read-journal: committed records after a seq, in seq order (GET /journal), with the caller's
tag echoed back (see read-hash-1.lua for why). Read-only: runs on replicas too; a replica that
lags answers fewer records, never other ones (the journal only grows at its end).

KEYS[1] journal     stream of committed records, stream id `0-<seq>`
KEYS[2] accountIds  hash: account number -> account id

ARGV[1] tag    echoed (the caller's call id)
ARGV[2] after  the seq to read after ('0': from the first record)
ARGV[3] count  records to return at most, 1 .. JOURNAL_READ_CHUNK_MAX

Returns { tag, entries, ids, head }: entries as XRANGE returns them, two account ids per entry
(debit, credit), and the newest seq ('0' when the journal is empty). An error for bad
arguments or a record out of shape.
]]

--- @include journal
--- @include journal-page

local count = tonumber(ARGV[3])
if not jp_seq_ok(ARGV[2]) or not count or count < 1 or count > {{L_JOURNAL_READ_CHUNK_MAX}}
  or count % 1 ~= 0 then
  return redis.error_reply('ERR read-journal: bad arguments')
end
local page = jp_read(KEYS[1], KEYS[2], ARGV[2], count)
if page.err then return page end
return { ARGV[1], page[1], page[2], page[3] }
