/**
 * A full scenario through the typed client: accounts, transfers and their retries, rejections,
 * conflicts, reads narrowed on `status`, pages of entries, batches, holds (posted and voided),
 * a reversal and a closed account. Every answer is used as its
 * generated type says, with no cast and no non-null assertion (test/client.test.ts compiles this
 * with `--strict` and checks both). `check` throws when the service answers something else.
 *
 * Run against a fresh ledger: the ids are fixed.
 */
import {
  type BatchResult, createLedgerClient, type LedgerClient, type RetryOptions, transfer,
  type TransferRequest, type TransferResult,
} from '../src/index.js';

export interface ScenarioOptions {
  baseUrl: string;
  /** A key with the `write` scope (which includes `read`). */
  apiKey: string;
}

function check(condition: boolean, what: string): asserts condition {
  if (!condition) throw new Error(`scenario: ${what}`);
}

/** No real waiting: the delays are recorded instead, so the scenario can check them. */
function recordingSleep(delays: number[]): RetryOptions {
  return { sleep: async (ms) => { delays.push(ms); }, random: () => 0.5 };
}

async function createAccounts(client: LedgerClient, log: string[]): Promise<void> {
  for (const body of [
    { id: 'cash', currency: 'USD', overdraftLimit: 'unlimited' },
    { id: 'alice', currency: 'USD', metadata: { customer: 'C-3071' } },
    { id: 'shop', currency: 'USD' },
  ]) {
    const { data, response } = await client.POST('/accounts', { body });
    check(response.status === 201 && data !== undefined, `account ${body.id} created`);
    check(data.createdBy.length > 0, 'an account names the key that created it');
    log.push(`account ${data.id}: ${data.currency}, overdraft ${data.overdraftLimit}`);
  }
  const again = await client.POST('/accounts', { body: { id: 'shop', currency: 'USD' } });
  check(again.response.status === 200, 'the same account again is 200');
  check(again.response.headers.get('Idempotent-Replayed') === 'true', 'marked as a replay');
  const other = await client.POST('/accounts', { body: { id: 'shop', currency: 'EUR' } });
  check(other.error?.code === 'ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS', 'other fields: 409');
  log.push(`account shop again: ${again.response.status}, in EUR: ${other.response.status}`);
}

function describe(r: TransferResult): string {
  switch (r.outcome) {
    case 'committed':
      return `committed seq ${r.transfer.seq}, ${r.transfer.from} ` +
        `${r.transfer.fromBalanceAfter}, ${r.transfer.to} ${r.transfer.toBalanceAfter}` +
        `${r.replayed ? ' (replayed)' : ''}`;
    case 'rejected':
      return `rejected ${r.problem.code}: ${r.problem.detail}${r.replayed ? ' (replayed)' : ''}`;
    case 'conflict':
      return `conflict ${r.problem.code}`;
    case 'refused':
      return `refused ${r.status} ${r.problem?.code ?? ''}`;
    case 'undecided':
      return `undecided after ${r.attempts} attempts: ${r.reason}`;
  }
}

async function transfers(client: LedgerClient, log: string[]): Promise<void> {
  const options = recordingSleep([]);
  const pay: TransferRequest = { id: 'pay-1', from: 'alice', to: 'shop', amount: '2500',
    currency: 'USD', metadata: { order: '1042' } };
  const steps: Array<[string, TransferRequest]> = [
    ['fund alice', { id: 'fund-1', from: 'cash', to: 'alice', amount: '10000' }],
    ['pay the shop', pay],
    ['the same again', pay],
    ['the same id, another amount', { ...pay, amount: '2600' }],
    ['more than alice has', { id: 'pay-2', from: 'alice', to: 'shop', amount: '50000' }],
    ['that again', { id: 'pay-2', from: 'alice', to: 'shop', amount: '50000' }],
    ['to an account nobody made', { id: 'pay-3', from: 'alice', to: 'nobody', amount: '1' }],
    ['to herself', { id: 'pay-4', from: 'alice', to: 'alice', amount: '1' }],
  ];
  const results: TransferResult[] = [];
  for (const [what, request] of steps) {
    const result = await transfer(client, request, options);
    results.push(result);
    log.push(`${what}: ${describe(result)}`);
  }
  const [fund, paid, replay, conflict, rejected, rejectedAgain, missing, self] = results;
  check(fund?.outcome === 'committed' && fund.transfer.toBalanceAfter === '10000', 'funded');
  check(paid?.outcome === 'committed' && paid.transfer.fromBalanceAfter === '7500', 'paid');
  check(replay?.outcome === 'committed' && replay.replayed
    && replay.transfer.seq === paid.transfer.seq, 'a retry replays the same transfer');
  check(conflict?.outcome === 'conflict', 'another amount under a decided id is 409');
  check(rejected?.outcome === 'rejected' && rejected.problem.code === 'INSUFFICIENT_FUNDS'
    && !rejected.replayed, 'rejected for funds');
  check(rejectedAgain?.outcome === 'rejected' && rejectedAgain.replayed
    && rejectedAgain.problem.detail === rejected.problem.detail, 'a rejection replays');
  check(missing?.outcome === 'rejected' && missing.problem.code === 'ACCOUNT_NOT_FOUND'
    && missing.problem.detail.includes('account "nobody" does not exist'),
  'the missing account is named');
  check(self?.outcome === 'refused' && self.status === 400
    && self.problem?.code === 'SAME_ACCOUNT', 'from and to must differ');
}

async function reads(client: LedgerClient, log: string[]): Promise<void> {
  for (const id of ['pay-1', 'pay-2']) {
    const { data } = await client.GET('/transfers/{id}', { params: { path: { id } } });
    check(data !== undefined, `transfer ${id} read`);
    // The union narrows on `status`: a committed transfer has its seq, a rejected its reason.
    if (data.status === 'committed') log.push(`${id}: committed at seq ${data.seq}`);
    else log.push(`${id}: rejected for ${data.reason}`);
  }
  const account = await client.GET('/accounts/{id}', { params: { path: { id: 'alice' } },
    headers: { 'ledger-read-from': 'primary' } });
  check(account.data?.balance === '7500', 'alice has 75.00');
  const missing = await client.GET('/accounts/{id}', { params: { path: { id: 'nobody' } } });
  check(missing.response.status === 404 && missing.error?.code === 'ACCOUNT_NOT_FOUND',
    'no account nobody');
  // `limit` is an integer: one entry a page, following the cursor to the end.
  const seen: string[] = [];
  let cursor: string | undefined;
  do {
    const { data } = await client.GET('/accounts/{id}/entries', { params: {
      path: { id: 'alice' }, query: cursor === undefined ? { limit: 1 } : { limit: 1, cursor },
    } });
    check(data !== undefined && data.entries.length <= 1, 'a page of one entry');
    seen.push(...data.entries.map((e) => `${e.transferId} ${e.amount} → ${e.balanceAfter}`));
    cursor = data.nextCursor ?? undefined;
  } while (cursor !== undefined);
  check(seen.length === 2, 'alice has two entries');
  log.push(`alice ${account.data.balance}; entries: ${seen.join('; ')}`);
}

function describeResult(r: BatchResult): string {
  // Each status narrows the result: a transfer on 201, a problem (and its codes) otherwise.
  switch (r.status) {
    case 201: return `${r.id} 201 seq ${r.transfer.seq}`;
    case 409: return `${r.id} 409 ${r.problem.code}`;
    case 422: return `${r.id} 422 ${r.problem.code}`;
  }
}

async function batches(client: LedgerClient, log: string[]): Promise<void> {
  const { data } = await client.POST('/transfers/batch', { body: { atomic: false, transfers: [
    { id: 'b-1', from: 'alice', to: 'shop', amount: '100' },
    { id: 'b-2', from: 'alice', to: 'shop', amount: '999999' },
    { id: 'pay-1', from: 'alice', to: 'shop', amount: '1' },
  ] } });
  check(data !== undefined, 'a batch decided');
  const results = data.results.map(describeResult);
  check(results.length === 3 && data.results.map((r) => r.status).join() === '201,422,409',
    'each transfer of the batch decided on its own');
  log.push(`batch: ${results.join('; ')}`);
  const atomic = await client.POST('/transfers/batch', { body: { atomic: true, transfers: [
    { id: 'a-1', from: 'alice', to: 'shop', amount: '100' },
    { id: 'a-2', from: 'alice', to: 'ghost', amount: '100' },
  ] } });
  const refused = atomic.error;
  check(refused?.status === 422 && refused.code === 'ACCOUNT_NOT_FOUND'
    && refused.index === 1 && refused.transferId === 'a-2', 'an atomic batch refused whole');
  log.push(`atomic batch: ${refused.status} ${refused.code} at ${refused.index}: ` +
    refused.detail);
}

/**
 * A transfer whose first attempts meet what a network does: a 503 asking to wait, a 429, an
 * answer lost after the service applied the transfer, and an attempt that hangs until its time
 * is up. The helper sends the same request each time and ends with one transfer applied.
 */
async function retries(options: ScenarioOptions, log: string[]): Promise<void> {
  const bodies: string[] = [];
  const problem = (status: number, code: string) => new Response(JSON.stringify({
    type: `urn:atomic-ledger:problem:${code.toLowerCase().replaceAll('_', '-')}`, title: code,
    status, code, detail: 'made up by the scenario' }), { status, headers: {
    'Content-Type': 'application/problem+json', 'Retry-After': status === 503 ? '2' : '1' } });
  const script: Array<(request: Request) => Promise<Response>> = [
    async () => problem(503, 'UNAVAILABLE'),
    async () => problem(429, 'RATE_LIMITED'),
    async (request) => {
      await fetch(request); // the service decides it, and the answer is lost on the way
      throw new TypeError('fetch failed: socket hang up');
    },
    (request) => new Promise<Response>((_resolve, reject) => {
      request.signal.addEventListener('abort', () => { reject(request.signal.reason); });
    }),
  ];
  const flaky = async (request: Request): Promise<Response> => {
    bodies.push(await request.clone().text());
    const next = script.shift();
    return next === undefined ? fetch(request) : next(request);
  };
  const client = createLedgerClient({ ...options, fetch: flaky });
  const delays: number[] = [];
  const result = await transfer(client, { id: 'retry-1', from: 'alice', to: 'shop',
    amount: '1000' }, { ...recordingSleep(delays), attemptTimeoutMs: 5_000 });
  check(result.outcome === 'committed' && result.replayed && result.attempts === 5,
    `decided on the fifth attempt, as a replay: ${describe(result)}`);
  check(new Set(bodies).size === 1 && bodies.length === 5, 'the same request every time');
  check((delays[0] ?? 0) >= 2000 && (delays[1] ?? 0) >= 1000, 'Retry-After honoured');
  const direct = createLedgerClient(options);
  const shop = await direct.GET('/accounts/{id}/entries', { params: { path: { id: 'shop' } } });
  const applied = shop.data?.entries.filter((e) => e.transferId === 'retry-1').length;
  check(applied === 1, 'applied exactly once');
  log.push(`retried transfer: ${describe(result)} after waits of ${delays.join(', ')} ms`);

  const down = createLedgerClient({ ...options,
    fetch: async () => { throw new TypeError('fetch failed: connection refused'); } });
  const waits: number[] = [];
  const undecided = await transfer(down, { id: 'retry-2', from: 'alice', to: 'shop',
    amount: '1' }, { ...recordingSleep(waits), maxAttempts: 4, baseDelayMs: 100 });
  check(undecided.outcome === 'undecided' && undecided.attempts === 4, 'gives up undecided');
  check(waits.join() === '75,150,300', 'exponential backoff, half of it jitter');
  log.push(`service down: ${describe(undecided)}; waits ${waits.join(', ')} ms`);
}

/** A card payment: authorize, capture part of it, release another hold, refund, close. */
async function holds(client: LedgerClient, log: string[]): Promise<void> {
  const at = (id: string) => ({ params: { path: { id } } });
  const hold = await client.POST('/transfers', { body: { id: 'auth-1', from: 'alice', to: 'shop',
    amount: '3000', pending: true, timeoutSeconds: 600 } });
  check(hold.data?.kind === 'hold' && hold.data.pendingStatus === 'pending'
    && typeof hold.data.expiresAt === 'string', 'a hold, expiring');
  const held = await client.GET('/accounts/{id}', at('alice'));
  check(held.data !== undefined, 'alice read');
  log.push(`hold auth-1: alice ${held.data.balance}, on hold ${held.data.debitsPending}, ` +
    `available ${held.data.available}`);
  const post = await client.POST('/transfers/{id}/post',
    { ...at('auth-1'), body: { id: 'capture-1', amount: '2000' } });
  check(post.data?.kind === 'post' && post.data.pendingId === 'auth-1', 'posted');
  const late = await client.POST('/transfers/{id}/void', { ...at('auth-1'),
    body: { id: 'void-1' } });
  check(late.error?.status === 422, 'a posted hold cannot be voided');
  const read = await client.GET('/transfers/{id}', at('auth-1'));
  check(read.data?.status === 'committed', 'the hold read');
  log.push(`capture-1: ${post.data.amount}, alice ${post.data.fromBalanceAfter}; void after: ` +
    `${late.error.code}; auth-1 ${read.data.pendingStatus ?? ''} ${read.data.postedAmount ?? ''}`);
  const second = await client.POST('/transfers', { body: { id: 'auth-2', from: 'alice',
    to: 'shop', amount: '1000', pending: true } });
  check(second.data?.expiresAt === null, 'a hold without a timeout');
  const voided = await client.POST('/transfers/{id}/void', { ...at('auth-2'),
    body: { id: 'void-2' } });
  check(voided.data?.kind === 'void', 'voided');
  const refund = await client.POST('/transfers/{id}/reversals', { ...at('capture-1'),
    body: { id: 'refund-1', amount: '500', metadata: { reason: 'returned' } } });
  check(refund.data?.reverses === 'capture-1', 'refunded');
  const original = await client.GET('/transfers/{id}', at('capture-1'));
  check(original.data?.status === 'committed', 'the capture read');
  log.push(`void-2: released ${voided.data.amount}; refund-1: alice ` +
    `${refund.data.toBalanceAfter}, capture-1 reversed ${original.data.reversedAmount ?? ''}`);
  const closed = await client.POST('/accounts/{id}/close', { ...at('shop'), body: {} });
  const again = await client.POST('/accounts/{id}/close', { ...at('shop'), body: {} });
  check(typeof closed.data?.closedAt === 'string' && again.data?.closedAt === closed.data.closedAt
    && again.response.headers.get('Idempotent-Replayed') === 'true', 'closed once');
  const after = await transfer(client, { id: 'pay-5', from: 'alice', to: 'shop', amount: '1' });
  log.push(`shop closed; then a transfer to it: ${describe(after)}`);
}

/** Runs every part; returns what happened, one line a step. */
export async function scenario(options: ScenarioOptions): Promise<string[]> {
  const log: string[] = [];
  const client = createLedgerClient(options);
  const health = await client.GET('/healthz');
  check(health.data?.status === 'ok', 'alive');
  await createAccounts(client, log);
  await transfers(client, log);
  await reads(client, log);
  await batches(client, log);
  await retries(options, log);
  await holds(client, log);
  return log;
}
