import type { Knex } from 'knex';
import { http, startTarget, Target } from '../../../conformance/harness';
import * as redundantIndexes from './015_redundant_indexes';

/**
 * Migration 015 drops `history_type_id` and `binary_content_id` (on a partitioned database,
 * with their partitions' indexes). An existing database keeps reading and writing the same:
 * vread, instance history, a Binary's content, after the indexes are gone.
 */
let t: Target;
let knex: Knex;
beforeAll(async () => {
  t = await startTarget();
  knex = t.running!.ctx.db.knex;
});
afterAll(() => t.close());

/** Indexes of the table and of its partitions, if any, on exactly these columns. */
async function indexesOn(table: string, columns: string): Promise<string[]> {
  const rows = (
    await knex.raw(
      `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid IN (SELECT to_regclass(?) UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(?))
          AND pg_get_indexdef(i.indexrelid) LIKE ?`,
      [table, table, `%(${columns})`],
    )
  ).rows as { relname: string }[];
  return rows.map((r) => r.relname);
}

const post = async (resource: Record<string, unknown>) => {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`${String(resource.resourceType)}: ${res.status} ${res.text}`);
  return res.body;
};

describe('migration 015', () => {
  it('leaves a new database without the two indexes', async () => {
    expect(await indexesOn('resource_history', 'resource_type, id, version_id')).toEqual([]);
    expect(await indexesOn('binary_content', 'id, version_id')).toEqual([]);
    // the keys that serve those reads are there
    expect(await indexesOn('resource_history', 'compartment, resource_type, id, version_id')).not.toEqual([]);
    expect(await indexesOn('binary_content', 'compartment, id, version_id')).not.toEqual([]);
  });

  it('drops them from an existing database, which reads its versions and contents as before', async () => {
    await redundantIndexes.down(knex);
    expect(await indexesOn('resource_history', 'resource_type, id, version_id')).not.toEqual([]);
    expect(await indexesOn('binary_content', 'id, version_id')).not.toEqual([]);

    const patient = await post({ resourceType: 'Patient', name: [{ family: 'Avant' }] });
    const updated = await http(t.base, `Patient/${patient.id}`, { method: 'PUT', json: { ...patient, name: [{ family: 'Apres' }] } });
    expect(updated.status).toBe(200);
    const binary = await post({ resourceType: 'Binary', contentType: 'text/plain', data: Buffer.from('contenu').toString('base64') });
    const reads = async () => ({
      first: (await http(t.base, `Patient/${patient.id}/_history/1`)).body.name,
      history: (await http(t.base, `Patient/${patient.id}/_history`)).body.entry.map((e: { resource: { meta: { versionId: string } } }) => e.resource.meta.versionId),
      content: (await http(t.base, `Binary/${binary.id}`, { headers: { accept: 'text/plain' } })).text,
    });
    const before = await reads();
    expect(before).toEqual({ first: [{ family: 'Avant' }], history: ['2', '1'], content: 'contenu' });

    await redundantIndexes.up(knex);
    expect(await indexesOn('resource_history', 'resource_type, id, version_id')).toEqual([]);
    expect(await indexesOn('binary_content', 'id, version_id')).toEqual([]);
    expect(await reads()).toEqual(before);

    // and writes go on: a third version, read back by version
    const third = await http(t.base, `Patient/${patient.id}`, { method: 'PUT', json: { ...patient, name: [{ family: 'Encore' }] } });
    expect(third.status).toBe(200);
    expect((await http(t.base, `Patient/${patient.id}/_history/3`)).body.name).toEqual([{ family: 'Encore' }]);
    // a second run finds nothing to drop
    await expect(redundantIndexes.up(knex)).resolves.toBeUndefined();
  });
});
