import crypto from 'node:crypto';
import knexFactory from 'knex';
import { http, startTarget, Target } from '../harness';

/**
 * Requests built to make the server work for long (docs/decisions/005-request-limits.md):
 * each is refused before any SQL runs, with a 4xx OperationOutcome that names the limit,
 * writes nothing, and leaves the server answering others at once. The same suite runs on
 * the embedded database and on PostgreSQL (DATABASE_URL).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const SYS = 'urn:test:hostile';
const unique = (prefix: string) => `${prefix}-${crypto.randomBytes(4).toString('hex')}`;
const qs = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();
/**
 * "Promptly", generous for a loaded 2-core host: the hostile requests took 7 to 89 s
 * before their limits, a refusal takes milliseconds.
 */
const PROMPT_MS = 3000;

/** A 4xx OperationOutcome naming `limit`, answered quickly. */
async function refused(send: () => Promise<{ status: number; body: any; text: string }>, status: number, limit: string | RegExp): Promise<void> {
  const started = Date.now();
  const res = await send();
  const ms = Date.now() - started;
  expect({ status: res.status, text: res.text }).toMatchObject({ status });
  expect(res.body?.resourceType).toBe('OperationOutcome');
  expect(res.body.issue[0].diagnostics).toMatch(limit);
  expect(ms).toBeLessThan(PROMPT_MS);
}

/** A plain read answers promptly: nothing hostile is still holding the database. */
async function stillAnswering(): Promise<void> {
  const started = Date.now();
  const res = await http(t.base, 'metadata?_summary=true');
  expect(res.status).toBe(200);
  const read = await http(t.base, `Patient?identifier=${SYS}|none&_summary=count`);
  expect(read.status).toBe(200);
  expect(Date.now() - started).toBeLessThan(PROMPT_MS);
}

async function countWith(value: string): Promise<number> {
  const res = await http(t.base, `Patient?identifier=${encodeURIComponent(`${SYS}|${value}`)}&_summary=count`);
  expect(res.status).toBe(200);
  return res.body.total;
}

const patient = (value: string) => ({ resourceType: 'Patient', identifier: [{ system: SYS, value }], name: [{ family: 'Hostile' }] });

/** 250 parameters in 2.9 KB: the planning time of the SQL grows faster than its parameter count. */
const manyParameters = (n: number): [string, string][] => Array.from({ length: n }, (_, i) => ['name', `x${i}`]);

describe('search parameters per query (SEARCH_MAX_PARAMETERS, SEARCH_MAX_VALUES)', () => {
  it('refuses a GET with 250 search parameters, and ten of them at once leave reads answering', async () => {
    const path = `Patient?${qs(manyParameters(250))}`;
    expect(path.length).toBeLessThan(3000);
    await refused(() => http(t.base, path), 400, /250 parameters.*at most 30.*SEARCH_MAX_PARAMETERS/);
    const hostile = Array.from({ length: 10 }, () => http(t.base, path));
    await stillAnswering();
    for (const res of await Promise.all(hostile)) expect(res.status).toBe(400);
  });

  it('accepts as many parameters as the limit, and a next-page link that adds _page to them', async () => {
    const family = unique('Page');
    for (let i = 0; i < 2; i++) expect((await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family }] } })).status).toBe(201);
    const first = await http(t.base, `Patient?${qs([...Array.from({ length: 29 }, (): [string, string] => ['family', family]), ['_count', '1']])}`);
    expect(first.status).toBe(200);
    expect(first.body.entry).toHaveLength(1);
    const next = first.body.link.find((l: { relation: string }) => l.relation === 'next').url as string;
    const second = await http(t.base, `Patient${new URL(next).search}`);
    expect(second.status).toBe(200);
    expect(second.body.entry).toHaveLength(1);
  });

  it('counts the parameters of a POST _search form with those of its URL', async () => {
    const form = (pairs: [string, string][]) => ({ method: 'POST', body: qs(pairs), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    await refused(() => http(t.base, 'Patient/_search', form(manyParameters(250))), 400, /SEARCH_MAX_PARAMETERS/);
    await refused(() => http(t.base, `Patient/_search?${qs(manyParameters(20))}`, form(manyParameters(20))), 400, /40 parameters.*SEARCH_MAX_PARAMETERS/);
  });

  it('counts each value of an OR list', async () => {
    const values = Array.from({ length: 5000 }, (_, i) => `v${i}`).join(',');
    await refused(
      () => http(t.base, 'Patient/_search', { method: 'POST', body: qs([['identifier', values]]), headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
      400,
      /5000 values.*at most 1000.*SEARCH_MAX_VALUES/,
    );
    await stillAnswering();
  });

  it('applies to conditional criteria: nothing is written', async () => {
    const value = unique('cond');
    const criteria = qs([['identifier', `${SYS}|${value}`], ...manyParameters(250)]);
    await refused(() => http(t.base, 'Patient', { method: 'POST', json: patient(value), headers: { 'if-none-exist': criteria } }), 400, /SEARCH_MAX_PARAMETERS/);
    await refused(() => http(t.base, `Patient?${criteria}`, { method: 'PUT', json: patient(value) }), 400, /SEARCH_MAX_PARAMETERS/);
    expect(await countWith(value)).toBe(0);
  });
});

describe('chains and _has (SEARCH_MAX_CHAIN_DEPTH, SEARCH_MAX_HAS_DEPTH, SEARCH_MAX_CHAIN_TARGETS)', () => {
  it('refuses chains deeper than the limit, up to the 150 links that made a 500', async () => {
    const ok = await http(t.base, 'Observation?subject:Patient.organization.partof.name=x');
    expect(ok.status).toBe(200);
    await refused(() => http(t.base, 'Observation?subject:Patient.organization.partof.partof.name=x'), 400, /deeper than 3 links.*SEARCH_MAX_CHAIN_DEPTH/);
    await refused(() => http(t.base, `Organization?${Array(150).fill('partof').join('.')}.name=x`), 400, /SEARCH_MAX_CHAIN_DEPTH/);
    await stillAnswering();
  });

  it('refuses _has nested deeper than the limit, up to 200 levels', async () => {
    const has = (levels: number) => `${'_has:Patient:link:'.repeat(levels)}name`;
    expect((await http(t.base, `Patient?${has(2)}=x`)).status).toBe(200);
    await refused(() => http(t.base, `Patient?${has(3)}=x`), 400, /deeper than 2 levels.*SEARCH_MAX_HAS_DEPTH/);
    await refused(() => http(t.base, `Patient?${has(200)}=x`), 400, /SEARCH_MAX_HAS_DEPTH/);
    await stillAnswering();
  });

  it('refuses a short chain on a parameter that targets every type: its sub-queries multiply at each link', async () => {
    // Basic.subject may point at any type: three links expand into 156 sub-queries from 35 characters
    const path = 'Basic?subject.subject.subject._id=x';
    await refused(() => http(t.base, path), 400, /more than 100 sub-queries.*SEARCH_MAX_CHAIN_TARGETS/);
    const named = await http(t.base, 'Basic?subject:Patient.link:Patient.name=x');
    expect(named.status).toBe(200);
    await stillAnswering();
  });
});

describe('_elements (ELEMENTS_MAX_NAMES)', () => {
  const names = Array.from({ length: 5000 }, (_, i) => `e${i}`).join(',');

  it('refuses more names than the limit on a search and on a read', async () => {
    await refused(() => http(t.base, `Patient?_elements=${names.slice(0, 7000)}`), 400, /_elements has \d+ names; at most 100.*ELEMENTS_MAX_NAMES/);
    const created = await http(t.base, 'Patient', { method: 'POST', json: patient(unique('el')) });
    expect(created.status).toBe(201);
    await refused(() => http(t.base, `Patient/${created.body.id}?_elements=${names.slice(0, 7000)}`), 400, /ELEMENTS_MAX_NAMES/);
    const fine = await http(t.base, `Patient/${created.body.id}?_elements=name,identifier`);
    expect(fine.status).toBe(200);
    expect(fine.body.name).toBeDefined();
  });
});

describe('URL length (MAX_URL_LENGTH)', () => {
  it('answers 414 to a URL longer than the limit, before parsing it', async () => {
    await refused(() => http(t.base, `Patient?name=${'a'.repeat(9000)}`), 414, /at most 8192.*MAX_URL_LENGTH/);
    await stillAnswering();
  });
});

describe('Bundle entries (BUNDLE_MAX_ENTRIES)', () => {
  const bundle = (type: string, value: string, n: number) => ({
    resourceType: 'Bundle',
    type,
    entry: Array.from({ length: n }, () => ({ resource: patient(value), request: { method: 'POST', url: 'Patient' } })),
  });

  it.each(['transaction', 'batch'])('refuses a %s of more entries than the limit, and writes nothing', async (type) => {
    const value = unique(type);
    const body = JSON.stringify(bundle(type, value, 5000));
    await refused(() => http(t.base, '', { method: 'POST', body, headers: { 'content-type': 'application/fhir+json' } }), 413, /5000 entries; at most \d+.*BUNDLE_MAX_ENTRIES/);
    expect(await countWith(value)).toBe(0);
    await stillAnswering();
  });
});

describe('statements that run too long (DB_STATEMENT_TIMEOUT_MS)', () => {
  let slow: Target;
  beforeAll(async () => {
    // the parameter limit raised so that a search is slow to plan; a timeout far below it
    slow = await startTarget({ SEARCH_MAX_PARAMETERS: '1000', DB_STATEMENT_TIMEOUT_MS: '100' });
  });
  afterAll(() => slow.close());

  it('cancels a statement past statement_timeout with a 503 saying so (PostgreSQL); the embedded database ignores it', async () => {
    const res = await http(slow.base, `Patient?${qs(manyParameters(80))}`);
    if (slow.running!.ctx.db.kind === 'postgres') {
      expect(res.status).toBe(503);
      expect(res.body.resourceType).toBe('OperationOutcome');
      expect(res.body.issue[0]).toMatchObject({ code: 'timeout' });
      expect(res.body.issue[0].diagnostics).toMatch(/took too long.*100 ms.*DB_STATEMENT_TIMEOUT_MS/);
    } else {
      // PGlite runs the statement on Node's thread to its end: the parameter limit is the defence there
      expect(res.status).toBe(200);
    }
    expect((await http(slow.base, 'metadata?_summary=true')).status).toBe(200);
  });
});

describe('a client that goes away', () => {
  let loose: Target;
  beforeAll(async () => {
    loose = await startTarget({ SEARCH_MAX_PARAMETERS: '1000', BUNDLE_MAX_ENTRIES: '100000' });
  });
  afterAll(() => loose.close());

  /** Sends the request and drops the connection after `ms`. */
  async function abandon(path: string, init: RequestInit & { json?: unknown }, ms: number): Promise<void> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), ms);
    await http(loose.base, path, { ...init, signal: controller.signal }).then(
      (res) => {
        throw new Error(`the request finished before it was abandoned: ${res.status}`);
      },
      (e: Error) => expect(e.name).toBe('AbortError'),
    );
    clearTimeout(timer);
  }

  it('takes its transaction with it: the next statement is refused, and the transaction rolls back', async () => {
    const value = unique('gone');
    // each conditional create is a statement of its own: a client gone between two is noticed at the next
    const entry = Array.from({ length: 3000 }, (_, i) => ({
      resource: patient(value),
      request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${SYS}|${value}-${i}` },
    }));
    await abandon('', { method: 'POST', json: { resourceType: 'Bundle', type: 'transaction', entry } }, 300);
    const started = Date.now();
    const res = await http(loose.base, `Patient?identifier=${SYS}|${value}&_summary=count`);
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
    expect(res.body.total).toBe(0);
  });

  it('has its running statement cancelled (PostgreSQL); the embedded database refuses the statement up front', async () => {
    const path = `Patient?${qs(manyParameters(250))}`;
    if (loose.running!.ctx.db.kind !== 'postgres') {
      // PGlite cannot stop a statement once started: only the limit keeps it from starting
      await refused(() => http(t.base, path), 400, /SEARCH_MAX_PARAMETERS/);
      return;
    }
    await abandon(path, {}, 500);
    // the pool's own connections: none is still running a statement
    const pool = (loose.running!.ctx.db.knex.client as { pool: { used: { resource: { processID: number } }[]; free: { resource: { processID: number } }[] } }).pool;
    const pids = [...pool.used, ...pool.free].map((c) => c.resource.processID);
    expect(pids.length).toBeGreaterThan(0);
    const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
    try {
      let active = pids.length;
      for (let i = 0; i < 40 && active > 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const rows = await admin.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY(?) AND state = 'active'`, [pids]);
        active = rows.rows[0].n;
      }
      expect(active).toBe(0);
    } finally {
      await admin.destroy();
    }
    const started = Date.now();
    expect((await http(loose.base, 'Patient?_summary=count')).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(PROMPT_MS);
  });
});
