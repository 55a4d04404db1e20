import type { Knex } from 'knex';
import type { AuditAgent } from '../audit/auditEvent';
import { bind, constraintConditions, SqlContext, textArray } from './searchSql';
import type { Session } from './session';
import { trailAsSeen } from './trailView';
import type { Visibility } from './visibility';

/**
 * The rows of bulk exports and their NDJSON files (docs/decisions/020-bulk-data.md). Jobs
 * and files are in the database so that any worker answers for them; the rows exported are
 * read through the caller's visibility like every other read.
 */

export type ExportStatus = 'in-progress' | 'completed' | 'failed';
export type ExportLevel = 'system' | 'patient' | 'group';

export interface ExportJob {
  id: string;
  /** Who asked (issuer and subject): the only caller answered about this export. */
  caller: string;
  /** The token's rights at kick-off (scopes, acting roles: exportRights); a token with others is not answered either. */
  rights: string;
  /** The kick-off request URL, as the manifest repeats it. */
  request: string;
  /** 'system': every row the caller may read; 'patient': rows of patient records only; 'group': rows of the records of `patients` only. */
  level: ExportLevel;
  /** For a Group export: the ids of the Patient members found at kick-off (decision 030). */
  patients?: string[];
  types: string[];
  since?: string;
  visibility: Visibility;
  /** Who the trail names for what the export read, and whether they read trails as an investigator; absent: not audited (the test client). */
  audit?: { agent: AuditAgent; investigator: boolean };
  status: ExportStatus;
  progress?: string;
  error?: string;
  transactionTime: string;
  heartbeat: string;
  expiresAt?: string;
}

interface JobRow {
  id: string;
  caller: string;
  rights: string;
  request: string;
  level: string;
  types: unknown;
  patients: unknown;
  since: Date | string | null;
  visibility: unknown;
  audit_agent: unknown;
  status: string;
  progress: string | null;
  error: string | null;
  transaction_time: Date | string;
  heartbeat: Date | string;
  expires_at: Date | string | null;
}

const iso = (v: Date | string) => (v instanceof Date ? v : new Date(v)).toISOString();
// jsonb comes back parsed from pg, and as text from some drivers
const json = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v);

function toJob(r: JobRow): ExportJob {
  return {
    id: r.id,
    caller: r.caller,
    rights: r.rights,
    request: r.request,
    level: r.level === 'patient' || r.level === 'group' ? r.level : 'system',
    types: json(r.types) as string[],
    ...(r.patients ? { patients: json(r.patients) as string[] } : {}),
    ...(r.since ? { since: iso(r.since) } : {}),
    visibility: json(r.visibility) as Visibility,
    ...(r.audit_agent ? { audit: json(r.audit_agent) as ExportJob['audit'] } : {}),
    status: r.status as ExportStatus,
    ...(r.progress ? { progress: r.progress } : {}),
    ...(r.error ? { error: r.error } : {}),
    transactionTime: iso(r.transaction_time),
    heartbeat: iso(r.heartbeat),
    ...(r.expires_at ? { expiresAt: iso(r.expires_at) } : {}),
  };
}

export async function insertExport(db: Knex | Knex.Transaction, job: ExportJob): Promise<void> {
  await db.raw(
    `INSERT INTO bulk_export (id, caller, rights, request, level, types, patients, since, visibility, audit_agent, status, transaction_time, heartbeat)
     VALUES (?, ?, ?, ?, ?, ?::jsonb, ?::jsonb, ?::timestamptz, ?::jsonb, ?::jsonb, ?, ?::timestamptz, ?::timestamptz)`,
    [job.id, job.caller, job.rights, job.request, job.level, JSON.stringify(job.types), job.patients ? JSON.stringify(job.patients) : null, job.since ?? null, JSON.stringify(job.visibility), job.audit ? JSON.stringify(job.audit) : null, job.status, job.transactionTime, job.heartbeat],
  );
}

/** The export, whoever asked for it; callers compare `caller` themselves. */
export async function readExport(db: Knex | Knex.Transaction, id: string): Promise<ExportJob | undefined> {
  const rows = ((await db.raw(`SELECT * FROM bulk_export WHERE id = ?`, [id])) as { rows: JobRow[] }).rows;
  return rows[0] ? toJob(rows[0]) : undefined;
}

/** How many exports of this caller are running, whatever the rights of the tokens that asked. */
export async function runningExports(db: Knex | Knex.Transaction, caller: string): Promise<number> {
  const rows = ((await db.raw(`SELECT count(*) AS n FROM bulk_export WHERE caller = ? AND status = 'in-progress'`, [caller])) as { rows: { n: string | number }[] }).rows;
  return Number(rows[0].n);
}

/** Progress of a running export; false when it is gone (cancelled) or no longer running. */
export async function recordProgress(db: Knex | Knex.Transaction, id: string, progress: string): Promise<boolean> {
  const r = (await db.raw(`UPDATE bulk_export SET progress = ?, heartbeat = now() WHERE id = ? AND status = 'in-progress' RETURNING id`, [progress, id])) as { rows: unknown[] };
  return r.rows.length > 0;
}

export async function insertFile(db: Knex | Knex.Transaction, exportId: string, seq: number, resourceType: string, count: number, content: string): Promise<void> {
  await db.raw(`INSERT INTO bulk_export_file (export_id, seq, resource_type, count, content) VALUES (?, ?, ?, ?, ?)`, [exportId, seq, resourceType, count, content]);
}

/** Marks a running export complete; false when it was cancelled meanwhile (nothing changed). */
export async function completeExport(db: Knex | Knex.Transaction, id: string, expiresAt: string): Promise<boolean> {
  const r = (await db.raw(`UPDATE bulk_export SET status = 'completed', progress = NULL, heartbeat = now(), expires_at = ?::timestamptz WHERE id = ? AND status = 'in-progress' RETURNING id`, [expiresAt, id])) as {
    rows: unknown[];
  };
  return r.rows.length > 0;
}

/** A failed export keeps its row (the status says why) but none of its files; it expires like a completed one. */
export async function failExport(db: Knex | Knex.Transaction, id: string, error: string, expiresAt: string): Promise<void> {
  await db.raw(`DELETE FROM bulk_export_file WHERE export_id = ?`, [id]);
  await db.raw(`UPDATE bulk_export SET status = 'failed', error = ?, progress = NULL, expires_at = ?::timestamptz WHERE id = ? AND status = 'in-progress'`, [error, expiresAt, id]);
}

export interface ExportFile {
  seq: number;
  resourceType: string;
  count: number;
}

export async function listFiles(db: Knex | Knex.Transaction, id: string): Promise<ExportFile[]> {
  const rows = ((await db.raw(`SELECT seq, resource_type, count FROM bulk_export_file WHERE export_id = ? ORDER BY seq`, [id])) as { rows: { seq: number; resource_type: string; count: number }[] })
    .rows;
  return rows.map((r) => ({ seq: Number(r.seq), resourceType: r.resource_type, count: Number(r.count) }));
}

export async function fileContent(db: Knex | Knex.Transaction, id: string, seq: number): Promise<string | undefined> {
  const rows = ((await db.raw(`SELECT content FROM bulk_export_file WHERE export_id = ? AND seq = ?`, [id, seq])) as { rows: { content: string }[] }).rows;
  return rows[0]?.content;
}

/** Deletes an export and its files (cancel); whether there was one. */
export async function deleteExport(db: Knex | Knex.Transaction, id: string): Promise<boolean> {
  const r = (await db.raw(`DELETE FROM bulk_export WHERE id = ? RETURNING id`, [id])) as { rows: unknown[] };
  return r.rows.length > 0;
}

/** Deletes the exports (and files) past their expiry; how many. */
export async function deleteExpiredExports(db: Knex | Knex.Transaction, now: string): Promise<number> {
  const r = (await db.raw(`DELETE FROM bulk_export WHERE expires_at IS NOT NULL AND expires_at <= ?::timestamptz RETURNING id`, [now])) as { rows: unknown[] };
  return r.rows.length;
}

/**
 * Deletes the exports whose files carry this patient's record (its Patient, or a resource
 * naming it), or whose stored member list (a Group's export) holds it, files included: exports are copies handed to their callers (decision 020),
 * and a record deleted, opposed or archived must not leave through one. On `db`, the
 * transaction that changes the record.
 */
export async function deleteExportsCarrying(db: Knex | Knex.Transaction, patientId: string): Promise<void> {
  await db.raw(
    `DELETE FROM bulk_export WHERE id IN (SELECT export_id FROM bulk_export_file WHERE position(? in content) > 0 OR position(? in content) > 0)
        OR patients @> jsonb_build_array(?::text)`,
    [`Patient/${patientId}"`, `"id":"${patientId}"`, patientId],
  );
}

export interface ExportedRow {
  compartment: string;
  id: string;
  body: string;
}

/**
 * One page of the current rows of a type that the session's caller may read, in id order
 * after `after` (ids are unique within a type: the (resource_type, id) index walks the
 * type alone, whichever the records): updated at or after `since` and not after `until` (the
 * export's transaction time), only inside patient records for a patient-level export, only
 * inside the records of the Group's members for a group-level one (decision 030). The
 * visibility is applied in the SQL (decision 008): a hidden row is never read.
 */
export async function exportPage(
  session: Session,
  q: { resourceType: string; level: ExportLevel; patients?: string[]; since?: string; until: string; after?: string; limit: number },
): Promise<ExportedRow[]> {
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  const where = [`r.resource_type = ${bind(sql, q.resourceType)}`, 'NOT r.deleted', `r.last_updated <= ${bind(sql, q.until)}::timestamptz`];
  if (q.level === 'patient') where.push(`r.compartment <> ''`);
  // the members' records only ('' is never a member: a Group names Patients)
  if (q.level === 'group') where.push(`r.compartment <> '' AND r.compartment = ANY(${bind(sql, textArray(q.patients ?? []))}::text[])`);
  if (q.since) where.push(`r.last_updated >= ${bind(sql, q.since)}::timestamptz`);
  if (q.after !== undefined) where.push(`r.id > ${bind(sql, q.after)}`);
  const constraints = constraintConditions(sql, 'r', q.resourceType);
  const rows = await session.query<ExportedRow>(
    `SELECT r.compartment, r.id, r.body::text AS body FROM resource r WHERE ${where.join(' AND ')}${constraints} ORDER BY r.id LIMIT ${bind(sql, q.limit)}::int`,
    sql.bindings,
  );
  session.touch(rows.map((r) => ({ compartment: r.compartment, resourceType: q.resourceType, id: r.id })));
  const bodies = await trailAsSeen(
    session,
    rows.map(() => q.resourceType),
    rows.map((r) => r.body),
  );
  return rows.map((r, i) => ({ ...r, body: String(bodies[i]) }));
}
