-- Accounts (include: account): the one home, in Lua, of how a transfer reads and updates an
-- account hash. The layout is src/ledger/records.ts (ACCOUNT_FIELDS); {{A_*}} are positions in
-- a_read's reply, substituted by the loader from there.

-- The fields a transfer needs, in ACCOUNT_FIELDS order; all nil when the account does not exist.
-- A key of the wrong type makes this fail before any write.
local function a_read(key)
  return redis.call('HMGET', key, 'cur', 'dr', 'cr', 'od', 'lseq', 'n', 'dp', 'cp', 'cl')
end

-- An existing account has the chain head and number that a commit writes into the journal; a
-- missing one is corruption, found before the first write.
-- (HMGET gives false, not nil, for a missing field.)
local function a_sound(a)
  local lseq = a[{{A_LAST_SEQ}}]
  if not lseq or not a[{{A_NUMBER}}] then return false end
  return string.find(lseq, '^%d+$') ~= nil
end

-- After a commit: the account's totals and the head of its entries chain.
local function a_post(key, a)
  redis.call('HSET', key, 'dr', a[{{A_DEBITS}}], 'cr', a[{{A_CREDITS}}],
    'lseq', a[{{A_LAST_SEQ}}])
end

-- After a hold opens, or settles (post, void, expiry): everything a_post writes, and the sums
-- of open holds.
local function a_post_all(key, a)
  redis.call('HSET', key, 'dr', a[{{A_DEBITS}}], 'cr', a[{{A_CREDITS}}],
    'lseq', a[{{A_LAST_SEQ}}], 'dp', a[{{A_DEBITS_PENDING}}], 'cp', a[{{A_CREDITS_PENDING}}])
end

-- A new account, every field of ACCOUNT_FIELDS but cl (absent while open): no totals, no
-- entries yet (lseq '0'), no holds (dp, cp '0'), and its number n.
local function a_create(key, currency, overdraft, metadata, now, by, n)
  redis.call('HSET', key, 'cur', currency, 'dr', '0', 'cr', '0', 'od', overdraft,
    'm', metadata, 'at', now, 'by', by, 'lseq', '0', 'n', n, 'dp', '0', 'cp', '0')
end
