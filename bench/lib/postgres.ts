/**
 * The bench's own PostgreSQL for the (p) baseline, run as the bench runs its own redis-servers:
 * found on this machine, initialised in a temporary directory, started on a free loopback port,
 * loaded with bench/postgres-ledger.sql and the bench's accounts, checked after its segments,
 * then stopped and removed (on Ctrl-C too: processes.ts). The machine's own PostgreSQL (port
 * 5432 and its data) is never used. Durability stays at PostgreSQL's defaults (fsync,
 * synchronous_commit, full_page_writes on): the start asserts it, since a baseline that does
 * not flush its WAL per commit would not be the ledger a team would build.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { AMOUNT_MAX_STRING } from '../../src/config/limits.js';
import { statusCode } from '../../src/ledger/status.js';
import { connectWhenReady, exitOf, findPostgresBin, initCluster, POSTGRES_ROLE, postgresLogFile,
  postgresPort, postgresRunAs, spawnPostgres } from '../../test/helpers/postgres.js';
import { makeWorkDir, removeDir, ROOT, track } from './processes.js';

// Shared with the tests' PostgreSQL (test/helpers/postgres.ts), which finds it the same way.
export { findPostgresBin };

/** The bench's database; its role is POSTGRES_ROLE, the password random per run. */
const DATABASE = 'ledger';
/** Fast shutdown rolls back open transactions; past this, SIGKILL. */
const STOP_TIMEOUT_MS = 20_000;

export interface PostgresCluster {
  readonly url: string;
  readonly version: string;
  /** The durability and memory settings it runs with, read back with SHOW. */
  readonly settings: Record<string, string>;
  /** The postmaster; its backends are its children (CPU: processes.ts treeCpuSeconds). */
  readonly pid: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

/** Settings read back after the start; the first three must be on (see the header). */
const SETTINGS = ['fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method',
  'shared_buffers', 'max_connections'] as const;

export function ledgerSql(): string {
  const values: Record<string, string> = { AMOUNT_MAX: AMOUNT_MAX_STRING };
  for (const [name, code] of Object.entries(statusCode)) values[`S_${name}`] = String(code);
  const sql = readFileSync(join(ROOT, 'bench/postgres-ledger.sql'), 'utf8');
  return sql.replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`postgres-ledger.sql: unknown {{${name}}}`);
    return value;
  });
}

/**
 * The schema and the accounts, each as the bench creates the product's: USD, overdraft
 * unlimited, balance 0 (so the money in the ledger sums to 0). Then the settings, read back.
 */
async function loadLedger(url: string, accounts: readonly string[]) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(ledgerSql());
    await client.query('INSERT INTO accounts (id, currency, overdraft_limit) ' +
      "SELECT unnest($1::text[]), 'USD', NULL", [accounts]);
    await client.query('VACUUM ANALYZE accounts');
    const settings: Record<string, string> = {};
    for (const name of SETTINGS) {
      settings[name] = String((await client.query(`SHOW ${name}`)).rows[0]?.[name]);
    }
    for (const name of ['fsync', 'synchronous_commit', 'full_page_writes'] as const) {
      if (settings[name] !== 'on') throw new Error(`postgres: ${name} is ${settings[name]}`);
    }
    const version = String((await client.query('SHOW server_version')).rows[0]
      ?.server_version);
    return { settings, version };
  } finally {
    await client.end();
  }
}

/** initdb, start, schema, accounts; on any failure, stopped and removed. */
export async function startPostgres(bin: string,
  accounts: readonly string[]): Promise<PostgresCluster> {
  const dir = makeWorkDir('pg-');
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT'); // fast shutdown: open transactions roll back
      const timer = setTimeout(() => child?.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exitOf(child);
      clearTimeout(timer);
    }
    removeDir(dir);
  };
  try {
    const as = postgresRunAs(dir);
    const password = initCluster(bin, dir, as);
    const port = await postgresPort();
    const logFile = postgresLogFile(dir);
    // SIGQUIT when the bench exits: immediate shutdown, which removes the shared memory.
    child = track(spawnPostgres(bin, dir, port, as, ['cluster_name=ledger-bench']), 'SIGQUIT');
    const base = `postgres://${POSTGRES_ROLE}:${password}@127.0.0.1:${port}`;
    const admin = await connectWhenReady(child, `${base}/postgres`, logFile);
    try {
      await admin.query(`CREATE DATABASE ${DATABASE}`);
    } finally {
      await admin.end();
    }
    const url = `${base}/${DATABASE}`;
    const { settings, version } = await loadLedger(url, accounts);
    return { url, version, settings, pid: child.pid as number, logFile, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface PostgresCheck {
  /** 201s the bench received from (p); each must be a committed transfer. */
  acknowledged: number;
  committed: number;
  rejected: number;
  entries: number;
  /** Sum of every balance: 0, since every account started at 0. */
  netBalance: string;
  /** Committed transfers without exactly two entries summing to 0. */
  unbalancedTransfers: number;
  /** Accounts whose balance is not the sum of their entries, or whose last entry disagrees. */
  accountsOff: number;
}

/**
 * The baseline's books, once after its segments. A wrong baseline makes the ratio meaningless,
 * so any failure here throws and fails the bench.
 */
export async function checkPostgresLedger(url: string,
  acknowledged: number): Promise<PostgresCheck> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(`SELECT
      (SELECT count(*) FROM transfers WHERE status = ${statusCode.OK}) AS committed,
      (SELECT count(*) FROM transfers WHERE status <> ${statusCode.OK}) AS rejected,
      (SELECT count(*) FROM entries) AS entries,
      (SELECT coalesce(sum(credits - debits), 0) FROM accounts)::text AS net,
      (SELECT count(*) FROM transfers t LEFT JOIN (SELECT transfer_id, count(*) AS n,
          sum(amount) AS total FROM entries GROUP BY transfer_id) e ON e.transfer_id = t.id
        WHERE t.status = ${statusCode.OK} AND (e.n IS DISTINCT FROM 2 OR e.total <> 0))
        AS unbalanced,
      (SELECT count(*) FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) AS total,
          max(seq) AS last FROM entries GROUP BY account_id) e ON e.account_id = a.id
        WHERE a.credits - a.debits <> coalesce(e.total, 0)
          OR a.entry_seq <> coalesce(e.last, 0)) AS off`);
    const r = rows[0] as Record<string, string>;
    const check: PostgresCheck = {
      acknowledged, committed: Number(r.committed), rejected: Number(r.rejected),
      entries: Number(r.entries), netBalance: String(r.net),
      unbalancedTransfers: Number(r.unbalanced), accountsOff: Number(r.off),
    };
    const wrong = [
      check.netBalance !== '0' && `the balances sum to ${check.netBalance}, not 0`,
      check.entries !== 2 * check.committed &&
        `${check.entries} entries for ${check.committed} committed transfers`,
      check.unbalancedTransfers > 0 &&
        `${check.unbalancedTransfers} committed transfers without two balanced entries`,
      check.accountsOff > 0 && `${check.accountsOff} accounts disagree with their entries`,
      check.committed < acknowledged &&
        `${acknowledged} transfers answered 201 but ${check.committed} committed`,
    ].filter(Boolean);
    if (wrong.length > 0) {
      throw new Error(`the PostgreSQL baseline is wrong (its ratio would mean nothing): ` +
        wrong.join('; '));
    }
    return check;
  } finally {
    await client.end();
  }
}
