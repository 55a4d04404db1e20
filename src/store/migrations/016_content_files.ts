import type { Knex } from 'knex';

/**
 * Large Binary content may be held in a file beside the database
 * (docs/decisions/036-binary-content-files.md): the row names it, relative to the content
 * directory; a row with a file has no chunks and no `data`. The sweep of files no row names
 * (scripts/contentSweep.ts) looks names up by the partial index, which holds the rows with
 * a file only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE binary_content ADD COLUMN file text');
  await knex.raw('CREATE INDEX binary_content_file ON binary_content (file) WHERE file IS NOT NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS binary_content_file');
  await knex.raw('ALTER TABLE binary_content DROP COLUMN file');
}
