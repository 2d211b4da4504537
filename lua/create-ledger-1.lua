#!lua flags=
--[[
create-ledger: record a ledger's existence, once, in its own meta hash (the slot of its data),
so that telling whether a ledger exists touches only that ledger's slot and no shared key.
A second create answers with the record as the first one wrote it; the caller compares fields.

KEYS[1] meta     the ledger's hash: ln (its name), lm (metadata JSON), lc (createdAt, ms)

ARGV[1] name      the ledger's name (echoed)
ARGV[2] metadata  canonical metadata JSON (src/ledger/records.ts canonicalMetadata)
ARGV[3] now       createdAt, ms since the epoch (time comes from the caller)

Returns { OK, name, metadata, createdAt } recorded now, { EXISTS, name, metadata, createdAt }
recorded before, or { INVALID_ARGUMENT, name }.
]]

local name, metadata, now = ARGV[1], ARGV[2], ARGV[3]
if not string.find(name, '^[A-Za-z0-9_.-]+$') or #name > {{L_LEDGER_NAME_LENGTH_MAX}}
  or #metadata > {{L_METADATA_JSON_BYTES_MAX}} or not string.find(now, '^%d+$') then
  return { {{S_INVALID_ARGUMENT}}, name }
end
local stored = redis.call('HMGET', KEYS[1], 'ln', 'lm', 'lc')
if stored[1] then return { {{S_EXISTS}}, name, stored[2], stored[3] } end

-- After this point nothing can fail: the hash's type was read above.
redis.call('HSET', KEYS[1], 'ln', name, 'lm', metadata, 'lc', now)
return { {{S_OK}}, name, metadata, now }
