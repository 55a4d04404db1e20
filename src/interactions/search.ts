import { BadRequest } from '../http/errors';
import { parseSearch, ParsedSearch } from '../search/parseSearch';
import { decodePageToken, encodePageToken } from '../search/pageToken';
import { keysetCondition, sortColumns, SqlContext, whereClause } from '../store/searchSql';
import type { Session } from '../store/session';
import { applySubsetting } from './subsetting';
import { linkUrl, outcomeEntry, queryString } from './bundle';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

export interface SearchPage {
  rows: { id: string; body: string }[];
  total?: number;
  /** Boundary keys of the next and previous pages, when they exist. */
  next?: unknown[];
  previous?: unknown[];
}

export function parseRequestSearch(ctx: InteractionContext, resourceType: string, query: [string, string][], strict: boolean): ParsedSearch {
  return parseSearch(resourceType, query, ctx.registry.searchParams(resourceType), {
    strict,
    defaultCount: ctx.config.defaultPageSize,
    maxCount: ctx.config.maxPageSize,
  });
}

/** The query a page token is bound to: everything but the token itself. */
function canonicalQuery(search: ParsedSearch): [string, string][] {
  return [...search.clauses.map((c) => c.raw), ...search.resultRaw];
}

function normaliseKey(v: unknown): unknown {
  return v instanceof Date ? v.toISOString() : v;
}

export async function executeSearch(
  ctx: InteractionContext,
  session: Session,
  search: ParsedSearch,
  options: { withTotal: boolean; pageKeys?: { keys: unknown[]; backwards: boolean } },
): Promise<SearchPage> {
  const sql: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl };
  const columns = sortColumns(sql, search.sort);
  const select = columns.map((c, i) => `${c.sql} AS k${i}`).join(', ');
  const where = whereClause(sql, search);
  const backwards = options.pageKeys?.backwards ?? false;
  const keyset = options.pageKeys ? `WHERE ${keysetCondition(sql, columns, options.pageKeys.keys, backwards, (i) => `q.k${i}`)}` : '';
  const order = columns.map((c, i) => `q.k${i} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const limit = search.count + 1;
  const page: SearchPage = { rows: [] };

  if (search.count > 0 && search.summary !== 'count') {
    const rows = await session.query<Record<string, unknown>>(
      `SELECT * FROM (SELECT r.id, r.body::text AS body, ${select} FROM resource r WHERE ${where}) q ${keyset} ORDER BY ${order} LIMIT ${limit}`,
      sql.bindings,
    );
    const more = rows.length > search.count;
    const pageRows = rows.slice(0, search.count);
    if (backwards) pageRows.reverse();
    const keysOf = (row: Record<string, unknown>) => columns.map((_, i) => normaliseKey(row[`k${i}`]));
    page.rows = pageRows.map((r) => ({ id: String(r.id), body: String(r.body) }));
    if (pageRows.length > 0) {
      const first = pageRows[0];
      const last = pageRows[pageRows.length - 1];
      if (backwards) {
        page.next = keysOf(last);
        if (more) page.previous = keysOf(first);
      } else {
        if (more) page.next = keysOf(last);
        if (options.pageKeys) page.previous = keysOf(first);
      }
    }
    if (!options.pageKeys && !more && search.total !== 'none') page.total = page.rows.length;
  }

  if (page.total === undefined && (options.withTotal || search.summary === 'count')) {
    const countSql: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl };
    const rows = await session.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource r WHERE ${whereClause(countSql, search)}`, countSql.bindings);
    page.total = Number(rows[0].n);
  }
  return page;
}

/** Type-level search: GET [type]?… or POST [type]/_search. */
export async function searchType(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = req.resourceType!;
  const strict = req.prefer.handling === 'strict';
  const search = parseRequestSearch(ctx, type, req.query, strict);
  const canonical = canonicalQuery(search);
  const bound = `${type}?${queryString(canonical)}`;
  let pageKeys: { keys: unknown[]; backwards: boolean } | undefined;
  if (search.pageToken) {
    const state = decodePageToken(ctx.pageTokenSecret, bound, search.pageToken);
    if (state.keys.length !== search.sort.length * 2 + 1) throw new BadRequest('Page token does not match the sort of this query');
    pageKeys = { keys: state.keys, backwards: state.direction === 'p' };
  }
  const withTotal = search.total === 'accurate' || search.total === 'estimate';
  const page = await executeSearch(ctx, session, search, { withTotal, pageKeys });

  const base = ctx.config.baseUrl;
  const link = [{ relation: 'self', url: linkUrl(base, type, search.pageToken ? [...canonical, ['_page', search.pageToken]] : canonical) }];
  link.push({ relation: 'first', url: linkUrl(base, type, canonical) });
  if (page.previous) {
    const token = encodePageToken(ctx.pageTokenSecret, bound, { direction: 'p', keys: page.previous });
    link.push({ relation: 'previous', url: linkUrl(base, type, [...canonical, ['_page', token]]) });
  }
  if (page.next) {
    const token = encodePageToken(ctx.pageTokenSecret, bound, { direction: 'n', keys: page.next });
    link.push({ relation: 'next', url: linkUrl(base, type, [...canonical, ['_page', token]]) });
  }

  const entry: Record<string, unknown>[] = page.rows.map((row) => ({
    fullUrl: `${base}/${type}/${row.id}`,
    resource: applySubsetting(JSON.parse(row.body), search.summary, search.elements),
    search: { mode: 'match' },
  }));
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
): Promise<{ id: string; body: string }[]> {
  const pairs = [...new URLSearchParams(criteria)] as [string, string][];
  const search = parseRequestSearch(ctx, resourceType, pairs, true);
  if (search.clauses.length === 0) throw new BadRequest(`Conditional criteria "${criteria}" select no parameter: refusing to act on every ${resourceType}`);
  search.count = limit;
  search.sort = [];
  search.summary = undefined;
  const page = await executeSearch(ctx, session, search, { withTotal: false });
  return page.rows;
}
