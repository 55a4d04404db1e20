import type { Knex } from 'knex';

/**
 * Bulk load checkpoints (docs/decisions/024-bulk-load.md): one row per loaded file, keyed
 * by the SHA-256 of its size and first MiB, with the lines and bytes committed so far, updated in
 * each batch's transaction, so that a restarted load reads on from there. An operator's
 * table outside the compartment scheme (a Citus reference table, or left on the coordinator).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE bulk_load_checkpoint (
    file_key text PRIMARY KEY,
    file_name text NOT NULL,
    lines bigint NOT NULL,
    bytes bigint NOT NULL,
    written bigint NOT NULL,
    refused bigint NOT NULL,
    updated_at timestamptz NOT NULL)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE bulk_load_checkpoint`);
}
