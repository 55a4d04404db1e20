import type { Actor, Coding } from '../access/actor';
import { authorRoles, closedTypeReason, COHORT_TYPES, createAtIdRefusal, decideCreateAtId, decideRecord, decideWrite, Decision, MatrixView, OpenRecord, PolicyContext, RecordDecision, recordRefusalCode, visibilityFor } from '../access/policy/decide';
import { RECORD_REFUSAL_SYSTEM } from '../access/policy/recordState';
import { LIFECYCLE_OPERATIONS } from '../access/policy/lifecycle';
import type { RecordFacts } from '../access/policy/recordFacts';
import { concerning } from '../audit/refusal';
import { BadRequest, Forbidden, RecordForbidden } from '../errors';
import { namedId } from '../referenceString';
import { splitOr } from '../search/parseSearch';
import type { Route } from '../interactions/dispatch';
import type { FhirRequest } from '../interactions/types';
import { FactsRead, FactsWanted, IdentifierHolders, factsOfRecordsNaming, factsOfResource, heldRecordFacts, patientsByNationalIdentifier, peekResource, recordFacts } from '../store/accessFacts';
import type { RecordLookup, Session, StoreAccess } from '../store/session';
import { decideLookup, LookupDecision, lookupIdentifier, looksUpRecords, NationalIdentifier } from '../access/policy/recordLookup';
import type { VersionWrite } from '../store/writeVersions';
import type { Visibility } from '../store/visibility';
import { admitMessage, checkAttachmentChange, MessagingSetup } from '../dmp/messaging';

/** What the policy needs besides the request: the matrix and the consent default. */
export interface PolicySetup {
  matrix: MatrixView;
  consentDefaultDays: number;
  /** The secure messaging's settings (docs/decisions/016-messaging.md); absent: no message is admitted. */
  messaging?: MessagingSetup;
  /** The type of a search parameter of a resource type (undefined when the type has none of that code); absent: searches are never narrowed. */
  searchParamType?: SearchParamTypeOf;
}

/** The type (`token`, `reference` …) of the search parameter `code` of `resourceType`; undefined when there is none. */
export type SearchParamTypeOf = (resourceType: string, code: string) => string | undefined;

export interface Caller {
  actor: Actor;
  /** The X-Break-Glass reason, when sent. */
  breakGlass?: string;
  /** Facts of the request's records already read with the actor (`factsWanted`); read here when absent. */
  facts?: FactsRead;
}

/**
 * The records a request names: the Patient it addresses, or the patients its search
 * parameters name (the record of another addressed resource comes with its facts, from
 * factsOfResource). These are decided with break-glass and refused with 403 when closed to
 * the caller; other records only count when the caller already has access to them.
 */
export function namedRecords(r: Route, req: FhirRequest): string[] {
  if (r.resourceType === 'Patient' && r.id) return [r.id];
  // a conditional write's criteria are a search: naming a patient, they name the record (decision 031)
  if ((r.interaction === 'search-type' || CONDITIONAL_WRITES.has(r.interaction)) && r.resourceType) {
    const out = new Set<string>();
    for (const [name, value] of req.query) {
      const [param, modifier] = name.split(':');
      if (param !== 'patient' && param !== 'subject' && !(r.resourceType === 'Patient' && param === '_id')) continue;
      // a value names the patient without a modifier or with the Patient type; :missing, :not, :identifier … do not
      if (modifier !== undefined && modifier !== 'Patient') continue;
      for (const v of value.split(',')) {
        // a version-specific reference names the patient as much as the plain one
        const patientId = namedId(v, 'Patient');
        if (patientId) out.add(patientId);
        else if (param === '_id' && ID.test(v)) out.add(v);
        else if (param === 'patient' || modifier === 'Patient') {
          // a bare id names the patient, with or without a version, as the search reads it
          const bare = BARE_PATIENT.exec(v);
          if (bare) out.add(bare[1]);
        }
      }
    }
    return [...out];
  }
  return [];
}

/**
 * What `authorize` will read of a person's records for this request, as far as the URL
 * says: the addressed resource's record, or the records it names. Read with the actor
 * (one statement fewer); undefined when the request names none.
 */
export function factsWanted(r: Route, req: FhirRequest): FactsWanted | undefined {
  const addressed = addressedResource(r);
  if (addressed) return { addressed };
  const records = namedRecords(r, req);
  return records.length ? { records } : undefined;
}

/** $oppose, $activate, $close, $reopen on Patient/[id]: the lifecycle policy decides them whatever the record's state (decision 017). */
const isLifecycleOperation = (r: Route) => r.interaction === 'operation' && r.resourceType === 'Patient' && (LIFECYCLE_OPERATIONS as readonly string[]).includes(r.operation ?? '');

/** The resource a request addresses whose record is learnt from its row: any but a Patient (its id is its record). */
function addressedResource(r: Route): { resourceType: string; id: string } | undefined {
  return r.resourceType && r.resourceType !== 'Patient' && r.id ? { resourceType: r.resourceType, id: r.id } : undefined;
}

function policyContext(setup: PolicySetup, caller: Caller, now: number): PolicyContext {
  return { now, consentDefaultDays: setup.consentDefaultDays, matrix: setup.matrix, breakGlass: caller.breakGlass };
}

/**
 * The facts of the records a request names and, unless it is confined to them, of the
 * records the caller may enter before looking at it (their own, or those whose Consents
 * name them). `known`: facts already read (the addressed resource's record), used when
 * they cover them all.
 */
async function factsFor(
  session: Session,
  actor: Actor,
  named: string[],
  confined: boolean,
  known: Map<string, RecordFacts> | undefined,
  holding: () => IdentifierHolders | undefined,
): Promise<Map<string, RecordFacts>> {
  const of = (ids: string[]) => (known && ids.every((p) => known.has(p)) ? known : recordFacts(session, ids));
  if (confined) return of(named);
  switch (actor.kind) {
    case 'patient':
      return of([...new Set([actor.id, ...named])]);
    case 'related-person':
      return of([...new Set([actor.patientId, ...named])]);
    case 'practitioner':
      // the records and their facts in one statement; of those, the ones holding the identifier searched
      return factsOfRecordsNaming(session, actor.id, named, holding());
    default:
      return of(named);
  }
}

/**
 * Decides what this caller may read and write for this request, as the StoreAccess its
 * session carries (docs/decisions/008-access-model.md). Reads the facts on `session`
 * (the pool, before the request's own transaction) and decides in the pure policy.
 */
export async function authorize(session: Session, setup: PolicySetup, caller: Caller, r: Route, req: FhirRequest, now = Date.now()): Promise<StoreAccess> {
  const { actor } = caller;
  // a request addressing one resource learns its record and that record's facts in one statement
  const read = caller.facts;
  const target = actor.kind !== 'admin' && actor.kind !== 'device' ? addressedResource(r) : undefined;
  const addressed = target
    ? read?.addressed && read.addressed.resourceType === target.resourceType && read.addressed.id === target.id
      ? read.addressed
      : await factsOfResource(session, target.resourceType, target.id)
    : undefined;
  const named = actor.kind === 'admin' || actor.kind === 'device' ? [] : addressed ? (addressed.compartment ? [addressed.compartment] : []) : namedRecords(r, req);
  if (caller.breakGlass !== undefined && named.length === 0) {
    throw new BadRequest('X-Break-Glass applies to one patient record: address the record (Patient/[id], its resources, or a search naming the patient)');
  }
  // a request confined to the records it names needs the facts of those alone: a
  // professional's other records (hundreds) are loaded only when it may reach them
  const confined = (addressed !== undefined || named.length > 0) && !reachesOtherRecords(r, req);
  // read from the request only where it decides something: a professional's request that is not confined
  const holding = () => (setup.searchParamType ? identifierHolders(r, req, setup.searchParamType) : undefined);
  const facts = await factsFor(session, actor, named, confined, addressed?.facts ?? read?.records, holding);
  const open: OpenRecord[] = [];
  const pc = policyContext(setup, caller, now);
  const withoutBreakGlass = { ...pc, breakGlass: undefined };
  for (const [patientId, record] of facts) {
    const isNamed = named.includes(patientId);
    // a resource addressed by id tells who holds its record only when it is the Patient itself (decision 029)
    const anonymous = target !== undefined && target.resourceType !== 'Patient';
    const decision = decideRecord(actor, record, 'read', isNamed ? pc : withoutBreakGlass, { anonymous });
    if (decision.allow) open.push({ patientId, treating: Boolean(decision.treating) });
    // a request that addresses a record closed to a professional is told why (so the EHR can ask consent or break
    // the glass), whatever it would do there: a write by id or by criteria naming the patient as a read (decision 031)
    else if (isNamed) refuseClosedRecord(actor, r, decision, patientId);
  }
  const visibility = visibilityFor(actor, open, pc);
  // a whole type closed to the caller (clinical content for administrators and systems) is said so;
  // a system that deposits reads Patient through the exact INS lookup alone (decision 035)
  const closedType = closedTypeOf(actor, visibility, r, pc);
  if (closedType && !systemLookup(actor, r, req, pc)) throw new Forbidden(closedType);
  // a cohort is written by administrators alone: a write by criteria is refused as one by id, match or not (decision 030)
  const closedCohort = CONDITIONAL_WRITES.has(r.interaction) && r.resourceType && COHORT_TYPES.includes(r.resourceType) ? closedTypeReason(actor, visibility, r.resourceType) : undefined;
  if (closedCohort) throw new Forbidden(closedCohort);
  const recordLookup = await lookupFor(session, actor, r, req, open, pc);
  // per transaction: a retried one takes the record's lock again and decides on what it reads then
  const decidedIn = new WeakMap<object, Map<string, RecordDecision>>();
  const recordDecision = async (s: Session, patientId: string, anonymous: boolean): Promise<RecordDecision> => {
    const decided = decidedIn.get(s.db) ?? new Map<string, RecordDecision>();
    decidedIn.set(s.db, decided);
    let d = decided.get(`${patientId}|${anonymous}`);
    if (!d) {
      // the record's state read under its share lock, until the commit: a lifecycle operation cannot slip in between (decision 017)
      const f = (await heldRecordFacts(s, [patientId])).get(patientId) as RecordFacts;
      d = decideRecord(actor, f, 'write', pc, { anonymous });
      decided.set(`${patientId}|${anonymous}`, d);
    }
    return d;
  };
  return {
    visibility,
    actor,
    // a Bundle entry meets the record decision its lone request would (decision 031)
    async checkEntryRecords(s: Session, entry: Route, entryReq: FhirRequest): Promise<void> {
      // a type closed to the caller is said so as to the lone request; the INS lookup is a lone request's alone (decision 033)
      const closed = closedTypeOf(actor, visibility, entry, pc);
      if (closed) throw new Forbidden(closed);
      if (actor.kind === 'admin' || actor.kind === 'device') return;
      const resource = addressedResource(entry);
      const found = resource ? await factsOfResource(s, resource.resourceType, resource.id) : undefined;
      const records = found ? (found.compartment ? [found.compartment] : []) : namedRecords(entry, entryReq);
      if (records.length === 0) return;
      const recordsFacts = found?.facts ?? (await recordFacts(s, records));
      for (const patientId of records) {
        const record = recordsFacts.get(patientId);
        if (!record) continue;
        // a Bundle carries no break-glass (refused above: it names no record)
        refuseClosedRecord(actor, entry, decideRecord(actor, record, 'read', withoutBreakGlass, { anonymous: resource !== undefined }), patientId);
      }
    },
    // the records a submission names, decided for writing before its content is looked at (decision 031)
    // (the writes are decided again in the submission's transaction, on the facts it reads)
    async checkRecordsWritable(s: Session, patientIds: string[]): Promise<void> {
      for (const [patientId, record] of await recordFacts(s, patientIds)) {
        // a record the caller cannot know (another patient's for a patient, an id nobody holds) is refused as a write there is
        const decision = decideRecord(actor, record, 'write', pc);
        if (!decision.allow) throw concerning(writeRefusal(actor, decision), { patient: patientId });
      }
    },
    ...(recordLookup ? { recordLookup } : {}),
    ...(actor.kind === 'device' && looksUpRecords(actor, pc.matrix) ? { lookUpRecord: (s: Session, identifier: NationalIdentifier) => recordHolding(s, actor, identifier, pc) } : {}),
    ...(addressed?.compartment !== undefined ? { addressedAt: { resourceType: target!.resourceType, id: target!.id, compartment: addressed.compartment } } : {}),
    notificationPreferences: new Map([...facts].map(([patientId, record]) => [patientId, record.notificationPreference])),
    async checkWrites(s: Session, writes: VersionWrite[]): Promise<void> {
      for (const w of writes) {
        if (w.previousCompartment === undefined && w.method === 'PUT' && !w.idDrawnByServer) await checkCreateAtId(s, actor, w);
        // the version replaced, as the interaction read and locked it (read here only when it did not)
        const previous =
          w.previousCompartment === undefined ? undefined : w.previousBody !== undefined ? (w.previousBody ?? undefined) : ((await peekResource(s, w.resourceType, w.id))?.resource ?? undefined);
        const compartments = [w.compartment, ...(w.previousCompartment !== undefined && w.previousCompartment !== w.compartment ? [w.previousCompartment] : [])];
        for (const compartment of compartments) {
          // an administrator opening a record does not need it open; changing an opposed or closed one's identity is refused like any write there (decision 017)
          const openingRecord = actor.kind === 'admin' && w.resourceType === 'Patient' && w.previousCompartment === undefined;
          // the record the written body names is named in a refusal; the one it leaves, or a deletion's, is not (decision 029)
          const anonymous = w.resourceType !== 'Patient' && (compartment !== w.compartment || Boolean(w.deleted));
          const record = compartment && !openingRecord ? await recordDecision(s, compartment, anonymous) : undefined;
          const resource = (w.body ?? previous ?? {}) as Record<string, any>;
          const authorRolePractitioners = await rolePractitioners(s, actor, w, previous);
          const revival = w.previousCompartment !== undefined && previous === undefined && !w.deleted;
          const decision = decideWrite(actor, { resourceType: w.resourceType, compartment, resource, ...documentCodes(w), previous, deletion: w.deleted, revival, authorRolePractitioners }, record, pc);
          if (!decision.allow) throw concerning(writeRefusal(actor, decision), { patient: compartment || undefined, resource: `${w.resourceType}/${w.id}` });
        }
        if (w.resourceType === 'Binary') await checkAttachmentChange(s, w);
        // a Communication an actor writes is a message: its thread's rules, then its thread is recorded (decision 016)
        if (w.resourceType === 'Communication' && !w.deleted && w.previousCompartment === undefined) {
          if (!setup.messaging) throw new Forbidden('Messages are not accepted by this server');
          try {
            await admitMessage(s, actor, w, setup.messaging);
          } catch (e) {
            throw e instanceof Forbidden ? concerning(e, { patient: w.compartment || undefined, resource: `Communication/${w.id}` }) : e;
          }
        }
      }
    },
  };
}

/**
 * A professional's search for a record by its INS (docs/decisions/033-record-lookup-by-ins.md):
 * when the record holding it is open and closed to them, what the search is to tell them
 * instead of an empty Bundle. Two indexed statements, for that exact search only; a record
 * the caller may enter (already among `open`) is searched as usual.
 */
async function lookupFor(session: Session, actor: Actor, r: Route, req: FhirRequest, open: OpenRecord[], pc: PolicyContext): Promise<RecordLookup | undefined> {
  if (r.interaction !== 'search-type' || !looksUpRecords(actor, pc.matrix)) return undefined;
  const identifier = lookupIdentifier(r.resourceType, req.query);
  if (!identifier) return undefined;
  const decision = await lookUp(session, actor, identifier, open, pc);
  if (!decision?.tell) return undefined;
  return { identifier, patientId: decision.patientId, ...(decision.refusal ? { refusal: decision.refusal, reason: decision.reason } : {}) };
}

/** The lookup's decision on the one record holding the INS; undefined when none, or several, or one already open to the caller. */
async function lookUp(session: Session, actor: Actor, identifier: NationalIdentifier, open: OpenRecord[], pc: PolicyContext): Promise<LookupDecision | undefined> {
  const ids = await patientsByNationalIdentifier(session, identifier.system, identifier.value);
  // one person per INS (decision 014): anything else is not told
  if (ids.length !== 1 || open.some((o) => o.patientId === ids[0])) return undefined;
  return decideLookup(actor, (await recordFacts(session, ids)).get(ids[0]), pc);
}

/** For a system that deposits: the open record holding this INS, as its lookup tells it (decision 035). */
async function recordHolding(session: Session, actor: Actor, identifier: NationalIdentifier, pc: PolicyContext): Promise<string | undefined> {
  const decision = await lookUp(session, actor, identifier, [], pc);
  return decision?.tell ? decision.patientId : undefined;
}

/** Why a type-level search or history (or a compartment search) of this request is refused to the caller as a whole type; undefined otherwise. */
function closedTypeOf(actor: Actor, visibility: Visibility, r: Route, pc: PolicyContext): string | undefined {
  const searched = r.interaction === 'search-compartment' ? r.compartmentType : r.resourceType;
  const typeLevel = r.interaction === 'search-type' || r.interaction === 'history-type' || r.interaction === 'search-compartment';
  return typeLevel && searched && searched !== '*' ? closedTypeReason(actor, visibility, searched, pc.matrix) : undefined;
}

/** Whether this request is a depositing system's exact lookup by INS, the one search of Patient open to it (decision 035). */
function systemLookup(actor: Actor, r: Route, req: FhirRequest, pc: PolicyContext): boolean {
  return actor.kind === 'device' && r.interaction === 'search-type' && looksUpRecords(actor, pc.matrix) && lookupIdentifier(r.resourceType, req.query) !== undefined;
}

/**
 * Throws the refusal of a request addressing a record (by the Patient, one of its
 * resources, or criteria naming the patient) that the read decision closes to the caller:
 * a professional is told why (so the EHR can declare consent or break the glass), and so is
 * anyone refused for the record's state; other refusals (a record not known to a patient)
 * are left to the 404 of what the caller cannot see. Lifecycle operations have their policy.
 */
function refuseClosedRecord(actor: Actor, r: Route, decision: RecordDecision, patientId: string): void {
  if (decision.allow || decision.status !== 403 || isLifecycleOperation(r)) return;
  if (actor.kind === 'practitioner' || recordRefusalCode(decision.refusal)) throw concerning(refusalError(decision), { patient: patientId });
}

/**
 * The refusal of a write: 403 even where a read would be 404 (the caller chose what to
 * write), in the same words for a record the caller cannot know as for one nobody holds.
 */
function writeRefusal(actor: Actor, decision: Decision | RecordDecision): Forbidden {
  if (decision.allow || decision.status !== 404) return refusalError(decision);
  return new Forbidden(actor.kind === 'patient' || actor.kind === 'related-person' ? 'A patient writes only in their own record' : 'This record is not open to the caller');
}

/** A refusal as its error: a refusal of the whole record names why in issue.details (recordRefusalCode). */
function refusalError(decision: Decision | RecordDecision): Forbidden {
  const reason = decision.allow ? '' : decision.reason;
  const code = !decision.allow && 'refusal' in decision ? recordRefusalCode(decision.refusal) : undefined;
  return code ? new RecordForbidden(reason, RECORD_REFUSAL_SYSTEM, code) : new Forbidden(reason);
}

/**
 * A PUT onto an id the caller cannot read (docs/decisions/012-update-as-create.md): refused
 * from the caller and the type alone, the same whether the id is free or holds a row hidden
 * from them, so that the answer tells nothing of which ids exist. Where the policy lets the
 * caller create at a chosen id (they read every row of the type), a row they could not see
 * is still never overwritten.
 */
async function checkCreateAtId(s: Session, actor: Actor, w: VersionWrite): Promise<void> {
  const decision = decideCreateAtId(actor, w.resourceType);
  const refusal = () => concerning(new Forbidden(decision.allow ? createAtIdRefusal(w.resourceType) : decision.reason), { resource: `${w.resourceType}/${w.id}` });
  if (!decision.allow) throw refusal();
  if (await peekResource(s, w.resourceType, w.id)) throw refusal();
}

/**
 * What a search by identifier can return (docs/decisions/008-access-model.md, amendment of
 * 2026-12-07): a search of one type with `identifier` (a token parameter of the type)
 * without modifier whose every value is `system|code`, both non-empty, returns only
 * resources holding one of those values, split and read as the engine reads them
 * (`splitOr`, then the first `|`); a document or List searched by its patient's identifier
 * (the MHD query) only resources filed in the record of a Patient holding one. Every other
 * parameter must read no other record (`readsNoOtherRecord`). Undefined for any other
 * request: the caller's records are then loaded whole.
 */
export function identifierHolders(r: Route, req: FhirRequest, paramType: SearchParamTypeOf): IdentifierHolders | undefined {
  const type = r.resourceType;
  if (r.interaction !== 'search-type' || !type || type === TRAIL) return undefined;
  for (let i = 0; i < req.query.length; i++) {
    const [name, value] = req.query[i];
    const held = name === 'identifier' && paramType(type, 'identifier') === 'token' ? type : FILED_BY_SUBJECT.has(type) && SUBJECT_IDENTIFIER.test(name) ? 'Patient' : undefined;
    const values = held ? systemCodes(value) : undefined;
    if (!held || !values) continue;
    if (!req.query.every(([other, v], j) => j === i || readsNoOtherRecord(type, other, v, paramType))) return undefined;
    return { resourceType: held, values, returned: type };
  }
  return undefined;
}

/** Types filed in the record of the Patient their `subject` names (the first parameter of the Patient compartment for them). */
const FILED_BY_SUBJECT = new Set(['DocumentReference', 'List']);
// the chain's target a Patient: a bare `subject` may name a Device or a Location, and a List naming one is filed by its `source`
const SUBJECT_IDENTIFIER = /^(patient(:Patient)?|subject:Patient)\.identifier$/;
/** Parameters that shape the answer, not the rows it holds. */
const SHAPING = new Set(['_count', '_summary', '_elements', '_total', '_format', '_pretty']);
/** Parameters on every type that compare the row's own values. */
const OWN_VALUES = new Set(['_id', '_lastUpdated', '_tag', '_security', '_profile']);
/** Parameter types compared with the row's own index values: no other resource is read to decide them. */
const OWN_VALUE_TYPES = new Set(['token', 'string', 'date', 'number', 'quantity', 'uri']);

/**
 * Whether a search parameter decides on the row's own values alone: no reference (whose
 * target's readability is decided against the caller's records), chain, include or unknown
 * parameter (ignored under lenient handling, which would leave the identifier alone to decide).
 */
function readsNoOtherRecord(type: string, name: string, value: string, paramType: SearchParamTypeOf): boolean {
  if (SHAPING.has(name)) return true;
  if (name.includes('.')) return false;
  const code = name.split(':')[0];
  if (OWN_VALUES.has(code)) return true;
  if (code === '_sort') return value.split(',').every((key) => OWN_VALUES.has(key.replace(/^-/, '')) || OWN_VALUE_TYPES.has(paramType(type, key.replace(/^-/, '')) ?? ''));
  return !code.startsWith('_') && OWN_VALUE_TYPES.has(paramType(type, code) ?? '');
}

/** `system|code` values of a token parameter, each with both parts; undefined when one lacks either. */
function systemCodes(value: string): IdentifierHolders['values'] | undefined {
  const out: IdentifierHolders['values'] = [];
  for (const v of splitOr(value)) {
    const bar = v.indexOf('|');
    if (bar <= 0 || bar === v.length - 1) return undefined;
    out.push({ system: v.slice(0, bar), code: v.slice(bar + 1) });
  }
  return out;
}

/** Parameters through which a search reaches resources of other records than the ones it names. */
const REACHING = /^(_include|_revinclude|_has|_list)(:|$)|\./;
const CONFINED = new Set(['read', 'vread', 'history-instance', 'update', 'patch', 'delete']);

/**
 * Whether a request naming records may also return resources of others: an include, a
 * reverse include, `_has`, a chain or `_list` can, a read of one resource cannot.
 */
export function reachesOtherRecords(r: Route, req: FhirRequest): boolean {
  if (CONFINED.has(r.interaction)) return false;
  // a conditional write's body may name, and move the resource to, any record the caller writes in
  if (CONDITIONAL_WRITES.has(r.interaction)) return true;
  // the trail's `patient` is also its agent, and events about a record may be filed outside it:
  // naming a patient does not confine a trail search to that record (decision 009, amendment of 2026-12-06)
  if (r.resourceType === TRAIL) return true;
  return req.query.some(([name]) => REACHING.test(name));
}

const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const TRAIL = 'AuditEvent';
const BARE_PATIENT = /^([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;
const CONDITIONAL_WRITES = new Set<string>(['conditional-update', 'conditional-patch', 'conditional-delete']);

/**
 * For a practitioner deleting a document: whose are the PractitionerRoles it names as author
 * and that the caller does not act in now (the deletion is the author's, decision 021).
 */
async function rolePractitioners(s: Session, actor: Actor, w: VersionWrite, previous: Record<string, any> | undefined): Promise<Record<string, string> | undefined> {
  if (actor.kind !== 'practitioner' || w.resourceType !== 'DocumentReference' || !w.deleted || !previous) return undefined;
  const acting = new Set(actor.roles.map((r) => `PractitionerRole/${r.roleId}`));
  const out: Record<string, string> = {};
  for (const role of authorRoles(previous)) {
    if (acting.has(role)) continue;
    const stored = await peekResource(s, 'PractitionerRole', role.slice('PractitionerRole/'.length));
    const practitioner = stored?.resource?.practitioner?.reference;
    if (typeof practitioner === 'string') out[role] = practitioner.replace(/^.*\/(Practitioner\/[^/]+)$/, '$1');
  }
  return out;
}

/** The type and class a DocumentReference version is indexed with. */
function documentCodes(w: VersionWrite): { documentType?: Coding; documentClass?: Coding } {
  if (w.resourceType !== 'DocumentReference' || !w.index) return {};
  const token = (param: string) => {
    const row = w.index!.token.find((t) => t.param === param && t.code);
    return row ? { system: row.system ?? undefined, code: row.code! } : undefined;
  };
  return { documentType: token('type'), documentClass: token('category') };
}
