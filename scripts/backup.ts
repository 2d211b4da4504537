/**
 * `npm run backup -- <dir>`: a consistent backup of the running ledger into the empty (or new)
 * directory <dir>, with a manifest. docs/backup.md; the work is in src/ops/backup.ts.
 */
import { takeBackup } from '../src/ops/backup.js';
import { runTool } from '../src/ops/cli.js';

process.exitCode = await runTool('backup', process.argv.slice(2), process.env,
  (dir, config, log) => takeBackup({ dir, redisUrl: config.redisUrl,
    tlsCaFile: config.redisTlsCaFile, dataDir: config.dataDir, log }));
