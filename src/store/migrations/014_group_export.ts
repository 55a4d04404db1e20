import type { Knex } from 'knex';

/**
 * Group-level bulk export (docs/decisions/030-groups.md): the Patient members of the Group,
 * as the kick-off found them, are stored with the job (`patients`, a JSON array of ids);
 * the export reads those records only. Null for the other levels.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE bulk_export ADD COLUMN patients jsonb`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE bulk_export DROP COLUMN patients`);
}
