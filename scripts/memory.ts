/**
 * Start-up time and resident memory of the server under a mixed load, over time
 * (docs/operations/memory.md).
 *
 *   npm run memory                              10 minutes of load, RSS every 10 s
 *   npm run memory -- --duration 60 --interval 5
 *   npm run memory -- --data-dir ./data         an existing embedded database (left in place)
 *
 * Starts the compiled server (`node dist/src/server.js`) in a process of its own on the
 * embedded database (a new temporary DATA_DIR unless --data-dir), or with DATABASE_URL set
 * on PostgreSQL (a new schema, dropped at the end),
 * twice: once on the new database, stopped, then again on the existing one. Prints the
 * time to the first answer of each start, the RSS after start, after 10 s idle, every
 * --interval seconds of load (create, read, update, search, history, raw Binary upload and
 * download, from --concurrency clients), and after the load once idle again. The last line
 * is one JSON object. No assertions.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDevIssuer } from '../src/access/authn/devIssuer';
import { loadConfig } from '../src/config/config';
import pg from 'pg';
import { documentReferenceResource, redactUrl } from './benchLib';
import { ServerProcess, cpuSeconds, startServerProcess, freePort } from './serverProcess';

interface Options {
  duration: number;
  interval: number;
  concurrency: number;
  dataDir: string | undefined;
  idle: number;
}

const USAGE = 'Usage: npm run memory -- [--duration 600] [--interval 10] [--concurrency 4] [--idle 10] [--data-dir DIR]';

function parse(argv: string[]): Options {
  const o: Options = { duration: 600, interval: 10, concurrency: 4, dataDir: undefined, idle: 10 };
  for (let i = 0; i < argv.length; i++) {
    const [name, value] = [argv[i], argv[i + 1]];
    const num = () => {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0) {
        console.error(`${name} needs a positive number\n${USAGE}`);
        process.exit(2);
      }
      i++;
      return n;
    };
    if (name === '--duration') o.duration = num();
    else if (name === '--interval') o.interval = num();
    else if (name === '--concurrency') o.concurrency = Math.floor(num());
    else if (name === '--idle') o.idle = num();
    else if (name === '--data-dir') {
      o.dataDir = path.resolve(value);
      i++;
    } else {
      console.error(USAGE);
      process.exit(name === '--help' ? 0 : 2);
    }
  }
  return o;
}

const sleep = (s: number) => new Promise((r) => setTimeout(r, s * 1000));

/** One client: a mixed sequence of interactions, again and again until `until`. */
async function client(base: string, token: string, until: number, counts: { ok: number; failed: number; firstError?: string }): Promise<void> {
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, 'content-type': 'application/fhir+json' };
  const call = async (url: string, init: RequestInit = {}): Promise<any> => {
    const res = await fetch(`${base}/${url}`, { ...init, headers: { ...auth, ...(init.headers as Record<string, string>) } });
    const body = res.headers.get('content-type')?.includes('json') ? await res.json() : await res.arrayBuffer();
    if (res.ok) counts.ok++;
    else {
      counts.failed++;
      counts.firstError ??= `${init.method ?? 'GET'} ${url}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`;
    }
    return body;
  };
  const blob = crypto.randomBytes(256 * 1024);
  const author = await call('Practitioner', { method: 'POST', headers: json, body: JSON.stringify({ resourceType: 'Practitioner', name: [{ family: 'Memoire', given: ['Jean'] }] }) });
  let n = 0;
  while (Date.now() < until) {
    const family = `Charge${crypto.randomBytes(3).toString('hex')}`;
    const patient = await call('Patient', { method: 'POST', headers: json, body: JSON.stringify({ resourceType: 'Patient', name: [{ family, given: ['Lea'] }], birthDate: '1980-02-03' }) });
    if (!patient?.id) continue;
    await call(`Patient/${patient.id}`);
    await call(`Patient/${patient.id}`, { method: 'PUT', headers: json, body: JSON.stringify({ ...patient, gender: 'female' }) });
    // a document as the national record takes it (its profiles apply by default)
    const doc = await call('DocumentReference', { method: 'POST', headers: json, body: JSON.stringify(documentReferenceResource(n++, `Patient/${patient.id}`, `Practitioner/${author.id}`)) });
    await call(`DocumentReference?subject=Patient/${patient.id}`);
    await call(`Patient?name=${family}`);
    await call(`Patient/${patient.id}/_history`);
    if (doc?.id) await call(`DocumentReference/${doc.id}`);
    const binary = await fetch(`${base}/Binary`, { method: 'POST', headers: { ...auth, 'content-type': 'application/pdf' }, body: blob });
    const location = binary.headers.get('location');
    await binary.arrayBuffer();
    if (binary.ok && location) {
      counts.ok++;
      const id = /Binary\/([^/]+)/.exec(location)?.[1];
      if (id) await call(`Binary/${id}`, { headers: { accept: 'application/pdf' } });
    } else counts.failed++;
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const temporary = o.dataDir === undefined;
  const dataDir = o.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-memory-'));
  const port = await freePort();
  // DATABASE_URL: the server on PostgreSQL, in a new schema dropped at the end (no PGlite in the process)
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `memory_${crypto.randomBytes(5).toString('hex')}` : undefined;
  const env = { DATA_DIR: dataDir, PORT: String(port), DATABASE_URL: databaseUrl ?? '', DATABASE_SCHEMA: schema ?? '' };
  console.log(`database: ${databaseUrl ? `PostgreSQL ${redactUrl(databaseUrl)} schema ${schema} (dropped at the end)` : `embedded, ${dataDir}`}`);
  let server: ServerProcess | undefined;
  const stopAll = async () => {
    await server?.stop();
    if (temporary) fs.rmSync(dataDir, { recursive: true, force: true });
    if (databaseUrl && schema) {
      const c = new pg.Client({ connectionString: databaseUrl });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).finally(() => c.end());
    }
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const existed = !databaseUrl && fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'));
    server = await startServerProcess(env);
    const first = { startupSeconds: server.startupSeconds, cpuSeconds: server.startupCpuSeconds, rssMiB: server.rssMiB(), database: existed ? 'existing' : 'new' };
    console.log(`start-up on the ${first.database} database: ${first.startupSeconds.toFixed(2)} s to the first answer (${first.cpuSeconds.toFixed(2)} s of CPU), RSS ${first.rssMiB} MiB`);
    await server.stop();
    server = await startServerProcess(env);
    const second = { startupSeconds: server.startupSeconds, cpuSeconds: server.startupCpuSeconds, rssMiB: server.rssMiB() };
    console.log(`start-up on the existing database: ${second.startupSeconds.toFixed(2)} s to the first answer (${second.cpuSeconds.toFixed(2)} s of CPU), RSS ${second.rssMiB} MiB`);
    await sleep(o.idle);
    const idleBefore = server.rssMiB();
    console.log(`idle ${o.idle} s: RSS ${idleBefore} MiB`);

    const dev = await openDevIssuer(loadConfig({ DATA_DIR: dataDir, PORT: String(port) }));
    const token = await dev.mintToken({ scope: 'conformance-testing', sub: 'memory-load', ttlSeconds: Math.ceil(o.duration) + 3600 });
    const counts = { ok: 0, failed: 0 } as { ok: number; failed: number; firstError?: string };
    const started = Date.now();
    const cpuBefore = cpuSeconds(server.child.pid!);
    const until = started + o.duration * 1000;
    const samples: { t: number; rssMiB: number; requests: number }[] = [];
    const clients = Array.from({ length: o.concurrency }, () => client(server!.url, token, until, counts));
    const sampler = setInterval(() => {
      const s = { t: Math.round((Date.now() - started) / 1000), rssMiB: server!.rssMiB(), requests: counts.ok + counts.failed };
      samples.push(s);
      console.log(`t=${String(s.t).padStart(4)} s  RSS ${String(s.rssMiB).padStart(4)} MiB  requests ${s.requests}`);
    }, o.interval * 1000);
    await Promise.all(clients);
    clearInterval(sampler);
    // the server's CPU for the load: what the requests cost whatever else the machine runs
    const loadCpuSeconds = cpuSeconds(server.child.pid!) - cpuBefore;
    const requests = counts.ok + counts.failed;
    console.log(`server CPU during the load: ${loadCpuSeconds.toFixed(1)} s, ${((loadCpuSeconds * 1000) / Math.max(1, requests)).toFixed(2)} ms per request`);
    if (counts.failed) console.log(`${counts.failed} requests failed; first: ${counts.firstError}`);
    await sleep(o.idle);
    const idleAfter = server.rssMiB();
    console.log(`idle ${o.idle} s after the load: RSS ${idleAfter} MiB`);
    const rss = samples.map((s) => s.rssMiB);
    const half = samples.slice(Math.floor(samples.length / 2)).map((s) => s.rssMiB);
    console.log(
      JSON.stringify({
        database: databaseUrl ? 'postgres' : 'embedded',
        startup: { first, existing: second },
        idleBeforeMiB: idleBefore,
        load: { seconds: o.duration, concurrency: o.concurrency, requests, failed: counts.failed, cpuSeconds: Number(loadCpuSeconds.toFixed(1)), maxRssMiB: Math.max(...rss), secondHalfMinMiB: Math.min(...half), secondHalfMaxMiB: Math.max(...half) },
        idleAfterMiB: idleAfter,
      }),
    );
  } finally {
    await stopAll();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
