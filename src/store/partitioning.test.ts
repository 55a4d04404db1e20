import type { Knex } from 'knex';
import { http, startTarget, Target } from '../../conformance/harness';
import * as resourceLocator from './migrations/011_resource_locator';
import { PARTITIONED_TABLES, partitionTables } from './partitioning';

/**
 * The migration of an existing database (docs/operations/partitioning.md): a database
 * with resources, a resource moved between records, Subscriptions' outbox rows, is given
 * its locator (migration 011, run again here on the data as it stands) and is then
 * partitioned in place; everything reads back the same and writing goes on.
 */
let t: Target;
let knex: Knex;
beforeAll(async () => {
  // a plain schema, whatever the run: this is the database before partitioning
  t = await startTarget({ DATABASE_PARTITIONS: '' });
  knex = t.running!.ctx.db.knex;
});
afterAll(() => t.close());

const post = async (resource: Record<string, unknown>) => {
  const res = await http(t.base, String(resource.resourceType), { method: 'POST', json: resource });
  if (res.status !== 201) throw new Error(`${String(resource.resourceType)}: ${res.status} ${res.text}`);
  return res.body;
};
const count = async (table: string) => Number((await knex.raw(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);
const relkind = async (table: string) => (await knex.raw(`SELECT relkind FROM pg_class WHERE oid = to_regclass(?)`, [table])).rows[0]?.relkind;

describe('partitioning an existing database', () => {
  it('fills the locator from the data, converts every patient table in place, and reads and writes as before', async () => {
    const p1 = await post({ resourceType: 'Patient', name: [{ family: 'Avant' }] });
    const p2 = await post({ resourceType: 'Patient', name: [{ family: 'Apres' }] });
    // an Observation moves by PUT (a document's PUT changes only its metadata: docs/decisions/029-dmp-submissions.md)
    const doc = await post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${p1.id}` }, valueQuantity: { value: 60 } });
    const moved = await http(t.base, `Observation/${doc.id}`, { method: 'PUT', json: { ...doc, subject: { reference: `Patient/${p2.id}` } } });
    expect(moved.status).toBe(200);

    // the locator as migration 011 builds it from what is stored, the moved resource's former record included
    await resourceLocator.down(knex);
    await resourceLocator.up(knex);
    const located = (await knex.raw(`SELECT compartment, former_compartments AS former FROM resource_locator WHERE resource_type = 'Observation' AND id = ?`, [doc.id])).rows[0];
    expect(located.compartment).toBe(p2.id);
    expect(located.former).toEqual([p1.id]);

    // (the dispatcher empties the outbox meanwhile: its rows are not counted)
    const before = new Map<string, number>();
    for (const table of [...PARTITIONED_TABLES, 'resource_locator']) if (!['outbox', 'subscription_delivery'].includes(table)) before.set(table, await count(table));
    const outboxSequence = async () => Number((await knex.raw(`SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('outbox', 'id')::regclass), 0) AS v`)).rows[0].v);
    const outboxBefore = await outboxSequence();
    expect(outboxBefore).toBeGreaterThan(0);
    // a drained queue (the dispatcher's work): its ids go on all the same, not from 1 again
    await knex.raw('DELETE FROM outbox');

    expect(await partitionTables(knex, 3)).toEqual([...PARTITIONED_TABLES]);
    for (const table of PARTITIONED_TABLES) expect([table, await relkind(table)]).toEqual([table, 'p']);
    for (const [table, n] of before) expect([table, await count(table)]).toEqual([table, n]);
    // the names later migrations refer to are kept
    const indexes = (await knex.raw(`SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'resource'`)).rows.map((r: { indexname: string }) => r.indexname);
    expect(indexes).toEqual(expect.arrayContaining(['resource_pkey', 'resource_type_id', 'resource_type_updated']));
    expect((await knex.raw(`SELECT count(*)::int AS n FROM pg_statistic_ext WHERE stxnamespace = current_schema()::regnamespace AND stxname LIKE 'idx_token_lookup_stats%'`)).rows[0].n).toBe(4);
    // a second start with the same count does nothing; another count is refused
    expect(await partitionTables(knex, 3)).toEqual([]);
    await expect(partitionTables(knex, 4)).rejects.toThrow(/partitioned in 3, DATABASE_PARTITIONS says 4/);

    // reads, the moved resource's history across both records, and new writes
    expect((await http(t.base, `Observation/${doc.id}`)).body.subject.reference).toBe(`Patient/${p2.id}`);
    expect((await http(t.base, `Observation/${doc.id}/_history/1`)).body.subject.reference).toBe(`Patient/${p1.id}`);
    expect((await http(t.base, `Observation?patient=${p2.id}`)).body.entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual([doc.id]);
    const later = await post({ resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] }, subject: { reference: `Patient/${p1.id}` }, valueQuantity: { value: 72 } });
    expect((await http(t.base, `Observation/${later.id}`)).status).toBe(200);
    // identity values go on from where they were
    expect(await outboxSequence()).toBeGreaterThan(outboxBefore);
    // an id is still unique across records: a create at an existing id in another record fails on the locator's key
    await expect(
      knex.raw(`INSERT INTO resource_locator (resource_type, id, compartment) VALUES ('Observation', ?, 'elsewhere')`, [doc.id]),
    ).rejects.toMatchObject({ code: '23505' });
  });

  it('partitions every table keyed by compartment, but those keyed across records', async () => {
    const keyedAcross = ['resource_locator', 'identifier_claim'];
    const withCompartment = (
      await knex.raw(`SELECT DISTINCT c.table_name FROM information_schema.columns c JOIN pg_class t ON t.oid = to_regclass(c.table_name) WHERE c.table_schema = current_schema() AND c.column_name = 'compartment' AND NOT t.relispartition`)
    ).rows.map((r: { table_name: string }) => r.table_name);
    expect(withCompartment.filter((table: string) => !(PARTITIONED_TABLES as readonly string[]).includes(table) && !keyedAcross.includes(table)).sort()).toEqual([]);
  });
});
