import { DOCUMENT_CODES, withIns } from '../frenchFixtures';
import fs from 'node:fs';
import path from 'node:path';
import { nirKey } from '../../src/validation/domain';
import { http, startTarget, Target } from '../harness';

/**
 * The French PDSm document replacement (ITI-65 "remplacement"): one transaction posts the
 * new DocumentReference, its SubmissionSet List and Binary, and marks the replaced
 * document `superseded` with a FHIRPath Patch. Run on our own Bundle of that shape
 * (fixtures/pdsm), and on the official example too when this checkout has it.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const OFFICIAL = path.resolve(__dirname, '../../../shared/reference/examples/pdsm4dmp/examples/Bundle-example-td2-1-remplacement.json');
const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
// the official payloads stay outside the project: say so loudly when this checkout has none
if (!fs.existsSync(OFFICIAL)) console.warn(`the official PDSm example ${OFFICIAL} is absent: the replacement runs on our own fixture only`);
/** Our fixture's identifiers (urn:oid:1.2.250.1.999.1.*) made unique to this run: a registry refuses an identifier twice. */
const fresh = (text: string) => text.replaceAll('urn:oid:1.2.250.1.999.1.', `urn:oid:1.2.250.1.999.${Date.now()}${Math.floor(Math.random() * 1000)}.`);
const REPLACEMENTS = [path.resolve(__dirname, '../../fixtures/pdsm/replacement-bundle.json'), ...(fs.existsSync(OFFICIAL) ? [OFFICIAL] : [])];

it.each(REPLACEMENTS)('replaces a document (%s): new version created, the old one superseded, references resolved', async (file) => {
  // the example's INS has no valid key: a valid one, unique to this run, takes its place
  const body13 = `1${String(Date.now()).slice(-12)}`;
  const ins = body13 + nirKey(body13);
  const text = fresh(fs.readFileSync(file, 'utf8').replaceAll('123456789012345', ins));
  const bundle = JSON.parse(text);
  const suffix = String(Date.now());
  const replacedId = `doc-x-${suffix}`;
  const bundleText = JSON.stringify(bundle).replaceAll('DocumentReference/doc-x-id', `DocumentReference/${replacedId}`);

  const patient = await http(t.base, 'Patient', { method: 'POST', json: withIns({ resourceType: 'Patient', name: [{ family: 'Remplacement' }] }, INS_NIR, ins) });
  expect(patient.status).toBe(201);
  const old = await http(t.base, `DocumentReference/${replacedId}`, {
    method: 'PUT',
    json: {
      resourceType: 'DocumentReference',
      id: replacedId,
      status: 'current',
      ...DOCUMENT_CODES,
      subject: { reference: `Patient/${patient.body.id}` },
      content: [{ attachment: { contentType: 'application/xml', url: 'Binary/previous' } }],
    },
  });
  expect(old.status).toBe(201);

  const res = await http(t.base, '', { method: 'POST', body: bundleText, headers: { 'content-type': 'application/fhir+json' } });
  expect(res.status).toBe(200);
  expect(res.body.type).toBe('transaction-response');
  const statuses = res.body.entry.map((e: any) => e.response.status);
  expect(statuses).toEqual(['201 Created', '201 Created', '200 OK', '201 Created']);

  const replaced = await http(t.base, `DocumentReference/${replacedId}`);
  expect(replaced.body.status).toBe('superseded');
  expect(replaced.body.meta.versionId).toBe('2');

  const newDocId = /DocumentReference\/([^/]+)\//.exec(res.body.entry[1].response.location)![1];
  const newDoc = await http(t.base, `DocumentReference/${newDocId}`);
  expect(newDoc.body.subject.reference).toBe(`Patient/${patient.body.id}`);
  expect(newDoc.body.relatesTo[0]).toMatchObject({ code: 'replaces', target: { reference: `DocumentReference/${replacedId}` } });
  const binaryId = /Binary\/([^/]+)\//.exec(res.body.entry[3].response.location)![1];
  expect(newDoc.body.content[0].attachment.url).toBe(`Binary/${binaryId}`);
  const list = await http(t.base, `List/${/List\/([^/]+)\//.exec(res.body.entry[0].response.location)![1]}`);
  expect(list.body.entry[0].item.reference).toBe(`DocumentReference/${newDocId}`);

  // the patient's current documents: the new one, not the superseded one
  const current = await http(t.base, `DocumentReference?patient=${patient.body.id}&status=current`);
  expect(current.body.entry.map((e: any) => e.resource.id)).toEqual([newDocId]);
});

it("refuses a replacement of another record's document (422), leaving it current", async () => {
  const body13 = `1${String(Date.now()).slice(-12)}`;
  const ins = body13 + nirKey(body13);
  const text = fresh(fs.readFileSync(REPLACEMENTS[0], 'utf8').replaceAll('123456789012345', ins));
  const patient = await http(t.base, 'Patient', { method: 'POST', json: withIns({ resourceType: 'Patient', name: [{ family: 'Soumis' }] }, INS_NIR, ins) });
  const other = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Autre' }] } });
  expect([patient.status, other.status]).toEqual([201, 201]);
  const elsewhereId = `doc-other-${Date.now()}`;
  const elsewhere = await http(t.base, `DocumentReference/${elsewhereId}`, {
    method: 'PUT',
    json: { resourceType: 'DocumentReference', id: elsewhereId, status: 'current', ...DOCUMENT_CODES, subject: { reference: `Patient/${other.body.id}` }, content: [{ attachment: { contentType: 'application/xml', url: 'Binary/previous' } }] },
  });
  expect(elsewhere.status).toBe(201);
  // the submission itself supersedes the other record's document with its own PATCH: still refused
  const res = await http(t.base, '', { method: 'POST', body: text.replaceAll('DocumentReference/doc-x-id', `DocumentReference/${elsewhereId}`), headers: { 'content-type': 'application/fhir+json' } });
  expect(res.status).toBe(422);
  expect(JSON.stringify(res.body)).toMatch(/belongs to another record/);
  const after = await http(t.base, `DocumentReference/${elsewhereId}`);
  expect([after.body.status, after.body.meta.versionId]).toEqual(['current', '1']);
});

const IHE_PROVIDE = path.resolve(__dirname, '../../../shared/reference/examples/ihe-mhd/examples-json/provide-bundle-with-fhir-document.json');
if (!fs.existsSync(IHE_PROVIDE)) console.warn(`the official IHE MHD example ${IHE_PROVIDE} is absent: the provide Bundle runs on our own fixture only`);
const PROVIDES = [path.resolve(__dirname, '../../fixtures/mhd/provide-bundle-with-fhir-document.json'), ...(fs.existsSync(IHE_PROVIDE) ? [IHE_PROVIDE] : [])];

it.each(PROVIDES)('stores an IHE MHD provide Bundle carrying a FHIR document (%s): the document keeps its own references', async (file) => {
  const bundle = JSON.parse(fs.readFileSync(file, 'utf8'));
  // a provide Bundle's subject is a Patient the recipient already knows (references are enforced): create those it names
  for (const id of new Set([...JSON.stringify(bundle).matchAll(/"reference":"Patient\/([A-Za-z0-9\-.]{1,64})"/g)].map((m) => m[1]))) {
    const put = await http(t.base, `Patient/${id}`, { method: 'PUT', json: { resourceType: 'Patient', id, name: [{ family: 'Provide' }] } });
    expect([200, 201]).toContain(put.status);
  }
  const res = await http(t.base, '', { method: 'POST', json: bundle });
  expect(res.status).toBe(200);
  expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201 Created', '201 Created', '201 Created']);
  const documentId = /Bundle\/([^/]+)\//.exec(res.body.entry[2].response.location)![1];
  const stored = await http(t.base, `Bundle/${documentId}`);
  // references inside the document point at the document's own entries, untouched
  expect(JSON.stringify(stored.body)).toBe(JSON.stringify({ ...bundle.entry[2].resource, id: documentId, meta: stored.body.meta }));
  const docRef = await http(t.base, `DocumentReference/${/DocumentReference\/([^/]+)\//.exec(res.body.entry[1].response.location)![1]}`);
  expect(JSON.stringify(docRef.body)).not.toContain(bundle.entry[2].fullUrl);
});
