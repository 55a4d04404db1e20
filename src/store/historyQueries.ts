import { locate } from './locator';
import { constraintConditions, keysetCondition, SortColumn, SqlContext, textArray, versionRecordCondition } from './searchSql';
import type { PageKeys } from './searchQueries';
import type { Session } from './session';
import { trailAsSeen } from './trailView';
import { isUnrestricted, Visibility } from './visibility';

/** Newest first; the key is unique per version, so keyset paging is exact under concurrent writes. */
const HISTORY_ORDER: SortColumn[] = [
  { sql: 'h.last_updated', descending: true, cast: 'timestamptz' },
  { sql: 'h.resource_type', descending: true, cast: 'text' },
  { sql: 'h.id', descending: true, cast: 'text' },
  { sql: 'h.version_id', descending: true, cast: 'numeric' },
];

/** Which versions: of one resource, of one type, or of every type; `since` and `at` as instants. */
export interface HistoryQuery {
  resourceType?: string;
  id?: string;
  /** Versions written at or after this instant. */
  since?: string;
  /** The versions that were current at some point of this range. */
  at?: { low: string; high: string };
}

export interface HistoryRow {
  resourceType: string;
  id: string;
  versionId: number;
  lastUpdated: Date;
  deleted: boolean;
  method: string;
  body: string | null;
  /** The version was written over a deletion: it created the resource again. */
  recreated: boolean;
}

interface RawHistoryRow {
  compartment: string;
  resource_type: string;
  id: string;
  version_id: number | string;
  last_updated: Date | string;
  deleted: boolean;
  method: string;
  body: string | null;
  recreated: boolean;
}

/** The sort keys of a version, as page boundaries carry them. */
export function historyKeys(row: HistoryRow): unknown[] {
  return [row.lastUpdated.toISOString(), row.resourceType, row.id, row.versionId];
}

/**
 * Where the versions asked for live. Of one resource: the compartments the locator lists
 * (a resource that moved keeps its older versions in the record it left), as a plain
 * array, so that only those partitions are read; its current row is in the first. Of a
 * type or of every type: each version's own compartment, so that every correlated probe
 * stays in the version's partition (one Citus shard group).
 */
type Scope = { kind: 'instance'; compartments: string[] } | { kind: 'all' };

/**
 * A version is visible when the resource as it is now is visible to the caller (labels
 * and document types are indexed on the current version), and the version's own
 * compartment is one the caller may read (a resource moved between records keeps its
 * old versions in the old record). Over a type or every type, the current row is looked
 * for in the version's compartment: versions a resource left behind in another record
 * are shown there only to a caller who reads every record (docs/decisions/018-partitioning.md).
 */
function historyVisibility(sql: SqlContext, type: string | undefined, scope: Scope, bind: (v: unknown) => string, probed: boolean): string[] {
  const v = sql.constraints;
  if (isUnrestricted(v)) return [];
  const current = scope.kind === 'instance' ? `c.compartment = ${bind(scope.compartments[0])}` : 'c.compartment = h.compartment';
  // probed: one probe per version met, newest first (fenced, or the planner judges every current resource of the record first)
  const out = [`EXISTS (SELECT 1 FROM resource c WHERE ${current} AND c.resource_type = h.resource_type AND c.id = h.id${constraintConditions(sql, 'c', type)}${probed ? ' OFFSET 0' : ''})`];
  // walked record by record, the version's own compartment is the current row's, whose conditions say it is readable
  if (probed) return out;
  const compartments = versionRecordCondition(sql, 'h', type);
  if (compartments) out.push(compartments.slice(5));
  return out;
}

/** The condition putting alias `a` in the same resource's versions as `h`, by the full key. */
function sameResource(a: string, scope: Scope, bind: (v: unknown) => string): string {
  const where = scope.kind === 'instance' ? `${a}.compartment = ANY(${bind(textArray(scope.compartments))}::text[])` : `${a}.compartment = h.compartment`;
  return `${where} AND ${a}.resource_type = h.resource_type AND ${a}.id = h.id`;
}

async function historyWhere(session: Session, q: HistoryQuery, probed = false): Promise<{ sql: SqlContext; where: string[]; scope: Scope } | undefined> {
  const sql: SqlContext = { bindings: [], baseUrl: '', constraints: session.visibility };
  const bind = (v: unknown) => {
    sql.bindings.push(v);
    return '?';
  };
  let scope: Scope = { kind: 'all' };
  if (q.id) {
    const location = await locate(session, q.resourceType!, q.id);
    if (!location) return undefined;
    scope = { kind: 'instance', compartments: location.compartments };
  }
  const where: string[] = [];
  if (scope.kind === 'instance') where.push(`h.compartment = ANY(${bind(textArray(scope.compartments))}::text[])`);
  if (q.resourceType) where.push(`h.resource_type = ${bind(q.resourceType)}`);
  if (q.id) where.push(`h.id = ${bind(q.id)}`);
  where.push(...historyVisibility(sql, q.resourceType, scope, bind, probed));
  if (q.since) where.push(`h.last_updated >= ${bind(q.since)}::timestamptz`);
  if (q.at) {
    where.push(`h.last_updated <= ${bind(q.at.high)}::timestamptz`);
    where.push(`NOT EXISTS (SELECT 1 FROM resource_history n WHERE ${sameResource('n', scope, bind)}
      AND n.version_id > h.version_id AND n.last_updated <= ${bind(q.at.low)}::timestamptz)`);
  }
  return { sql, where, scope };
}

/**
 * One page of versions the caller may see, newest first: `count + 1` rows at most (the
 * extra one says that more follow), in reverse order when reading backwards from `page`.
 */
export async function historyRows(session: Session, q: HistoryQuery, count: number, page?: PageKeys): Promise<HistoryRow[]> {
  const walked = q.id ? undefined : walkedCompartments(session.visibility, q.resourceType);
  const found = await historyWhere(session, q, walked !== undefined);
  if (!found) return [];
  const { sql, where, scope } = found;
  // bindings follow the text: the select list's sub-query comes first
  const selectBindings: unknown[] = [];
  const recreated = `EXISTS (SELECT 1 FROM resource_history p WHERE ${sameResource('p', scope, (v) => {
    selectBindings.push(v);
    return '?';
  })}
                      AND p.version_id = h.version_id - 1 AND p.deleted)`;
  const backwards = page?.backwards ?? false;
  if (page) where.push(keysetCondition(sql, HISTORY_ORDER, page.keys, backwards, (i) => HISTORY_ORDER[i].sql));
  const order = HISTORY_ORDER.map((c) => `${c.sql} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const columns = 'h.compartment, h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.method';
  // a caller limited to records: a page (plus one) of each record, newest first on its own index, then merged
  // (ordered by time alone, the ties at the cut kept: the record's index gives that order without a sort, and stops there)
  const from = walked
    ? `unnest(?::text[]) AS w(compartment) CROSS JOIN LATERAL (
         SELECT ${columns}, h.body FROM resource_history h WHERE h.compartment = w.compartment${where.length ? ` AND ${where.join(' AND ')}` : ''}
          ORDER BY h.last_updated ${backwards ? 'ASC' : 'DESC'} FETCH FIRST ${count + 1} ROWS WITH TIES) h`
    : `resource_history h ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`;
  const rows = await session.query<RawHistoryRow>(
    `SELECT ${columns}, h.body::text AS body,
            -- a version written over a deletion created the resource again (201)
            ${recreated} AS recreated
       FROM ${from}
      ORDER BY ${order} LIMIT ${count + 1}`,
    // bindings follow the text: the select list's sub-query, the records walked, the conditions
    [...selectBindings, ...(walked ? [textArray(walked)] : []), ...sql.bindings],
  );
  // the extra row that says more follow is not returned to the caller
  session.touch(rows.slice(0, count).map((r) => ({ compartment: r.compartment, resourceType: r.resource_type, id: r.id, versionId: Number(r.version_id) })));
  const bodies = await trailAsSeen(session, rows.map((r) => r.resource_type), rows.map((r) => r.body));
  return rows.map((r, i) => ({
    resourceType: r.resource_type,
    id: r.id,
    versionId: Number(r.version_id),
    lastUpdated: new Date(r.last_updated),
    deleted: r.deleted,
    method: r.method,
    body: bodies[i],
    recreated: r.recreated,
  }));
}

/**
 * Above this many records, one walk over the caller's records (each record's walk would visit
 * a page of versions of each: 1,500 records of a treating physician, 77,000 versions judged).
 */
const WALKED_RECORDS_MAX = 50;

/**
 * The compartments the history of a caller limited to records walks one by one
 * (docs/decisions/018-partitioning.md, amendment of 2026-12-07): their records, and the
 * directory ('') when they read there a type the request asks for (shared types, their own
 * Subscriptions). Every version they may see is in one of them. Undefined for a caller who
 * reads every record, or more records than WALKED_RECORDS_MAX: one walk. (One resource's
 * history reads the compartments its locator lists.)
 */
export function walkedCompartments(v: Visibility, resourceType: string | undefined): string[] | undefined {
  if (!v.compartments || v.compartments.length > WALKED_RECORDS_MAX) return undefined;
  const shared = resourceType === undefined ? Boolean(v.sharedTypes?.length) : Boolean(v.sharedTypes?.includes(resourceType));
  const subscriptions = Boolean(v.ownSubscriptions) && (resourceType === undefined || resourceType === 'Subscription');
  const directory = v.compartments.includes('') || shared || subscriptions;
  return [...new Set([...v.compartments.filter((c) => c !== ''), ...(directory ? [''] : [])])];
}

/** How many versions the caller may see. */
export async function countHistory(session: Session, q: HistoryQuery): Promise<number> {
  const found = await historyWhere(session, q);
  if (!found) return 0;
  const { sql, where } = found;
  const rows = await session.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource_history h ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`, sql.bindings);
  return Number(rows[0].n);
}
