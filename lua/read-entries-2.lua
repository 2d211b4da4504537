#!lua flags=no-writes
--[[
read-entries: a page of an account's entries, newest first, with the caller's tag echoed back
(see read-hash-1.lua for why).

KEYS[1] account  the account's hash (only its existence is read)
KEYS[2] entries  the account's entries stream

ARGV[1] tag      echoed: the account id
ARGV[2] end      '+' for the newest entry, or '(<seq>-0' to continue before that seq
ARGV[3] count    entries to return, 1 .. ENTRIES_PAGE_LIMIT_MAX + 1 (one more tells the caller
                 whether another page exists)

Returns { tag, exists (1 or 0), { { streamId, { field, value, ... } }, ... } }.
]]
local count = tonumber(ARGV[3])
if not count or count < 1 or count > {{L_ENTRIES_PAGE_LIMIT_MAX}} + 1 then
  return redis.error_reply('ERR read-entries: count out of range')
end
local exists = redis.call('EXISTS', KEYS[1])
return { ARGV[1], exists, redis.call('XREVRANGE', KEYS[2], ARGV[2], '-', 'COUNT', count) }
