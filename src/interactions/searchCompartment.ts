import { BadRequest, Issue, NotFound } from '../errors';
import { parseCount } from '../search/parseSearch';
import type { Session } from '../store/session';
import { assertId } from './common';
import { bundlePage, openPaging, searchEntry } from './bundlePage';
import { leaveArchivedOut } from './archived';
import { executeSearch, parseRequestSearch, patientCompartment, searchBundle } from './search';
import type { FhirRequest, FhirResponse, InteractionContext } from './types';

/**
 * Compartment search: GET Patient/[id]/[type]?… — a type search restricted to the
 * patient's compartment. `Patient/[id]/*` searches every type of the compartment that
 * this server serves (only common parameters then apply: _id, _lastUpdated …).
 */
export async function searchCompartment(ctx: InteractionContext, session: Session, req: FhirRequest, type: string): Promise<FhirResponse> {
  const patientId = assertId(req.id);
  const strict = req.prefer.handling === 'strict';
  if (type !== '*') {
    if (!ctx.registry.isSupported(type)) throw new NotFound(`Resource type "${type}" is not supported by this server`);
    if (type !== 'Patient' && (ctx.registry.types.get(type)?.patientCompartmentParams ?? []).length === 0) {
      throw new BadRequest(`${type} is not in the Patient compartment`);
    }
    const search = parseRequestSearch(ctx, type, leaveArchivedOut(ctx, type, req.query), strict);
    return searchBundle(ctx, session, search, {
      path: `Patient/${patientId}/${type}`,
      compartment: patientCompartment(ctx, type, patientId),
    });
  }
  return searchWholeCompartment(ctx, session, req, patientId, strict);
}

/** Parameters of `Patient/[id]/*` itself. */
const OWN_PARAMETERS = new Set(['_type', '_count', '_page', '_format', '_pretty', '_total']);
/** Result parameters: applied to each type's page, never used to choose the types. */
const RESULT_PARAMETERS = new Set(['_summary', '_elements', '_sort', '_include', '_revinclude', '_contained', '_containedType']);
const isResultParameter = ([name]: [string, string]) => RESULT_PARAMETERS.has(name.split(':')[0]);

/**
 * `Patient/[id]/*`: the types of the compartment one after the other (registry order),
 * each in its own sort order, paged across types with `_count` (forward links only). A
 * parameter restricts the search to the types that define it (a type without it has no
 * resource matching it); one that no type defines is refused under strict handling and
 * ignored with a warning otherwise.
 */
async function searchWholeCompartment(ctx: InteractionContext, session: Session, req: FhirRequest, patientId: string, strict: boolean): Promise<FhirResponse> {
  let types = [...ctx.registry.types.values()].filter((e) => e.type === 'Patient' || e.patientCompartmentParams.length > 0).map((e) => e.type);
  const typeParam = req.query.find(([k]) => k === '_type')?.[1];
  if (typeParam) {
    const wanted = typeParam.split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of wanted) if (!types.includes(t)) throw new BadRequest(`_type: "${t}" is not a type of the Patient compartment served here`);
    types = types.filter((t) => wanted.includes(t));
  }
  // _summary=count is _count=0 (search.html#count)
  const summaryCount = req.query.some(([k, v]) => k === '_summary' && v === 'count');
  const count = summaryCount ? 0 : parseCount(req.query.find(([k]) => k === '_count')?.[1] ?? String(ctx.config.defaultPageSize), ctx.config.maxPageSize);
  const pageToken = req.query.find(([k]) => k === '_page')?.[1];

  // which types define each parameter
  const warnings: Issue[] = [];
  let pairs = req.query.filter(([k]) => !OWN_PARAMETERS.has(k));
  const knownBy = (pair: [string, string]) =>
    types.filter((t) => {
      try {
        parseRequestSearch(ctx, t, [pair], true);
        return true;
      } catch (e) {
        if (e instanceof BadRequest) return false;
        throw e;
      }
    });
  const totalParam = req.query.find(([k]) => k === '_total')?.[1];
  if (totalParam !== undefined && !['none', 'estimate', 'accurate'].includes(totalParam)) throw new BadRequest(`_total must be none, estimate or accurate, got "${totalParam}"`);
  // each parameter is parsed once per type here; the pages below reuse the answer
  const definedBy = new Map<[string, string], string[]>();
  for (const pair of pairs) {
    const by = knownBy(pair);
    definedBy.set(pair, by);
    // a result parameter never chooses the types; it must apply to at least one of them
    if (isResultParameter(pair) && by.length > 0) continue;
    if (by.length > 0) types = types.filter((t) => by.includes(t));
    else {
      // refused for every type: unknown, or a bad value — the first type's parser says which
      const message = (() => {
        try {
          parseRequestSearch(ctx, types[0] ?? 'Patient', [pair], true);
          return `"${pair[0]}" is not a search parameter of any type of the compartment`;
        } catch (e) {
          return (e as Error).message;
        }
      })();
      if (strict || !/search parameter|not supported|sort parameter|^_elements names/i.test(message)) throw new BadRequest(message, 'not-supported');
      warnings.push({ severity: 'warning', code: 'not-supported', diagnostics: `${message}: ignored` });
      pairs = pairs.filter((p) => p !== pair);
    }
  }

  const used: [string, string][] = [
    ...(typeParam ? [['_type', typeParam] as [string, string]] : []),
    ...pairs,
    ...(totalParam ? [['_total', totalParam] as [string, string]] : []),
    ['_count', String(count)],
  ];
  const paging = openPaging(ctx, session, `Patient/${patientId}/*`, used, pageToken);
  // the boundary of a page of `*`: the index of the type it starts in, then that type's sort keys
  let typeIndex = paging.start ? Number(paging.start.keys[0]) : 0;
  let keys = paging.start && paging.start.keys.length > 1 ? paging.start.keys.slice(1) : undefined;

  const countAll = async () => {
    let total = 0;
    for (const type of types) {
      const search = parseRequestSearch(ctx, type, [...pairs.filter((p) => !isResultParameter(p)), ['_summary', 'count']], false);
      total += (await executeSearch(ctx, session, search, { withTotal: true, compartment: patientCompartment(ctx, type, patientId) })).total ?? 0;
    }
    return total;
  };
  if (count === 0) {
    // _count=0: the number of matches only (search.html#count)
    return bundlePage(ctx, paging, { type: 'searchset', total: await countAll(), entries: [] });
  }
  const entries: Record<string, unknown>[] = [];
  let matches = 0;
  let next: unknown[] | undefined;
  while (typeIndex < types.length && matches < count) {
    const type = types[typeIndex];
    // a sort or an include that does not apply to this type is left out for it
    const applicable = pairs.filter((p) => !isResultParameter(p) || p[0] === '_summary' || p[0] === '_elements' || definedBy.get(p)!.includes(type));
    const search = parseRequestSearch(ctx, type, [...applicable, ['_count', String(count - matches)]], false);
    const page = await executeSearch(ctx, session, search, {
      withTotal: false,
      pageKeys: keys ? { keys, backwards: false } : undefined,
      compartment: patientCompartment(ctx, type, patientId),
    });
    const subset = { summary: search.summary, elements: search.elements };
    for (const row of page.rows) entries.push(searchEntry(ctx, row, 'match', subset));
    matches += page.rows.length;
    for (const row of page.included) entries.push(searchEntry(ctx, row, 'include', subset));
    if (page.next) {
      next = [typeIndex, ...page.next];
      break;
    }
    typeIndex++;
    keys = undefined;
    if (matches >= count && typeIndex < types.length) next = [typeIndex];
  }
  // the number of matches is known when this first page holds them all, or counted when asked for
  const total = !pageToken && !next ? matches : req.query.some(([k, v]) => k === '_total' && v === 'accurate') ? await countAll() : undefined;
  return bundlePage(ctx, paging, { type: 'searchset', total, entries, next, withFirst: true, warnings });
}
