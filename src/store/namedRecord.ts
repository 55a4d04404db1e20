import type { ParsedSearch } from '../search/parseSearch';
import { parseReferenceValue } from './searchSql';

/**
 * Types whose first compartment parameter commonly names several Patients (a Group's
 * members, an Appointment's actors): a resource is filed in the record of the first
 * (docs/decisions/001-compartment-keys.md), so naming another one says nothing of where
 * it is filed.
 */
const SEVERAL_PATIENTS = new Set(['Group', 'Appointment', 'AppointmentResponse', 'Schedule']);

/**
 * Types with events about a record filed outside it: the AuditEvent kept when a record is
 * deleted, refusals concerning a record (docs/decisions/009-audit.md, 017). Naming the
 * patient does not say where they are filed.
 */
const FILED_OUTSIDE_TOO = new Set(['AuditEvent']);

/**
 * The record (compartment) every match of a search must be filed in, when the search
 * says so, so that the statement reads that one partition (docs/decisions/018-partitioning.md):
 * - `Patient?_id=x` (one value): x's own record;
 * - a reference on the element of the type's first compartment parameter (`patient=x`,
 *   `subject=Patient/x`, `subject:Patient=x`: `recordElement` is that parameter's
 *   expression), one value: a resource whose first compartment reference is Patient/x
 *   is filed in x's record, by construction.
 * Undefined otherwise (no narrowing: the search runs as written).
 */
export function namedRecord(search: Pick<ParsedSearch, 'resourceType' | 'clauses'>, recordElement: string | undefined, baseUrl: string): string | undefined {
  for (const clause of search.clauses) {
    if (clause.kind !== 'param' || clause.values.length !== 1) continue;
    if (search.resourceType === 'Patient' && clause.code === '_id' && !clause.modifier) return clause.values[0].value;
    if (clause.type !== 'reference' || !recordElement || SEVERAL_PATIENTS.has(search.resourceType) || FILED_OUTSIDE_TOO.has(search.resourceType)) continue;
    // the element that decides the record, or a parameter on that same element (DocumentReference.patient is its subject as a Patient)
    const expression = clause.param?.expression ?? '';
    if (expression !== recordElement && !expression.startsWith(`${recordElement}.where(`)) continue;
    if (clause.modifier && clause.modifier !== 'Patient') continue;
    const ref = parseReferenceValue(baseUrl, clause.values[0].value, clause.modifier);
    if (ref.url !== undefined || !ref.id) continue;
    const targets = clause.param?.def.target ?? [];
    const type = ref.type ?? (targets.length === 1 ? targets[0] : undefined);
    if (type === 'Patient') return ref.id;
  }
  return undefined;
}
