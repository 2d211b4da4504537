/**
 * The writing scripts called directly through ioredis, with their KEYS and ARGV as their headers
 * document them, for the script-level tests of test/lua/. Every argument has a default that a
 * case overrides; accounts are named by id and their keys built by the fixture's LedgerKeys.
 */
import { AMOUNT_MAX } from '../../src/config/limits.js';
import {
  loadScripts, runScript, type Script, type ScriptObserver,
} from '../../src/ledger/scripts.js';
import { statusCode as S } from '../../src/ledger/status.js';
import type { Fixture } from '../helpers/ledger.js';

export const NOW = 1_795_000_000_000;
export const MAX = AMOUNT_MAX.toString();

const scripts = loadScripts();
export const script = (name: string) => scripts.get(name) as Script;

type Args = Partial<Record<string, string>>;

/**
 * Callers of every writing script on the fixture's ledger (`meta` may name another meta key);
 * an `observer` is told of each call, as the ledger's is.
 */
export function calls(f: Fixture, observer?: ScriptObserver) {
  const k = f.keys;
  const run = (name: string, keys: string[], args: string[]) =>
    runScript(f.redis, script(name), keys, args, observer) as Promise<unknown[]>;
  /** An account's key, or for an unknown one ('') a key of this ledger that scripts ignore. */
  const accountKey = (id: string | undefined) => id ? k.account(id) : k.meta();

  const c = {
    createAccount(argv: Args = {}) {
      const a = { id: 'x', currency: 'USD', overdraft: '0', metadata: '{}', now: String(NOW),
        by: 'svc', meta: k.meta(), ...argv } as Record<string, string>;
      return run('create-account', [a.meta as string, k.account(a.id as string), k.accountIds()],
        [a.id, a.currency, a.overdraft, a.metadata, a.now, a.by] as string[]);
    },

    /** A transfer, or with `hold` (its timeout in seconds, '0': none) a hold. */
    transfer(argv: Args = {}) {
      const a = { id: 't', from: 'a', to: 'b', amount: '1', currency: '', metadata: '{}',
        now: String(NOW), by: 'svc', hold: '', meta: k.meta(), ...argv } as Record<string, string>;
      const expires = argv.expires ?? (a.hold === '' || a.hold === '0' ? ''
        : String(Number(a.now) + Number(a.hold) * 1000));
      return run('transfer', [a.meta as string, k.transferBucket(a.id as string),
        k.account(a.from as string), k.account(a.to as string), k.journal(), k.rejections(),
        k.accountIds(), k.expiries(), k.holdStats()],
      [a.id, a.from, a.to, a.amount, a.currency, a.metadata, a.now, a.by, a.hold,
        expires] as string[]);
    },

    /** A hold of `amount` from → to with a timeout in seconds ('0': none); expects it to open. */
    async hold(id: string, from: string, to: string, amount: string, timeout = '0',
      now = String(NOW)) {
      const reply = await c.transfer({ id, from, to, amount, hold: timeout, now });
      if (reply[0] !== S.OK) throw new Error(`hold ${id}: status ${String(reply[0])}`);
      return String(reply[3]);
    },

    /** A post or void of `holdId`, whose accounts the caller read as `fromId`/`toId`. */
    settle(argv: Args = {}) {
      const a = { mode: 'post', id: 's', holdId: 'h', amount: '', metadata: '{}',
        now: String(NOW), by: 'svc', fromId: '', toId: '', meta: k.meta(), ...argv } as
        Record<string, string>;
      return run('settle', [a.meta as string, k.transferBucket(a.id as string),
        k.transferBucket(a.holdId as string), accountKey(a.fromId), accountKey(a.toId),
        k.journal(), k.rejections(), k.accountIds(), k.state(), k.expiries(), k.holdStats()],
      [a.mode, a.id, a.holdId, a.amount, a.metadata, a.now, a.by, a.fromId, a.toId] as
        string[]);
    },

    /** A reversal of `originalId`; `fromId` is the original's credit account, `toId` its debit. */
    reverse(argv: Args = {}) {
      const a = { id: 'r', originalId: 't', amount: '', metadata: '{}', now: String(NOW),
        by: 'svc', fromId: '', toId: '', meta: k.meta(), ...argv } as Record<string, string>;
      return run('reverse', [a.meta as string, k.transferBucket(a.id as string),
        k.transferBucket(a.originalId as string), accountKey(a.fromId), accountKey(a.toId),
        k.journal(), k.rejections(), k.accountIds(), k.state()],
      [a.id, a.originalId, a.amount, a.metadata, a.now, a.by, a.fromId, a.toId] as string[]);
    },

    /**
     * A transfer-batch-6.lua call: `items` as transfer() takes them (hold, expires included),
     * their accounts and buckets passed as KEYS after the six fixed ones.
     */
    batch(atomic: boolean, items: Args[], now = String(NOW), meta = k.meta()) {
      const keys = [meta, k.journal(), k.rejections(), k.accountIds(), k.expiries(),
        k.holdStats()];
      const index = (key: string) => {
        const i = keys.indexOf(key);
        return String(i < 0 ? keys.push(key) : i + 1);
      };
      const args = [items[0]?.id ?? '', atomic ? '1' : '0', now, 'svc', String(items.length)];
      for (const item of items) {
        const a = { amount: '1', currency: '', metadata: '{}', hold: '', ...item } as
          Record<string, string>;
        const expires = item.expires ?? (a.hold === '' || a.hold === '0' ? ''
          : String(Number(now) + Number(a.hold) * 1000));
        args.push(a.id as string, a.from as string, a.to as string, a.amount as string,
          a.currency as string, a.metadata as string, a.hold as string, expires,
          index(k.account(a.from as string)), index(k.account(a.to as string)),
          index(k.transferBucket(a.id as string)), '');
      }
      return run('transfer-batch', keys, args);
    },

    close(id: string, now = String(NOW), meta = k.meta()) {
      return run('close-account', [meta, k.account(id)], [id, now]);
    },

    /** One sweep call listing `holds` (seq and the ids of its debit and credit accounts). */
    expire(holds: Array<[string, string, string]>, now = String(NOW), meta = k.meta()) {
      const keys = [meta, k.journal(), k.accountIds(), k.state(), k.expiries(), k.holdStats()];
      const index = (id: string) => {
        const key = k.account(id);
        const i = keys.indexOf(key);
        return String(i < 0 ? keys.push(key) : i + 1);
      };
      const args = ['tag', now, String(holds.length)];
      for (const [seq, from, to] of holds) args.push(seq, index(from), index(to));
      return run('expire-holds', keys, args);
    },

    /** A new account; with `funds`, paid that much by `cash` (which must exist). */
    async account(id: string, currency = 'USD', overdraft = '0', funds?: string) {
      const reply = await c.createAccount({ id, currency, overdraft });
      if (reply[0] !== S.OK) throw new Error(`account ${id}: status ${String(reply[0])}`);
      if (funds !== undefined) {
        const paid = await c.transfer({ id: `fund-${id}`, from: 'cash', to: id, amount: funds });
        if (paid[0] !== S.OK) throw new Error(`funding ${id}: status ${String(paid[0])}`);
      }
    },

    /** The fields of an account's hash that holds and transfers change. */
    async totals(id: string) {
      const [dr, cr, dp, cp, lseq] = await f.redis.hmget(k.account(id), 'dr', 'cr', 'dp', 'cp',
        'lseq');
      return { dr, cr, dp, cp, lseq };
    },

    /** One journal record's fields as an object. */
    async record(seq: string) {
      const [entry] = await f.redis.xrange(k.journal(), `0-${seq}`, `0-${seq}`);
      return entry === undefined ? undefined : fieldObject(entry[1]);
    },

    /** The newest rejection record's fields as an object. */
    async lastRejection() {
      const [entry] = await f.redis.xrevrange(k.rejections(), '+', '-', 'COUNT', 1);
      return entry === undefined ? undefined : fieldObject(entry[1]);
    },
  };
  return c;
}

function fieldObject(flat: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < flat.length; i += 2) out[flat[i] as string] = flat[i + 1] as string;
  return out;
}
