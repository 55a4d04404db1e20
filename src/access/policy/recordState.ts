import { canonicalJson } from '../../json/canonicalJson';
/**
 * The record's lifecycle state as the Patient carries it (docs/decisions/017-record-lifecycle.md):
 * an extension of ours plus Patient.active. Pure: read from and written to a Patient body.
 */

export type RecordState = 'open' | 'activated' | 'opposed' | 'closed';
export type ClosureMode = 'archive' | 'delete';

export const RECORD_STATE_EXTENSION = 'https://fhir.dmp.esante.example/StructureDefinition/dmp-record-state';
/** The codes a refusal of a whole record carries in OperationOutcome.issue.details. */
export const RECORD_REFUSAL_SYSTEM = 'https://fhir.dmp.esante.example/CodeSystem/dmp-record-refusal';

export interface RecordStateFacts {
  state: RecordState;
  /** When the state was entered, if recorded. */
  since?: string;
  closureMode?: 'archive';
  retainUntil?: string;
}

const STATES: RecordState[] = ['open', 'activated', 'opposed', 'closed'];

/** The state of a stored Patient: its extension, else `Patient.active` (records from before decision 017). */
export function recordStateOf(patient: Record<string, any> | null | undefined): RecordStateFacts {
  const ext = (Array.isArray(patient?.extension) ? patient!.extension : []).find((e: any) => e?.url === RECORD_STATE_EXTENSION);
  const part = (url: string) => (Array.isArray(ext?.extension) ? ext.extension.find((e: any) => e?.url === url) : undefined);
  const state = part('state')?.valueCode;
  if (STATES.includes(state)) {
    return {
      state,
      ...(typeof part('date')?.valueDateTime === 'string' ? { since: part('date').valueDateTime } : {}),
      ...(state === 'closed' && part('closureMode')?.valueCode === 'archive' ? { closureMode: 'archive' as const } : {}),
      ...(typeof part('retainUntil')?.valueDateTime === 'string' ? { retainUntil: part('retainUntil').valueDateTime } : {}),
    };
  }
  return { state: patient?.active === false ? 'closed' : 'open' };
}

/** Whether the record is open to the people decision 008 lets in. */
export const isOpen = (s: RecordState) => s === 'open' || s === 'activated';

/** The Patient with this state: the extension replaced, `active` following it. */
export function withRecordState(patient: Record<string, any>, s: RecordStateFacts): Record<string, any> {
  const others = (Array.isArray(patient.extension) ? patient.extension : []).filter((e: any) => e?.url !== RECORD_STATE_EXTENSION);
  const parts: Record<string, unknown>[] = [{ url: 'state', valueCode: s.state }];
  if (s.since) parts.push({ url: 'date', valueDateTime: s.since });
  if (s.closureMode) parts.push({ url: 'closureMode', valueCode: s.closureMode });
  if (s.retainUntil) parts.push({ url: 'retainUntil', valueDateTime: s.retainUntil });
  return { ...patient, active: isOpen(s.state), extension: [...others, { url: RECORD_STATE_EXTENSION, extension: parts }] };
}

/** What a plain create or update may not touch: the state extension and `active`, changed by the lifecycle operations only. */
export function lifecycleFieldsChanged(previous: Record<string, any> | undefined, next: Record<string, any>): boolean {
  const ext = (p: Record<string, any> | undefined) => canonicalJson((Array.isArray(p?.extension) ? p!.extension : []).filter((e: any) => e?.url === RECORD_STATE_EXTENSION));
  // a new record starts open: opposing or closing it is an operation of its own
  if (!previous) return ext(next) !== '[]' || next.active === false;
  return ext(previous) !== ext(next) || (previous.active !== false) !== (next.active !== false);
}

const YEAR_OF_AGE = 18;

/**
 * The instant a person born on `birthDate` turns 18. A partial date counts from its last
 * possible day (`2008` → 31 December 2008), so nobody loses a representative early.
 * Undefined when the date is not a FHIR date.
 */
export function majorityAt(birthDate: string | undefined): number | undefined {
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(birthDate ?? '');
  if (!m) return undefined;
  const year = Number(m[1]) + YEAR_OF_AGE;
  const month = m[2] ? Number(m[2]) - 1 : 11;
  // day 0 of the next month is the last day of this one
  const day = m[3] ? Number(m[3]) : new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  // born on 29 February: of age on 1 March of a non-leap year (Date.UTC rolls over)
  return Date.UTC(year, month, day);
}
