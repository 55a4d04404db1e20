import crypto from 'node:crypto';
import { DOCUMENT_CODES } from '../frenchFixtures';
import { http, startTarget, Target } from '../harness';

/**
 * transaction and batch (http://hl7.org/fhir/R4/http.html#transaction): POST [base]
 * with a Bundle. Every test uses identifiers of its own so that it can count what a
 * transaction left behind.
 */
let t: Target;
beforeAll(async () => {
  // large transactions are exercised on both databases (the embedded default is lower)
  t = await startTarget({ BUNDLE_MAX_ENTRIES: '1000' });
});
afterAll(() => t.close());

const uuid = () => `urn:uuid:${crypto.randomUUID()}`;
const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
const SYS = 'urn:test:tx';
const identifier = (value: string, system = SYS) => [{ system, value }];
const qs = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

const transaction = (entry: unknown[]) => ({ resourceType: 'Bundle', type: 'transaction', entry });
const batch = (entry: unknown[]) => ({ resourceType: 'Bundle', type: 'batch', entry });

async function submit(bundle: unknown): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  return http(t.base, '', { method: 'POST', json: bundle });
}

/** A transaction that must succeed. */
async function commit(entries: unknown[]): Promise<any> {
  const res = await submit(transaction(entries));
  if (res.status !== 200) throw new Error(`transaction answered ${res.status}: ${res.text}`);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('transaction-response');
  expect(res.body.entry).toHaveLength(entries.length);
  return res.body;
}

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
  return res.body;
}

/** How many resources of a type match a query (_summary=count). */
async function count(type: string, pairs: [string, string][]): Promise<number> {
  const res = await http(t.base, `${type}?${qs([...pairs, ['_summary', 'count']])}`);
  if (res.status !== 200) throw new Error(`count answered ${res.status}: ${res.text}`);
  return res.body.total;
}

/** Type and id of a response entry's location (relative or absolute, with _history). */
function located(entry: any, type: string): { id: string; version: string } {
  const m = new RegExp(`(?:^|/)${type}/([A-Za-z0-9\\-.]{1,64})/_history/([0-9]+)$`).exec(entry.response?.location ?? '');
  if (!m) throw new Error(`no ${type} location in ${JSON.stringify(entry.response)}`);
  return { id: m[1], version: m[2] };
}

const post = (type: string, resource: Record<string, unknown>, fullUrl?: string, ifNoneExist?: string) => ({
  ...(fullUrl ? { fullUrl } : {}),
  resource: { resourceType: type, ...resource },
  request: { method: 'POST', url: type, ...(ifNoneExist ? { ifNoneExist } : {}) },
});
const observation = (subject: string, extra: Record<string, unknown> = {}) => ({
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
  subject: { reference: subject },
  ...extra,
});

describe('transaction', () => {
  it('creates resources that reference each other by urn:uuid, and rewrites the references', async () => {
    const [pat, doc, list] = [uuid(), uuid(), uuid()];
    const marker = unique('refs');
    const response = await commit([
      // the DocumentReference comes before the Patient it references
      post('DocumentReference', { status: 'current', ...DOCUMENT_CODES, subject: { reference: pat }, content: [{ attachment: { contentType: 'text/plain', title: marker } }] }, doc),
      post('Patient', { identifier: identifier(marker), name: [{ family: 'Transaction' }] }, pat),
      post('List', { status: 'current', mode: 'working', subject: { reference: pat }, entry: [{ item: { reference: doc } }] }, list),
    ]);

    for (const [entry, type] of [[response.entry[0], 'DocumentReference'], [response.entry[1], 'Patient'], [response.entry[2], 'List']]) {
      expect(entry.response.status).toMatch(/^201/);
      expect(located(entry, type).version).toBe('1');
      expect(entry.response.etag).toBe('W/"1"');
      expect(Number.isNaN(Date.parse(entry.response.lastModified))).toBe(false);
    }
    const docId = located(response.entry[0], 'DocumentReference').id;
    const patId = located(response.entry[1], 'Patient').id;
    const listId = located(response.entry[2], 'List').id;

    const docRead: any = await t.client.read({ resourceType: 'DocumentReference', id: docId });
    expect(docRead.subject.reference).toBe(`Patient/${patId}`);
    const listRead: any = await t.client.read({ resourceType: 'List', id: listId });
    expect(listRead.subject.reference).toBe(`Patient/${patId}`);
    expect(listRead.entry[0].item.reference).toBe(`DocumentReference/${docId}`);
    expect(JSON.stringify([docRead, listRead])).not.toContain('urn:uuid');
    const patRead: any = await t.client.read({ resourceType: 'Patient', id: patId });
    expect(patRead.identifier).toEqual(identifier(marker));

    // the rewritten references are what is indexed
    const bySubject: any = await t.client.search({ resourceType: 'DocumentReference', searchParams: { subject: `Patient/${patId}` } });
    expect(bySubject.entry.map((e: any) => e.resource.id)).toEqual([docId]);
    const byItem: any = await t.client.search({ resourceType: 'List', searchParams: { item: `DocumentReference/${docId}` } });
    expect(byItem.entry.map((e: any) => e.resource.id)).toEqual([listId]);
  });

  it('processes DELETE, then POST, then PUT, then GET whatever the order of the entries', async () => {
    const marker = unique('order');
    const doomed = await create({ resourceType: 'Patient', identifier: identifier(marker) });
    const putId = unique('order-put');
    const response = await commit([
      { request: { method: 'GET', url: `Patient?${qs([['identifier', `${SYS}|${marker}`]])}` } },
      { resource: { resourceType: 'Patient', id: putId, identifier: identifier(marker) }, request: { method: 'PUT', url: `Patient/${putId}` } },
      post('Patient', { identifier: identifier(marker) }),
      { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
      { request: { method: 'GET', url: `Patient/${putId}` } },
    ]);
    // the response entries follow the order of the request entries
    const [got, put, posted, deleted, read] = response.entry;
    expect(read.response.status).toMatch(/^200/);
    expect(read.resource.id).toBe(putId);
    expect(put.response.status).toMatch(/^201/);
    expect(located(put, 'Patient').id).toBe(putId);
    expect(posted.response.status).toMatch(/^201/);
    const postedId = located(posted, 'Patient').id;
    expect(deleted.response.status).toMatch(/^20[04]/);

    // the GET ran last: it sees the POST and the PUT, not the deleted patient
    expect(got.response.status).toMatch(/^200/);
    expect(got.resource.resourceType).toBe('Bundle');
    expect(got.resource.type).toBe('searchset');
    const found = got.resource.entry.filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource.id);
    expect(found.sort()).toEqual([putId, postedId].sort());

    // the POST ran before the PUT
    expect(Date.parse(posted.response.lastModified)).toBeLessThanOrEqual(Date.parse(put.response.lastModified));
    expect((await http(t.base, `Patient/${doomed.id}`)).status).toBe(410);
  });

  it('processes a conditional DELETE before a POST listed before it', async () => {
    const marker = unique('delete-first');
    const old = await create({ resourceType: 'Patient', identifier: identifier(marker) });
    // Were the POST processed first, the conditional delete would match two patients.
    const response = await commit([
      post('Patient', { identifier: identifier(marker), name: [{ family: 'Nouveau' }] }),
      { request: { method: 'DELETE', url: `Patient?${qs([['identifier', `${SYS}|${marker}`]])}` } },
    ]);
    const newId = located(response.entry[0], 'Patient').id;
    expect(response.entry[1].response.status).toMatch(/^20[04]/);
    expect((await http(t.base, `Patient/${old.id}`)).status).toBe(410);
    const left: any = await t.client.search({ resourceType: 'Patient', searchParams: { identifier: `${SYS}|${marker}` } });
    expect(left.entry.map((e: any) => e.resource.id)).toEqual([newId]);
  });

  it('evaluates a conditional create after the DELETEs of the same transaction', async () => {
    const marker = unique('recreate');
    const old = await create({ resourceType: 'Patient', identifier: identifier(marker), name: [{ family: 'Old' }] });
    // POST is processed after DELETE: once the old patient is deleted, nothing matches ifNoneExist
    const response = await commit([
      post('Patient', { identifier: identifier(marker), name: [{ family: 'New' }] }, uuid(), `identifier=${SYS}|${marker}`),
      { request: { method: 'DELETE', url: `Patient/${old.id}` } },
    ]);
    expect(response.entry[0].response.status).toMatch(/^201/);
    const newId = located(response.entry[0], 'Patient').id;
    expect(newId).not.toBe(old.id);
    expect((await http(t.base, `Patient/${old.id}`)).status).toBe(410);
    const left: any = await t.client.search({ resourceType: 'Patient', searchParams: { identifier: `${SYS}|${marker}` } });
    expect(left.entry.map((e: any) => e.resource.name[0].family)).toEqual(['New']);
  });

  describe('is atomic: a failing entry undoes every other entry', () => {
    it.each([
      ['a PUT whose body id differs from the URL', 400, (_existing: any) => ({ resource: { resourceType: 'Patient', id: 'xyz' }, request: { method: 'PUT', url: 'Patient/abc' } })],
      ['a PUT whose If-Match is not the current version', 412, (existing: any) => ({ resource: { ...existing, gender: 'other' }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"7"' } })],
      ['a GET of a resource that does not exist', 404, (_existing: any) => ({ request: { method: 'GET', url: `Patient/${unique('missing')}` } })],
    ])('%s answers %d and writes nothing', async (_name, status, failing) => {
      const marker = unique('atomic');
      const untouched = await create({ resourceType: 'Patient', identifier: identifier('untouched-' + marker), gender: 'male' });
      const toDelete = await create({ resourceType: 'Patient', identifier: identifier('kept-' + marker) });
      const pat = uuid();
      const putId = unique('atomic-put');
      const res = await submit(
        transaction([
          post('Patient', { identifier: identifier(marker) }, pat),
          { resource: { resourceType: 'Patient', id: putId, identifier: identifier(marker) }, request: { method: 'PUT', url: `Patient/${putId}` } },
          post('Observation', observation(pat, { identifier: identifier(marker) })),
          { request: { method: 'DELETE', url: `Patient/${toDelete.id}` } },
          failing(untouched),
        ]),
      );
      expect(res.status).toBe(status);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0].severity).toBe('error');
      expect(JSON.stringify(res.body.issue)).toMatch(/entry\[4\]/);

      expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(0);
      expect(await count('Observation', [['identifier', `${SYS}|${marker}`]])).toBe(0);
      expect((await http(t.base, `Patient/${putId}`)).status).toBe(404);
      const kept = await http(t.base, `Patient/${toDelete.id}`);
      expect(kept.status).toBe(200);
      expect(kept.body.meta.versionId).toBe('1');
      const same = await http(t.base, `Patient/${untouched.id}`);
      expect(same.body.meta.versionId).toBe('1');
      expect(same.body.gender).toBe('male');
    });
  });

  it('refuses entries whose resource identities overlap', async () => {
    const id = unique('overlap');
    await http(t.base, `Patient/${id}`, { method: 'PUT', json: { resourceType: 'Patient', id, gender: 'male' } });
    const res = await submit(
      transaction([
        { request: { method: 'DELETE', url: `Patient/${id}` } },
        { resource: { resourceType: 'Patient', id, gender: 'female' }, request: { method: 'PUT', url: `Patient/${id}` } },
      ]),
    );
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.resourceType).toBe('OperationOutcome');
    const after = await http(t.base, `Patient/${id}`);
    expect(after.status).toBe(200);
    expect(after.body.meta.versionId).toBe('1');
    expect(after.body.gender).toBe('male');
  });

  it('conditional create (ifNoneExist) answers 200 with the existing resource and creates no duplicate', async () => {
    const marker = unique('cc');
    const fresh = unique('cc-new');
    const existing = await create({ resourceType: 'Patient', identifier: identifier(marker) });
    const entries = () => {
      const [a, b] = [uuid(), uuid()];
      return [
        post('Patient', { identifier: identifier(marker) }, a, `identifier=${SYS}|${marker}`),
        post('Patient', { identifier: identifier(fresh) }, b, `identifier=${SYS}|${fresh}`),
        post('Observation', observation(a, { identifier: identifier(marker) })),
        post('Observation', observation(b, { identifier: identifier(fresh) })),
      ];
    };
    const first = await commit(entries());
    expect(first.entry[0].response.status).toMatch(/^200/);
    expect(located(first.entry[0], 'Patient').id).toBe(existing.id);
    expect(first.entry[1].response.status).toMatch(/^201/);
    const freshId = located(first.entry[1], 'Patient').id;
    // references to a conditionally created entry point at the resource it resolved to
    const obsA: any = await t.client.read({ resourceType: 'Observation', id: located(first.entry[2], 'Observation').id });
    expect(obsA.subject.reference).toBe(`Patient/${existing.id}`);
    const obsB: any = await t.client.read({ resourceType: 'Observation', id: located(first.entry[3], 'Observation').id });
    expect(obsB.subject.reference).toBe(`Patient/${freshId}`);

    // the same transaction again creates no patient
    const second = await commit(entries());
    expect(second.entry[0].response.status).toMatch(/^200/);
    expect(second.entry[1].response.status).toMatch(/^200/);
    expect(located(second.entry[1], 'Patient').id).toBe(freshId);
    expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(1);
    expect(await count('Patient', [['identifier', `${SYS}|${fresh}`]])).toBe(1);
    expect((await http(t.base, `Patient/${existing.id}`)).body.meta.versionId).toBe('1');
  });

  it('resolves a conditional reference to the one matching resource', async () => {
    const marker = unique('cref');
    const target = await create({ resourceType: 'Patient', identifier: identifier(marker) });
    const response = await commit([post('Observation', observation(`Patient?identifier=${SYS}|${marker}`))]);
    const obs: any = await t.client.read({ resourceType: 'Observation', id: located(response.entry[0], 'Observation').id });
    expect(obs.subject.reference).toBe(`Patient/${target.id}`);
  });

  it.each([
    ['matches nothing', 0],
    ['matches several resources', 2],
  ])('fails, writing nothing, when a conditional reference %s', async (_name, matching) => {
    const marker = unique('cref-fail');
    const wanted = unique('cref-wanted');
    for (let i = 0; i < matching; i++) await create({ resourceType: 'Patient', identifier: identifier(wanted) });
    const reference = `Patient?identifier=${SYS}|${wanted}`;
    const res = await submit(transaction([post('Patient', { identifier: identifier(marker) }), post('Observation', observation(reference, { identifier: identifier(marker) }))]));
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body.issue)).toContain(reference);
    expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(0);
    expect(await count('Observation', [['identifier', `${SYS}|${marker}`]])).toBe(0);
  });

  it('PUT creates with a client id, DELETE deletes, PATCH applies a JSON Patch carried in a Binary', async () => {
    const putId = unique('tx-put');
    const doomed = await create({ resourceType: 'Patient', name: [{ family: 'Doomed' }] });
    const patched = await create({ resourceType: 'Patient', name: [{ family: 'Avant' }], gender: 'male' });
    const jsonPatch = [{ op: 'replace', path: '/gender', value: 'female' }, { op: 'add', path: '/birthDate', value: '1980-02-03' }];
    const response = await commit([
      { resource: { resourceType: 'Patient', id: putId, name: [{ family: 'Client' }] }, request: { method: 'PUT', url: `Patient/${putId}` } },
      { request: { method: 'DELETE', url: `Patient/${doomed.id}` } },
      {
        resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: Buffer.from(JSON.stringify(jsonPatch)).toString('base64') },
        request: { method: 'PATCH', url: `Patient/${patched.id}` },
      },
    ]);
    const [put, del, patch] = response.entry;
    expect(put.response.status).toMatch(/^201/);
    expect(located(put, 'Patient')).toEqual({ id: putId, version: '1' });
    expect(put.response.etag).toBe('W/"1"');
    expect(del.response.status).toMatch(/^20[04]/);
    expect(patch.response.status).toMatch(/^200/);
    expect(located(patch, 'Patient')).toEqual({ id: patched.id, version: '2' });
    expect(patch.response.etag).toBe('W/"2"');

    const putRead = await http(t.base, `Patient/${putId}`);
    expect(putRead.status).toBe(200);
    expect(putRead.body.name).toEqual([{ family: 'Client' }]);
    expect((await http(t.base, `Patient/${doomed.id}`)).status).toBe(410);
    const patchRead: any = await t.client.read({ resourceType: 'Patient', id: patched.id });
    expect(patchRead.gender).toBe('female');
    expect(patchRead.birthDate).toBe('1980-02-03');
    expect(patchRead.name).toEqual([{ family: 'Avant' }]);
    expect(patchRead.meta.versionId).toBe('2');

    // a second PUT of the same id updates it
    const again = await commit([{ resource: { resourceType: 'Patient', id: putId, name: [{ family: 'Client2' }] }, request: { method: 'PUT', url: `Patient/${putId}` } }]);
    expect(again.entry[0].response.status).toMatch(/^200/);
    expect(again.entry[0].response.etag).toBe('W/"2"');
  });

  it('a large transaction failing at its last entry, after earlier entries were already sent to the database, leaves nothing', async () => {
    const marker = unique('late-failure');
    const existing = await create({ resourceType: 'Patient', identifier: identifier('existing-' + marker) });
    const entries: unknown[] = [];
    for (let i = 0; i < 600; i++) entries.push(post('Patient', { identifier: identifier(`${marker}-${i}`, `${SYS}:${marker}`) }));
    // PUT entries run after the POSTs (and before the GET): the 600 creates are sent, then the PUT fails
    entries.push({ request: { method: 'GET', url: `Patient?identifier=${SYS}:${marker}|&_summary=count` } });
    entries.push({ resource: { ...existing, gender: 'other' }, request: { method: 'PUT', url: `Patient/${existing.id}`, ifMatch: 'W/"9"' } });
    const res = await submit(transaction(entries));
    expect(res.status).toBe(412);
    expect(JSON.stringify(res.body.issue)).toMatch(/entry\[601\]/);
    expect(await count('Patient', [['identifier', `${SYS}:${marker}|`]])).toBe(0);
    expect((await http(t.base, `Patient/${existing.id}`)).body.meta.versionId).toBe('1');

    // the same Bundle without the failing entry commits, and its GET counted the creates
    const response = await commit(entries.slice(0, 601));
    expect(response.entry[600].resource.total).toBe(600);
    expect(await count('Patient', [['identifier', `${SYS}:${marker}|`]])).toBe(600);
  });

  it('rewrites links to a fullUrl (references, uri elements, narrative links) but not string data that happens to equal it', async () => {
    const doc = uuid();
    const bin = uuid();
    const pat = uuid();
    const response = await commit([
      post('Patient', { identifier: identifier(unique('links')) }, pat),
      post('Binary', { contentType: 'text/plain', data: Buffer.from('hello').toString('base64') }, bin),
      post(
        'DocumentReference',
        {
          text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${pat}">patient</a></div>` },
          masterIdentifier: { system: 'urn:ietf:rfc:3986', value: doc },
          identifier: [{ use: 'official', system: 'urn:ietf:rfc:3986', value: doc }],
          status: 'current',
          ...DOCUMENT_CODES,
          description: doc,
          subject: { reference: pat },
          content: [{ attachment: { contentType: 'text/plain', url: bin } }],
        },
        doc,
      ),
    ]);
    const patient = located(response.entry[0], 'Patient');
    const binary = located(response.entry[1], 'Binary');
    const stored = (await http(t.base, `DocumentReference/${located(response.entry[2], 'DocumentReference').id}`)).body;
    expect(stored.subject.reference).toBe(`Patient/${patient.id}`);
    expect(stored.content[0].attachment.url).toBe(`Binary/${binary.id}`);
    expect(stored.text.div).toContain(`href="Patient/${patient.id}"`);
    // the entryUUID of an MHD document is an identifier: data, kept as sent
    expect(stored.masterIdentifier.value).toBe(doc);
    expect(stored.identifier[0].value).toBe(doc);
    expect(stored.description).toBe(doc);
    const byIdentifier = await http(t.base, `DocumentReference?identifier=${encodeURIComponent(`urn:ietf:rfc:3986|${doc}`)}`);
    // a canonical element pointing at an entry is a link too
    const q = uuid();
    const withForm = await commit([
      post('Questionnaire', { url: `http://example.org/Questionnaire/${unique('q')}`, status: 'active' }, q),
      post('QuestionnaireResponse', { status: 'completed', questionnaire: q }),
    ]);
    const qr = (await http(t.base, `QuestionnaireResponse/${located(withForm.entry[1], 'QuestionnaireResponse').id}`)).body;
    expect(qr.questionnaire).toBe(`Questionnaire/${located(withForm.entry[0], 'Questionnaire').id}`);
    expect(byIdentifier.body.entry.map((e: any) => e.resource.id)).toEqual([stored.id]);
  });

  it('resolves references to a conditional update by its fullUrl, whether it creates or updates', async () => {
    const marker = unique('cond-put');
    const bundle = () => {
      const pat = uuid();
      return transaction([
        { fullUrl: pat, resource: { resourceType: 'Patient', identifier: identifier(marker) }, request: { method: 'PUT', url: `Patient?identifier=${SYS}|${marker}` } },
        post('Observation', observation(pat, { identifier: identifier(marker) })),
      ]);
    };
    const first = await submit(bundle());
    expect(first.status).toBe(200);
    const created = located(first.body.entry[0], 'Patient');
    expect(first.body.entry[0].response.status).toMatch(/^201/);
    const second = await submit(bundle());
    expect(second.status).toBe(200);
    expect(located(second.body.entry[0], 'Patient')).toEqual({ id: created.id, version: '2' });
    const observations = await http(t.base, `Observation?identifier=${encodeURIComponent(`${SYS}|${marker}`)}`);
    expect(observations.body.entry.map((e: any) => e.resource.subject.reference)).toEqual([`Patient/${created.id}`, `Patient/${created.id}`]);
  });

  it('refuses a reference to a urn:uuid that no entry has as fullUrl, and a fullUrl used twice', async () => {
    const marker = unique('unresolved');
    const dangling = await submit(transaction([post('Observation', observation(uuid(), { identifier: identifier(marker) }))]));
    expect(dangling.status).toBe(400);
    expect(dangling.body.issue[0].diagnostics).toMatch(/matches no fullUrl/);
    const same = uuid();
    const twice = await submit(transaction([post('Patient', { identifier: identifier(marker) }, same), post('Patient', { identifier: identifier(marker) }, same)]));
    expect(twice.status).toBe(400);
    expect(twice.body.issue[0].diagnostics).toMatch(/bdl-7/);
    const cased = await submit(transaction([post('Patient', { identifier: identifier(marker) }, same), post('Patient', { identifier: identifier(marker) }, same.toUpperCase().replace('URN:UUID:', 'urn:uuid:'))]));
    expect(cased.status).toBe(400);
    // a placeholder left in an Attachment.url resolves to nothing either
    const attachment = await submit(transaction([post('DocumentReference', { status: 'current', identifier: identifier(marker), content: [{ attachment: { url: uuid() } }] })]));
    expect(attachment.status).toBe(400);
    expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(0);
    expect(await count('Observation', [['identifier', `${SYS}|${marker}`]])).toBe(0);
  });

  it('applies Prefer return=minimal and return=OperationOutcome to write entries only', async () => {
    const marker = unique('prefer');
    const existing = await create({ resourceType: 'Patient', identifier: identifier(marker) });
    const bundle = transaction([post('Patient', { identifier: identifier(marker) }), { request: { method: 'GET', url: `Patient/${existing.id}` } }]);
    const minimal = await http(t.base, '', { method: 'POST', json: bundle, headers: { prefer: 'return=minimal' } });
    expect(minimal.status).toBe(200);
    expect(minimal.body.entry[0].resource).toBeUndefined();
    expect(minimal.body.entry[0].response.location).toMatch(/^Patient\//);
    expect(minimal.body.entry[1].resource.id).toBe(existing.id);
    const outcome = await http(t.base, '', { method: 'POST', json: bundle, headers: { prefer: 'return=OperationOutcome' } });
    expect(outcome.body.entry[0].resource).toBeUndefined();
    expect(outcome.body.entry[0].response.outcome.resourceType).toBe('OperationOutcome');
    expect(outcome.body.entry[1].resource.id).toBe(existing.id);
  });

  it('commits a 1000-entry transaction whose entries reference each other', async () => {
    const marker = unique('bulk');
    const entries: unknown[] = [];
    for (let i = 0; i < 500; i++) {
      const pat = uuid();
      entries.push(post('Observation', observation(pat, { identifier: identifier(`${marker}-${i}`, `${SYS}:${marker}`) })));
      entries.push(post('Patient', { identifier: identifier(`${marker}-${i}`, `${SYS}:${marker}`) }, pat));
    }
    const response = await commit(entries);
    for (const e of response.entry) expect(e.response.status).toMatch(/^201/);
    expect(await count('Patient', [['identifier', `${SYS}:${marker}|`]])).toBe(500);
    expect(await count('Observation', [['identifier', `${SYS}:${marker}|`]])).toBe(500);

    // every Observation points at the Patient created with it
    const patientOf = new Map<string, string>();
    for (let i = 0; i < 500; i++) patientOf.set(located(response.entry[2 * i], 'Observation').id, located(response.entry[2 * i + 1], 'Patient').id);
    const observations = await http(t.base, `Observation?${qs([['identifier', `${SYS}:${marker}|`], ['_count', '500']])}`);
    expect(observations.status).toBe(200);
    const found = observations.body.entry.filter((e: any) => e.search?.mode === 'match').map((e: any) => e.resource);
    expect(found).toHaveLength(500);
    for (const obs of found) expect(obs.subject.reference).toBe(`Patient/${patientOf.get(obs.id)}`);
    // and the index followed the rewritten references
    const [someObs, somePatient] = [...patientOf.entries()][321];
    const bySubject: any = await t.client.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${somePatient}` } });
    expect(bySubject.entry.map((e: any) => e.resource.id)).toEqual([someObs]);
  });
});

describe('batch', () => {
  it('refuses an entry that refers to another entry of the batch, and processes the others', async () => {
    const marker = unique('batch-dep');
    const pat = uuid();
    const res = await submit(batch([post('Patient', { identifier: identifier(marker) }, pat), post('Observation', observation(pat, { identifier: identifier(marker) }))]));
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toMatch(/^201/);
    expect(res.body.entry[1].response.status).toBe('400');
    expect(JSON.stringify(res.body.entry[1].response.outcome)).toMatch(/cannot depend on each other/);
    expect(await count('Observation', [['identifier', `${SYS}|${marker}`]])).toBe(0);
  });

  it('processes entries independently: failures are reported in their entry only', async () => {
    const marker = unique('batch');
    const existing = await create({ resourceType: 'Patient', name: [{ family: 'Batch' }] });
    const missing = unique('missing');
    const res = await submit(
      batch([
        post('Patient', { identifier: identifier(marker) }),
        { request: { method: 'GET', url: `Patient/${missing}` } },
        { request: { method: 'GET', url: `Patient/${existing.id}` } },
        { resource: { resourceType: 'Patient', id: 'xyz' }, request: { method: 'PUT', url: 'Patient/abc' } },
        post('Observation', observation(`Patient/${existing.id}`, { identifier: identifier(marker) })),
      ]),
    );
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('Bundle');
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry).toHaveLength(5);
    const [created, notFound, read, refused, observed] = res.body.entry;
    expect(created.response.status).toMatch(/^201/);
    expect(notFound.response.status).toMatch(/^404/);
    expect(notFound.response.outcome.resourceType).toBe('OperationOutcome');
    expect(notFound.response.outcome.issue[0].severity).toBe('error');
    expect(read.response.status).toMatch(/^200/);
    expect(read.resource.id).toBe(existing.id);
    expect(refused.response.status).toMatch(/^400/);
    expect(refused.response.outcome.resourceType).toBe('OperationOutcome');
    expect(observed.response.status).toMatch(/^201/);

    expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(1);
    expect(await count('Observation', [['identifier', `${SYS}|${marker}`]])).toBe(1);
    expect((await http(t.base, 'Patient/abc')).status).toBe(404);
  });
});

describe('bad bundles are refused with 400 and write nothing', () => {
  it.each([
    ['a resource that is not a Bundle', (marker: string) => ({ resourceType: 'Patient', identifier: identifier(marker) })],
    ['a Bundle of type collection', (marker: string) => ({ resourceType: 'Bundle', type: 'collection', entry: [post('Patient', { identifier: identifier(marker) })] })],
    ['a Bundle without type', (marker: string) => ({ resourceType: 'Bundle', entry: [post('Patient', { identifier: identifier(marker) })] })],
    ['an entry without request', (marker: string) => transaction([post('Patient', { identifier: identifier(marker) }), { resource: { resourceType: 'Patient', identifier: identifier(marker) } }])],
    ['an entry with an unknown method', (marker: string) => transaction([post('Patient', { identifier: identifier(marker) }), { request: { method: 'FETCH', url: 'Patient' } }])],
  ])('%s', async (_name, make) => {
    const marker = unique('bad');
    const res = await submit(make(marker));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].severity).toBe('error');
    expect(await count('Patient', [['identifier', `${SYS}|${marker}`]])).toBe(0);
  });

  it('a body that is not JSON', async () => {
    const res = await http(t.base, '', { method: 'POST', body: '{"resourceType": "Bundle",', headers: { 'content-type': 'application/fhir+json' } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
