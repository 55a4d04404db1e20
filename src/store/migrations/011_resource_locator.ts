import type { Knex } from 'knex';

/**
 * Ids stay unique without a unique index on `resource (resource_type, id)`
 * (docs/decisions/018-partitioning.md): such an index does not contain the partition key,
 * so neither hash partitioning nor Citus can keep it. `resource_locator` is keyed by
 * `(resource_type, id)` and says which compartment holds the resource now, and which it
 * held before (a document moved to another record keeps its old versions there). It is
 * written by the statement that writes each version (src/store/writeVersions.ts): a
 * concurrent create of the same id fails on its key, and a read, vread or lock by id
 * looks here first to address the one partition it needs.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE resource_locator (
    resource_type text NOT NULL,
    id text NOT NULL,
    compartment text NOT NULL,
    former_compartments text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (resource_type, id))`);
  // a record's deletion finds its rows here by compartment, as in every table (decision 017)
  await knex.raw(`CREATE INDEX resource_locator_compartment ON resource_locator (compartment)`);
  await knex.raw(`INSERT INTO resource_locator (resource_type, id, compartment) SELECT resource_type, id, compartment FROM resource`);
  // the compartments a resource's history lives in besides its current one
  await knex.raw(`UPDATE resource_locator l SET former_compartments = f.compartments
    FROM (SELECT h.resource_type, h.id, array_agg(DISTINCT h.compartment) AS compartments
            FROM resource_history h JOIN resource r ON r.resource_type = h.resource_type AND r.id = h.id AND r.compartment <> h.compartment
           GROUP BY h.resource_type, h.id) f
   WHERE l.resource_type = f.resource_type AND l.id = f.id`);
  // a plain index in each partition: uniqueness is the locator's
  await knex.raw(`DROP INDEX resource_type_id`);
  await knex.raw(`CREATE INDEX resource_type_id ON resource (resource_type, id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX resource_type_id`);
  await knex.raw(`CREATE UNIQUE INDEX resource_type_id ON resource (resource_type, id)`);
  await knex.raw(`DROP TABLE resource_locator`);
}
