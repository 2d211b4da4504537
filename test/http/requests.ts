/**
 * Requests and checks shared by the HTTP tests of holds, reversals and closed accounts
 * (test/http/holds.test.ts, test/http/reversals.test.ts): real HTTP handling through inject,
 * on the fixture's real Redis.
 */
import { expect } from 'vitest';
import { dumpLedger, type Fixture, json, withoutRejection } from '../helpers/ledger.js';

export type Answer = Awaited<ReturnType<Fixture['app']['inject']>>;

export function requests(f: () => Fixture) {
  const post = (url: string, payload: unknown, headers: Record<string, string> = json) =>
    f().app.inject({ method: 'POST', url, headers,
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
  const get = (url: string) => f().app.inject({ method: 'GET', url });
  /** POST that must answer `status`; its JSON body. */
  const ok = async (status: number, url: string, payload: unknown) => {
    const res = await post(url, payload);
    expect(res.statusCode, `${url} ${JSON.stringify(payload)}: ${res.body}`).toBe(status);
    return res.json() as Record<string, unknown>;
  };
  const account = async (id: string) =>
    (await get(`/accounts/${id}`)).json() as Record<string, unknown>;
  const dump = () => dumpLedger(f().redis, f().keys);
  return { post, get, ok, account, dump };
}

export function expectProblem(res: Answer, status: number, code: string): { detail: string } {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  const body = res.json() as { detail: string };
  expect(body).toMatchObject({ status, code, title: expect.any(String),
    detail: expect.any(String),
    type: `urn:atomic-ledger:problem:${code.toLowerCase().replaceAll('_', '-')}` });
  return body;
}

/**
 * A recorded rejection: 422 `code`, only its own record written (the dump before it, but for
 * that record, is the dump after it; `released` skips that check when the rejection released
 * an expired hold too), readable as rejected, and replayed byte for byte writing nothing.
 */
export async function expectRecordedRejection(f: Fixture, send: () => Promise<Answer>,
  id: string, code: string, released = false): Promise<Answer> {
  const r = requests(() => f);
  const before = JSON.parse(await r.dump()) as unknown[];
  const res = await send();
  expectProblem(res, 422, code);
  expect(res.headers['idempotent-replayed']).toBeUndefined();
  const after = await r.dump();
  if (!released) expect(withoutRejection(after, f.keys, id)).toEqual(before);
  expect((await r.get(`/transfers/${id}`)).json())
    .toMatchObject({ id, status: 'rejected', reason: code });
  const again = await send();
  expect(again.statusCode).toBe(422);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body).toBe(res.body);
  expect(await r.dump()).toBe(after);
  return res;
}

/** A replay of a decided write: the same status and bytes, marked, and nothing written. */
export async function expectReplay(f: Fixture, first: Answer,
  send: () => Promise<Answer>): Promise<void> {
  const r = requests(() => f);
  const before = await r.dump();
  const again = await send();
  expect(again.statusCode).toBe(first.statusCode);
  expect(again.headers['idempotent-replayed']).toBe('true');
  expect(again.body).toBe(first.body);
  expect(await r.dump()).toBe(before);
}
