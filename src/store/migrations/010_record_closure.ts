import type { Knex } from 'knex';

/**
 * Records the API is closed on (docs/decisions/017-record-lifecycle.md): one row while a
 * record is opposed or closed, written with the Patient version that sets the state.
 * Administrators' and systems' reads probe it by primary key (their visibility is not
 * limited to records); the purge finds the archives whose retention has passed by
 * `retain_until`. Keyed by compartment, like every table, so a record's deletion removes it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE record_closure (
    compartment text PRIMARY KEY,
    state text NOT NULL CHECK (state IN ('opposed', 'closed')),
    mode text CHECK (mode IN ('archive')),
    closed_at timestamptz NOT NULL,
    retain_until timestamptz)`);
  await knex.raw(`CREATE INDEX record_closure_due ON record_closure (retain_until) WHERE retain_until IS NOT NULL`);
  // a record's deletion removes its rows from every table by compartment: each needs an index led by it
  await knex.raw(`CREATE INDEX identifier_claim_compartment ON identifier_claim (compartment)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX identifier_claim_compartment`);
  await knex.raw(`DROP TABLE record_closure`);
}
