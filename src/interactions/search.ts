import { BadRequest } from '../errors';
import { ParsedSearch, SearchParser, searchLimits } from '../search/parseSearch';
import { lockCriteria } from '../store/resources';
import { countMatches, includedRows, MatchQuery, matchRows, PageKeys, PatientCompartment, SearchRow } from '../store/searchQueries';
import type { Session } from '../store/session';
import { bundlePage, keysetPage, openPaging, searchEntry } from './bundlePage';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';
import { leaveArchivedOut } from './archived';
import { lookupIdentifier } from '../access/policy/recordLookup';
import { auditRecordLookup } from '../audit/recordLookup';
import { lookupBundle } from './recordLookup';

export type { SearchRow } from '../store/searchQueries';

export interface SearchPage {
  rows: SearchRow[];
  included: SearchRow[];
  total?: number;
  /** Boundary keys of the next and previous pages, when they exist. */
  next?: unknown[];
  previous?: unknown[];
}

export interface SearchOptions {
  withTotal: boolean;
  pageKeys?: PageKeys;
  /** Only resources of this patient's compartment (compartment search). */
  compartment?: PatientCompartment;
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

/** A page of a parsed search, its includes, and its total when known or asked for. Every statement applies the caller's visibility. */
export async function executeSearch(ctx: InteractionContext, session: Session, search: ParsedSearch, options: SearchOptions): Promise<SearchPage> {
  const query: MatchQuery = { search, settings: { baseUrl: ctx.config.baseUrl, expandValueSet: ctx.expandValueSet, recordElement: recordElementOf(ctx) }, compartment: options.compartment };
  const page: SearchPage = { rows: [], included: [] };

  if (search.count > 0 && search.summary !== 'count') {
    const rows = await matchRows(session, query, options.pageKeys);
    const { page: pageRows, more, next, previous } = keysetPage(rows, search.count, options.pageKeys?.backwards ?? false, Boolean(options.pageKeys), (r) => r.keys);
    page.rows = pageRows.map(({ keys: _keys, ...row }) => row);
    page.next = next;
    page.previous = previous;
    if (!options.pageKeys && !more && search.total !== 'none') page.total = page.rows.length;
    if (search.include.length || search.revinclude.length) page.included = await includedRows(session, query, page.rows);
  }

  // _count=0 is treated as _summary=count (search.html#count)
  if (page.total === undefined && (options.withTotal || search.summary === 'count' || search.count === 0)) {
    page.total = await countMatches(session, query);
  }
  return page;
}

export interface SearchBundleOptions {
  /** Path of the search below the base (e.g. `Patient/123/DocumentReference`). */
  path: string;
  compartment?: PatientCompartment;
}

/** Runs a parsed search and builds the searchset Bundle with self/first/previous/next links. */
export async function searchBundle(ctx: InteractionContext, session: Session, search: ParsedSearch, options: SearchBundleOptions): Promise<FhirResponse> {
  const paging = openPaging(ctx, session, options.path, canonicalQuery(search), search.pageToken);
  const withTotal = search.total === 'accurate' || search.total === 'estimate';
  const page = await executeSearch(ctx, session, search, { withTotal, pageKeys: paging.start, compartment: options.compartment });
  const subset = { summary: search.summary, elements: search.elements };
  return bundlePage(ctx, paging, {
    type: 'searchset',
    total: page.total,
    next: page.next,
    previous: page.previous,
    withFirst: true,
    entries: [...page.rows.map((row) => searchEntry(ctx, row, 'match', subset)), ...page.included.map((row) => searchEntry(ctx, row, 'include', subset))],
    warnings: search.warnings,
  });
}

/**
 * The element that decides a type's record: the expression of its first Patient compartment
 * parameter (docs/decisions/001-compartment-keys.md), undefined for a type outside the compartment.
 */
function recordElementOf(ctx: InteractionContext): (type: string) => string | undefined {
  return (type) => {
    const first = ctx.registry.types.get(type)?.patientCompartmentParams[0];
    return first ? ctx.registry.searchParameters.get(type, first)?.expression : undefined;
  };
}

/** Type-level search: GET [type]?… or POST [type]/_search. */
export async function searchType(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const type = req.resourceType!;
  // a professional's lookup by INS of a record closed to them tells its id and why, nothing else (decision 033);
  // a depositing system's tells the id of the open record, read and audited as its search of that Patient (decision 035)
  const lookup = session.access.recordLookup;
  const asked = lookup && lookupIdentifier(type, req.query);
  if (lookup && asked && asked.system === lookup.identifier.system && asked.value === lookup.identifier.value) {
    if (lookup.refusal) await auditRecordLookup(ctx, session, req, lookup);
    else session.touch([{ compartment: lookup.patientId, resourceType: 'Patient', id: lookup.patientId }]);
    return lookupBundle(ctx, req.query, lookup);
  }
  const search = parseRequestSearch(ctx, type, leaveArchivedOut(ctx, type, req.query), req.prefer.handling === 'strict');
  return searchBundle(ctx, session, search, { path: type });
}

/** The Patient compartment of `patientId` for a type: its compartment parameters per the official CompartmentDefinition. */
export function patientCompartment(ctx: InteractionContext, resourceType: string, patientId: string): PatientCompartment {
  return { patientId, params: ctx.registry.types.get(resourceType)?.patientCompartmentParams ?? [] };
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
