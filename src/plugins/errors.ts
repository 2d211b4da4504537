/**
 * One place turns every error into problem+json: Fastify's own (validation, body size, media
 * type, bad JSON), Redis unavailability (503: unknown outcome, retry with the same id) and bugs
 * (500, message not leaked).
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { problem, sendProblem } from '../http/problem.js';
import { isPersistenceError, isUnavailableError } from '../ledger/errors.js';

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

export default fp(async (app: FastifyInstance) => {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      return sendProblem(reply, problem(400, 'VALIDATION_ERROR', describeValidation(error)));
    }
    if (error.statusCode === 413) {
      return sendProblem(reply, problem(413, 'PAYLOAD_TOO_LARGE', error.message));
    }
    if (error.statusCode === 415) {
      return sendProblem(reply, problem(415, 'UNSUPPORTED_MEDIA_TYPE',
        'send the body as Content-Type: application/json'));
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Malformed JSON, empty JSON body, prototype poisoning and the like.
      return sendProblem(reply, problem(400, 'VALIDATION_ERROR', error.message));
    }
    if (isPersistenceError(error)) {
      request.log.error({ reason: error.message }, 'redis cannot persist: writes refused');
      return sendProblem(reply, problem(503, 'PERSISTENCE_FAILED',
        'Redis cannot persist writes (disk full or AOF write error) and refused this attempt, ' +
        'which changed nothing. Retry later with the same id.'));
    }
    if (isUnavailableError(error)) {
      // One line per request, no stack: during an outage these come by the thousand.
      request.log.warn({ reason: error.message }, 'redis unavailable: outcome unknown');
      return sendProblem(reply, problem(503, 'UNAVAILABLE',
        'Redis did not answer; the write may or may not have happened. Retry with the same id.'));
    }
    request.log.error({ err: error }, 'internal error');
    return sendProblem(reply, problem(500, 'INTERNAL', 'internal error; see the service log'));
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'NOT_FOUND',
      `no route ${request.method} ${request.url.split('?')[0]}`)));
}, { name: 'errors' });
