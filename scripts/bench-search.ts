/**
 * Search latency benchmark on a seeded database (scripts/seed.ts), over HTTP
 * (docs/operations/search-benchmarks.md).
 *
 *   DATABASE_URL=postgres://… DATABASE_SCHEMA=bench1m node dist/scripts/bench-search.js
 *   DATA_DIR=/tmp/bench-embedded node dist/scripts/bench-search.js
 *   node dist/scripts/bench-search.js --url http://host:8080/fhir --db postgres://… [--schema bench1m]
 *
 * Query kinds: identifier lookup, a patient's documents by type and date range sorted by
 * date, a chained search on the patient's INS, _revinclude (documents of a patient,
 * access traces of a document), compartment search and $everything. For each: p50/p99
 * latency and throughput with 1 and 8 concurrent clients (bounded by a request count
 * and a time limit), and the EXPLAIN (ANALYZE, BUFFERS) plan of every SQL statement the
 * query runs, captured from the in-process server's knex ('query' events). Seq Scans on
 * the resource and index tables are flagged. Prints a header, tables, plans and, on the
 * last line, one JSON object. No assertions.
 *
 * The load runs in a worker thread so that it does not share the event loop of the
 * in-process server. With --url, the load goes to that server; an in-process server is
 * still opened on --db to sample ids and capture the SQL of each kind (PostgreSQL only).
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import { isMainThread } from 'node:worker_threads';
import type { Knex } from 'knex';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/log';
import { RunningServer, startServer } from '../src/server';
import { fmt, httpClient, parseArgsOrExit, percentile, pgliteVersion, redactUrl, table, UsageError, serveTasks, TaskWorker } from './benchLib';
import { Prng, SYSTEMS } from './syntheticData';

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

interface Options {
  url: string | undefined;
  db: string | undefined;
  schema: string | undefined;
  /** Measured requests per (kind, concurrency), at most. */
  requests: number;
  /** Seconds per (kind, concurrency), at most. */
  seconds: number;
  concurrency: number[];
  /** Patients sampled (the three with the most documents are always added). */
  samples: number;
  seed: number;
  explain: boolean;
  /** Print each statement with its bindings inlined (for psql). */
  sql: boolean;
  only: string[] | undefined;
  /** Run as the médecin holding the most declared consents, on their records: the searches carry a professional's access constraints. */
  asPractitioner: boolean;
}


const USAGE = `Usage: node dist/scripts/bench-search.js [--requests 400] [--seconds 15] [--concurrency 1,8] [--samples 100]
                                        [--seed 1] [--no-explain] [--sql] [--only identifier,chained,...] [--as-practitioner]
                                        [--url http://host:port/fhir --db postgres://… [--schema name]]
Environment: DATABASE_URL (+ DATABASE_SCHEMA) or DATA_DIR of a database seeded by scripts/seed.ts.`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    url: undefined,
    db: undefined,
    schema: undefined,
    requests: 400,
    seconds: 15,
    concurrency: [1, 8],
    samples: 100,
    seed: 1,
    explain: true,
    sql: false,
    only: undefined,
    asPractitioner: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${name} needs a value`);
      return v;
    };
    const num = (min: number) => {
      const v = value();
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) throw new UsageError(`${name} needs a number >= ${min}, got "${v}"`);
      return n;
    };
    switch (name) {
      case '--url':
        o.url = value().replace(/\/+$/, '');
        break;
      case '--db':
        o.db = value();
        break;
      case '--schema':
        o.schema = value();
        break;
      case '--requests':
        o.requests = Math.round(num(1));
        break;
      case '--seconds':
        o.seconds = num(0.1);
        break;
      case '--concurrency':
        o.concurrency = value().split(',').map((s) => Math.max(1, Math.round(Number(s))));
        if (o.concurrency.some((n) => !Number.isFinite(n))) throw new UsageError('--concurrency takes numbers separated by commas');
        break;
      case '--samples':
        o.samples = Math.round(num(1));
        break;
      case '--seed':
        o.seed = Math.round(num(0));
        break;
      case '--no-explain':
        o.explain = false;
        break;
      case '--sql':
        o.sql = true;
        break;
      case '--only':
        o.only = value().split(',');
        break;
      case '--as-practitioner':
        o.asPractitioner = true;
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`Unknown option ${arg}`);
    }
  }
  if (o.url && !o.db) throw new UsageError('--url needs --db (a PostgreSQL URL of the same database) to sample ids and capture plans');
  return o;
}

// ---------------------------------------------------------------------------
// Query kinds
// ---------------------------------------------------------------------------

export interface PatientSample {
  id: string;
  nir: string;
  documents: number;
  /** A document of the patient: its type token and date. */
  docType: string;
  docDate: string;
  /** A document of the patient with access traces (AuditEvent.entity), if any. */
  auditedDoc: string | undefined;
}

interface Kind {
  name: string;
  title: string;
  /** p99 target, single client. */
  targetP99: number;
  path(s: PatientSample): string | undefined;
  /** Why a response is wrong, or undefined. */
  check(bundle: Bundle, s: PatientSample): string | undefined;
}

interface Bundle {
  resourceType?: string;
  total?: number;
  entry?: { resource?: { resourceType?: string; id?: string }; search?: { mode?: string } }[];
}

const enc = encodeURIComponent;
const shiftYears = (iso: string, years: number) => {
  const d = new Date(iso);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.toISOString().slice(0, 10);
};
const matches = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode !== 'include' && e.resource?.resourceType !== 'OperationOutcome');
const included = (b: Bundle) => (b.entry ?? []).filter((e) => e.search?.mode === 'include');

export const KINDS: Kind[] = [
  {
    name: 'identifier',
    title: 'Patient?identifier=INS system|NIR',
    targetP99: 5,
    path: (s) => `/Patient?identifier=${enc(`${SYSTEMS.insNirTest}|${s.nir}`)}`,
    check: (b, s) => (matches(b).length === 1 && matches(b)[0].resource?.id === s.id ? undefined : `expected Patient/${s.id}, got ${matches(b).length} matches`),
  },
  {
    name: 'type-date',
    title: 'DocumentReference?subject&type&date=ge&date=le&_sort=-date',
    targetP99: 20,
    path: (s) =>
      `/DocumentReference?subject=${enc(`Patient/${s.id}`)}&type=${enc(s.docType)}&date=ge${shiftYears(s.docDate, -1)}&date=le${shiftYears(s.docDate, 1)}&_sort=-date`,
    check: (b) => (matches(b).length >= 1 ? undefined : 'no document matched (a document of this type and date exists)'),
  },
  {
    name: 'chained',
    title: 'DocumentReference?subject.identifier=INS system|NIR',
    targetP99: 20,
    path: (s) => `/DocumentReference?subject.identifier=${enc(`${SYSTEMS.insNirTest}|${s.nir}`)}`,
    check: (b, s) => (matches(b).length === Math.min(20, s.documents) ? undefined : `expected ${Math.min(20, s.documents)} documents on the first page, got ${matches(b).length}`),
  },
  {
    name: 'revinclude-patient',
    title: 'Patient?_id=x&_revinclude=DocumentReference:subject',
    targetP99: 20,
    path: (s) => `/Patient?_id=${s.id}&_revinclude=${enc('DocumentReference:subject')}`,
    check: (b, s) => (matches(b).length === 1 && included(b).length === s.documents ? undefined : `expected 1 match and ${s.documents} included, got ${matches(b).length} and ${included(b).length}`),
  },
  {
    name: 'revinclude-audit',
    title: 'DocumentReference?_id=x&_revinclude=AuditEvent:entity',
    targetP99: 20,
    path: (s) => (s.auditedDoc ? `/DocumentReference?_id=${s.auditedDoc}&_revinclude=${enc('AuditEvent:entity')}` : undefined),
    check: (b) => (matches(b).length === 1 && included(b).length >= 1 ? undefined : `expected 1 match and >= 1 AuditEvent, got ${matches(b).length} and ${included(b).length}`),
  },
  {
    name: 'compartment',
    title: 'Patient/x/DocumentReference?_sort=-date',
    targetP99: 20,
    path: (s) => `/Patient/${s.id}/DocumentReference?_sort=-date`,
    check: (b, s) => (matches(b).length === Math.min(20, s.documents) ? undefined : `expected ${Math.min(20, s.documents)} documents, got ${matches(b).length}`),
  },
  {
    name: 'everything',
    title: 'Patient/x/$everything?_count=100',
    targetP99: 20,
    path: (s) => `/Patient/${s.id}/$everything?_count=100`,
    check: (b) => (matches(b).length >= 2 ? undefined : `expected the patient and its resources, got ${matches(b).length} entries`),
  },
];

// ---------------------------------------------------------------------------
// Load generation (worker thread)
// ---------------------------------------------------------------------------

interface LoadTask {
  url: string;
  paths: string[];
  concurrency: number;
  maxRequests: number;
  maxMs: number;
  /** Unmeasured requests first (per client). */
  warmup: number;
  /** The bearer token every request carries. */
  token?: string;
}

interface LoadResult {
  requests: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latencies: number[];
}

async function runLoad(task: LoadTask): Promise<LoadResult> {
  const client = httpClient('http', task.url, task.concurrency, task.token);
  try {
    const one = async (p: string) => {
      const r = await client.request('GET', p);
      if (r.status !== 200) throw new Error(`GET ${p}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: task.concurrency }, async (_, c) => {
        for (let i = 0; i < task.warmup; i++) await one(task.paths[(c * 7919 + i) % task.paths.length]).catch(() => undefined);
      }),
    );
    const latencies: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let issued = 0;
    const started = performance.now();
    const deadline = started + task.maxMs;
    await Promise.all(
      Array.from({ length: task.concurrency }, async () => {
        while (issued < task.maxRequests && performance.now() < deadline) {
          issued++;
          const p = task.paths[next++ % task.paths.length];
          const t0 = performance.now();
          try {
            await one(p);
            latencies.push(performance.now() - t0);
          } catch (e) {
            errors++;
            firstError ??= (e as Error).message;
          }
        }
      }),
    );
    return { requests: issued, errors, firstError, elapsedMs: performance.now() - started, latencies };
  } finally {
    client.close();
  }
}

const WORKER_ROLE = 'bench-search-client';

serveTasks<LoadTask, LoadResult>(WORKER_ROLE, runLoad);

class LoadWorker extends TaskWorker<LoadTask, LoadResult> {
  constructor() {
    super(__filename, WORKER_ROLE);
  }
}

// ---------------------------------------------------------------------------
// SQL capture and plans
// ---------------------------------------------------------------------------

export interface Statement {
  sql: string;
  bindings: unknown[];
}

interface PlanReport {
  sql: string;
  inlined: string;
  plan: string;
  executionMs: number | undefined;
  seqScans: string[];
  /** Why the plan looks wrong: Seq Scans, big filters, many loops, slow execution. */
  warnings: string[];
}

/** Plans slower than this, or discarding / looping more rows than ROWS_WARNING, are flagged. */
const SLOW_MS = 20;
const ROWS_WARNING = 10000;

const WATCHED_TABLES = /^(resource|resource_history|binary_content|idx_[a-z]+)$/;

/** The statement with its $n bindings written as literals (for psql). */
function inlineBindings(sql: string, bindings: unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_, n: string) => {
    const v = bindings[Number(n) - 1];
    if (v === null || v === undefined) return 'NULL';
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    if (v instanceof Date) return `'${v.toISOString()}'`;
    return `'${String(v).replace(/'/g, "''")}'`;
  });
}

/** Runs one statement on the driver's own connection (pg Client or PGlite), $n placeholders and all. */
/** Runs `sql` in a transaction rolled back: EXPLAIN ANALYZE executes it, and a request's own writes (its AuditEvent) must not be written twice. */
async function driverQuery(knex: Knex, sql: string, bindings: unknown[]): Promise<Record<string, unknown>[]> {
  const client = knex.client as { acquireConnection(): Promise<{ query(sql: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }> }>; releaseConnection(c: unknown): Promise<void> };
  const conn = await client.acquireConnection();
  try {
    await conn.query('BEGIN');
    try {
      return (await conn.query(sql, bindings)).rows;
    } finally {
      await conn.query('ROLLBACK');
    }
  } finally {
    await client.releaseConnection(conn);
  }
}

/** A statement that writes (a request's AuditEvent, its notice): replayed, it would write the same ids again. */
const WRITES = /^\s*(INSERT|UPDATE|DELETE)\b|\b(INSERT\s+INTO|DELETE\s+FROM)\b/i;

export async function explain(knex: Knex, s: Statement): Promise<PlanReport> {
  if (WRITES.test(s.sql)) return { sql: s.sql, inlined: inlineBindings(s.sql, s.bindings), plan: '(a write of the request: not replayed)', executionMs: undefined, seqScans: [], warnings: [] };
  const rows = await driverQuery(knex, `EXPLAIN (ANALYZE, BUFFERS) ${s.sql}`, s.bindings);
  const plan = rows.map((r) => String(r['QUERY PLAN'])).join('\n');
  const m = /Execution Time: ([\d.]+) ms/.exec(plan);
  const seqScans = [...new Set([...plan.matchAll(/Seq Scan on (\w+)/g)].map((x) => x[1]).filter((t) => WATCHED_TABLES.test(t)))];
  const warnings = seqScans.map((t) => `Seq Scan on ${t}`);
  // Index walks that filter out most of what they read, and inner sides run once per outer row.
  let node = '';
  for (const line of plan.split('\n')) {
    const n = /(?:->\s+)?((?:Parallel )?(?:Index Only Scan|Index Scan|Bitmap Heap Scan|Seq Scan)(?: Backward)?(?: using \w+)? on \w+)/.exec(line);
    if (n) {
      node = n[1];
      const loops = /loops=(\d+)\)/.exec(line);
      if (loops && Number(loops[1]) >= ROWS_WARNING) warnings.push(`${node} run ${fmt(Number(loops[1]), 0)} times`);
      continue;
    }
    const removed = /Rows Removed by Filter: (\d+)/.exec(line);
    if (removed && Number(removed[1]) >= ROWS_WARNING) warnings.push(`${node || 'a node'} discards ${fmt(Number(removed[1]), 0)} rows by filter`);
  }
  const executionMs = m ? Number(m[1]) : undefined;
  if (executionMs !== undefined && executionMs >= SLOW_MS) warnings.push(`${fmt(executionMs, 0)} ms`);
  return { sql: s.sql, inlined: inlineBindings(s.sql, s.bindings), plan, executionMs, seqScans, warnings };
}

// ---------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------

async function rows<T>(knex: Knex, sql: string, bindings: unknown[] = []): Promise<T[]> {
  return ((await knex.raw(sql, bindings as Knex.RawBinding[])) as { rows: T[] }).rows;
}

export async function samplePatients(knex: Knex, count: number, seed: number, among?: string[]): Promise<{ samples: PatientSample[]; heavy: string[] }> {
  const ids = among ?? (await rows<{ id: string }>(knex, `SELECT id FROM resource WHERE resource_type = 'Patient' AND NOT deleted ORDER BY id`)).map((r) => r.id);
  if (ids.length === 0) throw new Error('No Patient in this database: seed it first (scripts/seed.ts)');
  const heavy = (
    await rows<{ compartment: string; n: string }>(
      knex,
      `SELECT compartment, count(*) AS n FROM resource WHERE resource_type = 'DocumentReference' AND NOT deleted AND compartment <> ''${among ? ' AND compartment = ANY(?::text[])' : ''}
        GROUP BY compartment ORDER BY n DESC, compartment LIMIT 3`,
      among ? [`{${among.map((i) => `"${i}"`).join(',')}}`] : [],
    )
  ).map((r) => r.compartment);
  const rng = new Prng(seed);
  const chosen = new Set<string>(heavy);
  while (chosen.size < Math.min(ids.length, count + heavy.length)) chosen.add(ids[rng.int(ids.length)]);
  const samples: PatientSample[] = [];
  for (const id of chosen) {
    const [patient] = await rows<{ body: string }>(knex, `SELECT body::text AS body FROM resource WHERE resource_type = 'Patient' AND id = ?`, [id]);
    const nir = (JSON.parse(patient.body).identifier as { system?: string; value?: string }[] | undefined)?.find((i) => i.system === SYSTEMS.insNirTest)?.value;
    const docs = await rows<{ id: string; body: string }>(
      knex,
      `SELECT id, body::text AS body FROM resource WHERE compartment = ? AND resource_type = 'DocumentReference' AND NOT deleted ORDER BY id`,
      [id],
    );
    if (!nir || docs.length === 0) continue;
    const doc = JSON.parse(docs[rng.int(docs.length)].body) as { type?: { coding?: { system?: string; code?: string }[] }; date?: string };
    const coding = doc.type?.coding?.[0];
    if (!coding?.code || !doc.date) continue;
    const [audited] = await rows<{ target_id: string }>(
      knex,
      `SELECT target_id FROM idx_reference WHERE compartment = ? AND resource_type = 'AuditEvent' AND param = 'entity' AND target_type = 'DocumentReference' ORDER BY resource_id LIMIT 1`,
      [id],
    );
    samples.push({ id, nir, documents: docs.length, docType: `${coding.system ?? ''}|${coding.code}`, docDate: doc.date, auditedDoc: audited?.target_id });
  }
  return { samples, heavy };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

const round = (n: number | undefined, d = 2) => (n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** d) / 10 ** d);


async function main(): Promise<void> {
  let o: Options;
  o = parseArgsOrExit(parseArgs, USAGE);
  const progress = (s: string) => process.stderr.write(`… ${s}\n`);
  const env: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' };
  if (o.db) {
    env.DATABASE_URL = o.db;
    env.DATABASE_SCHEMA = o.schema ?? process.env.DATABASE_SCHEMA;
  }
  const config = loadConfig(env);
  if (!config.databaseUrl && !fs.existsSync(path.join(config.dataDir, 'pgdata'))) {
    console.error(`No embedded database under ${config.dataDir} (set DATA_DIR, or DATABASE_URL): seed one first with scripts/seed.ts`);
    process.exit(2);
  }
  const server: RunningServer = await startServer(config, createLogger('silent'));
  const worker = new LoadWorker();
  try {
    const knex = server.ctx.db.knex;
    const localUrl = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/fhir`;
    const target = o.url ?? localUrl;
    // the in-process server's local issuer signs an unrestricted test client's token; a server at --url takes FHIR_TOKEN
    // --as-practitioner: the médecin (TRE_G15 10) whom the most declared consents name (scripts/generate-ndjson.ts writes them)
    const practitioner = o.asPractitioner
      ? (
          await rows<{ id: string; n: string }>(
            knex,
            `SELECT c.target_id AS id, count(DISTINCT c.compartment) AS n FROM idx_reference c
              WHERE c.resource_type = 'Consent' AND c.param = 'actor' AND c.target_type = 'Practitioner'
                AND EXISTS (SELECT 1 FROM idx_reference pr JOIN idx_token t ON t.compartment = pr.compartment AND t.resource_type = pr.resource_type AND t.resource_id = pr.resource_id
                             WHERE pr.resource_type = 'PractitionerRole' AND pr.param = 'practitioner' AND pr.target_type = 'Practitioner' AND pr.target_id = c.target_id AND t.param = 'role' AND t.code = '10')
              GROUP BY c.target_id ORDER BY n DESC, c.target_id LIMIT 1`,
          )
        )[0]?.id
      : undefined;
    if (o.asPractitioner && !practitioner) throw new Error('--as-practitioner: no médecin is named by a declared consent here (load a dataset from npm run generate)');
    const records = practitioner
      ? (await rows<{ compartment: string }>(knex, `SELECT DISTINCT compartment FROM idx_reference WHERE resource_type = 'Consent' AND param = 'actor' AND target_type = 'Practitioner' AND target_id = ?`, [practitioner])).map((r) => r.compartment)
      : undefined;
    const token = o.url
      ? process.env.FHIR_TOKEN
      : practitioner
        ? await server.devIssuer?.mintToken({ fhirUser: `Practitioner/${practitioner}`, scope: 'user/*.rs', sub: 'bench-search' })
        : await server.devIssuer?.mintToken({ scope: 'conformance-testing', sub: 'bench-search' });
    // after minting: the development issuer signs for the audience it was started with
    server.ctx.config.baseUrl = localUrl;
    const authorization: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};

    // --- header --------------------------------------------------------------------
    const version = (await rows<{ server_version: string }>(knex, 'SHOW server_version'))[0]?.server_version ?? '?';
    const kind = server.ctx.db.kind;
    const dbDescription =
      kind === 'postgres'
        ? `PostgreSQL ${version}, ${redactUrl(config.databaseUrl!)} schema ${config.databaseSchema ?? 'public'}`
        : `embedded PGlite ${pgliteVersion()} (PostgreSQL ${version}), DATA_DIR=${config.dataDir}`;
    const byType = await rows<{ resource_type: string; n: string }>(knex, `SELECT resource_type, count(*) AS n FROM resource WHERE NOT deleted GROUP BY resource_type ORDER BY count(*) DESC`);
    const total = byType.reduce((a, r) => a + Number(r.n), 0);
    const tables = await rows<{ relname: string; n: string; size: string }>(
      knex,
      `SELECT c.relname, c.reltuples::bigint AS n, pg_size_pretty(pg_total_relation_size(c.oid)) AS size FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE c.relkind = 'r' AND ns.nspname = current_schema() AND (c.relname LIKE 'idx\\_%' OR c.relname IN ('resource', 'resource_history', 'binary_content')) ORDER BY c.relname`,
    );
    const cpus = os.cpus();
    const envPart =
      kind === 'postgres'
        ? `DATABASE_URL=${redactUrl(config.databaseUrl!)}${config.databaseSchema ? ` DATABASE_SCHEMA=${config.databaseSchema}` : ''} `
        : `DATA_DIR=${config.dataDir} `;
    const header = {
      date: new Date().toISOString(),
      machine: `${cpus[0]?.model ?? '?'} (${os.availableParallelism()} cores), ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, ${os.type()} ${os.release()}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`,
      node: process.version,
      database: dbDescription,
      server: o.url ? `running server at ${o.url} (plans captured from an in-process server on the same database)` : 'in-process (same process, load generator in a worker thread)',
      dataset: `${fmt(total, 0)} resources (${byType.map((r) => `${r.resource_type} ${fmt(Number(r.n), 0)}`).join(', ')})`,
      tables: tables.map((t) => `${t.relname} ~${fmt(Number(t.n), 0)} rows ${t.size}`).join('; '),
      bounds: `at most ${o.requests} requests or ${o.seconds} s per kind and concurrency, after a validation pass over every sample (warm-up)`,
      command: `${o.url ? '' : envPart}node dist/scripts/bench-search.js ${process.argv.slice(2).join(' ')}`.trim(),
    };
    console.log('FHIR search benchmark');
    for (const [k, v] of Object.entries(header)) console.log(`  ${k.padEnd(9)} ${v}`);
    console.log('');

    // --- samples -------------------------------------------------------------------------
    progress(`sampling ${o.samples} patients`);
    const { samples, heavy } = await samplePatients(knex, o.samples, o.seed, records);
    if (practitioner) console.log(`As Practitioner/${practitioner} (médecin, user/*.rs), on the ${records!.length} records whose declared consent names them: the habilitation matrix may hide some documents, so only the identifier check counts matches`);
    const heavySample = samples.find((s) => s.id === heavy[0]) ?? samples[0];
    const docs = samples.map((s) => s.documents).sort((a, b) => a - b);
    const medianDocs = percentile(docs, 0.5);
    const medianSample = samples.find((s) => s.documents === medianDocs && s.auditedDoc) ?? samples[samples.length - 1];
    console.log(
      `Samples: ${samples.length} patients (${heavy.length} with the most documents included), documents per sampled patient: median ${medianDocs}, max ${docs[docs.length - 1]}`,
    );
    const planSamples: [label: string, sample: PatientSample][] = [
      ['median patient', medianSample],
      ['heavy patient', heavySample],
    ];
    for (const [label, s] of planSamples) console.log(`  plans for the ${label}: Patient/${s.id} INS ${s.nir} (${s.documents} documents)`);
    console.log('');

    // a professional does not read the audit trail (the access contract); the matrix may hide documents: status only
    const kinds = KINDS.filter((k) => (!o.only || o.only.includes(k.name)) && !(practitioner && k.name === 'revinclude-audit')).map((k) =>
      practitioner && k.name !== 'identifier' ? { ...k, check: () => undefined } : k,
    );

    // --- validation pass (also the warm-up) and SQL capture -------------------------------------
    let capture: Statement[] | undefined;
    knex.on('query', (q: { sql?: string; bindings?: unknown[] }) => {
      // reads only: an audited caller's requests also write their AuditEvents (WITH … INSERT), which EXPLAIN ANALYZE would run again
      if (capture && q.sql && /^\s*(SELECT|WITH)\b/i.test(q.sql) && !/\b(INSERT|UPDATE|DELETE)\b/i.test(q.sql)) capture.push({ sql: q.sql, bindings: q.bindings ?? [] });
    });
    const validation: Record<string, { checked: number; wrong: number; firstProblem?: string }> = {};
    const plans: Record<string, (PlanReport & { sample: string })[]> = {};
    for (const k of kinds) {
      progress(`validating ${k.name} over ${samples.length} samples`);
      const v = (validation[k.name] = { checked: 0, wrong: 0 } as { checked: number; wrong: number; firstProblem?: string });
      let slowest: { sample: PatientSample; ms: number } | undefined;
      for (const s of samples) {
        const p = k.path(s);
        if (!p) continue;
        const t0 = performance.now();
        const res = await fetch(target + p, { headers: { accept: 'application/fhir+json', ...authorization } });
        const text = await res.text();
        const ms = performance.now() - t0;
        if (!slowest || ms > slowest.ms) slowest = { sample: s, ms };
        v.checked++;
        const problem = res.status !== 200 ? `HTTP ${res.status} ${text.slice(0, 200)}` : k.check(JSON.parse(text) as Bundle, s);
        if (problem) {
          v.wrong++;
          v.firstProblem ??= `${p}: ${problem}`;
        }
      }
      if (o.explain) {
        plans[k.name] = [];
        // The slowest sample of the validation pass too: a plan can depend on the values.
        const targets = [...planSamples];
        if (slowest && !planSamples.some(([, x]) => x.id === slowest!.sample.id)) targets.push([`slowest sample, ${fmt(slowest.ms, 0)} ms in validation`, slowest.sample]);
        for (const [label, s] of targets) {
          const p = k.path(s);
          if (!p) continue;
          capture = [];
          await fetch(localUrl + p, { headers: { accept: 'application/fhir+json', ...authorization } }).then((r) => r.text());
          const statements = capture;
          capture = undefined;
          for (const st of statements) plans[k.name].push({ ...(await explain(knex, st)), sample: label });
        }
      }
    }

    // --- load -------------------------------------------------------------------------------
    interface Result {
      kind: string;
      concurrency: number;
      requests: number;
      errors: number;
      perSecond: number;
      p50: number;
      p99: number;
      max: number;
      firstError?: string;
    }
    const results: Result[] = [];
    for (const k of kinds) {
      const paths = samples.map((s) => k.path(s)).filter((p): p is string => p !== undefined);
      if (paths.length === 0) continue;
      for (const c of o.concurrency) {
        progress(`${k.name}: ${c} client(s), up to ${o.requests} requests / ${o.seconds} s`);
        const r = await worker.run({ url: target, paths, concurrency: c, maxRequests: o.requests, maxMs: o.seconds * 1000, warmup: 3, token });
        const sorted = Float64Array.from(r.latencies).sort();
        results.push({
          kind: k.name,
          concurrency: c,
          requests: r.requests,
          errors: r.errors,
          perSecond: r.latencies.length / (r.elapsedMs / 1000),
          p50: percentile(sorted, 0.5),
          p99: percentile(sorted, 0.99),
          max: sorted.length ? sorted[sorted.length - 1] : NaN,
          ...(r.firstError ? { firstError: r.firstError } : {}),
        });
      }
    }

    // --- report -----------------------------------------------------------------------------
    // a target is met by measured successes only: a run with failed requests (or none answered) meets nothing
    const met = (k: Kind, r: Result) => r.errors === 0 && r.requests > 0 && Number.isFinite(r.p99) && r.p99 < k.targetP99;
    const verdict = (k: Kind, r: Result) => (r.concurrency !== 1 ? '' : met(k, r) ? 'met' : r.errors > 0 ? `NOT met (${r.errors} errors)` : 'NOT met');
    console.log(
      table(
        ['kind', 'clients', 'requests', 'errors', 'req/s', 'p50 ms', 'p99 ms', 'max ms', 'p99 target (1 client)'],
        results.map((r) => {
          const k = kinds.find((x) => x.name === r.kind)!;
          return [r.kind, String(r.concurrency), String(r.requests), String(r.errors), fmt(r.perSecond, 0), fmt(r.p50, 2), fmt(r.p99, 2), fmt(r.max, 1), r.concurrency === 1 ? `< ${k.targetP99} ms: ${verdict(k, r)}` : ''];
        }),
      ),
    );
    for (const k of kinds) console.log(`  ${k.name.padEnd(18)} ${k.title}`);
    for (const r of results.filter((x) => x.firstError)) console.log(`  first error in ${r.kind} x${r.concurrency}: ${r.firstError}`);
    console.log('');
    console.log('Validation (every sample once, before the measurements):');
    for (const [name, v] of Object.entries(validation)) console.log(`  ${name.padEnd(18)} ${v.checked} checked, ${v.wrong} wrong${v.firstProblem ? ` — first: ${v.firstProblem}` : ''}`);
    console.log('');

    const findings: { kind: string; sample: string; statement: number; seqScans: string[]; warnings: string[]; executionMs: number | undefined }[] = [];
    if (o.explain) {
      console.log('Plans (EXPLAIN (ANALYZE, BUFFERS) of each statement of one request, for the median and the heavy patient, and the slowest sample of the validation pass):');
      for (const [name, reports] of Object.entries(plans)) {
        for (const label of [...new Set(reports.map((p) => p.sample))]) {
          const mine = reports.filter((p) => p.sample === label);
          mine.forEach((p, i) => {
            const flag = p.warnings.length ? `  ** ${p.warnings.join('; ')} **` : '';
            console.log(`\n--- ${name} (${label}) statement ${i + 1}/${mine.length}: ${fmt(p.executionMs, 2)} ms${flag}`);
            if (o.sql) console.log(`SQL: ${p.inlined}\n`);
            console.log(p.plan);
            findings.push({ kind: name, sample: label, statement: i + 1, seqScans: p.seqScans, warnings: p.warnings, executionMs: p.executionMs });
          });
        }
      }
      console.log('');
      console.log('Plan summary (execution time of each statement as EXPLAIN ANALYZE measured it):');
      for (const f of findings) {
        console.log(`  ${`${f.kind} (${f.sample}) #${f.statement}`.padEnd(60)} ${fmt(f.executionMs, 2).padStart(10)} ms${f.warnings.length ? `  FLAG: ${f.warnings.join('; ')}` : ''}`);
      }
      const bad = findings.filter((f) => f.seqScans.length);
      console.log(bad.length ? `Seq Scans on resource/index tables: ${bad.map((f) => `${f.kind} (${f.sample}) #${f.statement} (${f.seqScans.join(', ')})`).join('; ')}` : 'No Seq Scan on resource/index tables.');
      const flagged = findings.filter((f) => f.warnings.length);
      if (flagged.length) console.log(`Flagged plans (>= ${SLOW_MS} ms, or >= ${fmt(ROWS_WARNING, 0)} rows filtered out or loops): ${[...new Set(flagged.map((f) => f.kind))].join(', ')}`);
    }
    const missed = results.filter((r) => r.concurrency === 1 && !met(kinds.find((k) => k.name === r.kind)!, r));
    const unmeasured = kinds.filter((k) => !results.some((r) => r.kind === k.name && r.concurrency === 1));
    const wrong = Object.entries(validation).filter(([, v]) => v.wrong > 0).map(([name]) => name);
    if (missed.length) console.log(`Targets NOT met (p99, 1 client): ${missed.map((r) => `${r.kind} ${r.errors ? `${r.errors} of ${r.requests} requests failed` : `${fmt(r.p99, 1)} ms`}`).join(', ')}`);
    if (unmeasured.length) console.log(`Not measured (1 client): ${unmeasured.map((k) => k.name).join(', ')}`);
    if (wrong.length) console.log(`Wrong answers in the validation pass: ${wrong.join(', ')}`);
    if (!missed.length && !unmeasured.length && !wrong.length) console.log('All p99 targets met (1 client).');
    console.log('');
    console.log(
      JSON.stringify({
        ...header,
        samples: samples.length,
        heavyPatient: heavySample.id,
        medianPatient: medianSample.id,
        results: results.map((r) => ({ kind: r.kind, clients: r.concurrency, requests: r.requests, errors: r.errors, perSecond: round(r.perSecond, 1), p50Ms: round(r.p50), p99Ms: round(r.p99), maxMs: round(r.max) })),
        targets: Object.fromEntries(kinds.map((k) => [k.name, { p99Ms: k.targetP99, met: results.some((r) => r.kind === k.name && r.concurrency === 1 && met(k, r)) }])),
        validation,
        plans: findings.map((f) => ({ ...f, executionMs: round(f.executionMs) })),
      }),
    );
  } finally {
    await worker.close();
    await server.close();
  }
}

if (isMainThread && require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
