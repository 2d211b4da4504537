/**
 * The OpenAPI document, built from the routes themselves. The app is built around an ioredis
 * client that never connects (`lazyConnect`), so no Redis is needed: `npm run openapi` writes
 * the committed openapi/openapi.json with this, and test/openapi.test.ts checks the served
 * document against that file.
 */
import { Redis } from 'ioredis';
import { buildApp } from './app.js';
import { ledgerKeys } from './ledger/keys.js';
import { Ledger } from './ledger/ledger.js';
import { createLedgerMetrics } from './metrics/ledger-metrics.js';
import { redisOptions } from './redis/client.js';

const NO_REDIS_SOCKET = '/nonexistent/atomic-ledger-openapi.sock';

/** Where the committed document lives, relative to the repository root. */
export const OPENAPI_FILE = 'openapi/openapi.json';

export async function openApiDocument(): Promise<object> {
  // Never connected: lazyConnect, and building the app sends no command. Should that change,
  // ioredis would connect on the first command: the socket below does not exist, so it fails
  // at once instead of reaching a Redis on the default 127.0.0.1:6379.
  const redis = new Redis({ ...redisOptions(), lazyConnect: true, path: NO_REDIS_SOCKET });
  const metrics = createLedgerMetrics({ defaultMetrics: false });
  const ledger = new Ledger({ redis, keys: ledgerKeys('openapi', 'openapi'),
    observer: metrics.observer });
  const app = await buildApp({ ledger, redis, auth: { mode: 'off' }, metrics });
  try {
    await app.ready();
    return app.swagger();
  } finally {
    await app.close();
    redis.disconnect();
  }
}

/** The file's exact text: 2-space JSON with a trailing newline. */
export function formatOpenApi(document: object): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}
