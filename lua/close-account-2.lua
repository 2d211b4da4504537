#!lua flags=
--[[
close-account: close an account, once: from then on no new transfer, hold or reversal touches
it (decide.lua: ACCOUNT_CLOSED), while holds already open on it still settle. Closing a closed
account changes nothing and answers as the first close did.

KEYS[1] meta     ledger hash: fmt (data-format version)
KEYS[2] account  the account's hash

ARGV[1] id    the account id (echoed)
ARGV[2] now   closedAt, ms since the epoch (time comes from the caller)

Returns { OK, id, account } closed now, { EXISTS, id, account } closed before (account: its
fields, HGETALL), { ACCOUNT_NOT_FOUND, id } (nothing written, not recorded),
{ FORMAT_UNSUPPORTED, id } / { INVALID_ARGUMENT, id }.
]]

--- @include format

local id, now = ARGV[1], ARGV[2]
local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, id } end
if #id == 0 or #id > {{L_ID_LENGTH_MAX}} or not string.find(now, '^%d+$') then
  return { {{S_INVALID_ARGUMENT}}, id }
end
local account = redis.call('HGETALL', KEYS[2])
if #account == 0 then return { {{S_ACCOUNT_NOT_FOUND}}, id } end
if redis.call('HEXISTS', KEYS[2], 'cl') == 1 then return { {{S_EXISTS}}, id, account } end

-- After this point the account is closed; nothing below can fail (its type was read above).
redis.call('HSET', KEYS[2], 'cl', now)
f_mark(KEYS[1], fmt)
account[#account + 1], account[#account + 2] = 'cl', now
return { {{S_OK}}, id, account }
