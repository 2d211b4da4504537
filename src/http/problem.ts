/**
 * Problem details (RFC 9457), built from the outcome table (outcomes.ts): a caller names the
 * outcome and says what happened; status, code and title come from the table.
 */
import type { FastifyReply } from 'fastify';
import { limits } from '../config/limits.js';
import { type Outcome, OUTCOMES, type OutcomeStatus, type ProblemCode, problemCode } from
  './outcomes.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ProblemCode;
  detail: string;
}

export function problem<O extends Outcome>(outcome: O, detail: string):
  Problem & { status: OutcomeStatus<O> } {
  const code = problemCode(outcome);
  return {
    type: `urn:atomic-ledger:problem:${code.toLowerCase().replaceAll('_', '-')}`,
    title: OUTCOMES[outcome].title,
    status: OUTCOMES[outcome].status,
    code,
    detail,
  };
}

export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  if (p.status === 503) reply.header('retry-after', String(limits.RETRY_AFTER_SECONDS));
  return reply.code(p.status).type('application/problem+json').send(p);
}
