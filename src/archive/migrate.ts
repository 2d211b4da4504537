/**
 * The archive's schema migrations (migrations/NNNN-<name>.sql), applied by the service at start
 * when LEDGER_ARCHIVE_URL is set: each file once, in order of its number, in a transaction of
 * its own, under an advisory lock so that instances starting together apply each once. The
 * table ledger.schema_migrations keeps each applied file's number, name and sha256: a released
 * file is never edited (a change is a new file), so a checksum that differs means this release
 * and the database disagree about the schema, and the start is refused rather than guessed at.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { checkOut } from './store.js';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const FILE_PATTERN = /^(\d{4})-([a-z0-9-]+)\.sql$/;
/** pg_advisory_xact_lock's key: any constant; this one spells "ledger-m". */
const LOCK_KEY = '7810742718170434925';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  sha256: string;
}

export function migrations(dir = MIGRATIONS_DIR): Migration[] {
  const list = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort().map((file) => {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new Error(`migrations/${file}: name must be NNNN-<name>.sql`);
    const sql = readFileSync(`${dir}${file}`, 'utf8');
    return { version: Number(match[1]), name: match[2] as string, sql,
      sha256: createHash('sha256').update(sql).digest('hex') };
  });
  list.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations: expected ${i + 1}, found ${m.version}`);
  });
  return list;
}

export class MigrationMismatchError extends Error {}

/** Applies what is not yet applied; returns the versions it applied now. */
export async function migrate(pool: pg.Pool, list = migrations()): Promise<number[]> {
  const client = await checkOut(pool);
  const applied: number[] = [];
  try {
    for (const m of list) {
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(${LOCK_KEY})`);
        await client.query('CREATE SCHEMA IF NOT EXISTS ledger');
        await client.query(`CREATE TABLE IF NOT EXISTS ledger.schema_migrations (
          version int PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now())`);
        const { rows } = await client.query<{ sha256: string }>(
          'SELECT sha256 FROM ledger.schema_migrations WHERE version = $1', [m.version]);
        const done = rows[0];
        if (done !== undefined) {
          if (done.sha256 !== m.sha256) {
            throw new MigrationMismatchError(`archive migration ${m.version} (${m.name}) was ` +
              'applied from a different file: this release and the database disagree');
          }
        } else {
          await client.query(m.sql);
          await client.query('INSERT INTO ledger.schema_migrations (version, name, sha256) ' +
            'VALUES ($1, $2, $3)', [m.version, m.name, m.sha256]);
          applied.push(m.version);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }
    // A database migrated by a newer release: its schema may hold what this one cannot keep.
    const { rows } = await client.query<{ max: number | null }>(
      'SELECT max(version) AS max FROM ledger.schema_migrations');
    const newest = rows[0]?.max ?? 0;
    if (newest > list.length) {
      throw new MigrationMismatchError(`the archive's schema is at version ${newest}, newer ` +
        `than this release's ${list.length}`);
    }
  } finally {
    client.done();
  }
  return applied;
}
