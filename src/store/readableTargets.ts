import { addressesOf, byKeys, keyArrays } from './locator';
import { constraintConditions } from './searchSql';
import type { Session } from './session';
import { isUnrestricted } from './visibility';

/**
 * Which of these ids of one type the session's caller can read, by the same conditions as
 * a read by id (src/store/resources.ts): a missing id and a hidden one are alike absent
 * from the answer. The rows are not handed to the caller (nothing is touched for the
 * audit trail): the answer only decides which references they are shown
 * (docs/decisions/013-references-to-hidden-resources.md).
 */
export async function readableTargets(session: Session, resourceType: string, ids: string[]): Promise<Set<string>> {
  if (ids.length === 0 || isUnrestricted(session.visibility)) return new Set(ids);
  // each by its full key (src/store/locator.ts): only the partitions holding them are read
  const refs = ids.map((id) => ({ resourceType, id }));
  const keys = keyArrays(await addressesOf(session, refs), refs);
  if (keys[0] === '{}') return new Set();
  const ctx = { bindings: [keys[0], ...keys] as unknown[], baseUrl: '', constraints: session.visibility };
  const conditions = constraintConditions(ctx, 'r', resourceType);
  const rows = await session.query<{ id: string }>(`SELECT r.id FROM resource r WHERE ${byKeys('r')}${conditions}`, ctx.bindings);
  return new Set(rows.map((r) => r.id));
}
