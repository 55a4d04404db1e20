import { Writable } from 'node:stream';
import knexFactory from 'knex';
import ClientPgLite from 'knex-pglite';
import { createLogger, safeError } from './log';

/** The lines a logger wrote. */
function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, stream };
}

const NAME = 'Dupont-Secret Jean';
const BIRTH = '1970-05-04';
const NIR = '180057512345678';

/** A real failing statement, with patient-like values bound and one of them the cause of the failure. */
async function failingQuery(knex: ReturnType<typeof knexFactory>): Promise<unknown> {
  try {
    await knex.raw(`SELECT ?::text AS name, ?::date AS birth, ?::int AS nir, '${'x'.repeat(5000)}' AS padding`, [NAME, BIRTH, NIR]);
  } catch (e) {
    return e;
  }
  throw new Error('the statement was expected to fail');
}

function expectNoData(text: string): void {
  for (const value of [NAME, 'Dupont', BIRTH, NIR, 'SELECT', 'xxxxxxxxxx', '$1']) expect(text).not.toContain(value);
}

describe('error serializer', () => {
  it('keeps name, SQLSTATE and a short message of a PGlite error, without SQL or bound values', async () => {
    const knex = knexFactory({ client: ClientPgLite as unknown as typeof knexFactory.Client, dialect: 'postgres', connection: {} });
    try {
      const error = await failingQuery(knex);
      // the raw error does carry them: this is what must not reach a log
      expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).toContain(NIR);
      const safe = safeError(error) as Record<string, unknown>;
      expect(safe).toMatchObject({ name: 'DatabaseError', code: '22003', sqlState: '22003' });
      expect(typeof safe.message).toBe('string');
      expect(safe.message).toMatch(/out of range/);
      expectNoData(JSON.stringify(safe));
      expect(Object.keys(safe).sort()).toEqual(expect.arrayContaining(['code', 'message', 'name', 'sqlState']));
      for (const key of Object.keys(safe)) expect(['name', 'code', 'sqlState', 'routine', 'message', 'stack']).toContain(key);
    } finally {
      await knex.destroy();
    }
  });

  it('does the same for the error of the configured database (PostgreSQL when DATABASE_URL is set), through a logger', async () => {
    // a bare connection: the statement needs no table, and nothing is created
    const knex = process.env.DATABASE_URL
      ? knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } })
      : knexFactory({ client: ClientPgLite as unknown as typeof knexFactory.Client, dialect: 'postgres', connection: {} });
    try {
      const error = await failingQuery(knex);
      const { lines, stream } = capture();
      createLogger('info', stream).error({ err: error, requestId: 'r1' }, 'unhandled error');
      expect(lines).toHaveLength(1);
      const line = JSON.parse(lines[0]);
      expect(line.err).toMatchObject({ name: 'DatabaseError', sqlState: '22003' });
      expect(line.requestId).toBe('r1');
      expectNoData(lines[0]);
      // an error nested elsewhere than `err` is made safe too
      createLogger('info', stream).warn({ detail: { during: error } }, 'nested');
      expectNoData(lines[1]);
      expect(JSON.parse(lines[1]).detail.during.sqlState).toBe('22003');
    } finally {
      await knex.destroy();
    }
  });

  it('removes quoted values from a unique-violation message and drops its detail', async () => {
    const knex = knexFactory({ client: ClientPgLite as unknown as typeof knexFactory.Client, dialect: 'postgres', connection: {} });
    try {
      await knex.raw('CREATE TABLE t (v text PRIMARY KEY)');
      await knex.raw('INSERT INTO t VALUES (?)', [NAME]);
      const error = await knex.raw('INSERT INTO t VALUES (?)', [NAME]).catch((e: unknown) => e);
      expect((error as { detail?: string }).detail).toContain(NAME);
      const safe = safeError(error) as Record<string, unknown>;
      expect(safe.sqlState).toBe('23505');
      expectNoData(JSON.stringify(safe));
    } finally {
      await knex.destroy();
    }
  });
});

describe('log lines', () => {
  it('are capped whatever they are handed: long strings, huge arrays, deep objects, big errors', () => {
    const { lines, stream } = capture();
    const log = createLogger('info', stream);
    const huge = 'y'.repeat(5_000_000);
    const big = Object.assign(new Error(`SELECT ${huge} - boom`), { query: huge, params: Array(100_000).fill(NAME) });
    log.error({ err: big, url: huge, list: Array(100_000).fill(huge), deep: JSON.parse('{"a":'.repeat(200) + '1' + '}'.repeat(200)) }, huge);
    expect(lines).toHaveLength(1);
    expect(lines[0].length).toBeLessThan(32 * 1024);
    const line = JSON.parse(lines[0]);
    expect(line.err.message).toBe('boom');
    expect(line.err.query).toBeUndefined();
    expect(line.err.params).toBeUndefined();
    expect(lines[0]).not.toContain(NAME);
  });

  it('keep ordinary fields as they are', () => {
    const { lines, stream } = capture();
    createLogger('info', stream).info({ requestId: 'abc', status: 200, ms: 1.5, interaction: 'read' }, 'request');
    expect(JSON.parse(lines[0])).toMatchObject({ requestId: 'abc', status: 200, ms: 1.5, interaction: 'read', msg: 'request', level: 30 });
  });
});
