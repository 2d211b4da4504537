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
(its journal record, accounts by number, their ids in fromId/toId) or '-<n>' for a rejected one
(accounts by id); { tag, '' } when the id is not decided. Records: includes/journal.lua.
]]

--- @include journal

local found = t_find(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
if not found then return { ARGV[1], '' } end
return { ARGV[1], found[1], found[2], found[3], found[4] }
