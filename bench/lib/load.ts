/**
 * Load generators, in the bench's own process (each server under test has its own): autocannon
 * for closed-loop maximum throughput, and a paced open-loop generator for latency at a fixed
 * rate. Latencies are kept raw (every response, in ms as a double) because autocannon's own
 * histogram rounds to whole milliseconds, too coarse for a sub-millisecond p50.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { percentile, Samples } from './stats.js';

export interface LoadResult {
  durationS: number;
  /** Responses with the expected status (200 or 201). */
  okRequests: number;
  /** Transfers decided by those responses: 1 per request, or the items of a batch. */
  transfers: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  p50Ms: number;
  p99Ms: number;
  statusCodes: Record<string, number>;
  /** Batch only: the items' `status` values, to see that they committed. */
  itemStatuses?: Record<string, number>;
}

export interface LoadSpec {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  connections: number;
  /** Run for this long, or … */
  durationS?: number;
  /** … send exactly this many requests. */
  amount?: number;
  /** autocannon's overallRate (requests per second across connections). */
  overallRate?: number;
  expectStatus: number;
  /** A fresh body per request (unique transfer ids); none for GET. */
  body?: () => string;
  /** Batch: the body answers `{ results: [...] }`; transfers are its items. */
  countItems?: boolean;
}

export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const latencies = new Samples();
  const itemStatuses: Record<string, number> = {};
  let items = 0;
  const makeBody = spec.body;
  const options: autocannon.Options = {
    url: spec.url,
    method: spec.method,
    headers: spec.headers,
    // autocannon refuses more connections than requests (a short storage run of batches).
    connections: Math.min(spec.connections, spec.amount ?? Number.POSITIVE_INFINITY),
    ...(spec.amount !== undefined ? { amount: spec.amount } : { duration: spec.durationS ?? 1 }),
    ...(spec.overallRate !== undefined ? { overallRate: spec.overallRate } : {}),
    timeout: 30,
  };
  if (makeBody !== undefined || spec.countItems) {
    options.requests = [{
      ...(makeBody === undefined ? {} : {
        setupRequest: (request: autocannon.Request) => {
          request.body = makeBody();
          return request;
        },
      }),
      ...(spec.countItems ? {
        onResponse: (status: number, body: string) => {
          if (status !== spec.expectStatus) return;
          const results = (JSON.parse(body) as { results?: unknown }).results;
          if (!Array.isArray(results)) return;
          items += results.length;
          for (const item of results as Array<{ status?: unknown }>) {
            const key = String(item?.status ?? 'none');
            itemStatuses[key] = (itemStatuses[key] ?? 0) + 1;
          }
        },
      } : {}),
    }];
  }
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error: unknown, result: autocannon.Result) => {
      if (error) return reject(error);
      const statusCodes: Record<string, number> = {};
      for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) {
        statusCodes[code] = Number(stat?.count ?? 0);
      }
      const okRequests = statusCodes[String(spec.expectStatus)] ?? 0;
      const sorted = latencies.sorted();
      resolve({
        durationS: result.duration,
        okRequests,
        transfers: spec.countItems ? items : okRequests,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        statusCodes,
        ...(spec.countItems ? { itemStatuses } : {}),
      });
    });
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode === spec.expectStatus) latencies.push(responseTime);
    });
  });
}

export interface PacedResult {
  targetPerS: number;
  achievedPerS: number;
  okRequests: number;
  non2xx: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * The generator's own worst delay in sending a request after it was due (its event loop was
   * busy, e.g. collecting garbage). A latency near this came from here, not from the server.
   */
  loaderLagMaxMs: number;
  /** Most requests outstanding at once; above `connections`, requests queued in the client. */
  maxInFlight: number;
}

/**
 * Open loop at an even rate: request i is due at start + i/rate whether or not earlier ones
 * have answered, and its latency counts from when it was due (so a stall is not hidden by
 * the generator waiting: no coordinated omission). autocannon's overallRate cannot do this:
 * each connection sends its per-second quota back to back at the top of every second.
 * The first `warmupS` open the connections and are not counted.
 */
export function paced(spec: {
  url: string; headers: Record<string, string>; body: () => string; expectStatus: number;
  ratePerS: number; durationS: number; connections: number; warmupS: number;
}): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const latencies = new Samples();
  const intervalMs = 1000 / spec.ratePerS;
  const start = performance.now();
  const countFrom = start + spec.warmupS * 1000;
  const end = countFrom + spec.durationS * 1000;
  let next = 0;
  let inFlight = 0;
  let scheduling = true;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  let lagMax = 0;
  let inFlightMax = 0;
  return new Promise((resolve) => {
    const finish = () => {
      agent.destroy();
      const sorted = latencies.sorted();
      resolve({
        targetPerS: spec.ratePerS,
        achievedPerS: ok / spec.durationS,
        okRequests: ok, non2xx, errors,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.length > 0 ? sorted[sorted.length - 1] as number : Number.NaN,
        loaderLagMaxMs: lagMax,
        maxInFlight: inFlightMax,
      });
    };
    const send = (due: number) => {
      const counted = due >= countFrom;
      if (counted) lagMax = Math.max(lagMax, performance.now() - due);
      const body = spec.body();
      inFlight++;
      inFlightMax = Math.max(inFlightMax, inFlight);
      const done = () => {
        if (--inFlight === 0 && !scheduling) finish();
      };
      const req = httpRequest(spec.url, {
        method: 'POST', agent,
        headers: { ...spec.headers, 'content-length': String(Buffer.byteLength(body)) },
      }, (res) => {
        res.resume();
        res.once('end', () => {
          if (counted) {
            if (res.statusCode === spec.expectStatus) {
              ok++;
              latencies.push(performance.now() - due);
            } else {
              non2xx++;
            }
          }
          done();
        });
      });
      req.once('error', () => {
        if (counted) errors++;
        done();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      for (;;) {
        const due = start + next * intervalMs;
        if (due > now || due >= end) break;
        next++;
        send(due);
      }
      if (start + next * intervalMs < end) {
        setTimeout(tick, 1);
      } else {
        scheduling = false;
        if (inFlight === 0) finish();
      }
    };
    tick();
  });
}

/** Account ids like the product's clients would use: 36-character UUIDs. */
export function accountPool(size: number): string[] {
  return Array.from({ length: size }, () => randomUUID());
}

/** Two different accounts of the pool. */
function pair(pool: readonly string[]): [string, string] {
  const from = randomInt(pool.length);
  const to = (from + 1 + randomInt(pool.length - 1)) % pool.length;
  return [pool[from] as string, pool[to] as string];
}

/** One transfer with a fresh id; the amount is a decimal string, as the API requires. */
export function transferItem(pool: readonly string[]) {
  const [from, to] = pair(pool);
  return { id: randomUUID(), from, to, amount: String(randomInt(1, 100_000)) };
}

export function transferBody(pool: readonly string[]): () => string {
  return () => JSON.stringify(transferItem(pool));
}

export function batchBody(pool: readonly string[], size: number, atomic: boolean): () => string {
  return () => JSON.stringify({
    transfers: Array.from({ length: size }, () => transferItem(pool)),
    atomic,
  });
}
