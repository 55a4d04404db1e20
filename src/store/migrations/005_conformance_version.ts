import type { Knex } from 'knex';

/**
 * One counter, moved in the transaction of every write of a conformance resource
 * (StructureDefinition, ValueSet, CodeSystem, Questionnaire): a worker that sees it move
 * reloads what changed into its validator, so that every worker knows what any of them
 * committed (src/store/conformanceRows.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE conformance_version (id smallint PRIMARY KEY CHECK (id = 1), version bigint NOT NULL)`);
  await knex.raw(`INSERT INTO conformance_version (id, version) VALUES (1, 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE conformance_version`);
}
