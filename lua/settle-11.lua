#!lua flags=
--[[
settle: post or void a hold, once, idempotently under the new record's own id. A post moves
`amount` (default: all of the hold) as posted money and releases the rest; a void releases it
all. A hold past its expiry is released here if the sweeper has not yet done it, and the
request is rejected PENDING_TRANSFER_EXPIRED. Holds on closed accounts still settle.

KEYS[1] meta        ledger hash: fmt (data-format version)
KEYS[2] bucket      the id bucket of this post or void's id
KEYS[3] holdBucket  the id bucket of the hold's id
KEYS[4] from        the hold's debit account (hash), or any key of this ledger if unknown
KEYS[5] to          the hold's credit account (hash), likewise
KEYS[6] journal     stream of committed records, stream id `0-<seq>`
KEYS[7] rejections  stream of rejected records, stream id `0-<n>`
KEYS[8] accountIds  hash: account number -> account id
KEYS[9] state       hash: a hold's seq -> its state (includes/holds.lua)
KEYS[10] expiries   sorted set: open holds with a timeout, by expiry
KEYS[11] holdStats  hash: open holds per currency

ARGV[1] mode      'post' or 'void'
ARGV[2] id        this record's id
ARGV[3] holdId    the hold's id
ARGV[4] amount    a post's amount, canonical decimal 1 .. 2^128-1, or '' (all of the hold);
                  always '' for a void
ARGV[5] metadata  canonical JSON object
ARGV[6] now       ms since the epoch (time comes from the caller)
ARGV[7] createdBy name of the API key that asked
ARGV[8] fromId    the hold's debit account id as the caller read it ('' when it found no hold)
ARGV[9] toId      the hold's credit account id, likewise
ARGV[10] compact     this id's compact form (src/ledger/keys.ts compactId), '' for none
ARGV[11] holdCompact the hold id's compact form, likewise
ARGV[12] holdRef     '', or, when the hold's record was archived, its reference as
                     PostgreSQL has it (a seq, or '-<n>' for a rejected hold)
ARGV[13] holdRecord  with holdRef: that record's field/value list as JSON

Returns, the id echoing ARGV[2]:
  { OK, id, currency, seq, fromBalanceAfter, toBalanceAfter, amount }        settled now
  { EXISTS, id, ref, record, fromId, toId }          decided before (as transfer-9.lua)
  { PENDING_TRANSFER_NOT_FOUND | PENDING_TRANSFER_NOT_PENDING |
    PENDING_TRANSFER_ALREADY_POSTED | PENDING_TRANSFER_ALREADY_VOIDED |
    PENDING_TRANSFER_EXPIRED | EXCEEDS_PENDING_AMOUNT, id, currency, amount } rejected, recorded
    (amount: what was asked, or all of the hold when nothing was; '' when there is no hold)
  { STALE_KEYS, id, fromId, toId }   KEYS[4..5] are not the hold's: nothing written; call
                                     again with these accounts
  { ARCHIVED, id, 'self' }     this id was decided, its record archived: nothing written
  { ARCHIVED, id, 'target' }   the hold's record was archived and not given: nothing written;
                               call again with it (ARGV[12..13])
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
Precedence: the order of the rejections above.
]]

--- @include journal
--- @include holds

local mode, id, holdId, amount, metadata = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, by, fromId, toId = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local compact, holdCompact = ARGV[10] or '', ARGV[11] or ''
local holdRef, holdRecord = ARGV[12] or '', ARGV[13] or ''
local kind = {{K_POST}}
if mode == 'void' then kind = {{K_VOID}} end

local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, id } end
if (mode ~= 'post' and mode ~= 'void') or #id == 0 or #id > {{L_ID_LENGTH_MAX}}
  or #holdId == 0 or #holdId > {{L_ID_LENGTH_MAX}}
  or (amount ~= '' and (mode == 'void' or amount == '0' or not u_valid(amount)))
  or #metadata > {{L_METADATA_JSON_BYTES_MAX}} or string.byte(metadata, 1) ~= 123
  or not string.find(now, '^%d+$') or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}} then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local found = t_find(KEYS[2], KEYS[6], KEYS[7], KEYS[8], id, compact)
if found then
  if found[1] == '' then return { {{S_ARCHIVED}}, id, 'self' } end
  return { {{S_EXISTS}}, id, found[1], found[2], found[3], found[4] }
end

-- The hold, and the first rejection that applies.
local status, record, seq, held, expires, currency = {{S_OK}}, nil, nil, nil, '', ''
local expiredNow, fa, ta = false, nil, nil
local ref, target = t_target(KEYS[3], KEYS[6], KEYS[7], holdId, holdCompact, holdRef,
  holdRecord)
if ref == false then return { {{S_ARCHIVED}}, id, 'target' } end
if not ref then
  status = {{S_PENDING_TRANSFER_NOT_FOUND}}
  fromId, toId = '', ''
elseif string.byte(ref, 1) == 45 then
  -- A rejected hold opened nothing: no hold. A rejected record of another kind is not a hold.
  status = {{S_PENDING_TRANSFER_NOT_PENDING}}
  if r_kind(target) == {{K_HOLD}} then
    status = {{S_PENDING_TRANSFER_NOT_FOUND}}
  end
  fromId, toId = '', ''
else
  record, seq = target, ref
  currency = record[{{J_CURRENCY}}]
  if j_kind(record) ~= {{K_HOLD}} then
    status = {{S_PENDING_TRANSFER_NOT_PENDING}}
    fromId, toId = '', ''
  else
    -- KEYS[4..5] must be the hold's accounts: their numbers say so without another lookup.
    fa, ta = a_read(KEYS[4]), a_read(KEYS[5])
    if fa[{{A_NUMBER}}] ~= record[{{J_FROM}}] or ta[{{A_NUMBER}}] ~= record[{{J_TO}}] then
      local ids = redis.call('HMGET', KEYS[8], record[{{J_FROM}}], record[{{J_TO}}])
      return { {{S_STALE_KEYS}}, id, ids[1] or '', ids[2] or '' }
    end
    held, expires = record[{{J_AMOUNT}}], record[{{J_EXPIRES_AT}}]
    local state = redis.call('HGET', KEYS[9], seq)
    if state and string.byte(state, 1) == 112 then
      status = {{S_PENDING_TRANSFER_ALREADY_POSTED}}
    elseif state == 'v' then
      status = {{S_PENDING_TRANSFER_ALREADY_VOIDED}}
    elseif state == 'e' then
      status = {{S_PENDING_TRANSFER_EXPIRED}}
    elseif state then
      return redis.error_reply('ERR corrupt ledger: hold state ' .. state)
    elseif expires ~= '' and u_cmp(now, expires) >= 0 then
      status, expiredNow = {{S_PENDING_TRANSFER_EXPIRED}}, true
    elseif amount ~= '' and u_cmp(amount, held) > 0 then
      status = {{S_EXCEEDS_PENDING_AMOUNT}}
    end
  end
end

local moved = amount
if moved == '' then moved = held or '' end

-- What settling changes, computed in memory before any write.
local c
if status == {{S_OK}} or expiredNow then
  if not (a_sound(fa) and a_sound(ta)) or not h_release(fa, ta, held) then
    return redis.error_reply('ERR corrupt ledger: hold ' .. seq .. ' and its accounts disagree')
  end
  c = h_counts(KEYS[11], currency)
  if expires ~= '' then redis.call('ZCARD', KEYS[10]) end -- its type, before the first write
end

if status ~= {{S_OK}} then
  -- After this point the rejection is recorded (and an expired hold released); nothing below
  -- can fail once the first XADD has checked the stream's type.
  local rref = j_reject(KEYS[7], id, status, fromId, toId, moved, '', currency, metadata, now,
    by, kind, holdId, '', amount)
  if expiredNow then
    h_settled(KEYS[9], KEYS[10], seq, 'e', expires, c, held)
    h_counts_write(KEYS[11], currency, c)
    a_post_all(KEYS[4], fa)
    a_post_all(KEYS[5], ta)
  end
  redis.call('HSET', KEYS[2], id, rref)
  f_mark(KEYS[1], fmt)
  return { status, id, currency, moved }
end

if kind == {{K_POST}} then
  fa[{{A_DEBITS}}] = u_add(fa[{{A_DEBITS}}], moved)
  ta[{{A_CREDITS}}] = u_add(ta[{{A_CREDITS}}], moved)
  -- The hold reserved room for this (decide.lua counts open holds): a sum past the maximum
  -- means the stored state is corrupt.
  if u_cmp(fa[{{A_DEBITS}}], '{{AMOUNT_MAX}}') > 0
    or u_cmp(ta[{{A_CREDITS}}], '{{AMOUNT_MAX}}') > 0 then
    return redis.error_reply('ERR corrupt ledger: posting hold ' .. seq .. ' overflows')
  end
end
local fromBalance = s_diff(fa[{{A_CREDITS}}], fa[{{A_DEBITS}}])
local toBalance = s_diff(ta[{{A_CREDITS}}], ta[{{A_DEBITS}}])

-- After this point the settlement must succeed: everything was read and checked above, and the
-- first write (XADD) checks the journal's type and that seqs only grow.
local newSeq = j_commit(KEYS[6], id, fa, ta, moved, metadata, now, by, fromBalance, toBalance,
  kind, holdId, '', amount)
local value = 'v'
if kind == {{K_POST}} then value = 'p' .. moved end
h_settled(KEYS[9], KEYS[10], seq, value, expires, c, held)
h_counts_write(KEYS[11], currency, c)
a_post_all(KEYS[4], fa)
a_post_all(KEYS[5], ta)
redis.call('HSET', KEYS[2], id, newSeq)
f_mark(KEYS[1], fmt)
return { {{S_OK}}, id, currency, newSeq, fromBalance, toBalance, moved }
