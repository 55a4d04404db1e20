import { BadRequest } from '../errors';
import type { ParsedSearch } from '../search/parseSearch';
import { bind, constraintConditions, keysetCondition, literal, ownerJoin, sortColumns, SqlContext, textArray, whereClause, withheldSort } from './searchSql';
import { namedRecord } from './namedRecord';
import { trailAsSeen } from './trailView';
import type { Session } from './session';

/** A resource row of a search answer: the stored JSON text. */
export interface SearchRow {
  resource_type: string;
  id: string;
  body: string;
  /** The record it is filed in, when the statement that found it says (includes start from there). */
  compartment?: string;
}

/** A match with the values of its sort keys, from which page boundaries are made. */
export interface MatchRow extends SearchRow {
  keys: unknown[];
}

/** What a statement needs from the server beyond the parsed search. */
export interface SearchSettings {
  /** The server's base URL, to recognise absolute references to itself. */
  baseUrl: string;
  /** Expands a ValueSet for :in / :not-in; undefined when unknown. */
  expandValueSet?: (url: string) => { system?: string; code: string }[] | undefined;
  /** The expression of a type's first Patient compartment parameter (the element that decides its record), to narrow a search that names a patient. */
  recordElement?: (resourceType: string) => string | undefined;
}

/**
 * Restricts the matches to one patient's compartment, per the official
 * CompartmentDefinition: the Patient itself, or a resource referencing it through one of
 * `params` (its type's compartment parameters).
 */
export interface PatientCompartment {
  patientId: string;
  params: string[];
}

export interface MatchQuery {
  search: ParsedSearch;
  settings: SearchSettings;
  compartment?: PatientCompartment;
}

/** Where a page starts: the boundary keys of a page token, read forwards or backwards. */
export interface PageKeys {
  keys: unknown[];
  backwards: boolean;
}

/** Every statement of a search applies the session's visibility (the caller's). */
function sqlContext(session: Session, settings: SearchSettings): SqlContext {
  return { bindings: [], baseUrl: settings.baseUrl, constraints: session.visibility, expandValueSet: settings.expandValueSet };
}

/**
 * Patient/[id]/[type]: the resources of that patient's record (docs/decisions/018-partitioning.md):
 * filed in its compartment (one partition), and in the patient's compartment per the
 * CompartmentDefinition.
 */
function compartmentCondition(sql: SqlContext, r: string, resourceType: string, compartment: PatientCompartment): string {
  const record = `${r}.compartment = ${bind(sql, compartment.patientId)}`;
  const parts: string[] = [];
  if (resourceType === 'Patient') parts.push(`${r}.id = ${bind(sql, compartment.patientId)}`);
  if (compartment.params.length) {
    parts.push(`EXISTS (SELECT 1 FROM idx_reference pc WHERE ${ownerJoin('pc', r)} AND pc.param IN (${compartment.params.map(literal).join(', ')})
        AND pc.target_type = 'Patient' AND pc.target_id = ${bind(sql, compartment.patientId)})`);
  }
  return parts.length ? `(${record} AND (${parts.join(' OR ')}))` : 'false';
}

function matchWhere(sql: SqlContext, q: MatchQuery): string {
  // the record a search names goes first, as a plain condition on the partition key
  const record = namedRecord(q.search, q.settings.recordElement?.(q.search.resourceType), q.settings.baseUrl);
  const head = record !== undefined ? `r.compartment = ${bind(sql, record)}\n  AND ` : '';
  let where = head + whereClause(sql, q.search);
  if (q.compartment) where += `\n  AND ${compartmentCondition(sql, 'r', q.search.resourceType, q.compartment)}`;
  return where;
}

const normaliseKey = (v: unknown): unknown => (v instanceof Date ? v.toISOString() : v);

/**
 * One page of matches in the search's sort order, `search.count + 1` rows at most (the
 * extra one says that more follow), in reverse order when reading backwards from `page`.
 */
export async function matchRows(session: Session, q: MatchQuery, page?: PageKeys): Promise<MatchRow[]> {
  const unsortable = withheldSort(session.visibility, q.search.resourceType, q.search.sort);
  if (unsortable) throw new BadRequest(unsortable);
  const sql = sqlContext(session, q.settings);
  const columns = sortColumns(q.search.sort);
  if (page && page.keys.length !== columns.length) throw new BadRequest('Page token does not match the sort of this query');
  const select = columns.map((c, i) => `${c.sql} AS k${i}`).join(', ');
  const where = matchWhere(sql, q);
  const backwards = page?.backwards ?? false;
  const keyset = page ? `WHERE ${keysetCondition(sql, columns, page.keys, backwards, (i) => `q.k${i}`)}` : '';
  const order = columns.map((c, i) => `q.k${i} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const rows = await session.query<Record<string, unknown>>(
    `SELECT * FROM (SELECT r.resource_type, r.id, r.compartment, r.body::text AS body, ${select} FROM resource r WHERE ${where}) q ${keyset} ORDER BY ${order} LIMIT ${q.search.count + 1}`,
    sql.bindings,
  );
  // the extra row that says more follow is not returned to the caller (it is last, reading either way)
  session.touch(rows.slice(0, q.search.count).map((row) => ({ compartment: String(row.compartment), resourceType: String(row.resource_type), id: String(row.id) })));
  const bodies = await trailAsSeen(session, rows.map((row) => String(row.resource_type)), rows.map((row) => String(row.body)));
  return rows.map((row, i) => ({
    resource_type: String(row.resource_type),
    id: String(row.id),
    compartment: String(row.compartment),
    body: String(bodies[i]),
    keys: columns.map((_, i) => normaliseKey(row[`k${i}`])),
  }));
}

/** How many resources match, hidden ones never counted. */
export async function countMatches(session: Session, q: MatchQuery): Promise<number> {
  const sql = sqlContext(session, q.settings);
  const where = matchWhere(sql, q);
  const rows = await session.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource r WHERE ${where}`, sql.bindings);
  return Number(rows[0].n);
}

const MAX_INCLUDE_ROUNDS = 4;
const MAX_INCLUDED = 5000;

/**
 * _include and _revinclude of a page of matches, one statement per round for all specs
 * together; :iterate repeats on what the previous round added. The caller's visibility
 * applies to included rows.
 */
export async function includedRows(session: Session, q: MatchQuery, matches: SearchRow[]): Promise<SearchRow[]> {
  const { search } = q;
  const seen = new Set(matches.map((r) => `${r.resource_type}/${r.id}`));
  const included: SearchRow[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_INCLUDE_ROUNDS && frontier.length > 0; round++) {
    const specsInclude = search.include.filter((s) => round === 0 || s.iterate);
    const specsRev = search.revinclude.filter((s) => round === 0 || s.iterate);
    if (specsInclude.length === 0 && specsRev.length === 0) break;
    const sql = sqlContext(session, q.settings);
    // bindings follow the text: the constraints come before the branches in the statement
    const constraintSql = constraintConditions(sql, 'r', undefined);
    // the frontier as arrays; where it is known, its records as a plain condition on the
    // index rows it owns (only their partitions are read for an _include)
    const types = textArray(frontier.map((r) => r.resource_type));
    const ids = textArray(frontier.map((r) => r.id));
    const owners = frontier.every((r) => r.compartment !== undefined) ? textArray(frontier.map((r) => r.compartment!)) : undefined;
    const branches: string[] = [];
    for (const spec of specsInclude) {
      const t = 'ti';
      const param = spec.param === '*' ? '' : ` AND ${t}.param = ${literal(spec.param)}`;
      const target = spec.targetType ? ` AND ${t}.target_type = ${literal(spec.targetType)}` : '';
      const source = spec.sourceType === '*' ? '' : ` AND f.t = ${literal(spec.sourceType)}`;
      const owned = owners
        ? `${t}.compartment = ANY(${bind(sql, owners)}::text[]) AND (${t}.compartment, ${t}.resource_type, ${t}.resource_id) IN (SELECT * FROM unnest(${bind(sql, owners)}::text[], ${bind(sql, types)}::text[], ${bind(sql, ids)}::text[]) AS f(c, t, i)${source ? ` WHERE true${source}` : ''})`
        : `(${t}.resource_type, ${t}.resource_id) IN (SELECT * FROM unnest(${bind(sql, types)}::text[], ${bind(sql, ids)}::text[]) AS f(t, i)${source ? ` WHERE true${source}` : ''})`;
      branches.push(`(r.resource_type, r.id) IN (SELECT ${t}.target_type, ${t}.target_id FROM idx_reference ${t}
          WHERE ${owned} AND ${t}.target_id IS NOT NULL${param}${target})`);
    }
    for (const spec of specsRev) {
      const t = 'tr';
      const param = spec.param === '*' ? '' : ` AND ${t}.param = ${literal(spec.param)}`;
      const type = spec.sourceType === '*' ? '' : `r.resource_type = ${literal(spec.sourceType)} AND `;
      const target = spec.targetType ? ` AND f.t = ${literal(spec.targetType)}` : '';
      // referrers may be filed in any record: each candidate is probed in its own partition
      branches.push(`(${type}EXISTS (SELECT 1 FROM idx_reference ${t} WHERE ${ownerJoin(t, 'r')}${param}
          AND (${t}.target_type, ${t}.target_id) IN (SELECT * FROM unnest(${bind(sql, types)}::text[], ${bind(sql, ids)}::text[]) AS f(t, i)${target})))`);
    }
    const rows = await session.query<SearchRow & { compartment: string }>(
      `SELECT r.resource_type, r.id, r.compartment, r.body::text AS body FROM resource r WHERE NOT r.deleted${constraintSql} AND (${branches.join(' OR ')}) LIMIT ${MAX_INCLUDED + 1}`,
      sql.bindings,
    );
    frontier = [];
    for (const row of rows) {
      const key = `${row.resource_type}/${row.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      session.touch([{ compartment: row.compartment, resourceType: row.resource_type, id: row.id }]);
      frontier.push(row);
      included.push(row);
    }
    if (included.length > MAX_INCLUDED) throw new BadRequest(`_include/_revinclude would add more than ${MAX_INCLUDED} resources: narrow the search`, 'too-costly');
  }
  const bodies = await trailAsSeen(session, included.map((r) => r.resource_type), included.map((r) => r.body));
  return included.map((r, i) => (bodies[i] === r.body ? r : { ...r, body: String(bodies[i]) }));
}
