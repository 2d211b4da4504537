/**
 * Problem details (RFC 9457) and the one table that maps outcomes to HTTP.
 */
import type { FastifyReply } from 'fastify';
import { limits } from '../config/limits.js';

export const PROBLEM_TITLES = {
  VALIDATION_ERROR: 'The request is not valid',
  SAME_ACCOUNT: 'A transfer needs two different accounts',
  ACCOUNT_NOT_FOUND: 'Account not found',
  TRANSFER_NOT_FOUND: 'Transfer not found',
  NOT_FOUND: 'No such route',
  ACCOUNT_EXISTS_WITH_DIFFERENT_FIELDS: 'The account id exists with different fields',
  TRANSFER_EXISTS_WITH_DIFFERENT_FIELDS: 'The transfer id was decided with different fields',
  TRANSFER_EXISTS: 'An atomic batch names a transfer id decided before, among new ones',
  PAYLOAD_TOO_LARGE: 'The request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'The request body must be application/json',
  CURRENCY_MISMATCH: 'Currencies do not match',
  INSUFFICIENT_FUNDS: 'Insufficient funds',
  BALANCE_OVERFLOW: 'A balance would exceed 2^128-1',
  UNAVAILABLE: 'The ledger is unavailable; the outcome of a write is unknown',
  PERSISTENCE_FAILED: 'Redis cannot persist writes; this attempt changed nothing',
  NOT_READY: 'The service is not ready',
  UNAUTHORIZED: 'A valid API key is required',
  FORBIDDEN: 'The API key lacks the scope this needs',
  RATE_LIMITED: 'Too many requests for this API key',
  INTERNAL: 'Internal error',
} as const;

export type ProblemCode = keyof typeof PROBLEM_TITLES;

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
}

export function problem(status: number, code: ProblemCode, detail: string): Problem {
  return {
    type: `urn:atomic-ledger:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: PROBLEM_TITLES[code],
    status,
    code,
    detail,
  };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  if (p.status === 503) reply.header('retry-after', String(limits.RETRY_AFTER_SECONDS));
  return reply.code(p.status).type('application/problem+json').send(p);
}
