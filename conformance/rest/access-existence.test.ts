import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { as, consent, document as documentResource, G15, ircp, Json, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * A write tells no more than a read (docs/decisions/012-update-as-create.md): every write
 * onto an id hidden from the caller answers exactly as onto an id nobody holds, over HTTP,
 * with real tokens; and a legal representative reaches the represented patient's record
 * and no other (docs/decisions/008-access-model.md).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const document = (patient: Json, type: { code: string; cls: string }, author: string, labels: string[] = []) => documentResource(patient, type, author, labels, undefined, `doc ${RUN}`);

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  const practitioner = (name: string) => create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
  const role = (p: Json, profession: string, extra: Json = {}) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...extra });
  x.gp = await practitioner('Generaliste');
  await role(x.gp, '10', { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.nurse = await practitioner('Infirmier');
  await role(x.nurse, '60');
  x.org = await create({ resourceType: 'Organization', name: `Org ${RUN}` });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  const parent = (extra: Json = {}) =>
    create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }], ...extra });
  x.parent = await parent();
  x.formerGuardian = await parent({ period: { start: '2016-01-01', end: '2020-01-01' } });
  x.futureGuardian = await parent({ period: { start: '2999-01-01' } });
  x.inactiveParent = await parent({ active: false });
  x.engine = await create({ resourceType: 'Device', status: 'active', owner: { reference: ref(x.org) }, type: { coding: [{ system: 'https://fhir.dmp.esante.example/CodeSystem/dmp-device-type', code: 'integration-engine' }] } });

  tok.gp = await mint(ref(x.gp));
  tok.nurse = await mint(ref(x.nurse));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  tok.engine = await mint(ref(x.engine), 'system/*.cruds');
  for (const [who, token] of [[x.gp, tok.gp], [x.nurse, tok.nurse]] as const) {
    await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  }
  await create(consent(x.minor, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);

  x.report = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
  x.psych = await create(document(x.p1, PSYCH, ref(x.gp)), tok.gp);
  x.unannounced = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']), tok.gp);
  x.minorReport = await create(document(x.minor, REPORT, ref(x.gp)), tok.gp);
  x.minorSecret = await create(document(x.minor, REPORT, ref(x.gp), ['INVISIBLE_REPRESENTANTS_LEGAUX']), tok.gp);
});

/** An answer with the id it names replaced, and the headers a client could compare. */
const shape = (res: { status: number; text: string; headers: Headers }, id: string) => ({
  status: res.status,
  text: res.text.split(id).join('ID'),
  contentType: res.headers.get('content-type'),
  location: res.headers.get('location'),
  etag: res.headers.get('etag'),
  authenticate: res.headers.get('www-authenticate'),
});

/** The caller, the document hidden from them, and a body they could write. */
const hiddenFrom = () => [
  ['a nurse, a psychiatric summary outside her matrix', tok.nurse, x.psych, document(x.p1, REPORT, ref(x.nurse))],
  ['a patient, a document invisible to them', tok.p1, x.unannounced, document(x.p1, REPORT, ref(x.p1))],
  ["a patient, another patient's document", tok.p2, x.report, document(x.p2, REPORT, ref(x.p2))],
  ['a legal representative, a document invisible to representatives', tok.parent, x.minorSecret, document(x.minor, REPORT, ref(x.parent))],
  ['an administrator, clinical content', tok.admin, x.report, document(x.p1, REPORT, ref(x.gp))],
  ['a system, clinical content', tok.engine, x.report, document(x.p1, REPORT, ref(x.org))],
] as [string, string, Json, Json][];

const intact = async (doc: Json) => {
  const stored = await get(ref(doc), t.token);
  expect([ref(doc), stored.body.meta.versionId, stored.body.description]).toEqual([ref(doc), '1', `doc ${RUN}`]);
};

describe('PUT onto an id the caller cannot read answers the same whether the id is free or hidden', () => {
  it('for every kind of restricted caller: the same 403 saying to use POST, and the hidden row intact', async () => {
    for (const [who, token, hidden, body] of hiddenFrom()) {
      const missing = crypto.randomUUID();
      const onHidden = await send('PUT', `DocumentReference/${hidden.id}`, token, { ...body, id: hidden.id });
      const onMissing = await send('PUT', `DocumentReference/${missing}`, token, { ...body, id: missing });
      expect([who, shape(onHidden, hidden.id)]).toEqual([who, shape(onMissing, missing)]);
      expect([who, onHidden.status]).toEqual([who, 403]);
      expect(onHidden.body.issue[0].diagnostics).toContain('POST DocumentReference');
      // nothing was created at the free id either
      expect((await get(`DocumentReference/${missing}`, t.token)).status).toBe(404);
      await intact(hidden);
    }
  });

  it("a patient's PUT onto another patient's identity and onto a free Patient id are one refusal", async () => {
    const missing = crypto.randomUUID();
    const onOther = await send('PUT', `Patient/${x.p2.id}`, tok.p1, { ...x.p2, gender: 'other' });
    const onMissing = await send('PUT', `Patient/${missing}`, tok.p1, { ...x.p2, id: missing, gender: 'other' });
    expect(shape(onOther, x.p2.id)).toEqual(shape(onMissing, missing));
    expect(onOther.status).toBe(403);
  });

  it('a conditional update with a body id: the same refusal for a hidden id and a free one', async () => {
    const missing = crypto.randomUUID();
    const criteria = `DocumentReference?description=nothing-${RUN}`;
    const onHidden = await send('PUT', criteria, tok.nurse, { ...document(x.p1, REPORT, ref(x.nurse)), id: x.psych.id });
    const onMissing = await send('PUT', criteria, tok.nurse, { ...document(x.p1, REPORT, ref(x.nurse)), id: missing });
    expect(shape(onHidden, x.psych.id)).toEqual(shape(onMissing, missing));
    expect(onHidden.status).toBe(403);
    await intact(x.psych);
  });

  it('a conditional update that matches nothing and carries no id creates, with an id the server draws', async () => {
    const res = await send('PUT', `DocumentReference?description=conditional-${RUN}`, tok.nurse, { ...document(x.p1, REPORT, ref(x.nurse)), description: `conditional-${RUN}` });
    expect(res.status).toBe(201);
    expect((await get(`DocumentReference/${res.body.id}`, tok.nurse)).status).toBe(200);
  });

  it('transaction and batch entries: a PUT onto a hidden id answers as onto a free one', async () => {
    for (const type of ['transaction', 'batch']) {
      const missing = crypto.randomUUID();
      const bundle = (id: string) => ({
        resourceType: 'Bundle',
        type,
        entry: [{ request: { method: 'PUT', url: `DocumentReference/${id}` }, resource: { ...document(x.p1, REPORT, ref(x.nurse)), id } }],
      });
      const onHidden = await send('POST', '', tok.nurse, bundle(x.psych.id));
      const onMissing = await send('POST', '', tok.nurse, bundle(missing));
      expect([type, shape(onHidden, x.psych.id)]).toEqual([type, shape(onMissing, missing)]);
      expect([type, onHidden.status]).toEqual([type, type === 'transaction' ? 403 : 200]);
    }
    await intact(x.psych);
  });

  it('DELETE, PATCH, $meta-add and $validate (mode delete) of a hidden id answer as of a free one', async () => {
    const missing = crypto.randomUUID();
    const patch = JSON.stringify([{ op: 'replace', path: '/description', value: 'changed' }]);
    const meta = { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { tag: [{ system: 'urn:probe', code: RUN }] } }] };
    const requests: [string, (id: string) => Promise<{ status: number; text: string; headers: Headers }>][] = [
      ['DELETE', (id) => send('DELETE', `DocumentReference/${id}`, tok.nurse)],
      ['PATCH', (id) => http(t.base, `DocumentReference/${id}`, { method: 'PATCH', body: patch, headers: { ...as(tok.nurse), 'content-type': 'application/json-patch+json' } })],
      ['$meta-add', (id) => send('POST', `DocumentReference/${id}/$meta-add`, tok.nurse, meta)],
      ['$meta-delete', (id) => send('POST', `DocumentReference/${id}/$meta-delete`, tok.nurse, meta)],
      ['$validate mode=delete', (id) => send('POST', `DocumentReference/${id}/$validate?mode=delete`, tok.nurse, { resourceType: 'Parameters' })],
      ['$validate of the stored resource', (id) => send('POST', `DocumentReference/${id}/$validate`, tok.nurse, { resourceType: 'Parameters' })],
      ['DELETE with If-Match', (id) => send('DELETE', `DocumentReference/${id}`, tok.nurse, undefined, { 'if-match': 'W/"1"' })],
    ];
    for (const [what, request] of requests) {
      const onHidden = await request(x.psych.id);
      const onMissing = await request(missing);
      expect([what, shape(onHidden, x.psych.id)]).toEqual([what, shape(onMissing, missing)]);
    }
    await intact(x.psych);
  });

  it('updates of what the caller reads still work, and administrators create directory entries at a chosen id', async () => {
    const { meta: _meta, ...current } = (await get(ref(x.report), tok.gp)).body;
    // (what a PUT of a stored document may change: its status, labels, archiving; decision 029)
    expect((await send('PUT', ref(x.report), tok.gp, { ...current, securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'N' }] }] })).status).toBe(200);
    const id = `org-${RUN}`;
    const created = await send('PUT', `Organization/${id}`, tok.admin, { resourceType: 'Organization', id, name: `Chosen ${RUN}` });
    expect(created.status).toBe(201);
    expect((await send('PUT', `Organization/${id}`, tok.admin, { resourceType: 'Organization', id, name: `Renamed ${RUN}` })).status).toBe(200);
    // a professional reads the directory whole, and still creates in it with POST only (administrators write it)
    const byProfessional = await send('PUT', `Organization/other-${RUN}`, tok.gp, { resourceType: 'Organization', id: `other-${RUN}`, name: 'x' });
    expect(byProfessional.status).toBe(403);
  });

  it('the CapabilityStatement says so: updateCreate only on the types administrators write', async () => {
    const cs = (await get('metadata')).body;
    const updateCreate = (type: string) => cs.rest[0].resource.find((r: Json) => r.type === type).updateCreate;
    expect([updateCreate('DocumentReference'), updateCreate('Consent'), updateCreate('Subscription')]).toEqual([false, false, false]);
    expect([updateCreate('Organization'), updateCreate('Patient'), updateCreate('RelatedPerson')]).toEqual([true, true, true]);
    expect(cs.rest[0].security.description).toContain('Client-chosen ids');
  });
});

describe("the patient's trail tells no more than the answer", () => {
  it('a patient probing a document of their record hidden from them finds no trace of it in their trail; the investigator does', async () => {
    const refusals = async () => ((await get(`AuditEvent?patient=${ref(x.p1)}&outcome=4&_count=500`, tok.p1)).body.entry ?? []).length;
    const missing = crypto.randomUUID();
    const before = await refusals();
    expect((await get(`DocumentReference/${missing}`, tok.p1)).status).toBe(404);
    expect(await refusals()).toBe(before);
    expect((await get(ref(x.unannounced), tok.p1)).status).toBe(404);
    expect(await refusals()).toBe(before);
    expect((await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, tok.p1)).text).not.toContain(x.unannounced.id);
    const investigated = await get(`AuditEvent?entity=${ref(x.unannounced)}&outcome=4`, tok.admin);
    expect((investigated.body.entry ?? []).length).toBeGreaterThanOrEqual(1);
  });
});

describe('the write policy decides with the version the interaction read and locked', () => {
  it("a professional's update, patch and delete look the document up no more often than a read does", async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
    // the statements that look this document up (its id among their parameters), but writes
    let lookups = 0;
    t.running!.ctx.db.knex.on('query', (q: { sql: string; bindings?: unknown[] }) => {
      if (/^\s*(SELECT|WITH target)/i.test(q.sql) && (q.bindings ?? []).includes(doc.id)) lookups++;
    });
    const counted = async (request: () => Promise<{ status: number }>) => {
      lookups = 0;
      const res = await request();
      return [res.status, lookups];
    };
    const [, readLookups] = await counted(() => get(ref(doc), tok.gp));
    // a read finds the document where its record's facts found it; a write first locks the document's locator row (one look-up more)
    const read = Number(readLookups) + 1;
    const { meta: _meta, ...body } = doc;
    expect(await counted(() => send('PUT', ref(doc), tok.gp, { ...body, securityLabel: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }] }))).toEqual([200, read]);
    // a change PDSm lets a PATCH make (decision 021)
    const patch = JSON.stringify([{ op: 'add', path: '/securityLabel', value: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] }] }]);
    expect(await counted(() => http(t.base, ref(doc), { method: 'PATCH', body: patch, headers: { ...as(tok.gp), 'content-type': 'application/json-patch+json' } }))).toEqual([200, read]);
    expect(await counted(() => send('DELETE', ref(doc), tok.gp))).toEqual([200, read]);
  });
});

describe('a legal representative reaches the represented patient\'s record and no other', () => {
  it("reads the minor's record but what is invisible to representatives", async () => {
    expect((await get(ref(x.minorReport), tok.parent)).status).toBe(200);
    expect((await get(ref(x.minorSecret), tok.parent)).status).toBe(404);
    const ids = ((await get(`DocumentReference?patient=${x.minor.id}`, tok.parent)).body.entry ?? []).map((e: Json) => e.resource.id);
    expect(ids).toContain(x.minorReport.id);
    expect(ids).not.toContain(x.minorSecret.id);
  });

  it("reaches nothing of another patient's record, by any path, and writes nothing in it", async () => {
    const missing = crypto.randomUUID();
    expect(shape(await get(ref(x.p1), tok.parent), x.p1.id)).toEqual(shape(await get(`Patient/${missing}`, tok.parent), missing));
    expect((await get(ref(x.report), tok.parent)).status).toBe(404);
    for (const path of [
      `DocumentReference?patient=${x.p1.id}`,
      `DocumentReference?subject=${ref(x.p1)}&_include=DocumentReference:subject`,
      `Patient?_id=${x.p1.id}&_revinclude=DocumentReference:subject`,
      `Patient/${x.p1.id}/DocumentReference`,
      `Patient/${x.p1.id}/$everything`,
      `Consent?patient=${x.p1.id}`,
      `AuditEvent?patient=${ref(x.p1)}`,
      `DocumentReference?description=doc%20${RUN}&_count=100`,
      `_history?_count=500`,
    ]) {
      const res = await get(path, tok.parent);
      expect([path, res.text.includes(x.p1.id) && res.status === 200 && (res.body.entry ?? []).length > 0]).toEqual([path, false]);
    }
    const deposit = await send('POST', 'DocumentReference', tok.parent, document(x.p1, REPORT, ref(x.parent)));
    expect(deposit.status).toBe(403);
    const block = await send('POST', 'Consent', tok.parent, consent(x.p1, ref(x.parent), { type: 'deny', actor: [ircp(ref(x.gp))] }, 'OPTOUT'));
    expect(block.status).toBe(403);
    const maskAll = await send('POST', `Patient/${x.p1.id}/$mask-all`, tok.parent, { resourceType: 'Parameters' });
    expect(maskAll.status).toBe(404);
    expect((await get(ref(x.report), tok.gp)).body.meta.security).toBeUndefined();
  });

  it('a representative who is inactive, whose representation ended or has not begun, is refused (401)', async () => {
    for (const rp of [x.inactiveParent, x.formerGuardian, x.futureGuardian]) {
      const res = await get(ref(x.minorReport), await mint(ref(rp), 'patient/*.cruds'));
      expect([ref(rp), res.status, res.headers.get('www-authenticate')?.startsWith('Bearer')]).toEqual([ref(rp), 401, true]);
    }
  });

  it('an administrator deactivating a representative ends their access at the next request', async () => {
    const rp = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) } });
    const token = await mint(ref(rp), 'patient/*.cruds');
    expect((await get(ref(x.minorReport), token)).status).toBe(200);
    const { meta: _meta, ...body } = rp;
    expect((await send('PUT', ref(rp), tok.admin, { ...body, active: false })).status).toBe(200);
    expect((await get(ref(x.minorReport), token)).status).toBe(401);
  });
});

// (an Observation: a stored document does not move, its PUT changes its status, labels or archiving only: decision 029)
const observation = (patient: Json, text: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'note' }, subject: { reference: ref(patient) }, valueString: text });

describe('a resource moved to another record', () => {
  it("keeps its versions of the former record from the new record's readers (a vread answers as a missing version)", async () => {
    const doc = await create(observation(x.p1, `secret of Un ${RUN}`), tok.gp);
    const moved = await send('PUT', ref(doc), t.token, { ...doc, subject: { reference: ref(x.p2) }, valueString: `moved ${RUN}` });
    expect(moved.status).toBe(200);
    // the new record's patient reads the resource as it is now
    expect((await get(ref(doc), tok.p2)).body.valueString).toBe(`moved ${RUN}`);
    const former = await get(`${ref(doc)}/_history/1`, tok.p2);
    const missing = await get(`${ref(doc)}/_history/9`, tok.p2);
    expect(former.status).toBe(404);
    expect(shape(former, '/_history/1')).toEqual(shape(missing, '/_history/9'));
    expect(former.text).not.toContain('secret of Un');
    expect((await get(`${ref(doc)}/_history/2`, tok.p2)).status).toBe(200);
    // whoever reads every record still reads both
    expect((await get(`${ref(doc)}/_history/1`, t.token)).body.valueString).toBe(`secret of Un ${RUN}`);
  });

  it("answers the former record's professional without naming the patient who holds it now (docs/decisions/029-dmp-submissions.md)", async () => {
    const doc = await create(observation(x.p1, `to move ${RUN}`), tok.gp);
    const moved = await send('PUT', ref(doc), t.token, { ...doc, subject: { reference: ref(x.p2) } });
    expect(moved.status).toBe(200);
    // the GP has no consent for the new record: refused, and not told whose it is
    const read = await get(ref(doc), tok.gp);
    expect(read.status).toBe(403);
    expect(read.text).not.toContain(x.p2.id);
    expect(read.body.issue[0].diagnostics).toMatch(/record this resource belongs to/);
    const write = await send('DELETE', ref(doc), tok.gp);
    expect(write.text).not.toContain(x.p2.id);
    // a request naming the patient is told which record it is
    expect((await get(`Observation?patient=${x.p2.id}`, tok.gp)).text).toContain(x.p2.id);
  });
});

describe('a record nobody holds', () => {
  it('is not known (404) to a professional, not closed', async () => {
    const missing = await get(`Patient/${crypto.randomUUID()}`, tok.gp);
    expect(missing.status).toBe(404);
    expect(JSON.stringify(missing.body)).not.toMatch(/RECORD_CLOSED|closed/);
    // and a search naming it finds nothing, as any search for a patient nobody holds
    const search = await get(`DocumentReference?patient=${crypto.randomUUID()}`, tok.gp);
    expect([search.status, search.body.entry ?? []]).toEqual([200, []]);
  });
});
