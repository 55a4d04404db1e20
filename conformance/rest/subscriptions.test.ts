import crypto from 'node:crypto';
import fs from 'node:fs';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import knexFactory from 'knex';
import { http, startTarget, Target } from '../harness';
import { as, consent, document, ircp, Json, ref, REPORT } from '../accessFixtures';
import { Dispatcher, startDispatcher } from '../../src/subscriptions/dispatcher';

/**
 * R4 rest-hook Subscriptions end to end (docs/decisions/010-subscriptions.md): a receiver
 * started here gets the notifications the server's dispatcher sends, retried, given up
 * with the Subscription in error, sent after a restart, and never in the way of the
 * request that made the change. Short poll and backoff settings keep the suite quick.
 */
const FAST = { SUBSCRIPTION_POLL_MS: '50', SUBSCRIPTION_BACKOFF_MS: '100', SUBSCRIPTION_MAX_ATTEMPTS: '3', SUBSCRIPTION_TIMEOUT_MS: '10000' };
const RUN = crypto.randomBytes(3).toString('hex');

interface Received {
  path: string;
  headers: nodeHttp.IncomingHttpHeaders;
  body: string;
  at: number;
}

/**
 * A subscriber's endpoint: `/ok/…` answers 200, `/flaky/…` 500 twice then 200, `/fail/…` always 500, `/slow/…` 200 after 5 s,
 * `/gate/…` 503 while its path is in `closedGates`, then 200.
 */
class Receiver {
  readonly received: Received[] = [];
  readonly closedGates = new Set<string>();
  private readonly server: nodeHttp.Server;
  private readonly calls = new Map<string, number>();
  url = '';
  constructor() {
    this.server = nodeHttp.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const path = req.url ?? '';
        const n = (this.calls.get(path) ?? 0) + 1;
        this.calls.set(path, n);
        const answer = (status: number) => {
          this.received.push({ path, headers: req.headers, body, at: Date.now() });
          res.writeHead(status).end();
        };
        if (path.startsWith('/flaky')) answer(n <= 2 ? 500 : 200);
        else if (path.startsWith('/fail')) answer(500);
        else if (path.startsWith('/slow')) setTimeout(() => answer(200), 5000);
        else if (path.startsWith('/gate')) answer(this.closedGates.has(path) ? 503 : 200);
        else answer(200);
      });
    });
  }
  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const subscription = (criteria: string, endpoint: string, extra: Json = {}): Json => ({
  resourceType: 'Subscription',
  status: 'requested',
  reason: `test ${RUN}`,
  criteria,
  channel: { type: 'rest-hook', endpoint, payload: 'application/fhir+json', header: ['X-Subscriber-Token: secret-1'], ...extra },
});

async function create(t: Target, resource: Json, token?: string): Promise<Json> {
  const res = await http(t.base, resource.resourceType, { method: 'POST', json: resource, headers: token ? as(token) : {} });
  if (res.status !== 201) throw new Error(`create ${resource.resourceType} answered ${res.status}: ${res.text}`);
  return res.body;
}

/** A Subscription created, then waited for until the dispatcher has accepted it. */
async function subscribe(t: Target, s: Json, token?: string): Promise<Json> {
  const created = await create(t, s, token);
  await until(`Subscription/${created.id} active`, async () => ((await http(t.base, `Subscription/${created.id}`)).body.status === 'active' ? true : undefined));
  return created;
}

const receiver = new Receiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.close());

describe('delivery', () => {
  let t: Target;
  const x: Json = {};
  beforeAll(async () => {
    t = await startTarget(FAST);
    x.gp = await create(t, { resourceType: 'Practitioner', name: [{ family: `Martin-${RUN}` }] });
    x.stranger = await create(t, { resourceType: 'Practitioner', name: [{ family: `Autre-${RUN}` }] });
    for (const p of [x.gp, x.stranger]) {
      await create(t, { resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante', code: '10' }] }] });
    }
    x.p1 = await create(t, { resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
    x.p2 = await create(t, { resourceType: 'Patient', name: [{ family: `Deux-${RUN}` }], birthDate: '1980-01-01' });
    await create(t, consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  });
  afterAll(() => t.close());

  it('refuses what it cannot deliver (422)', async () => {
    const res = await http(t.base, 'Subscription', { method: 'POST', json: subscription('DocumentReference?patient=x', 'wss://e.example/', { type: 'websocket' }) });
    expect(res.status).toBe(422);
    expect(res.text).toMatch(/rest-hook/);
  });

  it('notifies a matching change with the resource and the channel headers, and not a change that does not match', async () => {
    const s = await subscribe(t, subscription(`DocumentReference?patient=${ref(x.p1)}`, `${receiver.url}/ok/${RUN}`));
    const other = await create(t, document(x.p2, REPORT, ref(x.gp)));
    const doc = await create(t, document(x.p1, REPORT, ref(x.gp)));
    const [got] = await until('the notification', () => (receiver.at(`/ok/${RUN}`).length ? receiver.at(`/ok/${RUN}`) : undefined));
    expect(got.headers['x-subscriber-token']).toBe('secret-1');
    expect(got.headers['content-type']).toBe('application/fhir+json');
    const body = JSON.parse(got.body);
    expect(body.resourceType).toBe('DocumentReference');
    expect(body.id).toBe(doc.id);
    // the earlier change of the other patient was matched first, and not sent
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at(`/ok/${RUN}`).map((r) => JSON.parse(r.body).id)).toEqual([doc.id]);
    expect(other.id).not.toBe(doc.id);
    expect((await http(t.base, `Subscription/${s.id}`)).body.status).toBe('active');
  });

  it('without a payload, notifies with no body', async () => {
    const endpoint = `${receiver.url}/ok/empty-${RUN}`;
    await subscribe(t, subscription(`Patient?family=Deux-${RUN}`, endpoint, { payload: undefined }));
    await http(t.base, `Patient/${x.p2.id}`, { method: 'PUT', json: { ...x.p2, name: [{ family: x.p2.name[0].family, given: ['Anne'] }] } });
    const [got] = await until('the id-only notification', () => (receiver.at(`/ok/empty-${RUN}`).length ? receiver.at(`/ok/empty-${RUN}`) : undefined));
    expect(got.body).toBe('');
    expect(got.headers['content-type']).toBeUndefined();
  });

  it('retries a failing endpoint with backoff until it answers', async () => {
    const s = await subscribe(t, subscription(`DocumentReference?patient=${ref(x.p1)}&description=flaky`, `${receiver.url}/flaky/${RUN}`));
    await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: 'flaky' });
    await until('the third attempt', () => (receiver.at(`/flaky/${RUN}`).length >= 3 ? true : undefined));
    const attempts = receiver.at(`/flaky/${RUN}`);
    expect(attempts).toHaveLength(3);
    // backoff 100 ms then 200 ms (the poll adds up to 50 ms each time)
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(90);
    expect(attempts[2].at - attempts[1].at).toBeGreaterThanOrEqual(190);
    expect((await http(t.base, `Subscription/${s.id}`)).body.status).toBe('active');
  });

  it('sets the Subscription to error, with the reason, after repeated failures', async () => {
    const s = await subscribe(t, subscription(`DocumentReference?patient=${ref(x.p1)}&description=doomed`, `${receiver.url}/fail/${RUN}`));
    await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: 'doomed' });
    const failed = await until('status error', async () => {
      const read = await http(t.base, `Subscription/${s.id}`);
      return read.body.status === 'error' ? read.body : undefined;
    });
    expect(failed.error).toMatch(/failed 3 times: The endpoint answered 500/);
    expect(receiver.at(`/fail/${RUN}`)).toHaveLength(3);
    // no more attempts once in error
    await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: 'doomed' });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at(`/fail/${RUN}`)).toHaveLength(3);
  });

  it('answers the request that made the change without waiting for a slow endpoint', async () => {
    await subscribe(t, subscription(`DocumentReference?patient=${ref(x.p1)}&description=slow`, `${receiver.url}/slow/${RUN}`));
    // a first notification keeps the endpoint busy for 5 s
    await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: 'slow' });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    const res = await http(t.base, 'DocumentReference', { method: 'POST', json: { ...document(x.p1, REPORT, ref(x.gp)), description: 'slow' } });
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeLessThan(2000);
    await until('both slow notifications', () => (receiver.at(`/slow/${RUN}`).length >= 2 ? true : undefined), 20000);
  }, 30000);

  it("searches the criteria with the owner's access: a professional without access to the record is not notified", async () => {
    const gpToken = await t.issuer!.mint({ sub: 'gp', fhirUser: ref(x.gp), scope: 'user/*.cruds' });
    const strangerToken = await t.issuer!.mint({ sub: 'stranger', fhirUser: ref(x.stranger), scope: 'user/*.cruds' });
    // the same criteria: the professional without access names the record, and is subscribed all the same (no search runs at creation)
    await subscribe(t, subscription(`DocumentReference?subject=${ref(x.p1)}&description=owned`, `${receiver.url}/ok/gp-${RUN}`), gpToken);
    await subscribe(t, subscription(`DocumentReference?description=owned`, `${receiver.url}/ok/stranger-${RUN}`), strangerToken);
    const doc = await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: 'owned' });
    const [got] = await until("the consented professional's notification", () => (receiver.at(`/ok/gp-${RUN}`).length ? receiver.at(`/ok/gp-${RUN}`) : undefined));
    expect(JSON.parse(got.body).id).toBe(doc.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at(`/ok/stranger-${RUN}`)).toHaveLength(0);
  });

  it('notifies the deletion of a resource it was told of: a history Bundle naming the deletion, or an empty body', async () => {
    const gpToken = await t.issuer!.mint({ sub: 'gp', fhirUser: ref(x.gp), scope: 'user/*.cruds' });
    const strangerToken = await t.issuer!.mint({ sub: 'stranger', fhirUser: ref(x.stranger), scope: 'user/*.cruds' });
    const criteria = `DocumentReference?subject=${ref(x.p1)}&description=gone-${RUN}`;
    await subscribe(t, subscription(criteria, `${receiver.url}/ok/del-${RUN}`), gpToken);
    await subscribe(t, subscription(criteria, `${receiver.url}/ok/del-empty-${RUN}`, { payload: undefined }), gpToken);
    await subscribe(t, subscription(criteria, `${receiver.url}/ok/del-stranger-${RUN}`), strangerToken);
    const doc = await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: `gone-${RUN}` }, gpToken);
    // a document that never matched: its deletion is not notified either
    const unmatched = await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: `kept-${RUN}` }, gpToken);
    await until('the creation notified', () => (receiver.at(`/ok/del-${RUN}`).length && receiver.at(`/ok/del-empty-${RUN}`).length ? true : undefined));
    expect((await http(t.base, `DocumentReference/${unmatched.id}`, { method: 'DELETE', headers: as(gpToken) })).status).toBeLessThan(300);
    expect((await http(t.base, `DocumentReference/${doc.id}`, { method: 'DELETE', headers: as(gpToken) })).status).toBeLessThan(300);
    const [, deletion] = await until('the deletion notified', () => (receiver.at(`/ok/del-${RUN}`).length >= 2 ? receiver.at(`/ok/del-${RUN}`) : undefined));
    expect(deletion.headers['content-type']).toBe('application/fhir+json');
    const bundle = JSON.parse(deletion.body);
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect(bundle.entry).toHaveLength(1);
    expect(bundle.entry[0].resource).toBeUndefined();
    expect(bundle.entry[0].request).toEqual({ method: 'DELETE', url: `DocumentReference/${doc.id}` });
    expect(bundle.entry[0].response).toMatchObject({ status: '204 No Content', etag: 'W/"2"' });
    const [, empty] = await until('the id-only deletion notice', () => (receiver.at(`/ok/del-empty-${RUN}`).length >= 2 ? receiver.at(`/ok/del-empty-${RUN}`) : undefined));
    expect(empty.body).toBe('');
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.at(`/ok/del-${RUN}`)).toHaveLength(2);
    expect(receiver.at(`/ok/del-stranger-${RUN}`)).toHaveLength(0);
  });

  it('lets a professional read back their own Subscriptions, and nobody else\'s', async () => {
    const gpToken = await t.issuer!.mint({ sub: 'gp', fhirUser: ref(x.gp), scope: 'user/*.cruds' });
    const strangerToken = await t.issuer!.mint({ sub: 'stranger', fhirUser: ref(x.stranger), scope: 'user/*.cruds' });
    const mine = await create(t, subscription(`DocumentReference?subject=${ref(x.p1)}&description=mine-${RUN}`, `${receiver.url}/ok/mine-${RUN}`), gpToken);
    const theirs = await create(t, subscription(`DocumentReference?description=theirs-${RUN}`, `${receiver.url}/ok/theirs-${RUN}`), strangerToken);
    const read = await http(t.base, `Subscription/${mine.id}`, { headers: as(gpToken) });
    expect(read.status).toBe(200);
    expect(read.body.channel.header).toEqual(['X-Subscriber-Token: secret-1']);
    expect((await http(t.base, `Subscription/${mine.id}/_history/1`, { headers: as(gpToken) })).status).toBe(200);
    expect((await http(t.base, `Subscription/${mine.id}/_history`, { headers: as(gpToken) })).body.entry.length).toBeGreaterThan(0);
    const found = await http(t.base, `Subscription?_count=500`, { headers: as(gpToken) });
    expect(found.status).toBe(200);
    const ids = (found.body.entry ?? []).map((e: Json) => e.resource.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    expect((await http(t.base, `Subscription/${theirs.id}`, { headers: as(gpToken) })).status).toBe(404);
    expect((await http(t.base, `Subscription/${mine.id}`, { headers: as(strangerToken) })).status).toBe(404);
    const history = await http(t.base, `Subscription/_history?_count=500`, { headers: as(gpToken) });
    expect(history.text).not.toContain(theirs.id);
  });

  it("lets only the owner change a professional's Subscription", async () => {
    const gpToken = await t.issuer!.mint({ sub: 'gp', fhirUser: ref(x.gp), scope: 'user/*.cruds' });
    const strangerToken = await t.issuer!.mint({ sub: 'stranger', fhirUser: ref(x.stranger), scope: 'user/*.cruds' });
    const s = await create(t, subscription(`DocumentReference?subject=${ref(x.p1)}`, `${receiver.url}/ok/x-${RUN}`), gpToken);
    const current = (await http(t.base, `Subscription/${s.id}`)).body;
    const hijack = await http(t.base, `Subscription/${s.id}`, { method: 'PUT', json: { ...current, channel: { ...current.channel, endpoint: 'https://attacker.example/' } }, headers: as(strangerToken) });
    expect(hijack.status).toBe(403);
  });
});

describe('what is still due when the owner loses access (docs/decisions/035-what-a-depositing-system-reads.md)', () => {
  let t: Target;
  let dispatcher: Dispatcher;
  const x: Json = {};
  beforeAll(async () => {
    // rounds run by the test, one at a time: nothing happens between its steps
    t = await startTarget({ ...FAST, SUBSCRIPTIONS_DISPATCHER: 'off' });
    dispatcher = startDispatcher(t.running!.ctx, { poll: false });
    x.gp = await create(t, { resourceType: 'Practitioner', name: [{ family: `Retrait-${RUN}` }] });
    await create(t, { resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(x.gp) }, code: [{ coding: [{ system: 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante', code: '10' }] }] });
    x.p1 = await create(t, { resourceType: 'Patient', name: [{ family: `Retire-${RUN}` }], birthDate: '1970-01-01' });
    x.consent = await create(t, consent(x.p1, ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }));
  });
  afterAll(async () => {
    await dispatcher.close();
    await t.close();
  });
  const deliveries = async (subscriptionId: string) =>
    ((await t.running!.ctx.db.knex.raw(`SELECT attempts, last_error, delivered_at, abandoned_at FROM subscription_delivery WHERE subscription_id = ?`, [subscriptionId])) as { rows: Json[] }).rows;

  it('a notification that failed once is not sent again once the consent is withdrawn: given up, saying why', async () => {
    const gate = `/gate/withdrawn-${RUN}`;
    receiver.closedGates.add(gate);
    const gpToken = await t.issuer!.mint({ sub: 'gp', fhirUser: ref(x.gp), scope: 'user/*.cruds' });
    const s = await create(t, subscription(`DocumentReference?subject=${ref(x.p1)}&description=retrait-${RUN}`, `${receiver.url}${gate}`), gpToken);
    await dispatcher.runOnce();
    const doc = await create(t, { ...document(x.p1, REPORT, ref(x.gp)), description: `retrait-${RUN}` });
    await dispatcher.runOnce();
    // the first attempt reached the endpoint with the document, and failed
    const [first] = await until('the first attempt', () => (receiver.at(gate).length ? receiver.at(gate) : undefined));
    expect(JSON.parse(first.body).id).toBe(doc.id);
    await until('the failure recorded', async () => ((await deliveries(s.id))[0]?.last_error ? true : undefined));
    // the patient withdraws the professional's access; the endpoint would now accept
    expect((await http(t.base, `Consent/${x.consent.id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    receiver.closedGates.delete(gate);
    const done = await until('the notification settled', async () => {
      await dispatcher.runOnce();
      const [row] = await deliveries(s.id);
      return row?.delivered_at || row?.abandoned_at ? row : undefined;
    });
    expect(done.delivered_at).toBeNull();
    expect(done.last_error).toMatch(/may no longer read/);
    expect(receiver.at(gate)).toHaveLength(1);
    // the Subscription itself is not in error: a later change they may read is notified
    expect((await http(t.base, `Subscription/${s.id}`)).body.status).toBe('active');
  });
});

describe('after a restart', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-subs-'));
  const schema = `subs_${crypto.randomBytes(4).toString('hex')}`;
  const env = { ...FAST, DATA_DIR: dataDir, ...(process.env.DATABASE_URL ? { DATABASE_SCHEMA: schema } : {}) };
  afterAll(async () => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    if (process.env.DATABASE_URL) {
      const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
      await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await admin.destroy();
    }
  });

  it('delivers a change committed while no dispatcher ran', async () => {
    const first = await startTarget({ ...env, SUBSCRIPTIONS_DISPATCHER: 'off' });
    let doc: Json;
    try {
      const p = await create(first, { resourceType: 'Patient', name: [{ family: `Trois-${RUN}` }] });
      const s = await create(first, subscription(`DocumentReference?patient=${ref(p)}`, `${receiver.url}/ok/restart-${RUN}`));
      expect(s.status).toBe('requested');
      const author = await create(first, { resourceType: 'Practitioner', name: [{ family: `Auteur-${RUN}` }] });
      doc = await create(first, document(p, REPORT, ref(author)));
      await new Promise((r) => setTimeout(r, 200));
      expect(receiver.at(`/ok/restart-${RUN}`)).toHaveLength(0);
    } finally {
      await first.close();
    }
    const second = await startTarget(env);
    try {
      const [got] = await until('the notification after the restart', () => (receiver.at(`/ok/restart-${RUN}`).length ? receiver.at(`/ok/restart-${RUN}`) : undefined));
      expect(JSON.parse(got.body).id).toBe(doc!.id);
    } finally {
      await second.close();
    }
  });
});
