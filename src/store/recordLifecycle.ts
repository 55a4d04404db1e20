import type { Knex } from 'knex';
import { deleteExportsCarrying } from './bulkExports';
import { textArray } from './searchSql';
import { namedId } from '../referenceString';
import type { Session } from './session';
import { parseCriteria } from '../subscriptions/subscriptionRules';
import { removeAfterCommit } from './contentFiles';

/**
 * The store side of the record's lifecycle (docs/decisions/017-record-lifecycle.md): the
 * `record_closure` rows that say a record is opposed or closed, and the physical deletion
 * of a record. These statements act for no caller: the lifecycle policy has decided.
 */

type Db = Knex | Knex.Transaction;

export interface Closure {
  state: 'opposed' | 'closed';
  mode?: 'archive';
  closedAt: string;
  retainUntil?: string;
}

/**
 * Marks the record opposed or closed (replacing an earlier mark). The exports that carry it
 * go at once, in the same transaction: no search shows the record any more, so no file does.
 */
export async function markClosed(session: Session, compartment: string, c: Closure): Promise<void> {
  await deleteExportsCarrying(session.db, compartment);
  await session.query(
    `INSERT INTO record_closure (compartment, state, mode, closed_at, retain_until) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (compartment) DO UPDATE SET state = EXCLUDED.state, mode = EXCLUDED.mode, closed_at = EXCLUDED.closed_at, retain_until = EXCLUDED.retain_until`,
    [compartment, c.state, c.mode ?? null, c.closedAt, c.retainUntil ?? null],
  );
}

/** The record is open again. */
export async function clearClosure(session: Session, compartment: string): Promise<void> {
  await session.query('DELETE FROM record_closure WHERE compartment = ?', [compartment]);
}

/** The tables of the database that carry a `compartment` column, from the catalogue (a table added later is covered); a partitioned table once, not again per partition. */
export async function compartmentTables(db: Db): Promise<{ table: string; columns: Set<string> }[]> {
  const res = await db.raw(
    `SELECT c.table_name AS t, array_agg(c.column_name::text) AS cols FROM information_schema.columns c
      JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name AND tb.table_type = 'BASE TABLE'
      JOIN pg_class k ON k.oid = to_regclass(quote_ident(c.table_schema) || '.' || quote_ident(c.table_name)) AND NOT k.relispartition
      WHERE c.table_schema = current_schema()
      GROUP BY c.table_name HAVING bool_or(c.column_name = 'compartment') ORDER BY c.table_name`,
  );
  return (res.rows as { t: string; cols: string[] | string }[]).map((r) => ({ table: r.t, columns: new Set(typeof r.cols === 'string' ? r.cols.replace(/^\{|\}$/g, '').split(',') : r.cols) }));
}

const quoted = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Resources outside any record (compartment '') that belong to this patient all the same:
 * the AuditEvents of refusals kept outside the record (decision 012) that name them, and
 * the Subscriptions whose criteria name them, by id or by one of their identifiers (a
 * chain such as `subject:Patient.identifier=<INS>`).
 */
async function outsideRows(db: Db, patientId: string, identifiers: NamedIdentifier[]): Promise<{ type: string; ids: string[] }[]> {
  const events = await db.raw(
    `SELECT DISTINCT resource_id AS id FROM idx_reference WHERE compartment = '' AND resource_type = 'AuditEvent' AND target_type = 'Patient' AND target_id = ?`,
    [patientId],
  );
  const needles = [patientId, ...identifiers.map((i) => i.value)];
  // locked: a dispatcher changing one's status (a new version, new index rows) finishes first, and its rows are then deleted
  // with the others; or it waits, and finds the Subscription gone (src/subscriptions/dispatcher.ts)
  const subs = await db.raw(
    `SELECT id, body ->> 'criteria' AS criteria FROM resource WHERE compartment = '' AND resource_type = 'Subscription' AND (${needles.map(() => `position(? in coalesce(body ->> 'criteria', '')) > 0`).join(' OR ')}) FOR UPDATE`,
    needles,
  );
  const isIdentifier = (one: string) => identifiers.some((i) => one === i.value || one === `|${i.value}` || one === `${i.system ?? ''}|${i.value}`);
  const names = (criteria: string) =>
    (parseCriteria(criteria)?.query ?? []).some(([, v]) => v.split(',').some((one) => one === patientId || one.endsWith(`Patient/${patientId}`) || isIdentifier(one)));
  return [
    { type: 'AuditEvent', ids: (events.rows as { id: string }[]).map((r) => r.id) },
    { type: 'Subscription', ids: (subs.rows as { id: string; criteria: string }[]).filter((r) => names(r.criteria ?? '')).map((r) => r.id) },
  ].filter((o) => o.ids.length > 0);
}

/** An identifier of the deleted Patient (any version's), as a logical reference may name it. */
export interface NamedIdentifier {
  system?: string;
  value: string;
}

type Entity = { reference?: unknown; identifier?: { system?: unknown; value?: unknown } };

/** Does this reference name the Patient: by id (relative, absolute, version-specific) or by one of its identifiers? */
function namesPatient(entity: Entity | undefined, patientId: string, identifiers: NamedIdentifier[]): boolean {
  if (typeof entity?.reference === 'string' && namedId(entity.reference, 'Patient') === patientId) return true;
  const id = entity?.identifier;
  return typeof id?.value === 'string' && identifiers.some((i) => i.value === id.value && (id.system === undefined || i.system === id.system));
}

/**
 * A Group's body without the members (and the characteristics whose value) naming this
 * Patient, by reference or by identifier; undefined when nothing names it.
 */
export function withoutMember(body: Record<string, unknown>, patientId: string, identifiers: NamedIdentifier[] = []): Record<string, unknown> | undefined {
  const members = Array.isArray(body.member) ? (body.member as { entity?: Entity }[]) : [];
  const traits = Array.isArray(body.characteristic) ? (body.characteristic as { valueReference?: Entity }[]) : [];
  const kept = members.filter((m) => !namesPatient(m.entity, patientId, identifiers));
  const keptTraits = traits.filter((c) => !namesPatient(c.valueReference, patientId, identifiers));
  if (kept.length === members.length && keptTraits.length === traits.length) return undefined;
  const { member: _member, characteristic: _characteristic, ...rest } = body;
  const out: Record<string, unknown> = { ...rest, ...(kept.length > 0 ? { member: kept } : {}), ...(keptTraits.length > 0 ? { characteristic: keptTraits } : {}) };
  if (typeof body.quantity === 'number') out.quantity = Math.max(0, body.quantity - (members.length - kept.length));
  return out;
}

/** Every identifier any version of the Patient carried: a Group may name the person by one of them. */
async function identifiersOf(db: Db, patientId: string): Promise<NamedIdentifier[]> {
  const res = await db.raw(
    `SELECT body::text AS body FROM resource WHERE compartment = ? AND resource_type = 'Patient' AND id = ? AND body IS NOT NULL
     UNION ALL SELECT body::text AS body FROM resource_history WHERE compartment = ? AND resource_type = 'Patient' AND id = ? AND body IS NOT NULL`,
    [patientId, patientId, patientId, patientId],
  );
  const seen = new Map<string, NamedIdentifier>();
  for (const row of res.rows as { body: string }[]) {
    const body = JSON.parse(row.body) as { identifier?: { system?: unknown; value?: unknown }[] };
    for (const i of Array.isArray(body.identifier) ? body.identifier : []) {
      if (typeof i?.value !== 'string' || i.value === '') continue;
      const system = typeof i.system === 'string' ? i.system : undefined;
      seen.set(`${system ?? ''}|${i.value}`, { system, value: i.value });
    }
  }
  return [...seen.values()];
}

/**
 * Erases the Patient from the Groups (administrators' cohorts, outside any record) that name
 * it, as a member or a characteristic's value, by reference or by one of its identifiers, in
 * every version, with the Groups' index and link rows naming it (docs/decisions/030-groups.md,
 * amendment). Versions keep their ids and dates: an erasure, not a new version. The Groups'
 * rows are locked first, so a concurrent update of one finishes before (and is cleaned) or
 * comes after.
 */
async function eraseFromGroups(db: Db, patientId: string, identifiers: NamedIdentifier[]): Promise<void> {
  // a candidate body holds the id or one of the identifier values; withoutMember decides. The
  // bodies, not the index: older versions have no index rows, and Groups are administrators'
  // cohorts outside any record, few against the records' resources
  const needles = [patientId, ...identifiers.map((i) => i.value)];
  const holds = `(${needles.map(() => 'position(? in body::text) > 0').join(' OR ')})`;
  const found = await db.raw(`SELECT id FROM resource WHERE compartment = '' AND resource_type = 'Group' AND ${holds} FOR UPDATE`, needles);
  const older = await db.raw(`SELECT DISTINCT id FROM resource_history WHERE compartment = '' AND resource_type = 'Group' AND ${holds}`, needles);
  const ids = [...new Set([...(found.rows as { id: string }[]), ...(older.rows as { id: string }[])].map((r) => r.id))];
  if (ids.length === 0) return;
  for (const table of ['resource', 'resource_history']) {
    const rows = await db.raw(
      `SELECT id, version_id, body::text AS body FROM ${table} WHERE compartment = '' AND resource_type = 'Group' AND id = ANY(?::text[]) AND body IS NOT NULL`,
      [textArray(ids)],
    );
    for (const row of rows.rows as { id: string; version_id: number; body: string }[]) {
      const cleaned = withoutMember(JSON.parse(row.body) as Record<string, unknown>, patientId, identifiers);
      if (!cleaned) continue;
      await db.raw(`UPDATE ${table} SET body = ?::json WHERE compartment = '' AND resource_type = 'Group' AND id = ? AND version_id = ?`, [
        JSON.stringify(cleaned),
        row.id,
        row.version_id,
      ]);
    }
  }
  const groups = textArray(ids);
  for (const table of ['idx_reference', 'resource_link']) {
    await db.raw(
      `DELETE FROM ${table} WHERE compartment = '' AND resource_type = 'Group' AND resource_id = ANY(?::text[]) AND target_type = 'Patient' AND target_id = ?`,
      [groups, patientId],
    );
  }
  // the logical references (member:identifier): index rows carrying one of the Patient's identifiers
  for (const i of identifiers) {
    await db.raw(
      `DELETE FROM idx_reference WHERE compartment = '' AND resource_type = 'Group' AND resource_id = ANY(?::text[]) AND identifier_value = ? AND (identifier_system = ? OR identifier_system IS NULL)`,
      [groups, i.value, i.system ?? null],
    );
  }
}

/**
 * Deletes every row of the record, physically, on `db` (one transaction, the caller's): in
 * every table that has a `compartment` column, the rows of that compartment; and the rows
 * outside any record that belong to it (`outsideRows`).
 */
export async function deleteRecordRows(db: Db, patientId: string): Promise<void> {
  const tables = await compartmentTables(db);
  // what lies outside the record first: finding it reads the record's index rows
  // read before anything is deleted: what names the patient by identifier is found with them
  const identifiers = await identifiersOf(db, patientId);
  for (const { type, ids } of await outsideRows(db, patientId, identifiers)) {
    const list = textArray(ids);
    for (const { table, columns } of tables) {
      if (!columns.has('resource_type')) continue;
      const key = columns.has('resource_id') ? 'resource_id' : columns.has('id') ? 'id' : undefined;
      if (!key) continue;
      await db.raw(`DELETE FROM ${quoted(table)} WHERE compartment = '' AND resource_type = ? AND ${key}::text = ANY(?::text[])`, [type, list]);
    }
    if (type === 'Subscription') {
      // who owns a Subscription, and its pending notifications, are keyed by the Subscription's id
      for (const { table, columns } of tables) {
        if (columns.has('subscription_id')) await db.raw(`DELETE FROM ${quoted(table)} WHERE subscription_id = ANY(?::text[])`, [list]);
        else if (!columns.has('resource_type') && columns.has('owner') && columns.has('id')) await db.raw(`DELETE FROM ${quoted(table)} WHERE compartment = '' AND id = ANY(?::text[])`, [list]);
      }
    }
  }
  await eraseFromGroups(db, patientId, identifiers);
  await deleteExportsCarrying(db, patientId);
  // the outbox first: a dispatcher round that claimed this record's changes (FOR UPDATE) finishes before it is deleted, and
  // the deliveries it recorded are then seen, and deleted, by the statements that follow
  const ordered = [...tables.filter((t) => t.table === 'outbox'), ...tables.filter((t) => t.table !== 'outbox')];
  for (const { table } of ordered) {
    if (table !== 'binary_content') {
      await db.raw(`DELETE FROM ${quoted(table)} WHERE compartment = ?`, [patientId]);
      continue;
    }
    // content held in files goes with its rows, once they are gone for good (docs/decisions/036-binary-content-files.md)
    const gone = await db.raw(`DELETE FROM binary_content WHERE compartment = ? RETURNING file`, [patientId]);
    removeAfterCommit(db, (gone.rows as { file: string | null }[]).flatMap((r) => (r.file ? [r.file] : [])));
  }
}

/** The archived records whose retention has passed at `now`, oldest first, at most `limit`. */
export async function archivesDue(db: Db, now: string, limit: number): Promise<string[]> {
  const res = await db.raw(`SELECT compartment FROM record_closure WHERE mode = 'archive' AND retain_until <= ? ORDER BY retain_until, compartment LIMIT ?`, [now, limit]);
  return (res.rows as { compartment: string }[]).map((r) => r.compartment);
}

/** How many archived records are due at `now` (the progress of a purge). */
export async function countArchivesDue(db: Db, now: string): Promise<number> {
  const res = await db.raw(`SELECT count(*)::int AS n FROM record_closure WHERE mode = 'archive' AND retain_until <= ?`, [now]);
  return Number((res.rows as { n: number }[])[0].n);
}

/** Locks one archive if it is still due (another purge may have taken it): whether it is. */
export async function lockArchiveDue(trx: Knex.Transaction, compartment: string, now: string): Promise<boolean> {
  // the record's exclusive lock first, as every lifecycle operation takes it (decision 017, amendment of 2026-12-06):
  // a write in flight finishes (it is refused: the record is closed), a $reopen and this purge come one after the other
  await trx.raw(`SELECT 1 FROM resource WHERE compartment = ? AND resource_type = 'Patient' AND id = ? FOR UPDATE`, [compartment, compartment]);
  const res = await trx.raw(`SELECT 1 FROM record_closure WHERE compartment = ? AND mode = 'archive' AND retain_until <= ? FOR UPDATE SKIP LOCKED`, [compartment, now]);
  return res.rows.length > 0;
}
