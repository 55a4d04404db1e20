import type { Knex } from 'knex';

/**
 * Binary content is stored in chunks (a raw upload goes from its spool file into the
 * database piece by piece, never held whole in memory); binary_content keeps the content
 * type and size.
 * Content written before this migration stays in binary_content.data and is still read.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE binary_chunk (
      compartment text    NOT NULL,
      id          text    NOT NULL,
      version_id  integer NOT NULL,
      seq         integer NOT NULL,
      data        bytea   NOT NULL,
      PRIMARY KEY (compartment, id, version_id, seq)
    )`);
  await knex.raw('ALTER TABLE binary_content ALTER COLUMN data DROP NOT NULL');
  await knex.raw('ALTER TABLE binary_content ADD COLUMN size bigint');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE binary_content DROP COLUMN size');
  await knex.raw('DROP TABLE binary_chunk');
}
