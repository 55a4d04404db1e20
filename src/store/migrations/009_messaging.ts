import type { Knex } from 'knex';

/**
 * Secure messaging (docs/decisions/016-messaging.md): the threads of a record, who takes
 * part in each (and whose copy was deleted), which thread each message belongs to and
 * which Binaries it carries. Keyed by compartment first, like every table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE message_thread (
    compartment text NOT NULL,
    thread_id text NOT NULL,
    closed_at timestamptz,
    closed_by text,
    PRIMARY KEY (compartment, thread_id))`);
  await knex.raw(`CREATE TABLE message_participant (
    compartment text NOT NULL,
    thread_id text NOT NULL,
    participant text NOT NULL,
    removed_at timestamptz,
    PRIMARY KEY (compartment, thread_id, participant))`);
  await knex.raw(`CREATE TABLE message (
    compartment text NOT NULL,
    id text NOT NULL,
    thread_id text NOT NULL,
    patient_removed_at timestamptz,
    PRIMARY KEY (compartment, id))`);
  await knex.raw(`CREATE INDEX message_thread_members ON message (compartment, thread_id)`);
  await knex.raw(`CREATE TABLE message_attachment (
    compartment text NOT NULL,
    message_id text NOT NULL,
    binary_id text NOT NULL,
    PRIMARY KEY (compartment, binary_id, message_id))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE message_attachment`);
  await knex.raw(`DROP TABLE message`);
  await knex.raw(`DROP TABLE message_participant`);
  await knex.raw(`DROP TABLE message_thread`);
}
