import crypto from 'node:crypto';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTarget, Target } from '../harness';
import { A07, consent, document as documentResource, G15, ircp, Json, ref, REPORT, requests } from '../accessFixtures';

/**
 * What the patient's side reads of the trail and of the notices (docs/decisions/009-audit.md):
 * a document invisible to the patient (or to the legal representatives) is named by no
 * event, query or notice they read, by any read path; the trail itself stays complete for
 * administrators, and the notice shows once the label is removed.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget({ SUBSCRIPTION_POLL_MS: '50', SUBSCRIPTION_BACKOFF_MS: '100', SUBSCRIPTION_TIMEOUT_MS: '10000' });
});
afterAll(() => t.close());

/** The patient's own endpoint for their Subscription on their notices. */
const received: string[] = [];
const receiver = nodeHttp.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push(body);
    res.writeHead(200).end();
  });
});
beforeAll(() => new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r)));
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
const entries = (res: { body: any }) => ((res.body?.entry ?? []) as Json[]).map((e) => e.resource as Json).filter(Boolean);
const SUBSETTED = 'SUBSETTED';

/** Everything a response says, base64 query texts decoded. */
function said(body: unknown): string {
  const text = JSON.stringify(body);
  const decoded = [...text.matchAll(/"query":"([A-Za-z0-9+/=]*)"/g)].map((m) => Buffer.from(m[1], 'base64').toString('utf8'));
  return [text, ...decoded].join('\n');
}

beforeAll(async () => {
  x.gp = await create({ resourceType: 'Practitioner', name: [{ given: ['Paul'], family: `Martin-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.stranger = await create({ resourceType: 'Practitioner', name: [{ family: `Etranger-${RUN}` }] });
  await create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.stranger) }, code: [{ coding: [{ system: G15, code: '10' }] }] });
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.minor = await create({ resourceType: 'Patient', name: [{ family: `Mineur-${RUN}` }], birthDate: '2015-01-01' });
  x.parent = await create({ resourceType: 'RelatedPerson', active: true, patient: { reference: ref(x.minor) }, relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleCode', code: 'PRN' }] }] });
  tok.gp = await mint(ref(x.gp));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.parent = await mint(ref(x.parent), 'patient/*.cruds');
  tok.admin = await mint(undefined, 'admin');
  for (const p of [x.p1, x.minor]) await create(consent(p, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);

  // deposited by the professional: a visible report, one awaiting its announcement, one protected from the parents
  x.shown = await create(documentResource(x.p1, REPORT, ref(x.gp), [], undefined, `shown-${RUN}`), tok.gp);
  x.secret = await create(documentResource(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT'], undefined, `secret-${RUN}`), tok.gp);
  x.minorSecret = await create(documentResource(x.minor, REPORT, ref(x.gp), ['INVISIBLE_REPRESENTANTS_LEGAUX'], undefined, `minor-secret-${RUN}`), tok.gp);

  // the professional reads them every way; a professional without consent is refused the secret one
  for (const [doc, patient] of [[x.secret, x.p1], [x.minorSecret, x.minor]] as const) {
    expect((await get(ref(doc), tok.gp)).status).toBe(200);
    expect((await get(`${ref(doc)}/_history/1`, tok.gp)).status).toBe(200);
    expect((await get(`${ref(doc)}/_history`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference?_id=${doc.id}`, tok.gp)).status).toBe(200);
    // a query naming the hidden document while returning a visible one
    expect((await get(`DocumentReference?_id=${doc.id},${x.shown.id}&subject=${ref(patient)}&description=${doc.description}`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference?subject=${ref(patient)}`, tok.gp)).status).toBe(200);
    expect((await get(`DocumentReference/${doc.id}/$meta`, tok.gp)).status).toBe(200);
  }
  expect((await get(ref(x.secret), tok.stranger)).status).toBe(403);
});

/** The read paths of the trail and the notices, for a reader of one record. */
async function readPaths(patient: Json, token: string): Promise<{ path: string; status: number; body: unknown }[]> {
  const p = ref(patient);
  const paths = [
    `AuditEvent?patient=${p}&_count=500`,
    `AuditEvent?_count=500`,
    `AuditEvent?patient=${p}&_count=500&_include=AuditEvent:entity`,
    `AuditEvent/_history?_count=500`,
    `_history?_count=500`,
    `${p}/AuditEvent?_count=500`,
    `${p}/$everything?_count=1000`,
    `Patient?_id=${patient.id}&_revinclude=AuditEvent:patient&_revinclude=AuditEvent:entity`,
    `Communication?recipient=${p}&_count=500`,
    `Communication?_count=500`,
    `${p}/Communication?_count=500`,
    `Communication/_history?_count=500`,
  ];
  const out: { path: string; status: number; body: unknown }[] = [];
  for (const path of paths) {
    const res = await get(path, token);
    out.push({ path, status: res.status, body: res.body });
  }
  const events = entries(await get(`AuditEvent?patient=${p}&_count=500`, token)).filter((r) => r.resourceType === 'AuditEvent');
  for (const e of events) {
    for (const path of [`AuditEvent/${e.id}`, `AuditEvent/${e.id}/_history/1`, `AuditEvent/${e.id}/_history`]) {
      const res = await get(path, token);
      out.push({ path, status: res.status, body: res.body });
    }
  }
  const batch = await send('POST', '', token, {
    resourceType: 'Bundle',
    type: 'batch',
    entry: [...events.slice(0, 20).map((e) => ({ request: { method: 'GET', url: `AuditEvent/${e.id}` } })), { request: { method: 'GET', url: `AuditEvent?patient=${p}&_count=500` } }],
  });
  out.push({ path: 'batch', status: batch.status, body: batch.body });
  return out;
}

describe('a document invisible to the patient', () => {
  it('is named by no event, query or notice the patient reads, by any path', async () => {
    const responses = await readPaths(x.p1, tok.p1);
    for (const r of responses) {
      const text = said(r.body);
      expect([r.path, r.status, text.includes(x.secret.id), text.includes(`secret-${RUN}`)]).toEqual([r.path, 200, false, false]);
    }
  });

  it("the accesses that also returned what the patient sees appear in their trail, marked as subsetted; those to the hidden document alone do not", async () => {
    const events = entries(await get(`AuditEvent?patient=${ref(x.p1)}&agent=${ref(x.gp)}&_count=500`, tok.p1));
    // the professional's reads were of the hidden document alone (decision 009, amendment of 2026-12-06)
    expect(events.filter((e) => e.subtype?.[0]?.code === 'read')).toHaveLength(0);
    expect(events.filter((e) => e.subtype?.[0]?.code === 'search-type').length).toBeGreaterThan(0);
    const subsetted = events.filter((e) => (e.meta?.tag ?? []).some((c: Json) => c.code === SUBSETTED));
    expect(subsetted.length).toBeGreaterThan(0);
    // what was visible stays named
    expect(JSON.stringify(events)).toContain(x.shown.id);
  });

  it('stays complete for an administrator investigating', async () => {
    const res = await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, tok.admin);
    expect(res.status).toBe(200);
    const text = said(res.body);
    expect(text).toContain(`DocumentReference/${x.secret.id}`);
    expect(text).toContain(`secret-${RUN}`);
    expect(text).not.toContain(SUBSETTED);
  });

  it('its new-document notice shows once the author removes the label, and so do the entities', async () => {
    const noticeAbout = async () =>
      entries(await get(`Communication?recipient=${ref(x.p1)}&category=notification&_count=500`, tok.p1)).filter((c) => (c.about ?? []).some((a: Json) => a.reference === ref(x.secret)));
    expect(await noticeAbout()).toHaveLength(0);
    const removed = await send('POST', `${ref(x.secret)}/$meta-delete`, tok.gp, { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: A07, code: 'INVISIBLE_PATIENT' }] } }] });
    expect(removed.status).toBe(200);
    const notices = await noticeAbout();
    expect(notices).toHaveLength(1);
    expect(notices[0].category[1].coding[0].code).toBe('new-document');
    const trail = said((await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, tok.p1)).body);
    expect(trail).toContain(`DocumentReference/${x.secret.id}`);
  });
});

describe("the patient's Subscription on their notices", () => {
  it('is not sent the notice of a document invisible to them, and is sent the others', async () => {
    const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notices`;
    const sub = await create({ resourceType: 'Subscription', status: 'requested', reason: 'my notices', criteria: `Communication?recipient=${ref(x.p1)}`, channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json' } }, tok.p1);
    for (const end = Date.now() + 10000; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) {
      if ((await get(`Subscription/${sub.id}`, tok.p1)).body.status === 'active') break;
    }
    const hidden = await create(documentResource(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT'], undefined, `later-${RUN}`), tok.gp);
    const shown = await create(documentResource(x.p1, REPORT, ref(x.gp), [], undefined, `visible-${RUN}`), tok.gp);
    for (const end = Date.now() + 10000; Date.now() < end && !received.some((b) => b.includes(shown.id)); ) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    expect(received.some((b) => b.includes(shown.id))).toBe(true);
    expect(received.filter((b) => b.includes(hidden.id))).toEqual([]);
  });
});

describe('a document invisible to the legal representatives', () => {
  it("is named by no event, query or notice of the minor's record the representative reads", async () => {
    const responses = await readPaths(x.minor, tok.parent);
    for (const r of responses) {
      const text = said(r.body);
      expect([r.path, r.status, text.includes(x.minorSecret.id), text.includes(`minor-secret-${RUN}`)]).toEqual([r.path, 200, false, false]);
    }
    const events = entries(await get(`AuditEvent?patient=${ref(x.minor)}&_count=500`, tok.parent));
    expect(events.some((e) => e.agent?.[0]?.who?.reference === ref(x.gp))).toBe(true);
  });
});
