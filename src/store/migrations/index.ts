import type { Knex } from 'knex';
import * as core from './001_core';

interface Migration {
  name: string;
  module: { up(knex: Knex): Promise<void>; down(knex: Knex): Promise<void> };
}

/** Migrations are compiled with the code (no file globbing), so ts-jest, tsc output and both databases agree. */
const migrations: Migration[] = [{ name: '001_core', module: core }];

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m.name,
  getMigration: async (m) => m.module,
};
