/**
 * Records freed from Redis once PostgreSQL has them (src/archive/, lua/archive-7.lua): reads
 * and replays of archived records answer byte for byte as before; a decided id stays decided
 * forever (a replay moves nothing, other fields are a conflict, UUIDs in their compact form);
 * a reversal of an archived transfer and a post of an archived (closed) hold work; an open hold
 * stays in Redis until it is closed, then goes too.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compactId } from '../../src/ledger/keys.js';
import { type Fixture, fixture } from '../helpers/ledger.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';

let db: TestPostgres;
beforeAll(async () => { db = await startTestPostgres(); }, 120_000);
afterAll(async () => { await db?.close(); });

interface Call { method: 'GET' | 'POST'; url: string; payload?: object }

async function call(f: Fixture, c: Call): Promise<{ status: number; body: string }> {
  const res = await f.app.inject({ method: c.method, url: c.url,
    ...(c.payload === undefined ? {} : { payload: c.payload }) });
  return { status: res.statusCode, body: res.body };
}

/** Waits until Redis has freed everything but open holds and each stream's newest record. */
async function freed(f: Fixture, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await f.redis.hgetall(f.keys.positions());
    const head = await f.ledger.journalHead();
    const top = await f.redis.xrevrange(f.keys.rejections(), '+', '-', 'COUNT', 1);
    const rejections = top[0]?.[0].slice(2) ?? '0';
    const below = (n: string) => String(Math.max(0, Number(n) - 1));
    if ((p['archive:f'] ?? '0') === below(head)
      && (p['archive:fr'] ?? '0') === below(rejections)) return;
    if (Date.now() > deadline) throw new Error(`not freed: ${JSON.stringify(p)} ${head}`);
    await sleep(50);
  }
}

describe('archived records, freed from Redis', () => {
  test('answer as before; ids stay decided; targets still settle and reverse', async () => {
    const f = await fixture({ archive: { url: db.url, keepRecords: 0 } });
    try {
      const uuid = randomUUID();
      const upper = randomUUID().toUpperCase();
      const writes: Call[] = [
        { method: 'POST', url: '/accounts', payload: { id: 'cash', currency: 'USD',
          overdraftLimit: 'unlimited' } },
        { method: 'POST', url: '/accounts', payload: { id: 'alice', currency: 'USD' } },
        { method: 'POST', url: '/accounts', payload: { id: 'bob', currency: 'USD' } },
        { method: 'POST', url: '/transfers', payload: { id: uuid, from: 'cash', to: 'alice',
          amount: '1000', metadata: { n: 'é"\\' } } },
        { method: 'POST', url: '/transfers', payload: { id: upper, from: 'alice', to: 'bob',
          amount: '300' } },
        { method: 'POST', url: '/transfers', payload: { id: 'rej-1', from: 'bob', to: 'alice',
          amount: '99999' } },
        { method: 'POST', url: '/transfers', payload: { id: 'h1', from: 'alice', to: 'bob',
          amount: '200', pending: true, timeoutSeconds: 3600 } },
        { method: 'POST', url: '/transfers/h1/post', payload: { id: 'p1', amount: '150' } },
        { method: 'POST', url: '/transfers', payload: { id: 'h-open', from: 'alice', to: 'bob',
          amount: '10', pending: true } },
        { method: 'POST', url: '/transfers', payload: { id: 'h-rej', from: 'bob',
          to: 'alice', amount: '99999', pending: true } },
        { method: 'POST', url: `/transfers/${upper}/reversals`, payload: { id: 'x1',
          amount: '100' } },
        { method: 'POST', url: '/transfers/batch', payload: { atomic: false, transfers: [
          { id: 'b1', from: 'cash', to: 'bob', amount: '7' },
          { id: randomUUID(), from: 'cash', to: 'alice', amount: '8' }] } },
      ];
      const last = randomUUID();
      (writes.at(-1)?.payload as { transfers: Array<{ id: string }> }).transfers[1] = {
        id: last, from: 'cash', to: 'alice', amount: '8' } as { id: string };
      const ids = [uuid, upper, 'rej-1', 'h1', 'p1', 'h-open', 'h-rej', 'x1', 'b1', last];
      const first = new Map<string, { status: number; body: string }>();
      for (const w of writes) {
        const answer = await call(f, w);
        expect(answer.status, `${w.url}: ${answer.body}`).toBeLessThan(500);
        expect(answer.status, answer.body).not.toBe(400);
        first.set(w.url + JSON.stringify(w.payload), answer);
      }
      const reads: Call[] = [...ids.map((id): Call => ({ method: 'GET',
        url: `/transfers/${id}` })), { method: 'GET', url: '/accounts/alice' }];
      const before = new Map<string, { status: number; body: string }>();
      for (const r of reads) before.set(r.url, await call(f, r));
      // Replays before archiving: what they answered then, they must answer after.
      const replays = new Map<string, { status: number; body: string }>();
      for (const w of writes) replays.set(w.url + JSON.stringify(w.payload), await call(f, w));

      await freed(f);
      // Only the open hold and the newest record are still stream entries (the newest of each
      // stream stays: it names the head); the rest of the index is archived.
      const journal = await f.redis.xrange(f.keys.journal(), '-', '+');
      expect(journal.map(([, fields]) => fields[1])).toEqual(['h-open', last]);
      expect(await f.redis.xlen(f.keys.rejections())).toBe(1);
      expect(await f.redis.zrange(f.keys.pinned(), 0, -1)).toEqual([journal[0]?.[0].slice(2)]);
      const bucket = f.keys.transferBucket(uuid);
      expect(await f.redis.hget(bucket, uuid)).toBeNull();
      expect(await f.redis.hget(bucket, compactId(uuid) as string)).toBe('');

      for (const r of reads) expect(await call(f, r), r.url).toEqual(before.get(r.url));
      for (const w of writes) {
        const key = w.url + JSON.stringify(w.payload);
        expect(await call(f, w), key).toEqual(replays.get(key));
      }
      // A decided id stays decided: other fields are a conflict; nothing moved.
      const alice = (await call(f, { method: 'GET', url: '/accounts/alice' })).body;
      const conflict = await call(f, { method: 'POST', url: '/transfers', payload: { id: uuid,
        from: 'cash', to: 'alice', amount: '1001' } });
      expect(conflict.status).toBe(409);
      expect(conflict.body).toContain('amount');
      const lower = await call(f, { method: 'POST', url: '/transfers', payload: {
        id: upper.toLowerCase(), from: 'cash', to: 'bob', amount: '1' } });
      expect(lower.status).toBe(201); // another id: ids are case-sensitive
      expect((await call(f, { method: 'GET', url: '/accounts/alice' })).body).toBe(alice);

      // A batch of a new id and an archived one (and a group commit is such a batch): the new
      // one commits, once; the archived one replays, writing nothing.
      const head = Number(await f.ledger.journalHead());
      const mixed = await call(f, { method: 'POST', url: '/transfers/batch', payload: {
        atomic: false, transfers: [{ id: 'n-new', from: 'cash', to: 'bob', amount: '5' },
          { id: uuid, from: 'cash', to: 'alice', amount: '1000', metadata: { n: 'é"\\' } }] } });
      expect(mixed.status, mixed.body).toBe(200);
      const results = (JSON.parse(mixed.body) as { results: Array<{ id: string;
        replayed: boolean; status: number }> }).results;
      expect(results.map((r) => [r.id, r.replayed, r.status])).toEqual([['n-new', false, 201],
        [uuid, true, 201]]);
      expect(Number(await f.ledger.journalHead())).toBe(head + 1);
      const atomic = await call(f, { method: 'POST', url: '/transfers/batch', payload: {
        atomic: true, transfers: [{ id: 'n-new2', from: 'cash', to: 'bob', amount: '5' },
          { id: uuid, from: 'cash', to: 'alice', amount: '1000', metadata: { n: 'é"\\' } }] } });
      expect(atomic.status, atomic.body).toBe(409);
      expect(Number(await f.ledger.journalHead())).toBe(head + 1);

      // Targets that were archived: a reversal of the rest, a post of a posted hold.
      const rest = await call(f, { method: 'POST', url: `/transfers/${upper}/reversals`,
        payload: { id: 'x2' } });
      expect(rest.status, rest.body).toBe(201);
      expect(JSON.parse(rest.body)).toMatchObject({ amount: '200', from: 'bob', to: 'alice' });
      const again = await call(f, { method: 'POST', url: `/transfers/${upper}/reversals`,
        payload: { id: 'x3' } });
      expect(JSON.parse(again.body)).toMatchObject({ code: 'EXCEEDS_REVERSIBLE_AMOUNT' });
      const posted = await call(f, { method: 'POST', url: '/transfers/h1/post',
        payload: { id: 'p2' } });
      expect(JSON.parse(posted.body)).toMatchObject({ code: 'PENDING_TRANSFER_ALREADY_POSTED' });
      const rejectedHold = await call(f, { method: 'POST', url: '/transfers/h-rej/void',
        payload: { id: 'v9' } });
      expect(JSON.parse(rejectedHold.body)).toMatchObject({
        code: 'PENDING_TRANSFER_NOT_FOUND' });
      const upperView = JSON.parse((await call(f, { method: 'GET',
        url: `/transfers/${upper}` })).body) as { reversedAmount: string };
      expect(upperView.reversedAmount).toBe('300');

      // The open hold, once closed, is freed too.
      const post = await call(f, { method: 'POST', url: '/transfers/h-open/post',
        payload: { id: 'p3' } });
      expect(post.status, post.body).toBe(201);
      await freed(f);
      const deadline = Date.now() + 10_000;
      while ((await f.redis.zcard(f.keys.pinned())) > 0 && Date.now() < deadline) await sleep(50);
      expect(await f.redis.xlen(f.keys.journal())).toBe(1); // p3, the newest
      const hold = JSON.parse((await call(f, { method: 'GET', url: '/transfers/h-open' })).body);
      expect(hold).toMatchObject({ pendingStatus: 'posted', postedAmount: '10' });
    } finally {
      await f.close();
    }
  }, 90_000);
});
