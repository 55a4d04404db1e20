/**
 * Loads NDJSON resources into the database (docs/decisions/020-bulk-data.md):
 *
 *   npm run load -- FILE.ndjson [--batch 1000] [--durable]
 *
 * Database: DATABASE_URL (and DATABASE_SCHEMA) for PostgreSQL, else the embedded database
 * under DATA_DIR, opened as the server opens it (migrations included). Not while a server
 * uses the same embedded DATA_DIR (its lock refuses). Every line is validated, indexed and
 * checked as a create would be; resources keep their ids; lines already stored are skipped,
 * so running it again after an interruption resumes. Refused lines are listed with their
 * number and reason; the exit status is 1 when there are any.
 */
import fs from 'node:fs';
import { ConfigError, loadConfig } from '../src/config/config';
import { syncConformanceResources } from '../src/interactions/conformanceResources';
import type { InteractionContext } from '../src/interactions/types';
import { inTransaction } from '../src/interactions/unitOfWork';
import { loadNdjson } from '../src/load/ndjsonLoad';
import { createLogger } from '../src/log';
import { defaultRegistryInstance, findProfilesDir } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';
import { INTERNAL_ACCESS } from '../src/store/session';
import { createServerValidator } from '../src/validation/forServer';
import { parseArgsOrExit, redactUrl, UsageError } from './benchLib';

const USAGE = `Usage: npm run load -- FILE.ndjson [--batch 1000] [--durable]
Environment: DATABASE_URL=postgres://… [DATABASE_SCHEMA=name] for PostgreSQL, else DATA_DIR (embedded).
--durable: commit each batch synchronously on PostgreSQL (by default a crash may lose the last
batches, which a rerun writes again).`;

interface Options {
  file: string;
  batch: number;
  durable: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { file: '', batch: 1000, durable: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--batch') {
      o.batch = Number(argv[++i]);
      if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 100_000) throw new UsageError('--batch needs a number from 1 to 100000');
    } else if (arg === '--durable') o.durable = true;
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else if (arg.startsWith('-')) throw new UsageError(`Unknown option ${arg}`);
    else if (o.file) throw new UsageError('One file at a time');
    else o.file = arg;
  }
  if (!o.file) throw new UsageError('FILE.ndjson is required');
  if (!fs.existsSync(o.file)) throw new UsageError(`${o.file}: no such file`);
  return o;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const o = parseArgsOrExit(parseArgs, USAGE);
  let config;
  try {
    config = loadConfig({ ...process.env, LOG_LEVEL: 'silent' });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`Configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  const db = await openDatabase(config);
  const validator = createServerValidator();
  const ctx: InteractionContext = { config, registry: defaultRegistryInstance(), db, log: createLogger('silent'), pageTokenSecret: '', validator, expandValueSet: (url) => validator.valueSetCodes(url) };
  try {
    // the profiles and conformance resources stored, as the server validates with them
    await inTransaction(ctx, INTERNAL_ACCESS, (session) => syncConformanceResources(ctx, session, findProfilesDir()));
    const where = db.kind === 'postgres' ? `PostgreSQL ${redactUrl(config.databaseUrl!)}${config.databaseSchema ? `, schema ${config.databaseSchema}` : ''}` : `embedded, DATA_DIR=${config.dataDir}`;
    const size = fs.statSync(o.file).size;
    console.log(`Loading ${o.file} (${fmt(size / 1024 / 1024)} MiB) into ${where}, batches of ${o.batch}`);
    let last = 0;
    // this process's CPU (parsing, validation, index extraction): the figure machine load barely moves
    const cpu0 = process.cpuUsage();
    const report = await loadNdjson(ctx, o.file, {
      batch: o.batch,
      durable: o.durable,
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < 2000) return;
        last = now;
        process.stderr.write(`… line ${fmt(p.lines)}: ${fmt(p.written)} written, ${fmt(p.skipped)} already there, ${fmt(p.refused)} refused\n`);
      },
    });
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    for (const r of report.refusals) console.error(`line ${r.line}: ${r.reason}`);
    console.log(
      `${fmt(report.lines)} lines in ${report.seconds.toFixed(1)} s: ${fmt(report.written)} written (${fmt(report.written / Math.max(report.seconds, 0.001))} resources/s), ${fmt(report.skipped)} already there, ${fmt(report.refused)} refused`,
    );
    console.log(`loader CPU: ${(cpuMs / 1000).toFixed(1)} s, ${(cpuMs / Math.max(report.lines, 1)).toFixed(3)} ms per line (${fmt((report.lines / Math.max(cpuMs, 1)) * 1000)} lines per CPU-second)`);
    if (report.written > 0) await db.knex.raw('ANALYZE');
    process.exitCode = report.refused > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
