#!lua flags=no-writes
--[[
read-hash: one account or transfer record, with the caller's tag echoed back.

A plain HGETALL would do, but its reply carries nothing of the request: on a connection whose
replies were lost or shifted, another key's hash would be read as this one. The echo lets the
caller reject a reply that is not its own. Read-only (no-writes): runs on replicas too.

KEYS[1] hash   the account or transfer key

ARGV[1] tag    echoed: the id being read

Returns { tag, { field, value, ... } } (an empty list when the key does not exist).
A key of the wrong type fails with an error.
]]
return { ARGV[1], redis.call('HGETALL', KEYS[1]) }
