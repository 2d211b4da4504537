/**
 * `npm run audit`: checks every ledger's books across Redis and the PostgreSQL archive, with
 * the service's own environment (REDIS_URL, LEDGER_KEY_PREFIX, LEDGER_NAME,
 * LEDGER_ARCHIVE_URL). One line per divergence on standard output; exit 0 when every check
 * holds, 1 on a divergence, 2 when it could not audit. The work is in src/archive/audit.ts.
 */
import { runAudit } from '../src/archive/audit.js';

process.exitCode = await runAudit(process.env);
