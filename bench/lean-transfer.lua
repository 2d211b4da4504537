#!lua flags=
--[[
lean-transfer: the bench's baseline, the least a transfer can do in Redis: claim the id, move
the amount. No u128, no validation, no records, no entries: it measures what Node and Redis
can physically do per request, so the product's cost shows as a ratio against it.

KEYS[1] idempotency hash (field: transfer id)
KEYS[2] from balance hash
KEYS[3] to balance hash
ARGV[1] transfer id
ARGV[2] amount, decimal string (HINCRBY parses it; the bench sends small integers)

Returns 1 when applied, 0 when the id was seen before (nothing changes then).
]]
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'balance', '-' .. ARGV[2])
redis.call('HINCRBY', KEYS[3], 'balance', ARGV[2])
return 1
