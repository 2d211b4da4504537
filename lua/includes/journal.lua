-- The transfer records (include: journal): the one home, in Lua, of how a decided transfer is
-- checked, stored and found again. Committed transfers are journal entries (stream id
-- `0-<seq>`), rejected ones rejections entries (`0-<n>`); an id bucket maps each decided id to
-- `<seq>` or `-<n>`. The layout is src/ledger/records.ts (JOURNAL_FIELDS, REJECTION_FIELDS):
-- the XADDs below write the fields in that order (test/lua/contracts.test.ts checks it), and
-- {{J_*}} / {{R_*}} are positions of values in a record as XRANGE returns it.
--- @include u128
--- @include account
--- @include format

-- A transfer's arguments, shape only: the HTTP layer validated every field; this guards other
-- callers cheaply (a character-by-character check costs more than the transfer).
local function t_args_ok(id, from, to, amount, currency, metadata)
  return #id > 0 and #id <= {{L_ID_LENGTH_MAX}} and #from > 0
    and #from <= {{L_ID_LENGTH_MAX}} and #to > 0 and #to <= {{L_ID_LENGTH_MAX}} and from ~= to
    and #currency <= {{L_CURRENCY_LENGTH_MAX}} and #metadata <= {{L_METADATA_JSON_BYTES_MAX}}
    and string.byte(metadata, 1) == 123 and amount ~= '0' and u_valid(amount)
end

-- A journal record's kind code ({{K_*}}): '' for a plain transfer, whose record has no kind
-- field. Checked by name, because a later release may append fields to a transfer's record
-- where other kinds keep theirs (docs/scripts-in-production.md: fields are only appended).
local function j_kind(r)
  if r[{{J_KIND}} - 1] == 'x' then return r[{{J_KIND}}] end
  return ''
end

-- The same for a rejection record ('' for a rejected plain transfer).
local function r_kind(r)
  if r[{{R_KIND}} - 1] == 'x' then return r[{{R_KIND}}] end
  return ''
end

-- The stored fields of a decided transfer, from its reference in an id bucket.
local function t_record(journal, rejections, ref)
  local key, n = journal, ref
  if string.byte(ref, 1) == 45 then key, n = rejections, string.sub(ref, 2) end
  local found = redis.call('XRANGE', key, '0-' .. n, '0-' .. n)
  if not found[1] then error('corrupt ledger: no record ' .. ref) end
  return found[1][2]
end

-- Where a decided id's record is: its reference (a seq, or '-<n>' for a rejection), '' when
-- it was archived (src/archive/: freed from Redis, in PostgreSQL; the index keeps the id, as
-- `compact` for a UUID, mapped to ''), or nil when the id was never decided. `compact` is the
-- id's compact form (src/ledger/keys.ts compactId), '' for an id that has none.
local function t_ref(bucket, id, compact)
  if compact == '' then return redis.call('HGET', bucket, id) or nil end
  local refs = redis.call('HMGET', bucket, id, compact)
  if refs[1] then return refs[1] end
  if refs[2] then return '' end
  return nil
end

-- Has this id been decided? nil, { '' } when its record was archived, or
-- { ref, record, fromId, toId }: a committed record names its accounts by number, so their
-- ids come along (a rejected one names them by id).
local function t_find(bucket, journal, rejections, accountIds, id, compact)
  local ref = t_ref(bucket, id, compact)
  if not ref then return nil end
  if ref == '' then return { '' } end
  local record = t_record(journal, rejections, ref)
  if string.byte(ref, 1) == 45 then return { ref, record } end
  local ids = redis.call('HMGET', accountIds, record[{{J_FROM}}], record[{{J_TO}}])
  return { ref, record, ids[1], ids[2] }
end

-- A post's, void's or reversal's target: its reference and record, or nil when the id was
-- never decided, or false when it was archived and the caller did not pass it. The caller
-- passes an archived target as read from PostgreSQL: `givenRef` and `givenRecord` (its
-- field/value list as JSON), checked to be that id's.
local function t_target(bucket, journal, rejections, id, compact, givenRef, givenRecord)
  local ref = t_ref(bucket, id, compact)
  if not ref then return nil end
  if ref ~= '' then return ref, t_record(journal, rejections, ref) end
  if givenRef == '' then return false end
  local ok, record = pcall(cjson.decode, givenRecord)
  if not ok or type(record) ~= 'table' or record[1] ~= 'i' or record[2] ~= id
    or not (string.find(givenRef, '^%-?[1-9]%d*$')) then
    error('archived target ' .. id .. ': the record given is not its own')
  end
  return givenRef, record
end

-- A stream's ids must be `0-<n>`, so that XADD 0-* cannot fail once writing has begun: nil, or
-- the newest id when it is not of that form.
local function j_bad_id(stream)
  local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)[1]
  if top and string.sub(top[1], 1, 2) ~= '0-' then return top[1] end
  return nil
end

-- Appends a committed transfer and advances both accounts' chains (in memory: a_post writes
-- them). fa and ta are a_read replies with the new totals. Returns its seq.
-- Other kinds pass `kind` (a {{K_*}} code), `target`, `expires` and `requested` (the
-- JOURNAL_FIELDS after TO_PREVIOUS); a hold or a void stays off the chains.
local function j_commit(journal, id, fa, ta, amount, metadata, now, by, fromBalance,
  toBalance, kind, target, expires, requested)
  local jid
  local chained = not kind or kind == {{K_POST}} or kind == {{K_REVERSAL}}
  if not kind then
    jid = redis.call('XADD', journal, '0-*', 'i', id, 'f', fa[{{A_NUMBER}}],
      't', ta[{{A_NUMBER}}], 'a', amount, 'k', fa[{{A_CURRENCY}}], 'm', metadata, 'w', now,
      'b', by, 'fb', fromBalance, 'tb', toBalance, 'pf', fa[{{A_LAST_SEQ}}],
      'pt', ta[{{A_LAST_SEQ}}])
  else
    local pf, pt = '', ''
    if chained then pf, pt = fa[{{A_LAST_SEQ}}], ta[{{A_LAST_SEQ}}] end
    jid = redis.call('XADD', journal, '0-*', 'i', id, 'f', fa[{{A_NUMBER}}],
      't', ta[{{A_NUMBER}}], 'a', amount, 'k', fa[{{A_CURRENCY}}], 'm', metadata, 'w', now,
      'b', by, 'fb', fromBalance, 'tb', toBalance, 'pf', pf, 'pt', pt, 'x', kind,
      'o', target, 'e', expires, 'q', requested)
  end
  local seq = string.sub(jid, 3)
  if chained then fa[{{A_LAST_SEQ}}], ta[{{A_LAST_SEQ}}] = seq, seq end
  return seq
end

-- Appends a rejected transfer; returns its reference for the id bucket ('-<n>'). Other kinds
-- pass `kind`, `target`, `timeout` and `requested` (the REJECTION_FIELDS after CREATED_BY).
local function j_reject(rejections, id, status, from, to, amount, currency, accountsCurrency,
  metadata, now, by, kind, target, timeout, requested)
  local rid
  if not kind then
    rid = redis.call('XADD', rejections, '0-*', 'i', id, 's', status, 'f', from, 't', to,
      'a', amount, 'c', currency, 'k', accountsCurrency, 'm', metadata, 'w', now, 'b', by)
  else
    rid = redis.call('XADD', rejections, '0-*', 'i', id, 's', status, 'f', from, 't', to,
      'a', amount, 'c', currency, 'k', accountsCurrency, 'm', metadata, 'w', now, 'b', by,
      'x', kind, 'o', target, 'e', timeout, 'q', requested)
  end
  return '-' .. string.sub(rid, 3)
end
