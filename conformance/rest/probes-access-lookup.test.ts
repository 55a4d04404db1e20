import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';
import { as, consent, G15, ircp, Json, ref, REPORT, requests, document } from '../accessFixtures';

/**
 * Probes from outside of the record lookup by INS (decision 033), of a system that deposits
 * nothing (decision 034) and of the one refusal a professional without consent meets on
 * every path to a record (decision 031): what each caller can learn of a record they may
 * not enter, by any parameter, representation, method or Bundle entry.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const REFUSAL = 'https://fhir.dmp.esante.example/CodeSystem/dmp-record-refusal';
const DEVICE_TYPES = 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type';
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const q = encodeURIComponent;
const lookupQuery = () => `identifier=${q(`${NIR}|${x.nir}`)}`;
/** What the record's identity holds and no lookup may tell. */
const secrets = () => [`Secret-${RUN}`, 'Camille', '1975-04-12', 'female', `rue-${RUN}`, ref(x.gp)];
const entries = (res: { body: any }) => (res.body?.entry ?? []) as Json[];
/** An answer with the ids, UUIDs, instants and page tokens taken out: what differs between two records. */
const shape = (res: { status: number; text: string }, id: string) => ({
  status: res.status,
  text: res.text.split(id).join('ID').replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, 'UUID').replace(/\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)/g, 'INSTANT'),
});

beforeAll(async () => {
  const practitioner = async (name: string, ...professions: string[]) => {
    const p = await create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
    const roles: Json[] = [];
    for (const code of professions) roles.push(await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code }] }] }));
    return { p, roles };
  };
  const gp = await practitioner('Traitant', '10');
  const doctor = await practitioner('Urgentiste', '10');
  const mixed = await practitioner('Mixte', '10', '31');
  x.gp = gp.p;
  x.doctor = doctor.p;
  x.mixed = mixed.p;
  x.org = await create({ resourceType: 'Organization', name: `Editeur-${RUN}` });
  x.nir = freshNir();
  x.p = await create(
    withIns(
      {
        resourceType: 'Patient', name: [{ family: `Secret-${RUN}`, given: ['Camille'] }], birthDate: '1975-04-12', gender: 'female',
        address: [{ line: [`1 rue-${RUN}`], city: 'Lyon' }], managingOrganization: { reference: ref(x.org) }, generalPractitioner: [{ reference: ref(x.gp) }],
      },
      NIR,
      x.nir,
    ),
  );
  x.other = await create({ resourceType: 'Patient', name: [{ family: `Autre-${RUN}` }] });
  x.guardian = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.other) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'GUARD' }] }] });
  x.catalogue = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: DEVICE_TYPES, code: 'catalogue-application' }] } });
  tok.gp = await mint(ref(x.gp));
  tok.doctor = await mint(ref(x.doctor));
  tok.mixed10 = await mint(ref(x.mixed), 'user/*.cruds', { practitioner_role: mixed.roles[0].id });
  tok.mixed31 = await mint(ref(x.mixed), 'user/*.cruds', { practitioner_role: mixed.roles[1].id });
  tok.p = await mint(ref(x.p), 'patient/*.cruds');
  tok.other = await mint(ref(x.other), 'patient/*.cruds');
  tok.guardian = await mint(ref(x.guardian), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  tok.catalogue = await mint(ref(x.catalogue), 'system/*.cruds');
  await create(consent(x.p, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.doc = await create(document(x.p, REPORT, ref(x.gp), [], undefined, `doc-${RUN}`), tok.gp);
});

describe('the INS lookup tells a professional without consent the id, the INS sent and nothing else', () => {
  const reduced = () => ({
    resourceType: 'Patient', id: x.p.id, identifier: [{ system: NIR, value: x.nir }], active: true,
    meta: { tag: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED', display: 'subsetted' }] },
  });

  it('in every representation and spelling of the same request: XML, Accept, _pretty, GET _search, a form body with a charset', async () => {
    const form = (contentType: string, query = '') =>
      http(t.base, `Patient/_search${query}`, { method: 'POST', body: lookupQuery(), headers: { ...as(tok.doctor), 'content-type': contentType } });
    const answers: [string, { status: number; text: string; body: any }][] = [
      ['_pretty', await get(`Patient?${lookupQuery()}&_pretty=true`, tok.doctor)],
      ['GET _search', await get(`Patient/_search?${lookupQuery()}`, tok.doctor)],
      ['form; charset', await form('application/x-www-form-urlencoded; charset=utf-8')],
      ['_format twice', await get(`Patient?${lookupQuery()}&_format=json&_format=xml`, tok.doctor)],
    ];
    for (const [what, res] of answers) {
      expect([what, res.status]).toEqual([what, 200]);
      expect([what, entries(res).map((e) => e.resource.resourceType === 'Patient' ? e.resource : e.search.mode)]).toEqual([what, [reduced(), 'outcome']]);
    }
    for (const [what, res] of [
      ['_format=xml', await get(`Patient?${lookupQuery()}&_format=xml`, tok.doctor)],
      ['Accept XML', await get(`Patient?${lookupQuery()}`, tok.doctor, { accept: 'application/fhir+xml' })],
      ['form, _format=xml in the query', await form('application/x-www-form-urlencoded', '?_format=xml')],
    ] as const) {
      expect([what, res.status, res.text.startsWith('<Bundle')]).toEqual([what, 200, true]);
      expect([what, res.text.includes(`<id value="${x.p.id}"/>`)]).toEqual([what, true]);
      for (const s of secrets()) expect([what, s, res.text.includes(s)]).toEqual([what, s, false]);
      expect([what, /<(name|birthDate|gender|address|versionId|lastUpdated|generalPractitioner|managingOrganization)\b/.test(res.text)]).toEqual([what, false]);
    }
  });

  it('any other parameter, wherever it is sent, or any other spelling of the system or value, is the ordinary search: nothing', async () => {
    const L = lookupQuery();
    const form = (body: string, query: string) => http(t.base, `Patient/_search${query}`, { method: 'POST', body, headers: { ...as(tok.doctor), 'content-type': 'application/x-www-form-urlencoded' } });
    const answers: [string, { status: number; text: string; body: any }][] = [];
    for (const [what, path] of [
      ['system in capitals', `Patient?identifier=${q(`URN:OID:1.2.250.1.213.1.4.8|${x.nir}`)}`],
      ['leading space', `Patient?identifier=${q(`${NIR}| ${x.nir}`)}`],
      ['trailing space', `Patient?identifier=${q(`${NIR}|${x.nir} `)}`],
      ['the test system', `Patient?identifier=${q(`urn:oid:1.2.250.1.213.1.4.10|${x.nir}`)}`],
      ['the demo system', `Patient?identifier=${q(`urn:oid:1.2.250.1.213.1.4.11|${x.nir}`)}`],
      ['parameter name in capitals', `Patient?IDENTIFIER=${q(`${NIR}|${x.nir}`)}`],
      ['an empty _elements', `Patient?${L}&_elements=`],
      ['an empty _id', `Patient?${L}&_id=`],
      ['_summary=true', `Patient?${L}&_summary=true`],
      ['_sort', `Patient?${L}&_sort=birthdate`],
      ['_lastUpdated', `Patient?${L}&_lastUpdated=gt2000-01-01`],
      ['_security', `Patient?${L}&_security=x`],
      ['_list', `Patient?${L}&_list=x`],
      ['the right birth date', `Patient?${L}&birthdate=1975-04-12`],
      ['another birth date', `Patient?${L}&birthdate=1999-04-12`],
    ]) answers.push([what, await get(path, tok.doctor)]);
    answers.push(['_elements in the query, the INS in the body', await form(L, '?_elements=name')]);
    answers.push(['birthdate in the query, the INS in the body', await form(L, '?birthdate=1975-04-12')]);
    answers.push(['birthdate in the body', await form(`${L}&birthdate=1975-04-12`, '')]);
    answers.push(['the INS in the query and the body', await form(L, `?${L}`)]);
    for (const [what, res] of answers) {
      expect([what, res.status]).toEqual([what, 200]);
      expect([what, res.body.total ?? 0, entries(res).filter((e) => e.search?.mode !== 'outcome')]).toEqual([what, 0, []]);
      expect([what, res.text.includes(x.p.id)]).toEqual([what, false]);
    }
  });

  it('a legal representative, a patient, a role of a profession the matrix does not know learn nothing; the same practitioner in a known role is told', async () => {
    for (const who of ['guardian', 'other', 'mixed31']) {
      const res = await get(`Patient?${lookupQuery()}`, tok[who]);
      expect([who, res.status, res.body.total ?? 0, res.text.includes(x.p.id)]).toEqual([who, 200, 0, false]);
    }
    const told = await get(`Patient?${lookupQuery()}`, tok.mixed10);
    expect(entries(told).map((e) => e.resource.id ?? e.search.mode)).toEqual([x.p.id, 'outcome']);
    expect(entries(told)[1].resource.issue[0].details.coding[0]).toEqual({ system: REFUSAL, code: 'NO_CONSENT' });
  });

  it('every lookup that tells the record, HEAD and XML included, is one refused AuditEvent; one that tells nothing is none', async () => {
    const count = async () => (await get(`AuditEvent?patient=${ref(x.p)}&outcome=4&_summary=count`, tok.admin)).body.total as number;
    const before = await count();
    await get(`Patient?${lookupQuery()}&_format=xml`, tok.doctor);
    await send('HEAD', `Patient?${lookupQuery()}`, tok.doctor);
    await http(t.base, 'Patient/_search', { method: 'POST', body: lookupQuery(), headers: { ...as(tok.doctor), 'content-type': 'application/x-www-form-urlencoded' } });
    await get(`Patient?${lookupQuery()}&_summary=true`, tok.doctor);
    await get(`Patient?${lookupQuery()}`, tok.guardian);
    expect(await count()).toBe(before + 3);
  });
});

describe('a catalogue application reads nothing that tells a Patient exists', () => {
  it('every read path answers alike for an existing Patient and an id nobody holds', async () => {
    const nobody = crypto.randomUUID();
    const paths = [
      'Patient/ID', 'Patient/ID/_history', 'Patient/ID/_history/1', 'Patient/ID/$everything', 'Patient/ID/$meta', 'Patient/ID/DocumentReference', 'Patient/ID/Communication', 'Patient/ID/*',
      'DocumentReference?patient=Patient/ID', 'DocumentReference?_summary=count&patient=Patient/ID', 'Communication?subject=Patient/ID', 'Communication?recipient=Patient/ID',
      'AuditEvent?patient=Patient/ID', 'Device?patient=Patient/ID', 'RelatedPerson?patient=Patient/ID', 'List?subject=Patient/ID', 'Consent?patient=Patient/ID',
      'Organization?_has:Patient:organization:_id=ID', 'Practitioner?_has:Patient:general-practitioner:_id=ID',
    ];
    for (const path of paths) {
      const existing = shape(await get(path.split('ID').join(x.p.id), tok.catalogue), x.p.id);
      const unknown = shape(await get(path.split('ID').join(nobody), tok.catalogue), nobody);
      expect([path, existing]).toEqual([path, unknown]);
    }
    const batch = await send('POST', '', tok.catalogue, { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: ref(x.p) } }, { request: { method: 'GET', url: `Patient/${nobody}` } }] });
    const [a, b] = entries(batch).map((e) => e.response);
    expect(shape({ status: 0, text: JSON.stringify(a) }, x.p.id)).toEqual(shape({ status: 0, text: JSON.stringify(b) }, nobody));
  });

  it('includes, system history and an export carry no Patient', async () => {
    for (const path of [`Organization?_id=${x.org.id}&_revinclude=*`, `Organization?_id=${x.org.id}&_revinclude:iterate=*`, `Practitioner?_id=${x.gp.id}&_revinclude=Patient:general-practitioner`, '_history?_count=500']) {
      const res = await get(path, tok.catalogue);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, entries(res).filter((e) => e.resource?.resourceType === 'Patient'), res.text.includes(x.p.id)]).toEqual([path, [], false]);
    }
    const kick = await send('GET', '$export?_type=Patient,Device', tok.catalogue, undefined, { prefer: 'respond-async' });
    expect(kick.status).toBe(202);
    const poll = kick.headers.get('content-location')!;
    let done: Json | undefined;
    for (let i = 0; i < 60 && !done; i++) {
      const res = await http(poll, '', { headers: as(tok.catalogue) });
      if (res.status === 200) done = res.body;
      else await new Promise((r) => setTimeout(r, 250));
    }
    expect(done!.output.map((o: Json) => o.type)).not.toContain('Patient');
  });
});

describe('a professional without consent meets one refusal on every path to the record', () => {
  it('GET, HEAD, PUT, PATCH, DELETE, $everything, history, vread, compartment, $meta, $meta-add, searches naming the patient and batch entries', async () => {
    const P = ref(x.p);
    const read = await get(P, tok.doctor);
    expect(read.status).toBe(403);
    expect(read.body.issue[0].details.coding).toEqual([{ system: REFUSAL, code: 'NO_CONSENT' }]);
    const requests: [string, string, unknown?, Record<string, string>?][] = [
      ['PUT', P, { resourceType: 'Patient', id: x.p.id, name: [{ family: 'X' }] }],
      ['PUT', P, { resourceType: 'Patient', id: x.p.id }, { 'if-match': 'W/"1"' }],
      ['PATCH', P, [{ op: 'replace', path: '/active', value: true }], { 'content-type': 'application/json-patch+json' }],
      ['DELETE', P], ['DELETE', P, undefined, { 'if-match': 'W/"99"' }],
      ['GET', `${P}/$everything`], ['GET', `${P}/_history`], ['GET', `${P}/_history/1`], ['GET', `${P}/$meta`], ['GET', `${P}/DocumentReference`],
      ['POST', `${P}/$meta-add`, { resourceType: 'Parameters' }],
      ['GET', `DocumentReference?patient=${P}`], ['GET', `DocumentReference?subject=${t.base}/${P}`], ['GET', `DocumentReference?subject:Patient=${x.p.id}`],
    ];
    for (const [method, path, body, headers] of requests) {
      const res = await send(method, path, tok.doctor, body, headers ?? {});
      expect([method, path, res.status, res.body?.issue]).toEqual([method, path, 403, read.body.issue]);
    }
    expect((await send('HEAD', P, tok.doctor)).status).toBe(403);
    const batch = await send('POST', '', tok.doctor, {
      resourceType: 'Bundle', type: 'batch',
      entry: [
        { request: { method: 'GET', url: P } }, { request: { method: 'HEAD', url: P } }, { request: { method: 'GET', url: `${P}/$everything` } }, { request: { method: 'GET', url: `${P}/_history` } },
        { request: { method: 'DELETE', url: P } }, { request: { method: 'PUT', url: P }, resource: { resourceType: 'Patient', id: x.p.id } }, { request: { method: 'GET', url: `DocumentReference?patient=${P}` } },
      ],
    });
    for (const [i, e] of entries(batch).entries()) expect([i, e.response.status, e.response.outcome.issue]).toEqual([i, '403', read.body.issue]);
    // nothing was written
    const stored = await get(P, tok.gp);
    expect([stored.body.meta.versionId, stored.body.name[0].family]).toEqual(['1', `Secret-${RUN}`]);
  });

  it('a resource of the record answers the same 403, naming no patient; an unknown id is 404', async () => {
    const D = ref(x.doc);
    const read = await get(D, tok.doctor);
    expect([read.status, read.body.issue[0].details.coding[0].code, read.text.includes(x.p.id)]).toEqual([403, 'NO_CONSENT', false]);
    for (const [method, path] of [['DELETE', D], ['GET', `${D}/_history`], ['GET', `${D}/_history/1`]]) {
      const res = await send(method, path, tok.doctor);
      expect([method, path, res.status, res.body.issue]).toEqual([method, path, 403, read.body.issue]);
    }
    expect((await send('HEAD', D, tok.doctor)).status).toBe(403);
    expect((await get(`DocumentReference/${crypto.randomUUID()}`, tok.doctor)).status).toBe(404);
  });
});

describe("a patient learns nothing of another patient's record", () => {
  it('reads and writes naming it answer as for an id nobody holds', async () => {
    const nobody = crypto.randomUUID();
    const asks: [string, (pat: Json) => Promise<{ status: number; text: string }>][] = [
      ['read', (pat) => get(ref(pat), tok.other)],
      ['Communication search', (pat) => get(`Communication?subject=${ref(pat)}`, tok.other)],
      ['document', (pat) => send('POST', 'DocumentReference', tok.other, document(pat, REPORT, ref(x.other)))],
      ['List', (pat) => send('POST', 'List', tok.other, { resourceType: 'List', status: 'current', mode: 'working', subject: { reference: ref(pat) } })],
      ['message', (pat) => send('POST', 'Communication', tok.other, { resourceType: 'Communication', status: 'in-progress', subject: { reference: ref(pat) }, sender: { reference: ref(x.other) }, recipient: [{ reference: ref(pat) }] })],
    ];
    for (const [what, ask] of asks) {
      expect([what, shape(await ask(x.p), x.p.id)]).toEqual([what, shape(await ask({ resourceType: 'Patient', id: nobody }), nobody)]);
    }
  });
});
