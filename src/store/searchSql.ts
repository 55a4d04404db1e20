import crypto from 'node:crypto';
import { normalizeString } from '../search/normalize';
import { dateRange } from '../search/dateRange';
import type { Clause, ParamClause, ParsedSearch, SearchValue, SortKey } from '../search/parseSearch';
import type { SearchParamType } from '../search/searchParameters';
import { BadRequest } from '../errors';
import { isUnrestricted, type DocumentRule, type LabelRule, type Visibility } from './visibility';

/**
 * Constraints imposed from outside the query (access control), as data: the caller's
 * Visibility. They apply to every resource row a search touches: the matches, the total,
 * chained and _has sub-queries and the _include/_revinclude rows, so a hidden row is
 * never read, counted or included.
 */
export type SearchConstraints = Visibility;

/**
 * Turns a parsed search into SQL over the resource table and the index tables. Every
 * index sub-query joins on (compartment, resource_type, resource_id), the partition key.
 */
export interface SqlContext {
  bindings: unknown[];
  baseUrl: string;
  /** What the caller may read: required, so that no statement is built without it. */
  constraints: Visibility;
  /** Expands a ValueSet for :in / :not-in; undefined when unknown. */
  expandValueSet?: (url: string) => { system?: string; code: string }[] | undefined;
  aliases?: number;
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

export const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

export function bind(ctx: SqlContext, value: unknown): string {
  ctx.bindings.push(value);
  return '?';
}

/**
 * The name of a prepared statement for a text built from a caller's visibility: parsed
 * once per connection, and planned once when PostgreSQL settles on a generic plan (after
 * five executions, if it estimates it no dearer than the custom ones); a visibility's
 * sub-plans can cost more to plan than to run. Only for texts whose every value is a
 * parameter: their number is then bounded by the shapes of visibilities and requests (a
 * connection keeps each one it prepared), never by the values, patients or callers.
 */
export function preparedName(prefix: string, text: string): string {
  // the same few texts come back with every request of a shape: their digest is kept (bounded)
  const key = `${prefix}\u0000${text}`;
  let name = preparedNames.get(key);
  if (name === undefined) {
    name = `${prefix}_${crypto.createHash('sha1').update(text).digest('hex')}`;
    if (preparedNames.size >= PREPARED_NAMES_KEPT) preparedNames.clear();
    preparedNames.set(key, name);
  }
  return name;
}
const preparedNames = new Map<string, string>();
const PREPARED_NAMES_KEPT = 1000;

/** A PostgreSQL text[] literal: every element quoted, `"` and `\\` escaped; undefined and null become NULL elements. */
export function textArray(values: (string | null | undefined)[]): string {
  return `{${values.map((v) => (v === undefined || v === null ? 'NULL' : `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`)).join(',')}}`;
}

/** Parameter codes come from the registry, never from raw input: inlined as literals so bindings stay in text order. */
export function literal(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function alias(ctx: SqlContext, prefix: string): string {
  ctx.aliases = (ctx.aliases ?? 0) + 1;
  return `${prefix}${ctx.aliases}`;
}

export function ownerJoin(index: string, r: string): string {
  return `${index}.compartment = ${r}.compartment AND ${index}.resource_type = ${r}.resource_type AND ${index}.resource_id = ${r}.id`;
}

/**
 * `EXISTS (SELECT 1 FROM …)` checked for each row that reaches it. An access condition is
 * a check on a candidate row (a search page reads a few dozen), not a set to build: left
 * to itself the planner may turn a correlated EXISTS into a hashed subplan (or a semi join)
 * that reads every matching index row of the database (every MASQUE_PS label, every
 * document class) before the first candidate is looked at. `OFFSET 0` keeps the subquery
 * from being flattened or hashed (PostgreSQL does neither to a subquery with an OFFSET), so
 * each candidate costs one lookup on the owner index.
 */
export function rowProbe(fromWhere: string): string {
  return `EXISTS (SELECT 1 FROM ${fromWhere} OFFSET 0)`;
}

/** `values` as one text[] parameter: a list of any length keeps the statement's text (and plan) the same. */
function anyOf(ctx: SqlContext, column: string, values: string[]): string {
  if (values.length === 0) return 'false';
  if (values.length === 1) return `${column} = ${bind(ctx, values[0])}`;
  return `${column} = ANY(${bind(ctx, textArray(values))}::text[])`;
}

function dateCondition(ctx: SqlContext, v: SearchValue, lo: string, hi: string): string {
  const range = dateRange(v.value);
  if (!range) throw new BadRequest(`Invalid date "${v.value}"`);
  const vlo = () => `${bind(ctx, range.low)}::timestamptz`;
  const vhi = () => `${bind(ctx, range.high)}::timestamptz`;
  // index rows store open bounds as ±infinity (never NULL): plain columns, usable by the index
  switch (v.prefix) {
    case 'eq':
      return `(${lo} >= ${vlo()} AND ${hi} <= ${vhi()})`;
    case 'ne':
      return `NOT (${lo} >= ${vlo()} AND ${hi} <= ${vhi()})`;
    case 'gt':
      return `${hi} > ${vhi()}`;
    case 'lt':
      return `${lo} < ${vlo()}`;
    // ge/le: the range above/below the value overlaps the target, or the value's range contains it
    case 'ge':
      return `(${hi} > ${vhi()} OR (${lo} >= ${vlo()} AND ${hi} <= ${vhi()}))`;
    case 'le':
      return `(${lo} < ${vlo()} OR (${lo} >= ${vlo()} AND ${hi} <= ${vhi()}))`;
    case 'sa':
      return `${lo} > ${vhi()}`;
    case 'eb':
      return `${hi} < ${vlo()}`;
    case 'ap': {
      // approximately: within 10% of the distance between the value and now, at least a day
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
  const [mantissa, exponent] = value.split(/[eE]/);
  const m = /\.(\d+)/.exec(mantissa);
  return (m ? m[1].length : 0) - (exponent ? Number(exponent) : 0);
}

function numberCondition(ctx: SqlContext, v: SearchValue, column: string): string {
  const n = Number(v.value);
  // eq/ne honour the precision of the value: 100 means [99.5, 100.5), 1e2 means [50, 150)
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

function codesCondition(ctx: SqlContext, t: string, codes: { system?: string; code: string }[]): string {
  if (codes.length === 0) return 'false';
  // two arrays, unnested side by side: a form a distributed planner pushes down with the index row's partition
  return `EXISTS (SELECT 1 FROM unnest(${bind(ctx, textArray(codes.map((c) => c.system)))}::text[], ${bind(ctx, textArray(codes.map((c) => c.code)))}::text[]) AS vs(s, c) WHERE vs.c = ${t}.code AND (vs.s IS NULL OR vs.s = ${t}.system))`;
}

function tokenCondition(ctx: SqlContext, clause: ParamClause, v: SearchValue, t: string): string {
  if (clause.modifier === 'text') return `${t}.text LIKE ${bind(ctx, escapeLike(normalizeString(v.value)) + '%')}`;
  if (clause.modifier === 'in' || clause.modifier === 'not-in') {
    const codes = ctx.expandValueSet?.(v.value);
    if (!codes) throw new BadRequest(`Parameter ${clause.code}:${clause.modifier}: ValueSet "${v.value}" is not known to this server`);
    return codesCondition(ctx, t, codes);
  }
  if (clause.modifier === 'of-type') {
    const parts = v.value.split('|');
    if (parts.length !== 3 || !parts[1] || !parts[2]) throw new BadRequest(`Parameter ${clause.code}:of-type takes system|code|value, got "${v.value}"`);
    return `(${t}.code = ${bind(ctx, `${parts[1]}|${parts[2]}`)} AND ${t}.system ${parts[0] ? `= ${bind(ctx, parts[0])}` : 'IS NULL'})`;
  }
  const bar = v.value.indexOf('|');
  if (bar < 0) return `${t}.code = ${bind(ctx, v.value)}`;
  const system = v.value.slice(0, bar);
  const code = v.value.slice(bar + 1);
  if (system === '') return `(${t}.system IS NULL AND ${t}.code = ${bind(ctx, code)})`;
  if (code === '') return `${t}.system = ${bind(ctx, system)}`;
  return `(${t}.code = ${bind(ctx, code)} AND ${t}.system = ${bind(ctx, system)})`;
}

/** A reference search value as (type, id) or an absolute URL. */
export function parseReferenceValue(baseUrl: string, raw: string, typeModifier?: string): { type?: string; id?: string; url?: string } {
  let value = raw;
  const base = baseUrl + '/';
  if (value.startsWith(base)) value = value.slice(base.length);
  if (/^[a-z][a-z0-9+.-]*:/i.test(value)) return { url: value };
  value = value.replace(/\/_history\/[^/]+$/, '');
  const parts = value.split('/');
  if (parts.length === 2) return { type: parts[0], id: parts[1] };
  return { type: typeModifier, id: value };
}

function referenceCondition(ctx: SqlContext, clause: ParamClause, v: SearchValue, t: string): string {
  if (clause.modifier === 'identifier') {
    const bar = v.value.indexOf('|');
    if (bar < 0) return `${t}.identifier_value = ${bind(ctx, v.value)}${readableTargetCondition(ctx, clause, t, undefined, true)}`;
    const system = v.value.slice(0, bar);
    const value = v.value.slice(bar + 1);
    // the trail view withholds a patient's side agent whole, its identifier with it
    const shown = readableTargetCondition(ctx, clause, t, undefined, true);
    if (value === '') return `${t}.identifier_system = ${bind(ctx, system)}${shown}`;
    return `(${t}.identifier_value = ${bind(ctx, value)} AND ${t}.identifier_system ${system ? `= ${bind(ctx, system)}` : 'IS NULL'})${shown}`;
  }
  const typeModifier = clause.modifier && /^[A-Z]/.test(clause.modifier) ? clause.modifier : undefined;
  const ref = parseReferenceValue(ctx.baseUrl, v.value, typeModifier);
  if (ref.url !== undefined) {
    // canonical references may carry |version: a value without version matches any version
    return `(${t}.url = ${bind(ctx, ref.url)} OR ${t}.url LIKE ${bind(ctx, escapeLike(ref.url) + '|%')})`;
  }
  if (typeModifier && ref.type !== typeModifier) return 'false';
  const match = ref.type ? `(${t}.target_id = ${bind(ctx, ref.id)} AND ${t}.target_type = ${bind(ctx, ref.type)})` : `${t}.target_id = ${bind(ctx, ref.id)}`;
  return match + readableTargetCondition(ctx, clause, t, ref.type);
}

/** Our `thread` parameter of Communication (profiles/SearchParameter/Communication-thread.json). */
const THREAD_PARAMETER = 'https://fhir.dmp.esante.example/SearchParameter/Communication-thread';

/**
 * The search parameters of the elements whose references are withheld from a reader who
 * cannot follow them (docs/decisions/013-references-to-hidden-resources.md, the list of
 * src/access/referenceRedaction.ts), per resource type. The trail's entities are withheld
 * only from a reader shown the trail as seen. withheldParams.test.ts checks the two lists agree.
 */
export const WITHHELD_PARAMS: Readonly<Record<string, readonly string[]>> = {
  item: ['List'],
  relatesto: ['DocumentReference'],
  related: ['DocumentReference'],
  target: ['Provenance'],
  entity: ['Provenance'],
  member: ['Group'],
};

/**
 * The parameters of AuditEvent that name a patient's side (`agent.who`, and `patient`, which
 * is `agent.who` or `entity.what` as a Patient): the trail view withholds such a Patient or
 * RelatedPerson from a reader who cannot read it (decision 009, amendment of 2026-12-06).
 */
export const TRAIL_PERSON_PARAMS: readonly string[] = ['agent', 'patient'];
/** The parameters of AuditEvent a reader shown the trail as seen may not sort by: the order would follow withheld values. */
export const TRAIL_UNSORTABLE: readonly string[] = [...TRAIL_PERSON_PARAMS, 'entity'];

/**
 * For a restricted caller, on a withheld element's parameter: the stored reference matches
 * only when its target is a row the caller could read by id (decision 013: otherwise the
 * match tells that a hidden id exists, which the withholding hides). For a reader shown the
 * trail as seen, likewise AuditEvent's `entity`, and its `agent` and `patient` when they
 * name a Patient or a RelatedPerson (also by `:identifier`, `identifier`: the trail view
 * withholds the whole agent). Empty otherwise.
 */
function readableTargetCondition(ctx: SqlContext, clause: ParamClause, t: string, valueType: string | undefined, identifier = false): string {
  const code = clause.code;
  const c = ctx.constraints;
  if (isUnrestricted(c)) return '';
  const withheld: string[] = [];
  const types = identifier ? [] : [...(WITHHELD_PARAMS[code] ?? []), ...(code === 'entity' && c.trailAsSeen ? ['AuditEvent'] : [])];
  if (types.length) withheld.push(`${t}.resource_type IN (${types.map(literal).join(', ')})`);
  if (c.trailAsSeen && TRAIL_PERSON_PARAMS.includes(code)) withheld.push(`(${t}.resource_type = 'AuditEvent' AND COALESCE(${t}.target_type, '') IN ('Patient', 'RelatedPerson'))`);
  if (withheld.length === 0) return '';
  const target = alias(ctx, 'rt');
  const k = alias(ctx, 'k');
  // The target's type, when the value names it or the parameter has only one (`patient`): the caller's
  // rules of that type only, a statement a tenth as long to plan; a target of another type is then not
  // readable (it only hides more)
  const targets = clause.param?.def.target;
  const targetType = valueType ?? (targets?.length === 1 ? targets[0] : undefined);
  const ofType = targetType ? ` AND ${k}.resource_type = ${literal(targetType)}` : '';
  // the target is found where the locator says it is filed, and read there by its full key
  const readable = `EXISTS (SELECT 1 FROM resource_locator ${k} JOIN resource ${target} ON ${target}.compartment = ${k}.compartment AND ${target}.resource_type = ${k}.resource_type AND ${target}.id = ${k}.id
      WHERE ${k}.resource_type = ${t}.target_type AND ${k}.id = ${t}.target_id${ofType}${constraintConditions(ctx, target, targetType)})`;
  return ` AND (NOT (${withheld.join(' OR ')}) OR ${readable})`;
}

/** Why a reader shown the trail as seen may not sort this search so (400), or undefined. */
export function withheldSort(c: Visibility, resourceType: string, sort: { code: string }[]): string | undefined {
  if (!c.trailAsSeen || resourceType !== 'AuditEvent') return undefined;
  const code = sort.find((k) => TRAIL_UNSORTABLE.includes(k.code))?.code;
  return code ? `AuditEvent cannot be sorted by ${code} by this reader: the order would follow values the trail withholds from them` : undefined;
}

function quantityCondition(ctx: SqlContext, v: SearchValue, t: string): string {
  const [number, system, code] = v.value.split('|');
  const parts = [numberCondition(ctx, { prefix: v.prefix, value: number }, `${t}.value`)];
  if (system) parts.push(`${t}.system = ${bind(ctx, system)}`);
  if (code) parts.push(`(${t}.code = ${bind(ctx, code)} OR ${t}.unit = ${bind(ctx, code)})`);
  return parts.join(' AND ');
}

function valueCondition(ctx: SqlContext, clause: ParamClause, v: SearchValue, t: string): string {
  switch (clause.type) {
    case 'token':
      return tokenCondition(ctx, clause, v, t);
    case 'string':
      if (clause.modifier === 'exact') return `${t}.exact = ${bind(ctx, v.value)}`;
      if (clause.modifier === 'contains') return `${t}.value LIKE ${bind(ctx, '%' + escapeLike(normalizeString(v.value)) + '%')}`;
      return `${t}.value LIKE ${bind(ctx, escapeLike(normalizeString(v.value)) + '%')}`;
    case 'reference':
      return referenceCondition(ctx, clause, v, t);
    case 'date':
      return dateCondition(ctx, v, `${t}.low`, `${t}.high`);
    case 'number':
      return numberCondition(ctx, v, `${t}.value`);
    case 'quantity':
      return quantityCondition(ctx, v, t);
    case 'uri':
      if (clause.modifier === 'below') return `${t}.value LIKE ${bind(ctx, escapeLike(v.value) + '%')}`;
      if (clause.modifier === 'above') return `${bind(ctx, v.value)} LIKE (replace(replace(replace(${t}.value, '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%')`;
      return `${t}.value = ${bind(ctx, v.value)}`;
    default:
      throw new BadRequest(`Search parameter type ${clause.type} is not supported`);
  }
}

function indexExists(ctx: SqlContext, clause: ParamClause, r: string, condition: (t: string) => string | undefined, param = clause.code): string {
  const table = INDEX_TABLE[clause.type];
  if (!table) throw new BadRequest(`Search parameter type ${clause.type} is not supported`);
  const t = alias(ctx, 't');
  const head = `EXISTS (SELECT 1 FROM ${table} ${t} WHERE ${ownerJoin(t, r)} AND ${t}.param = ${literal(param)}`;
  const c = condition(t);
  return `${head}${c ? ` AND (${c})` : ''})`;
}

function paramCondition(ctx: SqlContext, clause: ParamClause, r: string): string {
  if (clause.code === '_id') {
    const ids = clause.values.map((v) => bind(ctx, v.value));
    return clause.modifier === 'not' ? `${r}.id NOT IN (${ids.join(', ')})` : `${r}.id IN (${ids.join(', ')})`;
  }
  if (clause.code === '_lastUpdated') {
    if (clause.modifier === 'missing') return clause.values[0].value === 'true' ? 'false' : 'true';
    return '(' + clause.values.map((v) => dateCondition(ctx, v, `${r}.last_updated`, `${r}.last_updated`)).join(' OR ') + ')';
  }
  if (clause.code === '_list') {
    // members of List/[id]: its entry.item references (List's `item` parameter)
    // the List is read as the caller may read it: a List hidden from them selects nothing
    return '(' + clause.values.map((v) => {
      const l = alias(ctx, 'l');
      const list = alias(ctx, 'r');
      const k = alias(ctx, 'k');
      const lk = alias(ctx, 'k');
      // uncorrelated, and joined to the candidate on the partition key: the List is read in
      // its own record (the locator names it), its members are located, and each
      // candidate is matched by its full key
      const id = bind(ctx, v.value);
      const members = `SELECT ${l}.target_type, ${l}.target_id FROM idx_reference ${l} JOIN resource ${list} ON ${ownerJoin(l, list)}
          WHERE ${l}.compartment = (SELECT ${lk}.compartment FROM resource_locator ${lk} WHERE ${lk}.resource_type = 'List' AND ${lk}.id = ${id})
            AND ${l}.resource_type = 'List' AND ${l}.resource_id = ${bind(ctx, v.value)} AND ${l}.param = 'item' AND NOT ${list}.deleted${constraintConditions(ctx, list, 'List')}`;
      return `(${r}.compartment, ${r}.resource_type, ${r}.id) IN (SELECT ${k}.compartment, ${k}.resource_type, ${k}.id FROM resource_locator ${k} WHERE (${k}.resource_type, ${k}.id) IN (${members}))`;
    }).join(' OR ') + ')';
  }
  if (clause.type === 'composite') {
    if (clause.modifier === 'missing') {
      const first = clause.param!.def.components?.[0];
      if (!first) return 'true';
      throw new BadRequest(`:missing on composite parameter ${clause.code} is not supported`);
    }
    // Components of one composite value must match within the same element (same group).
    return '(' + clause.components!.map((parts) => compositeCondition(ctx, clause.code, parts, r)).join(' OR ') + ')';
  }
  if (clause.modifier === 'missing') {
    const exists = indexExists(ctx, clause, r, () => undefined);
    return clause.values[0].value === 'true' ? `NOT ${exists}` : exists;
  }
  if (clause.type === 'token' && (clause.modifier === 'not' || clause.modifier === 'not-in')) {
    const exists = indexExists(ctx, { ...clause, modifier: clause.modifier === 'not-in' ? 'in' : undefined }, r, (t) =>
      clause.values.map((v) => tokenCondition(ctx, { ...clause, modifier: clause.modifier === 'not-in' ? 'in' : undefined }, v, t)).join(' OR '),
    );
    return `NOT ${exists}`;
  }
  if (clause.param?.def.url === THREAD_PARAMETER && !clause.modifier) {
    // a conversation is its opening message (no partOf) and the replies whose partOf names it (decision 016)
    const replies = indexExists(ctx, clause, r, (t) => clause.values.map((v) => valueCondition(ctx, clause, v, t)).join(' OR '));
    const openings = clause.values.map((v) => parseReferenceValue(ctx.baseUrl, v.value, 'Communication')).filter((v) => v.type === 'Communication' && v.id);
    return openings.length ? `(${replies} OR ${r}.id IN (${openings.map((v) => bind(ctx, v.id)).join(', ')}))` : replies;
  }
  const param = clause.modifier === 'of-type' ? `${clause.code}:of-type` : clause.code;
  return indexExists(ctx, clause, r, (t) => clause.values.map((v) => valueCondition(ctx, clause, v, t)).join(' OR '), param);
}

function compositeCondition(ctx: SqlContext, code: string, parts: ParamClause[], r: string): string {
  const aliases = parts.map(() => alias(ctx, 'c'));
  const tables = parts.map((p) => {
    const table = INDEX_TABLE[p.type];
    if (!table) throw new BadRequest(`Composite ${code}: component type ${p.type} is not supported`);
    return table;
  });
  const joins = parts
    .slice(1)
    .map((_, i) => {
      const a = aliases[i + 1];
      const first = aliases[0];
      return `JOIN ${tables[i + 1]} ${a} ON ${a}.compartment = ${first}.compartment AND ${a}.resource_type = ${first}.resource_type AND ${a}.resource_id = ${first}.resource_id AND ${a}.grp = ${first}.grp AND ${a}.param = ${literal(`${code}$${i + 1}`)}`;
    })
    .join(' ');
  const conditions = parts.map((p, i) => `(${p.values.map((v) => valueCondition(ctx, p, v, aliases[i])).join(' OR ')})`);
  return `EXISTS (SELECT 1 FROM ${tables[0]} ${aliases[0]} ${joins} WHERE ${ownerJoin(aliases[0], r)} AND ${aliases[0]}.param = ${literal(`${code}$0`)} AND ${conditions.join(' AND ')})`;
}

function clauseCondition(ctx: SqlContext, clause: Clause, r: string): string {
  switch (clause.kind) {
    case 'param':
      return paramCondition(ctx, clause, r);
    case 'chain': {
      // The targets as one uncorrelated set: the planner can start from the target's own
      // condition (an identifier lookup) instead of probing every candidate row.
      const t = alias(ctx, 't');
      const targets = clause.targets.map(({ type, clause: inner }) => {
        const r2 = alias(ctx, 'r');
        return `SELECT ${literal(type)}, ${r2}.id FROM resource ${r2} WHERE ${r2}.resource_type = ${literal(type)} AND NOT ${r2}.deleted${constraintConditions(ctx, r2, type)} AND ${clauseCondition(ctx, inner, r2)}`;
      });
      return `EXISTS (SELECT 1 FROM idx_reference ${t} WHERE ${ownerJoin(t, r)} AND ${t}.param = ${literal(clause.code)} AND (${t}.target_type, ${t}.target_id) IN (${targets.join(' UNION ALL ')}))`;
    }
    case 'has': {
      // Likewise uncorrelated: the referencing resources that match, then what they reference.
      const r2 = alias(ctx, 'r');
      const t = alias(ctx, 't');
      return `(${r}.resource_type, ${r}.id) IN (SELECT ${t}.target_type, ${t}.target_id FROM idx_reference ${t} JOIN resource ${r2} ON ${ownerJoin(t, r2)}
        WHERE ${t}.resource_type = ${literal(clause.type)} AND ${t}.param = ${literal(clause.refParam)} AND ${t}.target_id IS NOT NULL
          AND NOT ${r2}.deleted${constraintConditions(ctx, r2, clause.type)} AND ${clauseCondition(ctx, clause.clause, r2)})`;
    }
  }
}

/**
 * The record part of the caller's constraints on a version aliased `h`: the version's own
 * record is one the caller reads (a resource that moved keeps its older versions in the
 * record it left; docs/decisions/018-partitioning.md). Bindings go to `ctx` as usual.
 */
export function versionRecordCondition(ctx: SqlContext, h: string, resourceType: string | undefined): string {
  const v = ctx.constraints;
  return constraintConditions({ ...ctx, constraints: { compartments: v.compartments, sharedTypes: v.sharedTypes, ownSubscriptions: v.ownSubscriptions } }, h, resourceType);
}

/**
 * The access constraints on one resource row (alias r) of a known or unknown type, prefixed
 * with AND. `directory`: the statement reads only rows outside any record (compartment ''),
 * so the conditions of the types that cannot be there for this caller are left out (less
 * for the planner to plan).
 */
export function constraintConditions(ctx: SqlContext, r: string, resourceType: string | undefined, { directory = false }: { directory?: boolean } = {}): string {
  const c = ctx.constraints;
  const parts: string[] = [];
  if (c.resourceTypes) {
    // a caller who reads by type (a system) reads its own Subscriptions besides (decision 010); by record, below
    const own = c.ownSubscriptions && !c.compartments ? c.ownSubscriptions : undefined;
    if (resourceType !== undefined) {
      if (resourceType === 'Subscription' && own && !c.resourceTypes.includes(resourceType)) parts.push(ownSubscription(ctx, r, own, false));
      else if (!c.resourceTypes.includes(resourceType)) parts.push('false');
    } else {
      const types = c.resourceTypes.length ? `${r}.resource_type IN (${c.resourceTypes.map(literal).join(', ')})` : 'false';
      parts.push(own && !c.resourceTypes.includes('Subscription') ? `(${types} OR ${ownSubscription(ctx, r, own, true)})` : types);
    }
  }
  if (c.excludedTypes?.length) {
    if (resourceType !== undefined) {
      if (c.excludedTypes.includes(resourceType)) parts.push('false');
    } else parts.push(`${r}.resource_type NOT IN (${c.excludedTypes.map(literal).join(', ')})`);
  }
  /** The types a row may have for this caller when it is known to be outside any record; undefined: any. */
  let directoryTypes: string[] | undefined;
  if (c.compartments && directory) {
    if (!c.compartments.includes('')) {
      directoryTypes = c.sharedTypes ?? [];
      if (resourceType !== undefined) {
        if (!directoryTypes.includes(resourceType)) parts.push('false');
      } else parts.push(directoryTypes.length ? `${r}.resource_type IN (${directoryTypes.map(literal).join(', ')})` : 'false');
    }
  } else if (c.compartments) {
    // one array parameter: a professional's records can be hundreds, and the text stays the same
    const inList = anyOf(ctx, `${r}.compartment`, c.compartments);
    // directory resources (compartment '') stay readable whatever the caller's records
    const shared = c.sharedTypes?.length
      ? resourceType !== undefined
        ? c.sharedTypes.includes(resourceType)
          ? `${r}.compartment = ''`
          : undefined
        : `(${r}.compartment = '' AND ${r}.resource_type IN (${c.sharedTypes.map(literal).join(', ')}))`
      : undefined;
    const own = c.ownSubscriptions && (resourceType === undefined || resourceType === 'Subscription') ? ownSubscription(ctx, r, c.ownSubscriptions, resourceType === undefined) : undefined;
    const readable = [inList, shared, own].filter(Boolean);
    parts.push(readable.length > 1 ? `(${readable.join(' OR ')})` : inList);
  }
  // a record opposed or closed: one probe of its closure row, by primary key (directory rows have none)
  if (c.closedRecordsHidden && !directory) {
    const rc = alias(ctx, 'rc');
    parts.push(`NOT ${rowProbe(`record_closure ${rc} WHERE ${rc}.compartment = ${r}.compartment`)}`);
  }
  /** Whether rows of this type may reach the conditions below. */
  const mayBe = (type: string) => (resourceType === undefined || resourceType === type) && (!directoryTypes || directoryTypes.includes(type));
  const labels = c.excludedSecurityLabels ?? [];
  const plain = labels.filter((l) => !l.exceptAuthors?.length && !l.exceptCompartments?.length);
  if (plain.length) parts.push(`NOT ${labelExists(ctx, r, plain)}`);
  for (const rule of labels.filter((l) => !plain.includes(l))) {
    // bindings follow the text: the label's own condition first
    const labelled = labelExists(ctx, r, [rule]);
    const exceptions: string[] = [];
    if (rule.exceptCompartments?.length) exceptions.push(anyOf(ctx, `${r}.compartment`, rule.exceptCompartments));
    if (rule.exceptAuthors?.length) {
      const a = alias(ctx, 'a');
      // one text[] of 'Type/id': the text stays the same whatever the number of the caller's roles
      exceptions.push(rowProbe(`idx_reference ${a} WHERE ${ownerJoin(a, r)} AND ${a}.param = 'author' AND ${anyOf(ctx, `(${a}.target_type || '/' || ${a}.target_id)`, rule.exceptAuthors)}`));
      // a deleted document's authors are those of the version it deleted (decision 021)
      const h = alias(ctx, 'h');
      const e = alias(ctx, 'e');
      // `+`, not FHIR's `{1,64}`: PostgreSQL's regex engine unrolls a bounded repeat (0.1 ms a match instead of
      // 0.005); a longer id names nothing stored either way
      const named = `substring(${e} #>> '{}' from '([A-Z][A-Za-z]+/[A-Za-z0-9.-]+)(/_history/[^/]*){0,1}$')`;
      exceptions.push(`(${r}.deleted AND ${rowProbe(`resource_history ${h} CROSS JOIN LATERAL jsonb_path_query(${h}.body::jsonb, '$.author[*].reference') ${e}
        WHERE ${h}.compartment = ${r}.compartment AND ${h}.resource_type = ${r}.resource_type AND ${h}.id = ${r}.id AND ${h}.version_id = ${r}.version_id - 1 AND ${anyOf(ctx, named, rule.exceptAuthors)}`)})`);
    }
    parts.push(`NOT (${labelled} AND NOT (${exceptions.join(' OR ')}))`);
  }
  for (const req of c.requiredTokens ?? []) {
    if (!mayBe(req.resourceType)) continue;
    const s = alias(ctx, 's');
    const allowed = rowProbe(`idx_token ${s} WHERE ${ownerJoin(s, r)} AND ${s}.param = ${literal(req.param)} AND ${codesCondition(ctx, s, req.codes)}`);
    parts.push(resourceType !== undefined ? allowed : `(${r}.resource_type <> ${literal(req.resourceType)} OR ${allowed})`);
  }
  for (const ex of c.excludedTokens ?? []) {
    if (!mayBe(ex.resourceType)) continue;
    const s = alias(ctx, 's');
    const hidden = rowProbe(`idx_token ${s} WHERE ${ownerJoin(s, r)} AND ${s}.param = ${literal(ex.param)} AND ${codesCondition(ctx, s, ex.codes)}`);
    parts.push(resourceType !== undefined ? `NOT ${hidden}` : `(${r}.resource_type <> ${literal(ex.resourceType)} OR NOT ${hidden})`);
  }
  if (c.readableDocuments && mayBe('DocumentReference')) {
    const readable = c.readableDocuments.length ? `(${c.readableDocuments.map((rule) => documentRuleCondition(ctx, r, rule)).join(' OR ')})` : 'false';
    parts.push(resourceType !== undefined ? readable : `(${r}.resource_type <> 'DocumentReference' OR ${readable})`);
  }
  if (c.binaryFollowsDocument && mayBe('Binary')) {
    const follows = binaryFollowsDocument(ctx, r);
    parts.push(resourceType !== undefined ? follows : `(${r}.resource_type <> 'Binary' OR ${follows})`);
  }
  if (c.messages && mayBe('Communication')) {
    const rule = messageVisible(ctx, r, c.messages);
    parts.push(resourceType !== undefined ? rule : `(${r}.resource_type <> 'Communication' OR ${rule})`);
  }
  if (c.messages && mayBe('Binary')) {
    const rule = attachmentVisible(ctx, r, c.messages);
    parts.push(resourceType !== undefined ? rule : `(${r}.resource_type <> 'Binary' OR ${rule})`);
  }
  if (c.patientFoldersHidden && mayBe('List')) {
    const own = patientFolder(ctx, r);
    parts.push(resourceType !== undefined ? `NOT ${own}` : `(${r}.resource_type <> 'List' OR NOT ${own})`);
  }
  if (c.trailAsSeen && mayBe('AuditEvent')) {
    const shown = trailEventShown(ctx, r);
    parts.push(resourceType !== undefined ? shown : `(${r}.resource_type <> 'AuditEvent' OR ${shown})`);
  }
  if (c.noticesFollowAbout && (resourceType === undefined || resourceType === 'Communication')) {
    const follows = noticeFollowsAbout(ctx, r);
    parts.push(resourceType !== undefined ? follows : `(${r}.resource_type <> 'Communication' OR ${follows})`);
  }
  return parts.length ? ` AND ${parts.join(' AND ')}` : '';
}

/** Whether one of the caller's identities takes part, copy not deleted, in the thread of the message row `m`. */
function takesPart(ctx: SqlContext, m: string, participants: string[]): string {
  const p = alias(ctx, 'mp');
  return `JOIN message_participant ${p} ON ${p}.compartment = ${m}.compartment AND ${p}.thread_id = ${m}.thread_id AND ${p}.removed_at IS NULL AND ${anyOf(ctx, `${p}.participant`, participants)}`;
}

/** On the patient's side, a message they deleted one by one is gone (its thread stays). */
const keptBy = (m: string, rule: NonNullable<Visibility['messages']>) => (rule.patientSide ? ` AND ${m}.patient_removed_at IS NULL` : '');

/**
 * A Communication that is a message (it has a thread) is visible only to the participants
 * of its thread whose copy is not deleted; the server's notices are not messages
 * (docs/decisions/016-messaging.md). With `only`, nothing but such messages.
 */
function messageVisible(ctx: SqlContext, r: string, rule: NonNullable<Visibility['messages']>): string {
  const m = alias(ctx, 'm');
  const visible = rowProbe(`message ${m} ${takesPart(ctx, m, rule.participants)} WHERE ${m}.compartment = ${r}.compartment AND ${m}.id = ${r}.id${keptBy(m, rule)}`);
  if (rule.only) return visible;
  const m2 = alias(ctx, 'm');
  return `(NOT ${rowProbe(`message ${m2} WHERE ${m2}.compartment = ${r}.compartment AND ${m2}.id = ${r}.id`)} OR ${visible})`;
}

/** A Binary a message carries is visible only through a message of a thread the caller takes part in. With `only`, no other Binary. */
function attachmentVisible(ctx: SqlContext, r: string, rule: NonNullable<Visibility['messages']>): string {
  const a = alias(ctx, 'ma');
  const m = alias(ctx, 'm');
  const visible = rowProbe(`message_attachment ${a} JOIN message ${m} ON ${m}.compartment = ${a}.compartment AND ${m}.id = ${a}.message_id ${takesPart(ctx, m, rule.participants)} WHERE ${a}.compartment = ${r}.compartment AND ${a}.binary_id = ${r}.id${keptBy(m, rule)}`);
  if (rule.only) return visible;
  const a2 = alias(ctx, 'ma');
  return `(NOT ${rowProbe(`message_attachment ${a2} WHERE ${a2}.compartment = ${r}.compartment AND ${a2}.binary_id = ${r}.id`)} OR ${visible})`;
}

/**
 * A List (alias r) that is the patient's own folder: its `source` names a Patient (the
 * patient's side writes Lists in the patient's name) and it is not an MHD SubmissionSet (a
 * deposit, whose documents the care team reads). A deleted one is judged on the version it
 * deleted, as labels are (decision 021).
 */
function patientFolder(ctx: SqlContext, r: string): string {
  const s = alias(ctx, 's');
  const t = alias(ctx, 't');
  const h = alias(ctx, 'h');
  const live = `${rowProbe(`idx_reference ${s} WHERE ${ownerJoin(s, r)} AND ${s}.param = 'source' AND ${s}.target_type = 'Patient'`)}
    AND NOT ${rowProbe(`idx_token ${t} WHERE ${ownerJoin(t, r)} AND ${t}.param = 'code' AND ${t}.system = ${bind(ctx, MHD_LIST_TYPES)} AND ${t}.code = 'submissionset'`)}`;
  const deleted = rowProbe(`resource_history ${h} WHERE ${h}.compartment = ${r}.compartment AND ${h}.resource_type = ${r}.resource_type AND ${h}.id = ${r}.id AND ${h}.version_id = ${r}.version_id - 1
      AND (${h}.body::jsonb #>> '{source,reference}') ~ '(^|/)Patient/[^/]+$'
      AND NOT COALESCE(${h}.body::jsonb -> 'code' -> 'coding', '[]'::jsonb) @> jsonb_build_array(jsonb_build_object('system', ${bind(ctx, MHD_LIST_TYPES)}::text, 'code', 'submissionset'))`);
  return `((NOT ${r}.deleted AND ${live}) OR (${r}.deleted AND ${deleted}))`;
}

const MHD_LIST_TYPES = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';

/** A Subscription (outside any record) whose owner, who last wrote it, is `owner` (decision 010). */
function ownSubscription(ctx: SqlContext, r: string, owner: string, anyType: boolean): string {
  const o = alias(ctx, 'o');
  return `(${r}.compartment = ''${anyType ? ` AND ${r}.resource_type = 'Subscription'` : ''} AND EXISTS (SELECT 1 FROM subscription_owner ${o} WHERE ${o}.compartment = ${r}.compartment AND ${o}.id = ${r}.id AND ${o}.owner ->> 'fhirUser' = ${bind(ctx, owner)}))`;
}

/**
 * An AuditEvent (alias r) shown to a reader of the trail as seen: one that names no stored
 * resource besides its record's Patient, or at least one the reader may read now. An event
 * about resources all hidden from the reader (a document labelled for them, deleted or not)
 * is hidden with them, and its notice with it (decision 009, amendment of 2026-12-06). The
 * entities are the `entity` index rows, versioned references included.
 */
function trailEventShown(ctx: SqlContext, r: string): string {
  const e = alias(ctx, 'te');
  const d = alias(ctx, 'd');
  // the named resources are judged by every other rule of the reader (not this one, nor the notices': no recursion)
  const inner: SqlContext = { ...ctx, constraints: { ...ctx.constraints, trailAsSeen: false, noticesFollowAbout: false } };
  const others = constraintConditions(inner, d, undefined);
  ctx.aliases = inner.aliases;
  // what an event names was read or written in its own record (one event per record): read there, by its full key.
  // Two probes that each stop at their first row (an event of a broad read names a thousand resources):
  // whether it names any stored resource, and whether the reader may read one of them
  const named = (te: string, dd: string, condition: string) => `EXISTS (SELECT 1 FROM idx_reference ${te}
      JOIN resource ${dd} ON ${dd}.compartment = ${te}.compartment AND ${dd}.resource_type = ${te}.target_type AND ${dd}.id = ${te}.target_id
      WHERE ${ownerJoin(te, r)} AND ${te}.param = 'entity' AND NOT (${te}.target_type = 'Patient' AND ${te}.target_id = ${r}.compartment)${condition})`;
  const any = named(alias(ctx, 'te'), alias(ctx, 'd'), '');
  return `(NOT ${any} OR ${named(e, d, others ? ` AND COALESCE((TRUE${others}), FALSE)` : '')})`;
}

/**
 * A Communication (a notice) none of whose `about` references names a stored resource the
 * caller may not read: a notice of a document not yet shown waits for it (decision 009).
 * Read from the body: `about` has no R4 search parameter. A reference to nothing stored
 * (an AuditEvent purged by retention) hides nothing.
 */
function noticeFollowsAbout(ctx: SqlContext, r: string): string {
  const a = alias(ctx, 'ab');
  const d = alias(ctx, 'd');
  const m = alias(ctx, 'm');
  // the referenced resource is judged by every other rule of the caller (not this one: no recursion)
  const inner: SqlContext = { ...ctx, constraints: { ...ctx.constraints, noticesFollowAbout: false } };
  const others = constraintConditions(inner, d, undefined);
  ctx.aliases = inner.aliases;
  const about = `CASE WHEN json_typeof(${r}.body -> 'about') = 'array' THEN ${r}.body -> 'about' ELSE '[]'::json END`;
  // `+` for the id, not `{1,64}`: a bounded repeat is unrolled by PostgreSQL's regex engine, twenty times slower
  return `NOT EXISTS (SELECT 1 FROM json_array_elements(${about}) ${a}
      CROSS JOIN LATERAL regexp_match(${a} ->> 'reference', '([A-Z][A-Za-z]+)/([A-Za-z0-9.-]+)(/_history/[^/]*){0,1}$') ${m}(x)
      JOIN resource_locator ${m}k ON ${m}k.resource_type = ${m}.x[1] AND ${m}k.id = ${m}.x[2]
      JOIN resource ${d} ON ${d}.compartment = ${m}k.compartment AND ${d}.resource_type = ${m}k.resource_type AND ${d}.id = ${m}k.id
      WHERE ${hiddenFrom(others)})`;
}

/**
 * A row the caller's conditions (`constraintConditions`' text, '' for an unrestricted caller)
 * do not let through; a condition that is NULL lets nothing through, so it counts as hidden.
 */
function hiddenFrom(conditions: string): string {
  return conditions ? `NOT COALESCE((TRUE${conditions}), FALSE)` : 'FALSE';
}

/**
 * A DocumentReference row one role may read: no excluded type (a stored type with the
 * excluded code and no system counts as excluded), and a readable type, a readable class,
 * or no class and a type whose mapped class is readable.
 */
function documentRuleCondition(ctx: SqlContext, r: string, rule: DocumentRule): string {
  // a deleted document has no index rows: it is judged on the version it deleted, so that
  // whoever read it just before is told it is gone (410), and nobody else (decision 021)
  const paths: Record<string, string> = { type: '$.type.coding[*]', category: '$.category[*].coding[*]' };
  const token = (param: 'type' | 'category', condition: (s: string) => string) => {
    const s = alias(ctx, 's');
    const live = rowProbe(`idx_token ${s} WHERE ${ownerJoin(s, r)} AND ${s}.param = '${param}' AND ${condition(s)}`);
    const h = alias(ctx, 'h');
    const c = alias(ctx, 'c');
    const d = alias(ctx, 's');
    const deleted = rowProbe(`(SELECT ${c} ->> 'system' AS system, ${c} ->> 'code' AS code FROM resource_history ${h}
      CROSS JOIN LATERAL jsonb_path_query(${h}.body::jsonb, '${paths[param]}') ${c}
      WHERE ${h}.compartment = ${r}.compartment AND ${h}.resource_type = ${r}.resource_type AND ${h}.id = ${r}.id AND ${h}.version_id = ${r}.version_id - 1) ${d} WHERE ${condition(d)}`);
    return `((NOT ${r}.deleted AND ${live}) OR (${r}.deleted AND ${deleted}))`;
  };
  const parts: string[] = [];
  if (rule.excludedTypes.length) {
    const systems = textArray(rule.excludedTypes.map((c) => c.system));
    const codes = textArray(rule.excludedTypes.map((c) => c.code));
    parts.push(`NOT ${token('type', (s) => `EXISTS (SELECT 1 FROM unnest(${bind(ctx, systems)}::text[], ${bind(ctx, codes)}::text[]) AS vs(s, c) WHERE vs.c = ${s}.code AND (vs.s IS NULL OR ${s}.system IS NULL OR vs.s = ${s}.system))`)}`);
  }
  const allowed: string[] = [];
  if (rule.types.length) allowed.push(token('type', (s) => codesCondition(ctx, s, rule.types)));
  if (rule.classes.length) allowed.push(token('category', (s) => `${s}.system = ${bind(ctx, rule.classSystem)} AND ${anyOf(ctx, `${s}.code`, rule.classes)}`));
  if (rule.typesWithoutClass.length) allowed.push(`(NOT ${token('category', () => 'true')} AND ${token('type', (s) => codesCondition(ctx, s, rule.typesWithoutClass))})`);
  parts.push(allowed.length ? `(${allowed.join(' OR ')})` : 'false');
  return `(${parts.join(' AND ')})`;
}

/**
 * Whether the row r carries one of these labels. A deleted resource has no index rows: its
 * labels are those of the version it deleted (its history stays readable, and must stay
 * hidden as that version was).
 */
function labelExists(ctx: SqlContext, r: string, rules: LabelRule[]): string {
  const s = alias(ctx, 's');
  const labels = rules.map((l) => `(${s}.code = ${bind(ctx, l.code)}${l.system ? ` AND ${s}.system = ${bind(ctx, l.system)}` : ''})`).join(' OR ');
  const h = alias(ctx, 'h');
  const e = alias(ctx, 'e');
  const deletedLabels = rules.map((l) => `(${e}->>'code' = ${bind(ctx, l.code)}${l.system ? ` AND ${e}->>'system' = ${bind(ctx, l.system)}` : ''})`).join(' OR ');
  return `(${rowProbe(`idx_token ${s} WHERE ${ownerJoin(s, r)} AND ${s}.param = '_security' AND (${labels})`)}
    OR (${r}.deleted AND ${rowProbe(`resource_history ${h} CROSS JOIN LATERAL jsonb_array_elements(COALESCE(${h}.body::jsonb -> 'meta' -> 'security', '[]'::jsonb)) ${e}
      WHERE ${h}.compartment = ${r}.compartment AND ${h}.resource_type = ${r}.resource_type AND ${h}.id = ${r}.id AND ${h}.version_id = ${r}.version_id - 1 AND (${deletedLabels})`)}))`;
}

/**
 * Whether the url (an SQL text expression) names the Binary whose id is the SQL text
 * expression `id`, in any form this server resolves to it: relative or absolute, with or
 * without `/_history/n`, a query, a fragment, a trailing or doubled slash, `./`
 * (decision 008, amendment). Ids have no LIKE wildcard; a url of another type ending in the
 * same id only hides more. (`?` is written chr(63): a question mark in the text is a binding.)
 */
export function namesBinary(url: string, id: string): string {
  return `(${url} LIKE '%Binary/%' AND (${url} LIKE '%/' || ${id} OR ${url} LIKE '%/' || ${id} || '/%' OR ${url} LIKE '%/' || ${id} || chr(63) || '%' OR ${url} LIKE '%/' || ${id} || '#%'))`;
}

/**
 * A Binary that DocumentReferences of its record point to (content.attachment.url, the
 * `location` parameter) is visible only if none of them, current or deleted, is hidden from
 * the caller: a document the caller writes naming hidden content does not open it
 * (decision 008, amendment).
 */
function binaryFollowsDocument(ctx: SqlContext, r: string): string {
  const u = alias(ctx, 'u');
  const d = alias(ctx, 'd');
  const hidden = hiddenFrom(constraintConditions(ctx, d, 'DocumentReference'));
  // the urls naming it first (fenced: a few rows of its record), then only their documents judged
  const hiddenPointer = `EXISTS (SELECT 1 FROM (SELECT ${u}.compartment, ${u}.resource_type, ${u}.resource_id FROM idx_uri ${u}
        WHERE ${u}.compartment = ${r}.compartment AND ${u}.resource_type = 'DocumentReference' AND ${u}.param = 'location' AND ${namesBinary(`${u}.value`, `${r}.id`)} OFFSET 0) ${u}
      JOIN resource ${d} ON ${ownerJoin(u, d)} WHERE NOT ${d}.deleted AND ${hidden})`;
  // a deleted document has no index rows: the version it deleted says where its content was; hidden from the caller
  // (every document rule judged on that version, decision 021), its content stays hidden to them
  const dd = alias(ctx, 'd');
  const h = alias(ctx, 'h');
  const c = alias(ctx, 'c');
  const deletedHidden = hiddenFrom(constraintConditions(ctx, dd, 'DocumentReference'));
  const pointedByDeleted = `EXISTS (SELECT 1 FROM resource ${dd} JOIN resource_history ${h} ON ${h}.compartment = ${dd}.compartment AND ${h}.resource_type = ${dd}.resource_type AND ${h}.id = ${dd}.id AND ${h}.version_id = ${dd}.version_id - 1
      CROSS JOIN LATERAL jsonb_array_elements(COALESCE(${h}.body::jsonb -> 'content', '[]'::jsonb)) ${c}
      WHERE ${dd}.compartment = ${r}.compartment AND ${dd}.resource_type = 'DocumentReference' AND ${dd}.deleted AND ${namesBinary(`(${c} -> 'attachment' ->> 'url')`, `${r}.id`)} AND ${deletedHidden})`;
  return `(NOT ${hiddenPointer} AND NOT ${pointedByDeleted})`;
}

/**
 * A backstop behind the parser's limits (docs/decisions/005-request-limits.md): whatever
 * mix of parameters, OR values and chain targets got past them, a statement this long
 * costs PostgreSQL more to parse and plan than any search is worth.
 */
export const MAX_WHERE_CHARS = 1_000_000;

/** The WHERE clause of a search on the resource table aliased r. */
export function whereClause(ctx: SqlContext, search: { resourceType: string; clauses: Clause[] }, r = 'r'): string {
  const parts = [`${r}.resource_type = ${bind(ctx, search.resourceType)}`, `NOT ${r}.deleted`];
  const constraints = constraintConditions(ctx, r, search.resourceType);
  if (constraints) parts.push(constraints.slice(5));
  let length = 0;
  for (const clause of search.clauses) {
    const condition = clauseCondition(ctx, clause, r);
    length += condition.length;
    if (length > MAX_WHERE_CHARS) {
      throw new BadRequest(`The search would build more than ${MAX_WHERE_CHARS} characters of SQL: use fewer values or name the target types of its chains`, 'too-costly');
    }
    parts.push(condition);
  }
  return parts.join('\n  AND ');
}

/** A sort key as SQL: two columns per key (a nulls-last flag, then a non-null value) so keyset comparisons stay simple. */
export interface SortColumn {
  sql: string;
  descending: boolean;
  cast: 'boolean' | 'text' | 'timestamptz' | 'numeric';
}

const SORT_VALUE: Partial<Record<SearchParamType, [table: string, asc: string, desc: string, cast: SortColumn['cast'], neutral: string]>> = {
  date: [
    'idx_date',
    "min(CASE WHEN s.low = '-infinity' THEN s.high ELSE s.low END)",
    "max(CASE WHEN s.high = 'infinity' THEN s.low ELSE s.high END)",
    'timestamptz',
    `'epoch'::timestamptz`,
  ],
  string: ['idx_string', 'min(s.value)', 'max(s.value)', 'text', `''`],
  token: ['idx_token', 'min(s.code)', 'max(s.code)', 'text', `''`],
  reference: ['idx_reference', "min(COALESCE(s.target_type || '/' || s.target_id, s.url))", "max(COALESCE(s.target_type || '/' || s.target_id, s.url))", 'text', `''`],
  number: ['idx_number', 'min(s.value)', 'max(s.value)', 'numeric', '0'],
  quantity: ['idx_quantity', 'min(s.value)', 'max(s.value)', 'numeric', '0'],
  uri: ['idx_uri', 'min(s.value)', 'max(s.value)', 'text', `''`],
};

export function sortColumns(sort: SortKey[]): SortColumn[] {
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
    const value = `(SELECT ${key.descending ? desc : asc} FROM ${table} s WHERE ${ownerJoin('s', 'r')} AND s.param = ${literal(key.code)})`;
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
export function keysetCondition(ctx: SqlContext, columns: SortColumn[], keys: unknown[], backwards: boolean, name: (i: number) => string): string {
  const ors: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const ands: string[] = [];
    for (let j = 0; j < i; j++) ands.push(`${name(j)} = ${bind(ctx, keys[j])}::${columns[j].cast}`);
    const after = columns[i].descending !== backwards ? '<' : '>';
    ands.push(`${name(i)} ${after} ${bind(ctx, keys[i])}::${columns[i].cast}`);
    ors.push(`(${ands.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}

export type { ParsedSearch };
