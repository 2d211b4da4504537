#!lua flags=
--[[
archive: the PostgreSQL archiver's saved positions and frees (src/archive/archiver.ts), for the
holder of its lock only (lua/lock-1.lua, key `lock:archive`). Both streams, the journal by seq
and the rejections by number, are copied in order (read with plain XRANGE: src/ledger/ledger.ts
archiveRead says why not here); Redis notes how far PostgreSQL has
committed them, with the hash chains' heads there (src/archive/chain.ts), so that an archive
rolled back or edited afterwards disagrees with Redis (npm run audit); and records PostgreSQL
has are freed: each stream entry deleted, and its id's index entry turned into the archived
form (the id, or its compact form, mapped to '': includes/journal.lua t_ref), which keeps the
id decided forever in a few bytes. An open hold is not freed (posts, voids and the sweeper read
its record): it is pinned and freed by a later call once it is closed.

A free does not read the records it frees: the archiver copied them and gives each one's id
and whether it is a hold. Each id is checked against the index (it must map to that seq or
number), so an item cannot name a record other than its own; a hold's state decides whether
it is open. Reading each record into Lua was two thirds of the script's time (measured).

KEYS[1] meta        ledger hash: fmt (the archiver reads only a data format this release knows)
KEYS[2] lock        string: the lock holder's token (lua/lock-1.lua)
KEYS[3] positions   hash: `archive` -> seq archived up to (a follower's position, as
                    follow-5.lua's), `archive:r` -> rejection number archived up to,
                    `archive:hj` / `archive:hr` -> the chains' heads there (64 hex digits)
KEYS[4] journal     stream of committed records, stream id `0-<seq>`
KEYS[5] rejections  stream of rejected records, stream id `0-<n>`
KEYS[6] state       hash: a hold's seq -> its state ('' or none: open; includes/holds.lua)
KEYS[7] pinned      sorted set: seqs of open holds that stayed when the records around them
                    were freed (score = seq)
KEYS[8..] free: the id buckets of the records freed, each once; items refer to them by index

ARGV[1] token  the caller's lock token (echoed)
ARGV[2] mode   'save' or 'free'
save: ARGV[3] seq, ARGV[4] rejection number (archived up to), ARGV[5] / ARGV[6] the journal's
      and the rejections' chain heads there
free: ARGV[3] seq and ARGV[4] rejection number to free up to (at most what PostgreSQL has, as
      noted here, and for the journal at most every other follower's position in KEYS[3]: a
      follower still reads them), ARGV[5] the number of items, then 5 values per item: stream
      ('j': the journal, 'h': the journal and a hold, 'r': the rejections), its seq or number,
      the KEYS index of its id's bucket, its id, and its compact id (src/ledger/keys.ts
      compactId, '' for none). The items are every record after the freed positions
      (`archive:f`, `archive:fr` in KEYS[3]) up to ARGV[3..4], in order, after any pinned holds
      (seqs at or before `archive:f`) to look at again (read here: they are few).

Returns { token, 0 } when the caller does not hold the lock (nothing read or written), else
save: { token, 1 }, each position moved unless already there or past it (it never goes back).
free: { token, 1, freed, pinned }: records freed, open holds pinned.
An error for bad arguments (a position past a stream's newest included) or a data format this
release does not know, with nothing written.
]]

--- @include journal
--- @include journal-page

local token, mode = ARGV[1], ARGV[2]
if #token < 16 or #token > 64 or (mode ~= 'save' and mode ~= 'free') then
  return redis.error_reply('ERR archive: bad arguments')
end
if not f_ok(redis.call('HGET', KEYS[1], 'fmt')) then
  return redis.error_reply('ERR archive: data format not supported by this release')
end
if redis.call('GET', KEYS[2]) ~= token then return { token, 0 } end
local saved = redis.call('HMGET', KEYS[3], 'archive', 'archive:r')
local savedSeq, savedN = saved[1] or '0', saved[2] or '0'

-- The free mode: checks everything, then writes (see the header).
local function a_free()
  local upto, uptoN, count = ARGV[3] or '', ARGV[4] or '', tonumber(ARGV[5])
  if not jp_seq_ok(upto) or not jp_seq_ok(uptoN) or not count or count < 0
    or count > {{L_JOURNAL_READ_CHUNK_MAX}} or count % 1 ~= 0 or #ARGV ~= 5 + 5 * count then
    return redis.error_reply('ERR archive: bad arguments')
  end
  local fields = redis.call('HMGET', KEYS[3], 'archive:f', 'archive:fr')
  local freed, freedN = tonumber(fields[1] or '0'), tonumber(fields[2] or '0')
  local limit = tonumber(savedSeq)
  local all = redis.call('HGETALL', KEYS[3])
  for i = 1, #all, 2 do
    -- Other followers' positions (a-z names; the archive's own fields have a colon).
    if all[i] ~= 'archive' and not string.find(all[i], ':', 1, true) then
      limit = math.min(limit, tonumber(all[i + 1]) or 0)
    end
  end
  if tonumber(upto) > limit or tonumber(uptoN) > tonumber(savedN) then
    return redis.error_reply('ERR archive: free past what is archived or followed')
  end
  local pinnedBefore = redis.call('ZCARD', KEYS[7]) -- (and its type, before the first write)
  -- First the arguments and their order; then each record checked against its id's index
  -- entry (a pinned hold read from its stream).
  local nextSeq, nextN = freed + 1, freedN + 1
  local items = {}
  for i = 1, count do
    local b = 5 + 5 * (i - 1)
    local stream, number, k, id, compact = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3]),
      ARGV[b + 4], ARGV[b + 5]
    local hold = stream == 'h'
    if hold then stream = 'j' end
    if (stream ~= 'j' and stream ~= 'r') or not jp_seq_ok(number) or not k or k < 8
      or not KEYS[k] or #id == 0 or #id > {{L_ID_LENGTH_MAX}} then
      return redis.error_reply('ERR archive: bad arguments')
    end
    local n = tonumber(number)
    local inRun = false
    if stream == 'j' and n >= nextSeq then
      if n ~= nextSeq or n > tonumber(upto) then
        return redis.error_reply('ERR archive: free items not in order')
      end
      nextSeq, inRun = n + 1, true
    elseif stream == 'r' and (n ~= nextN or n > tonumber(uptoN)) then
      return redis.error_reply('ERR archive: free items not in order')
    elseif stream == 'r' then
      nextN, inRun = n + 1, true
    end
    items[i] = { stream, number, k, id, compact, inRun, hold }
  end
  local frees, pins, jids, rids = {}, {}, {}, {}
  for _, item in ipairs(items) do
    local stream, number, k, id, compact, inRun, hold = item[1], item[2], item[3], item[4],
      item[5], item[6], item[7]
    local ref, present = number, true
    if stream == 'r' then ref = '-' .. number end
    if not inRun then -- a pinned hold, looked at again: its record says what it is
      local found = redis.call('XRANGE', KEYS[4], '0-' .. number, '0-' .. number)[1]
      present = found ~= nil -- (absent: freed by an earlier call)
      if present then
        hold = j_kind(found[2]) == {{K_HOLD}}
        if found[2][{{J_ID}} - 1] ~= 'i' or found[2][{{J_ID}}] ~= id then
          return redis.error_reply('ERR archive: record ' .. ref .. ' is not ' .. id)
        end
      end
    end
    if present then
      if redis.call('HGET', KEYS[k], id) ~= ref then
        return redis.error_reply('ERR archive: record ' .. ref .. ' is not indexed as such in ' ..
          KEYS[k])
      end
      local open = false
      if hold then
        local state = redis.call('HGET', KEYS[6], number)
        open = not state or state == ''
      end
      if open then
        pins[#pins + 1] = number
      else
        frees[#frees + 1] = { KEYS[k], id, compact }
        if stream == 'j' then jids[#jids + 1] = '0-' .. number
        else rids[#rids + 1] = '0-' .. number end
      end
    end
  end
  if nextSeq - 1 ~= tonumber(upto) and tonumber(upto) > freed then
    return redis.error_reply('ERR archive: free items do not reach seq ' .. upto)
  end
  if nextN - 1 ~= tonumber(uptoN) and tonumber(uptoN) > freedN then
    return redis.error_reply('ERR archive: free items do not reach rejection ' .. uptoN)
  end
  -- After this point the records are freed.
  for _, f in ipairs(frees) do
    if f[3] ~= '' then
      redis.call('HDEL', f[1], f[2])
      redis.call('HSET', f[1], f[3], '')
    else
      redis.call('HSET', f[1], f[2], '')
    end
  end
  -- With no open hold kept in the stream (none pinned before, none now), every entry up to the
  -- run's end is freed now or was before: one XTRIM drops them, whole stream nodes at a time,
  -- where XDEL finds and marks each entry (4.2 us of Redis per record, measured). Otherwise
  -- XDEL, which leaves the open holds where they are. Rejections are never pinned.
  if #jids > 0 and pinnedBefore == 0 and #pins == 0 then
    redis.call('XTRIM', KEYS[4], 'MINID', string.format('0-%d', nextSeq))
  elseif #jids > 0 then
    redis.call('XDEL', KEYS[4], unpack(jids))
    local seqs = {}
    for i, jid in ipairs(jids) do seqs[i] = string.sub(jid, 3) end
    redis.call('ZREM', KEYS[7], unpack(seqs))
  end
  if #rids > 0 then redis.call('XTRIM', KEYS[5], 'MINID', string.format('0-%d', nextN)) end
  for _, p in ipairs(pins) do redis.call('ZADD', KEYS[7], p, p) end
  if tonumber(upto) > freed then redis.call('HSET', KEYS[3], 'archive:f', upto) end
  if tonumber(uptoN) > freedN then redis.call('HSET', KEYS[3], 'archive:fr', uptoN) end
  return { token, 1, #frees, #pins }
end

if mode == 'free' then return a_free() end

local seq, n, hashJ, hashR = ARGV[3] or '', ARGV[4] or '', ARGV[5] or '', ARGV[6] or ''
local HASH = '^' .. string.rep('%x', 64) .. '$'
if not jp_seq_ok(seq) or not jp_seq_ok(n) or not string.find(hashJ, HASH)
  or not string.find(hashR, HASH) then
  return redis.error_reply('ERR archive: bad arguments')
end
local moveSeq = tonumber(seq) > tonumber(savedSeq)
local moveN = tonumber(n) > tonumber(savedN)
if (moveSeq and tonumber(jp_head(KEYS[4])) < tonumber(seq))
  or (moveN and tonumber(jp_head(KEYS[5])) < tonumber(n)) then
  return redis.error_reply('ERR archive: position past the stream')
end
-- After this point the positions are moved.
if moveSeq then redis.call('HSET', KEYS[3], 'archive', seq, 'archive:hj', hashJ) end
if moveN then redis.call('HSET', KEYS[3], 'archive:r', n, 'archive:hr', hashR) end
return { token, 1 }
