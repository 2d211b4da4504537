/**
 * GET /accounts/{id}/balance?seq=|at=: an account's totals as they stood after a record of the
 * ledger, checked against a model built from the journal at every seq and at times between
 * records; the same answers, byte for byte, once the records are archived and freed from Redis
 * (then PostgreSQL answers for what Redis no longer has).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let db: TestPostgres;
beforeAll(async () => { db = await startTestPostgres(); }, 120_000);
afterAll(async () => { await db?.close(); });

const START = Date.parse('2026-01-01T00:00:00.000Z');

async function get(f: Fixture, url: string): Promise<{ status: number; body: string }> {
  const res = await f.app.inject({ method: 'GET', url });
  return { status: res.statusCode, body: res.body };
}

/** A history of transfers, holds, posts and reversals, one record a second from START. */
async function history(f: Fixture, clock: { now: number }): Promise<number> {
  const post = async (url: string, payload: object) => {
    clock.now += 1000;
    const res = await f.app.inject({ method: 'POST', url, payload });
    expect(res.statusCode, res.body).toBeLessThan(500);
  };
  await post('/accounts', { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' });
  for (const id of ['alice', 'bob']) await post('/accounts', { id, currency: 'USD' });
  let n = 0;
  for (let i = 0; i < 30; i++) {
    await post('/transfers', { id: `t${i}`, from: 'cash', to: i % 2 ? 'alice' : 'bob',
      amount: String(100 + i) });
    await post('/transfers', { id: `u${i}`, from: 'alice', to: 'bob', amount: String(7 * i) });
    n += 2;
    if (i % 5 === 0) {
      await post('/transfers', { id: `h${i}`, from: 'bob', to: 'alice', amount: '3',
        pending: true });
      await post(`/transfers/h${i}/post`, { id: `p${i}`, amount: '2' });
      await post(`/transfers/t${i}/reversals`, { id: `r${i}`, amount: '1' });
    }
  }
  return n;
}

/** Every account's totals after each seq, from the journal (the model). */
async function model(f: Fixture): Promise<Map<string, Array<{ d: bigint; c: bigint }>>> {
  const res = await get(f, '/journal?limit=1000');
  const records = (JSON.parse(res.body) as { records: Array<{ seq: string; from: string;
    to: string; amount: string; kind: string }> }).records;
  const totals = new Map<string, { d: bigint; c: bigint }>();
  const after = new Map<string, Array<{ d: bigint; c: bigint }>>();
  for (const id of ['cash', 'alice', 'bob']) {
    totals.set(id, { d: 0n, c: 0n });
    after.set(id, [{ d: 0n, c: 0n }]);
  }
  for (const r of records) {
    if (r.kind === 'transfer' || r.kind === 'post' || r.kind === 'reversal') {
      const from = totals.get(r.from) as { d: bigint; c: bigint };
      const to = totals.get(r.to) as { d: bigint; c: bigint };
      from.d += BigInt(r.amount);
      to.c += BigInt(r.amount);
    }
    for (const [id, t] of totals) after.get(id)?.push({ ...t });
  }
  return after;
}

async function answers(f: Fixture, head: number): Promise<string[]> {
  const out: string[] = [];
  for (const id of ['cash', 'alice', 'bob']) {
    for (let seq = 0; seq <= head + 2; seq++) {
      out.push((await get(f, `/accounts/${id}/balance?seq=${seq}`)).body);
    }
    for (let s = 0; s <= head + 3; s += 3) {
      const at = new Date(START + s * 1000 + 500).toISOString();
      out.push((await get(f, `/accounts/${id}/balance?at=${at}`)).body);
    }
    out.push((await get(f, `/accounts/${id}/balance`)).body);
  }
  return out;
}

describe('balance at a point in time', () => {
  test('matches the journal at every seq and time; the same once archived and freed',
    async () => {
      const clock = { now: START };
      const f = await fixture({ now: () => clock.now,
        archive: { url: db.url, keepRecords: 1, background: false } });
      try {
        await history(f, clock);
        const head = Number(await f.ledger.journalHead());
        const after = await model(f);
        for (const id of ['cash', 'alice', 'bob']) {
          for (let seq = 0; seq <= head; seq++) {
            const t = after.get(id)?.[seq] as { d: bigint; c: bigint };
            const body = JSON.parse((await get(f, `/accounts/${id}/balance?seq=${seq}`)).body);
            expect(body, `${id}@${seq}`).toEqual({ balance: String(t.c - t.d),
              debits: String(t.d), credits: String(t.c), seq: String(seq) });
          }
        }
        // Times: the records were committed a second apart, the 4th (3 accounts, then the
        // first transfer) at START + 4 s: half a second later stands after seq 1.
        const at = new Date(START + 4500).toISOString();
        expect(JSON.parse((await get(f, `/accounts/alice/balance?at=${at}`)).body).seq)
          .toBe('1');
        const early = new Date(START).toISOString();
        expect(JSON.parse((await get(f, `/accounts/bob/balance?at=${early}`)).body)).toEqual({
          balance: '0', debits: '0', credits: '0', seq: '0' });
        expect((await get(f, '/accounts/nobody/balance?seq=1')).status).toBe(404);
        expect((await get(f, `/accounts/bob/balance?seq=1&at=${at}`)).status).toBe(400);
        expect((await get(f, '/accounts/bob/balance?seq=-1')).status).toBe(400);

        const before = await answers(f, head);
        await f.app.archiver?.archiveOnce();
        expect(Number((await f.redis.hget(f.keys.positions(), 'archive:f')) ?? 0))
          .toBe(head - 1);
        expect(await f.redis.xlen(f.keys.journal())).toBe(1);
        expect(await answers(f, head)).toEqual(before);
      } finally {
        await f.close();
      }
    }, 120_000);

  test('the archive down: a balance it must answer is a 503, one Redis has is not',
    async () => {
      const f = await fixture({ archive: { url: db.url, keepRecords: 1 } });
      try {
        const clock = { now: Date.now() };
        await history(f, clock);
        const deadline = Date.now() + 20_000;
        const head = Number(await f.ledger.journalHead());
        while (Number((await f.redis.hget(f.keys.positions(), 'archive:f')) ?? 0) < head - 1) {
          if (Date.now() > deadline) throw new Error('not freed');
          await sleep(50);
        }
        await db.kill9();
        try {
          expect((await get(f, '/accounts/bob/balance?seq=3')).status).toBe(503);
          expect((await get(f, `/accounts/bob/balance?seq=${head}`)).status).toBe(200);
        } finally {
          await db.start();
        }
      } finally {
        await f.close();
      }
    }, 120_000);
});
