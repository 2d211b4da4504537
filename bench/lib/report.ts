/** bench/results/latest.md: the same figures as the JSON, as tables a reviewer can read. */
import { archiveSection } from './archive-report.js';
import { cdcSection } from './cdc-report.js';
import { clusterSection } from './cluster-report.js';
import { holdsSection } from './holds-report.js';
import { replicationSection } from './replication-report.js';
import { type Figures, KIND_LABELS, KINDS, type PolicyResult, type PostgresFigures,
  type Results, type Storage, type StorageFigures } from './results.js';
import { fmt, times } from './stats.js';


const fmtRatio = times;

const GiB = 1024 ** 3;

function figureRow(label: string, f: Figures): string {
  return `| ${label} | ${fmt(f.requestsPerS)} | ${fmt(f.transfersPerS)} | ${fmt(f.p50Ms, 2)} | ` +
    `${fmt(f.p99Ms, 2)} | ${fmt(f.redisScriptUsPerTransfer, 1)} | ` +
    `${fmt(f.redisCpuUsPerTransfer, 1)} | ${fmt(f.serverCpuUsPerTransfer, 1)} | ` +
    `${fmt(f.serverCores, 2)} / ${fmt(f.redisCores, 2)} / ${fmt(f.loaderCores, 2)} | ` +
    `${fmt(Math.max(0, f.machineCores - f.serverCores - f.redisCores - f.loaderCores), 2)} |`;
}

/** (p): no Redis script; its "Redis or postgres" columns are the postgres processes'. */
function postgresRow(label: string, f: PostgresFigures): string {
  return `| ${label} | ${fmt(f.requestsPerS)} | ${fmt(f.transfersPerS)} | ${fmt(f.p50Ms, 2)} | ` +
    `${fmt(f.p99Ms, 2)} | — | ${fmt(f.postgresCpuUsPerTransfer, 1)} | ` +
    `${fmt(f.serverCpuUsPerTransfer, 1)} | ${fmt(f.serverCores, 2)} / ` +
    `${fmt(f.postgresCores, 2)} / ${fmt(f.loaderCores, 2)} | ` +
    `${fmt(Math.max(0, f.machineCores - f.serverCores - f.postgresCores - f.loaderCores), 2)} |`;
}

/** The policy's table: a, b, c, then p beside c (to which it is compared), then d. */
function policyTable(policy: PolicyResult): string[] {
  const out = ['| server | req/s | transfers/s | p50 ms | p99 ms | Redis script µs/tr | ' +
    'Redis or postgres CPU µs/tr | server CPU µs/tr | cores server / Redis or postgres / load ' +
    '| other cores |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|'];
  for (const kind of KINDS) {
    const k = policy.kinds[kind];
    out.push(k.available ? figureRow(k.label, k.median)
      : `| ${k.label} | ${k.reason} |${' — |'.repeat(8)}`);
    // Runs written before (p) existed have no `postgres`.
    const pg = policy.postgres as PolicyResult['postgres'] | undefined;
    if (kind === 'single' && pg !== undefined) {
      out.push(pg.available ? postgresRow(pg.label, pg.median)
        : `| ${pg.label} | ${pg.reason} |${' — |'.repeat(8)}`);
    }
  }
  return out;
}

function postgresSection(r: Results): string[] {
  const pg = r.postgres;
  if (!pg.available) return ['', '## (p) PostgreSQL ledger', '', pg.reason];
  const c = pg.check;
  const settings = Object.entries(pg.settings).map(([k, v]) => `${k} ${v}`).join(', ');
  return ['', '## (p) PostgreSQL ledger', '',
    `PostgreSQL ${pg.version}, the bench's own (initdb in a temporary directory, loopback), ` +
      `at its defaults: ${settings}. bench/postgres-ledger.sql: the semantics of the product's ` +
      'POST /transfers (idempotent by id, overdraft check, an entry per account, rejections ' +
      'recorded, amounts numeric(39,0)) in ONE PL/pgSQL call, one transaction and one WAL ' +
      `flush per transfer, through a pool of ${pg.poolSize} connections behind the lean ` +
      "server's Fastify shape (bench/servers/postgres.ts). It runs in every round of both " +
      'fsync policies (it does not change between them), beside the product, so that the ' +
      'ratio c/p compares the same minute.', '',
    `Books checked after its segments: ${fmt(c.committed)} transfers committed ` +
      `(${fmt(c.acknowledged)} acknowledged with 201), ${fmt(c.rejected)} rejected, ` +
      `${fmt(c.entries)} entries, balances sum to ${c.netBalance}, ` +
      `${c.unbalancedTransfers} transfers without two balanced entries, ${c.accountsOff} ` +
      'accounts disagreeing with their entries.'];
}

function storageRow(label: string, s: Storage['perKind'][keyof Storage['perKind']]
  | StorageFigures): string {
  if (!s.available) return `| ${label}: ${s.reason} | — | — | — | — |`;
  return `| ${label} | ${fmt(s.transfers)} | ${fmt(s.durationS, 1)} | ` +
    `${fmt(s.ramBytesPerTransfer)} | ${fmt(s.aofBytesPerTransfer)} |`;
}

export function markdown(r: Results): string {
  const p = r.parameters;
  const v = r.versions;
  const out: string[] = [
    `# Atomic Ledger benchmark, ${r.startedAt}`,
    '',
    `- Machine: ${r.machine.cpuModel}, ${r.machine.cores} cores, ` +
      `${fmt(r.machine.totalMemBytes / GiB, 1)} GiB, ${r.machine.os} ${r.machine.kernel}`,
    `- Versions: Node ${v.node}, redis-server ${v.redis}, fastify ${v.fastify}, ` +
      `ioredis ${v.ioredis}, autocannon ${v.autocannon}` +
      (r.git ? `; commit ${r.git.commit.slice(0, 12)}${r.git.dirty ? ' (dirty)' : ''}` : ''),
    `- Parameters: ${p.durationS} s per segment × ${p.rounds} rounds, interleaved a → b → c → p ` +
      `→ d each round, warm-up ${p.warmupS} s per server; ${p.connections} connections for ` +
      `a/b/c/p (p: a pool of ${p.postgresPoolSize} to PostgreSQL), ` +
      `${p.batchConnections} for d with ${p.batchSize} transfers per batch ` +
      `(${p.atomicBatchSize ?? p.batchSize} when atomic); ` +
      `${p.accounts} accounts; product LOG_LEVEL ${p.productLogLevel}, rate limit raised to ` +
      `${fmt(p.productRateLimitPerSecond)}/s` + (p.quick ? '; **BENCH_QUICK (not a measurement)**'
      : '') + (p.profile ? '; **BENCH_PROFILE (product under --cpu-prof)**' : ''),
    '- Figures are medians across rounds; ratios are medians of each round\'s ratio. Every ' +
      'server is a child process; the load generator, the servers and Redis share the machine. ' +
      '"cores": CPU seconds per second of the server, redis-server and the load generator; ' +
      '"other cores": of every other process on the machine (an AOF rewrite\'s child, other ' +
      'people\'s work): where it is high, the figures are of a contended machine.',
  ];
  for (const [name, policy] of Object.entries(r.policies)) {
    out.push('', `## appendfsync ${name}`, '', ...policyTable(policy));
    const ra = policy.ratios;
    out.push('', `Ratios: c/b (product ÷ lean) **${fmtRatio(ra.singleOverLean)}** · c/p ` +
      `(product ÷ PostgreSQL, single transfers/s; goal ≥ 4×, stretch 6×) ` +
      `**${fmtRatio(ra.singleOverPostgres)}** · d/c ` +
      `(batch ÷ single transfers/s) **${fmtRatio(ra.batchOverSingle)}** (atomic:true ` +
      `${fmtRatio(ra.batchAtomicOverSingle)}) · b/a (lean ÷ hello req/s) ` +
      `${fmtRatio(ra.leanOverHello)} · c2/c (2 workers ÷ 1) ${fmtRatio(ra.twoWorkersOverOne)} · ` +
      `c/c1 (group commit on ÷ off) ${fmtRatio(ra.groupOverNoGroup)}`);
    const spread = KINDS.flatMap((kind) => {
      const k = policy.kinds[kind];
      if (!k.available) return [];
      const key = kind === 'hello' ? 'requestsPerS' : 'transfersPerS';
      return [`${kind} ${k.rounds.map((s) => fmt(s[key])).join(' / ')}`];
    });
    if (policy.postgres.available) {
      spread.push(`postgres ${policy.postgres.rounds.map((s) => fmt(s.transfersPerS))
        .join(' / ')}`);
    }
    out.push('', `Per round (${'req/s for hello, transfers/s for the others'}): ` +
      `${spread.join(' · ')}`);
    if (policy.aofRewrites > 0) {
      out.push('', `Redis rewrote its AOF (automatically, at 2× growth) during ` +
        `${policy.aofRewrites} segment(s): a fork, and a child busy on one of the cores.`);
    }
    const h = policy.halfRate;
    out.push('', h === null ? 'Half max throughput: not measured.'
      : `Half max throughput (product single: max ${fmt(h.maxTransfersPerS)}/s measured just ` +
        `before, target ${fmt(h.targetPerS)}/s): paced even arrivals p50 ` +
        `${fmt(h.paced.p50Ms, 2)} ms, ` +
        `**p99 ${fmt(h.paced.p99Ms, 2)} ms** (max ${fmt(h.paced.maxMs, 1)} ms, achieved ` +
        `${fmt(h.paced.achievedPerS)}/s, the generator itself late by up to ` +
        `${fmt(h.paced.loaderLagMaxMs, 1)} ms; cores server / Redis / load / other ` +
        `${fmt(h.paced.serverCores, 2)} / ${fmt(h.paced.redisCores, 2)} / ` +
        `${fmt(h.paced.loaderCores, 2)} / ${fmt(h.paced.otherCores, 2)}); ` +
        'autocannon overallRate p50 ' +
        `${fmt(h.autocannon.p50Ms, 2)} ms, p99 ${fmt(h.autocannon.p99Ms, 2)} ms (achieved ` +
        `${fmt(h.autocannon.achievedPerS)}/s; it sends each connection's per-second quota ` +
        'back to back, so its latencies are those of bursts)' +
        (h.aofRewriteDuring ? '; **an AOF rewrite ran meanwhile**' : '') +
        (h.aofDelayedFsyncs > 0 ? `; ${h.aofDelayedFsyncs} delayed fsync(s)` : '') +
        (h.paced.maxInFlight > r.parameters.connections
          ? `; up to ${fmt(h.paced.maxInFlight)} requests were outstanding at once (more than ` +
            'the connections): the server fell behind the rate meanwhile' : '') + '.');
  }
  out.push(...postgresSection(r));
  const s = r.storage;
  out.push('', `## Storage (fresh Redis, appendfsync ${s.appendfsync})`, '',
    'Each run in turn; used_memory and aof_current_size deltas read after it. The small runs ' +
      'stay under Redis\'s 64 MB first-rewrite threshold, so their AOF growth is exact; the ' +
      'large run gives RAM per stored transfer (its AOF is usually rewritten meanwhile: —).', '',
    '| run | transfers stored | s | RAM B/transfer | AOF B/transfer |',
    '|---|--:|--:|--:|--:|',
    ...(['lean', 'single', 'batch', 'batchAtomic'] as const).map((kind) =>
      storageRow(KIND_LABELS[kind], s.perKind[kind])),
    storageRow(`large run: ${s.large.via}`, s.large));
  const d = r.scripts;
  out.push('', `## Script time inside Redis at its worst (appendfsync ${d.appendfsync})`, '',
    `Each script driven at its worst (bench/lib/worst-case.ts), ${d.rounds} rounds; Redis's ` +
      'own durations (SLOWLOG): execution only, no network. `eval`: a first call after ' +
      `SCRIPT FLUSH (in the first ${d.coldRounds} of them), which compiles the script. A ` +
      'shared machine can deschedule Redis mid-script: the maximum says as much of the ' +
      'machine as of the script.',
    '', '| script | case | command | calls | p50 ms | p95 ms | max ms | budget ms |',
    '|---|---|---|--:|--:|--:|--:|--:|',
    ...d.rows.map((x) => `| ${x.script} | ${x.case} | ${x.command} | ${x.calls} | ` +
      `${fmt(x.p50Ms, 3)} | ${x.p95Ms > x.budgetMs ? `**${fmt(x.p95Ms, 3)}**`
        : fmt(x.p95Ms, 3)} | ${fmt(x.maxMs, 3)} | ${x.budgetMs} |`));
  out.push(...holdsSection(r));
  out.push(...replicationSection(r));
  out.push(...clusterSection(r));
  out.push(...cdcSection(r));
  out.push(...archiveSection(r));
  out.push('', '## Goals (reported, never enforced)', '',
    '| goal | fsync | measured | status |', '|---|---|--:|---|');
  for (const g of r.goals) {
    const digits = g.unit === 'ms' || g.unit === 'µs' || g.unit === '×' ? 2 : 0;
    const measured = g.measured === null ? '—' : `${fmt(g.measured, digits)} ${g.unit}`;
    out.push(`| ${g.goal} | ${g.policy} | ${measured} | ` +
      `${g.status === 'met' ? 'met' : `**${g.status}**`} |`);
  }
  return `${out.join('\n')}\n`;
}
