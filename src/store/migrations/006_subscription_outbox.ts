import type { Knex } from 'knex';

/**
 * Subscriptions (docs/decisions/010-subscriptions.md):
 * - `outbox`: one row per written version, inserted by the statement that writes the
 *   version, so that a committed change is never lost and a rolled-back one never seen;
 *   the dispatcher matches it against the Subscriptions and deletes it.
 * - `subscription_delivery`: one notification due to one Subscription, with its attempts,
 *   so that delivery survives a restart.
 * - `subscription_owner`: who wrote each Subscription: its criteria are searched with
 *   that actor's access.
 * Keyed by compartment first, like every table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE outbox (
    compartment text NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    version_id integer NOT NULL,
    deleted boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (compartment, id))`);
  await knex.raw(`CREATE INDEX outbox_order ON outbox (id)`);
  await knex.raw(`CREATE TABLE subscription_delivery (
    compartment text NOT NULL,
    id bigint GENERATED ALWAYS AS IDENTITY,
    subscription_id text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    version_id integer NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error text,
    delivered_at timestamptz,
    abandoned_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (compartment, id))`);
  await knex.raw(`CREATE INDEX subscription_delivery_due ON subscription_delivery (next_attempt_at) WHERE delivered_at IS NULL AND abandoned_at IS NULL`);
  await knex.raw(`CREATE TABLE subscription_owner (
    compartment text NOT NULL,
    id text NOT NULL,
    owner json NOT NULL,
    PRIMARY KEY (compartment, id))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE subscription_owner`);
  await knex.raw(`DROP TABLE subscription_delivery`);
  await knex.raw(`DROP TABLE outbox`);
}
