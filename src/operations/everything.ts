import { BadRequest, Gone, Issue, NotFound } from '../errors';
import { bundlePage, keysetPage, openPaging, searchEntry, totalIfComplete } from '../interactions/bundlePage';
import { assertId } from '../interactions/common';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { dateRange } from '../search/dateRange';
import { parseCount } from '../search/parseSearch';
import { everythingKeys, everythingRows } from '../store/everythingQuery';
import type { Session } from '../store/session';
import { parametersBody } from './parameters';

/** Parameters of $everything: from the query, or from a Parameters body (POST). */
function inputs(req: FhirRequest): [string, string][] {
  return [...req.query, ...parametersBody(req.body).map(([name, value]): [string, string] => [name, String(value)])];
}

/**
 * Patient/[id]/$everything: the Patient, every resource of its compartment (per the
 * official CompartmentDefinition) and the resources outside any patient compartment
 * that those reference (practitioners, organisations …). `_since`, `_type`, `_count`,
 * keyset paging. The compartment column is the partition key: the main query stays in
 * one partition.
 */
export async function everything(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const id = assertId(req.id);
  // an operation invoked by POST takes its inputs in a Parameters resource (operations.html#request), or none
  const body = req.body as { resourceType?: unknown } | undefined | null;
  if (req.method === 'POST' && body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body) || body.resourceType !== 'Parameters')) {
    throw new BadRequest('$everything invoked by POST takes a Parameters resource (or no body)');
  }
  let count = ctx.config.defaultPageSize;
  let since: string | undefined;
  let types: string[] | undefined;
  let pageToken: string | undefined;
  const used: [string, string][] = [];
  const warnings: Issue[] = [];
  for (const [name, value] of inputs(req)) {
    if (name === '_count') {
      count = parseCount(value, ctx.config.maxPageSize);
      used.push([name, String(count)]);
    } else if (name === '_since') {
      const range = dateRange(value);
      if (!range) throw new BadRequest(`_since must be an instant, got "${value}"`);
      since = range.low;
      used.push([name, value]);
    } else if (name === '_type') {
      types = value.split(',').map((s) => s.trim()).filter(Boolean);
      for (const t of types) if (!ctx.registry.isSupported(t)) throw new BadRequest(`_type: unknown resource type "${t}"`);
      used.push([name, value]);
    } else if (name === 'start' || name === 'end') {
      // care-date bounds would need a care date per type: refused rather than ignored, so that no out-of-range record is returned as if in range
      throw new BadRequest(`$everything: "${name}" (care-date range) is not supported; _since filters by last update`, 'not-supported');
    } else if (name === '_page') pageToken = value;
    else if (name === '_format' || name === '_pretty') continue;
    else if (req.prefer.handling === 'strict') throw new BadRequest(`$everything does not take parameter "${name}"`, 'not-supported');
    // lenient: ignored, and said so, as a search says it
    else warnings.push({ severity: 'warning', code: 'not-supported', diagnostics: `$everything does not take parameter "${name}": ignored` });
  }

  const compartmentParams: [string, string][] = [];
  for (const entry of ctx.registry.types.values()) {
    for (const p of entry.patientCompartmentParams) compartmentParams.push([entry.type, p]);
  }
  const paging = openPaging(ctx, session, `Patient/${id}/$everything`, used, pageToken);
  const found = await everythingRows(session, { patientId: id, compartmentParams, types, since, count }, paging.start);
  if (found.patient === 'unknown') throw new NotFound(`Patient/${id} is not known`);
  if (found.patient === 'deleted') throw new Gone(`Patient/${id} was deleted`);

  const page = keysetPage(found.matches, count, paging.start?.backwards ?? false, Boolean(pageToken), everythingKeys);
  const seen = new Set(page.page.map((r) => `${r.resource_type}/${r.id}`));
  const entries = [
    ...page.page.map((r) => searchEntry(ctx, r, 'match')),
    ...found.referenced.filter((r) => !seen.has(`${r.resource_type}/${r.id}`)).map((r) => searchEntry(ctx, r, 'include')),
  ];
  return bundlePage(ctx, paging, { type: 'searchset', total: totalIfComplete(paging, page, page.page.length), next: page.next, previous: page.previous, entries, warnings });
}
