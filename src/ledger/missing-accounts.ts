/**
 * Which accounts a transfer rejected for ACCOUNT_NOT_FOUND found missing, so that its problem
 * names them (`account "nobody" does not exist`, not `"alice" or "nobody"`). Asked only on that
 * rejection's path, never on a commit's; the transfer's own record and answer are unchanged.
 *
 * The stored rejection says whether both were missing (it keeps the accounts' currency, '' when
 * neither existed) but not, when one existed, which one. That is read now, and the answer is
 * the same whenever it is read, so a replay names the account the first answer named:
 * - accounts are never deleted (a closed account still exists), so one missing now was missing
 *   when the rejection was decided;
 * - accounts are numbered in the order they are created (`n`, lua/create-account-3.lua), so
 *   when both exist now, the one created after the rejection has the higher number.
 */
import { ACCOUNT_FIELDS } from './records.js';

/** An account's stored fields, read from the primary ({} when it does not exist). */
export type ReadAccount = (id: string) => Promise<Record<string, string>>;

/**
 * `neitherExisted`: what the stored rejection says, or undefined when nothing was recorded (an
 * atomic batch refused just now), in which case the accounts missing now are the answer.
 * Undefined when it cannot be told (both exist now, and nothing says which was created since).
 */
export async function missingAccounts(from: string, to: string,
  neitherExisted: boolean | undefined, read: ReadAccount): Promise<string[] | undefined> {
  if (neitherExisted === true) return [from, to];
  const [f, t] = await Promise.all([read(from), read(to)]);
  const nf = f[ACCOUNT_FIELDS.NUMBER];
  const nt = t[ACCOUNT_FIELDS.NUMBER];
  const now = [...(nf === undefined ? [from] : []), ...(nt === undefined ? [to] : [])];
  if (neitherExisted === undefined || now.length > 0) return now.length > 0 ? now : undefined;
  // Exactly one existed when it was decided, and both exist now: the younger one was missing.
  if (nf === undefined || nt === undefined) return undefined;
  return [BigInt(nf) > BigInt(nt) ? from : to];
}
