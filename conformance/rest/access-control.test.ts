import crypto from 'node:crypto';
import { generateKeyPair } from 'jose';
import { http, startTarget, Target } from '../harness';
import { as, consent, document as documentResource, G15, ircp, Json, pcp, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * The access contract (ACCESS.md, docs/decisions/008-access-model.md) end to end, with
 * tokens signed by an identity provider the server trusts, for every kind of actor. The
 * directory, the records and their documents are set up by the unrestricted test client;
 * every assertion is made with a real actor's token.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, mint } = requests(() => t);
const document = (patient: Json, type: { code: string; cls: string }, author: string, labels: string[] = [], binary?: Json) =>
  documentResource(patient, type, author, labels, binary ? ref(binary) : undefined, `doc ${RUN}`);

const x: Json = {};
const tok: Record<string, string> = {};

beforeAll(async () => {
  // the directory
  const practitioner = async (name: string, rpps: string) =>
    create({ resourceType: 'Practitioner', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: rpps }], name: [{ family: `${name}-${RUN}` }] });
  const role = async (p: Json, profession: string, specialty?: string) =>
    create({
      resourceType: 'PractitionerRole',
      active: true,
      practitioner: { reference: ref(p) },
      code: [{ coding: [{ system: G15, code: profession }] }],
      ...(specialty ? { specialty: [{ coding: [{ system: R38, code: specialty }] }] } : {}),
    });
  x.gp = await practitioner('Generaliste', '810000000001');
  x.gpRole = await role(x.gp, '10', 'SM54');
  x.other = await practitioner('Autre', '810000000002');
  await role(x.other, '10', 'SM54');
  x.nurse = await practitioner('Infirmier', '810000000003');
  await role(x.nurse, '60');
  x.pharmacist = await practitioner('Pharmacien', '810000000004');
  await role(x.pharmacist, '21');
  x.retired = await create({ resourceType: 'Practitioner', active: false, name: [{ family: `Retraite-${RUN}` }] });

  // the records: an adult, another adult, a minor and the minor's legal representative
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });

  // documents of p1: a report, a psychiatric summary, a masked report (with its Binary), one invisible to the patient
  x.report = await create(document(x.p1, REPORT, ref(x.gp)));
  x.psych = await create(document(x.p1, PSYCH, ref(x.gp)));
  x.maskedBinary = await create({ resourceType: 'Binary', contentType: 'text/plain', securityContext: { reference: ref(x.p1) }, data: Buffer.from(`masked ${RUN}`).toString('base64') });
  x.masked = await create(document(x.p1, REPORT, ref(x.other), ['MASQUE_PS'], x.maskedBinary));
  x.unannounced = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']));
  x.p2report = await create(document(x.p2, REPORT, ref(x.gp)));
  x.minorSecret = await create(document(x.minor, REPORT, ref(x.gp), ['INVISIBLE_REPRESENTANTS_LEGAUX']));
  x.minorReport = await create(document(x.minor, REPORT, ref(x.gp)));

  tok.gp = await mint(ref(x.gp));
  tok.other = await mint(ref(x.other));
  tok.nurse = await mint(ref(x.nurse));
  tok.pharmacist = await mint(ref(x.pharmacist));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');

  // declared consents: the GP, the author of the masked document and the nurse for p1; the GP for the minor
  for (const who of [x.gp, x.other, x.nurse]) await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), tok[who === x.gp ? 'gp' : who === x.other ? 'other' : 'nurse']);
  await create(consent(x.minor, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
});

/** The ids of every resource in an answer, however nested (Bundle entries, batch responses, contained), but OperationOutcomes. */
function resourcesIn(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) resourcesIn(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Json;
    if (typeof o.resourceType === 'string' && o.resourceType !== 'OperationOutcome' && o.resourceType !== 'Bundle' && typeof o.id === 'string') out.push(o.id);
    for (const v of Object.values(o)) resourcesIn(v, out);
  }
  return out;
}
const ids = (bundle: Json): string[] => (bundle.entry ?? []).map((e: Json) => (e.resource ? ref(e.resource) : e.response?.location));

describe('authentication (401)', () => {
  it('refuses a request without a token, with WWW-Authenticate: Bearer and an OperationOutcome', async () => {
    const res = await http(t.base, `Patient/${x.p1.id}`, { headers: { authorization: '' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
  it('answers the capability statement without a token', async () => {
    expect((await http(t.base, 'metadata', { headers: { authorization: '' } })).status).toBe(200);
  });
  it.each([
    ['an untrusted key', async () => t.issuer!.mint({ sub: 's', fhirUser: ref(x.gp), scope: 'user/*.cruds' }, { privateKey: (await generateKeyPair('RS256')).privateKey })],
    ['an expired token', () => t.issuer!.mint({ sub: 's', fhirUser: ref(x.gp), scope: 'user/*.cruds' }, { exp: Math.floor(Date.now() / 1000) - 3600 })],
    ['a token for another audience', () => t.issuer!.mint({ sub: 's', fhirUser: ref(x.gp), scope: 'user/*.cruds' }, { audience: 'https://elsewhere.example/fhir' })],
    ['an unknown fhirUser', () => t.issuer!.mint({ sub: 's', fhirUser: 'Practitioner/does-not-exist', scope: 'user/*.cruds' })],
    ['an inactive fhirUser', () => t.issuer!.mint({ sub: 's', fhirUser: ref(x.retired), scope: 'user/*.cruds' })],
    ['a practitioner_role that is not theirs', () => t.issuer!.mint({ sub: 's', fhirUser: ref(x.nurse), practitioner_role: x.gpRole.id, scope: 'user/*.cruds' })],
    ['a garbage token', async () => 'not.a.jwt'],
  ])('refuses %s with 401', async (_name, token) => {
    const res = await get(`Patient/${x.p1.id}`, await token());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.body.issue[0].code).toBe('login');
  });
});

describe('a professional and the record', () => {
  it('a professional without declared consent is refused the whole record with 403 saying why', async () => {
    for (const path of [`Patient/${x.p1.id}`, `DocumentReference?patient=${x.p1.id}`, `Patient/${x.p1.id}/$everything`, `DocumentReference/${x.report.id}`, `Patient/${x.p1.id}/DocumentReference`]) {
      const res = await get(path, tok.pharmacist);
      expect([path, res.status]).toEqual([path, 403]);
      expect(res.body.issue[0].diagnostics).toMatch(/consent/);
    }
  });
  it('a search naming no patient shows a professional only the records open to them', async () => {
    const res = await get(`DocumentReference?description=doc%20${RUN}&_count=100`, tok.pharmacist);
    expect(res.status).toBe(200);
    expect(res.body.total ?? (res.body.entry ?? []).length).toBe(0);
  });
  it('declaring consent opens the record', async () => {
    const doctor = await create({ resourceType: 'Practitioner', name: [{ family: `Nouveau-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(doctor) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const token = await mint(ref(doctor));
    expect((await get(`DocumentReference/${x.report.id}`, token)).status).toBe(403);
    await create(consent(x.p1, ref(doctor), { type: 'permit', actor: [ircp(ref(doctor))] }), token);
    expect((await get(`DocumentReference/${x.report.id}`, token)).status).toBe(200);
  });
  it('a professional cannot declare a consent on behalf of another professional', async () => {
    const res = await http(t.base, 'Consent', { method: 'POST', json: consent(x.p1, ref(x.pharmacist), { type: 'permit', actor: [ircp(ref(x.pharmacist))] }), headers: as(tok.nurse) });
    expect(res.status).toBe(403);
  });
  it('the habilitation matrix: a nurse reads the report, not the psychiatric summary (404), in reads, searches and counts', async () => {
    expect((await get(`DocumentReference/${x.report.id}`, tok.nurse)).status).toBe(200);
    expect((await get(`DocumentReference/${x.psych.id}`, tok.nurse)).status).toBe(404);
    const search = await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.nurse);
    expect(ids(search.body)).toContain(ref(x.report));
    expect(ids(search.body)).not.toContain(ref(x.psych));
    const gp = await get(`DocumentReference?patient=${x.p1.id}&_summary=count`, tok.gp);
    const nurse = await get(`DocumentReference?patient=${x.p1.id}&_summary=count`, tok.nurse);
    expect(nurse.body.total).toBe(gp.body.total - 1);
  });
  it('a nurse may not write a document type outside the matrix (403), and may write one inside it', async () => {
    const refused = await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, PSYCH, ref(x.nurse)), headers: as(tok.nurse) });
    expect(refused.status).toBe(403);
    expect(refused.body.issue[0].diagnostics).toMatch(/habilitation matrix/);
    expect((await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, REPORT, ref(x.nurse)), headers: as(tok.nurse) })).status).toBe(201);
  });
  it('a masked document is hidden from professionals but its author and the treating physician, and so is its Binary', async () => {
    expect((await get(`DocumentReference/${x.masked.id}`, tok.gp)).status).toBe(404);
    expect((await get(`Binary/${x.maskedBinary.id}`, tok.gp)).status).toBe(404);
    expect((await get(`DocumentReference/${x.masked.id}`, tok.other)).status).toBe(200);
    expect((await get(`Binary/${x.maskedBinary.id}`, tok.other)).status).toBe(200);
    // the patient designates the GP as treating physician
    const designation = await create(consent(x.p1, ref(x.p1), { type: 'permit', actor: [pcp(ref(x.gp))] }), tok.p1);
    expect((await get(`DocumentReference/${x.masked.id}`, tok.gp)).status).toBe(200);
    expect((await get(`Binary/${x.maskedBinary.id}`, tok.gp)).status).toBe(200);
    // and removes the designation
    expect((await http(t.base, `Consent/${designation.id}`, { method: 'PUT', json: { ...designation, status: 'inactive' }, headers: as(tok.p1) })).status).toBe(200);
    expect((await get(`DocumentReference/${x.masked.id}`, tok.gp)).status).toBe(404);
  });
  it('a professional blocked by the patient is refused (403) despite their consent, and break-glass does not lift it', async () => {
    const block = await create(consent(x.p1, ref(x.p1), { type: 'deny', actor: [ircp(ref(x.nurse))] }, 'OPTOUT'), tok.p1);
    const res = await get(`DocumentReference/${x.report.id}`, tok.nurse);
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(/blocked/);
    expect((await get(`DocumentReference/${x.report.id}`, tok.nurse, { 'x-break-glass': 'unconscious patient' })).status).toBe(403);
    await http(t.base, `Consent/${block.id}`, { method: 'DELETE', headers: as(tok.p1) });
    expect((await get(`DocumentReference/${x.report.id}`, tok.nurse)).status).toBe(200);
  });
});

describe('emergency access (break-glass)', () => {
  it('opens the record for a profession allowed emergency access, without consent, but not the masks nor the matrix', async () => {
    const doctor = await create({ resourceType: 'Practitioner', name: [{ family: `Urgentiste-${RUN}` }] });
    await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(doctor) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
    const token = await mint(ref(doctor));
    expect((await get(`DocumentReference?patient=${x.p2.id}`, token)).status).toBe(403);
    const res = await get(`DocumentReference?patient=${x.p2.id}`, token, { 'x-break-glass': 'patient unconscious in the emergency room' });
    expect(res.status).toBe(200);
    expect(ids(res.body)).toContain(ref(x.p2report));
    const masked = await get(`DocumentReference/${x.masked.id}`, token, { 'x-break-glass': 'patient unconscious' });
    expect(masked.status).toBe(404);
  });
  it('is refused without a reason, to a profession without emergency access, and after the patient opted out', async () => {
    expect((await get(`DocumentReference?patient=${x.p2.id}`, tok.pharmacist, { 'x-break-glass': 'emergency' })).status).toBe(403);
    expect((await get(`DocumentReference?patient=${x.p2.id}`, tok.other, { 'x-break-glass': ' ' })).status).toBe(403);
    await create(consent(x.p2, ref(x.p2), { type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' }] }, 'OPTOUT'), tok.p2);
    const res = await get(`DocumentReference?patient=${x.p2.id}`, tok.other, { 'x-break-glass': 'patient unconscious' });
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(/opted out/);
  });
});

describe('the patient and legal representatives', () => {
  it('a patient reads their own record, not a document invisible to them, and not another record (404)', async () => {
    const own = await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.p1);
    expect(own.status).toBe(200);
    expect(ids(own.body)).toEqual(expect.arrayContaining([ref(x.report), ref(x.psych), ref(x.masked)]));
    expect(ids(own.body)).not.toContain(ref(x.unannounced));
    expect((await get(`DocumentReference/${x.unannounced.id}`, tok.p1)).status).toBe(404);
    expect((await get(`Patient/${x.p2.id}`, tok.p1)).status).toBe(404);
    expect((await get(`DocumentReference/${x.p2report.id}`, tok.p1)).status).toBe(404);
    const search = await get(`DocumentReference?patient=${x.p2.id}`, tok.p1);
    expect(search.body.entry ?? []).toEqual([]);
  });
  it('a document invisible to the patient stays hidden however the request target is spelled (the FHIR lane and the router alike)', async () => {
    const targets = [`DocumentReference/${x.unannounced.id}`, `DocumentReference/${x.unannounced.id}/`, `DocumentReference/${x.unannounced.id}?_format=json`, `DocumentReference/${x.unannounced.id}?_elements=id`];
    for (const target of targets) {
      const res = await get(target, tok.p1);
      expect([target, res.status]).toEqual([target, 404]);
      expect(res.text).not.toContain(`doc ${RUN}`);
    }
    // another spelling of the base goes through Express's router: no answer carries the document either
    const routed = await http(t.base.replace(/\/fhir$/, '/FHIR'), `DocumentReference/${x.unannounced.id}`, { headers: as(tok.p1) });
    expect(routed.status).toBeGreaterThanOrEqual(400);
    expect(routed.body?.resourceType).toBe('OperationOutcome');
    // the patient's own visible document comes back through both the lane and a target with a query
    const visible = await get(`DocumentReference/${x.report.id}?_format=json`, tok.p1);
    expect(visible.body.id).toBe(x.report.id);
    expect(visible.text).toContain(`doc ${RUN}`);
  });
  it("a minor's protected document is hidden from the legal representative and visible, with its label, to professionals", async () => {
    const parent = await get(`DocumentReference?patient=${x.minor.id}&_count=100`, tok.parent);
    expect(ids(parent.body)).toContain(ref(x.minorReport));
    expect(ids(parent.body)).not.toContain(ref(x.minorSecret));
    expect((await get(`DocumentReference/${x.minorSecret.id}`, tok.parent)).status).toBe(404);
    const gp = await get(`DocumentReference/${x.minorSecret.id}`, tok.gp);
    expect(gp.status).toBe(200);
    expect(gp.body.meta.security).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'INVISIBLE_REPRESENTANTS_LEGAUX' })]));
  });
  it('a patient writes their own choices, not in another record, and not as someone else', async () => {
    const other = await http(t.base, 'Consent', { method: 'POST', json: consent(x.p2, ref(x.p2), { type: 'deny', actor: [ircp(ref(x.gp))] }, 'OPTOUT'), headers: as(tok.p1) });
    expect(other.status).toBe(403);
    const forged = await http(t.base, 'Consent', { method: 'POST', json: consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), headers: as(tok.p1) });
    expect(forged.status).toBe(403);
    expect((await http(t.base, `Patient/${x.p1.id}`, { method: 'PUT', json: { ...x.p1, gender: 'other' }, headers: as(tok.p1) })).status).toBe(403);
  });
  it('a patient app limited by its scopes is refused what its scopes do not cover (403)', async () => {
    const narrow = await mint(ref(x.p1), 'patient/Patient.r');
    expect((await get(`Patient/${x.p1.id}`, narrow)).status).toBe(200);
    const res = await get(`DocumentReference?patient=${x.p1.id}`, narrow);
    expect(res.status).toBe(403);
    expect(res.body.issue[0].diagnostics).toMatch(/scope/);
  });
});

describe('administrators and systems', () => {
  it('an administrator reads the directory and the patients, no clinical content', async () => {
    expect((await get(`Patient/${x.p1.id}`, tok.admin)).status).toBe(200);
    expect((await get(`Practitioner/${x.gp.id}`, tok.admin)).status).toBe(200);
    expect((await get(`DocumentReference?patient=${x.p1.id}`, tok.admin)).status).toBe(403);
    expect((await get(`DocumentReference/${x.report.id}`, tok.admin)).status).toBe(404);
    expect((await get(`Consent?patient=${x.p1.id}`, tok.admin)).status).toBe(403);
    const everything = await get(`Patient/${x.p1.id}/$everything`, tok.admin);
    // the record's trail comes with it (an investigator's reading, docs/decisions/009-audit.md): it names documents, never their content
    const entries = everything.body.entry.filter((e: Json) => e.resource.resourceType !== 'AuditEvent');
    expect(entries.length).toBeGreaterThan(0);
    expect(JSON.stringify(entries)).not.toContain('DocumentReference');
  });
  it('an administrator writes the directory and opens records, and writes no document', async () => {
    expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: `Org ${RUN}` }, headers: as(tok.admin) })).status).toBe(201);
    expect((await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: `Nouveau-${RUN}` }] }, headers: as(tok.admin) })).status).toBe(201);
    expect((await http(t.base, 'DocumentReference', { method: 'POST', json: document(x.p1, REPORT, ref(x.gp)), headers: as(tok.admin) })).status).toBe(403);
  });
  it('a practitioner does not write the directory', async () => {
    expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: 'x' }, headers: as(tok.gp) })).status).toBe(403);
  });
});

describe('a hidden document never comes back through any read path', () => {
  // the nurse may enter p1 but not read the psychiatric summary; nor the masked document and its Binary
  const hidden = () => [x.psych.id, x.masked.id, x.maskedBinary.id];
  const probes = (): [string, () => Promise<{ status: number; text: string }>][] => [
    ['search', () => get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.nurse)],
    ['search by _id', () => get(`DocumentReference?_id=${x.psych.id},${x.masked.id}`, tok.nurse)],
    ['_revinclude', () => get(`Patient?_id=${x.p1.id}&_revinclude=DocumentReference:subject`, tok.nurse)],
    ['_include from a visible document', () => get(`DocumentReference?_id=${x.report.id}&_include=DocumentReference:relatesto`, tok.nurse)],
    ['_has', () => get(`Patient?_has:DocumentReference:subject:_id=${x.psych.id}`, tok.nurse)],
    ['type history', () => get(`DocumentReference/_history?_count=200`, tok.nurse)],
    ['system history', () => get(`_history?_count=200`, tok.nurse)],
    ['instance history', () => get(`DocumentReference/${x.psych.id}/_history`, tok.nurse)],
    ['vread', () => get(`DocumentReference/${x.psych.id}/_history/1`, tok.nurse)],
    ['$everything', () => get(`Patient/${x.p1.id}/$everything?_count=200`, tok.nurse)],
    ['compartment search', () => get(`Patient/${x.p1.id}/*?_count=200`, tok.nurse)],
    ['Binary read', () => get(`Binary/${x.maskedBinary.id}`, tok.nurse)],
    ['Binary search', () => get(`Binary?_id=${x.maskedBinary.id}`, tok.nurse)],
    [
      'batch GET entries',
      () =>
        http(t.base, '', {
          method: 'POST',
          headers: as(tok.nurse),
          json: { resourceType: 'Bundle', type: 'batch', entry: hidden().map((id, i) => ({ request: { method: 'GET', url: `${i === 2 ? 'Binary' : 'DocumentReference'}/${id}` } })) },
        }),
    ],
    [
      'transaction GET entries',
      () =>
        http(t.base, '', {
          method: 'POST',
          headers: as(tok.nurse),
          json: { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'GET', url: `DocumentReference?_id=${x.psych.id}` } }] },
        }),
    ],
  ];
  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14])('probe %i leaves the hidden rows out', async (i) => {
    const [name, probe] = probes()[i];
    const res = await probe();
    expect([name, res.status < 500]).toEqual([name, true]);
    // what came back as resources (an OperationOutcome may quote the id the client sent)
    const returned = resourcesIn(JSON.parse(res.text || 'null'));
    for (const id of hidden()) expect([name, returned.includes(id)]).toEqual([name, false]);
  });
  it('the same probes reach the rows for the author (a probe that cannot reach them proves nothing)', async () => {
    const res = await get(`DocumentReference?patient=${x.p1.id}&_count=100`, tok.other);
    expect(res.text).toContain(x.masked.id);
    expect((await get(`Patient/${x.p1.id}/$everything?_count=200`, tok.gp)).text).toContain(x.psych.id);
    expect((await get(`DocumentReference/_history?_count=200`, tok.gp)).text).toContain(x.psych.id);
  });
  it('counts do not count hidden rows', async () => {
    const nurse = await get(`DocumentReference?patient=${x.p1.id}&_total=accurate&_count=1`, tok.nurse);
    const author = await get(`DocumentReference?patient=${x.p1.id}&_total=accurate&_count=1`, tok.other);
    expect(nurse.body.total).toBeLessThan(author.body.total);
  });
});

/**
 * Lists are authored like documents (decision 008, amendment): the patient's side writes
 * only the Lists whose source names the caller; a professional's SubmissionSet is theirs.
 */
describe("a patient's Lists are their own", () => {
  const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
  const list = (title: string, source?: string, code?: string) => ({
    resourceType: 'List',
    status: 'current',
    mode: 'working',
    title: `${title} ${RUN}`,
    ...(code ? { code: { coding: [{ system: 'https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes', code }] } } : {}),
    subject: { reference: ref(x.p1) },
    ...(source ? { source: { reference: source } } : {}),
    entry: [{ item: { reference: ref(x.report) } }],
  });
  const send = (method: string, path: string, token: string, json?: unknown, headers: Record<string, string> = {}) =>
    http(t.base, path, { method, headers: { ...as(token), ...headers }, ...(json !== undefined ? { json } : {}) });
  const refused = (res: { status: number; body: Json }) => {
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body.issue)).toMatch(/Lists they wrote/);
  };

  it("the patient cannot PUT, PATCH or DELETE a professional's SubmissionSet, which stays as written", async () => {
    const set = await create(list('SubmissionSet', ref(x.gp), 'submissionset'), tok.gp);
    refused(await send('PUT', `List/${set.id}`, tok.p1, { ...set, title: 'changed', source: { reference: ref(x.p1) } }));
    refused(await send('PATCH', `List/${set.id}`, tok.p1, [{ op: 'replace', path: '/status', value: 'retired' }], JSON_PATCH));
    refused(await send('DELETE', `List/${set.id}`, tok.p1));
    // nor their legal representative, in the minor's record
    const minorSet = await create({ ...list('SubmissionSet', ref(x.gp), 'submissionset'), subject: { reference: ref(x.minor) }, entry: [{ item: { reference: ref(x.minorReport) } }] }, tok.gp);
    refused(await send('DELETE', `List/${minorSet.id}`, tok.parent));
    const after = await get(`List/${set.id}`, tok.p1);
    expect([after.status, after.body.meta.versionId, after.body.title, after.body.status]).toEqual([200, set.meta.versionId, set.title, 'current']);
    expect((await get(`List/${minorSet.id}`, tok.gp)).status).toBe(200);
  });

  it('nor a List written without source by another actor', async () => {
    const anonymous = await create(list('Sans source'), tok.gp);
    refused(await send('DELETE', `List/${anonymous.id}`, tok.p1));
  });

  it('the patient creates a folder only in their own name', async () => {
    const res = await send('POST', 'List', tok.p1, list('Dossier', ref(x.gp)));
    expect(res.status).toBe(403);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect((await send('POST', 'List', tok.p1, list('Dossier'))).status).toBe(403);
  });

  it('the patient creates, updates, patches and deletes their own folder', async () => {
    const created = await send('POST', 'List', tok.p1, list('Mon dossier', ref(x.p1), 'folder'));
    expect(created.status).toBe(201);
    const folder = created.body;
    const updated = await send('PUT', `List/${folder.id}`, tok.p1, { ...folder, title: `Renamed ${RUN}` });
    expect([updated.status, updated.body.title]).toEqual([200, `Renamed ${RUN}`]);
    // handing it to a professional is not theirs to do
    expect((await send('PUT', `List/${folder.id}`, tok.p1, { ...updated.body, source: { reference: ref(x.gp) } })).status).toBe(403);
    const patched = await send('PATCH', `List/${folder.id}`, tok.p1, [{ op: 'replace', path: '/status', value: 'retired' }], JSON_PATCH);
    expect([patched.status, patched.body.status]).toEqual([200, 'retired']);
    expect((await send('DELETE', `List/${folder.id}`, tok.p1)).status).toBe(200);
    expect((await get(`List/${folder.id}`, tok.p1)).status).toBe(410);
  });

  it("a legal representative creates and deletes a folder in the minor's name (List.source names no RelatedPerson)", async () => {
    const created = await send('POST', 'List', tok.parent, { ...list('Dossier parent', ref(x.minor)), subject: { reference: ref(x.minor) }, entry: [{ item: { reference: ref(x.minorReport) } }] });
    expect(created.status).toBe(201);
    expect((await send('DELETE', `List/${created.body.id}`, tok.parent)).status).toBe(200);
  });
});

/** Only the author deletes a document (PDSm); a deletion keeps the history (decision 008, amendment). */
describe('deleting a document', () => {
  it('another professional with access is refused 403; the author deletes it, a read answers 410 and the history is kept', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
    const byOther = await http(t.base, `DocumentReference/${doc.id}`, { method: 'DELETE', headers: as(tok.other) });
    expect([byOther.status, byOther.body.resourceType]).toEqual([403, 'OperationOutcome']);
    expect((await get(`DocumentReference/${doc.id}`, tok.gp)).status).toBe(200);
    expect((await http(t.base, `DocumentReference/${doc.id}`, { method: 'DELETE', headers: as(tok.gp) })).status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}`, tok.p1)).status).toBe(410);
    // the patient still reads what was deleted from their record
    const earlier = await get(`DocumentReference/${doc.id}/_history/${doc.meta.versionId}`, tok.p1);
    expect([earlier.status, earlier.body.status]).toEqual([200, 'current']);
    const history = await get(`DocumentReference/${doc.id}/_history`, tok.p1);
    expect([history.status, history.body.total]).toEqual([200, 2]);
  });
});
