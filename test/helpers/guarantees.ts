/**
 * A test that a README guarantee rests on never skips silently. When what it needs is missing:
 * - in CI (CI=true), a prerequisite CI's set-up can provide (an apt package) fails the test,
 *   naming what is missing: a guarantee must not go untested because the set-up lacks a step;
 * - otherwise (a developer's machine, or a prerequisite no set-up can provide, such as the
 *   privilege to mount a file system) the test is skipped with a warning, and its name and
 *   what it lacks are appended to the file $LEDGER_SKIPPED_GUARANTEES_FILE when that is set:
 *   .ci/run sets it and prints the file as its last lines, pass or fail.
 */
import { appendFileSync } from 'node:fs';
import { test } from 'vitest';

export interface Guarantee {
  /** The test (or group) that backs the guarantee, as a reader finds it: file and name. */
  name: string;
  /** Why it cannot run here, or undefined when it can. */
  missing: string | undefined;
  /** True when CI's set-up can provide the prerequisite: then CI fails rather than skips. */
  installable: boolean;
}

/** Whether the guarantee's tests can run here; when not, it fails in CI or records the skip. */
export function guaranteeRuns(g: Guarantee): boolean {
  if (g.missing === undefined) return true;
  if (process.env.CI === 'true' && g.installable) {
    test(`${g.name}: cannot run here`, () => {
      throw new Error(`${g.missing}; CI must provide it (scripts/setup.mjs): the README's ` +
        'guarantee rests on this test');
    });
    return false;
  }
  console.warn(`SKIPPED guarantee test ${g.name}: ${g.missing}`);
  const file = process.env.LEDGER_SKIPPED_GUARANTEES_FILE;
  if (file) appendFileSync(file, `${g.name}: ${g.missing}\n`);
  return false;
}
