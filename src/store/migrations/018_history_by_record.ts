import type { Knex } from 'knex';

/**
 * The versions of one record (or of the directory, compartment '') newest first, of every type
 * and of one type: the history of a caller limited to records walks each of their records on
 * them (docs/decisions/018-partitioning.md, amendment of 2026-12-07). Led by the partition
 * key: on a partitioned database each partition gets its own, and a walk reads one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX IF NOT EXISTS history_compartment_updated ON resource_history (compartment, last_updated)');
  await knex.raw('CREATE INDEX IF NOT EXISTS history_compartment_type_updated ON resource_history (compartment, resource_type, last_updated)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS history_compartment_updated');
  await knex.raw('DROP INDEX IF EXISTS history_compartment_type_updated');
}
