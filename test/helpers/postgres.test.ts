/**
 * The real-PostgreSQL harness the archive tests stand on: a committed row survives kill9() and
 * start() (crash recovery on the same data dir and port), the cluster is gone between the two,
 * a fast shutdown restarts too, close() leaves no process of ours and no dir, and the machine's
 * own PostgreSQL (5432) is never used: never connected to, never signalled.
 */
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { listening } from './rabbitmq.js';
import { processRunning as running, startTestPostgres, type TestPostgres } from './postgres.js';

const MACHINE_PORT = 5432;
/** A start and a crash recovery take seconds; a busy 2-core box may take many more. */
const TIMEOUT_MS = 180_000;

/** Running processes whose working directory or command line mentions `dir`. */
function processesMentioning(dir: string): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    if (pid === process.pid || !running(pid)) return false;
    let cwd = '';
    let cmdline = '';
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`);
    } catch {
      // gone, or not ours to read
    }
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // gone
    }
    return cwd.includes(dir) || cmdline.includes(dir);
  });
}

/** Those of them that are postgres (not the harness's keeper, whose arguments name the dir). */
function postgresOf(dir: string): number[] {
  return processesMentioning(dir).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
    } catch {
      return false;
    }
  });
}

/** The postmasters of clusters whose data lies outside the temp dir: the machine's own. */
function machinePostmasters(): number[] {
  return readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      return running(pid) && /(^|\/)postgres\0-D\0/.test(cmdline) &&
        !cmdline.includes(`\0-D\0${tmpdir()}`);
    } catch {
      return false;
    }
  });
}

/** System V shared memory segments created by any of `pids` (postgres keeps one per start). */
function segmentsOf(pids: readonly number[]): string[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1)
    .map((l) => l.trim().split(/\s+/)).filter((f) => pids.includes(Number(f[4])))
    .map((f) => f[1]!);
}

async function query(url: string, sql: string, values: unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, values)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end();
  }
}

describe('test PostgreSQL (test/helpers/postgres.ts)', () => {
  let db: TestPostgres | undefined;
  const machine = machinePostmasters();
  const postmasters: number[] = [];

  afterAll(async () => {
    await db?.close();
  }, TIMEOUT_MS);

  it('keeps a committed row over kill -9 and start, and over a fast shutdown', async () => {
    let t = Date.now();
    db = await startTestPostgres();
    const d = db;
    console.log(`test postgres: started in ${Date.now() - t} ms`);
    expect(d.port).not.toBe(MACHINE_PORT);
    expect(d.url).toMatch(new RegExp(`^postgres://ledger:[\\w-]+@127\\.0\\.0\\.1:${d.port}` +
      '/ledger$'));
    const postmaster = d.pid();
    expect(postmaster).toBeDefined();
    postmasters.push(postmaster!);
    expect(readlinkSync(`/proc/${postmaster}/cwd`)).toBe(`${d.dir}/data`);
    expect(await listening(d.port)).toBe(true);
    // Its durability is PostgreSQL's default: what the archive tests' kills rely on.
    for (const name of ['fsync', 'synchronous_commit', 'full_page_writes']) {
      expect((await query(d.url, `SHOW ${name}`))[0]?.[name]).toBe('on');
    }
    expect((await query(d.url, 'SELECT current_database() AS db'))[0]?.db).toBe('ledger');

    await query(d.url, 'CREATE TABLE archive (id text PRIMARY KEY, amount numeric NOT NULL)');
    await query(d.url, 'INSERT INTO archive VALUES ($1, $2)', ['t-1', '12345678901234567890.5']);
    // Uncommitted when it dies: must not come back.
    const open = new pg.Client({ connectionString: d.url });
    open.on('error', () => {}); // the kill ends its connection
    await open.connect();
    await open.query('BEGIN');
    await open.query('INSERT INTO archive VALUES ($1, $2)', ['t-2', '1']);
    const backends = postgresOf(d.dir).filter((pid) => pid !== postmaster);
    expect(backends.length).toBeGreaterThan(0);

    t = Date.now();
    await d.kill9();
    const killed = Date.now() - t;
    expect(d.pid()).toBeUndefined();
    expect(running(postmaster!)).toBe(false);
    for (const pid of backends) expect(running(pid)).toBe(false);
    expect(postgresOf(d.dir)).toEqual([]);
    expect(await listening(d.port)).toBe(false);
    await open.end().catch(() => undefined);

    t = Date.now();
    await d.start();
    console.log(`test postgres: kill9 in ${killed} ms, start (crash recovery) in ` +
      `${Date.now() - t} ms`);
    const restarted = d.pid();
    expect(restarted).toBeDefined();
    postmasters.push(restarted!);
    expect(restarted).not.toBe(postmaster);
    expect(readFileSync(`${d.dir}/postgres.log`, 'utf8'))
      .toMatch(/database system was interrupted|not properly shut down/);
    expect(await query(d.url, 'SELECT id, amount::text FROM archive ORDER BY id'))
      .toEqual([{ id: 't-1', amount: '12345678901234567890.5' }]);

    await query(d.url, 'INSERT INTO archive VALUES ($1, $2)', ['t-3', '-7']);
    t = Date.now();
    await d.stopFast();
    const stopped = Date.now() - t;
    expect(d.pid()).toBeUndefined();
    expect(running(restarted!)).toBe(false);
    expect(postgresOf(d.dir)).toEqual([]);
    expect(await listening(d.port)).toBe(false);
    expect(readFileSync(`${d.dir}/postgres.log`, 'utf8')).toMatch(/fast shutdown request/);
    t = Date.now();
    await d.start();
    console.log(`test postgres: stopFast in ${stopped} ms, start in ${Date.now() - t} ms`);
    expect(await query(d.url, 'SELECT id FROM archive ORDER BY id'))
      .toEqual([{ id: 't-1' }, { id: 't-3' }]);
    postmasters.push(d.pid()!);
  }, TIMEOUT_MS);

  it('close() leaves no process of ours and no dir; the machine\'s PostgreSQL is untouched',
    async () => {
      const d = db;
      if (!d) throw new Error('the first test did not start the cluster');
      // The check below sees ours while they run: it can fail.
      const ours = processesMentioning(d.dir);
      expect(ours).toContain(d.pid());
      expect(postgresOf(d.dir).length).toBeGreaterThan(1);
      expect(segmentsOf(postmasters)).toHaveLength(1); // the killed one's went at the restart
      await d.close();
      expect(segmentsOf(postmasters)).toEqual([]);
      expect(processesMentioning(d.dir)).toEqual([]);
      for (const pid of ours) expect(running(pid)).toBe(false);
      expect(existsSync(d.dir)).toBe(false);
      expect(await listening(d.port)).toBe(false);
      await d.close(); // idempotent
      await expect(d.start()).rejects.toThrow(/closed/);
      for (const pid of machine) expect(running(pid)).toBe(true);
    }, TIMEOUT_MS);

  it('close() after kill9() removes what the killed postmaster left: its segment, its dir',
    async () => {
      const d = await startTestPostgres();
      try {
        const postmaster = d.pid()!;
        expect(segmentsOf([postmaster])).toHaveLength(1);
        await d.kill9();
        expect(segmentsOf([postmaster])).toHaveLength(1); // nobody removes it on a SIGKILL
        await expect(d.kill9()).rejects.toThrow(/not running/);
        await d.close();
        expect(segmentsOf([postmaster])).toEqual([]);
        expect(existsSync(d.dir)).toBe(false);
        expect(processesMentioning(d.dir)).toEqual([]);
      } finally {
        await d.close();
      }
    }, TIMEOUT_MS);
});
