#!lua flags=
--[[
lock: a lease that at most one holder has at a time, for work that one instance should do
rather than all (the hold sweeper; later the archiver and the change-data publisher). The lock
saves duplicate work only: what it guards must be correct when done twice or at once.
A holder is known by its random token; only the holder renews or releases it (compare, then
act, atomically), so a holder paused past the lease cannot release or extend its successor's.

KEYS[1] lock   string: the holder's token, expiring after the lease

ARGV[1] token  the caller's random token (echoed)
ARGV[2] mode   'take': renew the lease if the caller holds it, else take it if free;
               'release': delete it if the caller holds it
ARGV[3] ttl    the lease in ms, 1 .. 86400000 ('take' only)

Returns { token, 1 } when the caller holds the lock after 'take' (or released it), else
{ token, 0 }; an error for bad arguments, with nothing written.
]]

local token, mode, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
if #token < 16 or #token > 64 or (mode ~= 'take' and mode ~= 'release')
  or (mode == 'take' and (not ttl or ttl < 1 or ttl > 86400000 or ttl % 1 ~= 0)) then
  return redis.error_reply('ERR lock: bad arguments')
end
local holder = redis.call('GET', KEYS[1])
if mode == 'release' then
  if holder ~= token then return { token, 0 } end
  -- After this point the holder's lock is released.
  redis.call('DEL', KEYS[1])
  return { token, 1 }
end
if holder == token then
  -- After this point the holder's lease is renewed.
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return { token, 1 }
end
if holder then return { token, 0 } end
-- After this point the lock is the caller's.
redis.call('SET', KEYS[1], token, 'PX', ARGV[3])
return { token, 1 }
