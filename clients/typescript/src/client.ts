/**
 * The Atomic Ledger client: openapi-fetch over the types openapi-typescript generates from
 * openapi/openapi.json (src/schema.ts; `npm run openapi:client` rewrites it). Every path,
 * parameter, body and answer is typed from the document: no casts needed by its users.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths };
type Schemas = components['schemas'];

export type Account = Schemas['Account'];
export type CreateAccountRequest = Schemas['CreateAccountRequest'];
/** A transfer, or a hold with `"pending": true`. */
export type TransferRequest = Schemas['TransferRequest'];
export type PostRequest = Schemas['PostRequest'];
export type VoidRequest = Schemas['VoidRequest'];
export type ReversalRequest = Schemas['ReversalRequest'];
/** A decided transfer: `status` narrows it to CommittedTransfer or RejectedTransfer. */
export type Transfer = Schemas['Transfer'];
export type CommittedTransfer = Schemas['CommittedTransfer'];
export type RejectedTransfer = Schemas['RejectedTransfer'];
export type Entry = Schemas['Entry'];
export type EntriesPage = Schemas['EntriesPage'];
export type TransferBatchRequest = Schemas['TransferBatchRequest'];
/** One transfer of a batch: `status` (201, 409, 422) narrows it. */
export type BatchResult = Schemas['BatchResult'];
export type Problem = Schemas['Problem'];
export type ProblemCode = Problem['code'];

export type LedgerClient = Client<paths>;

export interface LedgerClientOptions {
  /** Where the service listens, e.g. `http://127.0.0.1:3000`. */
  baseUrl: string;
  /** A secret of `LEDGER_API_KEYS`; omit for `/healthz` and `/readyz` only. */
  apiKey?: string;
  /** Another fetch (a proxy, a test double); default: the global one. */
  fetch?: (input: Request) => Promise<Response>;
}

export function createLedgerClient(options: LedgerClientOptions): LedgerClient {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    ...(options.apiKey === undefined ? {}
      : { headers: { Authorization: `Bearer ${options.apiKey}` } }),
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
  });
}
