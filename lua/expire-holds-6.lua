#!lua flags=
--[[
expire-holds: release holds whose expiry has passed, once each, oldest first as the caller
lists them (it reads the expiry index, then the holds' accounts, and calls this with their
keys). A hold that is no longer open, not yet expired, or listed with other accounts' keys is
skipped and left as it is: calling again, or twice at once, releases nothing twice.

KEYS[1] meta        ledger hash: fmt (data-format version)
KEYS[2] journal     stream of committed records, stream id `0-<seq>`
KEYS[3] accountIds  hash: account number -> account id
KEYS[4] state       hash: a hold's seq -> its state (includes/holds.lua)
KEYS[5] expiries    sorted set: open holds with a timeout, by expiry
KEYS[6] holdStats   hash: open holds per currency
KEYS[7..] the holds' accounts, each once; holds refer to them by index

ARGV[1] tag    echoed (the caller's call id)
ARGV[2] now    ms since the epoch (time comes from the caller)
ARGV[3] count  holds listed, 1 .. HOLDS_EXPIRE_BATCH_MAX
ARGV[4..] 3 values per hold: its seq, the KEYS indexes of its debit and credit accounts

Returns { OK, tag, released, skipped }: released lists { seq, expiresAt, amount, currency } of
each hold released now; skipped counts the others. { FORMAT_UNSUPPORTED, tag } /
{ INVALID_ARGUMENT, tag }: nothing written.
]]

--- @include journal
--- @include holds

local tag, now, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, tag } end
if not count or count < 1 or count > {{L_HOLDS_EXPIRE_BATCH_MAX}} or #ARGV ~= 3 + 3 * count
  or not string.find(now, '^%d+$') then
  return { {{S_INVALID_ARGUMENT}}, tag }
end

-- Tables keyed by KEYS index are also listed in first-seen order, so writes happen in an order
-- fixed by the arguments (determinism; never `pairs` order).
local accounts, accountOrder, counts, countOrder, seen = {}, {}, {}, {}, {}
local released, seqs, skipped = {}, {}, 0

local function account(k)
  local a = accounts[k]
  if a then return a end
  a = a_read(KEYS[k])
  a.key = KEYS[k]
  accounts[k] = a
  accountOrder[#accountOrder + 1] = a
  return a
end

local listed = {}
for i = 1, count do
  local b = 3 + 3 * (i - 1)
  local seq, fk, tk = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  if not string.find(seq, '^%d+$') or not (fk and tk and KEYS[fk] and KEYS[tk])
    or fk < 7 or tk < 7 then
    return { {{S_INVALID_ARGUMENT}}, tag }
  end
  listed[i] = seq
end
-- Every listed hold's state in one read (a settled hold has one), and the index's type, both
-- before any write: a hold with no state and an expiry is in the index (includes/holds.lua).
local states = redis.call('HMGET', KEYS[4], unpack(listed))
redis.call('ZCARD', KEYS[5])

for i = 1, count do
  local b = 3 + 3 * (i - 1)
  local seq, fk, tk = listed[i], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local open = not seen[seq] and not states[i]
  seen[seq] = true
  local r = open and redis.call('XRANGE', KEYS[2], '0-' .. seq, '0-' .. seq)[1]
  r = r and r[2]
  local expires = r and r[{{J_EXPIRES_AT}}]
  local fa, ta = account(fk), account(tk)
  if r and j_kind(r) == {{K_HOLD}} and expires ~= '' and u_cmp(now, expires) >= 0
    and fa[{{A_NUMBER}}] == r[{{J_FROM}}] and ta[{{A_NUMBER}}] == r[{{J_TO}}] then
    local amount, currency = r[{{J_AMOUNT}}], r[{{J_CURRENCY}}]
    if not (a_sound(fa) and a_sound(ta)) or not h_release(fa, ta, amount) then
      return redis.error_reply('ERR corrupt ledger: hold ' .. seq .. ' and its accounts disagree')
    end
    fa.dirty, ta.dirty = true, true
    if not counts[currency] then
      counts[currency] = h_counts(KEYS[6], currency)
      countOrder[#countOrder + 1] = currency
    end
    local c = counts[currency]
    c[1] = math.max(c[1] - 1, 0)
    if u_cmp(c[2], amount) >= 0 then c[2] = u_sub(c[2], amount) else c[2] = '0' end
    released[#released + 1] = { seq, expires, amount, currency }
    seqs[#seqs + 1] = seq
  else
    skipped = skipped + 1
  end
end
if #seqs == 0 then return { {{S_OK}}, tag, released, skipped } end

-- After this point every listed hold is decided and nothing below can fail: every key written
-- was read above with its type checked (the state hash by HMGET, the index by ZCARD).
local expired = {}
for _, seq in ipairs(seqs) do expired[#expired + 1], expired[#expired + 2] = seq, 'e' end
redis.call('HSET', KEYS[4], unpack(expired))
redis.call('ZREM', KEYS[5], unpack(seqs))
for _, a in ipairs(accountOrder) do
  if a.dirty then a_post_all(a.key, a) end
end
for _, currency in ipairs(countOrder) do h_counts_write(KEYS[6], currency, counts[currency]) end
f_mark(KEYS[1], fmt)
return { {{S_OK}}, tag, released, skipped }
