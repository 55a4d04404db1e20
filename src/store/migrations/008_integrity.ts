import type { Knex } from 'knex';
import { NATIONAL_IDENTIFIER_SYSTEMS } from '../../integrity/uniqueIdentifiers';

/**
 * Integrity (docs/decisions/014-integrity.md):
 * - `identifier_claim`: who holds each national identifier. Its key is unique across
 *   compartments on purpose (one Patient per INS wherever its record is); the holder's
 *   compartment is kept to find it.
 * - `resource_link`: the local references of each current version, keyed by the
 *   referrer's compartment like every table, indexed by target to find referrers.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE TABLE identifier_claim (
    resource_type text NOT NULL,
    system text NOT NULL,
    value text NOT NULL,
    compartment text NOT NULL,
    resource_id text NOT NULL,
    PRIMARY KEY (resource_type, system, value))`);
  await knex.raw(`CREATE INDEX identifier_claim_holder ON identifier_claim (resource_type, resource_id)`);
  await knex.raw(`CREATE TABLE resource_link (
    compartment text NOT NULL,
    resource_type text NOT NULL,
    resource_id text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL)`);
  // not a unique key: a version's links are deleted and its successor's inserted by one statement
  await knex.raw(`CREATE INDEX resource_link_source ON resource_link (compartment, resource_type, resource_id)`);
  await knex.raw(`CREATE INDEX resource_link_target ON resource_link (target_type, target_id)`);

  // what is already stored: claims first holder first (a duplicate keeps none), links from the indexed references
  for (const [resourceType, systems] of Object.entries(NATIONAL_IDENTIFIER_SYSTEMS)) {
    await knex.raw(
      `INSERT INTO identifier_claim (resource_type, system, value, compartment, resource_id)
       SELECT r.resource_type, i->>'system', i->>'value', r.compartment, r.id
         FROM resource r CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(r.body->'identifier') = 'array' THEN r.body->'identifier' ELSE '[]'::json END) AS i
        WHERE r.resource_type = ? AND NOT r.deleted AND i->>'system' = ANY(?::text[]) AND i->>'value' IS NOT NULL
          AND coalesce(i->>'use', '') <> 'old' AND coalesce((i->'type')::text, '') NOT LIKE '%"NH"%'
        ORDER BY r.last_updated, r.id
       ON CONFLICT DO NOTHING`,
      [resourceType, `{${systems.map((s) => `"${s}"`).join(',')}}`],
    );
  }
  await knex.raw(
    `INSERT INTO resource_link (compartment, resource_type, resource_id, target_type, target_id)
     SELECT DISTINCT x.compartment, x.resource_type, x.resource_id, x.target_type, x.target_id
       FROM idx_reference x JOIN resource r ON r.compartment = x.compartment AND r.resource_type = x.resource_type AND r.id = x.resource_id AND NOT r.deleted
      WHERE x.target_type IS NOT NULL AND x.target_id IS NOT NULL AND x.resource_type NOT IN ('AuditEvent', 'Bundle')`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP TABLE resource_link`);
  await knex.raw(`DROP TABLE identifier_claim`);
}
