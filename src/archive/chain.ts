/**
 * The archive's hash chains, one per stream of each ledger (the journal, the rejections): each
 * row's hash is sha256 over the previous row's hash and the row's record as Redis stored it.
 * Changing, removing or reordering an archived row breaks every hash after it, and the chain's
 * head is also kept in Redis (lua/archive-7.lua) when the archiver saves its position, so an
 * archive edited and re-hashed afterwards still disagrees with Redis. npm run audit checks both.
 */
import { createHash } from 'node:crypto';

/** The hash before a chain's first row. */
export const CHAIN_START = '0'.repeat(64);

export type ChainStream = 'journal' | 'rejections';

/** `ref`: the record's seq (journal) or number (rejections); `record`: its stored JSON. */
export function chainHash(previous: string, ledger: string, stream: ChainStream, ref: string,
  record: string): string {
  return createHash('sha256').update(Buffer.from(previous, 'hex'))
    .update(`${ledger}\n${stream}\n${ref}\n${record}`).digest('hex');
}
