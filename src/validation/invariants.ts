/**
 * Invariants (ElementDefinition.constraint): FHIRPath expressions compiled once
 * (per expression and base path) with FHIRPath.js and the R4 model, plus native
 * implementations of the hot core ones (ele-1, ext-1, dom-2..6, ref-1, txt-1/2)
 * that are evaluated at every element and would otherwise dominate the cost.
 *
 * Some constraints cannot be evaluated faithfully by FHIRPath.js outside the
 * reference validator; they are skipped deliberately (SKIPPED below, with the
 * reason) rather than producing false errors. Any evaluation exception also
 * skips the constraint.
 *
 * matches(), matchesFull() and replaceMatches() run on RE2 (fhirpathRegex.ts): an uploaded
 * profile's constraint is evaluated on every resource that claims it, and is loaded again
 * at every start, so its patterns must not be able to backtrack without end.
 */
import { regexFunctions } from './fhirpathRegex';
import { MembershipCheck, terminologyFunctions, withMembership } from './fhirpathTerminology';
import type { Constraint } from './model';

const FUNCTIONS = { ...regexFunctions, ...terminologyFunctions };

// FHIRPath.js (and its UCUM tables) take ~100 ms to load: only when a non-native invariant is met
let fhirpathLib: { fhirpath: any; r4Model: any } | undefined;
function fp(): { fhirpath: any; r4Model: any } {
  if (!fhirpathLib) {
    fhirpathLib = {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      fhirpath: require('fhirpath'),
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      r4Model: require('fhirpath/fhir-context/r4'),
    };
  }
  return fhirpathLib;
}

const noTrace = (): void => undefined;
const NATIVE_SLOT = Symbol('native');

export interface InvariantEnv {
  resource: any;
  rootResource: any;
  /** decides memberOf(); without it memberOf() is empty (undecided) */
  memberOf?: MembershipCheck;
}

/** One evaluation, with %resource and %rootResource, and memberOf() decided by the env's terminology. */
function run(fn: (data: any, vars: any) => any[], data: any, env: InvariantEnv): any[] {
  return withMembership(env.memberOf, () => fn(data, { resource: env.resource, rootResource: env.rootResource ?? env.resource }));
}

type Native = (value: any, ext: any, env: InvariantEnv) => boolean;

function hasAnyChild(obj: any): boolean {
  if (obj === null || typeof obj !== 'object') return false;
  for (const k in obj) {
    if (k === 'id' || k === 'resourceType') continue;
    const v = obj[k];
    if (v === undefined || v === null) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    return true;
  }
  return false;
}

const ele1: Native = (value, ext) => {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return hasAnyChild(value);
  // an empty string is not a value (the HL7 validator reports ele-1 for "")
  if (value !== undefined && value !== null && value !== '') return true;
  return hasAnyChild(ext);
};

const ext1: Native = (value) => {
  if (!value || typeof value !== 'object') return true;
  const hasExt = Array.isArray(value.extension) && value.extension.length > 0;
  let hasValue = false;
  for (const k in value) {
    const name = k.startsWith('_') ? k.slice(1) : k;
    if (name.length > 5 && name.startsWith('value') && name[5] >= 'A' && name[5] <= 'Z') {
      hasValue = true;
      break;
    }
  }
  return hasExt !== hasValue;
};

const containedList = (v: any): any[] => (Array.isArray(v?.contained) ? v.contained : []);

/** every string found anywhere in a JSON value */
function collectStrings(v: any, out: Set<string>): void {
  if (typeof v === 'string') out.add(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (v && typeof v === 'object') for (const k in v) collectStrings(v[k], out);
}

const dom3: Native = (value, _ext, env) => {
  const list = containedList(value);
  if (!list.length) return true;
  const strings = new Set<string>();
  collectStrings(env.resource ?? value, strings);
  for (const c of list) {
    if (!c || typeof c !== 'object') continue;
    const id = c.id;
    if (typeof id === 'string' && strings.has('#' + id)) continue;
    // a contained resource that refers to its container ('#') is fine
    const inner = new Set<string>();
    collectStrings(c, inner);
    if (inner.has('#')) continue;
    return false;
  }
  return true;
};

const DATE_TIME = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2}))?)?)?$/;

/**
 * per-1, `start <= end`, compared as FHIRPath compares dates and dateTimes: two values with a
 * time are instants (their timezones applied); otherwise year, month and day are compared in
 * turn, and when they are equal as far as the less precise value goes (2023-06-21 against
 * 2023-06-21T06:20:00Z, or 2023-06 against 2023-06-15) the comparison is empty. The reference
 * validator counts an invariant that evaluates to empty as not satisfied, so such a period
 * fails per-1 (a value that is not a date is left to the format checks).
 */
function periodOk(v: any): boolean {
  if (!v || typeof v !== 'object' || typeof v.start !== 'string' || typeof v.end !== 'string') return true;
  const a = DATE_TIME.exec(v.start);
  const b = DATE_TIME.exec(v.end);
  if (!a || !b) return true;
  if (a[4] !== undefined && b[4] !== undefined) {
    const s = Date.parse(v.start);
    const e = Date.parse(v.end);
    return Number.isNaN(s) || Number.isNaN(e) || s <= e;
  }
  for (const i of [1, 2, 3]) {
    if (a[i] === undefined || b[i] === undefined) return a[i] === undefined && b[i] === undefined && a[4] === undefined && b[4] === undefined;
    if (a[i] !== b[i]) return +a[i] < +b[i];
  }
  // the same day: equal, unless one of them has a time (not decidable)
  return a[4] === undefined && b[4] === undefined;
}

const NATIVE_BY_KEY: Record<string, { expr?: string; startsWith?: string; fn: Native }> = {
  'ele-1': { expr: 'hasValue() or (children().count() > id.count())', fn: ele1 },
  'ext-1': { expr: 'extension.exists() != value.exists()', fn: ext1 },
  'dom-2': { expr: 'contained.contained.empty()', fn: (v) => !containedList(v).some((c) => containedList(c).length > 0) },
  'dom-3': { startsWith: 'contained.where(', fn: dom3 },
  'dom-4': {
    expr: 'contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()',
    fn: (v) => !containedList(v).some((c) => c?.meta?.versionId !== undefined || c?.meta?.lastUpdated !== undefined),
  },
  'dom-5': { expr: 'contained.meta.security.empty()', fn: (v) => !containedList(v).some((c) => c?.meta?.security?.length) },
  'dom-6': { expr: 'text.`div`.exists()', fn: (v) => v?.text?.div !== undefined },
  'ref-1': {
    expr: "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
    fn: (v, _e, env) => {
      const r = v?.reference;
      if (typeof r !== 'string' || !r.startsWith('#')) return true;
      // '#' alone is a reference to the container resource (the R4 expression wrongly rejects it)
      if (r === '#') return true;
      return containedList(env.rootResource).some((c) => c?.id === r.slice(1));
    },
  },
  'per-1': { expr: 'start.hasValue().not() or end.hasValue().not() or (start <= end)', fn: (v) => periodOk(v) },
  'cpt-2': { expr: 'value.empty() or system.exists()', fn: (v) => v?.value === undefined || v?.system !== undefined || v?._system !== undefined },
  'att-1': { expr: 'data.empty() or contentType.exists()', fn: (v) => (v?.data === undefined && v?._data === undefined) || v?.contentType !== undefined || v?._contentType !== undefined },
  'qty-3': { expr: 'code.empty() or system.exists()', fn: (v) => (v?.code === undefined && v?._code === undefined) || v?.system !== undefined || v?._system !== undefined },
  // R4 published "> 2" where its own text says "more than one" (corrected by the erratum, as the reference validator checks it)
  'que-12': {
    expr: 'enableWhen.count() > 2 implies enableBehavior.exists()',
    fn: (v) => !(Array.isArray(v?.enableWhen) && v.enableWhen.length > 1) || v?.enableBehavior !== undefined || v?._enableBehavior !== undefined,
  },
  // txt-1 / txt-2 use htmlChecks(): the narrative is checked by the xhtml checker
  // (see xhtml.ts), which reports txt-1 / txt-2 failures itself.
  'txt-1': { expr: 'htmlChecks()', fn: () => true },
  'txt-2': { expr: 'htmlChecks()', fn: () => true },
};

/**
 * Constraints deliberately not evaluated, with the reason. Matched on the
 * expression text (or key+expression).
 */
export const SKIPPED: { test: (c: Constraint) => boolean; reason: string }[] = [
  {
    test: (c) => /htmlChecks\(\)/.test(c.expression ?? ''),
    reason: 'htmlChecks() is not available in FHIRPath.js; narratives are checked by the native xhtml checker instead',
  },
  { test: (c) => /conformsTo\(/.test(c.expression ?? ''), reason: 'conformsTo() needs the validator itself (not in FHIRPath.js)' },
  {
    test: (c) => /resolve\(\)/.test(c.expression ?? ''),
    reason: 'resolve() cannot follow references here (FHIRPath.js would need a FHIR server); evaluating it yields false failures',
  },
  {
    test: (c) => /\bcheckModifiers\(|\bslice\(|\bgetValue\(|\bhtmlChecks\b|\bcomparable\(|\bhasTemplateIdOf\(/.test(c.expression ?? ''),
    reason: 'HL7 validator-specific FHIRPath extension functions, not in FHIRPath.js',
  },
];

export interface InvariantOutcome {
  ok: boolean;
  /** set when the constraint was skipped */
  skipped?: string;
}

export class Invariants {
  private compiled = new Map<string, ((data: any, env: any) => any[]) | null>();
  /** expressions evaluated to FHIRPath.js's nodes (the data they came from kept), by base and expression */
  private selectors = new Map<string, ((data: any, env: any) => any[]) | null>();

  /**
   * The nodes an expression selects from `data` (each with `data`, and `_data` for a primitive's
   * extensions: the objects of the resource they were found at), or undefined when it cannot be
   * evaluated here.
   */
  select(expression: string, data: any, base: string | undefined, env: InvariantEnv): any[] | undefined {
    const key = (base ?? '') + '\u0000' + expression;
    let fn = this.selectors.get(key);
    if (fn === undefined) {
      try {
        const { fhirpath, r4Model } = fp();
        const path = base ? { base, expression } : expression;
        fn = fhirpath.compile(path, r4Model, { traceFn: noTrace, userInvocationTable: FUNCTIONS, resolveInternalTypes: false }) as (data: any, env: any) => any[];
      } catch {
        fn = null;
      }
      this.selectors.set(key, fn);
    }
    if (!fn) return undefined;
    try {
      const res = run(fn, data, env);
      return Array.isArray(res) ? res : undefined;
    } catch {
      return undefined;
    }
  }

  /** A rule's verdict on `data`: true or false when it gives a single boolean, undefined otherwise. */
  holds(expression: string, data: any, base: string | undefined, env: InvariantEnv): boolean | undefined {
    const res = this.select(expression, data, base, env);
    if (!res || res.length !== 1) return undefined;
    const b = res[0]?.data ?? res[0];
    return typeof b === 'boolean' ? b : undefined;
  }
  private skipCache = new Map<string, string | null>();
  private natives = new Map<string, Native | null>();

  private nativeFor(c: Constraint): Native | undefined {
    const cached = (c as any)[NATIVE_SLOT] as Native | null | undefined;
    if (cached !== undefined) return cached ?? undefined;
    const k = c.key + '\u0000' + (c.expression ?? '');
    let n = this.natives.get(k);
    if (n === undefined) {
      const def = NATIVE_BY_KEY[c.key];
      n = null;
      if (def && c.expression) {
        if (def.expr !== undefined && def.expr === c.expression) n = def.fn;
        if (def.startsWith !== undefined && c.expression.startsWith(def.startsWith)) n = def.fn;
      }
      this.natives.set(k, n);
    }
    (c as any)[NATIVE_SLOT] = n;
    return n ?? undefined;
  }

  private skipReason(c: Constraint): string | undefined {
    const k = c.expression ?? '';
    let r = this.skipCache.get(k);
    if (r === undefined) {
      r = SKIPPED.find((s) => s.test(c))?.reason ?? null;
      this.skipCache.set(k, r);
    }
    return r ?? undefined;
  }

  /**
   * Evaluate a constraint on one element instance.
   * @param value the element's JSON value (object, or primitive value)
   * @param ext for primitives, the `_element` part
   * @param base the element's path for FHIRPath typing (e.g. `Patient.contact`, `HumanName`)
   */
  evaluate(c: Constraint, value: any, ext: any, base: string, env: InvariantEnv): InvariantOutcome {
    const native = this.nativeFor(c);
    if (native) return { ok: native(value, ext, env) };
    if (!c.expression) return { ok: true, skipped: 'no expression' };
    const skip = this.skipReason(c);
    if (skip) return { ok: true, skipped: skip };
    const key = base + '\u0000' + c.expression;
    let fn = this.compiled.get(key);
    if (fn === undefined) {
      try {
        const { fhirpath, r4Model } = fp();
        fn = fhirpath.compile({ base, expression: c.expression }, r4Model, { traceFn: noTrace, userInvocationTable: FUNCTIONS }) as (data: any, env: any) => any[];
      } catch {
        fn = null;
      }
      this.compiled.set(key, fn);
    }
    if (!fn) return { ok: true, skipped: 'expression does not compile in FHIRPath.js' };
    let data = value;
    if (value === undefined || value === null) {
      // a primitive with only extensions: evaluate on its element part
      data = ext ?? {};
    }
    try {
      const res = run(fn, data, env);
      if (Array.isArray(res) && res.length === 1 && res[0] === false) return { ok: false };
      return { ok: true };
    } catch (e) {
      return { ok: true, skipped: `evaluation error: ${(e as Error).message}` };
    }
  }
}
