/**
 * FHIR R4 validation against StructureDefinitions: see engine.ts for what is
 * checked. `Validator.create()` is cheap: the R4 definitions are read lazily,
 * per type / profile / value set, and compiled once.
 */
import type { Issue } from '../errors';
import { DomainCheck, Engine } from './engine';
import { ConformanceStore, ConformanceType } from './store';
import { userPatternIssues } from './userPatterns';
import { ProfileMap, SubmissionProfiles, submissionProfilesFor } from './profileMap';

export interface ValidateOptions {
  /** canonical URLs, optionally |version */
  profiles?: string[];
  mode?: 'create' | 'update' | 'delete';
  /**
   * An extension whose definition is not known: a warning (what a write does: R4 extensibility
   * asks not to refuse a resource for an extension one does not understand), or an error (a
   * conformance verdict, as the HL7 validator gives it). Decision 023.
   */
  unknownExtensions?: 'warning' | 'error';
}

export type { DomainCheck } from './engine';
export { isParseError } from './engine';

const CONFORMANCE_TYPES: string[] = ['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire'] satisfies ConformanceType[];

const SEVERITY_ORDER: Record<string, number> = { fatal: 0, error: 1, warning: 2, information: 3 };

export class Validator {
  private readonly store: ConformanceStore;
  private readonly engine: Engine;
  /** problems met while loading the conformance directories */
  readonly loadIssues: Issue[];

  /** Domain checks that read conformance resources through a validator: made again for each layer (withDefinitions). */
  private readonly boundChecks: ((validator: Validator) => DomainCheck)[] = [];
  /** the checks those made for this validator */
  private readonly boundInstances = new Set<DomainCheck>();

  private constructor(conformanceDirs: string[], parent?: ConformanceStore) {
    this.store = new ConformanceStore(parent);
    this.engine = new Engine(this.store);
    this.loadIssues = this.store.loadDirs(conformanceDirs);
  }

  /** Base R4 definitions + every StructureDefinition/ValueSet/CodeSystem/Questionnaire JSON file found (recursively) under the given dirs. */
  static create(options?: { conformanceDirs?: string[] }): Validator {
    return new Validator(options?.conformanceDirs ?? []);
  }

  /** Every issue found; error/fatal = invalid. */
  validate(resource: unknown, options?: ValidateOptions): Issue[] {
    const issues: Issue[] = [];
    if (options?.mode === 'delete') return issues;
    const res: any = resource;
    try {
      this.engine.validateResource(res, typeof res?.resourceType === 'string' ? res.resourceType : 'Resource', issues, {
        requested: options?.profiles,
        top: true,
        strictExtensions: options?.unknownExtensions === 'error',
      });
    } catch (e) {
      // a validator defect must not reject a resource that may well be valid (a false error is worse than a missed one)
      issues.push({
        severity: 'warning',
        code: 'exception',
        diagnostics: `Validation could not be completed: ${(e as Error)?.message ?? String(e)}`,
        expression: [typeof res?.resourceType === 'string' ? res.resourceType : 'Resource'],
      });
    }
    if (options?.mode === 'update' && res && typeof res === 'object' && typeof res.resourceType === 'string' && res.id === undefined) {
      issues.push({ severity: 'error', code: 'required', diagnostics: 'Resource requires an id, but none is present', expression: [res.resourceType] });
    }
    return dedupe(issues);
  }

  /**
   * Register a conformance resource at run time. A differential-only
   * StructureDefinition gets its snapshot generated from its baseDefinition.
   * Returns issues if it cannot be used (errors: it was not registered), among them
   * regular expressions that RE2 cannot run (userPatterns.ts).
   */
  addConformanceResource(resource: any): Issue[] {
    const refused = userPatternIssues(resource);
    return refused.length ? refused : this.store.add(resource);
  }

  /**
   * The issues addConformanceResource would return, without registering anything: a write
   * is refused before it commits, and the resource is registered only once it has
   * committed. The store is left as it was (synchronously: no other caller sees the trial).
   */
  checkConformanceResource(resource: any): Issue[] {
    const refused = userPatternIssues(resource);
    if (refused.length) return refused;
    const type = resource?.resourceType;
    const url = resource?.url;
    const known = typeof url === 'string' && CONFORMANCE_TYPES.includes(type);
    const before = known ? this.store.customResources(type).filter((r) => r.url === url) : [];
    try {
      return this.store.add(resource);
    } finally {
      if (known) {
        this.store.remove(type, url);
        for (const r of before) this.store.add(r);
      }
    }
  }

  removeConformanceResource(resourceType: string, url: string): void {
    this.store.remove(resourceType, url);
  }

  /** Whether R4 defines a resource type of this name (validation needs no storage of it). */
  isResourceType(name: string): boolean {
    return this.store.isResourceType(name);
  }

  hasProfile(url: string): boolean {
    return !!this.store.structure(url);
  }

  /** Our own (non-core) conformance resources loaded from dirs or added. */
  conformanceResources(resourceType: ConformanceType): any[] {
    return this.store.customResources(resourceType);
  }

  /** The StructureDefinition (with snapshot, generated if needed) for a canonical URL. */
  structureDefinition(url: string): any | undefined {
    return this.store.structureDefinition(url);
  }

  /** The codes of a ValueSet this server holds (its cached expansion), for token :in / :not-in. */
  valueSetCodes(url: string): { system?: string; code: string }[] | undefined {
    return this.store.resource('ValueSet', url) ? this.store.terminology.expand(url) : undefined;
  }

  expandValueSet(url: string, options?: { filter?: string; count?: number; offset?: number }): any | undefined {
    const vs = this.store.resource('ValueSet', url);
    if (!vs) return undefined;
    const all = this.store.terminology.expand(url);
    if (!all) return undefined;
    const filter = options?.filter?.toLowerCase();
    const matching = filter
      ? all.filter((c) => c.code.toLowerCase().includes(filter) || (c.display ?? '').toLowerCase().includes(filter))
      : all;
    const offset = Math.max(0, options?.offset ?? 0);
    const count = options?.count !== undefined ? Math.max(0, options.count) : matching.length;
    const page = matching.slice(offset, offset + count);
    const { text: _text, ...rest } = vs;
    return {
      ...rest,
      expansion: {
        identifier: `urn:uuid:${cryptoRandomUuid()}`,
        timestamp: new Date().toISOString(),
        total: matching.length,
        offset,
        ...(filter ? { parameter: [{ name: 'filter', valueString: options!.filter }] } : {}),
        contains: page,
      },
    };
  }

  validateCode(args: { url?: string; system?: string; code: string; display?: string; codeSystemUrl?: string }): {
    result: boolean;
    message?: string;
    display?: string;
  } {
    const term = this.store.terminology;
    const system = args.codeSystemUrl ?? args.system;
    let display: string | undefined;
    if (system) {
      const r = term.lookup(system, args.code);
      if (r?.found) display = r.concept?.display;
      if (args.codeSystemUrl || !args.url) {
        if (!r) {
          return { result: false, message: term.codeSystem(system) ? `Cannot validate code '${args.code}': CodeSystem ${system} content is not complete here` : `CodeSystem ${system} is not known` };
        }
        if (!r.found) return { result: false, message: `Unknown code '${args.code}' in the CodeSystem '${system}'` };
      }
    }
    if (args.url) {
      if (!term.hasValueSet(args.url)) return { result: false, message: `ValueSet ${args.url} is not known` };
      const r = term.inValueSet(args.url, args.system, args.code);
      if (r === undefined) return { result: false, message: `The code '${args.code}' could not be validated against the value set ${args.url} (content not available here)` };
      if (!r) return { result: false, message: `The code '${args.system ? args.system + '#' : ''}${args.code}' is not in the value set ${args.url}` };
      if (!display && !args.system) {
        const exp = term.expand(args.url);
        display = exp?.find((c) => c.code === args.code)?.display;
      }
    }
    if (args.display !== undefined && display !== undefined && args.display.trim().toLowerCase() !== display.trim().toLowerCase()) {
      return { result: false, message: `Wrong Display Name '${args.display}' for ${system ?? ''}#${args.code}. Valid display is '${display}'`, display };
    }
    return { result: true, ...(display !== undefined ? { display } : {}) };
  }

  /** Membership of a code in a ValueSet this validator holds: true / false / undefined (cannot decide here). */
  inValueSet(url: string, system: string | undefined, code: string): boolean | undefined {
    return this.store.terminology.inValueSet(url, system, code);
  }

  /** Hook for domain checks that a StructureDefinition cannot express. */
  addDomainCheck(check: DomainCheck): void {
    this.engine.domainChecks.push(check);
  }

  /**
   * A domain check that looks conformance resources up through the validator it is given
   * (a QuestionnaireResponse's Questionnaire, a ValueSet's codes): a layer made by
   * withDefinitions gets its own, which also sees the supplied definitions.
   */
  addBoundDomainCheck(make: (validator: Validator) => DomainCheck): void {
    this.boundChecks.push(make);
    const check = make(this);
    this.boundInstances.add(check);
    this.engine.domainChecks.push(check);
  }

  /**
   * A validator for one validation whose context adds the given definitions (decision 028):
   * they are looked up before this validator's own, are not judged (as the reference
   * validator takes the definitions it is given) and are never added here. Only regular
   * expressions RE2 cannot run are refused (the issues; then no validator is made).
   */
  withDefinitions(definitions: any[]): { validator?: Validator; issues: Issue[] } {
    const issues = definitions.flatMap((d) => userPatternIssues(d));
    if (issues.length) return { issues };
    const layer = new Validator([], this.store);
    layer.store.register(definitions);
    // the checks in the order they were added here, the bound ones made again for the layer
    for (const check of this.engine.domainChecks) {
      if (!this.boundInstances.has(check)) layer.engine.domainChecks.push(check);
    }
    for (const make of this.boundChecks) layer.addBoundDomainCheck(make);
    layer.engine.profileMap = this.engine.profileMap;
    return { validator: layer, issues: [] };
  }

  /** Which of our profiles apply by default, and which official profiles they implement (profiles/profile-map.json). */
  useProfileMap(map: ProfileMap): void {
    this.engine.profileMap = map;
  }

  /** The profiles an MHD submission for this Patient meets, claimed or not (profile-map.json `submissions`); none when it is no national record. */
  submissionProfiles(patient: Record<string, unknown>): SubmissionProfiles | undefined {
    return submissionProfilesFor(this.engine.profileMap, patient);
  }

  /** The profiles that apply by default (for the CapabilityStatement). */
  defaultProfiles(): ProfileMap['defaults'] {
    return this.engine.profileMap.defaults;
  }
}

function dedupe(issues: Issue[]): Issue[] {
  const seen = new Set<string>();
  const out: Issue[] = [];
  for (const i of issues) {
    const k = `${i.severity}|${i.code}|${(i.expression ?? []).join(',')}|${i.diagnostics}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(i);
  }
  // stable: errors first, keeping document order within a severity
  return out
    .map((i, n) => ({ i, n }))
    .sort((a, b) => (SEVERITY_ORDER[a.i.severity] - SEVERITY_ORDER[b.i.severity]) || a.n - b.n)
    .map((x) => x.i);
}

function cryptoRandomUuid(): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('crypto') as typeof import('crypto')).randomUUID();
}
