/**
 * Throughput and latency benchmark of the FHIR server (docs/operations/benchmarks.md).
 *
 *   npm run bench -- --duration 10 --concurrency 8
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/devtest npm run bench
 *
 * First the start-up of the compiled server in a process of its own (time to the first
 * answer and RSS, on a new then an existing embedded database; not with --url).
 * Phases: create (POST Patient / DocumentReference alternately), read (GET by id),
 * the raw PostgreSQL ceiling of the same work (INSERT / SELECT of the same JSON into a
 * plain table), the HTTP floor (a bare node:http server), and transaction ingest
 * (Bundles of 100 and 1,000 entries). Prints a header, a table of figures, the CPU spent
 * per phase, SQL statements per interaction and, on the last line, one JSON object.
 * No assertions. `--cpu-prof DIR` writes a CPU profile of the server's thread per measured
 * phase (DIR/create.cpuprofile, DIR/read.cpuprofile, …).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import inspector from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import { Client, Pool } from 'pg';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/log';
import { startServer, RunningServer } from '../src/server';
import { startServerProcess } from './serverProcess';
import {
  abortLoops,
  BenchOptions,
  closedLoop,
  CpuSnapshot,
  cpuSnapshot,
  CpuUsage,
  cpuUsageBetween,
  fmt,
  HttpTaskResult,
  HttpWorker,
  parseArgs,
  PhaseStats,
  pick,
  redactUrl,
  summarize,
  table,
  templates,
  USAGE,
  parseArgsOrExit,
  pgliteVersion,
} from './benchLib';

const TARGETS = { createRatio: 0.5, readRatio: 0.7, ingestPerSecond: 4000 };
const SEQUENTIAL = [
  { size: 100, count: 5 },
  { size: 1000, count: 3 },
];

// ---------------------------------------------------------------------------
// SQL statement counting (in-process server only)
// ---------------------------------------------------------------------------

/** One write statement of the server as it went to the database, kept to be replayed without the server. */
interface WriteSample {
  sql: string;
  bindings: string[];
  /** The resource id, replaced by a new one at each replay. */
  id: string;
}

class StatementCounter {
  total = 0;
  kinds = new Map<string, number>();
  /** The first single-resource create statement seen per resource type. */
  writes = new Map<string, WriteSample>();

  attach(knex: Knex): void {
    knex.on('query', (q: { sql?: string; bindings?: unknown[]; options?: { name?: string } }) => {
      // the input's type read from its head first: parsing every write's input would be the counter's own cost, charged to the server
      const head = q.options?.name?.startsWith('fhir_write_new') && typeof q.bindings?.[0] === 'string' ? /^\[\{"compartment":"[^"]*","resource_type":"([^"]+)"/.exec(q.bindings[0].slice(0, 300)) : null;
      if (head && !this.writes.has(head[1]) && q.sql && typeof q.bindings?.[0] === 'string') {
        const input = JSON.parse(q.bindings[0]) as { resource_type: string; id: string }[];
        if (input.length === 1 && !this.writes.has(input[0].resource_type)) {
          this.writes.set(input[0].resource_type, { sql: q.sql, bindings: q.bindings.map(String), id: input[0].id });
        }
      }
      this.total++;
      const kind = /^\s*([A-Za-z]+)/.exec(q.sql ?? '')?.[1]?.toUpperCase() ?? '?';
      this.kinds.set(kind, (this.kinds.get(kind) ?? 0) + 1);
    });
  }

  reset(): void {
    this.total = 0;
    this.kinds.clear();
  }

  /** Statements per unit, overall and by leading keyword (BEGIN, WITH, SELECT, COMMIT…). */
  per(units: number): { perUnit: number | null; byKind: Record<string, number | null> } {
    const byKind: Record<string, number | null> = {};
    for (const [k, v] of [...this.kinds].sort((a, b) => b[1] - a[1])) byKind[k] = round(v / units, 3);
    return { perUnit: round(this.total / units, 3), byKind };
  }
}

/**
 * A CPU profile of this process's main thread (the in-process server; the load generator
 * runs in a thread of its own), for one phase: open it in Chrome DevTools or speedscope.
 */
async function startProfile(): Promise<{ stop(file: string): Promise<string> }> {
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return {
    async stop(file) {
      const { profile } = await session.post('Profiler.stop');
      session.disconnect();
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify(profile));
      return file;
    },
  };
}

const round = (n: number, d = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : null);

/**
 * CPU snapshots around a phase. PostgreSQL is measured only when it is local: its
 * background processes plus the backends whose application_name is the benchmark's (the
 * in-process server and the raw pool connect with it), so that other sessions on the same
 * cluster are not counted; against a running server (--url) every backend is counted.
 */
class CpuMeter {
  private monitor: Client | undefined;

  constructor(
    private readonly cores: number,
    private readonly postgres: { databaseUrl: string; applicationName: string | undefined } | undefined,
  ) {}

  private async pids(): Promise<boolean | Set<number>> {
    if (!this.postgres) return false;
    try {
      if (!this.monitor) {
        this.monitor = new Client({ connectionString: this.postgres.databaseUrl, application_name: 'fhir-bench-monitor' });
        await this.monitor.connect();
      }
      const r = await this.monitor.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend' OR application_name = $1 OR $1 IS NULL`,
        [this.postgres.applicationName ?? null],
      );
      return new Set(r.rows.map((x) => x.pid));
    } catch {
      return true;
    }
  }

  async start(): Promise<CpuSnapshot> {
    return cpuSnapshot(await this.pids());
  }

  async stop(start: CpuSnapshot, units: number): Promise<CpuUsage> {
    return cpuUsageBetween(start, cpuSnapshot(await this.pids()), Math.max(1, units), this.cores);
  }

  async close(): Promise<void> {
    await this.monitor?.end();
  }
}

/** The connection string with application_name set, so that the server's backends can be told apart. */
function withApplicationName(databaseUrl: string, applicationName: string): string {
  try {
    const u = new URL(databaseUrl);
    u.searchParams.set('application_name', applicationName);
    return u.toString();
  } catch {
    return databaseUrl;
  }
}

function isLocal(databaseUrl: string): boolean {
  try {
    const host = new URL(databaseUrl).hostname;
    return host === '' || host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.startsWith('%2F') || host.startsWith('/');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Raw ceiling: the same JSON straight into a plain table
// ---------------------------------------------------------------------------

interface RawDriver {
  description: string;
  setup(): Promise<void>;
  insert(id: string, body: string): Promise<void>;
  select(id: string): Promise<string | undefined>;
  close(): Promise<void>;
}

function pgRawDriver(databaseUrl: string, schema: string, connections: number, applicationName: string): RawDriver {
  const pool = new Pool({ connectionString: databaseUrl, max: connections, application_name: applicationName });
  const t = `"${schema}".raw_bench`;
  return {
    description: `pg Pool of ${connections} connections, table ${schema}.raw_bench(id text primary key, body jsonb)`,
    async setup() {
      await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await pool.query(`CREATE TABLE IF NOT EXISTS ${t} (id text PRIMARY KEY, body jsonb NOT NULL)`);
    },
    async insert(id, body) {
      await pool.query(`INSERT INTO ${t} (id, body) VALUES ($1, $2)`, [id, body]);
    },
    async select(id) {
      const r = await pool.query<{ body: string }>(`SELECT body::text AS body FROM ${t} WHERE id = $1`, [id]);
      return r.rows[0]?.body;
    },
    close: () => pool.end(),
  };
}

function pgliteRawDriver(knex: Knex): RawDriver {
  return {
    description: "the server's own PGlite instance through knex-pglite (one connection), table raw_bench(id text primary key, body jsonb)",
    async setup() {
      await knex.raw('CREATE TABLE IF NOT EXISTS raw_bench (id text PRIMARY KEY, body jsonb NOT NULL)');
    },
    async insert(id, body) {
      await knex.raw('INSERT INTO raw_bench (id, body) VALUES (?, ?)', [id, body]);
    },
    async select(id) {
      const r = (await knex.raw('SELECT body::text AS body FROM raw_bench WHERE id = ?', [id])) as { rows: { body: string }[] };
      return r.rows[0]?.body;
    },
    close: async () => undefined,
  };
}

interface Measured {
  stats: PhaseStats;
  cpu: CpuUsage;
}

/** INSERT then SELECT by id, same concurrency, same alternation of Patient and DocumentReference JSON. */
async function rawPhases(raw: RawDriver, o: BenchOptions, cpu: CpuMeter): Promise<{ insert: Measured; select: Measured }> {
  await raw.setup();
  const t = templates(200);
  const ids: string[] = [];
  const lastPatient: (string | undefined)[] = new Array(o.concurrency).fill(undefined);
  const insert = async (c: number, seq: number) => {
    const id = crypto.randomUUID();
    const patient = lastPatient[c];
    const isPatient = patient === undefined || seq % 2 === 0;
    const resource: Record<string, unknown> = isPatient
      ? { ...pick(t.patients, seq + c * 31), id }
      : { ...pick(t.documents, seq + c * 31), id, subject: { reference: patient }, author: [{ reference: 'Practitioner/raw' }] };
    await raw.insert(id, JSON.stringify(resource));
    if (isPatient) lastPatient[c] = `Patient/${id}`;
    ids.push(id);
  };
  let start = await cpu.start();
  const warm = o.warmup > 0 ? await closedLoop(o.concurrency, o.warmup * 1000, insert) : undefined;
  const insertLoop = await closedLoop(o.concurrency, o.duration * 1000, insert);
  const inserted = { stats: summarize(insertLoop), cpu: await cpu.stop(start, (warm?.operations ?? 0) + insertLoop.operations) };
  const select = async () => {
    const id = ids[crypto.randomInt(ids.length)];
    const body = await raw.select(id);
    if (!body) throw new Error(`raw SELECT ${id}: no row`);
  };
  start = await cpu.start();
  const selectLoop = await closedLoop(o.concurrency, o.duration * 1000, select);
  const selected = { stats: summarize(selectLoop), cpu: await cpu.stop(start, selectLoop.operations) };
  return { insert: inserted, select: selected };
}

/**
 * The database work of a create without the server: the server's own write statement
 * (resource, history and index rows in one statement), captured during the create phase and
 * replayed with a new id each time through a plain pg Pool, same concurrency, Patient and
 * DocumentReference alternately. What a server whose own work cost nothing would still pay.
 */
async function serverStatementPhase(databaseUrl: string, schema: string, samples: WriteSample[], o: BenchOptions, cpu: CpuMeter, applicationName: string): Promise<Measured> {
  const pool = new Pool({ connectionString: databaseUrl, max: o.concurrency, application_name: applicationName, options: `-c search_path="${schema}"` });
  try {
    const write = async (c: number, seq: number) => {
      const which = (seq + c) % samples.length;
      const sample = samples[which];
      const id = crypto.randomUUID();
      await pool.query({ name: `bench_server_write_${which}`, text: sample.sql, values: sample.bindings.map((b) => b.replaceAll(sample.id, id)) });
    };
    const start = await cpu.start();
    const loop = await closedLoop(o.concurrency, o.duration * 1000, write);
    return { stats: summarize(loop), cpu: await cpu.stop(start, loop.operations) };
  } finally {
    await pool.end();
  }
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

interface Row {
  phase: string;
  stats: PhaseStats;
  unit: string;
  sqlPerUnit?: number | null;
  cpu?: CpuUsage;
}

/**
 * A bare node:http server answering every request with the same stored DocumentReference
 * (the headers a FHIR read sends): what HTTP alone costs on this machine with this client.
 */
function startHttpFloor(): Promise<{ url: string; close(): Promise<void> }> {
  const body = JSON.stringify({ ...templates(1).documents[0], id: 'static', meta: { versionId: '1', lastUpdated: new Date().toISOString() } });
  const lastModified = new Date().toUTCString();
  const server = http.createServer((req, res) => {
    req.resume();
    res.setHeader('X-Request-Id', crypto.randomUUID());
    res.setHeader('ETag', 'W/"1"');
    res.setHeader('Last-Modified', lastModified);
    res.setHeader('Content-Type', 'application/fhir+json; charset=utf-8');
    res.end(body);
  });
  server.keepAliveTimeout = 65000;
  let closed: Promise<void> | undefined;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fhir`,
        close: () =>
          (closed ??= new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          })),
      }),
    );
  });
}

async function postgresVersion(databaseUrl: string): Promise<string> {
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query<{ v: string }>('SHOW server_version')).rows[0].v;
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  let o: BenchOptions;
  o = parseArgsOrExit(parseArgs, USAGE);
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `bench_${crypto.randomBytes(5).toString('hex')}` : undefined;
  const applicationName = schema ? `fhir-${schema}` : 'fhir-bench';

  // Clean-ups run in reverse order, also on Ctrl-C.
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (e) {
          console.error(`clean-up: ${(e as Error).message}`);
        }
      }
    })());
  const worker = new HttpWorker();
  const interrupt = (signal: string) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${signal}: cleaning up`);
    abortLoops();
    worker.close().then(cleanUp).finally(() => process.exit(130));
  };
  process.once('SIGINT', () => interrupt('SIGINT'));
  process.once('SIGTERM', () => interrupt('SIGTERM'));

  cleanups.push(() => worker.close());
  if (databaseUrl && schema) {
    cleanups.push(async () => {
      const c = new Client({ connectionString: databaseUrl });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await c.end();
      }
    });
  }

  try {
    // --- Server ---------------------------------------------------------------
    let url = o.url;
    let server: RunningServer | undefined;
    let counter: StatementCounter | undefined;
    let dbKind: string;
    let dbVersion = 'unknown';
    if (!url) {
      // a directory of its own on PostgreSQL too: the local issuer's key is kept there
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-bench-'));
      cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
      const config = loadConfig({
        ...process.env,
        LOG_LEVEL: 'silent',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl ? withApplicationName(databaseUrl, applicationName) : '',
        DATABASE_SCHEMA: schema ?? '',
        DATA_DIR: dataDir,
        // the bench posts 1,000-entry Bundles, past the embedded default
        BUNDLE_MAX_ENTRIES: process.env.BUNDLE_MAX_ENTRIES || '1000',
      });
      server = await startServer(config, createLogger('silent'));
      const running = server;
      cleanups.push(() => running.close());
      url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/fhir`;
      // the in-process server runs in development mode: its local issuer signs an unrestricted test client's token
      if (server.devIssuer) worker.token = await server.devIssuer.mintToken({ scope: 'conformance-testing', sub: 'bench' });
      counter = new StatementCounter();
      counter.attach(server.ctx.db.knex);
      dbKind = server.ctx.db.kind === 'postgres' ? 'PostgreSQL' : 'embedded PGlite';
      const v = (await server.ctx.db.knex.raw('SHOW server_version')) as { rows: { server_version: string }[] };
      dbVersion = v.rows[0]?.server_version ?? 'unknown';
      if (server.ctx.db.kind === 'embedded') dbVersion += ` (PGlite ${pgliteVersion()}, data in a temporary directory)`;
      else dbVersion += `, pool max ${config.dbPoolMax}, schema ${schema}`;
    } else {
      // a running server: FHIR_TOKEN is a token it accepts for an unrestricted test client
      worker.token = process.env.FHIR_TOKEN;
      const health = await fetch(new URL('/healthz', url)).then((r) => r.json() as Promise<{ database?: string }>, () => ({ database: undefined }));
      dbKind = health.database === 'postgres' ? 'PostgreSQL' : health.database === 'embedded' ? 'embedded PGlite' : 'unknown';
      dbKind += ` (running server at ${url})`;
    }
    if (databaseUrl && dbVersion === 'unknown') dbVersion = await postgresVersion(databaseUrl);

    const cpus = os.cpus();
    const cores = os.availableParallelism();
    const measurePostgres = !!databaseUrl && isLocal(databaseUrl) && (!server || server.ctx.db.kind === 'postgres');
    const meter = new CpuMeter(cores, measurePostgres && databaseUrl ? { databaseUrl, applicationName: server ? applicationName : undefined } : undefined);
    cleanups.push(() => meter.close());
    const load = os.loadavg();
    const command = `${databaseUrl ? `DATABASE_URL=${redactUrl(databaseUrl)} ` : ''}node dist/scripts/bench.js ${process.argv.slice(2).join(' ')}`.trim();
    const header = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: `${cpus[0]?.model ?? 'unknown'} (${cores} cores), load average ${load.map((l) => l.toFixed(2)).join(' ')} at start`,
      database: `${dbKind}${dbVersion !== 'unknown' ? ` ${dbVersion}` : ''}`,
      concurrency: o.concurrency,
      duration: `${o.duration} s per phase (+${o.warmup} s warm-up before create and raw INSERT)`,
      client: o.client === 'http' ? 'node:http keep-alive Agent, in a worker thread' : 'global fetch (undici), in a worker thread',
      command,
    };
    console.log('FHIR server benchmark');
    for (const [k, v] of Object.entries(header)) console.log(`  ${k.padEnd(12)} ${v}`);
    console.log('');

    const startup = o.url || o.skipStartup ? undefined : await measureStartup();
    if (startup) {
      console.log('Start-up of the compiled server in a process of its own (embedded database, new temporary DATA_DIR):');
      for (const [name, s] of [['new database', startup.newDatabase], ['existing database', startup.existingDatabase]] as const) {
        console.log(`  ${name.padEnd(18)} ${s.seconds.toFixed(2)} s to the first answer (${s.cpuSeconds.toFixed(2)} s of CPU in the server), RSS ${s.rssMiB} MiB`);
      }
      console.log('  (RSS over time under load: npm run memory; docs/operations/memory.md)');
      console.log('');
    }

    const rows: Row[] = [];
    const statements: Record<string, { perUnit: number | null; byKind: Record<string, number | null> }> = {};
    const progress = (s: string) => process.stderr.write(`… ${s}\n`);
    const measure = async (name: string, run: () => Promise<HttpTaskResult>): Promise<HttpTaskResult & { cpu: CpuUsage }> => {
      counter?.reset();
      const profiling = o.cpuProf ? await startProfile() : undefined;
      const start = await meter.start();
      const r = await run();
      const cpu = await meter.stop(start, r.units);
      if (profiling) progress(`CPU profile: ${await profiling.stop(path.join(o.cpuProf!, `${name.replace(/\W+/g, '-')}.cpuprofile`))}`);
      if (counter) statements[name] = counter.per(r.units);
      return { ...r, cpu };
    };

    // --- 1. create ---------------------------------------------------------------
    const setup = await worker.run({ kind: 'setup', url, client: o.client });
    const practitionerRef = setup.ids![0];
    progress(`create: ${o.concurrency} clients, ${o.warmup} s warm-up + ${o.duration} s`);
    const created = await measure('create', () =>
      worker.run({ kind: 'create', url: url!, client: o.client, concurrency: o.concurrency, durationMs: o.duration * 1000, warmupMs: o.warmup * 1000, practitionerRef }),
    );
    rows.push({ phase: 'create  POST Patient | DocumentReference', stats: created.stats, unit: 'req/s', sqlPerUnit: statements.create?.perUnit, cpu: created.cpu });

    // --- 2. read -----------------------------------------------------------------
    progress(`read: ${o.concurrency} clients, ${o.duration} s over ${created.ids!.length} ids`);
    const readResult = await measure('read', () =>
      worker.run({ kind: 'read', url: url!, client: o.client, concurrency: o.concurrency, durationMs: o.duration * 1000, ids: created.ids! }),
    );
    rows.push({ phase: 'read    GET [type]/[id]', stats: readResult.stats, unit: 'req/s', sqlPerUnit: statements.read?.perUnit, cpu: readResult.cpu });

    // --- 2b. read as the record's patient: authentication, the policy and the audit trail on every read
    let patientRead: (HttpTaskResult & { cpu: CpuUsage }) | undefined;
    if (server?.devIssuer && created.records) {
      const issuer = server.devIssuer;
      const tokenOf = new Map<string, string>();
      for (const record of new Set(created.records)) tokenOf.set(record, await issuer.mintToken({ fhirUser: record, scope: 'patient/*.rs' }));
      const tokens = created.records.map((record) => tokenOf.get(record)!);
      progress(`read as the patient: ${o.concurrency} clients, ${o.duration} s over ${created.ids!.length} ids, ${tokenOf.size} patients' tokens`);
      patientRead = await measure('read as the patient', () =>
        worker.run({ kind: 'read', url: url!, client: o.client, concurrency: o.concurrency, durationMs: o.duration * 1000, ids: created.ids!, tokens }),
      );
      rows.push({ phase: 'read    as the patient, policy + audit', stats: patientRead.stats, unit: 'req/s', sqlPerUnit: statements['read as the patient']?.perUnit, cpu: patientRead.cpu });
    }

    // --- 3. raw ceiling ------------------------------------------------------------
    let raw: { insert: PhaseStats; select: PhaseStats } | undefined;
    let rawNote: string;
    let driver: RawDriver | undefined;
    if (o.skipRaw) rawNote = 'skipped (--skip-raw)';
    else if (databaseUrl && schema) driver = pgRawDriver(databaseUrl, schema, o.concurrency, applicationName);
    else if (server && server.ctx.db.kind === 'embedded') driver = pgliteRawDriver(server.ctx.db.knex);
    if (driver) {
      rawNote = driver.description;
      const d = driver;
      cleanups.push(() => d.close());
      progress(`raw ceiling: ${rawNote}`);
      const measured = await rawPhases(driver, o, meter);
      raw = { insert: measured.insert.stats, select: measured.select.stats };
      rows.push({ phase: 'raw     INSERT (id, body jsonb)', stats: raw.insert, unit: 'ops/s', cpu: measured.insert.cpu });
      rows.push({ phase: 'raw     SELECT body WHERE id', stats: raw.select, unit: 'ops/s', cpu: measured.select.cpu });
    } else rawNote ??= 'skipped: --url without DATABASE_URL (set DATABASE_URL to the database of that server)';

    // --- 3a. the server's create statement replayed straight into PostgreSQL ---------------
    let serverStatement: PhaseStats | undefined;
    const samples = [...(counter?.writes.values() ?? [])];
    if (!o.skipRaw && databaseUrl && schema && server?.ctx.db.kind === 'postgres' && samples.length > 0) {
      progress(`server's create statement replayed: ${o.concurrency} connections, ${o.duration} s`);
      const measured = await serverStatementPhase(databaseUrl, schema, samples, o, meter, applicationName);
      serverStatement = measured.stats;
      rows.push({ phase: "raw     server's create statement", stats: measured.stats, unit: 'ops/s', cpu: measured.cpu });
    }

    // --- 3b. HTTP floor: the same client against a bare node:http server (no Express, no database) ---
    let httpFloor: PhaseStats | undefined;
    if (!o.skipRaw) {
      progress(`HTTP floor: ${o.concurrency} clients, ${o.duration} s against a bare node:http server`);
      const floor = await startHttpFloor();
      cleanups.push(() => floor.close());
      const r = await measure('http-floor', () =>
        worker.run({ kind: 'read', url: floor.url, client: o.client, concurrency: o.concurrency, durationMs: o.duration * 1000, ids: ['DocumentReference/static'] }),
      );
      delete statements['http-floor'];
      httpFloor = r.stats;
      rows.push({ phase: 'http    GET, bare node:http, static body', stats: r.stats, unit: 'req/s', cpu: r.cpu });
      await floor.close();
    }

    // --- 4. transaction ingest ----------------------------------------------------------
    const ingest: Record<string, PhaseStats> = {};
    if (!o.skipIngest) {
      for (const { size, count } of SEQUENTIAL) {
        progress(`transaction: ${count} x ${size} entries, sequential`);
        const name = `transaction-${size}`;
        const r = await measure(name, () => worker.run({ kind: 'tx-sequential', url: url!, client: o.client, size, count }));
        ingest[`sequential${size}`] = r.stats;
        rows.push({ phase: `ingest  transaction ${size} x ${count}, sequential`, stats: r.stats, unit: 'res/s', sqlPerUnit: statements[name]?.perUnit, cpu: r.cpu });
      }
      progress(`transaction: 100 entries, ${o.concurrency} clients, ${o.duration} s`);
      const r = await measure('transaction-100-concurrent', () =>
        worker.run({ kind: 'tx-concurrent', url: url!, client: o.client, size: 100, concurrency: o.concurrency, durationMs: o.duration * 1000 }),
      );
      ingest.concurrent100 = r.stats;
      rows.push({
        phase: `ingest  transaction 100, ${o.concurrency} clients`,
        stats: r.stats,
        unit: 'res/s',
        sqlPerUnit: statements['transaction-100-concurrent']?.perUnit,
        cpu: r.cpu,
      });
    }

    // --- Report --------------------------------------------------------------------
    console.log(
      table(
        ['phase', 'ops', 'errors', 'throughput', 'unit', 'p50 ms', 'p99 ms', 'SQL/unit'],
        rows.map((r) => [
          r.phase,
          String(r.stats.operations),
          String(r.stats.errors),
          fmt(r.stats.perSecond, 0),
          r.unit,
          fmt(r.stats.p50, 2),
          fmt(r.stats.p99, 2),
          r.sqlPerUnit === undefined || r.sqlPerUnit === null ? '-' : fmt(r.sqlPerUnit, r.unit === 'res/s' ? 3 : 2),
        ]),
      ),
    );
    console.log('  ops: requests (or bundles) completed; res/s: resources written per second; latency of ingest rows is per Bundle.');
    console.log('  SQL/unit: statements seen by knex per request (create, read) or per Bundle entry (ingest), BEGIN/COMMIT included.');
    const errors = rows.filter((r) => r.stats.firstError);
    for (const r of errors) console.log(`  first error in "${r.phase.replace(/\s+/g, ' ')}": ${r.stats.firstError}`);
    console.log('');

    console.log('CPU during each phase (cores busy on average; CPU ms per request, or per resource for ingest):');
    console.log(
      table(
        ['phase', 'host', 'bench proc', 'postgres', 'others', 'main loop', 'bench ms/unit', 'pg ms/unit'],
        rows
          .filter((r) => r.cpu)
          .map((r) => {
            const c = r.cpu!;
            return [
              r.phase,
              fmt(c.hostCores, 2),
              fmt(c.selfCores, 2),
              fmt(c.postgresCores, 2),
              fmt(c.otherCores, 2),
              `${fmt(c.mainLoopBusy * 100, 0)}%`,
              fmt(c.selfMsPerUnit, 3),
              fmt(c.postgresMsPerUnit, 3),
            ];
          }),
      ),
    );
    console.log(
      `  bench proc: this process (${server ? 'the server, ' : ''}${server?.ctx.db.kind === 'embedded' ? 'PGlite, ' : ''}the load-generator thread${raw ? ', the raw-ceiling client' : ''}); postgres: local PostgreSQL processes${measurePostgres ? '' : ' (not measured here)'};`,
    );
    console.log(
      `  others: the rest of the host${server ? '' : ', the server under test included'}; main loop: busy share of the main thread's event loop (${server ? 'the server; ' : ''}the HTTP floor's server, the raw-ceiling client).`,
    );
    const noisy = server ? rows.filter((r) => (r.cpu?.otherCores ?? 0) > 0.25) : [];
    if (noisy.length > 0) {
      console.log(
        `  WARNING: other processes used more than a quarter of a core during ${noisy.length} phase(s) (up to ${fmt(Math.max(...noisy.map((r) => r.cpu!.otherCores!)), 2)} cores): the figures are disturbed; re-run on a quiet machine.`,
      );
    }
    console.log('');

    const ratios = raw ? { create: created.stats.perSecond / raw.insert.perSecond, read: readResult.stats.perSecond / raw.select.perSecond } : undefined;
    const readVsHttpFloor = httpFloor ? readResult.stats.perSecond / httpFloor.perSecond : undefined;
    console.log(`Raw ceiling: ${rawNote}`);
    if (ratios) {
      const verdict = (v: number, t: number) => (v >= t ? 'met' : 'NOT met');
      console.log(`  create server/raw = ${fmt(ratios.create, 2)}   (target >= ${TARGETS.createRatio.toFixed(2)}: ${verdict(ratios.create, TARGETS.createRatio)})`);
      console.log(`  read   server/raw = ${fmt(ratios.read, 2)}   (target >= ${TARGETS.readRatio.toFixed(2)}: ${verdict(ratios.read, TARGETS.readRatio)})`);
      if (!databaseUrl) console.log('  (embedded: the ratios compare with PGlite, not PostgreSQL; the targets are stated for PostgreSQL)');
    }
    if (readVsHttpFloor !== undefined) {
      console.log(`HTTP floor: ${fmt(httpFloor!.perSecond, 0)} req/s from a bare node:http server; read server/HTTP floor = ${fmt(readVsHttpFloor, 2)}`);
      if (raw) {
        // Both phases keep the host busy; a server doing both per request pays both costs.
        const bound = httpFloor!.perSecond / (httpFloor!.perSecond + raw.select.perSecond);
        console.log(`  (HTTP plus the raw SELECT, each at its own cost, added: read server/raw <= ${fmt(bound, 2)} on this host)`);
        console.log(`  read server/raw of that bound = ${fmt(ratios!.read / bound, 2)}${patientRead ? `; as the patient (policy + audit): ${fmt(patientRead.stats.perSecond / raw.select.perSecond / bound, 2)}` : ''}`);
      }
    }
    const createBound = createBoundFrom(httpFloor, serverStatement, raw?.insert);
    if (createBound !== undefined) {
      console.log(
        `Server's create statement replayed alone: ${fmt(serverStatement!.perSecond, 0)} ops/s (resource, history and index rows; no HTTP, no validation)`,
      );
      console.log(`  (HTTP plus that statement, each at its own cost, added: create server/raw <= ${fmt(createBound, 2)} on this host)`);
    }
    if (!o.skipIngest) {
      const best = Math.max(...Object.values(ingest).map((s) => s.perSecond));
      const applies = dbKind.startsWith('PostgreSQL');
      console.log(
        `Ingest: best ${fmt(best, 0)} resources/s (target >= ${TARGETS.ingestPerSecond} on PostgreSQL: ${applies ? (best >= TARGETS.ingestPerSecond ? 'met' : 'NOT met') : 'not applicable here'})`,
      );
    }
    if (counter) {
      console.log('SQL statements by leading keyword:');
      for (const [name, s] of Object.entries(statements)) {
        const size = /^transaction-(\d+)/.exec(name)?.[1];
        const unit = size ? `per entry (${fmt((s.perUnit ?? NaN) * Number(size), 1)} per Bundle)` : 'per request';
        console.log(`  ${name.padEnd(28)} ${fmt(s.perUnit ?? NaN, 3)} ${unit}  ${Object.entries(s.byKind).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      }
    } else console.log('SQL statements: not counted (--url: the server is not in this process)');

    const r2 = (s: PhaseStats | undefined) =>
      s && { ops: s.operations, errors: s.errors, perSecond: round(s.perSecond), p50Ms: round(s.p50, 2), p99Ms: round(s.p99, 2) };
    const cpuJson = Object.fromEntries(
      rows
        .filter((r) => r.cpu)
        .map((r) => [
          r.phase.replace(/\s+/g, ' '),
          {
            hostCores: round(r.cpu!.hostCores ?? NaN, 2),
            benchCores: round(r.cpu!.selfCores, 2),
            postgresCores: round(r.cpu!.postgresCores ?? NaN, 2),
            otherCores: round(r.cpu!.otherCores ?? NaN, 2),
            mainLoopBusy: round(r.cpu!.mainLoopBusy, 2),
            benchMsPerUnit: round(r.cpu!.selfMsPerUnit, 3),
            postgresMsPerUnit: round(r.cpu!.postgresMsPerUnit ?? NaN, 3),
          },
        ]),
    );
    console.log('');
    console.log(
      JSON.stringify({
        ...header,
        durationSeconds: o.duration,
        warmupSeconds: o.warmup,
        create: r2(created.stats),
        read: r2(readResult.stats),
        readAsPatient: r2(patientRead?.stats),
        rawInsert: r2(raw?.insert),
        rawSelect: r2(raw?.select),
        rawCeiling: rawNote,
        httpFloor: r2(httpFloor),
        ratios: ratios && {
          create: round(ratios.create, 3),
          read: round(ratios.read, 3),
          readVsHttpFloor: round(readVsHttpFloor ?? NaN, 3),
          readBoundFromFloor: httpFloor && raw ? round(httpFloor.perSecond / (httpFloor.perSecond + raw.select.perSecond), 3) : null,
          createBoundFromStatement: round(createBound ?? NaN, 3),
        },
        serverCreateStatement: r2(serverStatement),
        targets: TARGETS,
        ingest: Object.fromEntries(Object.entries(ingest).map(([k, s]) => [k, r2(s)])),
        statements: counter ? statements : undefined,
        cpu: cpuJson,
        startup,
      }),
    );
  } finally {
    await cleanUp();
  }
}

/** Seconds to the first answer and RSS of `node dist/src/server.js`, on a new embedded database then on the same one again. */
interface StartupFigures {
  seconds: number;
  cpuSeconds: number;
  rssMiB: number;
}

async function measureStartup(): Promise<{ newDatabase: StartupFigures; existingDatabase: StartupFigures }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-bench-start-'));
  try {
    const env = { DATA_DIR: dataDir, DATABASE_URL: '' };
    const first = await startServerProcess(env);
    const newDatabase = { seconds: round(first.startupSeconds, 2)!, cpuSeconds: first.startupCpuSeconds, rssMiB: first.rssMiB() };
    await first.stop();
    const second = await startServerProcess(env);
    const existingDatabase = { seconds: round(second.startupSeconds, 2)!, cpuSeconds: second.startupCpuSeconds, rssMiB: second.rssMiB() };
    await second.stop();
    return { newDatabase, existingDatabase };
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The create ratio a server could reach if its own work cost nothing: each request still
 * costs an HTTP exchange (the floor) and the database work of the server's write statement.
 */
function createBoundFrom(httpFloor: PhaseStats | undefined, statement: PhaseStats | undefined, rawInsert: PhaseStats | undefined): number | undefined {
  if (!httpFloor || !statement || !rawInsert || statement.perSecond <= 0 || httpFloor.perSecond <= 0) return undefined;
  const perSecond = 1 / (1 / httpFloor.perSecond + 1 / statement.perSecond);
  return perSecond / rawInsert.perSecond;
}


let interrupted = false;

main().catch((e) => {
  if (interrupted) return; // the signal handler exits once clean-up is done
  console.error(e);
  process.exit(1);
});
