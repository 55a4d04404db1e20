import { http, startTarget, Target } from '../../conformance/harness';
import { planUpkeep, runUpkeep, tableCounters } from './embeddedUpkeep';

/** docs/decisions/037-embedded-upkeep.md: autovacuum's thresholds, and a pass on a real database. */
describe('which tables a pass analyses and vacuums', () => {
  it.each([
    // table, rows at the last analyse (-1: never), changes since, dead rows → analyse, vacuum
    [{ table: 'fresh', rows: -1, changedSinceAnalyze: 0, deadRows: 0 }, false, false],
    [{ table: 'new', rows: -1, changedSinceAnalyze: 1, deadRows: 0 }, true, false],
    [{ table: 'small', rows: 100, changedSinceAnalyze: 60, deadRows: 0 }, false, false],
    [{ table: 'small-changed', rows: 100, changedSinceAnalyze: 61, deadRows: 0 }, true, false],
    [{ table: 'big', rows: 1_000_000, changedSinceAnalyze: 100_050, deadRows: 200_050 }, false, false],
    [{ table: 'big-changed', rows: 1_000_000, changedSinceAnalyze: 100_051, deadRows: 200_051 }, true, true],
    [{ table: 'dead-only', rows: 1000, changedSinceAnalyze: 0, deadRows: 251 }, false, true],
  ])('%j: analyse %s, vacuum %s', (counters, analyze, vacuum) => {
    const plan = planUpkeep([counters]);
    expect([plan.analyze.includes(counters.table), plan.vacuum.includes(counters.table)]).toEqual([analyze, vacuum]);
  });
});

// Each database runs its half: the embedded database the pass itself (its counters and statements, which
// PostgreSQL's own autovacuum would race on a shared server), PostgreSQL the proof that the server leaves
// the work to autovacuum there. Against FHIR_BASE_URL neither runs: both read the server's own database.
const inProcess = !process.env.FHIR_BASE_URL;
const embedded = inProcess && !process.env.DATABASE_URL ? describe : describe.skip;
const onPostgres = inProcess && process.env.DATABASE_URL ? describe : describe.skip;
if (!inProcess) console.warn(`embeddedUpkeep.test.ts: the database tests do not run against ${process.env.FHIR_BASE_URL}: they read the server's own database`);
// said on each run, so that neither half is passed over in silence (.ci/run runs the suite on both databases)
else if (process.env.DATABASE_URL) console.warn('embeddedUpkeep.test.ts: the embedded pass does not run on PostgreSQL (autovacuum does that work there): run the suite without DATABASE_URL for it');
else console.warn('embeddedUpkeep.test.ts: the PostgreSQL half (the server leaves upkeep to autovacuum) runs only with DATABASE_URL');

embedded('a pass on the embedded database', () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(() => t.close());

  it('analyses the tables that changed and vacuums those with dead rows; a second pass has nothing to do', async () => {
    const knex = t.running!.ctx.db.knex;
    await runUpkeep(knex);
    for (let i = 0; i < 120; i++) {
      const created = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: `Upkeep${i}` }] } });
      expect(created.status).toBe(201);
      // each update leaves the earlier row of `resource` dead
      expect((await http(t.base, `Patient/${created.body.id}`, { method: 'PUT', json: { ...created.body, active: true } })).status).toBe(200);
    }
    const before = new Map((await tableCounters(knex)).map((c) => [c.table, c]));
    expect(before.get('resource')!.changedSinceAnalyze).toBeGreaterThan(200);
    expect(before.get('resource')!.deadRows).toBeGreaterThan(100);
    const done = await runUpkeep(knex);
    expect(done.vacuum).toContain('resource');
    expect(done.analyze).toEqual(expect.arrayContaining(['resource', 'resource_history']));
    const after = new Map((await tableCounters(knex)).map((c) => [c.table, c]));
    expect([after.get('resource')!.changedSinceAnalyze, after.get('resource')!.deadRows]).toEqual([0, 0]);
    expect(after.get('resource')!.rows).toBeGreaterThanOrEqual(120);
    expect(await runUpkeep(knex)).toEqual({ analyze: [], vacuum: [] });
  });

  it('runs when the server has been idle after requests', async () => {
    const knex = t.running!.ctx.db.knex;
    await runUpkeep(knex);
    for (let i = 0; i < 80; i++) expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: `Upkeep ${i}` } })).status).toBe(201);
    const changed = () => tableCounters(knex).then((c) => c.find((x) => x.table === 'resource')!.changedSinceAnalyze);
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

onPostgres('on PostgreSQL', () => {
  let t: Target;
  beforeAll(async () => {
    t = await startTarget();
  });
  afterAll(() => t.close());

  it('the server runs no pass when idle: the tables are analysed by autovacuum only, never by a statement of the server', async () => {
    const knex = t.running!.ctx.db.knex;
    // last_analyze is set by ANALYZE statements (the pass's), last_autoanalyze by autovacuum
    const analysed = async () =>
      JSON.stringify((await knex.raw(`SELECT relname, last_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() ORDER BY relname`)).rows);
    for (let i = 0; i < 80; i++) expect((await http(t.base, 'Organization', { method: 'POST', json: { resourceType: 'Organization', name: `Upkeep ${i}` } })).status).toBe(201);
    const before = await analysed();
    // past the idle spell (5 s after the last request) that runs the pass on the embedded database
    await new Promise((r) => setTimeout(r, 7000));
    expect(await analysed()).toBe(before);
  }, 30000);
});
