import { entryResource } from './subsetting';
import { BadRequest, NotFound } from '../errors';
import { dateRange } from '../search/dateRange';
import { parseCount } from '../search/parseSearch';
import { countHistory, historyKeys, HistoryQuery, HistoryRow, historyRows } from '../store/historyQueries';
import { readCurrent } from '../store/resources';
import type { Session } from '../store/session';
import { assertId, assertSupportedType, etag } from './common';
import { bundlePage, fullUrl, keysetPage, openPaging, totalIfComplete } from './bundlePage';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

function instant(name: string, value: string): { low: string; high: string } {
  const range = dateRange(value);
  if (!range) throw new BadRequest(`${name} must be a FHIR instant or date, got "${value}"`);
  return range;
}

/** A history entry: the version, how it was written (request) and what that answered (response). */
function historyEntry(ctx: InteractionContext, r: HistoryRow): Record<string, unknown> {
  const lastModified = r.lastUpdated.toISOString();
  const url = fullUrl(ctx, r.resourceType, r.id);
  if (r.deleted) {
    return {
      fullUrl: url,
      request: { method: 'DELETE', url: `${r.resourceType}/${r.id}` },
      response: { status: '204 No Content', etag: etag(r.versionId), lastModified },
    };
  }
  return {
    fullUrl: url,
    resource: entryResource(r.body!, undefined, undefined, r.resourceType),
    request: r.method === 'POST' ? { method: 'POST', url: r.resourceType } : { method: r.method, url: `${r.resourceType}/${r.id}` },
    response: {
      status: r.versionId === 1 || r.method === 'POST' || r.recreated ? '201 Created' : '200 OK',
      location: `${r.resourceType}/${r.id}/_history/${r.versionId}`,
      etag: etag(r.versionId),
      lastModified,
    },
  };
}

/** history: instance (GET [type]/[id]/_history), type (GET [type]/_history) or system (GET /_history). */
export async function history(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = req.resourceType !== undefined ? assertSupportedType(ctx, req.resourceType) : undefined;
  const id = req.id !== undefined ? assertId(req.id) : undefined;

  let count = ctx.config.defaultPageSize;
  const query: HistoryQuery = { resourceType: type, id };
  let pageToken: string | undefined;
  const used: [string, string][] = [];
  for (const [name, value] of req.query) {
    if (name === '_count') {
      count = parseCount(value, ctx.config.maxPageSize);
      used.push([name, String(count)]);
    } else if (name === '_since') {
      query.since = instant('_since', value).low;
      used.push([name, value]);
    } else if (name === '_at') {
      query.at = instant('_at', value);
      used.push([name, value]);
    } else if (name === '_page') pageToken = value;
    else if (name === '_format' || name === '_pretty') continue;
    else if (req.prefer.handling === 'strict') throw new BadRequest(`Unknown history parameter "${name}"`, 'not-supported');
  }

  const paging = openPaging(ctx, session, [type, id, '_history'].filter(Boolean).join('/'), used, pageToken);
  const rows = await historyRows(session, query, count, paging.start);
  // an instance the caller cannot see answers as one that does not exist
  if (type && id && rows.length === 0 && !pageToken && !(await readCurrent(session, type, id, { withBody: false }))) throw new NotFound(`${type}/${id} is not known`);
  const page = keysetPage(rows, count, paging.start?.backwards ?? false, Boolean(pageToken), historyKeys);
  // _count=0: how many versions there are, and none of them (as for search)
  const total = count === 0 ? await countHistory(session, query) : totalIfComplete(paging, page, page.page.length);
  return bundlePage(ctx, paging, { type: 'history', total, next: page.next, previous: page.previous, entries: page.page.map((r) => historyEntry(ctx, r)) });
}
