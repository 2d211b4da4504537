/**
 * The archiver's thread (started by src/archive/thread.ts): its own Redis connection, ledger
 * directory and PostgreSQL pool, the same Archiver as in-process (src/archive/archiver.ts), and
 * every event sent to the service as a message. Ends when told to stop, once the page under
 * way is done and its connections are closed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { limits } from '../config/limits.js';
import { LedgerDirectory } from '../ledger/directory.js';
import { ledgerKeys } from '../ledger/keys.js';
import { Ledger } from '../ledger/ledger.js';
import { markClosing } from '../redis/client.js';
import { primaryConnection } from '../redis/connect.js';
import { Archiver } from './archiver.js';
import { ArchiveStore } from './store.js';
import type { ThreadData, ThreadMessage, ToThread } from './thread.js';

const port = parentPort;
if (port === null) throw new Error('src/archive/thread-main.ts runs as a worker thread only');
const { config, url } = workerData as ThreadData;
const send = (message: ThreadMessage) => port.postMessage(message);
const describe = (error: unknown) => String((error as Error)?.stack ?? error);

const redis = primaryConnection(config, url);
const store = new ArchiveStore(config.archiveUrl as string, { max: 2, onError: (error) =>
  send({ type: 'warn', message: 'archive: a PostgreSQL connection failed; the pool replaces it',
    error: describe(error) }) });
let archiver: Archiver | undefined;
let stopping = false;
/** The service's event loop was busy over the last interval (the service says so each one). */
let busy = false;

async function stop(): Promise<void> {
  stopping = true;
  await archiver?.stop();
  await store.close().catch(() => undefined);
  markClosing(redis);
  if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
  else redis.disconnect();
  send({ type: 'stopped' });
  port?.close();
}
port.on('message', (message: ToThread) => {
  if (message === 'stop') void stop();
  else if (message.type === 'load') busy = message.utilisation >= limits.ARCHIVE_YIELD_BUSY;
});

/** Connects, then archives until told to stop; told to stop while connecting, it just ends. */
async function run(): Promise<void> {
  await redis.connect();
  const ledger = new Ledger({ redis, keys: ledgerKeys(config.keyPrefix, config.ledgerName),
    groupCommit: false, observer: { scriptCompleted: (script, outcome, seconds) =>
      send({ type: 'script', script, outcome, seconds }) } });
  await ledger.ensureScripts();
  if (stopping) return;
  archiver = new Archiver({ directory: new LedgerDirectory(ledger, redis), store,
    keepRecords: config.archiveKeep,
    yieldTo: { busy: () => busy, lagS: config.archiveYieldS },
    observer: {
      archived: (records, rejections) => send({ type: 'archived', records, rejections }),
      freed: (records) => send({ type: 'freed', records }),
      yielded: () => send({ type: 'yielded' }),
      error: (reason) => send({ type: 'error', reason }),
      lag: (records, seconds, decided) => send({ type: 'lag', records, seconds, decided }),
    },
    onError: (error) => send({ type: 'warn',
      message: 'archive: a page was not copied; the next pass tries again',
      error: describe(error) }) });
  archiver.start();
}

try {
  await run();
} catch (error) {
  // A failed start ends the thread (the service starts another), unless it was told to stop.
  if (!stopping) throw error;
}
