import { BadRequest, Issue } from '../http/errors';
import type { CompiledParam, SearchParamType } from './searchParameters';
import { dateRange } from './dateRange';

export type Prefix = 'eq' | 'ne' | 'gt' | 'lt' | 'ge' | 'le' | 'sa' | 'eb' | 'ap';
const PREFIXES: Prefix[] = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];

export interface SearchValue {
  prefix: Prefix;
  /** The value with any prefix removed, unescaped. */
  value: string;
}

/** One query parameter: its values are OR'ed; clauses are AND'ed. */
export interface SearchClause {
  code: string;
  type: SearchParamType;
  modifier?: string;
  /** The indexed parameter; undefined for _id and _lastUpdated, answered from the resource table. */
  param?: CompiledParam;
  values: SearchValue[];
  /** The name=value pair as received, for the self link. */
  raw: [string, string];
}

export interface SortKey {
  code: string;
  type: SearchParamType;
  descending: boolean;
}

export interface ParsedSearch {
  resourceType: string;
  clauses: SearchClause[];
  sort: SortKey[];
  count: number;
  total: 'none' | 'estimate' | 'accurate' | undefined;
  summary: 'true' | 'false' | 'text' | 'data' | 'count' | undefined;
  elements: string[] | undefined;
  /** Opaque page token of a next/previous link. */
  pageToken: string | undefined;
  /** Warnings for parameters ignored under lenient handling. */
  warnings: Issue[];
  /** Result parameters as received, for the self link. */
  resultRaw: [string, string][];
}

export interface ParseOptions {
  strict: boolean;
  defaultCount: number;
  maxCount: number;
}

const MODIFIERS: Record<string, string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'missing', 'of-type', 'in', 'not-in', 'above', 'below'],
  reference: ['identifier', 'missing'],
  date: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['above', 'below', 'missing'],
};
/** Modifiers accepted by the parser but answered by the next engine iteration. */
const UNSUPPORTED_MODIFIERS = new Set(['of-type', 'in', 'not-in', 'above:token', 'below:token']);

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

function prefixed(type: SearchParamType, raw: string): SearchValue {
  if ((type === 'date' || type === 'number' || type === 'quantity') && /^[a-z]{2}/.test(raw)) {
    const p = raw.slice(0, 2) as Prefix;
    if (PREFIXES.includes(p)) return { prefix: p, value: raw.slice(2) };
  }
  return { prefix: 'eq', value: raw };
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

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

/**
 * Parses a search query (name/value pairs, repeated names allowed) against the
 * registry's parameters for one resource type.
 */
export function parseSearch(
  resourceType: string,
  pairs: [string, string][],
  params: Map<string, CompiledParam>,
  options: ParseOptions,
): ParsedSearch {
  const parsed: ParsedSearch = {
    resourceType,
    clauses: [],
    sort: [],
    count: options.defaultCount,
    total: undefined,
    summary: undefined,
    elements: undefined,
    pageToken: undefined,
    warnings: [],
    resultRaw: [],
  };
  const ignore = (diagnostics: string) => {
    if (options.strict) throw new BadRequest(diagnostics, 'not-supported');
    parsed.warnings.push({ severity: 'warning', code: 'not-supported', diagnostics });
  };

  for (const [name, rawValue] of pairs) {
    switch (name) {
      case '_count': {
        if (!/^\d+$/.test(rawValue)) throw new BadRequest(`_count must be a non-negative integer, got "${rawValue}"`);
        parsed.count = Math.min(Number(rawValue), options.maxCount);
        parsed.resultRaw.push([name, String(parsed.count)]);
        continue;
      }
      case '_total':
        if (!['none', 'estimate', 'accurate'].includes(rawValue)) throw new BadRequest(`_total must be none, estimate or accurate, got "${rawValue}"`);
        parsed.total = rawValue as ParsedSearch['total'];
        parsed.resultRaw.push([name, rawValue]);
        continue;
      case '_summary':
        if (!['true', 'false', 'text', 'data', 'count'].includes(rawValue)) throw new BadRequest(`_summary must be true, false, text, data or count, got "${rawValue}"`);
        parsed.summary = rawValue as ParsedSearch['summary'];
        parsed.resultRaw.push([name, rawValue]);
        continue;
      case '_elements':
        parsed.elements = rawValue.split(',').map((s) => s.trim()).filter(Boolean);
        parsed.resultRaw.push([name, rawValue]);
        continue;
      case '_page':
        parsed.pageToken = rawValue;
        continue;
      case '_format':
      case '_pretty':
        continue;
      case '_sort': {
        for (const key of rawValue.split(',').map((s) => s.trim()).filter(Boolean)) {
          const descending = key.startsWith('-');
          const code = descending ? key.slice(1) : key;
          const type = code === '_id' ? 'token' : code === '_lastUpdated' ? 'date' : params.get(code)?.type;
          if (!type || !['date', 'string', 'token', 'number', 'quantity', 'uri', 'reference'].includes(type)) {
            ignore(`Unknown sort parameter "${code}" for ${resourceType}: ignored`);
            continue;
          }
          parsed.sort.push({ code, type, descending });
        }
        if (parsed.sort.length) parsed.resultRaw.push([name, parsed.sort.map((s) => (s.descending ? '-' : '') + s.code).join(',')]);
        continue;
      }
    }

    const colon = name.indexOf(':');
    const code = colon < 0 ? name : name.slice(0, colon);
    const modifier = colon < 0 ? undefined : name.slice(colon + 1);
    let type: SearchParamType;
    let param: CompiledParam | undefined;
    if (code === '_id') type = 'token';
    else if (code === '_lastUpdated') type = 'date';
    else {
      param = params.get(code);
      if (!param) {
        ignore(`Unknown search parameter "${code}" for ${resourceType}: ignored`);
        continue;
      }
      type = param.type;
    }
    if (modifier !== undefined) {
      const allowed = MODIFIERS[type] ?? [];
      // A resource type as modifier restricts a reference parameter to that target type.
      const typeModifier = type === 'reference' && /^[A-Z][A-Za-z]+$/.test(modifier);
      if (!typeModifier && !allowed.includes(modifier)) {
        throw new BadRequest(`Modifier :${modifier} is not valid for ${type} parameter "${code}"`);
      }
      if (UNSUPPORTED_MODIFIERS.has(modifier) || UNSUPPORTED_MODIFIERS.has(`${modifier}:${type}`)) {
        ignore(`Modifier :${modifier} on "${code}" is not supported: parameter ignored`);
        continue;
      }
    }
    if (rawValue === '') continue; // an empty value is no constraint
    const values = splitOr(rawValue).map((v) => prefixed(type, v));
    for (const v of values) checkValue(code, type, modifier, v);
    parsed.clauses.push({ code, type, modifier, param, values, raw: [name, rawValue] });
  }
  return parsed;
}
