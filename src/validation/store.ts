/**
 * Conformance resources: the R4 core definitions (lazy) plus our own
 * StructureDefinitions / ValueSets / CodeSystems / Questionnaires (loaded from
 * directories or added at run time). Compiled structures are cached per
 * canonical URL.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Issue } from '../errors';
import { coreStructureDefinition, coreTerminology, isResourceType } from './loader';
import { compileStructure, CompiledStructure } from './model';
import { generateSnapshot } from './snapshot';
import { Terminology } from './terminology';

export type ConformanceType = 'StructureDefinition' | 'ValueSet' | 'CodeSystem' | 'Questionnaire';
const TYPES: ConformanceType[] = ['StructureDefinition', 'ValueSet', 'CodeSystem', 'Questionnaire'];

export const CORE_SD = 'http://hl7.org/fhir/StructureDefinition/';

function splitCanonical(url: string): [string, string | undefined] {
  const bar = url.indexOf('|');
  return bar >= 0 ? [url.slice(0, bar), url.slice(bar + 1)] : [url, undefined];
}

export class ConformanceStore {
  private custom = new Map<ConformanceType, Map<string, any[]>>(TYPES.map((t) => [t, new Map()]));
  private compiled = new Map<string, CompiledStructure | null>();
  private snapshots = new Map<string, any | null>();
  private generating = new Set<string>();
  readonly snapshotIssues = new Map<string, string[]>();
  readonly terminology: Terminology;

  /**
   * With a parent, a layer over it: this store's own resources are looked up first, then the
   * parent's (decision 028, definitions supplied to one validation). The parent is only read.
   */
  constructor(private readonly parent?: ConformanceStore) {
    this.terminology = new Terminology({
      valueSet: (url) => this.resource('ValueSet', url),
      codeSystem: (url) => this.resource('CodeSystem', url),
    });
  }

  /** A custom resource, else a core one. */
  resource(type: ConformanceType, canonical: string): any | undefined {
    const [url, version] = splitCanonical(canonical);
    const list = this.custom.get(type)!.get(url);
    if (list?.length) {
      if (version) {
        const v = list.find((r) => r.version === version);
        if (v) return v;
      } else {
        return list[list.length - 1];
      }
    }
    if (this.parent) return this.parent.resource(type, canonical);
    if (type === 'StructureDefinition') return coreStructureDefinition(url);
    if (type === 'ValueSet' || type === 'CodeSystem') return coreTerminology(type, url);
    return undefined;
  }

  isCustom(type: ConformanceType, canonical: string): boolean {
    return !!this.custom.get(type)!.get(splitCanonical(canonical)[0])?.length || !!this.parent?.isCustom(type, canonical);
  }

  /** Whether this layer itself holds the canonical URL (not its parent). */
  private ownsCanonical(type: ConformanceType, canonical: string): boolean {
    return !!this.custom.get(type)!.get(splitCanonical(canonical)[0])?.length;
  }

  /**
   * A layer passes the R4 core definitions to its parent (they do not depend on the layer,
   * and the parent's compiled cache is shared); anything the layer holds, or that may derive
   * from something it holds, is its own.
   */
  private fromParent(canonical: string): boolean {
    return !!this.parent && canonical.startsWith(CORE_SD) && !this.ownsCanonical('StructureDefinition', canonical);
  }

  customResources(type: ConformanceType): any[] {
    const out: any[] = this.parent ? this.parent.customResources(type) : [];
    for (const list of this.custom.get(type)!.values()) out.push(...list);
    return out;
  }

  /** A StructureDefinition with a snapshot (generated when it only has a differential). */
  structureDefinition(canonical: string): any | undefined {
    if (this.fromParent(canonical)) return this.parent!.structureDefinition(canonical);
    const [url, version] = splitCanonical(canonical);
    const key = version ? `${url}|${version}` : url;
    if (this.snapshots.has(key)) return this.snapshots.get(key) ?? undefined;
    const sd = this.resource('StructureDefinition', canonical);
    if (!sd) return undefined;
    if (sd.snapshot?.element?.length) {
      this.snapshots.set(key, sd);
      return sd;
    }
    if (this.generating.has(key)) return undefined;
    this.generating.add(key);
    try {
      const res = generateSnapshot(sd, (u) => this.structureDefinition(u));
      if (res.issues.length) this.snapshotIssues.set(url, res.issues);
      if (!res.elements.length) {
        this.snapshots.set(key, null);
        return undefined;
      }
      const withSnap = { ...sd, snapshot: { element: res.elements } };
      this.snapshots.set(key, withSnap);
      return withSnap;
    } finally {
      this.generating.delete(key);
    }
  }

  /** The compiled structure for a canonical URL (profile, extension, type or resource). */
  structure(canonical: string): CompiledStructure | undefined {
    if (this.fromParent(canonical)) return this.parent!.structure(canonical);
    const hit = this.compiled.get(canonical);
    if (hit !== undefined) return hit ?? undefined;
    const sd = this.structureDefinition(canonical);
    const cs = sd ? compileStructure(sd, !this.isCustom('StructureDefinition', canonical) && canonical.startsWith(CORE_SD)) : null;
    this.compiled.set(canonical, cs);
    return cs ?? undefined;
  }

  /** Core definition of a type or resource by name (cached with the other compiled structures). */
  typeStructure(type: string): CompiledStructure | undefined {
    return this.structure(CORE_SD + type);
  }

  isResourceType(name: string): boolean {
    return isResourceType(name);
  }

  private invalidate(): void {
    this.compiled.clear();
    this.snapshots.clear();
    this.snapshotIssues.clear();
    this.terminology.clear();
  }

  add(resource: any): Issue[] {
    const type = resource?.resourceType as ConformanceType;
    if (!TYPES.includes(type)) {
      return [
        {
          severity: 'error',
          code: 'not-supported',
          diagnostics: `Resource type ${String(resource?.resourceType)} is not a supported conformance resource (StructureDefinition, ValueSet, CodeSystem, Questionnaire)`,
        },
      ];
    }
    if (typeof resource.url !== 'string' || !resource.url) {
      return [{ severity: 'error', code: 'required', diagnostics: `${type} has no url, so it cannot be used`, expression: [`${type}.url`] }];
    }
    const issues: Issue[] = [];
    const map = this.custom.get(type)!;
    const list = (map.get(resource.url) ?? []).filter((r) => r.version !== resource.version);
    list.push(resource);
    map.set(resource.url, list);
    this.invalidate();
    if (type === 'StructureDefinition') {
      if (!resource.snapshot?.element?.length && !resource.differential?.element?.length) {
        issues.push({ severity: 'error', code: 'invalid', diagnostics: `StructureDefinition ${resource.url} has neither snapshot nor differential`, expression: ['StructureDefinition'] });
      } else if (resource.derivation === 'specialization' && !resource.snapshot) {
        issues.push({
          severity: 'error',
          code: 'not-supported',
          diagnostics: `StructureDefinition ${resource.url} is a specialization without a snapshot: only constraints (profiles) can have their snapshot generated here`,
          expression: ['StructureDefinition'],
        });
      } else {
        const sd = this.structureDefinition(resource.url + (resource.version ? `|${resource.version}` : ''));
        if (!sd) {
          issues.push({
            severity: 'error',
            code: 'not-found',
            diagnostics: `StructureDefinition ${resource.url}: no snapshot could be generated (base definition ${resource.baseDefinition} not known)`,
            expression: ['StructureDefinition.baseDefinition'],
          });
        }
        for (const msg of this.snapshotIssues.get(resource.url) ?? []) {
          issues.push({ severity: 'warning', code: 'incomplete', diagnostics: msg, expression: ['StructureDefinition.differential'] });
        }
      }
      if (issues.some((i) => i.severity === 'error')) this.remove(type, resource.url, resource.version);
    }
    return issues;
  }

  remove(type: string, url: string, version?: string): void {
    const map = this.custom.get(type as ConformanceType);
    if (!map) return;
    const [u, v] = splitCanonical(url);
    const ver = version ?? v;
    if (ver) {
      const list = (map.get(u) ?? []).filter((r) => r.version !== ver);
      if (list.length) map.set(u, list);
      else map.delete(u);
    } else {
      map.delete(u);
    }
    this.invalidate();
  }

  /** Load every conformance resource found (recursively) in the directories: JSON files, Bundles included. */
  loadDirs(dirs: string[]): Issue[] {
    const issues: Issue[] = [];
    const found: any[] = [];
    const visit = (p: string) => {
      let st: fs.Stats;
      try {
        st = fs.statSync(p);
      } catch {
        return;
      }
      if (st.isDirectory()) {
        for (const f of fs.readdirSync(p).sort()) visit(path.join(p, f));
        return;
      }
      if (!p.endsWith('.json')) return;
      let json: any;
      try {
        json = JSON.parse(fs.readFileSync(p, 'utf8'));
      } catch (e) {
        issues.push({ severity: 'warning', code: 'invalid', diagnostics: `Cannot parse ${p}: ${(e as Error).message}` });
        return;
      }
      const collect = (r: any) => {
        if (Array.isArray(r)) r.forEach(collect);
        else if (r?.resourceType === 'Bundle') for (const e of r.entry ?? []) collect(e.resource);
        else if (TYPES.includes(r?.resourceType) && typeof r.url === 'string') found.push(r);
      };
      collect(json);
    };
    for (const d of dirs) visit(d);
    // register all first (profiles may depend on each other), then check they can be used
    this.register(found);
    return issues;
  }

  /**
   * Registers conformance resources as they are, without judging them (each is looked up
   * lazily when a validation needs it): the directories above, and the definitions supplied
   * to one validation (decision 028). Resources of other types or without a url are ignored.
   */
  register(resources: any[]): void {
    for (const r of resources) {
      if (!TYPES.includes(r?.resourceType) || typeof r.url !== 'string' || !r.url) continue;
      const map = this.custom.get(r.resourceType)!;
      const list = (map.get(r.url) ?? []).filter((x) => x.version !== r.version);
      list.push(r);
      map.set(r.url, list);
    }
    this.invalidate();
  }
}
