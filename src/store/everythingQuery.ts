import { bind, constraintConditions, keysetCondition, literal, preparedName, SortColumn, SqlContext, textArray } from './searchSql';
import type { PageKeys, SearchRow } from './searchQueries';
import type { Session } from './session';
import { trailAsSeen } from './trailView';

const ORDER: SortColumn[] = [
  { sql: 'r.resource_type', descending: false, cast: 'text' },
  { sql: 'r.id', descending: false, cast: 'text' },
];

/** The same order on the record's members (r is each member read by its key): the primary key's. */
const MEMBER_ORDER = ['m.resource_type', 'm.id'];

export interface EverythingQuery {
  patientId: string;
  /** The compartment parameters of each type (the official CompartmentDefinition): [type, parameter]. */
  compartmentParams: [string, string][];
  /** Only these types. */
  types?: string[];
  /** Only resources updated at or after this instant. */
  since?: string;
  count: number;
}

export interface EverythingRows {
  /** The Patient as the caller may see it: not visible (or not known), deleted, or there. */
  patient: 'unknown' | 'deleted' | 'present';
  /** The page of matches, `count + 1` rows at most, in reverse order when reading backwards. */
  matches: SearchRow[];
  /** Resources outside any patient compartment that the shown matches reference. */
  referenced: SearchRow[];
}

/** The sort keys of a match, as page boundaries carry them. */
export function everythingKeys(row: SearchRow): unknown[] {
  return [row.resource_type, row.id];
}

/**
 * Patient/[id]/$everything in one statement: the patient's state, the page of matches, and
 * what the page references outside any patient compartment. The compartment column is the
 * partition key: the main query stays in one partition. Bindings are pushed in the order
 * they appear in the text.
 */
export async function everythingRows(session: Session, q: EverythingQuery, page?: PageKeys): Promise<EverythingRows> {
  const backwards = page?.backwards ?? false;
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  const patientCte = `patient AS (SELECT p.deleted FROM resource p WHERE p.compartment = ${bind(sql, q.patientId)} AND p.resource_type = 'Patient' AND p.id = ${bind(sql, q.patientId)}${constraintConditions(sql, 'p', 'Patient')})`;
  // the patient's record: what is filed in its compartment (the Patient itself included),
  // one partition (docs/decisions/018-partitioning.md). Fenced (OFFSET 0) so that the
  // record's members drive the statement: each is then checked, instead of the planner
  // starting from the caller's visibility (every directory resource, whose bodies it then sorted).
  // In the page's order, from the page's start (the primary key's order within a compartment):
  // members are judged as they come and the statement stops at the page's end, instead of
  // judging a record's whole trail to sort it and keep a thousand rows
  const memberOrder = MEMBER_ORDER.map((c) => `${c} ${backwards ? 'DESC' : 'ASC'}`).join(', ');
  // bindings in the order of the text: the compartment, then the page's start
  const memberCompartment = `m.compartment = ${bind(sql, q.patientId)}`;
  const memberStart = page ? ` AND ${keysetCondition(sql, ORDER, page.keys, backwards, (i) => MEMBER_ORDER[i])}` : '';
  const members = `(SELECT m.compartment, m.resource_type, m.id FROM resource m WHERE ${memberCompartment}${memberStart} ORDER BY ${memberOrder} OFFSET 0) m`;
  // bound here, before the conditions that follow it in the text
  const byKey = `(SELECT k.* FROM resource k WHERE k.compartment = ${bind(sql, q.patientId)} AND k.resource_type = m.resource_type AND k.id = m.id OFFSET 0)`;
  const where = [`r.compartment = ${bind(sql, q.patientId)}`, 'NOT r.deleted'];
  const constraints = constraintConditions(sql, 'r', undefined);
  if (constraints) where.push(constraints.slice(5));
  if (q.types) where.push(`r.resource_type = ANY(${bind(sql, textArray(q.types))}::text[])`);
  if (q.since) where.push(`r.last_updated >= ${bind(sql, q.since)}::timestamptz`);
  // each member read by its full key (fenced, LATERAL): left free, the planner judged the
  // caller's visibility over the whole compartment once per member (a record with a long
  // trail: 1,117 members, 1.2 million rule checks, 3.5 s)
  const pageCte = `page AS (SELECT r.compartment, r.resource_type, r.id, r.body::text AS body, row_number() OVER (ORDER BY ${memberOrder}) AS ord
      FROM ${members} CROSS JOIN LATERAL ${byKey} r
      WHERE ${where.join(' AND ')} ORDER BY ${memberOrder} LIMIT ${bind(sql, q.count + 1)}::int)`;
  const shownCte = `shown AS (SELECT * FROM page WHERE ord <= ${bind(sql, q.count)}::int)`;
  const refWhere = [`NOT r.deleted`, `r.compartment = ''`];
  const refConstraints = constraintConditions(sql, 'r', undefined, { directory: true });
  if (refConstraints) refWhere.push(refConstraints.slice(5));
  if (q.types) refWhere.push(`r.resource_type = ANY(${bind(sql, textArray(q.types))}::text[])`);
  if (q.since) refWhere.push(`r.last_updated >= ${bind(sql, q.since)}::timestamptz`);
  // driven by the page's references (a few dozen), each looked up by type and id: left to
  // itself the planner walked every directory resource and searched the page for it
  const refsCte = `refs AS (SELECT r.resource_type, r.id, r.body::text AS body
      FROM (SELECT DISTINCT t.target_type, t.target_id FROM idx_reference t
        JOIN shown s ON t.compartment = s.compartment AND t.resource_type = s.resource_type AND t.resource_id = s.id
        WHERE t.target_id IS NOT NULL OFFSET 0) x
      JOIN resource r ON r.resource_type = x.target_type AND r.id = x.target_id
      WHERE ${refWhere.join(' AND ')})`;
  const text = `WITH ${patientCte}, ${pageCte}, ${shownCte}, ${refsCte}
     SELECT 'patient' AS kind, NULL AS compartment, NULL AS resource_type, NULL AS id, deleted::text AS body, NULL::bigint AS ord FROM patient
     UNION ALL SELECT 'match', compartment, resource_type, id, body, ord FROM page
     UNION ALL SELECT 'include', '', resource_type, id, body, NULL FROM refs`;
  // The visibility of a statement over every type is long to plan (one sub-plan per rule and
  // type). Every value is a parameter (the patient, the records, the labels, the page), so
  // the text depends only on the shape of the caller's visibility and of the request:
  // prepared, and reused by every patient and caller of that shape (preparedName).
  const rows = await session.query<{ kind: string; compartment: string | null; resource_type: string | null; id: string | null; body: string | null; ord: number | string | null }>(
    text,
    sql.bindings,
    preparedName('everything', text),
  );
  session.touch(
    rows.filter((r) => r.kind === 'include' || (r.kind === 'match' && Number(r.ord) <= q.count)).map((r) => ({ compartment: String(r.compartment), resourceType: String(r.resource_type), id: String(r.id) })),
  );
  // the trail in a record's $everything, as the reader may see it (decision 009)
  const bodies = await trailAsSeen(session, rows.map((r) => (r.kind === 'patient' ? '' : String(r.resource_type))), rows.map((r) => r.body));
  rows.forEach((r, i) => (r.body = bodies[i]));
  const patient = rows.find((r) => r.kind === 'patient');
  const toRow = (r: (typeof rows)[number]): SearchRow => ({ resource_type: String(r.resource_type), id: String(r.id), body: String(r.body) });
  return {
    patient: !patient ? 'unknown' : patient.body === 'true' ? 'deleted' : 'present',
    matches: rows
      .filter((r) => r.kind === 'match')
      .sort((a, b) => Number(a.ord) - Number(b.ord))
      .map(toRow),
    referenced: rows.filter((r) => r.kind === 'include').map(toRow),
  };
}
