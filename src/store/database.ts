import fs from 'node:fs';
import knexFactory, { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import type { Config } from '../config/config';
import { migrationSource } from './migrations';

export type DatabaseKind = 'embedded' | 'postgres';

/** The database handle shared by the server: knex over pg (PostgreSQL) or PGlite (embedded). */
export interface Database {
  knex: Knex;
  kind: DatabaseKind;
  close(): Promise<void>;
}

export async function openDatabase(config: Config): Promise<Database> {
  let knex: Knex;
  let kind: DatabaseKind;
  if (config.databaseUrl) {
    kind = 'postgres';
    knex = knexFactory({
      client: 'pg',
      connection: config.databaseUrl,
      pool: { min: 0, max: config.dbPoolMax },
      searchPath: config.databaseSchema ? [config.databaseSchema, 'public'] : undefined,
      acquireConnectionTimeout: 30000,
    });
    if (config.databaseSchema) await knex.raw(`CREATE SCHEMA IF NOT EXISTS "${config.databaseSchema}"`);
  } else {
    kind = 'embedded';
    let connection: Record<string, string> = {};
    if (!config.embeddedInMemory) {
      fs.mkdirSync(config.dataDir, { recursive: true });
      connection = { filename: `${config.dataDir}/pgdata` };
    }
    knex = knexFactory({ client: ClientPgLite as unknown as typeof knexFactory.Client, dialect: 'postgres', connection, acquireConnectionTimeout: 60000 });
  }
  await knex.migrate.latest({ migrationSource, schemaName: config.databaseSchema });
  return {
    knex,
    kind,
    close: () => knex.destroy(),
  };
}
