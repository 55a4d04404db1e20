import type { ActingRole, Actor, Coding } from '../actor';
import type { DocumentRule, LabelRule, Visibility } from '../../store/visibility';
import { differsOnlyByLabels, labelChange } from './labelChanges';
import { identitiesOf } from '../../dmp/messageRules';
import { parseCriteria } from '../../subscriptions/subscriptionRules';
import { INVISIBLE_PATIENT, INVISIBLE_REPRESENTANTS_LEGAUX, MASQUE_PS, RecordFacts, recordChoices } from './recordFacts';
import { isOpen, lifecycleFieldsChanged, majorityAt } from './recordState';

/**
 * The only place access is decided (docs/decisions/008-access-model.md). Pure: the facts
 * come in, a decision comes out; nothing here reads the database or the clock.
 */

/** What the policy needs of the habilitation matrix. */
export interface MatrixView {
  /** The documents a role may read, as a rule the store turns into SQL. */
  readableDocuments(role: ActingRole): DocumentRule;
  mayWrite(role: ActingRole, type: Coding | undefined, documentClass: Coding | undefined): boolean;
  emergencyAllowed(role: ActingRole): boolean;
  /** Whether the role's profession (and specialty) has a row in the matrix: a role without one has no right anywhere. */
  knowsProfession(role: ActingRole): boolean;
  /** What a patient or their legal representative may deposit in their own record (patient-authored documents). */
  patientMayWrite(type: Coding | undefined, documentClass: Coding | undefined): boolean;
  /** What a system (Device) of this type may deposit. */
  deviceMayWrite(deviceType: Coding | undefined, type: Coding | undefined, documentClass: Coding | undefined): boolean;
  /** Whether a system of this type deposits any document at all (docs/decisions/034-systems-that-deposit-nothing.md). */
  deviceDeposits(deviceType: Coding | undefined): boolean;
}

export interface PolicyContext {
  now: number;
  consentDefaultDays: number;
  matrix: MatrixView;
  /** The reason given in X-Break-Glass, when the request carries one ('' when empty). */
  breakGlass?: string;
}

export type Basis = 'own-record' | 'legal-representative' | 'treating-physician' | 'declared-consent' | 'care-team' | 'break-glass' | 'system' | 'administration' | 'subscriber';

export type Decision = { allow: true; basis: Basis } | { allow: false; status: 403 | 404; reason: string };

/** Why a record is closed to a caller: a consent can open only the last two. */
export type RecordRefusal = 'opposed' | 'closed' | 'of-age' | 'blocked' | 'not-known' | 'no-consent' | 'break-glass-refused';

/**
 * The code a refusal of the whole record carries in OperationOutcome.issue.details
 * (docs/decisions/017-record-lifecycle.md, 033-record-lookup-by-ins.md): what a sending
 * software acts on.
 */
export function recordRefusalCode(refusal: RecordRefusal): string | undefined {
  switch (refusal) {
    case 'opposed':
      return 'RECORD_OPPOSED';
    case 'closed':
      return 'RECORD_CLOSED';
    case 'of-age':
      return 'PATIENT_OF_AGE';
    // a professional's software asks for the consent, or offers break-glass, on these (decision 033)
    case 'no-consent':
      return 'NO_CONSENT';
    case 'blocked':
      return 'BLOCKED';
    default:
      return undefined;
  }
}

/**
 * Whether a legal representative still acts for the patient at `now` (decision 017): until
 * the patient's eighteenth birthday, computed from Patient.birthDate at each request; after
 * it only a representation that began on or after that day (the guardianship of an adult).
 */
export function representativeActs(record: RecordFacts, representative: string, now: number): boolean {
  const majority = majorityAt(record.birthDate);
  if (majority === undefined || now < majority) return true;
  const since = record.representativeSince?.[representative];
  const start = since === undefined ? NaN : Date.parse(since);
  return !Number.isNaN(start) && start >= majority;
}

/** Record-level decision, with whether the caller is this record's treating physician. */
export type RecordDecision = { allow: true; basis: Basis; treating?: boolean } | { allow: false; status: 403 | 404; reason: string; refusal: RecordRefusal };

const deny = (status: 403 | 404, refusal: RecordRefusal, reason: string): RecordDecision => ({ allow: false, status, refusal, reason });

/** Outside any record: readable by every authenticated actor (ACCESS.md). */
export const DIRECTORY_TYPES = ['Practitioner', 'PractitionerRole', 'Organization', 'Location', 'HealthcareService', 'Endpoint', 'Device'];
export const CONFORMANCE_TYPES = ['StructureDefinition', 'ValueSet', 'CodeSystem', 'SearchParameter', 'Questionnaire'];
export const SHARED_TYPES = [...DIRECTORY_TYPES, ...CONFORMANCE_TYPES];
/** Cohorts of patients, outside any record: their membership tells which records exist, so administrators alone read them (docs/decisions/030-groups.md). */
export const COHORT_TYPES = ['Group'];
/** Administrators: the directory, the records' existence, the cohorts and the audit trail; no clinical content. */
export const ADMIN_READ_TYPES = [...SHARED_TYPES, 'Patient', 'RelatedPerson', ...COHORT_TYPES, 'AuditEvent'];
export const ADMIN_WRITE_TYPES = [...DIRECTORY_TYPES, ...CONFORMANCE_TYPES, 'Patient', 'RelatedPerson', ...COHORT_TYPES];
/**
 * Systems read the directory and no clinical content, nor any Patient: one that deposits finds the
 * patient it deposits for by the INS lookup alone (docs/decisions/035-what-a-depositing-system-reads.md).
 */
export const DEVICE_READ_TYPES = SHARED_TYPES;
/** A system deposits documents, their content and the Lists of its deposits, and sends messages; no Provenance (decision 035, amendment). */
export const DEVICE_WRITE_TYPES = ['DocumentReference', 'Binary', 'List', 'Communication'];
/** What a system reads of a record: the messages of its organisation's conversations and their attachments (decision 016). */
export const MESSAGE_TYPES = ['Communication', 'Binary'];
/** Written by the server alone (the audit trail), never through the API by an actor. */
export const SERVER_WRITTEN_TYPES = ['AuditEvent'];
/** The audit trail: read by the patient, their legal representatives and administrators (docs/decisions/009-audit.md). */
export const AUDIT_TYPES = ['AuditEvent'];
/** The server's notices to the patient (docs/decisions/009-audit.md): they retell the trail, so they are the patient's too. */
const DMP_NOTIFICATION = 'https://fhir.dmp.esante.example/CodeSystem/dmp-notification';
export const NOTICES = { resourceType: 'Communication', param: 'category', codes: ['new-document', 'new-message', 'access', 'emergency-access', 'daily-digest'].map((code) => ({ system: DMP_NOTIFICATION, code })) };
/** In a record, but the directory's: administrators write them (a legal representative is named by them, not by a professional). */
export const RECORD_DIRECTORY_TYPES = ['RelatedPerson'];
/** What a patient (or legal representative) writes in their own record: documents and choices. */
export const PATIENT_WRITE_TYPES = ['DocumentReference', 'Binary', 'List', 'Consent', 'Communication', 'Observation', 'QuestionnaireResponse', 'Basic'];

const ref = (type: string, id: string) => `${type}/${id}`;

/** Why a stored Binary is not changed (decision 021, amendment). */
export const BINARY_UNCHANGED =
  "A stored Binary is not changed: a document's content is fixed once deposited (its attachment's size and hash describe it), a message's attachment once sent. Deposit a new Binary, and a document that replaces the old one (relatesTo replaces)";

/**
 * May this actor enter this patient's record at all, to read or to write? `anonymous`: the
 * request did not name the record's patient (it addressed one of the record's resources by
 * id), so a refusal does not name them either (docs/decisions/029-dmp-submissions.md): a
 * document moved to another record must not tell its former readers who holds it now.
 */
export function decideRecord(actor: Actor, record: RecordFacts, action: 'read' | 'write', pc: PolicyContext, options: { anonymous?: boolean } = {}): RecordDecision {
  const patient = options.anonymous ? 'The patient' : `Patient/${record.patientId}`;
  const theRecord = options.anonymous ? 'the record this resource belongs to' : `the record of Patient/${record.patientId}`;
  // another patient's record is not known to a patient or a legal representative, open or closed: a 403 would tell them it exists
  if (actor.kind === 'patient' && actor.id !== record.patientId) return deny(404, 'not-known', 'not known');
  // a representative reaches the record of the patient their RelatedPerson names, as the record's own facts confirm it
  if (actor.kind === 'related-person' && (actor.patientId !== record.patientId || (record.representatives !== undefined && !record.representatives.includes(ref('RelatedPerson', actor.id))))) {
    return deny(404, 'not-known', 'not known');
  }
  // a record nobody holds is not known: a read of a mistyped id is a 404, not a closed record
  if (record.known === false) return deny(404, 'not-known', 'not known');
  // a system that deposits nothing has no record open to it, in any state: refused as for a record nobody holds (decision 034)
  if (actor.kind === 'device' && !pc.matrix.deviceDeposits(actorDeviceType(actor))) return deny(404, 'not-known', 'not known');
  if (record.state === 'opposed') return deny(403, 'opposed', `${patient} has opposed the creation of their record: nothing may be read or deposited for them`);
  if (!isOpen(record.state)) return deny(403, 'closed', `${theRecord.charAt(0).toUpperCase()}${theRecord.slice(1)} is closed: nobody may read or write it`);
  if (actor.kind === 'related-person' && !representativeActs(record, ref('RelatedPerson', actor.id), pc.now)) {
    return deny(403, 'of-age', `${patient} is of age: their legal representatives no longer act for them`);
  }
  switch (actor.kind) {
    case 'admin':
      return { allow: true, basis: 'administration' };
    case 'device':
      return { allow: true, basis: 'system' };
    case 'patient':
      return actor.id === record.patientId ? { allow: true, basis: 'own-record' } : deny(404, 'not-known', 'not known');
    case 'related-person':
      return actor.patientId === record.patientId ? { allow: true, basis: 'legal-representative' } : deny(404, 'not-known', 'not known');
    case 'practitioner':
      return decidePractitioner(actor.id, actor.roles, record, action, pc, theRecord);
  }
}

function decidePractitioner(id: string, roles: ActingRole[], record: RecordFacts, action: 'read' | 'write', pc: PolicyContext, theRecord: string): RecordDecision {
  const me = ref('Practitioner', id);
  const choices = recordChoices(record, pc.now, pc.consentDefaultDays);
  if (choices.blocked.has(me)) return deny(403, 'blocked', `The patient has blocked ${me} from their record`);
  if (choices.treatingPhysicians.has(me)) return { allow: true, basis: 'treating-physician', treating: true };
  if (choices.declaredConsent.has(me)) return { allow: true, basis: 'declared-consent' };
  if (action === 'write' && record.generalPractitioners.includes(me)) return { allow: true, basis: 'care-team' };
  if (pc.breakGlass !== undefined) {
    if (!pc.breakGlass.trim()) return deny(403, 'break-glass-refused', 'X-Break-Glass must give the reason for emergency access');
    if (choices.breakGlassOptOut) return deny(403, 'break-glass-refused', `The patient has opted out of emergency access to their record: break-glass is refused`);
    if (!roles.some((r) => pc.matrix.emergencyAllowed(r))) return deny(403, 'break-glass-refused', `The profession ${me} acts in does not allow emergency access`);
    return { allow: true, basis: 'break-glass' };
  }
  return deny(
    403,
    'no-consent',
    `${me} has no declared consent for ${theRecord}: declare the patient's consent (a Consent with this professional as performer and actor) or, in an emergency, send X-Break-Glass with the reason`,
  );
}

/** A record the caller may enter, and why (what visibilityFor builds on). */
export interface OpenRecord {
  patientId: string;
  treating: boolean;
}

/** The readers on the patient's side of a record: the patient and their legal representatives. */
export const PATIENT_SIDE = ['patient', 'related-person'] as const;
export type PatientSide = (typeof PATIENT_SIDE)[number];

/**
 * What any reader of one kind on the patient's side may read of these records, whoever they
 * are, leaving out what is one reader's own (their conversations, their Subscriptions). The
 * daily digest counts what every kind of its readers is shown by it (decision 009).
 */
export function patientSideVisibility(kind: PatientSide, records: string[]): Visibility {
  const hidden: LabelRule[] = [INVISIBLE_PATIENT];
  if (kind === 'related-person') hidden.push(INVISIBLE_REPRESENTANTS_LEGAUX);
  // the trail and the notices retell accesses: they tell nothing of what the reader may not see yet (decision 009)
  return {
    compartments: records,
    sharedTypes: SHARED_TYPES,
    excludedSecurityLabels: hidden,
    binaryFollowsDocument: true,
    noticesFollowAbout: true,
    trailAsSeen: true,
    // a cohort would tell them of other records (decision 030)
    excludedTypes: COHORT_TYPES,
  };
}

/**
 * What the caller may read, as constraints on every row: the records they may enter, the
 * directory, the document types of their profession, the labels that hide documents.
 */
export function visibilityFor(actor: Actor, records: OpenRecord[], pc: PolicyContext): Visibility {
  switch (actor.kind) {
    case 'admin':
      // an opposed or closed record's rows are the legal-hold role's alone (decision 017)
      return { resourceTypes: ADMIN_READ_TYPES, ...(actor.legalHold ? {} : { closedRecordsHidden: true }) };
    case 'device':
      // no clinical content, but the conversations its organisation takes part in (decision 016); closed records hidden (decision 017)
      // no Patient either, on any path: one that deposits finds its patients by the INS lookup alone (decisions 034, 035)
      return {
        resourceTypes: [...DEVICE_READ_TYPES, ...MESSAGE_TYPES],
        messages: { participants: identitiesOf(actor), only: true },
        closedRecordsHidden: true,
        // what it subscribed to, and nobody else's Subscriptions (decision 010, amendment)
        ownSubscriptions: ref('Device', actor.id),
      };
    case 'patient':
    case 'related-person':
      return {
        ...patientSideVisibility(actor.kind, records.map((r) => r.patientId)),
        messages: { participants: identitiesOf(actor), patientSide: true },
        ownSubscriptions: actor.kind === 'patient' ? ref('Patient', actor.id) : ref('RelatedPerson', actor.id),
      };
    case 'practitioner': {
      const treating = records.filter((r) => r.treating).map((r) => r.patientId);
      // the author (as a person or in one of their roles) and the treating physician see masked documents
      const authors = [ref('Practitioner', actor.id), ...actor.roles.map((r) => ref('PractitionerRole', r.roleId))];
      return {
        compartments: records.map((r) => r.patientId),
        sharedTypes: SHARED_TYPES,
        // any of the acting roles lets a document through; no role, no document
        readableDocuments: actor.roles.map((role) => pc.matrix.readableDocuments(role)),
        excludedSecurityLabels: [{ ...MASQUE_PS, exceptAuthors: authors, ...(treating.length ? { exceptCompartments: treating } : {}) }],
        binaryFollowsDocument: true,
        // the trail of a record is the patient's (and the investigator's), not the care team's; a cohort tells of records they may not enter (decision 030)
        excludedTypes: [...AUDIT_TYPES, ...COHORT_TYPES],
        excludedTokens: [NOTICES],
        // the conversations they take part in, not their colleagues' (decision 016)
        messages: { participants: identitiesOf(actor) },
        // what they subscribed to, and nobody else's Subscriptions (decision 010)
        ownSubscriptions: ref('Practitioner', actor.id),
        // the folders the patient keeps for themselves are theirs alone (decision 021)
        patientFoldersHidden: true,
      };
    }
  }
}

/**
 * Why a type-level search or history of `type` is refused to this caller (403 saying so),
 * from the visibility the policy gave them; undefined when the type is not closed to them.
 * The answer depends on the caller and the type alone, never on what is stored.
 */
export function closedTypeReason(actor: Actor, visibility: Visibility, type: string, matrix?: MatrixView): string | undefined {
  const ownOnly = type === 'Subscription' && Boolean(visibility.ownSubscriptions);
  const closed = (visibility.resourceTypes !== undefined && !visibility.resourceTypes.includes(type) && !ownOnly) || Boolean(visibility.excludedTypes?.includes(type));
  if (!closed) return undefined;
  if (COHORT_TYPES.includes(type)) return `${type} resources (cohorts of patients) are read by administrators only`;
  if (AUDIT_TYPES.includes(type) && actor.kind === 'practitioner') return `Professionals do not read ${type}: a record's audit trail is read by the patient, their legal representatives and administrators`;
  if (actor.kind === 'admin') return `Administrators do not read ${type}: clinical content is for the patient and their care team`;
  if (actor.kind === 'device' && type === 'Patient') {
    return matrix?.deviceDeposits(actor.deviceType) ? SYSTEM_PATIENT_LOOKUP : 'A system that deposits no document reads no Patient: a patient\'s own application reads their record with their token';
  }
  if (actor.kind === 'device') return `Systems do not read ${type}: clinical content is for the patient and their care team`;
  return `${type} is not read by this caller`;
}

/** Why a system that deposits is refused any Patient search but the lookup by INS (decision 035). */
export const SYSTEM_PATIENT_LOOKUP =
  'A system finds the patient it deposits for only by its INS: GET Patient?identifier=<INS system>|<whole INS> (urn:oid:1.2.250.1.213.1.4.8, .9, .10 or .11), no other parameter but _format and _pretty';

/** The MHD list types: a SubmissionSet or a Folder is a List a deposit writes (decision 035). */
const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
const DEPOSIT_LIST = 'A system writes a List only as the SubmissionSet or Folder of a deposit';

/**
 * Why a List is not the metadata of a deposit, undefined when it is (decision 035 and its
 * amendment): `List.code` carries exactly one coding, `submissionset` or `folder` of
 * MHDlistTypes. IHE MHD uses List.code only to tell the two apart; any other coding beside it
 * would make the List something else as well (a worklist, or both a SubmissionSet and a Folder).
 */
export function depositListRefusal(list: Record<string, any>): string | undefined {
  const codings: any[] = Array.isArray(list.code?.coding) ? list.code.coding : [];
  const isMhd = (c: any) => c?.system === MHD_LIST_TYPES && (c.code === 'submissionset' || c.code === 'folder');
  if (!codings.some(isMhd)) return `${DEPOSIT_LIST} (List.code submissionset or folder of ${MHD_LIST_TYPES})`;
  if (codings.length === 1) return undefined;
  const found = codings.map((c) => `${c?.system ?? ''}|${c?.code ?? ''}`).join(', ');
  return `${DEPOSIT_LIST}: List.code carries exactly one coding, submissionset or folder of ${MHD_LIST_TYPES}, and no other (IHE MHD uses List.code only to tell a SubmissionSet from a Folder; what it gathers goes in the designationType extension). Found: ${found}`;
}

/** Why a system's Provenance is refused, whatever it says (decision 035, amendment). */
export const SYSTEM_PROVENANCE =
  "A system writes no Provenance: what it deposits is told by the deposit's metadata (the SubmissionSet's source, sourceId and date, each document's author and custodian), and who deposited it by the audit trail the server writes";

/** A resource about to be written. */
export interface WriteTarget {
  resourceType: string;
  /** The patient compartment of the new version ('' outside any record). */
  compartment: string;
  resource: Record<string, any>;
  /** For a DocumentReference: its type and class codings. */
  documentType?: Coding;
  documentClass?: Coding;
  /** The current version this write replaces or deletes; absent for a new resource. */
  previous?: Record<string, any>;
  /** A deletion (`resource` is then the deleted version). */
  deletion?: boolean;
  /** The id has versions, the last a deletion: this write makes it current again (`previous` is then absent). */
  revival?: boolean;
  /** The practitioner (`Practitioner/{id}`) of each PractitionerRole the previous version names as author, as the directory says. */
  authorRolePractitioners?: Record<string, string>;
}

const references = (list: unknown): string[] => (Array.isArray(list) ? list.map((r: any) => String(r?.reference ?? '').replace(/^.*\/([A-Z][A-Za-z]+\/[^/]+)$/, '$1')) : []);

const isRecordType = (t: WriteTarget) => t.compartment !== '';

/**
 * May this actor write this resource? `record` is the decision on the record the resource
 * belongs to (absent outside any record). Reading rights are checked separately: a write
 * never needs more than this.
 */
export function decideWrite(actor: Actor, target: WriteTarget, record: RecordDecision | undefined, pc: PolicyContext): Decision {
  const type = target.resourceType;
  // identity is the record's: administrators open and change it, nobody else
  if (type === 'Patient' && actor.kind !== 'admin') return { allow: false, status: 403, reason: 'Only administrators write Patient resources (the record identity)' };
  // the state has its operations, so that Patient.active and the state extension never disagree (decision 017)
  if (type === 'Patient' && !target.deletion && lifecycleFieldsChanged(target.previous, target.resource)) {
    return { allow: false, status: 403, reason: "A record's state (Patient.active and the dmp-record-state extension) changes only through $oppose, $activate, $close and $reopen" };
  }
  // the audit trail is the server's record of what was done: nobody forges or erases it
  if (SERVER_WRITTEN_TYPES.includes(type)) return { allow: false, status: 403, reason: `${type} resources are written by the server only` };
  // a message is sent once: closing it, its read receipt, the patient's copy are operations the server writes (decision 016)
  if (type === 'Communication' && target.previous) return { allow: false, status: 403, reason: 'A message is sent once: it is not changed or deleted ($close closes a conversation, $delete-copy removes it from the patient\'s side)' };
  // anyone subscribes: the criteria are searched with the subscriber's own access, and only its owner changes one (docs/decisions/010-subscriptions.md);
  // never to a type the subscriber cannot search at all: such a Subscription would be a promise never kept (decision 035)
  if (type === 'Subscription' && !isRecordType(target)) {
    const closed = target.deletion ? undefined : subscribedTypeReason(actor, target.resource, pc);
    return closed ? { allow: false, status: 403, reason: closed } : { allow: true, basis: 'subscriber' };
  }
  // a professional's own declared consent is how they open a record: only a block or a closed record refuses it
  const opening = actor.kind === 'practitioner' && type === 'Consent' && record && !record.allow && (record.refusal === 'no-consent' || record.refusal === 'break-glass-refused');
  if (record && !record.allow && !opening) return record;
  // a document's content is fixed once deposited (its attachment's size and hash describe it), a message's attachment once sent:
  // nobody changes a stored Binary, whoever deposited it (decision 021, amendment)
  // a deleted Binary written again at its id is changed content all the same (decision 021, amendment)
  if (type === 'Binary' && (target.previous || target.revival) && !target.deletion) return { allow: false, status: 403, reason: BINARY_UNCHANGED };
  switch (actor.kind) {
    case 'admin':
      return ADMIN_WRITE_TYPES.includes(type) ? { allow: true, basis: 'administration' } : { allow: false, status: 403, reason: `Administrators do not write clinical content (${type})` };
    case 'device': {
      // in a record a Provenance must target the Patient, the identity a system does not write; outside, only administrators write (decision 035, amendment)
      if (type === 'Provenance') return { allow: false, status: 403, reason: SYSTEM_PROVENANCE };
      if (!DEVICE_WRITE_TYPES.includes(type) || !isRecordType(target)) return { allow: false, status: 403, reason: `A system may deposit documents in a record, not write ${type}` };
      // its Lists are the metadata of its deposits, never a folder or worklist of its own in the record, nor both at once (decision 035 and its amendment)
      const notDeposit = type === 'List' && !target.deletion ? depositListRefusal(target.resource) : undefined;
      if (notDeposit) return { allow: false, status: 403, reason: notDeposit };
      if (type === 'DocumentReference' && !pc.matrix.deviceMayWrite(actorDeviceType(actor), target.documentType, target.documentClass)) {
        return { allow: false, status: 403, reason: `This system may not deposit documents of type ${codeText(target.documentType)}` };
      }
      const refused = labelWrite(target, [ref('Device', actor.id), ...(actor.organization ? [actor.organization] : [])]);
      return refused ?? { allow: true, basis: 'system' };
    }
    case 'patient':
    case 'related-person': {
      if (!record || !isRecordType(target)) return { allow: false, status: 403, reason: `A patient writes only in their own record, not ${type}` };
      if (!PATIENT_WRITE_TYPES.includes(type)) return { allow: false, status: 403, reason: `A patient does not write ${type} resources` };
      const self = actor.kind === 'patient' ? ref('Patient', actor.id) : ref('RelatedPerson', actor.id);
      // awaiting the announcement consultation, protecting a minor: the author's decision, whatever the document
      if (!target.deletion && changesAny(labelChange(target.previous, target.resource), INVISIBILITY_CODES)) {
        return { allow: false, status: 403, reason: 'INVISIBLE_PATIENT and INVISIBLE_REPRESENTANTS_LEGAUX are set and removed by the author of a document, not by the patient or their representative' };
      }
      if (type === 'Consent') {
        // a patient revokes any consent of their record (deleting it); they write only their own choices
        if (!target.deletion && !references(target.resource.performer).includes(self)) return { allow: false, status: 403, reason: `A Consent written by ${self} must name them as performer` };
        if (target.previous && !target.deletion && !references(target.previous.performer).includes(self)) return { allow: false, status: 403, reason: 'A patient changes only their own choices; a professional\'s declared consent is revoked by deleting it' };
      }
      // documents deposited by professionals are theirs: the patient masks and unmasks them ($meta-add / $meta-delete of MASQUE_PS), nothing more;
      // what is decided is what they write, not whether it differs: a write that sets or removes no MASQUE_PS is refused even when it changes nothing (decision 021, amendment)
      if (type === 'DocumentReference' && target.previous && !references(target.previous.author).includes(self)) {
        if (target.deletion || !onlyMasks(target.previous, target.resource)) {
          return { allow: false, status: 403, reason: 'A patient changes or deletes only the documents they deposited; on the others they only set or remove MASQUE_PS' };
        }
      } else if (type === 'DocumentReference' && !target.deletion) {
        // what the patient's side deposits is patient-authored: it names them as author, and is of a patient-authored type (decision 021)
        const mine = actor.kind === 'patient' ? [self] : [self, ref('Patient', actor.patientId)];
        if (!references(target.resource.author).some((a) => mine.includes(a))) {
          return { allow: false, status: 403, reason: `A document deposited by a patient or legal representative names them as author: set author to ${mine[mine.length - 1]}` };
        }
        if (!pc.matrix.patientMayWrite(target.documentType, target.documentClass)) {
          return { allow: false, status: 403, reason: `A patient deposits patient-authored documents only (their class in the habilitation matrix's patientClasses), not documents of type ${codeText(target.documentType)}` };
        }
      }
      // a List is authored like a document: the patient's side writes only the Lists whose source names them, never a professional's SubmissionSet or folder
      if (type === 'List') {
        // FHIR R4 List.source names no RelatedPerson: a representative writes the Lists in the patient's name (or their own, where one names them)
        const refused = ownListWrite(actor.kind === 'patient' ? [self] : [self, ref('Patient', actor.patientId)], target);
        if (refused) return refused;
      }
      // a Binary is a document's content and names no author: a patient deposits a new one, never deletes one
      // (a change of one is refused above, for every actor)
      if (type === 'Binary' && target.deletion) return { allow: false, status: 403, reason: 'A patient does not delete a stored Binary' };
      return { allow: true, basis: actor.kind === 'patient' ? 'own-record' : 'legal-representative' };
    }
    case 'practitioner': {
      if (!isRecordType(target)) {
        return { allow: false, status: 403, reason: `${type} outside a patient record is written by administrators` };
      }
      if (type === 'Consent') return declaredConsentWrite(actor.id, target, record);
      if (RECORD_DIRECTORY_TYPES.includes(type)) return { allow: false, status: 403, reason: `${type} resources are written by administrators` };
      const isAuthor = Boolean(target.previous) && practitionerAuthored(actor, target.previous!, target.authorRolePractitioners ?? {});
      // only the author deletes a document (A12 of the reference)
      if (type === 'DocumentReference' && target.deletion && target.previous && !isAuthor) {
        return { allow: false, status: 403, reason: 'Only the author of a document deletes it' };
      }
      if (!record?.allow) return { allow: false, status: 403, reason: 'No record' };
      // a deletion carries no document type (the author's right to delete is checked above)
      if (type === 'DocumentReference' && !target.deletion && !actor.roles.some((r) => pc.matrix.mayWrite(r, target.documentType, target.documentClass))) {
        return { allow: false, status: 403, reason: `The habilitation matrix does not let Practitioner/${actor.id}'s profession write documents of type ${codeText(target.documentType)}` };
      }
      const refused = labelWrite(target, [ref('Practitioner', actor.id), ...actor.roles.map((r) => ref('PractitionerRole', r.roleId))]);
      return refused ?? { allow: true, basis: record.basis };
    }
  }
}

/** Whether a write sets or removes MASQUE_PS and changes nothing else: the one write a patient makes on a professional's document. */
export function onlyMasks(previous: Record<string, any>, next: Record<string, any>): boolean {
  return differsOnlyByLabels(previous, next, [MASQUE_PS.code]) && changesAny(labelChange(previous, next), [MASQUE_PS.code]);
}

/**
 * Why a Subscription's criteria name a type its writer cannot search (the 403 of their
 * type-level search of it), undefined otherwise: the criteria are searched with their access.
 */
function subscribedTypeReason(actor: Actor, subscription: Record<string, any>, pc: PolicyContext): string | undefined {
  // the type as the dispatcher reads it (surrounding whitespace trimmed): a criteria it would search is one checked here
  const type = parseCriteria(subscription.criteria)?.resourceType;
  const closed = type ? closedTypeReason(actor, visibilityFor(actor, [], pc), type, pc.matrix) : undefined;
  return closed && `A Subscription's criteria are searched with its owner's access, and ${type} is closed to them: ${closed}`;
}

/**
 * Whether a document is the practitioner's (docs/decisions/021-document-metadata-life.md):
 * its author names them, one of their PractitionerRoles (acting now or not: the directory
 * tells whose role it is), or a contained Practitioner carrying their national identifier
 * (PDSm contains its authors), directly or as a contained PractitionerRole's practitioner.
 */
export function practitionerAuthored(
  actor: { id: string; nationalId?: string; roles: ActingRole[] },
  document: Record<string, any>,
  rolePractitioners: Record<string, string>,
): boolean {
  const me = ref('Practitioner', actor.id);
  const myRoles = new Set(actor.roles.map((r) => ref('PractitionerRole', r.roleId)));
  const contained = new Map<string, Record<string, any>>();
  for (const c of Array.isArray(document.contained) ? document.contained : []) if (typeof c?.id === 'string') contained.set(`#${c.id}`, c);
  const isMe = (reference: unknown, depth: number): boolean => {
    if (typeof reference !== 'string') return false;
    const inline = contained.get(reference);
    if (inline) {
      if (inline.resourceType === 'Practitioner') {
        return Boolean(actor.nationalId) && (Array.isArray(inline.identifier) ? inline.identifier : []).some((i: any) => i?.value === actor.nationalId);
      }
      return inline.resourceType === 'PractitionerRole' && depth === 0 && isMe(inline.practitioner?.reference, 1);
    }
    const local = reference.replace(/^.*\/([A-Z][A-Za-z]+\/[^/]+)$/, '$1');
    return local === me || myRoles.has(local) || rolePractitioners[local] === me;
  };
  return (Array.isArray(document.author) ? document.author : []).some((a: any) => isMe(a?.reference, 0));
}

/** The PractitionerRoles a document names as author (relative references), to look up whose they are. */
export function authorRoles(document: Record<string, any> | undefined): string[] {
  return references(document?.author).filter((r) => r.startsWith('PractitionerRole/'));
}

/**
 * A List written on the patient's side (docs/decisions/008-access-model.md, amendment): a
 * new or rewritten List names the caller as `source`; an existing one is changed or
 * deleted only when its stored `source` names them. `mine`: the references that are the
 * caller's (for a legal representative, also the patient they act for). Undefined when allowed.
 */
function ownListWrite(mine: string[], target: WriteTarget): Decision | undefined {
  const names = (list: Record<string, any> | undefined) => references([list?.source]).some((s) => mine.includes(s));
  if (target.previous && !names(target.previous)) {
    return {
      allow: false,
      status: 403,
      reason: `A patient or legal representative changes or deletes only the Lists they wrote (source ${mine.join(' or ')}): this List was written by ${String(target.previous.source?.reference ?? 'another actor')}`,
    };
  }
  if (!target.deletion && !names(target.resource)) {
    return { allow: false, status: 403, reason: `A List written by a patient or legal representative names them as source: set source to ${mine[mine.length - 1]}` };
  }
  return undefined;
}

/** The answer to a PUT that would create at an id chosen by a caller who may not (the same for a free id and a hidden one). */
export const createAtIdRefusal = (type: string) =>
  `${type}/[id] names no ${type} this caller can read, and creating a resource at an id chosen by the client is not open to them: create it with POST ${type} (the server assigns the id); PUT updates a resource the caller can read`;

/**
 * May this caller create a resource at an id they chose (update-as-create)? Only where no
 * row of the type can be hidden from them, or a refusal for an id held by a hidden row
 * and a creation for a free one would tell which ids exist
 * (docs/decisions/012-update-as-create.md). Administrators read every row of the types
 * they write; every other caller reads a part of each type at most.
 */
export function decideCreateAtId(actor: Actor, type: string): Decision {
  if (actor.kind === 'admin' && ADMIN_WRITE_TYPES.includes(type) && ADMIN_READ_TYPES.includes(type)) return { allow: true, basis: 'administration' };
  return { allow: false, status: 403, reason: createAtIdRefusal(type) };
}

/** The labels only a document's author sets and removes. */
const INVISIBILITY_CODES = [INVISIBLE_PATIENT.code, INVISIBLE_REPRESENTANTS_LEGAUX.code];

const changesAny = (change: { added: Set<string>; removed: Set<string> }, codes: string[]) => codes.some((c) => change.added.has(c) || change.removed.has(c));

/**
 * The labels a professional or a system may change on an existing resource: the mask is
 * the patient's choice (they set and remove it; a professional depositing at the
 * patient's request may set it on creation), the invisibility labels are the author's.
 * `mine`: the references that make the caller the author (themselves, their roles, their
 * organisation). Undefined when the write changes no label it may not change.
 */
function labelWrite(target: WriteTarget, mine: string[]): Decision | undefined {
  if (!target.previous || target.deletion) return undefined;
  const change = labelChange(target.previous, target.resource);
  if (changesAny(change, [MASQUE_PS.code])) {
    return { allow: false, status: 403, reason: 'MASQUE_PS is the patient\'s choice: on an existing document only the patient or their legal representative sets or removes it' };
  }
  if (changesAny(change, INVISIBILITY_CODES) && !references(target.previous.author).some((a) => mine.includes(a))) {
    return { allow: false, status: 403, reason: 'Only the author of a document sets or removes INVISIBLE_PATIENT and INVISIBLE_REPRESENTANTS_LEGAUX' };
  }
  return undefined;
}

/**
 * Whose documents a caller masks or unmasks all at once: the patient's own record, the
 * represented minor's for a legal representative; nobody else's (the mask is the
 * patient's choice, ACCESS.md).
 */
export function maskingRecord(actor: Actor | undefined): { allow: true; patientId: string } | { allow: false; status: 403; reason: string } {
  if (actor?.kind === 'patient') return { allow: true, patientId: actor.id };
  if (actor?.kind === 'related-person') return { allow: true, patientId: actor.patientId };
  return { allow: false, status: 403, reason: 'Only the patient or their legal representative masks or unmasks the documents of a record' };
}

/**
 * A professional writes only their own declared consent: performer and every actor are
 * themselves, a permit. It is how they gain access, so it needs no prior access; a
 * patient's block still refuses it.
 */
function declaredConsentWrite(id: string, target: WriteTarget, record: RecordDecision | undefined): Decision {
  const me = ref('Practitioner', id);
  const r = target.resource;
  // read before validation too (decision 031, amendment): an element that is not a list counts as absent
  const refs = (list: unknown) => (Array.isArray(list) ? list : []).map((x) => String(x?.reference ?? '').replace(/^.*\/(Practitioner\/[^/]+)$/, '$1'));
  const performers = refs(r.performer);
  const actors = refs((Array.isArray(r.provision?.actor) ? r.provision.actor : []).map((a: any) => a?.reference));
  if (r.provision?.type !== 'permit' || performers.length === 0 || !performers.every((p) => p === me) || actors.length === 0 || !actors.every((a) => a === me)) {
    return { allow: false, status: 403, reason: `A professional writes only their own declared consent: a permit with ${me} as performer and as every provision.actor` };
  }
  return { allow: true, basis: 'declared-consent' };
}

function actorDeviceType(actor: Actor): Coding | undefined {
  return actor.kind === 'device' ? actor.deviceType : undefined;
}

const codeText = (c: Coding | undefined) => (c ? `${c.system ? `${c.system}|` : ''}${c.code}` : '(none)');
