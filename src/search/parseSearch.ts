import { Config, QUERY_LIMIT_DEFAULTS } from '../config/config';
import { FhirError, BadRequest, Issue } from '../errors';
import type { CompiledParam, SearchParamType } from './searchParameters';
import { dateRange } from './dateRange';
import { invalidElementNames, invalidElementsText, TypeElements } from './elementsParameter';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface SearchValue {
  prefix: Prefix;
  /** The value with any prefix removed, unescaped. */
  value: string;
}

/** A parameter compared with values: its values are OR'ed; clauses are AND'ed. */
export interface ParamClause {
  kind: 'param';
  code: string;
  type: SearchParamType;
  modifier?: string;
  /** The indexed parameter; undefined for _id, _lastUpdated and _list, answered from the resource table. */
  param?: CompiledParam;
  values: SearchValue[];
  /** Composite parameters: each value is split on $ into one component clause per component. */
  components?: ParamClause[][];
}

/** subject:Patient.name=x — resources whose reference `code` points at a target matching `clause`. */
export interface ChainClause {
  kind: 'chain';
  code: string;
  targets: { type: string; clause: Clause }[];
}

/** _has:AuditEvent:entity:agent=x — resources referenced through `refParam` by a `type` matching `clause`. */
export interface HasClause {
  kind: 'has';
  type: string;
  refParam: string;
  clause: Clause;
}

export type Clause = ParamClause | ChainClause | HasClause;

export interface SortKey {
  code: string;
  type: SearchParamType;
  descending: boolean;
}

export interface IncludeSpec {
  /** Source type of the reference (for _revinclude: the type that references the matches). */
  sourceType: string;
  /** Reference parameter, or '*' for every reference parameter of sourceType. */
  param: string;
  targetType?: string;
  iterate: boolean;
}

export interface ParsedSearch {
  resourceType: string;
  clauses: Clause[];
  /** The name=value pair of each clause as received, for links. */
  clauseRaw: [string, string][];
  sort: SortKey[];
  count: number;
  total: 'none' | 'estimate' | 'accurate' | undefined;
  summary: 'true' | 'false' | 'text' | 'data' | 'count' | undefined;
  elements: string[] | undefined;
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  /** Opaque page token of a next/previous link. */
  pageToken: string | undefined;
  /** Warnings for parameters ignored under lenient handling. */
  warnings: Issue[];
  /** Result parameters as received, for links. */
  resultRaw: [string, string][];
}

/** What the parser needs to know about the server's types and parameters. */
export interface SearchSchema {
  isSupported(type: string): boolean;
  searchParams(type: string): Map<string, CompiledParam>;
  codeForUrl(url: string): string | undefined;
  /** The top-level elements of a type, for _elements (not checked when absent). */
  elements?(type: string): TypeElements | undefined;
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
  /** What one query may cost; the configured defaults when absent. */
  limits?: SearchLimits;
}

/**
 * Bounds on the SQL one query may generate (docs/decisions/005-request-limits.md). The
 * planning time of a search grows faster than its number of parameters, and a chain on a
 * parameter that targets many types multiplies its sub-queries at every link.
 */
export interface SearchLimits {
  maxParameters: number;
  maxValues: number;
  maxChainDepth: number;
  maxHasDepth: number;
  maxChainTargets: number;
  maxElements: number;
}

type LimitSettings = Pick<Config, 'searchMaxParameters' | 'searchMaxValues' | 'searchMaxChainDepth' | 'searchMaxHasDepth' | 'searchMaxChainTargets' | 'elementsMaxNames'>;

/** The search limits of a configuration. */
export function searchLimits(config: LimitSettings): SearchLimits {
  return {
    maxParameters: config.searchMaxParameters,
    maxValues: config.searchMaxValues,
    maxChainDepth: config.searchMaxChainDepth,
    maxHasDepth: config.searchMaxHasDepth,
    maxChainTargets: config.searchMaxChainTargets,
    maxElements: config.elementsMaxNames,
  };
}

export const DEFAULT_SEARCH_LIMITS: SearchLimits = searchLimits(QUERY_LIMIT_DEFAULTS);

/** A query past one of the limits: refused whatever the handling, before any SQL is built. */
export class SearchTooCostly extends FhirError {
  constructor(diagnostics: string) {
    super(400, [{ severity: 'error', code: 'too-costly', diagnostics }]);
  }
}

/** Parameters that steer paging and output only: a next-page link adds _page to the query it repeats. */
const UNCOUNTED = new Set(['_page', '_format', '_pretty']);

/** Refuses more parameters or OR values than the limits allow: counted on the query as sent, before parsing it. */
export function assertSearchSize(pairs: [string, string][], limits: SearchLimits): void {
  const counted = pairs.filter(([name]) => !UNCOUNTED.has(name));
  if (counted.length > limits.maxParameters) {
    throw new SearchTooCostly(`The search has ${counted.length} parameters; at most ${limits.maxParameters} are accepted (SEARCH_MAX_PARAMETERS)`);
  }
  let values = 0;
  for (const [name, value] of counted) if (name !== '_elements') values += splitOr(value).length;
  if (values > limits.maxValues) {
    throw new SearchTooCostly(`The search has ${values} values (each value of an OR list counts); at most ${limits.maxValues} are accepted (SEARCH_MAX_VALUES)`);
  }
}

/** _elements: at most `max` names. */
export function elementNames(value: string, max: number): string[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length > max) throw new SearchTooCostly(`_elements has ${names.length} names; at most ${max} are accepted (ELEMENTS_MAX_NAMES)`);
  return names;
}

/** How deep a clause is nested: chain links and _has levels above it. */
interface Depth {
  chain: number;
  has: number;
}
const TOP: Depth = { chain: 0, has: 0 };

const MODIFIERS: Record<string, string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'missing', 'of-type', 'in', 'not-in', 'above', 'below'],
  reference: ['identifier', 'missing'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['above', 'below', 'missing'],
  composite: ['missing'],
};
/** Modifiers the engine recognises but does not answer (the CapabilityStatement says so). */
const UNSUPPORTED_MODIFIERS = new Set(['above:token', 'below:token']);
const UNSUPPORTED_PARAMS = new Set(['_text', '_content', '_query', '_filter', '_contained', '_containedType', '_type']);

/** Splits on unescaped commas and undoes FHIR's `\,` `\$` `\|` `\\` escapes. */
export function splitOr(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      current += value[++i];
    } else if (c === ',') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

/** Splits a raw (still escaped) composite value on unescaped `$`. */
function splitComposite(value: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && i + 1 < value.length) {
      current += c + value[++i];
    } else if (c === '$') {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function prefixed(type: SearchParamType, raw: string): SearchValue {
  if ((type === 'date' || type === 'number' || type === 'quantity') && /^[a-z]{2}/.test(raw)) {
    const p = raw.slice(0, 2) as Prefix;
    if (PREFIXES.includes(p)) return { prefix: p, value: raw.slice(2) };
  }
  return { prefix: 'eq', value: raw };
}

const NUMBER_FORM = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
/** A number the index can compare with: the FHIR decimal form, and finite (1e999 is not). */
const NUMBER = { test: (s: string) => NUMBER_FORM.test(s) && Number.isFinite(Number(s)) };

function checkValue(code: string, type: SearchParamType, modifier: string | undefined, v: SearchValue): void {
  if (modifier === 'missing') {
    if (v.value !== 'true' && v.value !== 'false') throw new BadRequest(`Parameter ${code}:missing takes true or false, got "${v.value}"`);
    return;
  }
  if (type === 'date' && !dateRange(v.value)) {
    throw new BadRequest(`Parameter ${code}: "${v.value}" is not a valid date, dateTime or instant (prefixes: ${PREFIXES.join(' ')})`);
  }
  if (type === 'number' && !NUMBER.test(v.value)) {
    throw new BadRequest(`Parameter ${code}: "${v.value}" is not a number (prefixes: ${PREFIXES.join(' ')})`);
  }
  if (type === 'quantity' && !NUMBER.test(v.value.split('|')[0])) {
    throw new BadRequest(`Parameter ${code}: "${v.value}" is not a quantity ([prefix]number|system|code)`);
  }
}

class Ignored extends Error {}

/** _count (search, history, $everything): a non-negative integer, capped at the server's maximum page size. */
export function parseCount(value: string, max: number): number {
  if (!/^\d+$/.test(value)) throw new BadRequest(`_count must be a non-negative integer, got "${value}"`);
  return Math.min(Number(value), max);
}

export class SearchParser {
  private readonly limits: SearchLimits;
  /** Chain and _has sub-queries built so far by the current parse. */
  private subqueries = 0;

  constructor(
    private readonly schema: SearchSchema,
    private readonly options: ParseOptions,
  ) {
    this.limits = options.limits ?? DEFAULT_SEARCH_LIMITS;
  }

  parse(resourceType: string, pairs: [string, string][]): ParsedSearch {
    assertSearchSize(pairs, this.limits);
    this.subqueries = 0;
    const parsed: ParsedSearch = {
      resourceType,
      clauses: [],
      clauseRaw: [],
      sort: [],
      count: this.options.defaultCount,
      total: undefined,
      summary: undefined,
      elements: undefined,
      include: [],
      revinclude: [],
      pageToken: undefined,
      warnings: [],
      resultRaw: [],
    };
    const ignore = (diagnostics: string): never => {
      if (this.options.strict) throw new BadRequest(diagnostics.replace(/:? (parameter )?ignored$/, ''), 'not-supported');
      parsed.warnings.push({ severity: 'warning', code: 'not-supported', diagnostics });
      throw new Ignored();
    };
    for (const [name, rawValue] of pairs) {
      try {
        if (this.resultParameter(parsed, name, rawValue, ignore)) continue;
        if (rawValue === '') {
          // an empty value is no constraint; under strict handling its name is still one the server knows
          if (this.options.strict) this.assertKnownName(resourceType, name, ignore);
          continue;
        }
        const clause = this.clause(resourceType, name, rawValue, ignore);
        parsed.clauses.push(clause);
        parsed.clauseRaw.push([name, rawValue]);
      } catch (e) {
        if (!(e instanceof Ignored)) throw e;
      }
    }
    return parsed;
  }

  private resultParameter(parsed: ParsedSearch, name: string, rawValue: string, ignore: (d: string) => never): boolean {
    const type = parsed.resourceType;
    switch (name) {
      case '_count':
        parsed.count = parseCount(rawValue, this.options.maxCount);
        parsed.resultRaw.push([name, String(parsed.count)]);
        return true;
      case '_total':
        if (!['none', 'estimate', 'accurate'].includes(rawValue)) throw new BadRequest(`_total must be none, estimate or accurate, got "${rawValue}"`);
        parsed.total = rawValue as ParsedSearch['total'];
        parsed.resultRaw.push([name, rawValue]);
        return true;
      case '_summary':
        if (!['true', 'false', 'text', 'data', 'count'].includes(rawValue)) throw new BadRequest(`_summary must be true, false, text, data or count, got "${rawValue}"`);
        parsed.summary = rawValue as ParsedSearch['summary'];
        parsed.resultRaw.push([name, rawValue]);
        return true;
      case '_elements': {
        const names = elementNames(rawValue, this.limits.maxElements);
        const known = this.schema.elements?.(type);
        const invalid = known ? invalidElementNames(type, rawValue, known) : [];
        if (invalid.length) {
          try {
            ignore(invalidElementsText(type, invalid));
          } catch (e) {
            if (!(e instanceof Ignored)) throw e;
          }
        }
        // under lenient handling the value is applied as before (a name that is no element keeps nothing), with the warning
        parsed.elements = names;
        parsed.resultRaw.push([name, rawValue]);
        return true;
      }
      case '_page':
        parsed.pageToken = rawValue;
        return true;
      case '_format':
      case '_pretty':
        return true;
      case '_sort': {
        const keys: string[] = [];
        for (const key of rawValue.split(',').map((s) => s.trim()).filter(Boolean)) {
          const descending = key.startsWith('-');
          const code = descending ? key.slice(1) : key;
          const sortType = code === '_id' ? 'token' : code === '_lastUpdated' ? 'date' : this.schema.searchParams(type).get(code)?.type;
          if (!sortType || sortType === 'composite' || sortType === 'special') {
            try {
              ignore(`Unknown sort parameter "${code}" for ${type}: ignored`);
            } catch (e) {
              if (e instanceof Ignored) continue;
              throw e;
            }
          }
          parsed.sort.push({ code, type: sortType!, descending });
          keys.push(key);
        }
        if (keys.length) parsed.resultRaw.push([name, keys.join(',')]);
        return true;
      }
    }
    const include = /^_(rev)?include(:iterate|:recurse)?$/.exec(name);
    if (include) {
      const reverse = Boolean(include[1]);
      const iterate = Boolean(include[2]);
      const spec = this.includeSpec(type, rawValue, reverse, iterate, ignore);
      (reverse ? parsed.revinclude : parsed.include).push(spec);
      parsed.resultRaw.push([name, rawValue]);
      return true;
    }
    return false;
  }

  private includeSpec(type: string, value: string, reverse: boolean, iterate: boolean, ignore: (d: string) => never): IncludeSpec {
    if (value === '*') return { sourceType: reverse ? '*' : type, param: '*', iterate };
    const [sourceType, param, targetType] = value.split(':');
    if (!sourceType || !param) throw new BadRequest(`_${reverse ? 'rev' : ''}include must be Type:param[:targetType] or *, got "${value}"`);
    if (!this.schema.isSupported(sourceType)) ignore(`_${reverse ? 'rev' : ''}include: unknown resource type "${sourceType}"`);
    if (targetType && !this.schema.isSupported(targetType)) ignore(`_${reverse ? 'rev' : ''}include: unknown target type "${targetType}"`);
    if (param !== '*') {
      const p = this.schema.searchParams(sourceType).get(param);
      if (!p || p.type !== 'reference') ignore(`_${reverse ? 'rev' : ''}include: "${param}" is not a reference parameter of ${sourceType}`);
    }
    if (!iterate && !reverse && sourceType !== type) ignore(`_include=${value}: the source type must be ${type} (use _include:iterate for included resources)`);
    return { sourceType, param, targetType, iterate };
  }

  /** Refuses (strict) the name of a parameter sent without a value when it is no parameter of the type (its chain or _has is not followed). */
  private assertKnownName(type: string, name: string, ignore: (d: string) => never): void {
    if (name.startsWith('_has:')) return;
    const code = name.split(/[.:]/)[0];
    if (code === '_id' || code === '_lastUpdated' || code === '_list') return;
    if (UNSUPPORTED_PARAMS.has(code)) ignore(`Search parameter "${code}" is not supported: ignored`);
    if (!this.schema.searchParams(type).has(code)) ignore(`Unknown search parameter "${code}" for ${type}: ignored`);
  }

  /** One search parameter name (possibly chained, reverse-chained, with a modifier) and its raw value. */
  clause(type: string, name: string, rawValue: string, ignore: (d: string) => never, depth: Depth = TOP): Clause {
    if (name.startsWith('_has:')) return this.hasClause(type, name, rawValue, ignore, depth);
    const dot = name.indexOf('.');
    if (dot > 0) return this.chainClause(type, name.slice(0, dot), name.slice(dot + 1), rawValue, ignore, depth);

    const colon = name.indexOf(':');
    const code = colon < 0 ? name : name.slice(0, colon);
    const modifier = colon < 0 ? undefined : name.slice(colon + 1);
    let paramType: SearchParamType;
    let param: CompiledParam | undefined;
    if (code === '_id') paramType = 'token';
    else if (code === '_lastUpdated') paramType = 'date';
    else if (code === '_list') paramType = 'special';
    else {
      if (UNSUPPORTED_PARAMS.has(code)) ignore(`Search parameter "${code}" is not supported: ignored`);
      param = this.schema.searchParams(type).get(code);
      if (!param) ignore(`Unknown search parameter "${code}" for ${type}: ignored`);
      paramType = param!.type;
      if (paramType === 'special') ignore(`Search parameter "${code}" (special) is not supported: ignored`);
    }
    if (modifier !== undefined) {
      const allowed = MODIFIERS[paramType] ?? [];
      // A resource type as modifier restricts a reference parameter to that target type.
      const typeModifier = paramType === 'reference' && /^[A-Z][A-Za-z]+$/.test(modifier);
      if (!typeModifier && !allowed.includes(modifier) && !(code === '_id' && modifier === 'not')) {
        throw new BadRequest(`Modifier :${modifier} is not valid for ${paramType} parameter "${code}"`);
      }
      // refused whatever the handling: ignored, the parameter would widen the answer (search.html#modifiers: SHALL reject)
      if (UNSUPPORTED_MODIFIERS.has(`${modifier}:${paramType}`)) throw new BadRequest(`This server does not answer modifier :${modifier} on token parameter "${code}"`, 'not-supported');
    }
    if (paramType === 'composite' && modifier === 'missing') {
      // a composite is missing when its first component is
      const first = param!.def.components?.[0];
      const firstCode = first ? this.schema.codeForUrl(first.definition) : undefined;
      if (!firstCode) ignore(`${code}:missing cannot be answered: ignored`);
      return this.clause(type, `${firstCode}:missing`, rawValue, ignore);
    }
    const clause: ParamClause = { kind: 'param', code, type: paramType, modifier, param, values: [] };
    if (paramType === 'composite' && modifier !== 'missing') {
      clause.components = splitOr(rawValue.replace(/\\\$/g, '\u0000')).map((v) => this.compositeComponents(type, code, param!, v.replace(/\u0000/g, '\\$'), ignore));
      clause.values = clause.components.map(() => ({ prefix: 'eq', value: '' }));
      return clause;
    }
    clause.values = splitOr(rawValue).map((v) => prefixed(paramType, v));
    for (const v of clause.values) checkValue(code, paramType, modifier, v);
    return clause;
  }

  private compositeComponents(type: string, code: string, param: CompiledParam, value: string, ignore: (d: string) => never): ParamClause[] {
    const components = param.def.components ?? [];
    const parts = splitComposite(value);
    if (parts.length !== components.length) {
      throw new BadRequest(`Composite parameter ${code} takes ${components.length} values separated by $, got "${value}"`);
    }
    return components.map((c, i) => {
      const componentCode = this.schema.codeForUrl(c.definition) ?? c.definition.split('/').pop()!.replace(new RegExp(`^${type}-`), '');
      const clause = this.clause(type, componentCode, parts[i], ignore);
      if (clause.kind !== 'param') throw new BadRequest(`Composite parameter ${code}: unsupported component ${componentCode}`);
      return clause;
    });
  }

  /** Counts one more chain or _has sub-query against the limit. */
  private subquery(name: string): void {
    if (++this.subqueries > this.limits.maxChainTargets) {
      throw new SearchTooCostly(
        `"${name}" expands into more than ${this.limits.maxChainTargets} sub-queries, one per possible target type of each chain link (SEARCH_MAX_CHAIN_TARGETS): name the target type (e.g. subject:Patient.name)`,
      );
    }
  }

  private chainClause(type: string, head: string, rest: string, rawValue: string, ignore: (d: string) => never, depth: Depth): ChainClause {
    if (depth.chain + 1 > this.limits.maxChainDepth) {
      throw new SearchTooCostly(`The chain "${head}.${rest}" goes deeper than ${this.limits.maxChainDepth} links (SEARCH_MAX_CHAIN_DEPTH)`);
    }
    const inner: Depth = { ...depth, chain: depth.chain + 1 };
    const colon = head.indexOf(':');
    const code = colon < 0 ? head : head.slice(0, colon);
    const typeModifier = colon < 0 ? undefined : head.slice(colon + 1);
    const param = this.schema.searchParams(type).get(code);
    if (!param) ignore(`Unknown search parameter "${code}" for ${type} in chain "${head}.${rest}": ignored`);
    if (param!.type !== 'reference') throw new BadRequest(`Chaining needs a reference parameter: "${code}" of ${type} is a ${param!.type}`);
    const candidates = typeModifier ? [typeModifier] : (param!.def.target ?? []);
    const targets: ChainClause['targets'] = [];
    // a target type without the next parameter adds nothing: it is not counted as a sub-query
    const next = rest.startsWith('_has:') ? '_has' : rest.split(/[.:]/)[0];
    let lastError: unknown;
    for (const target of candidates) {
      if (!this.schema.isSupported(target)) continue;
      if (!next.startsWith('_') && !this.schema.searchParams(target).has(next)) continue;
      this.subquery(`${head}.${rest}`);
      try {
        targets.push({ type: target, clause: this.clause(target, rest, rawValue, () => { throw new Ignored(); }, inner) });
      } catch (e) {
        if (e instanceof SearchTooCostly) throw e;
        if (!(e instanceof Ignored)) lastError = e;
      }
    }
    if (targets.length === 0) {
      if (lastError) throw lastError;
      ignore(`Chained parameter "${head}.${rest}": no target type of ${type}.${code} has a parameter "${rest.split(/[.:]/)[0]}"`);
    }
    return { kind: 'chain', code, targets };
  }

  private hasClause(type: string, name: string, rawValue: string, ignore: (d: string) => never, depth: Depth): HasClause {
    if (depth.has + 1 > this.limits.maxHasDepth) {
      throw new SearchTooCostly(`"${name}" nests _has deeper than ${this.limits.maxHasDepth} levels (SEARCH_MAX_HAS_DEPTH)`);
    }
    // _has:Type:refParam:rest, where rest may itself be _has:…
    const m = /^_has:([A-Z][A-Za-z]+):([^:]+):(.+)$/.exec(name);
    if (!m) throw new BadRequest(`_has must be _has:Type:reference-parameter:parameter, got "${name}"`);
    const [, source, refParam, rest] = m;
    if (!this.schema.isSupported(source)) ignore(`_has: unknown resource type "${source}"`);
    const ref = this.schema.searchParams(source).get(refParam);
    if (!ref || ref.type !== 'reference') throw new BadRequest(`_has: "${refParam}" is not a reference parameter of ${source}`);
    if (ref.def.target && !ref.def.target.includes(type)) throw new BadRequest(`_has: ${source}.${refParam} cannot reference a ${type}`);
    this.subquery(name);
    return { kind: 'has', type: source, refParam, clause: this.clause(source, rest, rawValue, ignore, { ...depth, has: depth.has + 1 }) };
  }
}

/** Parses a search query (name/value pairs, repeated names allowed) for one resource type. */
export function parseSearch(resourceType: string, pairs: [string, string][], schema: SearchSchema, options: ParseOptions): ParsedSearch {
  return new SearchParser(schema, options).parse(resourceType, pairs);
}
