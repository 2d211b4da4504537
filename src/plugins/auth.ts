/**
 * Authentication and authorisation for every route: a route declares the scope it needs in
 * `config.scope` ('public' for health checks and the API description). A missing or unknown
 * key is 401, a key without the scope 403; both problem+json. Each key is rate limited.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { type ApiKey, allows, authenticate, type Scope } from '../auth/keys.js';
import { TokenBuckets } from '../auth/rate-limit.js';
import { limits } from '../config/limits.js';
import { problem, sendProblem } from '../http/problem.js';

export type RouteScope = Scope | 'public';

export type AuthOptions =
  | { mode: 'keys'; keys: readonly ApiKey[]; ratePerSecond?: number }
  | { mode: 'off' };

/**
 * Recorded as `createdBy` when authentication is off. The API description (`/docs`,
 * `/openapi.json`) is public, like the health checks: it holds no data.
 */
export const ANONYMOUS = 'anonymous';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteScope;
  }
  interface FastifyRequest {
    /** The authenticated key's name (or `anonymous` with auth off): becomes `createdBy`. */
    caller: string;
    /** The only ledgers the key reaches (`:ledgers=a|b`); undefined: every ledger. */
    ledgers: ReadonlySet<string> | undefined;
  }
}

const BEARER = /^Bearer ([A-Za-z0-9._~+/=-]{1,512})$/;

/** The interactive docs (@fastify/swagger-ui's routes): public, like the document itself. */
function isDocsRoute(url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/');
}

export default fp<AuthOptions>(async (app: FastifyInstance, options) => {
  app.decorateRequest('caller', ANONYMOUS);
  app.decorateRequest('ledgers', undefined);
  // Fail closed: a route that does not say which scope it needs is a bug found at start-up,
  // never a route open to any key (the docs' routes are declared public here).
  app.addHook('onRoute', (route) => {
    const config = (route.config ?? {}) as { scope?: RouteScope };
    if (config.scope !== undefined) return;
    if (!isDocsRoute(route.url)) {
      throw new Error(`route ${route.method} ${route.url} declares no config.scope`);
    }
    route.config = { ...config, scope: 'public' };
  });
  if (options.mode === 'off') return;
  const keys = options.keys;
  // Secrets that authenticated, so a key's every request does not pay a SHA-256 (bench/
  // profile). Only a valid secret is stored, so this holds at most one entry per key and a
  // flood of wrong secrets cannot grow it; a wrong secret always takes the constant-time path.
  const known = new Map<string, ApiKey>();
  const remember = (secret: string): ApiKey | undefined => {
    const key = authenticate(keys, secret);
    if (key !== undefined) known.set(secret, key);
    return key;
  };
  const buckets = new TokenBuckets(options.ratePerSecond ?? limits.RATE_LIMIT_PER_KEY_PER_SECOND,
    limits.RATE_LIMIT_BURST_SECONDS);

  const deny = (reply: FastifyReply, outcome: 'UNAUTHORIZED' | 'FORBIDDEN', detail: string) => {
    if (outcome === 'UNAUTHORIZED') {
      reply.header('www-authenticate', 'Bearer realm="atomic-ledger"');
    }
    return sendProblem(reply, problem(outcome, detail));
  };

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    // Unmatched routes need a valid key too, so that routes cannot be probed anonymously.
    const scope: RouteScope = request.routeOptions.config.scope ?? 'read';
    if (scope === 'public') return;
    const header = request.headers.authorization;
    const secret = header === undefined ? undefined : BEARER.exec(header)?.[1];
    const key = secret === undefined ? undefined : known.get(secret) ?? remember(secret);
    if (!key) {
      return deny(reply, 'UNAUTHORIZED', 'send Authorization: Bearer <API key>');
    }
    const waitSeconds = buckets.take(key.name, Date.now());
    if (waitSeconds > 0) {
      reply.header('retry-after', String(waitSeconds));
      return sendProblem(reply, problem('RATE_LIMITED',
        `key "${key.name}" is over ${buckets.ratePerSecond} requests per second`));
    }
    if (!allows(key, scope)) {
      return deny(reply, 'FORBIDDEN', `key "${key.name}" lacks the "${scope}" scope`);
    }
    request.caller = key.name;
    request.ledgers = key.ledgers;
  });
}, { name: 'auth' });
