import { http, startTarget, Target } from '../../conformance/harness';
import knexFactory from 'knex';
import { planUpkeep, runPostgresUpkeep, runUpkeep, tableCounters } from './tableUpkeep';

/** docs/decisions/037-embedded-upkeep.md: autovacuum's thresholds, and a pass on a real database (with its amendment for PostgreSQL). */
describe('which tables a pass analyses and vacuums', () => {
  it.each([
    // table, rows at the last analyse (-1: never), changes since, dead rows → analyse, vacuum
    [{ table: 'fresh', rows: -1, changedSinceAnalyze: 0, deadRows: 0, autovacuumed: false }, false, false],
    [{ table: 'new', rows: -1, changedSinceAnalyze: 1, deadRows: 0, autovacuumed: false }, true, false],
    [{ table: 'small', rows: 100, changedSinceAnalyze: 60, deadRows: 0, autovacuumed: false }, false, false],
    [{ table: 'small-changed', rows: 100, changedSinceAnalyze: 61, deadRows: 0, autovacuumed: false }, true, false],
    [{ table: 'big', rows: 1_000_000, changedSinceAnalyze: 100_050, deadRows: 200_050, autovacuumed: false }, false, false],
    [{ table: 'big-changed', rows: 1_000_000, changedSinceAnalyze: 100_051, deadRows: 200_051, autovacuumed: false }, true, true],
    [{ table: 'dead-only', rows: 1000, changedSinceAnalyze: 0, deadRows: 251, autovacuumed: false }, false, true],
    // autovacuum's own tables are left to it, whatever their counters
    [{ table: 'autovacuumed', rows: -1, changedSinceAnalyze: 1_000_000, deadRows: 1_000_000, autovacuumed: true }, false, false],
  ])('%j: analyse %s, vacuum %s', (counters, analyze, vacuum) => {
    const plan = planUpkeep([counters]);
    expect([plan.analyze.includes(counters.table), plan.vacuum.includes(counters.table)]).toEqual([analyze, vacuum]);
  });
});

// Each database runs its half: the embedded database its idle pass, PostgreSQL the timer's pass for the tables
// autovacuum does not serve (set per table here, so that it runs whether the cluster's autovacuum is on or off).
// Against FHIR_BASE_URL neither runs: both read the server's own database.
const inProcess = !process.env.FHIR_BASE_URL;
const embedded = inProcess && !process.env.DATABASE_URL ? describe : describe.skip;
const onPostgres = inProcess && process.env.DATABASE_URL ? describe : describe.skip;
if (!inProcess) console.warn(`tableUpkeep.test.ts: the database tests do not run against ${process.env.FHIR_BASE_URL}: they read the server's own database`);
// said on each run, so that neither half is passed over in silence (.ci/run runs the suite on both databases)
else if (process.env.DATABASE_URL) console.warn('tableUpkeep.test.ts: the embedded idle pass does not run on PostgreSQL: run the suite without DATABASE_URL for it');
else console.warn('tableUpkeep.test.ts: the PostgreSQL half (the timer\'s pass for the tables autovacuum does not serve) runs only with DATABASE_URL');
embedded('a pass on the embedded database', () => {
  let t: Target;
  beforeAll(async () => {
    // the idle spell's pass alone: no pass among requests
    t = await startTarget({ DATABASE_UPKEEP_INTERVAL_MS: '0' });
  });
  afterAll(() => t.close());

  it('analyses the tables that changed and vacuums those with dead rows; a second pass has nothing to do', async () => {
    const knex = t.running!.ctx.db.knex;
    await runUpkeep(knex, true);
    for (let i = 0; i < 120; i++) {
      const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: `Upkeep${i}` }] } });
      expect(created.status).toBe(201);
      // each update leaves the earlier row of `resource` dead
      expect((await http(t.base, `Patient/${created.body.id}`, { method: 'PUT', json: { ...created.body, active: true } })).status).toBe(200);
    }
    const before = new Map((await tableCounters(knex, true)).map((c) => [c.table, c]));
    expect(before.get('resource')!.changedSinceAnalyze).toBeGreaterThan(200);
    expect(before.get('resource')!.deadRows).toBeGreaterThan(100);
    const done = await runUpkeep(knex, true);
    expect(done.vacuum).toContain('resource');
    expect(done.analyze).toEqual(expect.arrayContaining(['resource', 'resource_history']));
    const after = new Map((await tableCounters(knex, true)).map((c) => [c.table, c]));
    expect([after.get('resource')!.changedSinceAnalyze, after.get('resource')!.deadRows]).toEqual([0, 0]);
    expect(after.get('resource')!.rows).toBeGreaterThanOrEqual(120);
    expect(await runUpkeep(knex, true)).toEqual({ analyze: [], vacuum: [] });
  });

  it('runs when the server has been idle after requests', async () => {
    const knex = t.running!.ctx.db.knex;
    await runUpkeep(knex, true);
    for (let i = 0; i < 80; i++) expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: `Upkeep ${i}` } })).status).toBe(201);
    const changed = () => tableCounters(knex, true).then((c) => c.find((x) => x.table === 'resource')!.changedSinceAnalyze);
    expect(await changed()).toBeGreaterThan(60);
    // the idle spell is 5 s after the last request (src/idleCollection.ts)
    let now = await changed();
    for (let i = 0; i < 40 && now > 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      now = await changed();
    }
    expect(now).toBe(0);
  }, 30000);
});

embedded('the embedded database among requests that never stop', () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget({ DATABASE_UPKEEP_INTERVAL_MS: '300' });
  });
  afterAll(() => t.close());

  it('analyses the tables that changed while requests keep coming, and leaves the vacuum for an idle spell', async () => {
    const knex = t.running!.ctx.db.knex;
    await runUpkeep(knex, true);
    const resource = async () => (await tableCounters(knex, true)).find((c) => c.table === 'resource')!;
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) {
      const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: `Busy${i}` }] } });
      expect(created.status).toBe(201);
      expect((await http(t.base, `Patient/${created.body.id}`, { method: 'PUT', json: { ...created.body, active: true } })).status).toBe(200);
      ids.push(created.body.id);
    }
    // the writes (160 changes of the table), then reads, one after the other, never 5 s apart: no
    // idle spell. Analysed among the requests, the table is soon no longer due (the changes since
    // its last analysis under autovacuum's threshold), though it has more than 80 dead rows
    let counters = await resource();
    const started = Date.now();
    for (let i = 0; planUpkeep([counters]).analyze.length > 0 && Date.now() - started < 15000; i++) {
      expect((await http(t.base, `Patient/${ids[i % ids.length]}`)).status).toBe(200);
      counters = await resource();
    }
    expect(planUpkeep([counters]).analyze).toEqual([]);
    expect(counters.changedSinceAnalyze).toBeLessThan(160);
    // the earlier rows of the updated Patients are still there: not vacuumed
    expect(counters.deadRows).toBeGreaterThanOrEqual(80);
  }, 30000);
});

onPostgres('on PostgreSQL', () => {
  let t: Target;
  // resource_locator and identifier_claim are plain tables in every layout (DATABASE_PARTITIONS partitions the patient tables)
  const UNSERVED = 'resource_locator';
  const SERVED = 'identifier_claim';
  beforeAll(async () => {
    t = await startTarget({ DATABASE_UPKEEP_INTERVAL_MS: '250' });
    const knex = t.running!.ctx.db.knex;
    await knex.raw(`ALTER TABLE ${UNSERVED} SET (autovacuum_enabled = false)`);
    await knex.raw(`ALTER TABLE ${SERVED} SET (autovacuum_enabled = true)`);
  });
  afterAll(() => t.close());
  const knex = () => t.running!.ctx.db.knex;
  const lastAnalyze = async (table: string): Promise<string | null> =>
    (await knex().raw(`SELECT last_analyze::text AS at FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ?`, [table])).rows[0]?.at ?? null;
  const clusterAutovacuum = async (): Promise<boolean> =>
    (await knex().raw(`SELECT current_setting('autovacuum')::boolean AND current_setting('track_counts')::boolean AS on`)).rows[0].on;

  it('a table is autovacuum\'s when the cluster runs autovacuum and the table does not turn it off', async () => {
    const counters = new Map((await tableCounters(knex(), false)).map((c) => [c.table, c]));
    const cluster = await clusterAutovacuum();
    expect(counters.get(UNSERVED)!.autovacuumed).toBe(false);
    expect(counters.get(SERVED)!.autovacuumed).toBe(cluster);
    expect(counters.get('server_setting')!.autovacuumed).toBe(cluster);
  });

  it('the server analyses, on its timer, a table autovacuum does not serve once it has changed', async () => {
    expect(await lastAnalyze(UNSERVED)).toBeNull();
    // each create writes its id's row in the locator
    for (let i = 0; i < 60; i++) expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: `Upkeep ${i}` } })).status).toBe(201);
    let at: string | null = null;
    // the counters reach the statistics within PostgreSQL's flush interval (at most 10 s); the timer runs every 250 ms
    for (let i = 0; i < 80 && !at; i++) {
      await new Promise((r) => setTimeout(r, 250));
      at = await lastAnalyze(UNSERVED);
    }
    expect(at).not.toBeNull();
    const rows = (await knex().raw(`SELECT reltuples FROM pg_class WHERE oid = ?::regclass`, [UNSERVED])).rows[0].reltuples;
    expect(Number(rows)).toBeGreaterThanOrEqual(60);
  }, 30000);

  /** A pass of this process, once the timer's own pass (which holds the lock meanwhile) is not running. */
  const ownPass = async () => {
    for (let i = 0; i < 100; i++) {
      const plan = await runPostgresUpkeep(knex());
      if (plan) return plan;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the upkeep lock stayed taken');
  };

  it('leaves the tables autovacuum serves to it (all of them are the server\'s when the cluster runs no autovacuum)', async () => {
    await knex().raw(`CREATE TABLE upkeep_probe (n int) WITH (autovacuum_enabled = true)`);
    await knex().raw(`INSERT INTO upkeep_probe SELECT generate_series(1, 100)`);
    const cluster = await clusterAutovacuum();
    // the insert's counters reach the statistics within PostgreSQL's flush interval (at most 10 s)
    const counted = async () => (await tableCounters(knex(), false)).find((c) => c.table === 'upkeep_probe')!;
    let probe = await counted();
    for (let i = 0; i < 60 && probe.changedSinceAnalyze < 100 && (await lastAnalyze('upkeep_probe')) === null; i++) {
      await new Promise((r) => setTimeout(r, 250));
      probe = await counted();
    }
    expect(probe.autovacuumed).toBe(cluster);
    await ownPass();
    // a statement of the server sets last_analyze; autovacuum sets last_autoanalyze
    expect((await lastAnalyze('upkeep_probe')) !== null).toBe(!cluster);
  }, 30000);

  it('one pass at a time on a database: a pass that finds another running does nothing', async () => {
    // another process's pass: the same lock held on a connection of its own
    const other = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 1, max: 1 }, searchPath: [String((await knex().raw('SELECT current_schema() AS s')).rows[0].s)] });
    try {
      await other.raw(`SELECT pg_advisory_lock(hashtext('table upkeep ' || current_schema()))`);
      expect(await runPostgresUpkeep(knex())).toBeUndefined();
      await other.raw(`SELECT pg_advisory_unlock(hashtext('table upkeep ' || current_schema()))`);
      expect(await ownPass()).toEqual({ analyze: expect.any(Array), vacuum: expect.any(Array) });
    } finally {
      await other.destroy();
    }
  });

  it('gives the pass\'s connection back with the pool\'s statement_timeout', async () => {
    // every connection of the pool, held at once, after a pass ran on one of them
    await ownPass();
    const client = knex().client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<unknown> };
    const held = await Promise.all(Array.from({ length: 10 }, () => client.acquireConnection()));
    try {
      const timeouts = await Promise.all(held.map(async (c) => (await knex().raw(`SELECT current_setting('statement_timeout') AS t`).connection(c as never)).rows[0].t));
      expect(new Set(timeouts)).toEqual(new Set(['30s']));
    } finally {
      for (const c of held) await client.releaseConnection(c);
    }
  });
});
