import fs from 'node:fs';
import knexFactory, { Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import type { Config } from '../config/config';
import { backendCanceller, cancellableClient, runCancellable } from './cancellation';
import { migrationSource } from './migrations';

export type DatabaseKind = 'embedded' | 'postgres';

/** The database handle shared by the server: knex over pg (PostgreSQL) or PGlite (embedded). */
export interface Database {
  knex: Knex;
  kind: DatabaseKind;
  /**
   * Runs fn with its statements tied to `signal` (the client going away): once it aborts,
   * the statement running is cancelled (PostgreSQL) and the next ones are refused.
   */
  cancellable<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ClientPg = require('knex/lib/dialects/postgres') as typeof knexFactory.Client;

export async function openDatabase(config: Config): Promise<Database> {
  let knex: Knex;
  let kind: DatabaseKind;
  let closeCanceller = async () => undefined as void;
  if (config.databaseUrl) {
    kind = 'postgres';
    const searchPath = config.databaseSchema ? [config.databaseSchema, 'public'] : undefined;
    // Migrations run on a connection of their own, without the statement timeout: building an index may take long.
    const migrator = knexFactory({ client: 'pg', connection: config.databaseUrl, pool: { min: 0, max: 1 }, searchPath });
    try {
      if (config.databaseSchema) await migrator.raw(`CREATE SCHEMA IF NOT EXISTS "${config.databaseSchema}"`);
      await migrator.migrate.latest({ migrationSource, schemaName: config.databaseSchema });
    } finally {
      await migrator.destroy();
    }
    const canceller = backendCanceller(config.databaseUrl);
    closeCanceller = canceller.close;
    const timeout = config.dbStatementTimeoutMs;
    knex = knexFactory({
      client: cancellableClient(ClientPg, { cancel: canceller.cancel }),
      connection: config.databaseUrl,
      pool: {
        min: 0,
        max: config.dbPoolMax,
        // every pooled statement is bounded, whatever request sent it (SQLSTATE 57014 past it).
        // No JIT: a request's statements run for milliseconds, and the planner's costs for the
        // per-row access checks (docs/operations/access-benchmarks.md) cross its thresholds,
        // so it would spend 100 ms compiling what runs in 30.
        afterCreate: (connection: { query(sql: string, cb: (e: Error | null) => void): void }, done: (e: Error | null, c: unknown) => void) =>
          connection.query(`SET statement_timeout = ${timeout}; SET jit = off`, (e) => done(e, connection)),
      },
      searchPath,
      acquireConnectionTimeout: 30000,
    });
  } else {
    kind = 'embedded';
    let connection: Record<string, string> = {};
    if (!config.embeddedInMemory) {
      fs.mkdirSync(config.dataDir, { recursive: true });
      connection = { filename: `${config.dataDir}/pgdata` };
    }
    // PGlite runs each statement on this thread and ignores statement_timeout: the query limits are its defence
    knex = knexFactory({
      client: cancellableClient(ClientPgLite as unknown as typeof knexFactory.Client, { yieldBetweenStatements: true }),
      dialect: 'postgres',
      connection,
      acquireConnectionTimeout: 60000,
    });
    await knex.migrate.latest({ migrationSource, schemaName: config.databaseSchema });
  }
  return {
    knex,
    kind,
    cancellable: runCancellable,
    close: async () => {
      await knex.destroy();
      await closeCanceller();
    },
  };
}
