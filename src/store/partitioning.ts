import type { Knex } from 'knex';

/**
 * Hash partitioning of the patient tables by compartment (DATABASE_PARTITIONS,
 * docs/decisions/018-partitioning.md, docs/operations/partitioning.md). Every table whose
 * rows belong to one record: they are keyed by compartment first (001), so each becomes
 * `PARTITION BY HASH (compartment)` as it is. Tables keyed otherwise stay plain:
 * `resource_locator` and `identifier_claim` (keyed across compartments), `server_setting`,
 * `conformance_version`.
 */
export const PARTITIONED_TABLES = [
  'resource',
  'resource_history',
  'binary_content',
  'binary_chunk',
  'idx_token',
  'idx_string',
  'idx_reference',
  'idx_date',
  'idx_number',
  'idx_quantity',
  'idx_uri',
  'resource_link',
  'outbox',
  'subscription_delivery',
  'subscription_owner',
  'message_thread',
  'message_participant',
  'message',
  'message_attachment',
  'record_closure',
] as const;

/** How one table stands: absent, plain, or partitioned by hash in `partitions` parts. */
export type TableState = { kind: 'absent' } | { kind: 'plain' } | { kind: 'hash'; partitions: number };

/**
 * What to do with a table for `wanted` partitions: convert it, leave it, or refuse (a
 * count other than the one it has: repartitioning is a dump and reload, not a start-up step).
 */
export function partitionStep(table: string, state: TableState, wanted: number): 'convert' | 'keep' {
  if (state.kind === 'absent' || (state.kind === 'hash' && state.partitions === wanted)) return 'keep';
  if (state.kind === 'hash') {
    throw new Error(`${table} is partitioned in ${state.partitions}, DATABASE_PARTITIONS says ${wanted}: changing the count is a dump and reload (docs/operations/partitioning.md)`);
  }
  return 'convert';
}

async function tableState(trx: Knex.Transaction, table: string): Promise<TableState> {
  const rows = (
    await trx.raw(
      `SELECT c.relkind, (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = c.oid)::int AS parts, p.partstrat
         FROM pg_class c LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
        WHERE c.oid = to_regclass(?)`,
      [table],
    )
  ).rows as { relkind: string; parts: number; partstrat: string | null }[];
  if (!rows[0]) return { kind: 'absent' };
  if (rows[0].relkind === 'p') {
    if (rows[0].partstrat !== 'h') throw new Error(`${table} is partitioned, but not by hash: leave it as it is or reload it`);
    return { kind: 'hash', partitions: rows[0].parts };
  }
  return { kind: 'plain' };
}

/**
 * Turns `table` into a hash-partitioned table with the same columns, keys, indexes,
 * identity and extended statistics, and its rows: renamed aside, recreated, copied,
 * dropped. The names of keys, indexes and statistics are those of the original (later
 * migrations refer to them).
 */
async function convert(trx: Knex.Transaction, table: string, partitions: number): Promise<void> {
  const old = `${table}__unpartitioned`;
  const indexes = (
    await trx.raw(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def, con.conname, pg_get_constraintdef(con.oid) AS condef
         FROM pg_index i LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u')
        WHERE i.indrelid = to_regclass(?)`,
      [table],
    )
  ).rows as { name: string; def: string; conname: string | null; condef: string | null }[];
  const statistics = (
    await trx.raw(`SELECT stxname AS name, pg_get_statisticsobjdef(oid) AS def, stxstattarget AS target FROM pg_statistic_ext WHERE stxrelid = to_regclass(?)`, [table])
  ).rows as { name: string; def: string; target: number | null }[];
  const identities = (
    await trx.raw(`SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?) AND attidentity <> '' AND NOT attisdropped`, [table])
  ).rows as { attname: string }[];

  // where each identity's sequence is: the table may be empty (a drained queue) while its ids must not start again
  const lastValues = new Map<string, number>();
  for (const { attname } of identities) {
    const r = await trx.raw(`SELECT pg_sequence_last_value(pg_get_serial_sequence(?, ?)::regclass) AS v`, [table, attname]);
    lastValues.set(attname, Number((r.rows as { v: string | number | null }[])[0]?.v ?? 0));
  }

  await trx.raw(`ALTER TABLE "${table}" RENAME TO "${old}"`);
  for (const ix of indexes) await trx.raw(`ALTER INDEX "${ix.name}" RENAME TO "${ix.name}__unpartitioned"`);
  for (const st of statistics) await trx.raw(`ALTER STATISTICS "${st.name}" RENAME TO "${st.name}__unpartitioned"`);

  await trx.raw(`CREATE TABLE "${table}" (LIKE "${old}" INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS) PARTITION BY HASH (compartment)`);
  for (let i = 0; i < partitions; i++) {
    await trx.raw(`CREATE TABLE "${table}_p${i}" PARTITION OF "${table}" FOR VALUES WITH (MODULUS ${partitions}, REMAINDER ${i})`);
  }
  for (const ix of indexes) {
    if (ix.conname) await trx.raw(`ALTER TABLE "${table}" ADD CONSTRAINT "${ix.conname}" ${ix.condef}`);
    else await trx.raw(ix.def);
  }
  // identity values continue where the old table's sequence was (or its largest value, if higher)
  const overriding = identities.length ? ' OVERRIDING SYSTEM VALUE' : '';
  await trx.raw(`INSERT INTO "${table}"${overriding} SELECT * FROM "${old}"`);
  for (const { attname } of identities) {
    await trx.raw(`SELECT setval(pg_get_serial_sequence(?, ?), GREATEST((SELECT max("${attname}") FROM "${table}"), ?::bigint, 1))`, [
      table,
      attname,
      lastValues.get(attname) ?? 0,
    ]);
  }
  await trx.raw(`DROP TABLE "${old}"`);
  // extended statistics serve the scans of each partition: created on the parent and on every part
  for (const st of statistics) {
    const target = st.target !== null && st.target >= 0 ? st.target : undefined;
    const named = (name: string, on: string) => st.def.replace(/^CREATE STATISTICS (\S+)/, `CREATE STATISTICS "${name}"`).replace(/ FROM \S+$/, ` FROM "${on}"`);
    await trx.raw(named(st.name, table));
    if (target !== undefined) await trx.raw(`ALTER STATISTICS "${st.name}" SET STATISTICS ${target}`);
    for (let i = 0; i < partitions; i++) {
      await trx.raw(named(`${st.name}_p${i}`, `${table}_p${i}`));
      if (target !== undefined) await trx.raw(`ALTER STATISTICS "${st.name}_p${i}" SET STATISTICS ${target}`);
    }
  }
}

/**
 * Partitions every patient table that is not yet, in one transaction (the tables are
 * locked while their rows are copied: on an existing database, a maintenance window).
 * Idempotent: a database already partitioned in `partitions` parts is left as it is.
 * Returns the tables converted.
 */
export async function partitionTables(knex: Knex, partitions: number): Promise<string[]> {
  if (!Number.isInteger(partitions) || partitions < 2) throw new Error('DATABASE_PARTITIONS must be an integer of at least 2');
  return knex.transaction(async (trx) => {
    const converted: string[] = [];
    for (const table of PARTITIONED_TABLES) {
      if (partitionStep(table, await tableState(trx, table), partitions) === 'keep') continue;
      await convert(trx, table, partitions);
      converted.push(table);
    }
    if (converted.length) await trx.raw(`ANALYZE ${converted.map((t) => `"${t}"`).join(', ')}`);
    return converted;
  });
}
