import { BadRequest, Gone, NotFound } from '../http/errors';
import { linkUrl, queryString } from '../interactions/bundle';
import { assertId } from '../interactions/common';
import type { FhirRequest, FhirResponse, InteractionContext } from '../interactions/types';
import { dateRange } from '../search/dateRange';
import { decodePageToken, encodePageToken } from '../search/pageToken';
import { readCurrent } from '../store/resources';
import { bind, constraintConditions, keysetCondition, literal, ownerJoin, SortColumn, SqlContext } from '../store/searchSql';
import type { Session } from '../store/session';

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
export async function everything(ctx: InteractionContext, session: Session, req: FhirRequest): Promise<FhirResponse> {
  const id = assertId(req.id);
  const patient = await readCurrent(session, 'Patient', id, { withBody: false });
  if (!patient) throw new NotFound(`Patient/${id} is not known`);
  if (patient.deleted) throw new Gone(`Patient/${id} was deleted`);

  let count = ctx.config.defaultPageSize;
  let since: string | undefined;
  let types: string[] | undefined;
  let pageToken: string | undefined;
  const used: [string, string][] = [];
  for (const [name, value] of req.query) {
    if (name === '_count') {
      if (!/^\d+$/.test(value)) throw new BadRequest(`_count must be a non-negative integer, got "${value}"`);
      count = Math.min(Number(value), ctx.config.maxPageSize);
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
    } else if (name === '_page') pageToken = value;
    else if (name === '_format' || name === '_pretty') continue;
    else if (req.prefer.handling === 'strict') throw new BadRequest(`$everything does not take parameter "${name}"`, 'not-supported');
  }

  const pairs: string[] = [];
  for (const entry of ctx.registry.types.values()) {
    for (const p of entry.patientCompartmentParams) pairs.push(`(${literal(entry.type)}, ${literal(p)})`);
  }
  const sql: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl, constraints: req.constraints };
  const where = [
    'NOT r.deleted',
    `(r.compartment = ${bind(sql, id)} OR (r.resource_type = 'Patient' AND r.id = ${bind(sql, id)})
      OR EXISTS (SELECT 1 FROM idx_reference pc WHERE ${ownerJoin('pc', 'r')} AND pc.target_type = 'Patient' AND pc.target_id = ${bind(sql, id)}
        AND (pc.resource_type, pc.param) IN (${pairs.join(', ')})))`,
  ];
  const constraints = constraintConditions(sql, 'r', undefined);
  if (constraints) where.push(constraints.slice(5));
  if (types) where.push(`r.resource_type IN (${types.map((t) => bind(sql, t)).join(', ')})`);
  if (since) where.push(`r.last_updated >= ${bind(sql, since)}::timestamptz`);
  const path = `Patient/${id}/$everything`;
  const bound = `${path}?${queryString(used)}`;
  let backwards = false;
  if (pageToken) {
    const state = decodePageToken(ctx.pageTokenSecret, bound, pageToken);
    backwards = state.direction === 'p';
    where.push(keysetCondition(sql, ORDER, state.keys, backwards, (i) => ORDER[i].sql));
  }
  const order = ORDER.map((c) => `${c.sql} ${c.descending !== backwards ? 'DESC' : 'ASC'}`).join(', ');
  const rows = await session.query<{ resource_type: string; id: string; body: string }>(
    `SELECT r.resource_type, r.id, r.body::text AS body FROM resource r WHERE ${where.join(' AND ')} ORDER BY ${order} LIMIT ${count + 1}`,
    sql.bindings,
  );
  const more = rows.length > count;
  const page = rows.slice(0, count);
  if (backwards) page.reverse();

  // Referenced resources outside any patient compartment (authors, custodians …).
  let referenced: typeof rows = [];
  if (page.length > 0 && (!types || types.some((t) => ['Practitioner', 'PractitionerRole', 'Organization', 'Device', 'Location'].includes(t)))) {
    const inc: SqlContext = { bindings: [], baseUrl: ctx.config.baseUrl, constraints: req.constraints };
    const frontier = bind(inc, JSON.stringify(page.map((r) => ({ t: r.resource_type, i: r.id }))));
    referenced = await session.query(
      `SELECT r.resource_type, r.id, r.body::text AS body FROM resource r
        WHERE NOT r.deleted AND r.compartment = ''${constraintConditions(inc, 'r', undefined)}${types ? ` AND r.resource_type IN (${types.map((t) => bind(inc, t)).join(', ')})` : ''}
          AND (r.resource_type, r.id) IN (SELECT t.target_type, t.target_id FROM idx_reference t
            JOIN json_to_recordset(${frontier}::json) AS f(t text, i text) ON t.resource_type = f.t AND t.resource_id = f.i
            WHERE t.target_id IS NOT NULL)`,
      inc.bindings,
    );
  }

  const base = ctx.config.baseUrl;
  const keysOf = (r: { resource_type: string; id: string }) => [r.resource_type, r.id];
  const link = [{ relation: 'self', url: linkUrl(base, path, pageToken ? [...used, ['_page', pageToken]] : used) }];
  const next = page.length && (backwards || more) ? keysOf(page[page.length - 1]) : undefined;
  const previous = page.length && (backwards ? more : Boolean(pageToken)) ? keysOf(page[0]) : undefined;
  if (previous) link.push({ relation: 'previous', url: linkUrl(base, path, [...used, ['_page', encodePageToken(ctx.pageTokenSecret, bound, { direction: 'p', keys: previous })]]) });
  if (next) link.push({ relation: 'next', url: linkUrl(base, path, [...used, ['_page', encodePageToken(ctx.pageTokenSecret, bound, { direction: 'n', keys: next })]]) });
  const seen = new Set(page.map((r) => `${r.resource_type}/${r.id}`));
  const entry = [
    ...page.map((r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: JSON.parse(r.body), search: { mode: 'match' } })),
    ...referenced.filter((r) => !seen.has(`${r.resource_type}/${r.id}`)).map((r) => ({ fullUrl: `${base}/${r.resource_type}/${r.id}`, resource: JSON.parse(r.body), search: { mode: 'include' } })),
  ];
  return {
    status: 200,
    resource: { resourceType: 'Bundle', type: 'searchset', ...(!pageToken && !more ? { total: page.length } : {}), link, ...(entry.length ? { entry } : {}) },
  };
}
