import type { Issue } from '../errors';
import { operationOutcome } from '../errors';
import { decodePageToken, encodePageToken, PageBinding } from '../search/pageToken';
import type { PageKeys, SearchRow } from '../store/searchQueries';
import type { Session } from '../store/session';
import { entryResource } from './subsetting';
import type { FhirResponse, InteractionContext } from './types';

/**
 * The one builder of paged Bundles (search, compartment search, history, $everything):
 * the page a request asks for (its token, bound to the query and the caller), the page
 * out of a keyset query, the self/first/previous/next links, the total and the entries.
 */

export interface BundleLink {
  relation: string;
  url: string;
}

/** Query string of name/value pairs as FHIR links show them. */
export function queryString(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `${encodeURIComponent(k).replace(/%3A/gi, ':')}=${encodeURIComponent(v).replace(/%2C/gi, ',').replace(/%7C/gi, '|')}`).join('&');
}

function linkUrl(base: string, path: string, pairs: [string, string][]): string {
  const q = queryString(pairs);
  return `${base}/${path}${q ? `?${q}` : ''}`;
}

/** A page token is bound to its query and to the caller it was issued to: another caller's link is refused. */
export function pageBinding(query: string, session: Session): PageBinding {
  return { query, caller: session.access.caller ?? '' };
}

/** The page a request asks for. */
export interface Paging {
  /** Path of the request below the base (`Patient/123/DocumentReference`, `_history`). */
  path: string;
  /** The parameters as understood, without `_page`: repeated by every link, and what tokens are bound to. */
  used: [string, string][];
  /** The page token the request came with. */
  token?: string;
  binding: PageBinding;
  /** Where the page starts: the boundary in the token; absent on a first page. */
  start?: PageKeys;
}

/** The paging of a request: its token opened for this query and caller (400 if not one of ours for it, 410 once expired). */
export function openPaging(ctx: InteractionContext, session: Session, path: string, used: [string, string][], token?: string): Paging {
  const binding = pageBinding(`${path}?${queryString(used)}`, session);
  const state = token ? decodePageToken(ctx.pageTokenSecret, binding, token) : undefined;
  return { path, used, token, binding, start: state && { keys: state.keys, backwards: state.direction === 'p' } };
}

export interface KeysetPage<T> {
  page: T[];
  /** More rows follow in the direction read. */
  more: boolean;
  /** Boundary keys of the next and previous pages, when they exist. */
  next?: unknown[];
  previous?: unknown[];
}

/**
 * The page out of what a keyset query returned (count + 1 rows at most, in reverse order
 * when reading a previous page) and the boundaries of its neighbours. `paged`: the request
 * came through a page token, so a previous page exists.
 */
export function keysetPage<T>(rows: T[], count: number, backwards: boolean, paged: boolean, keysOf: (row: T) => unknown[]): KeysetPage<T> {
  const more = rows.length > count;
  const page = rows.slice(0, count);
  if (backwards) page.reverse();
  const result: KeysetPage<T> = { page, more };
  if (page.length > 0) {
    if (backwards || more) result.next = keysOf(page[page.length - 1]);
    if (backwards ? more : paged) result.previous = keysOf(page[0]);
  }
  return result;
}

/** The number of matches when this page holds them all: a first page with nothing after it. */
export function totalIfComplete(paging: Paging, page: { more: boolean }, matches: number): number | undefined {
  return !paging.token && !page.more ? matches : undefined;
}

export function fullUrl(ctx: InteractionContext, resourceType: string, id: string): string {
  return `${ctx.config.baseUrl}/${resourceType}/${id}`;
}

/** A searchset entry: a match or an included resource, subset as the search asked. */
export function searchEntry(
  ctx: InteractionContext,
  row: SearchRow,
  mode: 'match' | 'include',
  subset: { summary?: string; elements?: string[] } = {},
): Record<string, unknown> {
  return { fullUrl: fullUrl(ctx, row.resource_type, row.id), resource: entryResource(row.body, subset.summary, subset.elements, row.resource_type), search: { mode } };
}

function outcomeEntry(issues: Issue[]): Record<string, unknown> | undefined {
  if (issues.length === 0) return undefined;
  return { resource: operationOutcome(issues), search: { mode: 'outcome' } };
}

export interface PageContent {
  type: 'searchset' | 'history';
  entries: Record<string, unknown>[];
  /** Boundaries of the neighbouring pages, when they exist: the links carry them in tokens. */
  next?: unknown[];
  previous?: unknown[];
  total?: number;
  /** A `first` link (searches). */
  withFirst?: boolean;
  /** Warnings about the request, as an OperationOutcome entry. */
  warnings?: Issue[];
}

/** self (with its token), optionally first, then previous and next links carrying page tokens bound to the caller. */
function pageLinks(ctx: InteractionContext, paging: Paging, content: PageContent): BundleLink[] {
  const base = ctx.config.baseUrl;
  const { path, used, token } = paging;
  const link: BundleLink[] = [{ relation: 'self', url: linkUrl(base, path, token ? [...used, ['_page', token]] : used) }];
  if (content.withFirst) link.push({ relation: 'first', url: linkUrl(base, path, used) });
  const tokenLink = (relation: string, direction: 'n' | 'p', keys: unknown[]) => {
    const next = encodePageToken(ctx.pageTokenSecret, paging.binding, { direction, keys }, ctx.config.pageTokenTtlSeconds);
    link.push({ relation, url: linkUrl(base, path, [...used, ['_page', next]]) });
  };
  if (content.previous) tokenLink('previous', 'p', content.previous);
  if (content.next) tokenLink('next', 'n', content.next);
  return link;
}

/**
 * The page links of a Bundle carrying the request's `_format` and `_pretty`: a client that
 * asked for XML, or for pretty printing, gets the next page the same way. They are not part
 * of what a page token is bound to (the query as understood), so the links stay valid.
 */
export function linksWithRepresentation(bundle: Record<string, unknown>, baseUrl: string, representation: [string, string][]): Record<string, unknown> {
  if (!representation.length || !Array.isArray(bundle.link)) return bundle;
  const extra = queryString(representation);
  const link = (bundle.link as BundleLink[]).map((l) => {
    if (typeof l.url !== 'string' || !l.url.startsWith(`${baseUrl}/`)) return l;
    const [path, query = ''] = l.url.split(/\?(.*)/s, 2);
    // the page token stays last
    const pairs = query ? query.split('&') : [];
    const at = pairs.findIndex((p) => p.startsWith('_page='));
    const merged = at < 0 ? [...pairs, extra] : [...pairs.slice(0, at), extra, ...pairs.slice(at)];
    return { ...l, url: `${path}?${merged.join('&')}` };
  });
  return { ...bundle, link };
}

/** The Bundle of one page. */
export function bundlePage(ctx: InteractionContext, paging: Paging, content: PageContent): FhirResponse {
  const outcome = outcomeEntry(content.warnings ?? []);
  const entry = outcome ? [...content.entries, outcome] : content.entries;
  return {
    status: 200,
    resource: {
      resourceType: 'Bundle',
      type: content.type,
      ...(content.total !== undefined ? { total: content.total } : {}),
      link: pageLinks(ctx, paging, content),
      ...(entry.length ? { entry } : {}),
    },
  };
}
