#!lua flags=
--[[
reverse: move (part of) a committed transfer or post back, idempotently under the reversal's
own id. Reversals of one record add up to at most its amount; the state hash keeps the total
reversed so far under the original's seq (includes/holds.lua).

KEYS[1] meta            ledger hash: fmt (data-format version)
KEYS[2] bucket          the id bucket of the reversal's id
KEYS[3] originalBucket  the id bucket of the original's id
KEYS[4] from            the original's credit account (the reversal debits it), or any key of
                        this ledger if unknown
KEYS[5] to              the original's debit account (the reversal credits it), likewise
KEYS[6] journal         stream of committed records, stream id `0-<seq>`
KEYS[7] rejections      stream of rejected records, stream id `0-<n>`
KEYS[8] accountIds      hash: account number -> account id
KEYS[9] state           hash: a record's seq -> the amount reversed from it so far

ARGV[1] id          the reversal's id
ARGV[2] originalId  the id of the transfer or post to reverse
ARGV[3] amount      canonical decimal 1 .. 2^128-1, or '' (all that is still reversible)
ARGV[4] metadata    canonical JSON object
ARGV[5] now         ms since the epoch (time comes from the caller)
ARGV[6] createdBy   name of the API key that asked
ARGV[7] fromId      the original's credit account id as the caller read it ('' if none)
ARGV[8] toId        the original's debit account id, likewise
ARGV[9] compact     this id's compact form (src/ledger/keys.ts compactId), '' for none
ARGV[10] originalCompact  the original id's compact form, likewise
ARGV[11] originalRef      '', or, when the original's record was archived, its reference as
                          PostgreSQL has it (a seq, or '-<n>' if rejected)
ARGV[12] originalRecord   with originalRef: that record's field/value list as JSON

Returns, the id echoing ARGV[1]:
  { OK, id, currency, seq, fromBalanceAfter, toBalanceAfter, amount }     reversed now
  { EXISTS, id, ref, record, fromId, toId }          decided before (as transfer-9.lua)
  { TRANSFER_NOT_FOUND | NOT_REVERSIBLE | EXCEEDS_REVERSIBLE_AMOUNT | ACCOUNT_CLOSED |
    INSUFFICIENT_FUNDS | BALANCE_OVERFLOW, id, currency, amount }   rejected, recorded
    (amount: what was asked, or what was still reversible when nothing was; '' if unknown)
  { STALE_KEYS, id, fromId, toId }   KEYS[4..5] are not the original's: nothing written
  { ARCHIVED, id, 'self' }     this id was decided, its record archived: nothing written
  { ARCHIVED, id, 'target' }   the original's record was archived and not given: nothing
                               written; call again with it (ARGV[11..12])
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
Precedence: the order of the rejections above.
]]

--- @include journal
--- @include decide

local id, originalId, amount, metadata = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, by, fromId, toId = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local compact, originalCompact = ARGV[9] or '', ARGV[10] or ''
local originalRef, originalRecord = ARGV[11] or '', ARGV[12] or ''

local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, id } end
if #id == 0 or #id > {{L_ID_LENGTH_MAX}} or #originalId == 0
  or #originalId > {{L_ID_LENGTH_MAX}} or (amount ~= '' and (amount == '0' or not u_valid(amount)))
  or #metadata > {{L_METADATA_JSON_BYTES_MAX}} or string.byte(metadata, 1) ~= 123
  or not string.find(now, '^%d+$') or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}} then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local found = t_find(KEYS[2], KEYS[6], KEYS[7], KEYS[8], id, compact)
if found then
  if found[1] == '' then return { {{S_ARCHIVED}}, id, 'self' } end
  return { {{S_EXISTS}}, id, found[1], found[2], found[3], found[4] }
end

local status, seq, currency, reversed, remaining = {{S_OK}}, nil, '', '0', ''
local fa, ta, debits, credits
local ref, target = t_target(KEYS[3], KEYS[6], KEYS[7], originalId, originalCompact,
  originalRef, originalRecord)
if ref == false then return { {{S_ARCHIVED}}, id, 'target' } end
if not ref then
  status, fromId, toId = {{S_TRANSFER_NOT_FOUND}}, '', ''
elseif string.byte(ref, 1) == 45 then
  status, fromId, toId = {{S_NOT_REVERSIBLE}}, '', ''
else
  local record = target
  local kind = j_kind(record)
  seq, currency = ref, record[{{J_CURRENCY}}]
  if kind ~= {{K_TRANSFER}} and kind ~= {{K_POST}} then
    status, fromId, toId = {{S_NOT_REVERSIBLE}}, '', ''
  else
    -- The reversal runs the other way: from the original's `to`, to its `from`. KEYS[4..5]
    -- must be those accounts: their numbers say so without another lookup.
    fa, ta = a_read(KEYS[4]), a_read(KEYS[5])
    if fa[{{A_NUMBER}}] ~= record[{{J_TO}}] or ta[{{A_NUMBER}}] ~= record[{{J_FROM}}] then
      local ids = redis.call('HMGET', KEYS[8], record[{{J_TO}}], record[{{J_FROM}}])
      return { {{S_STALE_KEYS}}, id, ids[1] or '', ids[2] or '' }
    end
    reversed = redis.call('HGET', KEYS[9], seq) or '0'
    if not u_valid(reversed) or u_cmp(reversed, record[{{J_AMOUNT}}]) > 0 then
      return redis.error_reply('ERR corrupt ledger: reversed total of ' .. seq)
    end
    remaining = u_sub(record[{{J_AMOUNT}}], reversed)
    if (amount == '' and remaining == '0') or (amount ~= '' and u_cmp(amount, remaining) > 0) then
      status = {{S_EXCEEDS_REVERSIBLE_AMOUNT}}
    else
      local moving = amount
      if moving == '' then moving = remaining end
      status, debits, credits = t_decide(moving, '', fa, ta, false)
    end
  end
end

local moved = amount
if moved == '' then moved = remaining end

if status ~= {{S_OK}} then
  -- After this point the rejection is recorded; nothing below can fail once the XADD (the
  -- first write, which checks the stream's type) has succeeded.
  local rref = j_reject(KEYS[7], id, status, fromId, toId, moved, '', currency, metadata, now,
    by, {{K_REVERSAL}}, originalId, '', amount)
  redis.call('HSET', KEYS[2], id, rref)
  f_mark(KEYS[1], fmt)
  return { status, id, currency, moved }
end

if not (a_sound(fa) and a_sound(ta)) then
  return redis.error_reply('ERR corrupt ledger: an account lacks lseq or n')
end
local fromBalance = s_diff(fa[{{A_CREDITS}}], debits)
local toBalance = s_diff(credits, ta[{{A_DEBITS}}])
fa[{{A_DEBITS}}], ta[{{A_CREDITS}}] = debits, credits

-- After this point the reversal must succeed: everything was read and checked above, and the
-- first write (XADD) checks the journal's type and that seqs only grow.
local newSeq = j_commit(KEYS[6], id, fa, ta, moved, metadata, now, by, fromBalance, toBalance,
  {{K_REVERSAL}}, originalId, '', amount)
a_post(KEYS[4], fa)
a_post(KEYS[5], ta)
redis.call('HSET', KEYS[9], seq, u_add(reversed, moved))
redis.call('HSET', KEYS[2], id, newSeq)
f_mark(KEYS[1], fmt)
return { {{S_OK}}, id, currency, newSeq, fromBalance, toBalance, moved }
