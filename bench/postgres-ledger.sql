-- postgres-ledger: the bench's PostgreSQL baseline, the ledger a team would otherwise build.
-- The same semantics as the product's POST /transfers (lua/transfer-7.lua), in ONE PL/pgSQL call
-- per request and ONE transaction (autocommit), so PostgreSQL pays one WAL flush per transfer,
-- as Redis pays one AOF write under appendfsync always:
--   - idempotency by transfer id: a replay returns the stored outcome and moves nothing; a
--     replay with other fields returns the names of the fields that differ (a conflict);
--   - debit `from` and credit `to` atomically; each total stays within 2^128-1;
--   - overdraft: the balance may not go below -overdraft_limit (NULL: unlimited);
--   - one entry per account with its balance after; rejections recorded under the id.
-- bench/lib/postgres.ts substitutes {{S_*}} (src/ledger/status.ts) and {{AMOUNT_MAX}}
-- (src/config/limits.ts), so the codes and the bound cannot drift from the product's.
-- No foreign keys: the function is the only writer and checks existence itself; FK triggers
-- would add two lookups per entry, and the baseline should be a competent one, not a strawman.

CREATE TABLE accounts (
  id text PRIMARY KEY,
  currency text NOT NULL,
  -- NULL: unlimited (the product's 'unlimited', for a cash account).
  overdraft_limit numeric(39,0) CHECK (overdraft_limit >= 0),
  -- Totals, as the product keeps them: each ≤ 2^128-1, balance = credits - debits.
  debits numeric(39,0) NOT NULL DEFAULT 0,
  credits numeric(39,0) NOT NULL DEFAULT 0,
  -- The seq of this account's newest entry (its entries are 1 .. entry_seq).
  entry_seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE transfers (
  id text PRIMARY KEY,
  from_id text NOT NULL,
  to_id text NOT NULL,
  amount numeric(39,0) NOT NULL,
  -- As the client gave it; NULL means the accounts' currency.
  currency text,
  accounts_currency text,
  metadata jsonb NOT NULL,
  status smallint NOT NULL,
  -- Committed only: the journal position and both balances after (the reply to a replay).
  seq bigint,
  from_balance_after numeric(39,0),
  to_balance_after numeric(39,0),
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL
);

-- Gaps where a replay took a number before its insert found the id: a sequence never rolls
-- back anyway, and the journal's order is what matters.
CREATE SEQUENCE journal_seq;

CREATE TABLE entries (
  account_id text NOT NULL,
  seq bigint NOT NULL,
  transfer_id text NOT NULL,
  -- Signed: -amount on the debit side, +amount on the credit side.
  amount numeric(39,0) NOT NULL,
  balance_after numeric(39,0) NOT NULL,
  PRIMARY KEY (account_id, seq)
);

CREATE FUNCTION ledger_transfer(p_id text, p_from text, p_to text, p_amount numeric,
  p_currency text, p_metadata jsonb, p_by text,
  OUT status smallint, OUT replayed boolean, OUT differs text[], OUT seq bigint,
  OUT from_balance_after numeric, OUT to_balance_after numeric, OUT accounts_currency text)
LANGUAGE plpgsql AS $$
DECLARE
  lo accounts;
  hi accounts;
  fa accounts;
  ta accounts;
  t transfers;
  new_debits numeric;
  new_credits numeric;
BEGIN
  replayed := false;
  IF p_amount < 1 OR p_amount > {{AMOUNT_MAX}} OR p_amount <> trunc(p_amount)
    OR p_from = p_to THEN
    status := {{S_INVALID_ARGUMENT}};  -- the server's schema prevents these: nothing written
    RETURN;
  END IF;

  -- Both accounts locked in id order: two transfers between one pair in opposite directions
  -- would otherwise each hold one lock and wait for the other (a deadlock, and a retry).
  SELECT * INTO lo FROM accounts WHERE id = least(p_from, p_to) FOR UPDATE;
  SELECT * INTO hi FROM accounts WHERE id = greatest(p_from, p_to) FOR UPDATE;
  IF p_from < p_to THEN fa := lo; ta := hi; ELSE fa := hi; ta := lo; END IF;

  -- The checks of lua/includes/decide.lua, in its order of precedence.
  accounts_currency := coalesce(fa.currency, ta.currency);
  IF fa.id IS NULL OR ta.id IS NULL THEN
    status := {{S_ACCOUNT_NOT_FOUND}};
  ELSIF fa.currency <> ta.currency OR p_currency <> fa.currency THEN
    status := {{S_CURRENCY_MISMATCH}};
  ELSE
    new_debits := fa.debits + p_amount;
    new_credits := ta.credits + p_amount;
    IF fa.overdraft_limit IS NOT NULL AND new_debits > fa.credits + fa.overdraft_limit THEN
      status := {{S_INSUFFICIENT_FUNDS}};
    ELSIF new_debits > {{AMOUNT_MAX}} OR new_credits > {{AMOUNT_MAX}} THEN
      status := {{S_BALANCE_OVERFLOW}};
    ELSE
      status := {{S_OK}};
      seq := nextval('journal_seq');
      from_balance_after := fa.credits - new_debits;
      to_balance_after := new_credits - ta.debits;
    END IF;
  END IF;

  -- Claim the id with the outcome just decided. A concurrent request with the same id waits
  -- here until that one ends, then finds its row: the id is decided exactly once. Nothing has
  -- been written before this line, so a replay moves nothing.
  INSERT INTO transfers (id, from_id, to_id, amount, currency, accounts_currency, metadata,
    status, seq, from_balance_after, to_balance_after, created_by)
  VALUES (p_id, p_from, p_to, p_amount, p_currency, accounts_currency, p_metadata, status,
    seq, from_balance_after, to_balance_after, p_by)
  ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
    -- Decided before: its stored outcome, and the fields that differ (as src/ledger/records.ts
    -- compares them: an omitted currency means the accounts').
    SELECT * INTO t FROM transfers WHERE id = p_id;
    replayed := true;
    status := t.status;
    seq := t.seq;
    from_balance_after := t.from_balance_after;
    to_balance_after := t.to_balance_after;
    accounts_currency := t.accounts_currency;
    differs := array_remove(ARRAY[
      CASE WHEN t.from_id <> p_from THEN 'from' END,
      CASE WHEN t.to_id <> p_to THEN 'to' END,
      CASE WHEN t.amount <> p_amount THEN 'amount' END,
      CASE WHEN coalesce(p_currency, t.accounts_currency)
        IS DISTINCT FROM coalesce(t.currency, t.accounts_currency) THEN 'currency' END,
      CASE WHEN t.metadata <> p_metadata THEN 'metadata' END], NULL);
    RETURN;
  END IF;
  IF status <> {{S_OK}} THEN
    RETURN;  -- rejected, and recorded under the id
  END IF;

  -- After this point the transfer must succeed: both rows are locked and every check passed.
  UPDATE accounts SET debits = new_debits, entry_seq = entry_seq + 1 WHERE id = p_from;
  UPDATE accounts SET credits = new_credits, entry_seq = entry_seq + 1 WHERE id = p_to;
  INSERT INTO entries (account_id, seq, transfer_id, amount, balance_after) VALUES
    (p_from, fa.entry_seq + 1, p_id, -p_amount, from_balance_after),
    (p_to, ta.entry_seq + 1, p_id, p_amount, to_balance_after);
END
$$;
