/**
 * `npm run restore -- <dir>`: checks the backup in <dir> and restores it into an empty
 * LEDGER_DATA_DIR, or an empty Redis at REDIS_URL. docs/backup.md; the work is in
 * src/ops/restore.ts.
 */
import { runTool } from '../src/ops/cli.js';
import { restoreBackup } from '../src/ops/restore.js';

process.exitCode = await runTool('restore', process.argv.slice(2), process.env,
  (dir, config, log) => restoreBackup({ dir, redisUrl: config.redisUrl,
    tlsCaFile: config.redisTlsCaFile, dataDir: config.dataDir, log }));
