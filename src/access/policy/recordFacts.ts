import type { Coding } from '../actor';
import type { RecordState } from './recordState';
import { typedId } from '../../referenceString';

/**
 * What the policy knows of one patient's record: its state and the choices expressed
 * as Consent resources (docs/decisions/008-access-model.md). Built from stored
 * resources by the pipeline; read here without any database.
 */
export interface RecordFacts {
  patientId: string;
  /** Opposed and closed records are unreadable and unwritable by everyone (docs/decisions/017-record-lifecycle.md). */
  state: RecordState;
  /** False when the record's Patient is not stored (an id nobody holds, a deleted record): not known to anyone. */
  known?: boolean;
  /** Patient.birthDate: a minor's representatives stop acting at 18 (decision 017). */
  birthDate?: string;
  /** `RelatedPerson/{id}` → its `period.start`, for the representatives that have one (a guardianship begun after majority). */
  representativeSince?: Record<string, string>;
  /** Practitioner references in Patient.generalPractitioner (the care team's presumed consent to write). */
  generalPractitioners: string[];
  /** The record's legal representatives (`RelatedPerson/{id}` of this patient, active): they choose for the patient. */
  representatives?: string[];
  consents: ConsentFact[];
  /**
   * The record's latest notification-preference Basic, read with the facts so that the
   * audit writer need not read it again (decision 009); never used by the policy.
   */
  notificationPreference?: Record<string, unknown>;
}

/** The parts of a Consent the policy reads. */
export interface ConsentFact {
  id: string;
  active: boolean;
  /** Consent.performer references (`Patient/x`, `RelatedPerson/y`, `Practitioner/z`). */
  performers: string[];
  provisionType?: 'permit' | 'deny';
  actors: { reference: string; role?: Coding }[];
  purposes: Coding[];
  period?: { start?: string; end?: string };
  /** Consent.dateTime, else meta.lastUpdated: the start of a consent without a period. */
  recorded?: string;
}

export const ROLE_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-RoleCode';
export const ACT_REASON_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
export const VISIBILITY_SYSTEM = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
export const MASQUE_PS: Coding = { system: VISIBILITY_SYSTEM, code: 'MASQUE_PS' };
export const INVISIBLE_PATIENT: Coding = { system: VISIBILITY_SYSTEM, code: 'INVISIBLE_PATIENT' };
export const INVISIBLE_REPRESENTANTS_LEGAUX: Coding = { system: VISIBILITY_SYSTEM, code: 'INVISIBLE_REPRESENTANTS_LEGAUX' };

/** The record's choices at an instant, derived from its Consents. */
export interface RecordChoices {
  blocked: Set<string>;
  treatingPhysicians: Set<string>;
  breakGlassOptOut: boolean;
  /** Practitioners holding a declared consent valid now. */
  declaredConsent: Set<string>;
}

const DAY_MS = 86_400_000;

function validAt(c: ConsentFact, now: number, defaultDays: number): boolean {
  if (!c.active) return false;
  const start = c.period?.start ? Date.parse(c.period.start) : c.recorded ? Date.parse(c.recorded) : undefined;
  if (start !== undefined && !Number.isNaN(start) && start > now) return false;
  if (c.period?.end) {
    const end = Date.parse(c.period.end);
    return Number.isNaN(end) || end >= now;
  }
  // a declared consent without an end lasts the default episode from its start
  if (start !== undefined && !Number.isNaN(start) && !c.period?.end) return start + defaultDays * DAY_MS >= now;
  return true;
}

/** The patient, or one of this record's own legal representatives (not any RelatedPerson). */
const isPatientSide = (record: RecordFacts, performer: string) => performer === `Patient/${record.patientId}` || (record.representatives ?? []).includes(performer);

/**
 * Reads the patient's choices and the professionals' declared consents. A choice counts
 * only when made by the patient (or a legal representative); a declared consent only
 * when the professional it names is its performer.
 */
export function recordChoices(record: RecordFacts, now: number, consentDefaultDays: number): RecordChoices {
  const choices: RecordChoices = { blocked: new Set(), treatingPhysicians: new Set(), breakGlassOptOut: false, declaredConsent: new Set() };
  for (const c of record.consents) {
    if (!c.active) continue;
    const byPatient = c.performers.some((p) => isPatientSide(record, p));
    if (byPatient && c.provisionType === 'deny') {
      if (c.purposes.some((p) => p.code === 'ETREAT' && (!p.system || p.system === ACT_REASON_SYSTEM))) choices.breakGlassOptOut = true;
      for (const a of c.actors) if (a.reference.startsWith('Practitioner/')) choices.blocked.add(a.reference);
      continue;
    }
    if (byPatient && c.provisionType === 'permit') {
      for (const a of c.actors) {
        if (a.role?.code === 'PCP' && (!a.role.system || a.role.system === ROLE_SYSTEM) && a.reference.startsWith('Practitioner/')) choices.treatingPhysicians.add(a.reference);
      }
    }
    if (c.provisionType === 'permit' && validAt(c, now, consentDefaultDays)) {
      for (const a of c.actors) {
        if (a.reference.startsWith('Practitioner/') && c.performers.includes(a.reference) && a.role?.code !== 'PCP') choices.declaredConsent.add(a.reference);
      }
    }
  }
  return choices;
}

/** A Consent resource as the facts the policy reads. */
export function consentFact(resource: Record<string, any>): ConsentFact {
  const provision = resource.provision ?? {};
  const refs = (list: unknown): string[] => (Array.isArray(list) ? list.map((r: any) => r?.reference).filter((r: unknown): r is string => typeof r === 'string') : []);
  const codings = (list: unknown): Coding[] => (Array.isArray(list) ? list.filter((c: any) => typeof c?.code === 'string').map((c: any) => ({ system: c.system, code: c.code })) : []);
  return {
    id: String(resource.id ?? ''),
    active: resource.status === 'active',
    performers: refs(resource.performer).map(relative),
    provisionType: provision.type === 'permit' || provision.type === 'deny' ? provision.type : undefined,
    actors: (Array.isArray(provision.actor) ? provision.actor : [])
      .filter((a: any) => typeof a?.reference?.reference === 'string')
      .map((a: any) => ({ reference: relative(a.reference.reference), role: codings(a.role?.coding)[0] })),
    purposes: codings(provision.purpose),
    period: provision.period && typeof provision.period === 'object' ? { start: provision.period.start, end: provision.period.end } : undefined,
    recorded: typeof resource.dateTime === 'string' ? resource.dateTime : resource.meta?.lastUpdated,
  };
}

/** `http://host/fhir/Practitioner/1` and `Practitioner/1/_history/2` → `Practitioner/1`. */
export function relative(reference: string): string {
  return typedId(reference) ?? reference;
}
