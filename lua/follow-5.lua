#!lua flags=
--[[
follow: a journal follower's page and position, for the holder of its lock only. A follower
(src/ledger/follower.ts; the change-data publisher) hands the journal's records, in seq order,
to something outside Redis, and saves how far it got once that side has them: a crash in
between hands some records on again, never skips one. The lock (lua/lock-1.lua, the same key)
fences it: a holder paused past its lease can neither read as the holder nor move the position.

KEYS[1] meta        ledger hash: fmt (a follower reads only a data format this release knows)
KEYS[2] lock        string: the lock holder's token (lua/lock-1.lua)
KEYS[3] positions   hash: follower name -> the seq handed on up to
KEYS[4] journal     stream of committed records, stream id `0-<seq>`
KEYS[5] accountIds  hash: account number -> account id

ARGV[1] token  the caller's lock token (echoed)
ARGV[2] name   the follower's name, 1-16 of a-z
ARGV[3] mode   'read': the records after the saved position; 'save': move the position
ARGV[4] count (read: 1 .. JOURNAL_READ_CHUNK_MAX) or seq (save: handed on up to here)
ARGV[5] after  (read) '' for the records after the saved position, or a seq past it: the next
               chunk of a page that takes several calls

Returns { token, 0 } when the caller does not hold the lock (nothing read or written), else
read: { token, 1, position, entries, ids, head } (entries, ids, head: read-journal-2.lua);
save: { token, 1 }, the position moved to seq unless it was already there or past it (a
position never goes back). An error for bad arguments (a seq past the journal's newest
included) or a data format this release does not know, with nothing written.
]]

--- @include journal
--- @include journal-page

local token, name, mode, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if #token < 16 or #token > 64 or not string.find(name, '^[a-z]+$') or #name > 16
  or (mode ~= 'read' and mode ~= 'save') then
  return redis.error_reply('ERR follow: bad arguments')
end
if not f_ok(redis.call('HGET', KEYS[1], 'fmt')) then
  return redis.error_reply('ERR follow: data format not supported by this release')
end
if redis.call('GET', KEYS[2]) ~= token then return { token, 0 } end
local position = redis.call('HGET', KEYS[3], name) or '0'
if mode == 'read' then
  local count = tonumber(value)
  if not count or count < 1 or count > {{L_JOURNAL_READ_CHUNK_MAX}} or count % 1 ~= 0 then
    return redis.error_reply('ERR follow: bad arguments')
  end
  local after = ARGV[5] or ''
  if after == '' then
    after = position
  elseif not jp_seq_ok(after) or tonumber(after) < tonumber(position) then
    return redis.error_reply('ERR follow: bad arguments')
  end
  local page = jp_read(KEYS[4], KEYS[5], after, count)
  if page.err then return page end
  return { token, 1, position, page[1], page[2], page[3] }
end
if not jp_seq_ok(value) then return redis.error_reply('ERR follow: bad arguments') end
if tonumber(value) <= tonumber(position) then return { token, 1 } end
if tonumber(jp_head(KEYS[4])) < tonumber(value) then
  return redis.error_reply('ERR follow: position past the journal')
end
-- After this point the position is moved.
redis.call('HSET', KEYS[3], name, value)
return { token, 1 }
