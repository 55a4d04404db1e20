import crypto from 'node:crypto';
import nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { http, startTarget, Target } from '../harness';
import { as, consent, document as documentResource, G15, ircp, Json, PSYCH, R38, ref, REPORT, requests } from '../accessFixtures';

/**
 * A resource the caller reads names nothing they cannot read
 * (docs/decisions/013-references-to-hidden-resources.md): a SubmissionSet's entries, a
 * DocumentReference's relations, a Provenance's targets pointing at hidden documents are
 * withheld on every read path, over HTTP, with real tokens.
 */
let t: Target;
const FAST = { SUBSCRIPTION_POLL_MS: '50', SUBSCRIPTION_BACKOFF_MS: '100', SUBSCRIPTION_MAX_ATTEMPTS: '3', SUBSCRIPTION_TIMEOUT_MS: '10000' };
beforeAll(async () => {
  t = await startTarget(FAST);
});
afterAll(() => t.close());

/** A subscriber's endpoint: what it received, by path. */
const received: { path: string; body: string }[] = [];
const receiver = nodeHttp.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    received.push({ path: req.url ?? '', body });
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

const RUN = crypto.randomBytes(3).toString('hex');
const { create, get, send, mint } = requests(() => t);
const document = (patient: Json, type: { code: string; cls: string }, author: string, labels: string[] = []) => documentResource(patient, type, author, labels, undefined, `doc ${RUN}`);
const SUBSETTED = 'SUBSETTED';
const isSubsetted = (r: Json) => Boolean(r.meta?.tag?.some((tag: Json) => tag.code === SUBSETTED));

const x: Json = {};
const tok: Record<string, string> = {};
const missing = crypto.randomUUID();
const ELSEWHERE = 'https://elsewhere.example/fhir/DocumentReference/outside';

beforeAll(async () => {
  const practitioner = (name: string) => create({ resourceType: 'Practitioner', name: [{ family: `${name}-${RUN}` }] });
  const role = (p: Json, profession: string, extra: Json = {}) =>
    create({ resourceType: 'PractitionerRole', active: true, practitioner: { reference: ref(p) }, code: [{ coding: [{ system: G15, code: profession }] }], ...extra });
  x.gp = await practitioner('Generaliste');
  await role(x.gp, '10', { specialty: [{ coding: [{ system: R38, code: 'SM54' }] }] });
  x.nurse = await practitioner('Infirmier');
  await role(x.nurse, '60');
  x.p1 = await create({ resourceType: 'Patient', name: [{ family: `Un-${RUN}` }], birthDate: '1970-01-01' });
  tok.gp = await mint(ref(x.gp));
  tok.nurse = await mint(ref(x.nurse));
  tok.p1 = await mint(ref(x.p1), 'patient/*.cruds');
  for (const [who, token] of [[x.gp, tok.gp], [x.nurse, tok.nurse]] as const) {
    await create(consent(x.p1, ref(who), { type: 'permit', actor: [ircp(ref(who))] }), token);
  }
  x.report = await create(document(x.p1, REPORT, ref(x.gp)), tok.gp);
  // outside the nurse's matrix
  x.psych = await create(document(x.p1, PSYCH, ref(x.gp)), tok.gp);
  // invisible to the patient
  x.unannounced = await create(document(x.p1, REPORT, ref(x.gp), ['INVISIBLE_PATIENT']), tok.gp);
  const item = (reference: string) => ({ item: { reference } });
  x.submissionSet = await create(
    {
      resourceType: 'List',
      status: 'current',
      mode: 'working',
      title: `SubmissionSet ${RUN}`,
      subject: { reference: ref(x.p1) },
      entry: [item(ref(x.report)), item(ref(x.psych)), item(ref(x.unannounced)), item(ELSEWHERE)],
    },
    tok.gp,
  );
  x.replacement = await create(
    { ...document(x.p1, REPORT, ref(x.gp)), relatesTo: [{ code: 'replaces', target: { reference: ref(x.psych) } }], context: { related: [{ reference: ref(x.psych) }, { reference: ref(x.report) }] } },
    tok.gp,
  );
  x.provenance = await create(
    {
      resourceType: 'Provenance',
      // in the record (the patient compartment of a Provenance is its Patient target)
      target: [{ reference: ref(x.p1) }, { reference: ref(x.report) }, { reference: ref(x.psych) }],
      recorded: new Date().toISOString(),
      agent: [{ who: { reference: ref(x.gp) } }],
      entity: [{ role: 'source', what: { reference: ref(x.psych) } }],
    },
    tok.gp,
  );
});

const items = (list: Json) => ((list.entry ?? []) as Json[]).map((e) => e.item.reference);

describe('a reader is not shown references to documents they cannot read', () => {
  it("a SubmissionSet read by a nurse lists the documents she reads, not the one outside her matrix, and says it is a subset", async () => {
    const res = await get(ref(x.submissionSet), tok.nurse);
    expect(res.status).toBe(200);
    expect(items(res.body)).toEqual([ref(x.report), ref(x.unannounced), ELSEWHERE]);
    expect(isSubsetted(res.body)).toBe(true);
    expect(res.text).not.toContain(x.psych.id);
    // the version is the stored one
    expect(res.headers.get('etag')).toBe('W/"1"');
  });

  it('the patient does not see the document awaiting the announcement consultation in it; the author sees every document', async () => {
    expect(items((await get(ref(x.submissionSet), tok.p1)).body)).toEqual([ref(x.report), ref(x.psych), ELSEWHERE]);
    const byAuthor = (await get(ref(x.submissionSet), tok.gp)).body;
    expect(items(byAuthor)).toEqual([ref(x.report), ref(x.psych), ref(x.unannounced), ELSEWHERE]);
    // the stored List is whole: the test client (unrestricted) reads it as written
    const stored = (await get(ref(x.submissionSet), t.token)).body;
    expect(items(stored)).toHaveLength(4);
    expect(isSubsetted(stored)).toBe(false);
  });

  it('no read path shows the hidden id: search, includes, compartment, history, $everything, _elements, batch', async () => {
    const paths = [
      ref(x.submissionSet),
      `${ref(x.submissionSet)}/_history/1`,
      `${ref(x.submissionSet)}/_history`,
      `List?subject=${ref(x.p1)}`,
      `List?_id=${x.submissionSet.id}&_include=List:item`,
      `List?_id=${x.submissionSet.id}&_elements=entry`,
      `DocumentReference?_id=${x.report.id}&_revinclude=List:item&_revinclude=Provenance:target`,
      `Patient/${x.p1.id}/List`,
      `Patient/${x.p1.id}/*`,
      `Patient/${x.p1.id}/$everything`,
      `List/_history`,
      `_history?_count=200`,
      `DocumentReference?subject=${ref(x.p1)}&_count=100`,
      ref(x.replacement),
      ref(x.provenance),
      `Provenance?target=${ref(x.report)}`,
    ];
    for (const path of paths) {
      const res = await get(path, tok.nurse);
      expect([path, res.status]).toEqual([path, 200]);
      expect([path, res.text.includes(x.psych.id)]).toEqual([path, false]);
    }
    const batch = await send('POST', '', tok.nurse, { resourceType: 'Bundle', type: 'batch', entry: paths.map((url) => ({ request: { method: 'GET', url } })) });
    expect(batch.status).toBe(200);
    expect(batch.text).not.toContain(x.psych.id);
    expect(batch.text).toContain(x.submissionSet.id);
  });

  it('the rows and totals are those the reader may see, unchanged by what is withheld inside them', async () => {
    const count = (token: string) => get(`List?subject=${ref(x.p1)}&_summary=count`, token).then((r) => r.body.total);
    expect(await count(tok.nurse)).toBe(await count(tok.gp));
    const page = (await get(`List?subject=${ref(x.p1)}`, tok.nurse)).body;
    expect(page.entry.map((e: Json) => e.resource.id)).toEqual([x.submissionSet.id]);
  });

  it("a DocumentReference's relations and a Provenance's targets to a hidden document are withheld", async () => {
    const doc = (await get(ref(x.replacement), tok.nurse)).body;
    expect(doc.relatesTo).toBeUndefined();
    expect(doc.context.related).toEqual([{ reference: ref(x.report) }]);
    expect(isSubsetted(doc)).toBe(true);
    const provenance = (await get(ref(x.provenance), tok.nurse)).body;
    expect(provenance.target).toEqual([{ reference: ref(x.p1) }, { reference: ref(x.report) }]);
    expect(provenance.entity).toBeUndefined();
    expect(isSubsetted(provenance)).toBe(true);
    // whoever reads the document related to sees the relation
    expect((await get(ref(x.replacement), tok.gp)).body.relatesTo[0].target.reference).toBe(ref(x.psych));
  });

  it('a shortened copy sent back is refused, and the stored List keeps every entry', async () => {
    const { body } = await get(ref(x.submissionSet), tok.nurse);
    const res = await send('PUT', ref(x.submissionSet), tok.nurse, { ...body, title: 'changed' });
    expect(res.status).toBe(400);
    expect(res.body.issue[0].diagnostics).toContain('SUBSETTED');
    expect(items((await get(ref(x.submissionSet), t.token)).body)).toHaveLength(4);
  });

  it("the patient's trail does not name the document invisible to them; the investigator's does", async () => {
    // the author read it, which the trail records
    expect((await get(ref(x.unannounced), tok.gp)).status).toBe(200);
    const trail = await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, tok.p1);
    expect(trail.status).toBe(200);
    expect(trail.body.entry.length).toBeGreaterThan(0);
    expect(trail.text).toContain(x.report.id);
    expect(trail.text).not.toContain(x.unannounced.id);
    const admin = await mint(undefined, 'admin');
    expect((await get(`AuditEvent?patient=${ref(x.p1)}&_count=500`, admin)).text).toContain(x.unannounced.id);
  });

  it('a writer changes what they read: the entries they were not shown stay, in an update and in a patch', async () => {
    const entries = [ref(x.report), ref(x.psych), ref(x.unannounced), ELSEWHERE].map((reference) => ({ item: { reference } }));
    const folder = await create({ resourceType: 'List', status: 'current', mode: 'working', title: `Folder ${RUN}`, subject: { reference: ref(x.p1) }, entry: entries }, tok.gp);
    const stored = async () => items((await get(ref(folder), t.token)).body);
    // an update of the nurse's view, without the tag
    const { meta: _subsetted, ...view } = (await get(ref(folder), tok.nurse)).body;
    // (a pretty answer is printed from the parsed version)
    const updated = await send('PUT', `${ref(folder)}?_pretty=true`, tok.nurse, { ...view, title: `Renamed ${RUN}` });
    expect(updated.status).toBe(200);
    expect(updated.text).not.toContain(x.psych.id);
    expect(await stored()).toEqual([ref(x.report), ref(x.unannounced), ELSEWHERE, ref(x.psych)]);
    // a patch addresses the entries as the nurse reads them: her second entry is the unannounced document
    const patch = (ops: Json[]) => http(t.base, ref(folder), { method: 'PATCH', body: JSON.stringify(ops), headers: { ...as(tok.nurse), 'content-type': 'application/json-patch+json' } });
    expect((await patch([{ op: 'remove', path: '/entry/1' }])).status).toBe(200);
    expect(await stored()).toEqual([ref(x.report), ELSEWHERE, ref(x.psych)]);
    // and cannot test what she is not shown: a hidden id answers as any other value
    const probe = (value: string) => patch([{ op: 'test', path: '/entry/2/item/reference', value }]);
    const onHidden = await probe(ref(x.psych));
    const onOther = await probe(`DocumentReference/${missing}`);
    expect([onHidden.status, onHidden.text.split(x.psych.id).join('ID')]).toEqual([onOther.status, onOther.text.split(missing).join('ID')]);
    expect(onHidden.status).toBe(422);
  });

  it("a Subscription's full-resource notification carries the resource as its owner reads it", async () => {
    const path = `/nurse-${RUN}`;
    const sub = await create(
      { resourceType: 'Subscription', status: 'requested', reason: 'probe', criteria: `List?subject=${ref(x.p1)}`, channel: { type: 'rest-hook', endpoint: `${receiverUrl}${path}`, payload: 'application/fhir+json' } },
      tok.nurse,
    );
    // the Subscription is active once the dispatcher has accepted it
    for (let i = 0; i < 300 && (await get(`Subscription/${sub.id}`, tok.nurse)).body.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 50));
    const folder = await create({ resourceType: 'List', status: 'current', mode: 'working', title: `Folder ${RUN}`, subject: { reference: ref(x.p1) }, entry: [{ item: { reference: ref(x.report) } }, { item: { reference: ref(x.psych) } }] }, tok.gp);
    for (let i = 0; i < 500 && !received.some((r) => r.path === path && r.body.includes(folder.id)); i++) await new Promise((r) => setTimeout(r, 50));
    const notice = received.find((r) => r.path === path && r.body.includes(folder.id));
    expect(notice).toBeDefined();
    const body = JSON.parse(notice!.body);
    expect(items(body)).toEqual([ref(x.report)]);
    expect(isSubsetted(body)).toBe(true);
    expect(notice!.body).not.toContain(x.psych.id);
  });
});
