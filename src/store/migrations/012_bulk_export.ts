import type { Knex } from 'knex';

/**
 * Bulk data export (docs/decisions/020-bulk-data.md):
 * - `bulk_export`: one row per export, with the caller it is bound to (issuer and subject)
 *   and the rights of the token that asked (scopes, acting roles), the visibility it
 *   reads with (decided at kick-off) and its state; any worker answers its status.
 * - `bulk_export_file`: the NDJSON files, in the database so that any worker serves them;
 *   deleted with their export.
 * Neither holds patient-keyed rows that searches read: they are outside the compartment
 * scheme and never distributed by patient.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE bulk_export (
    id text PRIMARY KEY,
    caller text NOT NULL,
    rights text NOT NULL,
    request text NOT NULL,
    level text NOT NULL,
    types jsonb NOT NULL,
    since timestamptz,
    visibility jsonb NOT NULL,
    audit_agent jsonb,
    status text NOT NULL,
    progress text,
    error text,
    transaction_time timestamptz NOT NULL,
    heartbeat timestamptz NOT NULL,
    expires_at timestamptz)`);
  await knex.raw(`CREATE INDEX bulk_export_expiry ON bulk_export (expires_at)`);
  await knex.raw(`CREATE TABLE bulk_export_file (
    export_id text NOT NULL REFERENCES bulk_export (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    resource_type text NOT NULL,
    count integer NOT NULL,
    content text NOT NULL,
    PRIMARY KEY (export_id, seq))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE bulk_export_file`);
  await knex.raw(`DROP TABLE bulk_export`);
}
