import { localTarget, namedId, referencedId, referenceTarget, typedId } from './referenceString';

describe('referenceTarget', () => {
  it('reads a relative, an absolute and a version-specific reference', () => {
    expect(referenceTarget('Patient/p1')).toEqual({ base: undefined, resourceType: 'Patient', id: 'p1', version: undefined });
    expect(referenceTarget('https://h.example/fhir/Patient/p1/_history/3')).toEqual({ base: 'https://h.example/fhir', resourceType: 'Patient', id: 'p1', version: '3' });
    expect(referenceTarget('/Patient/p1')?.base).toBe('');
  });

  it('names nothing for a contained, a urn:, a search or a malformed reference', () => {
    for (const r of ['#c1', 'urn:uuid:0c8f3e4e-2f2b-4d8a-9d1b-5a4c3e2f1a0b', 'Patient?identifier=x', 'patient/p1', 'Patient/', 'Patient/a_b', `Patient/${'x'.repeat(65)}`]) {
      expect(referenceTarget(r)).toBeUndefined();
    }
  });

  it('takes a version that is no id only when asked to', () => {
    expect(referenceTarget('Patient/p1/_history/a_b')).toBeUndefined();
    expect(referenceTarget('Patient/p1/_history/a_b', true)).toMatchObject({ resourceType: 'Patient', id: 'p1', version: 'a_b' });
  });
});

describe('localTarget', () => {
  it('reads a relative reference and one under the base, not one under another base', () => {
    expect(localTarget('Patient/p1/_history/2', undefined)).toMatchObject({ resourceType: 'Patient', id: 'p1', version: '2' });
    expect(localTarget('https://h.example/fhir/Patient/p1', 'https://h.example/fhir/')).toMatchObject({ resourceType: 'Patient', id: 'p1' });
    expect(localTarget('https://other.example/fhir/Patient/p1', 'https://h.example/fhir/')).toBeUndefined();
    expect(localTarget('https://h.example/fhir/x/Patient/p1', 'https://h.example/fhir/')).toBeUndefined();
  });
});

describe('typedId and referencedId', () => {
  it('gives Type/id of any reference to a resource, whatever its version', () => {
    expect(typedId('https://h.example/fhir/Practitioner/d1/_history/x_y')).toBe('Practitioner/d1');
    expect(typedId(42)).toBeUndefined();
    expect(typedId('#c1')).toBeUndefined();
  });

  it('gives the id of a reference to the type named, not version-specific', () => {
    expect(referencedId('Patient/p1', 'Patient')).toBe('p1');
    expect(referencedId('https://h.example/fhir/Patient/p1', 'Patient')).toBe('p1');
    expect(referencedId('Patient/p1/_history/2', 'Patient')).toBeUndefined();
    expect(referencedId('RelatedPerson/r1', 'Patient')).toBeUndefined();
    expect(referencedId('XPatient/p1', 'Patient')).toBeUndefined();
  });
});

describe('namedId', () => {
  it.each([
    ['Patient/p1', 'p1'],
    ['Patient/p1/_history/2', 'p1'],
    ['https://elsewhere.example/fhir/Patient/p1/_history/2', 'p1'],
    ['Practitioner/p1', undefined],
    ['urn:uuid:0a1b', undefined],
    ['#contained', undefined],
  ])('%s names Patient %s', (reference, id) => {
    expect(namedId(reference, 'Patient')).toBe(id);
  });
});
