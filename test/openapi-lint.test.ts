/**
 * The committed OpenAPI document lints clean with tools nobody here wrote: Spectral's
 * `spectral:oas` rules (.spectral.yaml) and Redocly's recommended rules (redocly.yaml). Every
 * rule turned off is in those files with its reason. Both are local npm binaries; Redocly is
 * told not to send usage data nor look for updates, so nothing leaves the machine.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const DOCUMENT = 'openapi/openapi.json';
const bin = (name: string) => join(ROOT, 'node_modules/.bin', name);

const OFFLINE = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
  NO_COLOR: '1' };

function run(command: string, args: string[]) {
  const result = spawnSync(bin(command), args, { cwd: ROOT, env: OFFLINE, encoding: 'utf8',
    timeout: 120_000 });
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

/** Rules a config turns off, each with the comment just above it. */
function rulesOff(file: string): Array<{ rule: string; reason: string }> {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const config = parse(lines.join('\n')) as { rules?: Record<string, unknown> };
  return Object.entries(config.rules ?? {}).filter(([, level]) => level === 'off')
    .map(([rule]) => {
      const at = lines.findIndex((l) => l.trim().startsWith(`${rule}:`));
      const reason: string[] = [];
      for (let i = at - 1; i >= 0 && lines[i]?.trim().startsWith('#'); i--) {
        reason.unshift(lines[i]?.trim().replace(/^#\s*/, '') ?? '');
      }
      return { rule, reason: reason.join(' ') };
    });
}

describe('the OpenAPI document lints clean', () => {
  test('Spectral (spectral:oas): no error, warning, info or hint', () => {
    const { status, output } = run('spectral',
      ['lint', '--ruleset', '.spectral.yaml', '--format', 'json', '--fail-severity', 'hint',
        '--quiet', DOCUMENT]);
    const start = output.indexOf('[');
    const problems = start < 0 ? output : JSON.parse(output.slice(start, output.lastIndexOf(']')
      + 1)) as unknown[];
    expect(problems, output).toEqual([]);
    expect(status, output).toBe(0);
  }, 120_000);

  test('Redocly (recommended): no error, no warning, nothing ignored', () => {
    const result = spawnSync(bin('redocly'), ['lint', DOCUMENT, '--format', 'json'],
      { cwd: ROOT, env: OFFLINE, encoding: 'utf8', timeout: 120_000 });
    // stdout is the report; a notice about Node.js versions goes to stderr.
    const report = JSON.parse(result.stdout) as { totals: object; problems: unknown[] };
    expect(report.problems, result.stdout).toEqual([]);
    expect(report.totals).toEqual({ errors: 0, warnings: 0, ignored: 0 });
    expect(result.status).toBe(0);
  }, 120_000);

  test('configs extend the recommended rule sets; each rule turned off says why', () => {
    expect(parse(readFileSync(join(ROOT, '.spectral.yaml'), 'utf8')).extends)
      .toEqual(['spectral:oas']);
    const redocly = parse(readFileSync(join(ROOT, 'redocly.yaml'), 'utf8'));
    expect(redocly.extends).toEqual(['recommended']);
    expect(redocly.telemetry).toBe('off');
    for (const file of ['.spectral.yaml', 'redocly.yaml']) {
      for (const { rule, reason } of rulesOff(file)) {
        expect(reason.length, `${file}: ${rule} is off without a reason`).toBeGreaterThan(20);
      }
    }
  });
});
