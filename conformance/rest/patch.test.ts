import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';

/**
 * patch with JSON Patch (http://hl7.org/fhir/R4/http.html#patch, RFC 6902): the
 * result is processed as an update (new version, If-Match), a failing `test`
 * operation answers 422, and conditional patch resolves a single match.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const JSON_PATCH = 'application/json-patch+json';

const patient = (system = 'http://example.org/fhir/patch-tests', value: string = crypto.randomUUID()) => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  name: [{ family: 'Petit', given: ['Jeanne'] }],
  telecom: [{ system: 'phone', value: '+33 1 23 45 67 89' }],
  gender: 'female',
  birthDate: '1962-04-01',
});

async function createPatient(body: Record<string, unknown> = patient()): Promise<any> {
  const res = await http(t.base, 'Patient', { method: 'POST', json: body });
  expect(res.status).toBe(201);
  return res.body;
}

function sendPatch(path: string, operations: unknown, headers: Record<string, string> = {}) {
  return http(t.base, path, { method: 'PATCH', json: operations, headers: { 'content-type': JSON_PATCH, ...headers } });
}

/** The resource is still at version 1 and as created. */
async function expectUnchanged(created: any): Promise<void> {
  const read = await http(t.base, `Patient/${created.id}`);
  expect(read.status).toBe(200);
  expect(read.body.meta.versionId).toBe('1');
  expect(read.body).toEqual(created);
}

const CHANGES = [
  { op: 'replace', path: '/birthDate', value: '1962-04-02' },
  { op: 'add', path: '/name/-', value: { use: 'maiden', family: 'Grand' } },
  { op: 'remove', path: '/telecom' },
];

describe('patch [type]/[id]', () => {
  it('applies replace, add and remove as a new version (200, ETag W/"2")', async () => {
    const created = await createPatient();
    const res = await sendPatch(`Patient/${created.id}`, CHANGES);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect(res.body.meta.versionId).toBe('2');
    expect(res.body.birthDate).toBe('1962-04-02');
    expect(res.body.name).toEqual([created.name[0], { use: 'maiden', family: 'Grand' }]);
    expect(res.body.telecom).toBeUndefined();
    expect(res.body.gender).toBe('female');

    const read = await http(t.base, `Patient/${created.id}`);
    expect(read.body).toEqual(res.body);
    const v1 = await http(t.base, `Patient/${created.id}/_history/1`);
    expect(v1.body.birthDate).toBe('1962-04-01');
    expect(v1.body.telecom).toEqual(created.telecom);
  });

  it('keeps search indexes in step with the patched content', async () => {
    const created = await createPatient();
    await sendPatch(`Patient/${created.id}`, [{ op: 'replace', path: '/birthDate', value: '1901-01-01' }]);
    const found = await http(t.base, `Patient?_id=${created.id}&birthdate=1901-01-01`);
    expect(found.body.total).toBe(1);
    const old = await http(t.base, `Patient?_id=${created.id}&birthdate=1962-04-01`);
    expect(old.body.total).toBe(0);
  });

  it('honours If-Match: current version 200, stale version 412 with nothing written', async () => {
    const created = await createPatient();
    const ok = await sendPatch(`Patient/${created.id}`, [{ op: 'replace', path: '/gender', value: 'other' }], { 'if-match': 'W/"1"' });
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('2');
    const stale = await sendPatch(`Patient/${created.id}`, [{ op: 'replace', path: '/gender', value: 'male' }], { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const read = await http(t.base, `Patient/${created.id}`);
    expect(read.body.meta.versionId).toBe('2');
    expect(read.body.gender).toBe('other');
  });

  it('answers 422 when a test operation fails (http.html#patch), and writes nothing', async () => {
    const created = await createPatient();
    const res = await sendPatch(`Patient/${created.id}`, [
      { op: 'test', path: '/birthDate', value: '2000-01-01' },
      { op: 'replace', path: '/birthDate', value: '2001-01-01' },
    ]);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
    await expectUnchanged(created);
  });

  it('applies the patch when its test operation holds', async () => {
    const created = await createPatient();
    const res = await sendPatch(`Patient/${created.id}`, [
      { op: 'test', path: '/birthDate', value: '1962-04-01' },
      { op: 'replace', path: '/birthDate', value: '1962-05-01' },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.birthDate).toBe('1962-05-01');
  });

  it.each([
    ['resourceType', [{ op: 'replace', path: '/resourceType', value: 'Practitioner' }]],
    ['id', [{ op: 'replace', path: '/id', value: 'another-id' }]],
    ['id (removed)', [{ op: 'remove', path: '/id' }]],
  ])('refuses a patch that changes %s with 422, and writes nothing', async (_what, operations) => {
    const created = await createPatient();
    const res = await sendPatch(`Patient/${created.id}`, operations);
    expect(res.status).toBe(422);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(created);
    expect((await http(t.base, 'Patient/another-id')).status).toBe(404);
  });

  it('refuses a JSON Patch document sent as application/fhir+json (a FHIRPath Patch type) with 400', async () => {
    const created = await createPatient();
    const res = await http(t.base, `Patient/${created.id}`, { method: 'PATCH', json: CHANGES, headers: { 'content-type': 'application/fhir+json' } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(created);
  });

  it.each([
    ['not an array', { op: 'replace', path: '/birthDate', value: '2000-01-01' }],
    ['an unknown op', [{ op: 'frobnicate', path: '/birthDate', value: '2000-01-01' }]],
    ['an op without path', [{ op: 'replace', value: '2000-01-01' }]],
  ])('refuses a malformed patch (%s) with 400, and writes nothing', async (_what, body) => {
    const created = await createPatient();
    const res = await sendPatch(`Patient/${created.id}`, body);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(created);
  });

  it('refuses a patch body that is not JSON with 400', async () => {
    const created = await createPatient();
    const res = await http(t.base, `Patient/${created.id}`, { method: 'PATCH', body: '[{"op": "replace",', headers: { 'content-type': JSON_PATCH } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(created);
  });

  it('answers 404 for a PATCH of an unknown id, and creates nothing', async () => {
    const res = await sendPatch('Patient/no-such-patient', [{ op: 'add', path: '/birthDate', value: '2000-01-01' }]);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect((await http(t.base, 'Patient/no-such-patient')).status).toBe(404);
  });

  it('works through fhir-kit-client patch()', async () => {
    const created = await createPatient();
    const patched: any = await t.client.patch({ resourceType: 'Patient', id: created.id, JSONPatch: [{ op: 'replace', path: '/birthDate', value: '1970-07-07' }] as never });
    expect(patched.id).toBe(created.id);
    expect(patched.meta.versionId).toBe('2');
    expect(patched.birthDate).toBe('1970-07-07');
    const read: any = await t.client.read({ resourceType: 'Patient', id: created.id });
    expect(read.birthDate).toBe('1970-07-07');
  });
});

describe('conditional patch (PATCH [type]?criteria)', () => {
  const criteria = (system: string, value: string) => `identifier=${encodeURIComponent(`${system}|${value}`)}`;

  it('patches the single match', async () => {
    const system = `urn:uuid:${crypto.randomUUID()}`;
    const target = await createPatient(patient(system, 'a'));
    const other = await createPatient(patient(system, 'b'));
    const res = await sendPatch(`Patient?${criteria(system, 'a')}`, [{ op: 'replace', path: '/birthDate', value: '1999-09-09' }]);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(target.id);
    expect(res.body.meta.versionId).toBe('2');
    expect((await http(t.base, `Patient/${target.id}`)).body.birthDate).toBe('1999-09-09');
    await expectUnchanged(other);
  });

  it('answers 404 when nothing matches', async () => {
    const res = await sendPatch(`Patient?${criteria(`urn:uuid:${crypto.randomUUID()}`, 'x')}`, [{ op: 'replace', path: '/birthDate', value: '1999-09-09' }]);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('answers 412 when several match, and patches neither', async () => {
    const system = `urn:uuid:${crypto.randomUUID()}`;
    const a = await createPatient(patient(system, 'same'));
    const b = await createPatient(patient(system, 'same'));
    const res = await sendPatch(`Patient?${criteria(system, 'same')}`, [{ op: 'replace', path: '/birthDate', value: '1999-09-09' }]);
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(a);
    await expectUnchanged(b);
  });

  it('refuses criteria without a valid parameter (PATCH /Patient?foo=bar) with 400', async () => {
    const created = await createPatient();
    const res = await sendPatch('Patient?foo=bar', [{ op: 'replace', path: '/birthDate', value: '1999-09-09' }]);
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    await expectUnchanged(created);
  });
});

describe('FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html)', () => {
  const operation = (type: string, path: string, extra: Record<string, unknown>[] = []) => ({
    name: 'operation',
    part: [{ name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...extra],
  });
  const fhirPathPatch = (path: string, ...ops: unknown[]) =>
    http(t.base, path, { method: 'PATCH', json: { resourceType: 'Parameters', parameter: ops }, headers: { 'content-type': 'application/fhir+json' } });

  it('applies a Parameters patch sent as application/fhir+json as a new version', async () => {
    const created = await createPatient();
    const res = await fhirPathPatch(
      `Patient/${created.id}`,
      operation('replace', 'Patient.birthDate', [{ name: 'value', valueDate: '1962-04-02' }]),
      operation('delete', 'Patient.telecom'),
      operation('add', 'Patient', [{ name: 'name', valueString: 'name' }, { name: 'value', part: [{ name: 'use', valueCode: 'maiden' }, { name: 'family', valueString: 'Grand' }] }]),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect(res.body.birthDate).toBe('1962-04-02');
    expect(res.body.telecom).toBeUndefined();
    expect(res.body.name).toEqual([created.name[0], { use: 'maiden', family: 'Grand' }]);
  });

  it('refuses a malformed patch with 400, one that cannot apply with 422, and a result that is invalid; nothing written', async () => {
    const created = await createPatient();
    expect((await fhirPathPatch(`Patient/${created.id}`, operation('frobnicate', 'Patient.gender'))).status).toBe(400);
    expect((await fhirPathPatch(`Patient/${created.id}`, operation('delete', 'Patient.name[('))).status).toBe(400);
    expect((await fhirPathPatch(`Patient/${created.id}`, operation('delete', 'Patient.telecom', [{ name: 'bogus', valueString: 'x' }]))).status).toBe(400);
    expect((await fhirPathPatch(`Patient/${created.id}`, operation('replace', 'Patient.gender', [{ name: 'value', valueCode: 'male' }, { name: 'value', valueCode: 'female' }]))).status).toBe(400);
    expect((await fhirPathPatch(`Patient/${created.id}`, operation('replace', 'Patient.identifier.where(false)', [{ name: 'value', valueString: 'x' }]))).status).toBe(422);
    const invalid = await fhirPathPatch(`Patient/${created.id}`, operation('replace', 'Patient.gender', [{ name: 'value', valueCode: 'sometimes' }]));
    expect(invalid.status).toBe(422);
    await expectUnchanged(created);
  });

  it('refuses a JSON Patch array sent as application/fhir+json, and a Parameters sent as application/json-patch+json', async () => {
    const created = await createPatient();
    expect((await http(t.base, `Patient/${created.id}`, { method: 'PATCH', json: CHANGES, headers: { 'content-type': 'application/fhir+json' } })).status).toBe(400);
    expect((await sendPatch(`Patient/${created.id}`, { resourceType: 'Parameters', parameter: [operation('delete', 'Patient.telecom')] })).status).toBe(400);
    await expectUnchanged(created);
  });

  it('is declared in the CapabilityStatement', async () => {
    const cs = await http(t.base, 'metadata');
    expect(cs.body.patchFormat).toEqual(expect.arrayContaining(['application/json-patch+json', 'application/fhir+json']));
  });
});
