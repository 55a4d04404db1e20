import type { Session } from '../store/session';
import { decodePageToken, encodePageToken, PageBinding, PageState } from '../search/pageToken';
import { BundleLink, linkUrl } from './bundle';
import type { InteractionContext } from './types';

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

/**
 * What the page tokens of a query are bound to. `caller` is the authenticated subject once
 * access control passes it; '' until then (every caller shares the binding).
 */
/** A page token is bound to its query and to the caller it was issued to: another caller's link is refused. */
export function pageBinding(query: string, session: Session): PageBinding {
  return { query, caller: session.access.caller ?? '' };
}

/** The boundary in a page token of this query: 400 if it is not one of ours for it, 410 once expired. */
export function openPageToken(ctx: InteractionContext, binding: PageBinding, token: string): PageState {
  return decodePageToken(ctx.pageTokenSecret, binding, token);
}

/** self (with its token), optionally first, then previous and next links carrying page tokens bound to `bound`. */
export function pageLinks(
  ctx: InteractionContext,
  path: string,
  used: [string, string][],
  pageToken: string | undefined,
  bound: PageBinding,
  boundaries: { next?: unknown[]; previous?: unknown[] },
  withFirst = false,
): BundleLink[] {
  const base = ctx.config.baseUrl;
  const link: BundleLink[] = [{ relation: 'self', url: linkUrl(base, path, pageToken ? [...used, ['_page', pageToken]] : used) }];
  if (withFirst) link.push({ relation: 'first', url: linkUrl(base, path, used) });
  if (boundaries.previous) {
    const token = encodePageToken(ctx.pageTokenSecret, bound, { direction: 'p', keys: boundaries.previous }, ctx.config.pageTokenTtlSeconds);
    link.push({ relation: 'previous', url: linkUrl(base, path, [...used, ['_page', token]]) });
  }
  if (boundaries.next) {
    const token = encodePageToken(ctx.pageTokenSecret, bound, { direction: 'n', keys: boundaries.next }, ctx.config.pageTokenTtlSeconds);
    link.push({ relation: 'next', url: linkUrl(base, path, [...used, ['_page', token]]) });
  }
  return link;
}
