import type { Knex } from 'knex';

/**
 * Large Binary content may be held in a file beside the database
 * (docs/decisions/036-binary-content-files.md): the row names it, relative to the content
 * directory; a row with a file has no chunks and no `data`.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE binary_content ADD COLUMN file text');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE binary_content DROP COLUMN file');
}
