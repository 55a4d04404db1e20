import { constraintConditions, SqlContext } from './searchSql';
import type { Session } from './session';

/**
 * The reads behind the patient's notifications (docs/decisions/009-audit.md): the
 * preference a patient stated (a Basic of ours in their record) and, for the daily
 * digest, the day's audit trail of a record. Internal reads of the audit writer and the
 * digest script, never a caller's.
 */

/** The latest Basic of the record coded `code` in `system` (the notification preference), if any. */
export async function readPreferenceBasic(session: Session, patient: string, system: string, code: string): Promise<Record<string, unknown> | undefined> {
  const rows = await session.query<{ body: Record<string, unknown> }>(
    `SELECT r.body FROM resource r
       JOIN idx_token t ON t.compartment = r.compartment AND t.resource_type = r.resource_type AND t.resource_id = r.id
      WHERE r.compartment = ? AND r.resource_type = 'Basic' AND NOT r.deleted
        AND t.param = 'code' AND t.system = ? AND t.code = ?
      ORDER BY r.last_updated DESC LIMIT 1`,
    [patient, system, code],
    'notification_preference',
  );
  return rows[0]?.body;
}

/** The records whose preference Basic says `value` in the extension `url` (the daily digest's patients). */
export async function recordsPreferring(session: Session, system: string, code: string, url: string, value: string): Promise<string[]> {
  const rows = await session.query<{ compartment: string; body: Record<string, any> }>(
    `SELECT DISTINCT ON (r.compartment) r.compartment, r.body FROM resource r
       JOIN idx_token t ON t.compartment = r.compartment AND t.resource_type = r.resource_type AND t.resource_id = r.id
      WHERE r.resource_type = 'Basic' AND NOT r.deleted AND t.param = 'code' AND t.system = ? AND t.code = ?
      ORDER BY r.compartment, r.last_updated DESC`,
    [system, code],
  );
  return rows.filter((r) => (r.body.extension ?? []).some((e: Record<string, unknown>) => e.url === url && e.valueCode === value)).map((r) => r.compartment);
}

/**
 * A record's AuditEvents recorded in [from, to) that the session's reader may read, oldest
 * first: the digest script reads them as each kind of reader of the digest (decision 009).
 * The bodies are as stored (the digest counts events, it does not retell them).
 */
export async function auditEventsBetween(session: Session, patient: string, from: string, to: string): Promise<Record<string, any>[]> {
  const ctx: SqlContext = { bindings: [patient, from, to], baseUrl: '', constraints: session.visibility };
  const visible = constraintConditions(ctx, 'r', 'AuditEvent');
  const rows = await session.query<{ body: Record<string, any> }>(
    `SELECT r.body FROM resource r
      WHERE r.compartment = ? AND r.resource_type = 'AuditEvent' AND NOT r.deleted
        AND r.last_updated >= ? AND r.last_updated < ?${visible}
      ORDER BY r.last_updated`,
    ctx.bindings,
  );
  return rows.map((r) => r.body);
}
