import { isOpen, RECORD_REFUSAL_SYSTEM, RecordState, recordStateOf } from '../access/policy/recordState';
import { RecordForbidden } from '../errors';
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
  return (await heldRecordStates(session, [compartment])).get(compartment);
}

/** The states of several records, as `heldRecordState` reads one, in one statement (a bulk load's batch); records no current Patient holds are absent. */
export async function heldRecordStates(session: Session, compartments: string[]): Promise<Map<string, RecordState>> {
  const ids = [...new Set(compartments.filter((c) => c !== ''))];
  const states = new Map<string, RecordState>();
  if (ids.length === 0) return states;
  const rows = await session.query<{ compartment: string; deleted: boolean; body: string | null }>(
    `SELECT p.compartment, p.deleted, p.body::text AS body FROM resource p WHERE p.compartment = ANY(?::text[]) AND ${HELD_RECORD_ROW}`,
    [textArray(ids)],
    'access_hold_record_state',
  );
  for (const row of rows) if (!row.deleted && row.body) states.set(row.compartment, recordStateOf(JSON.parse(row.body)).state);
  return states;
}

/** The refusal of a write into a record that is not open (403, with the record-refusal code the policy's refusals carry); undefined when it is open. */
export function unopenRecordRefusal(state: RecordState, diagnostics: string): RecordForbidden | undefined {
  if (isOpen(state)) return undefined;
  return new RecordForbidden(diagnostics, RECORD_REFUSAL_SYSTEM, state === 'opposed' ? 'RECORD_OPPOSED' : 'RECORD_CLOSED');
}
