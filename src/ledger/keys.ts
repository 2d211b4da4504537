/**
 * The one module that builds Redis key names. Every key of one ledger shares the hash tag
 * `{<ledger>}`, so all keys a script touches live in one Redis Cluster slot.
 *
 *   <prefix>:{<ledger>}:meta          hash   fmt (data-format version), seq (last committed seq)
 *   <prefix>:{<ledger>}:a:<accountId> hash   one account
 *   <prefix>:{<ledger>}:e:<accountId> stream the account's entries, stream id = `<seq>-0`
 *   <prefix>:{<ledger>}:t:<transferId> hash  one decided transfer (committed or rejected)
 */
const NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

export interface LedgerKeys {
  readonly tag: string;
  meta(): string;
  account(id: string): string;
  entries(accountId: string): string;
  transfer(id: string): string;
  /** Pattern matching every key of this ledger (tests and operators; never on the hot path). */
  all(): string;
}

export function ledgerKeys(prefix: string, ledger: string): LedgerKeys {
  if (!NAME_PATTERN.test(prefix)) throw new Error(`invalid key prefix ${JSON.stringify(prefix)}`);
  if (!NAME_PATTERN.test(ledger)) throw new Error(`invalid ledger name ${JSON.stringify(ledger)}`);
  const base = `${prefix}:{${ledger}}:`;
  return {
    tag: `{${ledger}}`,
    meta: () => `${base}meta`,
    account: (id) => `${base}a:${id}`,
    entries: (id) => `${base}e:${id}`,
    transfer: (id) => `${base}t:${id}`,
    all: () => `${base}*`,
  };
}
