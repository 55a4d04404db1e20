import crypto from 'node:crypto';
import { BadRequest, FhirError, Forbidden, NotFound, operationOutcome } from '../errors';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { assertId } from '../interactions/common';
import { deleteExport, deleteExpiredExports, ExportJob, ExportLevel, failExport, fileContent, listFiles, readExport, insertExport, runningExports } from '../store/bulkExports';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { groupPatientMembers } from './groupMembers';
import { startExport } from './exportJob';
import { exportRights } from './exportRights';
import { asksRespondAsync, NDJSON, parseExportRequest } from './exportRequest';
import { parametersBody } from './parameters';

/**
 * FHIR Bulk Data Access (v2): kick-off, status, cancel and files of `$export`
 * (docs/decisions/020-bulk-data.md). The export reads with the caller's visibility; its
 * status and files answer to the same caller only, from any worker.
 */

/** A job whose process stopped beating this long ago is reported failed. */
const STALE_MS = 5 * 60 * 1000;
/** Exports one caller may have running at once: each holds a connection's worth of work. */
const RUNNING_PER_CALLER = 2;
/** Polling interval suggested to clients, in seconds. */
const RETRY_AFTER = '2';

/** The status URL of an export, relative to the base. */
export const statusPath = (id: string) => `_bulk/${id}`;

/**
 * The Patient members of the Group a `Group/[id]/$export` names, read with the caller's
 * visibility (docs/decisions/030-groups.md): a Group unknown, deleted or hidden from the
 * caller is 404 alike.
 */
async function groupMembersOf(ctx: InteractionContext, session: Session, id: string): Promise<string[]> {
  const row = await readCurrent(session, 'Group', id);
  if (!row || row.deleted || row.body === null) throw new NotFound(`Group/${id} is not known`);
  return groupPatientMembers(JSON.parse(row.body) as Record<string, unknown>, `${ctx.config.baseUrl}/`, Date.now());
}

/** Where the kick-off was asked, as the manifest's `request` repeats it. */
function kickOffPath(level: ExportLevel, groupId: string | undefined): string {
  return level === 'patient' ? 'Patient/$export' : level === 'group' ? `Group/${groupId}/$export` : '$export';
}

/**
 * The kick-off's parameters: the URL's, then, for a kick-off by POST (which the IG v2
 * permits), those of its Parameters body, as text (`_type` and `_outputFormat` are strings,
 * `_since` an instant, `patient` a reference). A POST body that is not a Parameters is refused
 * rather than ignored: an export of everything is not what a client sending one asked for.
 */
export function kickOffParameters(req: Pick<FhirRequest, 'method' | 'query' | 'body'>): [string, string][] {
  if (req.method !== 'POST' || req.body === undefined) return req.query;
  if ((req.body as { resourceType?: unknown } | null)?.resourceType !== 'Parameters') throw new BadRequest('A kick-off by POST carries its parameters in a Parameters resource', 'invalid');
  const text = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const reference = (value as { reference?: unknown } | null)?.reference;
    return typeof reference === 'string' ? reference : JSON.stringify(value);
  };
  return [...req.query, ...parametersBody(req.body).map(([name, value]): [string, string] => [name, text(value)])];
}

/** `[base]/$export`, `Patient/$export` and `Group/[id]/$export`: records the job and answers 202 with where to poll. */
export async function exportKickOff(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const caller = session.access.caller;
  if (caller === undefined) throw new Forbidden('$export is bound to the caller that asks for it: internal work cannot ask for one');
  if (!asksRespondAsync(req.headers.prefer)) throw new BadRequest('$export runs asynchronously: send Prefer: respond-async', 'required');
  const accept = req.headers.accept;
  if (accept && !/application\/fhir\+json|application\/json|\*\/\*/.test(accept)) throw new FhirError(406, [{ severity: 'error', code: 'not-supported', diagnostics: 'The kick-off answers in application/fhir+json' }]);
  const level: ExportLevel = req.resourceType === 'Patient' ? 'patient' : req.resourceType === 'Group' ? 'group' : 'system';
  const groupId = level === 'group' ? assertId(req.id) : undefined;
  const known = [...ctx.registry.types.keys()];
  // a Group's export is its members' records: the types of Patient/$export
  const served = known.filter((t) => level === 'system' || ctx.registry.types.get(t)!.patientCompartmentParams.length > 0 || t === 'Patient');
  const params = kickOffParameters(req);
  const parsed = parseExportRequest(params, served, req.prefer.handling === 'lenient', known);
  // a type named is refused as its search would be (the types left implicit are narrowed by the scopes)
  if (params.some(([name]) => name === '_type')) for (const t of parsed.types) session.access.checkInteraction?.({ interaction: 'search-type', resourceType: t }, req);
  const patients = groupId !== undefined ? await groupMembersOf(ctx, session, groupId) : undefined;
  await deleteExpiredExports(session.db, new Date().toISOString());
  if ((await runningExports(session.db, caller)) >= RUNNING_PER_CALLER) {
    throw new FhirError(429, [{ severity: 'error', code: 'throttled', diagnostics: `At most ${RUNNING_PER_CALLER} exports of one caller run at once: wait for one to complete, or cancel it` }], { 'Retry-After': '10' });
  }
  const now = new Date().toISOString();
  const query = new URLSearchParams(req.query).toString();
  const job: ExportJob = {
    id: crypto.randomUUID(),
    caller,
    rights: exportRights(session.access.actor),
    request: `${ctx.config.baseUrl}/${kickOffPath(level, groupId)}${query ? `?${query}` : ''}`,
    level,
    types: parsed.types,
    ...(patients ? { patients } : {}),
    ...(parsed.since ? { since: parsed.since } : {}),
    visibility: session.visibility,
    ...(session.access.auditAgent ? { audit: { agent: session.access.auditAgent, investigator: session.access.actor?.kind === 'admin' } } : {}),
    status: 'in-progress',
    transactionTime: now,
    heartbeat: now,
  };
  await insertExport(session.db, job);
  session.afterCommit(() => startExport(ctx, job.id));
  return {
    status: 202,
    location: statusPath(job.id),
    resource: operationOutcome([{ severity: 'information', code: 'informational', diagnostics: `Export accepted: poll ${ctx.config.baseUrl}/${statusPath(job.id)}` }]) as unknown as Record<string, unknown>,
  };
}

/** The export, if it exists, has not expired and belongs to this caller with the rights of the kick-off; 404 otherwise, whoever else it belongs to. */
async function ownExport(session: Session, id: string | undefined): Promise<ExportJob> {
  const job = id && /^[0-9a-f-]{36}$/.test(id) ? await readExport(session.db, id) : undefined;
  const expired = job?.expiresAt !== undefined && Date.parse(job.expiresAt) <= Date.now();
  const mine = job !== undefined && session.access.caller !== undefined && job.caller === session.access.caller && job.rights === exportRights(session.access.actor);
  // an expired export is deleted when asked for (the others by the sweep): a poll deletes no more than its own
  if (job && expired) await deleteExport(session.db, job.id);
  if (!job || expired || !mine) throw new NotFound('No such export (it may have expired)');
  return job;
}

/** `GET [base]/_bulk/{id}`: 202 with X-Progress while it runs, the manifest once complete, an OperationOutcome when it failed. */
export async function exportStatus(ctx: InteractionContext, session: Session, id: string | undefined): Promise<FhirResponse> {
  let job = await ownExport(session, id);
  if (job.status === 'in-progress' && Date.now() - Date.parse(job.heartbeat) > STALE_MS) {
    // the process that ran it is gone: any worker reports it
    await failExport(session.db, job.id, 'the server running the export stopped', new Date(Date.now() + ctx.config.bulkExportTtlSeconds * 1000).toISOString());
    job = await ownExport(session, id);
  }
  if (job.status === 'in-progress') return { status: 202, headers: { 'X-Progress': job.progress ?? 'queued', 'Retry-After': RETRY_AFTER } };
  if (job.status === 'failed') throw new FhirError(500, [{ severity: 'error', code: 'exception', diagnostics: `The export failed: ${job.error ?? 'unknown reason'}` }]);
  const files = await listFiles(session.db, job.id);
  const manifest = {
    transactionTime: job.transactionTime,
    request: job.request,
    requiresAccessToken: true,
    output: files.map((f) => ({ type: f.resourceType, url: `${ctx.config.baseUrl}/${statusPath(job.id)}/${f.seq}`, count: f.count })),
    error: [],
  };
  return { status: 200, raw: { contentType: 'application/json', text: JSON.stringify(manifest) }, headers: { Expires: new Date(job.expiresAt!).toUTCString() } };
}

/** `DELETE [base]/_bulk/{id}`: cancels a running export or deletes a finished one, files included (202). */
export async function exportCancel(_ctx: InteractionContext, session: Session, id: string | undefined): Promise<FhirResponse> {
  const job = await ownExport(session, id);
  await deleteExport(session.db, job.id);
  return { status: 202, resource: operationOutcome([{ severity: 'information', code: 'informational', diagnostics: 'Export cancelled and deleted' }]) as unknown as Record<string, unknown> };
}

/** `GET [base]/_bulk/{id}/{n}`: one NDJSON file of a completed export of this caller. */
export async function exportFile(_ctx: InteractionContext, session: Session, id: string | undefined, file: string | undefined): Promise<FhirResponse> {
  const job = await ownExport(session, id);
  const seq = file && /^[1-9]\d{0,8}$/.test(file) ? Number(file) : undefined;
  const content = job.status === 'completed' && seq !== undefined ? await fileContent(session.db, job.id, seq) : undefined;
  if (content === undefined) throw new NotFound('No such file in this export');
  return { status: 200, raw: { contentType: NDJSON, text: content } };
}
