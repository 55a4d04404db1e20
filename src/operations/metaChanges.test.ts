import fs from 'node:fs';
import path from 'node:path';
import { FhirError } from '../errors';
import { createServerValidator } from '../validation/forServer';
import { addToMeta, deleteFromMeta, metaSets, sameSets, setsOf } from './metaChanges';
import { OPERATIONS } from './registry';

const A07 = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
const mask = { system: A07, code: 'MASQUE_PS' };
const stored = { versionId: '3', lastUpdated: '2026-01-01T00:00:00Z', profile: ['urn:p1'], tag: [{ system: 'urn:t', code: 'a', display: 'A' }], security: [{ system: A07, code: 'INVISIBLE_PATIENT' }] };

describe('$meta-add and $meta-delete as set operations', () => {
  it.each([
    ['adds a label the resource lacks, after the others', { security: [mask] }, { ...stored, security: [...stored.security, mask] }],
    ['a label already there is not duplicated (display and version ignored)', { security: [{ ...stored.security[0], display: 'other', version: '2' }] }, stored],
    ['a tag of the same code in another system is another tag', { tag: [{ system: 'urn:u', code: 'a' }] }, { ...stored, tag: [...stored.tag, { system: 'urn:u', code: 'a' }] }],
    ['a tag without system differs from one with', { tag: [{ code: 'a' }] }, { ...stored, tag: [...stored.tag, { code: 'a' }] }],
    ['profiles match by full URL', { profile: ['urn:p1', 'urn:p2', 'urn:p2'] }, { ...stored, profile: ['urn:p1', 'urn:p2'] }],
    ['to a resource without meta lists', { security: [mask] }, { security: [mask] }, {}],
  ])('add: %s', (_n, add, expected, meta: Record<string, unknown> = stored) => {
    expect(addToMeta(meta, metaSets(add))).toEqual(expected);
  });

  it.each([
    ['removes a label (display ignored); an emptied list goes', { security: [{ system: A07, code: 'INVISIBLE_PATIENT', display: 'x' }] }, { versionId: '3', lastUpdated: stored.lastUpdated, profile: stored.profile, tag: stored.tag }],
    ['a label that is absent is not an error and changes nothing', { security: [mask] }, stored],
    ['a code in another system is not removed', { tag: [{ system: 'urn:u', code: 'a' }] }, stored],
    ['removes a profile by full URL', { profile: ['urn:p1'] }, { versionId: '3', lastUpdated: stored.lastUpdated, tag: stored.tag, security: stored.security }],
  ])('delete: %s', (_n, remove, expected) => {
    expect(deleteFromMeta(stored, metaSets(remove))).toEqual(expected);
  });

  it('sameSets compares profiles, tags and labels, not version and date', () => {
    expect(sameSets(stored, { ...stored, versionId: '9', lastUpdated: 'x' })).toBe(true);
    expect(sameSets(stored, addToMeta(stored, { security: [mask] }))).toBe(false);
    expect(sameSets({}, { security: [] })).toBe(true);
    expect(setsOf(stored)).toEqual({ profile: stored.profile, tag: stored.tag, security: stored.security });
  });

  it.each([
    ['not a Meta', 'MASQUE_PS'],
    ['a label without code', { security: [{ system: A07 }] }],
    ['a label that is not a Coding', { security: ['MASQUE_PS'] }],
    ['a list that is not an array', { tag: { code: 'x' } }],
    ['a profile that is not a URL string', { profile: [42] }],
  ])('refuses %s with 400', (_n, value) => {
    try {
      metaSets(value);
      throw new Error('accepted');
    } catch (e) {
      expect((e as FhirError).status).toBe(400);
    }
  });
});

describe('our OperationDefinitions (profiles/OperationDefinition)', () => {
  const dir = path.resolve(__dirname, '../../profiles/OperationDefinition');
  const files = fs.readdirSync(dir).map((f) => ({ file: f, res: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) }));
  const ours = OPERATIONS.filter((o) => o.definition.startsWith('https://fhir.dmp.esante.example/'));

  it('every operation of ours in the registry has its definition, and says the same', () => {
    expect(ours.length).toBeGreaterThan(0);
    for (const op of ours) {
      const def = files.find((f) => f.res.url === op.definition)?.res;
      expect([op.name, Boolean(def)]).toEqual([op.name, true]);
      expect(def).toMatchObject({ code: op.name, system: op.system, type: op.type, instance: op.instance, affectsState: op.affectsState });
      expect(def.resource).toEqual(op.types);
    }
  });

  it.each(files.map((f) => [f.file, f.res]))('%s is a valid R4 OperationDefinition named by its id', (file, res) => {
    expect(file).toBe(`${res.id}.json`);
    expect(res.url).toBe(`https://fhir.dmp.esante.example/OperationDefinition/${res.id}`);
    const errors = createServerValidator().validate(res).filter((i) => i.severity === 'error' || i.severity === 'fatal');
    expect(errors).toEqual([]);
  });
});
