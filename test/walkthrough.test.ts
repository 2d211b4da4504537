/**
 * The README, followed as a newcomer follows it. The service starts as `npm start` starts it
 * (tsx on src/server.ts, no REDIS_URL nor API keys: its own redis-server and a development key
 * under ./data) in an empty directory, in a process group of its own as a terminal runs a job.
 * The walk-through's code block is then pasted into one bash in that directory, the port of `B=`
 * being the only change, and every `#>` line must match what the service answered, times
 * excepted (`…` stands for any lines). Then Ctrl-C, a restart on the same data, and the README's
 * reset.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { freePort } from '../src/redis/embedded.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
/** The address the README's commands use; the test's service listens on a free port instead. */
const README_BASE = 'http://127.0.0.1:3000';
/** Generous: two cores shared with the rest of the suite. */
const START_DEADLINE_MS = 90_000;
const STOP_DEADLINE_MS = 30_000;

interface Step { command: string; expected: string[] }

/** The sh blocks of one `## ` section of the README. */
function shBlocks(markdown: string, heading: string): string[] {
  const from = markdown.indexOf(`\n## ${heading}\n`);
  if (from < 0) throw new Error(`README: no section "## ${heading}"`);
  const to = markdown.indexOf('\n## ', from + 1);
  const section = markdown.slice(from, to < 0 ? undefined : to);
  return [...section.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1] as string);
}

/** Shell lines, each with the `#>` lines that follow it; comments and blank lines dropped. */
function parseSteps(block: string): Step[] {
  const steps: Step[] = [];
  for (const line of block.split('\n')) {
    const answer = /^#>(?: (.*))?$/.exec(line);
    if (answer) {
      const step = steps.at(-1);
      if (step === undefined) throw new Error(`an answer before any command: ${line}`);
      step.expected.push(answer[1] ?? '');
    } else if (line.trim() !== '' && !line.startsWith('#')) {
      steps.push({ command: line, expected: [] });
    }
  }
  const silent = steps.filter((s) => s.expected.length === 0 && !/^[A-Za-z_]\w*=/.test(s.command));
  if (silent.length > 0) {
    throw new Error(`commands without their answer: ${silent.map((s) => s.command).join('; ')}`);
  }
  return steps;
}

/** Times differ from run to run, and so would a key or a generated id if one were shown. */
function normalise(line: string, secrets: string[]): string {
  let text = line.replace(/\r$/, '')
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g, '<time>')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '<id>');
  for (const secret of secrets) text = text.replaceAll(secret, '<key>');
  return text;
}

/**
 * Where `actual` departs from `expected` (blank lines ignored on both sides): '' when it does
 * not. A `…` line matches any number of lines, up to the first that matches the line after it.
 */
function difference(expected: string[], actual: string[]): string {
  const want = expected.filter((l) => l.trim() !== '');
  const got = actual.filter((l) => l.trim() !== '');
  let g = 0;
  for (const [w, line] of want.entries()) {
    if (line === '…') {
      const next = want[w + 1];
      if (next === undefined) return '';
      while (g < got.length && got[g] !== next) g++;
      continue;
    }
    if (got[g] !== line) return `expected: ${line}\n  actual: ${got[g] ?? '(nothing more)'}`;
    g++;
  }
  return g < got.length ? `expected nothing more\n  actual: ${got[g]}` : '';
}

/** Runs the steps in one bash, in `cwd`, as pasted; each step's output lines. */
function runSteps(steps: Step[], cwd: string): string[][] {
  const marker = (i: number) => `@@walkthrough-step-${i}@@`;
  const script = steps.map((s, i) => `printf '\\n%s\\n' '${marker(i)}'\n${s.command}`).join('\n');
  const run = spawnSync('bash', ['--noprofile', '--norc', '-c', `${script}\necho`],
    { cwd, encoding: 'utf8', timeout: START_DEADLINE_MS });
  if (run.status !== 0) throw new Error(`bash exited ${run.status}: ${run.stderr}`);
  const outputs: string[][] = [];
  for (const line of run.stdout.split('\n')) {
    const m = /^@@walkthrough-step-(\d+)@@$/.exec(line);
    if (m) outputs[Number(m[1])] = [];
    else outputs.at(-1)?.push(line);
  }
  return outputs;
}

interface Running {
  child: ChildProcess; base: string; output: () => string; exit: Promise<number | null>;
}

/** `npm start` in `cwd`, by the env a fresh shell has: no Redis, no keys, no data dir set. */
function npmStart(cwd: string, port: number): Running {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^(REDIS_|LEDGER_|PORT$|HOST$|LOG_LEVEL$)/.test(name)) env[name] = value;
  }
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'src/server.ts')],
    { cwd, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'],
      detached: true });
  let output = '';
  child.stdout?.on('data', (d) => { output += d; });
  child.stderr?.on('data', (d) => { output += d; });
  const exit = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  return { child, base: `http://127.0.0.1:${port}`, output: () => output, exit };
}

async function ready(r: Running): Promise<void> {
  const deadline = Date.now() + START_DEADLINE_MS;
  while (Date.now() < deadline) {
    if (r.child.exitCode !== null) throw new Error(`the service exited:\n${r.output()}`);
    try {
      if ((await fetch(`${r.base}/readyz`)).status === 200) return;
    } catch { /* not listening yet */ }
    await sleep(200);
  }
  throw new Error(`the service was not ready in time:\n${r.output()}`);
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

const started: Running[] = [];
const dirs: string[] = [];
afterAll(() => {
  for (const r of started) {
    if (r.child.exitCode === null && r.child.pid) process.kill(-r.child.pid, 'SIGKILL');
  }
  for (const d of dirs) {
    // A failed run may leave its redis-server: never leave one behind.
    const pidFile = join(d, 'data/redis.pid');
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(d, { recursive: true, force: true });
  }
});

/** Starts the service in `cwd` and waits until /readyz says it is ready. */
async function start(cwd: string): Promise<Running> {
  const r = npmStart(cwd, await freePort());
  started.push(r);
  await ready(r);
  return r;
}

/** Ctrl-C, as a terminal sends it: SIGINT to the whole process group of the job. */
async function ctrlC(r: Running, cwd: string): Promise<void> {
  const redisPid = Number(readFileSync(join(cwd, 'data/redis.pid'), 'utf8'));
  process.kill(-(r.child.pid as number), 'SIGINT');
  const code = await Promise.race([r.exit, sleep(STOP_DEADLINE_MS, 'still running')]);
  expect(code, r.output()).toBe(0);
  const deadline = Date.now() + STOP_DEADLINE_MS;
  while (alive(redisPid) && Date.now() < deadline) await sleep(100);
  expect(alive(redisPid), 'the embedded redis-server outlived the service').toBe(false);
}

const get = (r: Running, path: string, secret: string) =>
  fetch(`${r.base}${path}`, { headers: { authorization: `Bearer ${secret}` } });

describe('the walk-through parser and comparison', () => {
  test('pairs each command with its answer lines, and refuses a command without one', () => {
    expect(parseSteps('B=x\n# say\ncurl a\n#> one\n#> two\n\ncurl b\n#> three\n')).toEqual([
      { command: 'B=x', expected: [] },
      { command: 'curl a', expected: ['one', 'two'] },
      { command: 'curl b', expected: ['three'] },
    ]);
    expect(() => parseSteps('curl a\ncurl b\n#> x')).toThrow(/without their answer: curl a/);
  });

  test('finds a changed, missing or extra line; `…` skips lines; times do not count', () => {
    expect(difference(['a', '…', 'd'], ['a', 'b', 'c', 'd'])).toBe('');
    expect(difference(['a', '…'], ['a', 'b'])).toBe('');
    expect(difference(['a', 'b'], ['a', 'c'])).toMatch(/expected: b\n {2}actual: c/);
    expect(difference(['a', 'b'], ['a'])).toMatch(/nothing more/);
    expect(difference(['a'], ['a', 'b'])).toMatch(/expected nothing more/);
    expect(normalise('{"createdAt":"2026-12-06T09:14:45.373Z"}\r', []))
      .toBe(normalise('{"createdAt":"2027-01-01T00:00:00.000Z"}', []));
    expect(normalise('"seq":"1"', [])).not.toBe(normalise('"seq":"2"', []));
  });
});

test('the README: npm start, the walk-through line by line, Ctrl-C, restart, reset',
  { timeout: 4 * START_DEADLINE_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ledger-walkthrough-'));
    dirs.push(dir);
    const first = await start(dir);
    // The README reads the key from data/dev-api-key, and says the start printed it.
    const secret = readFileSync(join(dir, 'data/dev-api-key'), 'utf8').trim();
    expect(first.output()).toContain(secret);

    const steps = shBlocks(README, 'Walk-through').flatMap(parseSteps);
    expect(steps.length).toBeGreaterThan(10);
    const at = steps.filter((s) => s.command.includes(README_BASE));
    expect(at.map((s) => s.command), `one line sets ${README_BASE}`).toHaveLength(1);
    const port = new URL(first.base).port;
    const local = steps.map((s) =>
      ({ ...s, command: s.command.replace(README_BASE, `http://127.0.0.1:${port}`) }));
    const outputs = runSteps(local, dir);
    const problems = steps.flatMap((step, i) => {
      const diff = difference(step.expected.map((l) => normalise(l, [secret])),
        (outputs[i] ?? []).map((l) => normalise(l, [secret])));
      return diff === '' ? [] : [`${step.command}\n  ${diff}`];
    });
    expect(problems.join('\n\n')).toBe('');

    // Ctrl-C, then a start on the same ./data: the same ledger and key, not printed again.
    await ctrlC(first, dir);
    const second = await start(dir);
    expect(second.output()).not.toContain(secret);
    expect(await (await get(second, '/accounts/alice', secret)).json())
      .toMatchObject({ balance: '6500' });
    await ctrlC(second, dir);

    // The README's reset, while stopped: an empty ledger and a new key.
    for (const block of shBlocks(README, 'Stopping and resetting')) {
      expect(spawnSync('bash', ['--noprofile', '--norc', '-c', block], { cwd: dir }).status)
        .toBe(0);
    }
    expect(existsSync(join(dir, 'data'))).toBe(false);
    const third = await start(dir);
    const newSecret = readFileSync(join(dir, 'data/dev-api-key'), 'utf8').trim();
    expect(newSecret).not.toBe(secret);
    expect(third.output()).toContain(newSecret);
    expect((await get(third, '/accounts/alice', secret)).status).toBe(401);
    expect((await get(third, '/accounts/alice', newSecret)).status).toBe(404);
    await ctrlC(third, dir);
  });
