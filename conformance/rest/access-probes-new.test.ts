import crypto from 'node:crypto';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTarget, Target } from '../harness';
import { consent, document as documentResource, G15, ircp, Json, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * Probes of the newest paths (type and system $meta, the audit trail, notifications,
 * Subscriptions, the masking operations) for resources hidden from the caller.
 */
let t: Target;
const FAST = { SUBSCRIPTION_POLL_MS: '50', SUBSCRIPTION_BACKOFF_MS: '100', SUBSCRIPTION_MAX_ATTEMPTS: '3', SUBSCRIPTION_TIMEOUT_MS: '10000' };
beforeAll(async () => {
  t = await startTarget(FAST);
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const document = (patient: Json, type: { code: string; cls: string }, author: string, labels: string[] = [], extra: Json = {}) => ({ ...documentResource(patient, type, author, labels, undefined, `doc ${RUN}`), ...extra });
const entries = (res: { body: any }) => ((res.body?.entry ?? []) as Json[]).map((e) => e.resource as Json);

const x: Json = {};
const tok: Record<string, string> = {};

const received: { path: string; body: string; headers: nodeHttp.IncomingHttpHeaders }[] = [];
const receiver = nodeHttp.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ path: req.url ?? '', body, headers: req.headers });
    res.writeHead(200).end();
  });
});
let receiverUrl = '';
beforeAll(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
});

beforeAll(async () => {
  const practitioner = (name: string) => create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
  const role = (p: Json, profession: string, extra: Json = {}) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...extra });
  x.gp = await practitioner('Generaliste');
  await role(x.gp, '10', { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.nurse = await practitioner('Infirmier');
  await role(x.nurse, '60');
  x.stranger = await practitioner('Etranger');
  await role(x.stranger, '10');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  x.p2 = await create({ resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });

  tok.gp = await mint(ref(x.gp));
  tok.nurse = await mint(ref(x.nurse));
  tok.stranger = await mint(ref(x.stranger));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  tok.p2 = await mint(ref(x.p2), 'patient/*.cruds');
  for (const [who, token] of [[x.gp, tok.gp], [x.nurse, tok.nurse]] as const) {
    await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  }
  x.report = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
  x.psych = await create({ ...document(x.p1, PSYCH, ref(x.gp)), meta: { tag: [{ system: 'urn:probe', code: `psych-${RUN}` }], profile: [`http://example.org/psych-${RUN}`] } }, tok.gp);
  x.secret = await create({ ...document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']), description: `secret-${RUN}` }, tok.gp);
  // the professional reads and searches the document the patient may not see yet
  expect((await get(ref(x.secret), tok.gp)).status).toBe(200);
  expect((await get(`DocumentReference?subject=${ref(x.p1)}&description=secret-${RUN}`, tok.gp)).status).toBe(200);
});

describe('$meta at type and system level', () => {
  it("a nurse learns nothing of the psychiatric summary's tag or profile", async () => {
    for (const path of ['DocumentReference/$meta', '$meta']) {
      const res = await get(path, tok.nurse);
      expect([path, res.status]).toEqual([path, 200]);
      expect(res.text).not.toContain(`psych-${RUN}`);
    }
  });
  it('a patient learns nothing of a document invisible to them', async () => {
    for (const path of ['DocumentReference/$meta', '$meta']) {
      const res = await get(path, tok.p1);
      expect(res.text).not.toContain('INVISIBLE_PATIENT');
    }
  });
});

describe('the audit trail', () => {
  it("a patient reaches another patient's events by no search parameter, include or $everything", async () => {
    const paths = [
      `AuditEvent?agent=${ref(x.gp)}&_count=200`,
      `AuditEvent?entity=${ref(x.report)}`,
      `AuditEvent?entity=${ref(x.p2)}`,
      `DocumentReference?subject=${ref(x.p1)}&_revinclude=AuditEvent:entity`,
      `Patient?_id=${x.p2.id}&_revinclude=AuditEvent:entity`,
      `Patient?_id=${x.p2.id}&_revinclude=AuditEvent:patient`,
      `Patient?_has:AuditEvent:entity:agent=${ref(x.gp)}`,
      `Patient/${x.p2.id}/$everything`,
      `AuditEvent/_history?_count=200`,
      `_history?_count=200`,
    ];
    for (const path of paths) {
      const res = await get(path, tok.p2);
      const leaked = JSON.stringify(entries(res)).includes(x.p1.id);
      expect([path, leaked]).toEqual([path, false]);
    }
  });

  it("a professional reaches the trail through no include, compartment or $everything", async () => {
    const paths = [
      `DocumentReference?subject=${ref(x.p1)}&_revinclude=AuditEvent:entity`,
      `Patient?_id=${x.p1.id}&_revinclude=AuditEvent:entity`,
      `Patient?_id=${x.p1.id}&_revinclude=AuditEvent:patient`,
      `Patient?_id=${x.p1.id}&_revinclude=*`,
      `Patient/${x.p1.id}/AuditEvent`,
      `Patient/${x.p1.id}/$everything`,
      `Patient?_has:AuditEvent:entity:agent=${ref(x.gp)}`,
      `AuditEvent/_history`,
      `_history?_count=200`,
    ];
    for (const path of paths) {
      const res = await get(path, tok.gp);
      const events = entries(res).filter((r) => r.resourceType === 'AuditEvent').length;
      expect([path, events]).toEqual([path, 0]);
    }
  });
});

describe('notifications', () => {
  it('another patient, a professional with access and one without read none of them', async () => {
    for (const [who, token] of [['p2', tok.p2], ['gp', tok.gp], ['stranger', tok.stranger]]) {
      for (const path of [`Communication?recipient=${ref(x.p1)}`, `Communication?category=notification&_count=200`, `Patient/${x.p1.id}/Communication`, `Patient/${x.p1.id}/$everything`]) {
        const res = await get(path, token);
        const notices = entries(res).filter((r) => r.resourceType === 'Communication');
        expect([who, path, notices.length]).toEqual([who, path, 0]);
      }
    }
    const [notice] = entries(await get(`Communication?recipient=${ref(x.p1)}&category=notification`, tok.p1));
    expect(notice.resourceType).toBe('Communication');
    expect((await get(`Communication/${notice.id}`, tok.gp)).status).toBe(404);
    expect((await get(`Communication/${notice.id}/_history`, tok.gp)).status).toBe(404);
  });
});

describe('Subscriptions', () => {
  const sub = (criteria: string, path: string) => ({
    resourceType: 'Subscription', status: 'requested', reason: `probe ${RUN}`, criteria,
    channel: { type: 'rest-hook', endpoint: `${receiverUrl}${path}`, payload: 'application/fhir+json', header: [`X-Secret: s-${RUN}`] },
  });
  it("another caller does not read a Subscription or its headers", async () => {
    const s = await create(sub(`DocumentReference?subject=${ref(x.p1)}`, `/gp-${RUN}`), tok.gp);
    for (const [who, token] of [['p2', tok.p2], ['stranger', tok.stranger], ['nurse', tok.nurse]]) {
      const one = await get(`Subscription/${s.id}`, token);
      const all = await get(`Subscription?_count=200`, token);
      const hist = await get(`Subscription/${s.id}/_history`, token);
      expect([who, one.text.includes(`s-${RUN}`), all.text.includes(`s-${RUN}`), hist.text.includes(`s-${RUN}`)]).toEqual([who, false, false, false]);
    }
  });

  it("a patient subscribed to another record's documents or to documents invisible to them receives nothing", async () => {
    const created = await send('POST', 'Subscription', tok.p2, sub(`DocumentReference?subject=${ref(x.p1)}`, `/p2-${RUN}`));
    const own = await send('POST', 'Subscription', tok.p1, sub(`DocumentReference?subject=${ref(x.p1)}`, `/p1-${RUN}`));
    expect([200, 201, 403, 404, 422]).toContain(created.status);
    expect([201]).toContain(own.status);
    // wait for both to be active
    await new Promise((r) => setTimeout(r, 500));
    const hidden = await create({ ...document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']), description: `later-${RUN}` }, tok.gp);
    const seen = await create({ ...document(x.p1, REPORT, ref(x.gp)), description: `shown-${RUN}` }, tok.gp);
    const end = Date.now() + 5000;
    while (Date.now() < end && !received.some((r) => r.path === `/p1-${RUN}` && r.body.includes(seen.id))) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    expect(received.some((r) => r.path === `/p1-${RUN}` && r.body.includes(seen.id))).toBe(true);
    expect(received.filter((r) => r.path === `/p2-${RUN}`)).toHaveLength(0);
    expect(received.filter((r) => r.path === `/p1-${RUN}` && (r.body.includes(hidden.id) || r.body.includes(`later-${RUN}`)))).toHaveLength(0);
  });
});

describe('masking operations', () => {
  it("$mask-all of another record and $meta-add of a hidden document answer as for missing ones", async () => {
    const missing = crypto.randomUUID();
    const params = { resourceType: 'Parameters', parameter: [{ name: 'meta', valueMeta: { security: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/TRE-A07-StatutVisibiliteDocument', code: 'MASQUE_PS' }] } }] };
    const other = await send('POST', `Patient/${x.p1.id}/$mask-all`, tok.p2, { resourceType: 'Parameters' });
    const none = await send('POST', `Patient/${missing}/$mask-all`, tok.p2, { resourceType: 'Parameters' });
    expect([other.status, other.text.split(x.p1.id).join('ID')]).toEqual([none.status, none.text.split(missing).join('ID')]);
    const hidden = await send('POST', `DocumentReference/${x.secret.id}/$meta-add`, tok.p1, params);
    const gone = await send('POST', `DocumentReference/${missing}/$meta-add`, tok.p1, params);
    expect([hidden.status, hidden.text.split(x.secret.id).join('ID')]).toEqual([gone.status, gone.text.split(missing).join('ID')]);
    const nurse = await send('POST', `DocumentReference/${x.psych.id}/$meta`, tok.nurse, { resourceType: 'Parameters' });
    const nurseMissing = await send('POST', `DocumentReference/${missing}/$meta`, tok.nurse, { resourceType: 'Parameters' });
    expect([nurse.status, nurse.text.split(x.psych.id).join('ID')]).toEqual([nurseMissing.status, nurseMissing.text.split(missing).join('ID')]);
  });
});
