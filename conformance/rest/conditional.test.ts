import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';

/**
 * Conditional create, update and delete (http://hl7.org/fhir/R4/http.html#ccreate,
 * #cond-update, #3.1.0.7.1): resolution by search criteria, 0 / 1 / several matches.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

/** A fresh identifier system per test, so that matches are only the ones the test made. */
const newSystem = () => `urn:uuid:${crypto.randomUUID()}`;
const criteria = (system: string, value: string) => `identifier=${encodeURIComponent(`${system}|${value}`)}`;

const patient = (system: string, value: string, family = 'Bernard') => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  name: [{ family }],
  birthDate: '1975-11-30',
});

async function createPatient(system: string, value: string, family = 'Bernard'): Promise<any> {
  const res = await http(t.base, 'Patient', { method: 'POST', json: patient(system, value, family) });
  expect(res.status).toBe(201);
  return res.body;
}

/** Ids of the current Patients carrying the identifier. */
async function matching(system: string, value: string): Promise<string[]> {
  const res = await http(t.base, `Patient?${criteria(system, value)}&_count=100`);
  expect(res.status).toBe(200);
  return (res.body.entry ?? []).filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id).sort();
}

const countAllPatients = async () => (await http(t.base, 'Patient?_summary=count')).body.total as number;

describe('conditional create (If-None-Exist)', () => {
  it('creates when nothing matches (201)', async () => {
    const system = newSystem();
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(system, '1'), headers: { 'if-none-exist': criteria(system, '1') } });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(await matching(system, '1')).toEqual([res.body.id]);
  });

  it('answers 200 with the existing resource when one matches, and creates nothing', async () => {
    const system = newSystem();
    const existing = await createPatient(system, '1', 'Existant');
    const before = await countAllPatients();
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(system, '1', 'Doublon'), headers: { 'if-none-exist': criteria(system, '1') } });
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.id).toBe(existing.id);
    expect(res.body.name[0].family).toBe('Existant');
    expect(res.body.meta.versionId).toBe('1');
    expect(await matching(system, '1')).toEqual([existing.id]);
    expect(await countAllPatients()).toBe(before);
    const read = await http(t.base, `Patient/${existing.id}`);
    expect(read.body.meta.versionId).toBe('1');
    expect(read.body.name[0].family).toBe('Existant');
  });

  it('accepts the criteria with a [type]? prefix as well', async () => {
    const system = newSystem();
    const existing = await createPatient(system, '1');
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(system, '1'), headers: { 'if-none-exist': `Patient?${criteria(system, '1')}` } });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(existing.id);
  });

  it('answers 412 when several match, and creates nothing', async () => {
    const system = newSystem();
    const a = await createPatient(system, '1');
    const b = await createPatient(system, '1');
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(system, '1'), headers: { 'if-none-exist': criteria(system, '1') } });
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await matching(system, '1')).toEqual([a.id, b.id].sort());
  });

  it('creates exactly one resource for 10 concurrent creates with the same If-None-Exist (3 rounds)', async () => {
    for (let round = 0; round < 3; round++) {
      const system = newSystem();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => http(t.base, 'Patient', { method: 'POST', json: patient(system, '1'), headers: { 'if-none-exist': criteria(system, '1') } })),
      );
      const ids = await matching(system, '1');
      expect({ round, created: ids.length }).toEqual({ round, created: 1 });
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      // the others either saw the winner (200) or were told to retry (409), never a second resource
      for (const r of results) {
        expect([200, 201, 409]).toContain(r.status);
        if (r.status !== 409) expect(r.body.id).toBe(ids[0]);
      }
    }
  });
});

describe('conditional update (PUT [type]?criteria)', () => {
  it('creates when nothing matches (201)', async () => {
    const system = newSystem();
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: patient(system, '1', 'Nouveau') });
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.get('location')).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(await matching(system, '1')).toEqual([res.body.id]);
  });

  it('treats a body id as update-as-create when nothing matches', async () => {
    const system = newSystem();
    const id = `cond-${crypto.randomBytes(6).toString('hex')}`;
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: { ...patient(system, '1'), id } });
    expect(res.status).toBe(201);
    expect(res.body.id).toBe(id);
    expect((await http(t.base, `Patient/${id}`)).status).toBe(200);
  });

  it('updates the single match (200), without id in the body or with the matching id', async () => {
    const system = newSystem();
    const existing = await createPatient(system, '1', 'Avant');
    const first = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: patient(system, '1', 'Après') });
    expect(first.status).toBe(200);
    expect(first.body.id).toBe(existing.id);
    expect(first.body.meta.versionId).toBe('2');
    expect(first.headers.get('etag')).toBe('W/"2"');
    const second = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: { ...patient(system, '1', 'Encore'), id: existing.id } });
    expect(second.status).toBe(200);
    expect(second.body.meta.versionId).toBe('3');
    const read = await http(t.base, `Patient/${existing.id}`);
    expect(read.body.name[0].family).toBe('Encore');
    expect(await matching(system, '1')).toEqual([existing.id]);
  });

  it('answers 412 when several match, and changes neither', async () => {
    const system = newSystem();
    const a = await createPatient(system, '1', 'Un');
    const b = await createPatient(system, '1', 'Deux');
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: patient(system, '1', 'Écrasé') });
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    for (const [p, family] of [[a, 'Un'], [b, 'Deux']]) {
      const read = await http(t.base, `Patient/${p.id}`);
      expect(read.body.meta.versionId).toBe('1');
      expect(read.body.name[0].family).toBe(family);
    }
    expect(await matching(system, '1')).toHaveLength(2);
  });

  it('answers 400 when the body id differs from the single match, and writes nothing', async () => {
    const system = newSystem();
    const existing = await createPatient(system, '1', 'Intact');
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'PUT', json: { ...patient(system, '1', 'Autre'), id: 'some-other-id' } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const read = await http(t.base, `Patient/${existing.id}`);
    expect(read.body.meta.versionId).toBe('1');
    expect(read.body.name[0].family).toBe('Intact');
    expect((await http(t.base, 'Patient/some-other-id')).status).toBe(404);
  });
});

describe('conditional delete (DELETE [type]?criteria)', () => {
  it('deletes the single match; it then reads 410 Gone', async () => {
    const system = newSystem();
    const existing = await createPatient(system, '1');
    const other = await createPatient(system, '2');
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'DELETE' });
    expect([200, 204]).toContain(res.status);
    expect((await http(t.base, `Patient/${existing.id}`)).status).toBe(410);
    expect(await matching(system, '1')).toEqual([]);
    expect((await http(t.base, `Patient/${other.id}`)).status).toBe(200);
  });

  it('answers 412 when several match, and deletes nothing', async () => {
    const system = newSystem();
    const a = await createPatient(system, '1');
    const b = await createPatient(system, '1');
    const res = await http(t.base, `Patient?${criteria(system, '1')}`, { method: 'DELETE' });
    expect(res.status).toBe(412);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect((await http(t.base, `Patient/${a.id}`)).status).toBe(200);
    expect((await http(t.base, `Patient/${b.id}`)).status).toBe(200);
  });

  it('succeeds without effect when nothing matches (200 or 204)', async () => {
    const system = newSystem();
    const bystander = await createPatient(newSystem(), '1');
    const before = await countAllPatients();
    const res = await http(t.base, `Patient?${criteria(system, 'nobody')}`, { method: 'DELETE' });
    expect([200, 204]).toContain(res.status);
    expect(await countAllPatients()).toBe(before);
    expect((await http(t.base, `Patient/${bystander.id}`)).status).toBe(200);
  });
});

describe('criteria that select nothing: 400, never "every resource"', () => {
  it('refuses PUT /Patient?foo=bar with 400 and creates nothing', async () => {
    const before = await countAllPatients();
    const res = await http(t.base, 'Patient?foo=bar', { method: 'PUT', json: patient(newSystem(), '1') });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await countAllPatients()).toBe(before);
  });

  it('refuses PUT /Patient with no criteria at all with 400', async () => {
    const before = await countAllPatients();
    const res = await http(t.base, 'Patient', { method: 'PUT', json: patient(newSystem(), '1') });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await countAllPatients()).toBe(before);
  });

  it.each(['Patient?foo=bar', 'Patient'])('refuses DELETE /%s with 400 and deletes nothing', async (path) => {
    const existing = await createPatient(newSystem(), '1');
    const before = await countAllPatients();
    const res = await http(t.base, path, { method: 'DELETE' });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await countAllPatients()).toBe(before);
    expect((await http(t.base, `Patient/${existing.id}`)).status).toBe(200);
  });

  it('refuses If-None-Exist: foo=bar with 400 and creates nothing', async () => {
    const before = await countAllPatients();
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient(newSystem(), '1'), headers: { 'if-none-exist': 'foo=bar' } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(await countAllPatients()).toBe(before);
  });
});

describe('conditional references outside a transaction', () => {
  it('resolves a conditional reference on create and update to the one matching resource, 412 otherwise', async () => {
    const marker = `cref-${Date.now()}`;
    const patient = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', identifier: [{ system: 'urn:test:cref', value: marker }] } });
    expect(patient.status).toBe(201);
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
      subject: { reference: `Patient?identifier=urn:test:cref|${marker}` },
    };
    const created = await http(t.base, 'Observation', { method: 'POST', json: observation });
    expect(created.status).toBe(201);
    expect(created.body.subject.reference).toBe(`Patient/${patient.body.id}`);
    const missing = await http(t.base, 'Observation', { method: 'POST', json: { ...observation, subject: { reference: `Patient?identifier=urn:test:cref|${marker}-none` } } });
    expect(missing.status).toBe(412);
    const updated = await http(t.base, `Observation/${created.body.id}`, { method: 'PUT', json: { ...observation, id: created.body.id, status: 'amended' } });
    expect(updated.status).toBe(200);
    expect(updated.body.subject.reference).toBe(`Patient/${patient.body.id}`);
    // searches see a real reference, never a search URL
    const found = await http(t.base, `Observation?subject=Patient/${patient.body.id}`);
    expect(found.body.entry.map((e: any) => e.resource.id)).toEqual([created.body.id]);
  });
});
