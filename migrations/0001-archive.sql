-- The PostgreSQL archive of Atomic Ledger (LEDGER_ARCHIVE_URL): every decided record, copied in
-- seq order from Redis by src/archive/archiver.ts, then freed from Redis. Applied by the service
-- at start (src/archive/migrate.ts): each file once, in order, inside a transaction, its
-- checksum kept in ledger.schema_migrations. A released file is never edited: a change is a new
-- file. Amounts are numeric(39,0): every value up to 2^128-1 (39 digits), signed balances too.
-- The README's "History in PostgreSQL" section documents these tables for SQL reporting.

CREATE SCHEMA IF NOT EXISTS ledger;

-- Committed records of every kind (transfer, hold, post, void, reversal), one row per seq.
CREATE TABLE ledger.transfers (
  ledger             text          NOT NULL,
  seq                bigint        NOT NULL,
  id                 text          NOT NULL,
  kind               text          NOT NULL
    CHECK (kind IN ('transfer', 'hold', 'post', 'void', 'reversal')),
  from_account       text          NOT NULL,
  to_account         text          NOT NULL,
  amount             numeric(39,0) NOT NULL,
  currency           text          NOT NULL,
  metadata           jsonb         NOT NULL,
  created_at         timestamptz   NOT NULL,
  created_by         text          NOT NULL,
  from_balance_after numeric(39,0) NOT NULL,
  to_balance_after   numeric(39,0) NOT NULL,
  -- The hold a post or void settles, the transfer a reversal reverses.
  target             text,
  -- A hold's expiry.
  expires_at         timestamptz,
  -- The amount a post or reversal asked for (NULL: all there was).
  requested          numeric(39,0),
  -- The record exactly as Redis stored it (a JSON array of its fields and values): reads and
  -- replays of an archived id answer from it, byte for byte as before archiving.
  record             text          NOT NULL,
  -- sha256(previous hash, this record): the chain `npm run audit` checks (src/archive/chain.ts).
  hash               bytea         NOT NULL,
  PRIMARY KEY (ledger, seq),
  UNIQUE (ledger, id)
);
CREATE INDEX transfers_by_time ON ledger.transfers (ledger, created_at, seq);

-- Rejected requests, recorded under their ids like committed ones; n orders them per ledger.
CREATE TABLE ledger.rejections (
  ledger            text          NOT NULL,
  n                 bigint        NOT NULL,
  id                text          NOT NULL,
  reason            text          NOT NULL,
  kind              text          NOT NULL,
  from_account      text          NOT NULL,
  to_account        text          NOT NULL,
  -- What was asked (NULL: not given, e.g. a post of all there was).
  amount            numeric(39,0),
  -- The currency as the request gave it (NULL: omitted), and the accounts' own.
  currency          text,
  accounts_currency text          NOT NULL,
  metadata          jsonb         NOT NULL,
  created_at        timestamptz   NOT NULL,
  created_by        text          NOT NULL,
  target            text,
  record            text          NOT NULL,
  hash              bytea         NOT NULL,
  PRIMARY KEY (ledger, n),
  UNIQUE (ledger, id)
);
CREATE INDEX rejections_by_time ON ledger.rejections (ledger, created_at);

-- Each committed transfer, post and reversal moves money between two accounts: one entry for
-- each, with the account's totals after it. Holds and voids move no posted money: no entries.
CREATE TABLE ledger.entries (
  ledger        text          NOT NULL,
  account       text          NOT NULL,
  seq           bigint        NOT NULL,
  transfer_id   text          NOT NULL,
  kind          text          NOT NULL CHECK (kind IN ('transfer', 'post', 'reversal')),
  -- Signed: negative for a debit.
  amount        numeric(39,0) NOT NULL,
  counterparty  text          NOT NULL,
  debits_after  numeric(39,0) NOT NULL,
  credits_after numeric(39,0) NOT NULL,
  balance_after numeric(39,0) NOT NULL,
  created_at    timestamptz   NOT NULL,
  PRIMARY KEY (ledger, account, seq)
);
CREATE INDEX entries_by_time ON ledger.entries (ledger, account, created_at);

-- Each account's totals over its archived entries: where the next archived entry starts from.
CREATE TABLE ledger.accounts (
  ledger   text          NOT NULL,
  account  text          NOT NULL,
  debits   numeric(39,0) NOT NULL,
  credits  numeric(39,0) NOT NULL,
  last_seq bigint        NOT NULL,
  PRIMARY KEY (ledger, account)
);

-- How far each ledger is archived: the newest seq and rejection number copied, and the hash
-- chains' heads there. The archiver moves it in the same transaction as the rows.
CREATE TABLE ledger.positions (
  ledger          text        PRIMARY KEY,
  seq             bigint      NOT NULL DEFAULT 0,
  rejection       bigint      NOT NULL DEFAULT 0,
  journal_hash    bytea       NOT NULL,
  rejections_hash bytea       NOT NULL,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
