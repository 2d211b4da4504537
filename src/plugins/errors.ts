/**
 * One place turns every error into problem+json: Fastify's own (validation, body size, media
 * type, bad JSON), Redis unavailability (503: unknown outcome, retry with the same id) and bugs
 * (500, message not leaked).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ArchiveUnavailableError } from '../ledger/errors.js';
import type { Outcome } from '../http/outcomes.js';
import { type Problem, problem, sendProblem } from '../http/problem.js';
import { isPersistenceError, isUnavailableError } from '../redis/errors.js';

/** "body/amount must match pattern …", naming an unknown field where there is one. */
function describeValidation(error: FastifyError): string {
  const first = error.validation?.[0];
  const where = `${error.validationContext ?? 'request'}${first?.instancePath ?? ''}`;
  if (!first) return error.message;
  const params = first.params as Record<string, unknown>;
  if (typeof params.additionalProperty === 'string') {
    return `${where} has an unknown field "${params.additionalProperty}"`;
  }
  if (typeof params.propertyName === 'string') {
    return `${where} has a key that is not allowed: "${params.propertyName}"`;
  }
  return `${where} ${first.message ?? 'is not valid'}`;
}

/** Fastify's own client errors, by the status Fastify gives them, as our outcomes. */
const FASTIFY_CLIENT_ERRORS: Readonly<Record<number, Outcome>> = {
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

function fastifyProblem(error: FastifyError): Problem | undefined {
  if (error.validation) return problem('VALIDATION_ERROR', describeValidation(error));
  const status = error.statusCode;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  const outcome = FASTIFY_CLIENT_ERRORS[status];
  if (outcome === 'UNSUPPORTED_MEDIA_TYPE') {
    return problem(outcome, 'send the body as Content-Type: application/json');
  }
  // Otherwise malformed JSON, an empty JSON body, prototype poisoning and the like.
  return problem(outcome ?? 'VALIDATION_ERROR', error.message);
}

export default fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const client = fastifyProblem(error);
    if (client) return sendProblem(reply, client);
    if (isPersistenceError(error)) {
      request.log.error({ reason: error.message, transferId: request.transferId },
        'redis cannot persist: writes refused');
      return sendProblem(reply, problem('PERSISTENCE_FAILED',
        'Redis cannot persist writes (disk full or AOF write error) and refused this attempt, ' +
        'which changed nothing. Retry later with the same id.'));
    }
    if (isUnavailableError(error)) {
      // One line per request, no stack: during an outage these come by the thousand. The
      // ledger's name says which one (on a Cluster, one ledger's slot may be moving).
      request.log.warn({ reason: error.message, transferId: request.transferId,
        ledger: request.ledger?.keys.ledger }, 'redis unavailable: outcome unknown');
      return sendProblem(reply, problem('UNAVAILABLE',
        'Redis did not answer; the write may or may not have happened. Retry with the same id.'));
    }
    if (error instanceof ArchiveUnavailableError) {
      request.log.warn({ reason: error.message, transferId: request.transferId },
        'archive unavailable');
      return sendProblem(reply, problem('UNAVAILABLE', 'The record is in the PostgreSQL ' +
        'archive, which did not answer; nothing was written. Retry with the same id.'));
    }
    request.log.error({ err: error, transferId: request.transferId }, 'internal error');
    return sendProblem(reply, problem('INTERNAL', 'internal error; see the service log'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem('NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0]}`)));
}, { name: 'errors' });
