import { normalizeString } from '../search/normalize';
import { dateRange } from '../search/dateRange';
import type { ParsedSearch, SearchClause, SearchValue, SortKey } from '../search/parseSearch';
import type { SearchParamType } from '../search/searchParameters';
import { BadRequest } from '../http/errors';

/**
 * Turns a parsed search into SQL over the resource table (alias r) and the index
 * tables. Every index sub-query joins on (compartment, resource_type, resource_id),
 * the partition-friendly key.
 */
export interface SqlContext {
  bindings: unknown[];
  baseUrl: string;
}

const INDEX_TABLE: Partial<Record<SearchParamType, string>> = {
  token: 'idx_token',
  string: 'idx_string',
  reference: 'idx_reference',
  date: 'idx_date',
  number: 'idx_number',
  quantity: 'idx_quantity',
  uri: 'idx_uri',
};

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

function bind(ctx: SqlContext, value: unknown): string {
  ctx.bindings.push(value);
  return '?';
}

/** Parameter codes come from the registry, never from raw input: inlined as literals so bindings stay in text order. */
function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function ownerJoin(alias: string): string {
  return `${alias}.compartment = r.compartment AND ${alias}.resource_type = r.resource_type AND ${alias}.resource_id = r.id`;
}

function indexExists(_ctx: SqlContext, clause: SearchClause, condition: string | undefined): string {
  const table = INDEX_TABLE[clause.type];
  if (!table) throw new BadRequest(`Search parameter type ${clause.type} is not supported`);
  return `EXISTS (SELECT 1 FROM ${table} t WHERE ${ownerJoin('t')} AND t.param = ${literal(clause.code)}${condition ? ` AND (${condition})` : ''})`;
}

/** The instant range [low, high] of a search date value; ap widens it by 10% of its distance to now (at least a day). */
function searchRange(v: SearchValue): { low: string; high: string } {
  const range = dateRange(v.value);
  if (!range) throw new BadRequest(`Invalid date "${v.value}"`);
  return range;
}

function dateCondition(ctx: SqlContext, v: SearchValue, low: string, high: string): string {
  const range = searchRange(v);
  const vlo = () => `${bind(ctx, range.low)}::timestamptz`;
  const vhi = () => `${bind(ctx, range.high)}::timestamptz`;
  const lo = `COALESCE(${low}, '-infinity'::timestamptz)`;
  const hi = `COALESCE(${high}, 'infinity'::timestamptz)`;
  switch (v.prefix) {
    case 'eq':
      return `(${lo} >= ${vlo()} AND ${hi} <= ${vhi()})`;
    case 'ne':
      return `NOT (${lo} >= ${vlo()} AND ${hi} <= ${vhi()})`;
    case 'gt':
      return `${hi} > ${vhi()}`;
    case 'lt':
      return `${lo} < ${vlo()}`;
    case 'ge':
      return `${hi} >= ${vlo()}`;
    case 'le':
      return `${lo} <= ${vhi()}`;
    case 'sa':
      return `${lo} > ${vhi()}`;
    case 'eb':
      return `${hi} < ${vlo()}`;
    case 'ap': {
      const lowMs = Date.parse(range.low);
      const highMs = Date.parse(range.high);
      const margin = Math.max(86400000, Math.abs(Date.now() - lowMs) * 0.1);
      const a = new Date(lowMs - margin).toISOString();
      const b = new Date(highMs + margin).toISOString();
      return `(${lo} <= ${bind(ctx, b)}::timestamptz AND ${hi} >= ${bind(ctx, a)}::timestamptz)`;
    }
  }
}

function decimalsOf(value: string): number {
  const m = /\.(\d+)/.exec(value.split(/[eE]/)[0]);
  return m ? m[1].length : 0;
}

function numberCondition(ctx: SqlContext, v: SearchValue, column: string): string {
  const n = Number(v.value);
  const half = 0.5 * 10 ** -decimalsOf(v.value);
  const value = () => `${bind(ctx, v.value)}::numeric`;
  switch (v.prefix) {
    case 'eq':
      return `(${column} >= ${bind(ctx, String(n - half))}::numeric AND ${column} < ${bind(ctx, String(n + half))}::numeric)`;
    case 'ne':
      return `NOT (${column} >= ${bind(ctx, String(n - half))}::numeric AND ${column} < ${bind(ctx, String(n + half))}::numeric)`;
    case 'gt':
    case 'sa':
      return `${column} > ${value()}`;
    case 'lt':
    case 'eb':
      return `${column} < ${value()}`;
    case 'ge':
      return `${column} >= ${value()}`;
    case 'le':
      return `${column} <= ${value()}`;
    case 'ap': {
      const margin = Math.abs(n) * 0.1;
      return `(${column} >= ${bind(ctx, String(n - margin))}::numeric AND ${column} <= ${bind(ctx, String(n + margin))}::numeric)`;
    }
  }
}

function tokenCondition(ctx: SqlContext, clause: SearchClause, v: SearchValue): string {
  if (clause.modifier === 'text') return `t.text LIKE ${bind(ctx, escapeLike(normalizeString(v.value)) + '%')}`;
  const bar = v.value.indexOf('|');
  if (bar < 0) return `t.code = ${bind(ctx, v.value)}`;
  const system = v.value.slice(0, bar);
  const code = v.value.slice(bar + 1);
  if (system === '') return `(t.system IS NULL AND t.code = ${bind(ctx, code)})`;
  if (code === '') return `t.system = ${bind(ctx, system)}`;
  return `(t.code = ${bind(ctx, code)} AND t.system = ${bind(ctx, system)})`;
}

function referenceCondition(ctx: SqlContext, clause: SearchClause, v: SearchValue): string {
  if (clause.modifier === 'identifier') {
    const bar = v.value.indexOf('|');
    if (bar < 0) return `t.identifier_value = ${bind(ctx, v.value)}`;
    const system = v.value.slice(0, bar);
    const value = v.value.slice(bar + 1);
    if (value === '') return `t.identifier_system = ${bind(ctx, system)}`;
    return `(t.identifier_value = ${bind(ctx, value)} AND t.identifier_system = ${bind(ctx, system)})`;
  }
  let value = v.value;
  const base = ctx.baseUrl + '/';
  if (value.startsWith(base)) value = value.slice(base.length);
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return `t.url = ${bind(ctx, value)}`;
  value = value.replace(/\/_history\/[^/]+$/, '');
  const parts = value.split('/');
  const typeModifier = clause.modifier && /^[A-Z]/.test(clause.modifier) ? clause.modifier : undefined;
  if (parts.length === 2) {
    if (typeModifier && typeModifier !== parts[0]) return 'false';
    return `(t.target_id = ${bind(ctx, parts[1])} AND t.target_type = ${bind(ctx, parts[0])})`;
  }
  if (typeModifier) return `(t.target_id = ${bind(ctx, value)} AND t.target_type = ${bind(ctx, typeModifier)})`;
  return `t.target_id = ${bind(ctx, value)}`;
}

function quantityCondition(ctx: SqlContext, v: SearchValue): string {
  const [number, system, code] = v.value.split('|');
  const parts = [numberCondition(ctx, { prefix: v.prefix, value: number }, 't.value')];
  if (system) parts.push(`t.system = ${bind(ctx, system)}`);
  if (code) parts.push(`(t.code = ${bind(ctx, code)} OR t.unit = ${bind(ctx, code)})`);
  return parts.join(' AND ');
}

function valueCondition(ctx: SqlContext, clause: SearchClause, v: SearchValue): string {
  switch (clause.type) {
    case 'token':
      return tokenCondition(ctx, clause, v);
    case 'string':
      if (clause.modifier === 'exact') return `t.exact = ${bind(ctx, v.value)}`;
      if (clause.modifier === 'contains') return `t.value LIKE ${bind(ctx, '%' + escapeLike(normalizeString(v.value)) + '%')}`;
      return `t.value LIKE ${bind(ctx, escapeLike(normalizeString(v.value)) + '%')}`;
    case 'reference':
      return referenceCondition(ctx, clause, v);
    case 'date':
      return dateCondition(ctx, v, 't.low', 't.high');
    case 'number':
      return numberCondition(ctx, v, 't.value');
    case 'quantity':
      return quantityCondition(ctx, v);
    case 'uri':
      if (clause.modifier === 'below') return `t.value LIKE ${bind(ctx, escapeLike(v.value) + '%')}`;
      if (clause.modifier === 'above') return `${bind(ctx, v.value)} LIKE (replace(replace(replace(t.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')`;
      return `t.value = ${bind(ctx, v.value)}`;
    default:
      throw new BadRequest(`Search parameter type ${clause.type} is not supported`);
  }
}

function clauseCondition(ctx: SqlContext, clause: SearchClause): string {
  if (clause.code === '_id') {
    const ids = clause.values.map((v) => bind(ctx, v.value));
    return clause.modifier === 'not' ? `r.id NOT IN (${ids.join(', ')})` : `r.id IN (${ids.join(', ')})`;
  }
  if (clause.code === '_lastUpdated') {
    if (clause.modifier === 'missing') return clause.values[0].value === 'true' ? 'false' : 'true';
    return '(' + clause.values.map((v) => dateCondition(ctx, v, 'r.last_updated', 'r.last_updated')).join(' OR ') + ')';
  }
  if (clause.modifier === 'missing') {
    const exists = indexExists(ctx, clause, undefined);
    return clause.values[0].value === 'true' ? `NOT ${exists}` : exists;
  }
  if (clause.modifier === 'not' && clause.type === 'token') {
    const any = clause.values.map((v) => tokenCondition(ctx, clause, v)).join(' OR ');
    return `NOT ${indexExists(ctx, { ...clause, modifier: undefined }, any)}`;
  }
  const any = clause.values.map((v) => valueCondition(ctx, clause, v)).join(' OR ');
  return indexExists(ctx, clause, any);
}

/** The WHERE clause of a search on the resource table aliased r. */
export function whereClause(ctx: SqlContext, search: ParsedSearch): string {
  const parts = [`r.resource_type = ${bind(ctx, search.resourceType)}`, 'NOT r.deleted'];
  for (const clause of search.clauses) parts.push(clauseCondition(ctx, clause));
  return parts.join('\n  AND ');
}

/** A sort key as SQL: two columns per key (a nulls-last flag, then a non-null value) so keyset comparisons stay simple. */
export interface SortColumn {
  sql: string;
  descending: boolean;
  cast: 'boolean' | 'text' | 'timestamptz' | 'numeric';
}

const SORT_VALUE: Partial<Record<SearchParamType, [table: string, asc: string, desc: string, cast: SortColumn['cast'], neutral: string]>> = {
  date: ['idx_date', 'min(COALESCE(s.low, s.high))', 'max(COALESCE(s.high, s.low))', 'timestamptz', `'epoch'::timestamptz`],
  string: ['idx_string', 'min(s.value)', 'max(s.value)', 'text', `''`],
  token: ['idx_token', 'min(s.code)', 'max(s.code)', 'text', `''`],
  reference: ['idx_reference', 'min(COALESCE(s.target_type || \'/\' || s.target_id, s.url))', 'max(COALESCE(s.target_type || \'/\' || s.target_id, s.url))', 'text', `''`],
  number: ['idx_number', 'min(s.value)', 'max(s.value)', 'numeric', '0'],
  quantity: ['idx_quantity', 'min(s.value)', 'max(s.value)', 'numeric', '0'],
  uri: ['idx_uri', 'min(s.value)', 'max(s.value)', 'text', `''`],
};

export function sortColumns(ctx: SqlContext, sort: SortKey[]): SortColumn[] {
  const columns: SortColumn[] = [];
  for (const key of sort) {
    if (key.code === '_id') {
      columns.push({ sql: 'r.id', descending: key.descending, cast: 'text' });
      continue;
    }
    if (key.code === '_lastUpdated') {
      columns.push({ sql: 'r.last_updated', descending: key.descending, cast: 'timestamptz' });
      continue;
    }
    const spec = SORT_VALUE[key.type];
    if (!spec) continue;
    const [table, asc, desc, cast, neutral] = spec;
    const value = `(SELECT ${key.descending ? desc : asc} FROM ${table} s WHERE ${ownerJoin('s')} AND s.param = ${literal(key.code)})`;
    // Resources without a value sort last in either direction.
    columns.push({ sql: `(${value} IS NULL)`, descending: false, cast: 'boolean' });
    columns.push({ sql: `COALESCE(${value}, ${neutral})`, descending: key.descending, cast });
  }
  columns.push({ sql: 'r.id', descending: false, cast: 'text' });
  return columns;
}

/**
 * Rows strictly after (or before, for a previous page) a boundary row in the order of
 * `columns`: (k1 > v1) OR (k1 = v1 AND k2 > v2) OR …, each key in its own direction.
 */
export function keysetCondition(ctx: SqlContext, columns: SortColumn[], keys: unknown[], backwards: boolean, alias: (i: number) => string): string {
  const ors: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const ands: string[] = [];
    for (let j = 0; j < i; j++) ands.push(`${alias(j)} = ${bind(ctx, keys[j])}::${columns[j].cast}`);
    const after = columns[i].descending !== backwards ? '<' : '>';
    ands.push(`${alias(i)} ${after} ${bind(ctx, keys[i])}::${columns[i].cast}`);
    ors.push(`(${ands.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}
