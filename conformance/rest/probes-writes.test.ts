import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { A07, consent, document, G15, ircp, Json, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Writes an outside probe found accepted or answered in another's words:
 * - a write that changes nothing on a professional's document by the patient's side
 *   (decision 021, amendment);
 * - Subscription criteria the search engine refuses (decision 010, amendment);
 * - a JSON Patch that does not apply, told in a JavaScript error's words;
 * - an `_elements` that names no element of the type.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const JSON_PATCH = { 'content-type': 'application/json-patch+json' };
const x: Json = {};
const tok: Record<string, string> = {};
const PATIENT_ONLY = /^A patient changes or deletes only the documents they deposited/;

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ family: `Auteur-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }], specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });
  tok.gp = await mint(ref(x.gp));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  for (const patient of [x.p1, x.minor]) await create(consent(patient, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  x.report = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
  x.minorReport = await create(document(x.minor, REPORT, ref(x.gp)), tok.gp);
});

/** The current version of a resource, as the unrestricted client reads it. */
const versionOf = async (path: string): Promise<string> => (await get(path)).body.meta.versionId;

/** A 403 in the wording of a real change, and no new version written. */
async function refusedUnchanged(path: string, answer: { status: number; body: any }, before: string): Promise<void> {
  expect(answer.status).toBe(403);
  expect(answer.body.issue[0].diagnostics).toMatch(PATIENT_ONLY);
  expect(await versionOf(path)).toBe(before);
}

describe("the patient's side changes nothing of a professional's document, even by a write that changes nothing", () => {
  it('refuses the patient a JSON Patch of test operations only, an empty one and a PUT of the identical body (403, as a real change)', async () => {
    const path = `DocumentReference/${x.report.id}`;
    const before = await versionOf(path);
    await refusedUnchanged(path, await send('PATCH', path, tok.p1, [{ op: 'test', path: '/id', value: x.report.id }], JSON_PATCH), before);
    await refusedUnchanged(path, await send('PATCH', path, tok.p1, [], JSON_PATCH), before);
    const current = (await get(path)).body;
    await refusedUnchanged(path, await send('PUT', path, tok.p1, current), before);
  });

  it('refuses the legal representative an empty JSON Patch on a professional\'s document of the minor', async () => {
    const path = `DocumentReference/${x.minorReport.id}`;
    const before = await versionOf(path);
    await refusedUnchanged(path, await send('PATCH', path, tok.parent, [], JSON_PATCH), before);
    await refusedUnchanged(path, await send('PUT', path, tok.parent, (await get(path)).body), before);
  });

  it('still lets the patient set MASQUE_PS, by PUT or $meta-add, and ask $meta-add again once it is set (no version)', async () => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
    const path = `DocumentReference/${doc.id}`;
    const masked = { ...doc, meta: { security: [{ system: A07, code: 'MASQUE_PS' }] } };
    const put = await send('PUT', path, tok.p1, masked);
    expect(put.status).toBe(200);
    expect(put.body.meta.versionId).toBe('2');
    const again = await send('POST', `${path}/$meta-add`, tok.p1, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code: 'MASQUE_PS' }] } }] });
    expect(again.status).toBe(200);
    expect(await versionOf(path)).toBe('2');
    // what they may not set is refused even where it changes nothing: INVISIBLE_PATIENT is absent, deleting it asks to remove it
    const invisible = await send('POST', `${path}/$meta-delete`, tok.p1, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code: 'INVISIBLE_PATIENT' }] } }] });
    expect(invisible.status).toBe(403);
    expect(await versionOf(path)).toBe('2');
  });

  it('lets the patient write what they deposited, a write that changes nothing included', async () => {
    const own = await create({ ...document(x.p1, { system: 'https://mos.esante.gouv.fr/NOS/TRE_A05-TypeDocComplementaire/FHIR/TRE-A05-TypeDocComplementaire', code: 'DOCPAT03', cls: '90' }, ref(x.p1)) }, tok.p1);
    const res = await send('PUT', `DocumentReference/${own.id}`, tok.p1, own);
    expect(res.status).toBe(200);
  });
});

describe('Subscription criteria are checked as the search they are', () => {
  const subscription = (criteria: string): Json => ({
    resourceType: 'Subscription',
    status: 'requested',
    reason: `probe ${RUN}`,
    criteria,
    channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:9/hook', payload: 'application/fhir+json' },
  });

  it.each([
    ['unparseable', 'DocumentReference?(((('],
    ['an unknown parameter', 'DocumentReference?foo=bar'],
    ['a malformed date', 'DocumentReference?date=notadate'],
    ['an unsupported modifier', `DocumentReference?patient:bogus=Patient/${RUN}`],
    ['a type this server does not serve', 'NotAType?name=x'],
  ])('refuses criteria with %s on create (422, Subscription.criteria), as the search gives 400', async (_what, criteria) => {
    const created = await send('POST', 'Subscription', tok.gp, subscription(criteria));
    expect(created.status).toBe(422);
    expect(created.body.issue[0].expression).toEqual(['Subscription.criteria']);
    expect(created.body.issue[0].diagnostics).toMatch(/^Subscription\.criteria (is not a search this server runs \(as a search it is answered 400\)|searches NotAType, a type this server does not serve)/);
    if (!criteria.startsWith('NotAType')) {
      expect((await send('GET', criteria, tok.gp, undefined, { prefer: 'handling=strict' })).status).toBe(400);
    }
  });

  it('refuses the same criteria on update and patch, and keeps the Subscription as it was', async () => {
    const good = await send('POST', 'Subscription', tok.gp, subscription(`DocumentReference?patient=${ref(x.p1)}`));
    expect(good.status).toBe(201);
    const path = `Subscription/${good.body.id}`;
    const put = await send('PUT', path, tok.gp, { ...good.body, criteria: 'DocumentReference?foo=bar' });
    expect(put.status).toBe(422);
    expect(put.body.issue[0].expression).toEqual(['Subscription.criteria']);
    const patched = await send('PATCH', path, tok.gp, [{ op: 'replace', path: '/criteria', value: 'DocumentReference?date=notadate' }], JSON_PATCH);
    expect(patched.status).toBe(422);
    expect(patched.body.issue[0].expression).toEqual(['Subscription.criteria']);
    const read = await send('GET', path, tok.gp);
    expect(read.body.criteria).toBe(`DocumentReference?patient=${ref(x.p1)}`);
  });

  it('refuses the criteria of a transaction entry, and the whole transaction with it', async () => {
    const res = await send('POST', '', tok.gp, {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ resource: subscription('DocumentReference?foo=bar'), request: { method: 'POST', url: 'Subscription' } }],
    });
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toContain('Subscription.criteria');
  });
});

describe('a JSON Patch that does not apply is told in the server\'s words', () => {
  it.each([
    ['a move into its own child', [{ op: 'move', from: '/content', path: '/content/0' }], 400, /^Invalid JSON Patch: "\/content" cannot be moved into one of its own children \("\/content\/0"\) \(operation 0\)$/],
    ['a move into a child of itself', [{ op: 'move', from: '/content/0', path: '/content/0/attachment/x' }], 400, /^Invalid JSON Patch: "\/content\/0" cannot be moved into one of its own children/],
    ['a move to where nothing holds it', [{ op: 'move', from: '/status', path: '/description/x' }], 422, /^JSON Patch operation 0 \(move from "\/status" to "\/description\/x"\) cannot apply: the element that would hold the value does not exist$/],
    ['a failing test', [{ op: 'test', path: '/status', value: 'superseded' }], 422, /^JSON Patch operation 0 \(test at "\/status"\) cannot apply: the value at the path is not the value tested$/],
    ['a remove of nothing', [{ op: 'test', path: '/status', value: 'current' }, { op: 'remove', path: '/nothing' }], 422, /^JSON Patch operation 1 \(remove at "\/nothing"\) cannot apply: there is no element at the path$/],
    ['an add under a missing element', [{ op: 'add', path: '/a/b', value: 1 }], 422, /^JSON Patch operation 0 \(add at "\/a\/b"\) cannot apply: the element that would hold the value does not exist$/],
    ['an index past the end', [{ op: 'add', path: '/content/5', value: {} }], 422, /cannot apply: the array index is past the end of the array$/],
  ])('%s', async (_what, operations, status, diagnostics) => {
    const doc = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
    const res = await send('PATCH', `DocumentReference/${doc.id}`, tok.gp, operations, JSON_PATCH);
    expect(res.status).toBe(status);
    expect(res.body.issue[0].diagnostics).toMatch(diagnostics);
    expect(res.text).not.toMatch(/Cannot (set|read) properties|undefined|TypeError/);
    expect((await get(`DocumentReference/${doc.id}`)).body.meta.versionId).toBe('1');
  });
});

describe('_elements names elements of the type', () => {
  it.each([['.,,'], ['nothere'], ['status,,content'], ['DocumentReference.'], ['content..attachment']])('_elements=%s is 400 under strict handling, on search and read', async (value) => {
    const search = await get(`DocumentReference?_id=${x.report.id}&_elements=${value}`, undefined, { prefer: 'handling=strict' });
    expect(search.status).toBe(400);
    expect(search.body.issue[0].diagnostics).toMatch(/^_elements names .*, which (is not an element|are not elements) of DocumentReference$/);
    const read = await get(`DocumentReference/${x.report.id}?_elements=${value}`, undefined, { prefer: 'handling=strict' });
    expect(read.status).toBe(400);
  });

  it('under lenient handling applies the value as before, with a warning naming what is not an element', async () => {
    const res = await get(`DocumentReference?_id=${x.report.id}&_elements=status,nothere,`);
    expect(res.status).toBe(200);
    const outcome = res.body.entry.find((e: Json) => e.resource.resourceType === 'OperationOutcome')?.resource;
    expect(outcome.issue[0]).toMatchObject({ severity: 'warning', diagnostics: '_elements names "nothere", an empty name, which are not elements of DocumentReference: ignored' });
    const found = res.body.entry.find((e: Json) => e.resource.resourceType === 'DocumentReference').resource;
    expect(found.status).toBe('current');
    expect(found.description).toBeUndefined();
  });

  it('accepts element names, typed choice names and the type prefix under strict handling', async () => {
    for (const value of ['status,content', 'DocumentReference.status', 'content.attachment', 'id,meta']) {
      const res = await get(`DocumentReference?_id=${x.report.id}&_elements=${value}`, undefined, { prefer: 'handling=strict' });
      expect([value, res.status]).toEqual([value, 200]);
    }
    const obs = await create({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: ref(x.p1) }, valueQuantity: { value: 1 } });
    expect((await get(`Observation/${obs.id}?_elements=valueQuantity`, undefined, { prefer: 'handling=strict' })).status).toBe(200);
  });
});
