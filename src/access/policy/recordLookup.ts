import type { Actor } from '../actor';
import { NATIONAL_IDENTIFIER_SYSTEMS } from '../../integrity/uniqueIdentifiers';
import { nirKeyValid } from '../../validation/domain/nir';
import { decideRecord, MatrixView, PolicyContext } from './decide';
import type { RecordFacts } from './recordFacts';

/**
 * A professional's lookup of a record by its INS, before consent
 * (docs/decisions/033-record-lookup-by-ins.md), and a depositing system's, its one way to a
 * Patient (docs/decisions/035-what-a-depositing-system-reads.md). Pure: the request's
 * parameters and the record's facts come in, what may be told comes out.
 */

/** The INS systems (INS-NIR, INS-NIA, INS-NIR-TEST, INS-NIR-DEMO): one person each, kept unique (decision 014). */
export const INS_SYSTEMS: readonly string[] = NATIONAL_IDENTIFIER_SYSTEMS.Patient;

/** Parameters that change only how the answer is written, allowed alongside the identifier. */
const REPRESENTATION = new Set(['_format', '_pretty']);

export interface NationalIdentifier {
  system: string;
  value: string;
}

/**
 * The INS a search is an exact lookup of: `Patient?identifier=<INS system>|<whole NIR, key
 * valid>`, the identifier once, one value, no modifier, nothing else but `_format` and
 * `_pretty`. Undefined for any other search, which stays an ordinary search.
 */
export function lookupIdentifier(resourceType: string | undefined, query: readonly [string, string][]): NationalIdentifier | undefined {
  if (resourceType !== 'Patient') return undefined;
  const identifiers = query.filter(([name]) => !REPRESENTATION.has(name));
  if (identifiers.length !== 1 || identifiers[0][0] !== 'identifier') return undefined;
  const raw = identifiers[0][1];
  const bar = raw.indexOf('|');
  if (bar < 0) return undefined;
  const system = raw.slice(0, bar);
  const value = raw.slice(bar + 1);
  // one value: a comma (several values), a second bar or an escape is not a whole NIR, and so fails the key below
  if (!INS_SYSTEMS.includes(system) || !nirKeyValid(value)) return undefined;
  return { system, value };
}

/** Why the caller may not enter the record they found, as the lookup's outcome codes it (profiles/CodeSystem/dmp-record-refusal.json). */
export const LOOKUP_REFUSALS = ['NO_CONSENT', 'BLOCKED'] as const;
export type LookupRefusal = (typeof LOOKUP_REFUSALS)[number];

export type LookupDecision =
  /** The ordinary search answers (the caller sees the record, or nothing of it may be told). */
  | { tell: false }
  /** The record exists and is open, the caller may not enter it: its id and why. */
  | { tell: true; patientId: string; refusal: LookupRefusal; reason: string }
  /** The record exists and is open, and the caller is a system that deposits: its id, nothing refused (decision 035). */
  | { tell: true; patientId: string; refusal?: undefined; reason?: undefined };

const ORDINARY: LookupDecision = Object.freeze({ tell: false });

/** Whether the actor is a professional acting in a profession the habilitation matrix knows, or a system that deposits. */
export function looksUpRecords(actor: Actor, matrix: MatrixView): boolean {
  if (actor.kind === 'device') return matrix.deviceDeposits(actor.deviceType);
  return actor.kind === 'practitioner' && actor.roles.some((r) => matrix.knowsProfession(r));
}

/**
 * What a lookup tells of the record `record` (the one Patient holding the INS; undefined
 * when none does). A professional of the matrix is told only of an open record they may
 * not enter for want of consent or because the patient blocked them; a system that
 * deposits, of any open record; an opposed or closed record is not told to exist, and a
 * record a professional may enter is read as usual.
 * Decided without break-glass: it is asked on the record once its id is known.
 */
export function decideLookup(actor: Actor, record: RecordFacts | undefined, pc: PolicyContext): LookupDecision {
  if (!record || !looksUpRecords(actor, pc.matrix)) return ORDINARY;
  const decision = decideRecord(actor, record, 'read', { ...pc, breakGlass: undefined });
  // a system reads no Patient but this one: the open record it deposits in, reduced (decision 035)
  if (actor.kind === 'device') return decision.allow ? { tell: true, patientId: record.patientId } : ORDINARY;
  if (decision.allow) return ORDINARY;
  switch (decision.refusal) {
    case 'no-consent':
      return { tell: true, patientId: record.patientId, refusal: 'NO_CONSENT', reason: decision.reason };
    case 'blocked':
      return { tell: true, patientId: record.patientId, refusal: 'BLOCKED', reason: decision.reason };
    default:
      // opposed, closed, not known: as if nobody held the INS
      return ORDINARY;
  }
}
