-- Holds (include: holds): the one home, in Lua, of a hold's life: opened by transfer-9.lua or
-- transfer-batch-6.lua, settled once by a post or void (settle-11.lua) or by its expiry
-- (expire-holds-6.lua, or a post or void that finds it expired).
-- A hold's state is a field of the state hash named by the hold's seq: absent while pending,
-- 'p<amount>' once posted, 'v' voided, 'e' expired. The same hash holds, under a transfer's seq,
-- the total reversed from it so far (reverse-9.lua). The open-hold counters are `n:<currency>`
-- (a count) and `a:<currency>` (an amount) of the hold-stats hash; the expiry index is a sorted
-- set of the seqs of open holds with a timeout, scored by expiry (ms).
--- @include u128
--- @include account
--- @include journal

-- A hold's arguments: hold is '' (a transfer) or its timeout in seconds ('0' = none, else
-- 1 .. HOLD_TIMEOUT_SECONDS_MAX, canonical), and expires its expiry in ms, exactly now +
-- timeout when it has one. Times are below 2^53 ms, so Lua numbers hold them exactly (they are
-- not money).
local function h_args_ok(hold, expires, now)
  if hold == '' then return expires == '' end
  if #hold > 8 or not string.find(hold, '^%d+$') then return false end
  if hold == '0' then return expires == '' end
  local seconds = tonumber(hold)
  if string.byte(hold, 1) == 48 or seconds > {{L_HOLD_TIMEOUT_SECONDS_MAX}} then return false end
  return #expires <= 15 and string.find(expires, '^%d+$') ~= nil and #now <= 15
    and tonumber(expires) == tonumber(now) + seconds * 1000
end

-- The open-hold counters of a currency, read before any write (which checks the hash's type):
-- { count, amount }. A count of holds is far below 2^53, so a Lua number holds it exactly.
local function h_counts(stats, currency)
  local c = redis.call('HMGET', stats, 'n:' .. currency, 'a:' .. currency)
  return { tonumber(c[1] or '0') or 0, c[2] or '0' }
end

local function h_counts_write(stats, currency, c)
  redis.call('HSET', stats, 'n:' .. currency, string.format('%d', c[1]), 'a:' .. currency, c[2])
end

-- Opens a hold: fa, ta are a_read replies, dp and cp their new pending sums. Returns its seq.
local function h_open(journal, expiries, stats, id, fa, ta, dp, cp, amount, metadata, now, by,
  expires)
  local currency = fa[{{A_CURRENCY}}]
  local c = h_counts(stats, currency)
  if expires ~= '' then redis.call('ZCARD', expiries) end -- its type, before the first write
  fa[{{A_DEBITS_PENDING}}], ta[{{A_CREDITS_PENDING}}] = dp, cp
  -- After this point the hold is written; nothing below can fail (types checked above).
  local seq = j_commit(journal, id, fa, ta, amount, metadata, now, by,
    s_diff(fa[{{A_CREDITS}}], fa[{{A_DEBITS}}]), s_diff(ta[{{A_CREDITS}}], ta[{{A_DEBITS}}]),
    {{K_HOLD}}, '', expires, '')
  if expires ~= '' then redis.call('ZADD', expiries, expires, seq) end
  c[1], c[2] = c[1] + 1, u_add(c[2], amount)
  h_counts_write(stats, currency, c)
  return seq
end

-- Releases a hold's reservation in memory (fa, ta: a_read replies); false, changing nothing,
-- when they do not have that much pending (corruption, found before any write).
local function h_release(fa, ta, amount)
  local fdp, tcp = fa[{{A_DEBITS_PENDING}}] or '0', ta[{{A_CREDITS_PENDING}}] or '0'
  if u_cmp(fdp, amount) < 0 or u_cmp(tcp, amount) < 0 then return false end
  fa[{{A_DEBITS_PENDING}}], ta[{{A_CREDITS_PENDING}}] = u_sub(fdp, amount), u_sub(tcp, amount)
  return true
end

-- After a hold settles (state 'p<amount>', 'v' or 'e'): its state, its expiry entry. The
-- counters (c, read with h_counts before any write) are the caller's to write: a sweep writes
-- each currency's once.
local function h_settled(state, expiries, seq, value, expires, c, amount)
  redis.call('HSET', state, seq, value)
  if expires ~= '' then redis.call('ZREM', expiries, seq) end
  -- Counters only inform (metrics): a drifted one clamps at zero rather than failing a write.
  c[1] = math.max(c[1] - 1, 0)
  if u_cmp(c[2], amount) >= 0 then c[2] = u_sub(c[2], amount) else c[2] = '0' end
end
