/**
 * Seeds a database with the synthetic national-record dataset of scripts/syntheticData.ts,
 * straight through the store (newVersion + executeWrites, one bulk statement per batch,
 * one transaction per batch), not over HTTP.
 *
 *   node dist/scripts/seed.js --resources 1000000 [--batch 2000] [--seed 20250630] [--reset]
 *
 * Database: DATABASE_URL (and DATABASE_SCHEMA) for PostgreSQL, else the embedded PGlite
 * database under DATA_DIR (./data by default), exactly as the server would open it
 * (migrations included). Ends with ANALYZE (VACUUM ANALYZE on PostgreSQL) and prints the
 * write rate, where the data went and sample ids for scripts/bench-search.ts.
 */
import { performance } from 'node:perf_hooks';
import { configOrExit } from './commandLine';
import { newVersion } from '../src/interactions/common';
import type { InteractionContext } from '../src/interactions/types';
import { createLogger } from '../src/log';
import { defaultRegistryInstance } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';
import { executeWrites, VersionWrite } from '../src/store/writeVersions';
import { parseArgsOrExit, redactUrl, UsageError } from './benchLib';
import { DEFAULT_OPTIONS, generateDataset, SYSTEMS, SyntheticResource } from './syntheticData';

interface SeedOptions {
  resources: number;
  batch: number;
  seed: number;
  reset: boolean;
  observations: number;
  binaries: boolean;
}

const USAGE = `Usage: node dist/scripts/seed.js --resources N [--batch 2000] [--seed ${DEFAULT_OPTIONS.seed}] [--reset]
                                [--observations MEAN_PER_PATIENT] [--no-binaries]
Environment: DATABASE_URL=postgres://… [DATABASE_SCHEMA=name] for PostgreSQL, else DATA_DIR (embedded PGlite).
--reset empties the tables first (refused otherwise when the database already holds resources).`;


function parseArgs(argv: string[]): SeedOptions {
  const o: SeedOptions = { resources: 0, batch: 2000, seed: DEFAULT_OPTIONS.seed, reset: false, observations: 0, binaries: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const num = (min: number) => {
      const v = inline ?? argv[++i];
      const n = Number(v);
      if (v === undefined || !Number.isFinite(n) || n < min) throw new UsageError(`${name} needs a number >= ${min}, got "${v}"`);
      return n;
    };
    switch (name) {
      case '--resources':
        o.resources = Math.round(num(1));
        break;
      case '--batch':
        o.batch = Math.round(num(1));
        break;
      case '--seed':
        o.seed = Math.round(num(0));
        break;
      case '--observations':
        o.observations = num(0);
        break;
      case '--reset':
        o.reset = true;
        break;
      case '--no-binaries':
        o.binaries = false;
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`Unknown option ${arg}`);
    }
  }
  if (!o.resources) throw new UsageError('--resources is required');
  return o;
}

const TABLES = ['resource', 'resource_history', 'binary_content', 'binary_chunk', 'idx_token', 'idx_string', 'idx_reference', 'idx_date', 'idx_number', 'idx_quantity', 'idx_uri'];

const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function main(): Promise<void> {
  let o: SeedOptions;
  o = parseArgsOrExit(parseArgs, USAGE);
  const config = configOrExit({ ...process.env, LOG_LEVEL: 'silent' });
  const db = await openDatabase(config);
  const knex = db.knex;
  const ctx: InteractionContext = { config, registry: defaultRegistryInstance(), db, log: createLogger('silent'), pageTokenSecret: '' };
  const where =
    db.kind === 'postgres'
      ? `PostgreSQL ${redactUrl(config.databaseUrl!)}, schema ${config.databaseSchema ?? 'public (search_path default)'}`
      : `embedded PGlite, DATA_DIR=${config.dataDir}`;
  try {
    const existing = Number(((await knex.raw('SELECT count(*) AS n FROM resource')) as { rows: { n: string }[] }).rows[0].n);
    if (existing > 0) {
      if (!o.reset) {
        console.error(`The database already holds ${existing} resources (${where}). Use --reset to empty it first, or another DATABASE_SCHEMA / DATA_DIR.`);
        process.exit(1);
      }
      console.error(`--reset: emptying ${TABLES.join(', ')}`);
      await knex.raw(`TRUNCATE ${TABLES.join(', ')}`);
    }
    console.log(`Seeding ${fmt(o.resources)} resources (seed ${o.seed}, batches of ${o.batch}) into ${where}`);

    const counts = new Map<string, number>();
    const docsPerPatient = new Map<string, number>();
    const ins = new Map<string, string>();
    const indexRowsByKind = new Map<string, number>();
    let written = 0;
    let indexRows = 0;
    let binaryBytes = 0;
    const t0 = performance.now();
    let lastReport = t0;
    let buildMs = 0;
    let writeWaitMs = 0;

    const toWrite = (s: SyntheticResource): VersionWrite => {
      const w = newVersion(ctx, s.resource, { id: s.resource.id, versionId: 1, lastUpdated: s.lastUpdated, method: 'POST', binary: s.binary });
      const type = s.resource.resourceType;
      counts.set(type, (counts.get(type) ?? 0) + 1);
      if (type === 'Patient') {
        const nir = (s.resource.identifier as { system?: string; value?: string }[]).find((i) => i.system === SYSTEMS.insNirTest)?.value;
        if (nir) ins.set(s.resource.id, nir);
      } else if (type === 'DocumentReference') docsPerPatient.set(w.compartment, (docsPerPatient.get(w.compartment) ?? 0) + 1);
      if (w.index) {
        for (const [kind, rows] of Object.entries(w.index) as [string, unknown[]][]) {
          indexRows += rows.length;
          indexRowsByKind.set(kind, (indexRowsByKind.get(kind) ?? 0) + rows.length);
        }
      }
      if (s.binary) binaryBytes += s.binary.data.length;
      return w;
    };

    const writeBatch = (batch: VersionWrite[]) =>
      knex.transaction(async (trx) => {
        // Durability of a seed is not the point; the server's own writes keep the default.
        if (db.kind === 'postgres') await trx.raw('SET LOCAL synchronous_commit = off');
        await executeWrites(trx, batch);
      });

    // Pipeline: the next batch is built (index extraction) while the previous one is written.
    const source = generateDataset({ seed: o.seed, resources: o.resources, observationsPerPatient: o.observations, binaries: o.binaries });
    let inFlight: Promise<void> | undefined;
    let inFlightSize = 0;
    for (;;) {
      const b0 = performance.now();
      const batch: VersionWrite[] = [];
      while (batch.length < o.batch) {
        const next = source.next();
        if (next.done) break;
        batch.push(toWrite(next.value));
      }
      buildMs += performance.now() - b0;
      const w0 = performance.now();
      if (inFlight) {
        await inFlight;
        written += inFlightSize;
      }
      writeWaitMs += performance.now() - w0;
      if (batch.length === 0) break;
      inFlight = writeBatch(batch);
      inFlightSize = batch.length;
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        const s = (now - t0) / 1000;
        process.stderr.write(`… ${fmt(written)} / ${fmt(o.resources)} resources, ${fmt(written / s)} resources/s, ${fmt(indexRows / s)} index rows/s built\n`);
      }
    }
    const elapsed = (performance.now() - t0) / 1000;

    const a0 = performance.now();
    if (db.kind === 'postgres') {
      // the seeded schema's tables only (not every schema of a shared database), on one
      // connection without the pool's statement timeout, which a large schema outlasts
      const tables = (await knex.raw(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables WHERE schemaname = current_schema()`)).rows as { t: string }[];
      const connection = await knex.client.acquireConnection();
      try {
        await connection.query('SET statement_timeout = 0');
        if (tables.length > 0) await connection.query(`VACUUM ANALYZE ${tables.map((r) => r.t).join(', ')}`);
      } finally {
        await connection.query('RESET statement_timeout').catch(() => undefined);
        await knex.client.releaseConnection(connection);
      }
    } else await knex.raw('ANALYZE');
    const analyzeSeconds = (performance.now() - a0) / 1000;

    // Sample ids: the patient with the most documents, and a typical one.
    const byDocs = [...docsPerPatient].sort((a, b) => b[1] - a[1]);
    const heavy = byDocs[0];
    const median = byDocs[Math.floor(byDocs.length / 2)];
    let size = '';
    if (db.kind === 'postgres') {
      const r = (await knex.raw(
        `SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))::bigint) AS size FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname = current_schema()`,
      )) as { rows: { size: string }[] };
      size = r.rows[0].size;
    } else {
      const r = (await knex.raw(`SELECT pg_size_pretty(pg_database_size(current_database())) AS size`)) as { rows: { size: string }[] };
      size = r.rows[0].size;
    }

    console.log('');
    console.log(`Wrote ${fmt(written)} resources and ${fmt(indexRows)} index rows in ${fmt(elapsed, 1)} s:`);
    console.log(`  ${fmt(written / elapsed)} resources/s, ${fmt(indexRows / elapsed)} index rows/s, ${fmt((written + indexRows) / elapsed)} rows/s (resource + index rows; history rows and ${fmt(counts.get('Binary') ?? 0)} binary_content rows besides)`);
    console.log(`  building (index extraction) ${fmt(buildMs / 1000, 1)} s on the main thread; waiting for the database ${fmt(writeWaitMs / 1000, 1)} s`);
    console.log(`  ${db.kind === 'postgres' ? 'VACUUM ANALYZE' : 'ANALYZE'}: ${fmt(analyzeSeconds, 1)} s; tables now ${size}`);
    console.log(`  by type: ${[...counts].map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}`);
    console.log(`  index rows by kind: ${[...indexRowsByKind].filter(([, n]) => n > 0).map(([k, n]) => `${k} ${fmt(n)}`).join(', ')}; binary content ${fmt(binaryBytes / 1048576, 1)} MiB`);
    console.log(`Data: ${where}`);
    if (heavy) {
      console.log(`Samples (INS system ${SYSTEMS.insNirTest}):`);
      console.log(`  patient with the most documents: Patient/${heavy[0]} INS ${ins.get(heavy[0])} (${heavy[1]} documents)`);
      if (median) console.log(`  median patient: Patient/${median[0]} INS ${ins.get(median[0])} (${median[1]} documents)`);
    }
    console.log(
      JSON.stringify({
        resources: written,
        indexRows,
        seconds: Math.round(elapsed * 10) / 10,
        resourcesPerSecond: Math.round(written / elapsed),
        indexRowsPerSecond: Math.round(indexRows / elapsed),
        byType: Object.fromEntries(counts),
        database: where,
        size,
        seed: o.seed,
        samples: heavy ? { heavyPatient: heavy[0], heavyPatientIns: ins.get(heavy[0]), heavyPatientDocuments: heavy[1], medianPatient: median?.[0] } : undefined,
      }),
    );
  } finally {
    await db.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
