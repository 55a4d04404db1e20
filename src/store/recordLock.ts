import { RecordState, recordStateOf } from '../access/policy/recordState';
import { textArray } from './searchSql';
import type { Session } from './session';

/**
 * The record's lock (docs/decisions/017-record-lifecycle.md, amendment of 2026-12-06): the
 * Patient row of the record, keyed with its compartment (one partition, one shard). Writes
 * hold it shared (`FOR KEY SHARE`, here or with the facts in `heldRecordFacts`); the
 * lifecycle operations exclusively (`FOR UPDATE`, `readCurrent` of the Patient).
 */

/** The record's row among `resource p`, locked shared: the bindings name the compartments (`= ?` or `= ANY(?::text[])`) before it. */
export const HELD_RECORD_ROW = `p.resource_type = 'Patient' AND p.id = p.compartment FOR KEY SHARE`;

/**
 * Locks the records' Patient rows `FOR KEY SHARE`, as `heldRecordFacts` (src/store/accessFacts.ts) does: taken by a
 * write before it locks a row of the record (`readCurrent` with `forUpdate`), so that every
 * write takes the record's lock before any other row of it, as the lifecycle operations do
 * (no lock-order cycle with a record's deletion).
 */
export async function holdRecords(session: Session, ids: string[]): Promise<void> {
  const patientIds = [...new Set(ids.filter((id) => id !== ''))];
  if (patientIds.length === 0) return;
  await session.query(
    `SELECT p.compartment FROM resource p WHERE p.compartment = ANY(?::text[]) AND ${HELD_RECORD_ROW}`,
    [textArray(patientIds)],
    'access_hold_records',
  );
}

/**
 * The record's state read from its Patient row locked `FOR KEY SHARE`: for a write the
 * server makes for a caller without the policy's `checkWrites` (the messaging's closing of
 * a thread, its read receipt). Undefined when no current Patient holds the record.
 */
export async function heldRecordState(session: Session, compartment: string): Promise<RecordState | undefined> {
  const rows = await session.query<{ deleted: boolean; body: string | null }>(
    `SELECT p.deleted, p.body::text AS body FROM resource p WHERE p.compartment = ? AND ${HELD_RECORD_ROW}`,
    [compartment],
    'access_hold_record_state',
  );
  const row = rows[0];
  if (!row || row.deleted || !row.body) return undefined;
  return recordStateOf(JSON.parse(row.body)).state;
}
