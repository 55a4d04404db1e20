import { BadRequest } from '../errors';
import { ParsedSearch, SearchParser, searchLimits } from '../search/parseSearch';
import { bind, constraintConditions, keysetCondition, literal, ownerJoin, sortColumns, SqlContext, whereClause } from '../store/searchSql';
import { lockCriteria } from '../store/resources';
import type { Session } from '../store/session';
import { entryResource } from './subsetting';
import { outcomeEntry, queryString } from './bundle';
import { keysetPage, openPageToken, pageBinding, pageLinks } from './paging';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

export interface SearchRow {
  resource_type: string;
  id: string;
  body: string;
}

export interface SearchPage {
  rows: SearchRow[];
  included: SearchRow[];
  total?: number;
  /** Boundary keys of the next and previous pages, when they exist. */
  next?: unknown[];
  previous?: unknown[];
}

/** Extra SQL on the matched rows (compartment search, $everything), built with the query's own bindings. */
export type ExtraCondition = (sql: SqlContext, r: string) => string;

export interface SearchOptions {
  withTotal: boolean;
  pageKeys?: { keys: unknown[]; backwards: boolean };
  extra?: ExtraCondition;
}

export function parseRequestSearch(ctx: InteractionContext, resourceType: string, query: [string, string][], strict: boolean): ParsedSearch {
  return new SearchParser(ctx.registry, {
    strict,
    defaultCount: ctx.config.defaultPageSize,
    maxCount: ctx.config.maxPageSize,
    limits: searchLimits(ctx.config),
  }).parse(resourceType, query);
}

/** The query a page token is bound to: everything but the token itself. */
function canonicalQuery(search: ParsedSearch): [string, string][] {
  return [...search.clauseRaw, ...search.resultRaw];
}

function normaliseKey(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

/** Every statement of a search applies the session's visibility (the caller's). */
export function sqlContext(ctx: InteractionContext, session: Session): SqlContext {
  return { bindings: [], baseUrl: ctx.config.baseUrl, constraints: session.visibility, expandValueSet: ctx.expandValueSet };
}

export async function executeSearch(ctx: InteractionContext, session: Session, search: ParsedSearch, options: SearchOptions): Promise<SearchPage> {
  const sql = sqlContext(ctx, session);
  const columns = sortColumns(search.sort);
  const select = columns.map((c, i) => `${c.sql} AS k${i}`).join(', ');
  let where = whereClause(sql, search);
  if (options.extra) where += `\n  AND ${options.extra(sql, 'r')}`;
  const backwards = options.pageKeys?.backwards ?? false;
  const keyset = options.pageKeys ? `WHERE ${keysetCondition(sql, columns, options.pageKeys.keys, backwards, (i) => `q.k${i}`)}` : '';
  const order = columns.map((c, i) => `q.k${i} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const page: SearchPage = { rows: [], included: [] };

  if (search.count > 0 && search.summary !== 'count') {
    const rows = await session.query<Record<string, unknown>>(
      `SELECT * FROM (SELECT r.resource_type, r.id, r.compartment, r.body::text AS body, ${select} FROM resource r WHERE ${where}) q ${keyset} ORDER BY ${order} LIMIT ${search.count + 1}`,
      sql.bindings,
    );
    const keysOf = (row: Record<string, unknown>) => columns.map((_, i) => normaliseKey(row[`k${i}`]));
    const { page: pageRows, more, next, previous } = keysetPage(rows, search.count, backwards, Boolean(options.pageKeys), keysOf);
    page.rows = pageRows.map((r) => ({ resource_type: String(r.resource_type), id: String(r.id), body: String(r.body) }));
    page.next = next;
    page.previous = previous;
    if (!options.pageKeys && !more && search.total !== 'none') page.total = page.rows.length;
    if (search.include.length || search.revinclude.length) page.included = await includes(ctx, session, search, page.rows);
  }

  // _count=0 is treated as _summary=count (search.html#count)
  if (page.total === undefined && (options.withTotal || search.summary === 'count' || search.count === 0)) {
    const countSql = sqlContext(ctx, session);
    let countWhere = whereClause(countSql, search);
    if (options.extra) countWhere += `\n  AND ${options.extra(countSql, 'r')}`;
    const rows = await session.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource r WHERE ${countWhere}`, countSql.bindings);
    page.total = Number(rows[0].n);
  }
  return page;
}

const MAX_INCLUDE_ROUNDS = 4;
const MAX_INCLUDED = 5000;

/**
 * _include and _revinclude, one statement per round for all specs together; :iterate
 * repeats on what the previous round added. Access constraints apply to included rows.
 */
async function includes(ctx: InteractionContext, session: Session, search: ParsedSearch, matches: SearchRow[]): Promise<SearchRow[]> {
  const seen = new Set(matches.map((r) => `${r.resource_type}/${r.id}`));
  const included: SearchRow[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_INCLUDE_ROUNDS && frontier.length > 0; round++) {
    const specsInclude = search.include.filter((s) => round === 0 || s.iterate);
    const specsRev = search.revinclude.filter((s) => round === 0 || s.iterate);
    if (specsInclude.length === 0 && specsRev.length === 0) break;
    const sql = sqlContext(ctx, session);
    // bindings follow the text: the constraints come before the branches in the statement
    const constraintSql = constraintConditions(sql, 'r', undefined);
    const frontierJson = () => bind(sql, JSON.stringify(frontier.map((r) => ({ t: r.resource_type, i: r.id }))));
    const branches: string[] = [];
    for (const spec of specsInclude) {
      const t = 'ti';
      const param = spec.param === '*' ? '' : ` AND ${t}.param = ${literal(spec.param)}`;
      const target = spec.targetType ? ` AND ${t}.target_type = ${literal(spec.targetType)}` : '';
      const source = spec.sourceType === '*' ? '' : ` AND f.t = ${literal(spec.sourceType)}`;
      branches.push(`(r.resource_type, r.id) IN (SELECT ${t}.target_type, ${t}.target_id FROM idx_reference ${t}
          JOIN json_to_recordset(${frontierJson()}::json) AS f(t text, i text) ON ${t}.resource_type = f.t AND ${t}.resource_id = f.i
          WHERE ${t}.target_id IS NOT NULL${source}${param}${target})`);
    }
    for (const spec of specsRev) {
      const t = 'tr';
      const param = spec.param === '*' ? '' : ` AND ${t}.param = ${literal(spec.param)}`;
      const type = spec.sourceType === '*' ? '' : `r.resource_type = ${literal(spec.sourceType)} AND `;
      const target = spec.targetType ? ` AND f.t = ${literal(spec.targetType)}` : '';
      branches.push(`(${type}EXISTS (SELECT 1 FROM idx_reference ${t} JOIN json_to_recordset(${frontierJson()}::json) AS f(t text, i text)
          ON ${t}.target_type = f.t AND ${t}.target_id = f.i WHERE ${ownerJoin(t, 'r')}${param}${target}))`);
    }
    const rows = await session.query<SearchRow>(
      `SELECT r.resource_type, r.id, r.body::text AS body FROM resource r WHERE NOT r.deleted${constraintSql} AND (${branches.join(' OR ')}) LIMIT ${MAX_INCLUDED + 1}`,
      sql.bindings,
    );
    frontier = [];
    for (const row of rows) {
      const key = `${row.resource_type}/${row.id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      frontier.push(row);
      included.push(row);
    }
    if (included.length > MAX_INCLUDED) throw new BadRequest(`_include/_revinclude would add more than ${MAX_INCLUDED} resources: narrow the search`, 'too-costly');
  }
  return included;
}

export interface SearchBundleOptions {
  /** Path of the search below the base (e.g. `Patient/123/DocumentReference`). */
  path: string;
  extra?: ExtraCondition;
}

/** Runs a parsed search and builds the searchset Bundle with self/first/previous/next links. */
export async function searchBundle(ctx: InteractionContext, session: Session, search: ParsedSearch, options: SearchBundleOptions): Promise<FhirResponse> {
  const canonical = canonicalQuery(search);
  const bound = pageBinding(`${options.path}?${queryString(canonical)}`, session);
  let pageKeys: { keys: unknown[]; backwards: boolean } | undefined;
  if (search.pageToken) {
    const state = openPageToken(ctx, bound, search.pageToken);
    if (state.keys.length !== sortColumns(search.sort).length) throw new BadRequest('Page token does not match the sort of this query');
    pageKeys = { keys: state.keys, backwards: state.direction === 'p' };
  }
  const withTotal = search.total === 'accurate' || search.total === 'estimate';
  const page = await executeSearch(ctx, session, search, { withTotal, pageKeys, extra: options.extra });

  const base = ctx.config.baseUrl;
  const link = pageLinks(ctx, options.path, canonical, search.pageToken, bound, page, true);

  const entry: Record<string, unknown>[] = page.rows.map((row) => ({
    fullUrl: `${base}/${row.resource_type}/${row.id}`,
    resource: entryResource(row.body, search.summary, search.elements, row.resource_type),
    search: { mode: 'match' },
  }));
  for (const row of page.included) {
    entry.push({ fullUrl: `${base}/${row.resource_type}/${row.id}`, resource: entryResource(row.body, search.summary, search.elements, row.resource_type), search: { mode: 'include' } });
  }
  const outcome = outcomeEntry(search.warnings);
  if (outcome) entry.push(outcome);

  return {
    status: 200,
    resource: {
      resourceType: 'Bundle',
      type: 'searchset',
      ...(page.total !== undefined ? { total: page.total } : {}),
      link,
      ...(entry.length ? { entry } : {}),
    },
  };
}

/** Type-level search: GET [type]?… or POST [type]/_search. */
export async function searchType(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = req.resourceType!;
  const search = parseRequestSearch(ctx, type, req.query, req.prefer.handling === 'strict');
  return searchBundle(ctx, session, search, { path: type });
}

/**
 * Membership of the Patient compartment of `patientId`, per the official
 * CompartmentDefinition: the Patient itself, or a resource referencing it through one
 * of its type's compartment parameters.
 */
export function patientCompartmentCondition(ctx: InteractionContext, resourceType: string, patientId: string): ExtraCondition {
  const params = ctx.registry.types.get(resourceType)?.patientCompartmentParams ?? [];
  return (sql, r) => {
    const parts: string[] = [];
    if (resourceType === 'Patient') parts.push(`${r}.id = ${bind(sql, patientId)}`);
    if (params.length) {
      parts.push(`EXISTS (SELECT 1 FROM idx_reference pc WHERE ${ownerJoin('pc', r)} AND pc.param IN (${params.map(literal).join(', ')})
        AND pc.target_type = 'Patient' AND pc.target_id = ${bind(sql, patientId)})`);
    }
    return parts.length ? `(${parts.join(' OR ')})` : 'false';
  };
}

/**
 * Resources matching a conditional request's criteria (If-None-Exist, conditional
 * update/delete, conditional references). At most `limit` ids are returned.
 */
export async function findMatches(
  ctx: InteractionContext,
  session: Session,
  resourceType: string,
  criteria: string,
  limit: number,
  options: { lock?: boolean } = {},
): Promise<SearchRow[]> {
  // a conditional write locks its criteria first: two concurrent ones cannot both find nothing
  if (options.lock) await lockCriteria(session, resourceType, criteria);
  const pairs = [...new URLSearchParams(criteria)] as [string, string][];
  const search = parseRequestSearch(ctx, resourceType, pairs, true);
  if (search.clauses.length === 0) throw new BadRequest(`Conditional criteria "${criteria}" select no parameter: refusing to act on every ${resourceType}`);
  search.count = limit;
  search.sort = [];
  search.summary = undefined;
  search.include = [];
  search.revinclude = [];
  const page = await executeSearch(ctx, session, search, { withTotal: false });
  return page.rows;
}
