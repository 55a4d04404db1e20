import type { Knex } from 'knex';
import { startTarget, Target } from '../../../conformance/harness';
import * as historyByRecord from './018_history_by_record';

/**
 * Migration 018 adds `resource_history (compartment, last_updated)` and `(compartment,
 * resource_type, last_updated)`, on every partition of a
 * partitioned database; down and up again leave it as it was.
 */
let t: Target;
let knex: Knex;
beforeAll(async () => {
  t = await startTarget();
  knex = t.running!.ctx.db.knex;
});
afterAll(() => t.close());

/** The tables (the table and its partitions, if any) holding an index on exactly these columns. */
async function tablesIndexedOn(table: string, columns: string): Promise<{ tables: number; indexed: number }> {
  const [row] = (
    await knex.raw(
      `SELECT (SELECT count(*) FROM (SELECT to_regclass(?) AS t UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(?)) x)::int AS tables,
              (SELECT count(*) FROM pg_index i
                WHERE i.indrelid IN (SELECT to_regclass(?) UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(?))
                  AND pg_get_indexdef(i.indexrelid) LIKE ?)::int AS indexed`,
      [table, table, table, table, `%(${columns})`],
    )
  ).rows as { tables: number; indexed: number }[];
  return row;
}

describe('migration 018', () => {
  it.each(['compartment, last_updated', 'compartment, resource_type, last_updated'])('indexes the versions of each record on (%s), on the table and each of its partitions', async (columns) => {
    const found = await tablesIndexedOn('resource_history', columns);
    expect(found.indexed).toBe(found.tables);
    expect(found.indexed).toBeGreaterThan(0);
  });

  it('down drops it, up creates it again', async () => {
    await historyByRecord.down(knex);
    expect((await tablesIndexedOn('resource_history', 'compartment, last_updated')).indexed).toBe(0);
    expect((await tablesIndexedOn('resource_history', 'compartment, resource_type, last_updated')).indexed).toBe(0);
    await historyByRecord.up(knex);
    await historyByRecord.up(knex);
    for (const columns of ['compartment, last_updated', 'compartment, resource_type, last_updated']) {
      const found = await tablesIndexedOn('resource_history', columns);
      expect(found.indexed).toBe(found.tables);
    }
  });
});
