import { entryResource } from '../interactions/subsetting';
import { BadRequest, Gone, NotFound } from '../errors';
import { queryString } from '../interactions/bundle';
import { keysetPage, openPageToken, pageBinding, pageLinks } from '../interactions/paging';
import { assertId } from '../interactions/common';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { dateRange } from '../search/dateRange';
import { parseCount } from '../search/parseSearch';
import { bind, constraintConditions, keysetCondition, literal, SortColumn, SqlContext } from '../store/searchSql';
import type { Session } from '../store/session';
import { parametersBody } from './parameters';

const ORDER: SortColumn[] = [
  { sql: 'r.resource_type', descending: false, cast: 'text' },
  { sql: 'r.id', descending: false, cast: 'text' },
];

/**
 * Patient/[id]/$everything: the Patient, every resource of its compartment (per the
 * official CompartmentDefinition) and the resources outside any patient compartment
 * that those reference (practitioners, organisations …). `_since`, `_type`, `_count`,
 * keyset paging. The compartment column is the partition key: the main query stays in
 * one partition.
 */
/** Parameters of $everything: from the query, or from a Parameters body (POST). */
function inputs(req: FhirRequest): [string, string][] {
  return [...req.query, ...parametersBody(req.body).map(([name, value]): [string, string] => [name, String(value)])];
}

export async function everything(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const id = assertId(req.id);
  let count = ctx.config.defaultPageSize;
  let since: string | undefined;
  let types: string[] | undefined;
  let pageToken: string | undefined;
  const used: [string, string][] = [];
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
  }

  const pairs: string[] = [];
  for (const entry of ctx.registry.types.values()) {
    for (const p of entry.patientCompartmentParams) pairs.push(`(${literal(entry.type)}, ${literal(p)})`);
  }
  const path = `Patient/${id}/$everything`;
  const bound = pageBinding(`${path}?${queryString(used)}`, session);
  const state = pageToken ? openPageToken(ctx, bound, pageToken) : undefined;
  const backwards = state?.direction === 'p';
  const order = ORDER.map((c) => `${c.sql} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');

  // One statement: the patient's state, the page of matches, and what the page references outside
  // any patient compartment. Bindings are pushed in the order they appear in the text.
  const sql: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl, constraints: session.visibility };
  const patientCte = `patient AS (SELECT p.deleted FROM resource p WHERE p.resource_type = 'Patient' AND p.id = ${bind(sql, id)}${constraintConditions(sql, 'p', 'Patient')})`;
  const where = [
    'NOT r.deleted',
    // membership as a union of three index-friendly sets (an OR of them would walk the table)
    `(r.compartment, r.resource_type, r.id) IN (
      SELECT m.compartment, m.resource_type, m.id FROM resource m WHERE m.compartment = ${bind(sql, id)}
      UNION SELECT m.compartment, m.resource_type, m.id FROM resource m WHERE m.resource_type = 'Patient' AND m.id = ${bind(sql, id)}
      UNION SELECT pc.compartment, pc.resource_type, pc.resource_id FROM idx_reference pc
        WHERE pc.target_type = 'Patient' AND pc.target_id = ${bind(sql, id)} AND (pc.resource_type, pc.param) IN (${pairs.join(', ')}))`,
  ];
  const constraints = constraintConditions(sql, 'r', undefined);
  if (constraints) where.push(constraints.slice(5));
  if (types) where.push(`r.resource_type IN (${types.map((t) => bind(sql, t)).join(', ')})`);
  if (since) where.push(`r.last_updated >= ${bind(sql, since)}::timestamptz`);
  if (state) where.push(keysetCondition(sql, ORDER, state.keys, backwards, (i) => ORDER[i].sql));
  const pageCte = `page AS (SELECT r.compartment, r.resource_type, r.id, r.body::text AS body, row_number() OVER (ORDER BY ${order}) AS ord
      FROM resource r WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${count + 1})`;
  const shownCte = `shown AS (SELECT * FROM page WHERE ord <= ${count})`;
  const refWhere = [`NOT r.deleted`, `r.compartment = ''`];
  const refConstraints = constraintConditions(sql, 'r', undefined);
  if (refConstraints) refWhere.push(refConstraints.slice(5));
  if (types) refWhere.push(`r.resource_type IN (${types.map((t) => bind(sql, t)).join(', ')})`);
  if (since) refWhere.push(`r.last_updated >= ${bind(sql, since)}::timestamptz`);
  const refsCte = `refs AS (SELECT r.resource_type, r.id, r.body::text AS body FROM resource r WHERE ${refWhere.join(' AND ')}
      AND (r.resource_type, r.id) IN (SELECT t.target_type, t.target_id FROM idx_reference t
        JOIN shown s ON t.compartment = s.compartment AND t.resource_type = s.resource_type AND t.resource_id = s.id
        WHERE t.target_id IS NOT NULL))`;
  const rows = await session.query<{ kind: string; resource_type: string | null; id: string | null; body: string | null; ord: number | string | null }>(
    `WITH ${patientCte}, ${pageCte}, ${shownCte}, ${refsCte}
     SELECT 'patient' AS kind, NULL AS resource_type, NULL AS id, deleted::text AS body, NULL::bigint AS ord FROM patient
     UNION ALL SELECT 'match', resource_type, id, body, ord FROM page
     UNION ALL SELECT 'include', resource_type, id, body, NULL FROM refs`,
    sql.bindings,
  );
  const patient = rows.find((r) => r.kind === 'patient');
  if (!patient) throw new NotFound(`Patient/${id} is not known`);
  if (patient.body === 'true') throw new Gone(`Patient/${id} was deleted`);

  const matched = rows.filter((r) => r.kind === 'match').sort((a, b) => Number(a.ord) - Number(b.ord));
  const boundaries = keysetPage(matched, count, backwards, Boolean(pageToken), (r) => [r.resource_type, r.id]);
  const { page, more } = boundaries;
  const referenced = rows.filter((r) => r.kind === 'include');

  const base = ctx.config.baseUrl;
  const link = pageLinks(ctx, path, used, pageToken, bound, boundaries);
  const seen = new Set(page.map((r) => `${r.resource_type}/${r.id}`));
  const entry = [
    ...page.map((r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: entryResource(r.body!, undefined, undefined, r.resource_type ?? undefined), search: { mode: 'match' } })),
    ...referenced
      .filter((r) => !seen.has(`${r.resource_type}/${r.id}`))
      .map((r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: entryResource(r.body!, undefined, undefined, r.resource_type ?? undefined), search: { mode: 'include' } })),
  ];
  return {
    status: 200,
    resource: { resourceType: 'Bundle', type: 'searchset', ...(!pageToken && !more ? { total: page.length } : {}), link, ...(entry.length ? { entry } : {}) },
  };
}
