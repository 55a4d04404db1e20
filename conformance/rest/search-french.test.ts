import { http, startTarget, Target } from '../harness';
import { DOCUMENT_CODES, withIns } from '../frenchFixtures';

/** Our own SearchParameters (profiles/SearchParameter) are served like the official ones. */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const RPPS = 'urn:oid:1.2.250.1.71.4.2.1';

it('finds a patient by INS (ins), ignoring other identifiers with the same value', async () => {
  const holder = await http(t.base, 'Patient', {
    method: 'POST',
    // an INS comes with the INS traits (the INS profile applies by default)
    json: withIns({ resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.250.1.999', value: 'IPP-1' }] }, INS_NIR, '295109912611193'),
  });
  await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.250.1.999', value: '295109912611193' }] } });
  const byIns = await http(t.base, 'Patient?ins=295109912611193');
  expect(byIns.status).toBe(200);
  expect(byIns.body.entry.map((e: any) => e.resource.id)).toEqual([holder.body.id]);
  const bySystem = await http(t.base, `Patient?ins=${encodeURIComponent(INS_NIR)}|295109912611193`);
  expect(bySystem.body.total).toBe(1);
  expect((await http(t.base, 'Patient?ins=IPP-1')).body.total).toBe(0);
});

it('finds a practitioner by RPPS and chains to it', async () => {
  const practitioner = await http(t.base, 'Practitioner', { method: 'POST', json: { resourceType: 'Practitioner', identifier: [{ system: RPPS, value: '810002909371' }] } });
  const patient = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Auteur-Chaîné' }] } });
  const doc = await http(t.base, 'DocumentReference', {
    method: 'POST',
    json: { resourceType: 'DocumentReference', status: 'current', ...DOCUMENT_CODES, subject: { reference: `Patient/${patient.body.id}` }, author: [{ reference: `Practitioner/${practitioner.body.id}` }], content: [{ attachment: { contentType: 'text/plain', url: 'https://documents.example.org/1' } }] },
  });
  expect((await http(t.base, 'Practitioner?rpps=810002909371')).body.entry[0].resource.id).toBe(practitioner.body.id);
  const chained = await http(t.base, 'DocumentReference?author:Practitioner.rpps=810002909371');
  expect(chained.body.entry.map((e: any) => e.resource.id)).toEqual([doc.body.id]);
});

it('declares them in the CapabilityStatement with their canonical URL', async () => {
  const cs = await http(t.base, 'metadata');
  const patient = cs.body.rest[0].resource.find((r: any) => r.type === 'Patient');
  expect(patient.searchParam.find((p: any) => p.name === 'ins')).toMatchObject({ type: 'token', definition: 'https://fhir.dmp.esante.example/SearchParameter/Patient-ins' });
});
