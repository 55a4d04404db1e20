import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Actor } from '../access/actor';
import { decideTransition, LifecycleOperation, Transition, unknownRecord } from '../access/policy/lifecycle';
import type { RecordFacts } from '../access/policy/recordFacts';
import { ClosureMode, recordStateOf, RecordStateFacts, withRecordState } from '../access/policy/recordState';
import { AuditAgent, auditEvent } from '../audit/auditEvent';
import { SERVER_DEVICE } from '../audit/notification';
import { concerning } from '../audit/refusal';
import { BadRequest, Conflict, FhirError, Forbidden, NotFound } from '../errors';
import { assertId, newVersion } from '../interactions/common';
import { assertValid } from '../interactions/conformanceResources';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { inTransaction, withinTransaction } from '../interactions/unitOfWork';
import { writeNewVersion } from '../interactions/update';
import { operationInputs } from '../operations/parameters';
import { recordFacts } from '../store/accessFacts';
import { archivesDue, clearClosure, countArchivesDue, deleteRecordRows, lockArchiveDue, markClosed } from '../store/recordLifecycle';
import { readCurrent } from '../store/resources';
import { INTERNAL_ACCESS, Session } from '../store/session';
import { referencedId } from '../referenceString';

/**
 * $oppose, $activate, $close and $reopen on Patient/[id] (docs/decisions/017-record-lifecycle.md).
 * The pure lifecycle policy decides; here the facts are read, the Patient's new version is
 * written with the state, `record_closure` follows, and a deletion removes every row of the
 * record. All in the request's one transaction.
 *
 * The Patient is written as the server: the caller (a patient, a representative) may not
 * write Patient resources, and no plain write may change the state; the lifecycle policy is
 * what allowed this one. The write is handed to the caller's session as touched, so the
 * pipeline audits it as the caller's operation.
 */

type Json = Record<string, any>;

/** One input parameter, from the query or a Parameters body (valueCode, valueString, valueBoolean). */
function parameter(req: FhirRequest, name: string): string | undefined {
  const values = operationInputs(req)
    .filter(([k]) => k === name)
    .map(([, v]) => (typeof v === 'boolean' ? String(v) : v));
  if (values.length > 1) throw new BadRequest(`At most one "${name}" parameter`, 'invalid');
  if (values.length === 1 && typeof values[0] !== 'string') throw new BadRequest(`"${name}" must be a code`, 'invalid');
  return values[0] as string | undefined;
}

function closureMode(req: FhirRequest): ClosureMode {
  const mode = parameter(req, 'mode');
  if (mode !== 'archive' && mode !== 'delete') throw new BadRequest('$close takes mode = archive | delete', mode === undefined ? 'required' : 'code-invalid');
  return mode;
}

/** A refused transition as its error; a 403 is audited in the record's trail, like every refusal of the policy. */
function refused(t: Exclude<Transition, { allow: true }>, patientId: string): FhirError {
  if (t.status === 403) return concerning(new Forbidden(t.reason), { patient: patientId, resource: `Patient/${patientId}` });
  return t.status === 404 ? new NotFound(t.reason) : new Conflict(t.reason);
}

/** An id that holds no record, as its caller is answered (no record's trail to audit the refusal in). */
function notHeld(actor: Actor, patientId: string): FhirError {
  const t = unknownRecord(actor, patientId);
  return t.status === 403 ? new Forbidden(t.reason) : new NotFound(t.reason);
}

/** The facts of a record, whoever may see it; undefined when no current Patient holds it. */
async function factsOf(internal: Session, patientId: string): Promise<{ patient: Json; current: NonNullable<Awaited<ReturnType<typeof readCurrent>>>; facts: RecordFacts } | undefined> {
  const current = await readCurrent(internal, 'Patient', patientId, { forUpdate: true });
  if (!current || current.deleted || !current.body) return undefined;
  const facts = (await recordFacts(internal, [patientId])).get(patientId)!;
  return { patient: JSON.parse(current.body) as Json, current, facts };
}

function callerOf(session: Session): Actor {
  const actor = session.access.actor;
  // the unrestricted test client is nobody: a record's state is changed by a person or the operator
  if (!actor) throw new Forbidden("A record's state is changed by the patient, their legal representative or an administrator");
  return actor;
}

const DAY_MS = 86_400_000;

/** $oppose, $activate, $close?mode=archive and $reopen: a new state on the Patient. */
async function changeState(ctx: InteractionContext, session: Session, req: FhirRequest, operation: LifecycleOperation, mode?: ClosureMode): Promise<FhirResponse> {
  const actor = callerOf(session);
  const id = assertId(req.id);
  return withinTransaction(ctx, session, async (s) => {
    const internal = new Session(s.db, INTERNAL_ACCESS);
    const found = await factsOf(internal, id);
    if (!found) throw notHeld(actor, id);
    const now = Date.now();
    const t = decideTransition(actor, found.facts, operation, mode, now);
    if (!t.allow) throw refused(t, id);
    if (t.to === 'deleted') throw new Error('a state change cannot delete');
    const since = new Date(now).toISOString();
    const state: RecordStateFacts =
      t.to === 'closed' ? { state: 'closed', since, closureMode: 'archive', retainUntil: new Date(now + ctx.config.recordRetentionDays * DAY_MS).toISOString() } : { state: t.to, since };
    const next = withRecordState(found.patient, state);
    assertValid(ctx, next, 'update');
    const written = await writeNewVersion(ctx, internal, 'Patient', id, next, found.current, { method: 'PATCH', prefer: { return: 'representation' } });
    s.touch([{ compartment: id, resourceType: 'Patient', id, versionId: written.versionId, written: 'PATCH' }]);
    if (state.state === 'opposed' || state.state === 'closed') await markClosed(internal, id, { state: state.state, mode: state.closureMode, closedAt: since, retainUntil: state.retainUntil });
    else await clearClosure(internal, id);
    return { ...written, status: 200 };
  });
}

/**
 * The records a deletion with `cascade` covers besides the holder's: the patients of the
 * RelatedPersons the holder's Patient names as the same person (Patient.link seealso), with
 * the actor who acts on each (the holder as that representative, or the administrator).
 */
async function represented(internal: Session, holder: Json, actor: Actor): Promise<{ patientId: string; actor: Actor }[]> {
  const out: { patientId: string; actor: Actor }[] = [];
  for (const link of Array.isArray(holder.link) ? holder.link : []) {
    const rpId = referencedId(String(link?.other?.reference ?? ''), 'RelatedPerson');
    if (link?.type !== 'seealso' || !rpId) continue;
    const rp = await readCurrent(internal, 'RelatedPerson', rpId);
    if (!rp || rp.deleted || !rp.body) continue;
    const body = JSON.parse(rp.body) as Json;
    const patientId = referencedId(String(body.patient?.reference ?? ''), 'Patient');
    if (body.active === false || !patientId) continue;
    if (actor.kind === 'admin') out.push({ patientId, actor });
    else if (actor.kind === 'patient') out.push({ patientId, actor: { ...actor, kind: 'related-person', id: rpId, patientId } });
    else throw new Forbidden('Only the holder themselves or an administrator extends a deletion to the records the holder represents');
  }
  return out;
}

/** $close?mode=delete: every row of the record (and, with cascade, of those the holder represents) deleted; one event of it kept. */
async function deleteRecords(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const actor = callerOf(session);
  const id = assertId(req.id);
  const cascade = parameter(req, 'cascade');
  if (cascade !== undefined && cascade !== 'true' && cascade !== 'false') throw new BadRequest('"cascade" is true or false', 'invalid');
  return withinTransaction(ctx, session, async (s) => {
    const internal = new Session(s.db, INTERNAL_ACCESS);
    const holder = await factsOf(internal, id);
    if (!holder) throw notHeld(actor, id);
    const records = [{ patientId: id, actor }, ...(cascade === 'true' ? await represented(internal, holder.patient, actor) : [])];
    const now = Date.now();
    // every record is decided before anything is deleted: one refusal refuses them all
    for (const r of records) {
      const found = r.patientId === id ? holder : await factsOf(internal, r.patientId);
      if (!found) throw new NotFound(`Patient/${r.patientId} is not known`);
      const t = decideTransition(r.actor, found.facts, 'close', 'delete', now);
      if (!t.allow) throw refused(t, r.patientId);
    }
    const recorded = new Date(now).toISOString();
    const events = [];
    for (const r of [...new Set(records.map((x) => x.patientId))]) {
      await deleteRecordRows(s.db, r);
      const agent = session.access.auditAgent;
      const why = `Record deleted on request ($close mode=delete${r !== id ? `, with the record of Patient/${id}` : ''})`;
      if (agent && !ctx.withoutAudit) events.push(deletionEvent(ctx, agent, r, why, recorded));
    }
    if (events.length) await internal.writeAudit(events);
    return {
      status: 200,
      resource: { resourceType: 'Parameters', parameter: [...new Set(records.map((x) => x.patientId))].map((p) => ({ name: 'deleted', valueReference: { reference: `Patient/${p}` } })) },
    };
  });
}

/**
 * The one trace a deletion leaves (decision 017): who, when, the operation and the
 * record's id, outside any record; nothing clinical.
 */
function deletionEvent(ctx: InteractionContext, agent: AuditAgent, patientId: string, why: string, recorded: string) {
  // the agent by reference only: their name may be the deleted person's own
  const event = auditEvent({ ...agent, display: undefined }, { interaction: 'operation', operation: 'close' }, 0, { patient: patientId, resources: [] }, { recorded, serverUrl: ctx.config.baseUrl, outcomeDesc: why });
  const version = newVersion(ctx, event, { id: crypto.randomUUID(), versionId: 1, lastUpdated: recorded, method: 'POST' });
  return { ...version, compartment: '' };
}

export const oppose = (ctx: InteractionContext, session: Session, req: FhirRequest) => changeState(ctx, session, req, 'oppose');
export const activate = (ctx: InteractionContext, session: Session, req: FhirRequest) => changeState(ctx, session, req, 'activate');
export const reopen = (ctx: InteractionContext, session: Session, req: FhirRequest) => changeState(ctx, session, req, 'reopen');
export async function close(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const mode = closureMode(req);
  return mode === 'delete' ? deleteRecords(ctx, session, req) : changeState(ctx, session, req, 'close', 'archive');
}


/**
 * The purge of archives (decision 017): every archived record whose retention has passed at
 * `now` is deleted, one record per transaction (never half-deleted), found again batch after
 * batch from `record_closure`, so a purge stopped midway resumes and a second run finds
 * nothing. Each deletion leaves its event, by this server. The number of records deleted.
 */
export async function purgeArchives(ctx: InteractionContext, o: { batch: number; now?: Date; print?: (line: string) => void }): Promise<number> {
  const print = o.print ?? ((line: string) => console.log(line));
  const now = (o.now ?? new Date()).toISOString();
  const knex = ctx.db.knex;
  const total = await countArchivesDue(knex, now);
  print(`purge: ${total} archived record(s) past their retention at ${now}, batches of ${o.batch}`);
  const server: AuditAgent = { reference: SERVER_DEVICE, professions: [] };
  let done = 0;
  for (;;) {
    const due = await archivesDue(knex, now, o.batch);
    if (due.length === 0) break;
    let purged = 0;
    for (const patientId of due) {
      const deleted = await inTransaction(ctx, INTERNAL_ACCESS, async (s) => {
        // another purge running at the same time may hold it, or have deleted it
        if (!(await lockArchiveDue(s.db as Knex.Transaction, patientId, now))) return false;
        await deleteRecordRows(s.db, patientId);
        await s.writeAudit([deletionEvent(ctx, server, patientId, 'Archived record deleted at the end of its retention period (npm run purge)', new Date().toISOString())]);
        return true;
      });
      if (deleted) purged++;
    }
    done += purged;
    print(`purge: ${done}/${total} record(s) deleted`);
    // the rest of this batch is another run's: it will delete them
    if (purged === 0) break;
  }
  print(`purge: done, ${done} record(s) deleted`);
  return done;
}
