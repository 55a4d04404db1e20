/**
 * Extraction of search index rows from a resource, driven by the search
 * parameter definitions (src/search/searchParameters.ts).
 *
 * Conversions by parameter type and value datatype:
 *  - token: Coding (system, code, text=display); CodeableConcept -> one row per
 *    coding (text = that coding's display) PLUS, when CodeableConcept.text is
 *    present, one extra row {system: null, code: null, text: text}; Identifier
 *    (system, code=value, text=type.text or first type.coding.display);
 *    ContactPoint (code=value, no system: the token of a ContactPoint is its value);
 *    primitives (code=value, system null); boolean ('true'/'false').
 *    All text values are normalizeString()-ed.
 *  - string: string primitives; HumanName (family, given*, prefix*, suffix*, text);
 *    Address (line*, city, district, state, postalCode, country, text).
 *  - reference: Reference (relative, versioned, absolute to options.baseUrl ->
 *    local; other absolute/urn -> url; `#contained` -> no target; identifier ->
 *    identifierSystem/Value on the same row); canonical/uri -> url (or local
 *    when it is a relative `Type/id`); canonical `|version` suffixes are kept
 *    as written; an embedded resource (Bundle.entry[0].resource) -> its type/id.
 *  - date: date/dateTime/instant (dateRange), Period, Timing (events + repeat.boundsPeriod).
 *  - number: decimal/integer -> String(value).
 *  - quantity: Quantity and its profiles, Money (system urn:iso:std:iso:4217,
 *    code=currency), Range -> one row for low and one for high.
 *  - uri: uri/url/canonical/oid/uuid primitives.
 *  - composite, special: no rows.
 * Rows are deduplicated per param. Never throws on odd data.
 */

import { DateRow, emptyIndexRows, INDEX_KINDS, IndexRows, QuantityRow, ReferenceRow, TokenRow } from './indexRows';
import { dateRange } from './dateRange';
import { normalizeString } from './normalize';
import { CompiledParam, SearchParameterRegistry, TypedValue } from './searchParameters';
import { localTarget } from '../referenceString';

export interface ExtractOptions {
  /** This server's base URL (e.g. http://localhost:8080/fhir); absolute references under it are indexed as local. */
  baseUrl?: string;
}

interface Ctx {
  rows: IndexRows;
  seen: Set<string>;
  baseUrl: string | undefined;
}

const SEP = '\u0001';

function str(v: unknown): string | null {
  return typeof v === 'string' && v.length > 0 ? v : null;
}

// ---------------------------------------------------------------------------
// Row emitters (with dedupe)
// ---------------------------------------------------------------------------

function addToken(ctx: Ctx, param: string, system: string | null, code: string | null, text: string | null): void {
  if (system === null && code === null && text === null) return;
  const key = 't' + SEP + param + SEP + system + SEP + code + SEP + text;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  const row: TokenRow = { param, system, code, text };
  ctx.rows.token.push(row);
}

function addString(ctx: Ctx, param: string, exact: unknown): void {
  if (typeof exact !== 'string') return;
  const value = normalizeString(exact);
  if (value.length === 0) return;
  const key = 's' + SEP + param + SEP + exact;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  ctx.rows.string.push({ param, value, exact });
}

function addReference(ctx: Ctx, row: ReferenceRow): void {
  if (
    row.targetType === null &&
    row.targetId === null &&
    row.url === null &&
    row.identifierSystem === null &&
    row.identifierValue === null
  ) {
    return;
  }
  const key =
    'r' + SEP + row.param + SEP + row.targetType + SEP + row.targetId + SEP + row.targetVersion + SEP + row.url +
    SEP + row.identifierSystem + SEP + row.identifierValue;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  ctx.rows.reference.push(row);
}

function addDate(ctx: Ctx, param: string, low: string | null, high: string | null): void {
  if (low === null && high === null) return;
  const key = 'd' + SEP + param + SEP + low + SEP + high;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  const row: DateRow = { param, low, high };
  ctx.rows.date.push(row);
}

function addNumber(ctx: Ctx, param: string, value: string): void {
  const key = 'n' + SEP + param + SEP + value;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  ctx.rows.number.push({ param, value });
}

function addQuantity(ctx: Ctx, row: QuantityRow): void {
  const key = 'q' + SEP + row.param + SEP + row.value + SEP + row.system + SEP + row.code + SEP + row.unit;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  ctx.rows.quantity.push(row);
}

function addUri(ctx: Ctx, param: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) return;
  const key = 'u' + SEP + param + SEP + value;
  if (ctx.seen.has(key)) return;
  ctx.seen.add(key);
  ctx.rows.uri.push({ param, value });
}

// ---------------------------------------------------------------------------
// Datatype inference (when the model could not tell)
// ---------------------------------------------------------------------------

const CONTACT_SYSTEMS = new Set(['phone', 'fax', 'email', 'pager', 'url', 'sms', 'other']);

function inferType(v: any): string | undefined {
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return Number.isInteger(v) ? 'integer' : 'decimal';
    case 'object':
      break;
    default:
      return undefined;
  }
  if (v === null || Array.isArray(v)) return undefined;
  if (typeof v.resourceType === 'string') return v.resourceType;
  if (Array.isArray(v.coding)) return 'CodeableConcept';
  if ('reference' in v || (v.identifier && typeof v.identifier === 'object' && !Array.isArray(v.identifier))) {
    return 'Reference';
  }
  if ('start' in v || 'end' in v) return 'Period';
  if ('low' in v || 'high' in v) return 'Range';
  if ('event' in v || 'repeat' in v) return 'Timing';
  if (typeof v.value === 'number') return typeof v.currency === 'string' ? 'Money' : 'Quantity';
  if ('family' in v || 'given' in v) return 'HumanName';
  if ('line' in v || 'city' in v || 'postalCode' in v || 'country' in v) return 'Address';
  if (typeof v.value === 'string' && typeof v.system === 'string' && CONTACT_SYSTEMS.has(v.system)) {
    return 'ContactPoint';
  }
  if ('value' in v) return 'Identifier';
  if ('code' in v || 'system' in v || 'display' in v) return 'Coding';
  if ('text' in v) return 'CodeableConcept';
  return undefined;
}

const QUANTITY_TYPES = new Set(['Quantity', 'Age', 'Duration', 'Distance', 'Count', 'SimpleQuantity', 'MoneyQuantity']);
const PRIMITIVE_TOKEN_TYPES = new Set(['code', 'string', 'id', 'uri', 'url', 'canonical', 'oid', 'uuid', 'markdown']);

// ---------------------------------------------------------------------------
// Per-type conversions
// ---------------------------------------------------------------------------

function textOf(v: unknown): string | null {
  const s = str(v);
  if (s === null) return null;
  const n = normalizeString(s);
  return n.length > 0 ? n : null;
}

function tokenCoding(ctx: Ctx, param: string, c: any): void {
  if (!c || typeof c !== 'object') return;
  addToken(ctx, param, str(c.system), str(c.code), textOf(c.display));
}

function token(ctx: Ctx, param: string, v: any, type: string): void {
  switch (type) {
    case 'Coding':
      tokenCoding(ctx, param, v);
      return;
    case 'CodeableConcept':
      if (Array.isArray(v.coding)) for (const c of v.coding) tokenCoding(ctx, param, c);
      addToken(ctx, param, null, null, textOf(v.text));
      return;
    case 'Identifier': {
      const system = str(v.system);
      const code = str(v.value);
      if (system === null && code === null) return;
      let text = textOf(v.type?.text);
      if (text === null && Array.isArray(v.type?.coding)) {
        for (const c of v.type.coding) {
          text = textOf(c?.display);
          if (text !== null) break;
        }
      }
      addToken(ctx, param, system, code, text);
      // :of-type matches type.coding + value: indexed under `<param>:of-type` as (type system, "code|value")
      if (code !== null && Array.isArray(v.type?.coding)) {
        for (const c of v.type.coding) {
          const typeCode = str(c?.code);
          if (typeCode !== null) addToken(ctx, `${param}:of-type`, str(c.system), `${typeCode}|${code}`, null);
        }
      }
      return;
    }
    case 'ContactPoint': {
      const code = str(v.value);
      if (code === null) return;
      // the token of a ContactPoint is its value alone (no system)
      addToken(ctx, param, null, code, null);
      return;
    }
    case 'boolean':
      if (typeof v === 'boolean') addToken(ctx, param, null, v ? 'true' : 'false', null);
      return;
    default:
      if (PRIMITIVE_TOKEN_TYPES.has(type) && typeof v === 'string') {
        if (v.length > 0) addToken(ctx, param, null, v, null);
      } else if ((type === 'integer' || type === 'decimal') && typeof v === 'number') {
        addToken(ctx, param, null, String(v), null);
      }
  }
}

function stringRows(ctx: Ctx, param: string, v: any, type: string): void {
  if (typeof v === 'string') {
    addString(ctx, param, v);
    return;
  }
  if (!v || typeof v !== 'object') return;
  const each = (x: unknown) => {
    if (Array.isArray(x)) for (const y of x) addString(ctx, param, y);
    else addString(ctx, param, x);
  };
  if (type === 'HumanName') {
    each(v.family);
    each(v.given);
    each(v.prefix);
    each(v.suffix);
    each(v.text);
  } else if (type === 'Address') {
    each(v.line);
    each(v.city);
    each(v.district);
    each(v.state);
    each(v.postalCode);
    each(v.country);
    each(v.text);
  } else if (type === 'CodeableConcept') {
    each(v.text);
  }
}

const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

function emptyRef(param: string): ReferenceRow {
  return {
    param,
    targetType: null,
    targetId: null,
    targetVersion: null,
    url: null,
    identifierSystem: null,
    identifierValue: null,
  };
}

/** Fills target/url fields of `row` from a reference string. Returns false if uninterpretable. */
function parseReferenceString(ctx: Ctx, row: ReferenceRow, ref: string): boolean {
  if (ref.startsWith('#')) return false;
  const target = localTarget(ref, ctx.baseUrl);
  if (target) {
    row.targetType = target.resourceType;
    row.targetId = target.id;
    row.targetVersion = target.version ?? null;
    return true;
  }
  if (!(ctx.baseUrl && ref.startsWith(ctx.baseUrl)) && !SCHEME_RE.test(ref)) return false; // relative but not Type/id
  row.url = ref;
  return true;
}

function reference(ctx: Ctx, param: string, v: any, type: string): void {
  if (typeof v === 'string') {
    // canonical / uri
    const row = emptyRef(param);
    if (parseReferenceString(ctx, row, v)) addReference(ctx, row);
    return;
  }
  if (!v || typeof v !== 'object') return;
  if (type === 'Reference') {
    const row = emptyRef(param);
    if (typeof v.reference === 'string' && v.reference.length > 0) parseReferenceString(ctx, row, v.reference);
    const ident = v.identifier;
    if (ident && typeof ident === 'object') {
      row.identifierSystem = str(ident.system);
      row.identifierValue = str(ident.value);
    }
    addReference(ctx, row);
    return;
  }
  if (typeof v.resourceType === 'string' && typeof v.id === 'string') {
    const row = emptyRef(param);
    row.targetType = v.resourceType;
    row.targetId = v.id;
    addReference(ctx, row);
  }
}

function dateValue(ctx: Ctx, param: string, v: unknown): void {
  if (typeof v !== 'string') return;
  const r = dateRange(v);
  if (r) addDate(ctx, param, r.low, r.high);
}

function datePeriod(ctx: Ctx, param: string, p: any): void {
  if (!p || typeof p !== 'object') return;
  const start = typeof p.start === 'string' ? dateRange(p.start) : undefined;
  const end = typeof p.end === 'string' ? dateRange(p.end) : undefined;
  // A present but malformed boundary makes the whole period uninterpretable.
  if ((p.start !== undefined && !start) || (p.end !== undefined && !end)) return;
  addDate(ctx, param, start ? start.low : null, end ? end.high : null);
}

function date(ctx: Ctx, param: string, v: any, type: string): void {
  switch (type) {
    case 'Period':
      datePeriod(ctx, param, v);
      return;
    case 'Timing':
      if (Array.isArray(v.event)) for (const e of v.event) dateValue(ctx, param, e);
      if (v.repeat && typeof v.repeat === 'object') datePeriod(ctx, param, v.repeat.boundsPeriod);
      return;
    default:
      dateValue(ctx, param, v);
  }
}

function numberText(v: unknown): string | null {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'string' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v)) return v;
  return null;
}

function number(ctx: Ctx, param: string, v: any): void {
  const n = numberText(v);
  if (n !== null) addNumber(ctx, param, n);
}

function quantityRow(ctx: Ctx, param: string, q: any): void {
  if (!q || typeof q !== 'object') return;
  const value = numberText(q.value);
  if (value === null) return;
  addQuantity(ctx, { param, value, system: str(q.system), code: str(q.code), unit: str(q.unit) });
}

function quantity(ctx: Ctx, param: string, v: any, type: string): void {
  if (type === 'Money') {
    const value = numberText(v.value);
    if (value === null) return;
    const currency = str(v.currency);
    addQuantity(ctx, { param, value, system: currency ? 'urn:iso:std:iso:4217' : null, code: currency, unit: null });
  } else if (type === 'Range') {
    quantityRow(ctx, param, v.low);
    quantityRow(ctx, param, v.high);
  } else if (QUANTITY_TYPES.has(type)) {
    quantityRow(ctx, param, v);
  }
}

function convert(ctx: Ctx, cp: CompiledParam, tv: TypedValue): void {
  const v = tv.value;
  if (v === null || v === undefined) return;
  const type = tv.type ?? inferType(v);
  if (!type) return;
  const param = cp.code;
  switch (cp.type) {
    case 'token':
      token(ctx, param, v, type);
      return;
    case 'string':
      stringRows(ctx, param, v, type);
      return;
    case 'reference':
      if (typeof v === 'string' || type === 'Reference' || typeof v.resourceType === 'string') {
        reference(ctx, param, v, type);
      }
      return;
    case 'date':
      date(ctx, param, v, type);
      return;
    case 'number':
      if (typeof v === 'number' || typeof v === 'string') number(ctx, param, v);
      return;
    case 'quantity':
      if (typeof v === 'object') quantity(ctx, param, v, type);
      return;
    case 'uri':
      if (typeof v === 'string') addUri(ctx, param, v);
      return;
    default:
      return; // composite, special
  }
}

// ---------------------------------------------------------------------------
// Composite parameters
// ---------------------------------------------------------------------------

const componentDefsCache = new WeakMap<SearchParameterRegistry, Map<string, CompiledParam['type']>>();

function componentType(registry: SearchParameterRegistry, url: string): CompiledParam['type'] | undefined {
  let byUrl = componentDefsCache.get(registry);
  if (!byUrl) {
    byUrl = new Map();
    for (const def of registry.definitions()) if (def.url) byUrl.set(def.url, def.type);
    componentDefsCache.set(registry, byUrl);
  }
  return byUrl.get(url);
}

const AS_RE = /^([A-Za-z]+)\.as\(([A-Za-z]+)\)$/;

/**
 * The official R4 component expressions are small: `code`, `value.as(Quantity) | value.as(Range)`,
 * `target`, `%resource.referenceSeq.chromosome` …; they are walked directly on the element.
 */
type ComponentPart = { key: string; fhirType: string } | { fromResource: boolean; path: string[] };

/** Component expressions read once: the same few official expressions serve every write. */
const componentParts = new Map<string, ComponentPart[]>();

function partsOf(expression: string): ComponentPart[] {
  let parts = componentParts.get(expression);
  if (!parts) {
    parts = expression
      .split('|')
      .map((s) => s.trim())
      .map((part): ComponentPart => {
        const as = AS_RE.exec(part);
        if (as) {
          const [, name, type] = as;
          return { key: name + type.charAt(0).toUpperCase() + type.slice(1), fhirType: type === 'DateTime' ? 'dateTime' : type };
        }
        const fromResource = part.startsWith('%resource.');
        return { fromResource, path: (fromResource ? part.slice('%resource.'.length) : part).split('.') };
      });
    componentParts.set(expression, parts);
  }
  return parts;
}

function evaluateComponent(expression: string, element: any, resource: any): TypedValue[] {
  const out: TypedValue[] = [];
  for (const part of partsOf(expression)) {
    if ('key' in part) {
      const v = element?.[part.key];
      for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) out.push({ value: x, type: part.fhirType });
      continue;
    }
    let current: any[] = [part.fromResource ? resource : element];
    const path = part.path;
    for (const step of path) {
      const next: any[] = [];
      for (const c of current) {
        if (!c || typeof c !== 'object') continue;
        let v = c[step];
        if (v === undefined) {
          // a choice element named without its type (Group.characteristic.value)
          const key = Object.keys(c).find((k) => k.startsWith(step) && /^[A-Z]/.test(k.slice(step.length)));
          if (key) {
            v = c[key];
            if (path.length === 1) {
              const type = key.slice(step.length);
              for (const x of Array.isArray(v) ? v : [v]) out.push({ value: x, type: type === 'DateTime' || type === 'String' || type === 'Boolean' ? type.charAt(0).toLowerCase() + type.slice(1) : type });
              v = undefined;
            }
          }
        }
        if (Array.isArray(v)) next.push(...v);
        else if (v !== undefined) next.push(v);
      }
      current = next;
    }
    if (current.length && current[0] !== element && current[0] !== resource) for (const v of current) out.push({ value: v, type: undefined });
  }
  return out;
}

function compositeRows(ctx: Ctx, cp: CompiledParam, resource: any, registry: SearchParameterRegistry): void {
  const components = cp.def.components;
  if (!components?.length) return;
  const types = components.map((c) => componentType(registry, c.definition));
  if (types.some((t) => !t || t === 'composite' || t === 'special')) return;
  let group = 0;
  for (const element of cp.evaluateTyped(resource)) {
    group++;
    components.forEach((c, k) => {
      const sub: Ctx = { rows: emptyIndexRows(), seen: new Set(), baseUrl: ctx.baseUrl };
      const param = { code: `${cp.code}$${k}`, type: types[k] } as CompiledParam;
      for (const tv of evaluateComponent(c.expression, element.value, resource)) {
        try {
          convert(sub, param, tv);
        } catch {
          // skip values we cannot interpret
        }
      }
      for (const kind of INDEX_KINDS) for (const row of sub.rows[kind]) (ctx.rows[kind] as unknown[]).push({ ...row, group });
    });
  }
}

function normalizeBaseUrl(baseUrl: string | undefined): string | undefined {
  if (!baseUrl) return undefined;
  return baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
}

/** Extracts all index rows for `resource` (by its resourceType). Never throws on odd data. */
export function extractIndexRows(
  resource: any,
  registry: SearchParameterRegistry = SearchParameterRegistry.official(),
  options: ExtractOptions = {},
): IndexRows {
  const rows = emptyIndexRows();
  if (!resource || typeof resource !== 'object' || typeof resource.resourceType !== 'string') return rows;
  const ctx: Ctx = { rows, seen: new Set(), baseUrl: normalizeBaseUrl(options.baseUrl) };
  for (const cp of registry.forType(resource.resourceType).values()) {
    if (cp.type === 'special') continue;
    if (cp.type === 'composite') {
      compositeRows(ctx, cp, resource, registry);
      continue;
    }
    // Answered from the resource table's own columns, never from the index.
    if (cp.code === '_id' || cp.code === '_lastUpdated') continue;
    let values: TypedValue[];
    try {
      values = cp.evaluateTyped(resource);
    } catch {
      continue;
    }
    for (const tv of values) {
      try {
        convert(ctx, cp, tv);
      } catch {
        // skip values we cannot interpret
      }
    }
  }
  return rows;
}
