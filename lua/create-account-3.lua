#!lua flags=
--[[
create-account: create one account under its id, idempotently.

KEYS[1] meta        ledger hash: fmt (data-format version), an (last account number)
KEYS[2] account     the account's hash
KEYS[3] accountIds  hash: account number -> account id

ARGV[1] id              account id
ARGV[2] currency        1-16 of A-Z 0-9 _
ARGV[3] overdraftLimit  canonical decimal 0 .. 2^128-1, or 'unlimited'
ARGV[4] metadata        canonical JSON object (sorted keys)
ARGV[5] now             createdAt, milliseconds since the epoch (time comes from the caller)
ARGV[6] createdBy       name of the API key that asked (never a secret)

Returns { status, id, ... } (the id echoes ARGV[1]; see transfer-9.lua):
  { OK, id }                                  created now
  { EXISTS, id, { field, value, ... } }       the id exists: the stored account, for comparison
  { FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }   nothing written
A key of the wrong type makes a read fail with an error before any write.

The account's fields are ACCOUNT_FIELDS of src/ledger/records.ts, written by a_create
(includes/account.lua); its number n names it in journal records (shorter than an id).
]]

--- @include u128
--- @include account
--- @include format

local id, currency, overdraft, metadata, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local by = ARGV[6]

local fmt, last = unpack(redis.call('HMGET', KEYS[1], 'fmt', 'an'))
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, id } end

if #id == 0 or #id > {{L_ID_LENGTH_MAX}} or #currency == 0
  or #currency > {{L_CURRENCY_LENGTH_MAX}} or #metadata > {{L_METADATA_JSON_BYTES_MAX}}
  or string.byte(metadata, 1) ~= 123 or not string.find(now, '^%d+$')
  or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}}
  or (overdraft ~= 'unlimited' and not u_valid(overdraft)) then
  return { {{S_INVALID_ARGUMENT}}, id }
end

local account = redis.call('HGETALL', KEYS[2])
if #account > 0 then return { {{S_EXISTS}}, id, account } end

last = last or '0'
if not string.find(last, '^%d+$') or #last > 15 then
  return redis.error_reply('ERR corrupt ledger: account number ' .. last)
end
-- A count of accounts, far below 2^53: exact as a double (not a money value).
local n = string.format('%d', tonumber(last) + 1)
local taken = redis.call('HEXISTS', KEYS[3], n)
if taken == 1 then return redis.error_reply('ERR corrupt ledger: account number reused') end

-- After this point the account is created; nothing below can fail.
a_create(KEYS[2], currency, overdraft, metadata, now, by, n)
redis.call('HSET', KEYS[1], 'fmt', '{{FORMAT_VERSION}}', 'an', n)
redis.call('HSET', KEYS[3], n, id)
return { {{S_OK}}, id }
