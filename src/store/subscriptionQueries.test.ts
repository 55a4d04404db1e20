import crypto from 'node:crypto';
import knexFactory from 'knex';
import { loadConfig } from '../config/config';
import { Database, openDatabase } from './database';
import { INTERNAL_ACCESS, Session } from './session';
import { CLAIM_OUTBOX, claimOutbox } from './subscriptionQueries';

/**
 * The dispatcher's claim of the outbox, on the database the suite runs on: the oldest
 * changes first in the order they were made (numerically: change 10 after change 9), read
 * through the outbox's order index rather than by sorting every waiting change.
 */
const schema = process.env.DATABASE_URL ? `t_${crypto.randomBytes(6).toString('hex')}` : undefined;
let db: Database;

beforeAll(async () => {
  db = await openDatabase(loadConfig({ DATA_DIR: ':memory:', ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL, DATABASE_SCHEMA: schema! } : {}) }));
}, 180000);

afterAll(async () => {
  await db?.close();
  if (schema) {
    const admin = knexFactory({ client: 'pg', connection: process.env.DATABASE_URL, pool: { min: 0, max: 1 } });
    await admin.raw(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.destroy();
  }
});

const insert = (ids: number[]) =>
  db.knex.raw(
    `INSERT INTO outbox (compartment, id, resource_type, resource_id, version_id, deleted) OVERRIDING SYSTEM VALUE
     SELECT 'p' || (i % 3), i, 'Observation', 'o' || i, 1, false FROM unnest(?::bigint[]) AS i`,
    [`{${ids.join(',')}}`],
  );

describe('claimOutbox', () => {
  beforeAll(async () => {
    await db.knex.raw('DELETE FROM outbox');
    // out of order, with as many digits as a busy server's ids have
    await insert([10, 9, 100, 11, 99, 1000, 2]);
  });

  it('takes the oldest changes in numeric order', async () => {
    const claimed = await db.knex.transaction((trx) => claimOutbox(new Session(trx, INTERNAL_ACCESS), 5));
    expect(claimed.map((r) => r.id)).toEqual(['2', '9', '10', '11', '99']);
  });

  it('reads the order index, without sorting the waiting changes', async () => {
    await insert(Array.from({ length: 2000 }, (_, i) => 5000 + i));
    await db.knex.raw('ANALYZE outbox');
    const plan = (await db.knex.raw(`EXPLAIN ${CLAIM_OUTBOX}`, [100])).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n');
    // one index scan (or, partitioned, a merge of each partition's): no sort of the waiting changes
    expect(plan).toMatch(/Index Scan/);
    expect(plan).not.toMatch(/(^|\s)Sort/);
  });
});
