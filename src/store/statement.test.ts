import crypto from 'node:crypto';
import { loadConfig } from '../config/config';
import { QUERY_CANCELED } from './cancellation';
import { Database, openDatabase } from './database';
import { runStatement } from './statement';

describe('a statement run without knex building it', () => {
  let db: Database;
  const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
  const seen: { sql: string; bindings?: unknown[]; options?: { name?: string } }[] = [];
  const answered: string[] = [];
  beforeAll(async () => {
    db = await openDatabase(loadConfig({ PORT: '0', DATA_DIR: ':memory:', ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}) }));
    db.knex.on('query', (q: { sql: string; bindings?: unknown[]; options?: { name?: string } }) => seen.push(q));
    db.knex.on('query-response', (_r: unknown, q: { __knexQueryUid?: string }) => answered.push(q.__knexQueryUid ?? ''));
    await db.knex.raw('CREATE TABLE statement_test (n int, t text)');
  });
  afterAll(async () => {
    if (schema) await db.knex.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await db.close();
  });
  beforeEach(() => {
    seen.length = 0;
    answered.length = 0;
  });

  it('answers what db.raw answers, named or not, and is seen by the query and query-response events', async () => {
    const sql = 'SELECT ?::int + 1 AS n, ?::text AS t, ?::text[] AS a';
    const bindings = [41, 'a ? in a value', ['x', 'y']];
    const direct = await runStatement<{ n: number; t: string; a: string[] }>(db.knex, sql, bindings, 'statement_test_select');
    const viaKnex = (await db.knex.raw(sql, bindings)) as { rows: unknown[] };
    expect(direct.rows).toEqual([{ n: 42, t: 'a ? in a value', a: ['x', 'y'] }]);
    expect(direct.rows).toEqual(viaKnex.rows);
    expect(seen[0]).toMatchObject({ sql: 'SELECT $1::int + 1 AS n, $2::text AS t, $3::text[] AS a', bindings, options: { name: 'statement_test_select' } });
    expect(answered).toHaveLength(2);
    expect(answered[0]).not.toBe('');
  });

  it('prepares a named statement once on its connection (PostgreSQL), and answers it again from there', async () => {
    const prepared = await db.knex.transaction(async (trx) => {
      for (const n of [1, 2]) expect((await runStatement<{ n: number }>(trx, 'SELECT ?::int * 10 AS n', [n], 'statement_test_prepared')).rows[0].n).toBe(n * 10);
      return (await trx.raw(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'statement_test_prepared'`)) as { rows: { n: number }[] };
    });
    // PGlite answers the statement without keeping it prepared
    expect(prepared.rows[0].n).toBe(db.kind === 'postgres' ? 1 : 0);
  });

  it('never answers a named statement with an earlier text of the same name', async () => {
    expect((await runStatement<{ n: number }>(db.knex, 'SELECT ?::int AS n', [1], 'statement_test_renamed')).rows[0].n).toBe(1);
    // PostgreSQL refuses a name prepared with another text on the same connection; never the first text's answer
    const second = await runStatement<{ n: number }>(db.knex, 'SELECT ?::int + 1 AS n', [1], 'statement_test_renamed').then(
      (r) => r.rows[0].n,
      (e: Error) => e.message,
    );
    expect([2, expect.stringMatching(/Prepared statements must be unique/)]).toContainEqual(second);
  });

  it('writes in a transaction that rolls back with it', async () => {
    await expect(
      db.knex.transaction(async (trx) => {
        await runStatement(trx, 'INSERT INTO statement_test VALUES (?, ?)', [1, 'kept?']);
        expect((await runStatement<{ n: number }>(trx, 'SELECT count(*)::int AS n FROM statement_test', [])).rows[0].n).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await runStatement<{ n: number }>(db.knex, 'SELECT count(*)::int AS n FROM statement_test', [])).rows[0].n).toBe(0);
  });

  it('leaves to knex what knex rewrites: identifiers, knex expressions, a wrong count of bindings, undefined', async () => {
    expect((await runStatement<{ n: number }>(db.knex, 'SELECT count(*)::int AS n FROM ??', ['statement_test'])).rows[0].n).toBe(0);
    expect((await runStatement<{ n: number }>(db.knex, 'SELECT ? AS n', [db.knex.raw('7')])).rows[0].n).toBe(7);
    await expect(runStatement(db.knex, 'SELECT ? AS n', [1, 2])).rejects.toThrow('Expected 2 bindings, saw 1');
    await expect(runStatement(db.knex, 'SELECT ? AS n', [undefined])).rejects.toThrow(/Undefined binding/);
  });

  it("fails as knex fails, with the database's error", async () => {
    await expect(runStatement(db.knex, 'SELECT * FROM no_such_table WHERE n = ?', [1])).rejects.toMatchObject({ code: '42P01' });
  });

  it("is refused once the request's client is gone, through the request's handle", async () => {
    const request = db.forRequest();
    expect((await runStatement<{ n: number }>(request.knex, 'SELECT ?::int AS n', [5])).rows[0].n).toBe(5);
    request.abort();
    await expect(runStatement(request.knex, 'SELECT ?::int AS n', [5])).rejects.toMatchObject({ code: QUERY_CANCELED });
  });
});
