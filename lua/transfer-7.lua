#!lua flags=
--[[
transfer: decide one transfer, idempotently under its id, and apply it if it commits.

KEYS[1] meta        ledger hash: fmt (data-format version)
KEYS[2] bucket      the id bucket of this transfer id (hash: transfer id -> record reference)
KEYS[3] from        debit account (hash)
KEYS[4] to          credit account (hash)
KEYS[5] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[6] rejections  stream of rejected transfers, stream id `0-<rejection number>`
KEYS[7] accountIds  hash: account number -> account id (read only when replaying)

ARGV[1] id        transfer id
ARGV[2] from      debit account id
ARGV[3] to        credit account id
ARGV[4] amount    canonical decimal, 1 .. 2^128-1
ARGV[5] currency  as the client gave it, or '' when omitted (means: the accounts' currency)
ARGV[6] metadata  canonical JSON object (sorted keys)
ARGV[7] now       createdAt, milliseconds since the epoch (time comes from the caller)
ARGV[8] createdBy name of the API key that asked (never a secret)

Returns { status, id, ... }; the id echoes ARGV[1], so the caller can tell its own reply from
another command's on a connection whose replies were lost or shifted:
  { OK, id, accountsCurrency, seq, fromBalanceAfter, toBalanceAfter }   committed now
  { EXISTS, id, ref, { field, value, ... }, fromId, toId }   decided before: the stored record
                       (ref: its seq if committed, then accounts are by number in the record
                       and by id in fromId/toId; '-<n>' if rejected; fields: see keys.ts)
  { ACCOUNT_NOT_FOUND | CURRENCY_MISMATCH | INSUFFICIENT_FUNDS | BALANCE_OVERFLOW,
    id, accountsCurrency }                        rejected now, and recorded
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
A key of the wrong type makes a read, or the first write (XADD), fail before anything changes.
Calls: 4 reads, then 4 writes on commit (the fewest that keep balances, entries and the id).
]]

--- @include u128
--- @include decide
--- @include record

local id, from, to, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local currency, metadata, now, by = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local fmt = redis.call('HGET', KEYS[1], 'fmt')
if fmt and fmt ~= '{{FORMAT_VERSION}}' then return { {{S_FORMAT_UNSUPPORTED}}, id } end

-- Cheap shape checks: the HTTP layer validated every field; these guard other callers.
if #id == 0 or #id > {{L_ID_LENGTH_MAX}} or #from == 0 or #from > {{L_ID_LENGTH_MAX}}
  or #to == 0 or #to > {{L_ID_LENGTH_MAX}} or from == to
  or #currency > {{L_CURRENCY_LENGTH_MAX}} or #metadata > {{L_METADATA_JSON_BYTES_MAX}}
  or string.byte(metadata, 1) ~= 123 or not string.find(now, '^%d+$')
  or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}}
  or amount == '0' or not u_valid(amount) then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local ref = redis.call('HGET', KEYS[2], id)
if ref then
  local record = t_record(KEYS[5], KEYS[6], ref)
  if string.byte(ref, 1) == 45 then return { {{S_EXISTS}}, id, ref, record } end
  local ids = redis.call('HMGET', KEYS[7], record[4], record[6]) -- the f and t fields
  return { {{S_EXISTS}}, id, ref, record, ids[1], ids[2] }
end

local fa = redis.call('HMGET', KEYS[3], 'cur', 'dr', 'cr', 'od', 'lseq', 'n')
local ta = redis.call('HMGET', KEYS[4], 'cur', 'dr', 'cr', 'lseq', 'n')
local accountsCurrency = fa[1] or ta[1] or ''
local status, fromDebits, toCredits = t_decide(amount, currency, fa[1], fa[2], fa[3], fa[4],
  ta[1], ta[3])

if status ~= {{S_OK}} then
  -- After this point the rejection is recorded; nothing below can fail once the XADD (the
  -- first write, which checks the stream's type) has succeeded.
  local rid = redis.call('XADD', KEYS[6], '0-*', 'i', id, 's', status, 'f', from, 't', to,
    'a', amount, 'c', currency, 'k', accountsCurrency, 'm', metadata, 'w', now, 'b', by)
  redis.call('HSET', KEYS[2], id, '-' .. string.sub(rid, 3))
  if not fmt then redis.call('HSET', KEYS[1], 'fmt', '{{FORMAT_VERSION}}') end
  return { status, id, accountsCurrency }
end

-- Stored counters are checked now, so a corrupt account fails here, before any write.
if not (fa[5] and ta[4] and fa[6] and ta[5]) or not string.find(fa[5] .. ta[4], '^%d+$') then
  return redis.error_reply('ERR corrupt ledger: an account lacks lseq or n')
end
local fromBalance = s_diff(fa[3], fromDebits)
local toBalance = s_diff(toCredits, ta[2])

-- After this point the transfer must succeed: inputs, values and the hashes' types are checked,
-- and the first write (XADD) checks the journal's type and that seqs only grow.
local jid = redis.call('XADD', KEYS[5], '0-*', 'i', id, 'f', fa[6], 't', ta[5], 'a', amount,
  'k', fa[1], 'm', metadata, 'w', now, 'b', by, 'fb', fromBalance, 'tb', toBalance,
  'pf', fa[5], 'pt', ta[4])
local seq = string.sub(jid, 3)
redis.call('HSET', KEYS[3], 'dr', fromDebits, 'lseq', seq)
redis.call('HSET', KEYS[4], 'cr', toCredits, 'lseq', seq)
redis.call('HSET', KEYS[2], id, seq)
return { status, id, fa[1], seq, fromBalance, toBalance }
