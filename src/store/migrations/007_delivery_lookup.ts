import type { Knex } from 'knex';

/**
 * A deletion is notified to the Subscriptions that were notified of the version it deletes
 * (docs/decisions/010-subscriptions.md): they are found by the resource they were about.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX subscription_delivery_resource ON subscription_delivery (resource_type, resource_id, version_id)`);
  // whether an earlier change of a resource still waits (a deletion is matched after it)
  await knex.raw(`CREATE INDEX outbox_resource ON outbox (resource_type, resource_id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX outbox_resource`);
  await knex.raw(`DROP INDEX subscription_delivery_resource`);
}
