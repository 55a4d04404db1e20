import { entryResource } from './subsetting';
import { BadRequest, NotFound } from '../errors';
import { dateRange } from '../search/dateRange';
import { parseCount } from '../search/parseSearch';
import { constraintConditions, keysetCondition, SortColumn, SqlContext } from '../store/searchSql';
import { isUnrestricted } from '../store/visibility';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, etag } from './common';
import { queryString } from './bundle';
import { keysetPage, openPageToken, pageBinding, pageLinks } from './paging';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/** Newest first; the key is unique per version, so keyset paging is exact under concurrent writes. */
const HISTORY_ORDER: SortColumn[] = [
  { sql: 'h.last_updated', descending: true, cast: 'timestamptz' },
  { sql: 'h.resource_type', descending: true, cast: 'text' },
  { sql: 'h.id', descending: true, cast: 'text' },
  { sql: 'h.version_id', descending: true, cast: 'numeric' },
];

interface HistoryRow {
  resource_type: string;
  id: string;
  version_id: number;
  last_updated: Date;
  deleted: boolean;
  method: string;
  body: string | null;
  recreated: boolean;
}

function instant(name: string, value: string): { low: string; high: string } {
  const range = dateRange(value);
  if (!range) throw new BadRequest(`${name} must be a FHIR instant or date, got "${value}"`);
  return range;
}

/** history: instance (GET [type]/[id]/_history), type (GET [type]/_history) or system (GET /_history). */
export async function history(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = req.resourceType !== undefined ? assertSupportedType(ctx, req.resourceType) : undefined;
  const id = req.id !== undefined ? assertId(req.id) : undefined;

  let count = ctx.config.defaultPageSize;
  let since: string | undefined;
  let at: { low: string; high: string } | undefined;
  let pageToken: string | undefined;
  const used: [string, string][] = [];
  for (const [name, value] of req.query) {
    if (name === '_count') {
      count = parseCount(value, ctx.config.maxPageSize);
      used.push([name, String(count)]);
    } else if (name === '_since') {
      since = instant('_since', value).low;
      used.push([name, value]);
    } else if (name === '_at') {
      at = instant('_at', value);
      used.push([name, value]);
    } else if (name === '_page') pageToken = value;
    else if (name === '_format' || name === '_pretty') continue;
    else if (req.prefer.handling === 'strict') throw new BadRequest(`Unknown history parameter "${name}"`, 'not-supported');
  }

  const path = [type, id, '_history'].filter(Boolean).join('/');
  const bound = pageBinding(`${path}?${queryString(used)}`, session);
  const sql: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl, constraints: session.visibility };
  const bind = (v: unknown) => {
    sql.bindings.push(v);
    return '?';
  };
  const where: string[] = [];
  if (type) where.push(`h.resource_type = ${bind(type)}`);
  if (id) where.push(`h.id = ${bind(id)}`);
  where.push(...historyVisibility(sql, type));
  if (since) where.push(`h.last_updated >= ${bind(since)}::timestamptz`);
  if (at) {
    where.push(`h.last_updated <= ${bind(at.high)}::timestamptz`);
    where.push(`NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.resource_type = h.resource_type AND n.id = h.id
      AND n.version_id > h.version_id AND n.last_updated <= ${bind(at.low)}::timestamptz)`);
  }
  let backwards = false;
  if (pageToken) {
    const state = openPageToken(ctx, bound, pageToken);
    backwards = state.direction === 'p';
    where.push(keysetCondition(sql, HISTORY_ORDER, state.keys, backwards, (i) => HISTORY_ORDER[i].sql));
  }
  const order = HISTORY_ORDER.map((c) => `${c.sql} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const rows = await session.query<HistoryRow>(
    `SELECT h.resource_type, h.id, h.version_id, h.last_updated, h.deleted, h.method, h.body::text AS body,
            -- a version written over a deletion created the resource again (201)
            EXISTS (SELECT 1 FROM resource_history p WHERE p.resource_type = h.resource_type AND p.id = h.id
                      AND p.version_id = h.version_id - 1 AND p.deleted) AS recreated
       FROM resource_history h ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY ${order} LIMIT ${count + 1}`,
    sql.bindings,
  );
  if (id && rows.length === 0 && !pageToken) {
    const visible = { ...sql, bindings: [type, id] };
    const exists = await session.query(`SELECT 1 FROM resource c WHERE c.resource_type = ? AND c.id = ?${constraintConditions(visible, 'c', type)}`, visible.bindings);
    if (exists.length === 0) throw new NotFound(`${type}/${id} is not known`);
  }
  const keysOf = (r: HistoryRow) => [new Date(r.last_updated).toISOString(), r.resource_type, r.id, Number(r.version_id)];
  const boundaries = keysetPage(rows, count, backwards, Boolean(pageToken), keysOf);
  const { page, more } = boundaries;

  const base = ctx.config.baseUrl;
  const link = pageLinks(ctx, path, used, pageToken, bound, boundaries);

  const entry = page.map((r) => {
    const versionId = Number(r.version_id);
    const lastModified = new Date(r.last_updated).toISOString();
    const fullUrl = `${base}/${r.resource_type}/${r.id}`;
    if (r.deleted) {
      return {
        fullUrl,
        request: { method: 'DELETE', url: `${r.resource_type}/${r.id}` },
        response: { status: '204 No Content', etag: etag(versionId), lastModified },
      };
    }
    return {
      fullUrl,
      resource: entryResource(r.body!, undefined, undefined, r.resource_type),
      request: r.method === 'POST' ? { method: 'POST', url: r.resource_type } : { method: r.method, url: `${r.resource_type}/${r.id}` },
      response: {
        status: versionId === 1 || r.method === 'POST' || r.recreated ? '201 Created' : '200 OK',
        location: `${r.resource_type}/${r.id}/_history/${versionId}`,
        etag: etag(versionId),
        lastModified,
      },
    };
  });
  let total: number | undefined = !pageToken && !more ? entry.length : undefined;
  if (count === 0) {
    // _count=0: how many versions there are, and none of them (as for search)
    const counted = await session.query<{ n: string | number }>(`SELECT count(*) AS n FROM resource_history h ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`, sql.bindings);
    total = Number(counted[0].n);
  }
  return {
    status: 200,
    resource: { resourceType: 'Bundle', type: 'history', ...(total !== undefined ? { total } : {}), link, ...(entry.length ? { entry } : {}) },
  };
}

/**
 * A version is visible when the resource as it is now is visible to the caller (labels
 * and document types are indexed on the current version), and the version's own
 * compartment is one the caller may read (a resource moved between records keeps its
 * old versions in the old record).
 */
function historyVisibility(sql: SqlContext, type: string | undefined): string[] {
  const v = sql.constraints;
  if (isUnrestricted(v)) return [];
  const out = [`EXISTS (SELECT 1 FROM resource c WHERE c.resource_type = h.resource_type AND c.id = h.id${constraintConditions(sql, 'c', type)})`];
  const compartments = constraintConditions({ ...sql, constraints: { compartments: v.compartments, sharedTypes: v.sharedTypes } }, 'h', type);
  if (compartments) out.push(compartments.slice(5));
  return out;
}
