import { http, startTarget, Target } from '../harness';

/**
 * history (http://hl7.org/fhir/R4/http.html#history): instance, type and system level,
 * _since, _at, _count and paging links.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const qs = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();
const link = (bundle: any, relation: string): string | undefined => bundle.link?.find((l: any) => l.relation === relation)?.url;

async function create(resource: Record<string, unknown>): Promise<any> {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
  return res.body;
}

async function put(resource: Record<string, any>): Promise<any> {
  const res = await http(t.base, `${resource.resourceType}/${resource.id}`, { method: 'PUT', json: resource });
  if (res.status !== 200 && res.status !== 201) throw new Error(`update answered ${res.status}: ${res.text}`);
  return res.body;
}

async function history(path: string, pairs: [string, string][] = []): Promise<any> {
  const res = await http(t.base, pairs.length ? `${path}?${qs(pairs)}` : path);
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${res.text}`);
  expect(res.body.resourceType).toBe('Bundle');
  expect(res.body.type).toBe('history');
  return res.body;
}

async function follow(url: string): Promise<{ status: number; body: any }> {
  expect(url.startsWith(`${t.base}/`)).toBe(true);
  return http(t.base, url.slice(t.base.length + 1));
}

/** The version number of a history entry, from its response ETag. */
function versionOf(entry: any): number {
  const m = /^W\/"(\d+)"$/.exec(entry.response?.etag ?? '');
  if (!m) throw new Error(`history entry without a version ETag: ${JSON.stringify(entry)}`);
  return Number(m[1]);
}

/** Type/id/_history/n of a history entry. */
function keyOf(entry: any): string {
  expect(entry.fullUrl.startsWith(`${t.base}/`)).toBe(true);
  return `${entry.fullUrl.slice(t.base.length + 1)}/_history/${versionOf(entry)}`;
}
const keys = (bundle: any): string[] => (bundle.entry ?? []).map(keyOf);
const versions = (bundle: any): number[] => (bundle.entry ?? []).map(versionOf);

/** Every page reached by following next links (fhir-kit-client), after first. */
async function allPages(first: any, between: (page: number) => Promise<void> = async () => undefined): Promise<any[]> {
  const pages = [first];
  for (let bundle = first; link(bundle, 'next'); ) {
    if (pages.length > 100) throw new Error('too many pages');
    await between(pages.length);
    bundle = await t.client.nextPage({ bundle });
    expect(bundle.type).toBe('history');
    pages.push(bundle);
  }
  return pages;
}

function expectNewestFirst(bundle: any): void {
  const times = (bundle.entry ?? []).map((e: any) => Date.parse(e.response.lastModified));
  for (const time of times) expect(Number.isNaN(time)).toBe(false);
  for (let i = 1; i < times.length; i++) expect(times[i]).toBeLessThanOrEqual(times[i - 1]);
}

describe('instance history', () => {
  it('lists every version newest first, with request and response, a deletion as DELETE without resource', async () => {
    const v1: any = await t.client.create({ resourceType: 'Patient', body: { resourceType: 'Patient', name: [{ family: 'V1' }] } });
    const id = v1.id;
    const v2 = await put({ resourceType: 'Patient', id, name: [{ family: 'V2' }] });
    const v3 = await put({ resourceType: 'Patient', id, name: [{ family: 'V3' }] });
    const deleted = await http(t.base, `Patient/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(200);

    const bundle: any = await t.client.history({ resourceType: 'Patient', id });
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('history');
    expect(bundle.entry).toHaveLength(4);
    expect(versions(bundle)).toEqual([4, 3, 2, 1]);
    for (const e of bundle.entry) expect(e.fullUrl).toBe(`${t.base}/Patient/${id}`);
    expectNewestFirst(bundle);

    const [del, e3, e2, e1] = bundle.entry;
    expect(del.request).toEqual({ method: 'DELETE', url: `Patient/${id}` });
    expect(del.resource).toBeUndefined();
    expect(del.response.status).toMatch(/^20[04]/);
    expect(del.response.etag).toBe('W/"4"');

    for (const [entry, version] of [[e3, v3], [e2, v2]] as [any, any][]) {
      expect(entry.request).toEqual({ method: 'PUT', url: `Patient/${id}` });
      expect(entry.response.status).toMatch(/^200/);
      expect(entry.resource).toEqual(version);
      expect(entry.response.etag).toBe(`W/"${version.meta.versionId}"`);
      expect(Date.parse(entry.response.lastModified)).toBe(Date.parse(version.meta.lastUpdated));
    }
    expect(e1.request.method).toBe('POST');
    expect(e1.request.url).toBe('Patient');
    expect(e1.response.status).toMatch(/^201/);
    expect(e1.response.etag).toBe('W/"1"');
    expect(e1.resource.name).toEqual([{ family: 'V1' }]);
    expect(e1.resource.meta.versionId).toBe('1');

    // brought back by an update: a new version on top of the deletion
    await put({ resourceType: 'Patient', id, name: [{ family: 'V5' }] });
    const after = await history(`Patient/${id}/_history`);
    expect(versions(after)).toEqual([5, 4, 3, 2, 1]);
    expect(after.entry[0].request.method).toBe('PUT');
    expect(after.entry[0].resource.name).toEqual([{ family: 'V5' }]);
  });

  it('shows PUT for a resource created by update-as-create', async () => {
    const id = `hist-put-${Date.now()}`;
    const created = await http(t.base, `Patient/${id}`, { method: 'PUT', json: { resourceType: 'Patient', id } });
    expect(created.status).toBe(201);
    const bundle = await history(`Patient/${id}/_history`);
    expect(bundle.entry).toHaveLength(1);
    expect(bundle.entry[0].request).toEqual({ method: 'PUT', url: `Patient/${id}` });
    expect(bundle.entry[0].response.status).toMatch(/^201/);
  });

  it('answers 404 for an unknown id or type', async () => {
    const missing = await http(t.base, 'Patient/never-existed/_history');
    expect(missing.status).toBe(404);
    expect(missing.body.resourceType).toBe('OperationOutcome');
    expect(missing.body.issue[0].severity).toBe('error');
    const unknownType = await http(t.base, 'Spaceship/_history');
    expect(unknownType.status).toBe(404);
    expect(unknownType.body.resourceType).toBe('OperationOutcome');
  });
});

describe('type and system history', () => {
  it('type history holds versions of that type only; system history holds versions of every type', async () => {
    await sleep(2);
    const start = new Date().toISOString();
    await sleep(2);
    // a few milliseconds between writes: the expected order below is by lastUpdated alone
    const patient = await create({ resourceType: 'Patient', name: [{ family: 'Typed' }] });
    await sleep(3);
    await put({ ...patient, name: [{ family: 'Typed again' }] });
    await sleep(3);
    const observation = await create({ resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${patient.id}` } });
    await sleep(3);
    const practitioner = await create({ resourceType: 'Practitioner', name: [{ family: 'Doc' }] });
    await sleep(3);
    expect((await http(t.base, `Practitioner/${practitioner.id}`, { method: 'DELETE' })).status).toBe(200);

    const patients: any = await t.client.history({ resourceType: 'Patient' });
    expect(patients.type).toBe('history');
    for (const e of patients.entry) expect(e.fullUrl.startsWith(`${t.base}/Patient/`)).toBe(true);
    expect(keys(patients)).toEqual(expect.arrayContaining([`Patient/${patient.id}/_history/2`, `Patient/${patient.id}/_history/1`]));
    expectNewestFirst(patients);

    const recentPatients = await history('Patient/_history', [['_since', start]]);
    expect(keys(recentPatients)).toEqual([`Patient/${patient.id}/_history/2`, `Patient/${patient.id}/_history/1`]);
    const recentObservations = await history('Observation/_history', [['_since', start]]);
    expect(keys(recentObservations)).toEqual([`Observation/${observation.id}/_history/1`]);

    const all: any = await t.client.history();
    expect(all.type).toBe('history');
    const types = new Set(all.entry.map((e: any) => e.fullUrl.slice(t.base.length + 1).split('/')[0]));
    expect([...types]).toEqual(expect.arrayContaining(['Patient', 'Observation', 'Practitioner']));

    const recent = await history('_history', [['_since', start]]);
    expect(keys(recent)).toEqual([
      `Practitioner/${practitioner.id}/_history/2`,
      `Practitioner/${practitioner.id}/_history/1`,
      `Observation/${observation.id}/_history/1`,
      `Patient/${patient.id}/_history/2`,
      `Patient/${patient.id}/_history/1`,
    ]);
    expect(recent.entry[0].request.method).toBe('DELETE');
    expect(recent.entry[0].resource).toBeUndefined();
    expectNewestFirst(recent);
  });
});

describe('_since and _at', () => {
  let id: string;
  const v: any[] = [];
  beforeAll(async () => {
    v.push(await create({ resourceType: 'Patient', name: [{ family: 'T1' }] }));
    id = v[0].id;
    for (const family of ['T2', 'T3']) {
      await sleep(15);
      v.push(await put({ resourceType: 'Patient', id, name: [{ family }] }));
    }
    await sleep(5);
  });
  const plus = (instant: string, ms: number) => new Date(Date.parse(instant) + ms).toISOString();

  it('_since keeps only the versions created at or after the instant', async () => {
    expect(versions(await history(`Patient/${id}/_history`, [['_since', v[1].meta.lastUpdated]]))).toEqual([3, 2]);
    expect(versions(await history(`Patient/${id}/_history`, [['_since', plus(v[1].meta.lastUpdated, 1)]]))).toEqual([3]);
    expect(versions(await history(`Patient/${id}/_history`, [['_since', plus(v[0].meta.lastUpdated, -1000)]]))).toEqual([3, 2, 1]);
    expect(versions(await history(`Patient/${id}/_history`, [['_since', plus(v[2].meta.lastUpdated, 1)]]))).toEqual([]);
    const system = await history('_history', [['_since', v[1].meta.lastUpdated]]);
    expect(keys(system)).toEqual(expect.arrayContaining([`Patient/${id}/_history/3`, `Patient/${id}/_history/2`]));
    expect(keys(system)).not.toContain(`Patient/${id}/_history/1`);
    for (const e of system.entry) expect(Date.parse(e.response.lastModified)).toBeGreaterThanOrEqual(Date.parse(v[1].meta.lastUpdated));
  });

  it('_at keeps the versions current at that instant, or during that period', async () => {
    const at = async (value: string) => versions(await history(`Patient/${id}/_history`, [['_at', value]]));
    expect(await at(v[0].meta.lastUpdated)).toEqual([1]);
    expect(await at(plus(v[0].meta.lastUpdated, 3))).toEqual([1]);
    expect(await at(plus(v[1].meta.lastUpdated, 3))).toEqual([2]);
    expect(await at(plus(v[2].meta.lastUpdated, 3))).toEqual([3]);
    expect(await at(new Date().toISOString())).toEqual([3]);
    expect(await at(plus(v[0].meta.lastUpdated, -86400000))).toEqual([]);
    // a whole year: every version was current at some point in it
    expect(await at(v[0].meta.lastUpdated.slice(0, 4))).toEqual([3, 2, 1]);
  });

  it('refuses a malformed _since or _at', async () => {
    for (const [name, value] of [['_since', 'yesterday'], ['_at', '2020-13-01']]) {
      const res = await http(t.base, `Patient/${id}/_history?${qs([[name, value]])}`);
      expect(res.status).toBe(400);
      expect(res.body.resourceType).toBe('OperationOutcome');
    }
  });
});

describe('_count and paging', () => {
  let id: string;
  beforeAll(async () => {
    const created = await create({ resourceType: 'Patient', name: [{ family: 'P1' }] });
    id = created.id;
    for (let i = 2; i <= 11; i++) await put({ resourceType: 'Patient', id, name: [{ family: `P${i}` }] });
  });

  it('next links visit every version exactly once, in order', async () => {
    const first = await history(`Patient/${id}/_history`, [['_count', '3']]);
    expect(link(first, 'previous')).toBeUndefined();
    const pages = await allPages(first);
    expect(pages.map((page) => versions(page))).toEqual([[11, 10, 9], [8, 7, 6], [5, 4, 3], [2, 1]]);
    expect(link(pages[pages.length - 1], 'next')).toBeUndefined();
    for (const page of pages.slice(1)) {
      // paging links keep the parameters of the query
      expect(new URL(link(page, 'self')!).searchParams.get('_count')).toBe('3');
    }
  });

  it('the previous link of page 2 returns page 1', async () => {
    const first = await history(`Patient/${id}/_history`, [['_count', '4']]);
    const second: any = await t.client.nextPage({ bundle: first });
    expect(versions(second)).toEqual([7, 6, 5, 4]);
    expect(link(second, 'previous')).toBeDefined();
    const back: any = await t.client.prevPage({ bundle: second });
    expect(versions(back)).toEqual([11, 10, 9, 8]);
    expect(keys(back)).toEqual(keys(first));
  });

  it('paging is stable while new versions are written (keyset)', async () => {
    const basics: any[] = [];
    for (let i = 0; i < 6; i++) {
      const b = await create({ resourceType: 'Basic', code: { text: `b${i}` } });
      basics.push(await put({ ...b, code: { text: `b${i}-2` } }));
    }
    const snapshot = keys(await history('Basic/_history', [['_count', '100']]));
    expect(snapshot).toHaveLength(12);

    const first = await history('Basic/_history', [['_count', '5']]);
    const pages = await allPages(first, async (page) => {
      // between pages: new versions of resources seen on every page, and a new resource
      await put({ ...basics[page], code: { text: `changed while paging ${page}` } });
      await create({ resourceType: 'Basic', code: { text: `new while paging ${page}` } });
    });
    for (const page of pages) expect(page.entry.length).toBeLessThanOrEqual(5);
    expect(pages.flatMap((page) => keys(page))).toEqual(snapshot);
  });

  it('pages through system history with _since the same versions as one page', async () => {
    const since = (await history(`Patient/${id}/_history`)).entry.at(-1).response.lastModified;
    const whole = await history('_history', [['_since', since], ['_count', '1000']]);
    const first = await history('_history', [['_since', since], ['_count', '2']]);
    const pages = await allPages(first);
    expect(new URL(link(first, 'next')!).searchParams.get('_since')).toBe(since);
    const paged = pages.flatMap((page) => keys(page));
    expect(paged).toEqual(keys(whole));
    expect(new Set(paged).size).toBe(paged.length);
  });

  it('refuses a tampered page token, or a token used for another query, with 400', async () => {
    const first = await history(`Patient/${id}/_history`, [['_count', '3']]);
    const next = new URL(link(first, 'next')!);
    const token = next.searchParams.get('_page')!;
    expect(token).toBeTruthy();
    next.searchParams.set('_page', (token[0] === 'A' ? 'B' : 'A') + token.slice(1));
    const tampered = await follow(next.toString());
    expect(tampered.status).toBe(400);
    expect(tampered.body.resourceType).toBe('OperationOutcome');

    const other = await create({ resourceType: 'Patient' });
    const elsewhere = await http(t.base, `Patient/${other.id}/_history?${qs([['_count', '3'], ['_page', token]])}`);
    expect(elsewhere.status).toBe(400);
    const otherCount = await http(t.base, `Patient/${id}/_history?${qs([['_count', '5'], ['_page', token]])}`);
    expect(otherCount.status).toBe(400);
  });
});
