#!lua flags=
--[[
transfer: decide one transfer or hold, idempotently under its id, and apply it if it commits.
A hold reserves the amount (pending debits of `from`, pending credits of `to`) and moves no
posted money; settle-11.lua posts or voids it, expire-holds-6.lua releases it when it expires.

KEYS[1] meta        ledger hash: fmt (data-format version)
KEYS[2] bucket      the id bucket of this transfer id (hash: transfer id -> record reference)
KEYS[3] from        debit account (hash)
KEYS[4] to          credit account (hash)
KEYS[5] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[6] rejections  stream of rejected transfers, stream id `0-<rejection number>`
KEYS[7] accountIds  hash: account number -> account id (read only when replaying)
KEYS[8] expiries    sorted set: seq of each open hold with a timeout, scored by its expiry (ms)
KEYS[9] holdStats   hash: open holds per currency, `n:<currency>` count, `a:<currency>` amount

ARGV[1] id        transfer id
ARGV[2] from      debit account id
ARGV[3] to        credit account id
ARGV[4] amount    canonical decimal, 1 .. 2^128-1
ARGV[5] currency  as the client gave it, or '' when omitted (means: the accounts' currency)
ARGV[6] metadata  canonical JSON object (sorted keys)
ARGV[7] now       createdAt, milliseconds since the epoch (time comes from the caller)
ARGV[8] createdBy name of the API key that asked (never a secret)
ARGV[9] hold      '' for a transfer; for a hold, its timeout in seconds ('0' = none)
ARGV[10] expires  a hold's expiry (now + timeout, ms), '' for none or for a transfer
ARGV[11] compact  the id's compact form (src/ledger/keys.ts compactId), '' for none

Returns { status, id, ... }; the id echoes ARGV[1], so the caller can tell its own reply from
another command's on a connection whose replies were lost or shifted:
  { OK, id, accountsCurrency, seq, fromBalanceAfter, toBalanceAfter }   committed now (a
                       hold: the posted balances, which it leaves as they were)
  { EXISTS, id, ref, { field, value, ... }, fromId, toId }   decided before: the stored record
                       (ref: its seq if committed, then accounts are by number in the record
                       and by id in fromId/toId; '-<n>' if rejected; fields: records.ts)
  { ACCOUNT_NOT_FOUND | ACCOUNT_CLOSED | CURRENCY_MISMATCH | INSUFFICIENT_FUNDS |
    BALANCE_OVERFLOW, id, accountsCurrency }      rejected now, and recorded
  { ARCHIVED, id }     decided before, its record archived (in PostgreSQL): nothing written
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
A key of the wrong type makes a read, or the first write (XADD), fail before anything changes.
Calls for a transfer: 4 reads, then 4 writes on commit (the fewest that keep balances,
entries and the id); a hold adds the open-hold counters and its expiry.
]]

--- @include journal
--- @include decide
--- @include holds

local id, from, to, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local currency, metadata, now, by = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local hold, expires, compact = ARGV[9], ARGV[10], ARGV[11] or ''
local isHold = hold ~= ''

local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, id } end

if not t_args_ok(id, from, to, amount, currency, metadata) or not string.find(now, '^%d+$')
  or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}} or not h_args_ok(hold, expires, now) then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local found = t_find(KEYS[2], KEYS[5], KEYS[6], KEYS[7], id, compact)
if found then
  if found[1] == '' then return { {{S_ARCHIVED}}, id } end
  return { {{S_EXISTS}}, id, found[1], found[2], found[3], found[4] }
end

local fa, ta = a_read(KEYS[3]), a_read(KEYS[4])
local accountsCurrency = fa[{{A_CURRENCY}}] or ta[{{A_CURRENCY}}] or ''
local status, fromDebits, toCredits = t_decide(amount, currency, fa, ta, isHold)

if status ~= {{S_OK}} then
  -- After this point the rejection is recorded; nothing below can fail once the XADD (the
  -- first write, which checks the stream's type) has succeeded.
  local ref
  if isHold then
    ref = j_reject(KEYS[6], id, status, from, to, amount, currency, accountsCurrency,
      metadata, now, by, {{K_HOLD}}, '', hold, '')
  else
    ref = j_reject(KEYS[6], id, status, from, to, amount, currency, accountsCurrency,
      metadata, now, by)
  end
  redis.call('HSET', KEYS[2], id, ref)
  f_mark(KEYS[1], fmt)
  return { status, id, accountsCurrency }
end

-- Stored counters are checked now, so a corrupt account fails here, before any write.
if not (a_sound(fa) and a_sound(ta)) then
  return redis.error_reply('ERR corrupt ledger: an account lacks lseq or n')
end
if isHold then
  -- After this point the hold must succeed, as a transfer below: h_open's own reads (the
  -- hold counters, the expiry index's type) come before its first write.
  local seq = h_open(KEYS[5], KEYS[8], KEYS[9], id, fa, ta, fromDebits, toCredits, amount,
    metadata, now, by, expires)
  a_post_all(KEYS[3], fa)
  a_post_all(KEYS[4], ta)
  redis.call('HSET', KEYS[2], id, seq)
  f_mark(KEYS[1], fmt)
  return { status, id, fa[{{A_CURRENCY}}], seq, s_diff(fa[{{A_CREDITS}}], fa[{{A_DEBITS}}]),
    s_diff(ta[{{A_CREDITS}}], ta[{{A_DEBITS}}]) }
end
local fromBalance = s_diff(fa[{{A_CREDITS}}], fromDebits)
local toBalance = s_diff(toCredits, ta[{{A_DEBITS}}])
fa[{{A_DEBITS}}], ta[{{A_CREDITS}}] = fromDebits, toCredits

-- After this point the transfer must succeed: inputs, values and the hashes' types are checked,
-- and the first write (XADD) checks the journal's type and that seqs only grow.
local seq = j_commit(KEYS[5], id, fa, ta, amount, metadata, now, by, fromBalance, toBalance)
a_post(KEYS[3], fa)
a_post(KEYS[4], ta)
redis.call('HSET', KEYS[2], id, seq)
f_mark(KEYS[1], fmt)
return { status, id, fa[{{A_CURRENCY}}], seq, fromBalance, toBalance }
