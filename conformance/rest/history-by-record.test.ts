import crypto from 'node:crypto';
import { startTarget, Target } from '../harness';
import { consent, ircp, Json, practitionerWithRole, ref, requests } from '../accessFixtures';

/**
 * The type and system history of a caller limited to records walks each of their records and
 * the directory, then merges the pages (docs/decisions/018-partitioning.md, amendment of
 * 2026-12-07). What it returns must be what the single walk returned: every version the
 * caller may see, newest first, each once, across pages in both directions, and nothing of
 * a record closed to them.
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const RUN = crypto.randomBytes(4).toString('hex');
const { create, get, send, mint } = requests(() => t);
const x: Json = {};
const tok: Record<string, string> = {};
let since = '';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Version = { key: string; lastUpdated: string };
const versionsOf = (bundle: Json): Version[] =>
  ((bundle.entry ?? []) as Json[]).map((e) => ({
    key: e.resource ? `${e.resource.resourceType}/${e.resource.id}/${e.resource.meta.versionId}` : `${e.request.url}/deleted`,
    lastUpdated: e.resource?.meta?.lastUpdated ?? e.response?.lastModified,
  }));
const link = (bundle: Json, relation: string): string | undefined => bundle.link?.find((l: Json) => l.relation === relation)?.url;

/** Every page from `path`, following `next`; then back from the last following `previous`. */
async function walk(path: string, token: string): Promise<{ forward: Version[]; backward: Version[] }> {
  const pages: Json[] = [];
  let res = await get(path, token);
  expect(res.status).toBe(200);
  pages.push(res.body);
  while (link(res.body, 'next')) {
    res = await get(link(res.body, 'next')!.slice(t.base.length + 1), token);
    expect(res.status).toBe(200);
    pages.push(res.body);
  }
  const backward: Version[] = [];
  let back = pages[pages.length - 1];
  for (;;) {
    backward.unshift(...versionsOf(back));
    const previous = link(back, 'previous');
    if (!previous) break;
    const r = await get(previous.slice(t.base.length + 1), token);
    expect(r.status).toBe(200);
    back = r.body;
  }
  return { forward: pages.flatMap(versionsOf), backward };
}

beforeAll(async () => {
  tok.admin = await mint(undefined, 'admin');
  const admin = (r: Json) => create(r, tok.admin);
  x.gp = await practitionerWithRole(admin, `Historien-${RUN}`, '10');
  tok.gp = await mint(ref(x.gp));
  await sleep(5);
  since = new Date().toISOString();
  await sleep(5);
  for (const name of ['A', 'B', 'C']) x[name] = await admin({ resourceType: 'Patient', name: [{ family: `${name}-${RUN}` }] });
  // A and B are open to the professional, C is not
  for (const name of ['A', 'B']) x[`consent${name}`] = await create(consent(x[name], ref(x.gp), { type: 'permit', actor: [ircp(ref(x.gp))] }), tok.gp);
  tok.C = await mint(ref(x.C), 'patient/*.cruds');
  // interleaved writes in the three records and the directory, some updated, one deleted
  const observation = (p: Json, text: string) => ({ resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: ref(p) } });
  for (let i = 0; i < 3; i++) {
    x[`obsA${i}`] = await create(observation(x.A, `a${i}`), tok.gp);
    x[`obsC${i}`] = await create(observation(x.C, `c${i}`), tok.C);
    x[`obsB${i}`] = await create(observation(x.B, `b${i}`), tok.gp);
    x[`org${i}`] = await admin({ resourceType: 'Organization', name: `Org-${i}-${RUN}` });
  }
  expect((await send('PUT', `Observation/${x.obsA0.id}`, tok.gp, { ...x.obsA0, status: 'amended' })).status).toBe(200);
  expect((await send('PUT', `Observation/${x.obsC0.id}`, tok.C, { ...x.obsC0, status: 'amended' })).status).toBe(200);
  expect((await send('DELETE', `Observation/${x.obsB1.id}`, tok.gp)).status).toBeLessThan(300);
  // one transaction writing in both records (versions of one instant are cut by pages in historyQueries.test.ts)
  const entries = [x.A, x.B, x.A, x.B, x.A].map((p, i) => ({ request: { method: 'POST', url: 'Observation' }, resource: observation(p, `t${i}`) }));
  const tx = await send('POST', '', tok.gp, { resourceType: 'Bundle', type: 'transaction', entry: entries });
  expect(tx.status).toBe(200);
  x.sameInstant = tx.body.entry.map((e: Json) => e.response.location.split('/')[1]);
  // moved from A to B: its first version stays in A's partition
  expect((await send('PUT', `Observation/${x.obsA2.id}`, tok.gp, { ...x.obsA2, subject: { reference: ref(x.B) } })).status).toBe(200);
});

const isNewestFirst = (versions: Version[]) => versions.every((v, i) => i === 0 || versions[i - 1].lastUpdated >= v.lastUpdated);

describe("a professional's history across their records and the directory", () => {
  it('system history: every version of the open records and of the directory, newest first, each once, the same in pages of 2 both ways as in one page', async () => {
    const one = await walk(`_history?_since=${encodeURIComponent(since)}&_count=100`, tok.gp);
    const paged = await walk(`_history?_since=${encodeURIComponent(since)}&_count=2`, tok.gp);
    const keys = one.forward.map((v) => v.key);
    expect(new Set(keys).size).toBe(keys.length);
    expect(isNewestFirst(one.forward)).toBe(true);
    expect(paged.forward.map((v) => v.key)).toEqual(keys);
    expect(paged.backward.map((v) => v.key)).toEqual(keys);
    for (const name of ['obsA0', 'obsA1', 'obsB0', 'obsB2', 'org0', 'org1', 'org2', 'A', 'B', 'consentA', 'consentB']) {
      expect([name, keys.includes(`${x[name].resourceType}/${x[name].id}/1`)]).toEqual([name, true]);
    }
    expect(keys).toContain(`Observation/${x.obsA0.id}/2`);
    for (const id of x.sameInstant) expect(keys).toContain(`Observation/${id}/1`);
    // versions a moved resource left in the record it left are shown only to a caller who reads every record (decision 018)
    expect(keys.filter((k) => k.includes(x.obsA2.id))).toEqual([`Observation/${x.obsA2.id}/2`]);
    // a deletion is a version, after the one it deleted
    expect(keys.filter((k) => k.includes(x.obsB1.id))).toEqual([`Observation/${x.obsB1.id}/deleted`, `Observation/${x.obsB1.id}/1`]);
    // nothing of the record closed to them
    for (const name of ['C', 'obsC0', 'obsC1', 'obsC2']) expect(keys.filter((k) => k.includes(x[name].id))).toEqual([]);
    // counted as they are listed (`_count=0`: the total alone)
    const counted = await get(`_history?_since=${encodeURIComponent(since)}&_count=0`, tok.gp);
    expect([counted.status, counted.body.total, counted.body.entry]).toEqual([200, keys.length, undefined]);
  });

  it('type history: the Observations of the open records alone, in the same order as the system history gives them', async () => {
    const system = (await walk(`_history?_since=${encodeURIComponent(since)}&_count=100`, tok.gp)).forward.filter((v) => v.key.startsWith('Observation/'));
    const typed = await walk(`Observation/_history?_since=${encodeURIComponent(since)}&_count=3`, tok.gp);
    expect(typed.forward.map((v) => v.key)).toEqual(system.map((v) => v.key));
    expect(typed.backward.map((v) => v.key)).toEqual(system.map((v) => v.key));
    expect(typed.forward.length).toBeGreaterThanOrEqual(6);
    // a type the caller reads only in the directory, and one they read nowhere there
    const orgs = (await walk(`Organization/_history?_since=${encodeURIComponent(since)}&_count=2`, tok.gp)).forward.map((v) => v.key);
    expect(orgs.sort()).toEqual([0, 1, 2].map((i) => `Organization/${x[`org${i}`].id}/1`).sort());
  });

  it("the patient's own history: their record and the directory, not the others'", async () => {
    const keys = (await walk(`_history?_since=${encodeURIComponent(since)}&_count=3`, tok.C)).forward.map((v) => v.key);
    expect(keys).toContain(`Observation/${x.obsC0.id}/2`);
    expect(keys).toContain(`Organization/${x.org0.id}/1`);
    for (const name of ['A', 'B', 'obsA0', 'obsB0', 'consentA']) expect(keys.filter((k) => k.includes(x[name].id))).toEqual([]);
  });

});
