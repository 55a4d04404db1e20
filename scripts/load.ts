/**
 * Loads NDJSON resources into the database (docs/decisions/020-bulk-data.md):
 *
 *   npm run load -- FILE.ndjson [--batch 5000] [--durable] [--stop-on-error] [--restart]
 *
 * Database: DATABASE_URL (and DATABASE_SCHEMA) for PostgreSQL, else the embedded database
 * under DATA_DIR, opened as the server opens it (migrations included). Not while a server
 * uses the same embedded DATA_DIR (its lock refuses). Every line is validated, indexed and
 * checked as a create would be (docs/decisions/024-bulk-load.md); resources keep their ids;
 * batches go in by COPY on PostgreSQL, each with a checkpoint, so running it again after an
 * interruption reads on from the last batch committed (and skips lines already stored).
 * Refused lines are listed with their number and reason; the exit status is 1 when there
 * are any.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Knex } from 'knex';
import { configOrExit } from './commandLine';
import { conformanceFromApi, syncConformanceResources } from '../src/interactions/conformanceResources';
import type { InteractionContext } from '../src/interactions/types';
import { inTransaction } from '../src/interactions/unitOfWork';
import { loadNdjson } from '../src/load/ndjsonLoad';
import { PreparePool } from '../src/load/preparePool';
import { createLogger } from '../src/log';
import { defaultRegistryInstance, findProfilesDir } from '../src/registry/registry';
import { openDatabase } from '../src/store/database';
import { INTERNAL_ACCESS } from '../src/store/session';
import { createServerValidator } from '../src/validation/forServer';
import { parseArgsOrExit, redactUrl, UsageError } from './benchLib';

/**
 * On PostgreSQL one preparing thread per core: the loader's own thread mostly waits for the
 * database. On the embedded database the writing runs on the loader's thread and bounds the
 * load: threads gain nothing there (docs/decisions/024-bulk-load.md, amendment).
 */
// at most 8 by default: each thread holds a validator of its own (about 95 MB)
const DEFAULT_THREADS = Math.min(os.availableParallelism(), 8);

const USAGE = `Usage: npm run load -- FILE.ndjson [--batch 5000] [--threads N] [--durable] [--stop-on-error] [--restart]
Environment: DATABASE_URL=postgres://… [DATABASE_SCHEMA=name] for PostgreSQL, else DATA_DIR (embedded).
--durable: commit each batch synchronously on PostgreSQL (by default a crash may lose the last
batches, which a rerun writes again).
--stop-on-error: stop at the first refused line (the lines before it are committed; a rerun starts at it).
--restart: ignore the file's checkpoint and read it from the first line (what is stored is still skipped).
--threads: threads that validate and index lines in parallel (default: one per core up to 8, ${DEFAULT_THREADS} here, on PostgreSQL; 0 on the embedded database); 0 does it on the loader's own thread.`;

interface Options {
  file: string;
  batch: number;
  durable: boolean;
  stopOnError: boolean;
  restart: boolean;
  /** Threads that validate and index in parallel; 0: the loader's own thread does it. */
  /** Undefined: the default of the database. */
  threads: number | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { file: '', batch: 5000, durable: false, stopOnError: false, restart: false, threads: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--batch') {
      o.batch = Number(argv[++i]);
      if (!Number.isInteger(o.batch) || o.batch < 1 || o.batch > 100_000) throw new UsageError('--batch needs a number from 1 to 100000');
    } else if (arg === '--durable') o.durable = true;
    else if (arg === '--stop-on-error') o.stopOnError = true;
    else if (arg === '--restart') o.restart = true;
    else if (arg === '--threads') {
      o.threads = Number(argv[++i]);
      if (!Number.isInteger(o.threads) || o.threads < 0 || o.threads > 64) throw new UsageError('--threads needs a number from 0 to 64');
    }
    else if (arg === '--help' || arg === '-h') throw new UsageError('');
    else if (arg.startsWith('-')) throw new UsageError(`Unknown option ${arg}`);
    else if (o.file) throw new UsageError('One file at a time');
    else o.file = arg;
  }
  if (!o.file) throw new UsageError('FILE.ndjson is required');
  if (!fs.existsSync(o.file)) throw new UsageError(`${o.file}: no such file`);
  return o;
}

/**
 * CPU (ms) used so far by the server processes of the connections to this database (PostgreSQL
 * on this host: read from /proc); undefined when they cannot be read.
 */
async function backendCpuMs(knex: Knex): Promise<number | undefined> {
  const rows = (await knex.raw(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)).rows as { pid: number }[];
  const tick = 100; // USER_HZ
  let total = 0;
  for (const { pid } of rows) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += ((Number(fields[11]) + Number(fields[12])) / tick) * 1000;
    } catch {
      return undefined;
    }
  }
  return total;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const o = parseArgsOrExit(parseArgs, USAGE);
  const config = configOrExit({ ...process.env, LOG_LEVEL: 'silent' });
  const db = await openDatabase(config);
  const validator = createServerValidator();
  const ctx: InteractionContext = { config, registry: defaultRegistryInstance(), db, log: createLogger('silent'), pageTokenSecret: '', validator, expandValueSet: (url) => validator.valueSetCodes(url) };
  try {
    // the profiles and conformance resources stored, as the server validates with them
    await inTransaction(ctx, INTERNAL_ACCESS, (session) => syncConformanceResources(ctx, session, findProfilesDir()));
    const threads = o.threads ?? (db.kind === 'postgres' ? DEFAULT_THREADS : 0);
    const pool = threads > 0 ? await PreparePool.start(threads, conformanceFromApi(validator)) : undefined;
    const where = db.kind === 'postgres' ? `PostgreSQL ${redactUrl(config.databaseUrl!)}${config.databaseSchema ? `, schema ${config.databaseSchema}` : ''}` : `embedded, DATA_DIR=${config.dataDir}`;
    const size = fs.statSync(o.file).size;
    console.log(`Loading ${o.file} (${fmt(size / 1024 / 1024)} MiB) into ${where}, batches of ${o.batch}, ${pool ? `${pool.size} preparing thread${pool.size > 1 ? 's' : ''}` : 'prepared on the loader\'s thread'}`);
    let last = 0;
    let lastWritten = 0;
    const t0 = Date.now();
    // this process's CPU (parsing, validation, index extraction): the figure machine load barely moves
    const cpu0 = process.cpuUsage();
    const report = await loadNdjson(ctx, o.file, {
      batch: o.batch,
      durable: o.durable,
      stopOnError: o.stopOnError,
      restart: o.restart,
      pool,
      onProgress: (p) => {
        const now = Date.now();
        if (now - last < 5000) return;
        const rate = last ? ((p.written - lastWritten) / (now - last)) * 1000 : 0;
        last = now;
        lastWritten = p.written;
        const overall = (p.written / Math.max(now - t0, 1)) * 1000;
        process.stderr.write(
          `… line ${fmt(p.lines)}${p.resumedAt ? ` (resumed after line ${fmt(p.resumedAt)})` : ''}: ${fmt(p.written)} written (${fmt(rate)}/s now, ${fmt(overall)}/s overall), ${fmt(p.skipped)} already there, ${fmt(p.refused)} refused\n`,
        );
      },
    });
    await pool?.close();
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    for (const r of report.refusals) console.error(`line ${r.line}: ${r.reason}`);
    const ph = report.phases;
    console.log(`wall time: preparing batches ${(ph.prepare / 1000).toFixed(1)} s (parse, validate, extract), writing them ${(ph.write / 1000).toFixed(1)} s (checks, COPY, commit; overlaps the preparing of the next), waiting for a write ${(ph.waited / 1000).toFixed(1)} s`);
    if (report.resumedAt) console.log(`resumed from the checkpoint after line ${fmt(report.resumedAt)}`);
    console.log(
      `${fmt(report.lines)} lines in ${report.seconds.toFixed(1)} s: ${fmt(report.written)} written (${fmt(report.written / Math.max(report.seconds, 0.001))} resources/s), ${fmt(report.skipped)} already there, ${fmt(report.refused)} refused`,
    );
    console.log(`loader CPU: ${(cpuMs / 1000).toFixed(1)} s, ${(cpuMs / Math.max(report.lines - report.resumedAt, 1)).toFixed(3)} ms per line (${fmt(((report.lines - report.resumedAt) / Math.max(cpuMs, 1)) * 1000)} lines per CPU-second)`);
    if (db.kind === 'postgres') {
      // PostgreSQL's side of the work: the CPU of this database's server processes (the loader's connections)
      const pgMs = await backendCpuMs(db.knex);
      if (pgMs !== undefined) console.log(`PostgreSQL CPU (this database's backends): ${(pgMs / 1000).toFixed(1)} s, ${(pgMs / Math.max(report.written, 1)).toFixed(3)} ms per resource written`);
    }
    // fresh statistics for the planner; a large table takes longer than a request's statement timeout
    if (report.written > 0) await db.knex.transaction(async (trx) => {
      await trx.raw('SET LOCAL statement_timeout = 0');
      await trx.raw('ANALYZE');
    });
    process.exitCode = report.refused > 0 ? 1 : 0;
  } finally {
    await db.close();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
