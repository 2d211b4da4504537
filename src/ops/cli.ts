/**
 * The command line of `npm run backup` and `npm run restore` (scripts/backup.ts,
 * scripts/restore.ts): one argument, the backup directory; the rest from the service's own
 * environment (src/config/env.ts), so the tools find the Redis the service uses. Progress goes
 * to standard output; a refusal or failure to standard error, and the exit code is 1.
 */
import { type Config, loadConfig } from '../config/env.js';
import { messageOf, Refusal } from './redis-tools.js';

export type ToolAction = (dir: string, config: Config, log: (line: string) => void) =>
  Promise<unknown>;

/** Runs the tool; resolves to the process's exit code. */
export async function runTool(command: 'backup' | 'restore', args: readonly string[],
  env: NodeJS.ProcessEnv, action: ToolAction): Promise<number> {
  const [dir, ...rest] = args;
  if (dir === undefined || dir === '' || dir.startsWith('-') || rest.length > 0) {
    console.error(`usage: npm run ${command} -- <dir>   (see docs/backup.md)`);
    return 1;
  }
  try {
    const config = loadConfig(env);
    if (config.clusterNodes.length > 0 || config.sentinels.length > 0) {
      // One ledger's data is one node's (a primary); a whole cluster has no single snapshot.
      throw new Refusal(`${command} takes REDIS_URL (one primary) or the embedded Redis; with ` +
        'REDIS_CLUSTER_NODES or REDIS_SENTINELS, point REDIS_URL at each primary in turn ' +
        '(docs/backup.md)');
    }
    await action(dir, config, (line) => console.log(line));
    return 0;
  } catch (error) {
    const verb = error instanceof Refusal ? 'refused' : 'failed';
    console.error(`${command} ${verb}: ${messageOf(error)}`);
    return 1;
  }
}
