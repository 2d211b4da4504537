/**
 * Change data out under faults (the issue's test): a consumer receives every committed record
 * exactly once after deduplication, in seq order, while the bank workload runs (test/faults/bank/)
 * and the broker is killed (-9) and restarted, and while the service is killed (-9) between
 * publishing a page and saving its position. The service runs as its own process
 * (test/faults/bank/system.ts) with LEDGER_CDC_AMQP_URL pointing at a real RabbitMQ
 * (test/helpers/rabbitmq.ts); the consumer is test/cdc/consumer.ts. The in-process cases
 * (a crash simulated inside one follower, two instances) are in test/cdc/publisher.test.ts.
 *
 * The service kills are aimed, not lucky (killInWindow): the broker is frozen (SIGSTOP) for a
 * second to build a backlog, thawed, and frozen again the moment a record of the backlog reaches
 * the consumer, so no confirm can reach the service and its page stays unsaved. The highest seq
 * the consumer has received is then compared with the position the service saved
 * (`<prefix>:{<ledger>}:p`, field `cdc`, on the test's Redis) and, the first ahead, the service
 * gets SIGKILL before the broker is thawed. Once the process is gone, the position it left is
 * read again: the kill counts as inside the window only if the consumer had a record the dead
 * service never saved as handed on.
 *
 * Seeds: BANK_SEED=<n> repeats the workload's random draws, as in test/faults/bank.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import { expect, test } from 'vitest';
import { CDC_FOLLOWER } from '../../src/cdc/publisher.js';
import { limits } from '../../src/config/limits.js';
import { type LedgerKeys, ledgerKeys } from '../../src/ledger/keys.js';
import { consume, type Received, type TestConsumer } from '../cdc/consumer.js';
import { startBroker, type TestBroker } from '../helpers/rabbitmq.js';
import { checkInvariants } from './bank/checker.js';
import { History, seededRandom } from './bank/history.js';
import { getJson } from './bank/reads.js';
import { BankSystem } from './bank/system.js';
import { figures, scenarioTable } from './bank/table.js';
import { BankLoad, bankSpec, resolveAll, setupBank } from './bank/workload.js';

/** Load before the first fault, so the broker dies under a running bank. */
const WARMUP_MS = 1000;
/** How long the broker stays down while the clients go on transferring (the issue: ~2 s). */
const BROKER_DOWN_MS = 2000;
/** Service kills that must land between a publish and the position's save. */
const KILLS_IN_WINDOW = 2;
/**
 * Kills made at most. One is made only once the position is seen behind with the broker frozen,
 * so it misses the window only if a confirm sent before the freeze was saved after
 * CONFIRM_SETTLE_MS.
 */
const KILL_ATTEMPTS_MAX = 3;
/** The broker frozen this long before each kill: a backlog, so the page killed is a big one. */
const BACKLOG_MS = 1000;
/**
 * With the broker frozen, how long a confirm it had already sent gets to be saved (a Redis round
 * trip): a position still behind after this stays behind.
 */
const CONFIRM_SETTLE_MS = 200;
/** Load after the last fault. */
const COOLDOWN_MS = 1500;
/** Every request still ambiguous when the load stops gets this long to be decided. */
const RESOLVE_BUDGET_MS = 10_000;
/**
 * The longest a healthy publisher pauses: after a kill -9 the restarted service waits out its
 * predecessor's lease (CDC_LOCK_TTL_MS); after the broker's restart its reconnect pause (at most
 * 5 s, src/cdc/amqp.ts) is shorter. Liveness bounds are ten times that and a second of work:
 * they fail a publisher that stays stuck, never a slow machine.
 */
const CDC_PAUSE_MAX_MS = limits.CDC_LOCK_TTL_MS;
const CDC_LIVENESS_MS = 10 * (CDC_PAUSE_MAX_MS + 1000);
/** As test/faults/bank.test.ts: a decided answer after each fault, within ten times expected. */
const RECOVER_LIVENESS_MS = 10 * (limits.REDIS_RECONNECT_DELAY_MAX_MS + 400 + 100);
/**
 * A run takes about 45-55 s here, on a busy machine too (the broker's starts, and up to a lease
 * waited out per service kill); the timeout only leaves the liveness bounds room to report.
 */
const TEST_TIMEOUT_MS = 300_000;
const FAILURE_LOG_CHARS = 3000;
const READ_PAGE = 1000;

const seed = Number(process.env.BANK_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** What the consumer has of one ledger, kept up to date from its `received` list as it grows. */
class Arrivals {
  private cursor = 0;
  private readonly seqs = new Set<number>();
  /** The highest seq received. */
  max = 0;
  /** Every seq 1..contiguous has been received. */
  contiguous = 0;

  constructor(private readonly consumer: TestConsumer, private readonly ledger: string) {}

  update(): this {
    const { received } = this.consumer;
    const prefix = `${this.ledger}:`;
    for (; this.cursor < received.length; this.cursor++) {
      const id = (received[this.cursor] as { messageId: string }).messageId;
      if (!id.startsWith(prefix)) continue;
      const seq = Number(id.slice(prefix.length));
      this.seqs.add(seq);
      if (seq > this.max) this.max = seq;
    }
    while (this.seqs.has(this.contiguous + 1)) this.contiguous += 1;
    return this;
  }

  /** Resolves with the time it took once every seq 1..head arrived (throws past `livenessMs`). */
  async until(head: number, livenessMs: number): Promise<number> {
    const started = Date.now();
    while (this.update().contiguous < head) {
      if (Date.now() - started > livenessMs) {
        throw new Error(`the consumer has 1..${this.contiguous} (highest ${this.max}) of ` +
          `1..${head} after ${livenessMs} ms`);
      }
      await sleep(10);
    }
    return Date.now() - started;
  }
}

/** The journal's newest seq, straight from Redis. */
async function journalHead(redis: Redis, keys: LedgerKeys): Promise<number> {
  const [newest] = await redis.xrevrange(keys.journal(), '+', '-', 'COUNT', 1);
  return newest === undefined ? 0 : Number(newest[0].slice(2));
}

async function savedPosition(redis: Redis, keys: LedgerKeys): Promise<number> {
  return Number(await redis.hget(keys.positions(), CDC_FOLLOWER) ?? '0');
}

/** Every committed record, as `GET /journal` has it, paging with `after`. */
async function readJournal(base: string): Promise<Array<Record<string, unknown>>> {
  const records: Array<Record<string, unknown>> = [];
  let after = '0';
  for (;;) {
    const page = await getJson<{ records: Array<Record<string, unknown>>; next: string }>(base,
      `/journal?after=${after}&limit=${READ_PAGE}`);
    if (page.status !== 200 || page.json === undefined) {
      throw new Error(`GET /journal?after=${after}: ${page.status} ${page.text}`);
    }
    if (page.json.records.length === 0) return records;
    records.push(...page.json.records);
    after = page.json.next;
  }
}

interface Kill {
  /** The highest seq the consumer had with the broker frozen. */
  received: number;
  /** The position saved with the broker frozen, and the one the dead service left. */
  savedBefore: number;
  savedAfter: number;
  /** Records committed while the broker was frozen for the backlog. */
  backlog: number;
  /** Tries after which the position caught up (the page's confirms had left the broker). */
  closed: number;
  /** From arming to the kill. */
  waitedMs: number;
  /** From the dead service's exit to the new one's readiness. */
  restartMs: number;
}

const inWindow = (k: Kill) => k.received > k.savedAfter;

/**
 * Freezes the broker (SIGSTOP) as the first record of `ledger` past `baseline` reaches the
 * consumer, in the same tick: consume() (test/cdc/consumer.ts) pushes a message onto `received`
 * and only then acks it, and the broker confirms a persistent message to the publisher once its
 * queue has it acked or on disk. So the page that record belongs to still waits for its
 * confirms, unless all of them left the broker before this process saw the record (the caller
 * checks). Resolves once frozen; rejects past `deadline`.
 */
function freezeOnNewRecord(consumer: TestConsumer, ledger: string, baseline: number,
  beam: number, deadline: number): Promise<void> {
  const { received } = consumer;
  const push = received.push;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      received.push = push;
      reject(new Error(`no record past ${baseline} within ${CDC_LIVENESS_MS} ms`));
    }, Math.max(0, deadline - Date.now()));
    received.push = (...items: Received[]) => {
      const length = push.apply(received, items);
      if (items.some((m) => m.messageId.startsWith(`${ledger}:`)
        && Number(m.messageId.slice(ledger.length + 1)) > baseline)) {
        received.push = push;
        clearTimeout(timer);
        try {
          process.kill(beam, 'SIGSTOP');
          resolve();
        } catch (error) {
          reject(error); // never into the consumer's callback
        }
      }
      return length;
    };
  });
}

/**
 * Kills the service (-9) between publishing a page and saving its position, and checks it did.
 * A backlog first, so the page is a big one: the broker is frozen (SIGSTOP) for BACKLOG_MS
 * while the clients commit. Then it is thawed and frozen again as the first record committed
 * after `baseline` (the journal's head when it was first frozen) reaches the consumer
 * (freezeOnNewRecord), so no confirm of that page reaches the service and the window cannot
 * close under the test. Once a confirm already on its way would have been saved, the highest
 * seq the consumer has is compared with the saved position: ahead, the service published
 * records it has not saved as handed on, and it dies so; else the broker is thawed and all
 * tried again. Anything past `baseline` can only have been published by the service running
 * now: neither a dead one nor the broker's redeliveries (of what it had before its restart)
 * have such records. Polling the two and killing on sight is not enough: the consumer acks as
 * it receives, and the save follows the confirm within a Redis round trip, often before a busy
 * test process has even looked.
 */
async function killInWindow(system: BankSystem, broker: TestBroker, history: History,
  consumer: TestConsumer, arrivals: Arrivals, keys: LedgerKeys): Promise<Kill> {
  const armed = Date.now();
  let closed = 0;
  return system.admin(async (redis) => {
    for (;;) {
      const beam = broker.pid();
      if (beam === undefined) throw new Error('the broker is not running');
      let faultEnd: (() => void) | undefined;
      let kill: Omit<Kill, 'restartMs'> | undefined;
      const baseline = await journalHead(redis, keys);
      process.kill(beam, 'SIGSTOP');
      try {
        await sleep(BACKLOG_MS);
        const backlog = (await journalHead(redis, keys)) - baseline;
        const frozen = freezeOnNewRecord(consumer, keys.ledger, baseline, beam,
          armed + CDC_LIVENESS_MS);
        process.kill(beam, 'SIGCONT');
        await frozen;
        await sleep(CONFIRM_SETTLE_MS);
        // The consumer first, then the position: a record received before the position was
        // read and past it was published and not saved.
        const received = arrivals.update().max;
        const savedBefore = await savedPosition(redis, keys);
        if (savedBefore < received) {
          faultEnd = history.fault('service kill -9 between publish and save, restart');
          await system.service.kill();
          kill = { received, savedBefore, backlog, closed, waitedMs: Date.now() - armed,
            savedAfter: await savedPosition(redis, keys) };
        } else {
          closed += 1;
        }
      } finally {
        process.kill(beam, 'SIGCONT');
      }
      if (kill !== undefined) {
        const restarting = Date.now();
        await system.startService();
        faultEnd?.();
        return { ...kill, restartMs: Date.now() - restarting };
      }
    }
  });
}

function table(rows: Array<[string, string]>): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  const line = '-'.repeat(width + 2);
  return [line, ...rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`), line].join('\n');
}

test('a consumer gets every committed record once after deduplication, in seq order, through ' +
  'a broker kill -9 and service kills -9 between publish and save [always]', async () => {
  const started = Date.now();
  const exchange = `cdc-${randomUUID().slice(0, 8)}`;
  const ledgerName = `cdc-bank-${seed}`;
  const keys = ledgerKeys('ledger', ledgerName);
  const dataDir = mkdtempSync(join(tmpdir(), 'ledger-cdc-'));
  const history = new History();
  const spec = bankSpec();
  let broker: TestBroker | undefined;
  let consumer: TestConsumer | undefined;
  let system: BankSystem | undefined;
  let load: BankLoad | undefined;
  try {
    broker = await startBroker();
    consumer = await consume(broker.url, exchange, `q-${randomUUID().slice(0, 8)}`);
    system = await BankSystem.start({ dataDir, appendfsync: 'always', ledgerName,
      env: { LEDGER_CDC_AMQP_URL: broker.url, LEDGER_CDC_EXCHANGE: exchange } });
    const sys = system;
    const arrivals = new Arrivals(consumer, ledgerName);
    await setupBank(sys.base, spec, history);
    load = BankLoad.start(sys.base, spec, history, seededRandom(seed), `cdc${seed}`);
    await sleep(WARMUP_MS);

    // The broker dies; the clients must not notice.
    let downFrom = 0;
    let upAt = 0;
    await history.during('broker kill -9, down 2 s, restart', async () => {
      const b = broker as TestBroker;
      await b.kill9();
      downFrom = Date.now();
      await sleep(BROKER_DOWN_MS);
      await b.start();
      upAt = Date.now();
    });
    const committedWhileDown = history.ops.flatMap((op) => op.attempts)
      .filter((a) => a.status === 201 && a.start >= downFrom && a.end <= upAt).length;
    expect(committedWhileDown, 'transfers committed while the broker was down')
      .toBeGreaterThan(0);
    await consumer.reopen();
    const backlog = await sys.admin(async (redis) =>
      (await journalHead(redis, keys)) - (await savedPosition(redis, keys)));
    const afterBroker = await sys.admin((redis) => journalHead(redis, keys));
    // Redeliveries of what the broker had before it died are all at or below this head: once
    // it is reached, anything higher comes from the service as it runs now.
    const brokerCatchUpMs = await arrivals.until(afterBroker, CDC_LIVENESS_MS);

    const kills: Kill[] = [];
    while (kills.filter(inWindow).length < KILLS_IN_WINDOW && kills.length < KILL_ATTEMPTS_MAX) {
      kills.push(await killInWindow(sys, broker, history, consumer, arrivals, keys));
    }
    // The restarted service waits out the dead one's lease, then publishes from the position.
    const lastHead = await sys.admin((redis) => journalHead(redis, keys));
    const catchUp = arrivals.until(lastHead, CDC_LIVENESS_MS);
    catchUp.catch(() => {}); // awaited below; a failure meanwhile is not unhandled
    await sleep(COOLDOWN_MS);
    await load.stop();
    load = undefined;
    await resolveAll(sys.base, history, RESOLVE_BUDGET_MS);
    const check = await checkInvariants(sys.base, spec, history, { sweeper: true });
    const x = figures('cdc: broker kill -9, service kill -9 in the window', 'always', seed,
      started, history, check);
    console.info(scenarioTable(x, check));
    expect(check.violations).toEqual([]);
    expect(x.lost).toBe(0);
    expect(x.doubleApplied).toBe(0);
    x.recoverMs.forEach((ms, i) => {
      expect(ms, `fault ${i + 1}: recovered (a liveness bound)`).toBeLessThanOrEqual(
        RECOVER_LIVENESS_MS);
    });

    const catchUpMs = await catchUp;
    const journal = await readJournal(sys.base);
    const head = journal.length;
    await consumer.waitFor(head, CDC_LIVENESS_MS);
    const mine = consumer.received.filter((m) => m.messageId.startsWith(`${ledgerName}:`));
    const distinct = consumer.deduplicated()
      .filter((m) => m.messageId.startsWith(`${ledgerName}:`));
    const duplicates = mine.length - distinct.length;
    const hits = kills.filter(inWindow);
    console.info(`change data under faults (BANK_SEED=${seed})\n${table([
      ['records (journal head)', String(head)],
      ['messages received', `${mine.length}: ${distinct.length} distinct, ${duplicates} ` +
        'duplicate(s)'],
      ['broker down', `${upAt - downFrom} ms (${BROKER_DOWN_MS} ms dead + its start); ` +
        `${committedWhileDown} writes committed meanwhile; ${backlog} records unpublished ` +
        'when the consumer was back'],
      ['catch-up after the broker', `${brokerCatchUpMs} ms`],
      ['service kills in the window', `${hits.length} of ${kills.length}: ` + kills.map((k) =>
        `received ${k.received}, saved ${k.savedBefore} → ${k.savedAfter} after ` +
        `${k.waitedMs} ms, backlog ${k.backlog}, ${k.closed} tries too late before (restart ` +
        `${k.restartMs} ms)`)
        .join('; ')],
      ['catch-up after the last fault', `${catchUpMs} ms from the restarted service's ` +
        `readiness (the dead one's lease is ${limits.CDC_LOCK_TTL_MS} ms)`],
    ])}`);
    expect(hits.length, `service kills between publish and save: ${JSON.stringify(kills)}`)
      .toBeGreaterThanOrEqual(KILLS_IN_WINDOW);

    const misnamed = mine.filter((m) => m.messageId !== `${ledgerName}:${String(m.body.seq)}`);
    expect(misnamed.map((m) => m.messageId).slice(0, 5), 'message ids naming another seq')
      .toEqual([]);
    // Deduplicated by message id, in first-arrival order: seqs 1..head, each exactly the
    // journal's record.
    expect(distinct.map((m) => m.messageId))
      .toEqual(journal.map((_r, i) => `${ledgerName}:${i + 1}`));
    const differs = distinct.flatMap((m, i) => (isDeepStrictEqual(m.body, journal[i]) ? []
      : [`${m.messageId}: ${JSON.stringify(m.body)} vs ${JSON.stringify(journal[i])}`]));
    expect(differs.slice(0, 5), `${differs.length} message(s) differ from the journal`)
      .toEqual([]);
    // A duplicate is the same message again. The consumer keeps the parsed body; the service
    // sends JSON.stringify's bytes, which parse and stringify back to themselves.
    const first = new Map(distinct.map((m) => [m.messageId, m]));
    const unlike = mine.filter((m) => {
      const f = first.get(m.messageId);
      return f === undefined || JSON.stringify(m.body) !== JSON.stringify(f.body)
        || m.routingKey !== f.routingKey || JSON.stringify(m.headers) !== JSON.stringify(f.headers);
    });
    expect(unlike.map((m) => m.messageId).slice(0, 5), `${unlike.length} duplicate(s) differ`)
      .toEqual([]);
  } catch (error) {
    console.info(`cdc fault test failed; service output (tail):\n` +
      (system?.service?.log ?? '').slice(-FAILURE_LOG_CHARS));
    throw error;
  } finally {
    await load?.stop();
    await system?.close();
    await consumer?.close();
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}, TEST_TIMEOUT_MS);
