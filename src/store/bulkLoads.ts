import type { Session } from './session';

/**
 * What the bulk loader asks of the store (docs/decisions/020-bulk-data.md): which of the
 * resources of a batch are stored already (current or deleted), so that a rerun skips them.
 * Asked of the id table (decision 018): one lookup by key, not one per partition.
 */
export async function storedAmong(session: Session, resources: { resourceType: string; id: string }[]): Promise<Set<string>> {
  if (resources.length === 0) return new Set();
  const rows = await session.query<{ resource_type: string; id: string }>(
    `SELECT l.resource_type, l.id FROM resource_locator l JOIN unnest(?::text[], ?::text[]) AS k(t, i) ON l.resource_type = k.t AND l.id = k.i`,
    [resources.map((v) => v.resourceType), resources.map((v) => v.id)],
  );
  return new Set(rows.map((r) => `${r.resource_type}/${r.id}`));
}

/**
 * PostgreSQL: this transaction commits without waiting for its WAL to reach the disk. A crash
 * may lose the last batches committed, never corrupt anything: for a resumable load only.
 */
export async function commitWithoutWaiting(session: Session): Promise<void> {
  await session.query('SET LOCAL synchronous_commit = off');
}
