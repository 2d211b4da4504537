#!lua flags=no-writes
--[[
read-transfer: one decided transfer's record, with the caller's tag echoed back (see
read-hash-1.lua for why).

KEYS[1] bucket      the id bucket of this transfer id (hash: transfer id -> record reference)
KEYS[2] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[3] rejections  stream of rejected transfers
KEYS[4] accountIds  hash: account number -> account id

ARGV[1] tag      echoed: the transfer id

Returns { tag, ref, { field, value, ... }, fromId, toId }: ref is the seq of a committed transfer
(record as written by transfer-7.lua, accounts by number, their ids in fromId/toId) or '-<n>' for
a rejected one (accounts by id); { tag, '' } when the id is not decided.
]]

--- @include record

local ref = redis.call('HGET', KEYS[1], ARGV[1])
if not ref then return { ARGV[1], '' } end
local record = t_record(KEYS[2], KEYS[3], ref)
if string.byte(ref, 1) == 45 then return { ARGV[1], ref, record } end
local ids = redis.call('HMGET', KEYS[4], record[4], record[6])
return { ARGV[1], ref, record, ids[1], ids[2] }
