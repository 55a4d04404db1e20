import { locateAll } from './locator';
import type { Session } from './session';

/**
 * What the bulk loader asks of the store (docs/decisions/020-bulk-data.md): which of the
 * resources of a batch are stored already (current or deleted), so that a rerun skips them.
 */
export async function storedAmong(session: Session, resources: { resourceType: string; id: string }[]): Promise<Set<string>> {
  // asked of the id table (decision 018): one lookup by key, not one per partition
  return new Set((await locateAll(session, resources)).keys());
}

/**
 * PostgreSQL: this transaction commits without waiting for its WAL to reach the disk. A crash
 * may lose the last batches committed, never corrupt anything: for a resumable load only.
 */
export async function commitWithoutWaiting(session: Session): Promise<void> {
  await session.query('SET LOCAL synchronous_commit = off');
}
