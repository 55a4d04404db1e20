import { forbiddenChanges, IS_ARCHIVED_URL, refusedValues } from './documentMetadataPatch';

const A07 = 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument';
const stored = {
  resourceType: 'DocumentReference',
  id: 'd1',
  meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00Z', profile: ['p'] },
  extension: [{ url: 'https://example.org/other', valueString: 'x' }],
  status: 'current',
  description: 'compte rendu',
  securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] }],
  subject: { reference: 'Patient/p1' },
};
type Json = Record<string, any>;
const edit = (change: (r: Json) => void): Json => {
  const r = JSON.parse(JSON.stringify(stored)) as Json;
  change(r);
  return r;
};

describe('what a PDSm PATCH of a DocumentReference may change', () => {
  it.each<[string, (r: Json) => void]>([
    ['the status', (r) => (r.status = 'superseded')],
    ['the securityLabel', (r) => (r.securityLabel = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }])],
    ['the visibility labels in meta.security', (r) => (r.meta.security = [{ system: A07, code: 'MASQUE_PS' }])],
    ['the isArchived extension, added', (r) => r.extension.push({ url: IS_ARCHIVED_URL, valueBoolean: true })],
    ['the isArchived extension, placed first', (r) => r.extension.unshift({ url: IS_ARCHIVED_URL, valueBoolean: false })],
    ['the version stamps', (r) => ((r.meta.versionId = '7'), (r.meta.lastUpdated = '2027-01-01T00:00:00Z'))],
    ['nothing', () => undefined],
  ])('allows %s', (_, change) => {
    expect(forbiddenChanges(stored, edit(change))).toEqual([]);
  });

  it.each<[string, (r: Json) => void, string[]]>([
    ['the description', (r) => (r.description = 'autre'), ['DocumentReference.description']],
    ['the subject', (r) => (r.subject = { reference: 'Patient/p2' }), ['DocumentReference.subject']],
    ['a new element', (r) => (r.type = { text: 'x' }), ['DocumentReference.type']],
    ['a removed element', (r) => delete r.description, ['DocumentReference.description']],
    ['another extension', (r) => (r.extension[0].valueString = 'y'), ['DocumentReference.extension (other than isArchived)']],
    ['meta.profile', (r) => (r.meta.profile = []), ['DocumentReference.meta.profile']],
    ['meta.tag and the content', (r) => ((r.meta.tag = [{ code: 't' }]), (r.content = [])), ['DocumentReference.content', 'DocumentReference.meta.tag']],
  ])('refuses %s', (_, change, expected) => {
    expect(forbiddenChanges(stored, edit(change))).toEqual(expected);
  });
});

describe('values a PATCH may not give the allowed elements', () => {
  it('refuses a visibility code added to securityLabel, not one already there', () => {
    const added = edit((r) => r.securityLabel.push({ coding: [{ system: A07, code: 'MASQUE_PS' }] }));
    expect(refusedValues(stored, added).map((i) => i.expression)).toEqual([['DocumentReference.securityLabel[1]']]);
    expect(refusedValues(added, edit((r) => (r.securityLabel = added.securityLabel)))).toEqual([]);
  });

  it('refuses entered-in-error (deletion is DELETE), and allows superseded and current', () => {
    expect(refusedValues(stored, edit((r) => (r.status = 'entered-in-error'))).map((i) => i.expression)).toEqual([['DocumentReference.status']]);
    expect(refusedValues(stored, edit((r) => (r.status = 'superseded')))).toEqual([]);
  });

  it('refuses an isArchived extension without a boolean, or twice', () => {
    expect(refusedValues(stored, edit((r) => r.extension.push({ url: IS_ARCHIVED_URL, valueString: 'true' })))).toHaveLength(1);
    expect(refusedValues(stored, edit((r) => r.extension.push({ url: IS_ARCHIVED_URL, valueBoolean: true }, { url: IS_ARCHIVED_URL, valueBoolean: false })))).toHaveLength(1);
    expect(refusedValues(stored, edit((r) => r.extension.push({ url: IS_ARCHIVED_URL, valueBoolean: true })))).toEqual([]);
  });
});
