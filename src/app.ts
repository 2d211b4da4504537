/**
 * Builds the Fastify app from plugins and routes. No process handling here (server.ts owns it),
 * so tests build the same app around their own Redis.
 */
import { randomUUID } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Ajv from 'ajv';
import type { ArchiveYield } from './archive/archiver.js';
import type { ArchiveStore } from './archive/store.js';
import addFormats from 'ajv-formats';
import { type TObject, Type } from '@sinclair/typebox';
import Fastify, {
  type FastifyInstance, type FastifyServerOptions, LogController, type RouteOptions,
} from 'fastify';
import type { Redis } from 'ioredis';
import { limits } from './config/limits.js';
import { problem, sendProblem } from './http/problem.js';
import type { Ledger } from './ledger/ledger.js';
import { DEFAULT_PERSISTENCE_POLICY, type PersistencePolicy } from './redis/readiness.js';
import auth, { type AuthOptions } from './plugins/auth.js';
import drain from './plugins/drain.js';
import errors from './plugins/errors.js';
import { LedgerParam } from './http/schemas.js';
import ledgerPlugin, { resolveLedger } from './plugins/ledger.js';
import type { LedgerMetrics } from './metrics/ledger-metrics.js';
import metricsPlugin from './plugins/metrics.js';
import swagger from './plugins/swagger.js';
import accounts from './routes/accounts.js';
import health from './routes/health.js';
import metricsRoute from './routes/metrics.js';
import holds from './routes/holds.js';
import ledgers from './routes/ledgers.js';
import transfers from './routes/transfers.js';
import journal from './routes/journal.js';

export interface AppOptions {
  ledger: Ledger;
  redis: Redis;
  logger?: FastifyServerOptions['logger'];
  /** What readiness demands of Redis's persistence; default: strict, appendfsync always. */
  persistence?: PersistencePolicy;
  /**
   * Prometheus metrics and `GET /metrics`: the metrics the ledger was built with
   * (createLedgerMetrics), or `false` for none (to measure their cost). Required, like `auth`.
   */
  metrics: LedgerMetrics | false;
  /** API keys, or `{ mode: 'off' }`; required, so that no caller gets an open app by accident. */
  auth: AuthOptions;
  /**
   * Release expired holds in the background (the service always does; tests that control the
   * clock themselves leave it off). Default: off.
   */
  sweepHolds?: boolean;
  /** Publish change data to this AMQP broker and exchange (LEDGER_CDC_AMQP_URL); default: off. */
  cdc?: { url: string; exchange: string };
  /**
   * Archive decided records to this PostgreSQL (LEDGER_ARCHIVE_URL; the ledger reads archived
   * records from the same store); default: off. The app closes it when it closes.
   */
  archive?: { store: ArchiveStore; keepRecords?: number; background?: boolean;
    /** Wait while the service is busy (src/archive/archiver.ts ArchiveYield). */
    yieldTo?: ArchiveYield;
    /** Archives instead of an archiver in the app (src/plugins/ledger.ts). */
    runner?: { start(): void; stop(): Promise<void> } };
}

/**
 * Secrets never reach the log, whoever logs the headers. Request bodies are not logged at all
 * (Fastify logs method, URL and status only), so metadata stays out of the log too.
 */
const LOG_REDACT_PATHS = ['req.headers.authorization', 'req.headers.cookie',
  'headers.authorization', 'headers.cookie'];

function loggerOptions(logger: AppOptions['logger']): FastifyServerOptions['logger'] {
  if (logger === undefined || logger === false) return false;
  const redact = { paths: LOG_REDACT_PATHS, censor: '[redacted]' };
  return { ...(logger === true ? {} : logger), redact };
}

/**
 * No coercion anywhere ("5" is not 5; query parameters are strings with digit patterns, so
 * "1e3" or " 1" is not a number either) and no silent removal of unknown fields: errors.
 */
function validator() {
  const ajv = new Ajv.default({ coerceTypes: false, removeAdditional: false, useDefaults: true,
    allErrors: false, strict: false });
  addFormats.default(ajv);
  return ajv;
}

export async function buildApp(options: AppOptions) {
  const app = Fastify({
    logger: loggerOptions(options.logger),
    // Request ids that stay unique across restarts and instances, unlike Fastify's req-1, req-2.
    genReqId: () => randomUUID(),
    // One access-log line per request (below) instead of Fastify's two: measured in bench/, the
    // second line cost ~5% of a transfer's CPU and said nothing the first does not.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.BODY_BYTES_MAX,
    requestTimeout: limits.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: limits.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: limits.HTTP_REQUEST_TIMEOUT_MS,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    // Path parameters are ids; a longer one is a validation error (400), not a router 414.
    routerOptions: { maxParamLength: limits.ID_LENGTH_MAX },
    // Node's own limits against slow or bloated clients (431 for larger headers).
    // Node checks those timeouts every connectionsCheckingInterval (default 30 s): check each
    // second, so a slow-loris connection is cut within the timeout plus a second.
    http: { maxHeaderSize: limits.HTTP_HEADER_BYTES_MAX,
      headersTimeout: limits.HTTP_HEADERS_TIMEOUT_MS, connectionsCheckingInterval: 1000 },
    frameworkErrors: (error, _request, reply) =>
      sendProblem(reply, problem('VALIDATION_ERROR', error.message)),
  }).withTypeProvider<TypeBoxTypeProvider>();

  const ajv = validator();
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  // Only JSON bodies: Fastify's default text/plain parser would turn a 415 into a 400.
  app.removeContentTypeParser('text/plain');

  // The transfer a request is about: its lines name it. A field, not a child logger per
  // request (bench/ profile: a pino child per transfer cost more than the line it served).
  app.decorateRequest('transferId', undefined);
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info({ req: { method: request.method, url: request.url },
      res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime,
      transferId: request.transferId }, 'request completed');
    done();
  });
  await app.register(drain);
  await app.register(errors);
  await app.register(auth, options.auth);
  await app.register(ledgerPlugin, { ledger: options.ledger, redis: options.redis,
    persistence: options.persistence ?? DEFAULT_PERSISTENCE_POLICY,
    sweepHolds: options.sweepHolds ?? false,
    cdc: options.cdc === undefined ? undefined : { ...options.cdc,
      ...(options.metrics === false ? {} : { observer: options.metrics.cdc }) },
    archive: options.archive === undefined ? undefined : { ...options.archive,
      ...(options.metrics === false ? {} : { observer: options.metrics.archive }) } });
  await app.register(metricsPlugin, { metrics: options.metrics });
  await app.register(swagger);
  await app.register(health);
  if (options.metrics !== false) await app.register(metricsRoute);
  await app.register(ledgers);
  // The routes of a ledger, twice: unprefixed for the default ledger, and under
  // /ledgers/{ledger} for any ledger (the same handlers; request.ledger says which).
  await app.register(ledgerRoutes, { prefixed: false });
  await app.register(ledgerRoutes, { prefixed: true, prefix: '/ledgers/:ledger' });
  return app;
}

/**
 * The account, transfer and hold routes of one ledger. Under the prefix, each route's schema
 * gains the `ledger` path parameter and its operationId the suffix `InLedger` (the document
 * lists both forms), and the ledger is resolved before anything else (plugins/ledger.ts).
 */
async function ledgerRoutes(scope: FastifyInstance, options: { prefixed: boolean }) {
  scope.addHook('onRequest', resolveLedger(scope, options.prefixed));
  if (options.prefixed) scope.addHook('onRoute', inLedger);
  await scope.register(accounts);
  await scope.register(transfers);
  await scope.register(holds);
  await scope.register(journal);
}

function inLedger(route: RouteOptions): void {
  const schema = route.schema as { operationId?: string; params?: TObject } | undefined;
  if (schema === undefined) return;
  const params = schema.params;
  route.schema = { ...schema,
    ...(schema.operationId === undefined ? {} : { operationId: `${schema.operationId}InLedger` }),
    params: Type.Object({ ledger: LedgerParam, ...(params?.properties ?? {}) },
      { additionalProperties: false }) };
}

export type App = Awaited<ReturnType<typeof buildApp>>;

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the transfer routes; logged with the request's lines (undefined: none). */
    transferId: string | undefined;
  }
}
