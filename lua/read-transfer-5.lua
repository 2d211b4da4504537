#!lua flags=no-writes
--[[
read-transfer: one decided transfer's record, with the caller's tag echoed back (see
read-hash-1.lua for why).

KEYS[1] bucket      the id bucket of this transfer id (hash: transfer id -> record reference)
KEYS[2] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[3] rejections  stream of rejected transfers
KEYS[4] accountIds  hash: account number -> account id
KEYS[5] state       hash: a record's seq -> a hold's state or a transfer's reversed total

ARGV[1] tag      echoed: the transfer id
ARGV[2] compact  the id's compact form (src/ledger/keys.ts compactId), '' for none

Returns { tag, ref, { field, value, ... }, fromId, toId, state }: ref is the seq of a committed
record (its journal record, accounts by number, their ids in fromId/toId, and its state, ''
when none: includes/holds.lua) or '-<n>' for a rejected one (accounts by id); { tag, '' } when
the id is not decided; { tag, '', 'archived' } when its record was archived (in PostgreSQL:
src/archive/). Records: includes/journal.lua.
]]

--- @include journal

local found = t_find(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2] or '')
if not found then return { ARGV[1], '' } end
if found[1] == '' then return { ARGV[1], '', 'archived' } end
local state = ''
if string.byte(found[1], 1) ~= 45 then state = redis.call('HGET', KEYS[5], found[1]) or '' end
return { ARGV[1], found[1], found[2], found[3] or '', found[4] or '', state }
