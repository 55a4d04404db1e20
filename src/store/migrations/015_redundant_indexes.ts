import type { Knex } from 'knex';

/**
 * Two indexes that nothing reads since the resource locator (011) gives every read by id its
 * compartment: `history_type_id` (resource_type, id, version_id) on resource_history and
 * `binary_content_id` (id, version_id) on binary_content. Every statement on those tables
 * names the compartment (vread, instance history, the probes of the previous version, the
 * audit purge, binary reads), so their primary keys, led by compartment, serve them. Together
 * they took about 134 bytes per resource (docs/operations/search-benchmarks.md, "Bytes per
 * resource"). On a partitioned database, dropping the parent's index drops its partitions'.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS history_type_id');
  await knex.raw('DROP INDEX IF EXISTS binary_content_id');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('CREATE INDEX IF NOT EXISTS history_type_id ON resource_history (resource_type, id, version_id)');
  await knex.raw('CREATE INDEX IF NOT EXISTS binary_content_id ON binary_content (id, version_id)');
}
