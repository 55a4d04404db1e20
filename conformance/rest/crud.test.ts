import { DOCUMENT_CODES } from '../frenchFixtures';
import { FHIR_JSON, http, startTarget, Target } from '../harness';

let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const patient = (family = 'Martin') => ({
  resourceType: 'Patient',
  name: [{ family, given: ['Léa'] }],
  gender: 'female',
  birthDate: '1990-05-17',
});

describe('create, read, vread, update, delete', () => {
  it('creates with a server id (a client id on POST is ignored) and reads it back', async () => {
    const created: any = await t.client.create({ resourceType: 'Patient', body: { ...patient(), id: 'client-chosen' } });
    expect(created.id).toBeDefined();
    expect(created.id).not.toBe('client-chosen');
    expect(created.meta.versionId).toBe('1');
    expect(Date.parse(created.meta.lastUpdated)).not.toBeNaN();
    const read: any = await t.client.read({ resourceType: 'Patient', id: created.id });
    expect(read).toEqual(created);
  });

  it('answers a create with 201, Location with _history, ETag and Last-Modified', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: patient() });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`${t.base}/Patient/${res.body.id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified')!).getTime()).toBeGreaterThan(0);
    expect(res.headers.get('content-type')).toContain(FHIR_JSON);
  });

  it('overrides client meta.versionId and lastUpdated', async () => {
    const res = await http(t.base, 'Patient', { method: 'POST', json: { ...patient(), meta: { versionId: '42', lastUpdated: '2001-01-01T00:00:00Z', tag: [{ code: 'x' }] } } });
    expect(res.body.meta.versionId).toBe('1');
    expect(res.body.meta.lastUpdated).not.toBe('2001-01-01T00:00:00Z');
    expect(res.body.meta.tag).toEqual([{ code: 'x' }]);
  });

  it('updates with a new version and keeps the old one readable by vread', async () => {
    const created: any = await t.client.create({ resourceType: 'Patient', body: patient('Avant') });
    const updated: any = await t.client.update({ resourceType: 'Patient', id: created.id, body: { ...patient('Après'), id: created.id } });
    expect(updated.meta.versionId).toBe('2');
    const v1: any = await t.client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
    expect(v1.name[0].family).toBe('Avant');
    const v2: any = await t.client.vread({ resourceType: 'Patient', id: created.id, version: '2' });
    expect(v2.name[0].family).toBe('Après');
    const res = await http(t.base, `Patient/${created.id}/_history/3`);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('creates on PUT with a client id (update as create), 201 then 200', async () => {
    const first = await http(t.base, 'Patient/ins-0001', { method: 'PUT', json: { ...patient(), id: 'ins-0001' } });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`${t.base}/Patient/ins-0001/_history/1`);
    const second = await http(t.base, 'Patient/ins-0001', { method: 'PUT', json: { ...patient('Autre'), id: 'ins-0001' } });
    expect(second.status).toBe(200);
    expect(second.body.meta.versionId).toBe('2');
  });

  it('refuses a PUT whose body id differs from the URL, or has none', async () => {
    const wrong = await http(t.base, 'Patient/abc', { method: 'PUT', json: { ...patient(), id: 'xyz' } });
    expect(wrong.status).toBe(400);
    expect(wrong.body.issue[0].diagnostics).toMatch(/does not match/);
    const none = await http(t.base, 'Patient/abc', { method: 'PUT', json: patient() });
    expect(none.status).toBe(400);
    expect((await http(t.base, 'Patient/abc')).status).toBe(404);
  });

  it('deletes: read answers 410 Gone, vread of earlier versions still works, delete is idempotent', async () => {
    const created: any = await t.client.create({ resourceType: 'Patient', body: patient() });
    const del = await http(t.base, `Patient/${created.id}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(del.headers.get('etag')).toBe('W/"2"');
    const gone = await http(t.base, `Patient/${created.id}`);
    expect(gone.status).toBe(410);
    expect(gone.body.issue[0].code).toBe('deleted');
    const v1 = await http(t.base, `Patient/${created.id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.id).toBe(created.id);
    const v2 = await http(t.base, `Patient/${created.id}/_history/2`);
    expect(v2.status).toBe(410);
    expect((await http(t.base, `Patient/${created.id}`, { method: 'DELETE' })).status).toBe(204);
    const search = await http(t.base, `Patient?_id=${created.id}`);
    expect(search.body.total).toBe(0);
    // a deleted resource can be brought back by an update
    const back = await http(t.base, `Patient/${created.id}`, { method: 'PUT', json: { ...patient(), id: created.id } });
    expect(back.status).toBe(201);
    expect(back.body.meta.versionId).toBe('3');
  });

  it('answers 404 with an OperationOutcome for unknown ids and unknown types', async () => {
    const missing = await http(t.base, 'Patient/does-not-exist');
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    const unknownType = await http(t.base, 'Spaceship/1');
    expect(unknownType.status).toBe(404);
    expect(unknownType.body.issue[0].diagnostics).toMatch(/Spaceship/);
    const unknownSearch = await http(t.base, 'Spaceship?name=x');
    expect(unknownSearch.status).toBe(404);
  });

  // The smallest resource of each type that is valid per R4 (required elements and invariants) and per the
  // profiles that apply by default (profiles/profile-map.json: PractitionerRole, Consent), referencing resources that exist.
  const minimal: Record<string, Record<string, unknown>> = {
    Practitioner: {},
    PractitionerRole: {
      practitioner: { reference: 'Practitioner/crud-author' },
      code: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante', code: '10' }] }],
    },
    Organization: { name: 'Clinique du Parc' },
    RelatedPerson: { patient: { reference: 'Patient/ins-0001' } },
    DocumentReference: { status: 'current', ...DOCUMENT_CODES, subject: { reference: 'Patient/ins-0001' }, content: [{ attachment: { contentType: 'text/plain', data: 'Ym9uam91cg==' } }] },
    List: { status: 'current', mode: 'working' },
    Consent: {
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      policy: [{ uri: 'https://www.legifrance.gouv.fr/codes/article_lc/LEGIARTI000043497461' }],
      patient: { reference: 'Patient/ins-0001' },
      dateTime: '2024-01-01T10:00:00Z',
      provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'PRCP' }] }, reference: { reference: 'Practitioner/crud-author' } }] },
    },
    AuditEvent: {
      type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110110', display: 'Patient Record' },
      recorded: '2024-01-01T10:00:00Z',
      agent: [{ requestor: true, who: { reference: 'Practitioner/pr-1' } }],
      source: { observer: { display: 'DMP' } },
    },
    Communication: { status: 'completed' },
    Device: {},
    Subscription: {
      status: 'off',
      reason: 'suivi des résultats',
      criteria: 'Observation?code=http://loinc.org|1975-2',
      channel: { type: 'rest-hook', endpoint: 'https://example.org/hook', payload: 'application/fhir+json' },
    },
  };

  beforeAll(async () => {
    await http(t.base, 'Practitioner/crud-author', { method: 'PUT', json: { resourceType: 'Practitioner', id: 'crud-author', name: [{ family: 'Auteur' }] } });
  });

  it.each(['Practitioner', 'PractitionerRole', 'Organization', 'RelatedPerson', 'DocumentReference', 'List', 'Consent', 'AuditEvent', 'Communication', 'Device', 'Subscription'])(
    'serves %s',
    async (type) => {
      const res = await http(t.base, type, { method: 'POST', json: { resourceType: type, ...minimal[type] } });
      expect(res.status).toBe(201);
      expect((await http(t.base, `${type}/${res.body.id}`)).status).toBe(200);
    },
  );
});

describe('bad input: clear OperationOutcome, nothing written', () => {
  const countPatients = async () => (await http(t.base, 'Patient?_summary=count')).body.total as number;

  it.each([
    ['malformed JSON', { body: '{"resourceType": "Patient",', headers: { 'content-type': FHIR_JSON } }, 400, /not valid JSON/],
    ['a body of another type', { body: JSON.stringify({ resourceType: 'Observation' }), headers: { 'content-type': FHIR_JSON } }, 400, /Observation.*Patient/],
    ['no resourceType', { body: JSON.stringify({ name: [] }), headers: { 'content-type': FHIR_JSON } }, 400, /resourceType/],
    ['a JSON array', { body: '[]', headers: { 'content-type': FHIR_JSON } }, 400, /JSON object/],
    ['no body', { headers: { 'content-type': FHIR_JSON } }, 400, /requires a body/],
    ['malformed FHIR XML', { body: '<Patient xmlns="http://hl7.org/fhir">', headers: { 'content-type': 'application/fhir+xml' } }, 400, /not well-formed/],
    ['a text content type', { body: 'hello', headers: { 'content-type': 'text/plain' } }, 415, /not supported/],
  ])('refuses %s', async (_name, init, status, message) => {
    const before = await countPatients();
    const res = await http(t.base, 'Patient', { method: 'POST', ...(init as RequestInit) });
    expect(res.status).toBe(status);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
    expect(res.body.issue[0].diagnostics).toMatch(message);
    expect(await countPatients()).toBe(before);
  });

  it('answers 405 for a method the path does not take', async () => {
    const res = await http(t.base, 'Patient/x/_history', { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
