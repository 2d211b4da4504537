-- Reading a decided transfer's record (include: record).
-- The stored record of a decided id, from its value in an id bucket: a seq (committed, in the
-- journal) or a negated rejection number (in the rejections stream). Returns its fields.
local function t_record(journal, rejections, ref)
  local key, n = journal, ref
  if string.byte(ref, 1) == 45 then key, n = rejections, string.sub(ref, 2) end
  local found = redis.call('XRANGE', key, '0-' .. n, '0-' .. n)
  if not found[1] then error('corrupt ledger: no record ' .. ref) end
  return found[1][2]
end
