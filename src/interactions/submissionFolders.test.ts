import { DESIGNATION_TYPE, folderIssues } from './submissionFolders';

const MHD = 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes';
type Json = Record<string, any>;
const designation = { url: DESIGNATION_TYPE, valueCodeableConcept: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] } };
const list = (code: string, extra: Json = {}): Json => ({ resourceType: 'List', code: { coding: [{ system: MHD, code }] }, subject: { reference: 'Patient/p1' }, ...extra });
const folder = (extra: Json = {}) => list('folder', { extension: [designation], entry: [{ item: { reference: 'urn:uuid:d1' } }], ...extra });
const bundle = (f: Json, more: { fullUrl?: string; resource?: Json }[] = []) => [
  { fullUrl: 'urn:uuid:s1', resource: list('submissionset') },
  { fullUrl: 'urn:uuid:d1', resource: { resourceType: 'DocumentReference', subject: { reference: 'Patient/p1' } } },
  { fullUrl: 'urn:uuid:b1', resource: { resourceType: 'Binary' } },
  { fullUrl: 'urn:uuid:d2', resource: { resourceType: 'DocumentReference', subject: { reference: 'Patient/p2' } } },
  { fullUrl: 'urn:uuid:f1', resource: f },
  ...more,
];
const expressions = (f: Json) => folderIssues(bundle(f)).map((i) => i.expression![0]);

describe('the Folders of a provide Bundle', () => {
  it.each<[string, Json]>([
    ['a Folder of a document of the Bundle', folder()],
    ['a Folder of a stored document', folder({ entry: [{ item: { reference: 'DocumentReference/abc' } }] })],
    ['a Folder of a stored document, absolute and versioned', folder({ entry: [{ item: { reference: 'https://x.example/fhir/DocumentReference/abc/_history/2' } }] })],
    ['a Folder whose fullUrl case differs (urn:uuid)', folder({ entry: [{ item: { reference: 'URN:UUID:D1' } }] })],
  ])('accepts %s', (_, f) => {
    expect(expressions(f)).toEqual([]);
  });

  it.each<[string, Json, string[]]>([
    ['no designationType', folder({ extension: [] }), ['Bundle.entry[4].resource.extension']],
    ['two designationTypes', folder({ extension: [designation, designation] }), ['Bundle.entry[4].resource.extension']],
    ['a designationType without a value', folder({ extension: [{ url: DESIGNATION_TYPE }] }), ['Bundle.entry[4].resource.extension']],
    ['no entry', folder({ entry: [] }), ['Bundle.entry[4].resource.entry']],
    ['an entry naming a Binary', folder({ entry: [{ item: { reference: 'urn:uuid:b1' } }] }), ['Bundle.entry[4].resource.entry[0].item']],
    ['an entry naming a stored Patient', folder({ entry: [{ item: { reference: 'Patient/p1' } }] }), ['Bundle.entry[4].resource.entry[0].item']],
    ['an entry without a reference', folder({ entry: [{ item: { display: 'x' } }] }), ['Bundle.entry[4].resource.entry[0].item']],
    ["another patient's document", folder({ entry: [{ item: { reference: 'urn:uuid:d2' } }] }), ['Bundle.entry[4].resource.entry[0].item']],
    ["another patient's Folder", folder({ subject: { reference: 'Patient/p2' }, entry: [{ item: { reference: 'urn:uuid:d2' } }] }), ['Bundle.entry[4].resource.subject']],
  ])('refuses %s', (_, f, expected) => {
    expect(expressions(f)).toEqual(expected);
  });

  it('says nothing of Lists that are not Folders', () => {
    expect(folderIssues([{ resource: list('submissionset', { entry: [{ item: { reference: 'Patient/p1' } }] }) }])).toEqual([]);
  });
});
