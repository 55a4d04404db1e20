import crypto from 'node:crypto';
import { FhirError, NotFound } from '../errors';
import { newVersion } from '../interactions/common';
import type { Route } from '../interactions/dispatch';
import type { FhirRequest, InteractionContext } from '../interactions/types';
import { compartmentOfResource } from '../store/accessFacts';
import { readCurrent } from '../store/resources';
import { INTERNAL_ACCESS, Session, StoreAccess, TouchedRow } from '../store/session';
import { isUnrestricted } from '../store/visibility';
import type { VersionWrite } from '../store/writeVersions';
import { readPreferenceBasic } from '../store/notifications';
import { auditEvent, AuditAgent, AuditEntities, AuditOutcome } from './auditEvent';
import { DMP_NOTIFICATION, noticeKind, notificationOf, notifiesAtOnce, preferenceOf } from './notification';
import { refusalOf } from './refusal';

/**
 * The audit writer: turns what an interaction's session read and wrote into AuditEvents
 * (one per patient) and writes them with the access, through the one store function that
 * writes as the server (docs/decisions/009-audit.md).
 */

/**
 * Reading the trail is not itself audited (no recursion: the patient reading theirs would
 * grow it at every read), except by an investigator: an administrator's read of a record's
 * trail is an access to that record like any other (BALP).
 */
const TRAIL_TYPE = 'AuditEvent';

/** Interactions whose request is a query, recorded as the query entity. */
const QUERIES = new Set(['search-type', 'search-compartment', 'history-type', 'history-system', 'history-instance']);

function queryEntity(r: Route, req: FhirRequest): Pick<AuditEntities, 'query' | 'queriedType'> {
  const queried = r.interaction === 'search-compartment' ? `Patient/${r.id}/${r.compartmentType}` : r.interaction === 'history-instance' ? `${r.resourceType}/${r.id}/_history` : r.resourceType ?? '';
  if (!QUERIES.has(r.interaction) && r.interaction !== 'operation') return {};
  if (r.interaction === 'operation') return req.query.length ? { query: new URLSearchParams(req.query).toString(), queriedType: `${queried}${r.id ? `/${r.id}` : ''}/$${r.operation}` } : {};
  return { query: new URLSearchParams(req.query).toString(), queriedType: queried };
}

/** The touched rows grouped by record: each resource once, the version written when there is one. */
export function touchedByPatient(touched: TouchedRow[], trailAudited = false): Map<string, string[]> {
  const out = new Map<string, Map<string, string>>();
  for (const row of touched) {
    // rows outside any record (the directory, conformance resources) are not patient data; the trail is audited only for investigators
    if (!row.compartment || (row.resourceType === TRAIL_TYPE && !trailAudited)) continue;
    const refs = out.get(row.compartment) ?? new Map<string, string>();
    const base = `${row.resourceType}/${row.id}`;
    if (row.written) refs.set(base, `${base}/_history/${row.versionId}`);
    else if (!refs.has(base)) refs.set(base, base);
    out.set(row.compartment, refs);
  }
  return new Map([...out].map(([patient, refs]) => [patient, [...refs.values()]]));
}

/** New DocumentReferences the interaction wrote, per record: what a new-document notice is about. */
export function newDocumentsByPatient(touched: TouchedRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const row of touched) {
    if (!row.compartment || row.resourceType !== 'DocumentReference' || row.versionId !== 1 || !row.written || row.written === 'DELETE') continue;
    const list = out.get(row.compartment) ?? [];
    const reference = `DocumentReference/${row.id}`;
    if (!list.includes(reference)) list.push(reference);
    out.set(row.compartment, list);
  }
  return out;
}

/** New messages the interaction wrote, per record (docs/decisions/016-messaging.md): what a new-message notice is about. */
export function newMessagesByPatient(touched: TouchedRow[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const row of touched) {
    if (!row.compartment || row.resourceType !== 'Communication' || row.versionId !== 1 || row.written !== 'POST') continue;
    out.set(row.compartment, [...(out.get(row.compartment) ?? []), `Communication/${row.id}`]);
  }
  return out;
}

/** The stored versions of events, each in the compartment of the patient it concerns. */
function versionsOf(ctx: InteractionContext, events: { patient: string; event: Record<string, unknown>; id?: string }[], recorded: string): VersionWrite[] {
  return events.map(({ patient, event, id }) => {
    const version = newVersion(ctx, event, { id: id ?? crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
    // the record the event is about, even when the agent is another patient (a refused attempt)
    return { ...version, compartment: patient };
  });
}

function request(ctx: InteractionContext, recorded: string, outcomeDesc?: string) {
  return { recorded, serverUrl: ctx.config.baseUrl, outcomeDesc };
}

/**
 * Queues the events of the interaction that just ran on `session`: one per patient whose
 * rows it returned or wrote. They go out with the session's writes (same statement or
 * same transaction), or alone after a read, before the answer is sent.
 */
export async function auditInteraction(ctx: InteractionContext, session: Session, agent: AuditAgent, r: Route, req: FhirRequest): Promise<void> {
  const touched = session.takeTouched();
  const investigator = session.access.actor?.kind === 'admin';
  if (!investigator && r.resourceType === TRAIL_TYPE && (r.interaction === 'read' || r.interaction === 'vread' || QUERIES.has(r.interaction))) return;
  const patients = touchedByPatient(touched, investigator);
  if (patients.size === 0) return;
  const recorded = new Date().toISOString();
  const query = queryEntity(r, req);
  const events = [...patients].map(([patient, resources]) => ({
    patient,
    id: crypto.randomUUID(),
    event: auditEvent(agent, { interaction: r.interaction, operation: r.operation }, 0, { patient, resources, ...query }, request(ctx, recorded)),
  }));
  const notices = await noticesOf(ctx, session, agent, r, events, newDocumentsByPatient(touched), recorded, newMessagesByPatient(touched));
  await session.writeAudit(versionsOf(ctx, events, recorded), notices);
}

/** Where the patient's stated preference lives: a Basic of ours in their record (decision 009). */
const PREFERENCE_CODE = 'notification-preference';

/**
 * The patient's notices of this interaction: one per record, about its AuditEvent, for a
 * new document or a professional's access; none for the patient's own accesses; none at
 * once (but emergencies) for a patient who chose the daily digest.
 */
async function noticesOf(
  ctx: InteractionContext,
  session: Session,
  agent: AuditAgent,
  r: Route,
  events: { patient: string; id: string }[],
  newDocuments: Map<string, string[]>,
  sent: string,
  newMessages: Map<string, string[]> = new Map(),
): Promise<VersionWrite[]> {
  const out: VersionWrite[] = [];
  for (const { patient, id } of events) {
    const documents = newDocuments.get(patient) ?? [];
    const messages = documents.length ? [] : (newMessages.get(patient) ?? []);
    const kind = noticeKind(agent, documents.length, messages.length);
    if (!kind) continue;
    // read with the record's facts when the policy read them; else now, as the server (the caller may not read the patient's Basic resources)
    const known = session.access.notificationPreferences;
    const basic = known?.has(patient) ? known.get(patient) : await readPreferenceBasic(new Session(session.db, INTERNAL_ACCESS), patient, DMP_NOTIFICATION, PREFERENCE_CODE);
    const preference = preferenceOf(basic);
    if (!notifiesAtOnce(preference, agent, kind)) continue;
    const communication = notificationOf({ patient, agent, kind, interaction: r.interaction, about: [`AuditEvent/${id}`, ...documents, ...messages], newDocuments: documents.length, sent });
    out.push(newVersion(ctx, communication, { id: crypto.randomUUID(), versionId: 1, lastUpdated: sent, method: 'POST' }));
  }
  return out;
}

/** BALP outcome 4: the policy refused; the reason is the refusal's own. */
const REFUSED: AuditOutcome = 4;

/**
 * A failed request that was a refusal of access is audited in its own statement (the
 * request's work rolled back, the trace of the refusal must not): a 403, and a 404 that
 * hides a resource which exists (decision 008). Other failures are not audited.
 */
export async function auditFailure(ctx: InteractionContext, access: StoreAccess, r: Route, req: FhirRequest, error: unknown): Promise<void> {
  const agent = access.auditAgent;
  if (!agent || !(error instanceof FhirError)) return;
  let patient: string | undefined;
  let resource: string | undefined;
  let reason = error.issues.map((i) => i.diagnostics).join('; ');
  if (error.status === 403) {
    const known = refusalOf(error);
    patient = known?.patient;
    resource = known?.resource;
  } else if (error instanceof NotFound && r.resourceType && r.id && !isUnrestricted(access.visibility) && r.resourceType !== TRAIL_TYPE) {
    // the caller is told "not known"; the trail says what was hidden from them
    const compartment = await compartmentOfResource(new Session(ctx.db.knex, INTERNAL_ACCESS), r.resourceType, r.id);
    // unknown, or visible to the caller (the 404 was for something else, a version that is not there)
    if (compartment === undefined || (await readCurrent(new Session(ctx.db.knex, access), r.resourceType, r.id, { withBody: false }))) return;
    // the patient and their representatives read this record's trail: an event there would tell them what the 404 hid
    // (docs/decisions/012-update-as-create.md); it is kept outside the record, for the investigator
    const readsThisTrail = (access.actor?.kind === 'patient' && access.actor.id === compartment) || (access.actor?.kind === 'related-person' && access.actor.patientId === compartment);
    patient = readsThisTrail ? undefined : compartment || undefined;
    resource = `${r.resourceType}/${r.id}`;
    reason = `${resource} is hidden from the caller by the access policy (answered 404)`;
  } else return;
  const recorded = new Date().toISOString();
  const event = auditEvent(
    agent,
    { interaction: r.interaction, operation: r.operation },
    REFUSED,
    { patient, resources: resource ? [resource] : [], ...queryEntity(r, req), target: `${req.method} ${r.resourceType ?? ''}${r.id ? `/${r.id}` : ''}` },
    request(ctx, recorded, reason),
  );
  await new Session(ctx.db.knex, INTERNAL_ACCESS).writeAudit(versionsOf(ctx, [{ patient: patient ?? '', event }], recorded));
}
