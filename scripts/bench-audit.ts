/**
 * The cost of the audit trail and the patient's notifications (docs/operations/audit-benchmarks.md).
 *
 *   npm run bench:audit [-- --resources 20000]
 *   DATABASE_URL=postgres://… npm run bench:audit
 *
 * Seeds the dataset of scripts/bench-access.ts, then measures the same requests of real
 * actors (the general practitioner on records where his consent is declared, a patient on
 * their own record) on a server started normally and on one started in-process with
 * `{ audit: false }`: read by id, search by patient, and the creation of a document.
 * One server runs at a time on the same data (PGlite holds its directory alone), restarted
 * when the mode changes; rounds alternate the modes (A B B A …) so that drift of a shared
 * machine falls on both. The load runs in the worker thread of bench-access. No
 * assertions: the benchmark prints figures, and one JSON object on its last line.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createTestIssuer } from '../conformance/testIssuer';
import { loadConfig, type Config } from '../src/config/config';
import { createLogger } from '../src/log';
import { findProfilesDir } from '../src/registry/registry';
import { RunningServer, startServer } from '../src/server';
import { figures, GP, LoadResult, LoadWorker, pct, recordsNamingPractitioner, Request, round, rows, sampleRecords, seed } from './bench-access';
import { dropSchema, fmt, httpClient, parseArgsOrExit, pgliteVersion, redactUrl, table, UsageError } from './benchLib';
import { Prng } from './syntheticData';

interface Options {
  resources: number;
  samples: number;
  requests: number;
  rounds: number;
  concurrency: number;
  seed: number;
  /** Print each statement of one request per case and mode with its time (where the cost goes). */
  statements: boolean;
}

const USAGE = `Usage: node dist/scripts/bench-audit.js [--resources 20000] [--samples 20] [--requests 200] [--rounds 4]
                                       [--concurrency 1] [--seed 7] [--statements]
Environment: DATABASE_URL=postgres://… benchmarks PostgreSQL in a fresh schema bench_audit_<random>, dropped at
the end; without it the embedded PGlite database in a temporary directory, removed at the end.`;

function parseArgs(argv: string[]): Options {
  const o: Options = { resources: 20_000, samples: 20, requests: 200, rounds: 4, concurrency: 1, seed: 7, statements: false };
  const keys: Record<string, Exclude<keyof Options, 'statements'>> = { '--resources': 'resources', '--samples': 'samples', '--requests': 'requests', '--rounds': 'rounds', '--concurrency': 'concurrency', '--seed': 'seed' };
  for (let i = 0; i < argv.length; i++) {
    const [name, inline] = argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    if (name === '--help' || name === '-h') throw new UsageError('');
    if (name === '--statements') {
      o.statements = true;
      continue;
    }
    const key = keys[name];
    if (!key) throw new UsageError(`Unknown option ${argv[i]}`);
    const v = inline ?? argv[++i];
    const n = Math.round(Number(v));
    if (v === undefined || !Number.isFinite(n) || n < (key === 'seed' ? 0 : key === 'resources' ? 1000 : 1)) throw new UsageError(`${name} needs a positive number, got "${v}"`);
    (o as unknown as Record<string, number>)[key] = n;
  }
  return o;
}

/** Over this, the trail costs too much on a case. */
const TARGET_COST = 0.2;
type Mode = 'on' | 'off';
const A03 = 'https://mos.esante.gouv.fr/NOS/TRE_A03-ClasseDocument/FHIR/TRE-A03-ClasseDocument';

/** The matrix's document types, in its order: the practitioner writes the first his row allows, the patient one of class 90. */
function documentTypes(): { system: string; code: string; display: string; cls: string }[] {
  const m = JSON.parse(fs.readFileSync(path.join(findProfilesDir(), 'habilitation-matrix.json'), 'utf8')) as { documentTypes: { system: string; code: string; display: string; class: string }[] };
  return m.documentTypes.map((t) => ({ system: t.system, code: t.code, display: t.display, cls: t.class }));
}

function newDocument(patientId: string, author: string, t: ReturnType<typeof documentTypes>[number]): string {
  return JSON.stringify({
    resourceType: 'DocumentReference',
    status: 'current',
    type: { coding: [{ system: t.system, code: t.code, display: t.display }] },
    category: [{ coding: [{ system: A03, code: t.cls }] }],
    subject: { reference: `Patient/${patientId}` },
    date: '2025-06-30T10:00:00Z',
    author: [{ reference: author }],
    description: t.display,
    content: [{ attachment: { contentType: 'application/pdf', language: 'fr-FR', title: t.display, size: 40_000 } }],
  });
}

interface Item {
  actor: string;
  kase: string;
  requests: Request[];
}

async function main(): Promise<void> {
  const o = parseArgsOrExit(parseArgs, USAGE);
  const progress = (s: string) => process.stderr.write(`… ${s}\n`);
  const started = performance.now();
  const databaseUrl = process.env.DATABASE_URL || undefined;
  const schema = databaseUrl ? `bench_audit_${crypto.randomBytes(4).toString('hex')}` : undefined;
  // a directory, not memory: the servers of the two modes follow each other on the same data
  const dataDir = databaseUrl ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'bench-audit-'));
  const issuer = await createTestIssuer({ audience: 'https://bench.example/fhir', testClient: true });
  const config: Config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    AUTH_ISSUERS: issuer.issuersFile,
    ...(databaseUrl ? { DATABASE_SCHEMA: schema } : { DATA_DIR: dataDir }),
  });

  let server: RunningServer | undefined;
  let mode: Mode | undefined;
  let url = '';
  /** The server of a mode: the running one, or the other closed and this one started on the same data. */
  const serve = async (m: Mode): Promise<RunningServer> => {
    if (server && mode === m) return server;
    await server?.close();
    server = await startServer({ ...config }, createLogger('silent'), { audit: m === 'on' });
    mode = m;
    url = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}/fhir`;
    server.ctx.config.baseUrl = url;
    return server;
  };
  const worker = new LoadWorker();
  try {
    const first = await serve('on');
    const knex = () => server!.ctx.db.knex;
    progress(`seeding ${fmt(o.resources, 0)} resources`);
    const s = await seed(first, { resources: o.resources, documents: 8, practitionerShare: 0.1, nurseShare: 0.02, masked: 0.05, seed: o.seed }, progress);
    const byType = await rows<{ resource_type: string; n: string }>(knex(), `SELECT resource_type, count(*) AS n FROM resource WHERE NOT deleted AND compartment <> '' GROUP BY resource_type ORDER BY count(*) DESC`);
    const gpRecords = await recordsNamingPractitioner(knex(), GP);
    const version = (await rows<{ server_version: string }>(knex(), 'SHOW server_version'))[0]?.server_version ?? '?';
    const cpus = os.cpus();
    const header = {
      date: new Date().toISOString(),
      machine: `${cpus[0]?.model ?? '?'} (${os.availableParallelism()} cores), ${fmt(os.totalmem() / 2 ** 30, 0)} GiB RAM, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start`,
      node: process.version,
      database: databaseUrl ? `PostgreSQL ${version}, ${redactUrl(databaseUrl)} schema ${schema} (dropped at the end)` : `embedded PGlite ${pgliteVersion()} (PostgreSQL ${version}), ${dataDir} (removed at the end)`,
      server: 'in-process, one at a time: started normally (audit on) or with { audit: false } (off), restarted when the mode changes; load generator in a worker thread',
      dataset: `${byType.map((r) => `${r.resource_type} ${fmt(Number(r.n), 0)}`).join(', ')}; seeded in ${fmt(s.seconds, 0)} s; Practitioner/${GP} named by the Consents of ${fmt(gpRecords.length, 0)} records`,
      load: `${o.requests} measured requests per case and mode, in ${o.rounds} alternating rounds, ${o.concurrency} client(s)`,
      command: `${databaseUrl ? `DATABASE_URL=${redactUrl(databaseUrl)} ` : ''}npm run bench:audit -- ${process.argv.slice(2).join(' ')}`.trim(),
    };
    console.log('Audit trail benchmark: the same requests of real actors with the audit trail and notifications on and off');
    for (const [k, v] of Object.entries(header)) console.log(`  ${k.padEnd(9)} ${v}`);
    console.log('');

    // --- actors, samples, and the requests of each case (checked once, audit on) ---------------------
    const long = { ttlSeconds: 24 * 3600 };
    const rng = new Prng(o.seed + 1);
    const gpToken = await issuer.mint({ sub: GP, fhirUser: `Practitioner/${GP}`, scope: 'user/*.cruds' }, long);
    const allPatients = (await rows<{ id: string }>(knex(), `SELECT id FROM resource WHERE resource_type = 'Patient' AND NOT deleted ORDER BY id`)).map((r) => r.id);
    const patientSamples = await sampleRecords(knex(), allPatients, o.samples, rng);
    const gpSamples = await sampleRecords(knex(), gpRecords, o.samples, rng);
    const patientTokens = new Map<string, string>();
    for (const p of patientSamples) patientTokens.set(p.patientId, await issuer.mint({ sub: p.patientId, fhirUser: `Patient/${p.patientId}`, scope: 'patient/*.cruds' }, long));
    const client = httpClient('http', url, 1);
    const types = documentTypes();
    const items: Item[] = [];
    const notes: string[] = [];
    for (const actor of [
      { name: 'practitioner', samples: gpSamples, token: () => gpToken, author: () => `Practitioner/${GP}`, types: types.filter((t) => t.cls !== '90') },
      { name: 'patient', samples: patientSamples, token: (id: string) => patientTokens.get(id)!, author: (id: string) => `Patient/${id}`, types: types.filter((t) => t.cls === '90') },
    ]) {
      progress(`${actor.name}: checking the requests of ${actor.samples.length} records`);
      const read: Request[] = [];
      const search: Request[] = [];
      const create: Request[] = [];
      let writable: (typeof types)[number] | undefined;
      for (const sample of actor.samples) {
        const token = actor.token(sample.patientId);
        for (const d of sample.documents.slice(0, 12)) {
          if ((await client.request('GET', `/DocumentReference/${d.id}`, undefined, { authorization: `Bearer ${token}` })).status === 200) {
            read.push({ path: `/DocumentReference/${d.id}`, token });
            break;
          }
        }
        search.push({ path: `/DocumentReference?patient=${sample.patientId}`, token });
        // the first type of the matrix this actor may write (checked by writing it once)
        for (const t of writable ? [writable] : actor.types) {
          const body = newDocument(sample.patientId, actor.author(sample.patientId), t);
          const r = await client.request('POST', '/DocumentReference', body, { authorization: `Bearer ${token}` });
          if (r.status === 201) {
            writable = t;
            create.push({ path: '/DocumentReference', token, body });
            break;
          }
          if (writable) notes.push(`${actor.name}: POST refused (${r.status}) on a record: ${r.body.slice(0, 200)}`);
        }
      }
      if (!writable) notes.push(`${actor.name}: no document type of the matrix could be created`);
      else notes.push(`${actor.name} creates documents of type ${writable.code} (${writable.display}, class ${writable.cls})`);
      items.push({ actor: actor.name, kase: 'read', requests: read }, { actor: actor.name, kase: 'search-patient', requests: search }, { actor: actor.name, kase: 'create', requests: create });
    }
    client.close();

    // --- statements of one request of each case, each mode ---------------------------------------------
    const statements = new Map<string, Record<Mode, number>>();
    for (const m of ['on', 'off'] as const) {
      const srv = await serve(m);
      // each statement with the time from its sending to its answer (knex's query and query-response events)
      let capture: { sql: string; started: number; ms?: number }[] | undefined;
      const pending = new Map<string, { sql: string; started: number; ms?: number }>();
      srv.ctx.db.knex.on('query', (q: { sql?: string; __knexQueryUid?: string }) => {
        if (!capture) return;
        const st = { sql: q.sql ?? '', started: performance.now() };
        capture.push(st);
        if (q.__knexQueryUid) pending.set(q.__knexQueryUid, st);
      });
      srv.ctx.db.knex.on('query-response', (_r: unknown, q: { __knexQueryUid?: string }) => {
        const st = q.__knexQueryUid ? pending.get(q.__knexQueryUid) : undefined;
        if (st) st.ms = performance.now() - st.started;
      });
      const c = httpClient('http', url, 1);
      for (const item of items.filter((i) => i.requests.length)) {
        // the second request of the case: the first of a fresh server prepares its statements
        for (const rq of item.requests.slice(0, 2)) {
          capture = [];
          const t0 = performance.now();
          await c.request(rq.body === undefined ? 'GET' : 'POST', rq.path, rq.body, { authorization: `Bearer ${rq.token}` });
          const total = performance.now() - t0;
          const key = `${item.actor}/${item.kase}`;
          statements.set(key, { ...(statements.get(key) ?? { on: 0, off: 0 }), [m]: capture.length });
          if (o.statements && rq === item.requests[Math.min(1, item.requests.length - 1)]) {
            console.log(`--- audit ${m}, ${item.actor} / ${item.kase}: ${capture.length} statements, ${fmt(total, 2)} ms for the request`);
            for (const st of capture) console.log(`  ${fmt(st.ms, 2).padStart(7)} ms  ${st.sql.replace(/\s+/g, ' ').slice(0, 160)}`);
          }
          capture = undefined;
        }
      }
      c.close();
    }

    // --- load: rounds alternate the modes, each runs every case -------------------------------------------
    const runs = new Map<string, Record<Mode, LoadResult[]>>();
    const per = Math.max(1, Math.ceil(o.requests / o.rounds));
    for (let r = 0; r < o.rounds; r++) {
      for (const m of r % 2 === 0 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
        const restarted = mode !== m;
        await serve(m);
        progress(`round ${r + 1}/${o.rounds}, audit ${m}`);
        for (const item of items.filter((i) => i.requests.length)) {
          // a fresh server warms up (plans, caches) before it is measured
          if (restarted) await worker.run({ url, requests: item.requests, offset: 0, concurrency: o.concurrency, count: Math.min(20, per) });
          const key = `${item.actor}/${item.kase}`;
          const slot = runs.get(key) ?? { on: [], off: [] };
          slot[m].push(await worker.run({ url, requests: item.requests, offset: r * per, concurrency: o.concurrency, count: per }));
          runs.set(key, slot);
        }
      }
    }

    // --- report ----------------------------------------------------------------------------------------------
    const results = items
      .filter((i) => i.requests.length)
      .map((item) => {
        const key = `${item.actor}/${item.kase}`;
        const on = figures(runs.get(key)!.on);
        const off = figures(runs.get(key)!.off);
        return { actor: item.actor, kase: item.kase, samples: item.requests.length, statements: statements.get(key)!, on, off, costP50: on.p50 / off.p50 - 1, costThroughput: off.perSecond / on.perSecond - 1 };
      });
    console.log(
      table(
        ['actor', 'case', 'samples', 'SQL on/off', 'req/s on', 'req/s off', 'p50 on', 'p50 off', 'p99 on', 'p99 off', 'cost p50', 'cost req/s', 'errors'],
        results.map((r) => [
          r.actor,
          r.kase,
          String(r.samples),
          `${r.statements.on}/${r.statements.off}`,
          fmt(r.on.perSecond, 0),
          fmt(r.off.perSecond, 0),
          fmt(r.on.p50, 2),
          fmt(r.off.p50, 2),
          fmt(r.on.p99, 2),
          fmt(r.off.p99, 2),
          pct(r.costP50),
          pct(r.costThroughput),
          String(r.on.errors + r.off.errors),
        ]),
      ),
    );
    console.log('  (latencies in ms; "on": the server as deployed, "off": started in-process with { audit: false }, no AuditEvent and no notice;');
    console.log('   SQL on/off: statements of one request; cost p50 = p50 on / p50 off - 1; cost req/s = req/s off / req/s on - 1)');
    console.log('  read: GET DocumentReference/[id]; search-patient: GET DocumentReference?patient=X; create: POST DocumentReference in the record');
    for (const n of notes.slice(0, 6)) console.log(`  ${n}`);
    for (const r of results.filter((x) => x.on.firstError || x.off.firstError)) console.log(`  first error in ${r.actor} / ${r.kase}: ${r.on.firstError ?? r.off.firstError}`);
    const over = results.filter((r) => r.costThroughput > TARGET_COST);
    console.log(over.length ? `Cost over ${TARGET_COST * 100} % (req/s): ${over.map((r) => `${r.actor} / ${r.kase} ${pct(r.costThroughput)}`).join(', ')}` : `Cost under ${TARGET_COST * 100} % (req/s) in every case.`);
    console.log(`Ran in ${fmt((performance.now() - started) / 1000, 0)} s. Run again: ${header.command}`);
    console.log('');
    console.log(
      JSON.stringify({
        ...header,
        options: o,
        results: results.map((r) => ({
          actor: r.actor,
          case: r.kase,
          samples: r.samples,
          statements: r.statements,
          on: { requests: r.on.requests, errors: r.on.errors, perSecond: round(r.on.perSecond, 1), p50Ms: round(r.on.p50), p99Ms: round(r.on.p99) },
          off: { requests: r.off.requests, errors: r.off.errors, perSecond: round(r.off.perSecond, 1), p50Ms: round(r.off.p50), p99Ms: round(r.off.p99) },
          costP50: round(r.costP50, 3),
          costThroughput: round(r.costThroughput, 3),
        })),
      }),
    );
  } finally {
    await worker.close();
    await server?.close();
    await issuer.cleanup();
    if (databaseUrl) {
      await dropSchema(databaseUrl, schema!);
    } else fs.rmSync(dataDir!, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
