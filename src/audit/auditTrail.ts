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
import { auditEvent, AuditAgent, AuditEntities, AuditOutcome } from './auditEvent';
import { refusalOf } from './refusal';

/**
 * The audit writer: turns what an interaction's session read and wrote into AuditEvents
 * (one per patient) and writes them with the access, through the one store function that
 * writes as the server (docs/decisions/009-audit.md).
 */

/** Reading the trail is not itself audited (no recursion). */
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
export function touchedByPatient(touched: TouchedRow[]): Map<string, string[]> {
  const out = new Map<string, Map<string, string>>();
  for (const row of touched) {
    // rows outside any record (the directory, conformance resources) are not patient data; the trail is not audited
    if (!row.compartment || row.resourceType === TRAIL_TYPE) continue;
    const refs = out.get(row.compartment) ?? new Map<string, string>();
    const base = `${row.resourceType}/${row.id}`;
    if (row.written) refs.set(base, `${base}/_history/${row.versionId}`);
    else if (!refs.has(base)) refs.set(base, base);
    out.set(row.compartment, refs);
  }
  return new Map([...out].map(([patient, refs]) => [patient, [...refs.values()]]));
}

/** The stored versions of events, each in the compartment of the patient it concerns. */
function versionsOf(ctx: InteractionContext, events: { patient: string; event: Record<string, unknown> }[], recorded: string): VersionWrite[] {
  return events.map(({ patient, event }) => {
    const version = newVersion(ctx, event, { id: crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
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
  if (r.resourceType === TRAIL_TYPE && (r.interaction === 'read' || r.interaction === 'vread' || QUERIES.has(r.interaction))) return;
  const patients = touchedByPatient(touched);
  if (patients.size === 0) return;
  const recorded = new Date().toISOString();
  const query = queryEntity(r, req);
  const events = [...patients].map(([patient, resources]) => ({
    patient,
    event: auditEvent(agent, { interaction: r.interaction, operation: r.operation }, 0, { patient, resources, ...query }, request(ctx, recorded)),
  }));
  await session.writeAudit(versionsOf(ctx, events, recorded));
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
    patient = compartment || undefined;
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
