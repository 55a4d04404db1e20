import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { nirKey } from '../../src/validation/domain/nir';
import { DOCUMENT_CODES, withIns } from '../frenchFixtures';

/** docs/decisions/014-integrity.md: one record per national identifier, no dangling references. */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const INS_TEST = 'urn:oid:1.2.250.1.213.1.4.10';
/** A fresh NIR with its key per call: the database is shared by the whole file. */
const matricule = () => {
  const body = `29012${String(crypto.randomInt(10 ** 8)).padStart(8, '0')}`;
  return body + nirKey(body);
};
/** A SIREN with its Luhn key. */
const siren = () => {
  const body = digits(8);
  for (let last = 0; last < 10; last++) {
    const candidate = body + last;
    const sum = [...candidate].reverse().reduce((acc, ch, i) => {
      const d = Number(ch) * (i % 2 === 1 ? 2 : 1);
      return acc + (d > 9 ? d - 9 : d);
    }, 0);
    if (sum % 10 === 0) return candidate;
  }
  throw new Error('unreachable');
};
/** Fresh digits for the other registers. */
const digits = (n: number) => String(crypto.randomInt(10 ** Math.min(n, 12))).padStart(n, '0');
const patient = (ins?: { system: string; value: string }, extra: Record<string, unknown> = {}) => {
  const base = { resourceType: 'Patient', name: [{ family: 'Martin', given: ['Léa'] }], gender: 'female', birthDate: '1990-05-17', ...extra };
  // an INS comes with the INS traits (the INS profile applies by default)
  return ins ? withIns(base, ins.system, ins.value) : base;
};
const post = (type: string, json: unknown, headers: Record<string, string> = {}) => http(t.base, type, { method: 'POST', json, headers });
const documentAbout = (subject: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'DocumentReference',
  status: 'current',
  ...DOCUMENT_CODES,
  subject: { reference: subject },
  content: [{ attachment: { contentType: 'text/plain', data: Buffer.from('compte rendu').toString('base64') } }],
  ...extra,
});

describe('one Patient per INS', () => {
  it('lets exactly one of many concurrent creates of the same INS win; the others get 409 naming the identifier', async () => {
    const ins = { system: INS_NIR, value: matricule() };
    const results = await Promise.all(Array.from({ length: 8 }, () => post('Patient', patient(ins))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    const refused = results.find((r) => r.status === 409)!;
    expect(refused.body.resourceType).toBe('OperationOutcome');
    expect(refused.body.issue[0].code).toBe('duplicate');
    expect(refused.body.issue[0].diagnostics).toContain(`${ins.system}|${ins.value}`);
    expect(refused.body.issue[0].expression).toEqual(['Patient.identifier[0]']);
    const found = await http(t.base, `Patient?identifier=${encodeURIComponent(`${ins.system}|${ins.value}`)}`);
    expect(found.body.entry).toHaveLength(1);
  });

  it('refuses the duplicate in a conditional create, a conditional update and a transaction', async () => {
    const ins = { system: INS_TEST, value: matricule() };
    expect((await post('Patient', patient(ins))).status).toBe(201);
    // criteria that do not find the holder do not make the INS free
    expect((await post('Patient', patient(ins), { 'if-none-exist': 'family=Nobody-At-All' })).status).toBe(409);
    expect((await http(t.base, 'Patient?family=Nobody-Either', { method: 'PUT', json: patient(ins) })).status).toBe(409);
    const tx = await post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: patient(ins), request: { method: 'POST', url: 'Patient' } }],
    });
    expect(tx.status).toBe(409);
  });

  it('refuses two Patients with the same INS inside one transaction, and writes neither', async () => {
    const ins = { system: INS_NIR, value: matricule() };
    const entry = () => ({ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: patient(ins), request: { method: 'POST', url: 'Patient' } });
    const tx = await post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry(), entry()] });
    expect(tx.status).toBe(409);
    expect(tx.body.issue[0].expression).toEqual(['Bundle.entry[1].resource.identifier[0]']);
    const found = await http(t.base, `Patient?identifier=${encodeURIComponent(`${ins.system}|${ins.value}`)}`);
    expect(found.body.entry ?? []).toHaveLength(0);
  });

  it('lets an update keep its own INS, refuses an update taking another record\'s INS, and frees the INS of a deleted Patient', async () => {
    const a = { system: INS_NIR, value: matricule() };
    const b = { system: INS_NIR, value: matricule() };
    const pa = (await post('Patient', patient(a))).body;
    const pb = (await post('Patient', patient(b))).body;
    const kept = await http(t.base, `Patient/${pa.id}`, { method: 'PUT', json: { ...patient(a, { birthDate: '1990-05-18' }), id: pa.id } });
    expect(kept.status).toBe(200);
    const taken = await http(t.base, `Patient/${pb.id}`, { method: 'PUT', json: { ...patient(a), id: pb.id } });
    expect(taken.status).toBe(409);
    expect(taken.body.issue[0].diagnostics).toContain(`Patient/${pa.id}`);
    // dropping an INS frees it
    expect((await http(t.base, `Patient/${pa.id}`, { method: 'PUT', json: { ...patient(), id: pa.id } })).status).toBe(200);
    expect((await http(t.base, `Patient/${pb.id}`, { method: 'PUT', json: { ...patient(a), id: pb.id } })).status).toBe(200);
    // and so does a deletion
    expect((await http(t.base, `Patient/${pb.id}`, { method: 'DELETE' })).status).toBe(200);
    expect((await post('Patient', patient(a))).status).toBe(201);
  });

  it('does not claim the NSS slice (type NH: shared by children insured through a parent) nor an old identifier', async () => {
    const nss = { system: INS_NIR, value: matricule(), type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NH' }] } };
    expect((await post('Patient', patient(undefined, { identifier: [nss] }))).status).toBe(201);
    expect((await post('Patient', patient(undefined, { identifier: [nss] }))).status).toBe(201);
    const old = { system: INS_NIR, value: matricule(), use: 'old' };
    expect((await post('Patient', patient(undefined, { identifier: [old] }))).status).toBe(201);
    expect((await post('Patient', patient(undefined, { identifier: [old] }))).status).toBe(201);
  });

  it('keeps one Practitioner per RPPS/ADELI and one Organization per FINESS or SIRET', async () => {
    const rpps = { system: 'urn:oid:1.2.250.1.71.4.2.1', value: `8${digits(11)}` };
    const practitioner = { resourceType: 'Practitioner', identifier: [rpps], name: [{ family: 'Durand' }] };
    expect((await post('Practitioner', practitioner)).status).toBe(201);
    expect((await post('Practitioner', practitioner)).status).toBe(409);
    for (const [system, value] of [['http://finess.sante.gouv.fr', digits(9)], ['https://sirene.fr', siren()]]) {
      const organization = { resourceType: 'Organization', identifier: [{ system, value }], name: 'Clinique' };
      const first = await post('Organization', organization);
      if (first.status !== 201) console.log(JSON.stringify(first.body));
      expect(first.status).toBe(201);
      const again = await post('Organization', organization);
      expect(again.status).toBe(409);
      expect(again.body.issue[0].expression).toEqual(['Organization.identifier[0]']);
    }
  });
});

describe('references to this server resolve', () => {
  let p: string;
  beforeAll(async () => {
    p = (await post('Patient', patient())).body.id;
  });

  it('refuses a document about a Patient that does not exist with 422 and the element', async () => {
    const res = await post('DocumentReference', documentAbout('Patient/no-such-patient'));
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['DocumentReference.subject']);
    expect(res.body.issue[0].diagnostics).toContain('Patient/no-such-patient');
  });

  it('refuses a reference written absolute with this server\'s base, and one to a deleted resource', async () => {
    expect((await post('DocumentReference', documentAbout(`${t.base}/Patient/no-such-patient`))).status).toBe(422);
    const gone = (await post('Patient', patient())).body.id;
    expect((await http(t.base, `Patient/${gone}`, { method: 'DELETE' })).status).toBe(200);
    const res = await post('DocumentReference', documentAbout(`Patient/${gone}`));
    expect(res.status).toBe(422);
  });

  it("refuses a Bundle's placeholder (urn:uuid, urn:oid) outside a transaction that resolves it: create, update, batch entry (decision 014, amendment)", async () => {
    const urn = `urn:uuid:${crypto.randomUUID()}`;
    const doc = (subject: string) => documentAbout(`Patient/${p}`, { author: [{ reference: subject }] });
    for (const ref of [urn, 'urn:oid:1.2.250.1.71.4.2.2.123']) {
      const created = await post('DocumentReference', doc(ref));
      expect([ref, created.status]).toEqual([ref, 422]);
      expect(created.body.issue[0].expression).toEqual(['DocumentReference.author[0]']);
      const id = `placeholder-${crypto.randomUUID()}`;
      expect((await http(t.base, `DocumentReference/${id}`, { method: 'PUT', json: { ...doc(ref), id } })).status).toBe(422);
      const batch = await post('', { resourceType: 'Bundle', type: 'batch', entry: [{ fullUrl: urn, resource: doc(ref), request: { method: 'POST', url: 'DocumentReference' } }] });
      expect([ref, batch.status, batch.body.entry[0].response.status]).toEqual([ref, 200, '422']);
    }
    // in a transaction, resolved to the entry whose fullUrl it is
    const practitioner = `urn:uuid:${crypto.randomUUID()}`;
    const tx = await post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: practitioner, resource: { resourceType: 'Practitioner', name: [{ family: 'Placeholder' }] }, request: { method: 'POST', url: 'Practitioner' } },
        { resource: doc(practitioner), request: { method: 'POST', url: 'DocumentReference' } },
      ],
    });
    expect(tx.status).toBe(200);
    expect(tx.body.entry.map((e: any) => String(e.response.status).slice(0, 3))).toEqual(['201', '201']);
  });

  it('accepts an existing Patient (relative or absolute), an external URL and a logical reference', async () => {
    expect((await post('DocumentReference', documentAbout(`Patient/${p}`))).status).toBe(201);
    expect((await post('DocumentReference', documentAbout(`${t.base}/Patient/${p}`))).status).toBe(201);
    const external = documentAbout(`Patient/${p}`, { author: [{ reference: 'https://annuaire.example.org/fhir/Practitioner/123' }, { identifier: { system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810000000001' } }] });
    expect((await post('DocumentReference', external)).status).toBe(201);
  });

  it('checks contained and version-specific references', async () => {
    const contained = documentAbout(`Patient/${p}`, { contained: [{ resourceType: 'Practitioner', id: 'auteur', name: [{ family: 'Durand' }] }], author: [{ reference: '#auteur' }] });
    expect((await post('DocumentReference', contained)).status).toBe(201);
    const wrong = await post('DocumentReference', { ...contained, author: [{ reference: '#absent' }] });
    expect(wrong.status).toBe(422);
    expect((await post('DocumentReference', documentAbout(`Patient/${p}/_history/1`))).status).toBe(201);
    const future = await post('DocumentReference', documentAbout(`Patient/${p}/_history/9`));
    expect(future.status).toBe(422);
  });

  it('resolves a transaction\'s urn:uuid references to the resources it creates', async () => {
    const patientUrl = `urn:uuid:${crypto.randomUUID()}`;
    const tx = await post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: documentAbout(patientUrl), request: { method: 'POST', url: 'DocumentReference' } },
        { fullUrl: patientUrl, resource: patient(), request: { method: 'POST', url: 'Patient' } },
      ],
    });
    if (tx.status !== 200) console.log(JSON.stringify(tx.body));
    expect(tx.status).toBe(200);
  });

  it('refuses a reference in an update and in a transaction entry the same way', async () => {
    // (a List: a stored document's PUT changes its status, labels or archiving only, decision 029)
    const list = (await post('List', { resourceType: 'List', status: 'current', mode: 'working', subject: { reference: `Patient/${p}` } })).body;
    const res = await http(t.base, `List/${list.id}`, { method: 'PUT', json: { ...list, entry: [{ item: { reference: 'DocumentReference/missing' } }] } });
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression).toEqual(['List.entry[0].item']);
    const tx = await post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: documentAbout('Patient/missing'), request: { method: 'POST', url: 'DocumentReference' } }] });
    expect(tx.status).toBe(422);
  });
});

describe('deleting what is referenced', () => {
  it('answers 409 naming the referrer, and deletes both with _cascade=delete', async () => {
    const p = (await post('Patient', patient())).body.id;
    const original = (await post('DocumentReference', documentAbout(`Patient/${p}`))).body.id;
    const replacement = (await post('DocumentReference', documentAbout(`Patient/${p}`, { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${original}` } }] }))).body.id;
    const refused = await http(t.base, `DocumentReference/${original}`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.issue[0].diagnostics).toContain(`DocumentReference/${replacement}`);
    expect((await http(t.base, `DocumentReference/${original}`)).status).toBe(200);

    const cascaded = await http(t.base, `DocumentReference/${original}?_cascade=delete`, { method: 'DELETE' });
    expect(cascaded.status).toBe(200);
    expect((await http(t.base, `DocumentReference/${original}`)).status).toBe(410);
    expect((await http(t.base, `DocumentReference/${replacement}`)).status).toBe(410);
  });

  it('lets a transaction delete a resource together with what references it, whatever the order', async () => {
    const p = (await post('Patient', patient())).body.id;
    const a = (await post('DocumentReference', documentAbout(`Patient/${p}`))).body.id;
    const b = (await post('DocumentReference', documentAbout(`Patient/${p}`, { relatesTo: [{ code: 'replaces', target: { reference: `DocumentReference/${a}` } }] }))).body.id;
    const tx = await post('', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'DELETE', url: `DocumentReference/${a}` } },
        { request: { method: 'DELETE', url: `DocumentReference/${b}` } },
      ],
    });
    expect(tx.status).toBe(200);
  });

  it('never deletes a Patient record by cascade; a Patient with documents is not deleted', async () => {
    const p = (await post('Patient', patient())).body.id;
    await post('DocumentReference', documentAbout(`Patient/${p}`));
    expect((await http(t.base, `Patient/${p}`, { method: 'DELETE' })).status).toBe(409);
    const cascade = await http(t.base, `Patient/${p}?_cascade=delete`, { method: 'DELETE' });
    expect(cascade.status).toBe(409);
    expect(cascade.body.issue[0].diagnostics).toContain('lifecycle');
    expect((await http(t.base, `Patient/${p}`)).status).toBe(200);
  });
});

describe('the CapabilityStatement says so', () => {
  it('states enforced references, unique identifiers, _cascade=delete and the default profiles', async () => {
    const cs = (await http(t.base, 'metadata')).body;
    const of = (type: string) => cs.rest[0].resource.find((r: any) => r.type === type);
    expect(of('DocumentReference').referencePolicy).toContain('enforced');
    expect(of('AuditEvent').referencePolicy).not.toContain('enforced');
    expect(of('DocumentReference').profile).toBe('https://fhir.dmp.esante.example/StructureDefinition/dmp-document-entry');
    expect(of('Patient').documentation).toContain('urn:oid:1.2.250.1.213.1.4.8');
    expect(of('Patient').documentation).toContain('dmp-patient-ins');
    expect(of('DocumentReference').interaction.find((i: any) => i.code === 'delete').documentation).toContain('_cascade=delete');
  });
});
