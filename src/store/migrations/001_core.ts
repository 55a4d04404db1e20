import type { Knex } from 'knex';

/**
 * Core storage. Every table carries `compartment` (the patient id the row belongs to,
 * '' for resources outside any patient compartment) as the first column of its key,
 * so that the tables can be hash-partitioned or distributed by compartment without
 * changing a query (docs/decisions/001-compartment-keys.md).
 */
const INDEX_TABLES: Record<string, string> = {
  idx_token: 'system text, code text, text text',
  idx_string: 'value text not null, exact text not null',
  idx_reference:
    'target_type text, target_id text, target_version text, url text, identifier_system text, identifier_value text',
  idx_date: 'low timestamptz, high timestamptz',
  idx_number: 'value numeric not null',
  idx_quantity: 'value numeric not null, system text, code text, unit text',
  idx_uri: 'value text not null',
};

/** One statement per call: PGlite's extended protocol takes a single command. */
async function run(knex: Knex, sql: string): Promise<void> {
  for (const statement of sql.split(/;\s*\n/).map((s) => s.trim()).filter(Boolean)) await knex.raw(statement);
}

export async function up(knex: Knex): Promise<void> {
  await run(knex, `
    CREATE TABLE resource (
      compartment   text        NOT NULL,
      resource_type text        NOT NULL,
      id            text        NOT NULL,
      version_id    integer     NOT NULL,
      last_updated  timestamptz NOT NULL,
      deleted       boolean     NOT NULL DEFAULT false,
      body          json,
      PRIMARY KEY (compartment, resource_type, id)
    );
    CREATE UNIQUE INDEX resource_type_id ON resource (resource_type, id);
    CREATE INDEX resource_type_updated ON resource (resource_type, last_updated);

    CREATE TABLE resource_history (
      compartment   text        NOT NULL,
      resource_type text        NOT NULL,
      id            text        NOT NULL,
      version_id    integer     NOT NULL,
      last_updated  timestamptz NOT NULL,
      deleted       boolean     NOT NULL DEFAULT false,
      body          json,
      -- the interaction that made this version (history entries show it)
      method        text        NOT NULL,
      PRIMARY KEY (compartment, resource_type, id, version_id)
    );
    CREATE INDEX history_type_id ON resource_history (resource_type, id, version_id);
    CREATE INDEX history_updated ON resource_history (last_updated);
    CREATE INDEX history_type_updated ON resource_history (resource_type, last_updated);

    CREATE TABLE binary_content (
      compartment  text    NOT NULL,
      id           text    NOT NULL,
      version_id   integer NOT NULL,
      content_type text    NOT NULL,
      data         bytea   NOT NULL,
      PRIMARY KEY (compartment, id, version_id)
    );
    CREATE INDEX binary_content_id ON binary_content (id, version_id);

    CREATE TABLE server_setting (
      name  text PRIMARY KEY,
      value text NOT NULL
    );
    INSERT INTO server_setting (name, value) VALUES ('page_token_secret', md5(random()::text || clock_timestamp()::text) || md5(random()::text));
  `);

  for (const [table, columns] of Object.entries(INDEX_TABLES)) {
    await run(knex, `
      CREATE TABLE ${table} (
        compartment   text NOT NULL,
        resource_type text NOT NULL,
        resource_id   text NOT NULL,
        param         text NOT NULL,
        -- components of one composite element share a group (null outside composites)
        grp           integer,
        ${columns}
      );
      CREATE INDEX ${table}_owner ON ${table} (compartment, resource_type, resource_id);
    `);
  }
  await run(knex, `
    CREATE INDEX idx_token_lookup ON idx_token (resource_type, param, code, system);
    CREATE INDEX idx_string_lookup ON idx_string (resource_type, param, value text_pattern_ops);
    CREATE INDEX idx_reference_lookup ON idx_reference (resource_type, param, target_id, target_type);
    CREATE INDEX idx_reference_target ON idx_reference (target_type, target_id);
    CREATE INDEX idx_reference_url ON idx_reference (resource_type, param, url) WHERE url IS NOT NULL;
    CREATE INDEX idx_date_lookup ON idx_date (resource_type, param, low, high);
    CREATE INDEX idx_number_lookup ON idx_number (resource_type, param, value);
    CREATE INDEX idx_quantity_lookup ON idx_quantity (resource_type, param, value);
    CREATE INDEX idx_uri_lookup ON idx_uri (resource_type, param, value);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(
    `DROP TABLE IF EXISTS ${Object.keys(INDEX_TABLES).join(', ')}, binary_content, resource_history, resource, server_setting`,
  );
}
