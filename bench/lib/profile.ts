/**
 * BENCH_PROFILE=1: the product runs under `node --cpu-prof`; this reads the .cpuprofile (JSON:
 * a call tree of nodes, and a list of sampled node ids with the time before each sample) and
 * ranks functions by self time, i.e. time with that function on top of the stack.
 */
import { readFileSync } from 'node:fs';

interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }>;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  name: string;
  where: string;
  selfMs: number;
  percent: number;
}

/** Shortens file URLs to what a reader needs: the repository path or the package's path. */
function shortUrl(url: string, root: string): string {
  const path = url.replace(/^file:\/\//, '');
  const inModules = path.lastIndexOf('/node_modules/');
  if (inModules >= 0) return path.slice(inModules + '/node_modules/'.length);
  return path.startsWith(root) ? path.slice(root.length) : path;
}

export function topSelfTime(file: string, root: string, count: number): SelfTime[] {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const totals = new Map<string, SelfTime>();
  let all = 0;
  for (const [i, id] of profile.samples.entries()) {
    // timeDeltas[i] is the time since the previous sample: the time this stack was sampled for.
    const micros = profile.timeDeltas[i] ?? 0;
    const frame = byNode.get(id)?.callFrame;
    if (frame === undefined) continue;
    all += micros;
    const name = frame.functionName || '(anonymous)';
    // Code that tsx transformed reports line 0 for every function: then the file alone.
    const line = frame.lineNumber > 0 ? `:${frame.lineNumber + 1}` : '';
    const where = frame.url ? `${shortUrl(frame.url, root)}${line}` : '';
    const key = `${name}\u0000${where}`;
    const entry = totals.get(key) ?? { name, where, selfMs: 0, percent: 0 };
    entry.selfMs += micros / 1000;
    totals.set(key, entry);
  }
  return [...totals.values()]
    .map((entry) => ({ ...entry, percent: all > 0 ? (entry.selfMs * 100_000) / all : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, count);
}

export function formatTopSelfTime(title: string, rows: SelfTime[]): string {
  const lines = [`${title}`, '  self ms      %  function  (location)'];
  for (const row of rows) {
    lines.push(`${row.selfMs.toFixed(0).padStart(9)} ${row.percent.toFixed(1).padStart(6)}  ` +
      `${row.name}${row.where ? `  (${row.where})` : ''}`);
  }
  return lines.join('\n');
}
