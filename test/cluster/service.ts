/**
 * The service as its own process in Redis Cluster mode (REDIS_CLUSTER_NODES), for
 * test/cluster/ledgers.test.ts: started as test/ha starts it (`node --import tsx src/server.ts`),
 * plus what those tests read from it and from the cluster: ledgers made over HTTP, the
 * service's own cluster retries (`GET /metrics`), the redirections each node answered (INFO
 * errorstats), ledger names chosen so that they spread over the primaries, and the bank
 * workload of test/faults/bank run on one ledger through its base URL `/ledgers/<name>`.
 */
import { freePort } from '../../src/redis/embedded.js';
import { parseInfo } from '../../src/redis/readiness.js';
import { type Attempt, History, seededRandom } from '../faults/bank/history.js';
import { ServiceProcess } from '../faults/bank/system.js';
import { BankLoad, bankSpec, resolveAll } from '../faults/bank/workload.js';
import { API_KEYS_ENV, AUTH_HEADER } from '../helpers/auth.js';
import type { Cluster, ClusterNode } from './cluster.js';

const REQUEST_TIMEOUT_MS = 5000;
/** Every request still ambiguous when a load stops gets this long to be decided. */
const RESOLVE_BUDGET_MS = 15_000;
/** The labels of ledger_redis_cluster_retries_total, as the contract names them. */
export const RETRY_ERRORS = ['tryagain', 'clusterdown', 'moved', 'ask', 'other'] as const;
export const RETRIES_METRIC = 'ledger_redis_cluster_retries_total';
/** Errors a cluster node answers to send a client elsewhere or to wait (INFO errorstats). */
export const REDIRECTIONS = ['ASK', 'MOVED', 'TRYAGAIN', 'CLUSTERDOWN'] as const;

/** Error lines kept per service: its first ones, where the cause of a 500 is. */
const ERROR_LINES_KEPT = 200;

export interface ClusterService {
  process: ServiceProcess;
  /**
   * Every log line of level error (50) or fatal (60), and any line that is not JSON (a crash's
   * stack): the process keeps only the tail of its output, which a flood of warnings (a 503
   * each) pushes the cause of a 500 out of.
   */
  errors: string[];
  /** Warnings by `<message>: <reason>`, counted (a 503's cause is logged as one). */
  warnings: Map<string, number>;
  /** The transfer ids of the first few requests each warning was about. */
  warnedIds: Map<string, string[]>;
  /** Every 503's cause and transfer id, in order (the first WARNINGS_KEPT). */
  unavailable: Array<{ at: number; reason: string; transferId: string; ledger: string }>;
}

const WARNED_IDS_KEPT = 3;
const WARNINGS_KEPT = 50_000;
/** The message src/plugins/errors.ts logs with each 503 UNAVAILABLE. */
const UNAVAILABLE_MESSAGE = 'redis unavailable: outcome unknown';

/** A pino line's fields this module reads. */
interface LogLine {
  level?: number;
  time?: number;
  msg?: string;
  reason?: string;
  transferId?: string;
  ledger?: string;
  err?: { message?: string };
}

const WARN_LEVEL = 40;

/** Starts the service against every node of `cluster`, waits until /readyz says ready. */
export async function startClusterService(cluster: Cluster,
  env: Record<string, string> = {}): Promise<ClusterService> {
  const service = ServiceProcess.spawn(await freePort(), {
    // Never the suite's single Redis, nor an embedded one: the cluster's nodes only.
    REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.nodesArg, LEDGER_API_KEYS: API_KEYS_ENV,
    ...env,
  });
  const errors: string[] = [];
  const warnings = new Map<string, number>();
  const warnedIds = new Map<string, string[]>();
  const unavailable: ClusterService['unavailable'] = [];
  let partial = '';
  const keep = (data: Buffer) => {
    const lines = (partial + data.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter((l) => l.trim() !== '')) {
      let parsed: LogLine | undefined;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch { /* not a log line: a crash's output */ }
      if (parsed?.level === WARN_LEVEL) {
        const key = `${parsed.msg ?? '?'}: ${parsed.reason ?? parsed.err?.message ?? ''}`;
        warnings.set(key, (warnings.get(key) ?? 0) + 1);
        const ids = warnedIds.get(key) ?? [];
        if (parsed.transferId !== undefined && ids.length < WARNED_IDS_KEPT) {
          warnedIds.set(key, [...ids, parsed.transferId]);
        }
        if (parsed.msg === UNAVAILABLE_MESSAGE && unavailable.length < WARNINGS_KEPT) {
          unavailable.push({ at: parsed.time ?? Date.now(), reason: parsed.reason ?? '',
            transferId: parsed.transferId ?? '', ledger: parsed.ledger ?? '' });
        }
      } else if (errors.length < ERROR_LINES_KEPT
        && (parsed === undefined || (parsed.level ?? 0) > WARN_LEVEL)) errors.push(line);
    }
  };
  service.child.stdout?.on('data', keep);
  service.child.stderr?.on('data', keep);
  try {
    await service.waitReady();
  } catch (error) {
    await service.kill();
    throw error;
  }
  return { process: service, errors, warnings, warnedIds, unavailable };
}

export interface Answer {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
  replayed: boolean;
}

/** One request with the test key (every scope); the body parsed when it is JSON. */
export async function call(base: string, method: 'GET' | 'POST', path: string,
  body?: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    headers: body === undefined ? AUTH_HEADER
      : { ...AUTH_HEADER, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch { /* /metrics, or an error page: the text says it */ }
  return { status: res.status, text, json,
    replayed: res.headers.get('idempotent-replayed') === 'true' };
}

/** POST /ledgers; 201 (new) or 200 (the same fields) is success. */
export async function createLedger(base: string, name: string): Promise<Answer> {
  const answer = await call(base, 'POST', '/ledgers', { name });
  if (answer.status !== 201 && answer.status !== 200) {
    throw new Error(`POST /ledgers ${name}: ${answer.status} ${answer.text}`);
  }
  return answer;
}

/**
 * The service's own cluster retries by error (missing labels are 0); undefined when /metrics
 * does not declare the counter at all (a counter with labels shows no sample until counted).
 */
export async function clusterRetries(base: string)
  : Promise<Record<string, number> | undefined> {
  const answer = await call(base, 'GET', '/metrics');
  if (answer.status !== 200) throw new Error(`GET /metrics: ${answer.status} ${answer.text}`);
  if (!answer.text.includes(`# TYPE ${RETRIES_METRIC} counter`)) return undefined;
  const counts: Record<string, number> = Object.fromEntries(RETRY_ERRORS.map((e) => [e, 0]));
  const sample = new RegExp(`^${RETRIES_METRIC}\\{([^}]*)\\} (\\S+)$`, 'gm');
  for (const [, labels, value] of answer.text.matchAll(sample)) {
    // The contract names the label `error`; the service in progress calls it `reason`.
    const error = /(?:error|reason)="([^"]*)"/.exec(labels ?? '')?.[1] ?? '?';
    counts[error] = (counts[error] ?? 0) + Number(value);
  }
  return counts;
}

export const total = (counts: Record<string, number>) =>
  Object.values(counts).reduce((s, n) => s + n, 0);

/** What `after` counted more than `before`, by key. */
export function delta(before: Record<string, number>, after: Record<string, number>) {
  return Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)]));
}

/** The redirection and wait errors `node` has answered since it started. */
export async function redirectionsAnswered(node: ClusterNode): Promise<Record<string, number>> {
  const info = parseInfo(await node.admin((r) => r.info('errorstats')));
  return Object.fromEntries(REDIRECTIONS.map((e) =>
    [e, Number(/count=(\d+)/.exec(info.get(`errorstat_${e}`) ?? '')?.[1] ?? 0)]));
}

/**
 * `count` ledger names `<prefix>-<i>` spread over the primaries: no primary gets more than its
 * even share rounded up, so with 8 ledgers on 3 primaries each gets 2 or 3. A ledger's keys
 * all carry the hash tag `{<name>}`, so its slot is the slot of its name.
 */
export async function spreadLedgers(cluster: Cluster, prefix: string,
  count: number): Promise<Map<string, ClusterNode>> {
  const primaries = cluster.nodes.filter((n) => n.role === 'primary');
  const cap = Math.ceil(count / primaries.length);
  const chosen = new Map<string, ClusterNode>();
  const load = new Map<ClusterNode, number>();
  for (let i = 0; chosen.size < count; i++) {
    const name = `${prefix}-${i}`;
    const owner = await cluster.primaryFor(cluster.slotOf(name));
    if ((load.get(owner) ?? 0) >= cap) continue;
    load.set(owner, (load.get(owner) ?? 0) + 1);
    chosen.set(name, owner);
  }
  return chosen;
}

/**
 * One ledger's bank: its clients' history across every phase of a test file (the checker
 * compares the ledger with all of it), and its load while running. Its draws follow from the
 * run's seed and its name.
 */
export class LedgerBank {
  readonly history = new History();
  readonly spec = bankSpec();
  readonly seed: number;
  readonly base: string;
  private readonly random: () => number;
  private load: BankLoad | undefined;
  private round = 0;

  constructor(readonly name: string, serviceBase: string, readonly slot: number,
    runSeed: number) {
    this.base = `${serviceBase}/ledgers/${name}`;
    let h = runSeed >>> 0;
    for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    this.seed = h;
    this.random = seededRandom(this.seed);
  }

  start(): void {
    this.load = BankLoad.start(this.base, this.spec, this.history, this.random,
      `${this.name}-r${this.round++}`);
  }

  /** Stops the clients and decides every ambiguous request, with its same id. */
  async stop(): Promise<void> {
    await this.load?.stop();
    this.load = undefined;
    await resolveAll(this.base, this.history, RESOLVE_BUDGET_MS);
  }

  /** Every HTTP attempt sent from `from` to `to`. */
  attempts(from = 0, to = Number.POSITIVE_INFINITY): Attempt[] {
    return this.history.ops.flatMap((op) => op.attempts)
      .filter((a) => a.start >= from && a.start <= to);
  }
}
