import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import { PGlite } from '@electric-sql/pglite';
import knexFactory, { Knex } from 'knex';
import type { ContentFiles } from './contentFiles';
import ClientPgLite from 'knex-pglite';
import type { Config } from '../config/config';
import { backendCanceller, cancellableClient, requestKnex } from './cancellation';
import { migrationSource } from './migrations';
import { DataDirLock, lockDataDir } from './dataDirLock';
import { embeddedClient } from './embeddedClient';
import { postgresClient } from './postgresClient';
import { partitionTables } from './partitioning';

export type DatabaseKind = 'embedded' | 'postgres';

/** The database handle shared by the server: knex over pg (PostgreSQL) or PGlite (embedded). */
export interface Database {
  knex: Knex;
  kind: DatabaseKind;
  /**
   * The same database for one request: its statements (through `knex`, and every session
   * and transaction opened from it) are stopped by its `abort`, the client going away: the
   * statement running is cancelled (PostgreSQL) and the next ones are refused.
   */
  forRequest(): RequestDatabase;
  /**
   * The handle outside every request, for work shared by several requests (a read that other
   * requests wait for): a client that goes away does not stop it.
   */
  shared: Knex;
  close(): Promise<void>;
}

/** A request's database (`Database.forRequest`). */
export interface RequestDatabase extends Database {
  /** Its client went away: stops its statements. */
  abort(): void;
  /** Whether `abort` was called. */
  aborted(): boolean;
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ClientPg = require('knex/lib/dialects/postgres') as typeof knexFactory.Client;

/**
 * PostgreSQL settings of the embedded database. PGlite sizes its memory like a server
 * PostgreSQL (128 MB of shared buffers, 100 connections), all of it inside this process's
 * WebAssembly memory, which never shrinks. Its files are read through the operating
 * system's page cache anyway, and there is one connection: smaller buffers cost little
 * (docs/operations/memory.md has the figures).
 */
/**
 * V8 compiles PGlite's busiest PostgreSQL functions again, optimised, in the background
 * while they run, by default on every thread of its pool at once. Each thread's scratch
 * memory stays in the C allocator's arena of that thread, freed but not given back (some
 * 70 MiB in four arenas after start-up; malloc_trim, which JavaScript cannot call, gives
 * 60 of them back). One compilation at a time leaves one arena of that size, and the same
 * code once done (docs/decisions/027-embedded-memory.md). Set before PGlite's module is
 * compiled; no other WebAssembly runs in the server.
 */
function oneWasmCompilationAtATime(): void {
  v8.setFlagsFromString('--wasm-num-compilation-tasks=1');
}

const EMBEDDED_START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB', '-c', 'max_connections=5', '-c', 'temp_buffers=2MB'];

/**
 * Creates a new embedded database (initdb) in a child process when `dir` has none yet.
 * initdb needs some 600 MB of WebAssembly memory which, once taken, this process would
 * keep for its whole life; a child process gives it back when it exits.
 */
async function createEmbeddedCluster(dir: string): Promise<void> {
  if (fs.existsSync(path.join(dir, 'PG_VERSION'))) return;
  const script =
    `const { PGlite } = require(${JSON.stringify(require.resolve('@electric-sql/pglite'))});` +
    `(async () => { const db = new PGlite(process.argv[1]); await db.waitReady; await db.close(); })()` +
    `.catch((e) => { process.stderr.write(String(e && e.message || e)); process.exit(1); });`;
  try {
    await promisify(execFile)(process.execPath, ['-e', script, dir], { maxBuffer: 1024 * 1024 });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '').trim();
    throw new Error(`cannot create the embedded database in ${dir}${stderr ? `: ${stderr.split('\n').pop()}` : ''}`);
  }
}

/**
 * Where large Binary content goes, carried by the knex config that every transaction of the
 * handle shares (src/store/contentFiles.ts). Files are synced where the database syncs its own.
 */
function contentFilesSetting(config: Config): { contentFiles?: ContentFiles } {
  if (!config.contentDir) return {};
  try {
    fs.mkdirSync(config.contentDir, { recursive: true, mode: 0o700 });
    fs.accessSync(config.contentDir, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw new Error(`cannot use the content directory ${config.contentDir} (CONTENT_DIR): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { contentFiles: { dir: config.contentDir, minBytes: config.contentFileMinBytes, sync: Boolean(config.databaseUrl) } };
}

/** The multivariate token statistics' target on the embedded database (1000 on PostgreSQL, migration 002). */
export const EMBEDDED_TOKEN_STATISTICS = 100;

export async function openDatabase(config: Config): Promise<Database> {
  // before anything is opened: a directory that cannot be used stops the start with nothing to undo
  const contentFiles = contentFilesSetting(config);
  let knex: Knex;
  let kind: DatabaseKind;
  let closeCanceller = async () => undefined as void;
  let lock: DataDirLock | undefined;
  if (config.databaseUrl) {
    kind = 'postgres';
    const searchPath = config.databaseSchema ? [config.databaseSchema, 'public'] : undefined;
    // Migrations run on a connection of their own, without the statement timeout: building an index may take long.
    // its connection failure is thrown to the caller (one line at start-up): knex's own warning with a stack is not wanted
    const quiet = { warn: () => undefined, error: () => undefined, debug: () => undefined, deprecate: () => undefined };
    const migrator = knexFactory({ client: 'pg', connection: config.databaseUrl, pool: { min: 0, max: 1 }, searchPath, log: quiet });
    try {
      if (config.databaseSchema) await migrator.raw(`CREATE SCHEMA IF NOT EXISTS "${config.databaseSchema}"`);
      await migrator.migrate.latest({ migrationSource, schemaName: config.databaseSchema });
      if (config.databasePartitions) await partitionTables(migrator, config.databasePartitions);
    } finally {
      await migrator.destroy();
    }
    const canceller = backendCanceller(config.databaseUrl);
    closeCanceller = canceller.close;
    const timeout = config.dbStatementTimeoutMs;
    knex = knexFactory({
      client: cancellableClient(postgresClient(ClientPg), { cancel: canceller.cancel }),
      connection: config.databaseUrl,
      ...contentFiles,
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
    let dataDir: string | undefined;
    if (!config.embeddedInMemory) {
      fs.mkdirSync(config.dataDir, { recursive: true });
      // before the files are opened: a second process on them would lose the first one's writes
      lock = lockDataDir(config.dataDir);
      dataDir = path.join(config.dataDir, 'pgdata');
      try {
        await createEmbeddedCluster(dataDir);
      } catch (e) {
        lock.release();
        throw e;
      }
    }
    oneWasmCompilationAtATime();
    const pglite = new PGlite(dataDir, { startParams: EMBEDDED_START_PARAMS });
    // a function: knex copies a settings object deeply, which a live database must not be
    const connection = (() => ({ pglite })) as unknown as Knex.ConnectionConfigProvider;
    // PGlite runs each statement on this thread and ignores statement_timeout: the query limits are its defence
    knex = knexFactory({
      client: cancellableClient(embeddedClient(ClientPgLite as unknown as typeof knexFactory.Client), { yieldBetweenStatements: true }),
      dialect: 'postgres',
      connection,
      acquireConnectionTimeout: 60000,
      ...contentFiles,
    });
    try {
      await knex.migrate.latest({ migrationSource, schemaName: config.databaseSchema });
      // the token statistics of migration 002 sample 300 rows per unit of target: 1000 on PostgreSQL, whose
      // autovacuum samples in a worker of its own; here the sample is held in the server's own memory, on its
      // one thread, when it is idle (docs/decisions/037-embedded-upkeep.md)
      await knex.raw(`ALTER STATISTICS idx_token_lookup_stats SET STATISTICS ${EMBEDDED_TOKEN_STATISTICS}`);
    } catch (e) {
      await knex.destroy().catch(() => undefined);
      lock?.release();
      throw e;
    }
  }
  const close = async () => {
    try {
      await knex.destroy();
      await closeCanceller();
    } finally {
      lock?.release();
    }
  };
  const forRequest = (): RequestDatabase => {
    const request = requestKnex(knex);
    return { knex: request.knex, kind, forRequest, shared: knex, close, abort: request.abort, aborted: request.aborted };
  };
  return { knex, kind, forRequest, shared: knex, close };
}
