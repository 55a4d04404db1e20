import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startTarget, Target } from '../../conformance/harness';
import { document, G15, Json, REPORT, requests } from '../../conformance/accessFixtures';
import { loadNdjson } from './ndjsonLoad';

/**
 * The bulk loader (docs/decisions/020-bulk-data.md) against the server's own database and
 * validator: lines validated, indexed and checked as creates, bad lines reported by number,
 * a rerun skipping what is stored; what it wrote is searched and access-controlled over HTTP
 * like anything written through the API.
 */
let t: Target;
const { get, create, mint } = requests(() => t);
let dir: string;
beforeAll(async () => {
  t = await startTarget();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'load-test-'));
});
afterAll(async () => {
  await t.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const RUN = crypto.randomBytes(3).toString('hex');
const id = (name: string) => `${name}-${RUN}`;
const practitioner = { resourceType: 'Practitioner', id: id('pr'), name: [{ family: `Loader-${RUN}` }] };
const patient = { resourceType: 'Patient', id: id('pa'), name: [{ family: `Charge-${RUN}` }], identifier: [{ system: 'urn:example:mrn', value: `mrn-${RUN}` }], birthDate: '1970-01-01' };
const doc: Json = { ...document({ resourceType: 'Patient', id: patient.id }, REPORT, `Practitioner/${practitioner.id}`, [], 'https://documents.example/x', `loaded ${RUN}`), id: id('doc') };
const lines: string[] = [
  JSON.stringify(practitioner), // 1
  JSON.stringify(patient), // 2
  JSON.stringify(doc), // 3
  '{"resourceType": "Patient", "id": ', // 4: not JSON
  JSON.stringify({ resourceType: 'Patient', name: [{ family: 'NoId' }] }), // 5: no id
  JSON.stringify({ resourceType: 'Patient', id: id('bad'), gender: 'sometimes' }), // 6: invalid code
  JSON.stringify({ ...doc, id: id('orphan'), subject: { reference: `Patient/missing-${RUN}` } }), // 7: reference to nothing
  JSON.stringify({ resourceType: 'Observation', id: id('obs'), status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${patient.id}` }, valueQuantity: { value: 72.1, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' } }), // 8
  JSON.stringify({ resourceType: 'StructureDefinition', id: id('sd') }), // 9: not loaded in bulk
];

function file(name: string, content: string[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, content.join('\n') + '\n');
  return f;
}

describe('npm run load', () => {
  let first: Awaited<ReturnType<typeof loadNdjson>>;
  beforeAll(async () => {
    // small batches: the refused line of a batch must not take the others with it
    first = await loadNdjson(t.running!.ctx, file('first.ndjson', lines), { batch: 3 });
  });

  it('writes the valid lines and refuses each bad one, naming its line', () => {
    expect(first).toMatchObject({ lines: 9, written: 4, skipped: 0, refused: 5 });
    expect(first.refusals.map((r) => r.line)).toEqual([4, 5, 6, 7, 9]);
    const reason = (line: number) => first.refusals.find((r) => r.line === line)!.reason;
    expect(reason(4)).toMatch(/not JSON/);
    expect(reason(5)).toMatch(/needs an id/);
    expect(reason(6)).toMatch(/gender/);
    expect(reason(7)).toMatch(new RegExp(`Patient/missing-${RUN}`));
    expect(reason(9)).toMatch(/not loaded in bulk/);
  });

  it('keeps the ids, and indexes what it writes as a create would (searches find it)', async () => {
    expect((await get(`Patient/${patient.id}`)).status).toBe(200);
    expect((await get(`Patient/${id('bad')}`)).status).toBe(404);
    expect((await get(`DocumentReference/${id('orphan')}`)).status).toBe(404);
    const byPatient = await get(`DocumentReference?patient=${patient.id}`);
    expect(byPatient.body.entry.map((e: Json) => e.resource.id)).toEqual([doc.id]);
    const byIdentifier = await get(`Patient?identifier=${encodeURIComponent(`urn:example:mrn|mrn-${RUN}`)}`);
    expect(byIdentifier.body.entry.map((e: Json) => e.resource.id)).toEqual([patient.id]);
    const byValue = await get(`Observation?subject=Patient/${patient.id}&value-quantity=72.1`);
    expect(byValue.body.entry).toHaveLength(1);
  });

  it('puts each resource in its record: a professional without access to it reads none of it', async () => {
    const stranger = await create({ resourceType: 'Practitioner', name: [{ family: `Stranger-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: `Practitioner/${stranger.id}` }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const token = await mint(`Practitioner/${stranger.id}`);
    // a record closed to a professional is refused as such (the access contract)
    expect((await get(`DocumentReference/${doc.id}`, token)).status).toBe(403);
    expect((await get(`DocumentReference?patient=${patient.id}`, token)).status).toBe(403);
    const patientToken = await mint(`Patient/${patient.id}`, 'patient/*.rs');
    expect((await get(`DocumentReference/${doc.id}`, patientToken)).status).toBe(200);
  });

  it('resumes: a rerun skips what is stored and writes only what is new', async () => {
    const extra = JSON.stringify({ ...doc, id: id('doc2'), description: `second ${RUN}` });
    const again = await loadNdjson(t.running!.ctx, file('again.ndjson', [...lines, extra]), { batch: 4 });
    expect(again).toMatchObject({ lines: 10, written: 1, skipped: 4, refused: 5 });
    const byPatient = await get(`DocumentReference?patient=${patient.id}`);
    expect(byPatient.body.entry.map((e: Json) => e.resource.id).sort()).toEqual([doc.id, id('doc2')].sort());
    // one version each: nothing was written twice
    expect((await get(`Patient/${patient.id}/_history`)).body.entry).toHaveLength(1);
  });
});
