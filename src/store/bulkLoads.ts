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

/** How far a load of one file got (migrations/013_bulk_load.ts): lines and bytes committed. */
export interface LoadCheckpoint {
  fileKey: string;
  fileName: string;
  lines: number;
  bytes: number;
  written: number;
  refused: number;
}

export async function readCheckpoint(session: Session, fileKey: string): Promise<LoadCheckpoint | undefined> {
  const rows = await session.query<{ file_name: string; lines: string; bytes: string; written: string; refused: string }>(
    `SELECT file_name, lines, bytes, written, refused FROM bulk_load_checkpoint WHERE file_key = ?`,
    [fileKey],
  );
  const r = rows[0];
  return r && { fileKey, fileName: r.file_name, lines: Number(r.lines), bytes: Number(r.bytes), written: Number(r.written), refused: Number(r.refused) };
}

/** Records, in the transaction of the batch it follows, how far the load got. */
export async function saveCheckpoint(session: Session, c: LoadCheckpoint): Promise<void> {
  await session.query(
    `INSERT INTO bulk_load_checkpoint (file_key, file_name, lines, bytes, written, refused, updated_at) VALUES (?, ?, ?, ?, ?, ?, now())
     ON CONFLICT (file_key) DO UPDATE SET file_name = EXCLUDED.file_name, lines = EXCLUDED.lines, bytes = EXCLUDED.bytes,
       written = EXCLUDED.written, refused = EXCLUDED.refused, updated_at = EXCLUDED.updated_at`,
    [c.fileKey, c.fileName, c.lines, c.bytes, c.written, c.refused],
  );
}
