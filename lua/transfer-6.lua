#!lua flags=
--[[
transfer: decide one transfer, idempotently under its id, and apply it if it commits.

KEYS[1] meta     ledger hash: fmt (data-format version), seq (last committed seq)
KEYS[2] transfer the transfer's record (hash); exists once the id is decided
KEYS[3] from     debit account (hash)
KEYS[4] to       credit account (hash)
KEYS[5] fromEntries  stream of the debit account's entries
KEYS[6] toEntries    stream of the credit account's entries

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
  { EXISTS, id, { field, value, ... } }           decided before: the stored record
  { ACCOUNT_NOT_FOUND | CURRENCY_MISMATCH | INSUFFICIENT_FUNDS | BALANCE_OVERFLOW,
    id, accountsCurrency }                        rejected now, and recorded
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
A key of the wrong type makes a read fail with an error before any write.

Record fields: s status, f from, t to, a amount, c currency as given, k the accounts' currency
('' when unknown), m metadata, at createdAt, by createdBy; committed ones add q seq, fb/tb
balances after.
]]

--- @include u128

local id, from, to, amount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local currency, metadata, now, by = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

local meta = redis.call('HMGET', KEYS[1], 'fmt', 'seq')
if meta[1] and meta[1] ~= '{{FORMAT_VERSION}}' then return { {{S_FORMAT_UNSUPPORTED}}, id } end

-- Cheap shape checks: the HTTP layer validated every field; these guard other callers.
if #id == 0 or #id > {{L_ID_LENGTH_MAX}} or #from == 0 or #from > {{L_ID_LENGTH_MAX}}
  or #to == 0 or #to > {{L_ID_LENGTH_MAX}} or from == to
  or #currency > {{L_CURRENCY_LENGTH_MAX}} or #metadata > {{L_METADATA_JSON_BYTES_MAX}}
  or string.byte(metadata, 1) ~= 123 or not string.find(now, '^%d+$')
  or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}}
  or amount == '0' or not u_valid(amount) then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local record = redis.call('HGETALL', KEYS[2])
if #record > 0 then return { {{S_EXISTS}}, id, record } end

local fa = redis.call('HMGET', KEYS[3], 'cur', 'dr', 'cr', 'od', 'lseq')
local ta = redis.call('HMGET', KEYS[4], 'cur', 'dr', 'cr', 'lseq')
local accountCurrency = fa[1] or ta[1] or ''

local status = {{S_OK}}
local fromDebits, toCredits
if not fa[1] or not ta[1] then
  status = {{S_ACCOUNT_NOT_FOUND}}
elseif fa[1] ~= ta[1] or (currency ~= '' and currency ~= fa[1]) then
  status = {{S_CURRENCY_MISMATCH}}
else
  fromDebits, toCredits = u_add(fa[2], amount), u_add(ta[3], amount)
  if fa[4] ~= 'unlimited' and u_cmp(fromDebits, u_add(fa[3], fa[4])) > 0 then
    status = {{S_INSUFFICIENT_FUNDS}}
  elseif u_cmp(fromDebits, '{{AMOUNT_MAX}}') > 0 or u_cmp(toCredits, '{{AMOUNT_MAX}}') > 0 then
    status = {{S_BALANCE_OVERFLOW}}
  end
end

if status ~= {{S_OK}} then
  -- After this point the rejection is recorded; nothing below can fail.
  redis.call('HSET', KEYS[2], 's', status, 'f', from, 't', to, 'a', amount, 'c', currency,
    'k', accountCurrency, 'm', metadata, 'at', now, 'by', by)
  if not meta[1] then redis.call('HSET', KEYS[1], 'fmt', '{{FORMAT_VERSION}}') end
  return { status, id, accountCurrency }
end

-- The entry streams are written last, so their types are checked now; balances are computed
-- now too (a corrupt stored total fails here, before any write).
local fromType = redis.call('TYPE', KEYS[5])['ok']
local toType = redis.call('TYPE', KEYS[6])['ok']
if (fromType ~= 'none' and fromType ~= 'stream') or (toType ~= 'none' and toType ~= 'stream') then
  return redis.error_reply('WRONGTYPE the entries of ' .. from .. ' or ' .. to .. ' not a stream')
end
local seqText = meta[2] or '0'
if not string.find(seqText, '^%d+$') then return redis.error_reply('ERR corrupt ledger seq') end
local seq = tonumber(seqText) + 1 -- a count of transfers: far below 2^53, exact as a double
-- Stream ids must grow: an account that saw a later seq than the ledger's means lost metadata.
if tonumber(fa[5]) >= seq or tonumber(ta[4]) >= seq then
  return redis.error_reply('ERR corrupt ledger: seq ' .. seqText .. ' behind an account')
end
seq = string.format('%d', seq)
local fromBalance = s_diff(fa[3], fromDebits)
local toBalance = s_diff(toCredits, ta[2])

-- After this point the transfer must succeed: every input, key type and value is checked.
redis.call('HSET', KEYS[1], 'fmt', '{{FORMAT_VERSION}}', 'seq', seq)
redis.call('HSET', KEYS[3], 'dr', fromDebits, 'lseq', seq)
redis.call('HSET', KEYS[4], 'cr', toCredits, 'lseq', seq)
redis.call('XADD', KEYS[5], seq .. '-0', 't', id, 'a', '-' .. amount, 'b', fromBalance,
  'c', to, 'at', now)
redis.call('XADD', KEYS[6], seq .. '-0', 't', id, 'a', amount, 'b', toBalance, 'c', from,
  'at', now)
redis.call('HSET', KEYS[2], 's', status, 'f', from, 't', to, 'a', amount, 'c', currency,
  'k', accountCurrency, 'm', metadata, 'at', now, 'by', by, 'q', seq, 'fb', fromBalance,
  'tb', toBalance)
return { status, id, accountCurrency, seq, fromBalance, toBalance }
