/**
 * The validation engine: walks a resource against the compiled base
 * StructureDefinition of its type ("structural" walk: unknown properties, JSON
 * shapes, primitive formats, cardinality, types, bindings, invariants,
 * references, extensions, contained / entry resources) and then against each
 * applicable profile (only what the profile adds: its cardinalities, slicing,
 * fixed / pattern values, bindings, type profiles and its own invariants).
 */
import { createHash } from 'crypto';
import { defaultProfilesOf, EMPTY_PROFILE_MAP, ProfileMap } from './profileMap';
import type { Issue } from '../errors';
import { Invariants, InvariantEnv } from './invariants';
import { CompiledStructure, Constraint, ElementNode, resolveContentReference } from './model';
import { Comparison, compareWithLimit, OrderedKind } from './ordering';
import { checkPrimitive, decodeBase64, PRIMITIVES } from './primitives';
import { ConformanceStore, ConformanceType, CORE_SD } from './store';
import { identifierIssues } from './identifierRules';
import { searchsetIssues } from './searchsetRules';
import { documentIssues } from './documentRules';
import { checkXhtml } from './xhtml';
import { referenceTarget } from '../referenceString';

interface Item {
  value: any;
  ext: any;
  type: string;
  index?: number;
  key: string;
}

interface BundleCtx {
  /** the entries' resources by fullUrl: several when versions of one resource are carried */
  byFullUrl: Map<string, any[]>;
  /** the same resources in one list, for the domain checks (DomainContext) */
  resources: any[];
  type?: string;
}

/** Where an element sits, for extension contexts and FHIRPath typing. */
interface Loc {
  /** path in the resource definition, e.g. Patient.contact.name */
  defPath: string;
  /** path relative to the nearest datatype / resource, e.g. HumanName.given, for FHIRPath typing */
  fpPath: string;
  /** the element's own path as seen from its parent's FHIRPath base (e.g. Address.line, Patient.contact) */
  elemPath: string;
  type: string;
  isResource: boolean;
  /** url of the extension this element belongs to (for extension contexts of type 'extension') */
  extUrl?: string;
  /** the element's ElementDefinition.base.path (Patient.text: DomainResource.text), for extension contexts */
  basePath?: string;
  /** the JSON object holding the element's extensions (a primitive's `_name` part), for fhirpath contexts */
  obj?: any;
}

interface Walk {
  issues: Issue[];
  resource: any;
  rootResource: any;
  structural: boolean;
  structure: CompiledStructure;
  bundle?: BundleCtx;
  /** quiet walks (slice matching by profile) only need to know about errors */
  quiet?: boolean;
  depth: number;
  /** an extension whose definition is not known is an error, as in the HL7 validator (decision 023) */
  strictExtensions?: boolean;
}

const ABS_URL = /^(https?:|urn:)/;
const QUANTITY_PROFILES = new Set(['Age', 'Count', 'Distance', 'Duration', 'MoneyQuantity', 'SimpleQuantity']);

function cap(s: string): string {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v} ('${String(v)}')`;
}

function deepEqual(a: any, b: any): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (typeof a === 'object') {
    if (Array.isArray(b)) return false;
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** pattern semantics: every element of the pattern must be found in the instance */
function patternMatches(instance: any, pattern: any): boolean {
  if (pattern === null || typeof pattern !== 'object') return instance === pattern;
  if (Array.isArray(pattern)) {
    if (!Array.isArray(instance)) return pattern.length === 1 && patternMatches(instance, pattern[0]);
    return pattern.every((p) => instance.some((i: any) => patternMatches(i, p)));
  }
  if (instance === null || typeof instance !== 'object' || Array.isArray(instance)) return false;
  for (const k of Object.keys(pattern)) {
    if (!(k in instance)) return false;
    if (!patternMatches(instance[k], pattern[k])) return false;
  }
  return true;
}

function describe(v: any): string {
  if (v === null || typeof v !== 'object') return String(v);
  return JSON.stringify(v);
}

function splitPath(p: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of p) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === '.' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/** What a domain check may look at besides the resource: the other resources of the Bundle it is in. */
export interface DomainContext {
  bundleResources: any[];
  /**
   * A conformance verdict ($validate, decision 023) rather than a write: a rule the HL7
   * validator holds but the specification states without a SHALL says so as an error in a
   * verdict and as a warning on a write.
   */
  verdict?: boolean;
}

export interface DomainCheck {
  name: string;
  appliesTo(resource: any): boolean;
  check(resource: any, context?: DomainContext): Issue[];
}

/**
 * Errors of the base structural walk that make the JSON not a well-formed FHIR resource
 * (unknown property, array where one value goes, a primitive of the wrong JSON type or
 * format): "could not be parsed or failed basic FHIR validation rules", which the REST API
 * answers with 400 rather than the 422 of a rule or profile violation.
 */
const PARSE_ERRORS = new WeakSet<Issue>();

export function isParseError(issue: Issue): boolean {
  return PARSE_ERRORS.has(issue);
}

/** An extension that represents an element of another FHIR version: http://hl7.org/fhir/[version]/StructureDefinition/extension-[path]. */
const CROSS_VERSION_EXTENSION = /^http:\/\/hl7\.org\/fhir\/(1\.0|1\.4|3\.0|4\.3|5\.0)\/StructureDefinition\/extension-([A-Z][A-Za-z]*(?:\.[a-z][A-Za-z0-9]*(?:\[x\])?)+)$/;

export class Engine {
  readonly invariants = new Invariants();
  readonly domainChecks: DomainCheck[] = [];
  /** while matching an item against slices: why profile-based slices did not match */
  private sliceNotes?: string[];

  /** Default profiles and official profiles ours implement (profiles/profile-map.json). */
  profileMap: ProfileMap = EMPTY_PROFILE_MAP;

  constructor(readonly store: ConformanceStore) {}

  // ------------------------------------------------------------------ resources

  validateResource(
    res: any,
    path: string,
    issues: Issue[],
    opts: { container?: any; bundle?: BundleCtx; requested?: string[]; top?: boolean; depth?: number; strictExtensions?: boolean } = {},
  ): void {
    const depth = opts.depth ?? 0;
    if (depth > 50) return;
    const parseError = (diagnostics: string) => {
      const issue = err('structure', diagnostics, path);
      PARSE_ERRORS.add(issue);
      issues.push(issue);
    };
    if (res === null || typeof res !== 'object' || Array.isArray(res)) return parseError(`The resource must be a JSON object, not ${jsonKind(res)}`);
    const rt = res.resourceType;
    if (typeof rt !== 'string') return parseError('Unable to find resourceType property');
    if (!this.store.isResourceType(rt)) return parseError(`This does not appear to be a FHIR resource (unknown name '${rt}')`);
    const base = this.store.typeStructure(rt);
    if (!base) {
      issues.push(err('not-supported', `No definition found for resource type '${rt}'`, path));
      return;
    }
    if (opts.top) path = rt;
    let bundle = opts.bundle;
    if (rt === 'Bundle') bundle = this.bundleContext(res);
    const W: Walk = {
      issues,
      resource: res,
      rootResource: opts.container ?? res,
      structural: true,
      structure: base,
      bundle,
      depth,
      strictExtensions: opts.strictExtensions,
    };
    this.walkRoot(res, base, path, W);
    if (rt === 'Bundle') this.bundleChecks(res, path, issues, !!opts.strictExtensions);

    // profiles: meta.profile (unknown = warning) and requested ones (unknown = error)
    const profiles: { url: string; requested: boolean; expr: string }[] = [];
    // requested profiles first: one also claimed in meta.profile is still required to be known
    for (const p of opts.requested ?? []) profiles.push({ url: p, requested: true, expr: path });
    // our profiles apply to the resource sent, whether it claims them or not (not to what it contains)
    if (opts.top) for (const p of defaultProfilesOf(this.profileMap, res)) profiles.push({ url: p, requested: true, expr: path });
    const metaProfiles = res.meta?.profile;
    if (Array.isArray(metaProfiles)) {
      metaProfiles.forEach((p: any, i: number) => {
        if (typeof p === 'string') profiles.push({ url: p, requested: false, expr: `${path}.meta.profile[${i}]` });
      });
    }
    const done = new Set<string>();
    for (const claimed of profiles) {
      let p = claimed;
      // an official profile one of ours implements is checked against ours, and the outcome says so
      const ours = this.profileMap.implements[claimed.url];
      if (ours && !this.store.structure(claimed.url)) {
        issues.push({
          severity: 'information',
          code: 'informational',
          diagnostics: `Profile '${claimed.url}' is checked against ${ours}, this server's profile that implements it`,
          expression: [claimed.expr],
        });
        p = { ...claimed, url: ours };
      }
      if (done.has(p.url)) continue;
      done.add(p.url);
      const st = this.store.structure(p.url);
      if (!st && !p.requested && this.profileMap.notImplemented.includes(p.url)) {
        issues.push({
          severity: 'warning',
          code: 'not-supported',
          diagnostics: `Profile '${p.url}' is an official profile that this server does not implement: the resource has not been checked against it`,
          expression: [p.expr],
        });
        continue;
      }
      if (!st) {
        if (p.requested) {
          issues.push(err('not-supported', `Profile '${p.url}' is not known to this server, so the resource cannot be validated against it`, p.expr));
        } else {
          issues.push({
            severity: 'warning',
            code: 'not-supported',
            diagnostics: `Profile reference '${p.url}' has not been checked because it is unknown`,
            expression: [p.expr],
          });
        }
        continue;
      }
      if (st.url === base.url) continue;
      if (st.type !== rt) {
        issues.push(err('invalid', `Profile '${p.url}' is for resources of type ${st.type}, not ${rt}`, p.expr));
        continue;
      }
      this.walkRoot(res, st, path, { ...W, structural: false, structure: st });
    }
    if (this.domainChecks.length) this.runDomainChecks(res, path, issues, bundle, opts.strictExtensions);
  }

  private runDomainChecks(res: any, path: string, issues: Issue[], bundle?: BundleCtx, verdict?: boolean): void {
    const context: DomainContext = { bundleResources: bundle?.resources ?? [], ...(verdict ? { verdict } : {}) };
    for (const dc of this.domainChecks) {
      let found: Issue[];
      try {
        if (!dc.appliesTo(res)) continue;
        found = dc.check(res, context) ?? [];
      } catch (e) {
        issues.push({ severity: 'error', code: 'exception', diagnostics: `Domain check ${dc.name} failed: ${(e as Error).message}`, expression: [path] });
        continue;
      }
      const rt = res.resourceType;
      for (const i of found) {
        const expression = i.expression?.map((x) => (path !== rt && (x === rt || x.startsWith(rt + '.') || x.startsWith(rt + '[')) ? path + x.slice(rt.length) : x));
        issues.push({ ...i, ...(expression ? { expression } : {}) });
      }
    }
  }

  private bundleContext(bundle: any): BundleCtx {
    const byFullUrl = new Map<string, any[]>();
    if (Array.isArray(bundle.entry)) {
      for (const e of bundle.entry) {
        if (!e || typeof e.fullUrl !== 'string' || !e.resource || typeof e.resource !== 'object') continue;
        byFullUrl.set(e.fullUrl, [...(byFullUrl.get(e.fullUrl) ?? []), e.resource]);
      }
    }
    return { byFullUrl, resources: [...byFullUrl.values()].flat(), type: typeof bundle.type === 'string' ? bundle.type : undefined };
  }

  /** `verdict`: a conformance verdict rather than a write (DomainContext.verdict). */
  private bundleChecks(bundle: any, path: string, issues: Issue[], verdict: boolean): void {
    if (Array.isArray(bundle.link)) {
      // a relation names one link of the Bundle (self, next …): twice, a reader cannot tell which is meant
      const seen = new Set<string>();
      bundle.link.forEach((l: any, i: number) => {
        if (typeof l?.relation !== 'string') return;
        if (seen.has(l.relation)) issues.push(err('invalid', `The link relation '${l.relation}' appears more than once in the Bundle`, `${path}.link[${i}]`));
        seen.add(l.relation);
      });
    }
    issues.push(...searchsetIssues(bundle, path, (name) => this.store.isResourceType(name)));
    issues.push(...documentIssues(bundle, path, verdict));
    if (!Array.isArray(bundle.entry)) return;
    const type = bundle.type;
    bundle.entry.forEach((e: any, i: number) => {
      if (!e || typeof e !== 'object') return;
      const ep = `${path}.entry[${i}]`;
      // the identity of an entry is absolute: a relative fullUrl has no base to resolve against
      if (typeof e.fullUrl === 'string' && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(e.fullUrl)) {
        issues.push(err('invalid', `The fullUrl must be an absolute URL (not '${e.fullUrl}')`, `${ep}.fullUrl`));
      }
      if (!e.resource || typeof e.resource !== 'object') return;
      const r = e.resource;
      if (typeof e.fullUrl === 'string') {
        const m = referenceTarget(e.fullUrl);
        if (m && ABS_URL.test(e.fullUrl) && m.resourceType === r.resourceType && typeof r.id === 'string' && m.id !== r.id) {
          issues.push(err('invalid', `Resource ID does not match the ID in the entry full URL ('${r.id}' vs '${e.fullUrl}')`, ep));
        } else if (m && ABS_URL.test(e.fullUrl) && m.resourceType === r.resourceType && r.id === undefined && type !== 'transaction' && type !== 'batch') {
          // R4 Bundle.entry.fullUrl: a fullUrl that looks like a RESTful server URL "SHALL end with the Resource.id";
          // a create in a transaction or batch is given its id by the server
          issues.push(err('invalid', `The fullUrl '${e.fullUrl}' looks like a RESTful server URL, but the resource has no id`, ep));
        }
      } else if (type === 'document' || type === 'message' || type === 'collection' || type === 'searchset') {
        issues.push(err('invalid', 'Except for transactions and batches, each entry in a Bundle must have a fullUrl which is the identity of the resource in the entry', ep));
      }
    });
  }

  // ------------------------------------------------------------------ walking

  private walkRoot(res: any, st: CompiledStructure, path: string, W: Walk): void {
    const rt = res.resourceType;
    const loc: Loc = { defPath: rt, fpPath: rt, elemPath: rt, type: rt, isResource: true, basePath: rt, obj: res };
    this.checkConstraints(st.root.constraints, res, undefined, path, rt, W);
    this.walkChildren(res, st.root.children, path, loc, W, true);
  }

  private walkChildren(obj: any, children: ElementNode[], path: string, loc: Loc, W: Walk, isResource = false, skipValue = false): void {
    const idx = childIndex(children);
    const present = new Set<ElementNode>();
    let unknown: string[] | undefined;
    for (const k in obj) {
      if (obj[k] === undefined) continue;
      if (isResource && k === 'resourceType') continue;
      const name = k.charCodeAt(0) === 95 ? k.slice(1) : k;
      let node = idx.byName.get(name);
      if (!node) {
        for (const c of idx.choices) {
          const prefix = c.choicePrefix!;
          if (name.length > prefix.length && name.startsWith(prefix)) {
            const first = name.charCodeAt(prefix.length);
            if (first >= 65 && first <= 90) {
              node = c;
              break;
            }
          }
        }
      }
      if (node && !(skipValue && node.name === 'value')) present.add(node);
      else if (W.structural) (unknown ??= []).push(k);
    }
    for (const c of children) {
      if (!present.has(c)) {
        if (!idx.mustVisit.has(c) || (skipValue && c.name === 'value')) continue;
        this.checkCardinality(c, 0, path, W);
        if (c.slicing && c.slices.length) this.processSlices([], c, path, loc, W);
        continue;
      }
      const items = this.collect(obj, c, path, W);
      this.checkCardinality(c, items.length, path, W);
      if (c.slicing && c.slices.length) this.processSlices(items, c, path, loc, W);
      for (const item of items) {
        this.validateItem(item, c, this.itemPath(path, c, item), loc, W);
      }
    }
    if (unknown) {
      for (const k of unknown) W.issues.push(shapeError(`Unrecognized property '${k}'`, `${path}.${k}`));
    }
  }

  private itemPath(path: string, c: ElementNode, item: Item): string {
    if (c.choicePrefix) return `${path}.${c.choicePrefix}.ofType(${item.type})`;
    return c.isArray ? `${path}.${c.name}[${item.index ?? 0}]` : `${path}.${c.name}`;
  }

  private collect(obj: any, c: ElementNode, path: string, W: Walk): Item[] {
    const items: Item[] = [];
    if (c.choicePrefix) {
      const prefix = c.choicePrefix;
      const seen = new Map<string, string>();
      for (const k of Object.keys(obj)) {
        const name = k.charCodeAt(0) === 95 ? k.slice(1) : k;
        if (name.length <= prefix.length || !name.startsWith(prefix)) continue;
        const first = name.charCodeAt(prefix.length);
        if (first < 65 || first > 90) continue;
        if (obj[k] === undefined) continue;
        const suffix = name.slice(prefix.length);
        const t = c.types.find((x) => cap(x.code) === suffix);
        if (!t) {
          if (W.structural) {
            W.issues.push(shapeError(`Unrecognized property '${k}'`, `${path}.${k}`));
          } else if (this.store.typeStructure(lcIfPrimitive(suffix))) {
            W.issues.push(
              err('structure', `The type '${lcIfPrimitive(suffix)}' is not allowed at this point by the profile ${W.structure.url} (allowed = ${c.types.map((x) => x.code).join(', ')})`, `${path}.${prefix}.ofType(${lcIfPrimitive(suffix)})`),
            );
          }
          continue;
        }
        seen.set(name, t.code);
      }
      for (const [name, type] of seen) {
        const v = obj[name];
        const e = obj['_' + name];
        if (W.structural && Array.isArray(v)) {
          W.issues.push(err('structure', `The property ${name} must be a single value, not an array`, `${path}.${prefix}.ofType(${type})`));
          continue;
        }
        items.push({ value: v === null ? undefined : v, ext: e === null ? undefined : e, type, key: name });
      }
      return items;
    }
    const name = c.name;
    let v = obj[name];
    let e = obj['_' + name];
    if (v === undefined && e === undefined) return items;
    const type = c.types.length === 1 ? c.types[0].code : c.contentReference ? 'BackboneElement' : c.types[0]?.code ?? 'BackboneElement';
    const ep = `${path}.${name}`;
    if (c.isArray) {
      if (v !== undefined && !Array.isArray(v)) {
        if (W.structural) W.issues.push(shapeError(`The property ${name} must be a JSON Array, not ${jsonKind(v)}`, ep));
        v = [v];
      }
      if (e !== undefined && !Array.isArray(e)) {
        if (W.structural) W.issues.push(shapeError(`The property _${name} must be a JSON Array, not ${jsonKind(e)}`, ep));
        e = [e];
      }
      const va: any[] = v ?? [];
      const ea: any[] = e ?? [];
      if (W.structural && ((v !== undefined && va.length === 0) || (e !== undefined && ea.length === 0))) {
        W.issues.push(shapeError(`Array cannot be empty - the property should not be present if it has no values`, ep));
      }
      if (W.structural && v !== undefined && e !== undefined && va.length !== ea.length) {
        W.issues.push(shapeError(`The arrays ${name} and _${name} must have the same length (${va.length} vs ${ea.length})`, ep));
      }
      const n = Math.max(va.length, ea.length);
      for (let i = 0; i < n; i++) {
        const iv = va[i] ?? undefined;
        const ie = ea[i] ?? undefined;
        if (iv === undefined && ie === undefined) {
          if (W.structural) W.issues.push(shapeError(`Null values are not allowed in arrays unless matched by a value in the _${name} array`, `${ep}[${i}]`));
          continue;
        }
        items.push({ value: iv, ext: ie, type, index: i, key: name });
      }
    } else {
      if (Array.isArray(v)) {
        if (W.structural) W.issues.push(shapeError(`The property ${name} must be a single value, not an array`, ep));
        return items;
      }
      if (Array.isArray(e)) {
        if (W.structural) W.issues.push(shapeError(`The property _${name} must be an object, not an array`, ep));
        e = undefined;
      }
      if (v === null) {
        if (W.structural) W.issues.push(shapeError(`Null values are not allowed (property ${name})`, ep));
        v = undefined;
      }
      if (v === undefined && (e === undefined || e === null)) return items;
      items.push({ value: v, ext: e ?? undefined, type, key: name });
    }
    return items;
  }

  private checkCardinality(c: ElementNode, count: number, path: string, W: Walk, label?: string): void {
    if (!W.structural && !c.sliceName && c.min === c.baseMin && c.maxText === c.baseMaxText) return;
    const id = label ?? c.id;
    if (count < c.min) {
      W.issues.push({
        severity: 'error',
        code: 'required',
        diagnostics: `${id}: minimum required = ${c.min}, but only found ${count} (from ${W.structure.url}${W.structure.version ? '|' + W.structure.version : ''})`,
        expression: [path],
      });
    }
    if (count > c.max) {
      W.issues.push({
        severity: 'error',
        code: 'structure',
        diagnostics: `${id}: max allowed = ${c.maxText}, but found ${count} (from ${W.structure.url}${W.structure.version ? '|' + W.structure.version : ''})`,
        expression: [path],
      });
    }
  }

  // ------------------------------------------------------------------ items

  private validateItem(item: Item, node: ElementNode, path: string, parentLoc: Loc, W: Walk): void {
    const type = item.type;
    const name = node.choicePrefix ? node.choicePrefix + cap(type) : node.name;
    const elementFp = `${parentLoc.fpPath}.${name}`;
    const loc: Loc = {
      defPath: `${parentLoc.defPath}.${node.choicePrefix ? node.choicePrefix : node.name}`,
      fpPath: type === 'BackboneElement' || type === 'Element' ? elementFp : type,
      elemPath: elementFp,
      type,
      isResource: false,
      extUrl: parentLoc.extUrl,
      basePath: node.basePath,
      obj: PRIMITIVES.has(type) ? item.ext : item.value,
    };

    if (PRIMITIVES.has(type)) {
      this.validatePrimitive(item, node, path, loc, W);
      return;
    }
    if (type === 'Resource' || type === 'DomainResource' || this.store.isResourceType(type)) {
      this.validateResourceItem(item, node, path, W);
      return;
    }
    const value = item.value;
    if (value === undefined && item.ext !== undefined) {
      if (W.structural) W.issues.push(shapeError(`The property _${item.key} is only allowed for primitive types (${type} is not primitive)`, path));
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      if (W.structural) W.issues.push(shapeError(`This property must be an object, not ${jsonKind(value)} (${type} at ${path})`, path));
      return;
    }

    let emptyObject = false;
    if (W.structural) {
      emptyObject = true;
      for (const k in value) {
        if (value[k] !== undefined) {
          emptyObject = false;
          break;
        }
      }
      if (emptyObject) W.issues.push(shapeError('Object must have some content', path));
    }

    // fixed / pattern / binding / limits on the element itself
    this.checkFixedPattern(value, node, path, W);
    this.checkLimits(value, type, node, path, W);
    if (node.binding) this.checkBinding(value, type, node, path, W);

    // children
    let kids: ElementNode[] | undefined;
    let typeRoot: ElementNode | undefined;
    let KW = W;
    const ref = node.contentReference ? resolveContentReference(node) : undefined;
    if (ref) {
      kids = ref.children;
    } else if (node.children.length) {
      kids = node.children;
    } else {
      const profile = node.types.find((t) => t.code === type)?.profiles[0];
      if (!W.structural && !profile && type !== 'Extension') {
        kids = undefined; // nothing a profile adds below an unconstrained datatype
      } else {
        const st = (profile && this.store.structure(profile)) || this.store.typeStructure(type);
        if (st) {
          kids = st.root.children;
          typeRoot = st.root;
          // below a type profile, issues are reported as coming from that profile
          if (profile && st.url !== W.structure.url) KW = { ...W, structure: st };
        }
      }
    }
    if (ref) {
      // recursive elements (Questionnaire.item.item, CodeSystem.concept.concept) are their definition's element
      loc.fpPath = elementFp;
      loc.defPath = ref.path;
      loc.elemPath = ref.path;
    }
    if (kids) {
      if (type === 'Extension' && typeof value.url === 'string') loc.extUrl = value.url;
      this.walkChildren(value, kids, path, loc, KW);
    }

    // invariants (an empty object was reported above: no ele-1 on top of it, as the HL7 validator)
    this.checkConstraints(node.constraints, value, undefined, path, elementFp, W, emptyObject ? 'ele-1' : undefined);
    if (typeRoot) this.checkConstraints(typeRoot.constraints, value, undefined, path, type, KW, emptyObject ? 'ele-1' : undefined);

    if (type === 'Reference') this.checkReference(value, node, path, W);
    if (W.structural) {
      if (type === 'Extension') this.checkExtension(value, node, path, parentLoc, W);
      if (type === 'Coding') this.checkCoding(value, path, W);
      if (type === 'Attachment') this.checkAttachment(value, path, W);
      if (type === 'Identifier') W.issues.push(...identifierIssues(value, path));
    }
  }

  private validatePrimitive(item: Item, node: ElementNode, path: string, loc: Loc, W: Walk): void {
    const type = item.type;
    const v = item.value;
    if (W.structural) {
      if (v !== undefined) {
        const isResourceId = node.basePath === 'Resource.id';
        for (const p of checkPrimitive(type, v, isResourceId)) {
          const issue: Issue = { severity: p.severity, code: p.code, diagnostics: p.message, expression: [path] };
          // the lexical form of a primitive is part of the JSON format
          if (p.severity === 'error') PARSE_ERRORS.add(issue);
          W.issues.push(issue);
        }
        if (typeof v === 'string') this.checkCanonicalValue(v, type, node, path, loc, W);
        if (type === 'xhtml' && typeof v === 'string') {
          const problems = checkXhtml(v);
          for (const p of problems) if (p.message) W.issues.push(err(p.code, p.message, path));
          for (const key of new Set(problems.flatMap((p) => p.keys))) {
            W.issues.push({
              severity: 'error',
              code: 'invariant',
              diagnostics: `Constraint failed: ${key}: '${key === 'txt-1' ? 'The narrative SHALL contain only the basic html formatting elements and attributes described in chapters 7-11 (except section 4 of chapter 9) and 12 of the HTML 4.0 standard, <a> elements (either name or href), images and internally contained style attributes' : 'The narrative SHALL have some non-whitespace content'}' (defined in http://hl7.org/fhir/StructureDefinition/Narrative)`,
              expression: [path],
            });
          }
        }
      }
      if (item.ext !== undefined) {
        if (item.ext === null || typeof item.ext !== 'object' || Array.isArray(item.ext)) {
          W.issues.push(shapeError(`The property _${item.key} must be an object, not ${jsonKind(item.ext)}`, path));
        } else {
          const st = this.store.typeStructure(type);
          if (st) this.walkChildren(item.ext, st.root.children, path, loc, W, false, true);
        }
      }
    } else if (node.children.length) {
      // a profile constraining the primitive's extensions / id
      this.walkChildren(item.ext && typeof item.ext === 'object' ? item.ext : {}, node.children, path, loc, W, false, true);
    }
    if (v !== undefined) {
      if (typeof v === 'string' && node.maxLength !== undefined && v.length > node.maxLength) {
        W.issues.push(err('value', `value is longer than permitted maximum length of ${node.maxLength}`, path));
      }
      this.checkLimits(v, type, node, path, W);
      this.checkFixedPattern(v, node, path, W);
      if (node.binding && (typeof v === 'string')) this.checkBinding(v, type, node, path, W);
    } else if (node.fixed || node.pattern) {
      W.issues.push(err('value', `Value is missing but must be '${describe((node.fixed ?? node.pattern)!.value)}' (profile ${W.structure.url})`, path));
    }
    this.checkConstraints(node.constraints, v, item.ext, path, loc.elemPath, W);
  }

  private validateResourceItem(item: Item, node: ElementNode, path: string, W: Walk): void {
    const value = item.value;
    if (W.structural) {
      const contained = node.basePath === 'DomainResource.contained';
      this.validateResource(value, path, W.issues, {
        container: contained ? W.rootResource : undefined,
        bundle: W.bundle,
        depth: W.depth + 1,
        strictExtensions: W.strictExtensions,
      });
      if (contained && value && typeof value === 'object' && value.id === undefined) {
        W.issues.push(err('required', 'Contained resources SHALL have an id', path));
      }
      return;
    }
    // profile walk: type profiles on the resource (e.g. Bundle.entry.resource in a profile's slice)
    if (!value || typeof value !== 'object' || typeof value.resourceType !== 'string') return;
    for (const t of node.types) {
      for (const p of t.profiles) {
        const st = this.store.structure(p);
        if (!st) {
          W.issues.push({ severity: 'warning', code: 'not-supported', diagnostics: `Profile reference '${p}' has not been checked because it is unknown`, expression: [path] });
          continue;
        }
        if (st.type !== value.resourceType) continue;
        this.walkRoot(value, st, path, { ...W, structure: st, resource: value, rootResource: value });
      }
    }
  }

  // ------------------------------------------------------------------ constraints

  /** %resource, %rootResource, and memberOf() decided by this validation's terminology */
  private invariantEnv(W: Walk): InvariantEnv {
    const term = this.store.terminology;
    return { resource: W.resource, rootResource: W.rootResource, memberOf: (vs, system, code) => term.inValueSet(vs, system, code) };
  }

  private checkConstraints(list: Constraint[], value: any, ext: any, path: string, base: string, W: Walk, except?: string): void {
    if (!list.length) return;
    const env = this.invariantEnv(W);
    for (const c of list) {
      if (c.key === except) continue;
      if (!W.structural && c.core) continue;
      // narrative is not expected on contained resources (the container's narrative covers them)
      if (c.key === 'dom-6' && W.rootResource !== W.resource) continue;
      if (W.quiet && c.severity !== 'error') continue;
      const r = this.invariants.evaluate(c, value, ext, base, env);
      if (r.ok) continue;
      W.issues.push({
        severity: c.severity,
        code: 'invariant',
        diagnostics: `Constraint failed: ${c.key}: '${c.human}' (defined in ${c.source})`,
        expression: [path],
      });
    }
  }

  // ------------------------------------------------------------------ fixed / pattern

  private checkFixedPattern(value: any, node: ElementNode, path: string, W: Walk): void {
    if (node.fixed && !valueEquals(value, node.fixed.value)) {
      W.issues.push(
        err(
          'value',
          typeof node.fixed.value === 'object'
            ? `Value does not match the fixed value ${describe(node.fixed.value)} defined in the profile ${W.structure.url}`
            : `Value is '${describe(value)}' but must be '${describe(node.fixed.value)}'`,
          path,
        ),
      );
    }
    if (node.pattern && !patternMatchesValue(value, node.pattern.value)) {
      W.issues.push(
        err(
          'value',
          typeof node.pattern.value === 'object'
            ? `The pattern ${describe(node.pattern.value)} defined in the profile ${W.structure.url} was not found in the value ${describe(value)}`
            : `Value is '${describe(value)}' but must be '${describe(node.pattern.value)}'`,
          path,
        ),
      );
    }
  }

  // ------------------------------------------------------------------ minValue / maxValue

  /** minValue[x] / maxValue[x] of the element: numbers, dates, dateTimes, instants, times and Quantities (ordering.ts). */
  private checkLimits(value: any, type: string, node: ElementNode, path: string, W: Walk): void {
    for (const [limit, isMin] of [[node.minValue, true], [node.maxValue, false]] as const) {
      if (!limit) continue;
      const c = compareToLimit(value, type, limit);
      if (c === undefined) continue;
      const shown = limit.type === 'Quantity' ? `${limit.value?.value} ${limit.value?.code ?? limit.value?.unit ?? ''}`.trim() : String(limit.value);
      if (c.incompatible !== undefined) {
        W.issues.push(err('value', `The value cannot be compared with the ${isMin ? 'minimum' : 'maximum'} value ${shown}: ${c.incompatible}`, path));
      } else if (isMin ? c.order! < 0 : c.order! > 0) {
        W.issues.push(err('value', `value is ${isMin ? 'less than permitted minimum' : 'greater than permitted maximum'} value of ${shown}`, path));
      }
    }
  }

  // ------------------------------------------------------------------ terminology

  private vsLabel(url: string): string {
    const vs = this.store.resource('ValueSet', url);
    const name = vs?.title ?? vs?.name;
    return name ? `'${name}' (${url})` : url;
  }

  private checkBinding(value: any, type: string, node: ElementNode, path: string, W: Walk): void {
    const b = node.binding!;
    if (!b.valueSet || (b.strength !== 'required' && b.strength !== 'extensible')) return;
    const term = this.store.terminology;
    if (!term.hasValueSet(b.valueSet)) return;
    const required = b.strength === 'required';
    const sev = required ? 'error' : 'warning';
    if (typeof value === 'string') {
      if (type !== 'code' && type !== 'string' && type !== 'uri') return;
      const r = term.inValueSet(b.valueSet, undefined, value);
      if (r === false) {
        W.issues.push({
          severity: sev,
          code: 'code-invalid',
          diagnostics: required
            ? `The value provided ('${value}') is not in the value set ${this.vsLabel(b.valueSet)}, and a code is required from this value set`
            : `The value provided ('${value}') is not in the value set ${this.vsLabel(b.valueSet)}, and a code should come from this value set unless it has no suitable code (note that the validator cannot judge what is suitable)`,
          expression: [path],
        });
      }
      return;
    }
    if (type === 'Coding') {
      if (typeof value.code !== 'string') return;
      const r = term.inValueSet(b.valueSet, typeof value.system === 'string' ? value.system : undefined, value.code);
      if (r === false) {
        W.issues.push({
          severity: sev,
          code: 'code-invalid',
          diagnostics: required
            ? `The Coding provided (${value.system ?? ''}#${value.code}) is not in the value set ${this.vsLabel(b.valueSet)}, and a code is required from this value set`
            : `The Coding provided (${value.system ?? ''}#${value.code}) is not in the value set ${this.vsLabel(b.valueSet)}, and a code should come from this value set unless it has no suitable code (note that the validator cannot judge what is suitable)`,
          expression: [path],
        });
      }
      return;
    }
    if (type === 'Quantity' || QUANTITY_PROFILES.has(type)) {
      // a binding on a Quantity is on its unit: system + code
      if (typeof value.code !== 'string') return;
      const r = term.inValueSet(b.valueSet, typeof value.system === 'string' ? value.system : undefined, value.code);
      if (r === false) {
        W.issues.push({
          severity: sev,
          code: 'code-invalid',
          diagnostics: required
            ? `The unit provided (${value.system ?? ''}#${value.code}) is not in the value set ${this.vsLabel(b.valueSet)}, and a code is required from this value set`
            : `The unit provided (${value.system ?? ''}#${value.code}) is not in the value set ${this.vsLabel(b.valueSet)}, and a code should come from this value set unless it has no suitable code (note that the validator cannot judge what is suitable)`,
          expression: [path],
        });
      }
      return;
    }
    if (type === 'CodeableConcept') {
      const codings: any[] = Array.isArray(value.coding) ? value.coding.filter((c: any) => c && typeof c.code === 'string') : [];
      if (!codings.length) {
        W.issues.push({
          severity: sev,
          code: 'code-invalid',
          diagnostics: required
            ? `No code provided, and a code is required from the value set ${this.vsLabel(b.valueSet)}`
            : `No code provided, and a code should be provided from the value set ${this.vsLabel(b.valueSet)}`,
          expression: [path],
        });
        return;
      }
      let unknown = false;
      for (const c of codings) {
        const r = term.inValueSet(b.valueSet, typeof c.system === 'string' ? c.system : undefined, c.code);
        if (r === true) return;
        if (r === undefined) unknown = true;
      }
      if (unknown) return;
      const codes = codings.map((c) => `${c.system ?? ''}#${c.code}`).join(', ');
      W.issues.push({
        severity: sev,
        code: 'code-invalid',
        diagnostics: required
          ? `None of the codings provided are in the value set ${this.vsLabel(b.valueSet)}, and a coding from this value set is required) (codes = ${codes})`
          : `None of the codings provided are in the value set ${this.vsLabel(b.valueSet)}, and a coding should come from this value set unless it has no suitable code (note that the validator cannot judge what is suitable) (codes = ${codes})`,
        expression: [path],
      });
    }
  }

  private checkCoding(value: any, path: string, W: Walk): void {
    const { system, code, display } = value;
    if (typeof code !== 'string') return;
    if (typeof system !== 'string') {
      W.issues.push({ severity: 'warning', code: 'code-invalid', diagnostics: 'A code with no system has no defined meaning. A system should be provided', expression: [path] });
      return;
    }
    const term = this.store.terminology;
    if (term.isExternal(system)) return;
    // a supplement adds designations and properties to another CodeSystem: it is not a system of codes itself
    const supplemented = this.store.resource('CodeSystem', system)?.supplements;
    if (typeof supplemented === 'string') {
      W.issues.push(err('code-invalid', `CodeSystem ${system} is a supplement (of ${supplemented}), so it cannot be used as a value in Coding.system`, `${path}.system`));
      return;
    }
    const r = term.lookup(system, code);
    if (!r) return;
    if (!r.found) {
      W.issues.push({
        severity: 'error',
        code: 'code-invalid',
        diagnostics: `Unknown code '${code}' in the CodeSystem '${system}'${r.cs.version ? ` version '${r.cs.version}'` : ''}`,
        expression: [`${path}.code`],
      });
      return;
    }
    if (typeof display === 'string' && r.concept?.display) {
      const norm = (s: string) => s.trim().toLowerCase().replace(/\s+/g, ' ');
      const ok = [r.concept.display, ...r.concept.designations].some((d) => norm(d) === norm(display));
      if (!ok) {
        W.issues.push({
          severity: 'warning',
          code: 'invalid',
          diagnostics: `Wrong Display Name '${display}' for ${system}#${code}. Valid display is '${r.concept.display}'`,
          expression: [`${path}.display`],
        });
      }
    }
  }

  /**
   * Canonical URLs as the HL7 validator checks them: the url of a canonical resource is
   * absolute (a relative one identifies nothing outside this server), and a canonical that
   * designates a conformance resource known here designates one of the types it allows.
   */
  private checkCanonicalValue(v: string, type: string, node: ElementNode, path: string, loc: Loc, W: Walk): void {
    const rt = W.resource?.resourceType;
    if (typeof rt === 'string' && loc.defPath === `${rt}.url` && isCanonicalResource(rt) && !/^[A-Za-z][A-Za-z0-9+.-]*:/.test(v)) {
      W.issues.push(err('invalid', `Canonical URLs must be absolute URLs if they are not fragment references (${v})`, path));
    }
    if (type !== 'canonical' || v.startsWith('#')) return;
    const allowed = node.types.filter((t) => t.code === 'canonical').flatMap((t) => t.targetProfiles.map((tp) => tp.slice(tp.lastIndexOf('/') + 1)));
    if (!allowed.length || allowed.includes('Resource') || allowed.includes('DomainResource')) return;
    const kinds: ConformanceType[] = ['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire'];
    // a type it may designate first: most canonicals resolve there, and then nothing else is looked up
    if (kinds.some((k) => allowed.includes(k) && this.store.resource(k, v))) return;
    const found = kinds.filter((k) => !allowed.includes(k) && this.store.resource(k, v));
    if (!found.length) return;
    W.issues.push(err('invalid', `Canonical URL '${v}' refers to a resource that has the wrong type. Found ${found.join(', ')} expecting one of [${allowed.join(', ')}]`, path));
  }

  /** stated size / hash of an Attachment against its data, as the HL7 validator does */
  private checkAttachment(value: any, path: string, W: Walk): void {
    if (typeof value.data !== 'string') return;
    const decoded = decodeBase64(value.data);
    if (!decoded?.padded) return; // reported as invalid base64
    const bytes = decoded.bytes;
    if (typeof value.size === 'number' && value.size !== bytes.length) {
      W.issues.push(err('value', `Stated Attachment Size ${value.size} does not match actual attachment size ${bytes.length}`, path));
    }
    if (typeof value.hash === 'string') {
      const actual = createHash('sha1').update(bytes).digest('base64');
      if (actual !== value.hash.replace(/\s+/g, '')) {
        W.issues.push(err('value', `Stated Attachment Hash ${value.hash} does not match actual attachment hash ${actual}`, path));
      }
    }
  }

  // ------------------------------------------------------------------ references

  private targetCache = new WeakMap<ElementNode, string[] | null>();
  private allowedTargets(node: ElementNode): string[] | undefined {
    const hit = this.targetCache.get(node);
    if (hit !== undefined) return hit ?? undefined;
    const r = this.computeAllowedTargets(node);
    this.targetCache.set(node, r ?? null);
    return r;
  }

  private computeAllowedTargets(node: ElementNode): string[] | undefined {
    const out = new Set<string>();
    for (const t of node.types) {
      if (t.code !== 'Reference') continue;
      if (!t.targetProfiles.length) return undefined;
      for (const tp of t.targetProfiles) {
        let type: string | undefined;
        const bare = tp.split('|')[0];
        if (bare.startsWith(CORE_SD) && !bare.slice(CORE_SD.length).includes('/')) {
          const n = bare.slice(CORE_SD.length);
          type = this.store.isResourceType(n) || n === 'Resource' ? n : this.store.structure(bare)?.type;
        } else type = this.store.structure(bare)?.type;
        if (!type) return undefined;
        if (type === 'Resource' || type === 'DomainResource') return undefined;
        out.add(type);
      }
    }
    return out.size ? [...out] : undefined;
  }

  resolveReference(ref: string, W: Walk): any | undefined {
    const found = this.bundleMatches(ref, W);
    return found.length === 1 ? found[0] : undefined;
  }

  /** The resources a reference designates in its container or Bundle (several: the reference is ambiguous). */
  private bundleMatches(ref: string, W: Walk): any[] {
    if (ref.startsWith('#')) {
      const list = W.rootResource?.contained;
      const hit = Array.isArray(list) ? list.find((c: any) => c?.id === ref.slice(1)) : undefined;
      return hit ? [hit] : [];
    }
    const b = W.bundle;
    if (!b) return [];
    const { entries, version } = this.bundleEntries(ref, b);
    return version === undefined ? entries : entries.filter((r) => r?.meta?.versionId === version);
  }

  /** The Bundle's resources at the reference's fullUrl, of any version, and the version it names if it names one. */
  private bundleEntries(ref: string, b: BundleCtx): { entries: any[]; version?: string } {
    // a version-specific reference designates the entry of that version
    const versioned = /^(.*)\/_history\/([^/]+)$/.exec(ref);
    const base = versioned ? versioned[1] : ref;
    let entries = b.byFullUrl.get(base) ?? [];
    if (!entries.length && !ABS_URL.test(base)) {
      for (const [fu, list] of b.byFullUrl) if (fu.endsWith('/' + base)) entries = [...entries, ...list];
    }
    return { entries, version: versioned?.[2] };
  }

  /** In a document or a message, what a reference designates in the Bundle must be one resource, of the version named. */
  private checkBundleReference(ref: string, path: string, W: Walk): void {
    const b = W.bundle;
    if (!b || (b.type !== 'document' && b.type !== 'message') || ref.startsWith('#') || ref.includes('?')) return;
    const { entries, version } = this.bundleEntries(ref, b);
    const found = version === undefined ? entries : entries.filter((r) => r?.meta?.versionId === version);
    if (found.length > 1) {
      W.issues.push(err('invalid', `Multiple matches in the Bundle for the reference ${ref}: name the version (…/_history/[versionId])`, path));
      return;
    }
    // the Bundle holds the resource, not in the version named
    if (version !== undefined && !found.length && entries.length) {
      W.issues.push(err('not-found', `Can't find '${ref}' in the Bundle: it holds no entry of version ${version}`, path));
    }
  }

  private checkReference(value: any, node: ElementNode, path: string, W: Walk): void {
    const ref = value.reference;
    if (W.structural && typeof ref === 'string' && ref.length > 1 && ref.startsWith('#') && !this.resolveReference(ref, W)) {
      W.issues.push(err('not-found', `Unable to resolve resource '${ref}'`, path));
    }
    let found: string | undefined;
    let target: any;
    if (W.structural && typeof ref === 'string') this.checkBundleReference(ref, path, W);
    if (typeof ref === 'string' && !ref.includes('?')) {
      target = this.resolveReference(ref, W);
      if (target && typeof target.resourceType === 'string') found = target.resourceType;
      else if (!ref.startsWith('#') && !ref.startsWith('urn:')) {
        target = undefined;
        const m = referenceTarget(ref);
        if (m && this.store.isResourceType(m.resourceType)) found = m.resourceType;
      } else target = undefined;
    }
    if (found) {
      // a target profile that cannot be found cannot be checked: the reference is not valid against it (as the HL7 validator)
      for (const t of node.types) {
        if (t.code !== 'Reference') continue;
        for (const tp of t.targetProfiles) {
          if (!this.store.structure(tp)) W.issues.push(err('structure', `Unable to resolve the profile reference '${tp}'`, path));
        }
      }
    }
    const allowed = this.allowedTargets(node);
    if (!allowed) return;
    if (found && !allowed.includes(found)) {
      W.issues.push(err('structure', `Invalid Resource target type. Found ${found}, but expected one of (${allowed.join(', ')})`, path));
      return;
    }
    if (typeof value.type === 'string' && this.store.isResourceType(value.type) && !allowed.includes(value.type)) {
      W.issues.push(err('structure', `The type '${value.type}' is not a valid Target for this element (must be one of ${allowed.join(', ')})`, `${path}.type`));
    }
    if (target && found) this.checkTargetProfiles(target, found, ref, node, path, W);
  }

  /** Targets being checked against a profile: a cycle of references is checked once. */
  private checkingTargets = new Set<any>();

  /** A target found in the Bundle or contained must conform to one of the target profiles of its type. */
  private checkTargetProfiles(target: any, type: string, ref: string, node: ElementNode, path: string, W: Walk): void {
    const profiles = node.types.filter((t) => t.code === 'Reference').flatMap((t) => t.targetProfiles);
    const ofType = profiles.map((tp) => this.store.structure(tp)).filter((st): st is CompiledStructure => !!st && st.type === type);
    if (!ofType.length || ofType.some((st) => st.url === CORE_SD + type)) return;
    if (this.checkingTargets.has(target)) return;
    this.checkingTargets.add(target);
    try {
      if (ofType.some((st) => this.conforms(target, type, st, { ...W, depth: W.depth + 1 }))) return;
    } finally {
      this.checkingTargets.delete(target);
    }
    W.issues.push(err('structure', `The resource ${ref} does not conform to ${ofType.length > 1 ? 'any of the target profiles' : 'the target profile'} ${ofType.map((st) => st.url).join(', ')}`, path));
  }

  // ------------------------------------------------------------------ extensions

  private checkExtension(value: any, node: ElementNode, path: string, parentLoc: Loc, W: Walk): void {
    const url = value.url;
    if (typeof url !== 'string') return;
    const isModifier = node.basePath.endsWith('modifierExtension');
    if (!ABS_URL.test(url)) {
      // sub-extension of a complex extension: checked against the parent's definition
      if (!parentLoc.extUrl) {
        W.issues.push(err('structure', `Extension.url must be an absolute URL ('${url}')`, `${path}.url`));
      }
      return;
    }
    const st = this.store.structure(url);
    const crossVersion = st ? undefined : CROSS_VERSION_EXTENSION.exec(url);
    // a conformance verdict takes a cross-version modifierExtension as the spec defines it (the extension of a
    // modifier element is a modifier extension); a write still refuses it, as no definition here says what it modifies
    if (crossVersion && (!isModifier || W.strictExtensions)) {
      // defined by the element of another FHIR version (versions.html#extensions): known, as to the
      // reference validator, but that version's definitions are not loaded here, so its content is not checked
      W.issues.push({ severity: 'information', code: 'informational', diagnostics: `The ${isModifier ? 'modifier extension' : 'extension'} ${url} stands for the element ${crossVersion[2]} of FHIR ${crossVersion[1]}, whose definition is not loaded here: its content is not checked`, expression: [path] });
      return;
    }
    if (!st) {
      if (isModifier) {
        W.issues.push(err('structure', `Unknown modifier extension ${url}: a modifier extension must be understood, so the resource cannot be accepted`, path));
      } else if (W.strictExtensions) {
        W.issues.push(err('structure', `The extension ${url} is unknown, and not allowed here`, path));
      } else {
        // a write is not refused for an extension it does not understand (R4 extensibility): it is kept, and said
        W.issues.push({ severity: 'warning', code: 'informational', diagnostics: `Unknown extension ${url}`, expression: [path] });
      }
      return;
    }
    if (st.type !== 'Extension') {
      W.issues.push(err('structure', `The url ${url} does not refer to an extension definition (it is a ${st.type})`, `${path}.url`));
      return;
    }
    const defModifier = st.root.isModifier;
    if (isModifier && !defModifier) {
      W.issues.push(err('structure', `Extension modifier mismatch: the extension element is labelled as a modifier, but the underlying extension is not`, path));
    } else if (!isModifier && defModifier) {
      W.issues.push(err('structure', `The Extension '${url}' must be used as a modifierExtension`, path));
    }
    this.checkExtensionContext(st, url, path, parentLoc, W);
    // the extension's own definition (value type, nested extensions, fixed values, bindings, invariants)
    const ew: Walk = { ...W, structural: false, structure: st };
    const loc: Loc = { defPath: 'Extension', fpPath: 'Extension', elemPath: 'Extension', type: 'Extension', isResource: false, extUrl: url, obj: value };
    this.checkConstraints(st.root.constraints, value, undefined, path, 'Extension', ew);
    this.walkChildren(value, st.root.children, path, loc, ew);
  }

  private checkExtensionContext(st: CompiledStructure, url: string, path: string, loc: Loc, W: Walk): void {
    if (!this.extensionContextAllowed(st, url, path, loc, W)) return;
    // StructureDefinition.contextInvariant: "all the rules must be true", on the element the extension is used on
    if (loc.obj === undefined || loc.obj === null || typeof loc.obj !== 'object') return;
    const env = this.invariantEnv(W);
    for (const rule of st.contextInvariant ?? []) {
      const base = loc.isResource ? undefined : loc.fpPath;
      if (this.invariants.holds(rule, loc.obj, base, env) === false) {
        W.issues.push(err('structure', `The extension ${url} is not allowed to be used at this point: it failed the context invariant ${rule}`, path));
      }
    }
  }

  /** Is the extension used in one of its contexts of use (StructureDefinition.context)? Reports it when not. */
  private extensionContextAllowed(st: CompiledStructure, url: string, path: string, loc: Loc, W: Walk): boolean {
    const ctxs = st.context ?? [];
    if (!ctxs.length) return true;
    const candidates = new Set<string>([loc.defPath, loc.fpPath, loc.elemPath, loc.type, 'Element']);
    // an inherited element is its base's too (Patient.text is DomainResource.text)
    if (loc.basePath) candidates.add(loc.basePath);
    if (loc.isResource) {
      candidates.add('Resource');
      candidates.add('DomainResource');
      if (isCanonicalResource(loc.type)) {
        candidates.add('CanonicalResource');
        candidates.add('MetadataResource');
      }
    } else {
      if (QUANTITY_PROFILES.has(loc.type)) candidates.add('Quantity');
      if (loc.type === 'Element' || loc.type === 'BackboneElement') candidates.add('BackboneElement');
    }
    for (const c of ctxs) {
      if (c.type === 'fhirpath') {
        // "all nodes matching a FHIRPath expression", evaluated on the resource: the element must be one of them
        const nodes = this.invariants.select(c.expression ?? '', W.resource, undefined, this.invariantEnv(W));
        if (!nodes || loc.obj === undefined) return true; // cannot be evaluated here: not reported
        if (nodes.some((n) => n === loc.obj || n?.data === loc.obj || n?._data === loc.obj)) return true;
        continue;
      }
      if (c.type === 'extension') {
        if (loc.extUrl === c.expression || loc.type === 'Extension' && c.expression === 'Extension') return true;
        continue;
      }
      const e = (c.expression ?? '').replace(/\[x\]/g, '');
      if (candidates.has(e) || candidates.has(c.expression)) return true;
      // Patient.contact.name vs a context expressed on the datatype path
      if (loc.defPath.replace(/\[x\]/g, '') === e) return true;
    }
    const allowed = ctxs.map((c) => `${c.type === 'extension' ? 'x' : c.type === 'fhirpath' ? 'f' : 'e'}:${c.expression}`).join(', ');
    W.issues.push(
      err('structure', `The extension ${url} is not allowed to be used at this point (allowed = ${allowed}; this element is [${loc.defPath}; ${loc.type}])`, path),
    );
    return false;
  }

  // ------------------------------------------------------------------ slicing

  private processSlices(items: Item[], owner: ElementNode, path: string, loc: Loc, W: Walk): void {
    const slicing = owner.slicing!;
    const slices = owner.slices;
    const matched: (ElementNode | undefined)[] = [];
    const notes: string[][] = [];
    // per item, the slices it may belong to without it being sure (a slice that leaves the
    // discriminator unconstrained): only those slices' counts, and that item, are left undecided
    const maybe: ElementNode[][] = [];
    for (const item of items) {
      let m: ElementNode | undefined;
      const unsure: ElementNode[] = [];
      this.sliceNotes = [];
      for (const s of slices) {
        const r = this.sliceMatches(item, s, slicing.discriminator, W);
        if (r === true) {
          m = s;
          break;
        }
        if (r === undefined) unsure.push(s);
      }
      matched.push(m);
      maybe.push(m ? [] : unsure);
      notes.push(this.sliceNotes);
      this.sliceNotes = undefined;
    }
    const url = W.structure.url;
    // closed / openAtEnd / ordered
    let lastIdx = -1;
    let seenUnmatched = false;
    items.forEach((item, i) => {
      const s = matched[i];
      const ip = this.itemPath(path, owner, item);
      if (!s) {
        seenUnmatched = true;
        const undecidable = maybe[i].length > 0;
        if (slicing.rules === 'closed' && !undecidable) {
          const why = notes[i].length ? `: ${notes[i].join('; ')}` : '';
          W.issues.push(err('structure', `This element does not match any known slice defined in the profile ${url} and slicing is CLOSED${why}`, ip));
        }
        // sub-extensions of a complex extension must be defined by it
        if (owner.path.endsWith('Extension.extension') && W.structure.type === 'Extension' && typeof item.value?.url === 'string' && !ABS_URL.test(item.value.url) && !undecidable) {
          W.issues.push(err('structure', `Sub-extension url '${item.value.url}' is not defined by the Extension ${url}`, ip));
        }
        return;
      }
      const idx = slices.indexOf(s);
      if (slicing.ordered && idx < lastIdx) {
        W.issues.push(err('structure', `As specified by profile ${url}, Element '${owner.name}' is out of order in ordered slice`, ip));
      }
      if (slicing.rules === 'openAtEnd' && seenUnmatched) {
        W.issues.push(err('structure', `As specified by profile ${url}, Element '${owner.name}' is out of order: unsliced elements must come after the slices (openAtEnd)`, ip));
      }
      lastIdx = Math.max(lastIdx, idx);
    });
    for (const s of slices) {
      const count = matched.filter((m) => m === s).length;
      const possible = maybe.filter((list) => list.includes(s)).length;
      if (count < s.min && count + possible >= s.min) continue;
      this.checkCardinality(s, count, path, W);
    }
    items.forEach((item, i) => {
      const s = matched[i];
      if (!s) return;
      const ip = this.itemPath(path, owner, item);
      this.validateItem({ ...item, type: s.types.length === 1 ? s.types[0].code : item.type }, s, ip, loc, W);
    });
  }

  /** Does the item belong to the slice? true / false / undefined (cannot tell) */
  private sliceMatches(item: Item, s: ElementNode, discs: { type: string; path: string }[], W: Walk): boolean | undefined {
    if (!discs.length) return undefined;
    for (const d of discs) {
      const r = this.discriminatorMatches(item, s, d, W);
      if (r !== true) return r;
    }
    return true;
  }

  private typeTreeChildren(node: ElementNode, type?: string): ElementNode[] {
    if (node.children.length) return node.children;
    const ref = node.contentReference ? resolveContentReference(node) : undefined;
    if (ref) return ref.children;
    const t = (type && node.types.find((x) => x.code === type)) || node.types[0];
    if (!t) return [];
    const st = (t.profiles[0] && this.store.structure(t.profiles[0])) || this.store.typeStructure(t.code);
    return st?.root.children ?? [];
  }

  private discriminatorMatches(item: Item, s: ElementNode, d: { type: string; path: string }, W: Walk): boolean | undefined {
    const segs = splitPath(d.path);
    // walk definition and instance together
    let node: ElementNode | undefined = s;
    let values: { value: any; type: string }[] = [{ value: item.value, type: item.type }];
    let resolved = false;
    for (const seg of segs) {
      if (!node) return undefined;
      if (seg === '$this') continue;
      let m: RegExpExecArray | null;
      if ((m = /^extension\(['"](.*)['"]\)$/.exec(seg))) {
        const url = m[1];
        const extNode: ElementNode | undefined = this.typeTreeChildren(node).find((c) => c.name === 'extension');
        node = extNode?.slices.find((sl) => sl.types.some((t) => t.profiles.includes(url)) || sl.children.some((c) => c.name === 'url' && c.fixed?.value === url));
        values = values.flatMap((v) => (Array.isArray(v.value?.extension) ? v.value.extension.filter((e: any) => e?.url === url).map((e: any) => ({ value: e, type: 'Extension' })) : []));
        continue;
      }
      if (seg === 'resolve()') {
        resolved = true;
        values = values.flatMap((v) => {
          const r = typeof v.value?.reference === 'string' ? this.resolveReference(v.value.reference, W) : undefined;
          return r ? [{ value: r, type: r.resourceType }] : [];
        });
        continue;
      }
      if ((m = /^(?:ofType|as)\((.*)\)$/.exec(seg))) {
        const t = m[1];
        values = values.filter((v) => v.type === t);
        continue;
      }
      if (resolved) return undefined;
      const kids = this.typeTreeChildren(node, values[0]?.type);
      const child: ElementNode | undefined = kids.find((c) => c.name === seg || c.choicePrefix === seg);
      if (!child) return undefined;
      node = child;
      values = values.flatMap((v) => {
        if (!v.value || typeof v.value !== 'object') return [];
        if (child.choicePrefix) {
          const out: { value: any; type: string }[] = [];
          for (const t of child.types) {
            const x = v.value[child.choicePrefix + cap(t.code)];
            if (x !== undefined) out.push({ value: x, type: t.code });
          }
          return out;
        }
        const x = v.value[seg];
        if (x === undefined) return [];
        const type = child.types[0]?.code ?? 'BackboneElement';
        return (Array.isArray(x) ? x : [x]).map((y) => ({
          value: y,
          type: y && typeof y === 'object' && typeof y.resourceType === 'string' ? y.resourceType : type,
        }));
      });
    }
    if (!node) return undefined;
    switch (d.type) {
      case 'value':
      case 'pattern': {
        if (node.fixed) return values.some((v) => valueEquals(v.value, node!.fixed!.value));
        if (node.pattern) return values.some((v) => patternMatchesValue(v.value, node!.pattern!.value));
        if (node.binding?.strength === 'required' && node.binding.valueSet) {
          let unknown = false;
          for (const v of values) {
            const codes = codesOf(v.value, v.type);
            for (const c of codes) {
              const r = this.store.terminology.inValueSet(node.binding.valueSet, c.system, c.code);
              if (r === true) return true;
              if (r === undefined) unknown = true;
            }
          }
          return unknown ? undefined : false;
        }
        return undefined;
      }
      case 'exists':
        if (node.min >= 1) return values.length > 0;
        if (node.max === 0) return values.length === 0;
        return undefined;
      case 'type': {
        let allowed: string[];
        if (resolved) {
          const ts = this.allowedTargets(node);
          if (!ts) return undefined;
          allowed = ts;
        } else allowed = node.types.map((t) => t.code);
        if (!allowed.length) return undefined;
        if (!values.length) return false;
        return values.every((v) => allowed.includes(v.type));
      }
      case 'profile': {
        const profiles = resolved ? node.types.flatMap((t) => t.targetProfiles) : node.types.flatMap((t) => t.profiles);
        if (!profiles.length) return undefined;
        if (!values.length) return false;
        for (const p of profiles) {
          const st = this.store.structure(p);
          if (!st) return undefined;
          if (values.every((v) => this.conforms(v.value, v.type, st, W, s.sliceName))) return true;
        }
        return false;
      }
    }
    return undefined;
  }

  /** Does a value conform to a profile (no errors)? Used for profile discriminators. */
  private conforms(value: any, type: string, st: CompiledStructure, W: Walk, sliceName?: string): boolean {
    const issues: Issue[] = [];
    const notes = this.sliceNotes;
    this.sliceNotes = undefined;
    try {
      return this.conformsInner(value, type, st, W, issues);
    } finally {
      this.sliceNotes = notes;
      const first = issues.find((i) => i.severity === 'error' || i.severity === 'fatal');
      if (notes && first && sliceName) notes.push(`Does not match slice '${sliceName}' (${first.expression?.[0] ?? ''}: ${first.diagnostics})`);
    }
  }

  private conformsInner(value: any, type: string, st: CompiledStructure, W: Walk, issues: Issue[]): boolean {
    if (value && typeof value === 'object' && typeof value.resourceType === 'string') {
      if (st.type !== value.resourceType) return false;
      this.walkRoot(value, st, value.resourceType, { ...W, issues, structure: st, structural: false, quiet: true, resource: value, rootResource: value });
    } else {
      if (st.type !== type && !(st.type === 'Extension' && type === 'Extension')) return false;
      const loc: Loc = { defPath: type, fpPath: type, elemPath: type, type, isResource: false };
      this.walkChildren(value ?? {}, st.root.children, type, loc, { ...W, issues, structure: st, structural: false, quiet: true });
    }
    return !issues.some((i) => i.severity === 'error' || i.severity === 'fatal');
  }
}

interface ChildIndex {
  byName: Map<string, ElementNode>;
  choices: ElementNode[];
  /** children to look at even when absent (min > 0, or slices with min > 0) */
  mustVisit: Set<ElementNode>;
}
const childIndexes = new WeakMap<ElementNode[], ChildIndex>();
function childIndex(children: ElementNode[]): ChildIndex {
  let idx = childIndexes.get(children);
  if (!idx) {
    idx = { byName: new Map(), choices: [], mustVisit: new Set() };
    for (const c of children) {
      if (c.choicePrefix) idx.choices.push(c);
      else idx.byName.set(c.name, c);
      if (c.min > 0 || c.slices.some((s) => s.min > 0)) idx.mustVisit.add(c);
    }
    childIndexes.set(children, idx);
  }
  return idx;
}

const NUMBER_TYPES = new Set(['integer', 'decimal', 'positiveInt', 'unsignedInt', 'Integer', 'Decimal', 'PositiveInt', 'UnsignedInt']);
const DATE_TYPES = new Set(['date', 'dateTime', 'instant', 'Date', 'DateTime', 'Instant']);

/** The order of a value against a minValue[x] / maxValue[x] limit; undefined when it cannot be told for sure. */
function compareToLimit(value: any, type: string, limit: { type: string; value: any }): Comparison | undefined {
  const kind = (t: string, time: boolean, quantity: boolean): OrderedKind | undefined =>
    NUMBER_TYPES.has(t) ? 'number' : DATE_TYPES.has(t) ? 'date' : time ? 'time' : quantity ? 'quantity' : undefined;
  return compareWithLimit(kind(type, type === 'time', type === 'Quantity' || QUANTITY_PROFILES.has(type)), value, kind(limit.type, /^time$/i.test(limit.type), limit.type === 'Quantity'), limit.value);
}

function err(code: Issue['code'], diagnostics: string, path: string): Issue {
  return { severity: 'error', code, diagnostics, expression: [path] };
}

/** An error in the JSON shape of the resource (a parse error: 400 on the REST API). */
function shapeError(diagnostics: string, path: string): Issue {
  const issue = err('structure', diagnostics, path);
  PARSE_ERRORS.add(issue);
  return issue;
}


function lcIfPrimitive(suffix: string): string {
  const lc = suffix[0].toLowerCase() + suffix.slice(1);
  return PRIMITIVES.has(lc) ? lc : suffix;
}

function valueEquals(a: any, b: any): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  return deepEqual(a, b);
}

function patternMatchesValue(a: any, p: any): boolean {
  if (typeof a === 'number' && typeof p === 'number') return a === p;
  return patternMatches(a, p);
}

function codesOf(v: any, type: string): { system?: string; code: string }[] {
  if (typeof v === 'string') return [{ code: v }];
  if (!v || typeof v !== 'object') return [];
  if (type === 'Coding' || (typeof v.code === 'string' && !Array.isArray(v.coding))) {
    return typeof v.code === 'string' ? [{ system: v.system, code: v.code }] : [];
  }
  if (Array.isArray(v.coding)) return v.coding.filter((c: any) => typeof c?.code === 'string').map((c: any) => ({ system: c.system, code: c.code }));
  return [];
}

const CANONICAL_RESOURCES = new Set([
  'ActivityDefinition', 'CapabilityStatement', 'ChargeItemDefinition', 'CodeSystem', 'CompartmentDefinition', 'ConceptMap',
  'EffectEvidenceSynthesis', 'EventDefinition', 'Evidence', 'EvidenceVariable', 'ExampleScenario', 'GraphDefinition',
  'ImplementationGuide', 'Library', 'Measure', 'MessageDefinition', 'NamingSystem', 'OperationDefinition', 'PlanDefinition',
  'Questionnaire', 'ResearchDefinition', 'ResearchElementDefinition', 'RiskEvidenceSynthesis', 'SearchParameter',
  'StructureDefinition', 'StructureMap', 'TerminologyCapabilities', 'TestScript', 'ValueSet',
]);
function isCanonicalResource(t: string): boolean {
  return CANONICAL_RESOURCES.has(t);
}
