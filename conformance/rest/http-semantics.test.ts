import crypto from 'node:crypto';
import { withIns } from '../frenchFixtures';
import { FHIR_JSON, http, startTarget, Target, authorization } from '../harness';

/**
 * HTTP semantics of the FHIR RESTful API (http://hl7.org/fhir/R4/http.html):
 * version ETags and conditional reads, version-aware updates and contention,
 * Prefer, content negotiation, subsetting, the CapabilityStatement and the
 * endpoints around the FHIR base.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

const patient = (family = 'Durand', extra: Record<string, unknown> = {}) => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Paul'] }],
  birthDate: '1980-02-03',
  ...extra,
});

async function createPatient(family = 'Durand', extra: Record<string, unknown> = {}): Promise<any> {
  const res = await http(t.base, 'Patient', { method: 'POST', json: patient(family, extra) });
  expect(res.status).toBe(201);
  return res.body;
}

async function put(id: string, family: string, headers: Record<string, string> = {}) {
  return http(t.base, `Patient/${id}`, { method: 'PUT', json: { ...patient(family), id }, headers });
}

/** The versions of a resource in its history, as numbers, in any order. */
async function historyVersions(type: string, id: string): Promise<number[]> {
  const res = await http(t.base, `${type}/${id}/_history?_count=100`);
  expect(res.status).toBe(200);
  expect(res.body.type).toBe('history');
  return (res.body.entry ?? []).map((e: any) => Number(e.response.etag.replace(/^W\/"(\d+)"$/, '$1')));
}

const origin = () => new URL(t.base).origin;

describe('ETag, Last-Modified and conditional read', () => {
  it('sends ETag W/"n" and Last-Modified (lastUpdated to the second) on read and vread', async () => {
    const created = await createPatient();
    const read = await http(t.base, `Patient/${created.id}`);
    expect(read.status).toBe(200);
    expect(read.headers.get('etag')).toBe('W/"1"');
    const lastModified = Date.parse(read.headers.get('last-modified')!);
    expect(lastModified).toBe(Math.floor(Date.parse(read.body.meta.lastUpdated) / 1000) * 1000);

    const updated = await put(created.id, 'Suivant');
    expect(updated.status).toBe(200);
    const current = await http(t.base, `Patient/${created.id}`);
    expect(current.headers.get('etag')).toBe('W/"2"');
    expect(current.body.meta.versionId).toBe('2');
    expect(Date.parse(current.headers.get('last-modified')!)).toBe(Math.floor(Date.parse(current.body.meta.lastUpdated) / 1000) * 1000);

    const v1 = await http(t.base, `Patient/${created.id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.headers.get('etag')).toBe('W/"1"');
    expect(Date.parse(v1.headers.get('last-modified')!)).toBe(lastModified);
    const v2 = await http(t.base, `Patient/${created.id}/_history/2`);
    expect(v2.headers.get('etag')).toBe('W/"2"');
  });

  it('answers If-None-Match with the current version by 304 and no body, another version by 200', async () => {
    const created = await createPatient();
    const same = await http(t.base, `Patient/${created.id}`, { headers: { 'if-none-match': 'W/"1"' } });
    expect(same.status).toBe(304);
    expect(same.text).toBe('');
    expect(same.headers.get('etag')).toBe('W/"1"');

    await put(created.id, 'Changé');
    const stale = await http(t.base, `Patient/${created.id}`, { headers: { 'if-none-match': 'W/"1"' } });
    expect(stale.status).toBe(200);
    expect(stale.body.meta.versionId).toBe('2');
    expect(stale.body.name[0].family).toBe('Changé');
    const fresh = await http(t.base, `Patient/${created.id}`, { headers: { 'if-none-match': 'W/"2"' } });
    expect(fresh.status).toBe(304);
    expect(fresh.text).toBe('');
  });

  it('answers If-Modified-Since at or after lastUpdated by 304, before it by 200', async () => {
    const created = await createPatient();
    const read = await http(t.base, `Patient/${created.id}`);
    const lastUpdated = Date.parse(created.meta.lastUpdated);

    const atLastModified = await http(t.base, `Patient/${created.id}`, { headers: { 'if-modified-since': read.headers.get('last-modified')! } });
    expect(atLastModified.status).toBe(304);
    expect(atLastModified.text).toBe('');
    const after = await http(t.base, `Patient/${created.id}`, { headers: { 'if-modified-since': new Date(lastUpdated + 60_000).toUTCString() } });
    expect(after.status).toBe(304);
    expect(after.text).toBe('');
    const before = await http(t.base, `Patient/${created.id}`, { headers: { 'if-modified-since': new Date(lastUpdated - 60_000).toUTCString() } });
    expect(before.status).toBe(200);
    expect(before.body.id).toBe(created.id);
  });
});

describe('version-aware updates (If-Match)', () => {
  it('updates with a matching If-Match (200), refuses a stale one with 412 and writes nothing', async () => {
    const created = await createPatient('Premier');
    const ok = await put(created.id, 'Deuxième', { 'if-match': 'W/"1"' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('W/"2"');
    expect(ok.body.meta.versionId).toBe('2');

    const stale = await put(created.id, 'Perdu', { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    expect(stale.body.issue[0].severity).toBe('error');
    const after = await http(t.base, `Patient/${created.id}`);
    expect(after.body.meta.versionId).toBe('2');
    expect(after.body.name[0].family).toBe('Deuxième');
    expect(await historyVersions('Patient', created.id)).toHaveLength(2);
  });

  it('refuses a malformed If-Match with 400 and writes nothing', async () => {
    const created = await createPatient('Intact');
    const res = await put(created.id, 'Jamais', { 'if-match': 'not-an-etag' });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const after = await http(t.base, `Patient/${created.id}`);
    expect(after.body.meta.versionId).toBe('1');
    expect(after.body.name[0].family).toBe('Intact');
  });

  it('refuses a DELETE with a stale If-Match with 412 and keeps the resource; a matching one deletes', async () => {
    const created = await createPatient();
    await put(created.id, 'V2');
    const stale = await http(t.base, `Patient/${created.id}`, { method: 'DELETE', headers: { 'if-match': 'W/"1"' } });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');
    const still = await http(t.base, `Patient/${created.id}`);
    expect(still.status).toBe(200);
    expect(still.body.meta.versionId).toBe('2');

    const ok = await http(t.base, `Patient/${created.id}`, { method: 'DELETE', headers: { 'if-match': 'W/"2"' } });
    expect([200, 204]).toContain(ok.status);
    expect((await http(t.base, `Patient/${created.id}`)).status).toBe(410);
  });
});

describe('concurrent writers', () => {
  it('lets exactly one of 10 concurrent PUTs with If-Match W/"1" win; the others get 412', async () => {
    const created = await createPatient('Origine');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => put(created.id, `Écrivain${i}`, { 'if-match': 'W/"1"' })));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 412)).toHaveLength(9);
    const winner = results.find((r) => r.status === 200)!;
    const final = await http(t.base, `Patient/${created.id}`);
    expect(final.body.meta.versionId).toBe('2');
    expect(final.body.name[0].family).toBe(winner.body.name[0].family);
    expect((await historyVersions('Patient', created.id)).sort((a, b) => a - b)).toEqual([1, 2]);
  });

  it('serialises 10 concurrent PUTs without If-Match: all succeed, versions 2..11 each used once, no lost update', async () => {
    const created = await createPatient('Origine');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => put(created.id, `Écrivain${i}`)));
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((a, b) => a - b);
    expect(versions).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(results.map((r) => r.headers.get('etag')).sort()).toEqual(versions.map((v) => `W/"${v}"`).sort());
    expect((await historyVersions('Patient', created.id)).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const final = await http(t.base, `Patient/${created.id}`);
    expect(final.body.meta.versionId).toBe('11');
    // the current version is the one the writer of version 11 sent
    const last = results.find((r) => r.body.meta.versionId === '11')!;
    expect(final.body.name[0].family).toBe(last.body.name[0].family);
  });
});

describe('Prefer: return', () => {
  it('return=minimal: 201 with an empty body, Location and ETag', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient('Minimal'), headers: { prefer: 'return=minimal' } });
    expect(res.status).toBe(201);
    expect(res.text).toBe('');
    expect(res.headers.get('etag')).toBe('W/"1"');
    const location = res.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^${t.base}/Patient/[A-Za-z0-9\\-.]{1,64}/_history/1$`));
    const read = await fetch(location, { headers: { accept: FHIR_JSON, ...authorization(location) } });
    expect(read.status).toBe(200);
    expect(((await read.json()) as any).name[0].family).toBe('Minimal');
  });

  it('return=minimal on update: 200 with an empty body and the new ETag', async () => {
    const created = await createPatient();
    const res = await put(created.id, 'Silencieux', { prefer: 'return=minimal' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('etag')).toBe('W/"2"');
  });

  it('return=representation: the stored resource', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient('Représenté'), headers: { prefer: 'return=representation' } });
    expect(res.status).toBe(201);
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.name[0].family).toBe('Représenté');
    expect(res.headers.get('location')).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
  });

  it('return=OperationOutcome: an OperationOutcome body, still 201 with Location', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient('Issue'), headers: { prefer: 'return=OperationOutcome' } });
    expect(res.status).toBe(201);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue.length).toBeGreaterThan(0);
    expect(res.headers.get('location')).toMatch(new RegExp(`^${t.base}/Patient/[^/]+/_history/1$`));
  });
});

describe('content negotiation', () => {
  let id: string;
  beforeAll(async () => {
    id = (await createPatient('Format')).id;
  });

  it.each(['json', encodeURIComponent('application/fhir+json'), encodeURIComponent('application/json')])('_format=%s answers FHIR JSON', async (format) => {
    const res = await http(t.base, `Patient/${id}?_format=${format}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/(fhir\+)?json/);
    expect(res.body.id).toBe(id);
  });

  it('_format overrides the Accept header', async () => {
    const res = await http(t.base, `Patient/${id}?_format=json`, { headers: { accept: 'application/fhir+xml' } });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(id);
  });

  it('_format=xml answers FHIR XML', async () => {
    const res = await http(t.base, `Patient/${id}?_format=xml`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
    expect(res.text).toMatch(/^<Patient xmlns="http:\/\/hl7.org\/fhir">/);
  });

  it('_format of another format: 406 with a JSON OperationOutcome', async () => {
    const res = await http(t.base, `Patient/${id}?_format=html`);
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('Accept: application/fhir+xml answers FHIR XML', async () => {
    const res = await http(t.base, `Patient/${id}`, { headers: { accept: 'application/fhir+xml' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/fhir\+xml/);
  });

  it('Accept of no FHIR format: 406 with a JSON OperationOutcome', async () => {
    const res = await http(t.base, `Patient/${id}`, { headers: { accept: 'image/png' } });
    expect(res.status).toBe(406);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it.each(['application/json', '*/*', 'application/fhir+json', 'application/fhir+xml;q=0.9, application/fhir+json'])('Accept: %s answers 200 JSON', async (accept) => {
    const res = await http(t.base, `Patient/${id}`, { headers: { accept } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/(fhir\+)?json/);
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.id).toBe(id);
  });
});

describe('_pretty, _summary and _elements', () => {
  // NIRs with a valid key (97 - body mod 97): one Patient per INS, with the INS traits (docs/decisions/014-integrity.md)
  const full = (nir = '180029912345610') =>
    withIns(patient('Résumé', {
      gender: 'male',
      maritalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-MaritalStatus', code: 'M' }] },
      photo: [{ contentType: 'image/png', data: 'iVBORw0KGgo=' }],
      contact: [{ name: { family: 'Contact' } }],
      communication: [{ language: { coding: [{ system: 'urn:ietf:bcp:47', code: 'fr' }] } }],
    }), 'urn:oid:1.2.250.1.213.1.4.8', nir);

  it('_pretty=true indents the JSON; without it the JSON is compact', async () => {
    const created = await createPatient();
    const pretty = await http(t.base, `Patient/${created.id}?_pretty=true`);
    expect(pretty.status).toBe(200);
    expect(pretty.text).toMatch(/^\{\n\s+"resourceType": "Patient"/);
    const compact = await http(t.base, `Patient/${created.id}`);
    expect(compact.text).not.toContain('\n');
    expect(pretty.body).toEqual(compact.body);
  });

  it('_summary=true on read keeps the summary elements only and tags the resource SUBSETTED', async () => {
    const created = await createPatient('Résumé', full());
    const res = await http(t.base, `Patient/${created.id}?_summary=true`);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(created.id);
    expect(res.body.name).toEqual(created.name);
    expect(res.body.birthDate).toBe('1980-02-03');
    expect(res.body.identifier).toEqual(created.identifier);
    expect(res.body.gender).toBe('male');
    for (const notSummary of ['photo', 'contact', 'maritalStatus', 'communication']) expect(res.body[notSummary]).toBeUndefined();
    expect(res.body.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining(SUBSETTED)]));
    expect(res.body.meta.versionId).toBe('1');
    // the stored resource is untouched
    const plain = await http(t.base, `Patient/${created.id}`);
    expect(plain.body.contact).toEqual(created.contact);
    expect(plain.body.meta.tag).toBeUndefined();
  });

  it('_elements=birthDate on read returns birthDate (plus id and meta) only, tagged SUBSETTED', async () => {
    const created = await createPatient('Éléments', full('180029912345709'));
    const res = await http(t.base, `Patient/${created.id}?_elements=birthDate`);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.id).toBe(created.id);
    expect(res.body.birthDate).toBe('1980-02-03');
    for (const dropped of ['name', 'identifier', 'gender', 'photo', 'contact']) expect(res.body[dropped]).toBeUndefined();
    expect(res.body.meta.tag).toEqual(expect.arrayContaining([expect.objectContaining(SUBSETTED)]));
  });

  it('_summary=count on search answers the total and no entries', async () => {
    const family = `Compte${crypto.randomBytes(4).toString('hex')}`;
    for (let i = 0; i < 3; i++) await createPatient(family);
    const res = await http(t.base, `Patient?family=${family}&_summary=count`);
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('searchset');
    expect(res.body.total).toBe(3);
    expect(res.body.entry ?? []).toEqual([]);
  });
});

describe('CapabilityStatement', () => {
  const TYPES = [
    'Patient',
    'DocumentReference',
    'Binary',
    'List',
    'Consent',
    'AuditEvent',
    'Communication',
    'Practitioner',
    'PractitionerRole',
    'Organization',
    'RelatedPerson',
    'Device',
    'Subscription',
  ];
  const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];
  let cs: any;
  beforeAll(async () => {
    const res = await http(t.base, 'metadata');
    expect(res.status).toBe(200);
    cs = res.body;
  });

  it('is an R4 (4.0.1) CapabilityStatement that declares JSON', () => {
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    expect(cs.kind).toBe('instance');
    expect(cs.format.some((f: string) => f === 'json' || f === 'application/fhir+json')).toBe(true);
    expect(cs.rest[0].mode).toBe('server');
  });

  it.each(TYPES)('lists %s with every type interaction', (type) => {
    const resource = cs.rest[0].resource.find((r: any) => r.type === type);
    expect(resource).toBeDefined();
    expect(resource.interaction.map((i: any) => i.code)).toEqual(expect.arrayContaining(TYPE_INTERACTIONS));
  });

  it('declares Patient search parameters identifier, name and birthdate with their definitions', () => {
    const params = cs.rest[0].resource.find((r: any) => r.type === 'Patient').searchParam;
    for (const [name, type] of [['identifier', 'token'], ['name', 'string'], ['birthdate', 'date']]) {
      const p = params.find((x: any) => x.name === name);
      expect(p).toBeDefined();
      expect(p.type).toBe(type);
      expect(p.definition).toMatch(/^http:\/\/hl7\.org\/fhir\/SearchParameter\/.+/);
    }
  });

  it('declares the system interactions transaction, batch and history-system', () => {
    expect(cs.rest[0].interaction.map((i: any) => i.code)).toEqual(expect.arrayContaining(['transaction', 'batch', 'history-system']));
  });

  it('is honest about system interactions: batch, transaction and system history are served', async () => {
    const batch = await http(t.base, '', { method: 'POST', json: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'metadata' } }] } });
    expect(batch.status).toBe(200);
    expect(batch.body.type).toBe('batch-response');
    const transaction = await http(t.base, '', {
      method: 'POST',
      json: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient('Transaction'), request: { method: 'POST', url: 'Patient' } }] },
    });
    expect(transaction.status).toBe(200);
    expect(transaction.body.type).toBe('transaction-response');
    const history = await http(t.base, '_history?_count=1');
    expect(history.status).toBe(200);
    expect(history.body.type).toBe('history');
  });

  /** A query that exercises a declared search parameter without needing data (:missing applies to every parameter type). */
  const probe = (name: string): string => {
    switch (name) {
      case '_count':
        return '_count=1';
      case '_sort':
        return '_sort=_lastUpdated';
      case '_total':
        return '_total=accurate';
      case '_summary':
        return '_summary=count';
      case '_elements':
        return '_elements=id';
      default:
        return `${name}:missing=true`;
    }
  };

  it.each(['Patient', 'DocumentReference', 'List', 'Consent', 'AuditEvent', 'Communication', 'Practitioner', 'Organization', 'Binary', 'Subscription'])(
    'is honest about %s: every declared search parameter is accepted under handling=strict',
    async (type) => {
      const params: { name: string }[] = cs.rest[0].resource.find((r: any) => r.type === type).searchParam;
      expect(params.length).toBeGreaterThan(0);
      const refused: string[] = [];
      for (const p of params) {
        const res = await http(t.base, `${type}?${probe(p.name)}`, { headers: { prefer: 'handling=strict' } });
        if (res.status !== 200 || res.body?.resourceType !== 'Bundle') refused.push(`${p.name} (${res.status}: ${res.body?.issue?.[0]?.diagnostics ?? res.text.slice(0, 100)})`);
      }
      expect(refused).toEqual([]);
    },
  );
});

describe('around the FHIR base', () => {
  it('GET /healthz answers 200 {status: ok}', async () => {
    const res = await fetch(`${origin()}/healthz`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).status).toBe('ok');
  });

  it('echoes X-Request-Id when sent, on success and on error', async () => {
    const ok = await http(t.base, 'metadata', { headers: { 'x-request-id': 'req-abc-123' } });
    expect(ok.headers.get('x-request-id')).toBe('req-abc-123');
    const err = await http(t.base, 'Patient/does-not-exist', { headers: { 'x-request-id': 'req-def-456' } });
    expect(err.status).toBe(404);
    expect(err.headers.get('x-request-id')).toBe('req-def-456');
  });

  it('generates a distinct X-Request-Id when none is sent', async () => {
    const a = (await http(t.base, 'metadata')).headers.get('x-request-id');
    const b = (await http(t.base, 'metadata')).headers.get('x-request-id');
    expect(a).toBeTruthy();
    expect(b).toBeTruthy();
    expect(a).not.toBe(b);
  });

  it.each(['Patient/x/_history/1/extra', 'not-a-type', 'Patient/x/unknown'])('answers 404 with an OperationOutcome for /fhir/%s', async (path) => {
    const res = await http(t.base, path);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
  });

  it.each(['/nothing-here', '/fhirx/Patient', '/'])('answers 404 with an OperationOutcome outside the FHIR base: %s', async (path) => {
    const res = await http(origin(), path);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
