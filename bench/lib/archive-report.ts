/**
 * The archive's figures (bench/lib/archive.ts) in latest.md, and the issue's goals, reported
 * like every other goal, never enforced: Redis memory per archived transfer with UUID ids
 * ≤ 48 B (stretch ≤ 16 B) over 500,000 transfers; catching up a backlog at least 3× as fast as
 * single transfers commit; single transfers with the archiver at least 0.9× without it.
 */
import { TRANSFER_ID_BUCKETS } from '../../src/ledger/keys.js';
import { type ArchiveFigures, type ArchiveMemory, type ArchiveResult, type ArchiveSection,
  type ArchiveSegment, CATCH_UP_GOAL_BACKLOG, COMPACT_ID_BYTES, KEY_GROUPS, type KeyBreakdown,
  type KeyGroup, LISTPACK_ENTRY_BYTES, MEMORY_GOAL_TRANSFERS, type MemoryFigure,
  type MemoryInfo } from './archive.js';
import { type Goal, goal, type Results } from './results.js';
import { fmt, times } from './stats.js';

export const MEMORY_GOAL_BYTES = 48;
export const MEMORY_STRETCH_BYTES = 16;
export const CATCH_UP_OVER_SINGLE_MIN = 3;
export const ARCHIVE_ON_OVER_OFF_MIN = 0.9;

function memoryLabel(m: ArchiveMemory | undefined): string {
  if (m === undefined) return '';
  return ` (${fmt(m.transfers)} transfers${m.goalSize ? ''
    : `, not the goal's ${fmt(MEMORY_GOAL_TRANSFERS)}`})`;
}

/** What the hot path's archiver did while busy (LEDGER_ARCHIVE_YIELD_S). */
function yieldNote(yieldS: number | undefined): string {
  if (yieldS === undefined) return '';
  return `; LEDGER_ARCHIVE_YIELD_S ${yieldS}: ${yieldS > 0 ? 'a busy service\'s archiver ' +
    `waits until its lag is ${yieldS} s, so a round shorter than that measures a burst, and ` +
    'the archive catches up after it' : 'the archiver copies at once, as it does under a ' +
    'load that never eases'}`;
}

/** Runs written before the archive was measured have no `archive`: no goal then. */
export function archiveGoals(r: ArchiveSection | undefined): Goal[] {
  if (r === undefined) return [];
  const ok = r.available ? r : undefined;
  const m = ok?.memory;
  const backlog = ok === undefined || ok.catchUp.backlog >= CATCH_UP_GOAL_BACKLOG ? ''
    : `, a backlog of ${fmt(ok.catchUp.backlog)}, not the goal's ${fmt(CATCH_UP_GOAL_BACKLOG)}`;
  return [
    goal(`archive: Redis memory per archived transfer, UUID ids ≤ ${MEMORY_GOAL_BYTES} B` +
      memoryLabel(m), r.appendfsync, m?.afterBytesPerTransfer, 'B',
    (v) => v <= MEMORY_GOAL_BYTES),
    goal(`archive: Redis memory per archived transfer ≤ ${MEMORY_STRETCH_BYTES} B (stretch)`,
      r.appendfsync, m?.afterBytesPerTransfer, 'B', (v) => v <= MEMORY_STRETCH_BYTES),
    goal('archive: catch-up (copied and freed) records/s ÷ single transfers/s ≥ ' +
      `${CATCH_UP_OVER_SINGLE_MIN}×${backlog}`, r.appendfsync, ok?.catchUpOverSingle, '×',
    (v) => v >= CATCH_UP_OVER_SINGLE_MIN),
    goal(`archive: single transfers with the archiver ≥ ${ARCHIVE_ON_OVER_OFF_MIN}× without ` +
      '(LEDGER_ARCHIVE_URL set ÷ unset, a Redis each)', r.appendfsync, ok?.hot.onOverOff, '×',
    (v) => v >= ARCHIVE_ON_OVER_OFF_MIN),
  ];
}

const verdict = (value: number | null | undefined, met: (v: number) => boolean) =>
  (value === null || value === undefined || !Number.isFinite(value) ? '**not available**'
    : met(value) ? 'met' : '**not met**');

const bold = (text: string, miss: boolean) => (miss ? `**${text}**` : text);

const mib = (bytes: number) => `${fmt(bytes / 2 ** 20, 1)} MiB`;

function memoryRow(label: string, x: MemoryInfo, base: MemoryInfo | undefined,
  n: number): string {
  const per = (key: MemoryFigure) => (base === undefined ? '—'
    : fmt((x[key] - base[key]) / n, 1));
  return `| ${label} | ${mib(x.usedMemory)} | ${per('usedMemory')} | ${mib(x.dataset)} | ` +
    `${per('dataset')} | ${mib(x.allocatorAllocated)} | ${per('allocatorAllocated')} | ` +
    `${mib(x.rss)} | ${fmt(x.keys)} |`;
}

const GROUP_LABELS: Record<KeyGroup, string> = {
  buckets: `id index: the \`x:<bucket>\` hashes (${fmt(TRANSFER_ID_BUCKETS)} at most)`,
  journal: 'journal stream `j`',
  rejections: 'rejections stream `r`',
  accounts: 'accounts `a:<id>` (their balances grew)',
  pinned: 'pinned open holds `k`',
  other: 'every other key',
};

function breakdownTable(m: ArchiveMemory): string[] {
  const n = m.transfers;
  const delta = (k: KeyBreakdown, g: KeyGroup) => k.groups[g].bytes - m.keysBaseline.groups[g]
    .bytes;
  const cell = (k: KeyBreakdown, g: KeyGroup) => `${fmt(k.groups[g].keys)} | ` +
    `${fmt(delta(k, g) / n, 1)}`;
  const sum = (k: KeyBreakdown) => KEY_GROUPS.reduce((t, g) => t + delta(k, g), 0);
  const change = (x: MemoryInfo, key: MemoryFigure) => x[key] - m.baseline[key];
  const rest = (k: KeyBreakdown, x: MemoryInfo) => (change(x, 'usedMemory') - sum(k)
    - change(x, 'clients') - change(x, 'scripts')) / n;
  const row = (label: string, key: MemoryFigure) => `| ${label} | | ` +
    `${fmt(change(m.filled, key) / n, 1)} | | ${fmt(change(m.archived, key) / n, 1)} |`;
  return ['| what (MEMORY USAGE, SAMPLES 0, less after the accounts) | keys before archiving | ' +
    'B/transfer before | keys archived | B/transfer archived |', '|---|--:|--:|--:|--:|',
  ...KEY_GROUPS.map((g) => `| ${GROUP_LABELS[g]} | ${cell(m.keysFilled, g)} | ` +
    `${cell(m.keysArchived, g)} |`),
  row('clients\' buffers (MEMORY STATS clients.normal; no product connected)', 'clients'),
  row('scripts (used_memory_scripts)', 'scripts'),
  `| no key's: the rest of used_memory's change (the keyspace's slot table, 8 B a slot; ` +
    `the allocator) | | ${fmt(rest(m.keysFilled, m.filled), 1)} | | ` +
    `${fmt(rest(m.keysArchived, m.archived), 1)} |`,
  `| **used_memory** | | **${fmt(m.beforeBytesPerTransfer, 1)}** | | ` +
    `**${fmt(m.afterBytesPerTransfer, 1)}** |`];
}

/** What bounds an archived transfer's memory: the index's entries and its buckets. */
function bucketsText(m: ArchiveMemory): string {
  const b = m.keysArchived.buckets;
  const f = m.keysFilled.buckets;
  const n = m.transfers;
  const keys = b.listpack + b.hashtable;
  const entryPart = b.bytesPerEntry === null ? null : b.bytesPerEntry * b.entries / n;
  const keyPart = b.bytesPerKey === null ? null : b.bytesPerKey * keys / n;
  return `Id index once archived: ${fmt(keys)} buckets (${fmt(b.listpack)} listpack, ` +
    `${fmt(b.hashtable)} hashtable), ${fmt(b.entries)} entries, ${fmt(b.entries / Math.max(1,
      keys), 1)} per bucket. By least squares of each listpack bucket's MEMORY USAGE on its ` +
    `length: **${fmt(b.bytesPerEntry, 1)} B per entry** (the ${COMPACT_ID_BYTES}-byte compact ` +
    `field and its empty value encode to ${LISTPACK_ENTRY_BYTES} B of listpack; the rest is ` +
    'the allocator\'s rounding of each listpack) and ' +
    `**${fmt(b.bytesPerKey, 0)} B per bucket key** (the key's name, object and dict entry, ` +
    'the listpack\'s header): per transfer ' +
    `${fmt(entryPart, 1)} B of entries + ${fmt(keyPart, 1)} B of buckets, which shrinks as ` +
    `transfers grow (${fmt(TRANSFER_ID_BUCKETS)} keys in all). Before archiving, with the ` +
    `36-character id and its seq: ${fmt(f.bytesPerEntry, 1)} B per entry, ` +
    `${fmt(f.bytesPerKey, 0)} B per key. Left in the streams: journal ` +
    `${fmt(m.keysArchived.journalLength)} record(s), rejections ` +
    `${fmt(m.keysArchived.rejectionsLength)}; pinned holds ${fmt(m.keysArchived.pinnedLength)}.`;
}

function hotRow(label: string, f: ArchiveFigures, on: boolean): string {
  return `| ${label} | ${fmt(f.transfersPerS)} | ${fmt(f.p50Ms, 2)} | ${fmt(f.p99Ms, 2)} | ` +
    `${on ? fmt(f.archivedPerS) : '—'} | ${on ? fmt(f.lagRecords) : '—'} | ` +
    `${on ? fmt(f.drainS, 2) : '—'} | ${fmt(f.serverCpuUsPerTransfer, 1)} | ` +
    `${on ? fmt(f.postgresCpuUsPerTransfer, 1) : '—'} | ${fmt(f.serverCores, 2)} / ` +
    `${fmt(f.redisCores, 2)} / ${fmt(f.postgresCores, 2)} / ${fmt(f.benchCores, 2)} | ` +
    `${fmt(Math.max(0, f.machineCores - f.serverCores - f.redisCores - f.postgresCores
      - f.benchCores), 2)} |`;
}

/** Each round's figure, `′` where it ran second in its round. */
function perRound(rounds: readonly ArchiveSegment[], value: (x: ArchiveSegment) => string) {
  return rounds.map((x) => `${value(x)}${x.position === 1 ? '' : '′'}`).join(' / ');
}

function checksText(a: ArchiveResult): string[] {
  const c = a.checks;
  const audit = c.audit === null ? 'not run (BENCH_ARCHIVE_AUDIT=0)'
    : `${c.audit.exitCode === 0 ? 'exit 0' : `**exit ${c.audit.exitCode}**`} after ` +
      `${fmt(c.audit.seconds, 1)} s: ${c.audit.lastLines.at(-1) ?? ''}`;
  const indexOk = c.index.missing === 0;
  const pgOk = c.postgres.found === c.postgres.ids;
  const readsOk = c.reads.ok === c.reads.requested;
  return [
    `- \`npm run audit\` (scripts/audit.ts, the service's environment): ${audit}`,
    `- Every id answered 201 in Redis's id index: ${fmt(c.index.archived)} archived (compact ` +
      `field → ''), ${fmt(c.index.inRedis)} still in Redis (LEDGER_ARCHIVE_KEEP=1), ` +
      `${bold(`${fmt(c.index.missing)} missing`, !indexOk)}` +
      (indexOk ? '' : ` (${c.index.missingIds.join(', ')})`) + ` (${fmt(c.index.seconds, 1)} s)`,
    `- In ledger.transfers: ${bold(`${fmt(c.postgres.found)} of ${fmt(c.postgres.ids)}`, !pgOk)}` +
      ` (${fmt(c.postgres.seconds, 1)} s)`,
    `- GET /transfers/{id} of ${fmt(c.reads.requested)} ids drawn at random: ` +
      `${bold(`${fmt(c.reads.ok)} answered 200 with the id`, !readsOk)}, ${fmt(c.reads.perS)}/s` +
      ` (16 at a time), p50 ${fmt(c.reads.p50Ms, 2)} ms, p99 ${fmt(c.reads.p99Ms, 2)} ms` +
      (readsOk ? '' : `; ${c.reads.failures.join('; ')}`)];
}

/** Anything that makes a figure suspect, said once. */
function caveats(a: ArchiveResult): string[] {
  const segments = (['on', 'off'] as const).flatMap((side) => a.hot[side].rounds.map((x) =>
    ({ at: `${side} round ${x.round}`, x })));
  const notes: string[] = [];
  const bad = segments.filter(({ x }) => x.non2xx + x.errors > 0);
  if (bad.length > 0) {
    notes.push(`**answers other than 201 in ${bad.map((b) => `${b.at} ` +
      JSON.stringify(b.x.statusCodes)).join(', ')}**`);
  }
  const errors = segments.filter(({ x }) => (x.archiveErrors ?? 0) > 0);
  if (errors.length > 0 || a.catchUp.archiveErrors > 0) {
    notes.push(`**archiver errors (ledger_archive_errors_total) in ${[...errors.map((e) =>
      `${e.at}: ${e.x.archiveErrors}`), ...(a.catchUp.archiveErrors > 0
      ? [`the catch-up: ${a.catchUp.archiveErrors}`] : [])].join(', ')}**`);
  }
  const stuck = segments.filter(({ x }) => x.lagRecords !== null && x.drainS === null);
  if (stuck.length > 0) {
    notes.push(`**the archiver had not caught up 120 s after ${stuck.map((b) => b.at)
      .join(', ')}**`);
  }
  if (!a.catchUp.finished) notes.push('**the catch-up did not finish**');
  const rewrites = segments.filter(({ x }) => x.aofRewriteDuring).map((b) => b.at);
  if (rewrites.length > 0) notes.push(`an AOF rewrite ran during ${rewrites.join(', ')}`);
  return notes.length === 0 ? [] : ['', `Note: ${notes.join('; ')}.`];
}

/** The archive section of latest.md; nothing for a run written before it was measured. */
export function archiveSection(results: Results): string[] {
  return results.archive === undefined ? [] : archiveMarkdown(results.archive);
}

export function archiveMarkdown(a: ArchiveSection): string[] {
  const title = `## Archive to PostgreSQL (a PostgreSQL of its own, appendfsync ${a.appendfsync})`;
  if (!a.available) return ['', title, '', a.reason];
  const m = a.memory;
  const k = a.catchUp;
  const single = a.hot.off.median.transfersPerS;
  const memoryMet = (v: number) => v <= MEMORY_GOAL_BYTES;
  const catchUpMet = (v: number) => v >= CATCH_UP_OVER_SINGLE_MIN;
  const hotMet = (v: number) => v >= ARCHIVE_ON_OVER_OFF_MIN;
  const settings = Object.entries(a.postgres.settings).map(([name, v]) => `${name}=${v}`)
    .join(', ');
  const redisSettings = Object.entries(m.redisConfig).map(([name, v]) => `${name} ${v}`)
    .join(', ');
  return ['', title, '',
    `PostgreSQL ${a.postgres.version}, the bench's own (initdb in a temp dir, up in ` +
    `${fmt(a.postgres.startS, 1)} s; ${settings}), a database per archiving product. The ` +
    `archiver: a pass every ${a.intervalMs} ms, pages of up to ${fmt(a.pageRecords)} records ` +
    `(one PostgreSQL transaction each) read in chunks of ${a.chunkRecords}, freed in chunks ` +
    `of ${a.chunkRecords}. Every redis-server is started as the product's embedded one ` +
    `(src/redis/embedded.ts): ${redisSettings}.`, '',
    `**1. Memory per archived transfer** (${fmt(m.transfers)} transfers with ` +
    `${m.idLength}-character UUIDv4 ids${m.goalSize ? ''
      : `; **not the goal's ${fmt(MEMORY_GOAL_TRANSFERS)}**`}, between ${fmt(m.accounts)} ` +
    'UUID accounts, on a Redis of its own): used_memory after the accounts, after the ' +
    `transfers (batches through the product without the archive: ${fmt(m.fillS, 1)} s, ` +
    `${fmt(m.fillTransfersPerS)}/s), and after the product with LEDGER_ARCHIVE_URL and ` +
    'LEDGER_ARCHIVE_KEEP=1 copied them all and freed all but the newest. Per transfer: the ' +
    'change since the accounts ÷ N.', '',
    '| point | used_memory | B/transfer | used_memory_dataset | B/transfer | ' +
    'allocator_allocated | B/transfer | RSS | keys |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    memoryRow('after the accounts', m.baseline, undefined, m.transfers),
    memoryRow('before archiving', m.filled, m.baseline, m.transfers),
    memoryRow('archived and freed', m.archived, m.baseline, m.transfers), '',
    ...breakdownTable(m), '', bucketsText(m), '',
    `Archived: **${fmt(m.afterBytesPerTransfer, 1)} B per transfer** (before: ` +
    `${fmt(m.beforeBytesPerTransfer, 1)} B, ${times(m.beforeBytesPerTransfer
      / m.afterBytesPerTransfer).replace('×', '× as much')}), goal ≤ ${MEMORY_GOAL_BYTES} B ` +
    `${verdict(m.afterBytesPerTransfer, memoryMet)}, stretch ≤ ${MEMORY_STRETCH_BYTES} B ` +
    `${verdict(m.afterBytesPerTransfer, (v) => v <= MEMORY_STRETCH_BYTES)}.`, '',
    `**2. Catch-up**: the ${fmt(k.backlog)} records above${k.backlog >= CATCH_UP_GOAL_BACKLOG
      ? '' : ` (**not the goal's ${fmt(CATCH_UP_GOAL_BACKLOG)}**)`}, archived by a product ` +
    `started over them (up in ${fmt(k.productStartS, 1)} s; its first page committed ` +
    `${fmt(k.firstPageS, 2)} s after its start, the schema migrated first). From that page: ` +
    (k.finished ? `all copied to PostgreSQL in ${fmt(k.copiedS, 1)} s (${fmt(k.copiedPerS)} ` +
      `records/s), all but the newest freed from Redis in ${fmt(k.freedS, 1)} s: ` +
      `**${fmt(k.recordsPerS)} records/s** copied and freed`
      : '**not finished within the bound**') +
    ` (cores service / Redis / postgres / bench ${fmt(k.serverCores, 2)} / ` +
    `${fmt(k.redisCores, 2)} / ${fmt(k.postgresCores, 2)} / ${fmt(k.benchCores, 2)}, machine ` +
    `${fmt(k.machineCores, 2)}). PostgreSQL then held ${fmt(k.postgresRows)} rows in ` +
    `ledger.transfers, the database ${mib(k.postgresBytes)}. Against single transfers ` +
    `(${fmt(single)}/s, the median of 3.'s \`off\` below): ` +
    `${bold(times(a.catchUpOverSingle), !catchUpMet(a.catchUpOverSingle ?? Number.NaN))}, ` +
    `goal ≥ ${CATCH_UP_OVER_SINGLE_MIN}× ${verdict(a.catchUpOverSingle, catchUpMet)}.`, '',
    `**3. Hot path**: the product with LEDGER_ARCHIVE_URL (LEDGER_ARCHIVE_KEEP at its default, ` +
    `${fmt(a.keepDefault)}${yieldNote(a.yieldS)}` +
    `) and without, each on a Redis of its own; medians of ` +
    `${a.hot.on.rounds.length} interleaved round(s), alternating which goes first, ` +
    `${a.connections} connections, ${fmt(a.accounts)} accounts. "not copied at the end": the ` +
    'journal\'s head less the archive\'s position in Redis when the load stopped.', '',
    '| archiver | transfers/s | p50 ms | p99 ms | archived/s | not copied at the end | ' +
    'caught up after s | service CPU µs/tr | postgres CPU µs/tr | cores service / Redis / ' +
    'postgres / bench | other cores |', '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
    hotRow('(c) POST /transfers, archiver on', a.hot.on.median, true),
    hotRow('(c) POST /transfers, archiver off', a.hot.off.median, false), '',
    `On ÷ off (median of each round's ratio): ` +
    `${bold(times(a.hot.onOverOff), !hotMet(a.hot.onOverOff ?? Number.NaN))}, goal ≥ ` +
    `${ARCHIVE_ON_OVER_OFF_MIN}× ${verdict(a.hot.onOverOff, hotMet)} · per round ` +
    `(transfers/s; ′: it ran second in its round): on ` +
    `${perRound(a.hot.on.rounds, (x) => fmt(x.transfersPerS))} · off ` +
    `${perRound(a.hot.off.rounds, (x) => fmt(x.transfersPerS))}. Service CPU per transfer on ` +
    `÷ off: ${times(a.hot.serverCpuOnOverOff)}.`, '',
    '**Checks** on the archived ledger of 1.:', '', ...checksText(a), ...caveats(a)];
}
