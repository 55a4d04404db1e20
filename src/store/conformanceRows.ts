import { constraintConditions, SqlContext, textArray } from './searchSql';
import type { Session } from './session';

/**
 * The conformance resources stored (StructureDefinition, ValueSet, CodeSystem,
 * Questionnaire) and the counter that moves with every write of one
 * (migrations/005_conformance_version.ts). The validator holds what is derived from them;
 * these rows are authoritative.
 */

/** The current version of a conformance resource, deleted or not, without its body. */
export interface ConformanceVersion {
  resourceType: string;
  id: string;
  versionId: number;
  deleted: boolean;
}

export interface ConformanceResource {
  resourceType: string;
  id: string;
  versionId: number;
  body: string;
}

/** The PostgreSQL channel a committed change of a conformance resource is announced on; the payload names the schema. */
export const CONFORMANCE_CHANNEL = 'fhir_conformance';

function visibleTo(session: Session): { sql: SqlContext; conditions: string } {
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  return { sql, conditions: constraintConditions(sql, 'r', undefined) };
}

/** Every stored conformance resource of these types, as its current version (they are directory resources: compartment ''). */
export async function conformanceVersions(session: Session, types: string[]): Promise<ConformanceVersion[]> {
  const { sql, conditions } = visibleTo(session);
  const rows = await session.query<{ resource_type: string; id: string; version_id: number | string; deleted: boolean }>(
    `SELECT r.resource_type, r.id, r.version_id, r.deleted FROM resource r WHERE r.compartment = '' AND r.resource_type IN (${types.map(() => '?').join(', ')})${conditions}`,
    [...types, ...sql.bindings],
  );
  return rows.map((r) => ({ resourceType: r.resource_type, id: r.id, versionId: Number(r.version_id), deleted: r.deleted }));
}

/** The bodies of these conformance resources as they are now; deleted ones are left out. */
export async function conformanceResources(session: Session, keys: { resourceType: string; id: string }[]): Promise<ConformanceResource[]> {
  if (keys.length === 0) return [];
  const { sql, conditions } = visibleTo(session);
  const rows = await session.query<{ resource_type: string; id: string; version_id: number | string; body: string }>(
    `SELECT r.resource_type, r.id, r.version_id, r.body::text AS body FROM resource r
       WHERE r.compartment = '' AND (r.resource_type, r.id) IN (SELECT * FROM unnest(?::text[], ?::text[])) AND NOT r.deleted${conditions}`,
    [textArray(keys.map((k) => k.resourceType)), textArray(keys.map((k) => k.id)), ...sql.bindings],
  );
  return rows.map((r) => ({ resourceType: r.resource_type, id: r.id, versionId: Number(r.version_id), body: r.body }));
}

/**
 * Moves the counter in the session's transaction and announces the change to the other
 * workers: PostgreSQL delivers the notification at commit, and never after a rollback.
 */
export async function bumpConformanceVersion(session: Session): Promise<void> {
  await session.query(
    `WITH v AS (UPDATE conformance_version SET version = version + 1 WHERE id = 1 RETURNING version)
     SELECT pg_notify('${CONFORMANCE_CHANNEL}', current_schema() || ' ' || v.version) FROM v`,
  );
}

/** The counter's value: what a worker compares with the one it last loaded. */
export const CONFORMANCE_VERSION_SQL = `SELECT version FROM conformance_version WHERE id = 1`;

export async function conformanceVersion(session: Session): Promise<number> {
  const rows = await session.query<{ version: string | number }>(CONFORMANCE_VERSION_SQL);
  return Number(rows[0]?.version ?? 0);
}
