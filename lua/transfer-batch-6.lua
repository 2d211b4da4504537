#!lua flags=
--[[
transfer-batch: decide a chunk of transfers and holds in order, each exactly as transfer-9.lua
would; with atomic = '1', all or nothing: any item that would not commit leaves everything
unwritten.

KEYS[1] meta        ledger hash: fmt (data-format version)
KEYS[2] journal     stream of committed transfers, stream id `0-<seq>`
KEYS[3] rejections  stream of rejected transfers, stream id `0-<rejection number>`
KEYS[4] accountIds  hash: account number -> account id (read only for replays)
KEYS[5] expiries    sorted set: open holds with a timeout, by expiry (includes/holds.lua)
KEYS[6] holdStats   hash: open holds per currency
KEYS[7..] the items' accounts and id buckets, each once; items refer to them by index

ARGV[1] tag        echoed: the first item's id
ARGV[2] atomic     '1' all or nothing, '0' each item decided on its own
ARGV[3] now        createdAt, milliseconds since the epoch (time comes from the caller)
ARGV[4] createdBy  name of the API key that asked (never a secret)
ARGV[5] count      number of items, 1 .. BATCH_TRANSFERS_MAX (BATCH_ATOMIC_TRANSFERS_MAX if atomic)
ARGV[6..] 12 values per item: id, from, to, amount, currency ('' = the accounts'), metadata,
          hold and expires (as ARGV[9..10] of transfer-9.lua), the KEYS indexes of its
          debit account, credit account and id bucket, and its compact id (ARGV[11] there)

Returns { OK, tag, results } where results has one table per item, in order:
  { OK, accountsCurrency, seq, fromBalanceAfter, toBalanceAfter }        committed now
  { ACCOUNT_NOT_FOUND | ACCOUNT_CLOSED | CURRENCY_MISMATCH | INSUFFICIENT_FUNDS |
    BALANCE_OVERFLOW, accountsCurrency }                                  rejected, recorded
  { EXISTS, ref, { field, value, ... }, fromId, toId }    decided before (see transfer-9.lua)
  { ARCHIVED }                                            decided before, record archived
When every item was decided before (a replay of the whole batch) nothing is written and every
result is EXISTS or ARCHIVED: the caller compares each with its request.
With atomic = '1' nothing is written unless every item commits now or every item was decided
before; otherwise it returns the first item that spoils it (1-based index), writing nothing:
  { ACCOUNT_NOT_FOUND | ..., tag, index, accountsCurrency }               it would be rejected
  { EXISTS, tag, index, ref, record, fromId, toId }    a decided id among new ones
  { ARCHIVED, tag, index }                             the same, its record archived
  { FORMAT_UNSUPPORTED, tag } / { INVALID_ARGUMENT, tag }                 nothing written
]]

--- @include journal
--- @include decide
--- @include holds

local tag, atomic, now, by, count = ARGV[1], ARGV[2] == '1', ARGV[3], ARGV[4], tonumber(ARGV[5])

local fmt = redis.call('HGET', KEYS[1], 'fmt')
if not f_ok(fmt) then return { {{S_FORMAT_UNSUPPORTED}}, tag } end
if not count or count < 1 or count > {{L_BATCH_TRANSFERS_MAX}} or #ARGV ~= 5 + 12 * count
  or (atomic and count > {{L_BATCH_ATOMIC_TRANSFERS_MAX}})
  or not string.find(now, '^%d+$') or #by == 0 or #by > {{L_KEY_NAME_LENGTH_MAX}} then
  return { {{S_INVALID_ARGUMENT}}, tag }
end

-- Tables keyed by KEYS index are also listed in first-seen order, so writes happen in an order
-- fixed by the arguments (determinism; never `pairs` order).
local accounts, accountOrder, seen, results, kept = {}, {}, {}, {}, 0
local commits, rejections = 0, 0
local counts, countOrder = {}, {} -- open-hold counters by currency, read before any write

-- An account's state (an a_read reply), read once per chunk and updated in memory as items
-- commit; `key` and `dirty` ride along in the same table.
local function account(k)
  local a = accounts[k]
  if a then return a end
  a = a_read(KEYS[k])
  if a[{{A_CURRENCY}}] and not a_sound(a) then
    error('corrupt ledger: account ' .. KEYS[k] .. ' lacks lseq or n')
  end
  a.key = KEYS[k]
  accounts[k] = a
  accountOrder[#accountOrder + 1] = a
  return a
end

local hasExpiry = false
for i = 1, count do
  local b = 5 + 12 * (i - 1)
  local id, from, to, amount = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local currency, metadata, hold, expires = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
  local fk, tk, bk = tonumber(ARGV[b + 9]), tonumber(ARGV[b + 10]), tonumber(ARGV[b + 11])
  if seen[id] or not t_args_ok(id, from, to, amount, currency, metadata)
    or not h_args_ok(hold, expires, now)
    or not (fk and tk and bk and KEYS[fk] and KEYS[tk] and KEYS[bk]) or fk < 7 or tk < 7
    or bk < 7 then
    return { {{S_INVALID_ARGUMENT}}, tag }
  end
  seen[id] = true
  local found = t_find(KEYS[bk], KEYS[2], KEYS[3], KEYS[4], id, ARGV[b + 12])
  if found then
    if found[1] == '' then
      results[i] = { {{S_ARCHIVED}} }
      if atomic and kept > 0 then return { {{S_ARCHIVED}}, tag, i } end
    else
      results[i] = { {{S_EXISTS}}, found[1], found[2], found[3], found[4] }
      if atomic and kept > 0 then
        return { {{S_EXISTS}}, tag, i, found[1], found[2], found[3], found[4] }
      end
    end
  else
    if atomic and i > 1 and kept == 0 then -- the items before were all decided already
      local r = results[1]
      return { r[1], tag, 1, r[2], r[3], r[4], r[5] }
    end
    local fa, ta = account(fk), account(tk)
    local status, debits, credits = t_decide(amount, currency, fa, ta, hold ~= '')
    local accountsCurrency = fa[{{A_CURRENCY}}] or ta[{{A_CURRENCY}}] or ''
    if status == {{S_OK}} and hold ~= '' then
      fa[{{A_DEBITS_PENDING}}], ta[{{A_CREDITS_PENDING}}] = debits, credits
      fa.dirty, ta.dirty, fa.pending, ta.pending = true, true, true, true
      results[i] = { status, accountsCurrency, '', s_diff(fa[{{A_CREDITS}}], fa[{{A_DEBITS}}]),
        s_diff(ta[{{A_CREDITS}}], ta[{{A_DEBITS}}]) }
      if not counts[accountsCurrency] then
        counts[accountsCurrency] = h_counts(KEYS[6], accountsCurrency)
        countOrder[#countOrder + 1] = accountsCurrency
      end
      local c = counts[accountsCurrency]
      c[1], c[2] = c[1] + 1, u_add(c[2], amount)
      if expires ~= '' then hasExpiry = true end
      commits = commits + 1
    elseif status == {{S_OK}} then
      fa[{{A_DEBITS}}], ta[{{A_CREDITS}}], fa.dirty, ta.dirty = debits, credits, true, true
      results[i] = { status, accountsCurrency, '', s_diff(fa[{{A_CREDITS}}], debits),
        s_diff(credits, ta[{{A_DEBITS}}]) }
      commits = commits + 1
    else
      if atomic then return { status, tag, i, accountsCurrency } end
      results[i] = { status, accountsCurrency }
      rejections = rejections + 1
    end
    kept = kept + 1
  end
end
if kept == 0 then return { {{S_OK}}, tag, results } end

-- Every write below appends to a stream or sets hashes whose types the reads above checked. A
-- stream's type, and that its ids are `0-<n>` (so XADD 0-* cannot fail), are checked now.
for _, s in ipairs({ { KEYS[2], commits }, { KEYS[3], rejections } }) do
  local bad = s[2] > 0 and j_bad_id(s[1])
  if bad then
    return redis.error_reply('ERR corrupt ledger: stream id ' .. bad .. ' in ' .. s[1])
  end
end
if hasExpiry then redis.call('ZCARD', KEYS[5]) end -- its type, before the first write

-- After this point every item's outcome is decided and nothing below can fail.
local buckets, bucketOrder = {}, {}
for i = 1, count do
  local r = results[i]
  local b = 5 + 12 * (i - 1)
  local id, hold, expires = ARGV[b + 1], ARGV[b + 7], ARGV[b + 8]
  local bk = tonumber(ARGV[b + 11])
  -- An item decided before (its record in Redis, or archived) writes nothing.
  local new = r[1] ~= {{S_EXISTS}} and r[1] ~= {{S_ARCHIVED}}
  local ref
  if r[1] == {{S_OK}} and hold ~= '' then
    local fa, ta = accounts[tonumber(ARGV[b + 9])], accounts[tonumber(ARGV[b + 10])]
    ref = j_commit(KEYS[2], id, fa, ta, ARGV[b + 4], ARGV[b + 6], now, by, r[4], r[5],
      {{K_HOLD}}, '', expires, '')
    if expires ~= '' then redis.call('ZADD', KEYS[5], expires, ref) end
    r[3] = ref
  elseif r[1] == {{S_OK}} then
    local fa, ta = accounts[tonumber(ARGV[b + 9])], accounts[tonumber(ARGV[b + 10])]
    ref = j_commit(KEYS[2], id, fa, ta, ARGV[b + 4], ARGV[b + 6], now, by, r[4], r[5])
    r[3] = ref
  elseif new and hold ~= '' then
    ref = j_reject(KEYS[3], id, r[1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], r[2],
      ARGV[b + 6], now, by, {{K_HOLD}}, '', hold, '')
  elseif new then
    ref = j_reject(KEYS[3], id, r[1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], r[2],
      ARGV[b + 6], now, by)
  end
  if ref then
    local list = buckets[bk]
    if not list then
      list = {}
      buckets[bk], bucketOrder[#bucketOrder + 1] = list, bk
    end
    list[#list + 1], list[#list + 2] = id, ref
  end
end
for _, k in ipairs(bucketOrder) do redis.call('HSET', KEYS[k], unpack(buckets[k])) end
for _, a in ipairs(accountOrder) do
  if a.pending then
    a_post_all(a.key, a)
  elseif a.dirty then
    a_post(a.key, a)
  end
end
for _, currency in ipairs(countOrder) do h_counts_write(KEYS[6], currency, counts[currency]) end
f_mark(KEYS[1], fmt)
return { {{S_OK}}, tag, results }
