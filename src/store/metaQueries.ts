import { bind, constraintConditions, ownerJoin, SqlContext } from './searchSql';
import type { Session } from './session';

/** A profile, tag or security label in use, as the index holds it. */
export interface MetaInUseRow {
  kind: '_profile' | '_tag' | '_security';
  system: string | null;
  value: string | null;
}

/**
 * The profiles, tags and labels of the current resources (of one type, or all) the caller
 * may read, from the index: the caller's visibility is in the SQL, so a label carried only
 * by resources hidden from them is not revealed.
 */
export async function metaInUseRows(session: Session, type: string | undefined): Promise<MetaInUseRow[]> {
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  const branch = (table: string, params: string, columns: string) => {
    const where = [`x.param IN (${params})`];
    if (type) where.push(`x.resource_type = ${bind(sql, type)}`);
    where.push('NOT r.deleted');
    return `SELECT DISTINCT ${columns} FROM ${table} x JOIN resource r ON ${ownerJoin('x', 'r')} WHERE ${where.join(' AND ')}${constraintConditions(sql, 'r', type)}`;
  };
  const tokens = branch('idx_token', `'_tag', '_security'`, 'x.param AS kind, x.system AS system, x.code AS value');
  const profiles = branch('idx_uri', `'_profile'`, `x.param AS kind, NULL::text AS system, x.value AS value`);
  return session.query<MetaInUseRow>(`${tokens} UNION ${profiles}`, sql.bindings);
}

/** The current DocumentReferences of a record the caller may read, locked for a change of all of them (in a transaction). */
export async function lockRecordDocuments(session: Session, patientId: string): Promise<{ id: string; versionId: number; body: string }[]> {
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  const rows = await session.query<{ id: string; version_id: number | string; body: string }>(
    `SELECT r.id, r.version_id, r.body::text AS body FROM resource r
      WHERE r.resource_type = 'DocumentReference' AND r.compartment = ${bind(sql, patientId)} AND NOT r.deleted${constraintConditions(sql, 'r', 'DocumentReference')}
      ORDER BY r.id FOR UPDATE OF r`,
    sql.bindings,
  );
  return rows.map((r) => ({ id: r.id, versionId: Number(r.version_id), body: r.body }));
}
